//! Fault injection against the real daemon (issue 8, item 2): event storms beyond the socket
//! buffer, rtnetlink overruns, hardware faults, kernel-side changes under offloaded flows, and
//! SIGKILL. Every test ends with assertions on the final state: what the kernel holds
//! (`conntrack -L`), what the hardware holds (the software cdx's tables) and what the daemon
//! counts, including that no route id or table slot leaked.
//!
//! Each test prints one `RELIABILITY <name> key=value…` line with what it measured
//! (`--nocapture` shows them; `docs/reliability.md` records them).

use std::collections::BTreeSet;
use std::net::{IpAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cdx_sys::sim::{Fault, SimTuple};
use cmmd_tests::ct_load::EventWitness;
use cmmd_tests::daemon::{Daemon, SimServer, SimTable};
use cmmd_tests::measure::Report;
use cmmd_tests::scenario::{
    self, Op, POLL, WAIT, config_file, entries, hw_tcp, kernel_established, pin_neighbours,
    service_server, start_daemon, wait_counter, wait_sim,
};
use cmmd_tests::sim_relay::SimRelay;
use cmmd_tests::topology::{self, SERVER_V4, Topology};
use cmmd_tests::traffic::{TcpServer, tcp_exchange, wait_for};
use cmmd_tests::{conntrack_cli, require_root};
use nix::sys::signal::Signal;

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");

fn binary() -> &'static Path {
    Path::new(CMMD)
}

fn server() -> IpAddr {
    SERVER_V4.into()
}

/// A TCP connection from the client to the server's service port, held open.
fn hold_tcp(topo: &Topology) -> TcpStream {
    let to = Topology::server_addr(false, topology::SERVICE_PORT);
    scenario::hold_tcp(&topo.client, to).expect("connect through the router")
}

fn port_of(stream: &TcpStream) -> u16 {
    stream.local_addr().unwrap().port()
}

/// The kernel's ESTABLISHED entries and the hardware's TCP connections are the same set.
fn hw_equals_kernel(
    daemon: &Daemon,
    router: &cmmd_tests::Netns,
) -> Option<BTreeSet<scenario::TcpKey>> {
    let kernel = kernel_established(router).ok()?;
    let hw = hw_tcp(&daemon.sim().ok()?);
    (kernel == hw).then_some(kernel)
}

/// No route object is left in the hardware or in the daemon, and nothing is offloaded.
fn assert_nothing_left(daemon: &Daemon, table: &SimTable) {
    assert!(table.connections.is_empty(), "no connection left in hardware: {table:#?}");
    assert!(table.routes.is_empty(), "no route object left in hardware: {table:#?}");
    assert_eq!(daemon.counter("hw_route_objects"), 0, "no route id left allocated");
    assert_eq!(daemon.counter("table_entries"), 0, "no table slot left in use");
}

// ------------------------------------------------------------------ event storms

#[test]
fn an_event_storm_with_repeated_overruns_converges_to_the_kernels_table_while_traffic_flows() {
    require_root();
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let _held_server = service_server(&topo, false).unwrap();
    let _short_server = TcpServer::start(&topo.server, Topology::server_addr(false, 81)).unwrap();
    // A 16 KiB buffer holds a few dozen events; every batch of the storm overruns it. No
    // periodic sweep: only the overrun resyncs can repair the table.
    let (_dir, config) = config_file(
        "[netlink]\nevent_buffer = \"16KiB\"\nsweep_interval = \"0s\"\nresync_min_interval = \"100ms\"\n",
    )
    .unwrap();
    let daemon = start_daemon(binary(), &topo, &["--config", &config]).unwrap();
    let witness = EventWitness::start(&topo.router).unwrap();
    let held: Vec<TcpStream> = (0..3).map(|_| hold_tcp(&topo)).collect();
    for stream in &held {
        let port = port_of(stream);
        wait_sim(&daemon, "a real flow is offloaded before the storm", |t| {
            t.by_sport(port).is_some()
        });
    }

    // Six waves: 1500 entries created, then half of the previous wave deleted, while real
    // connections keep being made through the router.
    const WAVES: u16 = 6;
    const WAVE: u16 = 1500;
    let stop = AtomicBool::new(false);
    let exchanges = AtomicU64::new(0);
    let storm_started = Instant::now();
    let (created, deleted) = std::thread::scope(|scope| {
        let traffic = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let to = Topology::server_addr(false, 81);
                if tcp_exchange(&topo.client, to, b"x").is_ok_and(|e| e.reply == b"hello x") {
                    exchanges.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (mut created, mut deleted) = (0, 0);
        for wave in 0..WAVES {
            let first = 20_000 + wave * WAVE;
            created += entries(&topo.router, Op::Create, server(), 80, first..first + WAVE)
                .unwrap()
                .created;
            if wave > 0 {
                let previous = (first - WAVE..first).step_by(2);
                deleted +=
                    entries(&topo.router, Op::Delete, server(), 80, previous).unwrap().deleted;
            }
        }
        stop.store(true, Ordering::Relaxed);
        traffic.join().unwrap();
        (created, deleted)
    });
    let storm = storm_started.elapsed();
    assert_eq!(created, u64::from(WAVES * WAVE), "the kernel took every creation");
    assert_eq!(deleted, u64::from((WAVES - 1) * WAVE / 2));

    let storm_over = Instant::now();
    let expected = wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        hw_equals_kernel(&daemon, &topo.router)
    })
    .unwrap_or_else(|| {
        panic!(
            "hardware never equalled the kernel: {} offloaded vs {} in the kernel\n{:#?}",
            daemon.sim().map(|t| t.connections.len()).unwrap_or(0),
            kernel_established(&topo.router).map(|k| k.len()).unwrap_or(0),
            daemon.counters()
        )
    });
    let converged = storm_over.elapsed();
    let injected_left = u64::from(WAVES * WAVE) - deleted;
    assert_eq!(
        expected.len() as u64,
        injected_left + held.len() as u64,
        "what survived, plus the held flows"
    );
    for stream in &held {
        assert!(expected.iter().any(|k| k.1 == port_of(stream)), "the real flows stay offloaded");
    }
    let overruns = daemon.counter("overruns");
    assert!(overruns >= 2, "the storm overran the 16 KiB buffer repeatedly: {overruns}");
    assert!(daemon.counter("resyncs") >= 1);
    assert_eq!(
        daemon.counter("table_entries"),
        expected.len() as u64,
        "the table holds exactly the kernel's flows"
    );
    let table = daemon.sim().unwrap();
    assert_eq!(table.routes.len(), 2, "one route object per direction: {:?}", table.routes);
    assert_eq!(daemon.counter("hw_route_objects"), 2);
    let refs: u32 = table.routes.iter().map(|r| r.refs).sum();
    assert_eq!(refs as usize, 2 * expected.len(), "every direction references its route once");

    let kernel_events = witness.counts();
    assert_eq!(kernel_events.overruns, 0, "the witness saw every event");
    let received = daemon.counter("events_new")
        + daemon.counter("events_update")
        + daemon.counter("events_destroy");
    let sent = kernel_events.new + kernel_events.update + kernel_events.destroy;
    let mut report = Report::new("event_storm");
    report
        .add("created", created)
        .add("deleted", deleted)
        .add("storm_ms", storm.as_millis())
        .add("real_connections", exchanges.load(Ordering::Relaxed))
        .add("kernel_events", sent)
        .add("events_received", received)
        .add("events_lost", sent.saturating_sub(received))
        .add("overruns", overruns)
        .add("resyncs", daemon.counter("resyncs"))
        .add("resync_added", daemon.counter("resync_added"))
        .add("resync_removed", daemon.counter("resync_removed"))
        .add("converge_ms", converged.as_millis())
        .add("offloaded_at_end", expected.len());
    report.print();
    assert!(exchanges.load(Ordering::Relaxed) > 0, "real traffic flowed during the storm");
    assert!(converged < Duration::from_secs(30));
    drop(held);
}

/// The kernel reports ENOBUFS before the events it had queued ahead of the loss, so those are
/// older than the resync dump that follows. Connections created and all deleted while the
/// daemon did not read (SIGSTOP) must not come back from that queue: with the periodic sweep
/// off, the table and the hardware are empty soon after the daemon resumes.
#[test]
fn events_queued_before_an_overrun_do_not_bring_back_ended_connections() {
    require_root();
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let (_dir, config) =
        config_file("[netlink]\nevent_buffer = \"16MiB\"\nsweep_interval = \"0s\"\n").unwrap();
    let daemon = start_daemon(binary(), &topo, &["--config", &config]).unwrap();
    // More events than one loop turn reads (4096) fit in the buffer: some of them are read
    // while the resync dump runs.
    const PORTS: std::ops::Range<u16> = 10_000..60_000;
    daemon.signal(Signal::SIGSTOP);
    let created = entries(&topo.router, Op::Create, server(), 80, PORTS).map(|s| s.created);
    let deleted = entries(&topo.router, Op::Delete, server(), 80, PORTS).map(|s| s.deleted);
    daemon.signal(Signal::SIGCONT);
    assert_eq!((created.unwrap(), deleted.unwrap()), (50_000, 50_000));
    let resumed = Instant::now();
    wait_counter(&daemon, "resyncs", 1);
    let empty = wait_for(Duration::from_secs(10), POLL, || {
        let table = daemon.sim().ok()?;
        (daemon.counter("table_entries") == 0 && table.connections.is_empty()).then_some(())
    });
    let converged = resumed.elapsed();
    let discarded = daemon.counter("events_discarded");
    Report::new("overrun_queue")
        .add("created", 50_000)
        .add("deleted", 50_000)
        .add("overruns", daemon.counter("overruns"))
        .add("events_read", daemon.counter("events_new") + daemon.counter("events_destroy"))
        .add("events_discarded", discarded)
        .add("table_entries", daemon.counter("table_entries"))
        .add("converge_ms", converged.as_millis())
        .print();
    assert!(
        empty.is_some(),
        "ended connections came back from the queue: {:#?}",
        daemon.counters()
    );
    assert!(daemon.counter("overruns") >= 1);
    assert!(discarded > 0, "the events queued before the loss were dropped unread");
    assert_eq!(daemon.counter("hw_route_objects"), 0, "no route id left allocated");
}

// ------------------------------------------------------------------ rtnetlink overrun

#[test]
fn an_rtnetlink_overrun_redumps_the_view_and_fixes_the_flows_whose_next_hop_and_mtu_changed() {
    require_root();
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let _server = service_server(&topo, false).unwrap();
    let daemon = start_daemon(binary(), &topo, &[]).unwrap();
    let stream = hold_tcp(&topo);
    let sport = port_of(&stream);
    entries(&topo.router, Op::Create, server(), 80, 40_000..40_010).unwrap();
    let before = wait_sim(&daemon, "offloaded before the overrun", |t| {
        t.connections.len() == 11 && t.routes.len() == 2
    });
    let towards_server = before.by_sport(sport).unwrap().routes.0;
    assert_eq!(before.route(towards_server).unwrap().output, "r1");

    // Frozen, the daemon reads nothing: a storm of route changes fills its 4 MiB rtnetlink
    // buffer, and the changes that matter come after, when the kernel drops them.
    daemon.signal(Signal::SIGSTOP);
    let storm: String = (0..20_000u32)
        .map(|i| format!("route add 198.18.{}.{}/32 dev r1\n", i / 250, i % 250 + 1))
        .chain(
            (0..20_000u32)
                .map(|i| format!("route del 198.18.{}.{}/32 dev r1\n", i / 250, i % 250 + 1)),
        )
        .collect();
    let storm_started = Instant::now();
    topo.router.exec_with_input("ip", &["-batch", "-"], &storm).expect("route storm");
    let storm_time = storm_started.elapsed();
    let new_mac = "02:00:00:aa:bb:cc";
    topo.router
        .ip(&["neigh", "replace", "10.2.0.2", "lladdr", new_mac, "dev", "r1", "nud", "permanent"])
        .unwrap();
    topo.router.ip(&["link", "set", "r1", "mtu", "1400"]).unwrap();
    let resumed = Instant::now();
    daemon.signal(Signal::SIGCONT);

    wait_counter(&daemon, "rtnl_overruns", 1);
    // What the hardware forwards with (cdx keeps a direction's port and MAC from its
    // insertion): not only the route objects, which used to be checked alone.
    let after = wait_sim(&daemon, "flows towards the server forward to the new MAC and MTU", |t| {
        t.connections.len() == 11
            && t.connections.iter().all(|c| {
                t.route(c.routes.0)
                    .is_some_and(|r| r.output == "r1" && r.mac == new_mac && r.mtu == 1400)
                    && c.hw
                        .0
                        .as_ref()
                        .is_some_and(|hw| hw.output == "r1" && hw.mac == new_mac && hw.mtu == 1400)
            })
    });
    let fixed = resumed.elapsed();
    // The reply direction leaves through r0, which did not change.
    for c in &after.connections {
        let reply = after.route(c.routes.1).unwrap();
        assert_eq!((reply.output.as_str(), reply.mtu), ("r0", 1500));
        let hw = c.hw.1.as_ref().unwrap();
        assert_eq!((hw.output.as_str(), hw.mtu), ("r0", 1500));
    }
    let _ = wait_sim(&daemon, "the old route object is released", |t| t.routes.len() == 2);
    assert_eq!(daemon.counter("hw_route_objects"), 2, "no route id leaked by the move");
    let status = daemon.ctl("show status").unwrap();
    assert!(status.contains("ready: yes"), "{status}");
    let mut report = Report::new("rtnl_overrun");
    report
        .add("route_changes", 40_000)
        .add("storm_ms", storm_time.as_millis())
        .add("rtnl_overruns", daemon.counter("rtnl_overruns"))
        .add("fixed_ms", fixed.as_millis())
        .add("flows_fixed", after.connections.len());
    report.print();
    drop(stream);
}

// ------------------------------------------------------------------ hardware faults

/// A topology with pinned neighbours, and the daemon in its router on the test's own
/// software cdx of `capacity` pairs.
fn on_test_hardware(capacity: usize) -> (Topology, SimRelay, Daemon) {
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let relay = SimRelay::start(&["r0", "r1"], capacity).unwrap();
    let socket = relay.socket().to_string_lossy().into_owned();
    let daemon = start_daemon(binary(), &topo, &["--sim-socket", &socket]).unwrap();
    (topo, relay, daemon)
}

/// Wait until the test's software cdx satisfies `check`; fail with its tables and the
/// daemon's counters and log.
fn wait_hw(
    relay: &SimRelay,
    daemon: &Daemon,
    what: &str,
    check: impl Fn(&cdx_sys::sim::SimTable) -> bool,
) -> cdx_sys::sim::SimTable {
    wait_for(WAIT, POLL, || Some(relay.sim().snapshot()).filter(|t| check(t))).unwrap_or_else(
        || {
            panic!(
                "{what}: hardware = {:#?}\ncounters = {:#?}\nlog:\n{}",
                relay.sim().snapshot(),
                daemon.counters(),
                daemon.log()
            )
        },
    )
}

/// Every connection fully in hardware (both directions).
fn all_in_hw(table: &cdx_sys::sim::SimTable, count: usize) -> bool {
    table.conntracks.len() == count
        && table.conntracks.iter().all(|c| c.in_hw_orig && c.in_hw_reply)
}

/// Routes towards the server leave through r1 to the server's MAC, routes towards the
/// client through r0 to the client's: no route id serves a direction it was not made for.
fn assert_routes_match_their_directions(topo: &Topology, table: &cdx_sys::sim::SimTable) {
    let server_mac = scenario::mac(&topo.server, "s0").unwrap();
    let client_mac = scenario::mac(&topo.client, "c0").unwrap();
    let text = |m: [u8; 6]| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    for c in &table.conntracks {
        let orig = table.route(c.route_id).expect("the original direction's route exists");
        let reply = table.route(c.route_id_reply).expect("the reply direction's route exists");
        assert_eq!(
            (orig.output.as_str(), text(orig.mac)),
            ("r1", server_mac.clone()),
            "{table:#?}"
        );
        assert_eq!(
            (reply.output.as_str(), text(reply.mac)),
            ("r0", client_mac.clone()),
            "{table:#?}"
        );
    }
}

/// The hardware holds nothing and the daemon has no route id or table slot in use.
fn assert_hw_empty(relay: &SimRelay, daemon: &Daemon) {
    let table = wait_hw(relay, daemon, "everything withdrawn from the hardware", |t| {
        t.conntracks.is_empty() && t.routes.is_empty()
    });
    assert!(table.conntracks.is_empty() && table.routes.is_empty());
    assert_eq!(daemon.counter("hw_route_objects"), 0, "no route id left allocated");
    assert_eq!(daemon.counter("table_entries"), 0, "no table slot left in use");
}

#[test]
fn a_full_hardware_table_refuses_then_admits_when_room_appears_and_leaks_nothing() {
    require_root();
    let (topo, relay, daemon) = on_test_hardware(4);
    let ports = 50_000..50_010;
    entries(&topo.router, Op::Create, server(), 80, ports.clone()).unwrap();
    wait_counter(&daemon, "hw_full", 6);
    let full = relay.sim().snapshot();
    assert!(all_in_hw(&full, 4), "exactly the capacity is in hardware: {full:#?}");
    assert_eq!(full.routes.len(), 2, "refused connections hold no route object");
    assert_eq!(
        daemon.counter("table_entries"),
        10,
        "refused connections stay tracked, in back-off"
    );
    assert_eq!(daemon.counter("hw_route_objects"), 2);

    relay.sim().set_capacity(10);
    let table = wait_hw(&relay, &daemon, "all admitted after the back-off", |t| all_in_hw(t, 10));
    assert_eq!(table.routes.len(), 2);
    assert_routes_match_their_directions(&topo, &table);
    let refused = relay
        .sim()
        .stats()
        .count(cdx_sys::fpp::FCode::Ipv4Conntrack, cdx_sys::fpp::ReturnCode::from(0xFFFF));
    assert!(refused >= 6, "the hardware refused at least the six over capacity: {refused}");

    entries(&topo.router, Op::Delete, server(), 80, ports).unwrap();
    assert_hw_empty(&relay, &daemon);
    let mut report = Report::new("hw_table_full");
    report
        .add("capacity", 4)
        .add("flows", 10)
        .add("hw_refusals", refused)
        .add("hw_full", daemon.counter("hw_full"))
        .add("leaks", 0);
    report.print();
}

#[test]
fn hardware_errors_are_retried_with_back_off_and_leak_no_route_ids() {
    require_root();
    let (topo, relay, daemon) = on_test_hardware(1024);
    // Every command fails with -EIO until the faults are cleared.
    relay.sim().inject(Fault::Eio { count: u32::MAX }).unwrap();
    let ports = 50_100..50_105;
    entries(&topo.router, Op::Create, server(), 80, ports.clone()).unwrap();
    wait_counter(&daemon, "hw_failed", 1);
    // Observe the retries for a while: back-off doubles from 1 s, so each connection is
    // tried about four times in 7 s; a retry loop would send thousands of commands.
    let window = Duration::from_secs(7);
    std::thread::sleep(window);
    let failed = relay.sim().stats().netlink_errors;
    assert!(failed >= 2, "the hardware was retried: {failed}");
    assert!(failed <= 5 * 3 * 4, "retries back off ({failed} failed commands in {window:?})");
    assert_eq!(relay.sim().snapshot().conntracks.len(), 0);
    assert_eq!(daemon.counter("hw_route_objects"), 0, "failed registrations keep no route id");

    relay.sim().clear_faults();
    let table =
        wait_hw(&relay, &daemon, "offloaded once the hardware recovers", |t| all_in_hw(t, 5));
    assert_eq!(table.routes.len(), 2);
    assert_routes_match_their_directions(&topo, &table);
    assert_eq!(daemon.counter("hw_route_objects"), 2, "no route id leaked by the failures");
    let daemon_failed = daemon.counter("hw_failed");
    assert_eq!(daemon_failed, relay.sim().stats().netlink_errors, "every failure is counted");

    entries(&topo.router, Op::Delete, server(), 80, ports).unwrap();
    assert_hw_empty(&relay, &daemon);
    let mut report = Report::new("hw_eio");
    report
        .add("flows", 5)
        .add("failed_commands_in_7s", failed)
        .add("hw_failed", daemon_failed)
        .add("leaks", 0);
    report.print();
}

#[test]
fn timeouts_and_dropped_replies_leave_nothing_behind_even_when_the_flow_ends_meanwhile() {
    require_root();
    let (topo, relay, daemon) = on_test_hardware(1024);

    // Replies later than the worker's 2 s timeout: the commands happened (the worker's probes
    // of whether cdx knows the ports, ahead of the route registrations), their answers were
    // given up. The connection is retried and must use routes that are right.
    relay.sim().inject(Fault::Delay { duration: Duration::from_millis(2_500), count: 2 }).unwrap();
    entries(&topo.router, Op::Create, server(), 80, [51_000]).unwrap();
    wait_counter(&daemon, "hw_timeouts", 1);
    let table = wait_hw(&relay, &daemon, "offloaded after the timeouts", |t| all_in_hw(t, 1));
    assert_routes_match_their_directions(&topo, &table);
    // The registrations of unknown outcome are undone (their deregistrations wait behind
    // the stalled hardware, and are retried): two route ids remain, both right.
    let settled = wait_for(WAIT, POLL, || {
        let table = relay.sim().snapshot();
        (table.routes.len() == 2 && daemon.counter("hw_route_objects") == 2).then_some(table)
    });
    let table = settled.unwrap_or_else(|| {
        panic!("route ids never settled: {:#?}\n{}", relay.sim().snapshot(), daemon.log())
    });
    assert_routes_match_their_directions(&topo, &table);

    // A registration whose reply is lost (fci.ko drops it when the socket is full, and the
    // next receive says ENOBUFS: no timeout, a lost reply): the hardware holds the connection,
    // the daemon does not know it. The connection ends while it waits to retry.
    let lost = daemon.counter("hw_replies_lost");
    relay.sim().inject(Fault::DropReply { count: 1 }).unwrap();
    entries(&topo.router, Op::Create, server(), 80, [51_001]).unwrap();
    wait_counter(&daemon, "hw_replies_lost", lost + 1);
    entries(&topo.router, Op::Delete, server(), 80, [51_001]).unwrap();
    entries(&topo.router, Op::Delete, server(), 80, [51_000]).unwrap();
    assert_hw_empty(&relay, &daemon);
    let stats = relay.sim().stats();
    let mut report = Report::new("hw_timeouts");
    report
        .add("delayed_replies", 2)
        .add("dropped_replies", stats.replies_dropped)
        .add("hw_timeouts", daemon.counter("hw_timeouts"))
        .add("hw_replies_lost", daemon.counter("hw_replies_lost"))
        .add("leaks", 0);
    report.print();
}

#[test]
fn removed_events_for_unknown_flows_and_duplicates_are_counted_and_change_nothing_else() {
    require_root();
    let (topo, relay, daemon) = on_test_hardware(1024);
    let ports = 52_000..52_006;
    entries(&topo.router, Op::Create, server(), 80, ports.clone()).unwrap();
    wait_hw(&relay, &daemon, "offloaded", |t| all_in_hw(t, 6));

    for n in 1..=3u8 {
        let unknown = |a: u8, b: u8| SimTuple {
            src: IpAddr::from([192, 0, 2, a]),
            dst: IpAddr::from([192, 0, 2, b]),
            sport: 1000 + u16::from(n),
            dport: 53,
        };
        relay
            .sim()
            .inject(Fault::SpuriousRemoved {
                orig: unknown(1, 2),
                reply: unknown(2, 1),
                protocol: 17,
            })
            .unwrap();
    }
    wait_counter(&daemon, "hw_removed_unknown", 3);
    assert!(all_in_hw(&relay.sim().snapshot(), 6), "events for unknown flows touch nothing");
    assert_eq!(daemon.counter("table_entries"), 6);
    assert_eq!(kernel_established(&topo.router).unwrap().len(), 6);

    // The hardware ages every flow out and reports each REMOVED twice.
    relay.sim().inject(Fault::DuplicateRemoved { count: 6 }).unwrap();
    relay.sim().advance(Duration::from_secs(432_000 + 60));
    assert_hw_empty(&relay, &daemon);
    let gone =
        wait_for(WAIT, POLL, || kernel_established(&topo.router).ok().filter(BTreeSet::is_empty));
    assert!(gone.is_some(), "aged-out flows are deleted from the kernel (on_removed = delete)");
    assert_eq!(daemon.counter("hw_removed_events"), 3 + 12);
    assert_eq!(daemon.counter("hw_removed_unknown"), 3 + 6, "each duplicate is an unknown flow");
    assert_eq!(daemon.counter("kernel_deletes"), 6, "one kernel delete per flow, not per event");
    assert!(daemon.ctl("show status").unwrap().contains("ready: yes"));
    let mut report = Report::new("hw_removed");
    report
        .add("spurious_removed", 3)
        .add("duplicate_removed", 6)
        .add("hw_removed_events", daemon.counter("hw_removed_events"))
        .add("kernel_deletes", daemon.counter("kernel_deletes"))
        .add("leaks", 0);
    report.print();
}

// ------------------------------------------------------------------ kernel-side changes

/// The daemon in a fresh topology (neighbours pinned), with injected flows `ports` to the
/// server offloaded.
fn offloaded(ports: std::ops::Range<u16>, config: &str) -> (Topology, Daemon, tempfile::TempDir) {
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let (dir, config) = config_file(config).unwrap();
    let daemon = start_daemon(binary(), &topo, &["--config", &config]).unwrap();
    let count = ports.len();
    entries(&topo.router, Op::Create, server(), 80, ports).unwrap();
    wait_sim(&daemon, "injected flows offloaded", |t| t.connections.len() == count);
    (topo, daemon, dir)
}

/// No periodic sweep: a connection withdrawn because its path went away comes back because the
/// daemon keeps it waiting for the network, not because a dump finds it again.
const NO_SWEEP: &str = "[netlink]\nsweep_interval = \"0s\"\n";

#[test]
fn conntrack_delete_and_flush_withdraw_offloaded_flows_and_release_everything() {
    require_root();
    let (topo, daemon, _config) = offloaded(53_000..53_020, "");
    topo.router
        .exec("conntrack", &["-D", "-p", "tcp", "-s", "10.1.0.2", "--sport", "53000"])
        .unwrap();
    wait_sim(&daemon, "the deleted entry is withdrawn, the others stay", |t| {
        t.connections.len() == 19 && t.by_sport(53_000).is_none()
    });
    topo.router.exec("conntrack", &["-F"]).unwrap();
    let table = wait_sim(&daemon, "a flush withdraws everything", |t| {
        t.connections.is_empty() && t.routes.is_empty()
    });
    assert_nothing_left(&daemon, &table);
    assert!(kernel_established(&topo.router).unwrap().is_empty());
    assert_eq!(daemon.counter("withdrawn"), 20);
    Report::new("kernel_flush").add("deleted", 1).add("flushed", 19).add("left", 0).print();
}

#[test]
fn an_interface_going_down_withdraws_its_flows_and_coming_up_offloads_them_again() {
    require_root();
    let (topo, daemon, _config) = offloaded(53_100..53_105, NO_SWEEP);
    topo.router.ip(&["link", "set", "r1", "down"]).unwrap();
    let table = wait_sim(&daemon, "withdrawn when r1 goes down", |t| {
        t.connections.is_empty() && t.routes.is_empty()
    });
    assert!(table.connections.is_empty());
    assert!(daemon.counter("link_down") >= 5, "{:#?}", daemon.counters());
    assert_eq!(kernel_established(&topo.router).unwrap().len(), 5, "the kernel keeps them");
    assert_eq!(daemon.counter("hw_route_objects"), 0);

    topo.router.ip(&["link", "set", "r1", "up"]).unwrap();
    // Link down flushed the neighbour entries of r1; the server is known again.
    pin_neighbours(&topo).unwrap();
    let table = wait_sim(&daemon, "offloaded again once r1 is up", |t| t.connections.len() == 5);
    assert_eq!(table.routes.len(), 2);
    assert_eq!(daemon.counter("hw_route_objects"), 2);
    Report::new("link_down_up").add("flows", 5).add("withdrawn", 5).add("reoffloaded", 5).print();
}

#[test]
fn route_deletion_and_address_removal_withdraw_the_flows_that_depend_on_them() {
    require_root();
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    topo.router.ip(&["route", "add", "10.9.0.0/24", "via", "10.2.0.2", "dev", "r1"]).unwrap();
    let (_dir, config) = config_file(NO_SWEEP).unwrap();
    let daemon = start_daemon(binary(), &topo, &["--config", &config]).unwrap();
    let behind_gateway: IpAddr = [10, 9, 0, 5].into();
    entries(&topo.router, Op::Create, behind_gateway, 80, 53_200..53_205).unwrap();
    entries(&topo.router, Op::Create, server(), 80, 53_300..53_305).unwrap();
    wait_sim(&daemon, "both groups offloaded", |t| t.connections.len() == 10);

    topo.router.ip(&["route", "del", "10.9.0.0/24"]).unwrap();
    let table = wait_sim(&daemon, "flows through the deleted route are withdrawn", |t| {
        t.connections.len() == 5 && t.connections.iter().all(|c| c.orig.1 == "10.2.0.2")
    });
    assert_eq!(table.routes.len(), 2, "the direct flows keep their route objects");
    assert!(daemon.counter("no_route") >= 5);

    topo.router.ip(&["addr", "del", "10.2.0.100/24", "dev", "r1"]).unwrap();
    let table = wait_sim(&daemon, "removing r1's address withdraws the rest", |t| {
        t.connections.is_empty() && t.routes.is_empty()
    });
    assert!(table.connections.is_empty());
    assert_eq!(daemon.counter("hw_route_objects"), 0);
    assert_eq!(kernel_established(&topo.router).unwrap().len(), 10, "the kernel keeps them all");

    // Removing r1's last IPv4 address also flushed its neighbours.
    topo.router.ip(&["addr", "add", "10.2.0.100/24", "dev", "r1"]).unwrap();
    pin_neighbours(&topo).unwrap();
    let table = wait_sim(&daemon, "the direct flows come back with the address", |t| {
        t.connections.len() == 5 && t.connections.iter().all(|c| c.orig.1 == "10.2.0.2")
    });
    assert_eq!(table.routes.len(), 2);
    Report::new("route_and_address")
        .add("route_deleted_withdrawn", 5)
        .add("address_removed_withdrawn", 5)
        .add("reoffloaded", 5)
        .print();
}

#[test]
fn a_neighbour_flush_withdraws_the_flows_using_it_until_the_neighbour_is_learnt_again() {
    require_root();
    let topo = Topology::new().unwrap();
    // Real neighbour entries, learnt from traffic (not pinned).
    topo.client.exec("ping", &["-c", "1", "-W", "2", "10.2.0.2"]).unwrap();
    let (_dir, config) = config_file(NO_SWEEP).unwrap();
    let daemon = start_daemon(binary(), &topo, &["--config", &config]).unwrap();
    entries(&topo.router, Op::Create, server(), 80, 53_400..53_403).unwrap();
    wait_sim(&daemon, "offloaded", |t| t.connections.len() == 3);

    // `ip neigh flush` fails the entry, then deletes it: the hardware must not keep
    // forwarding to a MAC the kernel no longer vouches for.
    topo.router.ip(&["neigh", "flush", "dev", "r1"]).unwrap();
    let table = wait_sim(&daemon, "flows through the flushed next hop are withdrawn", |t| {
        t.connections.is_empty() && t.routes.is_empty()
    });
    assert!(table.connections.is_empty());
    let forgotten = wait_for(WAIT, POLL, || {
        daemon.ctl("show neighbor").ok().filter(|text| !text.contains("IP addr: 10.2.0.2 "))
    });
    assert!(forgotten.is_some(), "the daemon's view follows the flush");
    assert!(daemon.counter("no_neighbour") >= 3);
    assert_eq!(daemon.counter("hw_route_objects"), 0);
    assert_eq!(kernel_established(&topo.router).unwrap().len(), 3, "the kernel keeps them");

    // A new flow waits for the next hop, like the withdrawn ones (the daemon keeps them).
    let waits = daemon.counter("no_neighbour");
    entries(&topo.router, Op::Create, server(), 80, [53_410]).unwrap();
    wait_counter(&daemon, "no_neighbour", waits + 1);
    assert!(daemon.sim().unwrap().connections.is_empty(), "nothing offloaded without a MAC");
    topo.client.exec("ping", &["-c", "1", "-W", "2", "10.2.0.2"]).unwrap();
    let table =
        wait_sim(&daemon, "all offloaded once the neighbour is back", |t| t.connections.len() == 4);
    assert_eq!(table.routes.len(), 2);
    assert_eq!(daemon.counter("hw_route_objects"), 2);
    Report::new("neighbour_flush").add("withdrawn", 3).add("reoffloaded", 4).print();
}

// ------------------------------------------------------------------ SIGKILL

/// `show` of a sim server as a table.
fn hw_of(sim: &SimServer) -> SimTable {
    SimTable::parse(&sim.ctl("show").unwrap())
}

#[test]
fn after_sigkill_a_restart_makes_the_hardware_equal_to_what_the_kernel_still_holds() {
    require_root();
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let _server = service_server(&topo, false).unwrap();
    let sim = SimServer::start(binary(), &topo.router, "r0,r1").unwrap();
    let socket = sim.socket().to_string_lossy().into_owned();
    let first = start_daemon(binary(), &topo, &["--sim-socket", &socket]).unwrap();
    let held = hold_tcp(&topo);
    entries(&topo.router, Op::Create, server(), 80, 54_000..54_030).unwrap();
    wait_for(WAIT, POLL, || {
        (hw_tcp(&hw_of(&sim)) == kernel_established(&topo.router).ok()?).then_some(())
    })
    .expect("offloaded before the kill");
    assert_eq!(hw_of(&sim).connections.len(), 31);
    first.kill();

    // While cmmd is dead: ten entries end, five begin.
    entries(&topo.router, Op::Delete, server(), 80, 54_000..54_010).unwrap();
    entries(&topo.router, Op::Create, server(), 80, 54_100..54_105).unwrap();
    assert_eq!(hw_of(&sim).connections.len(), 31, "the hardware still holds the ended ones");

    let restarted = Instant::now();
    let second = start_daemon(binary(), &topo, &["--sim-socket", &socket]).unwrap();
    let kernel = wait_for(WAIT, POLL, || {
        let kernel = kernel_established(&topo.router).ok()?;
        (hw_tcp(&hw_of(&sim)) == kernel).then_some(kernel)
    })
    .unwrap_or_else(|| panic!("{:#?}\n{:#?}\n{}", hw_of(&sim), second.counters(), second.log()));
    let converged = restarted.elapsed();
    assert_eq!(kernel.len(), 26);
    assert!(kernel.iter().any(|k| k.1 == port_of(&held)), "the real flow survives");
    assert_eq!(second.counter("adopted"), 21, "20 injected and the real flow, as they were");
    assert_eq!(second.counter("reconcile_removed"), 10);
    wait_counter(&second, "offloaded", 5);
    assert_eq!(second.counter("hw_routes_registered"), 0, "the routes were adopted");
    assert_eq!(hw_of(&sim).routes.len(), 2);
    assert_eq!(second.counter("hw_route_objects"), 2);
    Report::new("sigkill_restart")
        .add("offloaded_before", 31)
        .add("ended_while_down", 10)
        .add("new_while_down", 5)
        .add("adopted", second.counter("adopted"))
        .add("reconcile_removed", second.counter("reconcile_removed"))
        .add("converge_ms", converged.as_millis())
        .print();
    drop(held);
}

#[test]
fn kernel_entries_kept_alive_by_cmmd_expire_within_the_margin_after_sigkill() {
    require_root();
    const MARGIN: Duration = Duration::from_secs(3);
    let topo = Topology::new().unwrap();
    pin_neighbours(&topo).unwrap();
    let sim = SimServer::start(binary(), &topo.router, "r0,r1").unwrap();
    let socket = sim.socket().to_string_lossy().into_owned();
    let (_dir, config) =
        config_file("[keepalive]\ninterval = \"500ms\"\nmargin = \"3s\"\n").unwrap();
    let args = ["--sim-socket", socket.as_str(), "--config", config.as_str()];
    let first = start_daemon(binary(), &topo, &args).unwrap();
    let ports = 54_200..54_205;
    entries(&topo.router, Op::Create, server(), 80, ports.clone()).unwrap();
    wait_for(WAIT, POLL, || (hw_of(&sim).connections.len() == 5).then_some(())).expect("offloaded");
    let timeouts = || -> Vec<u32> {
        conntrack_cli::list(&topo.router)
            .unwrap()
            .iter()
            .filter(|e| {
                e.value("sport", 0).and_then(|p| p.parse().ok()).is_some_and(|p| ports.contains(&p))
            })
            .map(|e| e.timeout)
            .collect()
    };
    let stop = AtomicBool::new(false);
    let (alive_ms, expired) = std::thread::scope(|scope| {
        // The hardware keeps forwarding these flows the whole time.
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = sim.ctl("activate all");
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        // cmmd caps the kernel timeouts at the margin (they were created with 600 s) and
        // keeps refreshing them: alive for twice the margin and more.
        let capped = wait_for(WAIT, POLL, || {
            let t = timeouts();
            (t.len() == 5 && t.iter().all(|s| u64::from(*s) <= MARGIN.as_secs())).then_some(())
        });
        assert!(
            capped.is_some(),
            "timeouts capped at the margin: {:?}\n{}",
            timeouts(),
            first.log()
        );
        let kept = Instant::now();
        while kept.elapsed() < 2 * MARGIN {
            assert_eq!(timeouts().len(), 5, "kept alive while cmmd runs and the hardware forwards");
            std::thread::sleep(POLL * 5);
        }
        let alive_ms = kept.elapsed().as_millis();
        first.kill();
        let killed = Instant::now();
        let gone = wait_for(MARGIN * 4, POLL, || timeouts().is_empty().then(|| killed.elapsed()));
        stop.store(true, Ordering::Relaxed);
        (alive_ms, gone)
    });
    let expired = expired.expect("no immortal entries: they expire with cmmd dead");
    assert!(
        expired <= MARGIN + Duration::from_secs(2),
        "expired {expired:?} after the kill, margin {MARGIN:?}"
    );
    // The next cmmd finds the hardware holding flows the kernel no longer has.
    let second = start_daemon(binary(), &topo, &args).unwrap();
    wait_for(WAIT, POLL, || hw_of(&sim).connections.is_empty().then_some(()))
        .expect("reconcile removes the expired flows from the hardware");
    assert_eq!(second.counter("reconcile_removed"), 5);
    assert_eq!(second.counter("adopted"), 0);
    let table = wait_for(WAIT, POLL, || Some(hw_of(&sim)).filter(|t| t.routes.is_empty()));
    assert!(table.is_some(), "route objects released: {:#?}", hw_of(&sim));
    assert_eq!(second.counter("hw_route_objects"), 0);
    Report::new("sigkill_margin")
        .add("margin_s", MARGIN.as_secs())
        .add("kept_alive_ms", alive_ms)
        .add("expired_after_kill_ms", expired.as_millis())
        .add("immortal", 0)
        .print();
}
