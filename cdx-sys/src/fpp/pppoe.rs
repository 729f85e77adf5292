//! `FPP_CMD_PPPOE_ENTRY` (0x0601): register a PPPoE session as a cdx interface.
//!
//! 44 bytes in both ABIs (`PPPoECommand`, `control_pppoe.h`, NXP's cdx and the ASK port
//! alike): action, session id, the peer's (the access concentrator's) MAC address, the
//! interface the session runs on (an FMan port or a registered VLAN), the PPP interface's
//! name and a mode word. cdx converts the session id to network order itself (`htons` in
//! `PPPoE_Handle_Entry`), so it travels in the CPU's order like every other integer. Once
//! registered, the PPP interface's name is a valid output and input of route commands, and
//! cdx builds the PPPoE header of egress packets from the session (a route out of it needs
//! no next-hop MAC). Deregistration names the session id, the MAC and the PPP interface.
//! A walk (`QUERY`/`QUERY_CONT`) answers 44 bytes: the return code over the action, then
//! the entry; the mode is not written ([`super::unwritten`]).

use std::mem::offset_of;

use zerocopy::byteorder::native_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Action, FppError, IFNAMSIZ, IfName, Payload, emit_bytes, wrong_size};

/// Payload size (both ABIs).
pub const LEN: usize = 44;

/// `PPPOE_AUTO_MODE`: cdx's idle timer reports to the PPP driver (builds with
/// `PPPOE_AUTO_ENABLE` only; cmm sends 0 otherwise).
pub const AUTO_MODE: u16 = 0x1;

/// The packed layout (`PPPoECommand`).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PppoeWire {
    /// [`Action`].
    pub action: U16,
    /// PPPoE session id (CPU order; cdx converts it).
    pub session_id: U16,
    /// The peer's MAC address.
    pub macaddr: [u8; 6],
    /// The interface the session runs on.
    pub phy_intf: [u8; IFNAMSIZ],
    /// The PPP interface.
    pub log_intf: [u8; IFNAMSIZ],
    /// [`AUTO_MODE`] or 0.
    pub mode: U16,
}

const _: () = {
    assert!(size_of::<PppoeWire>() == LEN);
    assert!(align_of::<PppoeWire>() == 1);
    assert!(offset_of!(PppoeWire, action) == 0);
    assert!(offset_of!(PppoeWire, session_id) == 2);
    assert!(offset_of!(PppoeWire, macaddr) == 4);
    assert!(offset_of!(PppoeWire, phy_intf) == 10);
    assert!(offset_of!(PppoeWire, log_intf) == 26);
    assert!(offset_of!(PppoeWire, mode) == 42);
};

/// A PPPoE session registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PppoeEntry {
    /// REGISTER, DEREGISTER, QUERY or QUERY_CONT.
    pub action: Action,
    /// The session id.
    pub session_id: u16,
    /// The peer's MAC address.
    pub mac: [u8; 6],
    /// The interface the session runs on (`phy_intf`).
    pub phy_ifname: IfName,
    /// The PPP interface (`log_intf`).
    pub ifname: IfName,
    /// [`AUTO_MODE`] or 0.
    pub mode: u16,
}

impl PppoeEntry {
    /// A walk step: `action` QUERY (restart) or QUERY_CONT (next session), every other field
    /// zero (cdx checks only the size).
    pub fn walk_step(action: Action) -> PppoeEntry {
        PppoeEntry {
            action,
            session_id: 0,
            mac: [0; 6],
            phy_ifname: IfName::EMPTY,
            ifname: IfName::EMPTY,
            mode: 0,
        }
    }

    /// The wire form.
    pub fn to_wire(&self) -> PppoeWire {
        PppoeWire {
            action: U16::new(self.action.value()),
            session_id: U16::new(self.session_id),
            macaddr: self.mac,
            phy_intf: self.phy_ifname.field(),
            log_intf: self.ifname.field(),
            mode: U16::new(self.mode),
        }
    }

    /// Reads the wire form.
    ///
    /// # Errors
    /// [`FppError::IfName`] for a name field without a terminating NUL.
    pub fn from_wire(wire: &PppoeWire) -> Result<PppoeEntry, FppError> {
        Ok(PppoeEntry {
            action: Action::from(wire.action.get()),
            session_id: wire.session_id.get(),
            mac: wire.macaddr,
            phy_ifname: IfName::from_field(&wire.phy_intf)?,
            ifname: IfName::from_field(&wire.log_intf)?,
            mode: wire.mode.get(),
        })
    }
}

impl Payload for PppoeEntry {
    fn buffer_len(&self) -> usize {
        LEN
    }

    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        emit_bytes(self.to_wire().as_bytes(), buf)
    }

    fn parse(bytes: &[u8]) -> Result<PppoeEntry, FppError> {
        let wire = PppoeWire::ref_from_bytes(bytes)
            .map_err(|_| wrong_size("FPP_CMD_PPPOE_ENTRY", &[LEN], bytes.len()))?;
        PppoeEntry::from_wire(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_bytes() {
        let entry = PppoeEntry {
            action: Action::Register,
            session_id: 0x1234,
            mac: [0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f],
            phy_ifname: IfName::new("eth0.100").unwrap(),
            ifname: IfName::new("ppp0").unwrap(),
            mode: 0,
        };
        let mut golden = [0u8; LEN];
        golden[2..4].copy_from_slice(&[0x34, 0x12]);
        golden[4..10].copy_from_slice(&[0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        golden[10..18].copy_from_slice(b"eth0.100");
        golden[26..30].copy_from_slice(b"ppp0");
        assert_eq!(entry.to_vec(), golden);
        assert_eq!(PppoeEntry::parse(&golden).unwrap(), entry);
        let deregister = PppoeEntry { action: Action::Deregister, mode: AUTO_MODE, ..entry };
        let bytes = deregister.to_vec();
        assert_eq!((bytes[0], bytes[42]), (1, 1));
    }

    #[test]
    fn wrong_sizes_and_unterminated_names_are_errors() {
        assert!(matches!(PppoeEntry::parse(&[0; 43]), Err(FppError::WrongSize { actual: 43, .. })));
        assert!(matches!(PppoeEntry::parse(&[0; 46]), Err(FppError::WrongSize { .. })));
        let mut bytes = PppoeEntry::walk_step(Action::Query).to_vec();
        bytes[26..42].fill(b'x');
        assert!(matches!(PppoeEntry::parse(&bytes), Err(FppError::IfName(_))));
    }
}
