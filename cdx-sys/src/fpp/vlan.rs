//! `FPP_CMD_VLAN_ENTRY` (0x0901): register a VLAN interface on a cdx port.
//!
//! 36 bytes on NXP's cdx (`VlanCommand`, `control_vlan.h`); the ASK port appends the VLAN
//! interface's MAC address and two unused bytes (44 B). Once registered, the VLAN
//! interface's name is a valid output/input device of route commands. Deregistration must
//! name both the id and the interface (`Vlan_handle_entry`, `control_vlan.c`).

use std::mem::offset_of;

use zerocopy::byteorder::native_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::abi::size_error;
use super::{Abi, AbiPayload, Action, FppError, IFNAMSIZ, IfName, emit_bytes};

/// Payload size of NXP's cdx.
pub const LEN: usize = 36;
/// Payload size of the ASK port.
pub const ASK_LEN: usize = 44;

/// The packed layout of NXP's cdx.
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

/// The packed layout of the ASK port: NXP's, then the MAC and two unused bytes.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VlanAskWire {
    /// The fields of NXP's layout.
    pub entry: VlanWire,
    /// The VLAN interface's MAC address.
    pub macaddr: [u8; 6],
    /// Unused.
    pub unused: [u8; 2],
}

const _: () = {
    assert!(size_of::<VlanWire>() == LEN);
    assert!(offset_of!(VlanWire, action) == 0);
    assert!(offset_of!(VlanWire, vlan_id) == 2);
    assert!(offset_of!(VlanWire, vlan_ifname) == 4);
    assert!(offset_of!(VlanWire, vlan_phy_ifname) == 20);
    assert!(size_of::<VlanAskWire>() == ASK_LEN);
    assert!(offset_of!(VlanAskWire, macaddr) == 36);
    assert!(offset_of!(VlanAskWire, unused) == 42);
};

fn sizes(abi: Abi) -> &'static [usize] {
    match abi {
        Abi::Lsdk => &[LEN],
        Abi::Ask => &[ASK_LEN],
    }
}

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
    /// The VLAN interface's MAC (ASK only; not sent to NXP's cdx).
    pub mac: [u8; 6],
}

impl VlanEntry {
    fn to_wire(self) -> VlanWire {
        VlanWire {
            action: U16::new(self.action.value()),
            vlan_id: U16::new(self.vlan_id),
            vlan_ifname: self.ifname.field(),
            vlan_phy_ifname: self.phy_ifname.field(),
        }
    }

    fn from_wire(wire: &VlanWire, mac: [u8; 6]) -> Result<VlanEntry, FppError> {
        Ok(VlanEntry {
            action: Action::from(wire.action.get()),
            vlan_id: wire.vlan_id.get(),
            ifname: IfName::from_field(&wire.vlan_ifname)?,
            phy_ifname: IfName::from_field(&wire.vlan_phy_ifname)?,
            mac,
        })
    }
}

impl AbiPayload for VlanEntry {
    fn len_for(&self, abi: Abi) -> usize {
        match abi {
            Abi::Lsdk => LEN,
            Abi::Ask => ASK_LEN,
        }
    }

    fn emit_for(&self, abi: Abi, buf: &mut [u8]) -> Result<usize, FppError> {
        match abi {
            Abi::Lsdk => emit_bytes(self.to_wire().as_bytes(), buf),
            Abi::Ask => {
                let wire = VlanAskWire { entry: self.to_wire(), macaddr: self.mac, unused: [0; 2] };
                emit_bytes(wire.as_bytes(), buf)
            }
        }
    }

    fn parse_for(abi: Abi, bytes: &[u8]) -> Result<VlanEntry, FppError> {
        let error = || size_error("FPP_CMD_VLAN_ENTRY", abi, sizes, bytes.len());
        match abi {
            Abi::Lsdk => {
                VlanEntry::from_wire(VlanWire::ref_from_bytes(bytes).map_err(|_| error())?, [0; 6])
            }
            Abi::Ask => {
                let wire = VlanAskWire::ref_from_bytes(bytes).map_err(|_| error())?;
                VlanEntry::from_wire(&wire.entry, wire.macaddr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_bytes_in_both_abis() {
        let entry = VlanEntry {
            action: Action::Register,
            vlan_id: 100,
            ifname: IfName::new("eth0.100").unwrap(),
            phy_ifname: IfName::new("eth0").unwrap(),
            mac: [2, 0, 0, 0, 1, 0x64],
        };
        let mut golden = [0u8; ASK_LEN];
        golden[2] = 100;
        golden[4..12].copy_from_slice(b"eth0.100");
        golden[20..24].copy_from_slice(b"eth0");
        golden[36..42].copy_from_slice(&[2, 0, 0, 0, 1, 0x64]);
        assert_eq!(entry.to_vec_for(Abi::Lsdk), golden[..LEN]);
        assert_eq!(entry.to_vec_for(Abi::Ask), golden);
        assert_eq!(VlanEntry::parse_for(Abi::Ask, &golden).unwrap(), entry);
        let lsdk = VlanEntry::parse_for(Abi::Lsdk, &golden[..LEN]).unwrap();
        assert_eq!(lsdk, VlanEntry { mac: [0; 6], ..entry }, "NXP's layout has no MAC");
        assert!(matches!(
            VlanEntry::parse_for(Abi::Lsdk, &golden),
            Err(FppError::OtherAbi { actual: 44, .. })
        ));
        assert!(matches!(
            VlanEntry::parse_for(Abi::Ask, &golden[..35]),
            Err(FppError::WrongSize { .. })
        ));
    }
}
