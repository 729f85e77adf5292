//! Policy routing on a stock kernel: a router with two uplinks chosen by `ip rule` on the
//! source address and on the mark (tests/src/multiwan.rs). Every offloaded connection's route
//! object must name the egress the kernel itself uses (`ip route get DST from SRC iif IIF mark
//! M`), and the packets of each connection must really leave there (interface counters). A
//! daemon that looked routes up by destination alone would program every one of them out of
//! the main table's uplink.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;

use cmmd_tests::daemon::{Daemon, SimTable};
use cmmd_tests::multiwan::{MARKED_PORT, MultiWan, SERVICE_PORT, WAN2_MARK};
use cmmd_tests::require_root;
use cmmd_tests::scenario::{WAIT, wait_sim};
use cmmd_tests::traffic::{IO_TIMEOUT, TcpHoldServer, connect_in};

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");

/// One connection of the test and where the kernel sends it.
struct Case {
    what: &'static str,
    stream: TcpStream,
    client: IpAddr,
    service: SocketAddr,
    mark: u32,
    egress: &'static str,
}

impl Case {
    fn sport(&self) -> u16 {
        self.stream.local_addr().expect("local address").port()
    }
}

fn open(
    wan: &MultiWan,
    what: &'static str,
    ipv6: bool,
    from_wan2_address: bool,
    port: u16,
    egress: &'static str,
) -> Case {
    let client = MultiWan::client_addr(ipv6, from_wan2_address);
    let service = MultiWan::service(ipv6, port);
    let stream = connect_in(&wan.client, Some(client), service, IO_TIMEOUT)
        .unwrap_or_else(|error| panic!("{what}: connect: {error}"));
    let mark = if port == MARKED_PORT { WAN2_MARK } else { 0 };
    Case { what, stream, client, service, mark, egress }
}

#[test]
fn offloaded_connections_leave_through_the_uplink_the_rules_choose() {
    require_root();
    let wan = MultiWan::new().unwrap();
    // Dual-stack listeners: IPv4 clients arrive as mapped addresses.
    let _servers = [
        TcpHoldServer::start(&wan.server, "[::]:80".parse().unwrap()).unwrap(),
        TcpHoldServer::start(&wan.server, "[::]:8443".parse().unwrap()).unwrap(),
    ];
    let daemon = Daemon::start(
        Path::new(CMMD),
        &wan.router,
        &["--backend", "sim", "--ports", "r0,r1,r2", "--log", "info,cmmd=debug"],
    )
    .expect("cmmd starts");

    let mut cases = [
        open(&wan, "main table", false, false, SERVICE_PORT, "r1"),
        open(&wan, "source rule", false, true, SERVICE_PORT, "r2"),
        open(&wan, "mark rule", false, false, MARKED_PORT, "r2"),
        open(&wan, "source rule, IPv6", true, true, SERVICE_PORT, "r2"),
        open(&wan, "main table, IPv6", true, false, SERVICE_PORT, "r1"),
    ];
    let sports: Vec<u16> = cases.iter().map(Case::sport).collect();
    let table = wait_sim(&daemon, "every connection is offloaded", |t| {
        sports.iter().all(|p| t.by_sport(*p).is_some_and(|c| c.in_hw == (true, true)))
    });

    for case in &mut cases {
        let (what, sport) = (case.what, case.sport());
        let kernel = wan.kernel_egress(case.service.ip(), case.client, "r0", case.mark).unwrap();
        assert_eq!(kernel, case.egress, "{what}: the topology's rules pick {}", case.egress);
        let (orig, reply) = routes(&table, sport, what);
        assert_eq!(
            (orig.0.as_str(), orig.1.as_str()),
            ("r0", case.egress),
            "{what}: the original direction's route object (input, output) is the kernel's"
        );
        let back = wan.kernel_egress(case.client, case.service.ip(), case.egress, case.mark);
        assert_eq!(
            (reply.0.as_str(), reply.1.as_str()),
            (case.egress, back.unwrap().as_str()),
            "{what}: the reply comes in on the uplink and leaves as the kernel routes it"
        );

        // `show connections` says where each direction comes in, and that cmmd inferred it (a
        // stock kernel does not say).
        let line = daemon
            .connections()
            .unwrap()
            .into_iter()
            .find(|l| l.contains(&format!("sport={sport} ")))
            .unwrap_or_else(|| panic!("{what}: not listed"));
        let ingress = format!(", in: r0/{} (inferred)", case.egress);
        assert!(line.contains(&ingress), "{what}: {ingress:?} in {line}");

        // Where the bytes really leave: 256 KiB through the connection.
        let before = [wan.tx_bytes("r1").unwrap(), wan.tx_bytes("r2").unwrap()];
        let chunk = [0x55u8; 16 * 1024];
        for _ in 0..16 {
            case.stream.write_all(&chunk).unwrap();
        }
        case.stream.flush().unwrap();
        let moved =
            cmmd_tests::traffic::wait_for(WAIT, std::time::Duration::from_millis(50), || {
                let after = [wan.tx_bytes("r1").ok()?, wan.tx_bytes("r2").ok()?];
                let delta = [after[0] - before[0], after[1] - before[1]];
                delta.iter().any(|d| *d >= 256 * 1024).then_some(delta)
            })
            .unwrap_or_else(|| panic!("{what}: 256 KiB never left the router"));
        let (used, other) =
            if case.egress == "r1" { (moved[0], moved[1]) } else { (moved[1], moved[0]) };
        assert!(
            used >= 256 * 1024 && other < 64 * 1024,
            "{what}: bytes left through {} (r1 +{}, r2 +{})",
            case.egress,
            moved[0],
            moved[1]
        );
    }
    drop(cases);
    daemon.stop(WAIT).unwrap();
}

/// `((input, output) of the original direction's route object, the same of the reply's)`.
fn routes(table: &SimTable, sport: u16, what: &str) -> ((String, String), (String, String)) {
    let conn = table.by_sport(sport).unwrap_or_else(|| panic!("{what}: not in the sim"));
    let route = |id: u32| {
        let r = table.route(id).unwrap_or_else(|| panic!("{what}: route {id} not registered"));
        (r.input.clone(), r.output.clone())
    };
    (route(conn.routes.0), route(conn.routes.1))
}
