//! `FPP_CMD_IPV4_CONNTRACK` (0x0314), `FPP_CMD_IPV6_CONNTRACK` (0x0414) and their
//! `*_CONNTRACK_CHANGE` events (0x0315, 0x0415).
//!
//! A conntrack command carries both tuples (cdx derives NAT from their difference), the
//! protocol, per-direction disable flags, the QoS mark and the route id of each direction.
//! The basic layout is 44 B (IPv4) / 92 B (IPv6); the extended layout appends 28 B of IPsec
//! SA handles and tunnel route ids (72 B / 120 B) and turns the reserved field at offset 2
//! into `format`. cdx accepts exactly these two sizes. Change events use the basic layout
//! with `action` = REMOVED or TCP_FIN.
//!
//! The two families share one generic layout, [`CtWire<A>`], instantiated with 4- or
//! 16-byte addresses, and one owned value, [`CtCmd<F>`], over the [`Family`] markers
//! [`V4`] and [`V6`].

use std::fmt::Debug;
use std::hash::Hash;
use std::mem::offset_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zerocopy::byteorder::native_endian::{U16, U32};
use zerocopy::byteorder::network_endian::U16 as PortU16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Action, FCode, FppError, Payload, emit_bytes, wrong_size};

/// The basic conntrack layout, generic over the address field (`[u8; 4]` or `[u8; 16]`).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CtWire<A: WireAddr> {
    /// [`Action`] (in query replies: the return code).
    pub action: U16,
    /// Reserved in the basic layout, [`CtFormat`] in the extended one.
    pub format: U16,
    /// Original source address.
    pub saddr: A,
    /// Original destination address.
    pub daddr: A,
    /// Original source port.
    pub sport: PortU16,
    /// Original destination port.
    pub dport: PortU16,
    /// Reply source address (the post-DNAT destination).
    pub saddr_reply: A,
    /// Reply destination address (the post-SNAT source).
    pub daddr_reply: A,
    /// Reply source port.
    pub sport_reply: PortU16,
    /// Reply destination port.
    pub dport_reply: PortU16,
    /// IP protocol number.
    pub protocol: U16,
    /// [`CtFlags`].
    pub flags: U16,
    /// QoS mark.
    pub fwmark: U32,
    /// Route id of the original direction (0: none).
    pub route_id: U32,
    /// Route id of the reply direction (0: none).
    pub route_id_reply: U32,
}

/// The 28 bytes the extended layout appends to the basic one.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CtExtWire {
    /// SA direction bits of the original direction.
    pub sa_dir: u8,
    /// Number of SA handles of the original direction (≤ 2 used).
    pub sa_nr: u8,
    /// SA handles of the original direction.
    pub sa_handle: [U16; 4],
    /// SA direction bits of the reply direction.
    pub sa_reply_dir: u8,
    /// Number of SA handles of the reply direction.
    pub sa_reply_nr: u8,
    /// SA handles of the reply direction.
    pub sa_reply_handle: [U16; 4],
    /// Tunnel route id of the original direction.
    pub tunnel_route_id: U32,
    /// Tunnel route id of the reply direction.
    pub tunnel_route_id_reply: U32,
}

/// The basic IPv4 layout (44 B).
pub type Ct4Wire = CtWire<[u8; 4]>;
/// The basic IPv6 layout (92 B).
pub type Ct6Wire = CtWire<[u8; 16]>;

/// Size of the extension.
pub const EXT_LEN: usize = 28;

const _: () = {
    assert!(size_of::<Ct4Wire>() == 44);
    assert!(size_of::<Ct6Wire>() == 92);
    assert!(size_of::<CtExtWire>() == EXT_LEN);
    assert!(align_of::<Ct4Wire>() == 1 && align_of::<Ct6Wire>() == 1);
    assert!(align_of::<CtExtWire>() == 1);
    // IPv4 offsets (reference §4.3)
    assert!(offset_of!(Ct4Wire, action) == 0);
    assert!(offset_of!(Ct4Wire, format) == 2);
    assert!(offset_of!(Ct4Wire, saddr) == 4);
    assert!(offset_of!(Ct4Wire, daddr) == 8);
    assert!(offset_of!(Ct4Wire, sport) == 12);
    assert!(offset_of!(Ct4Wire, dport) == 14);
    assert!(offset_of!(Ct4Wire, saddr_reply) == 16);
    assert!(offset_of!(Ct4Wire, daddr_reply) == 20);
    assert!(offset_of!(Ct4Wire, sport_reply) == 24);
    assert!(offset_of!(Ct4Wire, dport_reply) == 26);
    assert!(offset_of!(Ct4Wire, protocol) == 28);
    assert!(offset_of!(Ct4Wire, flags) == 30);
    assert!(offset_of!(Ct4Wire, fwmark) == 32);
    assert!(offset_of!(Ct4Wire, route_id) == 36);
    assert!(offset_of!(Ct4Wire, route_id_reply) == 40);
    // IPv6 offsets
    assert!(offset_of!(Ct6Wire, saddr) == 4);
    assert!(offset_of!(Ct6Wire, daddr) == 20);
    assert!(offset_of!(Ct6Wire, sport) == 36);
    assert!(offset_of!(Ct6Wire, dport) == 38);
    assert!(offset_of!(Ct6Wire, saddr_reply) == 40);
    assert!(offset_of!(Ct6Wire, daddr_reply) == 56);
    assert!(offset_of!(Ct6Wire, sport_reply) == 72);
    assert!(offset_of!(Ct6Wire, dport_reply) == 74);
    assert!(offset_of!(Ct6Wire, protocol) == 76);
    assert!(offset_of!(Ct6Wire, flags) == 78);
    assert!(offset_of!(Ct6Wire, fwmark) == 80);
    assert!(offset_of!(Ct6Wire, route_id) == 84);
    assert!(offset_of!(Ct6Wire, route_id_reply) == 88);
    // extension offsets, relative to its start (44 / 92 in the full command)
    assert!(offset_of!(CtExtWire, sa_dir) == 0);
    assert!(offset_of!(CtExtWire, sa_nr) == 1);
    assert!(offset_of!(CtExtWire, sa_handle) == 2);
    assert!(offset_of!(CtExtWire, sa_reply_dir) == 10);
    assert!(offset_of!(CtExtWire, sa_reply_nr) == 11);
    assert!(offset_of!(CtExtWire, sa_reply_handle) == 12);
    assert!(offset_of!(CtExtWire, tunnel_route_id) == 20);
    assert!(offset_of!(CtExtWire, tunnel_route_id_reply) == 24);
};

/// An address field of the wire layout: `[u8; 4]` or `[u8; 16]`, network order.
pub trait WireAddr:
    FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned + Copy + Debug + sealed::Sealed
{
}
impl WireAddr for [u8; 4] {}
impl WireAddr for [u8; 16] {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for [u8; 4] {}
    impl Sealed for [u8; 16] {}
    impl Sealed for super::V4 {}
    impl Sealed for super::V6 {}
}

/// An address family cdx has conntrack commands for: [`V4`] or [`V6`].
pub trait Family:
    sealed::Sealed + Copy + Debug + Default + Eq + Hash + Ord + Send + Sync + 'static
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
    /// Basic payload size.
    const BASIC_LEN: usize = size_of::<CtWire<Self::Wire>>();
    /// Extended payload size.
    const EXTENDED_LEN: usize = Self::BASIC_LEN + EXT_LEN;
    /// The sizes a conntrack command may have.
    const SIZES: &'static [usize];
    /// The size of a change event.
    const CHANGE_SIZES: &'static [usize];
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
    const SIZES: &'static [usize] = &[44, 72];
    const CHANGE_SIZES: &'static [usize] = &[44];
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
}

impl Family for V6 {
    type Addr = Ipv6Addr;
    type Wire = [u8; 16];
    const UNSPECIFIED: Ipv6Addr = Ipv6Addr::UNSPECIFIED;
    const NAME: &'static str = "IPv6";
    const CONNTRACK: FCode = FCode::Ipv6Conntrack;
    const CHANGE: FCode = FCode::Ipv6ConntrackChange;
    const GET_TIMEOUT: FCode = FCode::Ipv6GetTimeout;
    const SIZES: &'static [usize] = &[92, 120];
    const CHANGE_SIZES: &'static [usize] = &[92];
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
}

const _: () = {
    assert!(V4::BASIC_LEN == 44 && V4::EXTENDED_LEN == 72);
    assert!(V6::BASIC_LEN == 92 && V6::EXTENDED_LEN == 120);
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

/// A conntrack command (owned, validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtCmd<F: Family> {
    /// What to do (events: REMOVED or TCP_FIN).
    pub action: Action,
    /// Original-direction tuple.
    pub orig: Tuple<F::Addr>,
    /// Reply-direction tuple.
    pub reply: Tuple<F::Addr>,
    /// IP protocol number.
    pub protocol: u16,
    /// Disabled directions.
    pub flags: CtFlags,
    /// QoS mark.
    pub fwmark: u32,
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
            fwmark: 0,
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

    /// The basic wire form (the extension, if any, is emitted separately).
    pub fn to_wire(&self) -> CtWire<F::Wire> {
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
            fwmark: U32::new(self.fwmark),
            route_id: U32::new(self.route_id),
            route_id_reply: U32::new(self.route_id_reply),
        }
    }

    /// Reads the wire form; `extension` is the trailing 28 bytes of an extended command.
    pub fn from_wire(wire: &CtWire<F::Wire>, extension: Option<&CtExtWire>) -> CtCmd<F> {
        CtCmd {
            action: Action::from(wire.action.get()),
            orig: Tuple {
                src: F::addr_from_wire(wire.saddr),
                dst: F::addr_from_wire(wire.daddr),
                sport: wire.sport.get(),
                dport: wire.dport.get(),
            },
            reply: Tuple {
                src: F::addr_from_wire(wire.saddr_reply),
                dst: F::addr_from_wire(wire.daddr_reply),
                sport: wire.sport_reply.get(),
                dport: wire.dport_reply.get(),
            },
            protocol: wire.protocol.get(),
            flags: CtFlags(wire.flags.get()),
            fwmark: wire.fwmark.get(),
            route_id: wire.route_id.get(),
            route_id_reply: wire.route_id_reply.get(),
            extension: extension.map(|ext| CtExtension::from_wire(wire.format.get(), ext)),
        }
    }

    /// The same command with another action and without the extension (the basic form
    /// CMM uses for DEREGISTER and GET_TIMEOUT).
    #[must_use]
    pub fn basic(&self, action: Action) -> CtCmd<F> {
        CtCmd { action, extension: None, ..*self }
    }
}

impl<F: Family> Payload for CtCmd<F> {
    fn buffer_len(&self) -> usize {
        if self.extension.is_some() { F::EXTENDED_LEN } else { F::BASIC_LEN }
    }

    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        let needed = self.buffer_len();
        if buf.len() < needed {
            return Err(FppError::BufferTooShort { needed, actual: buf.len() });
        }
        let (head, tail) = buf.split_at_mut(F::BASIC_LEN);
        emit_bytes(self.to_wire().as_bytes(), head)?;
        match self.extension {
            Some(ext) => Ok(F::BASIC_LEN + emit_bytes(ext.to_wire().as_bytes(), tail)?),
            None => Ok(F::BASIC_LEN),
        }
    }

    fn parse(bytes: &[u8]) -> Result<CtCmd<F>, FppError> {
        let size_error = || wrong_size(F::CONNTRACK_NAME, F::SIZES, bytes.len());
        let (wire, rest) = CtWire::<F::Wire>::ref_from_prefix(bytes).map_err(|_| size_error())?;
        let extension = match rest.len() {
            0 => None,
            EXT_LEN => Some(CtExtWire::ref_from_bytes(rest).map_err(|_| size_error())?),
            _ => return Err(size_error()),
        };
        Ok(CtCmd::from_wire(wire, extension))
    }
}

/// A `*_CONNTRACK_CHANGE` event: the basic layout, `action` = REMOVED or TCP_FIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtChange<F: Family> {
    /// The conntrack the event is about; its `action` is the event kind and it never
    /// has an extension.
    pub conntrack: CtCmd<F>,
}

/// An IPv4 change event.
pub type Ct4Change = CtChange<V4>;
/// An IPv6 change event.
pub type Ct6Change = CtChange<V6>;

impl<F: Family> CtChange<F> {
    /// A REMOVED event for `conntrack` (its action and extension are replaced).
    pub fn removed(conntrack: &CtCmd<F>) -> CtChange<F> {
        CtChange { conntrack: conntrack.basic(Action::Removed) }
    }

    /// REMOVED, TCP_FIN, or another action cdx should not send.
    pub fn kind(&self) -> Action {
        self.conntrack.action
    }
}

impl<F: Family> Payload for CtChange<F> {
    fn buffer_len(&self) -> usize {
        F::BASIC_LEN
    }

    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        emit_bytes(self.conntrack.to_wire().as_bytes(), buf)
    }

    fn parse(bytes: &[u8]) -> Result<CtChange<F>, FppError> {
        let wire = CtWire::<F::Wire>::ref_from_bytes(bytes)
            .map_err(|_| wrong_size(F::CHANGE_NAME, F::CHANGE_SIZES, bytes.len()))?;
        Ok(CtChange { conntrack: CtCmd::from_wire(wire, None) })
    }
}

/// A `*_CONNTRACK_CHANGE` event of either family, as read from the event socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtEvent {
    /// `FPP_CMD_IPV4_CONNTRACK_CHANGE`.
    V4(CtChange<V4>),
    /// `FPP_CMD_IPV6_CONNTRACK_CHANGE`.
    V6(CtChange<V6>),
}

impl CtEvent {
    /// The event code.
    pub fn fcode(&self) -> FCode {
        match self {
            CtEvent::V4(_) => V4::CHANGE,
            CtEvent::V6(_) => V6::CHANGE,
        }
    }

    /// The event payload.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            CtEvent::V4(change) => change.to_vec(),
            CtEvent::V6(change) => change.to_vec(),
        }
    }

    /// Writes the event payload to `buf`.
    ///
    /// # Errors
    /// [`FppError::BufferTooShort`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        match self {
            CtEvent::V4(change) => change.emit(buf),
            CtEvent::V6(change) => change.emit(buf),
        }
    }

    /// REMOVED, TCP_FIN, or another action cdx should not send.
    pub fn kind(&self) -> Action {
        match self {
            CtEvent::V4(change) => change.kind(),
            CtEvent::V6(change) => change.kind(),
        }
    }

    /// Original tuple of the flow, either family.
    pub fn orig(&self) -> Tuple<IpAddr> {
        match self {
            CtEvent::V4(change) => change.conntrack.orig.to_ip(),
            CtEvent::V6(change) => change.conntrack.orig.to_ip(),
        }
    }

    /// Reply tuple of the flow, either family.
    pub fn reply(&self) -> Tuple<IpAddr> {
        match self {
            CtEvent::V4(change) => change.conntrack.reply.to_ip(),
            CtEvent::V6(change) => change.conntrack.reply.to_ip(),
        }
    }

    /// IP protocol of the flow.
    pub fn protocol(&self) -> u16 {
        match self {
            CtEvent::V4(change) => change.conntrack.protocol,
            CtEvent::V6(change) => change.conntrack.protocol,
        }
    }

    /// Parses an event of code `fcode`; `None` for codes that are not change events.
    ///
    /// # Errors
    /// [`FppError::WrongSize`] for a change event of the wrong size.
    pub fn parse(fcode: FCode, payload: &[u8]) -> Result<Option<CtEvent>, FppError> {
        Ok(match fcode {
            FCode::Ipv4ConntrackChange => Some(CtEvent::V4(CtChange::parse(payload)?)),
            FCode::Ipv6ConntrackChange => Some(CtEvent::V6(CtChange::parse(payload)?)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4() -> Ct4Cmd {
        // 192.168.1.10:51514 → 198.51.100.7:443, SNAT to 203.0.113.5
        let mut cmd = Ct4Cmd::new(
            Action::Register,
            6,
            Tuple::new(Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(198, 51, 100, 7), 51514, 443),
            Tuple::new(Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(203, 0, 113, 5), 443, 51514),
        );
        cmd.flags = CtFlags::REP_DISABLED;
        cmd.fwmark = 0x0000_0102;
        cmd.route_id = 7;
        cmd.route_id_reply = 0x0001_0203;
        cmd
    }

    /// `tcp4()` laid out by hand from the reference table (little-endian host).
    #[cfg(target_endian = "little")]
    const TCP4_GOLDEN: [u8; 44] = [
        0x00, 0x00, // action REGISTER
        0x00, 0x00, // reserved
        192, 168, 1, 10, // saddr
        198, 51, 100, 7, // daddr
        0xc9, 0x3a, // sport 51514 (NBO)
        0x01, 0xbb, // dport 443 (NBO)
        198, 51, 100, 7, // saddr_reply
        203, 0, 113, 5, // daddr_reply
        0x01, 0xbb, // sport_reply
        0xc9, 0x3a, // dport_reply
        0x06, 0x00, // protocol 6
        0x02, 0x00, // flags REP_DISABLED
        0x02, 0x01, 0x00, 0x00, // fwmark 0x102
        0x07, 0x00, 0x00, 0x00, // route_id 7
        0x03, 0x02, 0x01, 0x00, // route_id_reply 0x10203
    ];

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv4_basic_golden_bytes_both_ways() {
        assert_eq!(tcp4().to_vec(), TCP4_GOLDEN);
        assert_eq!(Ct4Cmd::parse(&TCP4_GOLDEN).unwrap(), tcp4());
        let view = Ct4Wire::ref_from_bytes(&TCP4_GOLDEN).unwrap();
        assert_eq!(view.sport.get(), 51514);
        assert_eq!(view.route_id_reply.get(), 0x0001_0203);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv4_extended_golden_bytes_both_ways() {
        let mut cmd = tcp4();
        cmd.extension = Some(CtExtension {
            format: CtFormat::SECURE | CtFormat::ORIG_TUNNEL,
            sa: SaInfo { dir: 0x2, count: 1, handles: [0x1234, 0, 0, 0] },
            sa_reply: SaInfo { dir: 0x4, count: 2, handles: [1, 2, 0, 0] },
            tunnel_route_id: 9,
            tunnel_route_id_reply: 0,
        });
        let bytes = cmd.to_vec();
        assert_eq!(bytes.len(), 72);
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..4], &[0x03, 0x00], "format replaces the reserved field");
        assert_eq!(&bytes[4..44], &TCP4_GOLDEN[4..44]);
        assert_eq!(
            &bytes[44..72],
            &[
                0x02, 0x01, 0x34, 0x12, 0, 0, 0, 0, 0, 0, // sa_dir, sa_nr, sa_handle[4]
                0x04, 0x02, 0x01, 0x00, 0x02, 0x00, 0, 0, 0, 0, // reply SA
                0x09, 0, 0, 0, // tunnel_route_id
                0, 0, 0, 0, // tunnel_route_id_reply
            ]
        );
        assert_eq!(Ct4Cmd::parse(&bytes).unwrap(), cmd);
    }

    fn udp6() -> Ct6Cmd {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1::53".parse().unwrap();
        let mut cmd =
            Ct6Cmd::new(Action::Update, 17, Tuple::new(a, b, 5353, 53), Tuple::new(b, a, 53, 5353));
        cmd.route_id = 0x0000_ffff;
        cmd.route_id_reply = 1;
        cmd
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv6_basic_golden_bytes_both_ways() {
        let mut golden = [0u8; 92];
        golden[0] = 4; // action UPDATE
        golden[4..20].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        golden[20..36].copy_from_slice(&"2001:db8:1::53".parse::<Ipv6Addr>().unwrap().octets());
        golden[36..38].copy_from_slice(&[0x14, 0xe9]); // 5353
        golden[38..40].copy_from_slice(&[0x00, 0x35]); // 53
        golden.copy_within(20..36, 40);
        golden.copy_within(4..20, 56);
        golden[72..74].copy_from_slice(&[0x00, 0x35]);
        golden[74..76].copy_from_slice(&[0x14, 0xe9]);
        golden[76] = 17;
        golden[84..88].copy_from_slice(&[0xff, 0xff, 0, 0]);
        golden[88..92].copy_from_slice(&[1, 0, 0, 0]);
        assert_eq!(udp6().to_vec(), golden);
        assert_eq!(Ct6Cmd::parse(&golden).unwrap(), udp6());
    }

    #[test]
    fn ipv6_extended_round_trip_and_sizes() {
        let mut cmd = udp6();
        cmd.extension = Some(CtExtension { tunnel_route_id_reply: 77, ..CtExtension::default() });
        let bytes = cmd.to_vec();
        assert_eq!(bytes.len(), 120);
        assert_eq!(&bytes[116..120], &77u32.to_ne_bytes());
        assert_eq!(Ct6Cmd::parse(&bytes).unwrap(), cmd);
        for bad in [0, 44, 72, 91, 93, 119, 121] {
            assert_eq!(
                Ct6Cmd::parse(&vec![0; bad]),
                Err(FppError::WrongSize {
                    what: "FPP_CMD_IPV6_CONNTRACK",
                    expected: &[92, 120],
                    actual: bad
                })
            );
        }
        for bad in [0, 43, 45, 71, 73, 92] {
            assert!(matches!(Ct4Cmd::parse(&vec![0; bad]), Err(FppError::WrongSize { .. })));
        }
    }

    #[test]
    fn change_event_is_the_basic_layout_with_removed() {
        let event = Ct4Change::removed(&tcp4());
        let bytes = event.to_vec();
        assert_eq!(bytes.len(), 44);
        assert_eq!(&bytes[..2], &3u16.to_ne_bytes());
        assert_eq!(&bytes[2..], &tcp4().to_vec()[2..]);
        let parsed = Ct4Change::parse(&bytes).unwrap();
        assert_eq!(parsed.kind(), Action::Removed);
        assert_eq!(parsed, event);
        assert!(matches!(
            Ct4Change::parse(&bytes[..43]),
            Err(FppError::WrongSize { what: "FPP_CMD_IPV4_CONNTRACK_CHANGE", actual: 43, .. })
        ));
        assert!(matches!(Ct6Change::parse(&[0; 120]), Err(FppError::WrongSize { .. })));
        let mut fin = bytes.clone();
        fin[..2].copy_from_slice(&9u16.to_ne_bytes());
        assert_eq!(Ct4Change::parse(&fin).unwrap().kind(), Action::TcpFin);
    }

    #[test]
    fn walk_steps_are_extended_and_zero() {
        let step = Ct4Cmd::walk_step(Action::Query).to_vec();
        assert_eq!(step.len(), 72);
        assert_eq!(&step[..2], &6u16.to_ne_bytes());
        assert!(step[2..].iter().all(|&b| b == 0));
        let step = Ct6Cmd::walk_step(Action::QueryCont).to_vec();
        assert_eq!(step.len(), 120);
        assert_eq!(&step[..2], &7u16.to_ne_bytes());
        assert!(step[2..].iter().all(|&b| b == 0));
    }

    #[test]
    fn basic_form_drops_the_extension() {
        let mut cmd = tcp4();
        cmd.extension = Some(CtExtension::default());
        let basic = cmd.basic(Action::Deregister);
        assert_eq!(basic.extension, None);
        assert_eq!(basic.action, Action::Deregister);
        assert_eq!(basic.to_vec().len(), 44);
        assert_eq!(tcp4().orig.inverse(), Tuple::new(tcp4().orig.dst, tcp4().orig.src, 443, 51514));
    }
}
