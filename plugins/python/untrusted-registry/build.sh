#!/usr/bin/env bash
# Builds this Python detector into a Wasm component: build.sh [OUT.wasm]
# (default: untrusted-registry.wasm here).
#
# componentize-py 0.25.1 compiles src/app.py (the `WitWorld` class) and what
# it imports, with CPython, into a component of the vigil:detector world.
# `--stub-wasi` leaves no WASI import: the component imports nothing but the
# four vigil:detector interfaces, and print() traps (log through `log`).
#
# Tools: $VIGIL_COMPONENTIZE_PY, else `componentize-py` on PATH
# (`scripts/foreign-plugins.sh env` prints the project's). WIT: $VIGIL_WIT_DIR,
# else ./wit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/untrusted-registry.wasm}
componentize_py=${VIGIL_COMPONENTIZE_PY:-componentize-py}
wit=${VIGIL_WIT_DIR:-$here/wit}

mkdir -p "$(dirname "$out")"
# componentize-py writes its bytecode caches next to the sources; keep the tree clean.
export PYTHONDONTWRITEBYTECODE=1
"$componentize_py" -d "$wit" -w detector componentize --stub-wasi \
    -p "$here/src" app -o "$out.tmp" >&2
mv "$out.tmp" "$out"
