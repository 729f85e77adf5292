//! Bridges, VLANs and PPPoE: the ports a path resolves to, the interfaces registered with
//! cdx, and what happens when they change.
//!
//! The LAN is a bridge br0 (10.5.0.0/24) over the fast-path ports p1 and p2; the WAN is the
//! VLAN eth1.100 (10.7.0.0/24, gateway 10.7.0.254) on eth1 for 10.8.0.0/16, and a PPPoE
//! session ppp0 on that VLAN for 10.64.0.0/16.

use super::*;
use crate::core::hw::{PppoeSpec, VlanSpec};
use crate::core::net::{FdbEntry, LinkKind, PppoeSession};

const BR0: u32 = 10;
const P1: u32 = 11;
const P2: u32 = 12;
const VLAN: u32 = 13;
const PPP: u32 = 14;
const VETH_VLAN: u32 = 15;

const CLIENT_MAC: u8 = 0x52;
const GATEWAY_MAC: u8 = 0x7f;
const PEER_MAC: u8 = 0x6c;
const SESSION: u16 = 0x2a;

fn lan_flow(sport: u16, dst: &str) -> CtInfo {
    tcp("10.5.0.2", sport, dst, 443)
}

fn session() -> PppoeSession {
    PppoeSession { id: SESSION, peer: mac(PEER_MAC), device: ifname("eth1.100"), ppp: None }
}

fn ppp_link() -> Link {
    Link {
        noarp: true,
        mtu: 1492,
        kind: LinkKind::Ppp,
        ..Link::plain(PPP, ifname("ppp0"), true, 1492)
    }
}

fn vlan_link(name: &str, index: u32, parent: u32) -> Link {
    Link {
        kind: LinkKind::Vlan { id: 100, parent },
        mac: Some(mac(0x71)),
        ..Link::plain(index, ifname(name), true, 1500)
    }
}

/// The view of `super::net` plus the bridge, the VLANs and the PPP link; the client's MAC is
/// in br0's forwarding database behind p1 when `learnt`.
fn layer2_net(learnt: bool) -> NetView {
    let mut n = NetView::new([ifname("eth0"), ifname("eth1"), ifname("p1"), ifname("p2")]);
    let base = net();
    for link in base.links() {
        n.upsert_link(*link);
    }
    for neighbour in base.neighbours() {
        n.upsert_neighbour(*neighbour);
    }
    n.upsert_link(Link { kind: LinkKind::Bridge, ..Link::plain(BR0, ifname("br0"), true, 1500) });
    for (index, name) in [(P1, "p1"), (P2, "p2")] {
        n.upsert_link(Link { master: BR0, ..Link::plain(index, ifname(name), true, 1500) });
    }
    n.upsert_link(vlan_link("eth1.100", VLAN, ETH1));
    n.upsert_link(vlan_link("veth0.100", VETH_VLAN, VETH));
    n.upsert_link(ppp_link());
    n.add_address(BR0, ip("10.5.0.1"));
    n.add_address(VLAN, ip("10.7.0.1"));
    for (ifindex, addr, m) in [(BR0, "10.5.0.2", CLIENT_MAC), (VLAN, "10.7.0.254", GATEWAY_MAC)] {
        n.upsert_neighbour(Neighbour {
            ifindex,
            addr: ip(addr),
            mac: Some(mac(m)),
            state: nud::REACHABLE,
        });
    }
    if learnt {
        n.upsert_fdb(FdbEntry { bridge: BR0, port: P1, mac: mac(CLIENT_MAC) });
    }
    n.set_pppoe_sessions(vec![session()]);
    n
}

fn world_with(cfg: EngineConfig, learnt: bool, cdx: FakeCdx) -> World {
    let cdx =
        FakeCdx { ports: vec![ifname("eth0"), ifname("eth1"), ifname("p1"), ifname("p2")], ..cdx };
    let mut w = World::with_net(cfg, layer2_net(learnt), cdx);
    w.rib.splice(
        0..0,
        [
            (cidr("10.5.0.0/24"), unicast(BR0, None)),
            (cidr("10.8.0.0/16"), unicast(VLAN, Some("10.7.0.254"))),
            (cidr("10.64.0.0/16"), unicast(PPP, None)),
            (cidr("10.66.0.0/16"), unicast(VETH_VLAN, None)),
        ],
    );
    w
}

fn world(learnt: bool) -> World {
    world_with(EngineConfig::default(), learnt, FakeCdx::default())
}

/// The route objects of a connection in the fake cdx: (input, output, MAC, MTU) each way.
fn paths(w: &World, ct: &CtInfo) -> [(IfName, IfName, Mac, u16); 2] {
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    let r = |id| {
        let r: RouteSpec = w.cdx.routes[&id];
        (r.input, r.output, r.mac, r.mtu)
    };
    [r(hw.route_orig), r(hw.route_reply)]
}

#[test]
fn a_bridge_to_vlan_flow_uses_the_member_port_and_the_registered_vlan() {
    let mut w = world(true);
    let vlan =
        VlanSpec { name: ifname("eth1.100"), id: 100, parent: ifname("eth1"), mac: mac(0x71) };
    assert_eq!(
        w.cdx.itfs.get(&ifname("eth1.100")),
        Some(&ItfSpec::Vlan(vlan)),
        "registered at start"
    );
    assert_eq!(w.engine.stats().itf_registered, 2, "the VLAN, then the session on it");
    let veth_vlan = ifname("veth0.100");
    assert!(!w.cdx.itfs.contains_key(&veth_vlan), "a VLAN on a veth is not a cdx interface");
    let ct = lan_flow(40000, "10.8.0.2");
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(
        paths(&w, &ct),
        [
            (ifname("p1"), ifname("eth1.100"), mac(GATEWAY_MAC), 1500),
            (ifname("eth1.100"), ifname("p1"), mac(CLIENT_MAC), 1500),
        ]
    );
    let order: Vec<&str> = w.cdx.log.iter().map(HwOp::name).collect();
    let first_route = order.iter().position(|n| *n == "route_register").unwrap();
    let vlan_registered = order.iter().position(|n| *n == "itf_register").unwrap();
    assert!(vlan_registered < first_route, "{order:?}");
    // A VLAN whose parent cdx cannot know: refused as the port it is on would be.
    let veth = lan_flow(40001, "10.66.0.2");
    w.event(CtEventKind::Update, veth);
    assert_eq!(w.state(&veth), None);
    assert_eq!(count(&w, Reason::NotFastpathPort), 1);
    w.event(CtEventKind::Destroy, ct);
    assert!(w.cdx.cts.is_empty() && w.cdx.routes.is_empty());
}

#[test]
fn a_missing_forwarding_entry_waits_then_a_learnt_one_offloads_and_a_move_reprograms() {
    let mut w = world(false);
    let ct = lan_flow(40000, "10.8.0.2");
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoBridgePort)));
    assert!(count(&w, Reason::NoBridgePort) >= 1);
    let entry = |port| FdbEntry { bridge: BR0, port, mac: mac(CLIENT_MAC) };
    w.engine.on_fdb(entry(P2), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(paths(&w, &ct)[0].0, ifname("p2"), "enters on p2");
    assert_eq!(paths(&w, &ct)[1].1, ifname("p2"), "leaves on p2");
    // The host moves to p1.
    w.engine.on_fdb(entry(P1), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!((paths(&w, &ct)[0].0, paths(&w, &ct)[1].1), (ifname("p1"), ifname("p1")));
    // The entry ages out (offloaded traffic refreshes none): the flow keeps its port.
    w.engine.on_fdb_removed(entry(P1), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    // p1 leaves the bridge: what went through it leaves the hardware and waits.
    w.engine.on_link(Link::plain(P1, ifname("p1"), true, 1500), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoBridgePort)));
    assert!(w.cdx.cts.is_empty());
    assert!(w.kernel.contains_key(&ct.key), "the kernel's entry is untouched");
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn pppoe_over_the_vlan_needs_no_mac_carries_its_mtu_and_leaves_and_returns_with_its_session() {
    let mut w = world(true);
    let ppp = ItfSpec::Pppoe(PppoeSpec {
        name: ifname("ppp0"),
        session: SESSION,
        peer: mac(PEER_MAC),
        parent: ifname("eth1.100"),
    });
    assert_eq!(w.cdx.itfs.get(&ifname("ppp0")), Some(&ppp));
    let ct = lan_flow(40000, "10.64.0.9");
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(
        paths(&w, &ct),
        [
            (ifname("p1"), ifname("ppp0"), Mac::default(), 1492),
            (ifname("ppp0"), ifname("p1"), mac(CLIENT_MAC), 1500),
        ]
    );
    // The session ends: the kernel no longer lists it (pppd then takes ppp0 down).
    w.engine.on_pppoe_sessions(Vec::new(), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::InterfaceUnregistered)));
    assert!(w.cdx.cts.is_empty(), "withdrawn");
    assert!(w.cdx.itfs.contains_key(&ifname("ppp0")), "cdx still holds it, unused");
    w.advance(Duration::from_millis(300));
    assert!(!w.cdx.itfs.contains_key(&ifname("ppp0")), "then the session left cdx");
    assert!(w.kernel.contains_key(&ct.key) && w.deleted.is_empty(), "the kernel entry is intact");
    assert!(w.cdx.itfs.contains_key(&ifname("eth1.100")), "the VLAN under it stays");
    // A new session comes up: registered, and the flow is programmed again.
    let mut again = session();
    again.id = SESSION + 1;
    w.engine.on_pppoe_sessions(vec![again], w.now);
    w.run();
    let held = w.cdx.itfs.get(&ifname("ppp0")).copied();
    assert!(matches!(held, Some(ItfSpec::Pppoe(p)) if p.session == SESSION + 1), "{held:?}");
    w.advance(Duration::from_secs(5));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    // The PPP link is deleted.
    w.engine.on_link_removed(PPP, w.now);
    w.run();
    w.advance(Duration::from_millis(300));
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::LinkDown)));
    assert!(!w.cdx.itfs.contains_key(&ifname("ppp0")));
    assert!(w.deleted.is_empty());
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_refused_vlan_registration_is_counted_and_retried_with_back_off() {
    let mut cdx = FakeCdx::default();
    for _ in 0..2 {
        cdx.fail.push_back(("itf_register", HwFailure::Rejected(5)));
    }
    let mut w = world_with(EngineConfig::default(), true, cdx);
    assert_eq!(w.engine.stats().itf_register_failures, 1);
    let ct = lan_flow(40000, "10.8.0.2");
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::InterfaceUnregistered)));
    // First retry after retry_base (1 s), refused again; the next after 2 s more succeeds.
    w.advance(Duration::from_millis(1100));
    assert_eq!(w.engine.stats().itf_register_failures, 2);
    assert!(!w.cdx.itfs.contains_key(&ifname("eth1.100")));
    w.advance(Duration::from_millis(1100));
    assert!(!w.cdx.itfs.contains_key(&ifname("eth1.100")), "not before the back-off");
    w.advance(Duration::from_millis(1000));
    assert!(w.cdx.itfs.contains_key(&ifname("eth1.100")));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let attempts =
        w.cdx.log.iter().filter(|op| matches!(op, HwOp::ItfRegister(ItfSpec::Vlan(_)))).count();
    assert_eq!(attempts, 3);
}

/// The ASK port sends out of a VLAN with the MAC the VLAN was registered with
/// (`dpa_add_vlan_if`, `dpa_get_tx_info_by_itf`): when the VLAN's MAC changes, its flows and
/// the session on it leave, it is registered again with the new MAC, then the session, and
/// the flows return. NXP's cdx takes no MAC: nothing is done there.
#[test]
fn a_vlan_whose_mac_changes_is_registered_again_where_cdx_keeps_the_mac() {
    for (abi, again) in [(Abi::Ask, true), (Abi::Lsdk, false)] {
        let cdx = FakeCdx { abi, ..FakeCdx::default() };
        let mut w = world_with(EngineConfig::default(), true, cdx);
        let (out_of_vlan, out_of_session) =
            (lan_flow(40000, "10.8.0.2"), lan_flow(40001, "10.64.0.9"));
        for ct in [out_of_vlan, out_of_session] {
            w.event(CtEventKind::Update, ct);
            assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
        }
        // cdx is slow to let go of the route objects out of the VLAN (for a second, each
        // deregistration of one times out), not of those out of the session: the old VLAN
        // stays registered a while after the session on it left, and the session waits for
        // the new one.
        let before = w.cdx.log.len();
        w.cdx.slow_route_release = vec![ifname("eth1.100")];
        let changed = Link { mac: Some(mac(0x72)), ..vlan_link("eth1.100", VLAN, ETH1) };
        w.engine.on_link(changed, w.now);
        w.run();
        for _ in 0..8 {
            w.advance(Duration::from_millis(125));
        }
        // The window this test is about: the session left, the old VLAN is still held.
        let session_left = (w.cdx.log.get(before..).unwrap_or_default().iter())
            .any(|op| matches!(op, HwOp::ItfDeregister(ItfSpec::Pppoe(_))));
        let held = w.cdx.itfs.get(&ifname("eth1.100")).copied();
        assert_eq!(session_left, again, "{abi}");
        assert!(matches!(held, Some(ItfSpec::Vlan(v)) if v.mac == mac(0x71)), "{abi} {held:?}");
        w.cdx.slow_route_release.clear();
        for _ in 8..160 {
            w.advance(Duration::from_millis(125));
        }
        let held = w.cdx.itfs.get(&ifname("eth1.100")).copied();
        let expected = if again { mac(0x72) } else { mac(0x71) };
        assert!(matches!(held, Some(ItfSpec::Vlan(v)) if v.mac == expected), "{abi} {held:?}");
        assert!(w.cdx.itfs.contains_key(&ifname("ppp0")), "{abi}");
        let registered: Vec<(IfName, Mac)> = (w.cdx.log.get(before..).unwrap_or_default().iter())
            .filter_map(|op| match op {
                HwOp::ItfRegister(ItfSpec::Vlan(v)) => Some((v.name, v.mac)),
                HwOp::ItfRegister(ItfSpec::Pppoe(p)) => Some((p.name, Mac::default())),
                _ => None,
            })
            .collect();
        let expected_registrations = match again {
            true => vec![(ifname("eth1.100"), mac(0x72)), (ifname("ppp0"), Mac::default())],
            false => Vec::new(),
        };
        assert_eq!(registered, expected_registrations, "{abi}");
        // Nothing went out of the session before the VLAN under it was registered again.
        let ops = w.cdx.log.get(before..).unwrap_or_default();
        let position = |wanted: &dyn Fn(&HwOp) -> bool| ops.iter().position(wanted);
        let vlan_again = position(&|op| matches!(op, HwOp::ItfRegister(ItfSpec::Vlan(_))));
        let via_session = position(
            &|op| matches!(op, HwOp::RouteRegister(r) if r.output == ifname("ppp0") || r.input == ifname("ppp0")),
        );
        assert!(via_session >= vlan_again, "{abi}: {ops:?}");
        for ct in [out_of_vlan, out_of_session] {
            assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)), "{abi}");
        }
        assert!(w.deleted.is_empty(), "the kernel's entries stay");
    }
}

#[test]
fn a_renamed_vlan_is_registered_under_its_new_name_and_its_flows_follow() {
    let mut w = world(true);
    let ct = lan_flow(40000, "10.8.0.2");
    w.event(CtEventKind::Update, ct);
    // The PPP session on it would pin it: it ends first.
    w.engine.on_pppoe_sessions(Vec::new(), w.now);
    w.run();
    w.engine.on_link(vlan_link("wan", VLAN, ETH1), w.now);
    w.run();
    w.advance(Duration::from_secs(5));
    assert!(w.cdx.itfs.contains_key(&ifname("wan")));
    assert!(!w.cdx.itfs.contains_key(&ifname("eth1.100")), "the old name is gone");
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(paths(&w, &ct)[0].1, ifname("wan"));
    assert_eq!(paths(&w, &ct)[1].0, ifname("wan"));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn the_vlan_policy_decides_which_vlans_cdx_knows() {
    let prohibit =
        EngineConfig { vlan_policy: ::config::VlanPolicy::Prohibit, ..EngineConfig::default() };
    let mut w = world_with(prohibit, true, FakeCdx::default());
    assert!(w.cdx.itfs.is_empty());
    let ct = lan_flow(40000, "10.8.0.2");
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), None);
    assert_eq!(count(&w, Reason::NotFastpathPort), 1);
    let manual =
        EngineConfig { vlan_policy: ::config::VlanPolicy::Manual, ..EngineConfig::default() };
    let mut w = world_with(manual, true, FakeCdx::default());
    assert!(w.cdx.itfs.is_empty());
    w.engine.vlan_add(ifname("eth1.100"), w.now);
    w.run();
    assert!(w.cdx.itfs.contains_key(&ifname("eth1.100")));
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.engine.vlan_delete(ifname("eth1.100"), w.now);
    w.run();
    w.advance(Duration::from_secs(1));
    assert!(!w.cdx.itfs.contains_key(&ifname("eth1.100")));
    assert!(w.cdx.cts.is_empty(), "its flows left first");
}

#[test]
fn at_start_cdx_interfaces_are_adopted_or_removed() {
    // cdx already holds this VLAN (a restart) and a stale session of a PPP link now gone.
    let mut cdx = FakeCdx::default();
    let held_vlan = ItfSpec::Vlan(VlanSpec {
        name: ifname("eth1.100"),
        id: 100,
        parent: ifname("eth1"),
        mac: Mac::default(),
    });
    let stale = ItfSpec::Pppoe(PppoeSpec {
        name: ifname("ppp9"),
        session: 3,
        peer: mac(1),
        parent: ifname("eth1.100"),
    });
    cdx.itfs.insert(ifname("eth1.100"), held_vlan);
    cdx.itfs.insert(ifname("ppp9"), stale);
    let mut w = world_with(EngineConfig::default(), true, cdx);
    w.advance(Duration::from_secs(1));
    let registered: Vec<String> = w.cdx.itfs.keys().map(ToString::to_string).collect();
    assert_eq!(registered, ["eth1.100", "ppp0"], "adopted, stale removed, missing added");
    let vlan_registrations =
        w.cdx.log.iter().filter(|op| matches!(op, HwOp::ItfRegister(ItfSpec::Vlan(_)))).count();
    assert_eq!(vlan_registrations, 0, "the held VLAN was adopted, not registered again");
    // Without reconciliation everything is removed first.
    let mut cdx = FakeCdx::default();
    cdx.itfs.insert(ifname("eth1.100"), held_vlan);
    cdx.itfs.insert(ifname("ppp9"), stale);
    let no_reconcile = EngineConfig { reconcile: false, ..EngineConfig::default() };
    let w = world_with(no_reconcile, true, cdx);
    let names: Vec<&str> = w
        .cdx
        .log
        .iter()
        .map(HwOp::name)
        .filter(|n| n.starts_with("itf") || n.starts_with("vlan"))
        .collect();
    assert_eq!(names, ["itf_deregister", "vlan_reset", "itf_register", "itf_register"]);
}

#[test]
fn a_session_cdx_kept_through_a_failed_start_walk_is_cleared_and_registered_again() {
    // cdx holds the VLAN and the session from before; the start-up walk fails, so cmmd
    // resets cdx's VLANs, which leaves the session (NXP keeps an interface whose parent
    // goes), and cmmd's registration of it is refused as already registered.
    let session = ItfSpec::Pppoe(PppoeSpec {
        name: ifname("ppp0"),
        session: SESSION,
        peer: mac(PEER_MAC),
        parent: ifname("eth1.100"),
    });
    let mut cdx = FakeCdx { refuse_held: true, ..FakeCdx::default() };
    cdx.itfs.insert(ifname("ppp0"), session);
    cdx.fail.push_back(("walk_interfaces", HwFailure::Timeout));
    let mut w = world_with(EngineConfig::default(), true, cdx);
    w.run();
    let ppp0 = |w: &World| {
        w.engine.registrations().find(|(name, _)| **name == ifname("ppp0")).map(|(_, r)| r.state)
    };
    assert_eq!(ppp0(&w), Some(RegState::Failed), "refused: cdx held it");
    let ct = lan_flow(40100, "10.64.0.9");
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::InterfaceUnregistered)));
    // Cleared in cdx, then registered again once its back-off ends; the flow follows.
    w.advance(Duration::from_secs(2));
    assert_eq!(ppp0(&w), Some(RegState::Registered));
    assert_eq!(w.cdx.itfs.get(&ifname("ppp0")), Some(&session));
    let ops: Vec<&str> = (w.cdx.log.iter())
        .filter(|op| matches!(op, HwOp::ItfRegister(s) | HwOp::ItfDeregister(s) if s.name() == ifname("ppp0")))
        .map(HwOp::name)
        .collect();
    assert_eq!(ops, ["itf_register", "itf_deregister", "itf_register"]);
    assert_eq!(w.engine.stats().itf_register_failures, 1);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
}
