#!/usr/bin/env bash
# Builds the plugin into a Wasm component: ./build.sh [OUT.wasm]
# (default: {{name}}.wasm here).
#
# componentize-py 0.25.1 compiles src/app.py with CPython into a component of
# the vigil:detector world `{{world}}` described by wit/. `--stub-wasi` leaves no WASI
# import at all. Tool: $VIGIL_COMPONENTIZE_PY, else `componentize-py` on PATH
# (`python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/{{name}}.wasm}
componentize_py=${VIGIL_COMPONENTIZE_PY:-componentize-py}
if [[ -z "${VIGIL_COMPONENTIZE_PY:-}" && -x "$here/.venv/bin/componentize-py" ]]; then
    componentize_py=$here/.venv/bin/componentize-py
fi

mkdir -p "$(dirname "$out")"
export PYTHONDONTWRITEBYTECODE=1
"$componentize_py" -d "$here/wit" -w {{world}} componentize --stub-wasi \
    -p "$here/src" app -o "$out.tmp" >&2
mv "$out.tmp" "$out"
