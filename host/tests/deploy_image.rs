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

use vigil_test_support::docker::image::{build_vigil_image, docker_output, output_text};
use vigil_test_support::unique;

#[test]
fn runtime_image_runs_vigil_and_has_no_shell() {
    let built = build_vigil_image(
        env!("CARGO_BIN_EXE_vigil").as_ref(),
        &format!("vigil-test/vigil:image-{}", unique()),
    );
    let image = built.tag();

    let version = docker_output(&["run", "--rm", "--network", "none", image, "--version"]);
    assert!(version.status.success(), "{}", output_text(&version));
    assert!(
        output_text(&version).starts_with("vigil "),
        "{}",
        output_text(&version)
    );

    // The image's own config validates, its plugins load (wasmtime works
    // on the copied libraries), under the DaemonSet's restrictions.
    let check = docker_output(&[
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
        image,
        "config",
        "check",
        "/etc/vigil/vigil.toml",
    ]);
    assert!(check.status.success(), "{}", output_text(&check));
    assert!(
        output_text(&check)
            .lines()
            .any(|l| l.trim_start().starts_with("plugins: ") && l.contains("container-escape")),
        "{}",
        output_text(&check)
    );

    for shell in ["/bin/sh", "/bin/bash", "/usr/bin/sh"] {
        let sh = docker_output(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            shell,
            image,
            "-c",
            "true",
        ]);
        assert!(
            !sh.status.success(),
            "{shell} exists in the image: {}",
            output_text(&sh)
        );
    }
}
