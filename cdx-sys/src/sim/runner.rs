//! The sim on a thread, behind socket pairs framed as `fci.ko` frames them.
//!
//! The thread owns the sim's ends of two `SOCK_SEQPACKET` pairs. On the command pair it
//! reads requests as `fci.ko` reads them ([`crate::fci::read_request_as_fci`]: the first
//! netlink message of a datagram only) and answers each with a reply carrying the request's
//! sequence number (or an `NLMSG_ERROR`). A reply the peer has no room for is dropped, as a
//! kernel unicast to a full socket is, and the peer's next receive reports it: the kernel
//! fails `recvmsg` with `ENOBUFS`, the sim sends [`crate::fci::Frame::Overrun`], which
//! [`crate::fci::Transport`] turns into the same error. Every `tick` it runs aging and
//! sends REMOVED events on the event pair; an event the peer has no room for stays pending
//! (the pair stays in the table) and is retried on the next tick; with no peer it is
//! dropped.
//!
//! cdx serialises commands and its aging timer with one mutex, and each hardware insert or
//! delete is a slow FMan host command: the sim holds its own control mutex across a command
//! and across an aging tick, and waits [`super::SimConfig::hw_latency`] per hardware change
//! before replying. The model itself lives behind a second mutex shared with every
//! [`SimHandle`], held only while a message is handled, so inspection stays quick.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::fci::{
    DatagramSocket, EOPNOTSUPP, MAX_FRAME, PairSocket, encode_event, encode_netlink_error,
    encode_overrun, encode_raw_reply, frames, read_request_as_fci,
};
use crate::fpp::Abi;

use super::batch::{ReplyBatch, RequestBatch};
use super::faults::{spurious_event, take_duplicate, take_fault};
use super::model::{Cdx, SimEvent, SimReply};
use super::{Fault, FlowMatch, SimConfig, SimError, SimStats, SimTable};

pub(super) struct State {
    model: Cdx,
    faults: Vec<Fault>,
    pub(super) stats: SimStats,
    /// Added to the real clock: lets tests age flows without waiting.
    clock_offset: Duration,
    hw_latency: Duration,
}

impl State {
    fn now(&self) -> Instant {
        Instant::now() + self.clock_offset
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// cdx's control mutex: one command or one aging tick at a time, FMan latency included.
    control: Mutex<()>,
    events: PairSocket,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// A reply was dropped: the peer's next receive is to report `ENOBUFS`.
    pub(super) overrun_pending: AtomicBool,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Inspects and steers a spawned sim. Cheap to clone; the thread stops when
/// [`SimHandle::shutdown`] is called or the peer closes the command socket.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

fn new_shared(config: &SimConfig, events: PairSocket) -> Result<Arc<Shared>, SimError> {
    Ok(Arc::new(Shared {
        state: Mutex::new(State {
            model: Cdx::new(config)?,
            faults: Vec::new(),
            stats: SimStats::default(),
            clock_offset: Duration::ZERO,
            hw_latency: config.hw_latency,
        }),
        control: Mutex::new(()),
        events,
        stop: AtomicBool::new(false),
        thread: Mutex::new(None),
        overrun_pending: AtomicBool::new(false),
    }))
}

/// Starts a sim. Returns its handle, the command socket (give it to a
/// [`crate::fci::Transport`]) and the event socket (non-blocking; read REMOVED events from
/// it as from `fci.ko`'s group 1).
///
/// # Errors
/// [`SimError::Interface`] for an invalid interface name; [`SimError::Io`] if the sockets
/// or the thread cannot be created.
pub fn spawn(config: SimConfig) -> Result<(SimHandle, PairSocket, PairSocket), SimError> {
    let (command_peer, command_sim) = PairSocket::pair()?;
    let (event_peer, event_sim) = PairSocket::pair()?;
    event_peer.set_nonblocking(true)?;
    let shared = new_shared(&config, event_sim)?;
    let tick = config.tick.max(Duration::from_millis(1));
    let thread_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("cdx-sim".into())
        .spawn(move || serve(&thread_shared, &command_sim, tick))?;
    *lock(&shared.thread) = Some(thread);
    Ok((SimHandle { shared }, command_peer, event_peer))
}

/// Starts a sim whose commands are answered in the caller's thread, inside `send`, as
/// `fci.ko` answers inside `sendmsg`: no second thread to wake per command. Same framing,
/// same model, same faults as [`spawn`]; a thread of its own only ages flows and sends the
/// REMOVED events. Returns the handle, the command socket and the event socket
/// (non-blocking).
///
/// # Errors
/// As [`spawn`].
pub fn attach(config: SimConfig) -> Result<(SimHandle, SimSocket, PairSocket), SimError> {
    let (event_peer, event_sim) = PairSocket::pair()?;
    event_peer.set_nonblocking(true)?;
    let shared = new_shared(&config, event_sim)?;
    let tick = config.tick.max(Duration::from_millis(1));
    let thread_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new().name("cdx-sim-aging".into()).spawn(move || {
        while !thread_shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(tick);
            age(&thread_shared);
        }
    })?;
    *lock(&shared.thread) = Some(thread);
    // A socket nobody writes to: what `Transport` polls while it waits for a reply that will
    // never come (a dropped reply), until its deadline.
    let (idle, _idle_peer) = PairSocket::pair()?;
    let socket =
        SimSocket { shared: Arc::clone(&shared), replies: Mutex::new(VecDeque::new()), idle };
    Ok((SimHandle { shared }, socket, event_peer))
}

/// The command socket of [`attach`]: `send` runs the request through the model at once and
/// queues the reply frame (or the netlink error, or nothing for a withheld reply, or the
/// overrun report in front of everything for a dropped one; delays stall `send`, as cdx's
/// command mutex stalls `sendmsg`); `recv` hands the queued frames out.
#[derive(Debug)]
pub struct SimSocket {
    shared: Arc<Shared>,
    replies: Mutex<VecDeque<QueuedFrame>>,
    idle: PairSocket,
}

/// A reply frame waiting for [`SimSocket`]'s `recv`, in place: an allocation and a free per
/// command were part of the allocator's 7 % of the offload thread's time in a profile of the
/// churn.
#[derive(Debug)]
struct QueuedFrame {
    len: usize,
    bytes: [u8; MAX_FRAME],
}

impl QueuedFrame {
    /// `frame`, cut at [`MAX_FRAME`] (the longest frame the model writes).
    fn new(frame: &[u8]) -> QueuedFrame {
        let len = frame.len().min(MAX_FRAME);
        let mut bytes = [0; MAX_FRAME];
        if let (Some(to), Some(from)) = (bytes.get_mut(..len), frame.get(..len)) {
            to.copy_from_slice(from);
        }
        QueuedFrame { len, bytes }
    }

    fn frame(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl AsFd for SimSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.idle.as_fd()
    }
}

impl AsRawFd for SimSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.idle.as_raw_fd()
    }
}

impl DatagramSocket for SimSocket {
    fn send(&self, message: &[u8]) -> io::Result<()> {
        let _control = lock(&self.shared.control);
        answer_with(&self.shared, message, &mut |outcome| match outcome {
            Outcome::Reply { frame, delay } => {
                std::thread::sleep(delay);
                lock(&self.replies).push_back(QueuedFrame::new(frame));
            }
            Outcome::Dropped { delay } => {
                std::thread::sleep(delay);
                let mut marker = [0u8; 16];
                let len = encode_overrun(&mut marker).unwrap_or(0);
                // The kernel reports the error before any queued reply.
                lock(&self.replies)
                    .push_front(QueuedFrame::new(marker.get(..len).unwrap_or_default()));
                lock(&self.shared.state).stats.overruns_reported += 1;
            }
        });
        Ok(())
    }

    fn try_send(&self, message: &[u8]) -> io::Result<()> {
        self.send(message)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(queued) = lock(&self.replies).pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let frame = queued.frame();
        let len = frame.len().min(buf.len());
        buf.get_mut(..len)
            .unwrap_or_default()
            .copy_from_slice(frame.get(..len).unwrap_or_default());
        Ok(len)
    }
}

/// The thread: answer commands, age every tick.
///
/// It blocks in `recv` with `SO_RCVTIMEO` (one system call per request, instead of
/// `poll` + `recv` + a final `EAGAIN`), bounded so that ticks and shutdown are noticed.
fn serve(shared: &Shared, commands: &PairSocket, tick: Duration) {
    let wake = tick.min(Duration::from_millis(100));
    let timeout = TimeVal::new(
        libc::time_t::try_from(wake.as_secs()).unwrap_or(0),
        libc::suseconds_t::from(wake.subsec_micros()).max(1),
    );
    if setsockopt(commands, sockopt::ReceiveTimeout, &timeout).is_err() {
        return;
    }
    let fd = commands.as_fd().as_raw_fd();
    let mut requests = RequestBatch::new(fd);
    let mut replies = ReplyBatch::new(fd);
    let mut next_tick = Instant::now() + tick;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_tick {
            age(shared);
            next_tick = now + tick;
        }
        replies.report_overrun(shared);
        match requests.receive() {
            Ok(received) => {
                for index in 0..received {
                    let Some(message) = requests.message(index) else { return };
                    if message.is_empty() {
                        return; // the peer closed its end
                    }
                    answer(shared, message, &mut replies);
                }
                replies.flush(shared);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Handles one message from the command socket, queueing the reply.
fn answer(shared: &Shared, message: &[u8], replies: &mut ReplyBatch) {
    answer_with(shared, message, &mut |outcome| {
        let delay = match outcome {
            Outcome::Reply { delay, .. } | Outcome::Dropped { delay } => delay,
        };
        if !delay.is_zero() {
            // Replies keep their order: earlier ones leave before the stall.
            replies.flush(shared);
            std::thread::sleep(delay);
        }
        match outcome {
            Outcome::Reply { frame, .. } => replies.push(frame, shared),
            Outcome::Dropped { .. } => shared.overrun_pending.store(true, Ordering::Relaxed),
        }
    });
}

/// What became of one request.
enum Outcome<'a> {
    /// Send `frame` after `delay`.
    Reply { frame: &'a [u8], delay: Duration },
    /// Executed after `delay`, reply dropped.
    Dropped { delay: Duration },
}

/// Runs the request of one datagram through the model; `outcome` gets what to send back
/// (nothing for a datagram `fci.ko` drops or a command a wedged cdx never answers).
fn answer_with(shared: &Shared, message: &[u8], outcome: &mut dyn FnMut(Outcome<'_>)) {
    let request = match read_request_as_fci(message) {
        Ok(request) => request,
        Err(_) => {
            lock(&shared.state).stats.malformed += 1;
            return;
        }
    };
    let mut state = lock(&shared.state);
    if request.ignored > 0 {
        let rest = message.get(message.len() - request.ignored..).unwrap_or_default();
        state.stats.extra_messages_ignored += frames(rest).count().max(1) as u64;
    }
    let mut out = [0u8; MAX_FRAME];
    let fault = take_fault(&mut state.faults, request.fcode);
    let now = state.now();
    let refusal = match fault {
        Some(Fault::OffloadOwnerFlowtable) => Some(EOPNOTSUPP),
        Some(Fault::Eio { .. }) => Some(libc::EIO),
        _ => None,
    };
    if let Some(errno) = refusal {
        state.stats.netlink_errors += 1;
        let len =
            encode_netlink_error(request.seq, errno, request.nlmsg_len, &mut out).unwrap_or(0);
        drop(state);
        return outcome(Outcome::Reply {
            frame: out.get(..len).unwrap_or_default(),
            delay: Duration::ZERO,
        });
    }
    let reply = match fault {
        Some(Fault::ErrorCode { rc, .. }) => SimReply::with_rc(rc),
        _ => {
            let State { model, stats, .. } = &mut *state;
            model.handle_with(request.fcode, request.payload, now, &mut |event| {
                send_event(&shared.events, stats, event)
            })
        }
    };
    if reply.is_withheld() {
        state.stats.commands_unanswered += 1;
        return;
    }
    *state.stats.commands.entry((request.fcode, reply.rc())).or_default() += 1;
    let mut delay = state.hw_latency.saturating_mul(state.model.take_hw_ops());
    if let Some(Fault::Delay { duration, .. }) = fault {
        delay += duration;
    }
    if matches!(fault, Some(Fault::DropReply { .. })) {
        state.stats.replies_dropped += 1;
        drop(state);
        return outcome(Outcome::Dropped { delay });
    }
    drop(state);
    let len = encode_raw_reply(request.seq, request.fcode, reply.as_bytes(), &mut out).unwrap_or(0);
    outcome(Outcome::Reply { frame: out.get(..len).unwrap_or_default(), delay });
}

/// One aging tick: REMOVED events out, undeliverable ones kept for the next tick; the
/// FMan deletions it made take their time with cdx's mutex held.
fn age(shared: &Shared) {
    let _control = lock(&shared.control);
    let mut state = lock(&shared.state);
    let now = state.now();
    let State { model, faults, stats, .. } = &mut *state;
    model.tick_with(now, &mut |event| {
        let copies = if take_duplicate(faults) { 2 } else { 1 };
        (0..copies).all(|_| send_event(&shared.events, stats, event))
    });
    let delay = state.hw_latency.saturating_mul(state.model.take_hw_ops());
    drop(state);
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
}

/// Sends one event; `false` if it must be retried (peer full).
fn send_event(events: &PairSocket, stats: &mut SimStats, event: &SimEvent) -> bool {
    let mut frame = [0u8; MAX_FRAME];
    let len = encode_event(event.fcode(), event.payload(), &mut frame).unwrap_or(0);
    match events.try_send(frame.get(..len).unwrap_or_default()) {
        Ok(()) => {
            stats.events_sent += 1;
            true
        }
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
            stats.events_deferred += 1;
            false
        }
        Err(_) => {
            // Nobody listens: fci drops the event and reports it delivered.
            stats.events_unheard += 1;
            true
        }
    }
}

impl SimHandle {
    /// Everything the model holds now.
    pub fn snapshot(&self) -> SimTable {
        let state = lock(&self.shared.state);
        state.model.snapshot(state.now())
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        let state = lock(&self.shared.state);
        SimStats { model: state.model.counters(), ..state.stats.clone() }
    }

    /// The ABI (and build) the sim speaks.
    pub fn abi(&self) -> Abi {
        lock(&self.shared.state).model.abi()
    }

    /// `true` once a command made the modelled NXP cdx read outside its handler table: it
    /// answers nothing any more.
    pub fn is_wedged(&self) -> bool {
        lock(&self.shared.state).model.is_wedged()
    }

    /// Stamps the selected flows' hardware entries now (traffic through FMan). Returns how
    /// many flows were stamped.
    pub fn mark_active(&self, flows: FlowMatch) -> usize {
        let mut state = lock(&self.shared.state);
        let now = state.now();
        state.model.mark_active(&flows, now)
    }

    /// Moves the sim's clock forward by `by` (aging happens at the next tick).
    pub fn advance(&self, by: Duration) {
        lock(&self.shared.state).clock_offset += by;
    }

    /// Sets the hardware capacity (pairs).
    pub fn set_capacity(&self, capacity: usize) {
        lock(&self.shared.state).model.set_capacity(capacity);
    }

    /// Applies a fault: per-command and duplicate faults queue up in order (the offload
    /// owner stays until cleared); capacity and spurious events take effect now.
    ///
    /// # Errors
    /// [`SimError::Fault`] for a spurious event whose tuples mix families;
    /// [`SimError::Io`] if it cannot be sent.
    pub fn inject(&self, fault: Fault) -> Result<(), SimError> {
        let mut state = lock(&self.shared.state);
        match fault {
            Fault::CapacityFull => {
                let used = state.model.hw_pairs();
                state.model.set_capacity(used);
            }
            Fault::SpuriousRemoved { orig, reply, protocol } => {
                let event = spurious_event(orig, reply, protocol)?;
                let State { model, stats, .. } = &mut *state;
                let event = SimEvent::encode(model.abi(), &mut model.filler, event);
                if !send_event(&self.shared.events, stats, &event) {
                    return Err(SimError::Io(io::ErrorKind::WouldBlock.into()));
                }
            }
            other => state.faults.push(other),
        }
        Ok(())
    }

    /// Faults still pending.
    pub fn pending_faults(&self) -> Vec<Fault> {
        lock(&self.shared.state).faults.clone()
    }

    /// Drops every pending fault (capacity changes stay; the offload owner goes back to
    /// cmm).
    pub fn clear_faults(&self) {
        lock(&self.shared.state).faults.clear();
    }

    /// Stops the thread and waits for it.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = lock(&self.shared.thread).take() {
            let _ = thread.join();
        }
    }
}
