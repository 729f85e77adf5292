//! The spawned sim through its sockets, as the daemon uses it: FCI framing, replies matched
//! by sequence number, REMOVED events on the event socket, fault injection.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use cdx_sys::fci::{self, DatagramSocket, FciError, Frame, PairSocket, Transport};
use cdx_sys::fpp::CtEvent;
use cdx_sys::fpp::{AbiPayload, Action, FCode, ReturnCode};
use cdx_sys::sim::{self, Fault, FlowMatch, SimConfig, SimError, SimHandle, SimTuple};

mod common;

use common::{config, route, udp_flow};

const LONG: Duration = Duration::from_secs(5);

fn start(tick: Duration) -> (SimHandle, Transport<PairSocket>, PairSocket) {
    let (handle, commands, events) = sim::spawn(config(tick)).unwrap();
    (handle, Transport::new(commands), events)
}

fn call(
    transport: &mut Transport<PairSocket>,
    fcode: FCode,
    payload: &impl AbiPayload,
) -> ReturnCode {
    transport.call_payload(fcode, payload, LONG).unwrap().rc
}

/// Waits for the next event frame and returns it parsed.
fn next_event(events: &PairSocket, within: Duration) -> Option<CtEvent> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 512];
    loop {
        if let Some(len) = events.try_recv(&mut buf).unwrap() {
            let Frame::Event { fcode, payload } = fci::decode(&buf[..len]).unwrap() else {
                panic!("not an event");
            };
            return CtEvent::parse(fcode, payload).unwrap();
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        fci::wait_readable(events.as_fd(), Some(left)).unwrap();
    }
}

/// Waits until `check` holds on the sim (aging runs on the sim's thread).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn commands_get_the_replies_cdx_gives_and_change_the_table() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    assert_eq!(call(&mut transport, FCode::IpRoute, &route(1)), ReturnCode::Ok);
    assert_eq!(
        call(&mut transport, FCode::IpRoute, &route(1)),
        ReturnCode::RtEntryAlreadyRegistered
    );
    let reply =
        transport.call_payload(FCode::Ipv4Conntrack, &udp_flow(1000, (1, 1)), LONG).unwrap();
    assert_eq!((reply.seq, reply.fcode, reply.rc), (3, FCode::Ipv4Conntrack, ReturnCode::Ok));
    let table = handle.snapshot();
    let ct = table.conntrack(udp_flow(1000, (1, 1)).orig.into()).unwrap();
    assert!(ct.in_hw_orig && ct.in_hw_reply);
    assert_eq!(table.route(1).unwrap().refcount, 2);
    let stats = handle.stats();
    assert_eq!(stats.count(FCode::IpRoute, ReturnCode::Ok), 1);
    assert_eq!(stats.count(FCode::IpRoute, ReturnCode::RtEntryAlreadyRegistered), 1);
    assert_eq!(stats.total_commands(), 3);
    handle.shutdown();
}

#[test]
fn pipelined_commands_are_all_answered_in_order() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    assert_eq!(call(&mut transport, FCode::IpRoute, &route(1)), ReturnCode::Ok);
    let mut answered = Vec::new();
    for batch in 0..20u16 {
        let sent: Vec<u32> = (0..50)
            .map(|i| {
                transport
                    .send_payload(FCode::Ipv4Conntrack, &udp_flow(batch * 50 + i, (1, 0)))
                    .unwrap()
            })
            .collect();
        for _ in &sent {
            let reply = transport.recv_until(Instant::now() + LONG).unwrap();
            assert_eq!(reply.rc, ReturnCode::Ok);
            answered.push(reply.seq);
        }
        assert!(sent.iter().all(|seq| answered.contains(seq)));
    }
    assert_eq!(answered.len(), 1000);
    assert_eq!(handle.snapshot().conntracks.len(), 1000);
    assert_eq!(handle.snapshot().route(1).unwrap().refcount, 1000);
}

#[test]
fn idle_flows_age_out_with_a_removed_event() {
    let (handle, mut transport, events) = start(Duration::from_millis(10));
    let flow = udp_flow(7, (0, 0));
    assert_eq!(call(&mut transport, FCode::Ipv4Conntrack, &flow), ReturnCode::Ok);
    assert!(next_event(&events, Duration::from_millis(50)).is_none(), "not idle long enough");
    handle.advance(Duration::from_secs(181));
    let event = next_event(&events, LONG).expect("REMOVED");
    let CtEvent::V4(change) = event else { panic!("{event:?}") };
    assert_eq!(change.kind(), Action::Removed);
    assert_eq!((change.orig, change.reply), (flow.orig, flow.reply));
    assert!(handle.snapshot().conntracks.is_empty());
    assert_eq!(handle.stats().events_sent, 1);
}

#[test]
fn marked_flows_stay() {
    let (handle, mut transport, events) = start(Duration::from_millis(10));
    assert_eq!(call(&mut transport, FCode::IpRoute, &route(1)), ReturnCode::Ok);
    let active = udp_flow(1, (1, 1));
    let idle = udp_flow(2, (1, 1));
    assert_eq!(call(&mut transport, FCode::Ipv4Conntrack, &active), ReturnCode::Ok);
    assert_eq!(call(&mut transport, FCode::Ipv4Conntrack, &idle), ReturnCode::Ok);
    handle.advance(Duration::from_secs(100));
    assert_eq!(handle.mark_active(FlowMatch::Orig(active.orig.into())), 1);
    handle.advance(Duration::from_secs(100));
    let event = next_event(&events, LONG).expect("the idle flow ages out");
    assert_eq!(event.orig(), idle.orig.to_ip());
    let table = handle.snapshot();
    assert_eq!(table.conntracks.len(), 1);
    let left = table.conntrack(active.orig.into()).unwrap().remaining;
    assert!(left > Duration::from_secs(79) && left <= Duration::from_secs(80), "{left:?}");
}

#[test]
fn error_code_fault_answers_without_executing() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    handle
        .inject(Fault::ErrorCode {
            fcode: Some(FCode::Ipv4Conntrack),
            rc: ReturnCode::Failure,
            count: 1,
        })
        .unwrap();
    assert_eq!(call(&mut transport, FCode::IpRoute, &route(1)), ReturnCode::Ok, "other codes pass");
    assert_eq!(
        call(&mut transport, FCode::Ipv4Conntrack, &udp_flow(1, (1, 1))),
        ReturnCode::Failure
    );
    assert!(handle.snapshot().conntracks.is_empty());
    assert_eq!(call(&mut transport, FCode::Ipv4Conntrack, &udp_flow(1, (1, 1))), ReturnCode::Ok);
    assert!(handle.pending_faults().is_empty());
}

/// fci.ko drops a reply a full socket cannot take (`netlink_unicast` with `MSG_DONTWAIT`)
/// and the socket's next `recvmsg` fails with `ENOBUFS`: the transport reports lost replies
/// at once instead of waiting for its deadline.
#[test]
fn dropped_reply_reports_lost_replies_and_the_command_took_effect() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    handle.inject(Fault::DropReply { count: 1 }).unwrap();
    let started = Instant::now();
    let outcome = transport.call_payload(FCode::IpRoute, &route(4), LONG);
    assert!(matches!(outcome, Err(FciError::RepliesLost)), "{outcome:?}");
    assert!(started.elapsed() < LONG, "reported, not waited for");
    assert!(handle.snapshot().route(4).is_some());
    assert_eq!(
        call(&mut transport, FCode::IpRoute, &route(4)),
        ReturnCode::RtEntryAlreadyRegistered
    );
    let stats = handle.stats();
    assert_eq!((stats.replies_dropped, stats.overruns_reported), (1, 1));
    assert_eq!(transport.stats().replies_lost, 1);
}

#[test]
fn delayed_reply_arrives_late_and_is_unmatched() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    handle.inject(Fault::Delay { duration: Duration::from_millis(200), count: 1 }).unwrap();
    let outcome = transport.call_payload(FCode::IpRoute, &route(1), Duration::from_millis(30));
    assert!(matches!(outcome, Err(FciError::Timeout)), "{outcome:?}");
    let next = transport.call_payload(FCode::IpRoute, &route(2), LONG).unwrap();
    assert_eq!((next.seq, next.rc), (2, ReturnCode::Ok));
    assert_eq!(transport.stats().unmatched, 1, "the late reply to seq 1 was dropped");
}

#[test]
fn eio_fault_is_a_netlink_error() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    handle.inject(Fault::Eio { count: 1 }).unwrap();
    let outcome = transport.call_payload(FCode::IpRoute, &route(1), LONG);
    assert!(matches!(outcome, Err(FciError::Netlink { seq: 1, errno: 5 })), "{outcome:?}");
    assert!(handle.snapshot().routes.is_empty(), "not executed");
    assert_eq!(handle.stats().netlink_errors, 1);
    assert_eq!(call(&mut transport, FCode::IpRoute, &route(1)), ReturnCode::Ok);
}

#[test]
fn capacity_full_fails_insertion_until_room_is_made() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    assert_eq!(call(&mut transport, FCode::IpRoute, &route(1)), ReturnCode::Ok);
    assert_eq!(call(&mut transport, FCode::Ipv4Conntrack, &udp_flow(1, (1, 1))), ReturnCode::Ok);
    handle.inject(Fault::CapacityFull).unwrap();
    assert_eq!(
        call(&mut transport, FCode::Ipv4Conntrack, &udp_flow(2, (1, 1))),
        ReturnCode::Failure
    );
    handle.set_capacity(2);
    assert_eq!(call(&mut transport, FCode::Ipv4Conntrack, &udp_flow(2, (1, 1))), ReturnCode::Ok);
}

#[test]
fn spurious_and_duplicate_removed_events() {
    let (handle, mut transport, events) = start(Duration::from_millis(10));
    let ghost = udp_flow(999, (0, 0));
    handle
        .inject(Fault::SpuriousRemoved {
            orig: ghost.orig.into(),
            reply: ghost.reply.into(),
            protocol: 17,
        })
        .unwrap();
    let event = next_event(&events, LONG).expect("spurious REMOVED");
    let CtEvent::V4(change) = event else { panic!("{event:?}") };
    assert_eq!((change.kind(), change.orig, change.protocol), (Action::Removed, ghost.orig, 17));

    handle.inject(Fault::DuplicateRemoved { count: 1 }).unwrap();
    let flow = udp_flow(5, (0, 0));
    assert_eq!(call(&mut transport, FCode::Ipv4Conntrack, &flow), ReturnCode::Ok);
    handle.advance(Duration::from_secs(181));
    let first = next_event(&events, LONG).expect("REMOVED");
    let second = next_event(&events, LONG).expect("its duplicate");
    assert_eq!(first, second);
    assert_eq!(first.orig(), flow.orig.to_ip());
    assert!(next_event(&events, Duration::from_millis(50)).is_none());

    let mixed = handle.inject(Fault::SpuriousRemoved {
        orig: ghost.orig.into(),
        reply: SimTuple {
            src: "::1".parse().unwrap(),
            dst: "::2".parse().unwrap(),
            sport: 1,
            dport: 2,
        },
        protocol: 17,
    });
    assert!(matches!(mixed, Err(SimError::Fault(_))));
}

#[test]
fn events_a_full_socket_cannot_take_are_retried() {
    let (handle, mut transport, events) = start(Duration::from_millis(5));
    const FLOWS: u16 = 3000;
    for chunk in (0..FLOWS).collect::<Vec<_>>().chunks(50) {
        for &sport in chunk {
            transport.send_payload(FCode::Ipv4Conntrack, &udp_flow(sport, (0, 0))).unwrap();
        }
        for _ in chunk {
            assert_eq!(transport.recv_until(Instant::now() + LONG).unwrap().rc, ReturnCode::Ok);
        }
    }
    handle.advance(Duration::from_secs(181));
    eventually("deferred events", || handle.stats().events_deferred > 0);
    let mut received = 0;
    while received < FLOWS {
        next_event(&events, LONG).expect("every flow's REMOVED arrives");
        received += 1;
    }
    eventually("an empty table", || handle.snapshot().conntracks.is_empty());
    assert_eq!(handle.stats().events_sent, u64::from(FLOWS));
}

#[test]
fn garbage_is_counted_and_the_sim_keeps_serving() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    transport.socket().send(&[0xff; 7]).unwrap();
    assert_eq!(call(&mut transport, FCode::IpRoute, &route(1)), ReturnCode::Ok);
    assert_eq!(handle.stats().malformed, 1);
}

#[test]
fn shutdown_closes_the_command_socket() {
    let (handle, mut transport, _events) = start(Duration::from_millis(100));
    handle.shutdown();
    let outcome = transport.call_payload(FCode::IpRoute, &route(1), LONG);
    assert!(matches!(outcome, Err(FciError::Closed)), "{outcome:?}");
}

#[test]
fn invalid_interface_names_are_refused() {
    let config =
        SimConfig { interfaces: vec!["a-very-long-ifname".into()], ..SimConfig::default() };
    match sim::spawn(config) {
        Err(SimError::Interface { name, .. }) => assert_eq!(name, "a-very-long-ifname"),
        other => panic!("{other:?}"),
    }
}

/// A reply the command socket has no room for is dropped (`netlink_unicast` with
/// `MSG_DONTWAIT`) and the socket's next receive reports `ENOBUFS`: every reply either
/// arrives or is reported lost, none is waited for.
#[test]
fn replies_a_full_socket_cannot_take_are_reported_as_lost() {
    const COMMANDS: u32 = 3000;
    let (handle, commands, _events) = sim::spawn(config(Duration::from_millis(100))).unwrap();
    let mut transport = Transport::with_window(commands, COMMANDS as usize);
    for id in 1..=COMMANDS {
        transport.send_payload(FCode::IpRoute, &route(id)).unwrap();
    }
    eventually("every command executed", || handle.snapshot().routes.len() == COMMANDS as usize);
    let (mut answered, mut lost) = (0u64, 0u64);
    loop {
        match transport.recv_until(Instant::now() + Duration::from_millis(300)) {
            Ok(_) => answered += 1,
            Err(FciError::RepliesLost) => lost += 1,
            Err(FciError::Timeout) => break,
            Err(other) => panic!("{other:?}"),
        }
    }
    let stats = handle.stats();
    assert!(stats.replies_undeliverable > 0, "the socket filled up: {stats:?}");
    assert!(lost >= 1 && stats.overruns_reported >= 1, "and said so: {lost} {stats:?}");
    assert_eq!(answered + stats.replies_undeliverable, u64::from(COMMANDS));
}
