#!/usr/bin/env bash
# The eBPF source under a connect storm (issue 14): TCP connects to a
# loopback listener as fast as one Python process makes them, first with
# no Vigil running (the storm's own rate), then with `vigil run --ebpf`
# (the procfs/conntrack network source, Docker and file integrity off, so
# the kernel programs are the only thing watching). Prints the storm's rate
# both ways, the events the source received and normalised, what the kernel
# lost (ring buffer full: `vigil_source_gaps_total`), what the pipeline
# dropped, and the CPU time of `vigil run` during the storm.
#
#   cargo xtask build && scripts/bench-connect-storm.sh      # SECONDS_EACH=… to change the length
#
# Needs root (the programs load) and target/release/vigil. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

VIGIL=${VIGIL:-target/release/vigil}
SECONDS_EACH=${SECONDS_EACH:-5}
[[ -x $VIGIL ]] || { echo "bench-connect-storm: $VIGIL missing (cargo xtask build)" >&2; exit 1; }

work=$(mktemp -d)
vigil_pid=
cleanup() {
    [[ -n $vigil_pid ]] && kill "$vigil_pid" 2>/dev/null && wait "$vigil_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/storm.py" <<'EOF'
import socket, sys, threading, time
seconds = float(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(4096)
port = srv.getsockname()[1]
def accept():
    while True:
        c, _ = srv.accept()
        c.close()
threading.Thread(target=accept, daemon=True).start()
n = 0
end = time.monotonic() + seconds
start = time.monotonic()
while time.monotonic() < end:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.connect(("127.0.0.1", port))
    s.close()
    n += 1
print(n, n / (time.monotonic() - start))
EOF

metric() { # NAME → value summed over label sets (0 when absent)
    curl -s "http://$admin/metrics" | awk -v m="$1" '$1 ~ "^"m"(\\{.*source=\"ebpf\".*\\})?$" {s+=$2} END {printf "%d", s}'
}
cpu() { # user+system seconds of a pid
    awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"
}

read -r n0 rate0 < <(python3 "$work/storm.py" "$SECONDS_EACH")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin="127.0.0.1:$port"
"$VIGIL" run --data-dir "$work/data" --no-cache --no-file-integrity --no-k8s-watch \
    --no-network --no-docker --ebpf --admin-listen "$admin" 2>"$work/vigil.log" &
vigil_pid=$!
for _ in $(seq 1 300); do
    grep -q "vigil running" "$work/vigil.log" && break
    sleep 0.1
done
grep -q "ebpf: on (" "$work/vigil.log" || { echo "bench-connect-storm: the eBPF source is not on:" >&2; cat "$work/vigil.log" >&2; exit 1; }
sleep 1
r0=$(metric vigil_source_received_total)
g0=$(metric vigil_source_gaps_total); d0=$(metric vigil_source_dropped_total)
c0=$(cpu "$vigil_pid")
read -r n1 rate1 < <(python3 "$work/storm.py" "$SECONDS_EACH")
sleep 2
r1=$(metric vigil_source_received_total)
g1=$(metric vigil_source_gaps_total); d1=$(metric vigil_source_dropped_total)
c1=$(cpu "$vigil_pid")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$vigil_pid/status")

printf 'storm without vigil : %d connects in %ss, %.0f connects/s\n' "$n0" "$SECONDS_EACH" "$rate0"
printf 'storm with vigil    : %d connects in %ss, %.0f connects/s (%.1f%% of the rate without)\n' \
    "$n1" "$SECONDS_EACH" "$rate1" "$(echo "100*$rate1/$rate0" | bc -l)"
printf 'ebpf source         : %d records received (%d connects made), %d lost in the kernel (ring full), %d dropped by the pipeline\n' \
    "$((r1 - r0))" "$n1" "$((g1 - g0))" "$((d1 - d0))"
printf 'vigil run CPU       : %.2f s user+system over the storm (%ss + 2 s drain), peak RSS %d KiB\n' \
    "$(echo "$c1 - $c0" | bc -l)" "$SECONDS_EACH" "$rss"
