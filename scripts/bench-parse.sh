#!/usr/bin/env bash
# Instructions per real audit line of `k8s_audit::normalise` (BENCHMARKS.md,
# "Parsing the audit lines"): builds the normalize crate's audit_parse bench
# once, then runs `audit_parse count CYCLES` under valgrind's callgrind,
# counting only the measured passes (the function `callgrind_measured_parse`:
# not valgrind's start, not reading the fixtures, not the warm-up pass).
# Instruction counts do not depend on what else the machine runs, unlike time.
#
#   scripts/bench-parse.sh                               # 20 cycles of the 51 lines
#   CYCLES=100 scripts/bench-parse.sh
#   CARGO_CMD="/work/cargo-slot cargo" scripts/bench-parse.sh   # wrap the build
#   BENCH=target/release/deps/audit_parse-HASH scripts/bench-parse.sh  # no build
#
# The callgrind.out file stays in WORK for callgrind_annotate.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cycles=${CYCLES:-20}
work=${WORK:-${TMPDIR:-/tmp}/vigil-bench-parse}
read -ra cargo_cmd <<<"${CARGO_CMD:-cargo}"

command -v valgrind >/dev/null || { echo "bench-parse: valgrind not installed" >&2; exit 1; }
mkdir -p "$work"

bench=${BENCH:-$(cd "$root" && "${cargo_cmd[@]}" bench --locked -p vigil-normalize --bench audit_parse --no-run \
    --message-format=json-render-diagnostics |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "audit_parse"
                  and .profile.test == true) | .executable')}
[ -x "$bench" ] || { echo "bench-parse: no bench executable ($bench)" >&2; exit 1; }
echo "bench: $bench"
echo "valgrind: $(valgrind --version), $cycles cycles"

out=$work/callgrind.out.parse
(cd "$root" && valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
    --toggle-collect='*callgrind_measured_*' "$bench" count "$cycles" >"$out.log" 2>&1) ||
    { echo "bench-parse: failed, see $out.log" >&2; exit 1; }
summary=$(grep -h ' lines (' "$out.log")
echo "$summary"
ir=$(awk '/^(totals|summary):/ { print $2; exit }' "$out")
lines=${summary%% *}
echo "instructions: $ir in all, $(awk -v i="$ir" -v n="$lines" 'BEGIN { printf "%.0f", i / n }') per line"
echo "callgrind_annotate $out shows where they go."
