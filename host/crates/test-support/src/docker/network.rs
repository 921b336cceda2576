//! Networks and volumes a test creates, removed when their guard is
//! dropped. Declare them before the [`super::Containers`] that use them:
//! guards drop in reverse order, so the containers go first (a network or
//! volume in use cannot be removed).

use std::process::{Command, Stdio};

use super::{LABEL, docker};

/// A user-defined bridge network (containers on it resolve each other by
/// name and `--network-alias`), removed when dropped.
#[derive(Debug)]
pub struct Network(pub String);

impl Network {
    /// `docker network create --label LABEL NAME`.
    pub fn create(name: &str) -> Self {
        docker(&["network", "create", "--label", LABEL, name]);
        Self(name.to_owned())
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        quietly(&["network", "rm", &self.0]);
    }
}

/// A named volume (it keeps its content across `docker restart` and is
/// initialised from the image's directory it is mounted on), removed when
/// dropped.
#[derive(Debug)]
pub struct Volume(pub String);

impl Volume {
    /// `docker volume create --label LABEL NAME`.
    pub fn create(name: &str) -> Self {
        docker(&["volume", "create", "--label", LABEL, name]);
        Self(name.to_owned())
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        quietly(&["volume", "rm", "-f", &self.0]);
    }
}

fn quietly(args: &[&str]) {
    let _ = Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A container's stdout and stderr so far (`docker logs`), each whole.
pub fn logs(container: &str) -> (String, String) {
    let out = Command::new("docker")
        .args(["logs", container])
        .output()
        .expect("run docker logs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
