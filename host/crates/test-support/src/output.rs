//! What `vigil` wrote, read back: findings on the stdout of a finished run
//! (`vigil replay`), a subcommand's JSON report and its exit status, and
//! JSON-lines files a running `vigil run` appends to (`--emit-events`, the
//! file output).

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// Every stdout line of a finished `vigil` as JSON; panics on a line that
/// is not.
pub fn stdout_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The stdout of a finished `vigil` as one JSON document (a `--json` or
/// `inspect` report); panics, showing it, when it is not.
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", describe(out)))
}

/// A finished command's exit status, stdout and stderr, for a failure
/// message.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Checks that a finished command exited with `code`; the failure shows
/// what it wrote ([`describe`]).
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// The `rule_id` of each finding, in order.
pub fn rules(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The JSON lines of a file being written (nothing when it does not exist
/// yet); a line that does not parse, such as the last one half written, is
/// left out.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
