//! The metrics and probe endpoint: what the gauges mean, and the probes under abuse.
//!
//! Once `/metrics` listens on the node's address (as the DaemonSet does, for Prometheus),
//! anyone who reaches the port can open connections. The kubelet's liveness and readiness
//! probes must keep answering whatever they do, or the kubelet restarts a healthy cmmd.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cmmd_tests::daemon::Daemon;
use cmmd_tests::http::{self, METRICS};
use cmmd_tests::netns::{Netns, require_root};
use cmmd_tests::scenario::{Op, POLL, WAIT, entries, pin_neighbours, start_daemon};
use cmmd_tests::topology::{SERVER_V4, Topology};
use cmmd_tests::traffic::wait_for;

fn binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_cmmd-test"))
}

/// What a probe may take under the flood: half the kubelet's timeout in the DaemonSet (2 s).
/// Unanswered, it fails at once; answered, it takes about a millisecond.
const PROBE_BOUND: Duration = Duration::from_secs(1);

fn metrics_addr() -> SocketAddr {
    METRICS.parse().expect("address")
}

/// The status line of a GET (or the error), and the time it took.
fn get(netns: &Netns, path: &str) -> (String, Duration) {
    let started = Instant::now();
    let status = match http::get(netns, metrics_addr(), path) {
        Ok(text) => text.lines().next().unwrap_or("").to_owned(),
        Err(e) => format!("error: {e}"),
    };
    (status, started.elapsed())
}

/// The samples of `/metrics`: `name{labels}` to value.
fn metrics(netns: &Netns) -> BTreeMap<String, f64> {
    http::samples(&http::get(netns, metrics_addr(), "/metrics").expect("/metrics answers"))
}

fn sample(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or_else(|| panic!("no sample {name}"))
}

/// `count` connections that send half a request line and then wait.
fn half_requests(netns: &Netns, count: usize) -> Vec<TcpStream> {
    let addr = metrics_addr();
    netns
        .run_in(move || {
            (0..count)
                .filter_map(|_| {
                    let mut stream =
                        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
                    stream.write_all(b"GET /metr").ok()?;
                    Some(stream)
                })
                .collect()
        })
        .expect("runs in the namespace")
}

fn assert_probes_answer(netns: &Netns, when: &str) {
    for (path, want) in [("/healthz", "HTTP/1.0 200 OK"), ("/readyz", "HTTP/1.0 200 OK")] {
        let (status, took) = get(netns, path);
        assert_eq!(status, want, "{path} {when}");
        assert!(took <= PROBE_BOUND, "{path} {when} took {took:?}");
    }
}

/// 300 connections that send half a request line and wait, then the probes: each answers at
/// once, however many times it is asked while the flood holds and grows (to 550), and so does
/// `/metrics`. Before the server evicted idle clients, the first /healthz got no answer at all.
#[test]
fn probes_answer_while_300_clients_hold_half_a_request() {
    require_root();
    let netns = Netns::new("htf").expect("namespace");
    let daemon = Daemon::start(binary(), &netns, &["--backend", "sim"]).expect("daemon");
    assert_probes_answer(&netns, "before the flood");
    let mut flood = half_requests(&netns, 300);
    assert_eq!(flood.len(), 300, "the kernel accepts every flood connection");
    for round in 0..5 {
        assert_probes_answer(&netns, &format!("during the flood, round {round}"));
        // More of the same between the probes: the flood keeps coming.
        flood.extend(half_requests(&netns, 50));
    }
    assert_eq!(flood.len(), 550);
    let (status, took) = get(&netns, "/metrics");
    assert_eq!(status, "HTTP/1.0 200 OK", "/metrics during the flood");
    assert!(took <= PROBE_BOUND, "/metrics took {took:?}");
    drop(flood);
    assert_probes_answer(&netns, "after the flood");
    assert!(daemon.log().lines().all(|l| !l.contains("ERROR")), "{}", daemon.log());
}

/// `cmmd_connections_not_offloaded` counts connections, `cmmd_decisions_total` decisions: with
/// a table of 8, a hardware of 5 and 12 connections, 5 are offloaded, 3 wait in back-off
/// (hw_full), 4 wait for room (table_full), and the gauge stays at 3 while each retry adds
/// hw_full decisions.
#[test]
fn the_not_offloaded_gauge_counts_connections_and_the_decisions_counter_attempts() {
    require_root();
    let topo = Topology::new().expect("topology");
    pin_neighbours(&topo).expect("neighbours");
    let daemon = start_daemon(binary(), &topo, &["--max-connections", "8"]).expect("daemon");
    daemon.ctl("sim fault capacity 5").expect("sim fault");
    entries(&topo.router, Op::Create, SERVER_V4.into(), 80, 40_000..40_012).expect("entries");
    let waiting = |m: &BTreeMap<String, f64>, reason: &str| {
        sample(m, &format!("cmmd_connections_not_offloaded{{reason=\"{reason}\"}}"))
    };
    let decisions = |m: &BTreeMap<String, f64>, reason: &str| {
        sample(m, &format!("cmmd_decisions_total{{reason=\"{reason}\"}}"))
    };
    let settled = wait_for(WAIT, POLL, || {
        let m = metrics(&topo.router);
        (sample(&m, "cmmd_flows{state=\"offloaded\"}") == 5.0
            && waiting(&m, "hw_full") == 3.0
            && waiting(&m, "table_full") == 4.0)
            .then_some(m)
    });
    let settled = settled.unwrap_or_else(|| {
        panic!("not settled: {:#?}\nlog:\n{}", metrics(&topo.router), daemon.log())
    });
    let others: f64 = settled
        .iter()
        .filter(|(k, _)| k.starts_with("cmmd_connections_not_offloaded{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(others, 7.0, "nothing else is waiting: {settled:#?}");
    // The back-off retries (1 s, then 2 s): more decisions, the same connections.
    let later = wait_for(WAIT, POLL, || {
        let m = metrics(&topo.router);
        (decisions(&m, "hw_full") >= decisions(&settled, "hw_full") + 3.0).then_some(m)
    })
    .expect("the back-off retried");
    assert_eq!(waiting(&later, "hw_full"), 3.0, "{later:#?}");
    assert_eq!(waiting(&later, "table_full"), 4.0, "{later:#?}");
    assert_eq!(sample(&later, "cmmd_ready"), 1.0);
}
