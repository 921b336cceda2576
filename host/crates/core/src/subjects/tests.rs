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
        id: "e".into(),
        time: 1,
        node: "n".into(),
        source: source.into(),
        body,
    }
}

fn container(id: &str, name: &str) -> Event {
    event(
        "docker",
        EventBody::Container(ContainerEvent {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }),
    )
}

fn pod_event(source: &str, ns: &str, name: &str, uid: &str) -> Event {
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
    )
}

fn finding(entities: &[(EntityKind, &str, &str)]) -> Finding {
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
        event_ids: Vec::new(),
    }
}

fn one(w: &mut SubjectWindow, kind: EntityKind, id: &str, name: &str) -> Verdict {
    w.check(&finding(&[(kind, id, name)])).remove(0)
}

fn verified(id: &str, name: &str) -> Verdict {
    Verdict::Verified {
        id: id.into(),
        name: name.into(),
        uid: None,
    }
}

#[test]
fn a_shown_container_verifies_by_id_prefix_or_name_and_gets_its_full_id() {
    let mut w = SubjectWindow::default();
    w.record(&[container(WEB, "/web"), container(DB, "db")]);
    assert_eq!(
        one(&mut w, EntityKind::Container, WEB, ""),
        verified(WEB, "web")
    );
    // The name as shown replaces the one the plugin gave.
    assert_eq!(
        one(&mut w, EntityKind::Container, WEB, "vigil"),
        verified(WEB, "web")
    );
    assert_eq!(
        one(&mut w, EntityKind::Container, "web", ""),
        verified(WEB, "web")
    );
    assert_eq!(
        one(&mut w, EntityKind::Container, "/db", ""),
        verified(DB, "db")
    );
    assert_eq!(
        one(&mut w, EntityKind::Container, "", "db"),
        verified(DB, "db")
    );
    assert_eq!(
        one(&mut w, EntityKind::Container, &WEB[..16], ""),
        verified(WEB, "web")
    );
    assert_eq!(
        one(&mut w, EntityKind::Container, &WEB[..16].to_uppercase(), ""),
        verified(WEB, "web")
    );
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
            one(&mut w, EntityKind::Container, id, name),
            Verdict::Unverified,
            "{id:?}/{name:?}"
        );
    }
    // Two containers shown under one name (removed and created again): ambiguous.
    let other = "ab".repeat(32);
    w.record(&[container(&other, "web")]);
    assert_eq!(
        one(&mut w, EntityKind::Container, "web", ""),
        Verdict::Unverified
    );
    // By id, both are still known.
    assert_eq!(
        one(&mut w, EntityKind::Container, &other, ""),
        verified(&other, "web")
    );
    // Kinds the host does not check.
    assert_eq!(
        one(&mut w, EntityKind::Image, "nginx", ""),
        Verdict::NotChecked
    );
}

#[test]
fn network_and_kubelet_labels_show_containers_and_pods() {
    let mut w = SubjectWindow::default();
    let flow = event(
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
    );
    let mut kubelet = container(DB, "k8s_db_db-0_shop_u-9_0");
    if let EventBody::Container(c) = &mut kubelet.body {
        c.labels = vec![
            KeyValue::new("io.kubernetes.pod.namespace", "shop"),
            KeyValue::new("io.kubernetes.pod.name", "db-0"),
            KeyValue::new("io.kubernetes.pod.uid", "u-9"),
        ];
    }
    w.record(&[flow, kubelet]);
    assert_eq!(
        one(&mut w, EntityKind::Container, "web", ""),
        verified(WEB, "web")
    );
    assert_eq!(
        one(&mut w, EntityKind::Pod, "shop/web-1", ""),
        Verdict::Verified {
            id: "shop/web-1".into(),
            name: String::new(),
            uid: None
        }
    );
    assert_eq!(
        one(&mut w, EntityKind::Pod, "shop/db-0", ""),
        Verdict::Verified {
            id: "shop/db-0".into(),
            name: String::new(),
            uid: Some("u-9".into())
        }
    );
    assert_eq!(
        one(&mut w, EntityKind::Pod, "shop/db-1", ""),
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
    // An audit event's `audit-id` is the request's, not the pod's uid.
    assert_eq!(
        one(&mut w, EntityKind::Pod, "default/audited", ""),
        Verdict::Verified {
            id: "default/audited".into(),
            name: String::new(),
            uid: None
        }
    );
    assert_eq!(
        one(&mut w, EntityKind::Pod, "default/watched", ""),
        Verdict::Verified {
            id: "default/watched".into(),
            name: String::new(),
            uid: Some("uid-1".into())
        }
    );
    assert_eq!(
        one(&mut w, EntityKind::Pod, "kube-system/watched", ""),
        Verdict::Unverified
    );
    // Events about other resources show no pod.
    let mut deploy = pod_event("k8s-audit", "default", "web", "");
    if let EventBody::Kubernetes(k) = &mut deploy.body {
        k.resource = "deployments".into();
    }
    w.record(&[deploy]);
    assert_eq!(
        one(&mut w, EntityKind::Pod, "default/web", ""),
        Verdict::Unverified
    );
}

#[test]
fn subjects_stay_for_one_to_two_generations_after_they_were_last_shown() {
    let ttl = Duration::from_secs(60);
    let mut w = SubjectWindow::new(ttl, 100);
    let t0 = Instant::now();
    w.record_at(&[container(WEB, "web")], t0);
    let f = finding(&[(EntityKind::Container, "web", "")]);
    // A tick finding a while later still verifies …
    assert_eq!(
        w.check_at(&f, t0 + ttl + Duration::from_secs(30))[0],
        verified(WEB, "web")
    );
    // … shown again, it moves to the current generation and lives on …
    w.record_at(&[container(WEB, "web")], t0 + ttl + Duration::from_secs(31));
    assert_eq!(
        w.check_at(&f, t0 + ttl * 2 + Duration::from_secs(1))[0],
        verified(WEB, "web")
    );
    // … and once not shown for two generations it is gone.
    assert_eq!(w.check_at(&f, t0 + ttl * 5)[0], Verdict::Unverified);
    assert!(w.is_empty());
}

#[test]
fn memory_is_bounded_by_the_generation_cap() {
    let mut w = SubjectWindow::new(Duration::from_secs(3600), 10);
    let batch: Vec<Event> = (0..1000)
        .map(|i| container(&format!("{i:064x}"), &format!("c{i}")))
        .collect();
    w.record(&batch);
    let (containers, _) = w.len();
    assert!(containers <= 20, "{containers} containers held");
    // The most recent ones are still known.
    assert_eq!(
        one(&mut w, EntityKind::Container, "c999", ""),
        verified(&format!("{:064x}", 999), "c999")
    );
    assert_eq!(
        one(&mut w, EntityKind::Container, "c0", ""),
        Verdict::Unverified
    );
}
