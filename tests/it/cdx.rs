//! The cdx cmmd finds, as the board's would answer: either ABI, detected; a cdx owned by the
//! Linux flowtable; interfaces cdx does not know; 70,000 connections through one gateway
//! (past a route object's 16-bit reference count); and `/dev/cdx_ctrl`, which cmmd never opens.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cdx_sys::sim::SimTable as HwTable;
use cmmd_tests::daemon::{Daemon, SimServer, SimTable};
use cmmd_tests::http;
use cmmd_tests::require_root;
use cmmd_tests::scenario::{
    self, Op, POLL, WAIT, entries, pin_neighbours, service_server, start_daemon, wait_counter,
    wait_sim,
};
use cmmd_tests::sim_relay::SimRelay;
use cmmd_tests::topology::{self, Topology};
use cmmd_tests::traffic::wait_for;

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");
fn binary() -> &'static Path {
    Path::new(CMMD)
}

fn hw(sim: &SimServer) -> SimTable {
    SimTable::parse(&sim.ctl("show").unwrap())
}

/// A cmmd pointed at a software cdx of either ABI finds which one it is, says so in one log
/// line, `show status` and `/metrics`, and programs flows in it; one told the other ABI gets
/// every connection refused by size, as cdx refuses it.
#[test]
fn cmmd_detects_the_cdx_of_either_abi_and_programs_flows_in_it() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    for (abi, other) in [("lsdk", "ask"), ("ask", "lsdk")] {
        let sim =
            SimServer::start_with(binary(), &topo.router, "r0,r1", &["--sim-abi", abi]).unwrap();
        let socket = sim.socket().to_string_lossy().into_owned();
        let daemon = start_daemon(binary(), &topo, &["--sim-socket", &socket]).unwrap();
        let stream =
            scenario::hold_tcp(&topo.client, Topology::server_addr(false, topology::SERVICE_PORT))
                .unwrap();
        let sport = stream.local_addr().unwrap().port();
        let table = wait_for(WAIT, POLL, || {
            let t = hw(&sim);
            t.by_sport(sport).is_some_and(|c| c.in_hw == (true, true)).then_some(t)
        })
        .unwrap_or_else(|| panic!("{abi}: not offloaded\n{}", daemon.log()));
        assert!(table.by_sport(sport).unwrap().hw.0.is_some());
        let status = daemon.ctl("show status").unwrap();
        let line = format!("cdx: {abi} (detected: IPv4 GET_TIMEOUT of 44 B → ");
        assert!(status.lines().any(|l| l.starts_with(&line)), "{status}");
        let log = daemon.log();
        let logged: Vec<&str> = log.lines().filter(|l| l.contains("cdx ABI: ")).collect();
        assert_eq!(logged.len(), 1, "one line says which ABI and how: {logged:?}");
        assert!(logged[0].contains(&format!("cdx ABI: {abi} (detected: ")), "{logged:?}");
        let metrics = http::get(&topo.router, http::METRICS.parse().unwrap(), "/metrics").unwrap();
        let samples = http::samples(&metrics);
        let info = format!("cmmd_cdx_abi_info{{abi=\"{abi}\",decided=\"detected\"}}");
        assert_eq!(samples.get(&info), Some(&1.0), "{metrics}");
        assert!(daemon.stop(Duration::from_secs(10)).unwrap().success());

        // Told the other ABI: cdx refuses every connection command by its size.
        let daemon = start_daemon(
            binary(),
            &topo,
            &["--sim-socket", &socket, "--cdx-abi", other, "--flush-on-exit"],
        )
        .unwrap();
        let status = daemon.ctl("show status").unwrap();
        assert!(status.contains(&format!("cdx: {other} (configured: cdx.abi = \"{other}\")")));
        wait_counter(&daemon, "hw_refused", 1);
        assert!(hw(&sim).by_sport(sport).is_some(), "adopted nothing it could not read");
        drop(stream);
    }
}

/// cdx booted with `offload_owner=flowtable` refuses every FCI command with `EOPNOTSUPP`:
/// cmmd says what to change once, `/readyz` says why it is not ready, the counters say why
/// nothing is programmed, it sends nothing more, and the rest of it keeps working.
#[test]
fn a_cdx_owned_by_the_flowtable_is_reported_and_left_alone() {
    require_root();
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let sim = SimServer::start(binary(), &topo.router, "r0,r1").unwrap();
    assert!(sim.ctl("fault flowtable").unwrap().starts_with("injected"));
    let socket = sim.socket().to_string_lossy().into_owned();
    let daemon = start_daemon(binary(), &topo, &["--sim-socket", &socket]).unwrap();
    entries(&topo.router, Op::Create, "10.2.0.2".parse().unwrap(), 80, 52_000..52_005).unwrap();
    wait_counter(&daemon, "not_offload_owner", 5);
    let metrics_addr: SocketAddr = http::METRICS.parse().unwrap();
    let answer = http::get(&topo.router, metrics_addr, "/readyz").unwrap();
    assert!(answer.lines().next().is_some_and(|l| l.contains(" 503 ")), "{answer}");
    assert!(answer.contains("offload_owner=flowtable") && answer.contains("offload_owner=cmm"));
    let told: Vec<String> = daemon
        .log()
        .lines()
        .filter(|l| l.contains("offload_owner=cmm"))
        .map(str::to_owned)
        .collect();
    assert_eq!(told.len(), 1, "one line says what to change: {told:?}");
    assert!(daemon.ctl("show status").unwrap().contains("cdx: refuses FCI"));
    assert!(daemon.counter("hw_offload_refused") >= 1);
    let metrics = http::get(&topo.router, metrics_addr, "/metrics").unwrap();
    assert_eq!(http::samples(&metrics).get("cmmd_cdx_offload_refused"), Some(&1.0));
    // Nothing more goes to cdx, whatever happens in the kernel.
    let sent = |sim: &SimServer| {
        let text = sim.ctl("show").unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("commands: "))
            .and_then(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = sent(&sim);
    entries(&topo.router, Op::Create, "10.2.0.2".parse().unwrap(), 80, 52_005..52_010).unwrap();
    wait_counter(&daemon, "table_entries", 10);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sent(&sim), before, "no command sent after the refusal");
    let lines = daemon.connections().unwrap();
    assert_eq!(lines.len(), 10, "still tracked: {lines:?}");
    assert!(lines.iter().all(|l| l.contains("(not_offload_owner)")), "{lines:?}");
    assert!(hw(&sim).connections.is_empty());
    assert!(daemon.stop(Duration::from_secs(10)).unwrap().success());
}

/// cdx knows only the FMan ports dpa_app configured (and VLAN/PPPoE interfaces registered with
/// it): a port cmmd is told to use that cdx does not know is `unknown_interface`, whether cdx
/// would refuse the route (an output) or take it and fail its connections (an input).
#[test]
fn a_port_cdx_does_not_know_is_an_unknown_interface_not_a_full_table() {
    require_root();
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let server = "10.2.0.2".parse().unwrap();
    for known in ["r0", "r1"] {
        let daemon = start_daemon(binary(), &topo, &["--sim-interfaces", known]).unwrap();
        entries(&topo.router, Op::Create, server, 80, 53_000..53_003).unwrap();
        wait_counter(&daemon, "unknown_interface", 3);
        let table = daemon.sim().unwrap();
        assert!(table.connections.is_empty() && table.routes.is_empty(), "{table:#?}");
        assert_eq!(daemon.counter("hw_full"), 0, "knowing only {known}");
        let lines = daemon.connections().unwrap();
        assert!(lines.iter().all(|l| l.contains("(unknown_interface)")), "{lines:?}");
        entries(&topo.router, Op::Delete, server, 80, 53_000..53_003).unwrap();
        assert!(daemon.stop(Duration::from_secs(10)).unwrap().success());
    }
}

/// cdx counts a route object's links in 16 bits and refuses the 65,535th silently (the
/// direction stays in software while the command answers 0). Every connection through one
/// gateway shares one route object per direction: cmmd starts another before the limit, so
/// 70,000 connections all forward in hardware.
#[test]
fn seventy_thousand_connections_through_one_gateway_are_all_in_hardware() {
    require_root();
    const FLOWS: usize = 70_000;
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let relay = SimRelay::start(&["r0", "r1"], FLOWS + 100).unwrap();
    let socket = relay.socket().to_string_lossy().into_owned();
    let daemon = start_daemon(binary(), &topo, &["--sim-socket", &socket]).unwrap();
    let server = "10.2.0.2".parse().unwrap();
    let batches = [(80, 2_000..62_000), (81, 2_000..12_000)];
    for (dport, ports) in batches.clone() {
        entries(&topo.router, Op::Create, server, dport, ports).unwrap();
    }
    let all_in_hw = |t: &HwTable| {
        t.conntracks.len() == FLOWS && t.conntracks.iter().all(|c| c.in_hw_orig && c.in_hw_reply)
    };
    let table = wait_for(Duration::from_secs(120), Duration::from_secs(1), || {
        Some(relay.sim().snapshot()).filter(all_in_hw)
    })
    .unwrap_or_else(|| {
        let t = relay.sim().snapshot();
        let in_hw = t.conntracks.iter().filter(|c| c.in_hw_orig && c.in_hw_reply).count();
        panic!("{in_hw} of {} in hardware; {:#?}", t.conntracks.len(), daemon.counters())
    });
    assert_eq!(table.routes.len(), 4, "two route objects per direction: {:#?}", table.routes);
    assert!(table.routes.iter().all(|r| r.refcount < u32::from(u16::MAX)), "{:#?}", table.routes);
    assert_eq!(relay.sim().stats().model.links_refused, 0, "no link refused");
    assert_eq!(daemon.counter("hw_route_splits"), 2);
    for (dport, ports) in batches {
        entries(&topo.router, Op::Delete, server, dport, ports).unwrap();
    }
    wait_for(Duration::from_secs(120), Duration::from_secs(1), || {
        let t = relay.sim().snapshot();
        (t.conntracks.is_empty() && t.routes.is_empty()).then_some(())
    })
    .expect("everything withdrawn");
    assert_eq!(daemon.counter("hw_route_objects"), 0);
}

/// `/dev/cdx_ctrl` admits one opener (dpa_app's): cmmd never opens it, as the software cdx's
/// daemon or as the board's (which exits here, without fci.ko).
#[test]
fn cmmd_never_opens_dev_cdx_ctrl() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("opens");
    let trace_arg = trace.to_string_lossy().into_owned();
    let strace = ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", &trace_arg];
    let args = ["--backend", "sim", "--ports", "r0,r1"];
    let daemon = Daemon::start_under(&strace, binary(), &topo.router, &args).unwrap();
    let stream =
        scenario::hold_tcp(&topo.client, Topology::server_addr(false, topology::SERVICE_PORT))
            .unwrap();
    let sport = stream.local_addr().unwrap().port();
    wait_sim(&daemon, "offloaded", |t| t.by_sport(sport).is_some());
    assert!(daemon.ctl("stop").unwrap().contains("Killing cmm"));
    let mut daemon = daemon;
    assert!(daemon.wait(Duration::from_secs(10)).unwrap().success());
    let opens = std::fs::read_to_string(&trace).unwrap();
    assert!(opens.contains("nf_conntrack_events"), "the trace sees the daemon's opens: {opens}");
    assert!(!opens.contains("cdx_ctrl"), "{opens}");
    // The board's backend: no fci.ko here, so it stops at start, having opened nothing of cdx.
    let board = [CMMD, "--backend", "cdx", "--cli-listen", "off", "--metrics-listen", "off"];
    let out = topo.router.exec(strace[0], &[&strace[1..], &board[..]].concat());
    let opens = std::fs::read_to_string(&trace).unwrap();
    assert!(out.is_err(), "exits 1 without fci.ko");
    assert!(opens.contains("openat") && !opens.contains("cdx_ctrl"), "{opens}");
    drop(stream);
}
