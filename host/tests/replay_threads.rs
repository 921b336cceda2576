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
    replay_as(path, "k8s-audit", threads, None)
}

/// `got` exits 2 (the stream's bad lines) with the reference's findings,
/// byte for byte, and the same input errors.
fn assert_same(
    got: &std::process::Output,
    reference: &std::process::Output,
    errors: &str,
    what: &str,
) {
    assert_eq!(got.status.code(), Some(2), "{what}");
    assert!(
        got.stdout == reference.stdout,
        "{what}: the findings differ from the reference's ({} and {} bytes)",
        got.stdout.len(),
        reference.stdout.len()
    );
    assert_eq!(
        String::from_utf8_lossy(&got.stderr),
        errors,
        "{what}: the input errors differ"
    );
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
        assert_same(&many, &one, &errors, &format!("{threads} threads"));
    }
}

fn replay_with(path: &Path, threads: usize, limits: Option<&str>) -> std::process::Output {
    replay_as(path, "k8s-audit", threads, limits)
}

/// A replay of `path` read as `format`, on `threads` threads, with the
/// test limits of `vigil replay`'s blocks and lines if given.
fn replay_as(
    path: &Path,
    format: &str,
    threads: usize,
    limits: Option<&str>,
) -> std::process::Output {
    let mut cmd = vigil();
    cmd.args([
        "replay",
        "--no-cache",
        "--node",
        "test-node",
        "--format",
        format,
    ])
    .args(["--threads", &threads.to_string()])
    .arg(path);
    if let Some(limits) = limits {
        cmd.env("VIGIL_REPLAY_TEST_LIMITS", limits);
    }
    cmd.output().expect("run vigil replay")
}

/// JSON lines are read in blocks: blocks smaller than one line (grown),
/// a few lines, and many give the same findings and the same errors, on
/// the same lines, as the default block, on one thread and several; and
/// standard input likewise.
#[test]
fn any_read_block_gives_the_same_output_byte_for_byte() {
    let dir = TempDir::new("replay-blocks");
    let path = stream(&dir);
    let reference = replay_with(&path, 1, None);
    assert_eq!(reference.status.code(), Some(2));
    let errors = String::from_utf8_lossy(&reference.stderr).into_owned();
    assert!(
        errors.contains("stream.jsonl:17780: invalid Kubernetes audit event"),
        "{errors}"
    );
    for (block, threads) in [(700, 1), (700, 3), (5_000, 2), (100_000, 8)] {
        let limits = format!("{block},{},{}", 1 << 20, 1 << 20);
        let got = replay_with(&path, threads, Some(&limits));
        assert_same(
            &got,
            &reference,
            &errors,
            &format!("block {block}, {threads} threads"),
        );
    }
    let piped = vigil()
        .args([
            "replay",
            "--no-cache",
            "--node",
            "test-node",
            "--format",
            "k8s-audit",
            "--threads",
            "2",
            "-",
        ])
        .env("VIGIL_REPLAY_TEST_LIMITS", "3000,1048576,1048576")
        .stdin(std::fs::File::open(&path).expect("open the stream"))
        .output()
        .expect("run vigil replay -");
    assert!(
        piped.stdout == reference.stdout,
        "stdin: the findings differ"
    );
    assert_eq!(
        String::from_utf8_lossy(&piped.stderr),
        errors
            .replace("stream.jsonl", "-")
            .replace(&format!("{}/", dir.display()), "")
    );
}

/// A line over the cap is an input error on its line, and the lines after
/// it are still read; an input that is not JSON lines over its cap is an
/// input error too, never memory without bound.
#[test]
fn lines_and_documents_over_their_caps_are_input_errors() {
    let dir = TempDir::new("replay-caps");
    let good = falco_lines()[0].clone();
    let long = format!("{{\"kind\": \"{}\"}}", "x".repeat(5_000));
    let path = dir.join("caps.jsonl");
    std::fs::write(&path, format!("{good}\n\n{long}\n{good}\n{long}")).expect("write");
    let out = replay_with(&path, 2, Some("1000,4000,100000"));
    let errors = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{errors}");
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 2, "{errors}");
    assert!(
        lines[0].ends_with(
            "caps.jsonl:3: line longer than 4000 bytes (the limit of one line), skipped"
        ),
        "{errors}"
    );
    assert!(lines[1].contains("caps.jsonl:5: line longer"), "{errors}");
    let stats = vigil()
        .args([
            "replay",
            "--no-builtin",
            "--no-cache",
            "--format",
            "k8s-audit",
            "--stats",
        ])
        .arg(&path)
        .env("VIGIL_REPLAY_TEST_LIMITS", "1000,4000,100000")
        .output()
        .expect("run vigil replay --stats");
    let report = String::from_utf8_lossy(&stats.stderr);
    assert!(
        report.contains("\"records\":2,") && report.contains("\"input_errors\":2,"),
        "{report}"
    );

    let array = dir.join("array.json");
    std::fs::write(&array, format!("[{good},\n{good}]")).expect("write");
    let small = replay_with(&array, 1, Some(&format!("1000,4000,{}", good.len())));
    let errors = String::from_utf8_lossy(&small.stderr);
    assert_eq!(small.status.code(), Some(2), "{errors}");
    assert!(errors.contains("array.json:0: larger than"), "{errors}");
    let fits = replay_with(&array, 1, Some("1000,4000,100000"));
    assert_eq!(
        fits.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fits.stderr)
    );
}

/// `--format auto` decides from the first record that tells it, one record
/// at a time until then: here after bad lines that fill several blocks.
/// With lines that are not UTF-8, blank or ending in `\r\n` among the rest,
/// every block size and thread count gives the output of one thread
/// reading the default block.
#[test]
fn auto_format_and_odd_lines_give_the_same_output_on_any_block_and_thread_count() {
    let dir = TempDir::new("replay-auto");
    let good = std::fs::read_to_string(stream(&dir)).expect("read the stream");
    let mut data = Vec::new();
    for i in 0..40 {
        data.extend_from_slice(
            format!("not JSON, line {i} of a prelude over several blocks\n").as_bytes(),
        );
    }
    data.extend_from_slice(b"\xff\xfe not UTF-8\r\n\r\n   \n");
    for (i, line) in good.lines().take(3_000).enumerate() {
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
        if i == 1_234 {
            data.extend_from_slice(b"{\"kind\": \"\xc3\"}\n\n");
        }
    }
    let path = dir.join("auto.jsonl");
    std::fs::write(&path, &data).expect("write the input");
    let run = |threads: usize, limits: Option<&str>| replay_as(&path, "auto", threads, limits);
    let reference = run(1, None);
    assert_eq!(reference.status.code(), Some(2));
    let errors = String::from_utf8_lossy(&reference.stderr).into_owned();
    // The prelude's 40 lines, the two lines that are not UTF-8.
    assert_eq!(errors.lines().count(), 42, "{errors}");
    assert!(errors.contains("auto.jsonl:41: not UTF-8"), "{errors}");
    assert!(errors.contains("auto.jsonl:1279: not UTF-8"), "{errors}");
    let findings = reference
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(
        findings > 100,
        "the format was told and the events ran: {findings} findings"
    );
    for (block, threads) in [(Some(700), 2), (Some(700), 1), (Some(5_000), 3), (None, 2)] {
        let limits = block.map(|b| format!("{b},{},{}", 1 << 20, 1 << 20));
        let got = run(threads, limits.as_deref());
        assert_same(
            &got,
            &reference,
            &errors,
            &format!("block {block:?}, {threads} threads"),
        );
    }
}
