//! The exposition's shape: HELP and TYPE on every family, counters named
//! `_total`, cumulative histograms, bounded and escaped rule series.

use std::collections::BTreeMap;
use std::time::Duration;

use super::labeled::MAX_RULE_SERIES;
use super::*;

/// A registry with one series in every family.
fn populated() -> Registry {
    let r = Registry::default();
    let p = r.plugin("escape");
    PluginMetrics::add(&p.counters.events, 3);
    p.latency.observe(Duration::from_micros(80));
    r.source("docker");
    let o = r.delivery.output("stdout");
    o.latency.observe(Duration::from_millis(2));
    r.delivery.spool_dropped.add(&["drop-oldest"], 1);
    r.delivery.spool_orphaned.add(&["gone"], 1);
    r.delivery.suppressed.add(&["r", "s"], 1);
    r.delivery.deduplicated.add(&["r"], 1);
    r.delivery.dedup_summaries.add(&["r"], 1);
    r.delivery.monitor.add(&["r"], 1);
    r.count_finding("escape", "escape/privileged");
    r
}

#[test]
fn findings_per_rule_are_bounded_and_escaped() {
    let r = Registry::default();
    r.count_finding("p", "a\"b");
    r.count_finding("p", "a\"b");
    for i in 0..MAX_RULE_SERIES + 5 {
        r.count_finding("q", &format!("r{i}"));
    }
    let text = r.render();
    assert!(
        text.contains("vigil_findings_total{plugin=\"p\",rule=\"a\\\"b\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("vigil_findings_total{plugin=\"q\",rule=\"(other)\"} 6\n"),
        "{text}"
    );
    assert_eq!(
        text.matches("vigil_findings_total{").count(),
        MAX_RULE_SERIES + 1
    );
    assert!(text.contains("\nvigil_reloads_ok_total 0\n"), "{text}");
}

/// Every sample belongs to a family declared once, with a non-empty HELP
/// and a TYPE, and is named as its type requires (what `promtool check
/// metrics` checks too; the integration test runs promtool itself).
#[test]
fn every_family_has_help_and_type() {
    let text = populated().render();
    let mut help: BTreeMap<&str, &str> = BTreeMap::new();
    let mut kind: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, h) = rest.split_once(' ').unwrap();
            assert!(!h.trim().is_empty(), "empty HELP: {line}");
            assert!(help.insert(name, h).is_none(), "HELP twice: {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, k) = rest.split_once(' ').unwrap();
            assert!(help.contains_key(name), "TYPE before HELP: {name}");
            assert!(kind.insert(name, k).is_none(), "TYPE twice: {name}");
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    let f = name.strip_suffix(s)?;
                    (kind.get(f) == Some(&"histogram")).then_some(f)
                })
                .unwrap_or(name);
            let k = kind
                .get(family)
                .unwrap_or_else(|| panic!("no TYPE for {line}"));
            assert_eq!(
                *k == "counter",
                family.ends_with("_total"),
                "counter iff _total: {line}"
            );
        }
    }
    assert!(kind.len() >= 70, "{} families:\n{text}", kind.len());
    assert_eq!(kind["vigil_plugin_call_seconds"], "histogram");
    assert_eq!(kind["vigil_output_latency_seconds"], "histogram");
    assert_eq!(kind["vigil_ready"], "gauge");
    assert_eq!(kind["vigil_spool_depth"], "gauge");
    assert_eq!(kind["vigil_plugin_events_total"], "counter");
    assert_eq!(
        help["vigil_plugin_events_total"],
        "Events handed to the plugin."
    );
}

#[test]
fn histograms_are_cumulative_with_inf_sum_and_count() {
    let r = Registry::default();
    let p = r.plugin("p");
    for us in [40, 80, 80, 3_000, 400_000] {
        p.latency.observe(Duration::from_micros(us));
    }
    let text = r.render();
    for want in [
        "vigil_plugin_call_seconds_bucket{plugin=\"p\",le=\"5e-05\"} 1",
        "vigil_plugin_call_seconds_bucket{plugin=\"p\",le=\"0.0001\"} 3",
        "vigil_plugin_call_seconds_bucket{plugin=\"p\",le=\"0.0025\"} 3",
        "vigil_plugin_call_seconds_bucket{plugin=\"p\",le=\"0.005\"} 4",
        "vigil_plugin_call_seconds_bucket{plugin=\"p\",le=\"0.25\"} 4",
        "vigil_plugin_call_seconds_bucket{plugin=\"p\",le=\"+Inf\"} 5",
        "vigil_plugin_call_seconds_sum{plugin=\"p\"} 0.4032",
        "vigil_plugin_call_seconds_count{plugin=\"p\"} 5",
    ] {
        assert!(text.lines().any(|l| l == want), "no {want:?} in\n{text}");
    }
}

#[test]
fn labelled_families_appear_only_with_a_series() {
    let r = Registry::default();
    let text = r.render();
    assert!(!text.contains("vigil_spool_dropped_total"), "{text}");
    assert!(!text.contains("vigil_plugin_events_total"), "{text}");
    r.delivery.spool_dropped.add(&["drop-newest"], 2);
    assert_eq!(r.delivery.spool_dropped.get(&["drop-newest"]), 2);
    let text = r.render();
    assert!(
        text.contains("\nvigil_spool_dropped_total{policy=\"drop-newest\"} 2\n"),
        "{text}"
    );
}
