#!/usr/bin/env bash
# The `vigil replay` benchmark of BENCHMARKS.md: builds the real audit stream
# (the Falco fixtures of tests/data/k8s-audit/falco-0.34.1, less the
# malformed fal_01_003.json, line by line in file-name order, cycled to
# EVENTS lines) and measures `vigil replay --format k8s-audit` in events/s:
# parse only (--no-builtin) and all built-ins, pinned to one core
# (taskset -c 0) and on two (taskset -c 0,1). Also checks that the one-core
# and the two-core runs print the same findings, byte for byte.
#
#   scripts/bench-replay.sh                 # 200,000 events, best of 3 runs each
#   EVENTS=50000 RUNS=5 scripts/bench-replay.sh
#
# CALLGRIND=N adds instruction counts, which a busy machine does not change:
# one thread, all built-ins, under `valgrind --tool=callgrind`, over the
# first N lines of the stream and over its first 100 (start-up: loading the
# plugins), and prints (difference) / (N - 100) per event. Valgrind needs
# wasmtime's on-demand allocator (`VIGIL_REPLAY_ENGINE=on-demand`; the
# pooling one reserves more address space than valgrind allows), and its
# emulated CPU has no SHA extensions, so the event ids' SHA-256 counts far
# more than it costs natively. A first run under valgrind compiles the
# plugins for that CPU into the cache (not counted). The VM has no hardware
# counters for `perf stat -e instructions`.
#
# Uses target/release/vigil (VIGIL=... to choose another); build it first
# (`cargo xtask build`). Wall time is what a shared machine distorts: the
# user+system CPU time of each run is printed beside it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
vigil=${VIGIL:-$root/target/release/vigil}
events=${EVENTS:-200000}
runs=${RUNS:-3}
work=${WORK:-${TMPDIR:-/tmp}/vigil-bench-replay}
fixtures=$root/tests/data/k8s-audit/falco-0.34.1
stream=$work/audit-$events.jsonl

[ -x "$vigil" ] || { echo "bench-replay: $vigil not built (cargo xtask build)" >&2; exit 1; }
mkdir -p "$work/cache"

# The stream: every non-blank line of each fixture (awk ends a file's last
# line even without a newline), cycled. Same as vigil_test_support::fixtures::falco_lines.
if [ ! -s "$stream" ]; then
    mapfile -t files < <(cd "$fixtures" && LC_ALL=C ls | LC_ALL=C sort | grep -vx 'fal_01_003.json')
    (cd "$fixtures" && awk -v n="$events" 'NF { l[++c] = $0 } END { for (i = 0; i < n; i++) print l[i % c + 1] }' "${files[@]}") >"$stream.tmp"
    mv "$stream.tmp" "$stream"
fi
echo "stream: $stream ($(wc -l <"$stream") lines, $(($(stat -c %s "$stream") / 1048576)) MiB)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"

# Compile the plugins once into this bench's cache (not timed).
"$vigil" replay --format k8s-audit --cache-dir "$work/cache" --threads 1 "$fixtures/create_nginx_pod_privileged.json" >/dev/null

# measure NAME CPUS ARGS...: best wall time of $runs runs; prints events/s.
measure() {
    local name=$1 cpus=$2
    shift 2
    local best="" line wall cpu
    for _ in $(seq "$runs"); do
        line=$( { TIMEFORMAT='%R %U %S'; time taskset -c "$cpus" "$vigil" replay --format k8s-audit \
            --cache-dir "$work/cache" "$@" "$stream" >"$work/out-$name.jsonl" 2>"$work/err-$name.txt"; } 2>&1 )
        wall=${line%% *}
        cpu=$(awk '{ printf "%.2f", $2 + $3 }' <<<"$line")
        if [ -z "$best" ] || awk -v a="$wall" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then
            best="$wall $cpu"
        fi
    done
    wall=${best%% *}
    cpu=${best#* }
    printf '| %-40s | %-5s | %8s | %6s s | %6s s | %s findings |\n' "$name" "$cpus" \
        "$(awk -v n="$events" -v t="$wall" 'BEGIN { printf "%.0fk", n / t / 1000 }')" "$wall" "$cpu" \
        "$(wc -l <"$work/out-$name.jsonl")"
}

echo
echo "| what | cores | events/s | wall (best of $runs) | CPU user+sys | output |"
echo "|---|---|---|---|---|---|"
measure parse-only-1core 0 --no-builtin
measure all-builtins-1core 0
measure parse-only-2cores 0,1 --no-builtin
measure all-builtins-2cores 0,1

if [ -n "${CALLGRIND:-}" ]; then
    head -n "$CALLGRIND" "$stream" >"$work/cg-$CALLGRIND.jsonl"
    head -n 100 "$stream" >"$work/cg-100.jsonl"
    # count FILE: the instructions of a one-thread replay of FILE.
    count() {
        VIGIL_REPLAY_ENGINE=on-demand valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            "$vigil" replay --format k8s-audit --cache-dir "$work/cache" --threads 1 "$1" 2>&1 >/dev/null |
            sed -n 's/.*Collected : //p'
    }
    count "$work/cg-100.jsonl" >/dev/null
    base=$(count "$work/cg-100.jsonl")
    all=$(count "$work/cg-$CALLGRIND.jsonl")
    echo
    echo "callgrind, all built-ins, one thread: $all instructions for $CALLGRIND events, $base for 100:" \
        "$(( (all - base) / (CALLGRIND - 100) )) per event"
fi

if cmp -s "$work/out-all-builtins-1core.jsonl" "$work/out-all-builtins-2cores.jsonl"; then
    echo
    echo "same findings on one core and on two: $(sha256sum <"$work/out-all-builtins-1core.jsonl" | cut -c1-16)…"
else
    echo "bench-replay: the findings differ between one and two cores" >&2
    exit 1
fi
