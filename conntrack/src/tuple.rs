//! Tuples: the addresses, protocol and ports (or ICMP id/type/code) of one direction.
//!
//! Contract: [`Tuple::from_nest`] accepts exactly what the kernel sends (both addresses of one
//! family, a protocol number, ports or a complete ICMP triple) and rejects contradictions;
//! [`Tuple::emit`] writes the attributes the kernel itself writes for that protocol, in its
//! order, so a parsed tuple emits back to the same bytes.

use std::net::IpAddr;

use crate::attr::{IpAttr, ProtoAttr, TupleAttr};
use crate::consts::*;
use crate::error::DecodeError;
use crate::nla::{AttrWriter, Nest};

/// Layer-3 family of a conntrack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    Ipv4,
    /// IPv6 (`AF_INET6`).
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }

    /// The `AF_*` number.
    pub fn as_raw(self) -> u8 {
        match self {
            Self::Ipv4 => libc::AF_INET as u8,
            Self::Ipv6 => libc::AF_INET6 as u8,
        }
    }

    /// The family of an `AF_*` number, if IPv4 or IPv6.
    pub fn from_raw(raw: u8) -> Option<Self> {
        match i32::from(raw) {
            libc::AF_INET => Some(Self::Ipv4),
            libc::AF_INET6 => Some(Self::Ipv6),
            _ => None,
        }
    }
}

/// The ICMP (or ICMPv6) part of a tuple: the echo id, type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// Identifier (echo id).
    pub id: u16,
    /// ICMP type.
    pub kind: u8,
    /// ICMP code.
    pub code: u8,
}

/// One direction of a connection. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6…).
    pub proto: u8,
    /// Source port; 0 for protocols without ports.
    pub src_port: u16,
    /// Destination port; 0 for protocols without ports.
    pub dst_port: u16,
    /// ICMP id/type/code, for ICMP and ICMPv6.
    pub icmp: Option<Icmp>,
    /// `CTA_TUPLE_ZONE`: the zone of this direction, when zones are directional.
    pub zone: Option<u16>,
}

/// Protocols whose tuple the kernel writes with `CTA_PROTO_SRC_PORT`/`DST_PORT`.
fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP | IPPROTO_GRE
    )
}

impl Tuple {
    /// A TCP/UDP-style tuple (no zone, no ICMP).
    pub fn new(src: IpAddr, dst: IpAddr, proto: u8, src_port: u16, dst_port: u16) -> Self {
        Self { src, dst, proto, src_port, dst_port, icmp: None, zone: None }
    }

    /// The tuple seen from the other side: addresses and ports swapped (what the reply tuple
    /// is without NAT). ICMP is kept as is.
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }

    /// The family of the source address.
    pub fn family(&self) -> Family {
        Family::of(&self.src)
    }

    /// Reads a `CTA_TUPLE_*` nest. `name` is the enclosing attribute's kernel name, for errors.
    pub fn from_nest(nest: Nest<'_, TupleAttr<'_>>) -> Result<Self, DecodeError> {
        let name = nest.name();
        let mut addrs = None;
        let mut l4 = None;
        let mut zone = None;
        for attr in nest {
            match attr? {
                TupleAttr::Ip(ip) => addrs = Some(addresses(ip)?),
                TupleAttr::Proto(proto) => l4 = Some(layer4(proto)?),
                TupleAttr::Zone(value) => zone = Some(value),
                TupleAttr::Other(_) => {}
            }
        }
        let (src, dst) = addrs.ok_or(DecodeError::MissingAttr("CTA_TUPLE_IP"))?;
        let (proto, src_port, dst_port, icmp) =
            l4.ok_or(DecodeError::MissingAttr("CTA_TUPLE_PROTO"))?;
        if icmp.is_some() && proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6 {
            return Err(DecodeError::Inconsistent {
                attr: name,
                reason: "ICMP id/type/code on a non-ICMP protocol",
            });
        }
        Ok(Self { src, dst, proto, src_port, dst_port, icmp, zone })
    }

    /// Appends this tuple as nested attribute `kind` (`CTA_TUPLE_ORIG`, `CTA_TUPLE_REPLY`…),
    /// with the attributes the kernel uses for its protocol.
    pub(crate) fn emit(&self, out: &mut AttrWriter<'_>, kind: u16) {
        let tuple = out.begin_nested();
        let ip = out.begin_nested();
        emit_address(out, &self.src, CTA_IP_V4_SRC, CTA_IP_V6_SRC);
        emit_address(out, &self.dst, CTA_IP_V4_DST, CTA_IP_V6_DST);
        out.end_nested(ip, CTA_TUPLE_IP);
        let proto = out.begin_nested();
        out.leaf(CTA_PROTO_NUM, &[self.proto]);
        if let Some(icmp) = self.icmp {
            let (id, kind, code) = if self.proto == IPPROTO_ICMPV6 {
                (CTA_PROTO_ICMPV6_ID, CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE)
            } else {
                (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE)
            };
            out.leaf(id, &icmp.id.to_be_bytes());
            out.leaf(kind, &[icmp.kind]);
            out.leaf(code, &[icmp.code]);
        } else if has_ports(self.proto) {
            out.leaf(CTA_PROTO_SRC_PORT, &self.src_port.to_be_bytes());
            out.leaf(CTA_PROTO_DST_PORT, &self.dst_port.to_be_bytes());
        }
        out.end_nested(proto, CTA_TUPLE_PROTO);
        if let Some(zone) = self.zone {
            out.leaf(CTA_TUPLE_ZONE, &zone.to_be_bytes());
        }
        out.end_nested(tuple, kind);
    }
}

fn emit_address(out: &mut AttrWriter<'_>, addr: &IpAddr, v4_kind: u16, v6_kind: u16) {
    match addr {
        IpAddr::V4(v4) => out.leaf(v4_kind, &v4.octets()),
        IpAddr::V6(v6) => out.leaf(v6_kind, &v6.octets()),
    }
}

fn addresses(nest: Nest<'_, IpAttr<'_>>) -> Result<(IpAddr, IpAddr), DecodeError> {
    let mut src = None;
    let mut dst = None;
    for attr in nest {
        match attr? {
            IpAttr::V4Src(addr) => src = Some(IpAddr::V4(addr)),
            IpAttr::V4Dst(addr) => dst = Some(IpAddr::V4(addr)),
            IpAttr::V6Src(addr) => src = Some(IpAddr::V6(addr)),
            IpAttr::V6Dst(addr) => dst = Some(IpAddr::V6(addr)),
            IpAttr::Other(_) => {}
        }
    }
    let src = src.ok_or(DecodeError::MissingAttr("CTA_IP_V4_SRC or CTA_IP_V6_SRC"))?;
    let dst = dst.ok_or(DecodeError::MissingAttr("CTA_IP_V4_DST or CTA_IP_V6_DST"))?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(DecodeError::Inconsistent {
            attr: "CTA_TUPLE_IP",
            reason: "source and destination of different families",
        });
    }
    Ok((src, dst))
}

type Layer4 = (u8, u16, u16, Option<Icmp>);

fn layer4(nest: Nest<'_, ProtoAttr<'_>>) -> Result<Layer4, DecodeError> {
    let mut proto = None;
    let (mut src_port, mut dst_port) = (0, 0);
    let (mut id, mut kind, mut code) = (None, None, None);
    for attr in nest {
        match attr? {
            ProtoAttr::Num(value) => proto = Some(value),
            ProtoAttr::SrcPort(port) => src_port = port,
            ProtoAttr::DstPort(port) => dst_port = port,
            ProtoAttr::IcmpId(value) | ProtoAttr::Icmpv6Id(value) => id = Some(value),
            ProtoAttr::IcmpType(value) | ProtoAttr::Icmpv6Type(value) => kind = Some(value),
            ProtoAttr::IcmpCode(value) | ProtoAttr::Icmpv6Code(value) => code = Some(value),
            ProtoAttr::Other(_) => {}
        }
    }
    let proto = proto.ok_or(DecodeError::MissingAttr("CTA_PROTO_NUM"))?;
    let icmp = match (id, kind, code) {
        (Some(id), Some(kind), Some(code)) => Some(Icmp { id, kind, code }),
        (None, None, None) => None,
        _ => {
            return Err(DecodeError::Inconsistent {
                attr: "CTA_TUPLE_PROTO",
                reason: "incomplete ICMP id/type/code",
            });
        }
    };
    Ok((proto, src_port, dst_port, icmp))
}
