#!/usr/bin/env bash
# Installs what the delivery tests need, idempotently (does nothing when
# everything is there):
#   - nats-server (Debian's package): the NATS JetStream output is tested
#     against a real server that the test starts on a loopback port;
#   - promtool (Debian's `prometheus` package): the metrics_promtool test
#     checks a live `/metrics` scrape with `promtool check metrics`;
#   - minisign (Debian's package): host/tests/plugin_signatures.rs checks that
#     plugin signatures interoperate with the reference tool both ways;
#   - a Python venv at target/ocsf-venv with py-ocsf-models (PyPI): the
#     independent OCSF implementation that validates the OCSF output.
#   - clang, libbpf-dev, libelf-dev, zlib1g-dev, pkg-config (Debian's packages):
#     the `ebpf` source's kernel programs are compiled from C by the host's
#     build (scripts/toolchain.sh installs them before any build; checked again
#     here so that this script alone readies a machine for the tests);
#   - setpriv (util-linux): host/tests/ebpf_live.rs drops CAP_BPF to see the
#     source refused.
# Needs root and apt for nats-server, prometheus and minisign, python3 with venv for the venv.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly VENV=${VIGIL_OCSF_VENV:-target/ocsf-venv}
readonly OCSF_MODELS=py-ocsf-models==0.10.0

log() { printf 'test-deps: %s\n' "$*" >&2; }

if ! command -v nats-server >/dev/null 2>&1 && [[ ! -x /usr/sbin/nats-server ]]; then
    log "installing nats-server"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends nats-server >&2
fi

if ! command -v clang >/dev/null 2>&1 || [[ ! -f /usr/include/bpf/bpf_helpers.h ]] ||
    ! pkg-config --exists libelf zlib 2>/dev/null || ! command -v setpriv >/dev/null 2>&1; then
    log "installing clang, libbpf-dev, libelf-dev, zlib1g-dev, pkg-config, util-linux (eBPF)"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        clang llvm libbpf-dev linux-libc-dev libelf-dev zlib1g-dev pkg-config make util-linux >&2
fi

if ! command -v promtool >/dev/null 2>&1 && [[ ! -x /usr/bin/promtool ]]; then
    log "installing prometheus (for promtool)"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends prometheus >&2
fi

if ! command -v minisign >/dev/null 2>&1 && [[ ! -x /usr/bin/minisign ]]; then
    log "installing minisign"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends minisign >&2
fi

if ! "$VENV/bin/python" -c 'import py_ocsf_models' >/dev/null 2>&1; then
    log "creating $VENV with $OCSF_MODELS"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$OCSF_MODELS" >&2
fi
