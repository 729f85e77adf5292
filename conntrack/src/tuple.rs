//! Tuples: the addresses, protocol and ports (or ICMP id/type/code) of one direction.
//!
//! Contract: [`Tuple::from_nest`] accepts exactly what the kernel sends (both addresses of one
//! family, a protocol number, ports or a complete ICMP triple) and rejects contradictions;
//! [`Tuple::emit`] writes the attributes the kernel itself writes for that protocol, in its
//! order, so a parsed tuple emits back to the same bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::attr::{IpAttr, ProtoAttr, TupleAttr};
use crate::consts::*;
use crate::error::DecodeError;
use crate::nla::{AttrIter, AttrValue, AttrWriter, Nest};

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

    /// Reads a `CTA_TUPLE_*` nest.
    #[inline]
    pub fn from_nest(nest: Nest<'_, TupleAttr<'_>>) -> Result<Self, DecodeError> {
        DecodedTuple::from_nest(nest).map(Self::from)
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

/// An address while a tuple is decoded: aligned integers, so the decoder moves registers rather
/// than the 17-byte, byte-aligned `IpAddr` (whose copies stalled store forwarding and cost a
/// third of the parse time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Address {
    V4(u32),
    V6(u128),
}

impl From<Address> for IpAddr {
    #[inline]
    fn from(addr: Address) -> Self {
        match addr {
            Address::V4(bits) => IpAddr::V4(Ipv4Addr::from_bits(bits)),
            Address::V6(bits) => IpAddr::V6(Ipv6Addr::from_bits(bits)),
        }
    }
}

/// A tuple while a message is decoded, laid out for cheap moves; becomes a [`Tuple`] once, at
/// the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodedTuple {
    src: Address,
    dst: Address,
    proto: u8,
    src_port: u16,
    dst_port: u16,
    /// ICMP id, type and code packed as `id << 16 | type << 8 | code`: one aligned word, like
    /// `zone`, rather than small fields that are written in halves and read whole.
    icmp: Option<u32>,
    zone: Option<u32>,
}

impl DecodedTuple {
    #[inline]
    pub(crate) fn from_nest(nest: Nest<'_, TupleAttr<'_>>) -> Result<Self, DecodeError> {
        let mut addrs = None;
        let mut l4 = None;
        let mut zone = None;
        for attr in nest {
            match attr? {
                TupleAttr::Ip(ip) => addrs = Some(addresses(ip)?),
                TupleAttr::Proto(proto) => l4 = Some(layer4(proto)?),
                TupleAttr::Zone(value) => zone = Some(u32::from(value)),
                TupleAttr::Other(_) => {}
            }
        }
        let (src, dst) = addrs.ok_or(DecodeError::MissingAttr("CTA_TUPLE_IP"))?;
        let (proto, src_port, dst_port, icmp) =
            l4.ok_or(DecodeError::MissingAttr("CTA_TUPLE_PROTO"))?;
        if icmp.is_some() && proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6 {
            let reason = "ICMP id/type/code on a non-ICMP protocol";
            return Err(DecodeError::Inconsistent { attr: nest.name(), reason });
        }
        Ok(Self { src, dst, proto, src_port, dst_port, icmp, zone })
    }

    /// The family of the addresses.
    pub(crate) fn family(&self) -> Family {
        match self.src {
            Address::V4(_) => Family::Ipv4,
            Address::V6(_) => Family::Ipv6,
        }
    }
}

impl From<DecodedTuple> for Tuple {
    #[inline]
    fn from(tuple: DecodedTuple) -> Self {
        Self {
            src: tuple.src.into(),
            dst: tuple.dst.into(),
            proto: tuple.proto,
            src_port: tuple.src_port,
            dst_port: tuple.dst_port,
            icmp: tuple.icmp.map(|packed| {
                let [id_hi, id_lo, kind, code] = packed.to_be_bytes();
                Icmp { id: u16::from_be_bytes([id_hi, id_lo]), kind, code }
            }),
            zone: tuple.zone.map(|zone| zone as u16),
        }
    }
}

#[inline]
fn addresses(nest: Nest<'_, IpAttr<'_>>) -> Result<(Address, Address), DecodeError> {
    let mut src = None;
    let mut dst = None;
    // The hot path reads the raw attributes: building each `IpAttr` in memory and reading it
    // back cost a store-forwarding stall per address. Same kinds, same value decoders.
    for raw in AttrIter::new(nest.as_bytes(), nest.name()) {
        let raw = raw?;
        let value = raw.value();
        match raw.kind() {
            CTA_IP_V4_SRC => src = Some(Address::V4(u32::decode(value, "CTA_IP_V4_SRC")?)),
            CTA_IP_V4_DST => dst = Some(Address::V4(u32::decode(value, "CTA_IP_V4_DST")?)),
            CTA_IP_V6_SRC => src = Some(Address::V6(u128::decode(value, "CTA_IP_V6_SRC")?)),
            CTA_IP_V6_DST => dst = Some(Address::V6(u128::decode(value, "CTA_IP_V6_DST")?)),
            _ => {}
        }
    }
    let src = src.ok_or(DecodeError::MissingAttr("CTA_IP_V4_SRC or CTA_IP_V6_SRC"))?;
    let dst = dst.ok_or(DecodeError::MissingAttr("CTA_IP_V4_DST or CTA_IP_V6_DST"))?;
    if matches!(src, Address::V4(_)) != matches!(dst, Address::V4(_)) {
        let reason = "source and destination of different families";
        return Err(DecodeError::Inconsistent { attr: "CTA_TUPLE_IP", reason });
    }
    Ok((src, dst))
}

type Layer4 = (u8, u16, u16, Option<u32>);

#[inline]
fn layer4(nest: Nest<'_, ProtoAttr<'_>>) -> Result<Layer4, DecodeError> {
    let mut proto = None;
    let (mut src_port, mut dst_port) = (0, 0);
    let (mut id, mut kind, mut code) = (None, None, None);
    // Raw attributes on the hot path, as in `addresses`.
    for raw in AttrIter::new(nest.as_bytes(), nest.name()) {
        let raw = raw?;
        let value = raw.value();
        match raw.kind() {
            CTA_PROTO_NUM => proto = Some(u8::decode(value, "CTA_PROTO_NUM")?),
            CTA_PROTO_SRC_PORT => src_port = u16::decode(value, "CTA_PROTO_SRC_PORT")?,
            CTA_PROTO_DST_PORT => dst_port = u16::decode(value, "CTA_PROTO_DST_PORT")?,
            CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => {
                id = Some(u16::decode(value, "CTA_PROTO_ICMP_ID")?)
            }
            CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                kind = Some(u8::decode(value, "CTA_PROTO_ICMP_TYPE")?)
            }
            CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                code = Some(u8::decode(value, "CTA_PROTO_ICMP_CODE")?)
            }
            _ => {}
        }
    }
    let proto = proto.ok_or(DecodeError::MissingAttr("CTA_PROTO_NUM"))?;
    let icmp = match (id, kind, code) {
        (Some(id), Some(kind), Some(code)) => {
            let [id_hi, id_lo] = u16::to_be_bytes(id);
            Some(u32::from_be_bytes([id_hi, id_lo, kind, code]))
        }
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
