//! Subscriptions (WIT 0.1.2) through the real `vigil` binary: a plugin never
//! receives what its `subscriptions` export excludes, receives Kubernetes
//! events without their pod spec when it says it does not read it, and a
//! bad subscription refuses the plugin, naming the problem. The probe
//! (`tests/plugins/subscription-probe`) reports every event it receives.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::vigil;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::hostile_plugin;
use vigil_test_support::output::stdout_lines;

const EVENTS: &str = r#"{"id":"c-start","time":1,"body":{"kind":"container","action":"start","id":"c1","name":"web"}}
{"id":"c-die","time":2,"body":{"kind":"container","action":"die","id":"c1","name":"web","exit_code":0}}
{"id":"k-pod","time":3,"body":{"kind":"kubernetes","verb":"create","resource":"pods","namespace":"default","name":"p","stage":"ResponseComplete","pod":{"host_network":true,"containers":[]}}}
{"id":"k-received","time":4,"body":{"kind":"kubernetes","verb":"create","resource":"pods","namespace":"default","name":"p","stage":"RequestReceived"}}
{"id":"k-secret","time":5,"body":{"kind":"kubernetes","verb":"get","resource":"secrets","namespace":"default","name":"s","stage":"ResponseComplete"}}
{"id":"k-watch","time":6,"body":{"kind":"kubernetes","verb":"added","resource":"pods","namespace":"default","name":"p","pod":{"containers":[]}}}
{"id":"f-manifest","time":7,"body":{"kind":"file","path":"/etc/kubernetes/manifests/x.yaml","change":"created"}}
{"id":"f-tmp","time":8,"body":{"kind":"file","path":"/tmp/x","change":"created"}}
"#;

fn setup(dir: &Path, settings: &str) -> (PathBuf, PathBuf, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        hostile_plugin("subscription-probe"),
        plugins.join("subscription-probe.wasm"),
    )
    .unwrap();
    let settings_file = dir.join("probe.json");
    std::fs::write(&settings_file, settings).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, EVENTS).unwrap();
    (plugins, settings_file, events)
}

fn replay(dir: &Path, settings: &str) -> std::process::Output {
    let (plugins, settings_file, events) = setup(dir, settings);
    vigil()
        .args([
            "replay",
            "--no-builtin",
            "--format",
            "vigil",
            "--plugin-dir",
        ])
        .arg(&plugins)
        .arg("--plugin-settings")
        .arg(format!("subscription-probe={}", settings_file.display()))
        .arg(&events)
        .output()
        .unwrap()
}

/// What the probe received: event id → whether its pod spec came along.
fn received(out: &std::process::Output) -> BTreeMap<String, String> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_lines(out)
        .iter()
        .filter(|f| f["rule_id"] == "subscription-probe/received")
        .map(|f| {
            (
                f["event_ids"][0].as_str().unwrap().to_owned(),
                f["evidence"]["pod"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_plugin_never_receives_what_its_subscription_excludes() {
    let dir = TempDir::new("subs-filtered");
    let out = replay(
        &dir,
        r#"{"container_actions": ["start"],
            "kubernetes": {"resources": ["pods"], "verbs": ["create", "added"],
                           "stages": ["ResponseComplete", ""], "pod_spec": "unused"},
            "file_prefixes": ["/etc/kubernetes/"]}"#,
    );
    assert_eq!(
        received(&out),
        map(&[
            ("c-start", "-"),
            ("f-manifest", "-"),
            // Delivered, but without the pod spec it does not read.
            ("k-pod", "none"),
            ("k-watch", "none"),
        ])
    );
}

#[test]
fn pod_spec_required_keeps_only_events_with_one() {
    let dir = TempDir::new("subs-pod");
    let out = replay(&dir, r#"{"kubernetes": {"pod_spec": "required"}}"#);
    // No filter for containers and files: every one of them.
    assert_eq!(
        received(&out),
        map(&[
            ("c-die", "-"),
            ("c-start", "-"),
            ("f-manifest", "-"),
            ("f-tmp", "-"),
            ("k-pod", "some"),
            ("k-watch", "some"),
        ])
    );
}

#[test]
fn without_filters_a_plugin_receives_every_event_of_its_kinds() {
    let dir = TempDir::new("subs-all");
    let got = received(&replay(&dir, "{}"));
    let ids: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "c-die",
            "c-start",
            "f-manifest",
            "f-tmp",
            "k-pod",
            "k-received",
            "k-secret",
            "k-watch"
        ]
    );
    assert_eq!(got["k-pod"], "some");
}

#[test]
fn an_invalid_subscription_refuses_the_plugin_naming_the_problem() {
    let dir = TempDir::new("subs-bad");
    let out = replay(
        &dir,
        r#"{"kubernetes": {"resources": ["pod"], "verbs": ["crate"]},
            "file_prefixes": ["etc/"]}"#,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    for needle in [
        "plugin subscription-probe refused its own subscriptions: invalid subscriptions: ",
        "kubernetes.resources[0]: unknown resource \"pod\": resources are plural (pods)",
        "kubernetes.verbs[0]: unknown verb \"crate\"",
        "file.path-prefixes[0]: \"etc/\" is not an absolute path",
    ] {
        assert!(stderr.contains(needle), "{needle} in {stderr}");
    }
    // Said once, not repeated by the error chain.
    assert_eq!(stderr.matches("unknown verb").count(), 1, "{stderr}");
}
