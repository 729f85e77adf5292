//! The spawned sim behaves at the socket as cdx behind `fci.ko` does: one message per
//! datagram, libfci's short frames, the flowtable owner's refusal, the other ABI's sizes,
//! slow FMan commands, a wedged cdx, and what cdx leaves unwritten.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use cdx_sys::detect::{self, DetectError};
use cdx_sys::fci::{self, DatagramSocket, FciError, Frame, PairSocket, Transport};
use cdx_sys::fpp::{
    Abi, Action, CtEvent, FCode, IfName, Payload, ReturnCode, RouteCmd, VlanEntry, query,
};
use cdx_sys::sim::{self, Fault, SimConfig, SimHandle, UnwrittenFill};

mod common;

use common::{config, route, udp_flow};

const LONG: Duration = Duration::from_secs(5);

fn start(config: SimConfig) -> (SimHandle, Transport<PairSocket>, PairSocket) {
    let (handle, commands, events) = sim::spawn(config).unwrap();
    (handle, Transport::new(commands), events)
}

/// The next message on `socket`, raw.
fn next_message(socket: &PairSocket) -> Vec<u8> {
    assert!(fci::wait_readable(socket.as_fd(), Some(LONG)).unwrap(), "nothing arrived");
    let mut buf = [0u8; 1024];
    let len = DatagramSocket::recv(socket, &mut buf).unwrap();
    buf[..len].to_vec()
}

/// `__fci_fe_inbound_data` (fci.c) reads `nlmsg_hdr(skb)` once: a second message in the
/// same datagram is never executed nor answered.
#[test]
fn fci_reads_only_the_first_message_of_a_datagram() {
    let (handle, transport, _events) = start(config(Duration::from_millis(100)));
    let mut datagram = [0u8; 2 * fci::MAX_FRAME];
    let first = fci::encode_request(1, FCode::IpRoute, &route(1).to_vec(), &mut datagram).unwrap();
    let second =
        fci::encode_request(2, FCode::IpRoute, &route(2).to_vec(), &mut datagram[first..]).unwrap();
    transport.socket().send(&datagram[..first + second]).unwrap();
    let reply = next_message(transport.socket());
    assert!(matches!(
        fci::decode(&reply).unwrap(),
        Frame::Reply { seq: 1, rc: ReturnCode::Ok, .. }
    ));
    assert!(
        !fci::wait_readable(transport.socket().as_fd(), Some(Duration::from_millis(100))).unwrap()
    );
    assert_eq!(handle.snapshot().routes.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1]);
    assert_eq!(handle.stats().extra_messages_ignored, 1);
}

/// libfci sends `nlmsg_len` aligned and the datagram unaligned; fci.ko (both the NXP and
/// the hardened ASK build) answers it.
#[test]
fn libfci_short_frames_are_answered() {
    let (_handle, transport, _events) = start(config(Duration::from_millis(100)));
    let mut frame = [0u8; fci::MAX_FRAME];
    // VOICE_BUFFER_RESET: answered OK by cdx's dispatcher whatever its 2-byte payload.
    let len = fci::encode_request(9, FCode::VoiceBufferReset, &[1, 0], &mut frame).unwrap();
    transport.socket().send(&frame[..len - 2]).unwrap();
    let reply = next_message(transport.socket());
    assert!(matches!(
        fci::decode(&reply).unwrap(),
        Frame::Reply { seq: 9, rc: ReturnCode::Ok, .. }
    ));
}

/// ASK `comcerto_fpp_send_command` returns −EOPNOTSUPP before taking any command when
/// cdx is booted with `offload_owner=flowtable`; `fci_outbound_err` (fci.c) answers with a
/// 36-byte `NLMSG_ERROR` carrying the error and the request's header.
#[test]
fn offload_owner_flowtable_refuses_every_command_with_eopnotsupp() {
    let (handle, mut transport, _events) = start(config(Duration::from_millis(100)));
    handle.inject(Fault::OffloadOwnerFlowtable).unwrap();
    let mut frame = [0u8; fci::MAX_FRAME];
    let len = fci::encode_request(77, FCode::IpRoute, &route(1).to_vec(), &mut frame).unwrap();
    transport.socket().send(&frame[..len]).unwrap();
    let error = next_message(transport.socket());
    assert_eq!(error.len(), 36);
    assert_eq!(&error[4..6], &2u16.to_ne_bytes(), "NLMSG_ERROR");
    assert_eq!(&error[16..20], &(-libc::EOPNOTSUPP).to_ne_bytes());
    assert_eq!(&error[20..36], &frame[..16], "the request's header");
    for _ in 0..3 {
        let refused = transport.call_payload(FCode::IpRoute, &route(1), LONG).unwrap_err();
        assert!(refused.is_offload_refused(), "{refused:?}");
    }
    assert!(matches!(detect::detect(&mut transport, LONG), Err(DetectError::OffloadOwnerNotCmm)));
    assert!(handle.snapshot().routes.is_empty(), "nothing executed");
    assert_eq!(handle.stats().netlink_errors, 5, "one raw, three calls, the first probe");
    handle.clear_faults();
    assert_eq!(transport.call_payload(FCode::IpRoute, &route(1), LONG).unwrap().rc, ReturnCode::Ok);
}

/// Both builds check the size first: a command in the other ABI's size is answered
/// `WRONG_COMMAND_SIZE`, and the detection probe tells them apart.
#[test]
fn each_abi_refuses_the_other_and_detection_finds_it() {
    for abi in Abi::ALL {
        let (handle, mut transport, _events) =
            start(SimConfig { abi, ..config(Duration::from_millis(100)) });
        assert_eq!(
            transport.call_payload(FCode::IpRoute, &route(1), LONG).unwrap().rc,
            ReturnCode::Ok
        );
        transport.set_abi(abi.other());
        let flow = udp_flow(1, (1, 0));
        let wrong = transport.call_payload(FCode::Ipv4Conntrack, &flow, LONG).unwrap();
        assert_eq!(wrong.rc, ReturnCode::WrongCommandSize, "{abi}");
        let found = detect::detect(&mut transport, LONG).unwrap();
        assert_eq!(found.abi, abi);
        transport.set_abi(found.abi);
        assert_eq!(
            transport.call_payload(FCode::Ipv4Conntrack, &flow, LONG).unwrap().rc,
            ReturnCode::Ok
        );
        assert_eq!(handle.snapshot().conntracks.len(), 1, "the probes changed nothing else");
    }
}

/// Hardware inserts and deletes are FMan host commands, run under cdx's one control mutex:
/// a command waits for its own, and the next command for them too.
#[test]
fn slow_fman_commands_delay_replies_in_order() {
    let latency = Duration::from_millis(40);
    let (handle, mut transport, _events) =
        start(SimConfig { hw_latency: latency, ..config(Duration::from_millis(100)) });
    let started = Instant::now();
    assert_eq!(transport.call_payload(FCode::IpRoute, &route(1), LONG).unwrap().rc, ReturnCode::Ok);
    assert!(started.elapsed() < latency, "no hardware change, no wait");
    let started = Instant::now();
    let sent: Vec<u32> = (0..3)
        .map(|sport| {
            transport.send_payload(FCode::Ipv4Conntrack, &udp_flow(sport, (1, 1))).unwrap()
        })
        .collect();
    for seq in sent {
        assert_eq!(transport.recv_until(Instant::now() + LONG).unwrap().seq, seq);
    }
    assert!(started.elapsed() >= latency * 6, "two inserts each, one after the other");
    assert_eq!(handle.stats().model.hw_inserts, 6);
}

/// NXP's cdx reads outside its handler table for an unknown module byte, with its control
/// mutex held: nothing is answered any more.
#[test]
fn a_wedged_cdx_answers_nothing() {
    let (handle, mut transport, _events) = start(config(Duration::from_millis(100)));
    let short = Duration::from_millis(100);
    assert!(matches!(transport.call(FCode::Unknown(0x3001), &[], short), Err(FciError::Timeout)));
    assert!(matches!(
        transport.call_payload(FCode::IpRoute, &route(1), short),
        Err(FciError::Timeout)
    ));
    assert!(handle.is_wedged());
    assert_eq!(handle.stats().commands_unanswered, 2);
}

/// Removing a VLAN interface removes the flows routed out of it, with REMOVED events on
/// the event socket (`remove_onif_by_index`, layer2.c).
#[test]
fn vlan_removal_sends_removed_events() {
    let (_handle, mut transport, events) = start(config(Duration::from_millis(100)));
    let entry = |action| VlanEntry {
        action,
        vlan_id: 10,
        ifname: IfName::new("eth1.10").unwrap(),
        phy_ifname: IfName::new("eth1").unwrap(),
        mac: [0; 6],
    };
    assert_eq!(
        transport.call_payload(FCode::VlanEntry, &entry(Action::Register), LONG).unwrap().rc,
        ReturnCode::Ok
    );
    let out_of_vlan = RouteCmd::new(
        Action::Register,
        3,
        IfName::new("eth1.10").unwrap(),
        IfName::new("eth0").unwrap(),
        [2, 0, 0, 0, 0, 3],
        1500,
    );
    assert_eq!(
        transport.call_payload(FCode::IpRoute, &out_of_vlan, LONG).unwrap().rc,
        ReturnCode::Ok
    );
    let flow = udp_flow(5, (3, 0));
    assert_eq!(
        transport.call_payload(FCode::Ipv4Conntrack, &flow, LONG).unwrap().rc,
        ReturnCode::Ok
    );
    assert_eq!(
        transport.call_payload(FCode::VlanEntry, &entry(Action::Deregister), LONG).unwrap().rc,
        ReturnCode::Ok
    );
    let message = next_message(&events);
    let Frame::Event { fcode, payload } = fci::decode(&message).unwrap() else {
        panic!("not an event")
    };
    let event = CtEvent::parse(fcode, payload).unwrap().unwrap();
    assert_eq!((event.kind(), event.orig()), (Action::Removed, flow.orig.to_ip()));
}

/// In garbage mode every byte cdx does not write is random and never NUL; walks and events
/// still decode.
#[test]
fn garbage_in_unwritten_fields_never_breaks_a_decoder() {
    let (handle, mut transport, events) =
        start(SimConfig { unwritten: UnwrittenFill::GARBAGE, ..config(Duration::from_millis(10)) });
    assert_eq!(transport.call_payload(FCode::IpRoute, &route(1), LONG).unwrap().rc, ReturnCode::Ok);
    let walk =
        transport.call_payload(FCode::IpRoute, &RouteCmd::walk_step(Action::Query), LONG).unwrap();
    assert!(walk.payload[42..58].iter().all(|&b| b != 0), "underlying input: garbage, no NUL");
    let route = query::route_from_walk(&walk.payload).unwrap();
    assert_eq!((route.id, route.output.map(|n| n.to_string())), (1, Some("eth0".into())));
    let flow = udp_flow(8, (1, 0));
    assert_eq!(
        transport.call_payload(FCode::Ipv4Conntrack, &flow, LONG).unwrap().rc,
        ReturnCode::Ok
    );
    handle.advance(Duration::from_secs(181));
    let message = next_message(&events);
    let Frame::Event { fcode, payload } = fci::decode(&message).unwrap() else {
        panic!("not an event")
    };
    assert!(payload[36..44].iter().all(|&b| b != 0), "route ids: garbage");
    let event = CtEvent::parse(fcode, payload).unwrap().unwrap();
    assert_eq!((event.orig(), event.protocol()), (flow.orig.to_ip(), 17));
}
