//! `vigil replay --threads`: the same findings, in the same order, byte for
//! byte, on one thread and on several, over a large stream of real audit
//! events (the Falco fixtures cycled, each line with its own `auditID` so
//! that a finding reordered between cycles shows) through every built-in
//! plugin, with bad lines among them (the same errors, in the same order).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::path::Path;

use common::vigil;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::falco_lines;

/// Lines in the stream: hundreds of batches of 256, several chunks of
/// normalising per thread, a few seconds per run on a shared machine.
const LINES: usize = 24_000;

fn stream(dir: &Path) -> std::path::PathBuf {
    let lines = falco_lines();
    let mut text = String::new();
    for (i, line) in lines.iter().cycle().take(LINES).enumerate() {
        let mut event: serde_json::Value = serde_json::from_str(line).expect("fixture JSON");
        event["auditID"] = serde_json::Value::String(format!("replay-threads-{i}"));
        text.push_str(&event.to_string());
        text.push('\n');
        // Bad records in the middle of chunks: reported in place, the rest goes on.
        if i == 5_000 || i == 17_777 {
            text.push_str("{\"kind\": 0}\n");
        }
    }
    let path = dir.join("stream.jsonl");
    std::fs::write(&path, text).expect("write the stream");
    path
}

fn replay(path: &Path, threads: usize) -> std::process::Output {
    vigil()
        .args([
            "replay",
            "--no-cache",
            "--node",
            "test-node",
            "--format",
            "k8s-audit",
        ])
        .args(["--threads", &threads.to_string()])
        .arg(path)
        .output()
        .expect("run vigil replay")
}

#[test]
fn one_thread_and_several_give_the_same_output_byte_for_byte() {
    let dir = TempDir::new("replay-threads");
    let path = stream(&dir);
    let one = replay(&path, 1);
    assert_eq!(
        one.status.code(),
        Some(2),
        "bad input lines: exit status 2; stderr: {}",
        String::from_utf8_lossy(&one.stderr)
    );
    let findings = one.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let n = findings.count();
    // Some 12 % of the stream's events are findings of container-escape
    // and k8s-evasion: enough to show any reordering.
    assert!(n > LINES / 20, "only {n} findings");
    let errors = String::from_utf8_lossy(&one.stderr);
    assert_eq!(errors.lines().count(), 2, "{errors}");
    assert!(
        errors.contains("stream.jsonl:5002: invalid Kubernetes audit event"),
        "{errors}"
    );
    for threads in [2, 3, 8] {
        let many = replay(&path, threads);
        assert_eq!(many.status.code(), Some(2), "{threads} threads");
        assert!(
            many.stdout == one.stdout,
            "{threads} threads: the findings differ from one thread's ({} and {} bytes)",
            many.stdout.len(),
            one.stdout.len()
        );
        assert_eq!(
            String::from_utf8_lossy(&many.stderr),
            errors,
            "{threads} threads: the input errors differ"
        );
    }
}
