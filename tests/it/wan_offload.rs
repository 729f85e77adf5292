//! The gateway's paths offloaded, in the VM (`cmmd_tests::vm`: Debian's kernel has 802.1Q,
//! PPP and PPPoE): a LAN bridge in front of the router, and a WAN that is an 802.1Q VLAN, or a
//! PPPoE session over that VLAN, with masquerade. Real TCP from the client through real
//! devices; cmmd (software cdx) in the router. Each test asserts what the software cdx holds
//! (the VLAN and the PPPoE session registered, the route objects' and hardware entries'
//! ports, MAC and MTU), what the kernel holds (`conntrack -L`, `/proc/net/pppoe`) and what
//! cmmd counts, through the path going away and coming back.
//!
//! Masquerade has a kernel side: when the masquerading device goes down, the kernel deletes
//! its conntracks itself. Connections to `wan::SNAT_PORT` are SNATed instead, so the tests
//! can show that cmmd leaves a conntrack intact when it withdraws it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use cmmd_tests::daemon::{Daemon, SimTable};
use cmmd_tests::scenario::{hold_tcp, mac, wait_sim};
use cmmd_tests::traffic::TcpHoldServer;
use cmmd_tests::wan::{self, PppoeOverVlan};
use cmmd_tests::{conntrack_cli, require_root, vm};

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");

/// Wall-clock time of each phase, printed as `PHASE name seconds` lines.
struct Phases(Instant);

impl Phases {
    fn done(&mut self, phase: &str) {
        eprintln!("PHASE {phase} {:.2} s", self.0.elapsed().as_secs_f64());
        self.0 = Instant::now();
    }
}

fn service(port: u16) -> SocketAddr {
    SocketAddr::from((wan::SERVER_V4, port))
}

/// cmmd in the router: r0 (the bridge's member) and r1 (the VLAN's parent) are its ports; an
/// account with a cheap hash, so that each `cmmd ctl` costs no argon2 under emulation.
fn daemon(router: &cmmd_tests::Netns) -> (Daemon, tempfile::NamedTempFile) {
    let config = crate::cli::config_file("", "");
    let path = config.path().to_string_lossy().into_owned();
    let args =
        ["--backend", "sim", "--ports", "r0,r1", "--config", &path, "--log", "info,cmmd=debug"];
    let daemon = Daemon::start(Path::new(CMMD), router, &args).expect("cmmd starts in the router");
    (daemon, config)
}

/// On the host: boots the VM, runs test `name` there, and checks that it reached its last
/// phase (then the caller returns). In the VM: false, and the caller runs its body.
fn ran_in_vm(name: &str, last_phase: &str) -> bool {
    if vm::in_vm() {
        return false;
    }
    require_root();
    let run = vm::run_test_in_vm(name);
    let phase = format!("PHASE {last_phase}");
    assert!(run.output.contains(&phase), "the guest ran the whole body:\n{}", run.output);
    true
}

/// Two connections from the client, to the service port (masqueraded) and to
/// `wan::SNAT_PORT`, held open once both are offloaded: the streams, their source ports and
/// the software cdx's table then.
fn two_offloaded(
    topology: &PppoeOverVlan,
    daemon: &Daemon,
) -> ((std::net::TcpStream, std::net::TcpStream), u16, u16, SimTable) {
    let masqueraded = hold_tcp(&topology.client, service(80)).expect("connect");
    let snat = hold_tcp(&topology.client, service(wan::SNAT_PORT)).expect("connect");
    let (m, s) = (masqueraded.local_addr().unwrap().port(), snat.local_addr().unwrap().port());
    let table =
        wait_sim(daemon, "both connections offloaded", |t| offloaded(t, m) && offloaded(t, s));
    ((masqueraded, snat), m, s, table)
}

/// `(input, output, MAC, MTU)` of the original and the reply direction's route objects.
fn ports(table: &SimTable, sport: u16) -> Option<[(String, String, String, u32); 2]> {
    let c = table.by_sport(sport)?;
    let r = |id| table.route(id).map(|r| (r.input.clone(), r.output.clone(), r.mac.clone(), r.mtu));
    Some([r(c.routes.0)?, r(c.routes.1)?])
}

fn offloaded(table: &SimTable, sport: u16) -> bool {
    table.by_sport(sport).is_some_and(|c| c.in_hw == (true, true))
}

/// The router's neighbour entry for the VLAN gateway, learnt again (what the next packet of
/// any connection does).
fn learn_gateway(router: &cmmd_tests::Netns) {
    let gateway = wan::SERVER_VLAN_V4.to_string();
    let learnt = cmmd_tests::traffic::wait_for(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(200),
        || router.exec("ping", &["-c", "1", "-W", "1", &gateway]).ok(),
    );
    assert!(learnt.is_some(), "the router reaches the gateway again");
}

/// The kernel's conntrack of the connection from `sport`, if it has one.
fn kernel_has(router: &cmmd_tests::Netns, sport: u16) -> bool {
    conntrack_cli::list(router)
        .unwrap()
        .iter()
        .any(|e| e.proto == "tcp" && e.value("sport", 0) == Some(&sport.to_string()))
}

#[test]
fn a_lan_bridge_to_a_wan_vlan_is_offloaded_through_the_registered_vlan() {
    if ran_in_vm(
        "wan_offload::a_lan_bridge_to_a_wan_vlan_is_offloaded_through_the_registered_vlan",
        "rename",
    ) {
        return;
    }
    let mut phases = Phases(Instant::now());
    wan::load_modules().expect("8021q, bridge, veth, nf_conntrack load");
    let topology = PppoeOverVlan::links_bridged().expect("namespaces, the bridge, the VLAN");
    topology.plain_vlan().expect("the VLAN's addresses, route and ruleset");
    let (router, server) = (&topology.router, &topology.server);
    let _web = TcpHoldServer::start(server, service(80)).unwrap();
    let _snat = TcpHoldServer::start(server, service(wan::SNAT_PORT)).unwrap();
    let (daemon, _config) = daemon(router);
    phases.done("setup");

    let (streams, m, s, table) = two_offloaded(&topology, &daemon);
    let vlan_mac = mac(server, wan::SERVER_VLAN).unwrap();
    let client_mac = mac(&topology.client, "c0").unwrap();
    assert_eq!(table.vlans.len(), 1, "{table:?}");
    let vlan = &table.vlans[0];
    assert_eq!((vlan.name.as_str(), vlan.id, vlan.parent.as_str()), (wan::ROUTER_VLAN, 100, "r1"));
    assert_eq!(
        ports(&table, m).unwrap(),
        [
            ("r0".into(), wan::ROUTER_VLAN.into(), vlan_mac.clone(), 1500),
            (wan::ROUTER_VLAN.into(), "r0".into(), client_mac, 1500),
        ],
        "the bridge's member and the VLAN, never the bridge"
    );
    let conn = table.by_sport(m).unwrap();
    assert_eq!(conn.hw_ports(), ("r0>r1.100".to_string(), "r1.100>r0".to_string()));
    assert_eq!(conn.reply.1, wan::ROUTER_VLAN_V4.to_string(), "masqueraded");
    phases.done("offload");

    // The WAN's carrier goes (the far end's port down): the VLAN is down with it, its
    // connections leave the hardware, then the VLAN leaves cdx; the kernel keeps both
    // conntracks (no device went down on the router).
    server.ip(&["link", "set", "s0", "down"]).unwrap();
    let table = wait_sim(&daemon, "withdrawn and the VLAN removed", |t| {
        t.connections.is_empty() && t.vlans.is_empty()
    });
    assert!(table.routes.is_empty(), "{table:?}");
    assert!(kernel_has(router, m) && kernel_has(router, s), "the kernel's entries are intact");
    assert_eq!(daemon.counter("kernel_deletes"), 0);
    // cdx refuses the VLAN twice when it comes back: counted, retried with back-off. (The
    // router's next packet towards the gateway learns its MAC again; the held connections
    // are idle, so a ping stands for it: cmmd does not probe neighbours itself.)
    daemon.ctl("sim fault error 5 fcode 2305 count 2").expect("sim fault");
    server.ip(&["link", "set", "s0", "up"]).unwrap();
    learn_gateway(router);
    let table = wait_sim(&daemon, "re-registered and re-programmed", |t| {
        offloaded(t, m) && offloaded(t, s) && t.vlans.len() == 1
    });
    assert_eq!(ports(&table, s).unwrap()[0].1, wan::ROUTER_VLAN);
    assert_eq!(daemon.counter("itf_register_failures"), 2);
    assert!(daemon.counter("interface_unregistered") >= 1);
    phases.done("carrier");

    // The VLAN is renamed (down, renamed, up, its route back): the masqueraded conntrack
    // goes with the device, the SNATed one follows the new name.
    router.ip(&["link", "set", wan::ROUTER_VLAN, "down"]).unwrap();
    router.ip(&["link", "set", wan::ROUTER_VLAN, "name", "wan0"]).unwrap();
    router.ip(&["link", "set", "wan0", "up"]).unwrap();
    router.ip(&["route", "replace", "default", "via", &wan::SERVER_VLAN_V4.to_string()]).unwrap();
    learn_gateway(router);
    let table = wait_sim(&daemon, "registered under its new name", |t| {
        offloaded(t, s) && t.vlans.iter().map(|v| v.name.as_str()).eq(["wan0"])
    });
    assert_eq!(ports(&table, s).unwrap()[0].1, "wan0");
    assert_eq!(table.by_sport(s).unwrap().hw_ports().0, "r0>wan0");
    assert!(kernel_has(router, s));
    phases.done("rename");
    drop(streams);
}

#[test]
fn a_lan_bridge_to_pppoe_over_a_vlan_is_offloaded_through_the_registered_session() {
    if ran_in_vm(
        "wan_offload::a_lan_bridge_to_pppoe_over_a_vlan_is_offloaded_through_the_registered_session",
        "redial",
    ) {
        return;
    }
    let mut phases = Phases(Instant::now());
    wan::load_modules().expect("8021q, ppp, pppoe, bridge, veth, nf_conntrack load");
    let mut topology = PppoeOverVlan::links_bridged().expect("namespaces, the bridge, the VLAN");
    let session = topology.start_pppoe().expect("the PPPoE session comes up");
    topology.masquerade().expect("the router's ruleset");
    let _web = TcpHoldServer::start(&topology.server, service(80)).unwrap();
    let _snat = TcpHoldServer::start(&topology.server, service(wan::SNAT_PORT)).unwrap();
    let (daemon, _config) = daemon(&topology.router);
    phases.done("setup");

    let (streams, m, s, table) = two_offloaded(&topology, &daemon);
    let server_vlan_mac = mac(&topology.server, wan::SERVER_VLAN).unwrap();
    let client_mac = mac(&topology.client, "c0").unwrap();
    let vlans: Vec<(&str, u16, &str)> =
        table.vlans.iter().map(|v| (v.name.as_str(), v.id, v.parent.as_str())).collect();
    assert_eq!(vlans, [(wan::ROUTER_VLAN, 100, "r1")]);
    assert_eq!(table.pppoe.len(), 1, "{table:?}");
    let held = &table.pppoe[0];
    assert_eq!(
        (held.name.as_str(), held.id, held.peer.as_str(), held.parent.as_str()),
        (wan::PPP_DEVICE, session.id, server_vlan_mac.as_str(), wan::ROUTER_VLAN),
        "the session the kernel lists, on the VLAN"
    );
    assert_eq!(session.peer, server_vlan_mac);
    assert_eq!(
        ports(&table, m).unwrap(),
        [
            ("r0".into(), wan::PPP_DEVICE.into(), "00:00:00:00:00:00".into(), wan::PPPOE_MTU),
            (wan::PPP_DEVICE.into(), "r0".into(), client_mac, 1500),
        ],
        "out of the session (cdx writes its MAC), PPPoE's MTU; in on the bridge's member"
    );
    let conn = table.by_sport(m).unwrap();
    assert_eq!(conn.hw_ports(), ("r0>ppp0".to_string(), "ppp0>r0".to_string()));
    let out_of_session = conn.hw.0.as_ref().map(|hw| hw.mac.as_str());
    assert_eq!(out_of_session, Some(server_vlan_mac.as_str()), "the hardware sends to the peer");
    assert_eq!(conn.reply.1, wan::ROUTER_PPP_V4.to_string(), "masqueraded to the PPP address");
    // The vendor's commands: cdx's tables, and cmmd's own.
    let upper_mac = server_vlan_mac.to_ascii_uppercase();
    let query = daemon.ctl("query pppoe").unwrap();
    assert_eq!(
        query,
        format!(
            "PPP Device: ppp0, Session ID: {}, MAC addr: {upper_mac}, Physical Device: r1.100\n\
             PPPoE Entry Count: 1\n",
            session.id
        )
    );
    let query = daemon.ctl("query vlan").unwrap();
    assert_eq!(
        query,
        "VLAN interfaces:\nInterface: r1.100, VLAN Id  :  100,  physical Interface: r1 \n\
         Total VLAN Entries:1\n"
    );
    let show = daemon.ctl("show pppoe").unwrap();
    assert!(
        show.starts_with(&format!(
            "PPP Device: ppp0, Session ID: {}, MAC addr: {upper_mac}, Physical Device: r1.100, Flags: 1, itf_flags: 10\n",
            session.id
        )),
        "{show:?}"
    );
    let line = daemon.connection(m).unwrap();
    assert!(line.ends_with(", ports: br0[r0]>ppp0 ppp0>br0[r0]"), "{line}");
    phases.done("offload");

    // The WAN route goes (as a routing daemon withdraws it) and comes back: the connections
    // leave the hardware and wait, the kernel keeps both conntracks (no device went down),
    // and they are programmed again when the route returns. The session and the VLAN stay.
    let router = &topology.router;
    router.ip(&["route", "del", "default", "dev", wan::PPP_DEVICE]).unwrap();
    let table = wait_sim(&daemon, "withdrawn without a route", |t| t.connections.is_empty());
    assert_eq!((table.pppoe.len(), table.vlans.len()), (1, 1), "{table:?}");
    assert!(kernel_has(router, m) && kernel_has(router, s));
    router.ip(&["route", "add", "default", "dev", wan::PPP_DEVICE]).unwrap();
    let table = wait_sim(&daemon, "re-programmed", |t| offloaded(t, m) && offloaded(t, s));
    assert_eq!(ports(&table, m).unwrap()[0].1, wan::PPP_DEVICE);
    assert!(daemon.counter("no_route") >= 1);
    phases.done("route");

    // The session ends (the router hangs up: PADT, ppp0 goes): withdrawn; the masqueraded
    // conntrack dies with ppp0 in the kernel, the SNATed one stays intact; cmmd deletes
    // nothing and cdx removes no connection by itself.
    topology.hang_up().expect("the session ends");
    let table = wait_sim(&daemon, "withdrawn, session removed", |t| {
        t.connections.is_empty() && t.pppoe.is_empty()
    });
    assert_eq!(table.vlans.len(), 1, "the VLAN under it stays");
    assert!(kernel_has(&topology.router, s), "the SNATed conntrack is intact");
    assert_eq!(daemon.counter("kernel_deletes"), 0);
    assert_eq!(daemon.counter("hw_removed_events"), 0, "cdx removed nothing by itself");
    phases.done("hangup");

    // A new session: registered with its id, the surviving connection programmed again.
    let again = topology.dial().expect("the session comes back");
    let table = wait_sim(&daemon, "re-programmed over the new session", |t| {
        offloaded(t, s) && t.pppoe.iter().any(|p| p.id == again.id)
    });
    assert_eq!(ports(&table, s).unwrap()[0].1, wan::PPP_DEVICE);
    phases.done("redial");
    drop(streams);
}
