#!/usr/bin/env bash
# Builds this C detector into a Wasm component: build.sh [OUT.wasm]
# (default: shell-exec.wasm here); build.sh --test runs the native tests.
#
# wit-bindgen 0.63 generates the C bindings of the vigil:detector world from
# wit/ into a temporary directory; clang-19 compiles them with src/ for
# wasm32-wasi against Debian's wasi-libc (reactor: no main), and rustc's
# wasm-component-ld links a component. The plugin stays off stdio, so the
# component imports nothing but the four vigil:detector interfaces.
#
# Tools: $VIGIL_WIT_BINDGEN, $VIGIL_CLANG, $VIGIL_WASM_COMPONENT_LD, else
# `wit-bindgen`, `clang-19` and rustc's wasm-component-ld
# (`scripts/foreign-plugins.sh env` prints the project's). WIT: $VIGIL_WIT_DIR,
# else ./wit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
sources=("$here"/src/shell.c "$here"/src/json.c "$here"/src/strbuf.c "$here"/src/config.c)

if [[ "${1:-}" == --test ]]; then
    bin=$(mktemp)
    trap 'rm -f "$bin"' EXIT
    "${CC:-cc}" -std=c11 -O1 -Wall -Wextra -Werror -I"$here/src" "${sources[@]}" \
        "$here/tests/test_shell.c" -o "$bin"
    "$bin"
    exit
fi

out=${1:-$here/shell-exec.wasm}
wit_bindgen=${VIGIL_WIT_BINDGEN:-wit-bindgen}
clang=${VIGIL_CLANG:-clang-19}
wit=${VIGIL_WIT_DIR:-$here/wit}
if [[ -n "${VIGIL_WASM_COMPONENT_LD:-}" ]]; then
    linker=$VIGIL_WASM_COMPONENT_LD
else
    linker="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/wasm-component-ld"
fi

gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
if ! msg=$("$wit_bindgen" c "$wit" --world detector --out-dir "$gen" 2>&1); then
    echo "$msg" >&2
    exit 1
fi

mkdir -p "$(dirname "$out")"
# -mexec-model=reactor: a library with exports, no `main`. -Wl,--strip-all
# keeps names out of the component; -O2 rather than -Os: this runs per event.
"$clang" --target=wasm32-wasi --sysroot=/usr -O2 -std=c11 -Wall -Wextra -Werror \
    -Wno-unused-parameter -mexec-model=reactor -fuse-ld="$linker" -Wl,--strip-all \
    -I"$gen" -I"$here/src" \
    "$gen/detector.c" "$gen/detector_component_type.o" "${sources[@]}" "$here/src/plugin.c" \
    -o "$out.tmp"
mv "$out.tmp" "$out"
