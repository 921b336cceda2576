//! Compiles the `ebpf` source's kernel programs (`src/ebpf/bpf/*.bpf.c`)
//! with clang into `OUT_DIR`, where `src/ebpf/loader.rs` embeds the object.
//! No object is committed: every build makes its own from the C source.
//!
//! Needs clang (BPF target) and libbpf's headers (Debian: `clang`,
//! `libbpf-dev`; `scripts/toolchain.sh` installs them). `VIGIL_BPF_CLANG`
//! names another clang. On an architecture whose syscall registers the C
//! program does not describe, no object is built and the source says so
//! at start.

use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/ebpf/bpf/vigil.bpf.c";

fn main() {
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-env-changed=VIGIL_BPF_CLANG");
    println!("cargo::rustc-check-cfg=cfg(vigil_bpf_object)");
    if std::env::var_os("CARGO_FEATURE_EBPF").is_none() {
        return;
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let (define, multiarch) = match arch.as_str() {
        "x86_64" => ("__TARGET_ARCH_x86", "x86_64-linux-gnu"),
        _ => {
            println!(
                "cargo::warning=eBPF programs describe x86_64 syscalls only; built without them for {arch}"
            );
            return;
        }
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("vigil.bpf.o");
    let clang = std::env::var("VIGIL_BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D{define}"))
        // linux/bpf.h includes asm/types.h from the multiarch directory,
        // which clang does not search for the bpf target.
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", SOURCE, "-o"])
        .arg(&object)
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo::rustc-cfg=vigil_bpf_object"),
        Ok(s) => panic!("{clang} failed to compile {SOURCE} ({s})"),
        Err(e) => panic!(
            "cannot run {clang} to compile {SOURCE}: {e}. Install clang and libbpf-dev \
             (scripts/toolchain.sh does), or build without the `ebpf` feature"
        ),
    }
}
