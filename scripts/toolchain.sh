#!/usr/bin/env bash
# Ensures a toolchain that can build Rust Wasm guests (detector plugins) into
# components: the rustup `wasm32-unknown-unknown` target when rustup will add
# it, otherwise Debian's rustc-web with its std source (see
# /work/shared/TOOLCHAIN.md and scripts/wasm-cargo.sh, which picks the same route).
#
# Also ensures what the host's build needs for the `ebpf` source's kernel
# programs, compiled from C by host/crates/sources/build.rs: clang (BPF
# target), libbpf's headers, the kernel's UAPI headers, and libelf/zlib with
# pkg-config and make for the libbpf that libbpf-sys builds from source.
#
# Idempotent: does nothing when a route is already usable. Logs to stderr and
# prints exactly one line to stdout: the route in use, `rustup` or `debian`.
set -euo pipefail

readonly BPF_PACKAGES=(clang llvm libbpf-dev linux-libc-dev libelf-dev zlib1g-dev pkg-config make)

bpf_ready() {
    command -v clang >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 &&
        command -v make >/dev/null 2>&1 &&
        [[ -f /usr/include/bpf/bpf_helpers.h && -f /usr/include/linux/bpf.h ]] &&
        pkg-config --exists libelf zlib
}

if ! bpf_ready; then
    printf 'toolchain: installing %s (eBPF programs)\n' "${BPF_PACKAGES[*]}" >&2
    BPF_SUDO=()
    if [[ $(id -u) -ne 0 ]]; then BPF_SUDO=(sudo); fi
    "${BPF_SUDO[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${BPF_SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        "${BPF_PACKAGES[@]}" >&2
    bpf_ready || { printf 'toolchain: eBPF build tools incomplete after install\n' >&2; exit 1; }
fi

readonly TARGET=wasm32-unknown-unknown
readonly DEBIAN_LINKER=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
readonly DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)

log() { printf 'toolchain: %s\n' "$*" >&2; }

rustup_has_target() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

debian_ready() {
    [[ -x /usr/bin/rustc && -x /usr/bin/cargo && -x "$DEBIAN_LINKER" ]] &&
        [[ -d /usr/lib/rustlib/src/rust/library ]]
}

if rustup_has_target; then
    log "rustup target $TARGET already installed"
    echo rustup
    exit 0
fi

if command -v rustup >/dev/null 2>&1; then
    log "adding rustup target $TARGET"
    if rustup target add "$TARGET" >&2 && rustup_has_target; then
        echo rustup
        exit 0
    fi
    log "rustup refused to add $TARGET; falling back to Debian's rustc-web"
fi

if debian_ready; then
    log "Debian rustc-web toolchain already installed"
    echo debian
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
log "installing ${DEBIAN_PACKAGES[*]}"
"${SUDO[@]}" apt-get update >&2
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends \
    "${DEBIAN_PACKAGES[@]}" >&2
if ! debian_ready; then
    log "Debian toolchain incomplete after install (missing $DEBIAN_LINKER or std source)"
    exit 1
fi
echo debian
