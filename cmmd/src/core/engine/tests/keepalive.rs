//! Keepalive: activity polls, refreshes, the margin, and permanent mode.

use super::*;

#[test]
fn keepalive_refreshes_active_flows_only() {
    let mut cfg = EngineConfig::default();
    cfg.kernel_timeouts.udp_stream = 40;
    cfg.keepalive.interval = Duration::from_secs(2);
    let mut w = World::new(cfg);
    let mut ct = mk_ct(proto::UDP, "10.1.0.2", 5000, "10.2.0.2", 5001);
    ct.timeout = Some(40);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    let key = (proto::UDP, ct.key.orig);
    // Active: cdx says 180 s remain (a packet just went through).
    w.cdx.remaining.insert(key, 180);
    w.advance(Duration::from_secs(5));
    w.advance(Duration::from_secs(5));
    assert!(!w.refreshed.is_empty());
    let (k, timeout) = w.refreshed[w.refreshed.len() - 1];
    assert_eq!(k, ct.key);
    assert_eq!(timeout, 40, "the kernel's own timeout, counted from the last activity");
    // Idle: the hardware's remaining time runs down, no more refreshes.
    w.refreshed.clear();
    let mut remaining = 170;
    for _ in 0..10 {
        w.cdx.remaining.insert(key, remaining);
        remaining -= 5;
        w.advance(Duration::from_secs(5));
    }
    assert!(w.refreshed.is_empty(), "{:?}", w.refreshed);
    assert!(w.engine.stats().keepalive_polls >= 10);
}

#[test]
fn activity_polls_come_in_time_order_whatever_the_protocol() {
    let mut w = World::new(EngineConfig::default());
    // TCP first: its poll period is long (an eighth of five days); UDP's is 15 s (an eighth
    // of the 120 s stream timeout).
    w.event(CtEventKind::Update, forwarded());
    let udp = mk_ct(proto::UDP, "10.1.0.2", 5000, "10.2.0.2", 5001);
    w.event(CtEventKind::Update, udp);
    assert_eq!(w.state(&udp).unwrap().0, FlowState::Offloaded);
    w.advance(Duration::from_secs(16));
    assert_eq!(w.engine.stats().keepalive_polls, 1, "the UDP flow is polled on time");
}

#[test]
fn connections_that_end_leave_no_activity_poll_behind() {
    let mut w = World::new(EngineConfig::default());
    for port in 0..5_000u16 {
        let ct = tcp("10.1.0.2", 10_000 + port, "10.2.0.2", 443);
        w.event(CtEventKind::Update, ct);
        w.event(CtEventKind::Destroy, ct);
    }
    w.assert_no_leaks();
    assert!(
        w.engine.polls.due.len() <= 2_048,
        "{} polls kept for ended flows",
        w.engine.polls.due.len()
    );
}

#[test]
fn adopted_and_updated_flows_keep_being_polled() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    // A path change while offloaded: the connection is registered again on its new path.
    w.rib.insert(0, (cidr("10.9.0.0/16"), unicast(ETH1, Some("10.2.0.2"))));
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    assert!(matches!(w.cdx.log.last(), Some(HwOp::RouteDeregister(_)) | Some(HwOp::CtUpdate(_))));
    let before = w.engine.stats().keepalive_polls;
    w.advance(Duration::from_secs(60_000));
    w.advance(Duration::from_secs(60_000));
    assert!(w.engine.stats().keepalive_polls >= before + 2, "still polled after the update");
    // Exactly one poll is ever outstanding per connection.
    let polls_in_flight =
        w.engine.commands.inflight.values().filter(|p| matches!(p, Pending::Poll(_))).count();
    assert!(polls_in_flight <= 1);
}

#[test]
fn keepalive_margin_caps_the_refresh() {
    let mut cfg = EngineConfig::default();
    cfg.keepalive.margin = Some(Duration::from_secs(30));
    cfg.keepalive.interval = Duration::from_secs(1);
    let mut w = World::new(cfg);
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.remaining.insert((proto::TCP, ct.key.orig), 432_000);
    for _ in 0..10 {
        w.advance(Duration::from_secs(1));
    }
    assert!(w.refreshed.iter().all(|(_, t)| *t <= 30), "{:?}", w.refreshed);
    assert!(!w.refreshed.is_empty());
}

#[test]
fn permanent_mode_sets_and_clears_the_bit() {
    let mut cfg = EngineConfig::default();
    cfg.keepalive.mode = KeepaliveMode::Permanent;
    let mut w = World::new(cfg);
    let mut ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert!(w.kernel[&ct.key].status.contains(PERMANENT));
    ct.tcp_state = Some(TcpState::TimeWait);
    ct.status = w.kernel[&ct.key].status;
    w.event(CtEventKind::Update, ct);
    assert!(!w.kernel[&ct.key].status.contains(PERMANENT), "cleared on withdrawal");
}

/// An idle IPv6 UDP flow as cdx answers for it: `GET_TIMEOUT` counting down from 180 s.
fn idle_ipv6_answers(w: &mut World, ct: &CtInfo) -> usize {
    let key = (proto::UDP, ct.key.orig);
    let mut remaining = 175;
    w.refreshed.clear();
    for _ in 0..10 {
        w.cdx.remaining.insert(key, remaining);
        remaining -= 5;
        w.advance(Duration::from_secs(5));
    }
    w.refreshed.iter().filter(|(k, _)| *k == ct.key).count()
}

fn ipv6_udp_world(abi: Abi) -> (World, CtInfo) {
    let mut cfg = EngineConfig::default();
    cfg.kernel_timeouts.udp_stream = 40;
    cfg.keepalive.interval = Duration::from_secs(2);
    let mut w = World::with_abi(cfg, abi);
    let mut ct = mk_ct(proto::UDP, "fd01::2", 5000, "fd02::2", 5001);
    ct.timeout = Some(40);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    (w, ct)
}

/// NXP's cdx (LSDK ABI), `control_ipv6.c` `IPv6_HandleIP_Get_Timeout`: IPv6 activity is read
/// from a copy only the aging timer refreshes, so an active flow looks idle between two runs
/// of it. Such answers never let the kernel entry expire under a flow cdx still forwards;
/// cdx's own aging ends it (REMOVED), and the kernel entry with it.
#[test]
fn ipv6_answers_of_nxp_cdx_are_not_taken_for_idleness() {
    let (mut w, ct) = ipv6_udp_world(Abi::Lsdk);
    assert!(idle_ipv6_answers(&mut w, &ct) >= 2, "kept alive: {:?}", w.refreshed);
    assert!(w.refreshed.iter().all(|(_, t)| *t <= 40), "never more than the kernel's timeout");
    // cdx's aging timer finds it idle and removes it.
    w.cdx.age_out((proto::UDP, ct.key.orig));
    w.cdx_removed(&ct);
    w.run();
    assert_eq!(w.deleted, vec![ct.key], "the kernel entry goes with it");
    w.assert_no_leaks();
}

/// The ASK port refreshes IPv6 activity on every query, as IPv4: an idle flow is idle.
#[test]
fn ipv6_answers_of_the_ask_port_show_idleness_as_ipv4_does() {
    let (mut w, ct) = ipv6_udp_world(Abi::Ask);
    assert_eq!(idle_ipv6_answers(&mut w, &ct), 0, "{:?}", w.refreshed);
    let (mut w, ct) = ipv6_udp_world(Abi::Ask);
    w.cdx.remaining.insert((proto::UDP, ct.key.orig), 180);
    w.advance(Duration::from_secs(5));
    w.advance(Duration::from_secs(5));
    assert!(!w.refreshed.is_empty(), "active: refreshed");
}
