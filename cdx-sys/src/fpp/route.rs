//! `FPP_CMD_IP_ROUTE` (0x0313): the route object a conntrack direction forwards with.
//!
//! One 84-byte layout for IPv4 and IPv6 conntracks. A route must be registered (by id)
//! before the conntrack that references it; cdx resolves the output name against its
//! interface table (`UNKNOWN_INTERFACE` otherwise), keeps the MTU given at registration
//! (UPDATE replaces ports and MAC, not the MTU; 0 is stored as 0xFFFF, "no limit") and
//! refuses to deregister a route conntracks still use (`RT_ENTRY_LINKED`).

use std::mem::offset_of;

use zerocopy::byteorder::native_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Action, FppError, IFNAMSIZ, IfName, Payload, emit_bytes, wrong_size};

/// Payload size.
pub const LEN: usize = 84;

/// The packed wire layout (`RtCommand` in cdx).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RouteWire {
    /// [`Action`].
    pub action: U16,
    /// Path MTU (0: no limit).
    pub mtu: U16,
    /// Next-hop MAC.
    pub dst_mac: [u8; 6],
    /// Padding.
    pub pad: [u8; 2],
    /// Egress interface name.
    pub output_device: [u8; IFNAMSIZ],
    /// Ingress interface name.
    pub input_device: [u8; IFNAMSIZ],
    /// Ingress physical port name.
    pub underlying_input_device: [u8; IFNAMSIZ],
    /// Route id (1..=65535 as CMM allocates them).
    pub id: U32,
    /// [`RouteFlags`].
    pub flags: U32,
    /// Tunnel remote address, network order (IPv4 in the first 4 bytes).
    pub dst_addr: [u8; 16],
}

const _: () = {
    assert!(size_of::<RouteWire>() == LEN);
    assert!(align_of::<RouteWire>() == 1);
    assert!(offset_of!(RouteWire, action) == 0);
    assert!(offset_of!(RouteWire, mtu) == 2);
    assert!(offset_of!(RouteWire, dst_mac) == 4);
    assert!(offset_of!(RouteWire, pad) == 10);
    assert!(offset_of!(RouteWire, output_device) == 12);
    assert!(offset_of!(RouteWire, input_device) == 28);
    assert!(offset_of!(RouteWire, underlying_input_device) == 44);
    assert!(offset_of!(RouteWire, id) == 60);
    assert!(offset_of!(RouteWire, flags) == 64);
    assert!(offset_of!(RouteWire, dst_addr) == 68);
};

flag_set! {
    /// Route flags.
    pub struct RouteFlags(u32) {
        /// 6-over-4 tunnel route: IPv4 remote in the first 4 bytes of `dst_addr`.
        const ROUTE_6O4 = 0x1;
        /// 4-over-6 tunnel route: IPv6 remote in `dst_addr`.
        const ROUTE_4O6 = 0x2;
    }
}

/// A route command (owned, validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteCmd {
    /// What to do.
    pub action: Action,
    /// Path MTU (0: no limit).
    pub mtu: u16,
    /// Next-hop MAC (all zero for NOARP outputs).
    pub dst_mac: [u8; 6],
    /// Egress port name.
    pub output: IfName,
    /// Ingress port name.
    pub input: IfName,
    /// Ingress physical port (the bridge member when the input is a bridge).
    pub underlying_input: IfName,
    /// Route id.
    pub id: u32,
    /// Tunnel flags.
    pub flags: RouteFlags,
    /// Tunnel remote address, network order.
    pub tunnel_dst: [u8; 16],
}

impl RouteCmd {
    /// A plain (non-tunnel) route command.
    pub fn new(
        action: Action,
        id: u32,
        output: IfName,
        input: IfName,
        dst_mac: [u8; 6],
        mtu: u16,
    ) -> RouteCmd {
        RouteCmd {
            action,
            mtu,
            dst_mac,
            output,
            input,
            underlying_input: input,
            id,
            flags: RouteFlags::EMPTY,
            tunnel_dst: [0; 16],
        }
    }

    /// A walk step: `action` QUERY (restart) or QUERY_CONT (next route), every other
    /// field zero.
    pub fn walk_step(action: Action) -> RouteCmd {
        RouteCmd::new(action, 0, IfName::EMPTY, IfName::EMPTY, [0; 6], 0)
    }

    /// The wire form.
    pub fn to_wire(&self) -> RouteWire {
        RouteWire {
            action: U16::new(self.action.value()),
            mtu: U16::new(self.mtu),
            dst_mac: self.dst_mac,
            pad: [0; 2],
            output_device: self.output.field(),
            input_device: self.input.field(),
            underlying_input_device: self.underlying_input.field(),
            id: U32::new(self.id),
            flags: U32::new(self.flags.bits()),
            dst_addr: self.tunnel_dst,
        }
    }

    /// Reads the wire form.
    ///
    /// # Errors
    /// [`FppError::IfName`] if a name field has no NUL terminator.
    pub fn from_wire(wire: &RouteWire) -> Result<RouteCmd, FppError> {
        Ok(RouteCmd {
            action: Action::from(wire.action.get()),
            mtu: wire.mtu.get(),
            dst_mac: wire.dst_mac,
            output: IfName::from_field(&wire.output_device)?,
            input: IfName::from_field(&wire.input_device)?,
            underlying_input: IfName::from_field(&wire.underlying_input_device)?,
            id: wire.id.get(),
            flags: RouteFlags(wire.flags.get()),
            tunnel_dst: wire.dst_addr,
        })
    }
}

impl Payload for RouteCmd {
    fn buffer_len(&self) -> usize {
        LEN
    }

    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        emit_bytes(self.to_wire().as_bytes(), buf)
    }

    fn parse(bytes: &[u8]) -> Result<RouteCmd, FppError> {
        let wire = RouteWire::ref_from_bytes(bytes)
            .map_err(|_| wrong_size("FPP_CMD_IP_ROUTE", &[LEN], bytes.len()))?;
        RouteCmd::from_wire(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// REGISTER id 7, output fm1-mac3, input fm1-mac4, MAC 02:00:00:00:00:01, MTU 1500,
    /// laid out by hand from the reference table (little-endian host).
    #[cfg(target_endian = "little")]
    const GOLDEN: [u8; LEN] = [
        0x00, 0x00, // action REGISTER
        0xdc, 0x05, // mtu 1500
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst_mac
        0x00, 0x00, // pad
        b'f', b'm', b'1', b'-', b'm', b'a', b'c', b'3', 0, 0, 0, 0, 0, 0, 0, 0, // output
        b'f', b'm', b'1', b'-', b'm', b'a', b'c', b'4', 0, 0, 0, 0, 0, 0, 0, 0, // input
        b'f', b'm', b'1', b'-', b'm', b'a', b'c', b'4', 0, 0, 0, 0, 0, 0, 0, 0, // underlying
        0x07, 0x00, 0x00, 0x00, // id 7
        0x00, 0x00, 0x00, 0x00, // flags
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // dst_addr
    ];

    fn sample() -> RouteCmd {
        RouteCmd::new(
            Action::Register,
            7,
            IfName::new("fm1-mac3").unwrap(),
            IfName::new("fm1-mac4").unwrap(),
            [0x02, 0, 0, 0, 0, 0x01],
            1500,
        )
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_bytes_both_ways() {
        assert_eq!(sample().to_vec(), GOLDEN);
        assert_eq!(RouteCmd::parse(&GOLDEN).unwrap(), sample());
    }

    #[test]
    fn walk_step_is_zero_but_the_action() {
        let step = RouteCmd::walk_step(Action::QueryCont).to_vec();
        assert_eq!(step.len(), LEN);
        assert_eq!(&step[..2], &7u16.to_ne_bytes());
        assert!(step[2..].iter().all(|&b| b == 0));
    }

    #[test]
    fn exact_size_only() {
        let bytes = sample().to_vec();
        assert_eq!(
            RouteCmd::parse(&bytes[..83]),
            Err(FppError::WrongSize { what: "FPP_CMD_IP_ROUTE", expected: &[84], actual: 83 })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(RouteCmd::parse(&long), Err(FppError::WrongSize { actual: 85, .. })));
    }

    #[test]
    fn unterminated_name_is_rejected() {
        let mut bytes = sample().to_vec();
        bytes[12..28].copy_from_slice(b"0123456789abcdef");
        assert_eq!(
            RouteCmd::parse(&bytes),
            Err(FppError::IfName(crate::fpp::IfNameError::Unterminated))
        );
    }

    #[test]
    fn tunnel_fields_round_trip() {
        let mut cmd = sample();
        cmd.action = Action::Update;
        cmd.flags = RouteFlags::ROUTE_4O6;
        cmd.tunnel_dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        let bytes = cmd.to_vec();
        assert_eq!(&bytes[68..84], &cmd.tunnel_dst);
        assert_eq!(&bytes[64..68], &2u32.to_ne_bytes());
        assert_eq!(RouteCmd::parse(&bytes).unwrap(), cmd);
        assert_eq!(format!("{:?}", RouteFlags(3 | 8)), "RouteFlags(ROUTE_6O4 | ROUTE_4O6 | 0x8)");
    }
}
