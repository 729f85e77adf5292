//! The two cdx ABIs, and payloads whose layout depends on which one cdx speaks.
//!
//! | | [`Abi::Lsdk`] (NXP's cdx, LSDK) | [`Abi::Ask`] (the maintained ASK port) |
//! | --- | --- | --- |
//! | conntrack mark | `u32 fwmark` at 32 (IPv4) / 80 (IPv6) | `u64 qosconnmark`, same offset |
//! | IPv4 conntrack, basic / extended | 44 / 72 B | 48 / 76 B |
//! | IPv6 conntrack, basic / extended | 92 / 120 B | 96 / 124 B |
//! | `*_CONNTRACK_CHANGE` event | 44 / 92 B | 48 / 96 B |
//! | `*_GET_TIMEOUT` request | 44 / 92 B | 48 / 96 B (reply 12 B in both) |
//! | conntrack walk reply | 2 + 72 / 2 + 120 B | 2 + 76 / 2 + 124 B |
//! | `FPP_CMD_VLAN_ENTRY` | 36 B | 44 B (`macaddr[6]`, `unused[2]` appended) |
//! | route, timeouts, `FF_CONTROL`, route walk | 84, 12, 4, 2 + 84 B | the same |
//! | `cdx_ctrl_set_dpa_params` (ioctl) | `num_fmans`, `fman_info`, `ipr_info` | `fman_info`, `ipr_info`, `num_fmans` |
//!
//! Sources: NXP `cdx` `fe.h` (`CtCommand`, `CtExCommand`, `CtCommandIPv6`,
//! `CtExCommandIPv6`), `control_vlan.h` (`VlanCommand`), `cdx_ioctl.h`; the ASK port's files
//! of the same names (`we-are-mono/ASK`, master, `mt-6.12.y` and `fix/security-hardening`
//! agree). The ASK route command grows `egress_vid`/`underlying_vid` only when cdx is built
//! with `VLAN_FILTER`, which its Makefile does not set. Both builds check a command's size
//! before anything else and answer a size they do not know with `WRONG_COMMAND_SIZE`; see
//! [`crate::detect`] for telling them apart at run time.
//!
//! Payloads the same in both ABIs implement [`super::Payload`] and, through a blanket
//! implementation, [`AbiPayload`]; the conntrack command, its change event and the VLAN
//! entry implement only [`AbiPayload`], so their ABI is always chosen explicitly.

use std::fmt;
use std::str::FromStr;

use super::{FppError, Payload};

/// Which layout cdx expects. The default is [`Abi::Lsdk`], the layout of NXP's cdx.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Abi {
    /// NXP's cdx (LSDK): 32-bit `fwmark`, 36-byte VLAN entry.
    #[default]
    Lsdk,
    /// The maintained ASK port: 64-bit `qosconnmark`, 44-byte VLAN entry, reordered
    /// `set_dpa_params`.
    Ask,
}

impl Abi {
    /// Both ABIs.
    pub const ALL: [Abi; 2] = [Abi::Lsdk, Abi::Ask];

    /// The name [`Abi::from_str`] reads: `lsdk` or `ask`.
    pub const fn name(self) -> &'static str {
        match self {
            Abi::Lsdk => "lsdk",
            Abi::Ask => "ask",
        }
    }

    /// The other ABI.
    #[must_use]
    pub const fn other(self) -> Abi {
        match self {
            Abi::Lsdk => Abi::Ask,
            Abi::Ask => Abi::Lsdk,
        }
    }

    /// Bytes of the conntrack mark field: 4 (`fwmark`) or 8 (`qosconnmark`).
    pub const fn mark_len(self) -> usize {
        match self {
            Abi::Lsdk => 4,
            Abi::Ask => 8,
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no ABI (or no ABI setting).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown cdx ABI {0:?}: expected {1}")]
pub struct AbiParseError(pub String, &'static str);

impl FromStr for Abi {
    type Err = AbiParseError;

    /// `lsdk` (also `nxp`), or `ask` (also `qosconnmark`), case-insensitive.
    fn from_str(text: &str) -> Result<Abi, AbiParseError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "lsdk" | "nxp" => Ok(Abi::Lsdk),
            "ask" | "qosconnmark" => Ok(Abi::Ask),
            _ => Err(AbiParseError(text.to_string(), "lsdk or ask (qosconnmark)")),
        }
    }
}

/// How a client chooses the ABI: detected at start ([`AbiSetting::Auto`], the default) or
/// fixed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AbiSetting {
    /// Ask cdx with [`crate::detect::detect`].
    #[default]
    Auto,
    /// Use this ABI without asking.
    Fixed(Abi),
}

impl FromStr for AbiSetting {
    type Err = AbiParseError;

    /// `auto`, or an [`Abi`] name.
    fn from_str(text: &str) -> Result<AbiSetting, AbiParseError> {
        if text.trim().eq_ignore_ascii_case("auto") {
            return Ok(AbiSetting::Auto);
        }
        text.parse()
            .map(AbiSetting::Fixed)
            .map_err(|_| AbiParseError(text.to_string(), "auto, lsdk or ask (qosconnmark)"))
    }
}

impl fmt::Display for AbiSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiSetting::Auto => f.write_str("auto"),
            AbiSetting::Fixed(abi) => abi.fmt(f),
        }
    }
}

/// Parse, emit and size of a payload whose layout depends on the [`Abi`].
///
/// Every [`Payload`] is one (its layout is the same in both ABIs). The method names differ
/// from [`Payload`]'s so that both traits can be in scope.
pub trait AbiPayload: Sized {
    /// Bytes [`AbiPayload::emit_for`] writes in `abi`.
    fn len_for(&self, abi: Abi) -> usize;

    /// Writes the payload in `abi`'s layout to the start of `buf`; returns the bytes
    /// written.
    ///
    /// # Errors
    /// [`FppError::BufferTooShort`]; [`FppError::MarkTooWide`] for a conntrack mark the
    /// LSDK layout cannot hold.
    fn emit_for(&self, abi: Abi, buf: &mut [u8]) -> Result<usize, FppError>;

    /// Parses a payload of exactly one of `abi`'s sizes.
    ///
    /// # Errors
    /// [`FppError::OtherAbi`] when the size is one of the other ABI's; otherwise as
    /// [`Payload::parse`].
    fn parse_for(abi: Abi, bytes: &[u8]) -> Result<Self, FppError>;

    /// The payload in `abi`'s layout as a new vector (empty if it cannot be emitted).
    fn to_vec_for(&self, abi: Abi) -> Vec<u8> {
        let mut out = vec![0; self.len_for(abi)];
        let written = self.emit_for(abi, &mut out).unwrap_or(0);
        out.truncate(written);
        out
    }
}

impl<P: Payload> AbiPayload for P {
    fn len_for(&self, _abi: Abi) -> usize {
        self.buffer_len()
    }

    fn emit_for(&self, _abi: Abi, buf: &mut [u8]) -> Result<usize, FppError> {
        self.emit(buf)
    }

    fn parse_for(_abi: Abi, bytes: &[u8]) -> Result<P, FppError> {
        P::parse(bytes)
    }
}

/// The error for a payload of `actual` bytes that `abi` does not accept: [`FppError::OtherAbi`]
/// if the other ABI has that size, [`FppError::WrongSize`] otherwise.
pub(crate) fn size_error(
    what: &'static str,
    abi: Abi,
    sizes: impl Fn(Abi) -> &'static [usize],
    actual: usize,
) -> FppError {
    if sizes(abi.other()).contains(&actual) {
        FppError::OtherAbi { what, expected: abi, actual }
    } else {
        FppError::WrongSize { what, expected: sizes(abi), actual }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_both_ways_and_settings_add_auto() {
        for abi in Abi::ALL {
            assert_eq!(abi.name().parse::<Abi>(), Ok(abi));
            assert_eq!(abi.to_string().parse::<AbiSetting>(), Ok(AbiSetting::Fixed(abi)));
            assert_eq!(abi.other().other(), abi);
        }
        assert_eq!("QosConnMark".parse::<Abi>(), Ok(Abi::Ask));
        assert_eq!(" nxp ".parse::<Abi>(), Ok(Abi::Lsdk));
        assert_eq!("auto".parse::<AbiSetting>(), Ok(AbiSetting::Auto));
        assert_eq!(AbiSetting::default(), AbiSetting::Auto);
        assert_eq!(Abi::default(), Abi::Lsdk);
        assert_eq!(AbiSetting::Fixed(Abi::Ask).to_string(), "ask");
        let error = "v2".parse::<AbiSetting>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown cdx ABI \"v2\": expected auto, lsdk or ask (qosconnmark)"
        );
        assert!("auto".parse::<Abi>().is_err(), "auto is a setting, not an ABI");
        assert_eq!((Abi::Lsdk.mark_len(), Abi::Ask.mark_len()), (4, 8));
    }
}
