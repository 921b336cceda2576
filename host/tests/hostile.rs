//! Hostile plugins, built from source, loaded beside the built-in
//! container-escape detector: each is stopped or refused, the host goes on,
//! and container-escape still reports its finding for the same events.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::vigil;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::{falco, hostile_dir, plugin_dir_with, root};
use vigil_test_support::output::{rules, stdout_lines};

struct Run {
    code: Option<i32>,
    stderr: String,
    rules: Vec<String>,
    took: Duration,
}

fn run_with(plugin: &str, extra: &[&str]) -> Run {
    run_dir(&plugin_dir_with(plugin), extra)
}

fn run_dir(dir: &Path, extra: &[&str]) -> Run {
    let started = Instant::now();
    let out = vigil()
        .args(["replay", "--no-cache", "--plugin-dir"])
        .arg(dir)
        .args(extra)
        .arg(falco("create_nginx_pod_privileged.json"))
        .output()
        .expect("run vigil");
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        rules: rules(&stdout_lines(&out)),
        took: started.elapsed(),
    }
}

fn assert_escape_still_reported(r: &Run) {
    assert!(
        r.rules.contains(&"container-escape/privileged".to_owned()),
        "the well-behaved plugin still reports: {:?}\n{}",
        r.rules,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn infinite_loop_is_stopped_at_its_deadline() {
    let r = run_with("hostile-loop", &["--plugin-deadline-ms", "100"]);
    assert_escape_still_reported(&r);
    assert_eq!(
        r.code,
        Some(3),
        "a faulted plugin is reported in the exit status"
    );
    assert!(
        r.stderr.contains("plugin=\"hostile-loop\"")
            && r.stderr.contains("exceeded its deadline of 100 ms"),
        "{}",
        r.stderr
    );
    assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);
}

#[test]
fn unbounded_allocation_is_stopped_at_its_cap() {
    let r = run_with("hostile-alloc", &["--plugin-memory-mib", "32"]);
    assert_escape_still_reported(&r);
    assert_eq!(r.code, Some(3));
    assert!(
        r.stderr.contains("plugin=\"hostile-alloc\"")
            && r.stderr.contains("memory cap of 33554432 bytes exceeded"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_trap_is_contained() {
    let r = run_with("hostile-trap", &[]);
    assert_escape_still_reported(&r);
    assert_eq!(r.code, Some(3));
    assert!(
        r.stderr.contains("plugin=\"hostile-trap\"") && r.stderr.contains("trapped"),
        "{}",
        r.stderr
    );
}

#[test]
fn wasi_imports_are_refused_at_load_naming_the_import() {
    let r = run_with("hostile-wasi", &[]);
    assert_escape_still_reported(&r);
    assert_eq!(r.code, Some(3));
    assert!(
        r.stderr
            .contains("hostile-wasi.wasm refused: it imports `wasi:cli/environment"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_flood_of_findings_is_capped() {
    let r = run_with("hostile-flood", &[]);
    assert_escape_still_reported(&r);
    let spam = r
        .rules
        .iter()
        .filter(|x| *x == "hostile-flood/spam")
        .count();
    assert_eq!(spam, 1000, "capped at the default 1000 findings per call");
    assert!(
        r.stderr.contains("returned=20000 kept=1000"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_findings_cap_is_configurable() {
    let r = run_with("hostile-flood", &["--plugin-max-findings", "10"]);
    assert_escape_still_reported(&r);
    assert_eq!(
        r.rules
            .iter()
            .filter(|x| *x == "hostile-flood/spam")
            .count(),
        10
    );
    assert!(r.stderr.contains("returned=20000 kept=10"), "{}", r.stderr);
    let r = run_with("hostile-flood", &["--plugin-max-findings", "0"]);
    assert_eq!(r.code, Some(1), "invalid limits are refused: {}", r.stderr);
    assert!(r.stderr.contains("max_findings_per_batch"), "{}", r.stderr);
}

#[test]
fn forged_rule_ids_are_invalid_output() {
    let r = run_with("hostile-output", &[]);
    assert_escape_still_reported(&r);
    assert_eq!(
        r.rules,
        vec!["container-escape/privileged"],
        "the forged finding is not emitted"
    );
    assert!(r.stderr.contains("returned invalid data"), "{}", r.stderr);
}

#[test]
fn repeated_faults_disable_the_plugin_loudly() {
    // Many single-event batches, no backoff: the trap plugin faults five
    // times in a row and is disabled; container-escape sees every event.
    let dir = plugin_dir_with("hostile-trap");
    let events = std::fs::read_to_string(falco("create_nginx_pod_privileged.json")).unwrap();
    let input = std::env::temp_dir().join(format!("vigil-disable-{}.jsonl", std::process::id()));
    std::fs::write(
        &input,
        events
            .trim()
            .lines()
            .cycle()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let out = vigil()
        .args([
            "replay",
            "--no-cache",
            "--batch",
            "1",
            "--plugin-backoff-ms",
            "0",
            "--plugin-dir",
        ])
        .arg(&dir)
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let findings = rules(&stdout_lines(&out));
    assert_eq!(findings.len(), 8, "{findings:?}");
    assert!(
        stderr.contains("PLUGIN DISABLED") && stderr.contains("hostile-trap"),
        "{stderr}"
    );
}

/// The component of `host/tests/data/plugins/multi-memory.wat` (five
/// memories, four of them grown by `pages` on the first call), turned into
/// binary here, alone in a fresh plugin directory.
fn multi_memory_dir(pages: u32) -> TempDir {
    let source = root().join("host/tests/data/plugins/multi-memory.wat");
    let text = std::fs::read_to_string(&source).unwrap();
    let bytes = wat::parse_str(text.replace("__PAGES__", &pages.to_string()))
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let dir = TempDir::new("multi-memory");
    std::fs::write(dir.path().join("multi-memory.wasm"), bytes).unwrap();
    dir
}

#[test]
fn a_component_with_several_memories_runs_within_the_cap() {
    // Four memories of 1 MiB + 1 MiB each: 8 MiB in all, under 64 MiB.
    let dir = multi_memory_dir(16);
    let r = run_dir(dir.path(), &["--plugin-memory-mib", "64", "--log", "info"]);
    assert_escape_still_reported(&r);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("plugin=\"multi-memory\"") && !r.stderr.contains("faulted"),
        "{}",
        r.stderr
    );
}

#[test]
fn several_memories_share_one_cap() {
    // 615 pages of 64 KiB: each memory asks for 60% of 64 MiB. Checked per
    // memory, all four would grow (154 MiB in all); the one budget of the
    // instance stops the second.
    let dir = multi_memory_dir(615);
    let r = run_dir(dir.path(), &["--plugin-memory-mib", "64"]);
    assert_escape_still_reported(&r);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let fault = r
        .stderr
        .lines()
        .find(|l| l.contains("plugin faulted") && l.contains("plugin=\"multi-memory\""))
        .unwrap_or_else(|| panic!("no fault of multi-memory:\n{}", r.stderr));
    let said = "memory cap of 67108864 bytes exceeded: the plugin's linear memories and tables would total ";
    let total: usize = fault
        .split_once(said)
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{fault}"));
    // Two grown helpers, plus the initial pages of every memory (64 KiB each)
    // and whatever the main memory took for the batch.
    let grown = 2 * 615 * (64 << 10);
    assert!(
        total > 64 << 20 && total >= grown && total < grown + (4 << 20),
        "{fault}"
    );
}

/// `hostile-text` (`tests/plugins/hostile-text`) alone in a fresh plugin
/// directory, under its own name, with `settings` as its settings file.
fn hostile_text_args(dir: &TempDir, settings: &str) -> Vec<String> {
    std::fs::copy(
        hostile_dir().join("hostile_text.wasm"),
        dir.path().join("hostile-text.wasm"),
    )
    .unwrap();
    let file = dir.path().join("settings.json");
    std::fs::write(&file, settings).unwrap();
    vec![
        "--plugin-settings".into(),
        format!("hostile-text={}", file.display()),
    ]
}

#[test]
fn a_fault_names_its_root_cause() {
    // One `log` call whose message and fields alias one 32 MiB buffer: past
    // wasmtime's limit on data copied from the guest by one host call.
    let dir = TempDir::new("hostile-text-fuel");
    let args = hostile_text_args(&dir, r#"{"mode":"fuel"}"#);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_dir(dir.path(), &args);
    assert_escape_still_reported(&r);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let fault = r
        .stderr
        .lines()
        .find(|l| l.contains("plugin faulted") && l.contains("plugin=\"hostile-text\""))
        .unwrap_or_else(|| panic!("no fault of hostile-text:\n{}", r.stderr));
    assert!(
        fault.contains("too much data is being copied between the host and the guest"),
        "{fault}"
    );
    assert!(!fault.contains("wasm backtrace"), "{fault}");
}
