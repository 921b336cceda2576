//! The `file-integrity` source through the real binary: `vigil run` on a
//! temporary root (`--fim-root`), every change made under it must appear
//! exactly once in the `--emit-events` file; a change made while Vigil is
//! down must be reported after the restart; runtime-tamper turns real
//! changes (a daemon.json edit, a timestomped runtime binary) into findings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{TempDir, VigilProcess};

/// How long a change may take to show up (debounce + scheduling on a busy CI box).
const DEADLINE: Duration = Duration::from_secs(15);

/// How long Vigil may take to start (compiling the built-in plugins), and
/// runtime-tamper's findings to arrive.
const STARTUP: Duration = Duration::from_secs(120);

/// A running `vigil run` writing its events to a file.
struct Vigil {
    process: VigilProcess,
    events: PathBuf,
}

impl Vigil {
    fn start(data: &Path, root: &Path, events: PathBuf) -> Self {
        let process = VigilProcess::spawn(
            vigil()
                .arg("run")
                .arg("--data-dir")
                .arg(data)
                .args(["--no-docker", "--no-cache", "--node", "fim-live-test"])
                .arg("--fim-root")
                .arg(root)
                .arg("--emit-events")
                .arg(&events),
        );
        process.wait_for_stderr("file-integrity: watching", STARTUP);
        Self { process, events }
    }

    fn logs(&self) -> String {
        self.process.stderr_text()
    }

    /// The file-integrity events written so far: (path, change, body).
    fn file_events(&self) -> Vec<(String, String, Value)> {
        read_jsonl(&self.events)
            .into_iter()
            // The same source also emits the writers it names (process
            // events of action `write`): only file events are counted here.
            .filter(|e| e["source"] == "file-integrity" && e["body"]["kind"] == "file")
            .map(|e| {
                let body = e["body"].clone();
                (
                    body["path"].as_str().unwrap_or_default().to_owned(),
                    body["change"].as_str().unwrap_or_default().to_owned(),
                    body,
                )
            })
            .collect()
    }

    /// Waits for the event count to reach `n`, then for a quiet second
    /// (so a duplicate would be seen), and returns the events.
    fn wait_events(&self, n: usize) -> Vec<(String, String, Value)> {
        self.process.wait_for_showing(
            &format!("{n} events"),
            DEADLINE,
            || (self.file_events().len() >= n).then_some(()),
            || format!("events: {:#?}", self.file_events()),
        );
        std::thread::sleep(Duration::from_millis(1_000));
        self.file_events()
    }

    fn kill(self) {
        self.process.kill();
    }
}

fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn every_change_once_and_changes_while_down_after_restart() {
    let base = TempDir::new("fim-live");
    let root = base.join("root");
    let data = base.join("data");
    let daemon = root.join("etc/docker/daemon.json");
    let runc = root.join("usr/bin/runc");
    let cni = root.join("etc/cni/net.d/10-bridge.conf");
    write(&daemon, "{}");
    write(&runc, "runc v1");
    write(&cni, "{\"type\":\"bridge\"}");

    let vigil = Vigil::start(&data, &root, base.join("events-1.jsonl"));
    assert!(
        vigil.logs().contains("file-integrity: on ("),
        "{}",
        vigil.logs()
    );
    assert!(vigil.file_events().is_empty(), "first start is silent");

    write(&daemon, "{\"userns-remap\":\"\"}");
    vigil.wait_events(1);
    let tmp = root.join("usr/bin/.runc.new");
    write(&tmp, "runc v2");
    std::fs::rename(&tmp, &runc).unwrap();
    vigil.wait_events(2);
    std::fs::set_permissions(&runc, std::fs::Permissions::from_mode(0o4755)).unwrap();
    vigil.wait_events(3);
    std::fs::remove_file(&cni).unwrap();
    vigil.wait_events(4);
    let evil = root.join("etc/cni/net.d/00-evil.conflist");
    write(&evil, "{}");
    let got = vigil.wait_events(5);

    let summary: Vec<(String, String)> =
        got.iter().map(|(p, c, _)| (p.clone(), c.clone())).collect();
    let s = |p: &Path, c: &str| (p.to_string_lossy().into_owned(), c.to_owned());
    assert_eq!(
        summary,
        vec![
            s(&daemon, "modified"),
            s(&runc, "modified"),
            s(&runc, "metadata"),
            s(&cni, "deleted"),
            s(&evil, "created"),
        ],
        "logs:\n{}",
        vigil.logs()
    );
    // The rename carries both hashes; the deletion only the old state.
    let rename = &got[1].2;
    assert_ne!(rename["before"]["sha256"], rename["after"]["sha256"]);
    assert!(got[3].2["after"].is_null());
    vigil.kill();

    // Changed while Vigil is down: reported once after the restart.
    write(&daemon, "{\"icc\":true}");
    let vigil = Vigil::start(&data, &root, base.join("events-2.jsonl"));
    let got = vigil.wait_events(1);
    let summary: Vec<(String, String)> =
        got.iter().map(|(p, c, _)| (p.clone(), c.clone())).collect();
    assert_eq!(
        summary,
        vec![s(&daemon, "modified")],
        "logs:\n{}",
        vigil.logs()
    );
    assert!(vigil.logs().contains("at_startup=true"), "{}", vigil.logs());
}

/// Real changes through the real pipeline into runtime-tamper: an edit of
/// daemon.json is `daemon-config-changed`; a same-size in-place patch of
/// `runc` whose mtime is put back (`touch -r`) is `inconsistent-change`.
#[test]
fn runtime_tamper_reports_a_daemon_json_edit_and_a_timestomped_binary() {
    let base = TempDir::new("fim-tamper");
    let root = base.join("root");
    let daemon = root.join("etc/docker/daemon.json");
    let runc = root.join("usr/bin/runc");
    write(&daemon, "{\"log-driver\":\"json-file\"}");
    write(&runc, "runc v1.1.12 ELF");
    // The default classes name the real paths; under --fim-root they are prefixed.
    let settings = base.join("runtime-tamper.json");
    std::fs::write(
        &settings,
        serde_json::json!({
            "daemon_configs": [daemon],
            "runtime_binaries": [runc],
        })
        .to_string(),
    )
    .unwrap();
    let vigil = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(base.join("data"))
            .args([
                "--no-docker",
                "--no-network",
                "--no-k8s-watch",
                "--no-cache",
            ])
            .args(["--node", "fim-live-test", "--fim-root"])
            .arg(&root)
            .arg("--plugin-settings")
            .arg(format!("runtime-tamper={}", settings.display())),
    );
    vigil.wait_for_stderr("file-integrity: watching", STARTUP);

    write(&daemon, "{\"log-driver\":\"none\",\"icc\":true}");
    vigil.wait_for_findings("daemon-config-changed", STARTUP, |f| f.len() == 1);

    // Patch runc in place, same size, and put its mtime back.
    let mtime = std::fs::metadata(&runc).unwrap().modified().unwrap();
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().write(true).open(&runc).unwrap();
        f.write_all(b"runc v1.1.12 EVL").unwrap();
        f.set_modified(mtime).unwrap();
    }
    vigil.wait_for_findings("inconsistent-change", STARTUP, |f| f.len() == 2);
    std::thread::sleep(Duration::from_millis(1_000));

    let findings = vigil.findings();
    let rules: Vec<&str> = findings
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        rules,
        [
            "runtime-tamper/daemon-config-changed",
            "runtime-tamper/inconsistent-change"
        ],
        "exactly these, once each: {findings:#?}"
    );
    assert_eq!(findings[0]["severity"], "high");
    assert_eq!(
        findings[0]["evidence"]["path"],
        daemon.to_string_lossy().as_ref()
    );
    let stomped = &findings[1];
    assert_eq!(stomped["severity"], "critical");
    assert_eq!(stomped["node"], "fim-live-test");
    let evidence = &stomped["evidence"];
    assert_eq!(evidence["class"], "runtime-binary");
    assert_eq!(evidence["size.before"], evidence["size.after"]);
    assert_eq!(evidence["mtime.before"], evidence["mtime.after"]);
    assert_ne!(evidence["sha256.before"], evidence["sha256.after"]);
}
