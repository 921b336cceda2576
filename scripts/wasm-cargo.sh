#!/usr/bin/env bash
# Runs `cargo "$@"` set up to build for wasm32-unknown-unknown and link
# straight to a component with wasm-component-ld (no WASI imports at all).
#
# Route: rustup's target when installed, otherwise Debian's rustc-web with
# `-Zbuild-std` (run scripts/toolchain.sh first to install either). Pass the
# usual arguments, including `--target wasm32-unknown-unknown`.
set -euo pipefail

readonly TARGET=wasm32-unknown-unknown

# When run from a build script (host/crates/runtime/build.rs), cargo has exported settings
# meant for the host's own compilation: host rustflags, and clippy-driver as
# the workspace wrapper under `cargo clippy`. Neither applies to the guests.
unset CARGO_ENCODED_RUSTFLAGS RUSTC_WORKSPACE_WRAPPER

if command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    sysroot=$(rustc --print sysroot)
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld"
    exec cargo "$@"
fi

readonly DEBIAN_LINKER=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
if [[ ! -x /usr/bin/cargo || ! -x "$DEBIAN_LINKER" ]]; then
    echo "wasm-cargo: no Wasm toolchain; run scripts/toolchain.sh first" >&2
    exit 1
fi
export PATH="/usr/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$DEBIAN_LINKER"
# Rustup's proxies read these; make sure they cannot redirect Debian's cargo.
unset RUSTUP_TOOLCHAIN CARGO RUSTC RUSTDOC
# -Zbuild-std is only meaningful for build-like subcommands that take it.
case "${1-}" in
    build | check | test | rustc | clippy | doc)
        sub=$1
        shift
        exec /usr/bin/cargo "$sub" -Zbuild-std=std,panic_abort "$@"
        ;;
    *)
        exec /usr/bin/cargo "$@"
        ;;
esac
