//! Differential tests against netlink-packet-netfilter 0.4 (a dev-dependency, used only as an
//! oracle): on the same kernel bytes, both decoders must agree on everything the oracle models
//! (message type, family, tuples without ICMP, status, timeout, mark, TCP protocol info), and on
//! the attributes it keeps raw (id, zone, use) once their bytes are read by hand. Then the
//! oracle's own encoding of each message must parse here to the same entry.

use std::net::IpAddr;

use netlink_packet_core::{Emitable, NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::NetfilterMessage;
use netlink_packet_netfilter::NetfilterMessageInner;
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoInfo, ProtoInfoTCP, ProtoTuple,
    Tuple as OracleTuple,
};

use crate::fixtures::ALL;
use crate::*;

/// TCP state, window scales and flags (original, reply), as numbers.
type TcpNumbers = (u8, Option<u8>, Option<u8>, Option<u8>, Option<u8>);

/// What the oracle says about one message, in this crate's terms.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    kind: Option<MessageKind>,
    family: u8,
    orig: Option<(IpAddr, IpAddr, u8, u16, u16)>,
    reply: Option<(IpAddr, IpAddr, u8, u16, u16)>,
    status: Option<u32>,
    timeout: Option<u32>,
    mark: Option<u32>,
    tcp: Option<TcpNumbers>,
    id: Option<u32>,
    zone: Option<u16>,
    use_count: Option<u32>,
}

fn oracle_tuple(parts: &[OracleTuple]) -> (IpAddr, IpAddr, u8, u16, u16) {
    let unspecified = IpAddr::from([0, 0, 0, 0]);
    let (mut src, mut dst, mut proto, mut src_port, mut dst_port) =
        (unspecified, unspecified, 0, 0, 0);
    for part in parts {
        match part {
            OracleTuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(addr) => src = *addr,
                        IPTuple::DestinationAddress(addr) => dst = *addr,
                        other => panic!("oracle: {other:?}"),
                    }
                }
            }
            OracleTuple::Proto(protos) => {
                for item in protos {
                    match item {
                        ProtoTuple::Protocol(protocol) => proto = u8::from(*protocol),
                        ProtoTuple::SourcePort(port) => src_port = *port,
                        ProtoTuple::DestinationPort(port) => dst_port = *port,
                        // ICMP id/type/code: not modelled by the oracle.
                        _ => {}
                    }
                }
            }
            other => panic!("oracle: {other:?}"),
        }
    }
    (src, dst, proto, src_port, dst_port)
}

/// The value bytes of an attribute the oracle keeps raw.
fn raw_value(attr: &impl Emitable) -> Vec<u8> {
    let mut bytes = vec![0; attr.buffer_len()];
    attr.emit(&mut bytes);
    let length = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
    bytes[4..length].to_vec()
}

fn oracle(bytes: &[u8]) -> Seen {
    let message = NetlinkMessage::<NetfilterMessage>::deserialize(bytes).unwrap();
    let NetlinkPayload::InnerMessage(inner) = message.payload else {
        panic!("oracle: not a netfilter message")
    };
    let mut seen = Seen { family: u8::from(inner.header.family), ..Seen::default() };
    let NetfilterMessageInner::Conntrack(conntrack) = inner.inner else {
        panic!("oracle: not conntrack")
    };
    let attrs = match conntrack {
        ConntrackMessage::New(attrs) => {
            seen.kind = Some(MessageKind::New);
            attrs
        }
        ConntrackMessage::Delete(attrs) => {
            seen.kind = Some(MessageKind::Delete);
            attrs
        }
        other => panic!("oracle: {other:?}"),
    };
    for attr in &attrs {
        match attr {
            ConntrackAttribute::CtaTupleOrig(parts) => seen.orig = Some(oracle_tuple(parts)),
            ConntrackAttribute::CtaTupleReply(parts) => seen.reply = Some(oracle_tuple(parts)),
            ConntrackAttribute::CtaStatus(status) => seen.status = Some(status.bits()),
            ConntrackAttribute::CtaTimeout(timeout) => seen.timeout = Some(*timeout),
            ConntrackAttribute::CtaMark(mark) => seen.mark = Some(*mark),
            ConntrackAttribute::CtaProtoInfo(infos) => {
                for info in infos {
                    let ProtoInfo::TCP(tcp) = info else { continue };
                    let mut state = (0, None, None, None, None);
                    for item in tcp {
                        match item {
                            ProtoInfoTCP::State(value) => state.0 = *value,
                            ProtoInfoTCP::OriginalWindowScale(value) => state.1 = Some(*value),
                            ProtoInfoTCP::ReplyWindowScale(value) => state.2 = Some(*value),
                            ProtoInfoTCP::OriginalFlags(flags) => state.3 = Some(flags.flags),
                            ProtoInfoTCP::ReplyFlags(flags) => state.4 = Some(flags.flags),
                            other => panic!("oracle: {other:?}"),
                        }
                    }
                    seen.tcp = Some(state);
                }
            }
            ConntrackAttribute::Other(nla) => {
                let value = raw_value(nla);
                match netlink_packet_core::Nla::kind(nla) {
                    11 => seen.use_count = Some(u32::from_be_bytes(value.try_into().unwrap())),
                    12 => seen.id = Some(u32::from_be_bytes(value.try_into().unwrap())),
                    18 => seen.zone = Some(u16::from_be_bytes(value.try_into().unwrap())),
                    _ => {}
                }
            }
            other => panic!("oracle: {other:?}"),
        }
    }
    seen
}

fn ours(message: &CtMessage<'_>) -> Seen {
    let ct = Conntrack::from_message(message).unwrap();
    let tuple = |tuple: Tuple| (tuple.src, tuple.dst, tuple.proto, tuple.src_port, tuple.dst_port);
    let has =
        |wanted: fn(&Attr<'_>) -> bool| message.attrs().iter().any(|attr| wanted(&attr.unwrap()));
    Seen {
        kind: Some(message.kind()),
        family: message.family(),
        orig: Some(tuple(ct.orig)),
        reply: Some(tuple(ct.reply)),
        status: has(|attr| matches!(attr, Attr::Status(_))).then_some(ct.status.bits()),
        timeout: ct.timeout,
        mark: ct.mark,
        tcp: ct.tcp.map(|tcp| {
            let flags = |flags: Option<TcpFlags>| flags.map(|flags| flags.bits());
            (
                u8::from(tcp.state),
                tcp.orig_wscale,
                tcp.reply_wscale,
                flags(tcp.orig_flags),
                flags(tcp.reply_flags),
            )
        }),
        id: ct.id,
        zone: has(|attr| matches!(attr, Attr::Zone(_))).then_some(ct.zone),
        use_count: ct.use_count,
    }
}

/// Each conntrack message of every fixture, as its own bytes.
fn each_message(mut check: impl FnMut(&str, &[u8], CtMessage<'_>)) -> usize {
    let mut checked = 0;
    for fixture in ALL {
        let bytes = fixture.bytes();
        let mut offset = 0;
        for message in Datagram::new(&bytes) {
            let length = u32::from_ne_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
            if let Message::Conntrack(message) = message.unwrap() {
                check(fixture.name, &bytes[offset..offset + length], message);
                checked += 1;
            }
            offset += length.next_multiple_of(4);
        }
    }
    checked
}

#[test]
fn both_decoders_agree_on_every_captured_message() {
    let checked =
        each_message(|name, bytes, message| assert_eq!(ours(&message), oracle(bytes), "{name}"));
    assert_eq!(checked, 30);
}

#[test]
fn the_oracles_encoding_parses_to_the_same_entry() {
    each_message(|name, bytes, message| {
        let decoded = NetlinkMessage::<NetfilterMessage>::deserialize(bytes).unwrap();
        let mut reencoded = vec![0; decoded.buffer_len()];
        decoded.serialize(&mut reencoded);
        let Some(Ok(Message::Conntrack(again))) = Datagram::new(&reencoded).next() else {
            panic!("{name}")
        };
        assert_eq!(Conntrack::from_message(&again), Conntrack::from_message(&message), "{name}");
    });
}
