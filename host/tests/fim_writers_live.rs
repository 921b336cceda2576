//! The writer of a watched file, through `vigil run`, the real kernel
//! (fanotify) and the real Docker daemon: a container with the directory of
//! a stand-in runtime binary bind-mounted writes to it, and within a few
//! seconds runtime-tamper reports `container-write` naming that container
//! (verified: the host showed it to the plugin), the writing process's pid
//! and binary; a write from the host is named as the host's (no container)
//! and stays the path class's finding, as before. Without `CAP_SYS_ADMIN`
//! the writers are not named, with the reason logged, and changes are still
//! reported.
//!
//! The real `/usr/bin/runc` is never touched: `--fim-root` moves every
//! watched path under a temporary directory. Needs root and Docker; without
//! a daemon the Docker test is skipped with a message unless
//! `VIGIL_REQUIRE_DOCKER=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::vigil;
use vigil_test_support::docker::{Containers, IMAGE, docker, docker_ready, run_container};
use vigil_test_support::{TempDir, VigilProcess, unique};

const NAMED: &str = "file-integrity: writers named";
const RULE: &str = "runtime-tamper/container-write";
const WRITTEN: &str = "file-integrity: watched file written";
/// Vigil's start (compiling the built-in plugins on a cold cache).
const STARTUP: Duration = Duration::from_secs(120);

fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A temporary root with a stand-in `runc` and `daemon.json`, and
/// runtime-tamper's classes pointed at them (the defaults name the real paths).
fn fixture(base: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let root = base.join("root");
    let runc = root.join("usr/bin/runc");
    let daemon = root.join("etc/docker/daemon.json");
    write(&runc, "runc v1.1.12 ELF");
    write(&daemon, "{}");
    let settings = base.join("runtime-tamper.json");
    std::fs::write(
        &settings,
        serde_json::json!({ "runtime_binaries": [runc], "daemon_configs": [daemon] }).to_string(),
    )
    .unwrap();
    (root, runc, daemon)
}

fn run_args<'a>(
    command: &'a mut std::process::Command,
    base: &Path,
    root: &Path,
) -> &'a mut std::process::Command {
    command
        .arg("run")
        .arg("--data-dir")
        .arg(base.join("data"))
        .args([
            "--no-docker",
            "--no-network",
            "--no-k8s-watch",
            "--no-admin",
            "--no-cache",
            "--node",
            "fim-writers-test",
        ])
        .arg("--fim-root")
        .arg(root)
        .arg("--plugin-settings")
        .arg(format!(
            "runtime-tamper={}",
            base.join("runtime-tamper.json").display()
        ))
}

#[test]
fn a_container_writing_a_runtime_binary_is_named_and_a_host_write_is_the_hosts() {
    if !docker_ready() {
        return;
    }
    let base = TempDir::new("fim-writers-live");
    let (root, runc, daemon) = fixture(&base);
    let vigil = VigilProcess::spawn(run_args(&mut vigil(), &base, &root));
    vigil.wait_for_stderr(NAMED, STARTUP);
    vigil.wait_for_stderr("file-integrity: watching", STARTUP);

    // A container that has the binaries' directory of the node mounted
    // (what `-v /usr/bin:/w` would be), and writes to `runc` through it.
    let name = format!("fim_writer_{}", unique());
    let _guard = Containers(vec![name.clone()]);
    let bin_dir = runc.parent().unwrap();
    let mount = format!("{}:/w", bin_dir.display());
    // `; true` keeps the shell alive: busybox sh would otherwise exec its
    // last command in place, and a writer that execs right after the write
    // is described as its new program when `/proc` is read (README, not
    // covered). CI caught exactly that once ("sleep 60").
    let script = "sleep 1; echo pwned >> /w/runc; sleep 60; true";
    let started = Instant::now();
    let id = run_container(&name, &["-v", &mount], &["sh", "-c", script]);
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &name]);
    let f = vigil.wait_for_finding(
        &format!("{RULE} for {name}"),
        Duration::from_secs(15),
        |f| f["rule_id"] == RULE,
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "reported {took:?} after the container started (it writes after 1 s)"
    );
    assert_eq!(f["severity"], "critical", "{f}");
    assert_eq!(f["entities"][0]["kind"], "container", "{f}");
    assert_eq!(f["entities"][0]["id"], id, "{f}");
    assert_eq!(f["entities"][0]["name"], name, "{f}");
    assert_eq!(f["entities"][0]["verified"], true, "{f}");
    let ev = &f["evidence"];
    assert_eq!(ev["path"], runc.to_string_lossy().as_ref(), "{f}");
    assert_eq!(ev["class"], "runtime-binary", "{f}");
    // The container's shell wrote it (`echo` is a builtin): its pid on the
    // host is the container's init.
    assert_eq!(ev["pid"], pid, "{f}");
    assert_eq!(ev["namespace-pid"], "1", "{f}");
    assert_eq!(ev["args"], format!("sh -c {script}"), "{f}");
    let binary = ev["binary"].as_str().unwrap();
    assert!(
        binary.ends_with("/sh") || binary.ends_with("/busybox"),
        "{f}"
    );
    assert_eq!(ev["image"], IMAGE, "{f}");
    let techniques = f["techniques"].as_array().unwrap();
    assert!(techniques.iter().any(|t| t == "T1611"), "{f}");
    assert!(techniques.iter().any(|t| t == "T1554"), "{f}");
    // The content change itself is reported as before.
    vigil.wait_for_rule(
        "runtime-tamper/runtime-binary-changed",
        Duration::from_secs(15),
    );

    // The host writes daemon.json: named as the host's (this test's own
    // pid), the class's finding as before, no container-write.
    write(&daemon, "{\"icc\":true}");
    vigil.wait_for_rule(
        "runtime-tamper/daemon-config-changed",
        Duration::from_secs(15),
    );
    let daemon_path = daemon.to_string_lossy().into_owned();
    vigil.wait_for_stderr(&daemon_path, Duration::from_secs(5));
    let log = vigil.stderr_text();
    let line = log
        .lines()
        .find(|l| l.contains(WRITTEN) && l.contains(&daemon_path))
        .unwrap_or_else(|| panic!("no write of {daemon_path} logged:\n{log}"));
    assert!(
        line.contains("container=host") || line.contains("container=\"host\""),
        "{line}"
    );
    assert!(
        line.contains(&format!("pid={}", std::process::id())),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let writes: Vec<serde_json::Value> = vigil
        .findings()
        .into_iter()
        .filter(|f| f["rule_id"] == RULE)
        .collect();
    assert_eq!(writes.len(), 1, "only the container's write: {writes:#?}");
    vigil.stop();
}

#[test]
fn without_cap_sys_admin_writers_are_not_named_and_changes_still_reported() {
    let base = TempDir::new("fim-writers-refused");
    let (root, runc, _) = fixture(&base);
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--bounding-set", "-sys_admin", "--"])
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .env_remove("VIGIL_LOG")
        .env_remove("RUST_LOG");
    let vigil = VigilProcess::spawn(run_args(&mut command, &base, &root));
    vigil.wait_for_stderr("writers not named)", STARTUP);
    vigil.wait_for_stderr("file-integrity: watching", STARTUP);
    let log = vigil.stderr_text();
    assert!(!log.contains(NAMED), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("file-integrity: writers not named"))
        .unwrap_or_else(|| panic!("no reason logged:\n{log}"));
    assert!(line.contains("CAP_SYS_ADMIN"), "{line}");

    write(&runc, "runc v2");
    vigil.wait_for_rule(
        "runtime-tamper/runtime-binary-changed",
        Duration::from_secs(15),
    );
    assert!(!vigil.stderr_text().contains(WRITTEN));
    vigil.stop();
}
