#!/bin/busybox sh
# Second stage of the VM tests' guest (tests/src/vm.rs): PID 1, run by the host's static busybox
# (its applets, not the host's dynamically linked tools: each exec costs far less under TCG)
# on the host's root filesystem, which the first stage mounted read-only over 9p. It makes the
# guest usable, runs the command the host wrote into the scratch directory, records its exit
# status there, and powers off.
#
# Environment from the kernel command line:
#   CMMD_VM_SCRATCH  the host's scratch directory, shared read-write (9p tag "scratch") and
#                    mounted at the same path; holds command.sh, and receives ready, output and
#                    status
#   CMMD_VM_MODULES  the unpacked kernel's modules directory (on the host's root)
#   CMMD_VM_TIMEOUT  seconds the command may run before it is killed
#   CMMD_VM_WORKSPACE  a workspace the guest's tmpfs would hide (a clone under /tmp), shared
#                      read-only (9p tag "workspace") and mounted at the same path
#
# What the command finds: /proc, /sys, /dev (with pts and shm); tmpfs on /run, /tmp, /var/tmp;
# /etc, /var and /usr/lib writable as overlays over the host's (writes stay in the guest);
# /lib/modules/$(uname -r) linking to the unpacked modules, so modprobe and the kernel's own
# module autoloading work; loopback up; no other network device. It runs as root with the
# host's /bin/sh, in the environment command.sh sets.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

poweroff_now() {
    sync
    poweroff -f
    echo o >/proc/sysrq-trigger
    sleep 10
}

fail() {
    echo "cmmd-vm guest-init: $*" >/dev/console
    poweroff_now
}

# /dev, /proc and /sys come mounted from the first stage.
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp

# A workspace the tmpfs above hid (a clone under /tmp): shared on its own (9p tag workspace),
# read-only, at the same path.
if [ -n "${CMMD_VM_WORKSPACE:-}" ]; then
    mkdir -p "$CMMD_VM_WORKSPACE"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro workspace "$CMMD_VM_WORKSPACE" \
        || fail "mounting the workspace $CMMD_VM_WORKSPACE (9p tag workspace) failed"
fi

# Writable overlays (upper layers on /run) over the read-only host directories.
for dir in /etc /var /usr/lib; do
    layer=/run/cmmd-vm/overlay${dir//\//_}
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir" \
        || fail "overlay on $dir"
done
# /var/run and /var/lock point into /run on Debian.
mkdir -p /run/lock

[ -d "${CMMD_VM_MODULES:-}" ] || fail "no kernel modules at CMMD_VM_MODULES=${CMMD_VM_MODULES:-}"
mkdir -p /lib/modules
ln -sfn "$CMMD_VM_MODULES" "/lib/modules/$(uname -r)"

ip link set lo up
hostname cmmd-vm

scratch=${CMMD_VM_SCRATCH:-}
[ -n "$scratch" ] || fail "no CMMD_VM_SCRATCH"
mkdir -p "$scratch"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 scratch "$scratch" \
    || fail "mounting the scratch directory (9p tag scratch) failed"

read -r uptime _ </proc/uptime
echo "cmmd-vm: ready after $uptime s of guest time" >/dev/console
echo "$uptime" >"$scratch/ready"
timeout -k 5 "${CMMD_VM_TIMEOUT:-300}" /bin/sh "$scratch/command.sh" >"$scratch/output" 2>&1 </dev/null
status=$?
echo "$status" >"$scratch/status.tmp" && mv "$scratch/status.tmp" "$scratch/status"
read -r uptime _ </proc/uptime
echo "cmmd-vm: command exited with $status after $uptime s" >/dev/console
umount "$scratch"
poweroff_now
