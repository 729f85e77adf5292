//! Kernel numbers of ctnetlink, from `linux/netfilter/nfnetlink_conntrack.h`, `nfnetlink.h` and
//! `netfilter/nf_conntrack_tuple_common.h`. The C names are kept so that a grep for a kernel
//! constant lands here; the rest of the crate names things by what they mean.

/// `NFNL_SUBSYS_CTNETLINK`: the high byte of a conntrack message's netlink type.
pub(crate) const NFNL_SUBSYS_CTNETLINK: u8 = 1;
/// `NFNETLINK_V0`: the only nfgenmsg version.
pub(crate) const NFNETLINK_V0: u8 = 0;
/// Size of `struct nfgenmsg` (family, version, res_id).
pub(crate) const NFGENMSG_LEN: usize = 4;

// enum cntl_msg_types
pub(crate) const IPCTNL_MSG_CT_NEW: u8 = 0;
pub(crate) const IPCTNL_MSG_CT_GET: u8 = 1;
pub(crate) const IPCTNL_MSG_CT_DELETE: u8 = 2;
pub(crate) const IPCTNL_MSG_CT_GET_CTRZERO: u8 = 3;
pub(crate) const IPCTNL_MSG_CT_GET_STATS_CPU: u8 = 4;
pub(crate) const IPCTNL_MSG_CT_GET_STATS: u8 = 5;
pub(crate) const IPCTNL_MSG_CT_GET_DYING: u8 = 6;
pub(crate) const IPCTNL_MSG_CT_GET_UNCONFIRMED: u8 = 7;

// enum ctattr_type
pub(crate) const CTA_TUPLE_ORIG: u16 = 1;
pub(crate) const CTA_TUPLE_REPLY: u16 = 2;
pub(crate) const CTA_STATUS: u16 = 3;
pub(crate) const CTA_PROTOINFO: u16 = 4;
pub(crate) const CTA_HELP: u16 = 5;
pub(crate) const CTA_NAT_SRC: u16 = 6;
pub(crate) const CTA_TIMEOUT: u16 = 7;
pub(crate) const CTA_MARK: u16 = 8;
pub(crate) const CTA_COUNTERS_ORIG: u16 = 9;
pub(crate) const CTA_COUNTERS_REPLY: u16 = 10;
pub(crate) const CTA_USE: u16 = 11;
pub(crate) const CTA_ID: u16 = 12;
pub(crate) const CTA_NAT_DST: u16 = 13;
pub(crate) const CTA_TUPLE_MASTER: u16 = 14;
pub(crate) const CTA_SEQ_ADJ_ORIG: u16 = 15;
pub(crate) const CTA_SEQ_ADJ_REPLY: u16 = 16;
pub(crate) const CTA_SECMARK: u16 = 17;
pub(crate) const CTA_ZONE: u16 = 18;
pub(crate) const CTA_SECCTX: u16 = 19;
pub(crate) const CTA_TIMESTAMP: u16 = 20;
pub(crate) const CTA_MARK_MASK: u16 = 21;
pub(crate) const CTA_LABELS: u16 = 22;
pub(crate) const CTA_LABELS_MASK: u16 = 23;
pub(crate) const CTA_SYNPROXY: u16 = 24;
pub(crate) const CTA_FILTER: u16 = 25;
pub(crate) const CTA_STATUS_MASK: u16 = 26;
pub(crate) const CTA_TIMESTAMP_EVENT: u16 = 27;

// enum ctattr_tuple
pub(crate) const CTA_TUPLE_IP: u16 = 1;
pub(crate) const CTA_TUPLE_PROTO: u16 = 2;
pub(crate) const CTA_TUPLE_ZONE: u16 = 3;

// enum ctattr_ip
pub(crate) const CTA_IP_V4_SRC: u16 = 1;
pub(crate) const CTA_IP_V4_DST: u16 = 2;
pub(crate) const CTA_IP_V6_SRC: u16 = 3;
pub(crate) const CTA_IP_V6_DST: u16 = 4;

// enum ctattr_l4proto
pub(crate) const CTA_PROTO_NUM: u16 = 1;
pub(crate) const CTA_PROTO_SRC_PORT: u16 = 2;
pub(crate) const CTA_PROTO_DST_PORT: u16 = 3;
pub(crate) const CTA_PROTO_ICMP_ID: u16 = 4;
pub(crate) const CTA_PROTO_ICMP_TYPE: u16 = 5;
pub(crate) const CTA_PROTO_ICMP_CODE: u16 = 6;
pub(crate) const CTA_PROTO_ICMPV6_ID: u16 = 7;
pub(crate) const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
pub(crate) const CTA_PROTO_ICMPV6_CODE: u16 = 9;

// enum ctattr_protoinfo
pub(crate) const CTA_PROTOINFO_TCP: u16 = 1;

// enum ctattr_protoinfo_tcp
pub(crate) const CTA_PROTOINFO_TCP_STATE: u16 = 1;
pub(crate) const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: u16 = 2;
pub(crate) const CTA_PROTOINFO_TCP_WSCALE_REPLY: u16 = 3;
pub(crate) const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: u16 = 4;
pub(crate) const CTA_PROTOINFO_TCP_FLAGS_REPLY: u16 = 5;

// enum ctattr_help
pub(crate) const CTA_HELP_NAME: u16 = 1;
pub(crate) const CTA_HELP_INFO: u16 = 2;

// enum ctattr_nat
pub(crate) const CTA_NAT_V4_MINIP: u16 = 1;
pub(crate) const CTA_NAT_V4_MAXIP: u16 = 2;
pub(crate) const CTA_NAT_PROTO: u16 = 3;
pub(crate) const CTA_NAT_V6_MINIP: u16 = 4;
pub(crate) const CTA_NAT_V6_MAXIP: u16 = 5;

// enum ctattr_protonat
pub(crate) const CTA_PROTONAT_PORT_MIN: u16 = 1;
pub(crate) const CTA_PROTONAT_PORT_MAX: u16 = 2;

// enum ctattr_counters
pub(crate) const CTA_COUNTERS_PACKETS: u16 = 1;
pub(crate) const CTA_COUNTERS_BYTES: u16 = 2;
pub(crate) const CTA_COUNTERS32_PACKETS: u16 = 3;
pub(crate) const CTA_COUNTERS32_BYTES: u16 = 4;

// enum ctattr_seqadj
pub(crate) const CTA_SEQADJ_CORRECTION_POS: u16 = 1;
pub(crate) const CTA_SEQADJ_OFFSET_BEFORE: u16 = 2;
pub(crate) const CTA_SEQADJ_OFFSET_AFTER: u16 = 3;

// enum ctattr_secctx
pub(crate) const CTA_SECCTX_NAME: u16 = 1;

// enum ctattr_tstamp
pub(crate) const CTA_TIMESTAMP_START: u16 = 1;
pub(crate) const CTA_TIMESTAMP_STOP: u16 = 2;

// enum ctattr_synproxy
pub(crate) const CTA_SYNPROXY_ISN: u16 = 1;
pub(crate) const CTA_SYNPROXY_ITS: u16 = 2;
pub(crate) const CTA_SYNPROXY_TSOFF: u16 = 3;

// enum ctattr_filter
pub(crate) const CTA_FILTER_ORIG_FLAGS: u16 = 1;
pub(crate) const CTA_FILTER_REPLY_FLAGS: u16 = 2;

// enum ctattr_comcerto_fp: the members of an ASK kernel's fast-path block (see `ask`).
pub(crate) const CTA_COMCERTO_FP_MARK: u16 = 1;
pub(crate) const CTA_COMCERTO_FP_IFINDEX: u16 = 2;
pub(crate) const CTA_COMCERTO_FP_IIF: u16 = 3;
pub(crate) const CTA_COMCERTO_FP_UNDERLYING_IIF: u16 = 4;
pub(crate) const CTA_COMCERTO_FP_UNDERLYING_VID: u16 = 5;
pub(crate) const CTA_COMCERTO_FP_XFRM_HANDLE: u16 = 6;

/// The attribute type without the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` flags: its largest value.
pub(crate) const NLA_TYPE_MASK: u16 = netlink_packet_core::NLA_TYPE_MASK;

// IP protocol numbers that decide which tuple attributes the kernel uses.
pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_DCCP: u8 = 33;
pub(crate) const IPPROTO_GRE: u8 = 47;
pub(crate) const IPPROTO_ICMPV6: u8 = 58;
pub(crate) const IPPROTO_SCTP: u8 = 132;
pub(crate) const IPPROTO_UDPLITE: u8 = 136;
