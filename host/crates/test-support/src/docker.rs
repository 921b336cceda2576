//! The real Docker Engine of this machine, as the live tests use it: the
//! daemon check, the local test image (built by `scripts/test-image.sh`, no
//! registry), `docker` commands, and a guard that removes the test's
//! containers. Every container a test creates has the label [`LABEL`].
//! [`image`]: the project's image and `FROM scratch` images of one binary,
//! built here; [`network`]: networks and volumes of a test; [`engine_api`]:
//! a fake Engine API for what the real one cannot be made to do.

pub mod engine_api;
pub mod image;
pub mod network;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::fixtures::root;

pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// The local busybox image of `scripts/test-image.sh`.
pub const IMAGE: &str = "vigil-test/busybox:latest";
/// The label of every test container, for cleaning up by hand.
pub const LABEL: &str = "vigil-test=1";

/// Whether the Docker tests can run here; builds the test image once per
/// test binary. Without a daemon a test says `SKIPPED` and passes, unless
/// `VIGIL_REQUIRE_DOCKER` makes that a failure.
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
        let status = Command::new(root().join("scripts/test-image.sh"))
            .status()
            .expect("run scripts/test-image.sh");
        assert!(status.success(), "scripts/test-image.sh failed");
        true
    })
}

/// Runs `docker ARGS`, panicking with its stderr when it fails; returns its
/// stdout, trimmed.
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

/// `docker run -d --name NAME --label LABEL OPTS… IMAGE CMD…`: returns the
/// container id. Put the name (and the id, if Vigil may rename it) in a
/// [`Containers`] guard.
pub fn run_container(name: &str, opts: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--label", LABEL];
    args.extend_from_slice(opts);
    args.push(IMAGE);
    args.extend_from_slice(cmd);
    docker(&args)
}

/// `docker inspect CONTAINER`: its one object.
pub fn inspect(container: &str) -> Value {
    let text = docker(&["inspect", container]);
    serde_json::from_str::<Vec<Value>>(&text)
        .unwrap_or_else(|e| panic!("docker inspect {container}: {e}: {text}"))
        .remove(0)
}

/// The names of the networks an [`inspect`]ed container is connected to.
pub fn networks(inspected: &Value) -> Vec<String> {
    inspected["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Removes the named (or identified) containers when dropped, pass or fail.
#[derive(Debug)]
pub struct Containers(pub Vec<String>);

impl Containers {
    /// [`run_container`], removed at the end by its name and by its id: Vigil's
    /// responder renames what it quarantines, so the name alone may no longer
    /// find it. The name is taken first, so a container `docker run` created
    /// but could not start goes too.
    pub fn run(&mut self, name: &str, opts: &[&str], cmd: &[&str]) -> String {
        self.0.push(name.to_owned());
        let id = run_container(name, opts, cmd);
        self.0.push(id.clone());
        id
    }
}

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
