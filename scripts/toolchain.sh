#!/usr/bin/env bash
# Ensures a toolchain that can build Rust Wasm guests (detector plugins) into
# components: the rustup `wasm32-unknown-unknown` target when rustup will add
# it, otherwise Debian's rustc-web with its std source (see
# /work/shared/TOOLCHAIN.md and scripts/wasm-cargo.sh, which picks the same route).
#
# Idempotent: does nothing when a route is already usable. Logs to stderr and
# prints exactly one line to stdout: the route in use, `rustup` or `debian`.
set -euo pipefail

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
