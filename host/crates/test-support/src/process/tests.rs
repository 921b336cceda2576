//! The harness against `sh` standing in for `vigil`: what a test relies on
//! when it waits (found, timed out, died first) and when it stops.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::Duration;

use super::{Signal, VigilProcess};

fn sh(script: &str) -> VigilProcess {
    VigilProcess::spawn(Command::new("sh").args(["-c", script]))
}

/// The panic message of `f`.
fn panic_of(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn waits_for_log_lines_and_findings_then_stops_gracefully() {
    let p = sh(
        r#"echo 'vigil running' >&2; echo '{"rule_id":"a/b","n":1}'; trap 'echo bye >&2; exit 0' TERM; while :; do sleep 0.05; done"#,
    );
    p.wait_for_stderr("vigil running", Duration::from_secs(10));
    let f = p.wait_for_rule("a/b", Duration::from_secs(10));
    assert_eq!(f["n"], 1);
    assert_eq!(p.findings().len(), 1);
    let log = p.stop();
    assert!(log.contains("bye"), "the last lines are kept: {log}");
    assert!(p.exited().is_some());
}

#[test]
fn a_process_that_dies_first_fails_the_wait_with_its_log() {
    let p = sh("echo 'config broken' >&2; exit 3");
    let message = panic_of(|| p.wait_for_stderr("vigil running", Duration::from_secs(30)));
    assert!(message.contains("vigil exited"), "{message}");
    assert!(message.contains("config broken"), "{message}");
}

#[test]
fn a_line_written_just_before_the_exit_is_still_found() {
    let p = sh("echo 'last words' >&2; exit 0");
    p.wait_for_stderr("last words", Duration::from_secs(10));
}

#[test]
fn a_timeout_names_what_was_awaited() {
    let p = sh("echo 'started' >&2; exec sleep 30");
    let message = panic_of(|| p.wait_for_stderr("never said", Duration::from_millis(200)));
    assert!(message.contains("timed out after 200ms"), "{message}");
    assert!(message.contains("never said"), "{message}");
    assert!(message.contains("started"), "the log is shown: {message}");
}

#[test]
fn a_stop_that_does_not_stop_it_fails() {
    let p = sh("trap '' HUP; echo ready >&2; while :; do sleep 0.05; done");
    p.wait_for_stderr("ready", Duration::from_secs(10));
    let message = panic_of(|| {
        p.stop_with(Signal::Hup, Duration::from_millis(300));
    });
    assert!(message.contains("still running"), "{message}");
}
