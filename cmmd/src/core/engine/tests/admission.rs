//! Admission: what enters the table, what is refused and counted, and the table-full queue.

use super::*;

#[test]
fn leaving_established_withdraws() {
    let mut w = World::new(EngineConfig::default());
    let mut ct = forwarded();
    w.event(CtEventKind::Update, ct);
    ct.tcp_state = Some(TcpState::FinWait);
    w.event(CtEventKind::Update, ct);
    w.assert_no_leaks();
    assert_eq!(count(&w, Reason::NotEstablished), 1);
    assert!(w.kernel.contains_key(&ct.key), "the kernel entry is left alone");
}

#[test]
fn connections_are_not_programmed_before_established() {
    let mut w = World::new(EngineConfig::default());
    let mut ct = forwarded();
    ct.tcp_state = Some(TcpState::SynSent);
    w.event(CtEventKind::New, ct);
    assert!(w.engine.is_empty());
    assert!(w.cdx.cts.is_empty());
}

#[test]
fn refusals_are_counted_and_not_tracked() {
    let mut w = World::new(EngineConfig::default());
    let pod = tcp("10.1.0.2", 40000, "10.3.0.2", 80);
    let ftp = tcp("10.1.0.2", 40000, "10.2.0.2", 21);
    let icmp = mk_ct(proto::ICMP, "10.1.0.2", 7, "10.2.0.2", 0);
    for ct in [pod, ftp, icmp] {
        w.event(CtEventKind::New, ct);
        w.event(CtEventKind::Update, ct);
    }
    assert!(w.engine.is_empty(), "nothing tracked");
    assert!(w.cdx.cts.is_empty() && w.cdx.routes.is_empty());
    assert_eq!(count(&w, Reason::NotFastpathPort), 2);
    assert_eq!(count(&w, Reason::ExcludedByRule), 2);
    assert_eq!(
        count(&w, Reason::UnsupportedProtocol),
        1,
        "static reasons count once per conntrack"
    );
    assert!(w.engine.routes().is_empty(), "refused connections hold no route");
}

#[test]
fn the_host_s_own_connections_are_tracked_for_display_only() {
    let mut w = World::new(EngineConfig::default());
    let terminated = tcp("10.1.0.2", 40000, "10.2.0.1", 22);
    let originated = tcp("10.2.0.1", 40000, "10.2.0.2", 80);
    for ct in [terminated, originated] {
        w.event(CtEventKind::New, ct);
        w.event(CtEventKind::Update, ct);
    }
    assert_eq!(w.engine.len(), 2, "listed by show connections, as the vendor's");
    assert_eq!(count(&w, Reason::Local), 2, "counted once per conntrack");
    assert!(w.cdx.cts.is_empty() && w.cdx.routes.is_empty(), "never offloaded");
    assert!(w.engine.routes().is_empty(), "never resolved");
    let flow =
        |ct: &CtInfo| w.engine.flow(&ct.key).map(|f| (f.state(), f.local_orig(), f.local_reply()));
    assert_eq!(flow(&terminated), Some((FlowState::Local, false, true)));
    assert_eq!(flow(&originated), Some((FlowState::Local, true, false)));
    for ct in [terminated, originated] {
        w.event(CtEventKind::Destroy, ct);
    }
    w.assert_no_leaks();
}

#[test]
fn connections_between_the_same_hosts_share_their_route_lookups() {
    let mut w = World::new(EngineConfig::default());
    for port in 0..50 {
        w.event(CtEventKind::Update, tcp("10.1.0.2", 40000 + port, "10.2.0.2", 443));
    }
    // Where the client comes in, then each direction as the kernel routes it: three lookups
    // for the pair of hosts, shared by all 50 connections.
    assert_eq!(w.lookups, 3);
    assert_eq!(w.engine.len(), 50);
}

#[test]
fn full_table_refuses_counts_and_admits_when_room_appears() {
    let mut w = World::new(EngineConfig { capacity: 3, ..EngineConfig::default() });
    let cts: Vec<CtInfo> = (0..5).map(|i| tcp("10.1.0.2", 40000 + i, "10.2.0.2", 443)).collect();
    for ct in &cts {
        w.event(CtEventKind::Update, *ct);
    }
    assert_eq!(w.engine.len(), 3);
    assert_eq!(w.cdx.cts.len(), 3);
    assert_eq!(count(&w, Reason::TableFull), 2);
    for ct in &cts[..3] {
        assert!(w.engine.flow(&ct.key).is_some(), "no offloaded flow was evicted");
    }
    w.event(CtEventKind::Destroy, cts[0]);
    assert_eq!(w.engine.len(), 3, "a refused connection took the free slot");
    assert_eq!(w.state(&cts[3]), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, cts[4]);
    w.event(CtEventKind::Destroy, cts[1]);
    assert_eq!(w.engine.len(), 2, "a destroyed refusal is not admitted later");
}

#[test]
fn udp_confirmed_mode_offloads_the_originator_first() {
    let mut cfg = EngineConfig::default();
    cfg.policy.udp_policy = UdpPolicy::Confirmed;
    let mut w = World::new(cfg);
    let mut ct = mk_ct(proto::UDP, "10.1.0.2", 5000, "10.2.0.2", 5001);
    ct.status = Status::CONFIRMED;
    w.event(CtEventKind::New, ct);
    let hw = w.cdx.cts[&(proto::UDP, ct.key.orig)];
    assert!(hw.route_orig != 0 && hw.route_reply == 0);
    ct.status |= Status::SEEN_REPLY | Status::ASSURED;
    w.event(CtEventKind::Update, ct);
    let hw = w.cdx.cts[&(proto::UDP, ct.key.orig)];
    assert!(hw.route_orig != 0 && hw.route_reply != 0, "both directions once assured");
    assert!(matches!(w.cdx.log.last(), Some(HwOp::CtUpdate(_))));
}

#[test]
fn same_tuple_in_two_zones_is_offloaded_once() {
    let mut w = World::new(EngineConfig::default());
    let a = forwarded();
    let mut b = forwarded();
    b.key.zone = 5;
    w.event(CtEventKind::Update, a);
    w.event(CtEventKind::Update, b);
    assert_eq!(w.cdx.cts.len(), 1);
    assert_eq!(count(&w, Reason::Zone), 1);
    // REMOVED for the tuple finds the zone-0 flow.
    w.cdx.age_out_all();
    w.cdx_removed(&a);
    w.run();
    assert!(w.engine.flow(&a.key).is_none());
}

#[test]
fn a_tuple_held_from_another_zone_keeps_zone_0_out_until_it_leaves() {
    let mut w = World::new(EngineConfig::default());
    let mut zoned = forwarded();
    zoned.key.zone = 5;
    let plain = forwarded();
    w.event(CtEventKind::Update, zoned);
    w.event(CtEventKind::Update, plain);
    assert_eq!(w.cdx.cts.len(), 1);
    assert_eq!(count(&w, Reason::Zone), 1, "the zone-0 connection finds the key held");
    assert!(w.engine.flow(&zoned.key).unwrap().stage.in_hw());
    assert!(w.engine.flow(&plain.key).is_none(), "refused as zone, left to the kernel");
    // REMOVED for the tuple finds the holder in zone 5, not the zone-0 connection.
    w.cdx.age_out_all();
    w.cdx_removed(&plain);
    w.run();
    assert!(w.engine.flow(&zoned.key).is_none());
    assert_eq!(w.engine.stats().hw_removed_unknown, 0);
    // The key is free: the zone-0 connection's next event offloads it.
    w.event(CtEventKind::Update, plain);
    assert!(w.engine.flow(&plain.key).unwrap().stage.in_hw());
    assert_eq!(w.cdx.cts.len(), 1);
}
