//! Malformed input: truncated, wrong lengths, nested garbage, contradictions, random bytes.
//! Each is an error (or, for unknown things, kept) and never a panic.

use proptest::prelude::*;

use super::build_message;
use crate::consts::*;
use crate::fixtures::{self, ALL};
use crate::message::Header;
use crate::nla::AttrWriter;
use crate::*;

/// Walks everything a datagram offers: every message, every attribute at every depth (Debug
/// of a nest iterates its children), the conversions and the re-encoding. Returns whether
/// all of it succeeded.
fn exercise(bytes: &[u8]) -> bool {
    let mut all_ok = true;
    for message in Datagram::new(bytes) {
        let Ok(message) = message else { return false };
        let Message::Conntrack(message) = message else { continue };
        for attr in message.attrs() {
            all_ok &= attr.is_ok();
            let _ = format!("{attr:?}");
        }
        all_ok &= Conntrack::from_message(&message).is_ok();
        all_ok &= Event::from_message(&message).is_ok();
        all_ok &= message.helper_name().is_ok();
        all_ok &= message.emit(&mut Vec::new()).is_ok();
    }
    all_ok
}

fn first_error(bytes: &[u8]) -> DecodeError {
    let Some(Ok(Message::Conntrack(message))) = Datagram::new(bytes).next() else {
        panic!("not a conntrack message")
    };
    Conntrack::from_message(&message).unwrap_err()
}

/// A header of a conntrack NEW event.
fn event_header() -> Header {
    Header { message_type: MessageKind::New.message_type(), flags: 0, seq: 0, port: 0 }
}

fn tcp_tuple(src: [u8; 4], dst: [u8; 4]) -> Tuple {
    Tuple::new(src.into(), dst.into(), 6, 1000, 80)
}

/// A valid IPv4 TCP event with both tuples, then whatever `more` appends.
fn event_with(more: impl FnOnce(&mut AttrWriter<'_>)) -> Vec<u8> {
    build_message(event_header(), libc::AF_INET as u8, |attrs| {
        let orig = tcp_tuple([10, 0, 0, 1], [10, 0, 0, 2]);
        orig.emit(attrs, CTA_TUPLE_ORIG);
        orig.reversed().emit(attrs, CTA_TUPLE_REPLY);
        more(attrs);
    })
}

#[test]
fn every_truncation_of_every_fixture_is_an_error() {
    for fixture in ALL {
        let bytes = fixture.bytes();
        let mut boundaries = vec![0];
        while let Some(&at) = boundaries.last().filter(|&&at| at < bytes.len()) {
            boundaries
                .push(at + u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap()) as usize);
        }
        for cut in 0..bytes.len() {
            let error = Datagram::new(&bytes[..cut]).find_map(Result::err);
            if boundaries.contains(&cut) {
                assert_eq!(error, None, "{} cut between messages at {cut}", fixture.name);
            } else if cut < 16 {
                assert_eq!(
                    error,
                    Some(DecodeError::Truncated { what: "netlink header", need: 16, have: cut }),
                    "{} cut at {cut}",
                    fixture.name
                );
            } else {
                assert!(
                    matches!(
                        error,
                        Some(DecodeError::MessageLength { .. } | DecodeError::Truncated { .. })
                    ),
                    "{} cut at {cut}: {error:?}",
                    fixture.name
                );
            }
        }
    }
}

#[test]
fn shortened_message_lengths_never_panic_and_lose_the_tuples() {
    for fixture in ALL {
        let mut bytes = fixture.bytes();
        let length = u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize;
        bytes.truncate(length);
        // Up to the end of the reply tuple, the entry cannot be complete.
        let reply_end = 20 + 2 * usize::from(u16::from_ne_bytes([bytes[20], bytes[21]]));
        for shorter in 16..length {
            let mut cut = bytes[..shorter].to_vec();
            cut[..4].copy_from_slice(&(shorter as u32).to_ne_bytes());
            let complete = exercise(&cut);
            if shorter < reply_end {
                assert!(!complete, "{} with length {shorter}", fixture.name);
            }
        }
    }
}

#[test]
fn attribute_length_shorter_than_its_header() {
    let mut bytes = event_with(|attrs| attrs.leaf(CTA_TIMEOUT, &30u32.to_be_bytes()));
    let timeout_at = bytes.len() - 8;
    bytes[timeout_at..timeout_at + 2].copy_from_slice(&2u16.to_ne_bytes());
    let error = first_error(&bytes);
    assert_eq!(
        error,
        DecodeError::AttrLength {
            within: "conntrack message",
            offset: timeout_at - 20,
            length: 2,
            available: 8
        }
    );
}

#[test]
fn attribute_running_past_its_container() {
    let mut bytes = event_with(|attrs| attrs.leaf(CTA_MARK, &7u32.to_be_bytes()));
    let mark_at = bytes.len() - 8;
    bytes[mark_at..mark_at + 2].copy_from_slice(&64u16.to_ne_bytes());
    assert!(matches!(
        first_error(&bytes),
        DecodeError::AttrLength { length: 64, available: 8, .. }
    ));
}

#[test]
fn trailing_bytes_too_short_for_a_header() {
    let mut bytes = event_with(|_| {});
    bytes.extend_from_slice(&[1, 2]);
    let length = bytes.len() as u32;
    bytes[..4].copy_from_slice(&length.to_ne_bytes());
    assert!(matches!(first_error(&bytes), DecodeError::AttrTruncated { available: 2, .. }));
}

#[test]
fn identity_values_of_the_wrong_size_fail_the_entry() {
    let bytes = event_with(|attrs| attrs.leaf(CTA_ZONE, &[0, 0, 0, 7]));
    assert_eq!(
        first_error(&bytes),
        DecodeError::ValueLength { attr: "CTA_ZONE", expected: 2, actual: 4 }
    );
    let bytes = event_with(|attrs| attrs.leaf(CTA_STATUS, &[0, 0, 8]));
    assert_eq!(
        first_error(&bytes),
        DecodeError::ValueLength { attr: "CTA_STATUS", expected: 4, actual: 3 }
    );
}

#[test]
fn other_values_of_the_wrong_size_are_skipped_and_named() {
    // Each bad attribute between good ones: the entry decodes, keeps the good values, and
    // names the bad attribute.
    let bytes = event_with(|attrs| {
        attrs.leaf(CTA_TIMEOUT, &[0, 0, 30]);
        attrs.leaf(CTA_MARK, &7u32.to_be_bytes());
        let nest = attrs.begin_nested();
        attrs.leaf(CTA_COUNTERS_PACKETS, &[0; 7]);
        attrs.end_nested(nest, CTA_COUNTERS_ORIG);
        let nest = attrs.begin_nested();
        attrs.leaf(CTA_COUNTERS_PACKETS, &3u64.to_be_bytes());
        attrs.end_nested(nest, CTA_COUNTERS_REPLY);
        attrs.leaf(CTA_ID, &[1, 2]);
        attrs.leaf(CTA_TIMESTAMP_EVENT, &[0; 40]);
        attrs.leaf(CTA_STATUS_MASK, &[0; 2]);
        let info = attrs.begin_nested();
        let tcp = attrs.begin_nested();
        attrs.leaf(CTA_PROTOINFO_TCP_STATE, &[3, 0]);
        attrs.end_nested(tcp, CTA_PROTOINFO_TCP);
        attrs.end_nested(info, CTA_PROTOINFO);
        attrs.leaf(CTA_USE, &1u32.to_be_bytes());
    });
    let ct = Conntrack::from_message(&message_of(&bytes)).unwrap();
    assert_eq!(
        (ct.timeout, ct.mark, ct.id, ct.tcp, ct.use_count),
        (None, Some(7), None, None, Some(1))
    );
    assert_eq!(
        ct.counters,
        Some(Counters { orig: Counter::default(), reply: Counter { packets: 3, bytes: 0 } })
    );
    assert_eq!(
        ct.skipped.iter().collect::<Vec<_>>(),
        [
            EntryAttr::ProtoInfo,
            EntryAttr::Timeout,
            EntryAttr::CountersOrig,
            EntryAttr::Id,
            EntryAttr::StatusMask,
            EntryAttr::TimestampEvent
        ]
    );
    // The static view says what is wrong with each, and goes on past it.
    let errors: Vec<_> = message_of(&bytes).attrs().iter().filter_map(Result::err).collect();
    assert_eq!(
        errors,
        [
            DecodeError::ValueLength { attr: "CTA_TIMEOUT", expected: 4, actual: 3 },
            DecodeError::ValueLength { attr: "CTA_ID", expected: 4, actual: 2 },
            DecodeError::ValueLength { attr: "CTA_TIMESTAMP_EVENT", expected: 8, actual: 40 },
            DecodeError::ValueLength { attr: "CTA_STATUS_MASK", expected: 4, actual: 2 },
        ]
    );
    let mut emitted = Vec::new();
    message_of(&bytes).emit(&mut emitted).unwrap();
    assert_eq!(emitted, bytes, "values that do not decode are re-emitted as they came");
}

#[test]
fn an_empty_status_is_a_pad_not_a_status() {
    // nla_put_be64 pads with a zero-length attribute of type 3 (CTA_TIMESTAMP_PAD upstream,
    // the literal 3 on the ASK 5.4 patch) on kernels without efficient unaligned access.
    let bytes = event_with(|attrs| {
        attrs.leaf(CTA_STATUS, &Status::CONFIRMED.bits().to_be_bytes());
        attrs.leaf(CTA_STATUS, &[]);
        attrs.leaf(CTA_TIMESTAMP_EVENT, &7u64.to_be_bytes());
    });
    let ct = Conntrack::from_message(&message_of(&bytes)).unwrap();
    assert_eq!((ct.status, ct.skipped), (Status::CONFIRMED, SkippedAttrs::NONE));
}

#[test]
fn garbage_inside_a_nested_attribute() {
    let bytes = build_message(event_header(), libc::AF_INET as u8, |attrs| {
        let nest = attrs.begin_nested();
        attrs.extend(&[0xff, 0xff, 0x01, 0x00, 0xde, 0xad]);
        attrs.end_nested(nest, CTA_TUPLE_ORIG);
    });
    assert_eq!(
        first_error(&bytes),
        DecodeError::AttrLength {
            within: "CTA_TUPLE_ORIG",
            offset: 0,
            length: 0xffff,
            available: 6
        }
    );
}

#[test]
fn contradictions_are_errors() {
    let mixed = Tuple { dst: "2001:db8::1".parse().unwrap(), ..tcp_tuple([10, 0, 0, 1], [0; 4]) };
    let bytes = build_message(event_header(), libc::AF_INET as u8, |attrs| {
        mixed.emit(attrs, CTA_TUPLE_ORIG);
        mixed.emit(attrs, CTA_TUPLE_REPLY);
    });
    assert_eq!(
        first_error(&bytes),
        DecodeError::Inconsistent {
            attr: "CTA_TUPLE_IP",
            reason: "source and destination of different families"
        }
    );

    let mut bytes = event_with(|_| {});
    bytes[16] = libc::AF_INET6 as u8;
    assert_eq!(
        first_error(&bytes),
        DecodeError::Inconsistent {
            attr: "CTA_TUPLE_ORIG",
            reason: "addresses of another family than the message"
        }
    );

    let mut bytes = event_with(|_| {});
    bytes[16] = 7;
    assert_eq!(first_error(&bytes), DecodeError::UnsupportedFamily(7));

    let bytes = build_message(event_header(), libc::AF_INET as u8, |attrs| {
        let tuple = attrs.begin_nested();
        let ip = attrs.begin_nested();
        attrs.leaf(CTA_IP_V4_SRC, &[10, 0, 0, 1]);
        attrs.leaf(CTA_IP_V4_DST, &[10, 0, 0, 2]);
        attrs.end_nested(ip, CTA_TUPLE_IP);
        let proto = attrs.begin_nested();
        attrs.leaf(CTA_PROTO_NUM, &[1]);
        attrs.leaf(CTA_PROTO_ICMP_TYPE, &[8]);
        attrs.end_nested(proto, CTA_TUPLE_PROTO);
        attrs.end_nested(tuple, CTA_TUPLE_ORIG);
    });
    assert_eq!(
        first_error(&bytes),
        DecodeError::Inconsistent {
            attr: "CTA_TUPLE_PROTO",
            reason: "incomplete ICMP id/type/code"
        }
    );
}

#[test]
fn missing_tuples() {
    let orig = tcp_tuple([10, 0, 0, 1], [10, 0, 0, 2]);
    let bytes = build_message(event_header(), libc::AF_INET as u8, |attrs| {
        orig.emit(attrs, CTA_TUPLE_ORIG)
    });
    assert_eq!(first_error(&bytes), DecodeError::MissingAttr("CTA_TUPLE_REPLY"));
    let bytes = build_message(event_header(), libc::AF_INET as u8, |_| {});
    assert_eq!(first_error(&bytes), DecodeError::MissingAttr("CTA_TUPLE_ORIG"));
    let bytes = build_message(event_header(), libc::AF_INET as u8, |attrs| {
        let tuple = attrs.begin_nested();
        attrs.end_nested(tuple, CTA_TUPLE_ORIG);
    });
    assert_eq!(first_error(&bytes), DecodeError::MissingAttr("CTA_TUPLE_IP"));
}

#[test]
fn unknown_attributes_and_values_are_kept() {
    let bytes = event_with(|attrs| {
        attrs.leaf(99, &[1, 2, 3]);
        attrs.leaf(CTA_STATUS, &0x8001_0008u32.to_be_bytes());
        let info = attrs.begin_nested();
        let tcp = attrs.begin_nested();
        attrs.leaf(CTA_PROTOINFO_TCP_STATE, &[42]);
        attrs.leaf(77, &[9]);
        attrs.end_nested(tcp, CTA_PROTOINFO_TCP);
        attrs.leaf(CTA_PROTOINFO_TCP + 2, &[5, 5]);
        attrs.end_nested(info, CTA_PROTOINFO);
    });
    let Some(Ok(Message::Conntrack(message))) = Datagram::new(&bytes).next() else { panic!() };
    let other = message.attrs().iter().find_map(|attr| match attr.unwrap() {
        Attr::Other(raw) => Some(raw),
        _ => None,
    });
    assert_eq!(other.map(|raw| (raw.kind(), raw.value())), Some((99, &[1u8, 2, 3][..])));
    let ct = Conntrack::from_message(&message).unwrap();
    assert_eq!(ct.status.bits(), 0x8001_0008);
    assert_eq!(ct.tcp.map(|tcp| tcp.state), Some(TcpState::Other(42)));
    let mut emitted = Vec::new();
    message.emit(&mut emitted).unwrap();
    assert_eq!(emitted, bytes, "unknown attributes, bits and values survive re-encoding");
}

#[test]
fn other_subsystems_and_control_messages_are_not_decoded_as_conntrack() {
    // An nftables message (subsystem 10) and an expectation message (subsystem 2) with bodies
    // that would not decode as conntrack: kept as Other, untouched.
    for message_type in [10 << 8, 2 << 8] {
        let header = Header { message_type, flags: 0, seq: 0, port: 0 };
        let bytes = build_message(header, 2, |attrs| attrs.extend(&[0xff; 6]));
        let messages: Vec<_> = Datagram::new(&bytes).collect();
        assert!(
            matches!(messages[..], [Ok(Message::Other { header: Header { message_type: t, .. }, .. })] if t == message_type)
        );
    }
    let error = [20u8, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff];
    assert_eq!(
        Datagram::new(&error).collect::<Vec<_>>(),
        [Ok(Message::Error { seq: 5, errno: 2 })]
    );
    let short_error = [18u8, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff];
    assert_eq!(
        Datagram::new(&short_error).collect::<Vec<_>>(),
        [Err(DecodeError::Truncated { what: "NLMSG_ERROR code", need: 4, have: 2 })]
    );
    let overrun = [16u8, 0, 0, 0, 4, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(Datagram::new(&overrun).collect::<Vec<_>>(), [Ok(Message::Overrun { seq: 9 })]);
    let no_nfgenmsg = [18u8, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0];
    assert_eq!(
        Datagram::new(&no_nfgenmsg).collect::<Vec<_>>(),
        [Err(DecodeError::Truncated { what: "nfgenmsg", need: 4, have: 2 })]
    );
}

#[test]
fn a_bad_message_ends_the_datagram() {
    let mut bytes = fixtures::TCP4_SNAT_NEW.bytes();
    bytes.extend_from_slice(&[0xff; 16]);
    bytes.extend(fixtures::TCP4_SNAT_NEW.bytes());
    let results: Vec<_> = Datagram::new(&bytes).map(|message| message.is_ok()).collect();
    assert_eq!(
        results,
        [true, false],
        "after a message whose length is wrong, nothing can be trusted"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        kind in 0u8..8,
    ) {
        let header = Header { message_type: MessageKind::from(kind).message_type(), flags: 0, seq: 0, port: 0 };
        let bytes = build_message(header, 2, |attrs| attrs.extend(&body));
        exercise(&bytes);
    }

    #[test]
    fn corrupted_fixtures_never_panic(
        which in 0..ALL.len(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = ALL[which].bytes();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        exercise(&bytes);
    }
}

#[test]
fn presence_flags_of_attributes_no_capture_has() {
    // No captured message carries sequence adjustment, labels or a master tuple (the FTP capture
    // needed no rewrite): built here in the kernel's layout instead.
    let plain = Conntrack::from_message(&message_of(&event_with(|_| {}))).unwrap();
    assert!(!(plain.seq_adjust || plain.has_labels || plain.has_master || plain.has_helper));
    let bytes = event_with(|attrs| {
        let seq = attrs.begin_nested();
        attrs.leaf(CTA_SEQADJ_CORRECTION_POS, &7u32.to_be_bytes());
        attrs.leaf(CTA_SEQADJ_OFFSET_BEFORE, &0u32.to_be_bytes());
        attrs.leaf(CTA_SEQADJ_OFFSET_AFTER, &2u32.to_be_bytes());
        attrs.end_nested(seq, CTA_SEQ_ADJ_REPLY);
        attrs.leaf(CTA_LABELS, &[0x80; 16]);
        tcp_tuple([10, 0, 0, 9], [10, 0, 0, 2]).emit(attrs, CTA_TUPLE_MASTER);
    });
    let message = message_of(&bytes);
    let ct = Conntrack::from_message(&message).unwrap();
    assert!(ct.seq_adjust && ct.has_labels && ct.has_master && !ct.has_helper);
    let seq_adj = message.attrs().iter().find_map(|attr| match attr.unwrap() {
        Attr::SeqAdjReply(nest) => Some(nest.iter().map(Result::unwrap).collect::<Vec<_>>()),
        _ => None,
    });
    assert_eq!(
        seq_adj,
        Some(vec![
            SeqAdjAttr::CorrectionPos(7),
            SeqAdjAttr::OffsetBefore(0),
            SeqAdjAttr::OffsetAfter(2)
        ])
    );
}

fn message_of(bytes: &[u8]) -> CtMessage<'_> {
    let Some(Ok(Message::Conntrack(message))) = Datagram::new(bytes).next() else {
        panic!("not conntrack")
    };
    message
}
