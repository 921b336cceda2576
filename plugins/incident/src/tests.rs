use super::*;

fn fe(
    id: &str,
    plugin: &str,
    rule: &str,
    severity: Severity,
    time: u64,
    entities: &[(EntityKind, &str, bool)],
) -> FindingEvent {
    let mut finding = Finding::builder(format!("{plugin}/{rule}"), severity).title(rule);
    let mut verdicts = Vec::new();
    for (kind, eid, verified) in entities {
        finding = finding.entity(*kind, *eid, "");
        verdicts.push(match kind {
            EntityKind::Container | EntityKind::Pod if *verified => EntityVerdict::Verified,
            EntityKind::Container | EntityKind::Pod => EntityVerdict::Unverified,
            _ => EntityVerdict::NotChecked,
        });
    }
    FindingEvent {
        id: id.into(),
        plugin: plugin.into(),
        plugin_version: "0.1.0".into(),
        time,
        node: "n1".into(),
        depth: 0,
        finding: finding.build(),
        verdicts,
    }
}

fn evidence<'a>(f: &'a Finding, key: &str) -> Vec<&'a str> {
    f.evidence
        .iter()
        .filter(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
        .collect()
}

const S: u64 = 1_000_000_000;
const C: (EntityKind, &str, bool) = (EntityKind::Container, "c1", true);
const N: (EntityKind, &str, bool) = (EntityKind::Node, "n1", true);

#[test]
fn three_plugins_about_one_container_are_one_incident_updated_not_repeated() {
    let mut d = IncidentDetector::default();
    assert!(
        d.on_findings(&[fe(
            "f1",
            "container-escape",
            "host-network",
            Severity::High,
            S,
            &[C, N]
        )])
        .is_empty(),
        "one plugin is no incident"
    );
    let first = d.on_findings(&[fe(
        "f2",
        "suspicious-egress",
        "threat-intel",
        Severity::High,
        2 * S,
        &[C, (EntityKind::Address, "203.0.113.9", false), N],
    )]);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].rule_id, RULE);
    assert_eq!(first[0].event_ids, ["f1", "f2"]);
    assert_eq!(evidence(&first[0], "revision"), ["1"]);
    // The same finding again: no growth, no report.
    assert!(
        d.on_findings(&[fe(
            "f2",
            "suspicious-egress",
            "threat-intel",
            Severity::High,
            3 * S,
            &[C, (EntityKind::Address, "203.0.113.9", false), N]
        )])
        .is_empty()
    );
    // A file change on the node joins through the node.
    let second = d.on_findings(&[fe(
        "f3",
        "runtime-tamper",
        "runtime-binary",
        Severity::Critical,
        4 * S,
        &[(EntityKind::File, "/usr/bin/runc", false), N],
    )]);
    assert_eq!(second.len(), 1);
    let f = &second[0];
    assert_eq!(f.event_ids, ["f1", "f2", "f3"]);
    assert_eq!(
        evidence(f, "incident-id"),
        evidence(&first[0], "incident-id"),
        "a stable incident id"
    );
    assert_eq!(evidence(f, "revision"), ["2"]);
    assert_eq!(evidence(f, "score"), ["34"]);
    assert_eq!(f.severity, Severity::Critical);
    let timeline: Vec<&str> = f
        .evidence
        .iter()
        .filter(|kv| kv.key.starts_with("timeline."))
        .map(|kv| kv.value.as_str())
        .collect();
    assert_eq!(timeline.len(), 3);
    assert!(
        timeline[0].contains("container-escape/host-network"),
        "{timeline:?}"
    );
    assert!(
        timeline[2].contains("runtime-tamper/runtime-binary"),
        "{timeline:?}"
    );
    assert!(
        f.entities
            .iter()
            .any(|e| e.kind == EntityKind::Container && e.id == "c1")
    );
}

#[test]
fn unverified_containers_do_not_group_and_windows_close() {
    let mut d = IncidentDetector::with_config(
        Config::from_json(r#"{"group_by":["container"],"window_secs":10}"#).unwrap(),
    );
    d.on_findings(&[fe("f1", "a", "r", Severity::High, S, &[C])]);
    let forged = (EntityKind::Container, "c1", false);
    assert!(
        d.on_findings(&[fe("f2", "b", "r", Severity::High, 2 * S, &[forged])])
            .is_empty(),
        "an unverified container joins nothing"
    );
    assert!(
        d.on_findings(&[fe("f3", "b", "r", Severity::High, 30 * S, &[C])])
            .is_empty(),
        "the window closed"
    );
    assert_eq!(
        d.on_findings(&[fe("f4", "c", "r", Severity::Low, 31 * S, &[C])])
            .len(),
        1
    );
}

#[test]
fn settings_are_checked_with_every_problem() {
    let e = Config::from_json(r#"{"window_secs":0,"min_plugins":1,"group_by":["container","cluster","container"],"colour":1}"#).unwrap_err();
    let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"colour"), "{paths:?}");
    let e2 = Config::from_json(
        r#"{"window_secs":0,"min_plugins":1,"group_by":["container","cluster","container"]}"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = e2.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["window_secs", "min_plugins", "group_by[1]", "group_by[2]"]
    );
}

#[test]
fn describes_itself_with_no_event_kind() {
    let info = IncidentDetector::describe();
    assert_eq!(info.name, "incident");
    assert!(info.subscribes.is_empty());
}

#[test]
fn findings_about_one_swarm_service_are_one_incident() {
    let mut d = IncidentDetector::default();
    let with = |mut fe: FindingEvent, key: &str, value: &str| {
        fe.finding.evidence.push(KeyValue::new(key, value));
        fe
    };
    let image = (EntityKind::Image, "shop/web:1", false);
    let escape = with(
        fe(
            "f1",
            "container-escape",
            "swarm-service",
            Severity::High,
            S,
            &[image],
        ),
        "service",
        "web",
    );
    assert!(d.on_findings(&[escape]).is_empty());
    // Another node, another image: only the service ties them.
    let churn = with(
        fe(
            "f2",
            "container-churn",
            "spike",
            Severity::Medium,
            2 * S,
            &[(EntityKind::Node, "n2", false)],
        ),
        "scope",
        "service:web",
    );
    let found = d.on_findings(&[churn]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(evidence(&found[0], "grouped-by"), ["service:web"]);
    assert_eq!(evidence(&found[0], "findings"), ["2"]);
    // Another service is another story.
    let other = with(
        fe(
            "f3",
            "monitoring-tamper",
            "global-service-runtime-mount",
            Severity::High,
            3 * S,
            &[],
        ),
        "service",
        "db",
    );
    assert!(d.on_findings(&[other]).is_empty());
}
