//! `vigil plugin test` and `vigil plugin inspect` through the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::vigil;
use serde_json::Value;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::{falco, hostile_dir, root};
use vigil_test_support::output::{assert_exit, rules, stdout_json, stdout_lines};

fn container_escape_wasm() -> PathBuf {
    // Built by host/crates/runtime/build.rs before this test binary exists.
    let p = root().join("target/wasm/wasm32-unknown-unknown/release/container_escape.wasm");
    assert!(
        p.exists(),
        "{} is built by host/crates/runtime/build.rs",
        p.display()
    );
    p
}

/// `vigil plugin inspect WASM`, its compile cache in `cache`: its exit
/// status and its JSON report.
fn inspect(cache: &Path, wasm: &Path) -> (Output, Value) {
    let out = vigil()
        .env("XDG_CACHE_HOME", cache)
        .args(["plugin", "inspect"])
        .arg(wasm)
        .output()
        .unwrap();
    let report = stdout_json(&out);
    (out, report)
}

/// [`inspect`] of a plugin that loads (exit status 0): its report.
fn inspect_ok(cache: &Path, wasm: &Path) -> Value {
    let (out, report) = inspect(cache, wasm);
    assert_exit(&out, 0);
    report
}

/// The names of the functions a plugin imports, from its [`inspect`]
/// report.
fn imports(report: &Value) -> Vec<&str> {
    report["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect()
}

/// The current WIT version (`0.1.5`), whose interfaces plugins built with
/// the SDK import.
/// Every interface the inspected plugin imports is at the current WIT version.
fn assert_current_imports(report: &Value) {
    let suffix = format!("@{}", current_version());
    assert!(
        imports(report).iter().all(|i| i.ends_with(&suffix)),
        "{report}"
    );
}

fn current_version() -> &'static str {
    vigil::WIT_PACKAGE
        .rsplit_once('@')
        .map_or(vigil::WIT_PACKAGE, |(_, v)| v)
}

/// `vigil plugin test container_escape.wasm --events create_nginx_pod_privileged.json EXTRA…`
fn plugin_test(cache: &Path, extra: &[&OsStr]) -> Output {
    vigil()
        .env("XDG_CACHE_HOME", cache)
        .args(["plugin", "test"])
        .arg(container_escape_wasm())
        .arg("--events")
        .arg(falco("create_nginx_pod_privileged.json"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn plugin_test_passes_when_findings_match_and_diffs_when_not() {
    let dir = TempDir::new("plugin-cli-expect");
    let good = dir.join("good.jsonl");
    std::fs::write(&good, "{\"rule_id\":\"container-escape/privileged\",\"severity\":\"critical\",\"evidence\":{\"container\":\"nginx\"}}\n").unwrap();
    let out = plugin_test(&dir, &["--expect".as_ref(), good.as_os_str()]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok: 1 findings as expected"), "{stdout}");

    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"rule_id\":\"container-escape/host-network\",\"severity\":\"critical\"}\n{\"rule_id\":\"container-escape/privileged\"}\n").unwrap();
    let out = plugin_test(&dir, &["--expect".as_ref(), bad.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("finding #1: mismatch")
            && stdout.contains("- \"container-escape/host-network\"")
            && stdout.contains("+ \"container-escape/privileged\""),
        "{stdout}"
    );
    assert!(stdout.contains("finding #2: missing"), "{stdout}");
}

#[test]
fn plugin_test_applies_settings() {
    let dir = TempDir::new("plugin-cli-settings");
    let settings = dir.join("settings.json");
    std::fs::write(&settings, r#"{"allowlist":{"namespaces":["default"]}}"#).unwrap();
    let out = plugin_test(&dir, &["--settings".as_ref(), settings.as_os_str()]);
    assert_exit(&out, 0);
    assert!(
        out.stdout.is_empty(),
        "the allowlisted namespace is not reported: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    std::fs::write(&settings, r#"{"allowlist":{"namespaces":[7]},"bogus":1}"#).unwrap();
    let out = plugin_test(&dir, &["--settings".as_ref(), settings.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("refused its settings")
            && stderr.contains("bogus")
            && stderr.contains("allowlist.namespaces[0]"),
        "every problem is reported: {stderr}"
    );
}

#[test]
fn inspect_shows_description_imports_and_uses_the_cache() {
    let dir = TempDir::new("plugin-cli-inspect");
    let wasm = container_escape_wasm();
    let first = inspect_ok(&dir, &wasm);
    assert_eq!(first["describe"]["name"], "container-escape");
    assert_eq!(first["forbidden_imports"], serde_json::json!([]));
    assert!(
        imports(&first)
            .iter()
            .all(|i| i.starts_with("vigil:detector/"))
    );
    assert_eq!(first["from_cache"], false);
    assert_eq!(
        first["packed_batches"], true,
        "plugins built with the SDK take the packed fast path"
    );
    // The built-in declares what it reads (WIT 0.1.2), shown as data and
    // as one line per kind (and one for its Swarm filter, 0.1.3).
    let subs = &first["subscriptions"];
    assert_eq!(subs["declared"], true, "{subs}");
    assert_eq!(
        subs["filters"]["kubernetes"]["pod_spec"], "required",
        "{subs}"
    );
    assert_eq!(
        subs["summary"],
        serde_json::json!([
            "container: actions create, start, running, destroy",
            "kubernetes: subresources (none), ephemeralcontainers; verbs create, update, patch, added, \
             modified; stages (none), ResponseComplete; only with a pod spec",
            "services: objects service"
        ])
    );
    // It also reads Docker Swarm services (WIT 0.1.3), through its filter.
    assert_eq!(
        first["service_events"],
        serde_json::json!({"exported": true, "filter": {"objects": ["service"], "actions": []}}),
        "{first}"
    );
    let second = inspect_ok(&dir, &wasm);
    assert_eq!(second["from_cache"], true, "a restart does not recompile");
    assert_eq!(first["sha256"], second["sha256"]);
}

/// A fleet rule on heartbeats (WIT 0.1.3 `fleet`): the `fleet-probe`
/// fixture, which subscribes to no event kind and takes no findings, loads
/// and says it receives heartbeats.
#[test]
fn inspect_shows_a_fleet_rule_on_heartbeats() {
    let dir = TempDir::new("plugin-cli-inspect-fleet");
    let v = inspect_ok(&dir, &hostile_dir().join("fleet_probe.wasm"));
    assert_eq!(v["receives_heartbeats"], true, "{v}");
    assert_eq!(v["receives_findings"], false, "{v}");
    assert_eq!(v["describe"]["name"], "fleet-probe", "{v}");
    assert_current_imports(&v);
}

/// A plugin exporting process events (WIT 0.1.3): the built-in
/// runtime-tamper, whose filter names the binaries it judges.
#[test]
fn inspect_shows_the_process_subscription() {
    let dir = TempDir::new("plugin-cli-inspect-processes");
    let wasm = root().join("target/wasm/wasm32-unknown-unknown/release/runtime_tamper.wasm");
    let v = inspect_ok(&dir, &wasm);
    let processes = &v["process_events"];
    assert_eq!(processes["exported"], true, "{v}");
    assert_eq!(processes["filter"]["containers_only"], true, "{v}");
    // runtime-tamper's `container-write` asks for writes to watched files.
    assert_eq!(processes["filter"]["writes"], true, "{v}");
    let binaries: Vec<&str> = processes["filter"]["binaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(
        binaries.contains(&"sh") && binaries.contains(&"curl"),
        "{v}"
    );
    let summary = v["subscriptions"]["summary"].as_array().unwrap();
    let line = summary.last().unwrap().as_str().unwrap();
    assert!(
        line.starts_with("processes: binaries sh, bash,")
            && line.ends_with("; containers only; writes to watched files"),
        "{line}"
    );
    assert_eq!(v["service_events"]["exported"], false, "{v}");
    assert_eq!(
        v["receives_heartbeats"], false,
        "a detector is no fleet rule"
    );
    assert_current_imports(&v);
}

/// monitoring-tamper reads only what its rules judge (it used to take
/// every event, to learn the end of a replay from the events' times; WIT
/// 0.1.4's `clock.input-ended` tells it instead), and it imports the clock
/// of the current version.
#[test]
fn inspect_shows_monitoring_tampers_narrowed_subscription() {
    let dir = TempDir::new("plugin-cli-inspect-monitoring");
    let wasm = root().join("target/wasm/wasm32-unknown-unknown/release/monitoring_tamper.wasm");
    let v = inspect_ok(&dir, &wasm);
    assert_eq!(v["describe"]["name"], "monitoring-tamper", "{v}");
    assert_eq!(v["subscriptions"]["declared"], true, "{v}");
    assert_eq!(
        v["subscriptions"]["summary"],
        serde_json::json!([
            "container: actions stop, destroy, die, oom, pause, kill, other",
            "kubernetes: resources pods, daemonsets, deployments, statefulsets, replicasets, namespaces; \
             subresources (none); verbs delete, deletecollection; stages (none), ResponseComplete",
            "file: path prefixes /etc/kubernetes/audit",
            "services: objects service"
        ]),
        "{v}"
    );
    assert_eq!(
        v["subscriptions"]["filters"]["kubernetes"]["pod_spec"], "when-present",
        "a deleted pod's images may name an agent: {v}"
    );
    let clock = format!("vigil:detector/clock@{}", current_version());
    assert!(imports(&v).contains(&clock.as_str()), "{v}");
}

#[test]
fn inspect_names_forbidden_imports() {
    let dir = TempDir::new("plugin-cli-inspect-wasi");
    let (out, v) = inspect(&dir, &hostile_dir().join("hostile_wasi.wasm"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        v["forbidden_imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("wasi:cli/environment")),
        "{v}"
    );
}

/// WIT 0.1.1 only added the `packed-detector` world, 0.1.2 to 0.1.3 types,
/// worlds and optional exports, 0.1.4 a clock function (`input-ended`),
/// 0.1.5 the optional `packed-correlate` export: a plugin built for 0.1.0
/// still loads (its 0.1.0 imports link to the 0.1.5 host), receives every event of its kinds and runs through plain
/// `on-events`.
#[test]
fn a_plugin_built_for_wit_0_1_0_still_loads_and_runs() {
    let old = root().join("tests/data/plugins/container-escape-wit-0.1.0.wasm");
    let dir = TempDir::new("plugin-cli-wit-0.1.0");
    let v = inspect_ok(&dir, &old);
    assert_eq!(v["packed_batches"], false);
    // No `subscriptions` export: every event of its kinds, as before 0.1.2.
    assert_eq!(v["subscriptions"]["declared"], false, "{v}");
    assert_eq!(
        v["subscriptions"]["summary"],
        serde_json::json!(["container: every event", "kubernetes: every event"])
    );
    assert_eq!(
        v["service_events"],
        serde_json::json!({"exported": false, "filter": null}),
        "a 0.1.0 plugin has no `services` export"
    );
    assert_eq!(
        v["process_events"],
        serde_json::json!({"exported": false, "filter": null}),
        "a 0.1.0 plugin has no `processes` export"
    );
    assert!(imports(&v).iter().all(|i| i.ends_with("@0.1.0")), "{v}");

    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&old, plugins.join("container-escape.wasm")).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        r#"{"id":"e1","time":1,"body":{"kind":"container","action":"start","id":"c1","name":"web","security":{"network_mode":"host"}}}"#,
    )
    .unwrap();
    let out = vigil()
        .args([
            "replay",
            "--no-builtin",
            "--format",
            "vigil",
            "--plugin-dir",
        ])
        .arg(&plugins)
        .arg(&events)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let findings = stdout_lines(&out);
    assert_eq!(rules(&findings), ["container-escape/host-network"]);
}
