//! Which cdx: the ABI detected at start, a cdx that is not cmm's, and the QoS mark.

use super::*;

#[test]
fn the_abi_is_known_before_anything_else_is_sent_and_shown() {
    let w = World::with_abi(EngineConfig::default(), Abi::Ask);
    assert_eq!(w.cdx.log.first().map(HwOp::name), Some("detect"));
    let choice = w.engine.cdx_abi().unwrap();
    assert_eq!(choice.abi, Abi::Ask);
    assert!(matches!(choice.how, AbiDecided::Detected(_)));
    let fixed = World::new(EngineConfig {
        cdx_abi: AbiSetting::Fixed(Abi::Lsdk),
        ..EngineConfig::default()
    });
    let choice = fixed.engine.cdx_abi().unwrap();
    assert_eq!((choice.abi, choice.how), (Abi::Lsdk, AbiDecided::Configured));
    assert_eq!(choice.to_string(), "lsdk (configured: cdx.abi = \"lsdk\")");
}

#[test]
fn a_detection_without_answer_is_retried_and_nothing_is_programmed_meanwhile() {
    let mut cdx = FakeCdx::default();
    cdx.fail.push_back(("detect", HwFailure::Timeout));
    cdx.fail.push_back(("detect", HwFailure::Io("no ABI named".into())));
    // Started: the kernel's table is tracked meanwhile.
    let mut w = World::on(EngineConfig::default(), cdx);
    assert!(w.engine.cdx_abi().is_none());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::HwError)));
    assert!(w.cdx.cts.is_empty() && w.cdx.routes.is_empty(), "nothing sent");
    w.advance(Duration::from_millis(999));
    assert_eq!(w.cdx.log.iter().filter(|op| op.name() == "detect").count(), 1);
    w.advance(Duration::from_millis(1));
    assert_eq!(w.cdx.log.iter().filter(|op| op.name() == "detect").count(), 2, "after 1 s");
    w.advance(Duration::from_millis(1_999));
    assert!(w.engine.cdx_abi().is_none(), "the back-off doubles");
    w.advance(Duration::from_millis(1));
    assert_eq!(w.engine.cdx_abi().map(|c| c.abi), Some(Abi::Lsdk));
    let timeouts = w.cdx.log.iter().filter(|op| op.name() == "set_timeout").count();
    assert_eq!(timeouts, 3, "cdx's timeouts sent once its ABI is known");
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)), "programmed once known");
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_cdx_owned_by_the_flowtable_gets_nothing_more_and_says_why() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    // From now on cdx refuses every command with EOPNOTSUPP (`offload_owner=flowtable`).
    for name in
        ["ct_register", "route_register", "ct_remaining", "ct_deregister", "route_deregister"]
    {
        for _ in 0..4 {
            w.cdx.fail.push_back((name, HwFailure::OffloadRefused));
        }
    }
    let fresh = tcp("10.1.0.2", 40001, "10.9.1.1", 443);
    w.event(CtEventKind::Update, fresh);
    assert!(w.engine.cdx_refused(), "noted from whatever command got it");
    assert_eq!(w.state(&fresh).unwrap().1, Reason::NotOffloadOwner);
    let sent = w.cdx.log.len();
    for _ in 0..10 {
        w.advance(Duration::from_secs(60));
    }
    let retried: Vec<_> = w.cdx.log[sent..].iter().map(HwOp::name).collect();
    assert!(retried.is_empty(), "nothing more is sent: {retried:?}");
    assert_eq!(w.state(&fresh), Some((FlowState::Resolving, Reason::NotOffloadOwner)));
    assert!(count(&w, Reason::NotOffloadOwner) >= 1);
    assert!(w.engine.stats().hw_offload_refused >= 1);
    // The connections end: cmmd forgets them without asking cdx again.
    w.event(CtEventKind::Destroy, fresh);
    w.event(CtEventKind::Destroy, ct);
    assert_eq!(w.engine.len(), 0);
    assert!(w.engine.hw_routes().is_empty());
}

#[test]
fn a_cdx_that_refuses_from_the_start_is_not_walked_and_the_kernel_is_tracked() {
    let mut cdx = FakeCdx::default();
    cdx.fail.push_back(("detect", HwFailure::OffloadRefused));
    let w =
        World::started(EngineConfig::default(), net(), cdx, &[forwarded()], rib(), Instant::now());
    assert!(w.engine.is_ready() && w.engine.cdx_refused());
    assert_eq!(w.cdx.log.iter().map(HwOp::name).collect::<Vec<_>>(), ["detect"]);
    assert_eq!(w.state(&forwarded()), Some((FlowState::Resolving, Reason::NotOffloadOwner)));
}

#[test]
fn the_kernels_qos_connmark_is_programmed_else_the_ctmark_when_configured() {
    let mut w = World::with_abi(EngineConfig::default(), Abi::Ask);
    let mut ask = forwarded();
    ask.qos_connmark = Some(0x8000_0007_0000_0102);
    ask.mark = 0x4000;
    w.event(CtEventKind::Update, ask);
    assert_eq!(w.cdx.cts[&(proto::TCP, ask.key.orig)].qos_mark, 0x8000_0007_0000_0102);
    let mut cni = tcp("10.1.0.2", 40001, "10.2.0.2", 443);
    cni.mark = 0x4000;
    w.event(CtEventKind::Update, cni);
    assert_eq!(w.cdx.cts[&(proto::TCP, cni.key.orig)].qos_mark, 0, "a CNI mark is no QoS");

    let cfg = EngineConfig { fwmark_mask: Some(0x0000_ffff), ..EngineConfig::default() };
    let mut w = World::new(cfg);
    let mut marked = forwarded();
    marked.mark = 0x0004_0003;
    w.event(CtEventKind::Update, marked);
    assert_eq!(w.cdx.cts[&(proto::TCP, marked.key.orig)].qos_mark, 0x3, "under the mask");
    // The mark changes: cdx copies it into the hardware entry at insertion, so the
    // connection is registered again.
    w.cdx.log.clear();
    marked.mark = 0x0000_0005;
    w.event(CtEventKind::Update, marked);
    let names: Vec<_> = w.cdx.log.iter().map(HwOp::name).collect();
    assert_eq!(names, ["ct_deregister", "ct_register"]);
    assert_eq!(w.cdx.cts[&(proto::TCP, marked.key.orig)].qos_mark, 0x5);
    assert_eq!(w.state(&marked), Some((FlowState::Offloaded, Reason::None)));
}

#[test]
fn a_mark_too_wide_for_the_abi_is_a_counted_refusal() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.fail.push_back(("ct_register", HwFailure::MarkTooWide(1 << 40)));
    let mut ct = forwarded();
    ct.qos_connmark = Some(1 << 40);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::MarkTooWide)));
    assert_eq!(count(&w, Reason::MarkTooWide), 1);
    assert!(w.cdx.cts.is_empty());
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn cdx_codes_are_kept_apart_as_reasons() {
    for (failure, reason) in [
        (HwFailure::Full, Reason::HwFull),
        (HwFailure::UnknownInterface(ifname("eth1")), Reason::UnknownInterface),
        (HwFailure::Rejected(8), Reason::HwRefused),
        (HwFailure::Timeout, Reason::HwError),
        (HwFailure::ReplyLost, Reason::HwError),
        (HwFailure::Io("netlink error 5".into()), Reason::HwError),
    ] {
        let mut w = World::new(EngineConfig::default());
        w.cdx.fail.push_back(("ct_register", failure.clone()));
        let ct = forwarded();
        w.event(CtEventKind::Update, ct);
        assert_eq!(w.state(&ct), Some((FlowState::Backoff, reason)), "{failure:?}");
    }
    // A route whose output cdx does not know: its connections never reach cdx.
    let mut w = World::new(EngineConfig::default());
    w.cdx.fail.push_back(("route_register", HwFailure::UnknownInterface(ifname("eth1"))));
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::UnknownInterface)));
    assert!(!w.cdx.log.iter().any(|op| op.name() == "ct_register"));
}
