use std::time::{Duration, Instant};

use super::*;
use crate::model::{
    ContainerEvent, ContainerRef, Event, EventBody, Finding, KeyValue, KubernetesEvent,
    NetworkEvent, Severity,
};

const WEB: &str = "9002afd52e26f00c16761b0b702d2d25c95bd7c59c33b57eab67f8dda56cfaaa";
const DB: &str = "9002afd52e26aaaa16761b0b702d2d25c95bd7c59c33b57eab67f8dda56cfbbb";

fn event(source: &str, body: EventBody) -> Event {
    Event {
        id: String::new(),
        time: 1,
        node: "n".into(),
        source: source.into(),
        body,
    }
}

/// A container event whose event id is `ev:<name>`.
fn container(id: &str, name: &str) -> Event {
    with_id(
        &format!("ev:{}", name.trim_start_matches('/')),
        event(
            "docker",
            EventBody::Container(ContainerEvent {
                id: id.into(),
                name: name.into(),
                ..Default::default()
            }),
        ),
    )
}

fn with_id(id: &str, mut e: Event) -> Event {
    e.id = id.into();
    e
}

/// A pod event whose event id is `ev:<ns>/<name>`.
fn pod_event(source: &str, ns: &str, name: &str, uid: &str) -> Event {
    with_id(
        &format!("ev:{ns}/{name}"),
        event(
            source,
            EventBody::Kubernetes(KubernetesEvent {
                verb: "create".into(),
                resource: "pods".into(),
                namespace: ns.into(),
                name: name.into(),
                audit_id: uid.into(),
                ..Default::default()
            }),
        ),
    )
}

fn finding(entities: &[(EntityKind, &str, &str)], cites: &[&str]) -> Finding {
    Finding {
        rule_id: "p/r".into(),
        title: "t".into(),
        severity: Severity::Critical,
        summary: String::new(),
        techniques: Vec::new(),
        entities: entities
            .iter()
            .map(|(kind, id, name)| Entity {
                kind: *kind,
                id: (*id).into(),
                name: (*name).into(),
            })
            .collect(),
        evidence: Vec::new(),
        event_ids: cites.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// The verdict on one entity of a finding citing `cites`.
fn cited(w: &mut SubjectWindow, cites: &[&str], kind: EntityKind, id: &str, name: &str) -> Verdict {
    w.check(&finding(&[(kind, id, name)], cites)).remove(0)
}

fn verified(id: &str, name: &str) -> Verdict {
    Verdict::Verified {
        id: id.into(),
        name: name.into(),
        uid: None,
    }
}

const BOTH: &[&str] = &["ev:web", "ev:db"];

#[test]
fn a_cited_container_verifies_by_id_prefix_or_name_and_gets_its_full_id() {
    let mut w = SubjectWindow::default();
    w.record(&[container(WEB, "/web"), container(DB, "db")]);
    let c = EntityKind::Container;
    assert_eq!(cited(&mut w, BOTH, c, WEB, ""), verified(WEB, "web"));
    // The name as shown replaces the one the plugin gave.
    assert_eq!(cited(&mut w, BOTH, c, WEB, "vigil"), verified(WEB, "web"));
    assert_eq!(cited(&mut w, BOTH, c, "web", ""), verified(WEB, "web"));
    assert_eq!(cited(&mut w, BOTH, c, "/db", ""), verified(DB, "db"));
    assert_eq!(cited(&mut w, BOTH, c, "", "db"), verified(DB, "db"));
    assert_eq!(cited(&mut w, BOTH, c, &WEB[..16], ""), verified(WEB, "web"));
    assert_eq!(
        cited(&mut w, BOTH, c, &WEB[..16].to_uppercase(), ""),
        verified(WEB, "web")
    );
    // Only one of them cited: the 12 digits both ids start with name it alone.
    assert_eq!(
        cited(&mut w, &["ev:db"], c, &WEB[..12], ""),
        verified(DB, "db")
    );
    assert_eq!(
        cited(&mut w, &["ev:web"], c, &WEB[..12], ""),
        verified(WEB, "web")
    );
}

#[test]
fn a_container_shown_in_another_event_than_the_cited_one_does_not_verify() {
    // Issue 10: shown containers A and B, a plugin cites A's event and names B.
    let mut w = SubjectWindow::default();
    w.record(&[container(WEB, "web"), container(DB, "db")]);
    let c = EntityKind::Container;
    for (id, name) in [(DB, ""), ("db", ""), ("", "db"), (&DB[..16], "")] {
        assert_eq!(
            cited(&mut w, &["ev:web"], c, id, name),
            Verdict::Unverified,
            "{id:?}/{name:?}"
        );
    }
    assert_eq!(cited(&mut w, &["ev:db"], c, DB, ""), verified(DB, "db"));
    // A finding citing nothing (or only ids never handed over) verifies nothing.
    assert_eq!(cited(&mut w, &[], c, WEB, ""), Verdict::Unverified);
    assert_eq!(
        cited(&mut w, &["ev:nothing", "e"], c, WEB, ""),
        Verdict::Unverified
    );
    // An event handed over without a subject vouches for none.
    w.record(&[with_id(
        "ev:file",
        event("fim", EventBody::File(Default::default())),
    )]);
    assert_eq!(cited(&mut w, &["ev:file"], c, WEB, ""), Verdict::Unverified);
}

#[test]
fn what_was_not_shown_or_is_ambiguous_does_not_verify() {
    let mut w = SubjectWindow::default();
    w.record(&[container(WEB, "web"), container(DB, "db")]);
    for (id, name) in [
        ("victim_db", ""),
        ("", "victim_db"),
        ("vigil", ""),
        // Shorter than a short id: a guess, not a name.
        (&WEB[..8], ""),
        // 12 digits both ids start with.
        (&WEB[..12], ""),
        // A full id never shown.
        ("ab".repeat(32).as_str(), "web"),
        ("", ""),
    ] {
        assert_eq!(
            cited(&mut w, BOTH, EntityKind::Container, id, name),
            Verdict::Unverified,
            "{id:?}/{name:?}"
        );
    }
    // Two containers cited under one name (removed and created again): ambiguous.
    let other = "ab".repeat(32);
    w.record(&[with_id("ev:web-again", container(&other, "web"))]);
    let all = &["ev:web", "ev:web-again"];
    assert_eq!(
        cited(&mut w, all, EntityKind::Container, "web", ""),
        Verdict::Unverified
    );
    // By id, both are still known.
    assert_eq!(
        cited(&mut w, all, EntityKind::Container, &other, ""),
        verified(&other, "web")
    );
    // Kinds the host does not check.
    assert_eq!(
        cited(&mut w, all, EntityKind::Image, "nginx", ""),
        Verdict::NotChecked
    );
}

#[test]
fn network_and_kubelet_labels_show_containers_and_pods() {
    let mut w = SubjectWindow::default();
    let flow = with_id(
        "flow",
        event(
            "network",
            EventBody::Network(NetworkEvent {
                container: Some(ContainerRef {
                    id: WEB.into(),
                    name: "web".into(),
                    image: "nginx".into(),
                    pod: "shop/web-1".into(),
                }),
                ..Default::default()
            }),
        ),
    );
    let mut kubelet = with_id("kubelet", container(DB, "k8s_db_db-0_shop_u-9_0"));
    if let EventBody::Container(c) = &mut kubelet.body {
        c.labels = vec![
            KeyValue::new("io.kubernetes.pod.namespace", "shop"),
            KeyValue::new("io.kubernetes.pod.name", "db-0"),
            KeyValue::new("io.kubernetes.pod.uid", "u-9"),
        ];
    }
    w.record(&[flow, kubelet]);
    let all = &["flow", "kubelet"];
    assert_eq!(
        cited(&mut w, all, EntityKind::Container, "web", ""),
        verified(WEB, "web")
    );
    assert_eq!(
        cited(&mut w, all, EntityKind::Pod, "shop/web-1", ""),
        Verdict::Verified {
            id: "shop/web-1".into(),
            name: String::new(),
            uid: None
        }
    );
    assert_eq!(
        cited(&mut w, all, EntityKind::Pod, "shop/db-0", ""),
        Verdict::Verified {
            id: "shop/db-0".into(),
            name: String::new(),
            uid: Some("u-9".into())
        }
    );
    // The flow is not about db-0.
    assert_eq!(
        cited(&mut w, &["flow"], EntityKind::Pod, "shop/db-0", ""),
        Verdict::Unverified
    );
    assert_eq!(
        cited(&mut w, all, EntityKind::Pod, "shop/db-1", ""),
        Verdict::Unverified
    );
}

#[test]
fn pods_verify_by_namespace_and_name_with_the_watchers_uid_only() {
    let mut w = SubjectWindow::default();
    w.record(&[
        pod_event("k8s-audit", "default", "audited", "audit-id-1"),
        pod_event("k8s-watch", "default", "watched", "uid-1"),
    ]);
    let all = &["ev:default/audited", "ev:default/watched"];
    // An audit event's `audit-id` is the request's, not the pod's uid.
    assert_eq!(
        cited(&mut w, all, EntityKind::Pod, "default/audited", ""),
        Verdict::Verified {
            id: "default/audited".into(),
            name: String::new(),
            uid: None
        }
    );
    assert_eq!(
        cited(&mut w, all, EntityKind::Pod, "default/watched", ""),
        Verdict::Verified {
            id: "default/watched".into(),
            name: String::new(),
            uid: Some("uid-1".into())
        }
    );
    assert_eq!(
        cited(&mut w, all, EntityKind::Pod, "kube-system/watched", ""),
        Verdict::Unverified
    );
    // Events about other resources show no pod.
    let mut deploy = with_id("deploy", pod_event("k8s-audit", "default", "web", ""));
    if let EventBody::Kubernetes(k) = &mut deploy.body {
        k.resource = "deployments".into();
    }
    w.record(&[deploy]);
    assert_eq!(
        cited(&mut w, &["deploy"], EntityKind::Pod, "default/web", ""),
        Verdict::Unverified
    );
}

#[test]
fn fed_findings_vouch_for_what_the_host_verified_by_finding_id() {
    let mut w = SubjectWindow::default();
    let ok = Verdict::Verified {
        id: WEB.into(),
        name: "web".into(),
        uid: None,
    };
    let pod = Verdict::Verified {
        id: "shop/web-1".into(),
        name: String::new(),
        uid: Some("u-1".into()),
    };
    w.record_findings([
        (
            "f1",
            vec![
                (EntityKind::Container, &ok),
                (EntityKind::Pod, &pod),
                (EntityKind::Container, &Verdict::Unverified),
            ],
        ),
        ("f2", vec![(EntityKind::Container, &Verdict::Unverified)]),
    ]);
    assert_eq!(
        cited(&mut w, &["f1"], EntityKind::Container, "web", ""),
        verified(WEB, "web")
    );
    assert_eq!(
        cited(&mut w, &["f1"], EntityKind::Pod, "shop/web-1", ""),
        pod
    );
    assert_eq!(
        cited(&mut w, &["f2"], EntityKind::Container, DB, ""),
        Verdict::Unverified
    );
}

#[test]
fn events_stay_citable_for_one_to_two_generations() {
    let ttl = Duration::from_secs(60);
    let mut w = SubjectWindow::new(ttl, 100);
    let t0 = Instant::now();
    w.record_at(&[container(WEB, "web")], t0);
    let f = finding(&[(EntityKind::Container, "web", "")], &["ev:web"]);
    // A tick finding a while later still verifies …
    assert_eq!(
        w.check_at(&f, t0 + ttl + Duration::from_secs(30))[0],
        verified(WEB, "web")
    );
    // … handed over again, the event lives on …
    w.record_at(&[container(WEB, "web")], t0 + ttl + Duration::from_secs(31));
    assert_eq!(
        w.check_at(&f, t0 + ttl * 2 + Duration::from_secs(1))[0],
        verified(WEB, "web")
    );
    // … and once not handed over for two generations it is gone.
    assert_eq!(w.check_at(&f, t0 + ttl * 5)[0], Verdict::Unverified);
    assert!(w.is_empty());
}

#[test]
fn memory_is_bounded_by_the_generation_caps() {
    let mut w = SubjectWindow::new(Duration::from_secs(3600), 10);
    let batch: Vec<Event> = (0..1000)
        .map(|i| container(&format!("{i:064x}"), &format!("c{i}")))
        .collect();
    w.record(&batch);
    let (containers, _) = w.len();
    assert!(containers <= 20, "{containers} containers held");
    assert!(w.events_len() <= 2 * 10 * EVENTS_PER_SUBJECT);
    // The most recent ones are still known.
    assert_eq!(
        cited(&mut w, &["ev:c999"], EntityKind::Container, "c999", ""),
        verified(&format!("{:064x}", 999), "c999")
    );
    assert_eq!(
        cited(&mut w, &["ev:c0"], EntityKind::Container, "c0", ""),
        Verdict::Unverified
    );
    // Many events about few containers: the events bound it.
    let mut w = SubjectWindow::new(Duration::from_secs(3600), 10);
    let batch: Vec<Event> = (0..1000)
        .map(|i| with_id(&format!("e{i}"), container(WEB, "web")))
        .collect();
    w.record(&batch);
    assert!(w.events_len() <= 2 * 10 * EVENTS_PER_SUBJECT);
    assert_eq!(
        cited(&mut w, &["e999"], EntityKind::Container, "web", ""),
        verified(WEB, "web")
    );
    assert_eq!(
        cited(&mut w, &["e0"], EntityKind::Container, "web", ""),
        Verdict::Unverified
    );
}

#[test]
fn an_audited_pod_create_brings_the_uid_its_response_showed() {
    audit_pod_uids::note("ev:shop/created", "uid-created");
    let mut w = SubjectWindow::default();
    w.record(&[
        pod_event("k8s-audit", "shop", "created", "request-id"),
        pod_event("k8s-audit", "shop", "other", "request-id-2"),
    ]);
    assert_eq!(
        cited(
            &mut w,
            &["ev:shop/created"],
            EntityKind::Pod,
            "shop/created",
            ""
        ),
        Verdict::Verified {
            id: "shop/created".into(),
            name: String::new(),
            uid: Some("uid-created".into())
        }
    );
    assert_eq!(
        cited(
            &mut w,
            &["ev:shop/other"],
            EntityKind::Pod,
            "shop/other",
            ""
        ),
        Verdict::Verified {
            id: "shop/other".into(),
            name: String::new(),
            uid: None
        }
    );
}

#[test]
fn a_swarm_task_container_is_its_service_s_subject() {
    let mut task = container(WEB, "miner.1.x0");
    if let EventBody::Container(c) = &mut task.body {
        c.labels = vec![
            KeyValue::new("com.docker.swarm.service.name", "miner"),
            KeyValue::new("com.docker.swarm.service.id", "svc1"),
        ];
    }
    let mut subjects = Vec::new();
    for_each_subject(&task, |s| subjects.push(s));
    assert_eq!(
        subjects,
        [
            Subject::Container {
                id: WEB,
                name: "miner.1.x0"
            },
            Subject::Service {
                id: "svc1",
                name: "miner"
            }
        ]
    );
    // A name without the id names no service (names are reused).
    if let EventBody::Container(c) = &mut task.body {
        c.labels.retain(|l| l.key != "com.docker.swarm.service.id");
    }
    let mut n = 0;
    for_each_subject(&task, |_| n += 1);
    assert_eq!(n, 1);
}
