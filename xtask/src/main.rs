//! `cargo xtask`: the project's build, run and test entry points, so the
//! README's commands work on a fresh machine (toolchain included).
//!
//! - `cargo xtask build`: Wasm toolchain if missing, plugins, release host at `target/release/vigil`.
//! - `cargo xtask run [-- ARGS]`: build, then `vigil run` with embedded defaults (extra ARGS are passed on).
//! - `cargo xtask test`: every check and test (formatting, clippy, unit, integration against the real Docker Engine, plugins, the Python and C plugins, deployment manifests, delivery against nats-server and py-ocsf-models).
//! - `cargo xtask bench [NAME]`: the benchmarks recorded in BENCHMARKS.md (`runtime`, `delivery`, `fleet`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build(),
        Some("run") => build().and_then(|()| run(&args[1..])),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <build|run [-- ARGS]|test|bench [NAME]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is inside the repository")
        .to_owned()
}

fn step(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn toolchain() -> anyhow::Result<()> {
    step(
        "Wasm toolchain (scripts/toolchain.sh)",
        Command::new("bash")
            .arg("scripts/toolchain.sh")
            .stdout(std::process::Stdio::null()),
    )
}

fn build() -> anyhow::Result<()> {
    toolchain()?;
    step(
        "build the host and its built-in plugins",
        cargo().args(["build", "--release", "--locked", "-p", "vigil"]),
    )
}

fn run(extra: &[String]) -> anyhow::Result<()> {
    let extra: Vec<&String> = extra.iter().skip_while(|a| *a == "--").collect();
    let bin = root().join("target/release/vigil");
    step("vigil run", Command::new(bin).arg("run").args(extra))
}

fn test() -> anyhow::Result<()> {
    toolchain()?;
    step(
        "test image for the Docker tests (scripts/test-image.sh)",
        Command::new("bash").arg("scripts/test-image.sh"),
    )?;
    step(
        "nats-server, promtool, minisign and the OCSF validator venv for the delivery, metrics and signature tests (scripts/test-deps.sh)",
        Command::new("bash").arg("scripts/test-deps.sh"),
    )?;
    step("formatting", cargo().args(["fmt", "--all", "--check"]))?;
    step(
        "formatting (plugins)",
        cargo().args([
            "fmt",
            "--all",
            "--check",
            "--manifest-path",
            "plugins/Cargo.toml",
        ]),
    )?;
    step(
        "clippy",
        cargo().args([
            "clippy",
            "--release",
            "--locked",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "clippy (plugins, native)",
        cargo().args([
            "clippy",
            "--release",
            "--manifest-path",
            "plugins/Cargo.toml",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "plugin tests (native)",
        cargo().args(["test", "--release", "--manifest-path", "plugins/Cargo.toml"]),
    )?;
    // The Python and C plugins (and their toolchains): host/tests/foreign_plugins.rs
    // runs them through the binary, and tests `vigil plugin new` with the same tools.
    step(
        "plugins in Python and C (scripts/foreign-plugins.sh)",
        Command::new("bash").args(["scripts/foreign-plugins.sh", "build"]),
    )?;
    // Integration tests share the Docker daemon; two at a time. Every test
    // binary runs (--no-fail-fast) so one failure does not hide the others.
    step(
        "workspace tests",
        cargo().args([
            "test",
            "--release",
            "--locked",
            "--workspace",
            "--no-fail-fast",
            "--",
            "--test-threads=2",
        ]),
    )?;
    // The deployment checks use the `vigil` binary the tests just built (the
    // integration tests' `CARGO_BIN_EXE_vigil`): one build of the host per
    // run. A separate `cargo build -p vigil` would resolve other features
    // (no dev-dependencies) and compile wasmtime and the host a second time.
    step(
        "deployment artifacts (scripts/validate-deploy.sh: kubernetes-validate, audit files, systemd unit)",
        Command::new("bash")
            .arg("scripts/validate-deploy.sh")
            .env("VIGIL", root().join("target/release/vigil")),
    )
}

fn bench(extra: &[String]) -> anyhow::Result<()> {
    // The delivery bench measures end-to-end latency through the release binary.
    build()?;
    step(
        "plugins in Python and C (scripts/foreign-plugins.sh)",
        Command::new("bash").args(["scripts/foreign-plugins.sh", "build"]),
    )?;
    // The fleet bench drains a real nats-server.
    step(
        "nats-server for the fleet bench (scripts/test-deps.sh)",
        Command::new("bash").arg("scripts/test-deps.sh"),
    )?;
    step(
        "benchmarks",
        cargo()
            .args(["bench", "--locked", "-p", "vigil"])
            .args(extra),
    )
}
