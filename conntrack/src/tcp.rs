//! TCP protocol information (`CTA_PROTOINFO_TCP`): the tracker's state, window scales and
//! per-direction flags.

use crate::attr::TcpAttr;
use crate::error::{DecodeError, EmitError};
use crate::nla::{AttrValue, AttrWriter, Nest, fixed};

/// The TCP tracker's state (`enum tcp_conntrack`). Values this crate does not name are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TcpState {
    /// `TCP_CONNTRACK_NONE`.
    None,
    /// `TCP_CONNTRACK_SYN_SENT`: SYN seen.
    SynSent,
    /// `TCP_CONNTRACK_SYN_RECV`: SYN-ACK seen.
    SynRecv,
    /// `TCP_CONNTRACK_ESTABLISHED`: the handshake completed.
    Established,
    /// `TCP_CONNTRACK_FIN_WAIT`: one side sent FIN.
    FinWait,
    /// `TCP_CONNTRACK_CLOSE_WAIT`: the FIN was acknowledged.
    CloseWait,
    /// `TCP_CONNTRACK_LAST_ACK`: both sides sent FIN.
    LastAck,
    /// `TCP_CONNTRACK_TIME_WAIT`: the last FIN was acknowledged.
    TimeWait,
    /// `TCP_CONNTRACK_CLOSE`: RST seen.
    Close,
    /// `TCP_CONNTRACK_SYN_SENT2` (formerly LISTEN): simultaneous open.
    SynSent2,
    /// Any other value.
    Other(u8),
}

impl From<u8> for TcpState {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::None,
            1 => Self::SynSent,
            2 => Self::SynRecv,
            3 => Self::Established,
            4 => Self::FinWait,
            5 => Self::CloseWait,
            6 => Self::LastAck,
            7 => Self::TimeWait,
            8 => Self::Close,
            9 => Self::SynSent2,
            other => Self::Other(other),
        }
    }
}

impl From<TcpState> for u8 {
    fn from(state: TcpState) -> Self {
        match state {
            TcpState::None => 0,
            TcpState::SynSent => 1,
            TcpState::SynRecv => 2,
            TcpState::Established => 3,
            TcpState::FinWait => 4,
            TcpState::CloseWait => 5,
            TcpState::LastAck => 6,
            TcpState::TimeWait => 7,
            TcpState::Close => 8,
            TcpState::SynSent2 => 9,
            TcpState::Other(value) => value,
        }
    }
}

impl<'a> AttrValue<'a> for TcpState {
    #[inline]
    fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
        u8::decode(bytes, attr).map(TcpState::from)
    }

    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
        u8::from(*self).encode(out)
    }
}

bitflags::bitflags! {
    /// Per-direction TCP tracker flags (`IP_CT_TCP_FLAG_*`). Unknown bits are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TcpFlags: u8 {
        /// `IP_CT_TCP_FLAG_WINDOW_SCALE`: this side sent the window scale option.
        const WINDOW_SCALE = 0x01;
        /// `IP_CT_TCP_FLAG_SACK_PERM`: this side permits SACK.
        const SACK_PERM = 0x02;
        /// `IP_CT_TCP_FLAG_CLOSE_INIT`: this side closed first.
        const CLOSE_INIT = 0x04;
        /// `IP_CT_TCP_FLAG_BE_LIBERAL`: window checks are skipped.
        const BE_LIBERAL = 0x08;
        /// `IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED`: data is in flight unacknowledged.
        const DATA_UNACKNOWLEDGED = 0x10;
        /// `IP_CT_TCP_FLAG_MAXACK_SET`: the maximum ACK is known.
        const MAXACK_SET = 0x20;
        /// `IP_CT_EXP_CHALLENGE_ACK`: a challenge ACK is expected.
        const CHALLENGE_ACK = 0x40;
        /// `IP_CT_TCP_SIMULTANEOUS_OPEN`: simultaneous open.
        const SIMULTANEOUS_OPEN = 0x80;
    }
}

/// The value of `CTA_PROTOINFO_TCP_FLAGS_*` (`struct nf_ct_tcp_flags`): flags, and in requests
/// the mask of flags to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MaskedTcpFlags {
    /// Flag values.
    pub flags: TcpFlags,
    /// Which flags the value speaks for (requests); the kernel's events carry 0.
    pub mask: TcpFlags,
}

impl<'a> AttrValue<'a> for MaskedTcpFlags {
    #[inline]
    fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
        let [flags, mask] = fixed::<2>(bytes, attr)?;
        Ok(Self {
            flags: TcpFlags::from_bits_retain(flags),
            mask: TcpFlags::from_bits_retain(mask),
        })
    }

    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
        out.extend(&[self.flags.bits(), self.mask.bits()]);
        Ok(())
    }
}

/// What a conntrack entry says about its TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpInfo {
    /// The tracker's state.
    pub state: TcpState,
    /// Window scale of the original direction (absent in DESTROY events).
    pub orig_wscale: Option<u8>,
    /// Window scale of the reply direction.
    pub reply_wscale: Option<u8>,
    /// Flags of the original direction.
    pub orig_flags: Option<TcpFlags>,
    /// Flags of the reply direction.
    pub reply_flags: Option<TcpFlags>,
}

impl TcpInfo {
    /// Reads `CTA_PROTOINFO_TCP`; the state is mandatory, the rest optional.
    #[inline]
    pub fn from_nest(nest: Nest<'_, TcpAttr<'_>>) -> Result<Self, DecodeError> {
        let mut state = None;
        let mut info = Self {
            state: TcpState::None,
            orig_wscale: None,
            reply_wscale: None,
            orig_flags: None,
            reply_flags: None,
        };
        for attr in nest {
            match attr? {
                TcpAttr::State(value) => state = Some(value),
                TcpAttr::WindowScaleOrig(value) => info.orig_wscale = Some(value),
                TcpAttr::WindowScaleReply(value) => info.reply_wscale = Some(value),
                TcpAttr::FlagsOrig(value) => info.orig_flags = Some(value.flags),
                TcpAttr::FlagsReply(value) => info.reply_flags = Some(value.flags),
                TcpAttr::Other(_) => {}
            }
        }
        info.state = state.ok_or(DecodeError::MissingAttr("CTA_PROTOINFO_TCP_STATE"))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_number_round_trips() {
        for value in 0..=u8::MAX {
            assert_eq!(u8::from(TcpState::from(value)), value);
        }
        assert_eq!(TcpState::from(3), TcpState::Established);
        assert_eq!(TcpState::from(10), TcpState::Other(10));
    }
}
