#!/usr/bin/env bash
# End-to-end: cmmd against the real kernel conntrack, side by side with `conntrack -E` and
# `conntrackd`, on the same ctnetlink load in the same run (issue 7).
#
#   sudo benches/e2e/run.sh [--quick] [--out DIR] [--sections "rate idle overrun latency cold"]
#                                          (PERF=1: also perf-record cmmd's and the listener's rate runs;
#                                           PIN=1: injector on CPU 0, cmmd on CPU 1)
#
# One network namespace holds the node: two veth ports (p0 10.81.1.1/24, p1 10.81.2.1/24, their
# peers in a second namespace), permanent neighbours for the 16 clients and 16 servers the load
# uses, nf_conntrack_events=1. `ct-inject` (benches/src/bin/ct-inject.rs) makes the kernel create
# and delete TCP ESTABLISHED / UDP ASSURED entries between those subnets, so cmmd offloads each
# one into its software cdx. Then, one consumer at a time on the same load:
#
#   1. event rate (`rate`): fixed rates and unthrottled; per consumer: events received vs
#      emitted, overruns (ENOBUFS), CPU seconds and µs per event, peak RSS; cmmd repeated RUNS
#      times and the reference listener LISTENER_RUNS times at the unthrottled rate; the
#      reference row is ct-inject's own listener (64 MiB buffer, receive and decode only);
#   1b. nothing offloadable (`idle`): the same unthrottled churn with entries no policy
#      offloads (TCP SYN_SENT, UDP unreplied), listener and cmmd taking turns IDLE_RUNS times;
#   2. cmmd after a forced overrun (`overrun`; SIGSTOP for a second under load): time to converge;
#   3. ESTABLISHED -> programmed latency at 10k new flows/s (`latency`; cmmd's histogram);
#   4. cold start (`cold`) with 131072 (and, full mode, 1,000,000) pre-existing conntracks: the
#      kernel's dump alone and cmmd to a reconciled table (`/readyz`), taking turns COLD_RUNS
#      times; cmmd to every entry programmed with the software cdx in process and in its own
#      process (`cmmd sim serve`); conntrackd to a loaded cache; RSS of each.
#
# Each figure of issue 17's table is also given as a ratio to its floor measured in the same
# run (medians of the runs, and the range of the per-run ratios):
#   ratio_cpu_offloading       cmmd's CPU per event at the unthrottled rate / the listener's;
#   ratio_cpu_idle             the same with nothing offloadable;
#   ratio_ready_N              cmmd's time to /readyz with N conntracks / the kernel's dump of
#                              them (`ct-inject dump`, the run just before);
#   ratio_sim_process_131072   all 131072 programmed with the software cdx in its own process
#                              / with the software cdx in cmmd's process.
#
# Prints `name: value` lines and writes DIR/results.txt (and the logs); the ratios are
# `name=value` lines at its end. Needs root, iproute2,
# conntrack, conntrackd, curl. Bounded: every wait has a limit; everything it creates (namespaces,
# processes, the host-wide nf_conntrack_max change) is undone on exit.
set -euo pipefail

QUICK=0
OUT=${OUT:-/tmp/cmmd-e2e}
SECTIONS=${SECTIONS:-"rate idle overrun latency cold"}
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) QUICK=1 ;;
        --out) OUT=$2; shift ;;
        --sections) SECTIONS=$2; shift ;;
        *) echo "usage: $0 [--quick] [--out DIR] [--sections \"rate idle overrun latency cold\"]" >&2; exit 2 ;;
    esac
    shift
done
section() { [[ " $SECTIONS " == *" $1 "* ]]; }

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
    RATES="50000 0"; MAX_EVENTS=400000; RATE_SECONDS=4; RUNS=2; LISTENER_RUNS=2; IDLE_RUNS=2
    LATENCY_SECONDS=5; COLD_SIZES="131072"; COLD_RUNS=2
else
    RATES="25000 100000 0"; MAX_EVENTS=2000000; RATE_SECONDS=8; RUNS=10; LISTENER_RUNS=3
    IDLE_RUNS=3; LATENCY_SECONDS=20; COLD_SIZES="131072 1000000"; COLD_RUNS=3
fi
# For A/B comparisons of one row: E2E_RATES="0" E2E_CONSUMERS="listener cmmd" E2E_RUNS=1 ...
RATES=${E2E_RATES:-$RATES}; RUNS=${E2E_RUNS:-$RUNS}; MAX_EVENTS=${E2E_MAX_EVENTS:-$MAX_EVENTS}
CONSUMERS=${E2E_CONSUMERS:-"listener cmmd conntrack-E conntrackd"}

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
# Figures for the ratios: `record NAME VALUE` appends VALUE to the list NAME (a file in OUT).
FIGURES=$OUT/figures
rm -rf "$FIGURES"; mkdir -p "$FIGURES"
record() { echo "$2" >>"$FIGURES/$1"; }
# Value of `name: value` in a file.
field() { awk -v k="$1:" '$1 == k { print $2; exit }' "$2"; }
# utime + stime of a process (all its threads), clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# utime and stime of a process, clock ticks: "user sys".
ticks_split() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
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
# Per-thread context switches of a process: "name=switches ..." (voluntary + involuntary).
thread_switches() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s=%d ' "$(cat "$t/comm")" \
            "$(awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n }' "$t/status")"
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

# `launch_cmmd ARGS...`: start cmmd in the namespace without waiting; sets PID.
launch_cmmd() {
    ip netns exec "$NS" "$CMMD" --backend sim --ports p0,p1 --cli-listen 127.0.0.1:2103 \
        --metrics-listen 127.0.0.1:9103 --log info "$@" >"$OUT/cmmd.log" 2>&1 &
    PID=$!
}

# Start a consumer in the namespace; sets PID (`ip netns exec` execs, so PID is the consumer's
# own). Waits until it listens.
start_consumer() {
    local name=$1; shift
    case $name in
        cmmd)
            launch_cmmd "$@"
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
    RECEIVED=0 OVERRUNS=0 PAUSES=0
    case $name in
        cmmd)
            local m; m=$(metrics)
            PAUSES=$(awk '$1 == "cmmd_event_read_pauses_total" { print $2 }' <<<"$m")
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
# One consumer, one load: `rate_run NAME RATE TAG [OFFLOADABLE]` (1 by default; 0: entries no
# policy offloads). Sets US to the consumer's CPU µs per event.
rate_run() {
    local name=$1 rate=$2 tag=$3 offloadable=${4:-1}
    settle_kernel
    start_consumer "$name"
    local t0 split0; t0=$(ticks "$PID"); split0=$(ticks_split "$PID")
    # PERF=1: a call-graph profile of cmmd or the listener under the load (perf report -i DIR/perf-TAG.data).
    local perf_pid=
    if [[ ${PERF:-0} == 1 && ($name == cmmd || $name == listener) ]]; then
        perf record -q -g ${PERF_EVENT:+-e "$PERF_EVENT"} -o "$OUT/perf-$tag.data" -p "$PID" 2>/dev/null &
        perf_pid=$!
    fi
    nsx "$INJECT" churn --rate "$rate" --events "$MAX_EVENTS" --seconds "$RATE_SECONDS" \
        --window 1024 --offloadable "$offloadable" >"$OUT/inject-$tag.out"
    if [[ -n $perf_pid ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    # Let the consumer drain its socket and finish its work: until its CPU time stops moving
    # for half a second (bounded).
    local last=-1 cur
    for _ in $(seq 40); do
        cur=$(ticks "$PID"); [[ $cur == "$last" ]] && break; last=$cur; sleep 0.5
    done
    local t1 split1 threads switches hwm; t1=$(ticks "$PID"); split1=$(ticks_split "$PID")
    threads=$(thread_ticks "$PID")
    switches=$(thread_switches "$PID"); hwm=$(hwm_kib "$PID")
    stop_consumer "$name"
    local emitted rps; emitted=$(field events_emitted "$OUT/inject-$tag.out")
    rps=$(field requests_per_second "$OUT/inject-$tag.out")
    local received=$RECEIVED overruns=$OVERRUNS pauses=${PAUSES:-0}
    local cpu=$((t1 - t0))
    local us; us=$(awk -v c="$cpu" -v k="$TICK" -v e="$emitted" 'BEGIN { printf "%.2f", e ? c / k * 1e6 / e : 0 }')
    US=$us
    # The same CPU split into user space and the kernel (the consumer's system calls).
    local split; split=$(awk -v a="$split0" -v b="$split1" -v k="$TICK" -v e="$emitted" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "user_us_per_event=%.2f sys_us_per_event=%.2f", e ? (y[1] - x[1]) / k * 1e6 / e : 0,
            e ? (y[2] - x[2]) / k * 1e6 / e : 0 }')
    say "rate $tag consumer=$name offloadable=$offloadable target_rate=$rate achieved_rate=$rps emitted=$emitted received=$received lost=$((emitted - received)) overruns=$overruns cpu_s=$(secs $cpu) cpu_us_per_event=$us $split peak_rss_kib=$hwm kernel_refused_creates=$(field creates_refused "$OUT/inject-$tag.out")"
    if [[ $name == cmmd ]]; then
        # Per thread, since start: the loop (cmmd), the offload worker, the software cdx.
        local per; per=$(tr ' ' '\n' <<<"$threads" | awk -F= -v k="$TICK" -v e="$received" '
            ($1 ~ /^cmmd/ && $2 > 0) || $1 == "cdx-sim" {
                printf "%s_us_per_event=%.2f ", $1, e ? $2 / k * 1e6 / e : 0 }')
        say "rate $tag cmmd_threads: ticks $threads| per received event: $per"
        # Context switches per 1000 received events, per thread: the cost of the hand-offs
        # between the loop and the offload thread.
        per=$(tr ' ' '\n' <<<"$switches" | awk -F= -v e="$received" '
            NF == 2 && $2 > 0 { printf "%s=%.1f ", $1, e ? $2 * 1000 / e : 0 }')
        say "rate $tag cmmd_switches_per_1000_events: $per"
        # Polls that left the event socket aside under churn (netlink.batch_interval).
        say "rate $tag cmmd_event_read_pauses=$pauses"
    elif [[ $name == listener ]]; then
        say "rate $tag listener_switches_per_1000_events: $(awk -v e="$received" '
            { for (i = 1; i <= NF; i++) { split($i, kv, "="); n += kv[2] } }
            END { printf "%.1f", e ? n * 1000 / e : 0 }' <<<"$switches")"
    fi
    return 0
}

if section rate; then
    for rate in $RATES; do
        for consumer in $CONSUMERS; do
            rate_run "$consumer" "$rate" "$consumer-$rate"
            if [[ $rate == 0 && $consumer == listener ]]; then record cpu_listener "$US"; fi
            if [[ $rate == 0 && $consumer == cmmd ]]; then record cpu_cmmd "$US"; fi
        done
    done
    for run in $(seq 2 "$RUNS"); do
        rate_run cmmd 0 "cmmd-max-run$run"
        record cpu_cmmd "$US"
        # The floor again, between cmmd's runs (the machine's state drifts).
        if ((run <= LISTENER_RUNS)); then
            rate_run listener 0 "listener-max-run$run"
            record cpu_listener "$US"
        fi
    done
fi

# --- 1b. nothing offloadable ------------------------------------------------------------------
# The same unthrottled churn, with entries cmmd only classifies (NEW not yet a candidate,
# DESTROY of nothing tracked): its floor is the listener on the same load.
if section idle; then
    for run in $(seq "$IDLE_RUNS"); do
        rate_run listener 0 "listener-idle-run$run" 0
        record cpu_listener_idle "$US"
        rate_run cmmd 0 "cmmd-idle-run$run" 0
        record cpu_cmmd_idle "$US"
    done
fi

# --- 2. overrun and convergence -------------------------------------------------------------
# Stop cmmd for a second under load: its socket overflows, the kernel drops events. Measure
# from SIGCONT to the resync dump completed; from the end of the load to cmmd's table equal to
# the kernel's (a dump); and how long the kernel keeps deleted entries whose DESTROY waits for
# cmmd (they fill the table: the kernel's count and the creates it refused are reported).
kernel_entries() { nsx "$INJECT" dump | awk '$1 == "dump_entries:" { print $2 }'; }
if section overrun; then
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
fi

# --- 3. latency at 10k new flows/s ----------------------------------------------------------
if section latency; then
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
say "latency cmmd new_flows_per_s=10000 $lat overruns=$(metric cmmd_overruns_total) event_read_pauses=$(metric cmmd_event_read_pauses_total)"
stop_consumer cmmd
fi

# --- 4. cold start ----------------------------------------------------------------------------
# `reached_ms T0 [ARGS]`: ms from T0 (Unix ms) until cmmd answers /readyz 200 (or, with
# `--offloaded N`, has N connections offloaded), asked by ct-inject every few ms; "none" if
# not within the limit.
reached_ms() {
    local t0=$1; shift
    local out; out=$(nsx "$INJECT" ready --port 9103 --seconds 120 "$@")
    if [[ $(awk '$1 == "reached:" { print $2 }' <<<"$out") == 1 ]]; then
        echo $(($(awk '$1 == "reached_unix_ms:" { print $2 }' <<<"$out") - t0))
    else
        echo none
    fi
}
# `start_sim_server SIZE`: `cmmd sim serve` with room for SIZE connections; sets SIM_PID.
start_sim_server() {
    rm -f "$OUT/sim.sock"
    ip netns exec "$NS" "$CMMD" sim serve --socket "$OUT/sim.sock" --ports p0,p1 \
        --capacity "$1" >"$OUT/sim-serve.log" 2>&1 &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
    for _ in $(seq 100); do [[ -S $OUT/sim.sock ]] && break; sleep 0.05; done
}
stop_sim_server() {
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
}

if section cold; then
for size in $COLD_SIZES; do
    nsx conntrack -F >/dev/null 2>&1 || true
    nsx "$INJECT" fill --count "$size" --timeout 3600 >"$OUT/fill-$size.out"
    have=$(nsx conntrack -C)
    # The software cdx gets room for the whole table (its default is the vendor's 32768).
    printf '[sim]\ncapacity = %d\n' "$size" >"$OUT/cmmd-cold.toml"
    # /metrics walks the table: ask less often for a large one.
    interval=$((size / 13107 > 10 ? size / 13107 : 10))
    for run in $(seq "$COLD_RUNS"); do
        # The floor first: the kernel's dump of the same table, just before.
        nsx "$INJECT" dump >"$OUT/dump-$size-$run.out"
        dump_s=$(field dump_seconds "$OUT/dump-$size-$run.out")
        record "dump_$size" "$dump_s"
        t0=$(now_ms)
        launch_cmmd --config "$OUT/cmmd-cold.toml" --max-connections "$((size > 131072 ? size : 131072))"
        PIDS+=("$PID")
        t_ready=$(reached_ms "$t0")
        [[ $t_ready != none ]] || { echo "e2e: cmmd not ready" >&2; tail "$OUT/cmmd.log" >&2; exit 1; }
        record "ready_$size" "$(awk -v m="$t_ready" 'BEGIN { printf "%.3f", m / 1000 }')"
        dump_ms=$(grep -o 'initial conntrack dump done.*' "$OUT/cmmd.log" | grep -o 'ms=[0-9]*' | head -1)
        # Entries whose port a default deny rule names (pptp, tcp/1723: the 1,000,000 fill
        # reaches that source port) are refused by policy, decided during the dump.
        excluded=$(metric 'cmmd_decisions_total{reason="excluded_by_rule"}')
        want=$((have - ${excluded:-0}))
        t_all=$(reached_ms "$t0" --offloaded "$want" --interval-ms "$interval")
        [[ $t_all == none ]] || record "sim_inprocess_$size" "$(awk -v m="$t_all" 'BEGIN { printf "%.3f", m / 1000 }')"
        say "cold $size run=$run kernel_entries=$have kernel_dump_s=$dump_s consumer=cmmd ready_ms=$t_ready ready_over_dump=$(awk -v r="$t_ready" -v d="$dump_s" 'BEGIN { printf "%.2f", d ? r / 1000 / d : 0 }') engine_${dump_ms:-ms=?} all_programmed_ms=$t_all offloaded=$(cmmd_offloaded) excluded_by_rule=${excluded:-0} rss_kib=$(rss_kib "$PID") peak_rss_kib=$(hwm_kib "$PID") table_bytes=$(metric cmmd_table_bytes)"
        stop_consumer cmmd
    done
    if [[ $size == 131072 ]]; then
        # The same with the software cdx at its default size: less of the RSS is the sim's.
        start_consumer cmmd
        wait_until "cmmd offloaded" 32768 600 cmmd_offloaded
        say "cold $size consumer=cmmd sim_capacity=default offloaded=$REACHED rss_kib=$(rss_kib "$PID") peak_rss_kib=$(hwm_kib "$PID")"
        stop_consumer cmmd
        # The software cdx in its own process, as cdx.ko is outside cmm on the board: the RSS
        # is cmmd's alone, and every command crosses a socket to another process.
        for run in $(seq "$COLD_RUNS"); do
            start_sim_server "$size"
            t0=$(now_ms)
            launch_cmmd --sim-socket "$OUT/sim.sock"
            PIDS+=("$PID")
            # PERF=1: both processes while cmmd programs the table.
            local_perf=
            if [[ ${PERF:-0} == 1 ]]; then
                perf record -q -g -o "$OUT/perf-sim-process-$run.data" -p "$PID,$SIM_PID" 2>/dev/null &
                local_perf=$!
            fi
            t_all=$(reached_ms "$t0" --offloaded "$have" --interval-ms "$interval")
            if [[ -n $local_perf ]]; then kill -INT "$local_perf"; wait "$local_perf" || true; fi
            [[ $t_all == none ]] || record "sim_process_$size" "$(awk -v m="$t_all" 'BEGIN { printf "%.3f", m / 1000 }')"
            say "cold $size run=$run consumer=cmmd sim=separate_process all_programmed_ms=$t_all offloaded=$(cmmd_offloaded) rss_kib=$(rss_kib "$PID") peak_rss_kib=$(hwm_kib "$PID") sim_rss_kib=$(rss_kib "$SIM_PID")"
            stop_consumer cmmd
            stop_sim_server
        done
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
fi

# --- ratios to the floors -------------------------------------------------------------------
# `ratio NAME CMMD FLOOR GOAL`: medians of the two lists, their ratio, and the range of the
# ratios of runs taken together (i-th with i-th); `name=value` lines.
median() { sort -g "$FIGURES/$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
span() { sort -g "$FIGURES/$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
ratio() {
    local name=$1 cmmd=$2 floor=$3 goal=$4
    [[ -s $FIGURES/$cmmd && -s $FIGURES/$floor ]] || return 0
    local c f; c=$(median "$cmmd") f=$(median "$floor")
    local per; per=$(paste -d' ' "$FIGURES/$cmmd" "$FIGURES/$floor" | awk '$1 != "" && $2 > 0 { print $1 / $2 }' | sort -g |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.2f-%.2f", lo, hi }')
    say "${name}=$(awk -v c="$c" -v f="$f" 'BEGIN { printf "%.2f", f ? c / f : 0 }')"
    say "${name}_runs=${per:-none}"
    say "${name}_cmmd=$c"
    say "${name}_cmmd_range=$(span "$cmmd")"
    say "${name}_floor=$f"
    say "${name}_floor_range=$(span "$floor")"
    say "${name}_goal=$goal"
}
ratio ratio_cpu_offloading cpu_cmmd cpu_listener "<=1.3"
ratio ratio_cpu_idle cpu_cmmd_idle cpu_listener_idle "<=1.0"
for size in $COLD_SIZES; do
    ratio "ratio_ready_$size" "ready_$size" "dump_$size" "<=1.1"
done
ratio ratio_sim_process_131072 sim_process_131072 sim_inprocess_131072 "<=2"

say "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
say "versions: $("$CMMD" --version 2>&1 | head -1); $(conntrack --version 2>&1); $(conntrackd -v 2>&1 | head -1)"
echo "e2e: results in $RESULTS"
