use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::finding_record::FindingRecord;
use crate::model::{
    ContainerAction, ContainerEvent, ContainerRef, Entity, EventBody, Finding, KeyValue,
    NetworkEvent, ProcessEvent, Severity,
};
use crate::validate::Validate;

const SEC: u64 = 1_000_000_000;
const ID: &str = "9002afd52e26f00c16761b0b702d2d25c95bd7c59c33b57eab67f8dda56cfaaa";

fn limits(events: usize, entities: usize, age_secs: u64) -> Limits {
    Limits {
        events_per_entity: events,
        findings_per_entity: 2,
        max_age_ns: age_secs * SEC,
        max_entities: entities,
    }
}

fn timeline(l: Limits) -> (Timeline, Arc<TimelineMetrics>) {
    let m = Arc::new(TimelineMetrics::default());
    (Timeline::with_limits(l, m.clone()), m)
}

fn container(id: &str, name: &str, action: ContainerAction, time: u64) -> Event {
    Event {
        id: format!("{id}-{time}"),
        time,
        node: "n".into(),
        source: "docker".into(),
        body: EventBody::Container(ContainerEvent {
            action,
            id: id.into(),
            name: format!("/{name}"),
            image: "alpine".into(),
            ..Default::default()
        }),
    }
}

fn q(s: &str) -> EntityQuery {
    s.parse().unwrap()
}

fn count(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

#[test]
fn events_come_back_in_time_order_by_id_name_and_prefix() {
    let (t, m) = timeline(limits(8, 8, 3600));
    let now = 1000 * SEC;
    t.record_events(
        &[
            container(ID, "web", ContainerAction::Create, now - 3 * SEC),
            container(ID, "web", ContainerAction::Stop, now - SEC),
            container(ID, "web", ContainerAction::Start, now - 2 * SEC),
        ],
        now,
    );
    for ask in [
        "container:web",
        &format!("container:{ID}"),
        "container:9002afd52e26",
    ] {
        let v = t.query(&q(ask), now);
        let e = v.entity.as_ref().unwrap_or_else(|| panic!("{ask}: {v:?}"));
        assert_eq!(e.id, ID);
        assert_eq!(e.name, "web");
        let summaries: Vec<&str> = v.items.iter().map(|i| &*i.item.summary).collect();
        assert_eq!(
            summaries,
            [
                "create web image=alpine",
                "start web image=alpine",
                "stop web image=alpine"
            ]
        );
    }
    assert_eq!(count(&m.counters.events_recorded), 3);
    assert_eq!(m.entities.load(Ordering::Relaxed), 1);
    assert_eq!(m.items.load(Ordering::Relaxed), 3);
    assert!(!t.query(&q("container:nothing"), now).found());
    // Too short a prefix is a name, not an id.
    assert!(!t.query(&q("container:9002afd5"), now).found());
}

#[test]
fn a_full_ring_drops_its_oldest_and_counts_it() {
    let (t, m) = timeline(limits(3, 8, 3600));
    let now = 1000 * SEC;
    let batch: Vec<Event> = (0..5)
        .map(|i| container(ID, "web", ContainerAction::Start, now - 10 * SEC + i))
        .collect();
    t.record_events(&batch, now);
    let v = t.query(&q("container:web"), now);
    let times: Vec<u64> = v.items.iter().map(|i| i.item.time).collect();
    assert_eq!(
        times,
        [now - 10 * SEC + 2, now - 10 * SEC + 3, now - 10 * SEC + 4]
    );
    assert_eq!(count(&m.counters.ring_overflow), 2);
    assert_eq!(m.items.load(Ordering::Relaxed), 3);
}

#[test]
fn old_items_expire_on_query_and_sweep_and_are_counted() {
    let (t, m) = timeline(limits(8, 8, 60));
    let now = 1000 * SEC;
    t.record_events(
        &[
            container(ID, "web", ContainerAction::Create, now - 50 * SEC),
            container(
                "b".repeat(64).as_str(),
                "db",
                ContainerAction::Create,
                now - 50 * SEC,
            ),
            // Already too old when it arrives: never stored.
            container(ID, "web", ContainerAction::Start, now - 100 * SEC),
        ],
        now,
    );
    assert_eq!(count(&m.counters.expired), 1);
    let later = now + 20 * SEC;
    let v = t.query(&q("container:web"), later);
    assert!(v.items.is_empty(), "{v:?}");
    assert_eq!(count(&m.counters.expired), 2);
    t.sweep(later);
    assert_eq!(count(&m.counters.expired), 3);
    assert_eq!(m.entities.load(Ordering::Relaxed), 0);
    assert_eq!(m.items.load(Ordering::Relaxed), 0);
}

#[test]
fn the_least_recently_active_entity_is_evicted_at_the_cap() {
    let (t, m) = timeline(limits(8, 2, 3600));
    let now = 1000 * SEC;
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    t.record_events(&[container(&a, "a", ContainerAction::Start, now)], now);
    t.record_events(&[container(&b, "b", ContainerAction::Start, now)], now);
    // `a` active again: `b` is now the least recent.
    t.record_events(&[container(&a, "a", ContainerAction::Stop, now)], now);
    t.record_events(&[container(&c, "c", ContainerAction::Start, now)], now);
    assert!(t.query(&q("container:a"), now).found());
    assert!(!t.query(&q("container:b"), now).found());
    assert!(t.query(&q("container:c"), now).found());
    assert_eq!(count(&m.counters.entities_evicted), 1);
    assert_eq!(count(&m.counters.items_evicted), 1);
    assert_eq!(m.entities.load(Ordering::Relaxed), 2);
    assert_eq!(m.items.load(Ordering::Relaxed), 3);
}

#[test]
fn one_event_feeds_its_container_and_its_pod_and_shares_the_item() {
    let (t, _) = timeline(limits(8, 8, 3600));
    let now = 1000 * SEC;
    let e = Event {
        id: "n1".into(),
        time: now,
        node: "n".into(),
        source: "network".into(),
        body: EventBody::Network(NetworkEvent {
            remote_address: "203.0.113.9".into(),
            remote_port: 443,
            container: Some(ContainerRef {
                id: ID.into(),
                name: "web".into(),
                image: "alpine".into(),
                pod: "shop/web-1".into(),
            }),
            ..Default::default()
        }),
    };
    t.record_events(&[e], now);
    let c = t.query(&q("container:web"), now);
    let p = t.query(&q("pod:shop/web-1"), now);
    assert_eq!(c.items.len(), 1);
    assert_eq!(c.items, p.items);
    assert!(c.items[0].item.summary.contains("203.0.113.9:443"));
}

fn finding(verified: bool, time: u64) -> FindingRecord {
    let mut f = FindingRecord::new(
        Finding {
            rule_id: "container-escape/host-network".into(),
            title: "Host network".into(),
            severity: Severity::High,
            summary: "web\x1b[31m shares the host network".into(),
            techniques: vec![],
            entities: vec![Entity {
                kind: crate::model::EntityKind::Container,
                id: ID.into(),
                name: "web".into(),
            }],
            evidence: vec![KeyValue::new("network_mode", "host")],
            event_ids: vec!["e1".into()],
        },
        "container-escape",
        "1.0.0",
        "n",
        time,
    );
    f.entities[0].verified = Some(verified);
    f
}

#[test]
fn findings_have_their_own_ring_and_only_verified_entities_get_them() {
    let (t, m) = timeline(limits(2, 8, 3600));
    let now = 1000 * SEC;
    t.record_finding(&finding(false, now), now);
    assert!(!t.query(&q("container:web"), now).found());
    assert_eq!(count(&m.counters.findings_unverified), 1);
    t.record_finding(&finding(true, now), now + 1);
    // A flood of events does not push the finding out.
    let flood: Vec<Event> = (0..10)
        .map(|i| container(ID, "web", ContainerAction::ExecStart, now + 2 + i))
        .collect();
    t.record_events(&flood, now + 20);
    let v = t.query(&q("container:web"), now + 20);
    assert_eq!(v.items.len(), 3, "{v:?}");
    let f = &v.items[0].item;
    assert_eq!(f.kind, ItemKind::Finding);
    assert_eq!(f.rule_id.as_deref(), Some("container-escape/host-network"));
    assert_eq!(f.severity, Some(Severity::High));
    assert_eq!(&*f.source, "container-escape");
    assert_eq!(count(&m.counters.findings_recorded), 1);
}

#[test]
fn a_snapshot_restores_within_the_limits_and_the_age() {
    let (t, _) = timeline(limits(8, 8, 60));
    let now = 1000 * SEC;
    t.record_events(
        &[
            container(ID, "web", ContainerAction::Create, now - 50 * SEC),
            container(ID, "web", ContainerAction::Start, now - 5 * SEC),
        ],
        now,
    );
    t.record_finding(&finding(true, now), now);
    let snap = t.snapshot(now);
    let text = serde_json::to_string(&snap).unwrap();
    let back: Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(back.schema, SNAPSHOT_SCHEMA);
    let (r, _) = timeline(limits(1, 8, 60));
    r.restore(back, now + 20 * SEC);
    let v = r.query(&q("container:web"), now + 20 * SEC);
    assert_eq!(v.items.len(), 2, "the old create expired: {v:?}");
    assert_eq!(v.items[0].item.kind, ItemKind::Container);
    assert_eq!(v.items[1].item.kind, ItemKind::Finding);
}

#[test]
fn entities_parse_strictly() {
    assert_eq!(q("container:web-1"), EntityQuery::Container("web-1".into()));
    assert_eq!(
        q("pod:kube-system/coredns-5d78c9869d-abcde"),
        EntityQuery::Pod {
            namespace: "kube-system".into(),
            name: "coredns-5d78c9869d-abcde".into()
        }
    );
    assert_eq!(q("service:api"), EntityQuery::Service("api".into()));
    for bad in [
        "web",
        "host:web",
        "container:",
        "container:/web",
        "container:we b",
        "container:web\n",
        "pod:web",
        "pod:Shop/web",
        "pod:shop/",
        "pod:shop/web/x",
        "service:-api",
        &format!("container:{}", "a".repeat(129)),
    ] {
        let err = bad.parse::<EntityQuery>().unwrap_err().to_string();
        assert!(!err.contains('\n'), "{bad:?}: {err}");
    }
    assert!(
        "host:web"
            .parse::<EntityQuery>()
            .unwrap_err()
            .to_string()
            .contains(SYNTAX)
    );
}

#[test]
fn config_bounds_are_checked() {
    let mut p = crate::validate::Problems::default();
    TimelineConfig::default().validate("timeline", &mut p);
    assert!(p.is_empty(), "{p:?}");
    let bad = TimelineConfig {
        events_per_entity: 0,
        findings_per_entity: MAX_FINDINGS_PER_ENTITY + 1,
        max_entities: 0,
        max_age_secs: 0,
        persist_interval_secs: 100_000,
        ..TimelineConfig::default()
    };
    bad.validate("timeline", &mut p);
    let paths: Vec<&str> = p.list().iter().map(|x| x.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "timeline.events_per_entity",
            "timeline.findings_per_entity",
            "timeline.max_entities",
            "timeline.max_age_secs",
            "timeline.persist_interval_secs"
        ]
    );
}

#[test]
fn swarm_service_events_have_their_service_s_timeline() {
    use crate::model::{ServiceEvent, ServiceSpec, SwarmObject};
    let (t, _m) = timeline(limits(8, 8, 3600));
    let now = 1000 * SEC;
    let service = |action: &str, object: SwarmObject, time: u64| ServiceEvent {
        id: format!("swarm:{action}"),
        time,
        node: "n1".into(),
        source: "docker".into(),
        object,
        action: action.into(),
        object_id: "svc1".into(),
        name: "miner".into(),
        service: Some(ServiceSpec {
            version: 7,
            image: "evil/miner:1".into(),
            replicas: Some(6),
            networks: vec!["host".into()],
            ..Default::default()
        }),
        actor: "root".into(),
        ..Default::default()
    };
    t.record_services(
        &[
            service("create", SwarmObject::Service, now - 2 * SEC),
            service("update", SwarmObject::Service, now - SEC),
            // A node's event is no service's.
            service("update", SwarmObject::Node, now),
        ],
        now,
    );
    let v = t.query(&q("service:miner"), now);
    let summaries: Vec<&str> = v.items.iter().map(|i| &*i.item.summary).collect();
    assert_eq!(
        summaries,
        [
            "service create miner (spec v7, image evil/miner:1, 6 replicas, networks host) by root",
            "service update miner (spec v7, image evil/miner:1, 6 replicas, networks host) by root",
        ]
    );
    assert!(v.items.iter().all(|i| i.item.kind == ItemKind::Service));
}

#[test]
fn process_events_are_in_their_container_s_and_pod_s_timeline() {
    let (t, _m) = timeline(limits(8, 8, 3600));
    let now = 1000 * SEC;
    let exec = |id: &str, container: Option<ContainerRef>| ProcessEvent {
        id: id.into(),
        time: now,
        source: "ebpf".into(),
        action: "exec".into(),
        pid: 42,
        parent_pid: 7,
        parent_name: "runc:[2:INIT]".into(),
        binary: "/bin/sh".into(),
        args: vec!["sh".into(), "-c".into(), "id".into()],
        container,
        ..Default::default()
    };
    let web = ContainerRef {
        id: ID.into(),
        name: "web".into(),
        image: "nginx".into(),
        pod: "shop/web-1".into(),
    };
    // The host's own process has no timeline entity.
    t.record_processes(&[exec("p1", Some(web)), exec("p2", None)], now);
    for query in ["container:web", "pod:shop/web-1"] {
        let v = t.query(&q(query), now);
        let summaries: Vec<&str> = v.items.iter().map(|i| &*i.item.summary).collect();
        assert_eq!(
            summaries,
            ["exec /bin/sh -c id (pid 42, parent 7 runc:[2:INIT], uid 0)"],
            "{query}"
        );
        assert_eq!(v.items[0].item.kind, ItemKind::Process);
    }
}

#[test]
fn task_containers_their_network_events_and_findings_reach_their_service() {
    use crate::model::{ServiceEvent, SwarmObject};
    let (t, m) = timeline(limits(16, 8, 3600));
    let now = 1000 * SEC;
    t.record_services(
        &[ServiceEvent {
            id: "swarm:create".into(),
            time: now - 5 * SEC,
            source: "docker".into(),
            object: SwarmObject::Service,
            action: "create".into(),
            object_id: "svc1".into(),
            name: "miner".into(),
            ..Default::default()
        }],
        now,
    );
    let task = |id: &str, action: ContainerAction, time: u64| {
        let mut e = container(id, &format!("miner.1.{id}"), action, time);
        if let EventBody::Container(c) = &mut e.body {
            c.labels = vec![
                KeyValue::new("com.docker.swarm.service.id", "svc1"),
                KeyValue::new("com.docker.swarm.service.name", "miner"),
            ];
        }
        e
    };
    let other = "1111afd52e26f00c16761b0b702d2d25c95bd7c59c33b57eab67f8dda56cfaaa";
    t.record_events(
        &[
            task(ID, ContainerAction::Create, now - 4 * SEC),
            task(ID, ContainerAction::Start, now - 3 * SEC),
            // Not a task: not the service's.
            container(other, "web", ContainerAction::Start, now - 3 * SEC),
        ],
        now,
    );
    // A network event carries no labels: the link the task's labels left.
    let connect = Event {
        id: "n1".into(),
        time: now - 2 * SEC,
        node: "n".into(),
        source: "network".into(),
        body: EventBody::Network(NetworkEvent {
            container: Some(ContainerRef {
                id: ID.into(),
                name: "miner.1".into(),
                ..Default::default()
            }),
            remote_address: "203.0.113.9".into(),
            remote_port: 443,
            ..Default::default()
        }),
    };
    t.record_events(&[connect], now);
    let mut f = finding(true, now - SEC);
    // A container that is no task, and the task named twice: one finding
    // on the service's timeline.
    let mut web = f.entities[0].clone();
    web.id = other.into();
    web.name = "web".into();
    f.entities.push(web);
    f.entities.push(f.entities[0].clone());
    t.record_finding(&f, now);
    let v = t.query(&q("service:miner"), now);
    assert_eq!(v.entity.as_ref().map(|e| e.id.as_str()), Some("svc1"));
    let kinds: Vec<ItemKind> = v.items.iter().map(|i| i.item.kind).collect();
    assert_eq!(
        kinds,
        [
            ItemKind::Service,
            ItemKind::Container,
            ItemKind::Container,
            ItemKind::Network,
            ItemKind::Finding
        ],
        "{v:?}"
    );
    assert!(
        v.items[1].item.summary.starts_with("create miner.1."),
        "{v:?}"
    );
    // The task (twice), the other container, the service once.
    assert_eq!(count(&m.counters.findings_recorded), 4);
    // The link survives a snapshot.
    let (r, _) = timeline(limits(16, 8, 3600));
    r.restore(t.snapshot(now), now);
    r.record_finding(&finding(true, now), now);
    let v = r.query(&q("service:svc1"), now);
    assert_eq!(
        v.items
            .iter()
            .filter(|i| i.item.kind == ItemKind::Finding)
            .count(),
        2,
        "{v:?}"
    );
}
