//! The datagram sockets FCI runs over: the `NETLINK_FF` socket of `fci.ko`, and one end of a
//! `SOCK_SEQPACKET` socket pair for the software cdx.
//!
//! A socket pair is `SOCK_SEQPACKET`, not `SOCK_DGRAM`: both keep message boundaries, but a
//! Unix datagram queue holds only `net.unix.max_dgram_qlen` (10 by default) messages, which
//! would cap pipelining at ten requests.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, MultiHeaders, SockFlag, SockType, getsockopt, recv, recvmmsg, send,
    setsockopt, socketpair, sockopt,
};

use super::{FF_GROUP, FciError, NETLINK_FF};

/// A message-oriented socket: one `send` is one `recv` on the other side.
///
/// The provided methods work on the file descriptor and suit every implementation; they
/// are trait methods so that tests can stand in other sockets.
pub trait DatagramSocket: AsFd {
    /// Sends one message, waiting for room if the socket is blocking. Never raises SIGPIPE.
    ///
    /// # Errors
    /// The socket's error; a short send is reported as [`io::ErrorKind::WriteZero`].
    fn send(&self, message: &[u8]) -> io::Result<()> {
        send_with(self.as_fd(), message, MsgFlags::MSG_NOSIGNAL)
    }

    /// Sends one message without waiting: [`io::ErrorKind::WouldBlock`] if there is no room.
    ///
    /// # Errors
    /// As [`DatagramSocket::send`].
    fn try_send(&self, message: &[u8]) -> io::Result<()> {
        send_with(self.as_fd(), message, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT)
    }

    /// Receives one message without waiting: [`io::ErrorKind::WouldBlock`] if none is
    /// queued; `Ok(0)` when a socket-pair peer has closed. A message longer than `buf` is
    /// truncated.
    ///
    /// # Errors
    /// The socket's error (`ENOBUFS`: a netlink socket overflowed and lost messages).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(recv(self.as_fd().as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)?)
    }

    /// Receives the messages queued, up to one per buffer of `bufs`, without waiting; their
    /// lengths go to `lens` (cleared first), `0` first for a closed socket-pair peer as with
    /// [`DatagramSocket::recv`]. This provided method takes one message; sockets on a file
    /// descriptor take them all in one `recvmmsg` ([`recv_many_fd`]).
    ///
    /// # Errors
    /// As [`DatagramSocket::recv`], for the first message (a later one's error is reported
    /// by the next call).
    fn recv_many(&self, bufs: &mut [Box<[u8]>], lens: &mut Vec<usize>) -> io::Result<()> {
        lens.clear();
        if let Some(buf) = bufs.first_mut() {
            lens.push(self.recv(buf)?);
        }
        Ok(())
    }

    /// [`DatagramSocket::recv`] with the outcomes an event loop acts on: `Ok(None)` when
    /// nothing is queued, [`FciError::Overrun`] when messages were lost (resynchronise),
    /// [`FciError::Closed`] when the peer is gone.
    ///
    /// # Errors
    /// As listed, or [`FciError::Io`].
    fn try_recv(&self, buf: &mut [u8]) -> Result<Option<usize>, FciError> {
        loop {
            return match self.recv(buf) {
                Ok(0) => Err(FciError::Closed),
                Ok(len) => Ok(Some(len)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => Err(FciError::Overrun),
                Err(error) => Err(super::transport::closed_or_io(error)),
            };
        }
    }
}

/// [`DatagramSocket::recv_many`] on a file descriptor: one `recvmmsg(MSG_DONTWAIT)` takes
/// every message queued (up to one per buffer), where one `recv` each cost a system call per
/// reply (`docs/performance.md`, the software cdx in its own process).
///
/// # Errors
/// As [`DatagramSocket::recv`].
pub(super) fn recv_many_fd(
    fd: BorrowedFd<'_>,
    bufs: &mut [Box<[u8]>],
    lens: &mut Vec<usize>,
) -> io::Result<()> {
    loop {
        lens.clear();
        match recv_many_once(fd, bufs, lens) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
            Ok(()) => return Ok(()),
        }
    }
}

fn recv_many_once(
    fd: BorrowedFd<'_>,
    bufs: &mut [Box<[u8]>],
    lens: &mut Vec<usize>,
) -> nix::Result<()> {
    let mut headers = MultiHeaders::<()>::preallocate(bufs.len(), None);
    let mut slices: Vec<[IoSliceMut<'_>; 1]> =
        bufs.iter_mut().map(|buf| [IoSliceMut::new(buf)]).collect();
    let received =
        recvmmsg(fd.as_raw_fd(), &mut headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
    lens.extend(received.map(|message| message.bytes));
    Ok(())
}

pub(super) fn send_with(fd: BorrowedFd<'_>, message: &[u8], flags: MsgFlags) -> io::Result<()> {
    loop {
        match send(fd.as_raw_fd(), message, flags) {
            Ok(sent) if sent == message.len() => return Ok(()),
            Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "short message send")),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Waits until `fd` is readable or `timeout` passes (`None`: forever). Returns whether it
/// is readable; a signal interrupting the wait reads as "not yet".
///
/// # Errors
/// `poll(2)` failures other than `EINTR`.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let timeout = match timeout {
        None => PollTimeout::NONE,
        // Round up so that a wait never ends before its deadline.
        Some(t) => {
            let millis = t.as_nanos().div_ceil(1_000_000);
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
        }
    };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, timeout) {
        Ok(0) | Err(Errno::EINTR) => Ok(false),
        Ok(_) => Ok(true),
        Err(errno) => Err(errno.into()),
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = if nonblocking { flags | OFlag::O_NONBLOCK } else { flags - OFlag::O_NONBLOCK };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// One end of a `SOCK_SEQPACKET` Unix socket pair (close-on-exec).
#[derive(Debug)]
pub struct PairSocket {
    fd: OwnedFd,
}

impl PairSocket {
    /// A connected pair, both ends blocking.
    ///
    /// # Errors
    /// `socketpair(2)` failures.
    pub fn pair() -> io::Result<(PairSocket, PairSocket)> {
        let (a, b) =
            socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        Ok((PairSocket { fd: a }, PairSocket { fd: b }))
    }

    /// Adopts a connected `SOCK_SEQPACKET` Unix socket, e.g. one end of a connection to a
    /// software cdx served by another process (same framing, same semantics as a pair).
    pub fn from_connected(fd: OwnedFd) -> PairSocket {
        PairSocket { fd }
    }

    /// Switches `O_NONBLOCK` (event sockets registered in a poll loop want it on).
    ///
    /// # Errors
    /// `fcntl(2)` failures.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        set_nonblocking(self.fd.as_fd(), nonblocking)
    }
}

impl AsFd for PairSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PairSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl DatagramSocket for PairSocket {
    fn recv_many(&self, bufs: &mut [Box<[u8]>], lens: &mut Vec<usize>) -> io::Result<()> {
        recv_many_fd(self.as_fd(), bufs, lens)
    }
}

/// A `NETLINK_FF` socket of `fci.ko` (exists only in the initial network namespace, and
/// only while `fci.ko` is loaded: otherwise creation fails with `EPROTONOSUPPORT`).
#[derive(Debug)]
pub struct NetlinkFf {
    socket: Socket,
}

/// Receive buffer libfci asks for on every FCI socket.
pub const DEFAULT_RCVBUF: usize = 1 << 20;

impl NetlinkFf {
    /// The command socket: bound to a kernel-assigned port, connected to the kernel,
    /// blocking, receive buffer 1 MiB as libfci sets it.
    ///
    /// # Errors
    /// Socket creation, bind or connect failures.
    pub fn command() -> io::Result<NetlinkFf> {
        let mut socket = Socket::new(NETLINK_FF)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let socket = NetlinkFf { socket };
        socket.set_receive_buffer(DEFAULT_RCVBUF)?;
        Ok(socket)
    }

    /// The event socket: subscribed to group 1, non-blocking, receive buffer 1 MiB (raise
    /// it with [`NetlinkFf::set_receive_buffer`]).
    ///
    /// # Errors
    /// Socket creation or bind failures.
    pub fn events() -> io::Result<NetlinkFf> {
        let mut socket = Socket::new(NETLINK_FF)?;
        socket.bind(&SocketAddr::new(0, 1 << (FF_GROUP - 1)))?;
        socket.set_non_blocking(true)?;
        let socket = NetlinkFf { socket };
        socket.set_receive_buffer(DEFAULT_RCVBUF)?;
        Ok(socket)
    }

    /// Sets the receive buffer by the rule of [`set_receive_buffer`]; returns the size the
    /// kernel reports.
    ///
    /// # Errors
    /// `setsockopt`/`getsockopt` failures other than the forced variant being refused for
    /// lack of privilege.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<usize> {
        set_receive_buffer(&self.socket, bytes)
    }
}

impl AsFd for NetlinkFf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for NetlinkFf {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl DatagramSocket for NetlinkFf {
    fn recv_many(&self, bufs: &mut [Box<[u8]>], lens: &mut Vec<usize>) -> io::Result<()> {
        recv_many_fd(self.as_fd(), bufs, lens)
    }
}

/// Asks for a receive buffer of `bytes` and returns the size the kernel granted. The rule of
/// every netlink socket of cmmd, written here again because the libraries do not import each
/// other (`conntrack::set_receive_buffer` is the same):
/// - the request is clamped to `i32::MAX / 2`: the kernel doubles it as an int, and a larger
///   value would wrap (4 GiB would become the smallest buffer);
/// - `SO_RCVBUFFORCE` first, which may exceed `net.core.rmem_max` but needs `CAP_NET_ADMIN`;
/// - `SO_RCVBUF` (capped by `rmem_max`) only when the forced option is refused for lack of
///   that privilege (`EPERM`); any other error is returned;
/// - the result is the size in effect as `SO_RCVBUF` reads it back (twice the request).
fn set_receive_buffer(socket: &impl AsFd, bytes: usize) -> io::Result<usize> {
    let bytes = bytes.min(i32::MAX.unsigned_abs() as usize / 2);
    match setsockopt(socket, sockopt::RcvBufForce, &bytes) {
        Ok(()) => {}
        Err(Errno::EPERM) => setsockopt(socket, sockopt::RcvBuf, &bytes)?,
        Err(errno) => return Err(errno.into()),
    }
    Ok(getsockopt(socket, sockopt::RcvBuf)?)
}

/// Any transport, so that the daemon holds one type whatever the backend.
#[derive(Debug)]
pub enum FciSocket {
    /// `fci.ko`.
    Netlink(NetlinkFf),
    /// The software cdx behind a socket pair (its own thread, or its own process).
    Pair(PairSocket),
    /// The software cdx answering in the caller's thread ([`crate::sim::attach`]).
    Sim(crate::sim::SimSocket),
    /// The software cdx in another process, requests sent in packs.
    Packed(super::PackedSocket),
}

impl From<super::PackedSocket> for FciSocket {
    fn from(socket: super::PackedSocket) -> FciSocket {
        FciSocket::Packed(socket)
    }
}

impl From<crate::sim::SimSocket> for FciSocket {
    fn from(socket: crate::sim::SimSocket) -> FciSocket {
        FciSocket::Sim(socket)
    }
}

impl From<NetlinkFf> for FciSocket {
    fn from(socket: NetlinkFf) -> FciSocket {
        FciSocket::Netlink(socket)
    }
}

impl From<PairSocket> for FciSocket {
    fn from(socket: PairSocket) -> FciSocket {
        FciSocket::Pair(socket)
    }
}

impl AsFd for FciSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            FciSocket::Netlink(socket) => socket.as_fd(),
            FciSocket::Pair(socket) => socket.as_fd(),
            FciSocket::Sim(socket) => socket.as_fd(),
            FciSocket::Packed(socket) => socket.as_fd(),
        }
    }
}

impl AsRawFd for FciSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl DatagramSocket for FciSocket {
    fn send(&self, message: &[u8]) -> io::Result<()> {
        match self {
            FciSocket::Sim(socket) => socket.send(message),
            FciSocket::Packed(socket) => socket.send(message),
            _ => send_with(self.as_fd(), message, MsgFlags::MSG_NOSIGNAL),
        }
    }

    fn try_send(&self, message: &[u8]) -> io::Result<()> {
        match self {
            FciSocket::Sim(socket) => socket.try_send(message),
            FciSocket::Packed(socket) => socket.try_send(message),
            _ => send_with(self.as_fd(), message, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT),
        }
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            FciSocket::Sim(socket) => socket.recv(buf),
            FciSocket::Packed(socket) => socket.recv(buf),
            _ => Ok(recv(self.as_fd().as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)?),
        }
    }

    fn recv_many(&self, bufs: &mut [Box<[u8]>], lens: &mut Vec<usize>) -> io::Result<()> {
        match self {
            FciSocket::Sim(socket) => socket.recv_many(bufs, lens),
            FciSocket::Packed(socket) => socket.recv_many(bufs, lens),
            _ => recv_many_fd(self.as_fd(), bufs, lens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_buffer_larger_than_the_kernel_holds_is_clamped_not_wrapped() {
        // The kernel doubles the size as an int. 4 GiB must give the largest buffer there is
        // (with CAP_NET_ADMIN) or net.core.rmem_max (without), never a wrapped, tiny one.
        let rmem_max: usize =
            std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap().trim().parse().unwrap();
        let (socket, _peer) = PairSocket::pair().unwrap();
        let effective = set_receive_buffer(&socket, 1 << 32).unwrap();
        assert!(effective >= 2 * rmem_max.min(1 << 30), "{effective} bytes");
    }

    #[test]
    fn one_receive_takes_every_queued_message_up_to_one_per_buffer() {
        let (a, b) = PairSocket::pair().unwrap();
        let mut bufs: Vec<Box<[u8]>> = (0..4).map(|_| vec![0u8; 64].into_boxed_slice()).collect();
        let mut lens = vec![99];
        let empty = b.recv_many(&mut bufs, &mut lens).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        for n in 1..=6u8 {
            a.send(&vec![n; usize::from(n)]).unwrap();
        }
        b.recv_many(&mut bufs, &mut lens).unwrap();
        assert_eq!(lens, [1, 2, 3, 4], "four buffers, four messages, each kept whole");
        assert_eq!(&bufs[2][..3], &[3, 3, 3]);
        b.recv_many(&mut bufs, &mut lens).unwrap();
        assert_eq!(lens, [5, 6]);
        assert_eq!(&bufs[1][..6], &[6; 6]);
        drop(a);
        b.recv_many(&mut bufs, &mut lens).unwrap();
        assert_eq!(lens.first(), Some(&0), "a closed peer reads as empty messages");
        assert!(lens.iter().all(|&n| n == 0));
    }
}
