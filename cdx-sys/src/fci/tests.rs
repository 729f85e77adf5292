//! Framing golden bytes and malformed input; the transport over a socket pair.

use std::time::{Duration, Instant};

use super::*;
use crate::fpp::{Action, IfName, Payload, RouteCmd};

fn route_payload() -> Vec<u8> {
    RouteCmd::new(
        Action::Register,
        1,
        IfName::new("eth0").unwrap(),
        IfName::new("eth1").unwrap(),
        [2, 0, 0, 0, 0, 1],
        1500,
    )
    .to_vec()
}

#[cfg(target_endian = "little")]
#[test]
fn request_golden_bytes() {
    let payload = route_payload();
    let mut out = [0u8; MAX_FRAME];
    let len = encode_request(5, FCode::IpRoute, &payload, &mut out).unwrap();
    assert_eq!(len, 104, "NLMSG_SPACE(4 + 84)");
    assert_eq!(
        &out[..20],
        &[
            104, 0, 0, 0, // nlmsg_len
            0, 0, // type 0
            1, 0, // NLM_F_REQUEST
            5, 0, 0, 0, // seq
            0, 0, 0, 0, // pid
            0x13, 0x03, // fcode 0x0313
            84, 0, // length
        ]
    );
    assert_eq!(&out[20..104], payload.as_slice());
    assert_eq!(
        decode(&out[..len]).unwrap(),
        Frame::Request { seq: 5, fcode: FCode::IpRoute, payload: &payload }
    );
}

#[cfg(target_endian = "little")]
#[test]
fn reset_request_golden_bytes() {
    let mut out = [0u8; MAX_FRAME];
    let len = encode_request(3, FCode::Ipv4Reset, &[], &mut out).unwrap();
    assert_eq!(
        &out[..len],
        &[20, 0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0x16, 0x03, 0, 0],
        "IPV4_RESET carries no payload"
    );
}

#[test]
fn request_is_padded_to_four_bytes() {
    let mut out = [0xAAu8; MAX_FRAME];
    let len = encode_request(1, FCode::Ipv4FfControl, &[1, 0], &mut out).unwrap();
    assert_eq!(len, 24);
    assert_eq!(&out[..4], &24u32.to_ne_bytes());
    assert_eq!(&out[22..24], &[0, 0], "padding is zeroed");
    assert_eq!(
        decode(&out[..len]).unwrap(),
        Frame::Request { seq: 1, fcode: FCode::Ipv4FfControl, payload: &[1, 0] }
    );
}

#[cfg(target_endian = "little")]
#[test]
fn reply_golden_bytes() {
    let mut out = [0u8; MAX_FRAME];
    let len =
        encode_reply(7, FCode::Ipv4Conntrack, ReturnCode::CtEntryAlreadyRegistered, &[], &mut out)
            .unwrap();
    assert_eq!(
        &out[..len],
        &[22, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0x14, 0x03, 2, 0, 100, 0]
    );
    assert_eq!(
        decode(&out[..len]).unwrap(),
        Frame::Reply {
            seq: 7,
            fcode: FCode::Ipv4Conntrack,
            rc: ReturnCode::CtEntryAlreadyRegistered,
            payload: &[]
        }
    );
    let len = encode_reply(8, FCode::Ipv4GetTimeout, ReturnCode::Ok, &[1, 2, 3], &mut out).unwrap();
    assert_eq!(
        decode(&out[..len]).unwrap(),
        Frame::Reply {
            seq: 8,
            fcode: FCode::Ipv4GetTimeout,
            rc: ReturnCode::Ok,
            payload: &[1, 2, 3]
        }
    );
}

#[test]
fn event_is_a_frame_with_sequence_zero() {
    let mut out = [0u8; MAX_FRAME];
    let len = encode_event(FCode::Ipv4ConntrackChange, &[3, 0, 9], &mut out).unwrap();
    assert_eq!(&out[8..12], &[0, 0, 0, 0]);
    assert_eq!(
        decode(&out[..len]).unwrap(),
        Frame::Event { fcode: FCode::Ipv4ConntrackChange, payload: &[3, 0, 9] }
    );
}

#[cfg(target_endian = "little")]
#[test]
fn netlink_error_golden_bytes() {
    let mut out = [0u8; 64];
    let len = encode_netlink_error(9, libc::EIO, 24, &mut out).unwrap();
    assert_eq!(len, 36);
    assert_eq!(&out[..16], &[36, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&out[16..20], &(-5i32).to_ne_bytes());
    assert_eq!(&out[20..36], &[24, 0, 0, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(decode(&out[..len]).unwrap(), Frame::NetlinkError { seq: 9, errno: 5 });
}

fn header(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&len.to_ne_bytes());
    bytes.extend_from_slice(&ty.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&seq.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes
}

fn malformed(bytes: &[u8]) -> Malformed {
    match decode(bytes) {
        Err(FciError::Malformed(m)) => m,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn malformed_frames_are_typed_errors() {
    assert_eq!(malformed(&[0; 15]), Malformed::Truncated(15));
    assert_eq!(
        malformed(&header(8, 0, 0, 1)),
        Malformed::MessageLength { nlmsg_len: 8, available: 16 }
    );
    assert_eq!(
        malformed(&header(40, 0, 0, 1)),
        Malformed::MessageLength { nlmsg_len: 40, available: 16 }
    );
    // header only: no room for the FCI header
    assert_eq!(malformed(&header(16, 0, 0, 1)), Malformed::Truncated(16));
    // FCI length beyond the message
    let mut bytes = header(22, 0, 0, 1);
    bytes.extend_from_slice(&[0x14, 0x03, 10, 0, 0, 0]);
    assert_eq!(malformed(&bytes), Malformed::PayloadLength { fci_len: 10, room: 2 });
    // FCI length beyond 256
    let mut bytes = header(20 + 300, 0, 0, 1);
    bytes.extend_from_slice(&[0x14, 0x03]);
    bytes.extend_from_slice(&300u16.to_ne_bytes());
    bytes.resize(320, 0);
    assert_eq!(malformed(&bytes), Malformed::PayloadLength { fci_len: 300, room: 256 });
    // reply without its return code
    let mut bytes = header(21, 0, 0, 1);
    bytes.extend_from_slice(&[0x14, 0x03, 1, 0, 0]);
    assert_eq!(malformed(&bytes), Malformed::ReplyWithoutCode(1));
    // NLMSG_DONE and other control types
    assert_eq!(malformed(&header(16, 3, 0, 1)), Malformed::UnexpectedType(3));
    assert_eq!(malformed(&header(16, 0x10, 0, 1)), Malformed::UnexpectedType(0x10));
    // NLMSG_ERROR without its errno
    assert_eq!(malformed(&header(16, 2, 0, 1)), Malformed::Truncated(16));
}

#[test]
fn several_messages_in_one_datagram() {
    let mut datagram = vec![0u8; 3 * MAX_FRAME];
    let mut at = encode_reply(1, FCode::IpRoute, ReturnCode::Ok, &[], &mut datagram).unwrap();
    at = at.next_multiple_of(4);
    at += encode_event(FCode::Ipv6ConntrackChange, &[1], &mut datagram[at..]).unwrap();
    at = at.next_multiple_of(4);
    datagram.truncate(at);
    let all: Vec<_> = frames(&datagram).collect();
    assert_eq!(
        all,
        vec![
            Ok(Frame::Reply { seq: 1, fcode: FCode::IpRoute, rc: ReturnCode::Ok, payload: &[] }),
            Ok(Frame::Event { fcode: FCode::Ipv6ConntrackChange, payload: &[1] }),
        ]
    );
    datagram.extend_from_slice(&[1, 2, 3]);
    let all: Vec<_> = frames(&datagram).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2], Err(Malformed::Truncated(3)));
}

#[test]
fn encoders_refuse_oversized_payloads_and_short_buffers() {
    let mut out = [0u8; 1024];
    assert!(matches!(
        encode_request(1, FCode::IpRoute, &[0; 257], &mut out),
        Err(FciError::PayloadTooLarge(257))
    ));
    assert!(matches!(
        encode_reply(1, FCode::IpRoute, ReturnCode::Ok, &[0; 255], &mut out),
        Err(FciError::PayloadTooLarge(257))
    ));
    assert!(encode_request(1, FCode::IpRoute, &[0; 256], &mut out).is_ok());
    assert!(matches!(
        encode_request(1, FCode::IpRoute, &[0; 84], &mut out[..100]),
        Err(FciError::BufferTooShort { needed: 104, actual: 100 })
    ));
}

// ---- transport over a socket pair ----

/// Reads one request on the fake-cdx end.
fn next_request(peer: &PairSocket) -> (u32, FCode, Vec<u8>) {
    let mut buf = [0u8; 4096];
    assert!(wait_readable(peer.as_fd(), Some(Duration::from_secs(5))).unwrap(), "no request");
    let len = peer.recv(&mut buf).unwrap();
    match decode(&buf[..len]).unwrap() {
        Frame::Request { seq, fcode, payload } => (seq, fcode, payload.to_vec()),
        other => panic!("not a request: {other:?}"),
    }
}

fn reply(peer: &PairSocket, seq: u32, fcode: FCode, rc: ReturnCode, data: &[u8]) {
    let mut out = [0u8; MAX_FRAME];
    let len = encode_reply(seq, fcode, rc, data, &mut out).unwrap();
    peer.send(&out[..len]).unwrap();
}

use std::os::fd::AsFd;

#[test]
fn call_sends_the_exact_request_and_returns_the_matched_reply() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    let payload = route_payload();
    let expected = payload.clone();
    let fake = std::thread::spawn(move || {
        let (seq, fcode, got) = next_request(&peer);
        assert_eq!((seq, fcode), (1, FCode::IpRoute));
        assert_eq!(got, expected);
        reply(&peer, seq, fcode, ReturnCode::RtEntryAlreadyRegistered, &[0xde, 0xad]);
        peer
    });
    let got = transport.call(FCode::IpRoute, &payload, Duration::from_secs(5)).unwrap();
    assert_eq!(
        got,
        Reply {
            seq: 1,
            fcode: FCode::IpRoute,
            rc: ReturnCode::RtEntryAlreadyRegistered,
            payload: vec![0xde, 0xad]
        }
    );
    assert!(transport.in_flight().is_empty());
    assert_eq!(transport.stats().matched, 1);
    drop(fake.join().unwrap());
}

#[test]
fn pipelined_replies_in_any_order_are_matched() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::with_window(ours, 16);
    let seqs: Vec<u32> =
        (0..16u8).map(|i| transport.send(FCode::Ipv4FfControl, &[i, 0, 0, 0]).unwrap()).collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
    assert!(matches!(transport.send(FCode::Ipv4FfControl, &[0; 4]), Err(FciError::WindowFull(16))));
    let requests: Vec<_> = (0..16).map(|_| next_request(&peer)).collect();
    for (i, (seq, _, payload)) in requests.iter().enumerate() {
        assert_eq!(payload[0] as usize, i, "requests arrive in send order");
        assert_eq!(*seq, i as u32 + 1);
    }
    for (seq, fcode, payload) in requests.iter().rev() {
        reply(&peer, *seq, *fcode, ReturnCode::Ok, &payload[..1]);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got: Vec<(u32, u8)> = (0..16)
        .map(|_| transport.recv_until(deadline).unwrap())
        .map(|r| (r.seq, r.payload[0]))
        .collect();
    assert_eq!(got.first(), Some(&(16, 15)), "replies come back in arrival order");
    got.sort_unstable();
    assert_eq!(got, (1..=16u32).map(|s| (s, (s - 1) as u8)).collect::<Vec<_>>());
    assert!(transport.in_flight().is_empty());
}

#[test]
fn missing_reply_times_out_and_a_late_reply_is_dropped_as_unmatched() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    let started = Instant::now();
    let outcome = transport.call(FCode::Ipv4Reset, &[], Duration::from_millis(50));
    let elapsed = started.elapsed();
    assert!(matches!(outcome, Err(FciError::Timeout)), "{outcome:?}");
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(transport.in_flight().is_empty(), "a timed-out call is given up");
    assert_eq!(transport.stats().abandoned, 1);

    let (late_seq, fcode, _) = next_request(&peer);
    reply(&peer, late_seq, fcode, ReturnCode::Ok, &[]);
    let fake = std::thread::spawn(move || {
        let (seq, fcode, _) = next_request(&peer);
        reply(&peer, seq, fcode, ReturnCode::UnknownCommand, &[]);
        peer
    });
    let second = transport.call(FCode::Ipv6Reset, &[], Duration::from_secs(5)).unwrap();
    assert_eq!(
        (second.seq, second.fcode, second.rc),
        (2, FCode::Ipv6Reset, ReturnCode::UnknownCommand)
    );
    assert_eq!(transport.stats().unmatched, 1, "the late reply to seq 1");
    drop(fake.join().unwrap());
}

#[test]
fn recv_until_times_out_without_giving_up_the_requests() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    let seq = transport.send(FCode::Ipv4Reset, &[]).unwrap();
    let deadline = Instant::now() + Duration::from_millis(20);
    assert!(matches!(transport.recv_until(deadline), Err(FciError::Timeout)));
    assert_eq!(transport.in_flight(), &[seq]);
    reply(&peer, seq, FCode::Ipv4Reset, ReturnCode::Ok, &[]);
    let got = transport.recv_until(Instant::now() + Duration::from_secs(5)).unwrap();
    assert_eq!(got.seq, seq);
    assert!(!transport.forget(99), "99 was never sent");
}

#[test]
fn netlink_errors_carry_the_sequence_number() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    let seq = transport.send(FCode::Ipv4Conntrack, &[0; 44]).unwrap();
    let mut out = [0u8; 64];
    let len = encode_netlink_error(seq, libc::EIO, 64, &mut out).unwrap();
    peer.send(&out[..len]).unwrap();
    match transport.recv_until(Instant::now() + Duration::from_secs(5)) {
        Err(FciError::Netlink { seq: s, errno }) => assert_eq!((s, errno), (seq, libc::EIO)),
        other => panic!("{other:?}"),
    }
    assert!(transport.in_flight().is_empty());
}

#[test]
fn call_keeps_replies_to_other_requests_for_recv_until() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    let first = transport.send(FCode::Ipv4Reset, &[]).unwrap();
    let fake = std::thread::spawn(move || {
        let (s1, f1, _) = next_request(&peer);
        let (s2, f2, _) = next_request(&peer);
        reply(&peer, s1, f1, ReturnCode::Ok, &[1]);
        reply(&peer, s2, f2, ReturnCode::Ok, &[2]);
        peer
    });
    let second = transport.call(FCode::Ipv6Reset, &[], Duration::from_secs(5)).unwrap();
    assert_eq!(second.payload, vec![2]);
    let kept = transport.recv_until(Instant::now()).unwrap();
    assert_eq!((kept.seq, kept.payload), (first, vec![1]));
    drop(fake.join().unwrap());
}

#[test]
fn garbage_unknown_replies_and_events_on_the_command_socket_are_skipped() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    let seq = transport.send(FCode::Ipv4Reset, &[]).unwrap();
    peer.send(&[1, 2, 3]).unwrap();
    reply(&peer, 4242, FCode::Ipv4Reset, ReturnCode::Ok, &[]);
    let mut out = [0u8; MAX_FRAME];
    let len = encode_event(FCode::Ipv4ConntrackChange, &[0; 44], &mut out).unwrap();
    peer.send(&out[..len]).unwrap();
    reply(&peer, seq, FCode::Ipv4Reset, ReturnCode::Ok, &[]);
    let got = transport.recv_until(Instant::now() + Duration::from_secs(5)).unwrap();
    assert_eq!(got.seq, seq);
    let stats = transport.stats();
    assert_eq!((stats.malformed, stats.unmatched, stats.stray, stats.matched), (1, 1, 1, 1));
}

#[test]
fn closed_peer_is_reported() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    transport.send(FCode::Ipv4Reset, &[]).unwrap();
    drop(peer);
    let received = transport.recv_until(Instant::now() + Duration::from_secs(5));
    assert!(matches!(received, Err(FciError::Closed)), "{received:?}");
    let sent = transport.send(FCode::Ipv4Reset, &[]);
    assert!(matches!(sent, Err(FciError::Closed)), "{sent:?}");
}

#[test]
fn event_socket_reads_report_empty_and_closed() {
    let (ours, peer) = PairSocket::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    assert!(matches!(ours.try_recv(&mut buf), Ok(None)));
    let mut out = [0u8; MAX_FRAME];
    let len = encode_event(FCode::Ipv4ConntrackChange, &[0; 44], &mut out).unwrap();
    peer.send(&out[..len]).unwrap();
    let socket = FciSocket::from(ours);
    assert_eq!(socket.try_recv(&mut buf).unwrap(), Some(len));
    assert!(matches!(
        decode(&buf[..len]).unwrap(),
        Frame::Event { fcode: FCode::Ipv4ConntrackChange, .. }
    ));
    drop(peer);
    assert!(matches!(socket.try_recv(&mut buf), Err(FciError::Closed)));
}

#[test]
fn netlink_ff_needs_fci_ko() {
    // fci.ko creates protocol 30; without it the kernel refuses the socket. Either outcome
    // is a typed result, never a panic.
    match NetlinkFf::command() {
        Ok(socket) => assert!(socket.set_receive_buffer(1 << 20).unwrap() > 0),
        Err(error) => assert_eq!(error.raw_os_error(), Some(libc::EPROTONOSUPPORT), "{error}"),
    }
    match NetlinkFf::events() {
        Ok(_) => {}
        Err(error) => assert_eq!(error.raw_os_error(), Some(libc::EPROTONOSUPPORT), "{error}"),
    }
}

// ---- framing as fci.ko reads it ----

/// Every FPP payload this crate encodes is a multiple of 4 bytes long: its request frame is
/// the exact size, `nlmsg_len` equals the datagram, and libfci's framing (aligned
/// `nlmsg_len`, unaligned datagram) is the same bytes. A payload of another length is
/// padded, so `nlmsg_len` still equals the datagram.
#[test]
fn requests_keep_nlmsg_len_equal_to_the_datagram() {
    let mut out = [0xAAu8; MAX_FRAME];
    for size in [0, 4, 12, 36, 44, 48, 72, 76, 84, 92, 96, 120, 124] {
        let len = encode_request(1, FCode::Ipv4Conntrack, &vec![7; size], &mut out).unwrap();
        assert_eq!(len, NLMSG_HDRLEN + FCI_HDRLEN + size, "{size} B: no padding needed");
        assert_eq!(u32::from_ne_bytes(out[..4].try_into().unwrap()) as usize, len);
    }
    let len = encode_request(1, FCode::Ipv4FfControl, &[1, 0], &mut out).unwrap();
    assert_eq!((len, u32::from_ne_bytes(out[..4].try_into().unwrap())), (24, 24));
}

#[test]
fn requests_are_read_as_the_hardened_fci_reads_them() {
    let mut out = [0u8; 2 * MAX_FRAME];
    // libfci: nlmsg_len = NLMSG_SPACE(4 + 2) = 24, only 22 bytes sent.
    let len = encode_request(3, FCode::Ipv4FfControl, &[1, 0], &mut out).unwrap();
    let short = &out[..len - 2];
    assert!(matches!(decode(short), Err(FciError::Malformed(Malformed::MessageLength { .. }))));
    let request = read_request_as_fci(short).unwrap();
    assert_eq!(
        (request.seq, request.nlmsg_len, request.fcode, request.payload, request.ignored),
        (3, 24, FCode::Ipv4FfControl, &[1u8, 0][..], 0)
    );
    // Two messages in one datagram: only the first is read.
    let first = encode_request(4, FCode::Ipv4Reset, &[], &mut out).unwrap();
    let second = encode_request(5, FCode::Ipv6Reset, &[], &mut out[first..]).unwrap();
    let request = read_request_as_fci(&out[..first + second]).unwrap();
    assert_eq!((request.seq, request.ignored), (4, second));
    // Type and flags are not looked at; a datagram shorter than the headers, or a length
    // beyond the datagram, is dropped.
    let mut event = [0u8; MAX_FRAME];
    let len = encode_event(FCode::Ipv4Reset, &[], &mut event).unwrap();
    assert_eq!(read_request_as_fci(&event[..len]).unwrap().seq, 0);
    assert_eq!(read_request_as_fci(&out[..19]), Err(Malformed::Truncated(19)));
    let mut lying = header(24, 0, 1, 6);
    lying.extend_from_slice(&[0x21, 0x03, 8, 0, 1, 0]);
    assert_eq!(read_request_as_fci(&lying), Err(Malformed::PayloadLength { fci_len: 8, room: 2 }));
}

#[test]
fn overrun_reports_lost_replies_once_and_matching_goes_on() {
    let (ours, peer) = PairSocket::pair().unwrap();
    let mut transport = Transport::new(ours);
    let first = transport.send(FCode::Ipv4Reset, &[]).unwrap();
    let second = transport.send(FCode::Ipv4Reset, &[]).unwrap();
    let mut marker = [0u8; 32];
    let len = encode_overrun(&mut marker).unwrap();
    assert_eq!(decode(&marker[..len]).unwrap(), Frame::Overrun);
    peer.send(&marker[..len]).unwrap();
    reply(&peer, second, FCode::Ipv4Reset, ReturnCode::Ok, &[]);
    let deadline = Instant::now() + Duration::from_secs(5);
    assert!(matches!(transport.recv_until(deadline), Err(FciError::RepliesLost)));
    assert_eq!(transport.recv_until(deadline).unwrap().seq, second);
    assert_eq!(transport.in_flight(), &[first], "the lost one stays until given up");
    assert_eq!(transport.stats().replies_lost, 1);
    assert!(FciError::Netlink { seq: 1, errno: EOPNOTSUPP }.is_offload_refused());
}
