//! Builds the built-in detector plugins (the `plugins/` workspace) to Wasm
//! components and embeds them, so `vigil` runs with no plugin directory.
//!
//! The plugins are a separate cargo workspace built for
//! `wasm32-unknown-unknown` into `target/wasm`, so their target and features
//! never mix with the host's. `scripts/wasm-cargo.sh` picks the toolchain
//! route (rustup target, or Debian's rustc-web fallback) that
//! `scripts/toolchain.sh` installed.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // host/crates/runtime → the repository root.
    let root = manifest
        .ancestors()
        .nth(3)
        .expect("host/crates/runtime is inside the repository")
        .to_owned();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = env::var_os("VIGIL_WASM_TARGET_DIR")
        .map_or_else(|| root.join("target/wasm"), PathBuf::from);
    println!("cargo::rerun-if-env-changed=VIGIL_WASM_TARGET_DIR");

    let plugins = root.join("plugins");
    let members = plugin_crates(&plugins);
    for path in [
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
        root.join("plugin-sdk/Cargo.toml"),
        root.join("plugin-sdk/src"),
        root.join("plugin-sdk/README.md"),
        root.join("wit"),
        root.join("scripts/wasm-cargo.sh"),
    ] {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    for m in &members {
        println!(
            "cargo::rerun-if-changed={}",
            plugins.join(m).join("Cargo.toml").display()
        );
        println!(
            "cargo::rerun-if-changed={}",
            plugins.join(m).join("src").display()
        );
    }

    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/wasm-cargo.sh"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if plugins.join("Cargo.lock").exists() {
        cmd.arg("--locked");
    }
    // A clean environment: the host build's flags, target and profile
    // variables must not leak into the Wasm build.
    cmd.env_clear();
    for (k, v) in env::vars_os() {
        let k_str = k.to_string_lossy();
        if matches!(
            k_str.as_ref(),
            "PATH"
                | "HOME"
                | "CARGO_HOME"
                | "RUSTUP_HOME"
                | "RUSTUP_TOOLCHAIN"
                | "TMPDIR"
                | "USER"
                | "LANG"
        ) || k_str.starts_with("VIGIL_")
        {
            cmd.env(k, v);
        }
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/wasm-cargo.sh: {e}"));
    if !output.status.success() {
        panic!(
            "building the built-in plugins failed ({}). Run `scripts/toolchain.sh` to install the Wasm toolchain, or `cargo xtask build`.\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let mut src = String::from(
        "/// Built-in plugins: (name, component bytes).\npub static BUILTIN: &[(&str, &[u8])] = &[\n",
    );
    for m in &members {
        let file = format!("{}.wasm", m.replace('-', "_"));
        let built = target_dir
            .join("wasm32-unknown-unknown/release")
            .join(&file);
        let dest = out.join(&file);
        fs::copy(&built, &dest)
            .unwrap_or_else(|e| panic!("built plugin {} missing: {e}", built.display()));
        writeln!(
            src,
            "    ({m:?}, include_bytes!({:?})),",
            dest.display().to_string()
        )
        .expect("write to string");
    }
    src.push_str("];\n");
    fs::write(out.join("builtin.rs"), src).expect("write builtin.rs");
}

/// The plugin crates: directories of `plugins/` holding a `Cargo.toml`.
fn plugin_crates(plugins: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(plugins)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
