//! `FPP_CMD_IPV4_SET_TIMEOUT` (0x0319) and the reply of `IPV4/IPV6_GET_TIMEOUT`
//! (0x0320/0x0420): `fpp_timeout_cmd_t`, 12 bytes.
//!
//! SET: `protocol` 6 sets the TCP timeout (`value1`), 17 the UDP ones (`value1` with both
//! directions offloaded, `value2` with one; 0 means "same as value1"), 0 every other
//! protocol; anything else is `UNKNOWN_ACTION`. `sam_4o6` = 1 sets the 4o6/4rd variants.
//! GET replies carry the remaining seconds of one conntrack in `value1`.

use std::mem::offset_of;

use zerocopy::byteorder::native_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{FppError, Payload, emit_bytes, wrong_size};

/// Payload size.
pub const LEN: usize = 12;

/// The packed wire layout.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TimeoutWire {
    /// Protocol selector: 6, 17 or 0 (all others).
    pub protocol: U16,
    /// 1: the 4o6/4rd variants.
    pub sam_4o6_timeout: U16,
    /// Seconds (UDP: both directions offloaded). GET: remaining seconds.
    pub timeout_value1: U32,
    /// UDP with one direction offloaded (0: same as `timeout_value1`).
    pub timeout_value2: U32,
}

const _: () = {
    assert!(size_of::<TimeoutWire>() == LEN);
    assert!(offset_of!(TimeoutWire, protocol) == 0);
    assert!(offset_of!(TimeoutWire, sam_4o6_timeout) == 2);
    assert!(offset_of!(TimeoutWire, timeout_value1) == 4);
    assert!(offset_of!(TimeoutWire, timeout_value2) == 8);
};

/// A timeout command or get-timeout result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimeoutCmd {
    /// Protocol selector: 6, 17 or 0.
    pub protocol: u16,
    /// 1: the 4o6/4rd variants.
    pub sam_4o6: u16,
    /// Seconds (UDP: bidirectional). GET: remaining seconds.
    pub value1: u32,
    /// UDP unidirectional seconds (0: same as `value1`).
    pub value2: u32,
}

impl Payload for TimeoutCmd {
    fn buffer_len(&self) -> usize {
        LEN
    }

    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError> {
        let wire = TimeoutWire {
            protocol: U16::new(self.protocol),
            sam_4o6_timeout: U16::new(self.sam_4o6),
            timeout_value1: U32::new(self.value1),
            timeout_value2: U32::new(self.value2),
        };
        emit_bytes(wire.as_bytes(), buf)
    }

    fn parse(bytes: &[u8]) -> Result<TimeoutCmd, FppError> {
        let wire = TimeoutWire::ref_from_bytes(bytes)
            .map_err(|_| wrong_size("fpp_timeout_cmd_t", &[LEN], bytes.len()))?;
        Ok(TimeoutCmd {
            protocol: wire.protocol.get(),
            sam_4o6: wire.sam_4o6_timeout.get(),
            value1: wire.timeout_value1.get(),
            value2: wire.timeout_value2.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn golden_bytes_both_ways() {
        let cmd = TimeoutCmd { protocol: 17, sam_4o6: 0, value1: 180, value2: 30 };
        let golden = [17, 0, 0, 0, 180, 0, 0, 0, 30, 0, 0, 0];
        assert_eq!(cmd.to_vec(), golden);
        assert_eq!(TimeoutCmd::parse(&golden).unwrap(), cmd);
        let tcp = TimeoutCmd { protocol: 6, sam_4o6: 1, value1: 432_000, value2: 0 };
        assert_eq!(tcp.to_vec(), [6, 0, 1, 0, 0x80, 0x97, 0x06, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn exact_size_only() {
        assert!(matches!(TimeoutCmd::parse(&[0; 11]), Err(FppError::WrongSize { actual: 11, .. })));
        assert!(matches!(TimeoutCmd::parse(&[0; 13]), Err(FppError::WrongSize { actual: 13, .. })));
    }
}
