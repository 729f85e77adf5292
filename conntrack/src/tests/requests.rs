//! Request builders: exact bytes, and what the parser reads back from them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};
use proptest::prelude::*;

use crate::*;

fn only_message(bytes: &[u8]) -> CtMessage<'_> {
    let messages: Vec<_> = Datagram::new(bytes).map(Result::unwrap).collect();
    let [Message::Conntrack(message)] = messages[..] else { panic!("{messages:?}") };
    message
}

fn orig() -> Tuple {
    Tuple::new(Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into(), 6, 40000, 80)
}

#[test]
fn dump_request_bytes() {
    let mut out = Vec::new();
    request::dump(&mut out, None, 7);
    #[rustfmt::skip]
    let expected: [u8; 20] = [
        20, 0, 0, 0,      // nlmsg_len
        0x01, 0x01,       // IPCTNL_MSG_CT_GET of NFNL_SUBSYS_CTNETLINK
        0x01, 0x03,       // NLM_F_REQUEST | NLM_F_DUMP
        7, 0, 0, 0,       // seq
        0, 0, 0, 0,       // port
        0, 0, 0, 0,       // AF_UNSPEC, NFNETLINK_V0, res_id 0
    ];
    assert_eq!(out, expected);
    out.clear();
    request::dump(&mut out, Some(Family::Ipv6), 8);
    assert_eq!(out[16], 10);
    assert_eq!(only_message(&out).header().flags, NLM_F_REQUEST | NLM_F_DUMP);
}

#[test]
fn get_request_bytes() {
    let mut out = Vec::new();
    request::get(&mut out, &orig(), 0, 0x0102_0304);
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[72, 0, 0, 0, 0x01, 0x01, 0x01, 0x00, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0][..],
        &[2, 0, 0, 0],                            // AF_INET
        &[52, 0, 0x01, 0x80],                     // CTA_TUPLE_ORIG, nested
        &[20, 0, 0x01, 0x80],                     //   CTA_TUPLE_IP, nested
        &[8, 0, 1, 0, 10, 0, 0, 1],               //     CTA_IP_V4_SRC
        &[8, 0, 2, 0, 10, 0, 0, 2],               //     CTA_IP_V4_DST
        &[28, 0, 0x02, 0x80],                     //   CTA_TUPLE_PROTO, nested
        &[5, 0, 1, 0, 6, 0, 0, 0],                //     CTA_PROTO_NUM tcp, padded
        &[6, 0, 2, 0, 0x9c, 0x40, 0, 0],          //     CTA_PROTO_SRC_PORT 40000
        &[6, 0, 3, 0, 0, 80, 0, 0],               //     CTA_PROTO_DST_PORT 80
    ]
    .concat();
    assert_eq!(out, expected);
}

#[test]
fn update_is_a_new_without_create() {
    let mut out = Vec::new();
    let change = Update {
        timeout: Some(777),
        mark: Some(0x4000),
        status: Some(Status::from_bits_retain(1 << 16)),
    };
    request::update(&mut out, &orig(), 5, change, 9, true);
    let message = only_message(&out);
    assert_eq!(message.kind(), MessageKind::New);
    assert_eq!(
        message.header().flags,
        NLM_F_REQUEST | NLM_F_ACK,
        "no NLM_F_CREATE: never creates an entry"
    );
    assert_eq!(message.delivery(), Delivery::Request);
    let attrs: Vec<_> = message.attrs().iter().map(Result::unwrap).collect();
    let [
        Attr::TupleOrig(tuple),
        Attr::Zone(5),
        Attr::Timeout(777),
        Attr::Status(status),
        Attr::Mark(0x4000),
    ] = attrs[..]
    else {
        panic!("{attrs:?}")
    };
    assert_eq!(Tuple::from_nest(tuple), Ok(orig()));
    assert_eq!(status.bits(), 1 << 16);

    out.clear();
    request::update(
        &mut out,
        &orig(),
        0,
        Update { timeout: Some(30), ..Update::default() },
        10,
        false,
    );
    let message = only_message(&out);
    assert_eq!(message.header().flags, NLM_F_REQUEST);
    assert_eq!(message.attrs().iter().count(), 2, "tuple and timeout; zone 0 is not written");
}

#[test]
fn delete_names_tuple_zone_and_id() {
    let mut out = Vec::new();
    request::delete(&mut out, &orig(), 3, Some(0xdead_beef), 11);
    let message = only_message(&out);
    assert_eq!(message.kind(), MessageKind::Delete);
    assert_eq!(message.header().flags, NLM_F_REQUEST | NLM_F_ACK);
    let attrs: Vec<_> = message.attrs().iter().map(Result::unwrap).collect();
    assert!(
        matches!(attrs[..], [Attr::TupleOrig(_), Attr::Zone(3), Attr::Id(0xdead_beef)]),
        "{attrs:?}"
    );
}

#[test]
fn create_carries_what_the_kernel_requires() {
    let mut out = Vec::new();
    let entry = Create {
        status: Status::SEEN_REPLY | Status::ASSURED,
        mark: Some(42),
        zone: 7,
        tcp_state: Some(TcpState::Established),
        ..Create::new(orig(), 300)
    };
    request::create(&mut out, &entry, 12);
    let message = only_message(&out);
    assert_eq!(message.header().flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    let ct = Conntrack::from_message(&message).unwrap();
    assert_eq!((ct.orig, ct.reply), (orig(), orig().reversed()));
    assert_eq!((ct.timeout, ct.mark, ct.zone), (Some(300), Some(42), 7));
    assert_eq!(ct.status, entry.status | Status::CONFIRMED, "the kernel insists on CONFIRMED");
    assert_eq!(ct.tcp.map(|tcp| tcp.state), Some(TcpState::Established));
}

#[test]
fn builders_append_so_requests_batch_in_one_datagram() {
    let mut out = Vec::new();
    request::dump(&mut out, None, 1);
    request::get(&mut out, &orig(), 0, 2);
    request::delete(&mut out, &orig(), 0, None, 3);
    let seqs: Vec<u32> = Datagram::new(&out)
        .map(|message| match message.unwrap() {
            Message::Conntrack(message) => message.header().seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}

fn any_tuple() -> impl Strategy<Value = Tuple> {
    let v4 =
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d)));
    let v6 = (any::<[u8; 16]>(), any::<[u8; 16]>())
        .prop_map(|(s, d)| (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d))));
    let layer4 = prop_oneof![
        (
            prop_oneof![Just(6u8), Just(17), Just(132), Just(136), Just(33), Just(47)],
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(proto, sport, dport)| (proto, sport, dport, None)),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(id, kind, code)| (
            1,
            0,
            0,
            Some(Icmp { id, kind, code })
        )),
        (2u8..5).prop_map(|proto| (proto, 0, 0, None)),
    ];
    (prop_oneof![v4, v6], layer4, proptest::option::of(any::<u16>())).prop_map(
        |((src, dst), l4, zone)| {
            let (proto, src_port, dst_port, icmp) = l4;
            // ICMP over IPv6 is protocol 58.
            let proto = if icmp.is_some() && src.is_ipv6() { 58 } else { proto };
            Tuple { src, dst, proto, src_port, dst_port, icmp, zone }
        },
    )
}

proptest! {
    #[test]
    fn create_then_parse_gives_back_the_entry(
        orig in any_tuple(),
        timeout in any::<u32>(),
        status in any::<u32>(),
        mark in proptest::option::of(any::<u32>()),
        zone in any::<u16>(),
        seq in 1u32..,
    ) {
        let reply = Tuple { zone: orig.zone.map(|zone| zone ^ 1), ..orig.reversed() };
        let state = (orig.proto == 6).then_some(TcpState::Established);
        let entry = Create { orig, reply, timeout, status: Status::from_bits_retain(status), mark, zone, tcp_state: state };
        let mut out = Vec::new();
        request::create(&mut out, &entry, seq);
        let message = only_message(&out);
        prop_assert_eq!(message.header().seq, seq);
        let ct = Conntrack::from_message(&message).unwrap();
        prop_assert_eq!(ct.orig, orig);
        prop_assert_eq!(ct.reply, reply);
        let confirmed = status | Status::CONFIRMED.bits();
        prop_assert_eq!((ct.timeout, ct.status.bits(), ct.mark, ct.zone), (Some(timeout), confirmed, mark, zone));
        prop_assert_eq!(ct.tcp.map(|tcp| tcp.state), state);
        // And the view re-encodes to the very same bytes.
        let mut emitted = Vec::new();
        message.emit(&mut emitted).unwrap();
        prop_assert_eq!(emitted, out);
    }
}

/// The top-level attribute types of a request, in order.
fn kinds(bytes: &[u8]) -> Vec<u16> {
    only_message(bytes).raw_attrs().map(|raw| raw.unwrap().kind()).collect()
}

#[test]
fn permanent_requests_carry_status_and_id_and_nothing_else() {
    let mut out = Vec::new();
    request::set_permanent(&mut out, &orig(), 0, 0xdead_beef, PermanentBit::LINUX_6_12, 13, true);
    let message = only_message(&out);
    assert_eq!(message.kind(), MessageKind::New);
    assert_eq!(
        message.header().flags,
        NLM_F_REQUEST | NLM_F_ACK,
        "no NLM_F_EXCL (the kernel's condition) and no NLM_F_CREATE (never creates an entry)"
    );
    let attrs: Vec<_> = message.attrs().iter().map(Result::unwrap).collect();
    let [Attr::TupleOrig(tuple), Attr::Status(status), Attr::Id(0xdead_beef)] = attrs[..] else {
        panic!("{attrs:?}")
    };
    assert_eq!(Tuple::from_nest(tuple), Ok(orig()));
    assert_eq!(status.bits(), 1 << 16, "the bit alone");
    // The exact bytes after the tuple (CTA_TUPLE_ORIG is 52 bytes, see get_request_bytes).
    assert_eq!(out[20 + 52..], [8, 0, 3, 0, 0, 1, 0, 0, 8, 0, 12, 0, 0xde, 0xad, 0xbe, 0xef]);

    out.clear();
    request::set_permanent(&mut out, &orig(), 4, 7, PermanentBit::LINUX_5_4, 14, false);
    assert_eq!(only_message(&out).header().flags, NLM_F_REQUEST);
    let attrs: Vec<_> = only_message(&out).attrs().iter().map(Result::unwrap).collect();
    let [Attr::TupleOrig(_), Attr::Zone(4), Attr::Status(status), Attr::Id(7)] = attrs[..] else {
        panic!("{attrs:?}")
    };
    assert_eq!(status.bits(), 1 << 15);

    out.clear();
    request::clear_permanent(&mut out, &orig(), 0, 7, 15, true);
    let attrs: Vec<_> = only_message(&out).attrs().iter().map(Result::unwrap).collect();
    let [Attr::TupleOrig(_), Attr::Status(status), Attr::Id(7)] = attrs[..] else {
        panic!("{attrs:?}")
    };
    assert_eq!(status, Status::empty(), "status 0: no bit to know");
}

#[test]
fn the_keepalive_refresh_is_the_tuple_and_a_timeout() {
    use crate::consts::{CTA_TIMEOUT, CTA_TUPLE_ORIG};
    // What the daemon sends to keep an offloaded entry alive: never CTA_STATUS, never CTA_ID
    // (with both, an ASK kernel would clear IPS_PERMANENT and ignore the timeout).
    let mut out = Vec::new();
    let refresh = Update { timeout: Some(300), ..Update::default() };
    request::update(&mut out, &orig(), 0, refresh, 15, false);
    assert_eq!(kinds(&out), [CTA_TUPLE_ORIG, CTA_TIMEOUT]);
    out.clear();
    request::update(&mut out, &orig(), 9, refresh, 16, false);
    let attrs: Vec<_> = only_message(&out).attrs().iter().map(Result::unwrap).collect();
    assert!(matches!(attrs[..], [Attr::TupleOrig(_), Attr::Zone(9), Attr::Timeout(300)]));
}

proptest! {
    #[test]
    fn no_update_carries_an_id(
        timeout in proptest::option::of(any::<u32>()),
        mark in proptest::option::of(any::<u32>()),
        status in proptest::option::of(any::<u32>()),
        zone in any::<u16>(),
        ack in any::<bool>(),
    ) {
        let change = Update { timeout, mark, status: status.map(Status::from_bits_retain) };
        let mut out = Vec::new();
        request::update(&mut out, &orig(), zone, change, 1, ack);
        prop_assert!(!kinds(&out).contains(&crate::consts::CTA_ID));
        prop_assert!(only_message(&out).attrs().iter().all(|attr| !matches!(attr, Ok(Attr::Id(_)))));
    }
}
