use super::*;

const CHURN: ChurnRule = ChurnRule {
    enabled: true,
    window_secs: 300,
    warmup_windows: 12,
    z_threshold: 4.0,
    min_count: 10,
    min_bucket_samples: 3,
};

const RULES: Rules = Rules {
    missed_heartbeats: 3,
    remote_min_nodes: 2,
    churn: CHURN,
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
        boot: 1,
        seq: 1,
        counters: HeartbeatCounters::default(),
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
    p.heartbeat(hb("a", "d1"), 10_000, 1, RULES);
    p.heartbeat(hb("b", "d1"), 10_000, 2, RULES);
    assert!(p.check(12_900, 0, RULES).is_empty());
    p.heartbeat(hb("b", "d1"), 12_000, 3, RULES);
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
    r.heartbeat(hb("a", "d1"), 10_000, 1, RULES);
    assert!(r.check(13_100, 12_000, RULES).is_empty());
    assert_eq!(
        rules_of(&r.check(15_100, 12_000, RULES)),
        ["fleet/node-silent"]
    );
    // The same silence seen by another instance is the same finding (same id).
    let mut q = Picture::default();
    q.heartbeat(hb("a", "d1"), 10_000, 1, RULES);
    let again = q.check(13_100, 0, RULES);
    let id = |f: &Finding| FindingRecord::new(f.clone(), "fleet", "v", "x", 0).id;
    assert_eq!(id(&again[0]), id(&out[0]));
}

#[test]
fn an_older_heartbeat_does_not_roll_a_node_back() {
    let mut p = Picture::default();
    p.heartbeat(hb("a", "d1"), 20_000, 5, RULES);
    p.heartbeat(hb("a", "d1"), 10_000, 1, RULES);
    assert_eq!(p.nodes["a"].last_seq, 5);
}

#[test]
fn the_node_whose_digest_differs_from_the_majority_is_reported() {
    let mut p = Picture::default();
    p.heartbeat(hb("a", "d1"), 1_000, 1, RULES);
    p.heartbeat(hb("b", "d1"), 1_000, 2, RULES);
    p.heartbeat(hb("c", "d2"), 1_000, 3, RULES);
    let out = p.check(1_500, 0, RULES);
    assert_eq!(rules_of(&out), ["fleet/plugin-digest-differs"]);
    assert_eq!(out[0].entities[0].id, "c");
    assert_eq!(p.digest_differs["c"], ["container-escape"]);
    // Reported when it starts, not again at every check...
    assert!(p.check(1_600, 0, RULES).is_empty());
    assert_eq!(p.digest_differs["c"], ["container-escape"]);
    // ...but again for another digest.
    p.heartbeat(hb("c", "d3"), 1_700, 4, RULES);
    let out = p.check(1_800, 0, RULES);
    assert_eq!(rules_of(&out), ["fleet/plugin-digest-differs"]);
}

#[test]
fn no_majority_no_verdict() {
    let mut p = Picture::default();
    p.heartbeat(hb("a", "d1"), 1_000, 1, RULES);
    p.heartbeat(hb("b", "d2"), 1_000, 2, RULES);
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

#[test]
fn a_heartbeat_body_must_name_the_node_of_its_subject() {
    assert!(subject_names("n1", "n1"));
    // `vigil run` turns its node name into one subject token.
    assert!(subject_names("ip-10_0_0_1", "ip-10.0.0.1"));
    assert!(!subject_names("n1", "n3"));
    assert!(!subject_names("n1", "n1.x"));
    assert!(!subject_names("n1", ""));
}

/// A heartbeat of `node` (run `boot`, number `seq`) saying it has seen
/// `created` containers created since it booted.
fn churn_hb(node: &str, boot: u64, seq: u64, created: u64) -> Heartbeat {
    Heartbeat {
        node: node.into(),
        version: "0.1.0".into(),
        interval_ms: 60_000,
        plugins: Vec::new(),
        sources: BTreeMap::new(),
        boot,
        seq,
        counters: HeartbeatCounters {
            containers_created: Some(created),
            other: BTreeMap::new(),
        },
    }
}

/// Issue 13's case: 20 nodes start 2 containers each within one window.
/// Each node's 2 is far under its own threshold (the container-churn
/// plugin's default `min_count` is 10), but the fleet's sum of 40 against
/// its baseline of about 2 per window is a spike, reported once.
#[test]
fn twenty_nodes_with_two_containers_each_are_a_fleet_spike() {
    // 2025-11-26 10:00 UTC, on a window boundary; a heartbeat a minute.
    let t0: u64 = 1_764_151_200_000;
    let minute = 60_000;
    let mut p = Picture::default();
    let mut created = [0u64; 20];
    let mut found = Vec::new();
    let mut spike_from = None;
    // 13 quiet windows (the warmup is 12), then one burst window.
    for m in 0..14 * 5 {
        let now = t0 + m * minute;
        let window = m / 5;
        for (i, c) in (0u64..).zip(created.iter_mut()) {
            if window == 13 && m % 5 == 2 {
                *c += 2;
                spike_from.get_or_insert(now);
            } else if (i + m) % 50 == 0 {
                // The fleet's ordinary churn: about 2 containers a window.
                *c += 1;
            }
            found.extend(p.heartbeat(churn_hb(&format!("n{i:02}"), 7, m + 1, *c), now, m, RULES));
        }
        found.extend(p.check(now + 1, 0, RULES));
    }
    let spikes: Vec<_> = found
        .iter()
        .filter(|f| f.rule_id == "fleet/churn-spike")
        .collect();
    assert_eq!(spikes.len(), 1, "{found:#?}");
    let window = spike_from.unwrap() / 1000 / 300;
    assert_eq!(spikes[0].event_ids, [format!("churn-window:300:{window}")]);
    assert!(
        spikes[0].summary.contains("containers created on"),
        "{}",
        spikes[0].summary
    );
    assert_eq!(p.nodes["n00"].containers_created, Some(created[0]));
}

#[test]
fn a_node_s_counter_becomes_deltas() {
    let r = |boot, created, at_ms| Reading {
        boot,
        created,
        at_ms,
    };
    let w = 300_000;
    // The next heartbeat of the same run: the difference.
    assert_eq!(churn_delta(Some(r(1, 10, 0)), r(1, 13, 10_000), 5, w), 3);
    // A first reading of a node already running: only where deltas start.
    assert_eq!(churn_delta(None, r(1, 1_000, 0), 50, w), 0);
    // A node that just started (its first heartbeat): all of it.
    assert_eq!(churn_delta(None, r(1, 4, 0), 1, w), 4);
    assert_eq!(churn_delta(Some(r(1, 900, 0)), r(2, 5, 10_000), 1, w), 5);
    // Readings further apart than a window: when they happened is unknown.
    assert_eq!(churn_delta(Some(r(1, 10, 0)), r(1, 500, w + 1), 9, w), 0);
    // A counter that went back (not the same run after all) counts nothing.
    assert_eq!(churn_delta(Some(r(1, 10, 0)), r(1, 4, 10_000), 9, w), 0);
}

#[test]
fn a_heartbeat_without_the_counter_is_not_churn() {
    let mut p = Picture::default();
    let mut old = churn_hb("a", 1, 1, 0);
    old.counters.containers_created = None;
    assert!(p.heartbeat(old, 1_000, 1, RULES).is_empty());
    assert_eq!(p.nodes["a"].containers_created, None);
}
