//! A LAN bridge in front of the router (`cmmd_tests::lan`): real TCP from hosts behind the
//! bridge's ports, masqueraded to the server, programmed into the software cdx with the
//! bridge's member ports as cdx's input and output; a forwarding entry that is missing, then
//! learnt; a host moving to the other port; a port leaving the bridge. Assertions are on what
//! the software cdx holds, what the kernel holds (`conntrack -L`, `bridge fdb`) and the
//! daemon's counters and `show connections`.

use std::net::SocketAddr;
use std::path::Path;

use cmmd_tests::daemon::{Daemon, SimTable};
use cmmd_tests::lan::BridgedLan;
use cmmd_tests::scenario::{hold_tcp, mac, wait_sim};
use cmmd_tests::traffic::TcpHoldServer;
use cmmd_tests::{conntrack_cli, require_root};

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");

fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 2, 0, 2], 80))
}

fn daemon(lan: &BridgedLan) -> Daemon {
    Daemon::start(
        Path::new(CMMD),
        &lan.router,
        &["--backend", "sim", "--ports", BridgedLan::PORTS, "--log", "info,cmmd=debug"],
    )
    .expect("cmmd starts")
}

/// The route objects of the connection from source port `sport`: `(input, output, mac)` of
/// the original and the reply direction.
fn ports(table: &SimTable, sport: u16) -> Option<[(String, String, String); 2]> {
    let c = table.by_sport(sport)?;
    let r = |id| table.route(id).map(|r| (r.input.clone(), r.output.clone(), r.mac.clone()));
    Some([r(c.routes.0)?, r(c.routes.1)?])
}

#[test]
fn a_bridged_host_is_offloaded_through_its_member_port_and_follows_it_when_it_moves() {
    require_root();
    let lan = BridgedLan::new().expect("the bridged LAN");
    let server = lan.server.as_ref().unwrap();
    let _service = TcpHoldServer::start(server, server_addr()).unwrap();
    let daemon = daemon(&lan);
    let stream = hold_tcp(&lan.host_a, server_addr()).expect("connect through the bridge");
    let sport = stream.local_addr().unwrap().port();
    let host_mac = lan.host_a_mac().unwrap();
    let server_mac = mac(server, "s0").unwrap();
    let table = wait_sim(&daemon, "the connection is offloaded", |t| {
        t.by_sport(sport).is_some_and(|c| c.in_hw == (true, true))
    });
    assert_eq!(
        ports(&table, sport).unwrap(),
        [
            ("r0a".into(), "r1".into(), server_mac.clone()),
            ("r1".into(), "r0a".into(), host_mac.clone()),
        ],
        "the member port is cdx's input and output, not the bridge"
    );
    let conn = table.by_sport(sport).unwrap();
    assert_eq!(
        conn.hw_ports(),
        ("r0a>r1".to_string(), "r1>r0a".to_string()),
        "what the hardware holds"
    );
    assert_eq!(conn.reply.1, "10.2.0.100", "masqueraded");
    assert_eq!(lan.fdb_port(&host_mac).unwrap().as_deref(), Some("r0a"));
    let line = daemon.connection(sport).unwrap();
    assert!(
        line.ends_with(", ports: br0[r0a]>r1 r1>br0[r0a]"),
        "each direction's logical and physical ports: {line}"
    );

    // Host a moves behind r0b: the bridge learns it there, and cmmd follows.
    lan.move_host().unwrap();
    assert_eq!(lan.fdb_port(&host_mac).unwrap().as_deref(), Some("r0b"), "the kernel moved it");
    let table = wait_sim(&daemon, "the connection follows the host to r0b", |t| {
        ports(t, sport).is_some_and(|p| p[0].0 == "r0b" && p[1].1 == "r0b")
    });
    assert_eq!(ports(&table, sport).unwrap()[1].2, host_mac, "same host, same MAC");
    assert!(
        conntrack_cli::list(&lan.router)
            .unwrap()
            .iter()
            .any(|e| e.value("sport", 0) == Some(&sport.to_string())),
        "the kernel's entry is untouched"
    );

    drop(stream);
}

#[test]
fn a_forwarding_entry_that_is_missing_makes_the_flow_wait_until_it_is_learnt() {
    require_root();
    let lan = BridgedLan::new().expect("the bridged LAN");
    let server = lan.server.as_ref().unwrap();
    let daemon = daemon(&lan);
    // A host the router knows (a permanent neighbour) but the bridge has never heard from,
    // and a server it knows as well: an ESTABLISHED entry between them resolves to no port.
    let quiet_mac = "02:00:00:00:05:09";
    let r = &lan.router;
    r.ip(&["neigh", "replace", QUIET, "lladdr", quiet_mac, "dev", "br0", "nud", "permanent"])
        .unwrap();
    let server_mac = mac(server, "s0").unwrap();
    r.ip(&["neigh", "replace", "10.2.0.2", "lladdr", &server_mac, "dev", "r1", "nud", "permanent"])
        .unwrap();
    conntrack_cli::insert_established(r, QUIET, "10.2.0.2", 40009, 80).expect("conntrack -I");
    let waiting = cmmd_tests::traffic::wait_for(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(100),
        || {
            daemon.connections().ok()?.into_iter().find(|l| {
                l.contains("sport=40009 ") && l.contains("offload: resolving (no_bridge_port)")
            })
        },
    );
    assert!(
        waiting.is_some(),
        "waits for the bridge: {:?}\n{}",
        daemon.connections(),
        daemon.log()
    );
    assert!(daemon.counter("no_bridge_port") >= 1);
    assert!(daemon.sim().unwrap().connections.is_empty());
    // The bridge learns the host behind r0a (a static entry, as an operator or a first frame
    // would put it): the flow is offloaded at once, by the event alone.
    r.exec("bridge", &["fdb", "add", quiet_mac, "dev", "r0a", "master", "static"]).unwrap();
    let table = wait_sim(&daemon, "offloaded once the entry is learnt", |t| {
        t.by_sport(40009).is_some_and(|c| c.in_hw == (true, true))
    });
    assert_eq!(
        ports(&table, 40009).unwrap(),
        [("r0a".into(), "r1".into(), server_mac), ("r1".into(), "r0a".into(), quiet_mac.into()),]
    );
}

/// A LAN address that sends nothing.
const QUIET: &str = "10.5.0.9";
