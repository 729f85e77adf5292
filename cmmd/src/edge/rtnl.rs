//! rtnetlink: the kernel's links, addresses, neighbours, routes and rules, as engine inputs.
//!
//! Two layers, kept apart so the decoding can be tested and fuzzed without a kernel:
//! - [`decode`] turns one datagram into [`RtnlMsg`]s (pure; bad input is skipped and counted,
//!   never a panic), and the request builders produce the bytes of RTM_GETROUTE lookups and
//!   dumps;
//! - [`NlSocket`] is a non-blocking NETLINK_ROUTE socket that is never cloned; the daemon
//!   opens three: one subscribed to the multicast groups, one for route lookups (answers
//!   matched by sequence number), one for dumps (one at a time, as the kernel requires per
//!   socket).
//!
//! Messages are parsed with `netlink-packet-route` (owned values): route, neighbour and link
//! events arrive at a rate where its allocations do not matter, unlike conntrack events.
//!
//! Links carry what the fast path needs of their layer 2: the kind (`IFLA_LINKINFO`: bridge,
//! VLAN with its id and parent `IFLA_LINK`; PPP by link type), the bridge they are a port of
//! (`IFLA_MASTER`) and their MAC. Bridge forwarding entries are `AF_BRIDGE` neighbours (their
//! own dump, `PF_BRIDGE`'s `RTM_GETNEIGH`; their events come in `RTNLGRP_NEIGH` with the
//! others): an entry counts when it names its bridge (`NDA_MASTER`) and is not the bridge's own
//! address (`NUD_PERMANENT`, the kernel's `is_local`).

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage,
};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::core::net::{FdbEntry, IfName, Link, LinkKind, Mac, Neighbour, nud};
use crate::core::policy::Cidr;
use crate::core::route::{RouteInfo, RouteKey, RouteKind};

/// One decoded rtnetlink message, in engine terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RtnlMsg {
    /// RTM_NEWLINK.
    Link(Link),
    /// RTM_DELLINK.
    LinkGone(u32),
    /// RTM_NEWADDR / RTM_DELADDR.
    Address {
        /// Interface index.
        ifindex: u32,
        /// The local address.
        addr: IpAddr,
        /// Added (true) or removed.
        added: bool,
    },
    /// RTM_NEWNEIGH.
    Neighbour(Neighbour),
    /// RTM_DELNEIGH.
    NeighbourGone {
        /// Interface index.
        ifindex: u32,
        /// Protocol address.
        addr: IpAddr,
    },
    /// RTM_NEWNEIGH of `AF_BRIDGE`: a bridge forwarding entry.
    Fdb(FdbEntry),
    /// RTM_DELNEIGH of `AF_BRIDGE`.
    FdbGone(FdbEntry),
    /// RTM_NEWROUTE / RTM_DELROUTE: an answer to a lookup (sequence number set) or a change.
    Route {
        /// Sequence number of the request it answers (0 for events).
        seq: u32,
        /// The route.
        info: RouteInfo,
        /// Destination prefix.
        prefix: Cidr,
        /// RTM_DELROUTE.
        deleted: bool,
    },
    /// RTM_NEWRULE / RTM_DELRULE: policy routing changed.
    Rule,
    /// End of a dump.
    Done {
        /// Sequence number of the dump.
        seq: u32,
    },
    /// NLMSG_ERROR with a non-zero code (positive errno) or an ACK (errno 0).
    Error {
        /// Sequence number of the request.
        seq: u32,
        /// Positive errno, 0 for an ACK.
        errno: i32,
    },
}

fn family_addr_len(family: AddressFamily) -> Option<u8> {
    match family {
        AddressFamily::Inet => Some(32),
        AddressFamily::Inet6 => Some(128),
        _ => None,
    }
}

fn link(msg: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut mtu = 0;
    let mut master = 0;
    let mut parent = 0;
    let mut mac = None;
    let mut kind = None;
    let mut vlan_id = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = IfName::new(n),
            LinkAttribute::Mtu(m) => mtu = *m,
            LinkAttribute::Controller(m) => master = *m,
            LinkAttribute::Link(l) => parent = *l,
            LinkAttribute::Address(a) => mac = <[u8; 6]>::try_from(a.as_slice()).ok().map(Mac),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => kind = Some(k.clone()),
                        LinkInfo::Data(InfoData::Vlan(vlan)) => {
                            vlan_id = vlan.iter().find_map(|v| match v {
                                InfoVlan::Id(id) => Some(*id),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let kind = match (kind, vlan_id) {
        (Some(InfoKind::Bridge), _) => LinkKind::Bridge,
        (Some(InfoKind::Vlan), Some(id)) if parent != 0 => LinkKind::Vlan { id, parent },
        _ if msg.header.link_layer_type == LinkLayerType::Ppp => LinkKind::Ppp,
        _ => LinkKind::Plain,
    };
    let flags = msg.header.flags;
    Some(Link {
        index: msg.header.index,
        name: name?,
        up: flags.contains(LinkFlags::Up)
            && (flags.contains(LinkFlags::LowerUp) || flags.contains(LinkFlags::Running)),
        mtu,
        noarp: flags.contains(LinkFlags::Noarp),
        kind,
        master,
        mac,
    })
}

/// A bridge forwarding entry, if the message is one that names its bridge and is not the
/// bridge's own address.
fn fdb_entry(msg: &NeighbourMessage) -> Option<FdbEntry> {
    if msg.header.family != AddressFamily::Bridge
        || u16::from(msg.header.state) & nud::PERMANENT != 0
    {
        return None;
    }
    let mut bridge = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Controller(b) => bridge = Some(*b),
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(Mac);
            }
            _ => {}
        }
    }
    Some(FdbEntry { bridge: bridge?, port: msg.header.ifindex, mac: mac? })
}

fn address(msg: &AddressMessage) -> Option<IpAddr> {
    let mut local = None;
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    local.or(address)
}

fn neighbour(msg: &NeighbourMessage) -> Option<Neighbour> {
    family_addr_len(msg.header.family)?;
    let mut addr = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                addr = Some(IpAddr::V4(*a))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                addr = Some(IpAddr::V6(*a));
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(Mac);
            }
            _ => {}
        }
    }
    Some(Neighbour {
        ifindex: msg.header.ifindex,
        addr: addr?,
        mac,
        state: u16::from(msg.header.state),
    })
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route(msg: &RouteMessage) -> Option<(RouteInfo, Cidr)> {
    let unspecified = match msg.header.address_family {
        AddressFamily::Inet => IpAddr::from([0u8; 4]),
        AddressFamily::Inet6 => IpAddr::from([0u16; 8]),
        _ => return None,
    };
    let mut dst = None;
    let mut oif = 0;
    let mut gateway = None;
    let mut mtu = 0;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = route_addr(a),
            RouteAttribute::Oif(i) => oif = *i,
            RouteAttribute::Gateway(a) => gateway = route_addr(a),
            RouteAttribute::Metrics(metrics) => {
                for m in metrics {
                    if let RouteMetric::Mtu(v) = m {
                        mtu = *v;
                    }
                }
            }
            _ => {}
        }
    }
    let kind = RouteKind::from_rtm_type(u8::from(msg.header.kind));
    let prefix = Cidr::new(dst.unwrap_or(unspecified), msg.header.destination_prefix_length)?;
    Some((RouteInfo { kind, oif, gateway, mtu }, prefix))
}

fn convert(seq: u32, msg: RouteNetlinkMessage, out: &mut Vec<RtnlMsg>) {
    match msg {
        RouteNetlinkMessage::NewLink(m) => out.extend(link(&m).map(RtnlMsg::Link)),
        RouteNetlinkMessage::DelLink(m) => out.push(RtnlMsg::LinkGone(m.header.index)),
        RouteNetlinkMessage::NewNeighbour(m) if m.header.family == AddressFamily::Bridge => {
            out.extend(fdb_entry(&m).map(RtnlMsg::Fdb));
        }
        RouteNetlinkMessage::DelNeighbour(m) if m.header.family == AddressFamily::Bridge => {
            out.extend(fdb_entry(&m).map(RtnlMsg::FdbGone));
        }
        RouteNetlinkMessage::NewNeighbour(m) => out.extend(neighbour(&m).map(RtnlMsg::Neighbour)),
        RouteNetlinkMessage::DelNeighbour(m) => {
            out.extend(
                neighbour(&m).map(|n| RtnlMsg::NeighbourGone { ifindex: n.ifindex, addr: n.addr }),
            );
        }
        // Cached clones (PMTU exceptions) are not route changes; but the answer to a lookup
        // (seq != 0) is a clone too and must be kept.
        RouteNetlinkMessage::NewRoute(m) | RouteNetlinkMessage::DelRoute(m)
            if seq == 0 && m.header.flags.contains(RouteFlags::Cloned) => {}
        RouteNetlinkMessage::NewRoute(m) => {
            out.extend(route(&m).map(|(info, prefix)| RtnlMsg::Route {
                seq,
                info,
                prefix,
                deleted: false,
            }));
        }
        RouteNetlinkMessage::DelRoute(m) => {
            out.extend(route(&m).map(|(info, prefix)| RtnlMsg::Route {
                seq,
                info,
                prefix,
                deleted: true,
            }));
        }
        RouteNetlinkMessage::NewRule(_) | RouteNetlinkMessage::DelRule(_) => {
            out.push(RtnlMsg::Rule)
        }
        _ => {}
    }
}

/// Decode every message of one datagram. Malformed messages are skipped; the number skipped
/// is returned.
pub fn decode(datagram: &[u8], out: &mut Vec<RtnlMsg>) -> usize {
    let mut skipped = 0;
    let mut offset = 0;
    while offset < datagram.len() {
        let rest = &datagram[offset..];
        let Ok(buf) = NetlinkBuffer::new_checked(rest) else {
            return skipped + 1;
        };
        let len = buf.length() as usize;
        let seq = buf.sequence_number();
        let one = &rest[..len.min(rest.len())];
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(one) {
            Ok(msg) => match msg.payload {
                NetlinkPayload::InnerMessage(inner) => match inner {
                    RouteNetlinkMessage::NewAddress(m) => {
                        if let Some(addr) = address(&m) {
                            out.push(RtnlMsg::Address {
                                ifindex: m.header.index,
                                addr,
                                added: true,
                            });
                        }
                    }
                    RouteNetlinkMessage::DelAddress(m) => {
                        if let Some(addr) = address(&m) {
                            out.push(RtnlMsg::Address {
                                ifindex: m.header.index,
                                addr,
                                added: false,
                            });
                        }
                    }
                    other => convert(seq, other, out),
                },
                NetlinkPayload::Done(_) => out.push(RtnlMsg::Done { seq }),
                NetlinkPayload::Error(e) => {
                    // Kernel errors are small negative numbers; anything else must not overflow.
                    let errno = e.code.map_or(0, |c| c.get().saturating_neg());
                    out.push(RtnlMsg::Error { seq, errno });
                }
                _ => {}
            },
            Err(_) => skipped += 1,
        }
        // Netlink messages are 4-byte aligned.
        let step = (len + 3) & !3;
        if step == 0 {
            return skipped + 1;
        }
        offset += step;
    }
    skipped
}

fn request(seq: u32, flags: u16, inner: RouteNetlinkMessage) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// The bytes of an RTM_GETROUTE for one key: what `ip route get DST [from SRC] [iif IIF]
/// [mark M]` sends. With an input interface the kernel routes as it routes a packet that came
/// in there (policy rules on `iif` and `from` apply, and forwarding is checked).
pub fn route_lookup(seq: u32, key: &RouteKey) -> Vec<u8> {
    let mut m = RouteMessage::default();
    let (family, len) = match key.dst {
        IpAddr::V4(_) => (AddressFamily::Inet, 32),
        IpAddr::V6(_) => (AddressFamily::Inet6, 128),
    };
    m.header.address_family = family;
    m.header.destination_prefix_length = len;
    m.header.table = RouteHeader::RT_TABLE_UNSPEC;
    m.header.kind = RouteType::Unspec;
    m.attributes.push(RouteAttribute::Destination(RouteAddress::from(key.dst)));
    if let Some(src) = key.src {
        m.header.source_prefix_length = len;
        m.attributes.push(RouteAttribute::Source(RouteAddress::from(src)));
    }
    if key.iif != 0 {
        m.attributes.push(RouteAttribute::Iif(key.iif));
    }
    if key.mark != 0 {
        m.attributes.push(RouteAttribute::Mark(key.mark));
    }
    request(seq, NLM_F_REQUEST, RouteNetlinkMessage::GetRoute(m))
}

/// What to dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpKind {
    /// All links.
    Links,
    /// All addresses.
    Addresses,
    /// All neighbours.
    Neighbours,
    /// All bridge forwarding entries (`AF_BRIDGE` neighbours).
    BridgeFdb,
}

/// The bytes of a dump request.
pub fn dump_request(kind: DumpKind, seq: u32) -> Vec<u8> {
    let flags = NLM_F_REQUEST | NLM_F_DUMP;
    let inner = match kind {
        DumpKind::Links => RouteNetlinkMessage::GetLink(LinkMessage::default()),
        DumpKind::Addresses => RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        DumpKind::Neighbours => RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
        DumpKind::BridgeFdb => {
            let mut m = NeighbourMessage::default();
            m.header.family = AddressFamily::Bridge;
            RouteNetlinkMessage::GetNeighbour(m)
        }
    };
    request(seq, flags, inner)
}

/// Outcome of a receive on a non-blocking socket.
#[derive(Debug)]
pub enum Recv {
    /// A datagram of this many bytes.
    Data(usize),
    /// Nothing to read.
    Empty,
    /// The socket overflowed: messages were lost.
    Overrun,
}

/// A non-blocking netlink socket that is never cloned (netlink-sys's `Socket` closes its fd
/// in `Drop` and derives `Clone`).
pub struct NlSocket(Socket);

impl NlSocket {
    /// Open a NETLINK_ROUTE socket (non-blocking), joined to `groups`.
    pub fn route(groups: &[u32]) -> io::Result<NlSocket> {
        NlSocket::open(NETLINK_ROUTE, groups)
    }

    /// Open a socket of `protocol` (non-blocking), joined to `groups`.
    pub fn open(protocol: isize, groups: &[u32]) -> io::Result<NlSocket> {
        let mut s = Socket::new(protocol)?;
        s.bind(&SocketAddr::new(0, 0))?;
        for g in groups {
            s.add_membership(*g)?;
        }
        s.set_non_blocking(true)?;
        Ok(NlSocket(s))
    }

    /// Set the receive buffer, beyond `rmem_max` when privileged; returns the effective size.
    /// The rule is every cmmd netlink socket's ([`conntrack::set_receive_buffer`]).
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<usize> {
        conntrack::set_receive_buffer(&self.0, bytes)
    }

    /// Send one request.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        self.0.send(bytes, 0).map(|_| ())
    }

    /// Receive one datagram into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Recv> {
        match self.0.recv(&mut &mut buf[..], 0) {
            Ok(n) => Ok(Recv::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Recv::Empty),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Recv::Overrun),
            Err(e) => Err(e),
        }
    }

    /// The underlying socket, for registration with mio.
    pub fn source(&mut self) -> &mut Socket {
        &mut self.0
    }
}

/// The multicast groups cmmd follows.
pub const GROUPS: [u32; 8] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_NEIGH,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV6_ROUTE,
    libc::RTNLGRP_IPV4_RULE,
    libc::RTNLGRP_IPV6_RULE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::neighbour::NeighbourState;

    fn emit(seq: u32, inner: RouteNetlinkMessage) -> Vec<u8> {
        request(seq, 0, inner)
    }

    #[test]
    fn a_receive_buffer_larger_than_the_kernel_holds_is_clamped_not_wrapped() {
        // The kernel doubles the size as an int. 4 GiB must give the largest buffer there is
        // (with CAP_NET_ADMIN) or net.core.rmem_max (without), never a wrapped, tiny one.
        let rmem_max: usize =
            std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap().trim().parse().unwrap();
        let socket = NlSocket::route(&[]).unwrap();
        let effective = socket.set_receive_buffer(1 << 32).unwrap();
        assert!(effective >= 2 * rmem_max.min(1 << 30), "{effective} bytes");
    }

    #[test]
    fn decodes_links_neighbours_addresses_routes() {
        let mut l = LinkMessage::default();
        l.header.index = 7;
        l.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        l.attributes.push(LinkAttribute::IfName("eth1".into()));
        l.attributes.push(LinkAttribute::Mtu(9000));
        let mut n = NeighbourMessage::default();
        n.header.family = AddressFamily::Inet;
        n.header.ifindex = 7;
        n.header.state = NeighbourState::Reachable;
        n.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            "10.2.0.2".parse().unwrap(),
        )));
        n.attributes.push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 9]));
        let mut a = AddressMessage::default();
        a.header.family = AddressFamily::Inet;
        a.header.index = 7;
        a.attributes.push(AddressAttribute::Local("10.2.0.1".parse().unwrap()));
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet;
        r.header.destination_prefix_length = 16;
        r.header.kind = RouteType::Unicast;
        r.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet("10.9.0.0".parse().unwrap())));
        r.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet("10.2.0.254".parse().unwrap())));
        r.attributes.push(RouteAttribute::Oif(7));
        r.attributes.push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(1400)]));
        let mut dgram = Vec::new();
        for inner in [
            RouteNetlinkMessage::NewLink(l),
            RouteNetlinkMessage::NewNeighbour(n.clone()),
            RouteNetlinkMessage::DelNeighbour(n),
            RouteNetlinkMessage::NewAddress(a.clone()),
            RouteNetlinkMessage::DelAddress(a),
            RouteNetlinkMessage::NewRoute(r),
        ] {
            dgram.extend(emit(42, inner));
        }
        let mut out = Vec::new();
        assert_eq!(decode(&dgram, &mut out), 0);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            out,
            vec![
                RtnlMsg::Link(Link::plain(7, IfName::new("eth1").unwrap(), true, 9000)),
                RtnlMsg::Neighbour(Neighbour {
                    ifindex: 7,
                    addr: ip("10.2.0.2"),
                    mac: Some(Mac([2, 0, 0, 0, 0, 9])),
                    state: crate::core::net::nud::REACHABLE
                }),
                RtnlMsg::NeighbourGone { ifindex: 7, addr: ip("10.2.0.2") },
                RtnlMsg::Address { ifindex: 7, addr: ip("10.2.0.1"), added: true },
                RtnlMsg::Address { ifindex: 7, addr: ip("10.2.0.1"), added: false },
                RtnlMsg::Route {
                    seq: 42,
                    info: RouteInfo {
                        kind: RouteKind::Unicast,
                        oif: 7,
                        gateway: Some(ip("10.2.0.254")),
                        mtu: 1400
                    },
                    prefix: Cidr::parse("10.9.0.0/16").unwrap(),
                    deleted: false
                },
            ]
        );
    }

    #[test]
    fn links_carry_their_layer_two_and_bridge_neighbours_are_forwarding_entries() {
        let link = |index: u32, name: &str, attrs: Vec<LinkAttribute>| {
            let mut l = LinkMessage::default();
            l.header.index = index;
            l.header.flags = LinkFlags::Up | LinkFlags::Running;
            l.attributes.push(LinkAttribute::IfName(name.into()));
            l.attributes.push(LinkAttribute::Mtu(1500));
            l.attributes.extend(attrs);
            l
        };
        let vlan = link(
            9,
            "r1.100",
            vec![
                LinkAttribute::Link(3),
                LinkAttribute::Address(vec![2, 0, 0, 0, 1, 0x64]),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Vlan),
                    LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(100)])),
                ]),
            ],
        );
        let bridge =
            link(5, "br0", vec![LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)])]);
        let port = link(6, "p1", vec![LinkAttribute::Controller(5)]);
        let mut ppp = link(10, "ppp0", vec![]);
        ppp.header.link_layer_type = LinkLayerType::Ppp;
        let fdb = |state: NeighbourState, master: Option<u32>| {
            let mut n = NeighbourMessage::default();
            n.header.family = AddressFamily::Bridge;
            n.header.ifindex = 6;
            n.header.state = state;
            n.attributes.push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 7]));
            n.attributes.extend(master.map(NeighbourAttribute::Controller));
            n
        };
        let mut dgram = Vec::new();
        for inner in [
            RouteNetlinkMessage::NewLink(vlan),
            RouteNetlinkMessage::NewLink(bridge),
            RouteNetlinkMessage::NewLink(port),
            RouteNetlinkMessage::NewLink(ppp),
            RouteNetlinkMessage::NewNeighbour(fdb(NeighbourState::Reachable, Some(5))),
            RouteNetlinkMessage::NewNeighbour(fdb(NeighbourState::Permanent, Some(5))),
            RouteNetlinkMessage::NewNeighbour(fdb(NeighbourState::Reachable, None)),
            RouteNetlinkMessage::DelNeighbour(fdb(NeighbourState::Stale, Some(5))),
        ] {
            dgram.extend(emit(0, inner));
        }
        let mut out = Vec::new();
        assert_eq!(decode(&dgram, &mut out), 0);
        let links: Vec<(u32, LinkKind, u32, Option<Mac>)> = out
            .iter()
            .filter_map(|m| match m {
                RtnlMsg::Link(l) => Some((l.index, l.kind, l.master, l.mac)),
                _ => None,
            })
            .collect();
        assert_eq!(
            links,
            vec![
                (9, LinkKind::Vlan { id: 100, parent: 3 }, 0, Some(Mac([2, 0, 0, 0, 1, 0x64]))),
                (5, LinkKind::Bridge, 0, None),
                (6, LinkKind::Plain, 5, None),
                (10, LinkKind::Ppp, 0, None),
            ]
        );
        let entry = FdbEntry { bridge: 5, port: 6, mac: Mac([2, 0, 0, 0, 0, 7]) };
        assert_eq!(
            out[4..].to_vec(),
            vec![RtnlMsg::Fdb(entry), RtnlMsg::FdbGone(entry)],
            "the bridge's own address and entries of no bridge are not forwarding entries"
        );
        let request = dump_request(DumpKind::BridgeFdb, 4);
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&request).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetNeighbour(m)) = msg.payload else {
            panic!("not a GETNEIGH")
        };
        assert_eq!(m.header.family, AddressFamily::Bridge);
    }

    fn lookup(bytes: &[u8]) -> (u32, RouteMessage) {
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).unwrap();
        assert_eq!(msg.header.flags, NLM_F_REQUEST);
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(m)) = msg.payload else {
            panic!("not a GETROUTE")
        };
        (msg.header.sequence_number, m)
    }

    #[test]
    fn output_lookup_carries_destination_and_mark_only() {
        let key = RouteKey::output("2001:db8::1".parse().unwrap(), 0x40);
        let (seq, m) = lookup(&route_lookup(9, &key));
        assert_eq!(seq, 9);
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.destination_prefix_length, 128);
        assert_eq!(m.header.source_prefix_length, 0);
        assert_eq!(
            m.attributes,
            [RouteAttribute::Destination(RouteAddress::from(key.dst)), RouteAttribute::Mark(0x40)]
        );
    }

    #[test]
    fn forwarded_lookup_carries_source_input_interface_and_mark() {
        // `ip route get 192.0.2.1 from 10.1.0.3 iif <7> mark 0x10`
        let key =
            RouteKey::forwarded("192.0.2.1".parse().unwrap(), "10.1.0.3".parse().unwrap(), 7, 0x10);
        let (_, m) = lookup(&route_lookup(3, &key));
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!((m.header.destination_prefix_length, m.header.source_prefix_length), (32, 32));
        assert_eq!(
            m.attributes,
            [
                RouteAttribute::Destination(RouteAddress::from(key.dst)),
                RouteAttribute::Source(RouteAddress::Inet("10.1.0.3".parse().unwrap())),
                RouteAttribute::Iif(7),
                RouteAttribute::Mark(0x10),
            ]
        );
        let unmarked = RouteKey { mark: 0, ..key };
        let (_, m) = lookup(&route_lookup(4, &unmarked));
        assert!(!m.attributes.iter().any(|a| matches!(a, RouteAttribute::Mark(_))));
    }

    #[test]
    fn garbage_is_skipped_not_fatal() {
        let mut out = Vec::new();
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            decode(&junk, &mut out);
        }
        // A header claiming more bytes than present.
        let mut short = emit(1, RouteNetlinkMessage::NewLink(LinkMessage::default()));
        short[0] = 200;
        decode(&short, &mut out);
    }
}
