//! `exec` through the `ebpf` source, `vigil run`, the real kernel and the
//! real Docker daemon: a `docker exec` of a shell in a container started
//! without a terminal is a process event attributed to that container and a
//! `runtime-tamper/unexpected-exec` finding within a second; the programs a
//! container's entrypoint runs are process events of that container (in its
//! timeline), the entrypoint itself (its PID namespace's process 1) is not
//! judged; a shell run by busybox as a multi-call binary (`busybox sh`, or
//! an applet busybox's `env` runs through `/proc/self/exe`) is judged as the `sh`
//! it is; a shell in a container started with `-t` is not reported. What
//! `--emit-events` wrote of the run replays (`vigil replay`) to the same
//! `unexpected-exec` findings.
//!
//! The source with its capabilities dropped is off with the reason for
//! exec as for connect: one object, one load (`ebpf_live.rs`). Needs root
//! and Docker; without a daemon the tests are skipped with a message
//! unless `VIGIL_REQUIRE_DOCKER=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::vigil;
use vigil_test_support::docker::{Containers, IMAGE, docker, docker_ready, run_container};
use vigil_test_support::{TempDir, VigilProcess, unique};

const ON: &str = "ebpf: on (";
const RULE: &str = "runtime-tamper/unexpected-exec";

/// `vigil run` with the eBPF source and the Docker source, nothing else;
/// every event and process event also written to `DATA_DIR/../events.jsonl`.
fn start(data_dir: &Path) -> VigilProcess {
    let emitted = data_dir.with_file_name("events.jsonl");
    VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--emit-events")
            .arg(emitted)
            .args([
                "--no-cache",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--no-admin",
                "--no-network",
                "--ebpf",
            ]),
    )
}

/// The process items of a container's timeline, as a stopped host wrote it.
fn process_items(data_dir: &Path, name: &str) -> Vec<String> {
    let out = vigil()
        .args(["timeline", &format!("container:{name}"), "--format", "json"])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vigil timeline: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    view["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "process" && i["source"] == "ebpf")
        .map(|i| i["summary"].as_str().unwrap().to_owned())
        .collect()
}

/// `vigil replay` of the events file a stopped `vigil run` wrote beside
/// `data_dir`: its findings.
fn replay_emitted(data_dir: &Path) -> Vec<serde_json::Value> {
    let emitted = data_dir.with_file_name("events.jsonl");
    let text = std::fs::read_to_string(&emitted).unwrap();
    assert!(
        text.lines().any(|l| l.contains(r#""kind":"process""#)),
        "no process event in {}",
        emitted.display()
    );
    let out = vigil()
        .args(["replay", "--no-cache", "--format", "vigil"])
        .arg(&emitted)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "vigil replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    vigil_test_support::output::stdout_lines(&out)
}

#[test]
fn docker_exec_of_a_shell_without_a_terminal_is_reported_within_a_second() {
    if !docker_ready() {
        return;
    }
    let dir = TempDir::new("ebpf-exec-live");
    let data = dir.join("data");
    let vigil = start(&data);
    vigil.wait_for_stderr(ON, Duration::from_secs(30));

    let name = format!("ebpf_exec_{}", unique());
    // One container per judged exec: the delivery deduplicates a rule's
    // findings about one container.
    let bb = format!("ebpf_exec_bb_{}", unique());
    let applets = format!("ebpf_exec_applet_{}", unique());
    let _guard = Containers(vec![name.clone(), bb.clone(), applets.clone()]);
    let bb_id = run_container(&bb, &[], &["sleep", "60"]);
    let applets_id = run_container(&applets, &[], &["sleep", "60"]);
    // Started without -t; its entrypoint is a shell that runs a program.
    let id = run_container(
        &name,
        &[],
        &["sh", "-c", "sleep 0.2; /bin/true; exec sleep 60"],
    );
    std::thread::sleep(Duration::from_millis(800));
    let marker = format!("exec-{}", unique());
    docker(&["exec", &name, "sh", "-c", &format!("echo {marker}")]);
    let returned = Instant::now();
    let (arrived, f) = vigil.wait_for_finding_with_arrival(
        &format!("{RULE} for {name}"),
        Duration::from_secs(10),
        |f| {
            f["rule_id"] == RULE
                && f["evidence"]["args"]
                    .as_str()
                    .is_some_and(|a| a.contains(&marker))
        },
    );
    let took = arrived.saturating_duration_since(returned);
    assert!(
        took < Duration::from_secs(1),
        "reported {took:?} after docker exec returned"
    );
    assert_eq!(f["severity"], "high", "{f}");
    assert_eq!(f["entities"][0]["kind"], "container", "{f}");
    assert_eq!(f["entities"][0]["id"], id, "{f}");
    assert_eq!(f["entities"][0]["verified"], true, "{f}");
    let ev = &f["evidence"];
    assert_eq!(ev["binary"], "/bin/sh", "{f}");
    assert_eq!(ev["args"], format!("sh -c echo {marker}"), "{f}");
    assert_eq!(ev["class"], "shell", "{f}");
    assert_eq!(ev["image"], IMAGE, "{f}");
    assert_ne!(ev["namespace-pid"], "1", "{f}");
    assert!(ev["pid"].as_str().unwrap().parse::<u32>().unwrap() > 0);
    assert!(ev["parent-pid"].as_str().unwrap().parse::<u32>().unwrap() > 0);
    assert!(
        f["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "T1059.004"),
        "{f}"
    );

    // busybox called as itself names the shell in argv[1] (`docker exec C
    // busybox sh`); judged as `sh`, not let through as `busybox`.
    let called = format!("busybox-{}", unique());
    docker(&[
        "exec",
        &bb,
        "busybox",
        "sh",
        "-c",
        &format!("echo {called}"),
    ]);
    let f = vigil.wait_for_finding(
        &format!("{RULE} for `busybox sh` in {bb}"),
        Duration::from_secs(10),
        |f| {
            f["rule_id"] == RULE
                && f["evidence"]["args"]
                    .as_str()
                    .is_some_and(|a| a.contains(&called))
        },
    );
    assert_eq!(f["evidence"]["binary"], "/bin/busybox", "{f}");
    assert_eq!(f["evidence"]["program"], "sh", "{f}");
    assert_eq!(f["entities"][0]["id"], bb_id, "{f}");
    // A shell run by busybox's `env`: busybox runs its own applets through
    // /proc/self/exe with argv[0] `sh` (this image's busybox prefers its
    // applets), so the file's name (`exe`) alone would hide it.
    let applet = format!("applet-{}", unique());
    docker(&[
        "exec",
        &applets,
        "env",
        "sh",
        "-c",
        &format!("echo {applet}"),
    ]);
    let f = vigil.wait_for_finding(
        &format!("{RULE} for an applet through /proc/self/exe in {applets}"),
        Duration::from_secs(10),
        |f| {
            f["rule_id"] == RULE
                && f["evidence"]["binary"] == "/proc/self/exe"
                && f["evidence"]["args"]
                    .as_str()
                    .is_some_and(|a| a.contains(&applet))
        },
    );
    assert_eq!(f["evidence"]["program"], "sh", "{f}");
    assert_eq!(f["evidence"]["args"], format!("sh -c echo {applet}"), "{f}");
    assert_eq!(f["entities"][0]["id"], applets_id, "{f}");
    assert_ne!(f["evidence"]["namespace-pid"], "1", "{f}");

    // The entrypoint (a shell too, but the container's process 1) is not.
    std::thread::sleep(Duration::from_millis(300));
    let reported: Vec<serde_json::Value> = vigil
        .findings()
        .into_iter()
        .filter(|f| f["rule_id"] == RULE && f["entities"][0]["id"] == id.as_str())
        .collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    let ids = [id.as_str(), bb_id.as_str(), applets_id.as_str()];
    let reported: Vec<serde_json::Value> = vigil
        .findings()
        .into_iter()
        .filter(|f| f["rule_id"] == RULE && ids.iter().any(|i| f["entities"][0]["id"] == *i))
        .collect();
    assert_eq!(reported.len(), 3, "{reported:?}");
    vigil.stop();

    // What the run emitted replays to the same findings.
    let replayed = replay_emitted(&data);
    let mut live_args: Vec<&str> = reported
        .iter()
        .map(|f| f["evidence"]["args"].as_str().unwrap())
        .collect();
    let mut replayed_args: Vec<&str> = replayed
        .iter()
        .filter(|f| f["rule_id"] == RULE && ids.iter().any(|i| f["entities"][0]["id"] == *i))
        .map(|f| f["evidence"]["args"].as_str().unwrap())
        .collect();
    live_args.sort_unstable();
    replayed_args.sort_unstable();
    assert_eq!(replayed_args, live_args, "{replayed:?}");

    // The process events of the container, in its timeline: the
    // entrypoint, what it ran, and the exec.
    let items = process_items(&data, &name);
    assert!(
        items
            .iter()
            .any(|s| s.starts_with("exec /bin/sh -c sleep 0.2; /bin/true; exec sleep 60")),
        "{items:?}"
    );
    // What it ran: a child by its path, and its own `exec sleep` (this
    // image's busybox runs its applets through /proc/self/exe, argv[0]
    // naming the applet).
    assert!(
        items.iter().any(|s| s.starts_with("exec /bin/true (pid ")),
        "the entrypoint's child: {items:?}"
    );
    assert!(
        items
            .iter()
            .any(|s| s.starts_with("exec /proc/self/exe [sleep] 60 (pid ")),
        "the entrypoint's own exec of sleep: {items:?}"
    );
    assert!(
        items
            .iter()
            .any(|s| s.starts_with(&format!("exec /bin/sh -c echo {marker}"))),
        "{items:?}"
    );
}

#[test]
fn a_shell_in_a_container_with_a_terminal_is_not_reported() {
    if !docker_ready() {
        return;
    }
    let dir = TempDir::new("ebpf-exec-live-tty");
    let data = dir.join("data");
    let vigil = start(&data);
    vigil.wait_for_stderr(ON, Duration::from_secs(30));

    let tty = format!("ebpf_exec_tty_{}", unique());
    let plain = format!("ebpf_exec_plain_{}", unique());
    let _guard = Containers(vec![tty.clone(), plain.clone()]);
    let tty_id = run_container(&tty, &["-t"], &["sleep", "60"]);
    let plain_id = run_container(&plain, &[], &["sleep", "60"]);
    std::thread::sleep(Duration::from_millis(500));
    // An interactive shell in the terminal container; then the same in the
    // other one, whose finding shows the first had time to be reported.
    docker(&["exec", "-t", &tty, "sh", "-c", "id"]);
    docker(&["exec", &plain, "sh", "-c", "id"]);
    vigil.wait_for_finding(
        &format!("{RULE} for {plain}"),
        Duration::from_secs(10),
        |f| f["rule_id"] == RULE && f["entities"][0]["id"] == plain_id.as_str(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = vigil.stop();
    assert!(
        !vigil
            .findings()
            .iter()
            .any(|f| f["rule_id"] == RULE && f["entities"][0]["id"] == tty_id.as_str()),
        "{log}"
    );
    // Its exec was seen all the same.
    let items = process_items(&data, &tty);
    assert!(
        items.iter().any(|s| s.starts_with("exec /bin/sh -c id")),
        "{items:?}"
    );
}
