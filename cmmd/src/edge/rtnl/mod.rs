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
mod tests;
