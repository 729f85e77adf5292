//! Conntrack status bits (`enum ip_conntrack_status`, `IPS_*`), carried by `CTA_STATUS`.

use crate::error::{DecodeError, EmitError};
use crate::nla::{AttrValue, AttrWriter};

bitflags::bitflags! {
    /// Status of a conntrack entry. Bits this crate does not name (bits of future kernels,
    /// an ASK kernel's `IPS_PERMANENT` and `IPS_DPI_ALLOWED`, whose numbers depend on the
    /// kernel: see [`PermanentBit`](crate::PermanentBit)) are kept: build with
    /// [`Status::from_bits_retain`] and they survive parse and emit. On an ASK 5.4 kernel,
    /// bit 15 ([`Status::HW_OFFLOAD`] here) is `IPS_PERMANENT`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Status: u32 {
        /// `IPS_EXPECTED`: an expected connection (related to a master, e.g. FTP data).
        const EXPECTED = 1 << 0;
        /// `IPS_SEEN_REPLY`: packets have been seen in both directions.
        const SEEN_REPLY = 1 << 1;
        /// `IPS_ASSURED`: the connection is established enough not to be dropped early.
        const ASSURED = 1 << 2;
        /// `IPS_CONFIRMED`: the entry is in the table (every event carries it).
        const CONFIRMED = 1 << 3;
        /// `IPS_SRC_NAT`: source NAT applies (the reply tuple's destination differs).
        const SRC_NAT = 1 << 4;
        /// `IPS_DST_NAT`: destination NAT applies (the reply tuple's source differs).
        const DST_NAT = 1 << 5;
        /// `IPS_SEQ_ADJUST`: TCP sequence numbers are rewritten (by a helper or synproxy).
        const SEQ_ADJUST = 1 << 6;
        /// `IPS_SRC_NAT_DONE`: the source NAT binding is set up.
        const SRC_NAT_DONE = 1 << 7;
        /// `IPS_DST_NAT_DONE`: the destination NAT binding is set up.
        const DST_NAT_DONE = 1 << 8;
        /// `IPS_DYING`: the entry is being removed.
        const DYING = 1 << 9;
        /// `IPS_FIXED_TIMEOUT`: the timeout does not follow protocol state.
        const FIXED_TIMEOUT = 1 << 10;
        /// `IPS_TEMPLATE`: a template, not a connection.
        const TEMPLATE = 1 << 11;
        /// `IPS_NAT_CLASH` (formerly `IPS_UNTRACKED`): a NAT clash was resolved on this entry.
        const NAT_CLASH = 1 << 12;
        /// `IPS_HELPER`: a helper was assigned explicitly (by a ct helper rule).
        const HELPER = 1 << 13;
        /// `IPS_OFFLOAD`: the flow is in the kernel's software flowtable.
        const OFFLOAD = 1 << 14;
        /// `IPS_HW_OFFLOAD`: the flow is offloaded to hardware by the kernel's flowtable.
        const HW_OFFLOAD = 1 << 15;
        // Every other bit is kept as it came, never dropped.
        const _ = !0;
    }
}

impl<'a> AttrValue<'a> for Status {
    #[inline]
    fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
        u32::decode(bytes, attr).map(Status::from_bits_retain)
    }

    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
        self.bits().encode(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bits_survive_decode_and_encode() {
        // Bit 16 is a vendor IPS_PERMANENT on some ASK kernels; bit 31 is nothing yet.
        let bytes = [0x80, 0x01, 0xc0, 0x0e];
        let status = Status::decode(&bytes, "CTA_STATUS").unwrap();
        assert_eq!(status.bits(), 0x8001_c00e);
        assert!(status.contains(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED));
        assert!(status.contains(Status::OFFLOAD | Status::HW_OFFLOAD));
        let mut out = Vec::new();
        let mut writer = AttrWriter::new(&mut out);
        status.encode(&mut writer).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn wrong_size_is_an_error_naming_the_attribute() {
        assert_eq!(
            Status::decode(&[0, 0, 8], "CTA_STATUS"),
            Err(DecodeError::ValueLength { attr: "CTA_STATUS", expected: 4, actual: 3 })
        );
    }
}
