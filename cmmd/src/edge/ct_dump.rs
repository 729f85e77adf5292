//! The initial conntrack dump, received on a thread of its own.
//!
//! The kernel builds each dump datagram inside the `recvmsg` that asks for it, so a dump
//! read on the event loop costs the loop the kernel's work plus its own, one after the other.
//! At start that is the whole time to ready. [`DumpReceiver`] moves the receiving to a thread
//! (`cmmd-ct-dump`) with a socket of its own: the loop hands it the dump request, the thread
//! sends it and reads the answers as they come, and the loop decodes and applies each
//! datagram while the kernel builds the next. Only the initial dump goes this way: measured
//! under an event storm (a resync after an overrun), the hand-off made the resync dump slower
//! (the thread competes with the loop and the load for the cores), so later dumps are read on
//! the loop as before (`ctnetlink`).
//!
//! Contract: datagrams reach the loop whole and in the kernel's order, at most [`AHEAD`]
//! of them waiting (the thread stops reading until the loop catches up, and the kernel
//! waits with it: a dump loses nothing), and `wake` is called after each one. A dump ends
//! at its `NLMSG_DONE` or error; a socket error, or no datagram for [`STALL`], ends it with
//! [`DumpChunk::Failed`]. The thread ends when the receiver is dropped. Nothing here blocks
//! the loop.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::time::Duration;

use conntrack::{CtSocket, Datagram, Message, RecvError};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

/// Datagrams read ahead of the loop at most (a dump datagram is at most 32 KiB).
pub(crate) const AHEAD: usize = 64;
/// Longest wait for the kernel's next datagram of a dump.
pub(crate) const STALL: Duration = Duration::from_secs(5);
/// Receive buffer of the thread: any dump datagram fits.
const RX: usize = 256 * 1024;

/// What the thread hands the loop.
#[derive(Debug)]
pub(crate) enum DumpChunk {
    /// One datagram of the dump, as the kernel sent it.
    Datagram(Vec<u8>),
    /// The dump ended without its `NLMSG_DONE`: why.
    Failed(String),
}

/// The loop's end of the dump thread.
pub(crate) struct DumpReceiver {
    requests: Sender<(u32, Vec<u8>)>,
    chunks: Receiver<DumpChunk>,
}

impl DumpReceiver {
    /// Start the thread on `socket`; it calls `wake` after each chunk it hands over.
    pub(crate) fn spawn(
        socket: CtSocket,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> io::Result<DumpReceiver> {
        socket.set_nonblocking(false)?;
        let stall =
            TimeVal::new(libc::time_t::try_from(STALL.as_secs()).unwrap_or(libc::time_t::MAX), 0);
        setsockopt(&socket, sockopt::ReceiveTimeout, &stall)?;
        let (requests, requests_rx) = mpsc::channel();
        let (chunks_tx, chunks) = mpsc::sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("cmmd-ct-dump".into())
            .spawn(move || receive(&socket, &requests_rx, &chunks_tx, &*wake))?;
        Ok(DumpReceiver { requests, chunks })
    }

    /// Have the thread send `request` (numbered `seq`) and read its answers.
    ///
    /// # Errors
    /// The thread is gone.
    pub(crate) fn request(&self, seq: u32, request: Vec<u8>) -> io::Result<()> {
        self.requests
            .send((seq, request))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "conntrack dump thread gone"))
    }

    /// The next chunk, if one is waiting.
    pub(crate) fn try_next(&self) -> Option<DumpChunk> {
        match self.chunks.try_recv() {
            Ok(chunk) => Some(chunk),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(DumpChunk::Failed("conntrack dump thread gone".into()))
            }
        }
    }
}

/// Whether `datagram` ends the dump numbered `seq` (its `NLMSG_DONE`, or an error).
fn ends_dump(datagram: &[u8], seq: u32) -> bool {
    Datagram::new(datagram).flatten().any(|message| match message {
        Message::Done { seq: s, .. } => s == seq,
        Message::Error { seq: s, errno, .. } => s == seq && errno != 0,
        _ => false,
    })
}

/// The thread: one dump at a time, until the loop's end is dropped.
fn receive(
    socket: &CtSocket,
    requests: &Receiver<(u32, Vec<u8>)>,
    chunks: &SyncSender<DumpChunk>,
    wake: &(dyn Fn() + Send + Sync),
) {
    let mut rx = vec![0u8; RX];
    while let Ok((seq, request)) = requests.recv() {
        if let Err(e) = socket.send(&request) {
            if chunks.send(DumpChunk::Failed(e.to_string())).is_err() {
                return;
            }
            wake();
            continue;
        }
        loop {
            let (chunk, last) = match socket.recv(&mut rx) {
                Ok(len) => {
                    let datagram = rx.get(..len).unwrap_or_default();
                    (DumpChunk::Datagram(datagram.to_vec()), ends_dump(datagram, seq))
                }
                Err(RecvError::WouldBlock) => {
                    (DumpChunk::Failed(format!("no answer within {}s", STALL.as_secs())), true)
                }
                Err(e) => (DumpChunk::Failed(e.to_string()), true),
            };
            if chunks.send(chunk).is_err() {
                return;
            }
            wake();
            if last {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(seq: u32) -> Vec<u8> {
        // NLMSG_DONE: header (len 20, type 3, flags NLM_F_MULTI, seq, pid) and an int 0.
        let mut m = Vec::new();
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&3u16.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0i32.to_ne_bytes());
        m
    }

    #[test]
    fn a_dump_ends_at_its_own_done_only() {
        assert!(ends_dump(&done(7), 7));
        assert!(!ends_dump(&done(6), 7), "another dump's end");
        assert!(!ends_dump(b"not netlink", 7));
        let entries = conntrack::fixtures::TCP4_SNAT_ESTABLISHED.bytes();
        assert!(!ends_dump(&entries, 7), "entries go on");
    }
}
