//! Withdrawal: DESTROY, retried deregistrations, hardware aging, and churn without leaks.

use super::*;

#[test]
fn destroy_withdraws_and_frees_everything() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
    assert_eq!(w.engine.stats().withdrawn, 1);
    assert_eq!(count(&w, Reason::Destroyed), 0, "destroy is not a refusal");
}

#[test]
fn failed_withdrawal_is_retried() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.fail.push_back(("ct_deregister", HwFailure::Timeout));
    w.event(CtEventKind::Destroy, ct);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Withdrawing);
    assert_eq!(w.cdx.cts.len(), 1);
    w.advance(Duration::from_secs(1));
    w.assert_no_leaks();
    assert_eq!(w.engine.stats().hw_timeouts, 1);
}

#[test]
fn destroy_while_programming_withdraws_after_the_reply() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.kernel.insert(ct.key, ct);
    w.engine.on_conntrack(CtEventKind::Update, &ct, w.now);
    // Execute route lookups but hold the hardware: deliver the DESTROY first.
    let mut hw = Vec::new();
    while let Some(a) = w.engine.pop_action() {
        match a {
            Action::RouteLookup(l) => {
                let answer = w.route(&l.key);
                w.engine.on_route_answer(l.request, answer, w.now);
            }
            Action::Hw(r) => hw.push(r),
            other => panic!("unexpected {other:?}"),
        }
    }
    w.kernel.remove(&ct.key);
    w.engine.on_conntrack(CtEventKind::Destroy, &ct, w.now);
    for r in hw {
        let outcome = w.cdx.apply(&r.op);
        w.engine.on_hw_result(HwResult { tag: r.tag, outcome }, w.now);
        w.run();
    }
    w.run();
    w.assert_no_leaks();
}

#[test]
fn hardware_aging_deletes_the_kernel_entry() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.age_out_all(); // cdx aged it out
    w.cdx_removed(&ct);
    w.run();
    assert_eq!(w.deleted, vec![ct.key]);
    w.assert_no_leaks();
    // A duplicate or unknown REMOVED is counted and ignored.
    w.cdx_removed(&ct);
    assert_eq!(w.engine.stats().hw_removed_unknown, 1);
}

#[test]
fn hardware_aging_can_leave_the_kernel_entry() {
    let mut cfg = EngineConfig::default();
    cfg.keepalive.on_removed = OnRemoved::Expire;
    let mut w = World::new(cfg);
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.age_out_all();
    w.cdx_removed(&ct);
    w.run();
    assert!(w.deleted.is_empty());
    assert!(w.kernel.contains_key(&ct.key));
    w.assert_no_leaks();
}

#[test]
fn churn_leaves_nothing_behind() {
    let mut w = World::new(EngineConfig { capacity: 64, ..EngineConfig::default() });
    let mut live = Vec::new();
    for i in 0..2000u32 {
        let ct = tcp(
            "10.1.0.2",
            u16::try_from(1000 + i % 3000).unwrap(),
            if i % 2 == 0 { "10.2.0.2" } else { "10.9.3.3" },
            443,
        );
        w.event(CtEventKind::Update, ct);
        live.push(ct);
        if i % 7 == 3 {
            w.cdx.fail.push_back(("ct_register", HwFailure::Full));
        }
        if live.len() > 40 {
            let gone = live.remove(0);
            w.event(CtEventKind::Destroy, gone);
        }
        if i % 100 == 0 {
            w.advance(Duration::from_secs(2));
        }
    }
    for ct in live {
        w.event(CtEventKind::Destroy, ct);
    }
    w.advance(Duration::from_secs(120));
    w.assert_no_leaks();
}

/// Found in review: a REMOVED event for a connection whose update was in flight removed it
/// without giving back its place in the programming window; after `programming_window` such
/// events every new connection waited as `hw_busy` forever.
#[test]
fn a_connection_cdx_removes_during_its_update_gives_its_window_place_back() {
    let mut w = World::new(EngineConfig { programming_window: 2, ..EngineConfig::default() });
    for (i, mtu) in [9000, 1500, 9000, 1500].into_iter().enumerate() {
        let ct = tcp("10.1.0.2", 42000 + i as u16, "10.2.0.2", 443);
        w.event(CtEventKind::Update, ct);
        assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
        // An MTU change: the connection's update goes out, and cdx ages it out before the
        // answer comes.
        w.engine.on_link(Link::plain(ETH1, ifname("eth1"), true, mtu), w.now);
        let held = w.run_holding("ct_update");
        assert_eq!(held.len(), 1);
        assert_eq!(w.state(&ct).unwrap().0, FlowState::Programming);
        let removed = HwEvent::Removed { proto: proto::TCP, orig: ct.key.orig, reply: ct.reply };
        w.cdx.age_out((proto::TCP, ct.key.orig));
        w.engine.on_hw_event(removed, w.now);
        for r in held {
            let outcome = w.cdx.apply(&r.op);
            w.engine.on_hw_result(HwResult { tag: r.tag, outcome }, w.now);
        }
        w.run();
        assert!(w.engine.flow(&ct.key).is_none());
    }
    let fresh = tcp("10.1.0.2", 43000, "10.2.0.2", 443);
    w.event(CtEventKind::Update, fresh);
    assert_eq!(w.state(&fresh), Some((FlowState::Offloaded, Reason::None)), "not hw_busy");
    w.event(CtEventKind::Destroy, fresh);
    w.assert_no_leaks();
}
