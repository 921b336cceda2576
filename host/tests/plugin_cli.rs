//! `vigil plugin test` and `vigil plugin inspect` through the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::path::PathBuf;

use common::vigil;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::{falco, hostile_dir, root};
use vigil_test_support::output::{rules, stdout_lines};

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

/// `vigil plugin test container_escape.wasm --events create_nginx_pod_privileged.json EXTRA…`
fn plugin_test(cache: &std::path::Path, extra: &[&std::ffi::OsStr]) -> std::process::Output {
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let run = || {
        let out = vigil()
            .env("XDG_CACHE_HOME", &dir)
            .args(["plugin", "inspect"])
            .arg(container_escape_wasm())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first["describe"]["name"], "container-escape");
    assert_eq!(first["forbidden_imports"], serde_json::json!([]));
    assert!(
        first["imports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.as_str().unwrap().starts_with("vigil:detector/"))
    );
    assert_eq!(first["from_cache"], false);
    assert_eq!(
        first["packed_batches"], true,
        "plugins built with the SDK take the packed fast path"
    );
    assert_eq!(
        first["service_events"], true,
        "plugins built with the SDK receive Docker Swarm events (WIT 0.1.2)"
    );
    let second = run();
    assert_eq!(second["from_cache"], true, "a restart does not recompile");
    assert_eq!(first["sha256"], second["sha256"]);
}

#[test]
fn inspect_names_forbidden_imports() {
    let dir = TempDir::new("plugin-cli-inspect-wasi");
    let out = vigil()
        .env("XDG_CACHE_HOME", &dir)
        .args(["plugin", "inspect"])
        .arg(hostile_dir().join("hostile_wasi.wasm"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["forbidden_imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("wasi:cli/environment")),
        "{v}"
    );
}

/// WIT 0.1.1 only added the `packed-detector` world: a plugin built for
/// 0.1.0 still loads (its 0.1.0 imports link to the 0.1.1 host) and runs
/// through plain `on-events`.
#[test]
fn a_plugin_built_for_wit_0_1_0_still_loads_and_runs() {
    let old = root().join("tests/data/plugins/container-escape-wit-0.1.0.wasm");
    let dir = TempDir::new("plugin-cli-wit-0.1.0");
    let out = vigil()
        .env("XDG_CACHE_HOME", &dir)
        .args(["plugin", "inspect"])
        .arg(&old)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packed_batches"], false);
    assert_eq!(
        v["service_events"], false,
        "a 0.1.0 plugin has no on-service-events"
    );
    assert!(
        v["imports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.as_str().unwrap().ends_with("@0.1.0")),
        "{v}"
    );

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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = stdout_lines(&out);
    assert_eq!(rules(&findings), ["container-escape/host-network"]);
}
