//! The container image of deploy/Dockerfile, as far as this machine can
//! build it without a registry: its `runtime` stage (`FROM scratch`) over a
//! root filesystem assembled by deploy/rootfs.sh from the `vigil` binary
//! under test, built with the real Docker Engine. The image must run
//! `vigil` (the built-in plugins load inside it) and hold no shell. The
//! `build` stage pulls a Rust image and is not run here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::process::{Command, Output};

use vigil_test_support::TempDir;
use vigil_test_support::fixtures::root;

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        // The legacy builder: no buildx plugin here, and `FROM scratch` needs
        // nothing BuildKit adds.
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The Dockerfile's `runtime` stage, reading the root filesystem from the
/// build context instead of the `build` stage.
fn runtime_stage() -> String {
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let at = dockerfile
        .find("FROM scratch AS runtime")
        .expect("deploy/Dockerfile has a `FROM scratch AS runtime` stage");
    let stage = &dockerfile[at..];
    let copy = "COPY --from=build /rootfs/ /";
    assert!(stage.contains(copy), "the runtime stage copies {copy:?}");
    assert!(
        !stage.contains("RUN "),
        "the runtime stage has no shell to RUN with"
    );
    stage.replace(copy, "COPY rootfs/ /")
}

/// Removes the image when dropped.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["image", "rm", "-f", &self.0]);
    }
}

#[test]
fn runtime_image_runs_vigil_and_has_no_shell() {
    let ctx = TempDir::new("image");
    let status = Command::new("bash")
        .arg(root().join("deploy/rootfs.sh"))
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .arg(ctx.join("rootfs"))
        .status()
        .unwrap();
    assert!(status.success(), "deploy/rootfs.sh failed");
    std::fs::write(ctx.join("Dockerfile"), runtime_stage()).unwrap();

    let image = Image(format!("vigil-test/vigil:image-{}", std::process::id()));
    let built = docker(&["build", "-q", "-t", &image.0, ctx.to_str().unwrap()]);
    drop(ctx);
    assert!(built.status.success(), "docker build: {}", text(&built));

    let version = docker(&["run", "--rm", "--network", "none", &image.0, "--version"]);
    assert!(version.status.success(), "{}", text(&version));
    assert!(text(&version).starts_with("vigil "), "{}", text(&version));

    // The image's own config validates, its plugins load (wasmtime works
    // on the copied libraries), under the DaemonSet's restrictions.
    let check = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SYS_PTRACE",
        "--cap-add",
        "DAC_READ_SEARCH",
        "--security-opt",
        "no-new-privileges",
        &image.0,
        "config",
        "check",
        "/etc/vigil/vigil.toml",
    ]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check)
            .lines()
            .any(|l| l.trim_start().starts_with("plugins: ") && l.contains("container-escape")),
        "{}",
        text(&check)
    );

    for shell in ["/bin/sh", "/bin/bash", "/usr/bin/sh"] {
        let sh = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            shell,
            &image.0,
            "-c",
            "true",
        ]);
        assert!(
            !sh.status.success(),
            "{shell} exists in the image: {}",
            text(&sh)
        );
    }
}
