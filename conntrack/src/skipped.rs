//! Which attributes of an entry were present but did not decode, and were skipped.
//!
//! Contract: an attribute the entry can be understood without (everything but the tuples,
//! `CTA_STATUS` and `CTA_ZONE`) that does not decode as the crate expects never fails the
//! entry: its field stays `None` and its [`EntryAttr`] is set in the entry's
//! [`SkippedAttrs`], a `Copy` bitset, so the caller can count per attribute without
//! allocating.

/// An attribute of a conntrack entry that is skipped when it does not decode, named by what
/// it is (the ASK attributes have no fixed number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EntryAttr {
    /// `CTA_PROTOINFO` (the TCP state and flags).
    ProtoInfo,
    /// `CTA_TIMEOUT`.
    Timeout,
    /// `CTA_MARK`.
    Mark,
    /// `CTA_COUNTERS_ORIG`.
    CountersOrig,
    /// `CTA_COUNTERS_REPLY`.
    CountersReply,
    /// `CTA_USE`.
    Use,
    /// `CTA_ID`.
    Id,
    /// `CTA_SECMARK`.
    Secmark,
    /// `CTA_TIMESTAMP`.
    Timestamp,
    /// `CTA_MARK_MASK`.
    MarkMask,
    /// `CTA_STATUS_MASK`.
    StatusMask,
    /// `CTA_TIMESTAMP_EVENT`.
    TimestampEvent,
    /// `CTA_LAYERSCAPE_FP_ORIG` (ASK kernels).
    FastPathOrig,
    /// `CTA_LAYERSCAPE_FP_REPLY` (ASK kernels).
    FastPathReply,
    /// `CTA_QOSCONNMARK` (ASK kernels).
    QosConnmark,
    /// `CTA_QOSCONNMARK_PAD` (ASK kernels).
    QosConnmarkPad,
}

impl EntryAttr {
    /// How many there are: the size of a counter array indexed by [`EntryAttr::index`].
    pub const COUNT: usize = 16;

    /// All of them, in [`EntryAttr::index`] order.
    pub const ALL: [Self; Self::COUNT] = [
        Self::ProtoInfo,
        Self::Timeout,
        Self::Mark,
        Self::CountersOrig,
        Self::CountersReply,
        Self::Use,
        Self::Id,
        Self::Secmark,
        Self::Timestamp,
        Self::MarkMask,
        Self::StatusMask,
        Self::TimestampEvent,
        Self::FastPathOrig,
        Self::FastPathReply,
        Self::QosConnmark,
        Self::QosConnmarkPad,
    ];

    /// A dense index, below [`EntryAttr::COUNT`], for a counter array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kernel's name, for logs and metric labels.
    pub fn kernel_name(self) -> &'static str {
        match self {
            Self::ProtoInfo => "CTA_PROTOINFO",
            Self::Timeout => "CTA_TIMEOUT",
            Self::Mark => "CTA_MARK",
            Self::CountersOrig => "CTA_COUNTERS_ORIG",
            Self::CountersReply => "CTA_COUNTERS_REPLY",
            Self::Use => "CTA_USE",
            Self::Id => "CTA_ID",
            Self::Secmark => "CTA_SECMARK",
            Self::Timestamp => "CTA_TIMESTAMP",
            Self::MarkMask => "CTA_MARK_MASK",
            Self::StatusMask => "CTA_STATUS_MASK",
            Self::TimestampEvent => "CTA_TIMESTAMP_EVENT",
            Self::FastPathOrig => "CTA_LAYERSCAPE_FP_ORIG",
            Self::FastPathReply => "CTA_LAYERSCAPE_FP_REPLY",
            Self::QosConnmark => "CTA_QOSCONNMARK",
            Self::QosConnmarkPad => "CTA_QOSCONNMARK_PAD",
        }
    }
}

/// The attributes of one entry that were skipped because they did not decode. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SkippedAttrs(u16);

impl SkippedAttrs {
    /// Nothing skipped.
    pub const NONE: Self = Self(0);

    /// Whether nothing was skipped.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `attr` was skipped.
    pub fn contains(self, attr: EntryAttr) -> bool {
        self.0 & (1 << attr.index()) != 0
    }

    /// The skipped attributes, in [`EntryAttr::index`] order.
    pub fn iter(self) -> impl Iterator<Item = EntryAttr> {
        EntryAttr::ALL.into_iter().filter(move |attr| self.contains(*attr))
    }

    /// Adds `attr`.
    pub(crate) fn insert(&mut self, attr: EntryAttr) {
        self.0 |= 1 << attr.index();
    }

    /// Takes `attr` out.
    pub(crate) fn remove(&mut self, attr: EntryAttr) {
        self.0 &= !(1 << attr.index());
    }
}

impl FromIterator<EntryAttr> for SkippedAttrs {
    fn from_iter<I: IntoIterator<Item = EntryAttr>>(attrs: I) -> Self {
        let mut skipped = Self::NONE;
        for attr in attrs {
            skipped.insert(attr);
        }
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_names_distinct() {
        for (i, attr) in EntryAttr::ALL.into_iter().enumerate() {
            assert_eq!(attr.index(), i);
            assert!(attr.kernel_name().starts_with("CTA_"));
        }
        let mut names: Vec<_> = EntryAttr::ALL.iter().map(|attr| attr.kernel_name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EntryAttr::COUNT);
    }

    #[test]
    fn a_set_holds_what_was_inserted() {
        let skipped: SkippedAttrs =
            [EntryAttr::QosConnmark, EntryAttr::Timeout, EntryAttr::QosConnmark]
                .into_iter()
                .collect();
        assert!(!skipped.is_empty());
        assert!(skipped.contains(EntryAttr::Timeout) && !skipped.contains(EntryAttr::Mark));
        assert_eq!(
            skipped.iter().collect::<Vec<_>>(),
            [EntryAttr::Timeout, EntryAttr::QosConnmark]
        );
        assert!(SkippedAttrs::NONE.is_empty());
    }
}
