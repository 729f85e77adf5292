//! `FPP_CMD_IPV4_FF_CONTROL` (0x0321): `{u16 enable; u16 reserved}`, 4 bytes.
//!
//! cdx stores `enable` in a global nothing else reads; enabling also resets every
//! conntrack's activity timestamp (until the next refresh from the hardware). cdx accepts
//! only 0 and 1 and answers any other value `WRONG_COMMAND_PARAM`
//! (`IPv4_HandleIP_FF_CONTROL`); this value reads any non-zero `enable` as on.

use std::mem::offset_of;

use zerocopy::byteorder::native_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{FppError, Payload, emit_bytes, wrong_size};

/// Payload size.
pub const LEN: usize = 4;

/// The packed wire layout.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FfControlWire {
    /// Non-zero: enable.
    pub enable: U16,
    /// Reserved.
    pub reserved: U16,
}

const _: () = {
    assert!(size_of::<FfControlWire>() == LEN);
    assert!(offset_of!(FfControlWire, enable) == 0);
    assert!(offset_of!(FfControlWire, reserved) == 2);
};

/// The fast-forward switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FfControl {
    /// On or off (any non-zero value on the wire is on).
    pub enable: bool,
}

impl Payload for FfControl {
    fn buffer_len(&self) -> usize {
        LEN
    }

    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        let wire = FfControlWire { enable: U16::new(u16::from(self.enable)), reserved: U16::ZERO };
        emit_bytes(wire.as_bytes(), buf)
    }

    fn parse(bytes: &[u8]) -> Result<FfControl, FppError> {
        let wire = FfControlWire::ref_from_bytes(bytes)
            .map_err(|_| wrong_size("FPP_CMD_IPV4_FF_CONTROL", &[LEN], bytes.len()))?;
        Ok(FfControl { enable: wire.enable.get() != 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_bytes_both_ways() {
        assert_eq!(FfControl { enable: true }.to_vec(), [1, 0, 0, 0]);
        assert_eq!(FfControl { enable: false }.to_vec(), [0, 0, 0, 0]);
        assert_eq!(FfControl::parse(&[1, 0, 0, 0]).unwrap(), FfControl { enable: true });
        assert_eq!(FfControl::parse(&[0, 2, 9, 9]).unwrap(), FfControl { enable: true });
        assert_eq!(FfControl::parse(&[0, 0, 9, 9]).unwrap(), FfControl { enable: false });
        assert!(matches!(FfControl::parse(&[0; 2]), Err(FppError::WrongSize { .. })));
    }
}
