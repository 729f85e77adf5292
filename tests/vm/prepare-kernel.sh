#!/usr/bin/env bash
# Prepares what the VM tests boot (tests/src/vm.rs): Debian's kernel and its modules, and a
# minimal initramfs, in a cache directory. A second run finds the cache and downloads nothing.
#
#   tests/vm/prepare-kernel.sh CACHE_DIR
#
# CACHE_DIR/kernel.env, written last, says where things are:
#   CMMD_VM_CACHE_FORMAT=N                          (this script's layout; another N rebuilds)
#   CMMD_VM_KERNEL_RELEASE=6.1.0-NN-amd64           (uname -r in the guest)
#   CMMD_VM_KERNEL=CACHE_DIR/vmlinux                (the image QEMU boots, see below)
#   CMMD_VM_MODULES=CACHE_DIR/root/lib/modules/…    (depmod has run on it)
#   CMMD_VM_INITRAMFS=CACHE_DIR/initramfs.cpio
#
# The kernel is the one `linux-image-amd64` depends on in the host's apt sources (bookworm:
# 6.1), fetched with `apt-get download` into CACHE_DIR/debs (kept, so a rebuild of the rest
# needs no network) and unpacked with `dpkg -x`: nothing is installed on the host. The
# xz-compressed kernel is unpacked once here into its ELF vmlinux, which QEMU boots through the
# kernel's PVH entry: under TCG, decompressing it at every boot costs about 4 s. (If that fails,
# CMMD_VM_KERNEL is the vmlinuz.) The initramfs holds the host's static busybox (package
# busybox-static), the modules that mount the host's root over virtio 9p (virtio_pci,
# 9pnet_virtio, 9p) and overlayfs, and an /init that loads them, mounts the host's root
# read-only and hands over to tests/vm/guest-init.sh, run by the same static busybox from the
# host's root (named on the kernel command line, so editing it needs no rebuild).
#
# Needs: apt-get (with lists updated), dpkg, depmod and modprobe (kmod), cpio, xz, flock, and a
# static /bin/busybox. Concurrent runs (parallel test binaries) serialise on CACHE_DIR/.lock.
set -euo pipefail

cache=${1:?usage: prepare-kernel.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

exec 9>"$cache/.lock"
flock 9

format=3
if grep -qx "CMMD_VM_CACHE_FORMAT=$format" "$cache/kernel.env" 2>/dev/null; then
    exit 0
fi

for tool in apt-get apt-cache dpkg depmod modprobe cpio xz; do
    command -v "$tool" >/dev/null || { echo "prepare-kernel.sh: $tool is missing" >&2; exit 1; }
done
busybox=/bin/busybox
if ! [ -x "$busybox" ] || ! "$busybox" --list | grep -qx switch_root; then
    echo "prepare-kernel.sh: a static $busybox is needed (apt-get install busybox-static)" >&2
    exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
    echo "prepare-kernel.sh: $busybox is not static (apt-get install busybox-static)" >&2
    exit 1
fi

started=$(date +%s.%N)
work=$(mktemp -d "$cache/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The versioned image package the meta package points at, e.g. linux-image-6.1.0-57-amd64,
# unless an earlier run left one in debs/.
mkdir -p "$cache/debs"
deb=$(ls "$cache"/debs/linux-image-*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
    image=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$image" ]; then
        echo "prepare-kernel.sh: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2
        exit 1
    fi
    (cd "$work" && apt-get download -q "$image" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    fetched=$(ls "$work"/"$image"_*.deb 2>/dev/null | head -n 1 || true)
    [ -n "$fetched" ] || { echo "prepare-kernel.sh: apt-get download $image failed" >&2; exit 1; }
    mv "$fetched" "$cache/debs/"
    deb=$cache/debs/$(basename "$fetched")
fi
image=$(basename "$deb")
image=${image%%_*}
release=${image#linux-image-}
downloaded=$(date +%s.%N)

rm -rf "$cache/root"
dpkg -x "$deb" "$work/root"
depmod -b "$work/root" "$release"
mv "$work/root" "$cache/root"
modules=$cache/root/lib/modules/$release
vmlinuz=$cache/root/boot/vmlinuz-$release

# The ELF vmlinux inside the bzImage: the xz stream starts at the first xz magic.
kernel=$vmlinuz
offset=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1 || true)
if [ -n "$offset" ]; then
    tail -c +"$((offset + 1))" "$vmlinuz" | xz -dc >"$work/vmlinux" 2>/dev/null || true
    if [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        mv "$work/vmlinux" "$cache/vmlinux"
        kernel=$cache/vmlinux
    fi
fi

# The initramfs: busybox, the modules in load order, and the first-stage /init.
initramfs=$work/initramfs
mkdir -p "$initramfs/bin" "$initramfs/modules" "$initramfs/proc" "$initramfs/sys" \
    "$initramfs/dev" "$initramfs/newroot"
cp "$busybox" "$initramfs/bin/busybox"
: >"$initramfs/modules/order"
for module in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe -d "$cache/root" -S "$release" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r path; do
    name=$(basename "$path")
    cp "$path" "$initramfs/modules/$name"
    echo "$name" >>"$initramfs/modules/order"
done

cat >"$initramfs/init" <<'INIT'
#!/bin/busybox sh
# First stage (written by tests/vm/prepare-kernel.sh): mount the host's root over 9p and run the
# second stage from it. The kernel passes CMMD_VM_* from its command line as environment.
bb=/bin/busybox
fail() {
    echo "cmmd-vm init: $*" >/dev/console
    $bb poweroff -f
}
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
for module in $($bb cat /modules/order); do
    $bb insmod "/modules/$module" || fail "insmod $module failed"
done
$bb mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /newroot \
    || fail "mounting the host root (9p tag hostroot) failed"
[ -n "${CMMD_VM_STAGE2:-}" ] && [ -f "/newroot$CMMD_VM_STAGE2" ] \
    || fail "no second stage CMMD_VM_STAGE2=${CMMD_VM_STAGE2:-} on the host root"
# Moved, not remounted later: until /proc is the guest's, /proc/self/exe on the shared root
# would name the host's QEMU, and busybox runs its applets through /proc/self/exe.
$bb mount --move /dev /newroot/dev
$bb mount --move /proc /newroot/proc
$bb mount --move /sys /newroot/sys
[ -x /newroot/bin/busybox ] || fail "no /bin/busybox on the host root (busybox-static)"
exec $bb switch_root /newroot /bin/busybox sh "$CMMD_VM_STAGE2"
INIT
chmod 755 "$initramfs/init"
(cd "$initramfs" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$cache/initramfs.cpio"

cat >"$work/kernel.env" <<ENV
CMMD_VM_CACHE_FORMAT=$format
CMMD_VM_KERNEL_RELEASE=$release
CMMD_VM_KERNEL=$kernel
CMMD_VM_MODULES=$modules
CMMD_VM_INITRAMFS=$cache/initramfs.cpio
ENV
mv "$work/kernel.env" "$cache/kernel.env"
finished=$(date +%s.%N)
awk -v a="$started" -v b="$downloaded" -v c="$finished" -v k="$image" 'BEGIN {
    printf "prepare-kernel.sh: %s fetched in %.1f s, unpacked with its initramfs in %.1f s\n", k, b - a, c - b
}' >&2
