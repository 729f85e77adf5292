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
    let cdx = std::mem::take(&mut first.cdx);
    // Second life: the kernel still has only one of them.
    let now = Instant::now();
    let mut w = World {
        engine: Engine::new(EngineConfig::default(), net(), now),
        now,
        kernel: HashMap::from([(kept.key, kept)]),
        cdx: FakeCdx { log: Vec::new(), ..cdx },
        rib: first.rib.clone(),
        rules: Vec::new(),
        asked: Vec::new(),
        refreshed: Vec::new(),
        deleted: Vec::new(),
        lookups: 0,
        hold_lookups: false,
        held: Vec::new(),
    };
    w.engine.start(w.now);
    w.run();
    let registrations = w
        .cdx
        .log
        .iter()
        .filter(|op| matches!(op, HwOp::CtRegister(_) | HwOp::RouteRegister(_) | HwOp::CtUpdate(_)))
        .count();
    assert_eq!(registrations, 0, "nothing registered twice");
    assert_eq!(w.cdx.cts.len(), 1);
    assert!(w.cdx.cts.contains_key(&(proto::TCP, kept.key.orig)));
    assert_eq!(w.state(&kept), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(w.engine.stats().adopted, 1);
    assert_eq!(w.engine.stats().reconcile_removed, 1);
    w.event(CtEventKind::Destroy, kept);
    w.assert_no_leaks();
}
