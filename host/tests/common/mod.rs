//! Helpers shared by the integration tests: the real `vigil` binary, the
//! recorded fixtures, and the hostile plugins built from source.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_owned()
}

pub fn falco(name: &str) -> PathBuf {
    root().join("tests/data/k8s-audit/falco-0.34.1").join(name)
}

/// The `vigil` binary under test, with no compile cache (tests stay hermetic).
pub fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env_remove("VIGIL_LOG").env_remove("RUST_LOG");
    c
}

pub fn stdout_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

pub fn rules(findings: &[serde_json::Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Builds the hostile plugins in `tests/plugins/` (once per test binary)
/// and returns the directory holding their `.wasm` files.
pub fn hostile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = root();
        let target = root.join("target/wasm");
        let status = Command::new("bash")
            .arg(root.join("scripts/wasm-cargo.sh"))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--manifest-path",
            ])
            .arg(root.join("tests/plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("run scripts/wasm-cargo.sh");
        assert!(status.success(), "building the hostile plugins failed");
        target.join("wasm32-unknown-unknown/release")
    })
}

/// A fresh directory holding only the named hostile plugin.
pub fn plugin_dir_with(name: &str) -> PathBuf {
    let file = format!("{}.wasm", name.replace('-', "_"));
    let dir = std::env::temp_dir().join(format!("vigil-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(hostile_dir().join(&file), dir.join(&file)).expect("copy plugin");
    dir
}
