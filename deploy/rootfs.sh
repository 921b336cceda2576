#!/usr/bin/env bash
# Assembles the runtime image's root filesystem: the vigil binary at
# /usr/bin/vigil, every shared library it links (from `ldd`, so the image
# needs no distribution base), /etc/passwd and /etc/group, the example
# configuration at /etc/vigil/vigil.toml, and empty /tmp and /var/lib/vigil.
#
#   deploy/rootfs.sh BINARY OUT_DIR
#
# Used by deploy/Dockerfile's build stage and by host/tests/deploy_image.rs.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BINARY OUT_DIR" >&2
    exit 2
fi
readonly bin=$1 out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mkdir -p "$out/usr/bin" "$out/etc/vigil" "$out/tmp" "$out/var/lib/vigil"
chmod 1777 "$out/tmp"
chmod 0700 "$out/var/lib/vigil"
install -m 0755 "$bin" "$out/usr/bin/vigil"

# `ldd` prints `name => /path (addr)` per library and `/path (addr)` for the
# dynamic loader; copy each, keeping its path (the loader's path is baked
# into the binary).
libs=$(ldd "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u)
for lib in $libs; do
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
done

echo 'root:x:0:0:root:/var/lib/vigil:/usr/bin/vigil' >"$out/etc/passwd"
echo 'root:x:0:' >"$out/etc/group"
install -m 0644 "$here/../config/vigil.example.toml" "$out/etc/vigil/vigil.toml"
