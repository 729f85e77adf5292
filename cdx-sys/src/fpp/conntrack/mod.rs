//! `FPP_CMD_IPV4_CONNTRACK` (0x0314), `FPP_CMD_IPV6_CONNTRACK` (0x0414) and their
//! `*_CONNTRACK_CHANGE` events (0x0315, 0x0415).
//!
//! A conntrack command carries both tuples (cdx derives NAT from their difference), the
//! protocol, per-direction disable flags, the QoS mark and the route id of each direction.
//! Its layout depends on the [`Abi`]: NXP's cdx has a 32-bit `fwmark` (44 B IPv4 / 92 B
//! IPv6), the ASK port a 64-bit `qosconnmark` (48 / 96 B). The extended layout appends 28 B
//! of IPsec SA handles and tunnel route ids and turns the reserved field at offset 2 into
//! `format`. cdx accepts exactly its ABI's basic and extended sizes. Change events
//! ([`CtChange`], [`CtEvent`]) use the basic layout.
//!
//! The owned value, [`CtCmd<F>`], is the same for both ABIs and both families ([`V4`],
//! [`V6`]); it carries the mark as 64 bits ([`CtCmd::qos_mark`]), which the LSDK layout
//! holds only when it fits 32 bits. How cdx splits the mark per direction is in
//! [`super::mark`].

mod event;
mod wire;

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zerocopy::byteorder::native_endian::{U16, U32, U64};
use zerocopy::byteorder::network_endian::U16 as PortU16;
use zerocopy::{FromBytes, IntoBytes};

use super::abi::size_error;
use super::{Abi, AbiPayload, Action, FCode, FppError, emit_bytes};

pub use event::{Ct4Change, Ct6Change, CtChange, CtEvent};
pub use wire::{
    Ct4AskWire, Ct4Wire, Ct6AskWire, Ct6Wire, CtExtWire, CtWire, EXT_LEN, WireAddr, WireMark,
};

/// An address family cdx has conntrack commands for: [`V4`] or [`V6`].
pub trait Family:
    wire::sealed::Sealed + Copy + Debug + Default + Eq + Hash + Ord + Send + Sync + 'static
{
    /// The address type of the owned values.
    type Addr: Copy + Debug + Eq + Hash + Ord + Send + Sync + Into<IpAddr> + 'static;
    /// The address field of the wire layout.
    type Wire: WireAddr;
    /// The all-zero address (`0.0.0.0`, `::`).
    const UNSPECIFIED: Self::Addr;
    /// `"IPv4"` / `"IPv6"`.
    const NAME: &'static str;
    /// The conntrack command code.
    const CONNTRACK: FCode;
    /// The change-event code.
    const CHANGE: FCode;
    /// The get-timeout command code.
    const GET_TIMEOUT: FCode;
    /// The conntrack command's name in the vendor headers.
    const CONNTRACK_NAME: &'static str;
    /// The change event's name in the vendor headers.
    const CHANGE_NAME: &'static str;
    /// Wire bytes of an address.
    fn addr_to_wire(addr: Self::Addr) -> Self::Wire;
    /// Address of wire bytes.
    fn addr_from_wire(wire: Self::Wire) -> Self::Addr;
    /// The address if `ip` is of this family.
    fn addr_from_ip(ip: IpAddr) -> Option<Self::Addr>;
    /// The sizes a conntrack command may have in `abi`: basic, then extended.
    fn sizes(abi: Abi) -> &'static [usize];
    /// The basic size alone (change events, `GET_TIMEOUT` requests), as a slice.
    fn basic_sizes(abi: Abi) -> &'static [usize];

    /// The basic payload size in `abi`.
    fn basic_len(abi: Abi) -> usize {
        match abi {
            Abi::Lsdk => size_of::<CtWire<Self::Wire, U32>>(),
            Abi::Ask => size_of::<CtWire<Self::Wire, U64>>(),
        }
    }

    /// The extended payload size in `abi`.
    fn extended_len(abi: Abi) -> usize {
        Self::basic_len(abi) + EXT_LEN
    }
}

/// IPv4.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct V4;

/// IPv6.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct V6;

impl Family for V4 {
    type Addr = Ipv4Addr;
    type Wire = [u8; 4];
    const UNSPECIFIED: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    const NAME: &'static str = "IPv4";
    const CONNTRACK: FCode = FCode::Ipv4Conntrack;
    const CHANGE: FCode = FCode::Ipv4ConntrackChange;
    const GET_TIMEOUT: FCode = FCode::Ipv4GetTimeout;
    const CONNTRACK_NAME: &'static str = "FPP_CMD_IPV4_CONNTRACK";
    const CHANGE_NAME: &'static str = "FPP_CMD_IPV4_CONNTRACK_CHANGE";
    fn addr_to_wire(addr: Ipv4Addr) -> [u8; 4] {
        addr.octets()
    }
    fn addr_from_wire(wire: [u8; 4]) -> Ipv4Addr {
        Ipv4Addr::from(wire)
    }
    fn addr_from_ip(ip: IpAddr) -> Option<Ipv4Addr> {
        match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        }
    }
    fn sizes(abi: Abi) -> &'static [usize] {
        match abi {
            Abi::Lsdk => &[44, 72],
            Abi::Ask => &[48, 76],
        }
    }
    fn basic_sizes(abi: Abi) -> &'static [usize] {
        match abi {
            Abi::Lsdk => &[44],
            Abi::Ask => &[48],
        }
    }
}

impl Family for V6 {
    type Addr = Ipv6Addr;
    type Wire = [u8; 16];
    const UNSPECIFIED: Ipv6Addr = Ipv6Addr::UNSPECIFIED;
    const NAME: &'static str = "IPv6";
    const CONNTRACK: FCode = FCode::Ipv6Conntrack;
    const CHANGE: FCode = FCode::Ipv6ConntrackChange;
    const GET_TIMEOUT: FCode = FCode::Ipv6GetTimeout;
    const CONNTRACK_NAME: &'static str = "FPP_CMD_IPV6_CONNTRACK";
    const CHANGE_NAME: &'static str = "FPP_CMD_IPV6_CONNTRACK_CHANGE";
    fn addr_to_wire(addr: Ipv6Addr) -> [u8; 16] {
        addr.octets()
    }
    fn addr_from_wire(wire: [u8; 16]) -> Ipv6Addr {
        Ipv6Addr::from(wire)
    }
    fn addr_from_ip(ip: IpAddr) -> Option<Ipv6Addr> {
        match ip {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        }
    }
    fn sizes(abi: Abi) -> &'static [usize] {
        match abi {
            Abi::Lsdk => &[92, 120],
            Abi::Ask => &[96, 124],
        }
    }
    fn basic_sizes(abi: Abi) -> &'static [usize] {
        match abi {
            Abi::Lsdk => &[92],
            Abi::Ask => &[96],
        }
    }
}

const _: () = {
    assert!(size_of::<Ct4Wire>() + EXT_LEN == 72 && size_of::<Ct4AskWire>() + EXT_LEN == 76);
    assert!(size_of::<Ct6Wire>() + EXT_LEN == 120 && size_of::<Ct6AskWire>() + EXT_LEN == 124);
};

flag_set! {
    /// Conntrack `flags`: which directions are disabled.
    pub struct CtFlags(u16) {
        /// The original direction is not offloaded.
        const ORIG_DISABLED = 0x1;
        /// The reply direction is not offloaded.
        const REP_DISABLED = 0x2;
        /// CMM-internal ("kernel conntrack is permanent"); unknown to cdx.
        const PERMANENT = 0x4;
    }
}

flag_set! {
    /// Extended-layout `format`: which optional parts are present.
    pub struct CtFormat(u16) {
        /// IPsec SA data present.
        const SECURE = 0x1;
        /// Tunnel route id of the original direction present.
        const ORIG_TUNNEL = 0x2;
        /// Tunnel route id of the reply direction present.
        const REPL_TUNNEL = 0x4;
    }
}

/// One direction's 5-tuple minus the protocol. Ports are ordinary numbers here; they are
/// network order on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple<A> {
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl<A: Copy> Tuple<A> {
    /// A tuple.
    pub const fn new(src: A, dst: A, sport: u16, dport: u16) -> Tuple<A> {
        Tuple { src, dst, sport, dport }
    }

    /// The tuple with addresses of either family.
    pub fn to_ip(&self) -> Tuple<IpAddr>
    where
        A: Into<IpAddr>,
    {
        Tuple { src: self.src.into(), dst: self.dst.into(), sport: self.sport, dport: self.dport }
    }

    /// The same flow seen from the other end (addresses and ports swapped).
    #[must_use]
    pub const fn inverse(&self) -> Tuple<A> {
        Tuple { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport }
    }
}

/// IPsec SA data of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SaInfo {
    /// Direction bits (`FLOW_DIR_OUT 0x2`, `FLOW_DIR_FWD 0x4`).
    pub dir: u8,
    /// Handles in use.
    pub count: u8,
    /// SA handles.
    pub handles: [u16; 4],
}

/// The part only the extended layout carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtExtension {
    /// Which parts are meaningful.
    pub format: CtFormat,
    /// SA data of the original direction.
    pub sa: SaInfo,
    /// SA data of the reply direction.
    pub sa_reply: SaInfo,
    /// Tunnel route id of the original direction.
    pub tunnel_route_id: u32,
    /// Tunnel route id of the reply direction.
    pub tunnel_route_id_reply: u32,
}

impl CtExtension {
    fn to_wire(self) -> CtExtWire {
        CtExtWire {
            sa_dir: self.sa.dir,
            sa_nr: self.sa.count,
            sa_handle: self.sa.handles.map(U16::new),
            sa_reply_dir: self.sa_reply.dir,
            sa_reply_nr: self.sa_reply.count,
            sa_reply_handle: self.sa_reply.handles.map(U16::new),
            tunnel_route_id: U32::new(self.tunnel_route_id),
            tunnel_route_id_reply: U32::new(self.tunnel_route_id_reply),
        }
    }

    fn from_wire(format: u16, wire: &CtExtWire) -> CtExtension {
        CtExtension {
            format: CtFormat(format),
            sa: SaInfo {
                dir: wire.sa_dir,
                count: wire.sa_nr,
                handles: wire.sa_handle.map(U16::get),
            },
            sa_reply: SaInfo {
                dir: wire.sa_reply_dir,
                count: wire.sa_reply_nr,
                handles: wire.sa_reply_handle.map(U16::get),
            },
            tunnel_route_id: wire.tunnel_route_id.get(),
            tunnel_route_id_reply: wire.tunnel_route_id_reply.get(),
        }
    }
}

/// A conntrack command (owned, validated), the same value in both ABIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtCmd<F: Family> {
    /// What to do.
    pub action: Action,
    /// Original-direction tuple.
    pub orig: Tuple<F::Addr>,
    /// Reply-direction tuple.
    pub reply: Tuple<F::Addr>,
    /// IP protocol number.
    pub protocol: u16,
    /// Disabled directions.
    pub flags: CtFlags,
    /// QoS mark: the LSDK `fwmark` (must fit 32 bits there) or the ASK `qosconnmark`.
    pub qos_mark: u64,
    /// Route id of the original direction (0: none).
    pub route_id: u32,
    /// Route id of the reply direction (0: none).
    pub route_id_reply: u32,
    /// `Some` for the extended layout.
    pub extension: Option<CtExtension>,
}

/// An IPv4 conntrack command.
pub type Ct4Cmd = CtCmd<V4>;
/// An IPv6 conntrack command.
pub type Ct6Cmd = CtCmd<V6>;

impl<F: Family> CtCmd<F> {
    /// A basic command with both directions enabled, no mark and no routes.
    pub fn new(
        action: Action,
        protocol: u8,
        orig: Tuple<F::Addr>,
        reply: Tuple<F::Addr>,
    ) -> CtCmd<F> {
        CtCmd {
            action,
            orig,
            reply,
            protocol: u16::from(protocol),
            flags: CtFlags::EMPTY,
            qos_mark: 0,
            route_id: 0,
            route_id_reply: 0,
            extension: None,
        }
    }

    /// A walk step as CMM sends it: `action` QUERY (restart the walk) or QUERY_CONT (next
    /// entry), extended size, zero tuples (cdx ignores them).
    pub fn walk_step(action: Action) -> CtCmd<F> {
        let zero = Tuple::new(F::UNSPECIFIED, F::UNSPECIFIED, 0, 0);
        CtCmd { extension: Some(CtExtension::default()), ..CtCmd::new(action, 0, zero, zero) }
    }

    /// The same command with another action and without the extension (the basic form
    /// CMM uses for DEREGISTER and GET_TIMEOUT).
    #[must_use]
    pub fn basic(&self, action: Action) -> CtCmd<F> {
        CtCmd { action, extension: None, ..*self }
    }

    /// The basic wire form with mark field `mark` (the extension is emitted separately).
    pub fn to_wire<M: WireMark>(&self, mark: M) -> CtWire<F::Wire, M> {
        CtWire {
            action: U16::new(self.action.value()),
            format: U16::new(self.extension.map_or(0, |ext| ext.format.bits())),
            saddr: F::addr_to_wire(self.orig.src),
            daddr: F::addr_to_wire(self.orig.dst),
            sport: PortU16::new(self.orig.sport),
            dport: PortU16::new(self.orig.dport),
            saddr_reply: F::addr_to_wire(self.reply.src),
            daddr_reply: F::addr_to_wire(self.reply.dst),
            sport_reply: PortU16::new(self.reply.sport),
            dport_reply: PortU16::new(self.reply.dport),
            protocol: U16::new(self.protocol),
            flags: U16::new(self.flags.bits()),
            mark,
            route_id: U32::new(self.route_id),
            route_id_reply: U32::new(self.route_id_reply),
        }
    }

    /// Reads the wire form; `extension` is the trailing 28 bytes of an extended command.
    pub fn from_wire<M: WireMark>(
        wire: &CtWire<F::Wire, M>,
        extension: Option<&CtExtWire>,
    ) -> CtCmd<F> {
        let (orig, reply) = tuples_from_wire::<F, M>(wire);
        CtCmd {
            action: Action::from(wire.action.get()),
            orig,
            reply,
            protocol: wire.protocol.get(),
            flags: CtFlags(wire.flags.get()),
            qos_mark: wire.mark.to_mark(),
            route_id: wire.route_id.get(),
            route_id_reply: wire.route_id_reply.get(),
            extension: extension.map(|ext| CtExtension::from_wire(wire.format.get(), ext)),
        }
    }

    fn emit_with<M: WireMark>(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        let mark = M::from_mark(self.qos_mark)
            .ok_or(FppError::MarkTooWide { mark: self.qos_mark, abi: M::ABI })?;
        let basic = size_of::<CtWire<F::Wire, M>>();
        let needed = basic + self.extension.map_or(0, |_| EXT_LEN);
        if buf.len() < needed {
            return Err(FppError::BufferTooShort { needed, actual: buf.len() });
        }
        let (head, tail) = buf.split_at_mut(basic);
        emit_bytes(self.to_wire(mark).as_bytes(), head)?;
        match self.extension {
            Some(ext) => Ok(basic + emit_bytes(ext.to_wire().as_bytes(), tail)?),
            None => Ok(basic),
        }
    }

    /// The command if `bytes` is a basic or extended command with mark field `M`.
    fn parse_with<M: WireMark>(bytes: &[u8]) -> Option<CtCmd<F>> {
        let (wire, rest) = CtWire::<F::Wire, M>::ref_from_prefix(bytes).ok()?;
        let extension = match rest.len() {
            0 => None,
            EXT_LEN => Some(CtExtWire::ref_from_bytes(rest).ok()?),
            _ => return None,
        };
        Some(CtCmd::from_wire(wire, extension))
    }
}

/// The original and reply tuples of a wire command.
fn tuples_from_wire<F: Family, M: WireMark>(
    wire: &CtWire<F::Wire, M>,
) -> (Tuple<F::Addr>, Tuple<F::Addr>) {
    let tuple = |src, dst, sport: PortU16, dport: PortU16| Tuple {
        src: F::addr_from_wire(src),
        dst: F::addr_from_wire(dst),
        sport: sport.get(),
        dport: dport.get(),
    };
    (
        tuple(wire.saddr, wire.daddr, wire.sport, wire.dport),
        tuple(wire.saddr_reply, wire.daddr_reply, wire.sport_reply, wire.dport_reply),
    )
}

impl<F: Family> AbiPayload for CtCmd<F> {
    fn len_for(&self, abi: Abi) -> usize {
        if self.extension.is_some() { F::extended_len(abi) } else { F::basic_len(abi) }
    }

    fn emit_for(&self, abi: Abi, buf: &mut [u8]) -> Result<usize, FppError> {
        match abi {
            Abi::Lsdk => self.emit_with::<U32>(buf),
            Abi::Ask => self.emit_with::<U64>(buf),
        }
    }

    fn parse_for(abi: Abi, bytes: &[u8]) -> Result<CtCmd<F>, FppError> {
        let parsed = match abi {
            Abi::Lsdk => CtCmd::parse_with::<U32>(bytes),
            Abi::Ask => CtCmd::parse_with::<U64>(bytes),
        };
        parsed.ok_or_else(|| size_error(F::CONNTRACK_NAME, abi, F::sizes, bytes.len()))
    }
}

#[cfg(test)]
mod tests;
