//! Process events (WIT 0.1.3) in Vigil JSON through `vigil replay`: the
//! records `vigil run --emit-events` writes (`body.kind: process`) are read
//! back and handed to the plugins that export `processes`, in input order
//! beside events, so a recorded stream replays to the same findings
//! (runtime-tamper's `unexpected-exec`, a busybox applet through
//! `/proc/self/exe` judged as the `sh` it is); and one plugin exporting two
//! side interfaces (`export_detector!(T, findings, processes)`,
//! `tests/plugins/multi-probe`) receives both kinds. The stream `vigil run`
//! emits from a real `docker exec` is replayed in `ebpf_exec_live.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use common::vigil;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::hostile_plugin;
use vigil_test_support::output::stdout_lines;

const CONTAINER: &str = r#"{"id":"c-start","time":1700000000000000000,"node":"n1","source":"docker","body":{"kind":"container","action":"start","id":"c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeeabcd","name":"web","image":"nginx:1.25"}}"#;

/// A process record as `--emit-events` writes it; `binary` and `args` vary.
fn exec(id: &str, binary: &str, args: &[&str], namespace_pid: u32) -> String {
    serde_json::json!({
        "id": id,
        "time": 1_700_000_001_000_000_000_u64,
        "node": "n1",
        "source": "ebpf",
        "body": {
            "kind": "process",
            "action": "exec",
            "pid": 4242,
            "namespace_pid": namespace_pid,
            "parent_pid": 4100,
            "parent_name": "runc:[2:INIT]",
            "uid": 0,
            "binary": binary,
            "args": args,
            "args_truncated": false,
            "container": {
                "id": "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeeabcd",
                "name": "web",
                "image": "nginx:1.25",
                "pod": ""
            },
            "container_tty": false
        }
    })
    .to_string()
}

fn stream() -> String {
    [
        CONTAINER.to_owned(),
        exec("p-applet", "/proc/self/exe", &["sh", "-c", "id"], 17),
        exec("p-entry", "/bin/sh", &["sh", "-c", "sleep 1"], 1),
        exec("p-ls", "/bin/ls", &["ls"], 18),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn process_records_replay_to_runtime_tamper_findings() {
    let dir = TempDir::new("process-replay");
    let input = dir.join("events.jsonl");
    std::fs::write(&input, stream()).unwrap();
    for format in ["vigil", "auto"] {
        for threads in ["1", "3"] {
            let out = vigil()
                .args([
                    "replay",
                    "--no-cache",
                    "--format",
                    format,
                    "--threads",
                    threads,
                ])
                .arg(&input)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let findings: Vec<serde_json::Value> = stdout_lines(&out)
                .into_iter()
                .filter(|f| f["rule_id"] == "runtime-tamper/unexpected-exec")
                .collect();
            // The applet only: the entrypoint (its namespace's pid 1) and
            // `ls` are not judged.
            assert_eq!(findings.len(), 1, "{findings:?}");
            let f = &findings[0];
            assert_eq!(f["event_ids"][0], "p-applet", "{f}");
            assert_eq!(f["evidence"]["binary"], "/proc/self/exe", "{f}");
            assert_eq!(f["evidence"]["program"], "sh", "{f}");
            assert_eq!(f["evidence"]["class"], "shell", "{f}");
            assert_eq!(f["entities"][0]["name"], "web", "{f}");
            assert_eq!(
                f["entities"][0]["verified"], true,
                "a process event's container is shown to the plugin: {f}"
            );
        }
    }
}

#[test]
fn a_plugin_exporting_findings_and_processes_receives_both() {
    receives_processes_and_findings("multi-probe");
}

/// The same plugin exporting `services` too (`findings, services,
/// processes`): the three-export world loads and behaves the same here
/// (its Swarm events are seen live in `swarm_live.rs`).
#[test]
fn a_plugin_exporting_all_three_side_interfaces_receives_processes_and_findings() {
    receives_processes_and_findings("multi-probe-all");
}

fn receives_processes_and_findings(name: &str) {
    let dir = TempDir::new("process-replay-multi");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(hostile_plugin(name), plugins.join(format!("{name}.wasm"))).unwrap();
    let input = dir.join("events.jsonl");
    std::fs::write(&input, stream()).unwrap();
    let out = vigil()
        .args(["replay", "--no-cache", "--format", "vigil", "--plugin-dir"])
        .arg(&plugins)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = stdout_lines(&out);
    let mut processes: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule_id"] == format!("{name}/process").as_str())
        .map(|f| f["event_ids"][0].as_str().unwrap())
        .collect();
    processes.sort_unstable();
    assert_eq!(processes, ["p-applet", "p-entry", "p-ls"], "{findings:?}");
    // runtime-tamper's finding, handed on through `correlate` (with what
    // the built-in correlator makes of it, if anything).
    let handed: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule_id"] == format!("{name}/finding").as_str())
        .map(|f| f["evidence"]["from-rule"].as_str().unwrap())
        .collect();
    assert!(
        handed.contains(&"runtime-tamper/unexpected-exec"),
        "{findings:?}"
    );
}
