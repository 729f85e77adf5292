//! FCI: the netlink transport of `fci.ko` (protocol 30, `NETLINK_FF`).
//!
//! # Framing
//!
//! Every message is one netlink message: a 16-byte `nlmsghdr`, a packed 4-byte FCI header
//! (`u16 fcode`, `u16 length`), then `length` ≤ 256 bytes. All header fields are in the
//! CPU's byte order.
//!
//! | message | `nlmsg_type` | flags | seq | FCI payload |
//! | --- | --- | --- | --- | --- |
//! | request (user → kernel) | 0 | `NLM_F_REQUEST` | ours | the FPP payload |
//! | reply (kernel → sender) | 0 | 0 | the request's | `u16` return code, then data |
//! | event (kernel → group 1) | 0 | 0 | 0 | the event payload |
//! | error | `NLMSG_ERROR` (2) | 0 | the request's | `i32` −errno, then the request's header |
//!
//! libfci sends every request with sequence number 0 and takes the next message on the
//! socket as its reply; this crate numbers requests from 1 upwards (skipping 0, which marks
//! events) so that replies are matched and a reply that arrives after its request timed out
//! is recognised and dropped.
//!
//! # Request framing (`nlmsg_len` and the datagram)
//!
//! libfci (`__fci_cmd`, `libfci.c`) sets `nlmsg_len = NLMSG_SPACE(4 + len)`, the aligned
//! size, but sends only the unaligned iovec sum, so for a payload that is not a multiple of
//! 4 bytes the datagram is 2 bytes shorter than `nlmsg_len`. [`encode_request`] pads the
//! datagram with zeros to `nlmsg_len`: the two always agree. The fci builds in the field:
//!
//! | fci.ko | check | libfci's short frame | this crate's frame |
//! | --- | --- | --- | --- |
//! | NXP LSDK `d38ebd01`, ASK master/`mt-6.12.y` | none (reads `length` bytes, even past the datagram) | accepted | accepted |
//! | ASK `fix/security-hardening` (ISSUES.md C2, as merged) | datagram ≥ 20 B and FCI `length` ≤ datagram − 20, `nlmsg_len` ignored | accepted | accepted |
//! | C2's first attempt (`nlmsg_len` > datagram refused), never merged | — | dropped without a reply | accepted |
//!
//! Every FPP payload cdx-sys encodes is a multiple of 4 bytes long (84, 44/48, 72/76,
//! 92/96, 120/124, 36/44, 12, 4, 0), so for them both framings are the same bytes. No fci in
//! the field refuses either, so there is no setting: this crate always sends `nlmsg_len` ==
//! datagram length. fci.ko handles only the first netlink message of a datagram
//! (`__fci_fe_inbound_data` reads `nlmsg_hdr(skb)` once); [`read_request_as_fci`] reads a
//! request as the hardened fci.ko does, for the software cdx.
//!
//! [`decode`] / [`frames`] turn bytes into [`Frame`]s and never panic; the `encode_*`
//! functions write frames (requests for the daemon, replies and events for [`crate::sim`]).
//! [`Transport`] runs the request/reply protocol over any [`DatagramSocket`].

mod packed;
mod socket;
mod transport;

use std::io;
use std::mem::offset_of;

use zerocopy::byteorder::native_endian::{I32, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::fpp::{FCode, ReturnCode};

pub use packed::{MAX_PACK, PackedSocket, Unpack, pack_into, unpack};
pub use socket::{DEFAULT_RCVBUF, DatagramSocket, FciSocket, NetlinkFf, PairSocket, wait_readable};
pub use transport::{DEFAULT_WINDOW, Reply, Transport, TransportStats};

/// Netlink protocol number of `fci.ko`.
pub const NETLINK_FF: isize = 30;
/// Multicast group of cdx events (bit mask `0x1`, group number 1).
pub const FF_GROUP: u32 = 1;
/// Largest FCI payload.
pub const MAX_PAYLOAD: usize = 256;
/// Netlink header size.
pub const NLMSG_HDRLEN: usize = 16;
/// FCI header size.
pub const FCI_HDRLEN: usize = 4;
/// Largest frame this crate writes: headers, 256 bytes, alignment.
pub const MAX_FRAME: usize = nlmsg_align(NLMSG_HDRLEN + FCI_HDRLEN + MAX_PAYLOAD);

const NLMSG_ERROR: u16 = 2;
/// `NLMSG_OVERRUN`: never sent by the kernel, used by the software cdx to carry
/// "replies were lost" (`ENOBUFS`) over a socket pair ([`Frame::Overrun`]).
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;

/// `EOPNOTSUPP`: the netlink error cdx answers every command with when the Linux flowtable
/// owns the hardware (`offload_owner=flowtable`).
pub const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;

const fn nlmsg_align(len: usize) -> usize {
    (len + 3) & !3
}

/// `struct nlmsghdr`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct NlMsgHdr {
    len: U32,
    ty: U16,
    flags: U16,
    seq: U32,
    pid: U32,
}

/// The FCI header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct FciHdr {
    fcode: U16,
    length: U16,
}

const _: () = {
    assert!(size_of::<NlMsgHdr>() == NLMSG_HDRLEN);
    assert!(offset_of!(NlMsgHdr, ty) == 4);
    assert!(offset_of!(NlMsgHdr, flags) == 6);
    assert!(offset_of!(NlMsgHdr, seq) == 8);
    assert!(offset_of!(NlMsgHdr, pid) == 12);
    assert!(size_of::<FciHdr>() == FCI_HDRLEN);
    assert!(MAX_FRAME == 276);
};

/// One decoded netlink message of the FCI protocol. Payloads borrow from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A command (user → kernel; what [`crate::sim`] receives).
    Request {
        /// Sequence number chosen by the sender.
        seq: u32,
        /// Command code.
        fcode: FCode,
        /// FPP payload.
        payload: &'a [u8],
    },
    /// cdx's answer to the request numbered `seq`.
    Reply {
        /// The request's sequence number.
        seq: u32,
        /// The request's command code, echoed.
        fcode: FCode,
        /// The return code (first two bytes of the FCI payload).
        rc: ReturnCode,
        /// The data after the return code (query results, timeouts).
        payload: &'a [u8],
    },
    /// An unsolicited message from cdx (group 1).
    Event {
        /// Event code (e.g. `IPV4_CONNTRACK_CHANGE`).
        fcode: FCode,
        /// Event payload.
        payload: &'a [u8],
    },
    /// The kernel refused the request numbered `seq` (`NLMSG_ERROR`).
    NetlinkError {
        /// The request's sequence number.
        seq: u32,
        /// Positive errno (0 would be an acknowledgement, which FCI never requests).
        errno: i32,
    },
    /// Messages for this socket were lost (`NLMSG_OVERRUN`). The kernel reports this as
    /// `ENOBUFS` from `recvmsg`; the software cdx, whose socket pair cannot carry an errno,
    /// sends this message instead. [`Transport`] turns both into [`FciError::RepliesLost`].
    Overrun,
}

/// What is wrong with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// Fewer bytes than the headers need.
    #[error("{0} bytes is too short for the netlink and FCI headers")]
    Truncated(usize),
    /// `nlmsg_len` is smaller than the header or larger than the datagram.
    #[error("nlmsg_len {nlmsg_len} does not fit the {available} bytes received")]
    MessageLength {
        /// Declared length.
        nlmsg_len: u32,
        /// Bytes present.
        available: usize,
    },
    /// The FCI `length` exceeds the message or 256 bytes.
    #[error("FCI length {fci_len} exceeds the {room} bytes the message has room for")]
    PayloadLength {
        /// Declared FCI payload length.
        fci_len: u16,
        /// Bytes available for it.
        room: usize,
    },
    /// A netlink control type FCI does not use (NOOP, DONE, OVERRUN, or other).
    #[error("unexpected netlink message type {0}")]
    UnexpectedType(u16),
    /// A reply shorter than its 2-byte return code.
    #[error("reply of {0} bytes has no return code")]
    ReplyWithoutCode(u16),
}

/// Errors of FCI framing and transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FciError {
    /// No matching reply before the deadline.
    #[error("no reply before the deadline")]
    Timeout,
    /// The socket failed.
    #[error("FCI socket: {0}")]
    Io(#[from] io::Error),
    /// `fci.ko` answered the request `seq` with a netlink error.
    #[error("netlink error {errno} for request {seq}")]
    Netlink {
        /// The request's sequence number.
        seq: u32,
        /// Positive errno.
        errno: i32,
    },
    /// The bytes are not a valid FCI frame.
    #[error("malformed FCI frame: {0}")]
    Malformed(#[from] Malformed),
    /// A payload longer than FCI carries.
    #[error("payload of {0} bytes exceeds the 256 FCI carries")]
    PayloadTooLarge(usize),
    /// An output buffer shorter than the frame.
    #[error("frame of {needed} bytes does not fit a {actual}-byte buffer")]
    BufferTooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        actual: usize,
    },
    /// As many requests are in flight as the transport's window allows.
    #[error("{0} requests in flight: the window is full")]
    WindowFull(usize),
    /// The peer closed its end (socket pair).
    #[error("the peer closed the socket")]
    Closed,
    /// The event socket overflowed (ENOBUFS): events were lost.
    #[error("event socket overrun: events were lost")]
    Overrun,
    /// A typed payload could not be encoded (too large, or a mark the ABI cannot hold).
    #[error("cannot encode the payload: {0}")]
    Encode(#[from] crate::fpp::FppError),
    /// The command socket overflowed (ENOBUFS): `fci.ko` dropped replies it had no room
    /// for. Which requests they answered is unknown.
    #[error("command socket overrun: cdx's replies were lost")]
    RepliesLost,
}

impl FciError {
    /// The sequence number the error is about, if any.
    pub fn seq(&self) -> Option<u32> {
        match self {
            FciError::Netlink { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// `true` for the netlink `EOPNOTSUPP` cdx answers every command with when it does not
    /// own FCI (`offload_owner=flowtable`, `comcerto_fpp_send_command` in the ASK port's
    /// `cdx_cmdhandler.c`; `fci.ko` turns the negative return into an `NLMSG_ERROR`).
    pub fn is_offload_refused(&self) -> bool {
        matches!(self, FciError::Netlink { errno: EOPNOTSUPP, .. })
    }
}

/// Decodes the first netlink message of `datagram`.
///
/// # Errors
/// [`FciError::Malformed`] when the bytes are not a well-formed FCI message.
pub fn decode(datagram: &[u8]) -> Result<Frame<'_>, FciError> {
    decode_one(datagram).map(|(frame, _)| frame).map_err(FciError::Malformed)
}

/// Iterates over every netlink message of `datagram` (netlink may pack several). Stops at
/// the first malformed message, which it yields as an error.
pub fn frames(datagram: &[u8]) -> Frames<'_> {
    Frames { rest: datagram }
}

/// Iterator returned by [`frames`].
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match decode_one(self.rest) {
            Ok((frame, consumed)) => {
                self.rest = self.rest.get(consumed..).unwrap_or_default();
                Some(Ok(frame))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// Decodes one message; returns it and the bytes it occupies (aligned).
fn decode_one(bytes: &[u8]) -> Result<(Frame<'_>, usize), Malformed> {
    let (header, _) =
        NlMsgHdr::ref_from_prefix(bytes).map_err(|_| Malformed::Truncated(bytes.len()))?;
    let nlmsg_len = header.len.get();
    let message = usize::try_from(nlmsg_len)
        .ok()
        .filter(|&len| len >= NLMSG_HDRLEN)
        .and_then(|len| bytes.get(..len))
        .ok_or(Malformed::MessageLength { nlmsg_len, available: bytes.len() })?;
    let consumed = nlmsg_align(message.len()).min(bytes.len());
    let body = message.get(NLMSG_HDRLEN..).unwrap_or_default();
    let seq = header.seq.get();
    match header.ty.get() {
        0 => {}
        NLMSG_OVERRUN => return Ok((Frame::Overrun, consumed)),
        NLMSG_ERROR => {
            let (error, _) =
                I32::read_from_prefix(body).map_err(|_| Malformed::Truncated(message.len()))?;
            let errno = error.get().checked_neg().unwrap_or(i32::MAX);
            return Ok((Frame::NetlinkError { seq, errno }, consumed));
        }
        other => return Err(Malformed::UnexpectedType(other)),
    }
    let (fci, rest) =
        FciHdr::ref_from_prefix(body).map_err(|_| Malformed::Truncated(message.len()))?;
    let fci_len = fci.length.get();
    let payload = rest
        .get(..usize::from(fci_len))
        .filter(|_| usize::from(fci_len) <= MAX_PAYLOAD)
        .ok_or(Malformed::PayloadLength { fci_len, room: rest.len().min(MAX_PAYLOAD) })?;
    let fcode = FCode::from(fci.fcode.get());
    let frame = if header.flags.get() & NLM_F_REQUEST != 0 {
        Frame::Request { seq, fcode, payload }
    } else if seq == 0 {
        Frame::Event { fcode, payload }
    } else {
        let (rc, data) = payload.split_at_checked(2).ok_or(Malformed::ReplyWithoutCode(fci_len))?;
        let rc =
            u16::from_ne_bytes([rc.first().copied().unwrap_or(0), rc.get(1).copied().unwrap_or(0)]);
        Frame::Reply { seq, fcode, rc: ReturnCode::from(rc), payload: data }
    };
    Ok((frame, consumed))
}

/// Writes a netlink message carrying an FCI header and `parts` (concatenated) to `out`.
fn encode_fci(
    out: &mut [u8],
    flags: u16,
    seq: u32,
    fcode: u16,
    parts: &[&[u8]],
    align: bool,
) -> Result<usize, FciError> {
    let payload_len: usize = parts.iter().map(|part| part.len()).sum();
    if payload_len > MAX_PAYLOAD {
        return Err(FciError::PayloadTooLarge(payload_len));
    }
    let exact = NLMSG_HDRLEN + FCI_HDRLEN + payload_len;
    let total = if align { nlmsg_align(exact) } else { exact };
    let available = out.len();
    let frame = out
        .get_mut(..total)
        .ok_or(FciError::BufferTooShort { needed: total, actual: available })?;
    let header = NlMsgHdr {
        len: U32::new(total as u32),
        ty: U16::new(0),
        flags: U16::new(flags),
        seq: U32::new(seq),
        pid: U32::new(0),
    };
    // The lengths are ≤ 276 and 256: the casts are exact.
    let fci = FciHdr { fcode: U16::new(fcode), length: U16::new(payload_len as u16) };
    let (head, mut rest) = frame.split_at_mut(NLMSG_HDRLEN);
    head.copy_from_slice(header.as_bytes());
    let (fci_bytes, tail) = rest.split_at_mut(FCI_HDRLEN);
    fci_bytes.copy_from_slice(fci.as_bytes());
    rest = tail;
    for part in parts {
        let (dst, tail) = rest.split_at_mut(part.len());
        dst.copy_from_slice(part);
        rest = tail;
    }
    rest.fill(0);
    Ok(total)
}

/// Writes a request as libfci lays it out (`nlmsg_len` = `NLMSG_SPACE(4 + len)`, padding
/// zeroed), numbered `seq`. Returns the frame length.
///
/// # Errors
/// [`FciError::PayloadTooLarge`] above 256 bytes; [`FciError::BufferTooShort`] if `out`
/// cannot hold the frame ([`MAX_FRAME`] always can).
pub fn encode_request(
    seq: u32,
    fcode: FCode,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, FciError> {
    encode_fci(out, NLM_F_REQUEST, seq, fcode.value(), &[payload], true)
}

/// Writes a reply as `fci.ko` does: return code then `data`, `nlmsg_len` exact.
///
/// # Errors
/// As [`encode_request`] (the return code counts toward the 256 bytes).
pub fn encode_reply(
    seq: u32,
    fcode: FCode,
    rc: ReturnCode,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, FciError> {
    encode_fci(out, 0, seq, fcode.value(), &[&rc.value().to_ne_bytes(), data], false)
}

/// Writes a reply whose FCI payload (return code included) is already laid out, as cdx's
/// handlers produce it in place.
///
/// # Errors
/// As [`encode_request`].
pub fn encode_raw_reply(
    seq: u32,
    fcode: FCode,
    reply: &[u8],
    out: &mut [u8],
) -> Result<usize, FciError> {
    encode_fci(out, 0, seq, fcode.value(), &[reply], false)
}

/// Writes an event (sequence number 0, no flags).
///
/// # Errors
/// As [`encode_request`].
pub fn encode_event(fcode: FCode, payload: &[u8], out: &mut [u8]) -> Result<usize, FciError> {
    encode_fci(out, 0, 0, fcode.value(), &[payload], false)
}

/// Writes an `NLMSG_ERROR` for request `seq` with `errno` (positive), followed by a copy of
/// the request's netlink header as the kernel does with `NETLINK_CAP_ACK`.
///
/// # Errors
/// [`FciError::BufferTooShort`] if `out` has fewer than 36 bytes.
pub fn encode_netlink_error(
    seq: u32,
    errno: i32,
    request_len: u32,
    out: &mut [u8],
) -> Result<usize, FciError> {
    const LEN: usize = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN;
    let available = out.len();
    let frame =
        out.get_mut(..LEN).ok_or(FciError::BufferTooShort { needed: LEN, actual: available })?;
    let header = NlMsgHdr {
        len: U32::new(LEN as u32),
        ty: U16::new(NLMSG_ERROR),
        flags: U16::new(0),
        seq: U32::new(seq),
        pid: U32::new(0),
    };
    let original = NlMsgHdr {
        len: U32::new(request_len),
        ty: U16::new(0),
        flags: U16::new(NLM_F_REQUEST),
        seq: U32::new(seq),
        pid: U32::new(0),
    };
    let (head, rest) = frame.split_at_mut(NLMSG_HDRLEN);
    head.copy_from_slice(header.as_bytes());
    let (code, tail) = rest.split_at_mut(4);
    code.copy_from_slice(&errno.saturating_neg().to_ne_bytes());
    tail.copy_from_slice(original.as_bytes());
    Ok(LEN)
}

/// Writes the `NLMSG_OVERRUN` message the software cdx sends where `fci.ko` would make the
/// client's next `recvmsg` fail with `ENOBUFS` ([`Frame::Overrun`]).
///
/// # Errors
/// [`FciError::BufferTooShort`] below 16 bytes.
pub fn encode_overrun(out: &mut [u8]) -> Result<usize, FciError> {
    let available = out.len();
    let frame = out
        .get_mut(..NLMSG_HDRLEN)
        .ok_or(FciError::BufferTooShort { needed: NLMSG_HDRLEN, actual: available })?;
    let header = NlMsgHdr {
        len: U32::new(NLMSG_HDRLEN as u32),
        ty: U16::new(NLMSG_OVERRUN),
        flags: U16::new(0),
        seq: U32::new(0),
        pid: U32::new(0),
    };
    frame.copy_from_slice(header.as_bytes());
    Ok(NLMSG_HDRLEN)
}

/// A command as `fci.ko` reads it from one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FciRequest<'a> {
    /// `nlmsg_seq`, echoed in the reply.
    pub seq: u32,
    /// `nlmsg_len` as sent (echoed in a netlink error; not checked).
    pub nlmsg_len: u32,
    /// The command code.
    pub fcode: FCode,
    /// The FPP payload (FCI `length` bytes).
    pub payload: &'a [u8],
    /// Bytes after the first message (further messages): `fci.ko` never reads them.
    pub ignored: usize,
}

/// Reads the first request of `datagram` as the hardened `fci.ko` does
/// (`__fci_fe_inbound_data`, ASK `fix/security-hardening`): the datagram's length is
/// authoritative, `nlmsg_len`, type and flags are not checked, only the first message is
/// read, and a datagram shorter than the headers or an FCI `length` beyond the datagram (or
/// 256) is dropped without a reply. NXP's fci.ko checks nothing at all and would read past
/// the datagram; the software cdx drops those instead.
///
/// # Errors
/// [`Malformed::Truncated`] or [`Malformed::PayloadLength`]: `fci.ko` drops the datagram.
pub fn read_request_as_fci(datagram: &[u8]) -> Result<FciRequest<'_>, Malformed> {
    let (header, body) =
        NlMsgHdr::ref_from_prefix(datagram).map_err(|_| Malformed::Truncated(datagram.len()))?;
    let (fci, rest) =
        FciHdr::ref_from_prefix(body).map_err(|_| Malformed::Truncated(datagram.len()))?;
    let fci_len = fci.length.get();
    let len = usize::from(fci_len);
    let payload = rest
        .get(..len)
        .filter(|_| len <= MAX_PAYLOAD)
        .ok_or(Malformed::PayloadLength { fci_len, room: rest.len().min(MAX_PAYLOAD) })?;
    let declared = usize::try_from(header.len.get()).unwrap_or(usize::MAX);
    let first = nlmsg_align(declared.max(NLMSG_HDRLEN + FCI_HDRLEN + len));
    Ok(FciRequest {
        seq: header.seq.get(),
        nlmsg_len: header.len.get(),
        fcode: FCode::from(fci.fcode.get()),
        payload,
        ignored: datagram.len().saturating_sub(first),
    })
}

#[cfg(test)]
mod tests;
