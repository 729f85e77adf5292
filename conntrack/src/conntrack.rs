//! The validated, owned value of a conntrack entry, and events.
//!
//! Contract: [`Conntrack::from_message`] walks a message's attributes once, without allocating,
//! and either returns an entry whose tuples are present and consistent with the message's
//! family, or says what is wrong. Only what the entry cannot be understood without fails it:
//! the attribute framing, the tuples, `CTA_STATUS` and `CTA_ZONE` (the entry's identity);
//! any other modelled attribute that does not decode is skipped and named in
//! [`Conntrack::skipped`]. Attributes it does not model are passed over (the borrowed
//! [`CtMessage`] still has them). Attributes numbered 25 and above are read as an ASK kernel's
//! when a numbering is given or the message shows one ([`crate::ask`]), else as upstream's.
//! The result is `Copy` and holds no heap memory.

use crate::ask::{AskAttr, AskInfo, AskNumbering, FastPath, recognise};
use crate::attr::{CounterAttr, ProtoInfoAttr, TimestampAttr};
use crate::consts::*;
use crate::error::DecodeError;
use crate::message::{CtMessage, Delivery, EventKind};
use crate::nla::{AttrValue, Nest, RawAttr};
use crate::skipped::{EntryAttr, SkippedAttrs};
use crate::status::Status;
use crate::tcp::TcpInfo;
use crate::tuple::{DecodedTuple, Family, Tuple};

/// Packets and bytes of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes (layer 3 and up).
    pub bytes: u64,
}

impl Counter {
    /// Reads a `CTA_COUNTERS_*` nest.
    #[inline]
    pub fn from_nest(nest: Nest<'_, CounterAttr<'_>>) -> Result<Self, DecodeError> {
        let mut counter = Self::default();
        for attr in nest {
            match attr? {
                CounterAttr::Packets(value) => counter.packets = value,
                CounterAttr::Bytes(value) => counter.bytes = value,
                CounterAttr::Packets32(value) => counter.packets = u64::from(value),
                CounterAttr::Bytes32(value) => counter.bytes = u64::from(value),
                CounterAttr::Other(_) => {}
            }
        }
        Ok(counter)
    }
}

/// Counters of both directions (`CTA_COUNTERS_ORIG`/`REPLY`, with `nf_conntrack_acct=1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counters {
    /// Original direction.
    pub orig: Counter,
    /// Reply direction.
    pub reply: Counter,
}

/// Start and stop of an entry in nanoseconds since the epoch (`CTA_TIMESTAMP`, with
/// `nf_conntrack_timestamp=1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timestamp {
    /// When the entry was confirmed.
    pub start: u64,
    /// When it was destroyed (DESTROY events only).
    pub stop: Option<u64>,
}

impl Timestamp {
    /// Reads a `CTA_TIMESTAMP` nest.
    #[inline]
    pub fn from_nest(nest: Nest<'_, TimestampAttr<'_>>) -> Result<Self, DecodeError> {
        let mut timestamp = Self::default();
        for attr in nest {
            match attr? {
                TimestampAttr::Start(value) => timestamp.start = value,
                TimestampAttr::Stop(value) => timestamp.stop = Some(value),
                TimestampAttr::Other(_) => {}
            }
        }
        Ok(timestamp)
    }
}

/// A conntrack entry as a message describes it. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conntrack {
    /// Layer-3 family; both tuples have addresses of this family.
    pub family: Family,
    /// Original-direction tuple.
    pub orig: Tuple,
    /// Reply-direction tuple (NAT shows here).
    pub reply: Tuple,
    /// Status bits (empty when the message has no `CTA_STATUS`).
    pub status: Status,
    /// TCP state and flags, for TCP entries that carry `CTA_PROTOINFO`.
    pub tcp: Option<TcpInfo>,
    /// Seconds until expiry (`CTA_TIMEOUT`).
    pub timeout: Option<u32>,
    /// Connection mark (`CTA_MARK`).
    pub mark: Option<u32>,
    /// Zone (`CTA_ZONE`); 0, the default zone, when absent.
    pub zone: u16,
    /// Entry id (`CTA_ID`).
    pub id: Option<u32>,
    /// Reference count (`CTA_USE`).
    pub use_count: Option<u32>,
    /// Packet and byte counters, when accounting is on.
    pub counters: Option<Counters>,
    /// Start and stop times, when timestamping is on.
    pub timestamp: Option<Timestamp>,
    /// A helper is attached (`CTA_HELP`); its name is [`CtMessage::helper_name`].
    pub has_helper: bool,
    /// Sequence numbers are adjusted (`CTA_SEQ_ADJ_ORIG` or `CTA_SEQ_ADJ_REPLY`).
    pub seq_adjust: bool,
    /// Connection labels are set (`CTA_LABELS`).
    pub has_labels: bool,
    /// An expected connection with a master (`CTA_TUPLE_MASTER`).
    pub has_master: bool,
    /// What an ASK kernel adds: the fast-path blocks and the QoS connmark (empty on stock).
    pub ask: AskInfo,
    /// Attributes that were present but did not decode, and were skipped.
    pub skipped: SkippedAttrs,
}

impl Conntrack {
    /// Builds the entry a message describes. Needs both tuples, of the message's family. The
    /// ASK attributes are read if the message itself shows their numbering (two fast-path
    /// blocks); [`DialectTracker::decode`](crate::DialectTracker::decode) also remembers it,
    /// or follows a pinned one.
    #[inline]
    pub fn from_message(message: &CtMessage<'_>) -> Result<Self, DecodeError> {
        decode(message, Reading::Recognise, &mut None)
    }
}

/// How the attributes numbered 25 and above are read: with upstream's meaning, with an ASK
/// numbering, or as the message shows (ASK if it carries two fast-path blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Stock,
    Ask(AskNumbering),
    Recognise,
}

/// How many attributes numbered 25 and above a message may keep until it shows its numbering
/// (an ASK message has at most five); more are read with upstream's meaning.
const HELD_BACK: usize = 8;

/// Decodes an entry; with [`Reading::Recognise`], sets `recognised` to the numbering the
/// message shows, if it shows one.
#[inline]
pub(crate) fn decode(
    message: &CtMessage<'_>,
    reading: Reading,
    recognised: &mut Option<AskNumbering>,
) -> Result<Conntrack, DecodeError> {
    let family = Family::from_raw(message.family())
        .ok_or(DecodeError::UnsupportedFamily(message.family()))?;
    let (mut orig, mut reply, mut counters_orig, mut counters_reply) = (None, None, None, None);
    let mut status = Status::empty();
    let (mut tcp, mut timeout, mut mark, mut id, mut use_count, mut timestamp) =
        (None, None, None, None, None, None);
    let mut zone = 0;
    let (mut has_helper, mut seq_adjust, mut has_labels, mut has_master) =
        (false, false, false, false);
    let mut high = High { ask: AskInfo::default(), skipped: SkippedAttrs::NONE };
    // With Recognise, where the attributes numbered 25 and above are, until the message has
    // shown whether it has two blocks (nested, so fewer than two nested ones mean stock).
    let (mut held, mut held_count, mut held_nested) = ([0u16; HELD_BACK], 0, 0);
    let numbering = match reading {
        Reading::Ask(numbering) => Some(numbering),
        Reading::Stock | Reading::Recognise => None,
    };
    let mut attrs = message.raw_attrs();
    loop {
        let at = attrs.offset();
        let Some(raw) = attrs.next() else { break };
        let raw = raw?;
        let value = raw.value();
        let skipped = &mut high.skipped;
        match raw.kind() {
            CTA_TUPLE_ORIG => {
                orig = Some(DecodedTuple::from_nest(Nest::new(value, "CTA_TUPLE_ORIG"))?);
            }
            CTA_TUPLE_REPLY => {
                reply = Some(DecodedTuple::from_nest(Nest::new(value, "CTA_TUPLE_REPLY"))?);
            }
            // An empty CTA_STATUS is the 64-bit alignment pad of upstream's
            // CTA_TIMESTAMP_EVENT (CTA_TIMESTAMP_PAD is 3) and of 5.4's QoS connmark.
            CTA_STATUS if value.is_empty() => {}
            CTA_STATUS => status = Status::decode(value, "CTA_STATUS")?,
            CTA_ZONE => zone = u16::decode(value, "CTA_ZONE")?,
            CTA_PROTOINFO => match protocol_info(value) {
                Ok(Some(info)) => tcp = Some(info),
                Ok(None) => {}
                Err(_) => skipped.insert(EntryAttr::ProtoInfo),
            },
            CTA_HELP => has_helper = true,
            CTA_TIMEOUT => {
                keep(&mut timeout, u32::decode(value, "CTA_TIMEOUT"), skipped, EntryAttr::Timeout)
            }
            CTA_MARK => keep(&mut mark, u32::decode(value, "CTA_MARK"), skipped, EntryAttr::Mark),
            CTA_COUNTERS_ORIG => keep(
                &mut counters_orig,
                Counter::from_nest(Nest::new(value, "CTA_COUNTERS_ORIG")),
                skipped,
                EntryAttr::CountersOrig,
            ),
            CTA_COUNTERS_REPLY => keep(
                &mut counters_reply,
                Counter::from_nest(Nest::new(value, "CTA_COUNTERS_REPLY")),
                skipped,
                EntryAttr::CountersReply,
            ),
            CTA_USE => keep(&mut use_count, u32::decode(value, "CTA_USE"), skipped, EntryAttr::Use),
            CTA_ID => keep(&mut id, u32::decode(value, "CTA_ID"), skipped, EntryAttr::Id),
            CTA_TUPLE_MASTER => has_master = true,
            CTA_SEQ_ADJ_ORIG | CTA_SEQ_ADJ_REPLY => seq_adjust = true,
            CTA_SECMARK => check::<u32>(value, "CTA_SECMARK", skipped, EntryAttr::Secmark),
            CTA_TIMESTAMP => keep(
                &mut timestamp,
                Timestamp::from_nest(Nest::new(value, "CTA_TIMESTAMP")),
                skipped,
                EntryAttr::Timestamp,
            ),
            CTA_MARK_MASK => check::<u32>(value, "CTA_MARK_MASK", skipped, EntryAttr::MarkMask),
            CTA_LABELS => has_labels = true,
            kind if kind < AskNumbering::FIRST => {}
            _ if !matches!(reading, Reading::Recognise) => high.numbered(raw, numbering),
            // Kept to read again if the message shows two blocks; only a nested attribute can
            // be one, so the others are read as upstream's meanwhile.
            _ => match (held.get_mut(held_count), u16::try_from(at)) {
                (Some(slot), Ok(at)) => {
                    *slot = at;
                    held_count += 1;
                    if raw.is_nested() {
                        held_nested += 1;
                    } else {
                        high.numbered(raw, None);
                    }
                }
                _ => high.numbered(raw, None),
            },
        }
    }
    if held_nested > 0 {
        let held = held.get(..held_count).unwrap_or(&[]);
        let raw = |at: &u16| attrs.at(usize::from(*at))?.ok();
        let shown = if held_nested >= 2 { recognise(held.iter().filter_map(raw)) } else { None };
        if shown.is_some() {
            // Undo what reading them as upstream's marked: they are read again.
            high.skipped.remove(EntryAttr::StatusMask);
            high.skipped.remove(EntryAttr::TimestampEvent);
        }
        for raw in held.iter().filter_map(raw) {
            if shown.is_some() || raw.is_nested() {
                high.numbered(raw, shown);
            }
        }
        *recognised = shown;
    }
    let orig = orig.ok_or(DecodeError::MissingAttr("CTA_TUPLE_ORIG"))?;
    let reply = reply.ok_or(DecodeError::MissingAttr("CTA_TUPLE_REPLY"))?;
    for (tuple, attr) in [(&orig, "CTA_TUPLE_ORIG"), (&reply, "CTA_TUPLE_REPLY")] {
        if tuple.family() != family {
            return Err(DecodeError::Inconsistent {
                attr,
                reason: "addresses of another family than the message",
            });
        }
    }
    let counters = (counters_orig.is_some() || counters_reply.is_some()).then(|| Counters {
        orig: counters_orig.unwrap_or_default(),
        reply: counters_reply.unwrap_or_default(),
    });
    Ok(Conntrack {
        family,
        orig: Tuple::from(orig),
        reply: Tuple::from(reply),
        status,
        tcp,
        timeout,
        mark,
        zone,
        id,
        use_count,
        counters,
        timestamp,
        has_helper,
        seq_adjust,
        has_labels,
        has_master,
        ask: high.ask,
        skipped: high.skipped,
    })
}

/// Sets `field` to a decoded value, or marks `attr` skipped.
#[inline]
fn keep<T>(
    field: &mut Option<T>,
    decoded: Result<T, DecodeError>,
    skipped: &mut SkippedAttrs,
    attr: EntryAttr,
) {
    match decoded {
        Ok(value) => *field = Some(value),
        Err(_) => skipped.insert(attr),
    }
}

/// Marks `attr` skipped if its value is not a `T` (for attributes the entry does not keep).
#[inline]
fn check<'a, T: AttrValue<'a>>(
    value: &'a [u8],
    name: &'static str,
    skipped: &mut SkippedAttrs,
    attr: EntryAttr,
) {
    if T::decode(value, name).is_err() {
        skipped.insert(attr);
    }
}

/// What the attributes numbered 25 and above give an entry.
struct High {
    ask: AskInfo,
    skipped: SkippedAttrs,
}

impl High {
    /// Reads an attribute numbered 25 or above: ASK's under `numbering`, else upstream's.
    #[inline]
    fn numbered(&mut self, raw: RawAttr<'_>, numbering: Option<AskNumbering>) {
        let value = raw.value();
        let skipped = &mut self.skipped;
        match numbering.and_then(|numbering| numbering.attr(raw)) {
            Some(Ok(AskAttr::FastPathOrig(block))) => {
                keep(
                    &mut self.ask.orig,
                    FastPath::from_nest(block),
                    skipped,
                    EntryAttr::FastPathOrig,
                );
            }
            Some(Ok(AskAttr::FastPathReply(block))) => {
                keep(
                    &mut self.ask.reply,
                    FastPath::from_nest(block),
                    skipped,
                    EntryAttr::FastPathReply,
                );
            }
            Some(Ok(AskAttr::QosConnmark(mark))) => self.ask.qos_connmark = Some(mark),
            Some(Ok(AskAttr::QosConnmarkPad)) => {}
            // Only the QoS connmark and its pad have a size to get wrong.
            Some(Err(_)) => skipped.insert(
                if numbering.is_some_and(|numbering| raw.kind() == numbering.qos_connmark()) {
                    EntryAttr::QosConnmark
                } else {
                    EntryAttr::QosConnmarkPad
                },
            ),
            None => match raw.kind() {
                CTA_STATUS_MASK => {
                    check::<u32>(value, "CTA_STATUS_MASK", skipped, EntryAttr::StatusMask)
                }
                CTA_TIMESTAMP_EVENT => {
                    check::<u64>(value, "CTA_TIMESTAMP_EVENT", skipped, EntryAttr::TimestampEvent);
                }
                _ => {}
            },
        }
    }
}

/// The TCP information of a `CTA_PROTOINFO` nest, if it has one.
#[inline]
fn protocol_info(value: &[u8]) -> Result<Option<TcpInfo>, DecodeError> {
    let mut tcp = None;
    for info in Nest::<ProtoInfoAttr<'_>>::new(value, "CTA_PROTOINFO") {
        if let ProtoInfoAttr::Tcp(info) = info? {
            tcp = Some(TcpInfo::from_nest(info)?);
        }
    }
    Ok(tcp)
}

impl TryFrom<&CtMessage<'_>> for Conntrack {
    type Error = DecodeError;

    fn try_from(message: &CtMessage<'_>) -> Result<Self, DecodeError> {
        Self::from_message(message)
    }
}

/// A multicast conntrack event: what happened, and to which entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    /// New, update or destroy.
    pub kind: EventKind,
    /// The entry as the event describes it.
    pub ct: Conntrack,
}

impl Event {
    /// The event a message is: `Ok(None)` for messages that are not events (dump entries,
    /// replies, requests), an error when it is an event that does not decode.
    #[inline]
    pub fn from_message(message: &CtMessage<'_>) -> Result<Option<Self>, DecodeError> {
        match message.delivery() {
            Delivery::Event(kind) => Ok(Some(Self { kind, ct: Conntrack::from_message(message)? })),
            _ => Ok(None),
        }
    }
}
