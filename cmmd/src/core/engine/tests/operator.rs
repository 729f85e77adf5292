//! Run-time settings: deactivation and a policy reload.

use super::*;

#[test]
fn deactivation_withdraws_everything_and_reactivation_relearns() {
    let mut w = World::new(EngineConfig::default());
    let a = forwarded();
    let b = tcp("fd01::2", 1, "fd02::2", 2);
    w.event(CtEventKind::Update, a);
    w.event(CtEventKind::Update, b);
    w.engine.set_active(false, w.now);
    w.run();
    w.assert_no_leaks();
    w.event(CtEventKind::Update, a);
    assert!(w.engine.is_empty(), "events ignored while deactivated");
    w.engine.set_active(true, w.now);
    w.run();
    assert_eq!(w.cdx.cts.len(), 2);
}

#[test]
fn policy_reload_withdraws_newly_excluded_flows() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    let mut policy = Policy::default();
    policy.rules.push(crate::core::policy::Rule {
        name: "https".into(),
        port: Some(443),
        ..Default::default()
    });
    w.engine.set_policy(policy, w.now);
    w.run();
    w.assert_no_leaks();
}
