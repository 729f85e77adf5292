//! `*_CONNTRACK_CHANGE` events: what cdx tells its listeners when it removes a conntrack.
//!
//! cdx builds the event in a static message buffer (`msg_buf`, `cdx_hal.c`) and writes only
//! `action` (REMOVED or TCP_FIN), both tuples, `protocol`, and a zero mark
//! (`IPv4_delete_CTpair` in `control_ipv4.c`, `IPv6_delete_CTpair` in `control_ipv6.c`,
//! both builds). The reserved word at offset 2, `flags` and both route ids hold whatever the
//! previous message left there, so [`CtChange`] has no such fields: they are neither decoded
//! nor given a meaning ([`crate::fpp::unwritten::REMOVED_EVENT`] lists them).
//!
//! Every field cdx writes sits at the same offset in both ABIs (the layouts differ only from
//! the mark on), and the two ABIs' event sizes differ (44/48, 92/96), so [`CtEvent::parse`]
//! reads an event of either ABI without being told which.

use std::net::IpAddr;

use zerocopy::FromBytes;
use zerocopy::byteorder::native_endian::{U32, U64};

use super::{CtCmd, CtWire, Family, Tuple, V4, V6, tuples_from_wire};
use crate::fpp::abi::size_error;
use crate::fpp::{Abi, AbiPayload, Action, FCode, FppError};

/// A `*_CONNTRACK_CHANGE` event: the fields cdx writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtChange<F: Family> {
    /// REMOVED, TCP_FIN, or another action cdx should not send.
    pub kind: Action,
    /// IP protocol.
    pub protocol: u16,
    /// Original tuple.
    pub orig: Tuple<F::Addr>,
    /// Reply tuple.
    pub reply: Tuple<F::Addr>,
}

/// An IPv4 change event.
pub type Ct4Change = CtChange<V4>;
/// An IPv6 change event.
pub type Ct6Change = CtChange<V6>;

impl<F: Family> CtChange<F> {
    /// A REMOVED event for the conntrack `conntrack` names.
    pub fn removed(conntrack: &CtCmd<F>) -> CtChange<F> {
        CtChange {
            kind: Action::Removed,
            protocol: conntrack.protocol,
            orig: conntrack.orig,
            reply: conntrack.reply,
        }
    }

    /// REMOVED, TCP_FIN, or another action cdx should not send.
    pub fn kind(&self) -> Action {
        self.kind
    }

    /// The event as a command value (zero mark, flags and route ids, as cdx's fresh
    /// message buffer would hold them).
    pub fn to_cmd(&self) -> CtCmd<F> {
        let mut cmd = CtCmd::new(self.kind, 0, self.orig, self.reply);
        cmd.protocol = self.protocol;
        cmd
    }

    fn parse_with<M: super::WireMark>(bytes: &[u8]) -> Option<CtChange<F>> {
        let wire = CtWire::<F::Wire, M>::ref_from_bytes(bytes).ok()?;
        let (orig, reply) = tuples_from_wire::<F, M>(wire);
        Some(CtChange {
            kind: Action::from(wire.action.get()),
            protocol: wire.protocol.get(),
            orig,
            reply,
        })
    }

    /// Parses an event of either ABI; also returns which one its size says.
    ///
    /// # Errors
    /// [`FppError::WrongSize`] for a size neither ABI has.
    pub fn parse_any(bytes: &[u8]) -> Result<(CtChange<F>, Abi), FppError> {
        if let Some(change) = CtChange::parse_with::<U32>(bytes) {
            return Ok((change, Abi::Lsdk));
        }
        if let Some(change) = CtChange::parse_with::<U64>(bytes) {
            return Ok((change, Abi::Ask));
        }
        Err(FppError::WrongSize {
            what: F::CHANGE_NAME,
            expected: F::basic_sizes(Abi::Lsdk),
            actual: bytes.len(),
        })
    }
}

impl<F: Family> AbiPayload for CtChange<F> {
    fn len_for(&self, abi: Abi) -> usize {
        F::basic_len(abi)
    }

    fn emit_for(&self, abi: Abi, buf: &mut [u8]) -> Result<usize, FppError> {
        self.to_cmd().emit_for(abi, buf)
    }

    fn parse_for(abi: Abi, bytes: &[u8]) -> Result<CtChange<F>, FppError> {
        let parsed = match abi {
            Abi::Lsdk => CtChange::parse_with::<U32>(bytes),
            Abi::Ask => CtChange::parse_with::<U64>(bytes),
        };
        parsed.ok_or_else(|| size_error(F::CHANGE_NAME, abi, F::basic_sizes, bytes.len()))
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

    /// The event payload in `abi`'s layout (unwritten fields zero).
    pub fn to_vec_for(&self, abi: Abi) -> Vec<u8> {
        match self {
            CtEvent::V4(change) => change.to_vec_for(abi),
            CtEvent::V6(change) => change.to_vec_for(abi),
        }
    }

    /// Writes the event payload in `abi`'s layout to `buf` (unwritten fields zero).
    ///
    /// # Errors
    /// [`FppError::BufferTooShort`].
    pub fn emit_for(&self, abi: Abi, buf: &mut [u8]) -> Result<usize, FppError> {
        match self {
            CtEvent::V4(change) => change.emit_for(abi, buf),
            CtEvent::V6(change) => change.emit_for(abi, buf),
        }
    }

    /// REMOVED, TCP_FIN, or another action cdx should not send.
    pub fn kind(&self) -> Action {
        match self {
            CtEvent::V4(change) => change.kind,
            CtEvent::V6(change) => change.kind,
        }
    }

    /// Original tuple of the flow, either family.
    pub fn orig(&self) -> Tuple<IpAddr> {
        match self {
            CtEvent::V4(change) => change.orig.to_ip(),
            CtEvent::V6(change) => change.orig.to_ip(),
        }
    }

    /// Reply tuple of the flow, either family.
    pub fn reply(&self) -> Tuple<IpAddr> {
        match self {
            CtEvent::V4(change) => change.reply.to_ip(),
            CtEvent::V6(change) => change.reply.to_ip(),
        }
    }

    /// IP protocol of the flow.
    pub fn protocol(&self) -> u16 {
        match self {
            CtEvent::V4(change) => change.protocol,
            CtEvent::V6(change) => change.protocol,
        }
    }

    /// Parses an event of code `fcode` in either ABI; `None` for codes that are not change
    /// events.
    ///
    /// # Errors
    /// [`FppError::WrongSize`] for a change event of a size neither ABI has.
    pub fn parse(fcode: FCode, payload: &[u8]) -> Result<Option<CtEvent>, FppError> {
        Ok(match fcode {
            FCode::Ipv4ConntrackChange => Some(CtEvent::V4(CtChange::parse_any(payload)?.0)),
            FCode::Ipv6ConntrackChange => Some(CtEvent::V6(CtChange::parse_any(payload)?.0)),
            _ => None,
        })
    }

    /// Parses an event of code `fcode` in `abi`'s layout only.
    ///
    /// # Errors
    /// As [`AbiPayload::parse_for`].
    pub fn parse_for(abi: Abi, fcode: FCode, payload: &[u8]) -> Result<Option<CtEvent>, FppError> {
        Ok(match fcode {
            FCode::Ipv4ConntrackChange => Some(CtEvent::V4(CtChange::parse_for(abi, payload)?)),
            FCode::Ipv6ConntrackChange => Some(CtEvent::V6(CtChange::parse_for(abi, payload)?)),
            _ => None,
        })
    }
}
