#!/usr/bin/env bash
# Toolchains for detector plugins written in Python and C, and the build of
# the project's own Python and C plugins (see ../shared/TOOLCHAIN.md):
#
#   Python: componentize-py 0.25.1 from PyPI, in a venv;
#   C:      clang-19, lld-19, wasi-libc and libclang-rt-19-dev-wasm32 from
#           Debian, wit-bindgen-cli 0.63.0 (`cargo install --locked`), and
#           rustc's own wasm-component-ld as the linker.
#
# Usage: scripts/foreign-plugins.sh [tools|env|build]
#   tools  install whatever is missing (idempotent: a no-op when all is there)
#   env    print the tool paths as KEY=VALUE lines (after `tools`), the
#          variables the plugins' build.sh scripts and `vigil plugin new`
#          projects read
#   build  (default) tools, then build plugins/python/* and plugins/c/* into
#          $VIGIL_FOREIGN_OUT (default target/wasm/foreign/NAME.wasm)
#
# Project-local: the venv and wit-bindgen live under $VIGIL_FOREIGN_TOOLS
# (default target/foreign-tools); only the Debian packages are system-wide.
# Logs go to stderr; only `env` writes to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
readonly ROOT
readonly TOOLS=${VIGIL_FOREIGN_TOOLS:-$ROOT/target/foreign-tools}
readonly OUT=${VIGIL_FOREIGN_OUT:-$ROOT/target/wasm/foreign}
readonly COMPONENTIZE_PY_VERSION=0.25.1
readonly WIT_BINDGEN_VERSION=0.63.0
readonly DEBIAN_PACKAGES=(clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)

log() { printf 'foreign-plugins: %s\n' "$*" >&2; }

componentize_py() { echo "$TOOLS/venv/bin/componentize-py"; }
wit_bindgen() { echo "$TOOLS/cargo/bin/wit-bindgen"; }

# rustc ships wasm-component-ld; Debian's rustc-web (the fallback route of
# scripts/toolchain.sh) ships one too.
component_ld() {
    local sysroot
    if sysroot=$(rustc --print sysroot 2>/dev/null) &&
        [[ -x "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld" ]]; then
        echo "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld"
    elif [[ -x /usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld ]]; then
        echo /usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
    else
        return 1
    fi
}

debian_ready() {
    command -v clang-19 >/dev/null 2>&1 && command -v wasm-ld-19 >/dev/null 2>&1 &&
        [[ -f /usr/lib/wasm32-wasi/libc.a ]] &&
        compgen -G '/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a' >/dev/null
}

install_debian() {
    if debian_ready; then return; fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    log "installing ${DEBIAN_PACKAGES[*]}"
    "${sudo[@]}" apt-get update >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
        "${DEBIAN_PACKAGES[@]}" >&2
    debian_ready || {
        log "the C toolchain is incomplete after installing ${DEBIAN_PACKAGES[*]}"
        exit 1
    }
}

# A Python that can make a venv with pip: the one on PATH, else Debian's
# (installing python3-venv when needed).
venv_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import venv, ensurepip' 2>/dev/null; then
            echo "$py"
            return
        fi
    done
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    log "installing python3-venv"
    "${sudo[@]}" apt-get update >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
        python3-venv >&2
    echo /usr/bin/python3
}

install_componentize_py() {
    local bin
    bin=$(componentize_py)
    if [[ -x "$bin" && "$("$bin" --version 2>/dev/null)" == *" $COMPONENTIZE_PY_VERSION"* ]]; then
        return
    fi
    log "installing componentize-py $COMPONENTIZE_PY_VERSION into $TOOLS/venv"
    rm -rf "$TOOLS/venv"
    mkdir -p "$TOOLS"
    "$(venv_python)" -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
}

install_wit_bindgen() {
    local bin
    bin=$(wit_bindgen)
    if [[ -x "$bin" && "$("$bin" --version 2>/dev/null)" == *" $WIT_BINDGEN_VERSION"* ]]; then
        return
    fi
    log "installing wit-bindgen-cli $WIT_BINDGEN_VERSION into $TOOLS/cargo (a few minutes, once)"
    # A clean environment for cargo: no flags meant for another build. One
    # retry, reusing what the first attempt compiled (a busy machine has seen
    # rustc killed mid-build).
    local attempt
    for attempt in 1 2; do
        if env -u CARGO_ENCODED_RUSTFLAGS -u RUSTC_WORKSPACE_WRAPPER -u CARGO_TARGET_DIR \
            cargo install --locked --quiet --root "$TOOLS/cargo" \
            --target-dir "$TOOLS/cargo-build" "wit-bindgen-cli@$WIT_BINDGEN_VERSION" >&2; then
            rm -rf "$TOOLS/cargo-build"
            return
        fi
        log "cargo install wit-bindgen-cli failed (attempt $attempt)"
    done
    exit 1
}

tools() {
    install_debian
    component_ld >/dev/null || {
        log "no wasm-component-ld: run scripts/toolchain.sh first"
        exit 1
    }
    install_componentize_py
    install_wit_bindgen
}

print_env() {
    echo "VIGIL_COMPONENTIZE_PY=$(componentize_py)"
    echo "VIGIL_WIT_BINDGEN=$(wit_bindgen)"
    echo "VIGIL_CLANG=$(command -v clang-19)"
    echo "VIGIL_WASM_COMPONENT_LD=$(component_ld)"
}

# True when OUT exists and no source of the plugin (nor the WIT) is newer.
up_to_date() {
    local dir=$1 out=$2
    [[ -f "$out" ]] || return 1
    [[ -z "$(find "$dir" "$ROOT/wit" -type f -newer "$out" -not -path '*/__pycache__/*' \
        -not -name '*.wasm' -print -quit)" ]]
}

build() {
    tools
    mkdir -p "$OUT"
    local vars dir name
    vars=$(print_env)
    for dir in "$ROOT"/plugins/python/*/ "$ROOT"/plugins/c/*/; do
        dir=${dir%/}
        [[ -x "$dir/build.sh" ]] || continue
        name=$(basename "$dir")
        if up_to_date "$dir" "$OUT/$name.wasm"; then
            log "$name is up to date"
            continue
        fi
        log "building $name"
        # shellcheck disable=SC2046 # KEY=VALUE words, no spaces in them
        env $vars VIGIL_WIT_DIR="$ROOT/wit" "$dir/build.sh" "$OUT/$name.wasm"
    done
}

case "${1:-build}" in
    tools) tools ;;
    env) print_env ;;
    build) build ;;
    *)
        echo "usage: $0 [tools|env|build]" >&2
        exit 2
        ;;
esac
