#!/usr/bin/env bash
# End-to-end: cmmd against the real kernel conntrack, side by side with `conntrack -E` and
# `conntrackd`, on the same ctnetlink load in the same run (issue 7).
#
#   sudo benches/e2e/run.sh [--quick] [--out DIR]      (PERF=1: also perf-record cmmd's rate runs;
#                                                       PIN=1: injector on CPU 0, cmmd on CPU 1)
#
# One network namespace holds the node: two veth ports (p0 10.81.1.1/24, p1 10.81.2.1/24, their
# peers in a second namespace), permanent neighbours for the 16 clients and 16 servers the load
# uses, nf_conntrack_events=1. `ct-inject` (benches/src/bin/ct-inject.rs) makes the kernel create
# and delete TCP ESTABLISHED / UDP ASSURED entries between those subnets, so cmmd offloads each
# one into its software cdx. Then, one consumer at a time on the same load:
#
#   1. event rate: fixed rates and unthrottled; per consumer: events received vs emitted,
#      overruns (ENOBUFS), CPU seconds and µs per event, peak RSS; cmmd repeated RUNS times at
#      the unthrottled rate; the reference row is ct-inject's own listener (64 MiB buffer);
#   2. cmmd after a forced overrun (SIGSTOP for a second under load): time to converge;
#   3. ESTABLISHED -> programmed latency at 10k new flows/s (cmmd's histogram);
#   4. cold start with 131072 (and, full mode, 1,000,000) pre-existing conntracks: the kernel's
#      dump alone, cmmd to a reconciled table and to every entry programmed, conntrackd to a
#      loaded cache; RSS of each with the table loaded.
#
# Prints `name: value` lines and writes DIR/results.txt (and the logs). Needs root, iproute2,
# conntrack, conntrackd, curl. Bounded: every wait has a limit; everything it creates (namespaces,
# processes, the host-wide nf_conntrack_max change) is undone on exit.
set -euo pipefail

QUICK=0
OUT=${OUT:-/tmp/cmmd-e2e}
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) QUICK=1 ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--quick] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CMMD=${CMMD:-$TARGET/release/cmmd}
INJECT=${INJECT:-$TARGET/release/ct-inject}
if [[ ${BUILD:-1} == 1 ]]; then
    (cd "$ROOT" && cargo build --release -q -p cmmd -p cmmd-benches --bins)
fi
[[ $EUID -eq 0 ]] || { echo "e2e: needs root (network namespaces)" >&2; exit 1; }
for tool in ip conntrack conntrackd curl; do
    command -v $tool >/dev/null || { echo "e2e: $tool missing (apt-get install iproute2 conntrack conntrackd curl)" >&2; exit 1; }
done
[[ -x $CMMD && -x $INJECT ]] || { echo "e2e: $CMMD or $INJECT not built" >&2; exit 1; }

if [[ $QUICK == 1 ]]; then
    RATES="50000 0"; MAX_EVENTS=400000; RATE_SECONDS=4; RUNS=2
    LATENCY_SECONDS=5; COLD_SIZES="131072"
else
    RATES="25000 100000 0"; MAX_EVENTS=2000000; RATE_SECONDS=8; RUNS=10
    LATENCY_SECONDS=20; COLD_SIZES="131072 1000000"
fi

mkdir -p "$OUT"
# PIN=1: the load generator on CPU 0, cmmd on CPU 1 (the kernel creates the injector's
# conntracks inside its system calls; unpinned, that work shares cmmd's core).
if [[ ${PIN:-0} == 1 ]]; then
    printf '#!/bin/sh\nexec taskset -c 1 %q "$@"\n' "$CMMD" >"$OUT/cmmd-pinned"
    printf '#!/bin/sh\nexec taskset -c 0 %q "$@"\n' "$INJECT" >"$OUT/ct-inject-pinned"
    chmod +x "$OUT/cmmd-pinned" "$OUT/ct-inject-pinned"
    CMMD=$OUT/cmmd-pinned INJECT=$OUT/ct-inject-pinned
fi
RESULTS=$OUT/results.txt
: >"$RESULTS"
NS=cmmd-e2e-$$ PEER=cmmd-e2e-peer-$$
TICK=$(getconf CLK_TCK)
CT_MAX_SAVED=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$PEER" 2>/dev/null || true
    echo "$CT_MAX_SAVED" >/proc/sys/net/netfilter/nf_conntrack_max
}
trap cleanup EXIT

nsx() { ip netns exec "$NS" "$@"; }
say() { echo "$*" | tee -a "$RESULTS"; }
# Value of `name: value` in a file.
field() { awk -v k="$1:" '$1 == k { print $2; exit }' "$2"; }
# utime + stime of a process (all its threads), clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Per-thread CPU ticks of a process: "name=ticks ..." (utime and stime follow the state field).
thread_ticks() {
    local t rest
    for t in /proc/"$1"/task/*; do
        rest=$(sed 's/^.*) //' "$t/stat")
        # shellcheck disable=SC2086
        set -- $rest
        printf '%s=%d ' "$(cat "$t/comm")" $((${12} + ${13}))
    done
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
secs() { awk -v t="$1" -v k="$TICK" 'BEGIN { printf "%.2f", t / k }'; }
now_ms() { date +%s%3N; }
# `wait_until WHAT TARGET TRIES CMD...`: run CMD every 50 ms until it prints a number >= TARGET
# (at most TRIES times); sets REACHED to the last number.
wait_until() {
    local what=$1 target=$2 tries=$3; shift 3
    REACHED=0
    for _ in $(seq "$tries"); do
        REACHED=$("$@" || true); REACHED=${REACHED:-0}
        [[ $REACHED -ge $target ]] && return 0
        sleep 0.05
    done
    echo "e2e: $what stayed at $REACHED (wanted $target)" >&2
}

# --- the node -------------------------------------------------------------------------------
ip netns add "$NS"
ip netns add "$PEER"
nsx ip link set lo up
ip link add p0 netns "$NS" type veth peer name q0 netns "$PEER"
ip link add p1 netns "$NS" type veth peer name q1 netns "$PEER"
nsx ip addr add 10.81.1.1/24 dev p0
nsx ip addr add 10.81.2.1/24 dev p1
nsx ip link set p0 up
nsx ip link set p1 up
ip netns exec "$PEER" ip link set q0 up
ip netns exec "$PEER" ip link set q1 up
for h in $(seq 2 17); do
    nsx ip neigh add 10.81.1.$h lladdr 02:00:00:01:00:$(printf %02x "$h") dev p0 nud permanent
    nsx ip neigh add 10.81.2.$h lladdr 02:00:00:02:00:$(printf %02x "$h") dev p1 nud permanent
done
nsx sysctl -qw net.ipv4.ip_forward=1
nsx sysctl -qw net.netfilter.nf_conntrack_events=1
# Host-wide (init namespace only): room for the largest cold start; restored on exit.
echo 1200000 >/proc/sys/net/netfilter/nf_conntrack_max

cat >"$OUT/conntrackd.conf" <<EOF
General {
    Systemd off
    HashSize 65536
    HashLimit 2400000
    Syslog off
    LogFile $OUT/conntrackd.log
    LockFile $OUT/conntrackd.lock
    UNIX { Path $OUT/conntrackd.ctl }
    NetlinkBufferSize 2097152
    NetlinkBufferSizeMaxGrowth 8388608
    NetlinkOverrunResync on
}
Stats {
    LogFile off
}
EOF

metrics() { nsx curl -sf --max-time 2 http://127.0.0.1:9103/metrics || true; }
metric() { metrics | awk -v k="$1" '$1 == k { print $2; exit }'; }
cmmd_offloaded() { metrics | awk '$1 == "cmmd_flows{state=\"offloaded\"}" { print $2 }'; }
conntrackd_active() {
    nsx conntrackd -C "$OUT/conntrackd.conf" -s 2>/dev/null |
        awk -F'\t+' '/current active connections:/ { gsub(/ /, "", $NF); print $NF }'
}
ready() { [[ $(nsx curl -s -o /dev/null -w '%{http_code}' --max-time 1 http://127.0.0.1:9103/readyz) == 200 ]]; }

# Start a consumer in the namespace; sets PID (`ip netns exec` execs, so PID is the consumer's
# own). Waits until it listens.
start_consumer() {
    local name=$1; shift
    case $name in
        cmmd)
            ip netns exec "$NS" "$CMMD" --backend sim --ports p0,p1 --cli-listen 127.0.0.1:2103 \
                --metrics-listen 127.0.0.1:9103 --log info "$@" >"$OUT/cmmd.log" 2>&1 &
            PID=$!
            for _ in $(seq 1500); do ready && break; sleep 0.02; done
            ready || { echo "e2e: cmmd not ready" >&2; tail "$OUT/cmmd.log" >&2; exit 1; } ;;
        conntrack-E)
            ip netns exec "$NS" conntrack -E -o xml >/dev/null 2>"$OUT/conntrack-E.err" &
            PID=$!
            sleep 0.5 ;;
        conntrackd)
            rm -f "$OUT/conntrackd.lock" "$OUT/conntrackd.ctl"
            ip netns exec "$NS" conntrackd -C "$OUT/conntrackd.conf" >"$OUT/conntrackd.out" 2>&1 &
            PID=$!
            for _ in $(seq 100); do
                nsx conntrackd -C "$OUT/conntrackd.conf" -s >/dev/null 2>&1 && break; sleep 0.05
            done ;;
        listener)
            ip netns exec "$NS" "$INJECT" listen --seconds 600 --idle 2 >"$OUT/listener.out" 2>&1 &
            PID=$!
            sleep 0.5 ;;
    esac
    PIDS+=("$PID")
}

# Stop the consumer; sets RECEIVED and OVERRUNS (events it got, overruns it saw).
stop_consumer() {
    local name=$1
    RECEIVED=0 OVERRUNS=0
    case $name in
        cmmd)
            local m; m=$(metrics)
            RECEIVED=$(awk '$1 ~ /^cmmd_events_total\{type="(new|update|destroy)"\}$/ { s += $2 } END { print s + 0 }' <<<"$m")
            OVERRUNS=$(awk '$1 == "cmmd_overruns_total" { print $2 }' <<<"$m")
            kill -TERM "$PID" ;;
        conntrack-E)
            kill -INT "$PID" ;;
        conntrackd)
            local s; s=$(nsx conntrackd -C "$OUT/conntrackd.conf" -s runtime 2>/dev/null || true)
            RECEIVED=$(awk -F'\t+' '/events received:/ { gsub(/ /, "", $NF); print $NF }' <<<"$s")
            OVERRUNS=$(awk -F'\t+' '/netlink overrun:/ { gsub(/ /, "", $NF); print $NF }' <<<"$s")
            nsx conntrackd -C "$OUT/conntrackd.conf" -k >/dev/null 2>&1 || kill -TERM "$PID" ;;
        listener) ;; # exits by itself when the events stop
    esac
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    case $name in
        conntrack-E)
            RECEIVED=$(grep -o '[0-9]* flow events have been shown' "$OUT/conntrack-E.err" | awk '{ print $1 }')
            OVERRUNS=$(grep -c ENOBUFS "$OUT/conntrack-E.err" || true) ;;
        listener)
            RECEIVED=$(field events_received "$OUT/listener.out")
            OVERRUNS=$(field overruns "$OUT/listener.out") ;;
    esac
    RECEIVED=${RECEIVED:-0} OVERRUNS=${OVERRUNS:-0}
}

# Entries deleted while a listener's socket was full stay in the kernel's table (counted, not
# dumped) until their DESTROY is delivered (NETLINK_BROADCAST_ERROR listeners). Wait until the
# table is really empty so the next run starts from the same state (bounded).
settle_kernel() {
    local n
    for _ in $(seq 240); do
        n=$(nsx conntrack -C); [[ $n == 0 ]] && return 0; sleep 0.5
    done
    echo "e2e: kernel still counts $n conntracks" >&2
}

# --- 1. event rate ----------------------------------------------------------------------------
# One consumer, one load: `rate_run NAME RATE TAG`.
rate_run() {
    local name=$1 rate=$2 tag=$3
    settle_kernel
    start_consumer "$name"
    local t0 threads0; t0=$(ticks "$PID")
    # PERF=1: a call-graph profile of cmmd under the load (perf report -i DIR/perf-TAG.data).
    local perf_pid=
    if [[ ${PERF:-0} == 1 && $name == cmmd ]]; then
        perf record -q -g -o "$OUT/perf-$tag.data" -p "$PID" 2>/dev/null &
        perf_pid=$!
    fi
    nsx "$INJECT" churn --rate "$rate" --events "$MAX_EVENTS" --seconds "$RATE_SECONDS" \
        --window 1024 >"$OUT/inject-$tag.out"
    if [[ -n $perf_pid ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    # Let the consumer drain its socket and finish its work: until its CPU time stops moving
    # for half a second (bounded).
    local last=-1 cur
    for _ in $(seq 40); do
        cur=$(ticks "$PID"); [[ $cur == "$last" ]] && break; last=$cur; sleep 0.5
    done
    local t1 threads hwm; t1=$(ticks "$PID"); threads=$(thread_ticks "$PID"); hwm=$(hwm_kib "$PID")
    stop_consumer "$name"
    local emitted rps; emitted=$(field events_emitted "$OUT/inject-$tag.out")
    rps=$(field requests_per_second "$OUT/inject-$tag.out")
    local received=$RECEIVED overruns=$OVERRUNS
    local cpu=$((t1 - t0))
    local us; us=$(awk -v c="$cpu" -v k="$TICK" -v e="$emitted" 'BEGIN { printf "%.2f", e ? c / k * 1e6 / e : 0 }')
    say "rate $tag consumer=$name target_rate=$rate achieved_rate=$rps emitted=$emitted received=$received lost=$((emitted - received)) overruns=$overruns cpu_s=$(secs $cpu) cpu_us_per_event=$us peak_rss_kib=$hwm kernel_refused_creates=$(field creates_refused "$OUT/inject-$tag.out")"
    if [[ $name == cmmd ]]; then
        # Per thread, since start: the loop (cmmd), the offload worker, the software cdx.
        local per; per=$(tr ' ' '\n' <<<"$threads" | awk -F= -v k="$TICK" -v e="$received" '
            $1 == "cmmd" || $1 == "cmmd-offload" || $1 == "cdx-sim" {
                printf "%s_us_per_event=%.2f ", $1, e ? $2 / k * 1e6 / e : 0 }')
        say "rate $tag cmmd_threads: ticks $threads| per received event: $per"
    fi
    return 0
}

for rate in $RATES; do
    for consumer in listener cmmd conntrack-E conntrackd; do
        rate_run "$consumer" "$rate" "$consumer-$rate"
    done
done
for run in $(seq 2 "$RUNS"); do
    rate_run cmmd 0 "cmmd-max-run$run"
done

# --- 2. overrun and convergence -------------------------------------------------------------
# Stop cmmd for a second under load: its socket overflows, the kernel drops events. Measure
# from SIGCONT to the resync dump completed; from the end of the load to cmmd's table equal to
# the kernel's (a dump); and how long the kernel keeps deleted entries whose DESTROY waits for
# cmmd (they fill the table: the kernel's count and the creates it refused are reported).
kernel_entries() { nsx "$INJECT" dump | awk '$1 == "dump_entries:" { print $2 }'; }
settle_kernel
start_consumer cmmd
nsx "$INJECT" churn --rate 0 --seconds 4 --window 20000 >"$OUT/inject-overrun.out" &
INJ=$!
sleep 1
kill -STOP "$PID"
sleep 1
kill -CONT "$PID"
cont=$(now_ms)
resynced=none
for _ in $(seq 400); do
    if [[ $(metric cmmd_resyncs_total) -ge 1 ]]; then resynced=$(($(now_ms) - cont)); break; fi
    sleep 0.025
done
peak_count=0
while kill -0 "$INJ" 2>/dev/null; do
    n=$(nsx conntrack -C); ((n > peak_count)) && peak_count=$n; sleep 0.2
done
wait $INJ || true
ended=$(now_ms)
converged=none drained=none
for _ in $(seq 240); do
    n=$(nsx conntrack -C); ((n > peak_count)) && peak_count=$n
    [[ $drained == none && $n == 0 ]] && drained=$(($(now_ms) - ended))
    table=$(metric cmmd_table_entries) kernel=$(kernel_entries)
    [[ $converged == none && $table == "$kernel" ]] && converged=$(($(now_ms) - ended))
    [[ $converged != none && $drained != none ]] && break
    sleep 0.5
done
say "overrun cmmd overruns=$(metric cmmd_overruns_total) resyncs=$(metric cmmd_resyncs_total) resync_done_after_continue_ms=$resynced resync_ms=$(metric cmmd_resync_duration_milliseconds) table_equals_kernel_after_load_end_ms=$converged table=$table kernel=$kernel kernel_count_peak=$peak_count kernel_count_zero_after_load_end_ms=$drained kernel_refused_creates=$(field creates_refused "$OUT/inject-overrun.out")"
stop_consumer cmmd

# --- 3. latency at 10k new flows/s ----------------------------------------------------------
settle_kernel
# Up to 50000 connections are live at once: give the software cdx room for all of them (its
# default is the vendor's 32768), or the rest wait as hw_full and the tail measures the backoff.
printf '[sim]\ncapacity = 65536\n' >"$OUT/cmmd-latency.toml"
start_consumer cmmd --config "$OUT/cmmd-latency.toml"
hist() { metrics | awk '/^cmmd_programming_latency_seconds_bucket/ { match($1, /le="[^"]*"/); print substr($1, RSTART + 4, RLENGTH - 5), $2 }'; }
hist >"$OUT/latency-before.txt"
nsx "$INJECT" churn --rate 20000 --seconds "$LATENCY_SECONDS" --window 50000 >"$OUT/inject-latency.out"
sleep 1
hist >"$OUT/latency-after.txt"
lat=$(paste "$OUT/latency-before.txt" "$OUT/latency-after.txt" | awk '
    { le[NR] = $1; n[NR] = $4 - $2 } END {
        total = n[NR]; p50 = ""; p99 = ""
        for (i = 1; i <= NR; i++) {
            if (p50 == "" && n[i] >= 0.5 * total) p50 = le[i]
            if (p99 == "" && n[i] >= 0.99 * total) p99 = le[i]
        }
        printf "programmed=%d p50_le_s=%s p99_le_s=%s", total, p50, (p99 == "+Inf" ? ">1" : p99) }')
say "latency cmmd new_flows_per_s=10000 $lat overruns=$(metric cmmd_overruns_total)"
stop_consumer cmmd

# --- 4. cold start ----------------------------------------------------------------------------
for size in $COLD_SIZES; do
    nsx conntrack -F >/dev/null 2>&1 || true
    nsx "$INJECT" fill --count "$size" --timeout 3600 >"$OUT/fill-$size.out"
    have=$(nsx conntrack -C)
    nsx "$INJECT" dump >"$OUT/dump-$size.out"
    say "cold $size kernel_entries=$have kernel_dump_s=$(field dump_seconds "$OUT/dump-$size.out")"

    # The software cdx gets room for the whole table (its default is the vendor's 32768).
    printf '[sim]\ncapacity = %d\n' "$size" >"$OUT/cmmd-cold.toml"
    t0=$(now_ms)
    start_consumer cmmd --config "$OUT/cmmd-cold.toml" --max-connections "$((size > 131072 ? size : 131072))"
    t_ready=$(($(now_ms) - t0))
    dump_ms=$(grep -o 'initial conntrack dump done.*' "$OUT/cmmd.log" | grep -o 'ms=[0-9]*' | head -1)
    # Entries whose port a default deny rule names (pptp, tcp/1723: the 1,000,000 fill reaches
    # that source port) are refused by policy, decided during the dump.
    excluded=$(metric 'cmmd_decisions_total{reason="excluded_by_rule"}')
    wait_until "cmmd offloaded" "$((have - ${excluded:-0}))" 1200 cmmd_offloaded
    say "cold $size consumer=cmmd ready_ms=$t_ready engine_${dump_ms:-ms=?} all_programmed_ms=$(($(now_ms) - t0)) offloaded=$REACHED excluded_by_rule=${excluded:-0} rss_kib=$(rss_kib "$PID") peak_rss_kib=$(hwm_kib "$PID") table_bytes=$(metric cmmd_table_bytes)"
    stop_consumer cmmd
    if [[ $size == 131072 ]]; then
        # The same with the software cdx at its default size: less of the RSS is the sim's.
        start_consumer cmmd
        wait_until "cmmd offloaded" 32768 600 cmmd_offloaded
        say "cold $size consumer=cmmd sim_capacity=default offloaded=$REACHED rss_kib=$(rss_kib "$PID") peak_rss_kib=$(hwm_kib "$PID")"
        stop_consumer cmmd
        # The software cdx in its own process, as cdx.ko is outside cmm on the board: the RSS
        # is cmmd's alone.
        ip netns exec "$NS" "$CMMD" sim serve --socket "$OUT/sim.sock" --ports p0,p1 \
            --capacity "$size" >"$OUT/sim-serve.log" 2>&1 &
        SIM_PID=$!
        PIDS+=("$SIM_PID")
        for _ in $(seq 100); do [[ -S $OUT/sim.sock ]] && break; sleep 0.05; done
        start_consumer cmmd --sim-socket "$OUT/sim.sock"
        wait_until "cmmd offloaded" "$have" 1200 cmmd_offloaded
        say "cold $size consumer=cmmd sim=separate_process offloaded=$REACHED rss_kib=$(rss_kib "$PID") peak_rss_kib=$(hwm_kib "$PID") sim_rss_kib=$(rss_kib "$SIM_PID")"
        stop_consumer cmmd
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi

    t0=$(now_ms)
    start_consumer conntrackd
    wait_until "conntrackd active" "$have" 1200 conntrackd_active
    t_loaded=$(($(now_ms) - t0))
    active=$REACHED
    say "cold $size consumer=conntrackd loaded_ms=$t_loaded active=$active rss_kib=$(rss_kib "$PID") peak_rss_kib=$(hwm_kib "$PID")"
    stop_consumer conntrackd
done
nsx conntrack -F >/dev/null 2>&1 || true

say "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
say "versions: $("$CMMD" --version 2>&1 | head -1); $(conntrack --version 2>&1); $(conntrackd -v 2>&1 | head -1)"
echo "e2e: results in $RESULTS"
