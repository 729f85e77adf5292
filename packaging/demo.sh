#!/usr/bin/env bash
# See cmmd offload real connections, without the board: three network namespaces (client,
# router, server), nftables with masquerade and a DNAT port-forward in the router, cmmd with its
# built-in defaults and the software cdx in the router, and real TCP and UDP traffic through it.
#
#   sudo packaging/demo.sh [path/to/cmmd]
#
# From a fresh clone on Debian: it installs the tools it needs with apt-get (iproute2, nftables,
# ncat, ping), builds cmmd (cargo build --release; Rust comes from rustup) unless a binary is
# given, prints `cmmd ctl show connections` and the software cdx's table while the flows run,
# then removes everything it created.
set -euo pipefail
CMMD=${1:+$(realpath "$1")}
cd "$(dirname "$0")/.."

[[ $EUID -eq 0 ]] || { echo "demo: run as root (sudo): it creates network namespaces" >&2; exit 1; }

# Tools: command -> Debian package.
declare -A PACKAGE=([ip]=iproute2 [nft]=nftables [ncat]=ncat [ping]=iputils-ping)
missing=()
for tool in "${!PACKAGE[@]}"; do command -v "$tool" >/dev/null || missing+=("${PACKAGE[$tool]}"); done
if [[ ${#missing[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null || { echo "demo: install ${missing[*]}" >&2; exit 1; }
    echo "== apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ -z $CMMD ]]; then
    # cargo: on PATH, or the invoking user's rustup install when run through sudo.
    if ! command -v cargo >/dev/null; then
        home=$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)
        [[ -x $home/.cargo/bin/cargo ]] && PATH=$home/.cargo/bin:$PATH
    fi
    command -v cargo >/dev/null || { echo "demo: cargo is missing: install Rust with rustup (https://rustup.rs), or pass a cmmd binary" >&2; exit 1; }
    echo "== cargo build --release -p cmmd"
    cargo build --release --locked -q -p cmmd
    CMMD=${CARGO_TARGET_DIR:-target}/release/cmmd
fi
[[ -x $CMMD ]] || { echo "demo: $CMMD is not an executable" >&2; exit 1; }

id=$$
C=cmm-demo-client-$id R=cmm-demo-router-$id S=cmm-demo-server-$id
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # The background jobs are subshells: stop what they started inside our namespaces too.
    for ns in $C $R $S; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    done
    wait 2>/dev/null || true
    for ns in $C $R $S; do
        for _ in $(seq 50); do [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break; sleep 0.1; done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

echo "== topology: client 10.1.0.2 -- [r0 router r1] -- 10.2.0.2 server"
for ns in $C $R $S; do ip netns add "$ns"; nsx "$ns" ip link set lo up; done
ip link add c0 netns $C type veth peer name r0 netns $R
ip link add s0 netns $S type veth peer name r1 netns $R
nsx $C ip addr add 10.1.0.2/24 dev c0
nsx $C ip -6 addr add fd01::2/64 dev c0 nodad
nsx $R ip addr add 10.1.0.1/24 dev r0
nsx $R ip -6 addr add fd01::1/64 dev r0 nodad
nsx $R ip addr add 10.2.0.1/24 dev r1
nsx $R ip -6 addr add fd02::1/64 dev r1 nodad
nsx $S ip addr add 10.2.0.2/24 dev s0
nsx $S ip -6 addr add fd02::2/64 dev s0 nodad
for pair in "$C c0" "$R r0" "$R r1" "$S s0"; do set -- $pair; nsx "$1" ip link set "$2" up; done
nsx $C ip route add default via 10.1.0.1
nsx $C ip -6 route add default via fd01::1
nsx $S ip route add default via 10.2.0.1
nsx $S ip -6 route add default via fd02::1
nsx $R sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
nsx $R nft -f - <<'EOF'
table inet demo {
    chain forward { type filter hook forward priority 0; ct state established,related accept; ct state new accept; }
    chain prerouting { type nat hook prerouting priority dstnat; ip daddr 10.1.0.1 tcp dport 8080 dnat ip to 10.2.0.2:80; }
    chain postrouting { type nat hook postrouting priority srcnat; oifname "r1" masquerade; }
}
EOF

echo "== cmmd in the router, software cdx, fast-path ports r0 and r1"
nsx $R "$CMMD" --backend sim --ports r0,r1 --log warn >/tmp/cmm-demo-$id.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do nsx $R "$CMMD" ctl show status >/dev/null 2>&1 && break; sleep 0.1; done

echo "== servers in the server namespace: TCP 80 (echo), UDP 5000 (echo)"
nsx $S ncat -l -k -p 80 --exec /bin/cat >/dev/null 2>&1 &
pids+=($!)
nsx $S ncat -l -k -u -p 5000 --exec /bin/cat >/dev/null 2>&1 &
pids+=($!)
sleep 0.5

echo "== traffic: a TCP connection (masqueraded), a TCP connection to the DNAT port, IPv6 TCP, UDP"
(for i in $(seq 8); do echo "hello $i"; sleep 1; done) | nsx $C ncat 10.2.0.2 80 >/dev/null 2>&1 &
pids+=($!)
(for i in $(seq 8); do echo "forwarded $i"; sleep 1; done) | nsx $C ncat 10.1.0.1 8080 >/dev/null 2>&1 &
pids+=($!)
(for i in $(seq 8); do echo "v6 $i"; sleep 1; done) | nsx $C ncat fd02::2 80 >/dev/null 2>&1 &
pids+=($!)
(for i in $(seq 8); do echo "udp $i"; sleep 0.5; done) | nsx $C ncat -u 10.2.0.2 5000 >/dev/null 2>&1 &
pids+=($!)
nsx $C ping -c 2 -q 10.2.0.2 >/dev/null 2>&1 || true
sleep 4

echo
echo "== cmmd ctl show connections"
nsx $R "$CMMD" ctl show connections
echo
echo "== cmmd ctl show sim   (what the software cdx holds)"
nsx $R "$CMMD" ctl show sim
echo
echo "== cmmd ctl show counters | egrep offloaded|unsupported|local|not_fastpath"
nsx $R "$CMMD" ctl show counters '|' egrep 'offloaded|unsupported|local|fastpath'
echo
echo "(log: /tmp/cmm-demo-$id.log)"
