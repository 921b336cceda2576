#!/usr/bin/env bash
# Builds the plugin into a Wasm component: ./build.sh [OUT.wasm]
# (default: {{name}}.wasm here).
#
# wit-bindgen 0.63 generates the C bindings of wit/ into gen/; clang-19
# compiles them with src/ for wasm32-wasi against wasi-libc (reactor: no
# main), and rustc's wasm-component-ld links a component. Off stdio, the
# component imports nothing but the vigil:detector interfaces.
#
# Tools (Debian 12): apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32;
# cargo install --locked wit-bindgen-cli@0.63.0; rustup (for wasm-component-ld).
# Override with $VIGIL_WIT_BINDGEN, $VIGIL_CLANG, $VIGIL_WASM_COMPONENT_LD.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/{{name}}.wasm}
wit_bindgen=${VIGIL_WIT_BINDGEN:-wit-bindgen}
clang=${VIGIL_CLANG:-clang-19}
if [[ -n "${VIGIL_WASM_COMPONENT_LD:-}" ]]; then
    linker=$VIGIL_WASM_COMPONENT_LD
else
    linker="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/wasm-component-ld"
fi

rm -rf "$here/gen"
if ! msg=$("$wit_bindgen" c "$here/wit" --world detector --out-dir "$here/gen" 2>&1); then
    echo "$msg" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
"$clang" --target=wasm32-wasi --sysroot=/usr -O2 -std=c11 -Wall -Wextra -Werror \
    -Wno-unused-parameter -mexec-model=reactor -fuse-ld="$linker" -Wl,--strip-all \
    -I"$here/gen" -I"$here/src" \
    "$here/gen/detector.c" "$here/gen/detector_component_type.o" "$here"/src/*.c \
    -o "$out.tmp"
mv "$out.tmp" "$out"
