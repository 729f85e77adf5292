//! Typed errors. None of them allocates, so a malformed message costs no more than a good one.
//!
//! Every variant names where the problem is (the kernel name of the attribute, or the header),
//! and carries the lengths involved, so a log line is enough to find the offending bytes.

use std::io;

/// Bytes that are not a well-formed ctnetlink message: truncated, lengths that do not add up,
/// values of the wrong size, or a message that lacks what a conntrack entry must have.
///
/// Unknown attributes and unknown values are *not* errors: they are kept (see
/// [`RawAttr`](crate::RawAttr) and the `Other` variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a fixed-size part needs.
    #[error("{what} truncated: needs {need} bytes, {have} available")]
    Truncated {
        /// The part that was cut: `"netlink header"`, `"nfgenmsg"`, `"NLMSG_ERROR code"`.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A netlink header whose length field is shorter than the header or longer than the datagram.
    #[error(
        "netlink message length field says {length}, but the header is 16 bytes and {available} bytes are left"
    )]
    MessageLength {
        /// The `nlmsg_len` field.
        length: u32,
        /// Bytes left in the datagram at this message.
        available: usize,
    },
    /// Bytes left at the end of a container that are too few for an attribute header.
    #[error(
        "attribute at offset {offset} in {within}: {available} bytes left, an attribute header is 4"
    )]
    AttrTruncated {
        /// The container: `"conntrack message"` or the kernel name of the enclosing attribute.
        within: &'static str,
        /// Offset of the attribute inside its container.
        offset: usize,
        /// Bytes left in the container at this attribute.
        available: usize,
    },
    /// An attribute whose length field is shorter than its header or runs past its container.
    #[error(
        "attribute at offset {offset} in {within}: length field says {length}, {available} bytes are left"
    )]
    AttrLength {
        /// The container: `"conntrack message"` or the kernel name of the enclosing attribute.
        within: &'static str,
        /// Offset of the attribute inside its container.
        offset: usize,
        /// The `nla_len` field.
        length: u16,
        /// Bytes left in the container at this attribute.
        available: usize,
    },
    /// A fixed-size value of the wrong size (the kernel's `nla_policy` would reject it too).
    #[error("{attr}: value is {actual} bytes, expected {expected}")]
    ValueLength {
        /// Kernel name of the attribute, e.g. `"CTA_TIMEOUT"`.
        attr: &'static str,
        /// Size its type has.
        expected: usize,
        /// Size it came with.
        actual: usize,
    },
    /// A mandatory attribute is absent (for example a conntrack without `CTA_TUPLE_ORIG`).
    #[error("missing attribute {0}")]
    MissingAttr(&'static str),
    /// Attributes that are each well-formed but contradict each other (an IPv4 source with an
    /// IPv6 destination, a tuple whose family is not the message's, half an ICMP tuple).
    #[error("{attr}: {reason}")]
    Inconsistent {
        /// Kernel name of the attribute.
        attr: &'static str,
        /// What does not fit.
        reason: &'static str,
    },
    /// A conntrack entry of an address family that is neither IPv4 nor IPv6.
    #[error("address family {0} is neither AF_INET nor AF_INET6")]
    UnsupportedFamily(u8),
}

/// Failure to encode attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// Re-encoding a parsed view met bytes that do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An attribute longer than the 65,535 bytes its 16-bit length field can say.
    #[error("attribute type {kind} would be {length} bytes, more than an attribute can hold")]
    TooLong {
        /// Attribute type.
        kind: u16,
        /// Bytes it would need.
        length: usize,
    },
}

/// Failure to receive from a [`CtSocket`](crate::CtSocket).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// `ENOBUFS`: the socket's receive buffer overflowed and the kernel dropped messages.
    /// The next `recv` delivers what is still queued; what was dropped is gone, so the owner
    /// must resynchronise (dump and reconcile).
    #[error("overrun: the socket receive buffer overflowed and messages were lost (ENOBUFS)")]
    Overrun,
    /// A non-blocking socket has nothing to read (`EAGAIN`).
    #[error("no message queued")]
    WouldBlock,
    /// The datagram was larger than the buffer: its tail was discarded by the kernel.
    #[error("datagram of {length} bytes truncated to the {capacity}-byte buffer")]
    Truncated {
        /// Size of the datagram.
        length: usize,
        /// Size of the buffer it was read into.
        capacity: usize,
    },
    /// Any other socket error.
    #[error("receive failed: {0}")]
    Io(#[source] io::Error),
}

/// Failure of a blocking request/response exchange ([`CtSocket::dump_all`](crate::CtSocket::dump_all),
/// [`CtSocket::request_ack`](crate::CtSocket::request_ack), [`CtSocket::get`](crate::CtSocket::get)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Sending the request failed.
    #[error("send failed: {0}")]
    Send(#[source] io::Error),
    /// Receiving the answer failed.
    #[error(transparent)]
    Recv(#[from] RecvError),
    /// The answer did not decode.
    #[error("malformed answer: {0}")]
    Decode(#[from] DecodeError),
    /// The kernel answered with an error (`NLMSG_ERROR` with a non-zero code).
    #[error("kernel refused the request: {}", io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// The errno, positive (`libc::ENOENT`, `libc::EEXIST`…).
        errno: i32,
    },
    /// The request bytes are not one well-formed netlink message.
    #[error("the request is not a netlink message")]
    BadRequest,
}

/// A conntrack dialect setting that does not parse ([`DialectSetting`](crate::DialectSetting)),
/// or ASK attribute numbers that cannot be a kernel's ([`AskNumbering::new`](crate::AskNumbering::new)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialectError {
    /// Neither a known name nor explicit numbers.
    #[error(
        "unknown conntrack dialect {0:?}: expected auto, stock, ask-5.4, ask-6.12 or fp_orig=N[,fp_reply=N,qosconnmark=N,pad=N]"
    )]
    Unknown(String),
    /// A key of the explicit form that is not one of its four.
    #[error("unknown key {0:?}: the keys are fp_orig, fp_reply, qosconnmark and pad")]
    UnknownKey(String),
    /// A key given twice.
    #[error("{0} is given twice")]
    Duplicate(&'static str),
    /// The explicit form without `fp_orig` (the others follow from it).
    #[error("fp_orig is missing (fp_reply, qosconnmark and pad default to the next numbers)")]
    MissingOrig,
    /// A value that is not a number.
    #[error("{key}={value:?} is not an attribute number")]
    NotANumber {
        /// The key.
        key: &'static str,
        /// What was given.
        value: String,
    },
    /// A number upstream uses (below 25), or above the 14 bits of an attribute type.
    #[error(
        "{key}={number}: ASK attributes are numbered from 25 to 16383 (upstream uses 1 to 24; the pad may also be 3)"
    )]
    Reserved {
        /// The key.
        key: &'static str,
        /// The number.
        number: u16,
    },
    /// Two of the four attributes given the same number.
    #[error("two ASK attributes are numbered {0}")]
    Shared(u16),
}
