#!/usr/bin/env bash
# Builds the plugin, then runs it in the real host on the sample events and
# compares its findings with the expected ones: ./test.sh
# ($VIGIL names the vigil binary; default: `vigil` on PATH.)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
vigil=${VIGIL:-vigil}

"$here/build.sh" "$here/{{name}}.wasm"
"$vigil" plugin inspect "$here/{{name}}.wasm" >/dev/null
"$vigil" plugin test "$here/{{name}}.wasm" \
    --events "$here/tests/events.jsonl" --expect "$here/tests/expected.jsonl"{{test_flags}}
