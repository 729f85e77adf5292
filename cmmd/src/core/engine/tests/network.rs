//! The network view: neighbours, routes, links, MTU, lookups, and the rtnetlink re-dump.

use super::*;

/// The hardware ops sent for one connection, in order, by name.
fn ops_for(w: &World, ct: &CtInfo) -> Vec<&'static str> {
    w.cdx
        .log
        .iter()
        .filter(|op| match op {
            HwOp::CtRegister(c) | HwOp::CtUpdate(c) | HwOp::CtDeregister(c) => {
                c.orig == ct.key.orig
            }
            _ => false,
        })
        .map(HwOp::name)
        .collect()
}

/// cdx `control_ipv4.c` `ct_update_one` and `IP_HandleIP_ROUTE_RESOLVE`: neither a conntrack
/// UPDATE nor a route UPDATE changes the MAC a direction in hardware forwards to.
#[test]
fn a_neighbour_mac_change_registers_its_connections_again_with_the_new_mac() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    let old = w.cdx.cts[&(proto::TCP, ct.key.orig)].route_orig;
    assert_eq!(w.hw_of(&ct)[0].unwrap().mac, mac(0x22));
    w.cdx.log.clear();
    w.engine.on_neighbour(
        Neighbour {
            ifindex: ETH1,
            addr: ip("10.2.0.2"),
            mac: Some(mac(0x99)),
            state: nud::REACHABLE,
        },
        w.now,
    );
    w.run();
    let [orig, reply] = w.hw_of(&ct);
    assert_eq!(orig.unwrap().mac, mac(0x99), "the hardware forwards to the new MAC");
    assert_eq!(reply.unwrap().mac, mac(0x12), "the reply direction is untouched");
    assert_eq!(ops_for(&w, &ct), ["ct_deregister", "ct_register"], "deregister, then register");
    assert!(!w.cdx.routes.contains_key(&old), "the old route object went after the connection");
    assert!(!w.cdx.log.iter().any(|op| op.name() == "route_update"));
    assert_eq!(w.engine.stats().hw_reregistrations, 1);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    // A neighbour deleted by the kernel's GC does not disturb offloaded flows.
    w.engine.on_neighbour_removed(ETH1, ip("10.2.0.2"), w.now);
    w.run();
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_next_hop_leaving_a_shared_mac_moves_only_its_connections() {
    let mut w = World::new(EngineConfig::default());
    // The gateway answers with the same MAC as 10.2.0.2 (one host, two addresses): both
    // connections share one route object.
    let n = |addr: &str, m: u8| Neighbour {
        ifindex: ETH1,
        addr: ip(addr),
        mac: Some(mac(m)),
        state: nud::REACHABLE,
    };
    w.engine.on_neighbour(n("10.2.0.254", 0x22), w.now);
    w.run();
    let direct = forwarded();
    let routed = tcp("10.1.0.2", 40001, "10.9.1.1", 443);
    w.event(CtEventKind::Update, direct);
    w.event(CtEventKind::Update, routed);
    let shared = w.cdx.cts[&(proto::TCP, direct.key.orig)].route_orig;
    assert_eq!(w.cdx.cts[&(proto::TCP, routed.key.orig)].route_orig, shared);
    // 10.2.0.2 moves to another MAC; the gateway keeps the old one.
    w.cdx.log.clear();
    w.engine.on_neighbour(n("10.2.0.2", 0x99), w.now);
    w.run();
    assert_eq!(w.hw_of(&direct)[0].unwrap().mac, mac(0x99));
    assert_eq!(w.hw_of(&routed)[0].unwrap().mac, mac(0x22), "the gateway's are untouched");
    assert!(ops_for(&w, &routed).is_empty(), "nothing sent for the gateway's connection");
    let kept = w.cdx.cts[&(proto::TCP, routed.key.orig)].route_orig;
    assert_eq!((kept, w.cdx.routes[&kept].mac), (shared, mac(0x22)));
    assert_eq!(w.state(&direct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(w.state(&routed), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, direct);
    w.event(CtEventKind::Destroy, routed);
    w.assert_no_leaks();
}

#[test]
fn missing_neighbour_waits_until_it_appears() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.2.0.7", 443);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoNeighbour)));
    w.engine.on_neighbour(
        Neighbour {
            ifindex: ETH1,
            addr: ip("10.2.0.7"),
            mac: Some(mac(0x77)),
            state: nud::REACHABLE,
        },
        w.now,
    );
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
}

#[test]
fn route_change_moves_connections_to_a_new_route_object() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    let old = w.cdx.cts[&(proto::TCP, ct.key.orig)].route_orig;
    // The route to 10.9.0.0/16 now goes through another gateway.
    w.rib.insert(0, (cidr("10.9.0.0/16"), unicast(ETH1, Some("10.2.0.2"))));
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_ne!(hw.route_orig, old);
    assert_eq!(w.cdx.routes[&hw.route_orig].mac, mac(0x22));
    assert_eq!(w.hw_of(&ct)[0].unwrap().mac, mac(0x22), "the hardware forwards to the new hop");
    assert!(!w.cdx.routes.contains_key(&old), "the old route object was removed");
    // An unrelated route change costs no lookup of this destination.
    let before = w.lookups;
    w.engine.on_route_change(Some(cidr("172.16.0.0/12")), w.now);
    w.run();
    assert_eq!(w.lookups, before);
}

#[test]
fn link_down_withdraws_its_connections() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.engine.on_link(Link::plain(ETH1, ifname("eth1"), false, 1500), w.now);
    w.run();
    assert!(w.cdx.cts.is_empty());
    assert_eq!(count(&w, Reason::LinkDown), 1);
    // Still tracked: the link coming back offloads it again, with no event from the kernel
    // (an ESTABLISHED conntrack sends none while nothing changes) and no sweep.
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::LinkDown)));
    assert!(w.cdx.routes.is_empty() && w.engine.hw_routes().is_empty(), "route objects released");
    w.engine.on_link(Link::plain(ETH1, ifname("eth1"), true, 1500), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert!(w.cdx.cts.contains_key(&(proto::TCP, ct.key.orig)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_deleted_interface_takes_its_connections_out_of_the_hardware() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    let eth1 = w.engine.net().link(ETH1).copied().unwrap();
    let neighbours: Vec<Neighbour> =
        w.engine.net().neighbours().filter(|n| n.ifindex == ETH1).copied().collect();
    w.engine.on_link_removed(ETH1, w.now);
    w.run();
    assert!(w.cdx.cts.is_empty(), "nothing forwards to an interface that is gone");
    assert!(w.cdx.routes.is_empty() && w.engine.hw_routes().is_empty());
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::LinkDown)));
    assert_eq!(w.engine.stats().reason(Reason::LinkDown), 1);
    // The interface comes back (a new veth with the same index, say) and its neighbours,
    // flushed with it, are learnt again.
    w.engine.on_link(eth1, w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoNeighbour)));
    for n in neighbours {
        w.engine.on_neighbour(n, w.now);
    }
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_route_that_comes_back_offloads_the_connections_it_took_away() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let route = w.rib.iter().position(|(c, _)| *c == cidr("10.9.0.0/16")).unwrap();
    let saved = w.rib.remove(route);
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    assert!(w.cdx.cts.is_empty(), "withdrawn without a route");
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoRoute)));
    assert!(w.cdx.routes.is_empty() && w.engine.hw_routes().is_empty(), "route objects released");
    // Waiting costs no lookup while nothing changes.
    let lookups = w.lookups;
    w.advance(Duration::from_secs(30));
    assert_eq!(w.lookups, lookups);
    w.rib.insert(route, saved);
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

/// cdx `ct_update_one`: an UPDATE gives a direction in hardware the MTU of its new route.
#[test]
fn mtu_change_reprograms_with_the_new_mtu() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.log.clear();
    w.engine.on_link(Link::plain(ETH1, ifname("eth1"), true, 9000), w.now);
    w.run();
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mtu, 9000);
    assert_eq!(w.cdx.routes.len(), 2, "old route objects removed");
    assert_eq!(w.hw_of(&ct)[0].unwrap().mtu, 9000, "the hardware takes the new MTU");
    assert_eq!(ops_for(&w, &ct), ["ct_update"], "an MTU alone is an update, no re-registration");
}

#[test]
fn a_link_change_lost_in_an_rtnetlink_overrun_is_applied_after_the_redump() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    // The daemon's re-dump: the view is cleared, then links (eth1's MTU changed while the
    // events were lost), addresses and neighbours arrive again, then the dump ends.
    let view: Vec<Link> = w.engine.net().links().copied().collect();
    let neighbours: Vec<Neighbour> = w.engine.net().neighbours().copied().collect();
    w.engine.on_rtnl_overrun(w.now);
    w.engine.net_mut().clear();
    for link in view {
        let mtu = if link.index == ETH1 { 9000 } else { link.mtu };
        w.engine.on_link(Link { mtu, ..link }, w.now);
    }
    for n in neighbours {
        w.engine.on_neighbour(n, w.now);
    }
    w.run();
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mtu, 9000, "the new MTU reaches the hardware");
    assert_eq!(w.cdx.routes[&hw.route_reply].mtu, 1500);
    assert_eq!(w.hw_of(&ct).map(|e| e.unwrap().mtu), [9000, 1500]);
    assert_eq!(w.cdx.routes.len(), 2, "the old route object is released");
    assert_eq!(w.engine.stats().rtnl_overruns, 1);
}

#[test]
fn lookups_in_flight_are_shared_and_answers_after_destroy_are_harmless() {
    let mut w = World::new(EngineConfig::default());
    w.hold_lookups = true;
    let a = forwarded();
    w.event(CtEventKind::Update, a);
    assert_eq!(w.state(&a), Some((FlowState::Resolving, Reason::RouteLookup)));
    w.event(CtEventKind::Destroy, a);
    w.release_lookups();
    w.assert_no_leaks();
}

#[test]
fn a_failed_rtnetlink_redump_is_counted_retried_with_back_off_and_reported_until_one_completes() {
    let mut w = World::new(EngineConfig::default());
    let net_dumps = |w: &mut World| {
        std::iter::from_fn(|| w.engine.pop_action()).filter(|a| *a == Action::NetDump).count()
    };
    let later = |w: &mut World, ms: u64| {
        w.now += Duration::from_millis(ms);
        w.engine.on_timer(w.now);
    };
    w.engine.on_rtnl_overrun(w.now);
    assert_eq!(net_dumps(&mut w), 1);
    w.engine.on_net_dump_failed(w.now);
    assert_eq!(w.engine.net_redump_failures(), 1, "what /readyz reports");
    w.engine.on_rtnl_overrun(w.now);
    assert_eq!(net_dumps(&mut w), 0, "an overrun meanwhile waits for the retry");
    later(&mut w, 999);
    assert_eq!(net_dumps(&mut w), 0);
    later(&mut w, 1);
    assert_eq!(net_dumps(&mut w), 1, "retried after the back-off");
    w.engine.on_net_dump_failed(w.now);
    later(&mut w, 1_999);
    assert_eq!(net_dumps(&mut w), 0, "the back-off doubles");
    later(&mut w, 1);
    assert_eq!(net_dumps(&mut w), 1);
    w.engine.on_net_resynced(w.now);
    assert_eq!(w.engine.net_redump_failures(), 0);
    assert_eq!(w.engine.stats().rtnl_dump_failures, 2);
    w.run();
}
