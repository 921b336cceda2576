#!/usr/bin/env bash
# Builds the local image the live Docker tests run, `vigil-test/busybox:latest`,
# without any registry: a root filesystem holding a static busybox and its
# applet links, imported with `docker import`. Idempotent: does nothing when
# the image exists. Installs Debian's busybox-static when /bin/busybox is
# missing (needs root and apt).
set -euo pipefail

readonly IMAGE=${VIGIL_TEST_IMAGE:-vigil-test/busybox:latest}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    exit 0
fi

busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    busybox=$(command -v busybox)
fi
# The image has no libc: a dynamically linked busybox would not start in it.
if ldd "$busybox" >/dev/null 2>&1; then
    echo "test-image: $busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/bin "$rootfs"/tmp "$rootfs"/etc "$rootfs"/proc "$rootfs"/sys "$rootfs"/dev
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh sleep nc true false cat echo ls id ps wget env; do
    ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - "$IMAGE" >/dev/null
echo "test-image: built $IMAGE" >&2
