//! Which conntrack dialect the kernel speaks: stock, or an ASK kernel with its attribute
//! numbers; pinned by configuration or recognised from the messages, and remembered.
//!
//! Contract: [`DialectSetting`] is the configuration value (`auto`, `stock`, `ask-5.4`,
//! `ask-6.12`, or explicit numbers) and parses from and prints to the same text.
//! [`DialectTracker`] decodes entries under that setting: pinned, it reads every message with
//! the pinned numbers; `auto`, it reads each message as it shows itself (ASK when it carries
//! two fast-path blocks) until one does, then keeps that numbering for good, so an attribute
//! whose number upstream also uses (27 is `CTA_TIMESTAMP_EVENT` upstream and the QoS connmark
//! on 5.4) is read by the numbering learned. [`KernelVersion`] says what the kernel release
//! suggests before any message was seen: a secondary guess, never used to decode.

use std::fmt;
use std::str::FromStr;

use crate::ask::{AskNumbering, PermanentBit};
use crate::conntrack::{Conntrack, Event, Reading, decode};
use crate::error::{DecodeError, DialectError};
use crate::message::{CtMessage, Delivery};

/// The conntrack dialect of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Upstream's attributes only.
    Stock,
    /// An ASK kernel, with the numbers of its attributes.
    Ask(AskNumbering),
}

impl Dialect {
    /// A short name for a metric label: `stock`, `ask-5.4`, `ask-6.12` or `ask-other`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Stock => "stock",
            Self::Ask(numbering) if *numbering == AskNumbering::LINUX_5_4 => "ask-5.4",
            Self::Ask(numbering) if *numbering == AskNumbering::LINUX_6_12 => "ask-6.12",
            Self::Ask(_) => "ask-other",
        }
    }

    /// The `IPS_PERMANENT` bit of this dialect: `None` on a stock kernel; from the numbering
    /// when it tells, else from `kernel` (see [`AskNumbering::permanent_bit`]).
    pub fn permanent_bit(&self, kernel: Option<KernelVersion>) -> Option<PermanentBit> {
        match self {
            Self::Stock => None,
            Self::Ask(numbering) => {
                numbering.permanent_bit().or_else(|| kernel.map(KernelVersion::ask_permanent_bit))
            }
        }
    }
}

impl fmt::Display for Dialect {
    /// `stock`, `ask-5.4`, `ask-6.12`, or the explicit numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ask(numbering) if self.label() == "ask-other" => write!(f, "{numbering}"),
            _ => f.write_str(self.label()),
        }
    }
}

/// The configured dialect: recognise it from the messages, or pin one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DialectSetting {
    /// Recognise an ASK kernel by the shape of its attributes; read as stock until then.
    #[default]
    Auto,
    /// Read every message with this dialect.
    Pinned(Dialect),
}

impl FromStr for DialectSetting {
    type Err = DialectError;

    /// `auto`, `stock`, `ask-5.4`, `ask-6.12`, or `fp_orig=N[,fp_reply=N][,qosconnmark=N]
    /// [,pad=N]` (missing numbers follow the patches' order: see
    /// [`AskNumbering::following`]). Case and spaces around the parts do not matter.
    fn from_str(text: &str) -> Result<Self, DialectError> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "auto" => return Ok(Self::Auto),
            "stock" => return Ok(Self::Pinned(Dialect::Stock)),
            "ask-5.4" => return Ok(Self::Pinned(Dialect::Ask(AskNumbering::LINUX_5_4))),
            "ask-6.12" => return Ok(Self::Pinned(Dialect::Ask(AskNumbering::LINUX_6_12))),
            _ if !text.contains('=') => return Err(DialectError::Unknown(text.to_owned())),
            _ => {}
        }
        const KEYS: [&str; 4] = ["fp_orig", "fp_reply", "qosconnmark", "pad"];
        let mut numbers: [Option<u16>; 4] = [None; 4];
        for part in text.split(',') {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let key = key.trim().to_ascii_lowercase();
            let Some(index) = KEYS.iter().position(|known| *known == key) else {
                return Err(DialectError::UnknownKey(key));
            };
            let (name, slot) = match (KEYS.get(index), numbers.get_mut(index)) {
                (Some(name), Some(slot)) => (*name, slot),
                _ => return Err(DialectError::UnknownKey(key)),
            };
            if slot.is_some() {
                return Err(DialectError::Duplicate(name));
            }
            let value = value.trim();
            *slot =
                Some(value.parse().map_err(|_| DialectError::NotANumber {
                    key: name,
                    value: value.to_owned(),
                })?);
        }
        let [Some(fp_orig), fp_reply, qos_connmark, pad] = numbers else {
            return Err(DialectError::MissingOrig);
        };
        let next = |step: u16| fp_orig.saturating_add(step);
        let pad = pad.unwrap_or(if fp_orig == AskNumbering::FIRST { 3 } else { next(3) });
        let numbering = AskNumbering::new(
            fp_orig,
            fp_reply.unwrap_or(next(1)),
            qos_connmark.unwrap_or(next(2)),
            pad,
        )?;
        Ok(Self::Pinned(Dialect::Ask(numbering)))
    }
}

impl fmt::Display for DialectSetting {
    /// What [`DialectSetting::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Pinned(dialect) => dialect.fmt(f),
        }
    }
}

/// Where the dialect in force comes from, for the startup log, `show status` and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialectState {
    /// Pinned by configuration.
    Pinned(Dialect),
    /// Recognised from a message (setting `auto`), kept since.
    Recognised(AskNumbering),
    /// Setting `auto`, and none of `entries` entries decoded so far showed an ASK kernel: read
    /// as stock.
    Unrecognised {
        /// Entries decoded so far.
        entries: u64,
    },
}

impl DialectState {
    /// The dialect messages are read with.
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Pinned(dialect) => *dialect,
            Self::Recognised(numbering) => Dialect::Ask(*numbering),
            Self::Unrecognised { .. } => Dialect::Stock,
        }
    }
}

impl fmt::Display for DialectState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pinned(dialect) => write!(f, "{dialect} (pinned)"),
            Self::Recognised(numbering) => {
                write!(f, "{} (recognised: {numbering})", Dialect::Ask(*numbering).label())
            }
            Self::Unrecognised { entries: 0 } => f.write_str("stock (auto, no entry seen yet)"),
            Self::Unrecognised { entries } => {
                write!(f, "stock (auto, no ASK attributes in {entries} entries)")
            }
        }
    }
}

/// Decodes entries in the configured dialect and remembers the one recognised. One per kernel
/// (the event and the dump socket share it). No allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DialectTracker {
    setting: DialectSetting,
    recognised: Option<AskNumbering>,
    entries: u64,
}

impl DialectTracker {
    /// A tracker for `setting`, having seen nothing.
    pub fn new(setting: DialectSetting) -> Self {
        Self { setting, recognised: None, entries: 0 }
    }

    /// The configured setting.
    pub fn setting(&self) -> DialectSetting {
        self.setting
    }

    /// The dialect in force and where it comes from.
    pub fn state(&self) -> DialectState {
        match (self.setting, self.recognised) {
            (DialectSetting::Pinned(dialect), _) => DialectState::Pinned(dialect),
            (DialectSetting::Auto, Some(numbering)) => DialectState::Recognised(numbering),
            (DialectSetting::Auto, None) => DialectState::Unrecognised { entries: self.entries },
        }
    }

    /// The dialect messages are read with now.
    pub fn dialect(&self) -> Dialect {
        self.state().dialect()
    }

    /// The `IPS_PERMANENT` bit to use: `None` while the kernel reads as stock (pinned, or
    /// nothing recognised yet), else the dialect's ([`Dialect::permanent_bit`]).
    pub fn permanent_bit(&self, kernel: Option<KernelVersion>) -> Option<PermanentBit> {
        self.dialect().permanent_bit(kernel)
    }

    /// Decodes the entry `message` describes (see [`Conntrack::from_message`]), in the dialect
    /// in force; with `auto`, a message that shows an ASK numbering sets it for good.
    #[inline]
    pub fn decode(&mut self, message: &CtMessage<'_>) -> Result<Conntrack, DecodeError> {
        let reading = match (self.setting, self.recognised) {
            (DialectSetting::Pinned(Dialect::Stock), _) => Reading::Stock,
            (DialectSetting::Pinned(Dialect::Ask(numbering)), _)
            | (DialectSetting::Auto, Some(numbering)) => Reading::Ask(numbering),
            (DialectSetting::Auto, None) => Reading::Recognise,
        };
        let mut recognised = None;
        let entry = decode(message, reading, &mut recognised)?;
        self.entries = self.entries.saturating_add(1);
        if recognised.is_some() {
            self.recognised = recognised;
        }
        Ok(entry)
    }

    /// The event `message` is, decoded as [`DialectTracker::decode`] does: `Ok(None)` for
    /// messages that are not events (see [`Event::from_message`]).
    #[inline]
    pub fn event(&mut self, message: &CtMessage<'_>) -> Result<Option<Event>, DecodeError> {
        match message.delivery() {
            Delivery::Event(kind) => Ok(Some(Event { kind, ct: self.decode(message)? })),
            _ => Ok(None),
        }
    }
}

/// A kernel's major and minor version, from its release string (`uname -r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl KernelVersion {
    /// Linux 5.8 added `IPS_HW_OFFLOAD` as status bit 15 (posted to nf-next in April 2020,
    /// after 5.7-rc1), pushing an ASK port's `IPS_PERMANENT` to 16.
    pub const HW_OFFLOAD_BIT: Self = Self::new(5, 8);
    /// Linux 5.7 added `CTA_FILTER` (25).
    pub const FILTER_ATTR: Self = Self::new(5, 7);
    /// Linux 5.15 added `CTA_STATUS_MASK` (26).
    pub const STATUS_MASK_ATTR: Self = Self::new(5, 15);
    /// The last release known not to have `CTA_TIMESTAMP_EVENT` (27): 6.12, the 6.12 patch's
    /// base. (It was posted to nf-next in November 2024, for 6.13 or 6.14.)
    pub const LAST_WITHOUT_TIMESTAMP_EVENT: Self = Self::new(6, 12);

    /// Version `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// The version a release string starts with: `6.12.20-ask-g1a2b` is 6.12.
    pub fn from_release(release: &str) -> Option<Self> {
        let mut numbers = release.trim().split(['.', '-', '+', '_']);
        let major = numbers.next()?.parse().ok()?;
        let minor = numbers.next()?.parse().ok()?;
        Some(Self::new(major, minor))
    }

    /// The running kernel's version, from `/proc/sys/kernel/osrelease`.
    pub fn running() -> std::io::Result<Option<Self>> {
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|text| Self::from_release(&text))
    }

    /// The `IPS_PERMANENT` bit an ASK port to this kernel uses: the first bit upstream does not
    /// (15 before 5.8, 16 since), as both patches do.
    pub fn ask_permanent_bit(self) -> PermanentBit {
        if self < Self::HW_OFFLOAD_BIT { PermanentBit::LINUX_5_4 } else { PermanentBit::LINUX_6_12 }
    }

    /// The numbers an ASK port to this kernel would give its attributes if it appends them to
    /// upstream's as both patches do: 25 before 5.7, 26 before 5.15, 27 up to 6.12; `None`
    /// before 5.4 (no known port) and after 6.12, where a port may put them before or after
    /// `CTA_TIMESTAMP_EVENT` (27). A guess for before the first message, never for decoding.
    pub fn ask_numbering(self) -> Option<AskNumbering> {
        let fp_orig = if self < Self::new(5, 4) || self > Self::LAST_WITHOUT_TIMESTAMP_EVENT {
            return None;
        } else if self < Self::FILTER_ATTR {
            25
        } else if self < Self::STATUS_MASK_ATTR {
            26
        } else {
            27
        };
        AskNumbering::following(fp_orig)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}
