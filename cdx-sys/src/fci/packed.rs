//! Several FCI messages per socket message, between cmmd and a software cdx in another
//! process.
//!
//! `fci.ko` takes one request per `sendmsg` and cdx answers inside that call, so on the board a
//! command costs one system call. A software cdx served by another process (`cmmd sim serve`)
//! costs, per request, a message through the kernel each way and the system calls on both
//! sides, which made programming 131072 connections twice as slow as with the software cdx
//! in the same process (`docs/performance.md`). Netlink already allows several messages in
//! one datagram, back to back, each padded to 4 bytes, and [`super::frames`] reads them so.
//! A [`PackedSocket`] keeps the requests given to `send` and sends them as one message when
//! its owner next receives (it is about to wait for their replies) or when the next would not
//! fit in [`MAX_PACK`]; the server answers a pack with a pack ([`unpack`], [`pack_into`]).
//!
//! Only the connection to a software cdx in another process packs: what `cdx-sys` sends to
//! `fci.ko`, and what the software cdx in the same process reads, is one request per message
//! as before. The frames themselves are the same bytes either way.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::socket::MsgFlags;

use super::socket::{recv_many_fd, send_with};
use super::{DatagramSocket, NLMSG_HDRLEN, PairSocket, nlmsg_align};

/// The largest pack, each way: the room of each receive buffer of a [`super::Transport`],
/// so that a pack of replies is never cut short. A window of 128 replies to connection
/// commands (about 28 bytes each) fits in one; the requests of such a window (up to 120
/// bytes each) take two.
pub const MAX_PACK: usize = 8192;

/// Appends `message` to `pack`, padded with zeros to the next multiple of 4 bytes.
pub fn pack_into(pack: &mut Vec<u8>, message: &[u8]) {
    pack.extend_from_slice(message);
    pack.resize(nlmsg_align(pack.len()), 0);
}

/// The messages of a pack, each exactly its `nlmsg_len` bytes (padding skipped). A message
/// whose length field does not fit what is left ends the pack: the rest comes out whole, for
/// the reader to refuse as malformed.
pub fn unpack(pack: &[u8]) -> Unpack<'_> {
    Unpack { rest: pack }
}

/// Iterator returned by [`unpack`].
#[derive(Clone, Debug)]
pub struct Unpack<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Unpack<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let declared = self
            .rest
            .get(..4)
            .and_then(|len| <[u8; 4]>::try_from(len).ok())
            .map(|len| u32::from_ne_bytes(len) as usize)
            .filter(|&len| len >= NLMSG_HDRLEN && len <= self.rest.len());
        let Some(len) = declared else {
            return Some(std::mem::take(&mut self.rest));
        };
        let (message, rest) = self.rest.split_at(len);
        self.rest = rest.get(nlmsg_align(len) - len..).unwrap_or_default();
        Some(message)
    }
}

/// A connection to a software cdx in another process that sends requests in packs.
///
/// `send` only queues (it sends the queued pack first when the message would not fit); the
/// queued pack leaves at the next `recv` or `recv_many`, before anything is read. A send that
/// fails there fails that receive, and the requests of the pack are lost: their replies never
/// come, as with any request the peer did not get. `try_send` is refused with
/// [`io::ErrorKind::WouldBlock`] when a full pack finds no room, and the pack stays queued.
#[derive(Debug)]
pub struct PackedSocket {
    socket: PairSocket,
    pending: RefCell<Vec<u8>>,
}

impl PackedSocket {
    /// Packs the requests sent over `socket`.
    pub fn new(socket: PairSocket) -> PackedSocket {
        PackedSocket { socket, pending: RefCell::new(Vec::with_capacity(MAX_PACK)) }
    }

    /// Sends the queued pack, if any (`flags`: with or without waiting for room). A pack
    /// refused for lack of room stays queued; any other outcome empties the queue.
    fn flush(&self, flags: MsgFlags) -> io::Result<()> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return Ok(());
        }
        let sent = send_with(self.socket.as_fd(), &pending, flags);
        if !matches!(&sent, Err(error) if error.kind() == io::ErrorKind::WouldBlock) {
            pending.clear();
        }
        sent
    }

    fn queue(&self, message: &[u8], flags: MsgFlags) -> io::Result<()> {
        let room = MAX_PACK - self.pending.borrow().len();
        if nlmsg_align(message.len()) > room {
            self.flush(flags)?;
        }
        if message.len() > MAX_PACK {
            return send_with(self.socket.as_fd(), message, flags);
        }
        pack_into(&mut self.pending.borrow_mut(), message);
        Ok(())
    }
}

impl AsFd for PackedSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl DatagramSocket for PackedSocket {
    fn send(&self, message: &[u8]) -> io::Result<()> {
        self.queue(message, MsgFlags::MSG_NOSIGNAL)
    }

    fn try_send(&self, message: &[u8]) -> io::Result<()> {
        self.queue(message, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.flush(MsgFlags::MSG_NOSIGNAL)?;
        self.socket.recv(buf)
    }

    fn recv_many(&self, bufs: &mut [Box<[u8]>], lens: &mut Vec<usize>) -> io::Result<()> {
        self.flush(MsgFlags::MSG_NOSIGNAL)?;
        recv_many_fd(self.as_fd(), bufs, lens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fci::{Frame, encode_reply, encode_request, frames};
    use crate::fpp::{FCode, ReturnCode};

    fn request(seq: u32, payload_len: usize) -> Vec<u8> {
        let mut out = [0u8; crate::fci::MAX_FRAME];
        let len = encode_request(seq, FCode::Ipv4Reset, &vec![7; payload_len], &mut out).unwrap();
        out[..len].to_vec()
    }

    #[test]
    fn requests_wait_for_the_next_receive_and_leave_as_one_message() {
        let (client, server) = PairSocket::pair().unwrap();
        let packed = PackedSocket::new(client);
        for seq in 1..=3 {
            packed.send(&request(seq, 5)).unwrap();
        }
        let mut buf = vec![0u8; MAX_PACK];
        let nothing = server.recv(&mut buf).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock, "nothing sent before a receive");
        let (mut bufs, mut lens) = (vec![vec![0u8; 64].into_boxed_slice()], Vec::new());
        let empty = packed.recv_many(&mut bufs, &mut lens).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock, "no reply yet");
        let n = server.recv(&mut buf).unwrap();
        let seqs: Vec<u32> = frames(&buf[..n])
            .map(|frame| match frame.unwrap() {
                Frame::Request { seq, payload, .. } => {
                    assert_eq!(payload, &[7; 5]);
                    seq
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3], "one message holding the three requests in order");
        assert_eq!(server.recv(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_pack_never_grows_past_its_limit() {
        let (client, server) = PairSocket::pair().unwrap();
        let packed = PackedSocket::new(client);
        let one = request(1, 200);
        let fit = MAX_PACK / nlmsg_align(one.len());
        for _ in 0..=fit {
            packed.send(&one).unwrap();
        }
        let mut buf = vec![0u8; 2 * MAX_PACK];
        let first = server.recv(&mut buf).unwrap();
        assert_eq!(first, fit * nlmsg_align(one.len()), "full: sent before the next is queued");
        assert!(first <= MAX_PACK);
        packed.recv(&mut [0u8; 16]).unwrap_err();
        assert_eq!(server.recv(&mut buf).unwrap(), nlmsg_align(one.len()), "the one left over");
    }

    #[test]
    fn a_full_pack_without_room_stays_queued_for_try_send() {
        let (client, server) = PairSocket::pair().unwrap();
        client.set_nonblocking(true).unwrap();
        let packed = PackedSocket::new(client);
        let one = request(1, 200);
        let mut refused = None;
        for sent in 0..100_000 {
            if let Err(error) = packed.try_send(&one) {
                refused = Some((sent, error.kind()));
                break;
            }
        }
        let (sent, kind) = refused.expect("the peer never reads: the socket fills");
        assert_eq!(kind, io::ErrorKind::WouldBlock);
        let mut buf = vec![0u8; MAX_PACK];
        let mut received = 0;
        while let Ok(n) = server.recv(&mut buf) {
            received += n / nlmsg_align(one.len());
        }
        packed.recv(&mut [0u8; 16]).unwrap_err();
        while let Ok(n) = server.recv(&mut buf) {
            received += n / nlmsg_align(one.len());
        }
        assert_eq!(received, sent, "every request queued before the refusal arrives, once");
    }

    #[test]
    fn unpack_gives_each_message_exactly_and_a_malformed_rest_whole() {
        let mut pack = Vec::new();
        let mut reply = [0u8; crate::fci::MAX_FRAME];
        let len = encode_reply(9, FCode::Ipv4Reset, ReturnCode::Ok, &[1], &mut reply).unwrap();
        assert_ne!(len % 4, 0, "a reply's length is exact, not padded");
        pack_into(&mut pack, &reply[..len]);
        pack_into(&mut pack, &request(10, 3));
        assert_eq!(pack.len() % 4, 0);
        let messages: Vec<&[u8]> = unpack(&pack).collect();
        assert_eq!(messages, [&reply[..len], &request(10, 3)[..]]);
        pack.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
        let messages: Vec<&[u8]> = unpack(&pack).collect();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2], &[200, 0, 0, 0, 1, 2], "a length past the end: the rest, whole");
        assert_eq!(unpack(&[1, 2]).collect::<Vec<_>>(), [&[1u8, 2][..]]);
        assert_eq!(unpack(&[]).count(), 0);
    }
}
