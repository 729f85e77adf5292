#!/usr/bin/env bash
# From a fresh clone on Debian to passing tests, as root (the kernel tests use network namespaces):
#
#   sudo tests/run.sh [cargo test arguments...]      (--install: only step 1)
#
# 1. installs what the tests need: Debian packages with apt-get (only those missing) and, from
#    PyPI, checkov and promql-parser in a virtual environment at $CMMD_TEST_TOOLS
#    (/opt/cmmd-test-tools; tests/it/external_checks.rs finds them there);
# 2. runs the README's test command, `cargo test --workspace --locked`, with any arguments added,
#    against the software cdx as NXP's (LSDK) build; then the daemon's tests again against the ASK
#    port's cdx (CMM_SIM_ABI=ask), leaving out those that do not touch cdx. Both runs fill the
#    fields cdx leaves unwritten with garbage (CMM_SIM_UNWRITTEN), as a board's cdx leaves them.
# Rust itself comes from rustup (Debian's cargo is too old); the script says so if cargo is missing.
# .ci/run calls this after formatting and lints.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $EUID -eq 0 ]] || { echo "tests/run.sh: run as root (sudo): the kernel tests create network namespaces" >&2; exit 1; }

# Debian packages: kernel tools the tests drive, telnet clients, Python for the outside checkers,
# and a C toolchain for the linker.
# The VM tests (tests/src/vm.rs) add QEMU, the guest's static busybox, what unpacks Debian's
# kernel, and the PPPoE client and server they run inside the guest from the host's root.
PACKAGES=(conntrack conntrackd nftables iproute2 iputils-ping telnet expect ncat socat procps kmod
          curl strace python3 python3-venv gcc libc6-dev
          qemu-system-x86 busybox-static cpio xz-utils ppp pppoe)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null || { echo "tests/run.sh: install ${missing[*]} (no apt-get here)" >&2; exit 1; }
    echo "--- apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PyPI tools, pinned so that a new release of a checker cannot fail a build that changed nothing.
TOOLS=${CMMD_TEST_TOOLS:-/opt/cmmd-test-tools}
PIP_PACKAGES=(checkov==3.3.30 promql-parser==0.12.0)
if ! "$TOOLS/bin/python3" -m pip show -q checkov promql-parser >/dev/null 2>&1 \
    || ! "$TOOLS/bin/checkov" --version 2>/dev/null | grep -qx "${PIP_PACKAGES[0]#*==}"; then
    echo "--- pip install ${PIP_PACKAGES[*]} into $TOOLS"
    [[ -x $TOOLS/bin/python3 ]] || python3 -m venv "$TOOLS"
    "$TOOLS/bin/python3" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
fi
export CMMD_TEST_TOOLS=$TOOLS

# The kernel tests create network namespaces: make sure conntrack is loaded.
modprobe nf_conntrack 2>/dev/null || true

# The VM tests' kernel: Debian's linux-image-amd64, downloaded and unpacked (not installed) into
# target/vm once; later runs find it there.
echo "--- VM kernel (tests/vm/prepare-kernel.sh)"
tests/vm/prepare-kernel.sh target/vm

# cargo: on PATH, or the invoking user's rustup install when run through sudo.
if ! command -v cargo >/dev/null; then
    home=$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)
    [[ -x $home/.cargo/bin/cargo ]] && PATH=$home/.cargo/bin:$PATH
fi
command -v cargo >/dev/null || { echo "tests/run.sh: cargo is missing: install Rust with rustup (https://rustup.rs), then run this again" >&2; exit 1; }

[[ ${1:-} == --install ]] && exit 0
export CMM_SIM_UNWRITTEN=garbage
echo "--- cargo test --workspace --locked $*   (software cdx: LSDK, unwritten fields garbage)"
CMM_SIM_ABI=lsdk cargo test --workspace --locked "$@"
# The same daemon against the other cdx (the whole run only: arguments choose one run): the tests
# of the conntrack parser, the packaging, the VM harness, the configuration's errors, the vendor
# CLI's bytes, privileges and the soak do not depend on which cdx answers.
[[ $# -eq 0 ]] || exit 0
echo "--- cargo test -p cmmd -p cmmd-tests --locked   (software cdx: ASK, unwritten fields garbage)"
CMM_SIM_ABI=ask cargo test --locked -p cmmd -p cmmd-tests -- \
    --skip conntrack_kernel:: --skip packaging:: --skip dpa_wrapper:: --skip external_checks:: \
    --skip config_errors:: --skip vm:: --skip soak:: --skip privilege:: --skip cli_vendor::
