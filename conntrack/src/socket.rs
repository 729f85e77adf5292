//! The ctnetlink socket: event subscription, requests, receive-buffer sizing, and the blocking
//! conveniences tests and tools use.
//!
//! Contract:
//! - [`CtSocket`] owns one `NETLINK_NETFILTER` socket and is not `Clone` (netlink-sys's
//!   `Socket` is, and dropping a clone closes the fd under the original). It is a mio
//!   [`Source`](mio::event::Source) and hands out its fd through `AsFd`/`AsRawFd`.
//! - [`CtSocket::recv`] reads one datagram and sorts failures: `ENOBUFS` is
//!   [`RecvError::Overrun`] (never an I/O error, never swallowed), `EAGAIN` is
//!   [`RecvError::WouldBlock`], a datagram larger than the buffer is [`RecvError::Truncated`]
//!   (detected with `MSG_TRUNC`), `EINTR` is retried.
//! - [`CtSocket::recv_batch`] reads up to [`RecvBatch`]'s capacity of datagrams in one
//!   `recvmmsg(2)`: the kernel sends every event as its own datagram, so at high rates the
//!   system call per event is most of a listener's cost. Failures sort as for `recv`.
//! - The event loop uses `send`/`recv` on non-blocking sockets. [`CtSocket::dump_all`],
//!   [`CtSocket::get`] and [`CtSocket::request_ack`] block until the kernel has answered and are
//!   meant for tests, tools and start-up, not for the loop.

use std::cell::Cell;
use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use netlink_packet_core::NLM_F_ACK;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, getsockopt, recvmmsg, setsockopt, sockopt};

use crate::conntrack::Conntrack;
use crate::error::{RecvError, RequestError};
use crate::message::{Datagram, Message};
use crate::request;
use crate::tuple::{Family, Tuple};

/// Buffers for [`CtSocket::recv_batch`]: `count` slots of `slot` bytes each, reused for every
/// call (no allocation per receive).
///
/// The rule of a `recvmmsg(2)` batch: one call takes what is queued, up to the batch's
/// capacity; a datagram longer than its slot is reported as truncated (`MSG_TRUNC`), never
/// handed on cut short as if whole; `EINTR` is retried; `ENOBUFS` is an overrun, not an I/O
/// error. (A batch in another library, which cannot import this one, writes the same rule.)
pub struct RecvBatch {
    slots: Vec<Box<[u8]>>,
    lens: Vec<usize>,
    truncated: Vec<bool>,
    headers: MultiHeaders<()>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.slots.len())
            .field("received", &self.lens.len())
            .finish()
    }
}

impl RecvBatch {
    /// Room for `count` datagrams of up to `slot` bytes (events are a few hundred bytes; a
    /// larger datagram is truncated and reported by [`RecvBatch::truncated`]).
    pub fn new(count: usize, slot: usize) -> RecvBatch {
        let count = count.max(1);
        RecvBatch {
            slots: (0..count).map(|_| vec![0u8; slot.max(1)].into_boxed_slice()).collect(),
            lens: Vec::with_capacity(count),
            truncated: Vec::with_capacity(count),
            headers: MultiHeaders::preallocate(count, None),
        }
    }

    /// Datagrams received by the last call.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True when the last call received nothing.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The `index`th datagram of the last call.
    pub fn datagram(&self, index: usize) -> Option<&[u8]> {
        self.slots.get(index)?.get(..*self.lens.get(index)?)
    }

    /// The `index`th datagram did not fit its slot: its tail is lost.
    pub fn truncated(&self, index: usize) -> bool {
        self.truncated.get(index).copied().unwrap_or(false)
    }
}

/// Asks for a receive buffer of `bytes` on a socket and returns the size the kernel granted.
/// The one rule for every netlink socket of cmmd (ctnetlink here, rtnetlink in the daemon;
/// `cdx-sys` writes the same rule for FCI, as the libraries do not import each other):
/// - the request is clamped to `i32::MAX / 2`: the kernel doubles it as an int for its
///   bookkeeping, and a larger value would wrap (4 GiB would become the smallest buffer);
/// - `SO_RCVBUFFORCE` first, which may exceed `net.core.rmem_max` but needs `CAP_NET_ADMIN`;
/// - `SO_RCVBUF` (capped by `rmem_max`) only when the forced option is refused for lack of
///   that privilege (`EPERM`); any other error is returned, not hidden by the fallback;
/// - the result is the size in effect as `SO_RCVBUF` reads it back (twice the request), so
///   the caller can say when it got less than it asked.
pub fn set_receive_buffer(socket: &impl AsFd, bytes: usize) -> io::Result<usize> {
    let bytes = bytes.min(i32::MAX.unsigned_abs() as usize / 2);
    match setsockopt(socket, sockopt::RcvBufForce, &bytes) {
        Ok(()) => {}
        Err(Errno::EPERM) => setsockopt(socket, sockopt::RcvBuf, &bytes)?,
        Err(errno) => return Err(errno.into()),
    }
    Ok(getsockopt(socket, sockopt::RcvBuf)?)
}

/// Size of the receive buffer the blocking conveniences use: above the 32 KiB a dump
/// datagram can reach.
const REQUEST_RECV_BUFFER: usize = 64 * 1024;

bitflags::bitflags! {
    /// Event groups to subscribe to (`NFNLGRP_CONNTRACK_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Groups: u8 {
        /// `NFNLGRP_CONNTRACK_NEW`: new entries.
        const NEW = 1 << 0;
        /// `NFNLGRP_CONNTRACK_UPDATE`: changed entries.
        const UPDATE = 1 << 1;
        /// `NFNLGRP_CONNTRACK_DESTROY`: removed entries.
        const DESTROY = 1 << 2;
    }
}

/// A ctnetlink socket (see the module documentation).
#[derive(Debug)]
pub struct CtSocket {
    socket: Socket,
    next_seq: Cell<u32>,
}

impl CtSocket {
    /// A socket subscribed to NEW, UPDATE and DESTROY events of the current network namespace.
    /// Subscribing needs `CAP_NET_ADMIN`. Blocking until [`CtSocket::set_nonblocking`].
    pub fn events() -> io::Result<Self> {
        Self::events_for(Groups::all())
    }

    /// A socket subscribed to the event groups in `groups`.
    pub fn events_for(groups: Groups) -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind(&SocketAddr::new(0, 0))?;
        let memberships = [
            (Groups::NEW, libc::NFNLGRP_CONNTRACK_NEW),
            (Groups::UPDATE, libc::NFNLGRP_CONNTRACK_UPDATE),
            (Groups::DESTROY, libc::NFNLGRP_CONNTRACK_DESTROY),
        ];
        for (group, number) in memberships {
            if groups.contains(group) {
                socket.add_membership(number.unsigned_abs())?;
            }
        }
        Ok(Self { socket, next_seq: Cell::new(1) })
    }

    /// A socket for requests (dump, get, update, delete, create), subscribed to nothing.
    pub fn requests() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self { socket, next_seq: Cell::new(1) })
    }

    /// Makes `send`/`recv` return at once (`WouldBlock`) instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.socket.set_non_blocking(nonblocking)
    }

    /// Asks for a receive buffer of `bytes` and returns the size the kernel granted, by the
    /// rule of [`set_receive_buffer`].
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<usize> {
        set_receive_buffer(&self.socket, bytes)
    }

    /// The receive buffer size in effect (`SO_RCVBUF`).
    pub fn receive_buffer(&self) -> io::Result<usize> {
        Ok(getsockopt(&self.socket, sockopt::RcvBuf)?)
    }

    /// `NETLINK_BROADCAST_ERROR`: the kernel learns of failed deliveries to this socket and
    /// keeps and retries DESTROY events until they are delivered.
    pub fn set_broadcast_error(&self, enabled: bool) -> io::Result<()> {
        self.socket.set_broadcast_error(enabled)
    }

    /// Sends one datagram (one or more requests) to the kernel.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let sent = self.socket.send(bytes, 0)?;
        if sent == bytes.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", bytes.len()),
            ))
        }
    }

    /// Receives one datagram into `buf` and returns its length. Parse it with
    /// [`Datagram::new`]`(&buf[..len])`.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let capacity = buf.len();
        loop {
            match self.socket.recv(&mut &mut buf[..], libc::MSG_TRUNC) {
                Ok(length) if length > capacity => {
                    return Err(RecvError::Truncated { length, capacity });
                }
                Ok(length) => return Ok(length),
                Err(error) => match error.raw_os_error() {
                    Some(libc::ENOBUFS) => return Err(RecvError::Overrun),
                    Some(libc::EINTR) => {}
                    _ if error.kind() == io::ErrorKind::WouldBlock => {
                        return Err(RecvError::WouldBlock);
                    }
                    _ => return Err(RecvError::Io(error)),
                },
            }
        }
    }

    /// Receives up to `batch`'s capacity of datagrams in one system call, without waiting, and
    /// returns how many (read them with [`RecvBatch::datagram`]). `WouldBlock` when none is
    /// queued; `Overrun` on `ENOBUFS` (the datagrams still queued come with the next call).
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> Result<usize, RecvError> {
        batch.lens.clear();
        batch.truncated.clear();
        let fd = self.socket.as_raw_fd();
        loop {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                batch.slots.iter_mut().map(|slot| [IoSliceMut::new(slot)]).collect();
            match recvmmsg(fd, &mut batch.headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
            {
                Ok(received) => {
                    for message in received {
                        batch.lens.push(message.bytes);
                        batch.truncated.push(message.flags.contains(MsgFlags::MSG_TRUNC));
                    }
                    return Ok(batch.lens.len());
                }
                Err(Errno::ENOBUFS) => return Err(RecvError::Overrun),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Err(RecvError::WouldBlock),
                Err(errno) => return Err(RecvError::Io(errno.into())),
            }
        }
    }

    /// A fresh sequence number for a request sent on this socket (never 0: events have 0).
    pub fn next_seq(&self) -> u32 {
        let seq = self.next_seq.get();
        self.next_seq.set(seq.checked_add(1).unwrap_or(1));
        seq
    }

    /// Dumps the table (every family with `None`) and returns its entries. Blocking.
    pub fn dump_all(&self, family: Option<Family>) -> Result<Vec<Conntrack>, RequestError> {
        let seq = self.next_seq();
        let mut request = Vec::new();
        request::dump(&mut request, family, seq);
        self.send(&request).map_err(RequestError::Send)?;
        let mut entries = Vec::new();
        self.answers(seq, |message| match message {
            Message::Conntrack(ct) => {
                entries.push(Conntrack::from_message(&ct)?);
                Ok(false)
            }
            Message::Done { .. } => Ok(true),
            _ => Ok(false),
        })?;
        Ok(entries)
    }

    /// Fetches the entry whose original tuple is `orig` in `zone`; `None` if there is none.
    /// Blocking.
    pub fn get(&self, orig: &Tuple, zone: u16) -> Result<Option<Conntrack>, RequestError> {
        let seq = self.next_seq();
        let mut request = Vec::new();
        request::get(&mut request, orig, zone, seq);
        self.send(&request).map_err(RequestError::Send)?;
        let mut found = None;
        let outcome = self.answers(seq, |message| match message {
            Message::Conntrack(ct) => {
                found = Some(Conntrack::from_message(&ct)?);
                Ok(true)
            }
            _ => Ok(false),
        });
        match outcome {
            Ok(()) => Ok(found),
            Err(RequestError::Kernel { errno: libc::ENOENT }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Sends one request that carries `NLM_F_ACK` and waits for the kernel's acknowledgement.
    /// Blocking.
    pub fn request_ack(&self, request: &[u8]) -> Result<(), RequestError> {
        let header = match Datagram::new(request).next() {
            Some(Ok(Message::Conntrack(message))) => message.header(),
            _ => return Err(RequestError::BadRequest),
        };
        if header.flags & NLM_F_ACK == 0 {
            return Err(RequestError::BadRequest);
        }
        self.send(request).map_err(RequestError::Send)?;
        self.answers(header.seq, |_| Ok(false))
    }

    /// Reads answers to request `seq` and hands each to `on_answer` until it returns `true`, or
    /// an acknowledgement arrives (`Ok`), or an error does (`Err(Kernel)`). Messages of other
    /// requests are skipped.
    fn answers(
        &self,
        seq: u32,
        mut on_answer: impl FnMut(Message<'_>) -> Result<bool, RequestError>,
    ) -> Result<(), RequestError> {
        let mut buf = vec![0; REQUEST_RECV_BUFFER];
        loop {
            let length = self.recv(&mut buf)?;
            for message in Datagram::new(buf.get(..length).unwrap_or_default()) {
                let message = message?;
                let answer_seq = match message {
                    Message::Conntrack(ct) => ct.header().seq,
                    Message::Done { seq }
                    | Message::Error { seq, .. }
                    | Message::Overrun { seq } => seq,
                    Message::Other { header, .. } => header.seq,
                };
                if answer_seq != seq {
                    continue;
                }
                match message {
                    Message::Error { errno: 0, .. } => return Ok(()),
                    Message::Error { errno, .. } => return Err(RequestError::Kernel { errno }),
                    other => {
                        if on_answer(other)? {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

impl AsFd for CtSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for CtSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl mio::event::Source for CtSocket {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.socket.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.socket.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.socket.deregister(registry)
    }
}
