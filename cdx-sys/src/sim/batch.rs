//! `recvmmsg`/`sendmmsg` batches of the spawned sim's thread: one system call takes every
//! request queued, one sends every reply of a batch, each its own message as `fci.ko` sends
//! it.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg, sendmmsg};

use crate::fci::{MAX_FRAME, encode_overrun};

use super::runner::{Shared, lock};

/// Requests are read, and replies written, up to this many per system call.
pub(super) const BATCH: usize = 64;
/// Room for one request message (a valid one is at most [`MAX_FRAME`] bytes; a longer
/// message is truncated and counted as malformed).
const SLOT: usize = 1024;

/// `recvmmsg` buffers: one system call takes every request queued (up to [`BATCH`]).
pub(super) struct RequestBatch {
    fd: RawFd,
    slots: Vec<[u8; SLOT]>,
    lens: Vec<usize>,
    headers: MultiHeaders<()>,
}

impl RequestBatch {
    pub(super) fn new(fd: RawFd) -> RequestBatch {
        RequestBatch {
            fd,
            slots: vec![[0; SLOT]; BATCH],
            lens: Vec::with_capacity(BATCH),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Waits (up to `SO_RCVTIMEO`) for one message, then takes every message queued, up to
    /// [`BATCH`]. Returns how many.
    pub(super) fn receive(&mut self) -> nix::Result<usize> {
        self.lens.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            self.slots.iter_mut().map(|slot| [IoSliceMut::new(slot)]).collect();
        let received = recvmmsg(
            self.fd,
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )?;
        self.lens.extend(received.map(|message| message.bytes.min(SLOT)));
        Ok(self.lens.len())
    }

    pub(super) fn message(&self, index: usize) -> Option<&[u8]> {
        self.slots.get(index)?.get(..*self.lens.get(index)?)
    }
}

/// `sendmmsg` buffers: replies of one batch leave in one system call, each its own
/// message as `fci.ko` sends it.
pub(super) struct ReplyBatch {
    fd: RawFd,
    frames: Vec<[u8; MAX_FRAME]>,
    lens: Vec<usize>,
    headers: MultiHeaders<()>,
    /// The batch starts with the overrun message (a reply was dropped before).
    overrun_first: bool,
}

impl ReplyBatch {
    pub(super) fn new(fd: RawFd) -> ReplyBatch {
        ReplyBatch {
            fd,
            frames: vec![[0; MAX_FRAME]; BATCH],
            lens: Vec::with_capacity(BATCH),
            headers: MultiHeaders::preallocate(BATCH, None),
            overrun_first: false,
        }
    }

    /// Queues a reply frame; flushes first when the batch is full. A pending overrun
    /// report goes first.
    pub(super) fn push(&mut self, frame: &[u8], shared: &Shared) {
        if self.lens.len() == BATCH {
            self.flush(shared);
        }
        self.queue_overrun(shared);
        let slot =
            self.frames.get_mut(self.lens.len()).and_then(|slot| slot.get_mut(..frame.len()));
        if let Some(slot) = slot {
            slot.copy_from_slice(frame);
            self.lens.push(frame.len());
        }
    }

    /// Sends every pending reply without waiting; replies the peer has no room for are
    /// dropped and counted, as a kernel unicast to a full socket is, and the peer's next
    /// receive is to report it (`ENOBUFS`).
    pub(super) fn flush(&mut self, shared: &Shared) {
        if self.lens.is_empty() {
            return;
        }
        let slices: Vec<[IoSlice<'_>; 1]> = self
            .frames
            .iter()
            .zip(&self.lens)
            .map(|(frame, &len)| [IoSlice::new(frame.get(..len).unwrap_or_default())])
            .collect();
        let addresses = vec![None; slices.len()];
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let sent = sendmmsg(self.fd, &mut self.headers, &slices, &addresses, [], flags)
            .map_or(0, |results| results.count());
        let undelivered = slices.len().saturating_sub(sent);
        let overrun_sent = self.overrun_first && sent > 0;
        let replies_lost = undelivered.saturating_sub(usize::from(self.overrun_first && sent == 0));
        if undelivered > 0 || overrun_sent {
            let mut state = lock(&shared.state);
            state.stats.replies_undeliverable += replies_lost as u64;
            state.stats.overruns_reported += u64::from(overrun_sent);
        }
        if undelivered > 0 {
            shared.overrun_pending.store(true, Ordering::Relaxed);
        }
        self.overrun_first = false;
        self.lens.clear();
    }

    /// Puts the pending overrun report at the head of an empty batch.
    fn queue_overrun(&mut self, shared: &Shared) {
        if !self.lens.is_empty() || !shared.overrun_pending.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Some(slot) = self.frames.first_mut() {
            self.lens.push(encode_overrun(slot).unwrap_or(0));
            self.overrun_first = true;
        }
    }

    /// Sends the pending overrun report alone, if there is one and nothing else is queued.
    pub(super) fn report_overrun(&mut self, shared: &Shared) {
        self.queue_overrun(shared);
        self.flush(shared);
    }
}
