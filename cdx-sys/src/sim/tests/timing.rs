//! Timeouts, GET_TIMEOUT and aging.

use super::*;
use crate::fpp::{CtFlags, V4, unwritten};

/// `fe.h` defaults and `get_timeout_value` (`control_ipv4.c`).
#[test]
fn default_timeouts_are_cdx_defaults() {
    let mut rig = Rig::new();
    rig.two_routes();
    let tcp = flow4(6, 1, (1, 2));
    let udp = flow4(17, 2, (1, 2));
    let udp_one_way = with(&flow4(17, 3, (1, 2)), |c| c.flags = CtFlags::REP_DISABLED);
    let other = flow4(1, 4, (0, 0));
    for flow in [tcp, udp, udp_one_way, other] {
        assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    }
    assert_eq!(rig.remaining4(Duration::ZERO, &tcp), (ReturnCode::Ok, 432_000));
    assert_eq!(rig.remaining4(Duration::ZERO, &udp), (ReturnCode::Ok, 180));
    assert_eq!(rig.remaining4(Duration::ZERO, &udp_one_way), (ReturnCode::Ok, 30));
    assert_eq!(rig.remaining4(Duration::ZERO, &other), (ReturnCode::Ok, 600));
    assert_eq!(rig.cdx.timeouts(), Timeouts { tcp: 432_000, udp: 180, udp_unidir: 30, other: 600 });
}

/// `IPv4_HandleIP_Get_Timeout` rounds up and finds the pair by either tuple;
/// `IPv6_HandleIP_Get_Timeout` truncates; an unknown tuple is `CMD_ERR` (0xFFFE), a size
/// other than the basic one `WRONG_COMMAND_SIZE`.
#[test]
fn get_timeout_rounds_up_for_ipv4_truncates_for_ipv6_and_reports_unknown() {
    let mut rig = Rig::new();
    let udp4 = flow4(17, 1, (0, 0));
    let udp6 = flow6(17, 1, (0, 0));
    assert_eq!(rig.ct4(&udp4), ReturnCode::Ok);
    assert_eq!(rig.ct6(&udp6), ReturnCode::Ok);
    let half = Duration::from_millis(500);
    let reply = rig.send_at(half, FCode::Ipv4GetTimeout, &udp4.to_vec_for(Abi::Lsdk));
    // rc, then protocol 17, sam 0, value1 180 (179.5 rounded up), value2 0
    assert_eq!(reply.as_bytes(), &[0, 0, 17, 0, 0, 0, 180, 0, 0, 0, 0, 0, 0, 0]);
    let by_reply_tuple = with(&udp4, |c| c.orig = udp4.reply);
    assert_eq!(rig.remaining4(half, &by_reply_tuple), (ReturnCode::Ok, 180), "either tuple");
    assert_eq!(rig.remaining6(half, &udp6), (ReturnCode::Ok, 179), "truncated");
    let unknown = flow4(17, 9, (0, 0));
    assert_eq!(
        rig.send(FCode::Ipv4GetTimeout, &unknown.to_vec_for(Abi::Lsdk)).as_bytes(),
        &[0xfe, 0xff]
    );
    assert_eq!(rig.send(FCode::Ipv4GetTimeout, &[0; 40]).rc(), ReturnCode::WrongCommandSize);
    let extended = with(&udp4, |c| c.extension = Some(crate::fpp::CtExtension::default()));
    assert_eq!(
        rig.send(FCode::Ipv4GetTimeout, &extended.to_vec_for(Abi::Lsdk)).rc(),
        ReturnCode::WrongCommandSize
    );
}

/// `IPv4_HandleIP_SET_TIMEOUT`: 6, 17 (value2 0: same as value1), 0; anything else
/// `UNKNOWN_ACTION`; any non-zero `sam_4o6_timeout` sets the separate 4o6 values.
#[test]
fn set_timeout_per_protocol_class() {
    let mut rig = Rig::new();
    assert_eq!(rig.set_timeout(Duration::ZERO, 6, 3600, 0), ReturnCode::Ok);
    assert_eq!(rig.set_timeout(Duration::ZERO, 17, 60, 0), ReturnCode::Ok);
    assert_eq!(rig.cdx.timeouts(), Timeouts { tcp: 3600, udp: 60, udp_unidir: 60, other: 600 });
    assert_eq!(rig.set_timeout(Duration::ZERO, 17, 90, 20), ReturnCode::Ok);
    assert_eq!(rig.set_timeout(Duration::ZERO, 0, 120, 0), ReturnCode::Ok);
    assert_eq!(rig.cdx.timeouts(), Timeouts { tcp: 3600, udp: 90, udp_unidir: 20, other: 120 });
    assert_eq!(rig.set_timeout(Duration::ZERO, 1, 5, 0), ReturnCode::UnknownAction);
    for sam in [1, 2] {
        let tunnel = TimeoutCmd { protocol: 6, sam_4o6: sam, value1: 5, value2: 0 };
        assert_eq!(rig.send(FCode::Ipv4SetTimeout, &tunnel.to_vec()).rc(), ReturnCode::Ok);
    }
    assert_eq!(rig.cdx.timeouts().tcp, 3600);
}

/// `ct_timer_update` (`control_ipv4.c`): a SET_TIMEOUT that shrinks the timeout to exactly
/// the time already elapsed gives `cdx_timer_add` a period of 0, which deletes the timer
/// (`cdx_timer.c`). The pair then never ages; DEREGISTER still removes it.
#[test]
fn a_timeout_shrunk_to_exactly_the_elapsed_time_stops_aging_for_good() {
    let mut rig = Rig::new();
    let flow = flow4(1, 1000, (0, 0));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert!(rig.cdx.tick(rig.at(70 * S)).is_empty(), "ICMP ages after 600 s by default");
    assert_eq!(rig.set_timeout(70 * S, 0, 70, 0), ReturnCode::Ok);
    assert!(!rig.snapshot().conntracks[0].aging, "the timer was deleted");
    assert!(rig.cdx.tick(rig.at(10_000_000 * S)).is_empty(), "and nothing ages it any more");
    assert_eq!(rig.snapshot().conntracks.len(), 1);
    let deregister = with(&flow, |c| c.action = Action::Deregister);
    assert_eq!(rig.ct4_at(10_000_000 * S, &deregister), ReturnCode::Ok);
    assert!(rig.snapshot().conntracks.is_empty());
}

/// `ct_aging_handler` and `IPv4_delete_CTpair` (`control_ipv4.c`): REMOVED with the tuples
/// and protocol, zero mark; flags, route ids and the reserved word unwritten.
#[test]
fn aging_removes_idle_pairs_with_an_exact_removed_event() {
    for fill in [UnwrittenFill::Zeros, UnwrittenFill::GARBAGE] {
        let mut rig = Rig::with(|c| c.unwritten = fill);
        rig.two_routes();
        let flow = with(&flow4(17, 1000, (1, 2)), |c| c.qos_mark = 3);
        assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
        assert!(rig.cdx.tick(rig.at(179 * S)).is_empty());
        let events = rig.cdx.tick(rig.at(180 * S));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].fcode(), FCode::Ipv4ConntrackChange);
        let bytes = events[0].payload();
        let written = with(&flow, |c| {
            c.action = Action::Removed;
            c.qos_mark = 0;
        })
        .to_vec_for(Abi::Lsdk);
        assert_eq!(
            (&bytes[..2], &bytes[4..30], &bytes[32..36]),
            (&written[..2], &written[4..30], &[0u8; 4][..])
        );
        for range in unwritten::removed_event::<V4>(Abi::Lsdk) {
            let garbage = fill != UnwrittenFill::Zeros;
            assert!(bytes[range.clone()].iter().all(|&b| (b != 0) == garbage), "{range:?}");
        }
        let event = CtEvent::parse(FCode::Ipv4ConntrackChange, bytes).unwrap().unwrap();
        assert_eq!(
            (event.kind(), event.orig(), event.protocol()),
            (Action::Removed, flow.orig.to_ip(), 17)
        );
        assert!(rig.snapshot().conntracks.is_empty());
        assert_eq!((rig.snapshot().route(1).unwrap().refcount, rig.cdx.hw_pairs()), (0, 0));
        assert!(rig.cdx.tick(rig.at(400 * S)).is_empty(), "removed once");
    }
}

/// FMan stamps only entries it holds; `ct_get_time_remaining` keeps a pair whose latest
/// stamp is within its timeout and re-arms its timer for the rest.
#[test]
fn marking_active_keeps_pairs_in_hardware_alive() {
    let mut rig = Rig::new();
    let (hw, software_only) = rig.udp_in_and_out_of_hardware();
    assert_eq!(rig.cdx.mark_active(&FlowMatch::All, rig.at(100 * S)), 1);
    assert_eq!(rig.aged(180 * S), vec![SimTuple::from(software_only.orig)]);
    assert_eq!(rig.remaining4(180 * S, &hw), (ReturnCode::Ok, 100));
    assert!(rig.cdx.tick(rig.at(279 * S)).is_empty());
    assert_eq!(rig.cdx.mark_active(&FlowMatch::Orig(hw.orig.into()), rig.at(279 * S)), 1);
    assert!(rig.cdx.tick(rig.at(280 * S)).is_empty(), "re-armed by the second hit");
    assert_eq!(rig.cdx.tick(rig.at(459 * S)).len(), 1);
    let other = FlowMatch::Orig(flow4(17, 77, (0, 0)).orig.into());
    assert_eq!(rig.cdx.mark_active(&other, rig.at(460 * S)), 0);
}

/// `ct_timer_update`: a shorter timeout moves the timer at once, a longer one applies when
/// the timer next runs.
#[test]
fn shorter_timeouts_apply_at_once_longer_ones_at_expiry() {
    let mut rig = Rig::new();
    rig.two_routes();
    let tcp = flow4(6, 1, (1, 2));
    let udp = flow4(17, 2, (1, 2));
    assert_eq!(rig.ct4(&tcp), ReturnCode::Ok);
    assert_eq!(rig.ct4(&udp), ReturnCode::Ok);
    assert_eq!(rig.set_timeout(5 * S, 6, 10, 0), ReturnCode::Ok);
    assert_eq!(rig.set_timeout(5 * S, 17, 1000, 0), ReturnCode::Ok);
    assert_eq!(rig.aged(10 * S), vec![SimTuple::from(tcp.orig)]);
    assert!(rig.cdx.tick(rig.at(180 * S)).is_empty(), "the UDP timer fires at 180 s and re-arms");
    assert!(rig.cdx.tick(rig.at(999 * S)).is_empty());
    assert_eq!(rig.cdx.tick(rig.at(1000 * S)).len(), 1);
}

/// `ct_aging_handler`: when `msg_send` fails the pair stays and the handler runs again at
/// the next tick.
#[test]
fn undelivered_events_keep_the_pair_and_are_retried() {
    let mut rig = Rig::new();
    let flow = flow4(17, 1, (0, 0));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let mut offered = 0;
    rig.cdx.tick_with(rig.at(180 * S), &mut |_| {
        offered += 1;
        false
    });
    assert_eq!((offered, rig.cdx.conntrack_count()), (1, 1));
    assert_eq!(rig.cdx.tick(rig.at(180 * S + Duration::from_millis(1))).len(), 1);
    assert_eq!(rig.cdx.conntrack_count(), 0);
}

/// The timer thread runs the timers that expire (`cdx_timer.c`'s wheels), not a scan of the
/// table: a slot freed and taken by a new pair is not aged by its predecessor's expiry, and
/// registrations and removals under churn do not grow the timer index without bound.
#[test]
fn aging_follows_each_pair_s_own_timer_through_slot_reuse_and_churn() {
    let mut rig = Rig::new();
    let udp = flow4(17, 1, (0, 0));
    let tcp = flow4(6, 2, (0, 0));
    let deregister = |cmd: &Ct4Cmd| with(cmd, |c| c.action = Action::Deregister);
    assert_eq!(rig.ct4(&udp), ReturnCode::Ok, "due at 180 s");
    assert_eq!(rig.ct4(&deregister(&udp)), ReturnCode::Ok);
    assert_eq!(rig.ct4_at(10 * S, &tcp), ReturnCode::Ok, "the same slot, due at 432010 s");
    let due = rig_due(&rig);
    assert!(rig.cdx.tick(rig.at(180 * S)).is_empty(), "the UDP pair's expiry is not the TCP's");
    assert_eq!((rig.cdx.conntrack_count(), rig_due(&rig)), (1, due), "its timer did not run");
    for sport in 3..20_000 {
        let flow = flow4(17, sport, (0, 0));
        let before = rig.cdx.ct4.timers.len();
        assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
        if rig.cdx.ct4.timers.len() < before {
            // The index was rebuilt in this registration: it holds every running timer,
            // the new pair's too.
            let table = &rig.cdx.ct4;
            let filed: Vec<(u64, usize)> = table.timers.iter().map(|entry| entry.0).collect();
            for (slot, pair) in table.slots.iter().enumerate() {
                if let Some(due) = pair.as_ref().and_then(|pair| pair.timer.due()) {
                    assert!(filed.contains(&(due, slot)), "slot {slot} due {due} not filed");
                }
            }
        }
        assert_eq!(rig.ct4(&deregister(&flow)), ReturnCode::Ok);
    }
    assert!(rig.cdx.ct4.timers.len() <= 2 + 1024, "{} entries", rig.cdx.ct4.timers.len());
    let kept = flow4(17, 20_000, (0, 0));
    assert_eq!(rig.ct4_at(100 * S, &kept), ReturnCode::Ok);
    assert_eq!(rig.aged(280 * S), vec![SimTuple::from(kept.orig)]);
    assert_eq!(rig.cdx.tick(rig.at(432_010 * S)).len(), 1, "the TCP pair at its own time");
    assert_eq!(rig.cdx.conntrack_count(), 0);
}

/// When the timer of the only IPv4 pair is due (model ticks).
fn rig_due(rig: &Rig) -> Option<u64> {
    rig.cdx.ct4.pairs().next().and_then(|pair| pair.timer.due())
}
