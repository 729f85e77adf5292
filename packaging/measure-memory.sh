#!/usr/bin/env bash
# Measure cmmd's memory with N tracked and offloaded connections: the figures the DaemonSet's
# memory request and limit are derived from (packaging/README.md, "Resources").
#
#   sudo packaging/measure-memory.sh [N ...]        (default: 32768 131072 196608)
#
# For each N: a network namespace with two veth ports and permanent neighbours, N conntracks
# made by ct-inject (TCP ESTABLISHED / UDP ASSURED between the ports' subnets), the software cdx
# in its own process (on the board cdx is the kernel's, outside cmmd), and cmmd with
# --max-connections N and the periodic sweep every 2 s. After three sweeps (full-table dumps,
# the largest transient) with everything tracked offloaded, it prints cmmd's VmRSS and VmHWM
# (its peak RSS).
#
# Needs root, iproute2, conntrack and curl; builds cmmd and ct-inject (release). Everything it
# creates (namespaces, processes, files) is removed on exit. N is at most nf_conntrack_max.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SIZES=${*:-32768 131072 196608}
[[ $EUID -eq 0 ]] || { echo "measure-memory: needs root (network namespaces)" >&2; exit 1; }
for tool in ip conntrack curl; do
    command -v $tool >/dev/null || { echo "measure-memory: $tool is missing (apt-get install iproute2 conntrack curl)" >&2; exit 1; }
done
(cd "$ROOT" && cargo build --release -q -p cmmd -p cmmd-benches --bins)
CMMD=$TARGET/release/cmmd INJECT=$TARGET/release/ct-inject

NS=cmmd-mem-$$ PEER=cmmd-mem-peer-$$
OUT=$(mktemp -d /tmp/cmmd-mem.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$PEER" 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT

nsx() { ip netns exec "$NS" "$@"; }
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }
metric() { nsx curl -s --max-time 2 http://127.0.0.1:9103/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
wait_for() { # wait_for METRIC AT_LEAST SECONDS
    local v=0
    for _ in $(seq $(($3 * 10))); do
        v=$(metric "$1" || true)
        [[ ${v:-0} -ge $2 ]] && return 0
        sleep 0.1
    done
    echo "measure-memory: $1 stayed at ${v:-0} (wanted $2); cmmd's counters:" >&2
    nsx curl -s --max-time 2 http://127.0.0.1:9103/metrics | grep -v '^#' | awk '$2 != 0' >&2
    tail -5 "$OUT/cmmd.log" >&2
    exit 1
}

ip netns add "$NS"
ip netns add "$PEER"
nsx ip link set lo up
ip link add p0 netns "$NS" type veth peer name q0 netns "$PEER"
ip link add p1 netns "$NS" type veth peer name q1 netns "$PEER"
nsx ip addr add 10.81.1.1/24 dev p0
nsx ip addr add 10.81.2.1/24 dev p1
for l in p0 p1; do nsx ip link set $l up; done
for l in q0 q1; do ip netns exec "$PEER" ip link set $l up; done
for h in $(seq 2 17); do
    nsx ip neigh add 10.81.1.$h lladdr 02:00:00:01:00:$(printf %02x "$h") dev p0 nud permanent
    nsx ip neigh add 10.81.2.$h lladdr 02:00:00:02:00:$(printf %02x "$h") dev p1 nud permanent
done
nsx sysctl -qw net.ipv4.ip_forward=1 net.netfilter.nf_conntrack_events=1
printf '[netlink]\nsweep_interval = "2s"\n' >"$OUT/cmmd.toml"

for n in $SIZES; do
    nsx conntrack -F >/dev/null 2>&1 || true
    nsx "$INJECT" fill --count "$n" --timeout 600 >/dev/null
    have=$(nsx conntrack -C)
    ip netns exec "$NS" "$CMMD" sim serve --socket "$OUT/sim.sock" --ports p0,p1 --capacity "$n" >"$OUT/sim.log" 2>&1 &
    sim=$!
    PIDS+=("$sim")
    for _ in $(seq 100); do [[ -S $OUT/sim.sock ]] && break; sleep 0.05; done
    ip netns exec "$NS" "$CMMD" --backend sim --sim-socket "$OUT/sim.sock" --ports p0,p1 \
        --max-connections "$n" --config "$OUT/cmmd.toml" --cli-listen 127.0.0.1:2103 \
        --metrics-listen 127.0.0.1:9103 --log warn >"$OUT/cmmd.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    # Wait for three sweeps (each dumps the whole table), then for every tracked connection to
    # be offloaded (a default deny rule leaves tcp/1723 to the kernel: not tracked).
    wait_for cmmd_sweeps_total 3 300
    for _ in $(seq 600); do
        tracked=$(metric cmmd_table_entries)
        [[ $(metric 'cmmd_flows{state="offloaded"}') == "$tracked" ]] && break
        sleep 0.1
    done
    echo "conntracks=$have tracked_offloaded=$tracked rss_kib=$(kib VmRSS "$pid") peak_rss_kib=$(kib VmHWM "$pid")"
    kill -TERM "$pid" "$sim"
    wait "$pid" "$sim" 2>/dev/null || true
    PIDS=()
    rm -f "$OUT/sim.sock"
done
