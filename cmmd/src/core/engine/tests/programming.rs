//! Programming: route objects before connections, shared objects, refusals and back-off, the window.

use super::*;

#[test]
fn established_tcp_is_programmed_with_both_routes() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!((hw.orig, hw.reply), (ct.key.orig, ct.reply));
    let orig = w.cdx.routes[&hw.route_orig];
    let reply = w.cdx.routes[&hw.route_reply];
    assert_eq!(
        (orig.input, orig.output, orig.mac, orig.mtu),
        (ifname("eth0"), ifname("eth1"), mac(0x22), 1500)
    );
    assert_eq!((reply.input, reply.output, reply.mac), (ifname("eth1"), ifname("eth0"), mac(0x12)));
    // Routes went to the hardware before the connection that uses them.
    let names: Vec<_> = w.cdx.log.iter().map(HwOp::name).collect();
    assert_eq!(names.first(), Some(&"detect"), "cdx's ABI is known before anything is sent");
    let names: Vec<_> = names
        .into_iter()
        .filter(|n| !["detect", "set_timeout", "walk", "walk_interfaces"].contains(n))
        .collect();
    assert_eq!(names, ["route_register", "route_register", "ct_register"]);
    assert_eq!(w.engine.stats().offloaded, 1);
    assert_eq!(w.engine.stats().latency.count, 1, "programming latency recorded once");
}

#[test]
fn dnat_routes_towards_the_translated_destination() {
    let mut w = World::new(EngineConfig::default());
    // Client 10.1.0.2 connects to the router's 10.1.0.1:8080, DNATed to 10.2.0.2:80.
    let mut ct = tcp("10.1.0.2", 40000, "10.1.0.1", 8080);
    ct.reply = Tuple { src: ip("10.2.0.2"), dst: ip("10.1.0.2"), src_port: 80, dst_port: 40000 };
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(hw.reply.src, ip("10.2.0.2"));
    assert_eq!(w.cdx.routes[&hw.route_orig].output, ifname("eth1"));
}

#[test]
fn gateway_next_hop_mac_is_used() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mac, mac(0x2f));
}

#[test]
fn ipv6_is_programmed() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("fd01::2", 40000, "fd02::2", 443);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mac, mac(0x26));
    assert_eq!(w.cdx.routes[&hw.route_reply].mac, mac(0x16));
}

#[test]
fn route_objects_are_shared_and_released_with_the_last_user() {
    let mut w = World::new(EngineConfig::default());
    let a = tcp("10.1.0.2", 40000, "10.2.0.2", 443);
    let b = tcp("10.1.0.2", 40001, "10.2.0.2", 443);
    w.event(CtEventKind::Update, a);
    w.event(CtEventKind::Update, b);
    assert_eq!(w.cdx.routes.len(), 2, "two directions, shared by both connections");
    w.event(CtEventKind::Destroy, a);
    assert_eq!(w.cdx.routes.len(), 2, "still used by b");
    w.event(CtEventKind::Destroy, b);
    w.assert_no_leaks();
}

#[test]
fn hardware_failures_back_off_and_retry_without_leaks() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.fail.push_back(("ct_register", HwFailure::Full));
    w.cdx.fail.push_back(("ct_register", HwFailure::Io("EIO".into())));
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwFull)));
    assert!(w.cdx.routes.is_empty(), "routes of a refused connection are released");
    assert!(w.engine.hw_routes().is_empty(), "route ids returned");
    w.advance(Duration::from_millis(999));
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Backoff, "not before the back-off");
    w.advance(Duration::from_millis(1));
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwError)));
    w.advance(Duration::from_millis(1999));
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Backoff, "back-off doubled");
    w.advance(Duration::from_millis(1));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(count(&w, Reason::HwFull), 1);
    assert_eq!(count(&w, Reason::HwError), 1);
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn route_registration_failure_fails_its_connections() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.fail.push_back(("route_register", HwFailure::Rejected(8)));
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwRefused)), "cdx's own code");
    assert!(w.cdx.cts.is_empty());
    w.advance(Duration::from_secs(1));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn route_registrations_that_timed_out_are_undone_and_their_ids_not_reused() {
    let mut w = World::new(EngineConfig::default());
    // Both registrations happen in the hardware; their answers are lost.
    w.cdx.lost_replies = vec!["route_register", "route_register"];
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwError)));
    assert!(w.cdx.routes.is_empty(), "registrations of unknown outcome are deregistered");
    assert!(w.engine.hw_routes().is_empty());
    w.advance(Duration::from_secs(2));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].output, ifname("eth1"));
    assert_eq!(w.cdx.routes[&hw.route_reply].output, ifname("eth0"));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_connection_registration_that_timed_out_leaves_nothing_when_the_flow_ends() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.lost_replies = vec!["ct_register"];
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwError)));
    assert!(w.cdx.cts.is_empty(), "a registration of unknown outcome is deregistered");
    // The connection ends during the back-off.
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn at_most_a_window_of_connections_is_programmed_at_once() {
    let mut w = World::new(EngineConfig { programming_window: 2, ..EngineConfig::default() });
    let cts: Vec<CtInfo> = (0..5).map(|i| tcp("10.1.0.2", 41000 + i, "10.2.0.2", 443)).collect();
    for ct in &cts {
        w.kernel.insert(ct.key, *ct);
        w.engine.on_conntrack(CtEventKind::Update, ct, w.now);
    }
    // Answer route lookups, hold the hardware.
    let mut held = Vec::new();
    while let Some(a) = w.engine.pop_action() {
        match a {
            Action::RouteLookup(l) => {
                let answer = w.route(&l.key);
                w.engine.on_route_answer(l.request, answer, w.now);
            }
            Action::Hw(r) => held.push(r),
            other => panic!("unexpected {other:?}"),
        }
    }
    let programming =
        |w: &World| w.engine.flows().filter(|(_, f)| f.state() == FlowState::Programming).count();
    assert_eq!(programming(&w), 2);
    let waiting: Vec<_> = w.engine.flows().filter(|(_, f)| f.reason() == Reason::HwBusy).collect();
    assert_eq!(waiting.len(), 3, "the rest wait their turn");
    // Release the hardware: everything ends programmed, never more than two at once.
    let mut queue: VecDeque<HwRequest> = held.into();
    while let Some(r) = queue.pop_front() {
        let outcome = w.cdx.apply(&r.op);
        w.engine.on_hw_result(HwResult { tag: r.tag, outcome }, w.now);
        assert!(programming(&w) <= 2);
        while let Some(a) = w.engine.pop_action() {
            match a {
                Action::Hw(r) => queue.push_back(r),
                Action::RouteLookup(l) => {
                    let answer = w.route(&l.key);
                    w.engine.on_route_answer(l.request, answer, w.now);
                }
                _ => {}
            }
        }
    }
    assert_eq!(w.cdx.cts.len(), 5);
    assert!(w.engine.flows().all(|(_, f)| f.state() == FlowState::Offloaded));
}

#[test]
fn a_connection_cdx_cannot_hold_backs_off_as_unencodable_not_as_a_refusal() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.fail.push_back(("ct_register", HwFailure::Unencodable("two families")));
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::Unencodable)));
    assert_eq!((count(&w, Reason::Unencodable), count(&w, Reason::HwError)), (1, 0));
    assert!(w.cdx.routes.is_empty(), "its route objects are released");
    w.advance(Duration::from_secs(1));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

/// cdx `layer2.c` `L2_route_get`: a route object's 16-bit reference count refuses a link at
/// 0xFFFF, silently (the direction stays out of hardware, the command answers 0). Every
/// connection through one gateway shares one object per direction: past 65,534 of them the
/// engine starts another object for the same path.
#[test]
fn connections_through_one_gateway_split_their_route_objects_before_cdx_saturates() {
    let mut w = World::new(EngineConfig::default());
    let total = crate::core::hw::MAX_ROUTE_LINKS as usize + 10;
    let cts: Vec<CtInfo> = (0..total)
        .map(|i| tcp("10.1.0.2", 2000 + (i % 60_000) as u16, "10.9.1.1", 443 + (i / 60_000) as u16))
        .collect();
    for ct in &cts {
        w.event(CtEventKind::Update, *ct);
    }
    let in_hw = cts.iter().filter(|ct| w.hw_of(ct).iter().all(Option::is_some)).count();
    assert_eq!(in_hw, total, "every direction of every connection is in hardware");
    assert_eq!(w.cdx.routes.len(), 4, "two objects per direction");
    assert!(w.cdx.links.values().all(|n| *n < u32::from(u16::MAX)), "{:?}", w.cdx.links);
    assert_eq!(w.engine.stats().hw_route_splits, 2);
    for ct in &cts {
        w.event(CtEventKind::Destroy, *ct);
    }
    w.assert_no_leaks();
}
