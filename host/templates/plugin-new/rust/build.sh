#!/usr/bin/env bash
# Builds the plugin into a Wasm component: ./build.sh [OUT.wasm]
# (default: {{name}}.wasm here).
#
# Target wasm32-unknown-unknown, linked by rustc's wasm-component-ld straight
# into a component that imports nothing but the vigil:detector interfaces.
# With $VIGIL_WASM_CARGO set to a Vigil checkout's scripts/wasm-cargo.sh, its
# toolchain route is used instead (rustup's target, or Debian's rustc-web).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/{{name}}.wasm}
target_dir=${CARGO_TARGET_DIR:-$here/target}

if [[ -n "${VIGIL_WASM_CARGO:-}" ]]; then
    cargo=(bash "$VIGIL_WASM_CARGO")
else
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown >&2
    fi
    host=$(rustc -vV | sed -n 's/^host: //p')
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$(rustc --print sysroot)/lib/rustlib/$host/bin/wasm-component-ld"
    cargo=(cargo)
fi
"${cargo[@]}" build --release --target wasm32-unknown-unknown \
    --manifest-path "$here/Cargo.toml" --target-dir "$target_dir" >&2
mkdir -p "$(dirname "$out")"
cp "$target_dir/wasm32-unknown-unknown/release/{{name_snake}}.wasm" "$out"
