//! Messages: splitting a received datagram into netlink messages, and the conntrack message
//! view (header, nfgenmsg, attributes).
//!
//! Contract: [`Datagram`] yields one [`Message`] per netlink message, or one [`DecodeError`]
//! and then stops. Only messages of the ctnetlink subsystem (`nlmsg_type >> 8 == 1`) are
//! decoded as [`CtMessage`]; the netlink control messages are decoded as `Done`, `Error` and
//! `Overrun`; everything else (expectations, other subsystems) is `Other`, untouched. Nothing
//! here allocates.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_MULTIPART, NLM_F_REQUEST, NetlinkBuffer,
};

use crate::attr::{Attr, HelperAttr};
use crate::consts::*;
use crate::error::{DecodeError, EmitError};
use crate::nla::{AttrIter, AttrValue, AttrWriter, Nest, align4, fixed};

/// Size of `struct nlmsghdr`.
const NETLINK_HEADER_LEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

/// The netlink header of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// `nlmsg_type`: subsystem in the high byte, message in the low byte for netfilter.
    pub message_type: u16,
    /// `nlmsg_flags` (`NLM_F_*`).
    pub flags: u16,
    /// `nlmsg_seq`: the request's sequence number in replies; 0 in events.
    pub seq: u32,
    /// `nlmsg_pid`: the port the message is addressed to or caused by.
    pub port: u32,
}

/// The ctnetlink message type (`IPCTNL_MSG_CT_*`, the low byte of `nlmsg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// `IPCTNL_MSG_CT_NEW`: creation, update, and dump or get replies.
    New,
    /// `IPCTNL_MSG_CT_GET`: get and dump requests.
    Get,
    /// `IPCTNL_MSG_CT_DELETE`: delete requests and DESTROY events.
    Delete,
    /// `IPCTNL_MSG_CT_GET_CTRZERO`: get and zero the counters.
    GetCtrZero,
    /// `IPCTNL_MSG_CT_GET_STATS_CPU`.
    GetStatsCpu,
    /// `IPCTNL_MSG_CT_GET_STATS`.
    GetStats,
    /// `IPCTNL_MSG_CT_GET_DYING`.
    GetDying,
    /// `IPCTNL_MSG_CT_GET_UNCONFIRMED`.
    GetUnconfirmed,
    /// Any other value.
    Other(u8),
}

impl From<u8> for MessageKind {
    fn from(value: u8) -> Self {
        match value {
            IPCTNL_MSG_CT_NEW => Self::New,
            IPCTNL_MSG_CT_GET => Self::Get,
            IPCTNL_MSG_CT_DELETE => Self::Delete,
            IPCTNL_MSG_CT_GET_CTRZERO => Self::GetCtrZero,
            IPCTNL_MSG_CT_GET_STATS_CPU => Self::GetStatsCpu,
            IPCTNL_MSG_CT_GET_STATS => Self::GetStats,
            IPCTNL_MSG_CT_GET_DYING => Self::GetDying,
            IPCTNL_MSG_CT_GET_UNCONFIRMED => Self::GetUnconfirmed,
            other => Self::Other(other),
        }
    }
}

impl From<MessageKind> for u8 {
    fn from(kind: MessageKind) -> Self {
        match kind {
            MessageKind::New => IPCTNL_MSG_CT_NEW,
            MessageKind::Get => IPCTNL_MSG_CT_GET,
            MessageKind::Delete => IPCTNL_MSG_CT_DELETE,
            MessageKind::GetCtrZero => IPCTNL_MSG_CT_GET_CTRZERO,
            MessageKind::GetStatsCpu => IPCTNL_MSG_CT_GET_STATS_CPU,
            MessageKind::GetStats => IPCTNL_MSG_CT_GET_STATS,
            MessageKind::GetDying => IPCTNL_MSG_CT_GET_DYING,
            MessageKind::GetUnconfirmed => IPCTNL_MSG_CT_GET_UNCONFIRMED,
            MessageKind::Other(value) => value,
        }
    }
}

impl MessageKind {
    /// The full `nlmsg_type` of this ctnetlink message.
    pub fn message_type(self) -> u16 {
        u16::from(NFNL_SUBSYS_CTNETLINK) << 8 | u16::from(u8::from(self))
    }
}

/// What a multicast event says happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The entry was created (`IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL`).
    New,
    /// The entry changed (`IPCTNL_MSG_CT_NEW` without them).
    Update,
    /// The entry was removed (`IPCTNL_MSG_CT_DELETE`).
    Destroy,
}

/// How a conntrack message came to be, from its type, flags and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// A multicast event (sequence number 0, no `NLM_F_MULTI`).
    Event(EventKind),
    /// One entry of a dump reply (`NLM_F_MULTI`).
    DumpEntry,
    /// A unicast reply to a request (non-zero sequence number, e.g. a get).
    Reply,
    /// A request (`NLM_F_REQUEST`), as this crate's builders write them.
    Request,
}

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<'a> {
    /// A ctnetlink (conntrack) message.
    Conntrack(CtMessage<'a>),
    /// `NLMSG_DONE`: the end of a dump.
    Done {
        /// The dump request's sequence number.
        seq: u32,
    },
    /// `NLMSG_ERROR`: an acknowledgement (`errno == 0`) or a refusal.
    Error {
        /// The request's sequence number.
        seq: u32,
        /// The error as a positive errno (`libc::ENOENT`…), 0 for an acknowledgement.
        errno: i32,
    },
    /// `NLMSG_OVERRUN`.
    Overrun {
        /// Its sequence number.
        seq: u32,
    },
    /// Anything else (`NLMSG_NOOP`, conntrack expectations, other netfilter subsystems): kept
    /// undecoded.
    Other {
        /// Its header.
        header: Header,
        /// Its payload.
        payload: &'a [u8],
    },
}

/// The netlink messages of one received datagram.
///
/// ```
/// use conntrack::{Datagram, Message};
/// // An NLMSG_DONE (16-byte header, 4-byte payload) followed by an acknowledgement.
/// let bytes = [
///     20, 0, 0, 0, 3, 0, 2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
///     36, 0, 0, 0, 2, 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
///     16, 0, 0, 0, 0, 1, 5, 0, 8, 0, 0, 0, 0, 0, 0, 0,
/// ];
/// let messages: Vec<_> = Datagram::new(&bytes).collect::<Result<_, _>>().unwrap();
/// assert_eq!(messages, [Message::Done { seq: 7 }, Message::Error { seq: 8, errno: 0 }]);
/// ```
#[derive(Debug, Clone)]
pub struct Datagram<'a> {
    rest: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// The messages of `bytes` (what one `recv` returned).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Datagram<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = split_message(self.rest);
        match parsed {
            Ok((message, rest)) => {
                self.rest = rest;
                Some(Ok(message))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// Parses the first message of `bytes` and returns it with what follows it.
#[inline]
fn split_message(bytes: &[u8]) -> Result<(Message<'_>, &[u8]), DecodeError> {
    // The header is read in place (the layout of netlink-packet-core's `NetlinkBuffer`, whose
    // accessors would re-check the slice for each field).
    let Some((&[l0, l1, l2, l3, t0, t1, f0, f1, s0, s1, s2, s3, p0, p1, p2, p3], _)) =
        bytes.split_first_chunk::<NETLINK_HEADER_LEN>()
    else {
        let have = bytes.len();
        return Err(DecodeError::Truncated {
            what: "netlink header",
            need: NETLINK_HEADER_LEN,
            have,
        });
    };
    let length = u32::from_ne_bytes([l0, l1, l2, l3]);
    let message_len = usize::try_from(length).unwrap_or(usize::MAX);
    let Some(payload) = bytes.get(NETLINK_HEADER_LEN..message_len) else {
        return Err(DecodeError::MessageLength { length, available: bytes.len() });
    };
    let header = Header {
        message_type: u16::from_ne_bytes([t0, t1]),
        flags: u16::from_ne_bytes([f0, f1]),
        seq: u32::from_ne_bytes([s0, s1, s2, s3]),
        port: u32::from_ne_bytes([p0, p1, p2, p3]),
    };
    let rest = bytes.get(align4(message_len)..).unwrap_or(&[]);
    Ok((Message::parse(header, payload)?, rest))
}

impl<'a> Message<'a> {
    /// Decodes one message from its header and payload.
    #[inline]
    pub fn parse(header: Header, payload: &'a [u8]) -> Result<Self, DecodeError> {
        let [subsystem, _] = header.message_type.to_be_bytes();
        match header.message_type {
            NLMSG_DONE => Ok(Self::Done { seq: header.seq }),
            NLMSG_OVERRUN => Ok(Self::Overrun { seq: header.seq }),
            NLMSG_ERROR => {
                let code = payload.get(..4).ok_or(DecodeError::Truncated {
                    what: "NLMSG_ERROR code",
                    need: 4,
                    have: payload.len(),
                })?;
                let code = i32::from_ne_bytes(fixed(code, "NLMSG_ERROR code")?);
                Ok(Self::Error { seq: header.seq, errno: code.saturating_neg() })
            }
            NLMSG_NOOP => Ok(Self::Other { header, payload }),
            _ if subsystem == NFNL_SUBSYS_CTNETLINK => {
                CtMessage::parse(header, payload).map(Self::Conntrack)
            }
            _ => Ok(Self::Other { header, payload }),
        }
    }
}

/// A ctnetlink message: header, `nfgenmsg` and a borrowed view of its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtMessage<'a> {
    header: Header,
    family: u8,
    version: u8,
    res_id: u16,
    attrs: &'a [u8],
}

impl<'a> CtMessage<'a> {
    /// Decodes the `nfgenmsg` of a ctnetlink payload; the attributes are decoded when iterated.
    #[inline]
    pub fn parse(header: Header, payload: &'a [u8]) -> Result<Self, DecodeError> {
        let (nfgenmsg, attrs) =
            payload.split_at_checked(NFGENMSG_LEN).ok_or(DecodeError::Truncated {
                what: "nfgenmsg",
                need: NFGENMSG_LEN,
                have: payload.len(),
            })?;
        let [family, version, res_hi, res_lo] = fixed::<4>(nfgenmsg, "nfgenmsg")?;
        Ok(Self { header, family, version, res_id: u16::from_be_bytes([res_hi, res_lo]), attrs })
    }

    /// The netlink header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The ctnetlink message type.
    pub fn kind(&self) -> MessageKind {
        MessageKind::from(self.header.message_type.to_be_bytes()[1])
    }

    /// `nfgen_family`: the layer-3 family (`AF_INET`, `AF_INET6`; `AF_UNSPEC` in requests).
    pub fn family(&self) -> u8 {
        self.family
    }

    /// `nfgenmsg.version` (`NFNETLINK_V0`).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// `nfgenmsg.res_id` (host order).
    pub fn res_id(&self) -> u16 {
        self.res_id
    }

    /// The top-level attributes, decoded while iterated, by upstream's numbers (an ASK kernel's
    /// attributes are [`CtMessage::ask_attrs`]).
    pub fn attrs(&self) -> Nest<'a, Attr<'a>> {
        Nest::new(self.attrs, "conntrack message")
    }

    /// The top-level attributes as they stand in the bytes (type and value), undecoded.
    pub fn raw_attrs(&self) -> AttrIter<'a> {
        AttrIter::new(self.attrs, "conntrack message")
    }

    /// How this message came to be: an event (and which), a dump entry, a reply or a request.
    pub fn delivery(&self) -> Delivery {
        let flags = self.header.flags;
        if flags & NLM_F_REQUEST != 0 {
            Delivery::Request
        } else if flags & NLM_F_MULTIPART != 0 {
            Delivery::DumpEntry
        } else if self.header.seq != 0 {
            Delivery::Reply
        } else if self.kind() == MessageKind::Delete {
            Delivery::Event(EventKind::Destroy)
        } else if flags & (NLM_F_CREATE | NLM_F_EXCL) == NLM_F_CREATE | NLM_F_EXCL {
            Delivery::Event(EventKind::New)
        } else {
            Delivery::Event(EventKind::Update)
        }
    }

    /// The event this message is, if it is one.
    pub fn event_kind(&self) -> Option<EventKind> {
        match self.delivery() {
            Delivery::Event(kind) => Some(kind),
            _ => None,
        }
    }

    /// The helper's name (`CTA_HELP` / `CTA_HELP_NAME`) without its NUL, if there is one and
    /// it is UTF-8.
    pub fn helper_name(&self) -> Result<Option<&'a str>, DecodeError> {
        for attr in self.attrs() {
            let Attr::Helper(helper) = attr? else { continue };
            for field in helper {
                if let HelperAttr::Name(name) = field? {
                    let name = name.strip_suffix(&[0]).unwrap_or(name);
                    return Ok(std::str::from_utf8(name).ok());
                }
            }
        }
        Ok(None)
    }

    /// Appends this message re-encoded from its decoded parts: header, `nfgenmsg` and every
    /// attribute, known or not (one whose value does not decode as upstream's, such as an ASK
    /// kernel's, is written as it came). For a message the kernel sent, the result is the same
    /// bytes. Fails only on broken attribute framing.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        let start = begin_message(out, self.header, self.family, self.res_id);
        if let Some(version) = out.get_mut(start + NETLINK_HEADER_LEN + 1) {
            *version = self.version;
        }
        let mut writer = AttrWriter::new(out);
        Nest::<Attr<'a>>::new(self.attrs, "conntrack message").encode(&mut writer)?;
        writer.finish()?;
        end_message(out, start);
        Ok(())
    }
}

/// Appends a netlink header and `nfgenmsg` (length patched by [`end_message`]); returns where
/// the message starts.
pub(crate) fn begin_message(out: &mut Vec<u8>, header: Header, family: u8, res_id: u16) -> usize {
    let start = out.len();
    out.resize(start + NETLINK_HEADER_LEN, 0);
    if let Some(bytes) = out.get_mut(start..) {
        let mut buffer = NetlinkBuffer::new(bytes);
        buffer.set_message_type(header.message_type);
        buffer.set_flags(header.flags);
        buffer.set_sequence_number(header.seq);
        buffer.set_port_number(header.port);
    }
    let [res_hi, res_lo] = res_id.to_be_bytes();
    out.extend_from_slice(&[family, NFNETLINK_V0, res_hi, res_lo]);
    start
}

/// Sets the length of the message started at `start` to everything appended since.
pub(crate) fn end_message(out: &mut [u8], start: usize) {
    let length = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    if let Some(bytes) = out.get_mut(start..) {
        NetlinkBuffer::new(bytes).set_length(length);
    }
}

/// Flags of a request: `NLM_F_REQUEST`, plus `NLM_F_ACK` when asked.
pub(crate) fn request_flags(ack: bool) -> u16 {
    if ack { NLM_F_REQUEST | NLM_F_ACK } else { NLM_F_REQUEST }
}

/// Flags of a dump request.
pub(crate) const DUMP_FLAGS: u16 = NLM_F_REQUEST | NLM_F_DUMP;

/// Flags of a create request.
pub(crate) const CREATE_FLAGS: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
