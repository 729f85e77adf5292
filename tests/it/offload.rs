//! cmmd end to end: the real daemon in the router namespace of the test topology, the software
//! cdx as its hardware, real TCP and UDP traffic through the router. Every assertion is on what
//! the software cdx holds (`show sim`), what the kernel holds (`conntrack -L`) or what the
//! daemon counts (`show counters`), not on logs.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use cmmd_tests::conntrack_cli;
use cmmd_tests::daemon::{Daemon, SimServer, SimTable};
use cmmd_tests::scenario::{
    self, POLL, WAIT, mac, service_server, start_daemon, wait_counter, wait_sim,
};
use cmmd_tests::topology::{self, Topology};
use cmmd_tests::traffic::{IO_TIMEOUT, TcpHoldServer, UdpEchoServer, wait_for};
use cmmd_tests::{Netns, require_root};

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");
fn binary() -> &'static Path {
    Path::new(CMMD)
}

/// The daemon in the router with both router ports as fast-path ports.
fn router_daemon(topo: &Topology, extra: &[&str]) -> Daemon {
    start_daemon(binary(), topo, extra).expect("cmmd starts")
}

/// A TCP connection held open from the client (the server answers only after our FIN).
fn hold_tcp(topo: &Topology, to: SocketAddr) -> TcpStream {
    scenario::hold_tcp(&topo.client, to).expect("connect")
}

/// Close our side and read the server's answer: a normal TCP close through the router.
fn finish_tcp(mut stream: TcpStream) -> Vec<u8> {
    stream.write_all(b"bye").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    reply
}

#[test]
fn established_tcp_is_programmed_with_both_tuples_and_routes_then_withdrawn_on_fin() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let daemon = router_daemon(&topo, &[]);
    let stream = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let sport = stream.local_addr().unwrap().port();
    let table = wait_sim(&daemon, "the connection is offloaded", |t| {
        t.by_sport(sport).is_some_and(|c| c.in_hw == (true, true))
    });
    let conn = table.by_sport(sport).unwrap();
    assert_eq!(conn.protocol, 6);
    assert_eq!(conn.orig, ("10.1.0.2".into(), "10.2.0.2".into(), sport, 80));
    assert_eq!(
        conn.reply,
        ("10.2.0.2".into(), "10.2.0.100".into(), 80, sport),
        "masquerade shows in the reply tuple"
    );
    let orig_route = table.route(conn.routes.0).expect("orig route registered");
    let reply_route = table.route(conn.routes.1).expect("reply route registered");
    assert_eq!((orig_route.input.as_str(), orig_route.output.as_str()), ("r0", "r1"));
    assert_eq!((reply_route.input.as_str(), reply_route.output.as_str()), ("r1", "r0"));
    assert_eq!(
        orig_route.mac,
        mac(&topo.server, "s0").unwrap(),
        "next hop towards the server is its MAC"
    );
    assert_eq!(
        reply_route.mac,
        mac(&topo.client, "c0").unwrap(),
        "next hop towards the client is its MAC"
    );
    assert_eq!(orig_route.mtu, 1500);
    let line = daemon.connection(sport).unwrap();
    assert!(
        line.contains("ESTABLISHED")
            && line.contains("[ASSURED]")
            && line.contains("offload: offloaded"),
        "{line}"
    );

    assert_eq!(finish_tcp(stream), b"hello bye");
    wait_sim(&daemon, "the connection is withdrawn after FIN", |t| t.by_sport(sport).is_none());
    let t = wait_sim(&daemon, "route objects released", |t| t.routes.is_empty());
    assert!(t.connections.is_empty());
    assert!(daemon.counter("not_established") >= 1);
    assert_eq!(daemon.counter("withdrawn"), 1);
}

#[test]
fn dnat_and_ipv6_and_udp_are_programmed() {
    require_root();
    let topo = Topology::new().unwrap();
    let _tcp4 = service_server(&topo, false).unwrap();
    let _tcp6 = service_server(&topo, true).unwrap();
    let _udp = UdpEchoServer::start(&topo.server, Topology::server_addr(false, 5000)).unwrap();
    let daemon = router_daemon(&topo, &[]);

    let dnat = hold_tcp(&topo, Topology::forward_addr(false));
    let v6 = hold_tcp(&topo, Topology::server_addr(true, topology::SERVICE_PORT));
    let (dnat_port, v6_port) = (dnat.local_addr().unwrap().port(), v6.local_addr().unwrap().port());
    // UDP: two-way traffic for more than two seconds makes the kernel mark it ASSURED.
    let udp = topo
        .client
        .run_in(|| {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.connect(Topology::server_addr(false, 5000))?;
            io_ok(s)
        })
        .unwrap()
        .unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let mut buf = [0u8; 64];
    let table = wait_for(WAIT, Duration::from_millis(300), || {
        udp.send(b"ping").ok()?;
        udp.recv(&mut buf).ok()?;
        let t = daemon.sim().ok()?;
        [dnat_port, v6_port, udp_port]
            .iter()
            .all(|p| t.by_sport(*p).is_some_and(|c| c.in_hw == (true, true)))
            .then_some(t)
    })
    .unwrap_or_else(|| panic!("not all offloaded: {:#?}\n{}", daemon.sim(), daemon.log()));
    let d = table.by_sport(dnat_port).unwrap();
    assert_eq!(d.orig, ("10.1.0.2".into(), "10.1.0.1".into(), dnat_port, 8080));
    assert_eq!(
        d.reply,
        ("10.2.0.2".into(), "10.1.0.2".into(), 80, dnat_port),
        "DNAT shows in the reply tuple"
    );
    let v = table.by_sport(v6_port).unwrap();
    assert_eq!(v.orig.1, "fd02::2");
    assert_eq!(v.reply.1, "fd02::100");
    let u = table.by_sport(udp_port).unwrap();
    assert_eq!(u.protocol, 17);
    assert_eq!(u.orig.3, 5000);
    drop((dnat, v6));
}

fn io_ok<T>(v: T) -> std::io::Result<T> {
    Ok(v)
}

#[test]
fn icmp_local_excluded_and_helper_flows_are_counted_not_programmed() {
    require_root();
    let topo = Topology::new().unwrap();
    let _excluded = TcpHoldServer::start(&topo.server, Topology::server_addr(false, 1723)).unwrap();
    let _helper =
        TcpHoldServer::start(&topo.server, Topology::server_addr(false, topology::HELPER_PORT))
            .unwrap();
    let _sip = UdpEchoServer::start(&topo.server, Topology::server_addr(false, 5060)).unwrap();
    let local_listener =
        topo.router.run_in(|| TcpListener::bind("10.1.0.1:7000")).unwrap().unwrap();
    let daemon = router_daemon(&topo, &[]);

    topo.client
        .exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", "10.2.0.2"])
        .expect("ping through the router");
    let pptp = hold_tcp(&topo, Topology::server_addr(false, 1723));
    let ftp = hold_tcp(&topo, Topology::server_addr(false, topology::HELPER_PORT));
    let local = hold_tcp(&topo, "10.1.0.1:7000".parse().unwrap());
    let (_accepted, _) = local_listener.accept().unwrap();
    cmmd_tests::traffic::udp_exchange(
        &topo.client,
        Topology::server_addr(false, 5060),
        7,
        Duration::from_millis(500),
    )
    .unwrap();

    wait_counter(&daemon, "unsupported_protocol", 1);
    wait_counter(&daemon, "excluded_by_rule", 2);
    wait_counter(&daemon, "helper", 1);
    wait_counter(&daemon, "local", 1);
    let t = daemon.sim().unwrap();
    assert!(t.connections.is_empty(), "nothing programmed: {t:#?}");
    // The connection to the router itself is listed, as the vendor lists it, and never offloaded.
    let tracked = daemon.connections().unwrap();
    assert_eq!(tracked.len(), 1, "only the host's own is tracked: {tracked:?}");
    assert!(
        tracked[0].contains(" dport=7000 ") && tracked[0].contains("offload: local"),
        "{tracked:?}"
    );
    drop((pptp, ftp, local));
}

#[test]
fn flows_through_a_port_that_is_not_a_fast_path_port_stay_in_the_kernel() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let daemon =
        Daemon::start(binary(), &topo.router, &["--backend", "sim", "--ports", "r0"]).unwrap();
    let stream = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    wait_counter(&daemon, "not_fastpath_port", 1);
    assert!(daemon.sim().unwrap().connections.is_empty());
    assert_eq!(finish_tcp(stream), b"hello bye", "the kernel forwards it");
}

/// `conntrack -I` an ESTABLISHED TCP entry between the client and server subnets.
fn insert_established(router: &Netns, src_port: u16) {
    conntrack_cli::insert_established(router, "10.1.0.2", "10.2.0.2", src_port, 80)
        .expect("conntrack -I");
}

fn delete_entry(router: &Netns, src_port: u16) {
    router
        .exec("conntrack", &["-D", "-p", "tcp", "-s", "10.1.0.2", "--sport", &src_port.to_string()])
        .expect("conntrack -D");
}

#[test]
fn the_table_holds_at_most_max_connections_and_admits_refused_flows_when_room_appears() {
    require_root();
    let topo = Topology::new().unwrap();
    // The kernel knows the server's MAC only after traffic: make the next hop resolvable.
    topo.client.exec("ping", &["-c", "1", "-W", "2", "10.2.0.2"]).unwrap();
    let daemon = router_daemon(&topo, &["--max-connections", "5"]);
    for port in 20_000..20_008 {
        insert_established(&topo.router, port);
    }
    wait_counter(&daemon, "table_full", 3);
    assert_eq!(daemon.counter("table_entries"), 5, "exactly the capacity is tracked");
    let table = wait_sim(&daemon, "five offloaded", |t| t.connections.len() == 5);
    let tracked: Vec<u16> = table.connections.iter().map(|c| c.orig.2).collect();
    // Two of them go away: two of the refused flows take their place, nothing is evicted.
    delete_entry(&topo.router, tracked[0]);
    delete_entry(&topo.router, tracked[1]);
    let table = wait_sim(&daemon, "refused flows admitted when room appears", |t| {
        t.connections.len() == 5
            && !t.connections.iter().any(|c| c.orig.2 == tracked[0] || c.orig.2 == tracked[1])
    });
    for kept in &tracked[2..] {
        assert!(table.connections.iter().any(|c| c.orig.2 == *kept), "offloaded flow {kept} kept");
    }
    assert_eq!(daemon.counter("table_entries"), 5);
}

#[test]
fn hardware_refusal_is_counted_retried_and_leaks_no_route_ids() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let daemon = router_daemon(&topo, &[]);
    daemon.ctl("sim fault capacity 0").expect("sim fault");
    let stream = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let sport = stream.local_addr().unwrap().port();
    wait_counter(&daemon, "hw_full", 1);
    let t = daemon.sim().unwrap();
    assert!(t.connections.is_empty());
    assert!(t.routes.is_empty(), "routes of the refused connection were released: {t:#?}");
    let line = daemon.connection(sport).unwrap();
    assert!(line.contains("offload: backoff (hw_full)"), "{line}");
    // The hardware recovers; the back-off retries and succeeds.
    daemon.ctl("sim fault capacity 100").unwrap();
    daemon.ctl("sim fault eio count 1").unwrap();
    wait_sim(&daemon, "offloaded after the back-off", |t| t.by_sport(sport).is_some());
    assert!(daemon.counter("hw_failed") >= 2);
    finish_tcp(stream);
    let t = wait_sim(&daemon, "everything released", |t| {
        t.connections.is_empty() && t.routes.is_empty()
    });
    assert!(t.routes.is_empty());
    assert_eq!(daemon.counter("hw_route_objects"), 0, "no route id left allocated");
}

/// cdx copies a route's port and MAC into a flow when it inserts it; neither a route UPDATE
/// nor a conntrack UPDATE changes them afterwards. This test used to check that the route
/// object's MAC changed in place, which the software cdx showed while the board kept
/// forwarding to the old MAC; it now checks what the hardware forwards with.
#[test]
fn a_new_next_hop_mac_moves_the_hardware_flow_to_it() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let daemon = router_daemon(&topo, &[]);
    let stream = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let sport = stream.local_addr().unwrap().port();
    let table = wait_sim(&daemon, "offloaded", |t| t.by_sport(sport).is_some());
    let before = table.by_sport(sport).unwrap().clone();
    let route_id = before.routes.0;
    let server_mac = mac(&topo.server, "s0").unwrap();
    assert_eq!(before.hw.0.as_ref().map(|h| h.mac.as_str()), Some(server_mac.as_str()));
    topo.router
        .ip(&[
            "neigh",
            "replace",
            "10.2.0.2",
            "lladdr",
            "02:00:00:aa:bb:cc",
            "dev",
            "r1",
            "nud",
            "permanent",
        ])
        .unwrap();
    let table = wait_sim(&daemon, "the hardware forwards to the new MAC", |t| {
        t.by_sport(sport)
            .and_then(|c| c.hw.0.as_ref())
            .is_some_and(|hw| hw.mac == "02:00:00:aa:bb:cc" && hw.output == "r1")
    });
    let now = table.by_sport(sport).unwrap();
    assert_ne!(now.routes.0, route_id, "a new route object: route objects never change");
    assert_eq!(now.hw.1, before.hw.1, "the reply direction is untouched");
    let table = wait_sim(&daemon, "the old route object released", |t| t.route(route_id).is_none());
    assert_eq!(table.routes.len(), 2);
    assert_eq!(daemon.counter("hw_reregistrations"), 1);
    drop(stream);
}

#[test]
fn an_overrun_ends_with_the_table_equal_to_the_kernels() {
    require_root();
    let topo = Topology::new().unwrap();
    topo.client.exec("ping", &["-c", "1", "-W", "2", "10.2.0.2"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cmmd.toml");
    // A deliberately tiny event buffer, and no periodic sweep: only the overrun resync can fix it.
    std::fs::write(&config, "[netlink]\nevent_buffer = 4096\nsweep_interval = \"0s\"\nresync_min_interval = \"100ms\"\n").unwrap();
    let config_arg = config.to_string_lossy().into_owned();
    let daemon = router_daemon(&topo, &["--config", &config_arg]);
    // A burst of creations, then of deletions, far beyond what 4 KiB of buffer holds.
    let burst = topo
        .router
        .run_in(|| {
            let socket = conntrack::CtSocket::requests()?;
            let mut buf = Vec::new();
            let entry = |port: u16| {
                let orig = conntrack::Tuple::new(
                    "10.1.0.2".parse().unwrap(),
                    "10.2.0.2".parse().unwrap(),
                    6,
                    port,
                    80,
                );
                let mut create = conntrack::request::Create::new(orig, 600);
                create.tcp_state = Some(conntrack::TcpState::Established);
                create.status = conntrack::Status::SEEN_REPLY | conntrack::Status::ASSURED;
                create
            };
            for chunk in (30_000u16..31_500).collect::<Vec<_>>().chunks(50) {
                buf.clear();
                for port in chunk {
                    conntrack::request::create(&mut buf, &entry(*port), socket.next_seq());
                }
                socket.send(&buf)?;
            }
            std::thread::sleep(Duration::from_millis(200));
            for chunk in (30_000u16..30_700).collect::<Vec<_>>().chunks(50) {
                buf.clear();
                for port in chunk {
                    let orig = conntrack::Tuple::new(
                        "10.1.0.2".parse().unwrap(),
                        "10.2.0.2".parse().unwrap(),
                        6,
                        *port,
                        80,
                    );
                    conntrack::request::delete(&mut buf, &orig, 0, None, socket.next_seq());
                }
                socket.send(&buf)?;
            }
            std::io::Result::Ok(())
        })
        .unwrap();
    burst.expect("burst sent");
    let kernel = || -> Vec<u16> {
        let mut ports: Vec<u16> = conntrack_cli::list(&topo.router)
            .unwrap()
            .iter()
            .filter(|e| {
                e.state.as_deref() == Some("ESTABLISHED") && e.value("dport", 0) == Some("80")
            })
            .filter_map(|e| e.value("sport", 0).and_then(|p| p.parse().ok()))
            .collect();
        ports.sort_unstable();
        ports
    };
    let expected = kernel();
    assert_eq!(expected.len(), 800, "the kernel holds what survived the burst");
    let converged = wait_for(Duration::from_secs(30), Duration::from_millis(250), || {
        let t = daemon.sim().ok()?;
        let mut ports: Vec<u16> = t.connections.iter().map(|c| c.orig.2).collect();
        ports.sort_unstable();
        (ports == expected).then_some(())
    });
    assert!(
        converged.is_some(),
        "offloaded set never equalled the kernel's: {} vs {}\n{:#?}",
        daemon.sim().map(|t| t.connections.len()).unwrap_or(0),
        expected.len(),
        daemon.counters()
    );
    assert!(daemon.counter("overruns") >= 1, "the burst overran the 4 KiB buffer");
    assert!(daemon.counter("resyncs") >= 1);
    assert_eq!(daemon.counter("table_entries"), 800);
}

#[test]
fn keepalive_keeps_active_offloaded_flows_alive_in_the_kernel_and_lets_idle_ones_expire() {
    keepalive(false, 60);
}

/// IPv6: on NXP's cdx (the LSDK build, the harness's default) `GET_TIMEOUT` reads IPv6
/// activity refreshed only by cdx's aging timer, so an active flow looks idle between two of
/// its runs; cmmd then keeps the kernel entry while cdx holds the flow and cdx's own aging
/// (6 s here) ends the idle one. On the ASK port (CMM_SIM_ABI=ask) IPv6 reads as IPv4 does.
/// Either way: the active flow stays, the idle one goes, and nothing is immortal.
#[test]
fn keepalive_keeps_active_ipv6_flows_alive_and_lets_idle_ones_expire_on_either_cdx() {
    keepalive(true, 6);
}

/// Two UDP flows offloaded with a 5 s kernel timeout and cdx's UDP aging at `cdx_udp`
/// seconds; the hardware keeps one active for 12 s.
fn keepalive(ipv6: bool, cdx_udp: u32) {
    require_root();
    let topo = Topology::new().unwrap();
    topo.router.sysctl(&["net.netfilter.nf_conntrack_udp_timeout_stream=5"]).unwrap();
    let to = Topology::server_addr(ipv6, 5000);
    let _udp = UdpEchoServer::start(&topo.server, to).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cmmd.toml");
    let text = format!("[keepalive]\ninterval = \"500ms\"\n[timeouts]\nudp = {cdx_udp}\n");
    std::fs::write(&config, text).unwrap();
    let config_arg = config.to_string_lossy().into_owned();
    let daemon = router_daemon(&topo, &["--config", &config_arg]);
    let exchange = || {
        cmmd_tests::traffic::udp_exchange(&topo.client, to, 8, Duration::from_millis(400)).unwrap()
    };
    let active = exchange();
    let idle = exchange();
    wait_sim(&daemon, "both offloaded", |t| {
        t.by_sport(active.port()).is_some() && t.by_sport(idle.port()).is_some()
    });
    // Traffic stops in the kernel; the hardware keeps forwarding `active` only.
    let in_kernel = |port: u16| {
        conntrack_cli::list(&topo.router)
            .unwrap()
            .iter()
            .any(|e| e.proto == "udp" && e.value("sport", 0) == Some(&port.to_string()))
    };
    for _ in 0..24 {
        daemon
            .ctl(&format!("sim activate 17 {} {} {} 5000", active.ip(), to.ip(), active.port()))
            .expect("sim activate");
        std::thread::sleep(Duration::from_millis(500));
    }
    // 12 s without a packet in the kernel, more than twice its 5 s timeout.
    assert!(in_kernel(active.port()), "the active flow is kept alive: {:#?}", daemon.counters());
    assert!(!in_kernel(idle.port()), "the idle flow expired in the kernel");
    wait_sim(&daemon, "the idle flow left the hardware too", |t| t.by_sport(idle.port()).is_none());
    assert!(daemon.counter("keepalive_refreshes") >= 2);
    // Once the hardware goes quiet, the active one expires as well, within its timeout.
    let gone =
        wait_for(Duration::from_secs(20), POLL, || (!in_kernel(active.port())).then_some(()));
    assert!(gone.is_some(), "no immortal entries");
}

#[test]
fn a_restart_adopts_hardware_entries_and_removes_stale_ones() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let sim = SimServer::start(binary(), &topo.router, "r0,r1").unwrap();
    let socket = sim.socket().to_string_lossy().into_owned();
    let args = ["--sim-socket", socket.as_str()];
    let first = router_daemon(&topo, &args);
    let kept = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let closed = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let (kept_port, closed_port) =
        (kept.local_addr().unwrap().port(), closed.local_addr().unwrap().port());
    let hw = |text: &str| SimTable::parse(text);
    wait_for(WAIT, POLL, || {
        let t = hw(&sim.ctl("show").ok()?);
        (t.by_sport(kept_port).is_some() && t.by_sport(closed_port).is_some()).then_some(())
    })
    .expect("both offloaded");
    let before = hw(&sim.ctl("show").unwrap());
    first.kill();
    // While cmmd is down one connection ends: the hardware still holds it.
    finish_tcp(closed);
    assert!(
        hw(&sim.ctl("show").unwrap()).by_sport(closed_port).is_some(),
        "stale in hardware while cmmd is down"
    );

    let second = router_daemon(&topo, &args);
    let after = wait_for(WAIT, POLL, || {
        let t = hw(&sim.ctl("show").ok()?);
        t.by_sport(closed_port).is_none().then_some(t)
    })
    .expect("the stale entry is removed");
    let kept_now = after.by_sport(kept_port).unwrap_or_else(|| {
        panic!(
            "the live connection stays in hardware: {after:#?}\n{:#?}\n{}",
            second.counters(),
            second.log()
        )
    });
    assert_eq!(kept_now, before.by_sport(kept_port).unwrap(), "adopted as it was");
    assert_eq!(after.routes.len(), 2);
    assert_eq!(second.counter("adopted"), 1);
    assert_eq!(second.counter("reconcile_removed"), 1);
    assert_eq!(second.counter("offloaded"), 0, "nothing registered a second time");
    assert_eq!(second.counter("hw_routes_registered"), 0);
    drop(kept);
}

#[test]
fn sigterm_stops_cleanly_and_leaves_hardware_flows_in_place() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let sim = SimServer::start(binary(), &topo.router, "r0,r1").unwrap();
    let socket = sim.socket().to_string_lossy().into_owned();
    let daemon = router_daemon(&topo, &["--sim-socket", &socket]);
    let stream = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let sport = stream.local_addr().unwrap().port();
    wait_for(WAIT, POLL, || SimTable::parse(&sim.ctl("show").ok()?).by_sport(sport).map(drop))
        .expect("offloaded");
    let started = std::time::Instant::now();
    let status = daemon.stop(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "exit code 0 after SIGTERM: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown is quick");
    assert!(
        SimTable::parse(&sim.ctl("show").unwrap()).by_sport(sport).is_some(),
        "left in place for a rolling update"
    );
    // With --flush-on-exit everything is withdrawn.
    let daemon = router_daemon(&topo, &["--sim-socket", &socket, "--flush-on-exit"]);
    assert_eq!(daemon.counter("adopted"), 1);
    assert!(daemon.stop(Duration::from_secs(10)).unwrap().success());
    let t = SimTable::parse(&sim.ctl("show").unwrap());
    assert!(t.connections.is_empty() && t.routes.is_empty(), "flushed: {t:#?}");
    drop(stream);
}
