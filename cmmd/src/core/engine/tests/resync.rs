//! Resync and reconciliation: overruns, coalesced dumps, and a restart that adopts the hardware.

use super::*;

#[test]
fn overrun_resync_converges_to_the_kernel() {
    let mut w =
        World::new(EngineConfig { resync_min_interval: Duration::ZERO, ..EngineConfig::default() });
    let kept = tcp("10.1.0.2", 40000, "10.2.0.2", 443);
    let lost_destroy = tcp("10.1.0.2", 40001, "10.2.0.2", 443);
    let lost_new = tcp("10.1.0.2", 40002, "10.2.0.2", 443);
    w.event(CtEventKind::Update, kept);
    w.event(CtEventKind::Update, lost_destroy);
    // Events lost: one DESTROY and one UPDATE never arrive.
    w.kernel.remove(&lost_destroy.key);
    w.kernel.insert(lost_new.key, lost_new);
    w.engine.on_overrun(w.now);
    w.run();
    assert!(w.engine.flow(&kept.key).is_some());
    assert!(w.engine.flow(&lost_destroy.key).is_none());
    assert_eq!(w.state(&lost_new), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(w.cdx.cts.len(), 2);
    let s = w.engine.stats();
    assert_eq!((s.overruns, s.resyncs, s.resync_added, s.resync_removed), (1, 1, 1, 1));
}

#[test]
fn overruns_during_a_dump_coalesce_into_one_more_dump() {
    let mut w =
        World::new(EngineConfig { resync_min_interval: Duration::ZERO, ..EngineConfig::default() });
    w.engine.on_overrun(w.now);
    w.engine.on_overrun(w.now);
    w.engine.on_overrun(w.now);
    let dumps = std::iter::from_fn(|| w.engine.pop_action())
        .filter(|a| matches!(a, Action::Dump { .. }))
        .count();
    assert_eq!(dumps, 1, "one dump now");
    assert!(w.engine.next_deadline().is_some());
}

#[test]
fn restart_adopts_matching_hardware_entries_and_removes_the_rest() {
    // First life: two connections offloaded.
    let mut first = World::new(EngineConfig::default());
    let kept = forwarded();
    let gone = tcp("10.1.0.2", 40001, "10.2.0.2", 443);
    first.event(CtEventKind::Update, kept);
    first.event(CtEventKind::Update, gone);
    let routes_before = first.cdx.routes.clone();
    let hw_before = first.hw_of(&kept);
    // Second life: the kernel still has only one of them. cdx's walk says nothing of which
    // routes a connection links; its resolved paths find the walked route objects.
    let mut w = first.restart(EngineConfig::default(), &[kept]);
    let registrations = w
        .cdx
        .log
        .iter()
        .filter(|op| matches!(op, HwOp::CtRegister(_) | HwOp::RouteRegister(_) | HwOp::CtUpdate(_)))
        .count();
    assert_eq!(registrations, 0, "nothing registered twice");
    assert_eq!(w.cdx.cts.len(), 1);
    assert!(w.cdx.cts.contains_key(&(proto::TCP, kept.key.orig)));
    assert_eq!(w.hw_of(&kept), hw_before, "forwarding as it was");
    assert_eq!(w.state(&kept), Some((FlowState::Offloaded, Reason::None)));
    let held = w.engine.flow(&kept.key).unwrap().hw_routes();
    assert!(held.iter().all(|r| routes_before.contains_key(r)), "held on the walked objects");
    assert_eq!(w.engine.stats().adopted, 1);
    assert_eq!(w.engine.stats().reconcile_removed, 1);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.cdx.routes, routes_before, "both route objects are the adopted one's");
    w.event(CtEventKind::Destroy, kept);
    w.assert_no_leaks();
}

#[test]
fn a_connection_whose_next_hop_moved_while_cmmd_was_down_is_registered_again() {
    let mut first = World::new(EngineConfig::default());
    let moved = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    let stays = forwarded();
    first.event(CtEventKind::Update, moved);
    first.event(CtEventKind::Update, stays);
    assert_eq!(first.hw_of(&moved)[0].unwrap().mac, mac(0x2f));
    let old_gateway = first.cdx.cts[&(proto::TCP, moved.key.orig)].route_orig;
    // Down: the gateway answers from another MAC now.
    first.engine.net_mut().upsert_neighbour(Neighbour {
        ifindex: ETH1,
        addr: ip("10.2.0.254"),
        mac: Some(mac(0x55)),
        state: nud::REACHABLE,
    });
    let mut w = first.restart(EngineConfig::default(), &[moved, stays]);
    assert_eq!(w.engine.stats().adopted, 2);
    let names: Vec<_> = w
        .cdx
        .log
        .iter()
        .filter(|op| matches!(op, HwOp::CtRegister(c) | HwOp::CtDeregister(c) if c.orig == moved.key.orig))
        .map(HwOp::name)
        .collect();
    assert_eq!(names, ["ct_deregister", "ct_register"], "deregistered, then registered");
    assert_eq!(w.hw_of(&moved)[0].unwrap().mac, mac(0x55), "forwards to the new MAC");
    assert_eq!(w.state(&moved), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(w.state(&stays), Some((FlowState::Offloaded, Reason::None)));
    assert!(
        w.cdx.log.iter().all(|op| !matches!(op, HwOp::CtRegister(c) if c.orig == stays.key.orig))
    );
    // The stale route object goes once the adopted connections have settled.
    w.advance(Duration::from_millis(200));
    assert!(!w.cdx.routes.contains_key(&old_gateway), "{:?}", w.cdx.routes);
    w.event(CtEventKind::Destroy, moved);
    w.event(CtEventKind::Destroy, stays);
    w.assert_no_leaks();
}
