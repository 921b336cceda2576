#!/usr/bin/env bash
# Instruction counts of container-escape as Wasm against native (BENCHMARKS.md,
# "Instruction counts"): builds the runtime bench once, then runs each case of
# `runtime plugin-count MODE MIX BATCH EVENTS` under valgrind's callgrind,
# counting only the measured pass (the function `callgrind_measured_*`: not
# valgrind's start, not the component's compilation, not the warm-up pass),
# and prints instructions per event and the Wasm / native ratio per mix.
# Instruction counts do not depend on what else the machine runs, unlike time.
#
#   scripts/bench-callgrind.sh                  # batch 256, 10,240 events per case
#   BATCHES="1 16 256" scripts/bench-callgrind.sh
#   EVENTS=2560 MODES="wasm routed native" scripts/bench-callgrind.sh
#   CARGO_CMD="/work/cargo-slot cargo" scripts/bench-callgrind.sh   # wrap the build
#   BENCH=target/release/deps/runtime-HASH scripts/bench-callgrind.sh  # no build
#   VIGIL_BENCH_COMPONENT=other/container-escape.wasm scripts/bench-callgrind.sh
#       # another build of container-escape (e.g. a base's) through the same bench
#
# The bench runs with VIGIL_BENCH_ALLOCATOR=on-demand: wasmtime's pooling
# allocator (what `vigil` runs with) reserves more address space than
# valgrind's address-space manager allows; the on-demand one maps memories
# per instance. The callgrind.out.* files stay in WORK for callgrind_annotate.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
events=${EVENTS:-10240}
batches=${BATCHES:-256}
modes=${MODES:-wasm native}
mixes=${MIXES:-typical podspec}
work=${WORK:-${TMPDIR:-/tmp}/vigil-bench-callgrind}
read -ra cargo_cmd <<<"${CARGO_CMD:-cargo}"

command -v valgrind >/dev/null || { echo "bench-callgrind: valgrind not installed" >&2; exit 1; }
mkdir -p "$work"

# One build; its JSON messages name the bench executable. BENCH=path runs
# an executable built before instead.
bench=${BENCH:-$(cd "$root" && "${cargo_cmd[@]}" bench --locked -p vigil --bench runtime --no-run \
    --message-format=json-render-diagnostics |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "runtime"
                  and .profile.test == true) | .executable')}
[ -x "$bench" ] || { echo "bench-callgrind: no bench executable ($bench)" >&2; exit 1; }
echo "bench: $bench"
echo "valgrind: $(valgrind --version), $events events per case"
echo

# Ir of the collected part: the `totals:` line callgrind writes (the
# `summary:` line of older versions), one out file per run as there is no
# --separate-threads.
count() {
    local mode=$1 mix=$2 batch=$3 out=$work/callgrind.out.$1-$2-$3
    (cd "$root" && VIGIL_BENCH_ALLOCATOR=on-demand valgrind --tool=callgrind \
        --callgrind-out-file="$out" --collect-atstart=no \
        --toggle-collect='*callgrind_measured_*' \
        "$bench" plugin-count "$mode" "$mix" "$batch" "$events" \
        >"$out.log" 2>&1) || { echo "bench-callgrind: $mode $mix $batch failed, see $out.log" >&2; exit 1; }
    grep -h ' findings (warm-up ' "$out.log" >&2 || true
    awk '/^(totals|summary):/ { print $2; exit }' "$out"
}

declare -A ir
for batch in $batches; do
    for mix in $mixes; do
        for mode in $modes; do
            ir[$mode-$mix-$batch]=$(count "$mode" "$mix" "$batch")
        done
    done
done

echo
printf '| mix | batch |'
for mode in $modes; do printf ' %s instructions/event |' "$mode"; done
printf ' Wasm / native |\n|---|---|'
for _ in $modes; do printf -- '---|'; done
printf -- '---|\n'
for mix in $mixes; do
    for batch in $batches; do
        printf '| %s | %s |' "$mix" "$batch"
        for mode in $modes; do
            printf ' %s |' "$(awk -v i="${ir[$mode-$mix-$batch]}" -v n="$events" 'BEGIN { printf "%.0f", i / n }')"
        done
        if [ -n "${ir[wasm-$mix-$batch]:-}" ] && [ -n "${ir[native-$mix-$batch]:-}" ]; then
            printf ' %s× |\n' "$(awk -v w="${ir[wasm-$mix-$batch]}" -v n="${ir[native-$mix-$batch]}" 'BEGIN { printf "%.2f", w / n }')"
        else
            printf ' |\n'
        fi
    done
done
echo
echo "callgrind_annotate $work/callgrind.out.MODE-MIX-BATCH shows where the instructions go."
