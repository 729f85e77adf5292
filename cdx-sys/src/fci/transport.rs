//! Request/reply over FCI: numbering, matching, pipelining, timeouts.
//!
//! [`Transport`] owns a command socket. [`Transport::send`] numbers a request and returns
//! its sequence number without waiting; [`Transport::recv_until`] returns the next reply to
//! a request still in flight, or [`FciError::Timeout`] at the deadline; [`Transport::call`]
//! is both for one request. Up to `window` requests may be in flight (pipelining: send a
//! batch, then collect); the window also bounds how much the peer must buffer, since
//! `fci.ko` drops replies a full socket cannot take.
//!
//! Replies are matched by sequence number. A reply or netlink error whose number is not in
//! flight (it arrived after its request was given up with [`Transport::forget`] or timed
//! out in [`Transport::call`]) is dropped and counted as unmatched; malformed messages and
//! events arriving on the command socket are dropped and counted too. When `fci.ko` drops a
//! reply because the socket is full, the next receive fails with `ENOBUFS` (the software
//! cdx sends [`super::Frame::Overrun`] instead): [`Transport::recv_until`] returns
//! [`FciError::RepliesLost`] once, and the requests stay in flight (their replies may be
//! among the lost ones; give them up with [`Transport::forget`]). The transport never blocks
//! past a deadline and never panics on what it receives.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use super::{DatagramSocket, FciError, Frame, MAX_FRAME, encode_request, frames, wait_readable};
use crate::fpp::{Abi, AbiPayload, FCode, ReturnCode};

/// Requests in flight by default.
pub const DEFAULT_WINDOW: usize = 64;

/// Receive buffer: any netlink message the kernel sends fits, and any pack of replies from
/// a software cdx in another process.
const RX_BUF: usize = super::MAX_PACK;
/// Replies taken per receive ([`DatagramSocket::recv_many`]).
const RX_SLOTS: usize = 16;

/// A reply from cdx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The request's sequence number.
    pub seq: u32,
    /// The command code echoed.
    pub fcode: FCode,
    /// cdx's return code.
    pub rc: ReturnCode,
    /// The data after the return code (query entries, timeouts).
    pub payload: Vec<u8>,
}

/// Counters of a transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Requests sent.
    pub sent: u64,
    /// Replies (and netlink errors) matched to a request in flight.
    pub matched: u64,
    /// Replies and errors for no request in flight (late, duplicated or foreign).
    pub unmatched: u64,
    /// Messages that were not valid FCI frames.
    pub malformed: u64,
    /// Events or requests received on the command socket.
    pub stray: u64,
    /// Requests given up (timed out in `call`, or forgotten).
    pub abandoned: u64,
    /// Times the socket reported lost replies (`ENOBUFS`, or the sim's overrun message).
    pub replies_lost: u64,
}

/// The FCI request/reply protocol over a command socket.
#[derive(Debug)]
pub struct Transport<S> {
    socket: S,
    abi: Abi,
    next_seq: u32,
    window: usize,
    in_flight: Vec<u32>,
    ready: VecDeque<Result<Reply, FciError>>,
    tx: [u8; MAX_FRAME],
    /// Receive buffers, one reply each, and the lengths of the last receive.
    rx: Vec<Box<[u8]>>,
    rx_lens: Vec<usize>,
    stats: TransportStats,
}

impl<S: DatagramSocket> Transport<S> {
    /// A transport over `socket` with the default window.
    pub fn new(socket: S) -> Transport<S> {
        Transport::with_window(socket, DEFAULT_WINDOW)
    }

    /// A transport allowing `window` (at least 1) requests in flight.
    pub fn with_window(socket: S, window: usize) -> Transport<S> {
        Transport {
            socket,
            abi: Abi::default(),
            next_seq: 1,
            window: window.max(1),
            in_flight: Vec::with_capacity(window.max(1)),
            ready: VecDeque::new(),
            tx: [0; MAX_FRAME],
            rx: (0..RX_SLOTS).map(|_| vec![0; RX_BUF].into_boxed_slice()).collect(),
            rx_lens: Vec::with_capacity(RX_SLOTS),
            stats: TransportStats::default(),
        }
    }

    /// Sends a request without waiting for its reply; returns its sequence number.
    ///
    /// # Errors
    /// [`FciError::WindowFull`] when `window` requests are in flight (collect replies
    /// first); [`FciError::PayloadTooLarge`]; [`FciError::Io`] / [`FciError::Closed`] from
    /// the socket.
    pub fn send(&mut self, fcode: FCode, payload: &[u8]) -> Result<u32, FciError> {
        if self.in_flight.len() >= self.window {
            return Err(FciError::WindowFull(self.in_flight.len()));
        }
        let seq = self.next_seq;
        let len = encode_request(seq, fcode, payload, &mut self.tx)?;
        self.socket.send(self.tx.get(..len).unwrap_or_default()).map_err(closed_or_io)?;
        self.next_seq = match seq.wrapping_add(1) {
            0 => 1,
            next => next,
        };
        self.in_flight.push(seq);
        self.stats.sent += 1;
        Ok(seq)
    }

    /// The ABI typed payloads are encoded in ([`Abi::Lsdk`] until set).
    pub fn abi(&self) -> Abi {
        self.abi
    }

    /// Encodes typed payloads in `abi` from now on (for example after
    /// [`crate::detect::detect`]).
    pub fn set_abi(&mut self, abi: Abi) {
        self.abi = abi;
    }

    /// [`Transport::send`] for a typed payload, encoded in the transport's ABI.
    ///
    /// # Errors
    /// As [`Transport::send`]; [`FciError::Encode`] if the payload cannot be encoded.
    pub fn send_payload<P: AbiPayload>(
        &mut self,
        fcode: FCode,
        payload: &P,
    ) -> Result<u32, FciError> {
        let mut buf = [0u8; super::MAX_PAYLOAD];
        let len = payload.emit_for(self.abi, &mut buf)?;
        self.send(fcode, buf.get(..len).unwrap_or_default())
    }

    /// The next reply to a request in flight, waiting until `deadline` at the latest.
    ///
    /// # Errors
    /// [`FciError::Timeout`] at the deadline (the requests stay in flight: call
    /// [`Transport::forget`] to give one up); [`FciError::Netlink`] when `fci.ko` refused a
    /// request (its `seq` is in the error); [`FciError::Io`] / [`FciError::Closed`].
    pub fn recv_until(&mut self, deadline: Instant) -> Result<Reply, FciError> {
        self.next_reply(Some(deadline), Duration::ZERO)
    }

    /// [`Transport::recv_until`] `timeout` from now, reading the clock only if it has to
    /// wait: cdx (and the software cdx in process) has usually answered by the time the
    /// reply is asked for.
    ///
    /// # Errors
    /// As [`Transport::recv_until`].
    pub fn recv_within(&mut self, timeout: Duration) -> Result<Reply, FciError> {
        self.next_reply(None, timeout)
    }

    fn next_reply(
        &mut self,
        mut deadline: Option<Instant>,
        timeout: Duration,
    ) -> Result<Reply, FciError> {
        loop {
            if let Some(done) = self.ready.pop_front() {
                return done;
            }
            match self.socket.recv_many(&mut self.rx, &mut self.rx_lens) {
                Ok(()) if self.rx_lens.first() == Some(&0) => return Err(FciError::Closed),
                Ok(()) => {
                    for slot in 0..self.rx_lens.len() {
                        self.absorb(slot);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.stats.replies_lost += 1;
                    return Err(FciError::RepliesLost);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let now = Instant::now();
                    let deadline = *deadline.get_or_insert(now + timeout);
                    if now >= deadline {
                        return Err(FciError::Timeout);
                    }
                    wait_readable(self.socket.as_fd(), Some(deadline - now))?;
                }
                Err(error) => return Err(closed_or_io(error)),
            }
        }
    }

    /// Sends one request and waits up to `timeout` for its reply. Replies to other requests
    /// in flight that arrive meanwhile are kept for [`Transport::recv_until`].
    ///
    /// # Errors
    /// As [`Transport::send`] and [`Transport::recv_until`]; on [`FciError::Timeout`] and
    /// [`FciError::RepliesLost`] the request is given up, so a late reply is dropped.
    pub fn call(
        &mut self,
        fcode: FCode,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Reply, FciError> {
        let seq = self.send(fcode, payload)?;
        let deadline = Instant::now() + timeout;
        let mut others = Vec::new();
        let outcome = loop {
            match self.recv_until(deadline) {
                Ok(reply) if reply.seq == seq => break Ok(reply),
                Err(error) if error.seq() == Some(seq) => break Err(error),
                Ok(reply) => others.push(Ok(reply)),
                Err(error @ FciError::Netlink { .. }) => others.push(Err(error)),
                Err(error) => {
                    if matches!(error, FciError::Timeout | FciError::RepliesLost) {
                        self.forget(seq);
                    }
                    break Err(error);
                }
            }
        };
        for other in others.into_iter().rev() {
            self.ready.push_front(other);
        }
        outcome
    }

    /// [`Transport::call`] for a typed payload, encoded in the transport's ABI.
    ///
    /// # Errors
    /// As [`Transport::call`]; [`FciError::Encode`] if the payload cannot be encoded.
    pub fn call_payload<P: AbiPayload>(
        &mut self,
        fcode: FCode,
        payload: &P,
        timeout: Duration,
    ) -> Result<Reply, FciError> {
        let mut buf = [0u8; super::MAX_PAYLOAD];
        let len = payload.emit_for(self.abi, &mut buf)?;
        self.call(fcode, buf.get(..len).unwrap_or_default(), timeout)
    }

    /// Gives up request `seq`: a reply arriving later is dropped as unmatched. Returns
    /// whether it was in flight.
    pub fn forget(&mut self, seq: u32) -> bool {
        let Some(index) = self.in_flight.iter().position(|&s| s == seq) else {
            return false;
        };
        self.in_flight.swap_remove(index);
        self.stats.abandoned += 1;
        true
    }

    /// Sequence numbers of the requests in flight (unordered).
    pub fn in_flight(&self) -> &[u32] {
        &self.in_flight
    }

    /// The window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Counters.
    pub fn stats(&self) -> TransportStats {
        self.stats
    }

    /// The socket.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// Takes the message received into `slot` apart and queues what matches (a zero-length
    /// message after the first is a closed peer's; the next receive reports it).
    fn absorb(&mut self, slot: usize) {
        let len = self.rx_lens.get(slot).copied().unwrap_or(0);
        let datagram = self.rx.get(slot).and_then(|rx| rx.get(..len)).unwrap_or_default();
        for frame in frames(datagram) {
            let (seq, outcome) = match frame {
                Ok(Frame::Reply { seq, fcode, rc, payload }) => {
                    (seq, Ok(Reply { seq, fcode, rc, payload: payload.to_vec() }))
                }
                Ok(Frame::NetlinkError { seq, errno }) if errno != 0 => {
                    (seq, Err(FciError::Netlink { seq, errno }))
                }
                Ok(Frame::NetlinkError { .. }) => {
                    self.stats.unmatched += 1;
                    continue;
                }
                Ok(Frame::Event { .. } | Frame::Request { .. }) => {
                    self.stats.stray += 1;
                    continue;
                }
                Ok(Frame::Overrun) => {
                    self.stats.replies_lost += 1;
                    self.ready.push_back(Err(FciError::RepliesLost));
                    continue;
                }
                Err(_) => {
                    self.stats.malformed += 1;
                    continue;
                }
            };
            match self.in_flight.iter().position(|&s| s == seq) {
                Some(index) => {
                    self.in_flight.swap_remove(index);
                    self.stats.matched += 1;
                    self.ready.push_back(outcome);
                }
                None => self.stats.unmatched += 1,
            }
        }
    }
}

/// ECONNRESET and friends mean the peer of a socket pair is gone.
pub(super) fn closed_or_io(error: io::Error) -> FciError {
    match error.raw_os_error() {
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ECONNREFUSED) => {
            FciError::Closed
        }
        _ => FciError::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fci::PairSocket;

    #[test]
    fn sequence_numbers_skip_zero_when_they_wrap() {
        let (ours, _peer) = PairSocket::pair().unwrap();
        let mut transport = Transport::new(ours);
        transport.next_seq = u32::MAX;
        assert_eq!(transport.send(FCode::Ipv4Reset, &[]).unwrap(), u32::MAX);
        assert_eq!(transport.send(FCode::Ipv4Reset, &[]).unwrap(), 1, "0 marks events");
    }
}
