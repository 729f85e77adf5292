//! `FPP_CMD_VLAN_ENTRY` (0x0901): register a VLAN interface on a cdx port, 36 bytes.
//!
//! Once registered, the VLAN interface's name is a valid output/input device of route
//! commands.

use std::mem::offset_of;

use zerocopy::byteorder::native_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Action, FppError, IFNAMSIZ, IfName, Payload, emit_bytes, wrong_size};

/// Payload size.
pub const LEN: usize = 36;

/// The packed wire layout.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VlanWire {
    /// [`Action`].
    pub action: U16,
    /// 802.1Q id.
    pub vlan_id: U16,
    /// The VLAN interface's name.
    pub vlan_ifname: [u8; IFNAMSIZ],
    /// The parent (physical) interface's name.
    pub vlan_phy_ifname: [u8; IFNAMSIZ],
}

const _: () = {
    assert!(size_of::<VlanWire>() == LEN);
    assert!(offset_of!(VlanWire, action) == 0);
    assert!(offset_of!(VlanWire, vlan_id) == 2);
    assert!(offset_of!(VlanWire, vlan_ifname) == 4);
    assert!(offset_of!(VlanWire, vlan_phy_ifname) == 20);
};

/// A VLAN interface registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanEntry {
    /// REGISTER or DEREGISTER.
    pub action: Action,
    /// 802.1Q id.
    pub vlan_id: u16,
    /// The VLAN interface.
    pub ifname: IfName,
    /// Its parent port.
    pub phy_ifname: IfName,
}

impl Payload for VlanEntry {
    fn buffer_len(&self) -> usize {
        LEN
    }

    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        let wire = VlanWire {
            action: U16::new(self.action.value()),
            vlan_id: U16::new(self.vlan_id),
            vlan_ifname: self.ifname.field(),
            vlan_phy_ifname: self.phy_ifname.field(),
        };
        emit_bytes(wire.as_bytes(), buf)
    }

    fn parse(bytes: &[u8]) -> Result<VlanEntry, FppError> {
        let wire = VlanWire::ref_from_bytes(bytes)
            .map_err(|_| wrong_size("FPP_CMD_VLAN_ENTRY", &[LEN], bytes.len()))?;
        Ok(VlanEntry {
            action: Action::from(wire.action.get()),
            vlan_id: wire.vlan_id.get(),
            ifname: IfName::from_field(&wire.vlan_ifname)?,
            phy_ifname: IfName::from_field(&wire.vlan_phy_ifname)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_bytes_both_ways() {
        let entry = VlanEntry {
            action: Action::Register,
            vlan_id: 100,
            ifname: IfName::new("eth0.100").unwrap(),
            phy_ifname: IfName::new("eth0").unwrap(),
        };
        let mut golden = [0u8; LEN];
        golden[2] = 100;
        golden[4..12].copy_from_slice(b"eth0.100");
        golden[20..24].copy_from_slice(b"eth0");
        assert_eq!(entry.to_vec(), golden);
        assert_eq!(VlanEntry::parse(&golden).unwrap(), entry);
        assert!(matches!(VlanEntry::parse(&golden[..35]), Err(FppError::WrongSize { .. })));
    }
}
