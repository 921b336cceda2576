//! The data directory through the real binary: an existing one left open
//! (`0755`, a `0644` file in it) is tightened at start (`0700`, files
//! `0600`, each change logged); every file `vigil run` creates in it (the
//! spool and its `-wal`/`-shm`, plugin state, the audit log's position,
//! the file-integrity baseline; the quarantine store opened by `vigil
//! quarantine list`) is `0600`; and a
//! data directory owned by another user is refused with a message naming
//! it and both uids. The tests run as root, so "Vigil's user" is root.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::vigil;
use vigil_test_support::fixtures::{append, audit_line, falco_event};
use vigil_test_support::{TempDir, VigilProcess};

const STARTUP: Duration = Duration::from_secs(120);

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Every file and directory under `dir` with its mode, for failure messages.
fn listing(dir: &Path) -> String {
    let mut out = String::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let p = e.path();
            out.push_str(&format!("{:o} {}\n", mode(&p), p.display()));
            if p.is_dir() {
                pending.push(p);
            }
        }
    }
    out
}

#[test]
fn an_open_data_directory_is_tightened_and_new_files_are_private() {
    if vigil_core_uid() != 0 {
        eprintln!("SKIPPED: needs root (files of other users)");
        return;
    }
    let dir = TempDir::new("data-dir-live");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("state")).unwrap();
    std::fs::write(data.join("notes.txt"), "left by an older version\n").unwrap();
    // A quarantine store as an older version left it (an empty file is an
    // empty SQLite database): tightened at start, opened below.
    std::fs::create_dir_all(data.join("quarantine")).unwrap();
    std::fs::write(data.join("quarantine/quarantine.db"), "").unwrap();
    chmod(&data.join("quarantine"), 0o755);
    chmod(&data.join("quarantine/quarantine.db"), 0o644);
    chmod(&data, 0o755);
    chmod(&data.join("state"), 0o755);
    chmod(&data.join("notes.txt"), 0o644);
    let fim_root = dir.join("fim");
    std::fs::create_dir_all(fim_root.join("etc/docker")).unwrap();
    std::fs::write(fim_root.join("etc/docker/daemon.json"), "{}").unwrap();
    let log = dir.join("audit.log");
    append(
        &log,
        &audit_line(&falco_event("create_nginx_pod_privileged.json"), "perm-1"),
    );

    let process = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--no-cache",
                "--no-docker",
                "--no-network",
                "--no-k8s-watch",
            ])
            .args(["--admin-listen", "127.0.0.1:0", "--fim-root"])
            .arg(&fim_root)
            .arg("--audit-log")
            .arg(&log)
            .arg("--audit-log-from-beginning"),
    );
    process.wait_for_stderr("k8s-audit-log: following file", STARTUP);
    let tightened = process.stderr_text();
    assert!(
        tightened.contains("data directory: permissions tightened"),
        "{tightened}"
    );
    assert_eq!(mode(&data), 0o700, "{}", listing(&data));
    assert_eq!(mode(&data.join("state")), 0o700);
    assert_eq!(mode(&data.join("notes.txt")), 0o600);
    assert_eq!(mode(&data.join("quarantine")), 0o700);
    assert_eq!(mode(&data.join("quarantine/quarantine.db")), 0o600);

    // Files created during the run: a finding goes through the spool,
    // plugins persist state, the audit log position and the FIM baseline
    // are written.
    process.wait_for_rule("container-escape/privileged", Duration::from_secs(30));
    process.wait_until(
        "plugin state and the audit log position written",
        Duration::from_secs(30),
        || {
            data.join("k8s-audit-log.position").exists()
                && std::fs::read_dir(data.join("state"))
                    .map(|d| d.count() > 0)
                    .unwrap_or(false)
        },
    );
    let spool = data.join("spool.sqlite");
    for f in [
        spool.clone(),
        data.join("spool.sqlite-wal"),
        data.join("spool.sqlite-shm"),
        data.join("fim.sqlite"),
    ] {
        assert_eq!(mode(&f), 0o600, "{}\n{}", f.display(), listing(&data));
    }
    let quarantine = vigil()
        .args(["quarantine", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(quarantine.status.success(), "{quarantine:?}");
    process.stop();
    // Everything, including what was written at the stop.
    let all = listing(&data);
    for line in all.lines() {
        let (m, path) = line.split_once(' ').unwrap();
        let want = if Path::new(path).is_dir() {
            "700"
        } else {
            "600"
        };
        assert_eq!(m, want, "{path} has mode {m}:\n{all}");
    }
    assert!(all.contains("quarantine.db"), "{all}");
    assert!(all.contains(".state.json"), "{all}");
}

#[test]
fn a_data_directory_of_another_user_is_refused() {
    if vigil_core_uid() != 0 {
        eprintln!("SKIPPED: needs root to give a directory away");
        return;
    }
    let dir = TempDir::new("data-dir-foreign");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    chmod(&data, 0o755);
    let out = vigil()
        .arg("run")
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--no-cache",
            "--no-docker",
            "--no-network",
            "--no-k8s-watch",
        ])
        .args(["--no-file-integrity", "--no-admin"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is owned by uid 65534, not by Vigil's user (uid 0)",
            data.display()
        )),
        "{stderr}"
    );
    // Nothing was changed or created in it.
    assert_eq!(mode(&data), 0o755);
    assert_eq!(std::fs::metadata(&data).unwrap().uid(), 65534);
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
}

fn vigil_core_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}
