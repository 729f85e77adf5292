//! The NXP ASK kernel dialect of ctnetlink: the attributes the ASK kernel patches
//! (`CONFIG_CPE_FAST_PATH`) add, as borrowed views ([`AskAttr`], [`FastPathAttr`]) and owned
//! values ([`FastPath`], [`AskInfo`]); the numbers they get ([`AskNumbering`]) and how those are
//! recognised from a message; the vendor status bit `IPS_PERMANENT` ([`PermanentBit`]).
//!
//! Contract: the ASK attributes have no fixed number (each port appends them to upstream's
//! `enum ctattr_type`), so they are decoded through an [`AskNumbering`], pinned or recognised
//! by shape: a nested block whose members are exactly the fast-path members, of
//! their sizes, with the five the kernel always writes. Recognition needs two such blocks at
//! consecutive numbers of 25 or more (the kernel always writes both directions, one after the
//! other), so no upstream attribute is ever read as ASK: `CTA_SYNPROXY` (24, a nest of three
//! `u32`), `CTA_FILTER` (25, a nest of two `u32`) and `CTA_TIMESTAMP_EVENT` (27, a `u64`) all
//! fail the shape. Nothing here allocates.
//!
//! # What the patches change in ctnetlink
//!
//! Read from `we-are-mono/ASK` `patches/kernel/`: "5.4" is
//! `999-layerscape-ask-kernel_linux_5_4_3_00_0.patch`, "6.12" is
//! `002-mono-gateway-ask-kernel_linux_6_12.patch`; the numbers after the colon are lines of the
//! patch file.
//!
//! - **Numbers.** `enum ctattr_type` gains `CTA_LAYERSCAPE_FP_ORIG`, `CTA_LAYERSCAPE_FP_REPLY`,
//!   `CTA_QOSCONNMARK` after the last upstream attribute: 25, 26, 27 after `CTA_SYNPROXY` on
//!   5.4 (5.4:19588-19593, no pad entry); 27, 28, 29 after `CTA_STATUS_MASK` on 6.12, then
//!   `CTA_QOSCONNMARK_PAD` = 30 (6.12:13714-13718). Upstream added `CTA_FILTER` (25) in 5.7,
//!   `CTA_STATUS_MASK` (26) in 5.15 and `CTA_TIMESTAMP_EVENT` (27) after 6.12, so a port's
//!   numbers depend on its base; libnetfilter_conntrack's 1.1.1 port puts the four before
//!   `CTA_TIMESTAMP_EVENT`.
//! - **Fast-path block members** (`enum ctattr_comcerto_fp`, 5.4:19602-19615,
//!   6.12:13726-13738): `MARK` = 1, `IFINDEX` = 2, `IIF` = 3, `UNDERLYING_IIF` = 4 (`u32`),
//!   `UNDERLYING_VID` = 5 (`u16`), `XFRM_HANDLE` = 6 (four `u16`, 8 bytes; the member exists
//!   unless `IPSEC_FLOW_CACHE` is defined, which neither patch does).
//! - **Emit** (`ctnetlink_dump_comcerto_fp`, 5.4:24230-24310, 6.12:16549-16596): the original
//!   block, then the reply block, each opened with `NLA_F_NESTED`; in each, `MARK`, `IFINDEX`,
//!   `IIF`, `UNDERLYING_IIF` by `nla_put_u32`, `UNDERLYING_VID` by `nla_put_u16`, then
//!   `XFRM_HANDLE` by `nla_put` of the raw `u16[4]` only when `xfrm_handle[0]` or
//!   `xfrm_handle[2]` is non-zero. These are **host byte order** (little-endian on the arm64
//!   boards), unlike every other ctnetlink integer. The members' return values are ignored.
//!   (The libnetfilter_conntrack ports in the same repository check `XFRM_HANDLE` for 16
//!   bytes, "4 x u32", and would refuse a message carrying it: this crate follows the kernel.)
//! - **QoS connmark** (`ctnetlink_dump_qosconnmark`, 5.4:24211-24214, 6.12:16530-16533):
//!   `nla_put_be64`, a big-endian `u64`. Its pad argument is the literal `3` on 5.4 (that is
//!   `CTA_STATUS`) and `CTA_QOSCONNMARK_PAD` on 6.12. The pad is a zero-length attribute put
//!   *before* the value, only on kernels without `CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS` when
//!   the message tail is 8-aligned: never on arm64 or x86. (Upstream's own
//!   `CTA_TIMESTAMP_EVENT` pads with `CTA_TIMESTAMP_PAD`, also 3: an empty `CTA_STATUS` is a
//!   pad on any kernel.)
//! - **Events** (`ctnetlink_conntrack_event`): both blocks right after the tuples and
//!   `CTA_ZONE`, before `CTA_ID`, for NEW, UPDATE and DESTROY alike (5.4:24359, 6.12:16644).
//!   The QoS connmark only when it is non-zero or `IPCT_QOSCONNMARK` is among the events: on
//!   5.4 before `CTA_MARK` (5.4:24371), on 6.12 last, after `CTA_MARK` (6.12:16657).
//! - **Dumps and get replies** (5.4 `ctnetlink_fill_info`:24322-24325, 6.12
//!   `ctnetlink_dump_info`:16607-16610): the QoS connmark always (even 0), after `CTA_MARK`;
//!   both blocks always, after `CTA_SECCTX` (before `CTA_LABELS` on 5.4, `CTA_ID` on 6.12).
//! - **Requests**: `CTA_QOSCONNMARK` is accepted (`NLA_U64`, 5.4:24384, 6.12:16668) by create
//!   and update; the blocks are not (no policy entry).
//! - **Status bits** (5.4:19539-19544, 6.12:13680-13685): `IPS_PERMANENT` is bit 15 on 5.4
//!   and 16 on 6.12, where 15 is upstream's `IPS_HW_OFFLOAD` (6.12:13676; absent from 5.4,
//!   whose `__IPS_MAX_BIT` was 15: 5.4:19554); `IPS_DPI_ALLOWED` is the next bit. Neither is in
//!   `IPS_UNCHANGEABLE_MASK`. A permanent entry reports a timeout of 1000 s
//!   (`LAYERSCAPE_PERMANENT_TIMEOUT`, 5.4:19003/19076, 6.12:13331/13401) and never expires
//!   unless it is TCP outside ESTABLISHED (`nf_ct_is_expired`, 5.4:24141, 6.12:16460).
//! - **Setting and clearing `IPS_PERMANENT`** (`ctnetlink_change_permanent`, 5.4:24402,
//!   6.12:16686, called from `ctnetlink_new_conntrack` for an existing entry when the request
//!   lacks `NLM_F_EXCL`, 5.4:24469, 6.12:16753): only when both `CTA_STATUS` and `CTA_ID` are
//!   present. A status with the bit sets it if the id is the entry's, else `ENOENT`; a status
//!   without it, on a permanent entry, clears it on the same id check. Either way the kernel
//!   returns at once: nothing else in the request is applied and no event is broadcast. In
//!   any other case the ordinary update runs (which only ever sets status bits).
//! - **Other changes visible to a listener**: `IPCT_QOSCONNMARK` is inserted before
//!   `IPCT_SYNPROXY` in `enum ip_conntrack_events` (5.4:19563, 6.12:13703), shifting that
//!   event bit; a TCP connection picked up in ESTABLISHED gets `CTA_PROTOINFO` in the UPDATE
//!   that makes it ASSURED (5.4:24487, 6.12:16771); `/proc/net/nf_conntrack` prints
//!   `[PERMANENT]` and `qosconnmark=` (6.12:16787).
//! - **Where the values come from** (`comcerto_fp_netfilter.c`, hooks registered in
//!   `init_net` only, 5.4:23992, 6.12:16343, so other network namespaces read all zero):
//!   `PRE_ROUTING` records, per direction, for TCP, UDP, IPIP, IPv6-in-IP, GRE, ESP and AH, the
//!   packet mark, `skb->dev->ifindex`, the input interface (`iif_index`), the underlying port
//!   and its VLAN id (6.12:16088-16094); `LOCAL_OUT` (tunnel protocols only) sets `IIF` to 0 to
//!   mark the direction local (6.12:16154). A direction no packet has crossed yet (the reply
//!   of a NEW) also reads all zero. XFRM handles: inbound (IN/FWD) in `[0..2]`, outbound in
//!   `[2..4]`.

use std::fmt;

use crate::consts::*;
use crate::error::{DecodeError, DialectError, EmitError};
use crate::message::CtMessage;
use crate::nla::{AttrIter, AttrValue, AttrWriter, Nest, RawAttr, attr_set, fixed};
use crate::status::Status;

/// A `u32` in host byte order, as the kernel's `nla_put_u32` writes it: the fast-path members
/// are the only ctnetlink integers that are not big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HostU32(pub u32);

/// A `u16` in host byte order (`nla_put_u16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HostU16(pub u16);

/// `CTA_COMCERTO_FP_XFRM_HANDLE`: four xfrm state handles (`u16`, host order); `[0..2]` the
/// inbound (IN/FWD) states, `[2..4]` the outbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct XfrmHandles(pub [u16; 4]);

/// The host-order integer wrappers: decoded and encoded in native byte order.
macro_rules! host_order_value {
    ($($wrapper:ident($ty:ty)),*) => {$(
        impl<'a> AttrValue<'a> for $wrapper {
            #[inline]
            fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
                fixed(bytes, attr).map(|bytes| Self(<$ty>::from_ne_bytes(bytes)))
            }

            fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
                out.extend(&self.0.to_ne_bytes());
                Ok(())
            }
        }
    )*};
}

host_order_value!(HostU32(u32), HostU16(u16));

impl<'a> AttrValue<'a> for XfrmHandles {
    #[inline]
    fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
        let [a0, a1, b0, b1, c0, c1, d0, d1] = fixed::<8>(bytes, attr)?;
        Ok(Self([
            u16::from_ne_bytes([a0, a1]),
            u16::from_ne_bytes([b0, b1]),
            u16::from_ne_bytes([c0, c1]),
            u16::from_ne_bytes([d0, d1]),
        ]))
    }

    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
        for handle in self.0 {
            out.extend(&handle.to_ne_bytes());
        }
        Ok(())
    }
}

attr_set! {
    /// A member of a fast-path block (`enum ctattr_comcerto_fp`, `CTA_COMCERTO_FP_*`).
    pub enum FastPathAttr<'a> {
        /// `CTA_COMCERTO_FP_MARK`: the packet mark when the direction was last seen.
        Mark(HostU32) = CTA_COMCERTO_FP_MARK,
        /// `CTA_COMCERTO_FP_IFINDEX`: the device the packet was on (`skb->dev`).
        Ifindex(HostU32) = CTA_COMCERTO_FP_IFINDEX,
        /// `CTA_COMCERTO_FP_IIF`: the input interface; 0 for a locally generated direction.
        Iif(HostU32) = CTA_COMCERTO_FP_IIF,
        /// `CTA_COMCERTO_FP_UNDERLYING_IIF`: the physical port under a bridge or VLAN.
        UnderlyingIif(HostU32) = CTA_COMCERTO_FP_UNDERLYING_IIF,
        /// `CTA_COMCERTO_FP_UNDERLYING_VID`: the VLAN id on that port (priority bits removed).
        UnderlyingVid(HostU16) = CTA_COMCERTO_FP_UNDERLYING_VID,
        /// `CTA_COMCERTO_FP_XFRM_HANDLE`: the IPsec states, only when one is set.
        XfrmHandles(XfrmHandles) = CTA_COMCERTO_FP_XFRM_HANDLE,
    }
}

/// One direction's fast-path block (`CTA_LAYERSCAPE_FP_ORIG` or `_REPLY`), as the kernel
/// recorded it from the last packet of that direction. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FastPath {
    /// Packet mark (`skb->mark`), what policy routing (`ip rule fwmark`) saw.
    pub mark: u32,
    /// The device the packet was on (`skb->dev->ifindex`).
    pub ifindex: u32,
    /// The input interface; 0 when the direction was generated by the host itself, or has not
    /// seen a packet yet.
    pub iif: u32,
    /// The physical port under a bridge or VLAN interface.
    pub underlying_iif: u32,
    /// The VLAN id on the underlying port (0 without VLAN).
    pub underlying_vid: u16,
    /// The IPsec states of this direction, when the kernel sent them (one of them is set).
    pub xfrm_handles: Option<[u16; 4]>,
}

impl FastPath {
    /// Reads a fast-path block. The five members the kernel always writes are required
    /// (a missing `IIF` would read as "local"); members of future kernels are ignored.
    #[inline]
    pub fn from_nest(nest: Nest<'_, FastPathAttr<'_>>) -> Result<Self, DecodeError> {
        let mut block = Self::default();
        let mut seen = 0u8;
        for member in nest {
            match member? {
                FastPathAttr::Mark(HostU32(mark)) => (block.mark, seen) = (mark, seen | 1 << 1),
                FastPathAttr::Ifindex(HostU32(index)) => {
                    (block.ifindex, seen) = (index, seen | 1 << 2);
                }
                FastPathAttr::Iif(HostU32(iif)) => (block.iif, seen) = (iif, seen | 1 << 3),
                FastPathAttr::UnderlyingIif(HostU32(iif)) => {
                    (block.underlying_iif, seen) = (iif, seen | 1 << 4);
                }
                FastPathAttr::UnderlyingVid(HostU16(vid)) => {
                    (block.underlying_vid, seen) = (vid, seen | 1 << 5);
                }
                FastPathAttr::XfrmHandles(XfrmHandles(handles)) => {
                    block.xfrm_handles = Some(handles);
                }
                FastPathAttr::Other(_) => {}
            }
        }
        match ALWAYS_WRITTEN.iter().find(|(bit, _)| seen & (1 << bit) == 0) {
            Some((_, name)) => Err(DecodeError::MissingAttr(name)),
            None => Ok(block),
        }
    }
}

/// The members every fast-path block carries, by number, with their kernel names.
const ALWAYS_WRITTEN: [(u16, &str); 5] = [
    (CTA_COMCERTO_FP_MARK, "CTA_COMCERTO_FP_MARK"),
    (CTA_COMCERTO_FP_IFINDEX, "CTA_COMCERTO_FP_IFINDEX"),
    (CTA_COMCERTO_FP_IIF, "CTA_COMCERTO_FP_IIF"),
    (CTA_COMCERTO_FP_UNDERLYING_IIF, "CTA_COMCERTO_FP_UNDERLYING_IIF"),
    (CTA_COMCERTO_FP_UNDERLYING_VID, "CTA_COMCERTO_FP_UNDERLYING_VID"),
];

/// What an ASK kernel adds to an entry: both fast-path blocks and the QoS connmark. All
/// `None` on a stock kernel. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AskInfo {
    /// `CTA_LAYERSCAPE_FP_ORIG`: the original direction.
    pub orig: Option<FastPath>,
    /// `CTA_LAYERSCAPE_FP_REPLY`: the reply direction.
    pub reply: Option<FastPath>,
    /// `CTA_QOSCONNMARK`: in every dump entry; in events only when non-zero or changed.
    pub qos_connmark: Option<u64>,
}

impl AskInfo {
    /// Whether the message carried no ASK attribute (a stock kernel).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The numbers an ASK kernel gives its four `enum ctattr_type` additions. Valid by
/// construction: the three attributes are 25 or above (below is upstream's) and distinct, and
/// the pad is 3 (5.4's literal) or 25 and above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AskNumbering {
    fp_orig: u16,
    fp_reply: u16,
    qos_connmark: u16,
    qos_connmark_pad: u16,
}

impl AskNumbering {
    /// The 5.4 patch: after `CTA_SYNPROXY`; the QoS connmark pads with the literal 3.
    pub const LINUX_5_4: Self =
        Self { fp_orig: 25, fp_reply: 26, qos_connmark: 27, qos_connmark_pad: CTA_STATUS };
    /// The 6.12 patch: after `CTA_STATUS_MASK`, with `CTA_QOSCONNMARK_PAD`.
    pub const LINUX_6_12: Self =
        Self { fp_orig: 27, fp_reply: 28, qos_connmark: 29, qos_connmark_pad: 30 };
    /// The lowest number an ASK attribute can have: upstream used 1 to 24 before any port.
    pub const FIRST: u16 = 25;

    /// Explicit numbers, checked.
    pub fn new(
        fp_orig: u16,
        fp_reply: u16,
        qos_connmark: u16,
        qos_connmark_pad: u16,
    ) -> Result<Self, DialectError> {
        let named = [
            ("fp_orig", fp_orig),
            ("fp_reply", fp_reply),
            ("qosconnmark", qos_connmark),
            ("pad", qos_connmark_pad),
        ];
        for (key, number) in named {
            let pad_three = key == "pad" && number == CTA_STATUS;
            if !pad_three && !(Self::FIRST..=NLA_TYPE_MASK).contains(&number) {
                return Err(DialectError::Reserved { key, number });
            }
        }
        for (i, (_, number)) in named.iter().enumerate() {
            if named.iter().skip(i + 1).any(|(_, other)| other == number) {
                return Err(DialectError::Shared(*number));
            }
        }
        Ok(Self { fp_orig, fp_reply, qos_connmark, qos_connmark_pad })
    }

    /// The numbering both patches follow from where the original block lands: the reply
    /// block, the QoS connmark and its pad next (the pad is 3 when the block is at 25, as on
    /// 5.4, which has no pad entry).
    pub fn following(fp_orig: u16) -> Option<Self> {
        let pad = if fp_orig == Self::FIRST { CTA_STATUS } else { fp_orig.checked_add(3)? };
        Self::new(fp_orig, fp_orig.checked_add(1)?, fp_orig.checked_add(2)?, pad).ok()
    }

    /// `CTA_LAYERSCAPE_FP_ORIG`.
    pub fn fp_orig(&self) -> u16 {
        self.fp_orig
    }

    /// `CTA_LAYERSCAPE_FP_REPLY`.
    pub fn fp_reply(&self) -> u16 {
        self.fp_reply
    }

    /// `CTA_QOSCONNMARK`.
    pub fn qos_connmark(&self) -> u16 {
        self.qos_connmark
    }

    /// The pad attribute of the QoS connmark (`CTA_QOSCONNMARK_PAD`, or 3 on 5.4).
    pub fn qos_connmark_pad(&self) -> u16 {
        self.qos_connmark_pad
    }

    /// The `IPS_PERMANENT` bit of a kernel with this numbering, when the numbering tells: a
    /// block at 25 means a base without `CTA_FILTER` (before 5.7), so before `IPS_HW_OFFLOAD`
    /// (5.8): bit 15; at 27 or later the base has `CTA_STATUS_MASK` (5.15): bit 16. At 26
    /// (5.7 to 5.14) it does not tell: ask [`KernelVersion::ask_permanent_bit`](crate::KernelVersion::ask_permanent_bit).
    pub fn permanent_bit(&self) -> Option<PermanentBit> {
        match self.fp_orig {
            25 => Some(PermanentBit::LINUX_5_4),
            26 => None,
            _ => Some(PermanentBit::LINUX_6_12),
        }
    }

    /// The ASK attribute `raw` is under this numbering, or `None` if it is not one. An empty
    /// attribute of the pad's number is the pad (with the 5.4 pad, 3, a non-empty one is
    /// `CTA_STATUS`).
    pub fn attr<'a>(&self, raw: RawAttr<'a>) -> Option<Result<AskAttr<'a>, DecodeError>> {
        let kind = raw.kind();
        let value = raw.value();
        if kind == self.fp_orig {
            Some(Ok(AskAttr::FastPathOrig(Nest::new(value, "CTA_LAYERSCAPE_FP_ORIG"))))
        } else if kind == self.fp_reply {
            Some(Ok(AskAttr::FastPathReply(Nest::new(value, "CTA_LAYERSCAPE_FP_REPLY"))))
        } else if kind == self.qos_connmark {
            Some(u64::decode(value, "CTA_QOSCONNMARK").map(AskAttr::QosConnmark))
        } else if kind == self.qos_connmark_pad && (kind != CTA_STATUS || value.is_empty()) {
            Some(match value.len() {
                0 => Ok(AskAttr::QosConnmarkPad),
                actual => Err(DecodeError::ValueLength {
                    attr: "CTA_QOSCONNMARK_PAD",
                    expected: 0,
                    actual,
                }),
            })
        } else {
            None
        }
    }
}

impl fmt::Display for AskNumbering {
    /// The explicit form the configuration accepts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fp_orig={},fp_reply={},qosconnmark={},pad={}",
            self.fp_orig, self.fp_reply, self.qos_connmark, self.qos_connmark_pad
        )
    }
}

/// An ASK attribute of a conntrack message, as a borrowed view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskAttr<'a> {
    /// `CTA_LAYERSCAPE_FP_ORIG`: the original direction's fast-path block.
    FastPathOrig(Nest<'a, FastPathAttr<'a>>),
    /// `CTA_LAYERSCAPE_FP_REPLY`: the reply direction's fast-path block.
    FastPathReply(Nest<'a, FastPathAttr<'a>>),
    /// `CTA_QOSCONNMARK`: the 64-bit QoS connection mark.
    QosConnmark(u64),
    /// `CTA_QOSCONNMARK_PAD`: the zero-length alignment pad put before it.
    QosConnmarkPad,
}

/// The ASK attributes of a message under one numbering; see [`CtMessage::ask_attrs`].
#[derive(Debug, Clone)]
pub struct AskAttrs<'a> {
    attrs: AttrIter<'a>,
    numbering: AskNumbering,
}

impl<'a> Iterator for AskAttrs<'a> {
    type Item = Result<AskAttr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.attrs.next()? {
                Ok(raw) => {
                    if let Some(attr) = self.numbering.attr(raw) {
                        return Some(attr);
                    }
                }
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

impl<'a> CtMessage<'a> {
    /// The ASK attributes of this message, read with `numbering` (the stock attributes are
    /// [`CtMessage::attrs`], where an ASK number that is also upstream's, such as 27, shows
    /// as the upstream attribute).
    pub fn ask_attrs(&self, numbering: AskNumbering) -> AskAttrs<'a> {
        AskAttrs { attrs: self.raw_attrs(), numbering }
    }
}

/// Whether `value` is a fast-path block exactly as the patches write it: only the six
/// members, none twice, each of its size, the first five all present.
fn is_fast_path_block(value: &[u8]) -> bool {
    let mut seen = 0u8;
    for member in AttrIter::new(value, "CTA_LAYERSCAPE_FP") {
        let Ok(member) = member else { return false };
        let size = match member.kind() {
            CTA_COMCERTO_FP_MARK
            | CTA_COMCERTO_FP_IFINDEX
            | CTA_COMCERTO_FP_IIF
            | CTA_COMCERTO_FP_UNDERLYING_IIF => 4,
            CTA_COMCERTO_FP_UNDERLYING_VID => 2,
            CTA_COMCERTO_FP_XFRM_HANDLE => 8,
            _ => return false,
        };
        let bit = 1u8 << member.kind();
        if member.value().len() != size || seen & bit != 0 {
            return false;
        }
        seen |= bit;
    }
    ALWAYS_WRITTEN.iter().all(|(kind, _)| seen & (1 << kind) != 0)
}

/// The numbering a message's attributes show, if any: two fast-path blocks (nested, of the
/// exact shape) at consecutive numbers of 25 or more. `candidates` are the message's
/// attributes numbered 25 and above.
pub(crate) fn recognise<'a>(candidates: impl Iterator<Item = RawAttr<'a>>) -> Option<AskNumbering> {
    let mut blocks = [0u16; 4];
    let mut found = 0;
    for raw in candidates {
        let block =
            raw.is_nested() && raw.kind() >= AskNumbering::FIRST && is_fast_path_block(raw.value());
        if let Some(slot) = blocks.get_mut(found).filter(|_| block) {
            *slot = raw.kind();
            found += 1;
        }
    }
    let blocks = blocks.get(..found).unwrap_or(&[]);
    let orig = blocks.iter().find(|kind| blocks.contains(&kind.wrapping_add(1)))?;
    AskNumbering::following(*orig)
}

/// The vendor status bit `IPS_PERMANENT` of an ASK kernel (the conntrack never expires while
/// it is set); `IPS_DPI_ALLOWED` is the next bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PermanentBit(u8);

impl PermanentBit {
    /// Bit 15: the 5.4 patch (kernels before 5.8, which have no `IPS_HW_OFFLOAD`).
    pub const LINUX_5_4: Self = Self(15);
    /// Bit 16: the 6.12 patch (kernels since 5.8, where 15 is `IPS_HW_OFFLOAD`).
    pub const LINUX_6_12: Self = Self(16);

    /// Bit `bit`, if `IPS_DPI_ALLOWED` (the next) still fits the 32-bit status.
    pub fn new(bit: u8) -> Option<Self> {
        (bit < 31).then_some(Self(bit))
    }

    /// The bit number.
    pub fn bit(self) -> u8 {
        self.0
    }

    /// `IPS_PERMANENT` as a status value.
    pub fn status(self) -> Status {
        Status::from_bits_retain(1 << self.0)
    }

    /// `IPS_DPI_ALLOWED` (the next bit) as a status value.
    pub fn dpi_allowed(self) -> Status {
        Status::from_bits_retain(1 << (self.0 + 1))
    }

    /// Whether `status` has `IPS_PERMANENT`.
    pub fn is_set(self, status: Status) -> bool {
        status.contains(self.status())
    }
}

impl fmt::Display for PermanentBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
