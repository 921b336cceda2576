//! End-to-end detector scenarios, as data: every `tests/scenarios/<plugin>/*.json`
//! is replayed through the real `vigil` binary with the built-in plugins, and
//! the named plugin's findings must match the scenario's expectation exactly
//! (same count, same order, each expected object a subset of the finding).
//!
//! A scenario file:
//! ```json
//! {
//!   "description": "why this case matters",
//!   "settings": { },                       // optional: the plugin's settings
//!   "intel": { "c2.txt": "203.0.113.0/24\n" }, // optional: threat-intel feed files (name: content)
//!   "events": [ { "time": 1, "body": { "kind": "container", … } } ],
//!   "expect": [ { "rule_id": "…", "severity": "high" } ],
//!   "others_silent": true                  // optional: no other plugin may report
//! }
//! ```
//! Events are Vigil event JSON (`vigil replay --format vigil`); `time` is
//! nanoseconds since the epoch. `"expect": []` asserts that nothing is found,
//! which is how the seed's false positives are pinned down. Every container
//! and pod entity of every finding must be `"verified": true`: a subject of
//! an event the finding cites.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::path::{Path, PathBuf};

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::root;
use vigil_test_support::output::stdout_lines;

fn scenario_files() -> Vec<(String, PathBuf)> {
    let dir = root().join("tests/scenarios");
    let mut out = Vec::new();
    for plugin in std::fs::read_dir(&dir).expect("tests/scenarios") {
        let plugin = plugin.unwrap().path();
        if !plugin.is_dir() {
            continue;
        }
        let name = plugin.file_name().unwrap().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&plugin).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                out.push((name.clone(), f));
            }
        }
    }
    out.sort();
    out
}

/// Runs one scenario; returns a description of every mismatch.
fn run_scenario(plugin: &str, path: &Path, tmp: &Path) -> Vec<String> {
    let label = path.strip_prefix(root()).unwrap_or(path).display();
    let text = std::fs::read_to_string(path).unwrap();
    let sc: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![format!("{label}: not JSON: {e}")],
    };
    let Some(events) = sc["events"].as_array() else {
        return vec![format!("{label}: `events` must be a list")];
    };
    let Some(expect) = sc["expect"].as_array() else {
        return vec![format!("{label}: `expect` must be a list")];
    };
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let events_file = tmp.join(format!("{plugin}-{stem}.jsonl"));
    let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&events_file, lines.join("\n") + "\n").unwrap();
    let mut cmd = vigil();
    cmd.args(["replay", "--format", "vigil"]);
    if let Some(settings) = sc.get("settings") {
        let sf = tmp.join(format!("{plugin}-{stem}.settings.json"));
        std::fs::write(&sf, settings.to_string()).unwrap();
        cmd.arg("--plugin-settings")
            .arg(format!("{plugin}={}", sf.display()));
    }
    if let Some(feeds) = sc.get("intel").and_then(Value::as_object) {
        let dir = tmp.join(format!("{plugin}-{stem}.intel"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in feeds {
            let Some(content) = content.as_str() else {
                return vec![format!("{label}: intel.{name} must be the feed's text")];
            };
            let feed = dir.join(name);
            std::fs::write(&feed, content).unwrap();
            cmd.arg("--intel").arg(feed);
        }
    }
    let out = cmd.arg(&events_file).output().unwrap();
    let mut problems = Vec::new();
    if !out.status.success() {
        problems.push(format!(
            "{label}: vigil replay exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let all = stdout_lines(&out);
    // Every built-in cites the events its findings are about, so each
    // container and pod it names is a subject of one of them (issue 10).
    for f in &all {
        for e in f["entities"].as_array().into_iter().flatten() {
            if (e["kind"] == "container" || e["kind"] == "pod") && e["verified"] != true {
                problems.push(format!(
                    "{label}: {} names {} {} not verified against the events it cites {}: {f}",
                    f["rule_id"], e["kind"], e["id"], f["event_ids"]
                ));
            }
        }
    }
    let (mine, others): (Vec<Value>, Vec<Value>) = all
        .into_iter()
        .partition(|f| f["plugin"].as_str() == Some(plugin));
    for d in vigil::commands::plugin::compare(expect, &mine) {
        problems.push(format!("{label}: {d}"));
    }
    if sc["others_silent"].as_bool() == Some(true) {
        for o in others {
            problems.push(format!("{label}: another plugin reported: {o}"));
        }
    }
    problems
}

#[test]
fn every_scenario_gives_exactly_its_expected_findings() {
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenario under tests/scenarios");
    let tmp = std::env::temp_dir().join(format!("vigil-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut problems = Vec::new();
    for (plugin, path) in &files {
        problems.extend(run_scenario(plugin, path, &tmp));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        problems.is_empty(),
        "{} of {} scenarios failed:\n{}",
        problems.len(),
        files.len(),
        problems.join("\n")
    );
}
