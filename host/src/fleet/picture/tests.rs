use super::*;

const RULES: Rules = Rules {
    missed_heartbeats: 3,
    remote_min_nodes: 2,
};

fn hb(node: &str, digest: &str) -> Heartbeat {
    Heartbeat {
        node: node.into(),
        version: "0.1.0".into(),
        interval_ms: 1000,
        plugins: vec![PluginDigest {
            name: "container-escape".into(),
            version: "0.1.0".into(),
            digest: digest.into(),
        }],
        sources: BTreeMap::from([("docker".into(), false), ("network".into(), true)]),
    }
}

fn record(node: &str, addr: &str) -> FindingRecord {
    let f = Finding {
        rule_id: "egress/intel-match".into(),
        title: "t".into(),
        severity: Severity::High,
        summary: "s".into(),
        techniques: vec![],
        entities: vec![Entity {
            kind: EntityKind::Address,
            id: addr.into(),
            name: String::new(),
        }],
        evidence: vec![],
        event_ids: vec![format!("{node}-e1")],
    };
    FindingRecord::new(f, "egress", "0.1.0", node, 0)
}

fn rules_of(fs: &[Finding]) -> Vec<&str> {
    fs.iter().map(|f| f.rule_id.as_str()).collect()
}

#[test]
fn a_node_past_its_missed_heartbeats_is_silent_once() {
    let mut p = Picture::default();
    p.heartbeat(hb("a", "d1"), 10_000, 1);
    p.heartbeat(hb("b", "d1"), 10_000, 2);
    assert!(p.check(12_900, 0, RULES).is_empty());
    p.heartbeat(hb("b", "d1"), 12_000, 3);
    let out = p.check(13_100, 0, RULES);
    assert_eq!(rules_of(&out), ["fleet/node-silent"]);
    assert_eq!(out[0].entities[0].id, "a");
    assert!(
        p.check(14_000, 0, RULES).is_empty(),
        "reported once per silence"
    );
    assert_eq!(p.nodes["a"].sources_off, ["docker"]);
    // Not silent over a time the fleet was not listening.
    let mut r = Picture::default();
    r.heartbeat(hb("a", "d1"), 10_000, 1);
    assert!(r.check(13_100, 12_000, RULES).is_empty());
    assert_eq!(
        rules_of(&r.check(15_100, 12_000, RULES)),
        ["fleet/node-silent"]
    );
    // The same silence seen by another instance is the same finding (same id).
    let mut q = Picture::default();
    q.heartbeat(hb("a", "d1"), 10_000, 1);
    let again = q.check(13_100, 0, RULES);
    let id = |f: &Finding| FindingRecord::new(f.clone(), "fleet", "v", "x", 0).id;
    assert_eq!(id(&again[0]), id(&out[0]));
}

#[test]
fn an_older_heartbeat_does_not_roll_a_node_back() {
    let mut p = Picture::default();
    p.heartbeat(hb("a", "d1"), 20_000, 5);
    p.heartbeat(hb("a", "d1"), 10_000, 1);
    assert_eq!(p.nodes["a"].last_seq, 5);
}

#[test]
fn the_node_whose_digest_differs_from_the_majority_is_reported() {
    let mut p = Picture::default();
    p.heartbeat(hb("a", "d1"), 1_000, 1);
    p.heartbeat(hb("b", "d1"), 1_000, 2);
    p.heartbeat(hb("c", "d2"), 1_000, 3);
    let out = p.check(1_500, 0, RULES);
    assert_eq!(rules_of(&out), ["fleet/plugin-digest-differs"]);
    assert_eq!(out[0].entities[0].id, "c");
    assert_eq!(p.digest_differs["c"], ["container-escape"]);
}

#[test]
fn no_majority_no_verdict() {
    let mut p = Picture::default();
    p.heartbeat(hb("a", "d1"), 1_000, 1);
    p.heartbeat(hb("b", "d2"), 1_000, 2);
    assert!(p.check(1_500, 0, RULES).is_empty());
}

#[test]
fn a_remote_flagged_on_enough_nodes_is_reported_once() {
    let mut p = Picture::default();
    assert!(p.finding(&record("a", "203.0.113.9"), RULES).is_empty());
    assert!(p.finding(&record("a", "203.0.113.9"), RULES).is_empty());
    let out = p.finding(&record("b", "203.0.113.9"), RULES);
    assert_eq!(rules_of(&out), ["fleet/remote-on-nodes"]);
    assert!(p.finding(&record("c", "203.0.113.9"), RULES).is_empty());
    assert_eq!(p.nodes["a"].findings, 2);
}
