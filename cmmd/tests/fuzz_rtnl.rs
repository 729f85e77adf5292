//! Bounded fuzzing of the rtnetlink messages cmmd decodes (`cmmd::edge::rtnl::decode`) and of the
//! requests it builds.
//!
//! The messages are encoded here from the kernel's ABI (`nlmsghdr`, `ifinfomsg`, `ifaddrmsg`,
//! `ndmsg`, `rtmsg`, `fib_rule_hdr`, `rtattr`), independently of the `netlink-packet-route`
//! crate the decoder uses, so the properties check the decoder against the ABI:
//!
//! - datagrams of valid messages decode to exactly the values they were built from, in order;
//! - a malformed message is skipped and counted, and the messages around it still decode;
//! - any bytes at all, and any corruption of valid datagrams, decode without a panic;
//! - the route lookup and dump requests cmmd sends say what they mean.
//!
//! `CMM_FUZZ_CASES` sets the cases per property (default 1024).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cmmd::core::net::{IfName, Link, Mac, Neighbour};
use cmmd::core::policy::Cidr;
use cmmd::core::route::{RouteInfo, RouteKey, RouteKind};
use cmmd::edge::rtnl::{self, DumpKind, RtnlMsg};
use proptest::prelude::*;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;
const RTM_NEWRULE: u16 = 32;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const IFF_NOARP: u32 = 0x80;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_IIF: u16 = 3;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_METRICS: u16 = 8;
const RTA_MARK: u16 = 16;
const RTAX_MTU: u16 = 2;

fn cases() -> u32 {
    std::env::var("CMM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024)
}

/// One `rtattr`, padded to 4 bytes.
fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
    let len = 4 + data.len();
    let mut out = Vec::with_capacity(len.next_multiple_of(4));
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(len.next_multiple_of(4), 0);
    out
}

fn ip_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { AF_INET } else { AF_INET6 }
}

/// A netlink message: header, fixed part, attributes.
fn message(kind: u16, flags: u16, seq: u32, fixed: &[u8], attrs: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = fixed.iter().copied().chain(attrs.concat()).collect();
    let len = 16 + body.len();
    let mut out = Vec::with_capacity(len.next_multiple_of(4));
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&body);
    out.resize(len.next_multiple_of(4), 0);
    out
}

/// A message to encode and what cmmd must make of it.
#[derive(Clone, Debug)]
enum Msg {
    Link {
        index: u32,
        name: String,
        mtu: u32,
        up: bool,
        running: bool,
        noarp: bool,
        gone: bool,
    },
    Address {
        index: u32,
        addr: IpAddr,
        added: bool,
    },
    Neighbour {
        index: u32,
        addr: IpAddr,
        mac: Option<[u8; 6]>,
        state: u16,
        gone: bool,
    },
    Route {
        seq: u32,
        dst: IpAddr,
        len: u8,
        oif: u32,
        gateway: Option<IpAddr>,
        mtu: u32,
        gone: bool,
    },
    Rule,
    Done {
        seq: u32,
    },
    Error {
        seq: u32,
        errno: i32,
    },
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Link { index, name, mtu, up, running, noarp, gone } => {
                let flags = [(*up, IFF_UP), (*running, IFF_RUNNING), (*noarp, IFF_NOARP)]
                    .iter()
                    .filter(|(set, _)| *set)
                    .fold(0, |flags, (_, bit)| flags | bit);
                let mut fixed = vec![0u8, 0, 1, 0];
                fixed.extend_from_slice(&index.to_ne_bytes());
                fixed.extend_from_slice(&flags.to_ne_bytes());
                fixed.extend_from_slice(&0u32.to_ne_bytes());
                let mut nul_name = name.clone().into_bytes();
                nul_name.push(0);
                let attrs = [attr(3, &nul_name), attr(4, &mtu.to_ne_bytes())];
                message(if *gone { RTM_DELLINK } else { RTM_NEWLINK }, 0, 0, &fixed, &attrs)
            }
            Msg::Address { index, addr, added } => {
                let len = if addr.is_ipv4() { 24 } else { 64 };
                let mut fixed = vec![family(*addr), len, 0, 0];
                fixed.extend_from_slice(&index.to_ne_bytes());
                let kind = if addr.is_ipv4() { 2 } else { 1 }; // IFA_LOCAL, IFA_ADDRESS
                let attrs = [attr(kind, &ip_bytes(*addr))];
                message(if *added { RTM_NEWADDR } else { RTM_DELADDR }, 0, 0, &fixed, &attrs)
            }
            Msg::Neighbour { index, addr, mac, state, gone } => {
                let mut fixed = vec![family(*addr), 0, 0, 0];
                fixed.extend_from_slice(&index.to_ne_bytes());
                fixed.extend_from_slice(&state.to_ne_bytes());
                fixed.extend_from_slice(&[0, 0]);
                let mut attrs = vec![attr(1, &ip_bytes(*addr))];
                if let Some(mac) = mac {
                    attrs.push(attr(2, mac));
                }
                message(if *gone { RTM_DELNEIGH } else { RTM_NEWNEIGH }, 0, 0, &fixed, &attrs)
            }
            Msg::Route { seq, dst, len, oif, gateway, mtu, gone } => {
                let mut fixed = vec![family(*dst), *len, 0, 0, 254, 3, 0, RTN_UNICAST];
                fixed.extend_from_slice(&0u32.to_ne_bytes());
                let mut attrs =
                    vec![attr(RTA_DST, &ip_bytes(*dst)), attr(RTA_OIF, &oif.to_ne_bytes())];
                if let Some(gateway) = gateway {
                    attrs.push(attr(RTA_GATEWAY, &ip_bytes(*gateway)));
                }
                if *mtu != 0 {
                    attrs.push(attr(RTA_METRICS, &attr(RTAX_MTU, &mtu.to_ne_bytes())));
                }
                message(if *gone { RTM_DELROUTE } else { RTM_NEWROUTE }, 0, *seq, &fixed, &attrs)
            }
            Msg::Rule => {
                message(RTM_NEWRULE, 0, 0, &[AF_INET, 0, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0], &[])
            }
            Msg::Done { seq } => message(NLMSG_DONE, 2, *seq, &0i32.to_ne_bytes(), &[]),
            Msg::Error { seq, errno } => {
                let mut fixed = (-errno).to_ne_bytes().to_vec();
                fixed.extend_from_slice(&message(RTM_GETROUTE, NLM_F_REQUEST, *seq, &[], &[]));
                message(NLMSG_ERROR, 0, *seq, &fixed, &[])
            }
        }
    }

    fn expected(&self) -> RtnlMsg {
        match self.clone() {
            Msg::Link { index, gone: true, .. } => RtnlMsg::LinkGone(index),
            Msg::Link { index, name, mtu, up, running, noarp, gone: false } => {
                RtnlMsg::Link(Link {
                    noarp,
                    ..Link::plain(index, IfName::new(&name).unwrap(), up && running, mtu)
                })
            }
            Msg::Address { index, addr, added } => RtnlMsg::Address { ifindex: index, addr, added },
            Msg::Neighbour { index, addr, gone: true, .. } => {
                RtnlMsg::NeighbourGone { ifindex: index, addr }
            }
            Msg::Neighbour { index, addr, mac, state, gone: false } => {
                RtnlMsg::Neighbour(Neighbour { ifindex: index, addr, mac: mac.map(Mac), state })
            }
            Msg::Route { seq, dst, len, oif, gateway, mtu, gone } => RtnlMsg::Route {
                seq,
                info: RouteInfo { kind: RouteKind::Unicast, oif, gateway, mtu },
                prefix: Cidr::new(dst, len).unwrap(),
                deleted: gone,
            },
            Msg::Rule => RtnlMsg::Rule,
            Msg::Done { seq } => RtnlMsg::Done { seq },
            Msg::Error { seq, errno } => RtnlMsg::Error { seq, errno },
        }
    }
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

/// A prefix with its host bits cleared, as the kernel reports routes.
fn prefix() -> impl Strategy<Value = (IpAddr, u8)> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from(a & mask)), len)
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(a, len)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            (IpAddr::V6(Ipv6Addr::from(a & mask)), len)
        }),
    ]
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        (1u32..1 << 20, "[a-z][a-z0-9.-]{0,14}", any::<u32>(), any::<[bool; 4]>()).prop_map(
            |(index, name, mtu, [up, running, noarp, gone])| Msg::Link {
                index,
                name,
                mtu,
                up,
                running,
                noarp,
                gone
            }
        ),
        (1u32..1 << 20, addr(), any::<bool>()).prop_map(|(index, addr, added)| Msg::Address {
            index,
            addr,
            added
        }),
        (
            1u32..1 << 20,
            addr(),
            proptest::option::of(any::<[u8; 6]>()),
            any::<u16>(),
            any::<bool>()
        )
            .prop_map(|(index, addr, mac, state, gone)| Msg::Neighbour {
                index,
                addr,
                mac,
                state,
                gone
            }),
        (any::<u32>(), prefix(), any::<u32>(), any::<bool>(), any::<u32>(), any::<bool>())
            .prop_map(|(seq, (dst, len), oif, via, mtu, gone)| {
                // A gateway of the route's own family.
                let gateway = via.then(|| match dst {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(oif)),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::from(oif) << 64 | 1)),
                });
                Msg::Route { seq, dst, len, oif, gateway, mtu, gone }
            }),
        Just(Msg::Rule),
        any::<u32>().prop_map(|seq| Msg::Done { seq }),
        (any::<u32>(), 1i32..4096).prop_map(|(seq, errno)| Msg::Error { seq, errno }),
    ]
}

fn decode(bytes: &[u8]) -> (Vec<RtnlMsg>, usize) {
    let mut out = Vec::new();
    let skipped = rtnl::decode(bytes, &mut out);
    (out, skipped)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn valid_datagrams_decode_to_what_they_were_built_from(msgs in prop::collection::vec(msg(), 1..8)) {
        let datagram: Vec<u8> = msgs.iter().flat_map(Msg::encode).collect();
        let expected: Vec<RtnlMsg> = msgs.iter().map(Msg::expected).collect();
        let (out, skipped) = decode(&datagram);
        prop_assert_eq!(skipped, 0);
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn a_malformed_message_is_skipped_and_its_neighbours_still_decode(
        before in msg(),
        after in msg(),
        kind in prop::sample::select(&[RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH][..]),
        body in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        // A message too short for its fixed header: its length is right, its payload is not.
        let bad = message(kind, 0, 0, &body, &[]);
        let datagram = [before.encode(), bad, after.encode()].concat();
        let (out, skipped) = decode(&datagram);
        prop_assert_eq!(skipped, 1);
        prop_assert_eq!(out, vec![before.expected(), after.expected()]);
    }

    #[test]
    fn corrupted_datagrams_decode_without_panic(
        msgs in prop::collection::vec(msg(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut datagram: Vec<u8> = msgs.iter().flat_map(Msg::encode).collect();
        for (at, byte) in &flips {
            let i = at.index(datagram.len());
            datagram[i] = *byte;
        }
        let (out, _) = decode(&datagram);
        prop_assert!(out.len() <= datagram.len() / 16, "at most one value per header");
        let cut = cut.index(datagram.len() + 1);
        let _ = decode(&datagram[..cut]);
    }

    #[test]
    fn arbitrary_bytes_decode_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (out, _) = decode(&bytes);
        prop_assert!(out.len() <= bytes.len() / 16);
    }

    #[test]
    fn arbitrary_bytes_behind_valid_headers_decode_without_panic(
        kind in 0u16..40,
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..128), 1..4),
    ) {
        let datagram: Vec<u8> = bodies.iter().map(|b| message(kind, 0, 0, b, &[])).collect::<Vec<_>>().concat();
        let (out, skipped) = decode(&datagram);
        prop_assert!(out.len() + skipped <= bodies.len() + 1);
    }

    #[test]
    fn route_lookups_ask_for_the_destination_source_input_and_mark(
        seq in 1u32..,
        dst in addr(),
        src in prop::option::of(any::<u128>()),
        iif in prop_oneof![Just(0u32), any::<u32>()],
        mark in any::<u32>(),
    ) {
        // The source is of the destination's family.
        let src = src.map(|bits| match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
        });
        let bytes = rtnl::route_lookup(seq, &RouteKey { dst, src, iif, mark });
        let full = if dst.is_ipv4() { 32 } else { 128 };
        let src_len = if src.is_some() { full } else { 0 };
        let mut fixed = vec![family(dst), full, src_len, 0, 0, 0, 0, 0];
        fixed.extend_from_slice(&0u32.to_ne_bytes());
        let mut attrs = vec![attr(RTA_DST, &ip_bytes(dst))];
        if let Some(src) = src {
            attrs.push(attr(RTA_SRC, &ip_bytes(src)));
        }
        if iif != 0 {
            attrs.push(attr(RTA_IIF, &iif.to_ne_bytes()));
        }
        if mark != 0 {
            attrs.push(attr(RTA_MARK, &mark.to_ne_bytes()));
        }
        prop_assert_eq!(bytes, message(RTM_GETROUTE, NLM_F_REQUEST, seq, &fixed, &attrs));
    }
}

#[test]
fn dump_requests_ask_for_every_link_address_and_neighbour() {
    for (kind, message_type) in [
        (DumpKind::Links, RTM_GETLINK),
        (DumpKind::Addresses, RTM_GETADDR),
        (DumpKind::Neighbours, RTM_GETNEIGH),
    ] {
        let bytes = rtnl::dump_request(kind, 77);
        let header = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
        assert_eq!(u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len());
        assert_eq!(header(4), message_type, "{kind:?}");
        assert_eq!(header(6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 77);
        assert!(bytes[16..].iter().all(|b| *b == 0), "no filter: every family, every entry");
    }
}

/// cargo-fuzz finding (`rtnl` target): an `NLMSG_ERROR` whose code is `i32::MIN` made the
/// decoder negate it with overflow (a panic in debug builds).
#[test]
fn an_error_code_that_cannot_be_negated_decodes_without_overflow() {
    let mut fixed = i32::MIN.to_ne_bytes().to_vec();
    fixed.extend_from_slice(&message(RTM_GETROUTE, NLM_F_REQUEST, 9, &[], &[]));
    let (out, skipped) = decode(&message(NLMSG_ERROR, 0, 9, &fixed, &[]));
    assert_eq!((out, skipped), (vec![RtnlMsg::Error { seq: 9, errno: i32::MAX }], 0));
}
