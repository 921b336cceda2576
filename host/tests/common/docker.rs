//! Docker helpers shared by the live tests: the daemon check, the local test
//! image, `docker` commands, and a guard that removes test containers.

#![allow(dead_code, reason = "each live test uses a subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
pub const IMAGE: &str = "vigil-test/busybox:latest";
pub const LABEL: &str = "vigil-test=1";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_owned()
}

/// Whether the tests can run here; builds the image once.
pub fn docker_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if !Path::new(DOCKER_SOCKET).exists() {
            assert!(
                std::env::var_os("VIGIL_REQUIRE_DOCKER").is_none(),
                "VIGIL_REQUIRE_DOCKER is set but there is no {DOCKER_SOCKET}"
            );
            eprintln!("SKIPPED: no Docker daemon at {DOCKER_SOCKET}");
            return false;
        }
        let status = Command::new(repo_root().join("scripts/test-image.sh"))
            .status()
            .expect("run scripts/test-image.sh");
        assert!(status.success(), "scripts/test-image.sh failed");
        true
    })
}

pub fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", std::process::id())
}

/// Runs `docker ARGS`, panicking with its stderr when it fails; returns stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes the named containers when dropped.
pub struct Containers(pub Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&self.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
