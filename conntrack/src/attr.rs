//! The attribute families of ctnetlink, as borrowed, typed views.
//!
//! Contract: each enum has a variant per attribute the kernel defines in that container and
//! `Other(RawAttr)` for the rest, so nothing is ever dropped. Leaf values are decoded (and
//! size-checked) when the attribute is decoded; nested attributes are [`Nest`] views decoded
//! while iterated. Re-encoding a decoded value gives back its bytes.
//!
//! The variant names say what the attribute is; the kernel names (`CTA_*`) are in the docs.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::consts::*;
use crate::nla::{Nest, attr_set};
use crate::status::Status;
use crate::tcp::{MaskedTcpFlags, TcpState};

attr_set! {
    /// A top-level attribute of a conntrack message (`CTA_*`).
    pub enum Attr<'a> {
        /// `CTA_TUPLE_ORIG`: the original-direction tuple.
        TupleOrig(Nest<'a, TupleAttr<'a>>) = CTA_TUPLE_ORIG,
        /// `CTA_TUPLE_REPLY`: the reply-direction tuple (shows NAT).
        TupleReply(Nest<'a, TupleAttr<'a>>) = CTA_TUPLE_REPLY,
        /// `CTA_STATUS`: status bits.
        Status(Status) = CTA_STATUS,
        /// `CTA_PROTOINFO`: protocol state (TCP state and flags…).
        ProtoInfo(Nest<'a, ProtoInfoAttr<'a>>) = CTA_PROTOINFO,
        /// `CTA_HELP`: the helper attached to the connection.
        Helper(Nest<'a, HelperAttr<'a>>) = CTA_HELP,
        /// `CTA_NAT_SRC`: a source NAT range (requests only).
        NatSrc(Nest<'a, NatAttr<'a>>) = CTA_NAT_SRC,
        /// `CTA_TIMEOUT`: seconds until the entry expires.
        Timeout(u32) = CTA_TIMEOUT,
        /// `CTA_MARK`: the connection mark.
        Mark(u32) = CTA_MARK,
        /// `CTA_COUNTERS_ORIG`: packets and bytes of the original direction.
        CountersOrig(Nest<'a, CounterAttr<'a>>) = CTA_COUNTERS_ORIG,
        /// `CTA_COUNTERS_REPLY`: packets and bytes of the reply direction.
        CountersReply(Nest<'a, CounterAttr<'a>>) = CTA_COUNTERS_REPLY,
        /// `CTA_USE`: the entry's reference count.
        Use(u32) = CTA_USE,
        /// `CTA_ID`: the entry's id (stable while the entry lives).
        Id(u32) = CTA_ID,
        /// `CTA_NAT_DST`: a destination NAT range (requests only).
        NatDst(Nest<'a, NatAttr<'a>>) = CTA_NAT_DST,
        /// `CTA_TUPLE_MASTER`: the master's tuple, on expected (related) connections.
        TupleMaster(Nest<'a, TupleAttr<'a>>) = CTA_TUPLE_MASTER,
        /// `CTA_SEQ_ADJ_ORIG`: TCP sequence adjustment of the original direction.
        SeqAdjOrig(Nest<'a, SeqAdjAttr<'a>>) = CTA_SEQ_ADJ_ORIG,
        /// `CTA_SEQ_ADJ_REPLY`: TCP sequence adjustment of the reply direction.
        SeqAdjReply(Nest<'a, SeqAdjAttr<'a>>) = CTA_SEQ_ADJ_REPLY,
        /// `CTA_SECMARK`: the security mark (obsolete, superseded by `CTA_SECCTX`).
        Secmark(u32) = CTA_SECMARK,
        /// `CTA_ZONE`: the conntrack zone.
        Zone(u16) = CTA_ZONE,
        /// `CTA_SECCTX`: the security context.
        SecCtx(Nest<'a, SecCtxAttr<'a>>) = CTA_SECCTX,
        /// `CTA_TIMESTAMP`: start (and stop) time, with `nf_conntrack_timestamp=1`.
        Timestamp(Nest<'a, TimestampAttr<'a>>) = CTA_TIMESTAMP,
        /// `CTA_MARK_MASK`: which mark bits a request speaks for.
        MarkMask(u32) = CTA_MARK_MASK,
        /// `CTA_LABELS`: the connection label bitmap.
        Labels(&'a [u8]) = CTA_LABELS,
        /// `CTA_LABELS_MASK`: which label bits a request speaks for.
        LabelsMask(&'a [u8]) = CTA_LABELS_MASK,
        /// `CTA_SYNPROXY`: SYN proxy sequence state.
        Synproxy(Nest<'a, SynproxyAttr<'a>>) = CTA_SYNPROXY,
        /// `CTA_FILTER`: which tuple parts a dump or flush filter compares (requests only).
        Filter(Nest<'a, FilterAttr<'a>>) = CTA_FILTER,
        /// `CTA_STATUS_MASK`: which status bits a dump filter compares (requests only).
        StatusMask(Status) = CTA_STATUS_MASK,
        /// `CTA_TIMESTAMP_EVENT`: when the event was generated (newer kernels).
        TimestampEvent(u64) = CTA_TIMESTAMP_EVENT,
    }
}

attr_set! {
    /// An attribute of a tuple (`CTA_TUPLE_*`).
    pub enum TupleAttr<'a> {
        /// `CTA_TUPLE_IP`: addresses.
        Ip(Nest<'a, IpAttr<'a>>) = CTA_TUPLE_IP,
        /// `CTA_TUPLE_PROTO`: layer-4 protocol, ports or ICMP id/type/code.
        Proto(Nest<'a, ProtoAttr<'a>>) = CTA_TUPLE_PROTO,
        /// `CTA_TUPLE_ZONE`: zone of this direction (directional zones).
        Zone(u16) = CTA_TUPLE_ZONE,
    }
}

attr_set! {
    /// An address of a tuple (`CTA_IP_*`).
    pub enum IpAttr<'a> {
        /// `CTA_IP_V4_SRC`.
        V4Src(Ipv4Addr) = CTA_IP_V4_SRC,
        /// `CTA_IP_V4_DST`.
        V4Dst(Ipv4Addr) = CTA_IP_V4_DST,
        /// `CTA_IP_V6_SRC`.
        V6Src(Ipv6Addr) = CTA_IP_V6_SRC,
        /// `CTA_IP_V6_DST`.
        V6Dst(Ipv6Addr) = CTA_IP_V6_DST,
    }
}

attr_set! {
    /// A layer-4 part of a tuple (`CTA_PROTO_*`).
    pub enum ProtoAttr<'a> {
        /// `CTA_PROTO_NUM`: IP protocol number.
        Num(u8) = CTA_PROTO_NUM,
        /// `CTA_PROTO_SRC_PORT`: source port (TCP, UDP, UDP-Lite, SCTP, DCCP; GRE key).
        SrcPort(u16) = CTA_PROTO_SRC_PORT,
        /// `CTA_PROTO_DST_PORT`: destination port.
        DstPort(u16) = CTA_PROTO_DST_PORT,
        /// `CTA_PROTO_ICMP_ID`.
        IcmpId(u16) = CTA_PROTO_ICMP_ID,
        /// `CTA_PROTO_ICMP_TYPE`.
        IcmpType(u8) = CTA_PROTO_ICMP_TYPE,
        /// `CTA_PROTO_ICMP_CODE`.
        IcmpCode(u8) = CTA_PROTO_ICMP_CODE,
        /// `CTA_PROTO_ICMPV6_ID`.
        Icmpv6Id(u16) = CTA_PROTO_ICMPV6_ID,
        /// `CTA_PROTO_ICMPV6_TYPE`.
        Icmpv6Type(u8) = CTA_PROTO_ICMPV6_TYPE,
        /// `CTA_PROTO_ICMPV6_CODE`.
        Icmpv6Code(u8) = CTA_PROTO_ICMPV6_CODE,
    }
}

attr_set! {
    /// Protocol information (`CTA_PROTOINFO_*`). DCCP and SCTP are kept as `Other`.
    pub enum ProtoInfoAttr<'a> {
        /// `CTA_PROTOINFO_TCP`.
        Tcp(Nest<'a, TcpAttr<'a>>) = CTA_PROTOINFO_TCP,
    }
}

attr_set! {
    /// TCP protocol information (`CTA_PROTOINFO_TCP_*`).
    pub enum TcpAttr<'a> {
        /// `CTA_PROTOINFO_TCP_STATE`.
        State(TcpState) = CTA_PROTOINFO_TCP_STATE,
        /// `CTA_PROTOINFO_TCP_WSCALE_ORIGINAL`.
        WindowScaleOrig(u8) = CTA_PROTOINFO_TCP_WSCALE_ORIGINAL,
        /// `CTA_PROTOINFO_TCP_WSCALE_REPLY`.
        WindowScaleReply(u8) = CTA_PROTOINFO_TCP_WSCALE_REPLY,
        /// `CTA_PROTOINFO_TCP_FLAGS_ORIGINAL`.
        FlagsOrig(MaskedTcpFlags) = CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
        /// `CTA_PROTOINFO_TCP_FLAGS_REPLY`.
        FlagsReply(MaskedTcpFlags) = CTA_PROTOINFO_TCP_FLAGS_REPLY,
    }
}

attr_set! {
    /// The helper of a connection (`CTA_HELP_*`).
    pub enum HelperAttr<'a> {
        /// `CTA_HELP_NAME`: the helper's name, NUL-terminated as the kernel sends it.
        Name(&'a [u8]) = CTA_HELP_NAME,
        /// `CTA_HELP_INFO`: helper-private data.
        Info(&'a [u8]) = CTA_HELP_INFO,
    }
}

attr_set! {
    /// A NAT range of a request (`CTA_NAT_*`).
    pub enum NatAttr<'a> {
        /// `CTA_NAT_V4_MINIP`.
        V4Min(Ipv4Addr) = CTA_NAT_V4_MINIP,
        /// `CTA_NAT_V4_MAXIP`.
        V4Max(Ipv4Addr) = CTA_NAT_V4_MAXIP,
        /// `CTA_NAT_PROTO`: port range.
        Proto(Nest<'a, NatProtoAttr<'a>>) = CTA_NAT_PROTO,
        /// `CTA_NAT_V6_MINIP`.
        V6Min(Ipv6Addr) = CTA_NAT_V6_MINIP,
        /// `CTA_NAT_V6_MAXIP`.
        V6Max(Ipv6Addr) = CTA_NAT_V6_MAXIP,
    }
}

attr_set! {
    /// The port range of a NAT range (`CTA_PROTONAT_*`).
    pub enum NatProtoAttr<'a> {
        /// `CTA_PROTONAT_PORT_MIN`.
        PortMin(u16) = CTA_PROTONAT_PORT_MIN,
        /// `CTA_PROTONAT_PORT_MAX`.
        PortMax(u16) = CTA_PROTONAT_PORT_MAX,
    }
}

attr_set! {
    /// Counters of one direction (`CTA_COUNTERS_*`); the padding attribute is kept as `Other`.
    pub enum CounterAttr<'a> {
        /// `CTA_COUNTERS_PACKETS`.
        Packets(u64) = CTA_COUNTERS_PACKETS,
        /// `CTA_COUNTERS_BYTES`.
        Bytes(u64) = CTA_COUNTERS_BYTES,
        /// `CTA_COUNTERS32_PACKETS` (old kernels).
        Packets32(u32) = CTA_COUNTERS32_PACKETS,
        /// `CTA_COUNTERS32_BYTES` (old kernels).
        Bytes32(u32) = CTA_COUNTERS32_BYTES,
    }
}

attr_set! {
    /// TCP sequence adjustment of one direction (`CTA_SEQADJ_*`).
    pub enum SeqAdjAttr<'a> {
        /// `CTA_SEQADJ_CORRECTION_POS`.
        CorrectionPos(u32) = CTA_SEQADJ_CORRECTION_POS,
        /// `CTA_SEQADJ_OFFSET_BEFORE`.
        OffsetBefore(u32) = CTA_SEQADJ_OFFSET_BEFORE,
        /// `CTA_SEQADJ_OFFSET_AFTER`.
        OffsetAfter(u32) = CTA_SEQADJ_OFFSET_AFTER,
    }
}

attr_set! {
    /// Security context (`CTA_SECCTX_*`).
    pub enum SecCtxAttr<'a> {
        /// `CTA_SECCTX_NAME`, NUL-terminated.
        Name(&'a [u8]) = CTA_SECCTX_NAME,
    }
}

attr_set! {
    /// Timestamps in nanoseconds since the epoch (`CTA_TIMESTAMP_*`); padding kept as `Other`.
    pub enum TimestampAttr<'a> {
        /// `CTA_TIMESTAMP_START`.
        Start(u64) = CTA_TIMESTAMP_START,
        /// `CTA_TIMESTAMP_STOP` (DESTROY events).
        Stop(u64) = CTA_TIMESTAMP_STOP,
    }
}

attr_set! {
    /// SYN proxy state (`CTA_SYNPROXY_*`).
    pub enum SynproxyAttr<'a> {
        /// `CTA_SYNPROXY_ISN`.
        Isn(u32) = CTA_SYNPROXY_ISN,
        /// `CTA_SYNPROXY_ITS`.
        Its(u32) = CTA_SYNPROXY_ITS,
        /// `CTA_SYNPROXY_TSOFF`.
        TsOff(u32) = CTA_SYNPROXY_TSOFF,
    }
}

attr_set! {
    /// A dump or flush filter (`CTA_FILTER_*`).
    pub enum FilterAttr<'a> {
        /// `CTA_FILTER_ORIG_FLAGS`: which original-tuple fields to compare.
        OrigFlags(u32) = CTA_FILTER_ORIG_FLAGS,
        /// `CTA_FILTER_REPLY_FLAGS`: which reply-tuple fields to compare.
        ReplyFlags(u32) = CTA_FILTER_REPLY_FLAGS,
    }
}
