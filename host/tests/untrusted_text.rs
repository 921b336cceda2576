//! Text Vigil did not write (a plugin's log records, description and
//! settings problems; names in findings) reaches the log and the terminal
//! escaped and bounded: it cannot end its line and forge a host record in
//! the text log format, nor send escape sequences to a terminal.
//! `hostile-text` (`tests/plugins/hostile-text`) says all of it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use common::vigil;
use vigil_core::model::Severity;
use vigil_response::policy::Mode;
use vigil_response::store::{NewQuarantine, Store, TargetKind};
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::{falco, hostile_dir};

/// What `hostile-text` forges after its `\n`s (see its source).
const FORGED: &str = "1999-01-01T00:00:00.000000Z ERROR vigil: FORGED-LINE";

/// Replays one recorded event with `hostile-text` (under its own name) and
/// `settings`; returns the host's stderr, text format.
fn replay_hostile_text(settings: &str) -> String {
    let dir = TempDir::new("hostile-text");
    std::fs::copy(
        hostile_dir().join("hostile_text.wasm"),
        dir.path().join("hostile-text.wasm"),
    )
    .unwrap();
    let file = dir.path().join("settings.json");
    std::fs::write(&file, settings).unwrap();
    let out = vigil()
        .args([
            "replay",
            "--no-cache",
            "--log-format",
            "text",
            "--log",
            "info",
        ])
        .arg("--plugin-dir")
        .arg(dir.path())
        .arg("--plugin-settings")
        .arg(format!("hostile-text={}", file.display()))
        .arg(falco("create_nginx_pod_privileged.json"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Nothing in `text` can drive a terminal or end a line early.
fn assert_no_raw_controls(text: &str) {
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.chars()
                .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c))
        })
        .collect();
    assert!(bad.is_empty(), "raw control characters in: {bad:#?}");
}

/// No line of `stderr` was written by the plugin as if it were the host.
fn assert_no_forged_lines(stderr: &str) {
    for line in stderr.lines() {
        assert!(
            !line.starts_with("1999-") && !line.starts_with("FORGED"),
            "forged line: {line}\n{stderr}"
        );
    }
}

#[test]
fn a_plugin_cannot_forge_log_lines_or_send_escapes() {
    let stderr = replay_hostile_text("{}");
    assert_no_raw_controls(&stderr);
    assert_no_forged_lines(&stderr);
    // The log record, escaped, on the plugin's own line.
    let record = stderr
        .lines()
        .find(|l| l.contains("innocent"))
        .unwrap_or_else(|| panic!("no log record of the plugin:\n{stderr}"));
    assert!(record.contains("plugin=\"hostile-text\""), "{record}");
    assert!(
        record.contains(&format!("innocent\\n{FORGED}")) && record.contains("\\u{1b}[31mred"),
        "{record}"
    );
    // The version: escaped and cut to 64 bytes, with a warning.
    let loaded = stderr
        .lines()
        .find(|l| l.contains("plugin loaded") && l.contains("hostile-text"))
        .unwrap_or_else(|| panic!("not loaded:\n{stderr}"));
    assert!(
        loaded.contains("version=1.0.0\\n1999-01-01T00:00:00") && loaded.len() < 400,
        "{loaded}"
    );
    let cut: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("plugin description has control characters or text over its bound"))
        .collect();
    assert!(
        cut.len() == 1
            && cut[0].contains("plugin=\"hostile-text\"")
            && cut[0].contains("fields=version,description"),
        "only hostile-text's description is cut, not a built-in's: {cut:#?}"
    );
}

#[test]
fn settings_problems_are_escaped_and_bounded() {
    // 1000 problems of 10 kB each, with line breaks and escapes.
    let stderr = replay_hostile_text(r#"{"mode":"problems"}"#);
    assert_no_raw_controls(&stderr);
    assert_no_forged_lines(&stderr);
    let refusal = stderr
        .lines()
        .find(|l| l.contains("refused its settings"))
        .unwrap_or_else(|| panic!("no refusal:\n{stderr}"));
    assert!(
        refusal.contains(&format!("key0\\n{FORGED}"))
            && refusal.contains("\\u{1b}[2Jbadppp")
            && refusal.contains("and 984 more problem(s)"),
        "{}",
        refusal.chars().take(2000).collect::<String>()
    );
    assert!(refusal.len() < 32 << 10, "{} bytes", refusal.len());
}

#[test]
fn quarantine_list_escapes_names_from_findings() {
    let data = TempDir::new("quarantine-text");
    let mut store = Store::open(data.path()).unwrap();
    store
        .claim(&NewQuarantine {
            kind: TargetKind::Docker,
            target: "a".repeat(64),
            target_name: "db\n2026-01-01 FORGED-ROW\x1b[2J".into(),
            node: "node-1".into(),
            rule: "p/r\r\x1b]0;title\x07".into(),
            severity: Severity::Critical,
            finding_id: "f1".into(),
            mode: Mode::DryRun,
        })
        .unwrap();
    drop(store);
    let out = vigil()
        .args(["quarantine", "list", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_no_raw_controls(&stdout);
    assert_eq!(stdout.lines().count(), 2, "a header and one row:\n{stdout}");
    assert!(
        stdout.contains("db\\n2026-01-01 FORGED-ROW\\u{1b}[2J")
            && stdout.contains("p/r\\r\\u{1b}]0;title\\u{7}"),
        "{stdout}"
    );
}
