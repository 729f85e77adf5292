//! The packed layouts of the conntrack command in both ABIs, with their compile-time size
//! and offset assertions.
//!
//! One generic struct, [`CtWire`], instantiated with a 4- or 16-byte address and a 32-bit
//! (`fwmark`, LSDK) or 64-bit (`qosconnmark`, ASK) mark. The extension ([`CtExtWire`]) is
//! the same 28 bytes in both ABIs; it follows the basic layout, so it starts at 44/92 (LSDK)
//! or 48/96 (ASK).

use std::fmt::Debug;
use std::mem::offset_of;

use zerocopy::byteorder::native_endian::{U16, U32, U64};
use zerocopy::byteorder::network_endian::U16 as PortU16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::fpp::Abi;

/// The basic conntrack layout, generic over the address field (`[u8; 4]` or `[u8; 16]`) and
/// the mark field ([`U32`] or [`U64`]).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CtWire<A: WireAddr, M: WireMark> {
    /// `Action` (in walk replies: the return code).
    pub action: U16,
    /// Reserved in the basic layout, `CtFormat` in the extended one.
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
    /// `CtFlags`.
    pub flags: U16,
    /// QoS mark: `fwmark` (LSDK) or `qosconnmark` (ASK).
    pub mark: M,
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

/// The basic IPv4 layout of NXP's cdx (44 B).
pub type Ct4Wire = CtWire<[u8; 4], U32>;
/// The basic IPv6 layout of NXP's cdx (92 B).
pub type Ct6Wire = CtWire<[u8; 16], U32>;
/// The basic IPv4 layout of the ASK port (48 B).
pub type Ct4AskWire = CtWire<[u8; 4], U64>;
/// The basic IPv6 layout of the ASK port (96 B).
pub type Ct6AskWire = CtWire<[u8; 16], U64>;

/// Size of the extension.
pub const EXT_LEN: usize = 28;

const _: () = {
    assert!(size_of::<Ct4Wire>() == 44 && size_of::<Ct4AskWire>() == 48);
    assert!(size_of::<Ct6Wire>() == 92 && size_of::<Ct6AskWire>() == 96);
    assert!(size_of::<CtExtWire>() == EXT_LEN);
    assert!(align_of::<Ct4Wire>() == 1 && align_of::<Ct6AskWire>() == 1);
    assert!(align_of::<CtExtWire>() == 1);
    // IPv4, both ABIs: identical up to the mark (reference §4.3; ASK fe.h `CtCommand`).
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
    assert!(offset_of!(Ct4Wire, mark) == 32 && offset_of!(Ct4AskWire, mark) == 32);
    assert!(offset_of!(Ct4Wire, route_id) == 36 && offset_of!(Ct4AskWire, route_id) == 40);
    assert!(offset_of!(Ct4Wire, route_id_reply) == 40);
    assert!(offset_of!(Ct4AskWire, route_id_reply) == 44);
    assert!(offset_of!(Ct4AskWire, protocol) == 28 && offset_of!(Ct4AskWire, flags) == 30);
    // IPv6, both ABIs.
    assert!(offset_of!(Ct6Wire, saddr) == 4);
    assert!(offset_of!(Ct6Wire, daddr) == 20);
    assert!(offset_of!(Ct6Wire, sport) == 36);
    assert!(offset_of!(Ct6Wire, dport) == 38);
    assert!(offset_of!(Ct6Wire, saddr_reply) == 40);
    assert!(offset_of!(Ct6Wire, daddr_reply) == 56);
    assert!(offset_of!(Ct6Wire, sport_reply) == 72);
    assert!(offset_of!(Ct6Wire, dport_reply) == 74);
    assert!(offset_of!(Ct6Wire, protocol) == 76 && offset_of!(Ct6AskWire, protocol) == 76);
    assert!(offset_of!(Ct6Wire, flags) == 78 && offset_of!(Ct6AskWire, flags) == 78);
    assert!(offset_of!(Ct6Wire, mark) == 80 && offset_of!(Ct6AskWire, mark) == 80);
    assert!(offset_of!(Ct6Wire, route_id) == 84 && offset_of!(Ct6AskWire, route_id) == 88);
    assert!(offset_of!(Ct6Wire, route_id_reply) == 88);
    assert!(offset_of!(Ct6AskWire, route_id_reply) == 92);
    // extension offsets, relative to its start
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

/// A mark field of the wire layout: [`U32`] (LSDK `fwmark`) or [`U64`] (ASK
/// `qosconnmark`).
pub trait WireMark:
    FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned + Copy + Debug + sealed::Sealed
{
    /// The ABI with this mark.
    const ABI: Abi;
    /// The field holding `mark`, or `None` if it does not fit.
    fn from_mark(mark: u64) -> Option<Self>;
    /// The mark the field holds.
    fn to_mark(self) -> u64;
}

impl WireMark for U32 {
    const ABI: Abi = Abi::Lsdk;
    fn from_mark(mark: u64) -> Option<U32> {
        u32::try_from(mark).ok().map(U32::new)
    }
    fn to_mark(self) -> u64 {
        u64::from(self.get())
    }
}

impl WireMark for U64 {
    const ABI: Abi = Abi::Ask;
    fn from_mark(mark: u64) -> Option<U64> {
        Some(U64::new(mark))
    }
    fn to_mark(self) -> u64 {
        self.get()
    }
}

pub(super) mod sealed {
    pub trait Sealed {}
    impl Sealed for [u8; 4] {}
    impl Sealed for [u8; 16] {}
    impl Sealed for zerocopy::byteorder::native_endian::U32 {}
    impl Sealed for zerocopy::byteorder::native_endian::U64 {}
    impl Sealed for super::super::V4 {}
    impl Sealed for super::super::V6 {}
}
