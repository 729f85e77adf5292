//! The validated, owned value of a conntrack entry, and events.
//!
//! Contract: [`Conntrack::from_message`] walks a message's attributes once, without allocating,
//! and either returns an entry whose tuples are present and consistent with the message's
//! family, or says what is wrong. Attributes it does not model are skipped (the borrowed
//! [`CtMessage`] still has them). The result is `Copy` and holds no heap memory.

use crate::attr::{Attr, CounterAttr, ProtoInfoAttr, TimestampAttr};
use crate::error::DecodeError;
use crate::message::{CtMessage, Delivery, EventKind};
use crate::nla::Nest;
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
}

impl Conntrack {
    /// Builds the entry a message describes. Needs both tuples, of the message's family.
    #[inline]
    pub fn from_message(message: &CtMessage<'_>) -> Result<Self, DecodeError> {
        let family = Family::from_raw(message.family())
            .ok_or(DecodeError::UnsupportedFamily(message.family()))?;
        let (mut orig, mut reply, mut counters_orig, mut counters_reply) = (None, None, None, None);
        let mut status = Status::empty();
        let (mut tcp, mut timeout, mut mark, mut id, mut use_count, mut timestamp) =
            (None, None, None, None, None, None);
        let mut zone = 0;
        let (mut has_helper, mut seq_adjust, mut has_labels, mut has_master) =
            (false, false, false, false);
        for attr in message.attrs() {
            match attr? {
                Attr::TupleOrig(nest) => orig = Some(DecodedTuple::from_nest(nest)?),
                Attr::TupleReply(nest) => reply = Some(DecodedTuple::from_nest(nest)?),
                Attr::Status(value) => status = value,
                Attr::ProtoInfo(nest) => {
                    for info in nest {
                        if let ProtoInfoAttr::Tcp(info) = info? {
                            tcp = Some(TcpInfo::from_nest(info)?);
                        }
                    }
                }
                Attr::Helper(_) => has_helper = true,
                Attr::Timeout(value) => timeout = Some(value),
                Attr::Mark(value) => mark = Some(value),
                Attr::CountersOrig(nest) => counters_orig = Some(Counter::from_nest(nest)?),
                Attr::CountersReply(nest) => counters_reply = Some(Counter::from_nest(nest)?),
                Attr::Use(value) => use_count = Some(value),
                Attr::Id(value) => id = Some(value),
                Attr::TupleMaster(_) => has_master = true,
                Attr::SeqAdjOrig(_) | Attr::SeqAdjReply(_) => seq_adjust = true,
                Attr::Zone(value) => zone = value,
                Attr::Timestamp(nest) => timestamp = Some(Timestamp::from_nest(nest)?),
                Attr::Labels(_) => has_labels = true,
                _ => {}
            }
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
        Ok(Self {
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
        })
    }
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
