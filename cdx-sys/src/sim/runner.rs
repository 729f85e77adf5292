//! The sim on a thread, behind socket pairs framed as `fci.ko` frames them.
//!
//! The thread owns the sim's ends of two `SOCK_SEQPACKET` pairs. On the command pair it
//! reads requests, answers each with a reply carrying the request's sequence number (or an
//! `NLMSG_ERROR`), as `fci.ko` does; replies the peer has no room for are dropped, as a
//! kernel unicast to a full socket is. Every `tick` it runs aging and sends REMOVED events
//! on the event pair; an event the peer has no room for stays pending (the pair stays in
//! the table) and is retried on the next tick; with no peer it is dropped.
//!
//! The model lives behind a mutex shared with every [`SimHandle`]; the thread holds it only
//! while handling one message, so inspection never stalls the command stream for long.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg, sendmmsg, setsockopt, sockopt};
use nix::sys::time::TimeVal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::fci::{
    DatagramSocket, Frame, MAX_FRAME, PairSocket, encode_event, encode_netlink_error,
    encode_raw_reply, frames,
};
use crate::fpp::{Action, CtChange, CtCmd, FCode, IfName, IfNameError, ReturnCode, V4, V6};

use super::{Cdx, CtEvent, FlowMatch, SimConfig, SimReply, SimTable, SimTuple};

/// A fault the sim applies to the next matching commands or events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer the next `count` commands (of code `fcode`, or any) with `rc` without
    /// executing them.
    ErrorCode {
        /// Only commands with this code; `None`: any.
        fcode: Option<FCode>,
        /// The return code to answer.
        rc: ReturnCode,
        /// How many commands.
        count: u32,
    },
    /// Execute the next `count` commands but send no reply.
    DropReply {
        /// How many commands.
        count: u32,
    },
    /// Execute the next `count` commands and reply after `duration` (the thread stalls,
    /// as cdx's command mutex would).
    Delay {
        /// The delay.
        duration: Duration,
        /// How many commands.
        count: u32,
    },
    /// Answer the next `count` commands with `NLMSG_ERROR` −EIO without executing them.
    Eio {
        /// How many commands.
        count: u32,
    },
    /// The hardware table is full from now on (capacity = pairs in hardware now).
    CapacityFull,
    /// Send a REMOVED event for a flow (known or not) now.
    SpuriousRemoved {
        /// Original tuple.
        orig: SimTuple,
        /// Reply tuple.
        reply: SimTuple,
        /// IP protocol.
        protocol: u8,
    },
    /// Send each of the next `count` aging REMOVED events twice.
    DuplicateRemoved {
        /// How many events.
        count: u32,
    },
}

/// Errors of the sim's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A configured interface name is not a valid cdx name.
    #[error("interface {name:?}: {source}")]
    Interface {
        /// The name.
        name: String,
        /// Why.
        source: IfNameError,
    },
    /// A fault that cannot be applied (e.g. tuples of different families).
    #[error("fault cannot be applied: {0}")]
    Fault(&'static str),
    /// Socket or thread creation, or sending an injected event.
    #[error("sim: {0}")]
    Io(#[from] io::Error),
}

/// What the sim did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Commands answered, by code and return code.
    pub commands: BTreeMap<(FCode, ReturnCode), u64>,
    /// Commands answered with a netlink error (injected EIO).
    pub netlink_errors: u64,
    /// Replies withheld by [`Fault::DropReply`].
    pub replies_dropped: u64,
    /// Replies the peer had no room for (dropped, as netlink does).
    pub replies_undeliverable: u64,
    /// Messages that were not valid FCI requests.
    pub malformed: u64,
    /// Events sent (REMOVED by aging, spurious and duplicates).
    pub events_sent: u64,
    /// Event deliveries postponed because the peer had no room.
    pub events_deferred: u64,
    /// Events dropped because nobody listened.
    pub events_unheard: u64,
}

impl SimStats {
    /// Commands with this code and return code.
    pub fn count(&self, fcode: FCode, rc: ReturnCode) -> u64 {
        self.commands.get(&(fcode, rc)).copied().unwrap_or(0)
    }

    /// Commands answered with a reply.
    pub fn total_commands(&self) -> u64 {
        self.commands.values().sum()
    }
}

struct State {
    model: Cdx,
    faults: Vec<Fault>,
    stats: SimStats,
    /// Added to the real clock: lets tests age flows without waiting.
    clock_offset: Duration,
}

impl State {
    fn now(&self) -> Instant {
        Instant::now() + self.clock_offset
    }
}

struct Shared {
    state: Mutex<State>,
    events: PairSocket,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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

fn new_shared(config: &SimConfig, events: PairSocket) -> Result<Arc<Shared>, SimError> {
    let ports = config
        .interfaces
        .iter()
        .map(|name| {
            IfName::new(name).map_err(|source| SimError::Interface { name: name.clone(), source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Shared {
        state: Mutex::new(State {
            model: Cdx::new(ports, config.capacity),
            faults: Vec::new(),
            stats: SimStats::default(),
            clock_offset: Duration::ZERO,
        }),
        events,
        stop: AtomicBool::new(false),
        thread: Mutex::new(None),
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
            age(&thread_shared, tick);
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
/// queues the reply frame (or the netlink error, or nothing for a dropped reply; a delay
/// stalls `send`, as cdx's command mutex stalls `sendmsg`); `recv` hands the queued frames out.
#[derive(Debug)]
pub struct SimSocket {
    shared: Arc<Shared>,
    replies: Mutex<VecDeque<Vec<u8>>>,
    idle: PairSocket,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
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
        answer_with(&self.shared, message, &mut |frame, delay| {
            if let Some(delay) = delay {
                std::thread::sleep(delay);
            }
            lock(&self.replies).push_back(frame.to_vec());
        });
        Ok(())
    }

    fn try_send(&self, message: &[u8]) -> io::Result<()> {
        self.send(message)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(frame) = lock(&self.replies).pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
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
            age(shared, tick);
            next_tick = now + tick;
        }
        match requests.receive() {
            Ok(received) => {
                for index in 0..received {
                    let Some(message) = requests.message(index) else { return };
                    if message.is_empty() {
                        return; // the peer closed its end
                    }
                    answer(shared, message, &mut replies);
                }
                replies.flush(&shared.state);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Requests are read, and replies written, up to this many per system call.
const BATCH: usize = 64;
/// Room for one request message (a valid one is at most [`MAX_FRAME`] bytes; a longer
/// message is truncated and counted as malformed).
const SLOT: usize = 1024;

/// `recvmmsg` buffers: one system call takes every request queued (up to [`BATCH`]).
struct RequestBatch {
    fd: RawFd,
    slots: Vec<[u8; SLOT]>,
    lens: Vec<usize>,
    headers: MultiHeaders<()>,
}

impl RequestBatch {
    fn new(fd: RawFd) -> RequestBatch {
        RequestBatch {
            fd,
            slots: vec![[0; SLOT]; BATCH],
            lens: Vec::with_capacity(BATCH),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Waits (up to `SO_RCVTIMEO`) for one message, then takes every message queued, up to
    /// [`BATCH`]. Returns how many.
    fn receive(&mut self) -> nix::Result<usize> {
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

    fn message(&self, index: usize) -> Option<&[u8]> {
        self.slots.get(index)?.get(..*self.lens.get(index)?)
    }
}

/// `sendmmsg` buffers: replies of one batch leave in one system call, each its own
/// message as `fci.ko` sends it.
struct ReplyBatch {
    fd: RawFd,
    frames: Vec<[u8; MAX_FRAME]>,
    lens: Vec<usize>,
    headers: MultiHeaders<()>,
}

impl ReplyBatch {
    fn new(fd: RawFd) -> ReplyBatch {
        ReplyBatch {
            fd,
            frames: vec![[0; MAX_FRAME]; BATCH],
            lens: Vec::with_capacity(BATCH),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Queues a reply frame; flushes first when the batch is full.
    fn push(&mut self, frame: &[u8], state: &Mutex<State>) {
        if self.lens.len() == BATCH {
            self.flush(state);
        }
        let slot =
            self.frames.get_mut(self.lens.len()).and_then(|slot| slot.get_mut(..frame.len()));
        if let Some(slot) = slot {
            slot.copy_from_slice(frame);
            self.lens.push(frame.len());
        }
    }

    /// Sends every pending reply without waiting; replies the peer has no room for are
    /// dropped and counted, as a kernel unicast to a full socket is.
    fn flush(&mut self, state: &Mutex<State>) {
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
        if undelivered > 0 {
            lock(state).stats.replies_undeliverable += undelivered as u64;
        }
        self.lens.clear();
    }
}

/// What to do with one request.
enum Disposition {
    Reply { len: usize, delay: Option<Duration> },
    Withhold,
}

/// Handles one message from the command socket (normally one request), queueing replies.
fn answer(shared: &Shared, message: &[u8], replies: &mut ReplyBatch) {
    answer_with(shared, message, &mut |frame, delay| {
        if delay.is_some() {
            // Replies keep their order: earlier ones leave before the stall.
            replies.flush(&shared.state);
        }
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        replies.push(frame, &shared.state);
    });
}

/// Runs every request of one message through the model; `reply` gets each reply frame and
/// the delay to apply before it.
fn answer_with(shared: &Shared, message: &[u8], reply: &mut dyn FnMut(&[u8], Option<Duration>)) {
    for frame in frames(message) {
        let Ok(Frame::Request { seq, fcode, payload }) = frame else {
            lock(&shared.state).stats.malformed += 1;
            continue;
        };
        let mut out = [0u8; MAX_FRAME];
        let disposition =
            execute(&mut lock(&shared.state), seq, fcode, payload, message.len(), &mut out);
        if let Disposition::Reply { len, delay } = disposition {
            reply(out.get(..len).unwrap_or_default(), delay);
        }
    }
}

/// Applies faults, runs the model, writes the reply frame.
fn execute(
    state: &mut State,
    seq: u32,
    fcode: FCode,
    payload: &[u8],
    request_len: usize,
    out: &mut [u8],
) -> Disposition {
    let fault = take_fault(&mut state.faults, fcode);
    let now = state.now();
    let mut delay = None;
    let rc_only = match fault {
        Some(Fault::Eio { .. }) => {
            state.stats.netlink_errors += 1;
            let request_len = u32::try_from(request_len).unwrap_or(u32::MAX);
            let len = encode_netlink_error(seq, libc::EIO, request_len, out).unwrap_or(0);
            return Disposition::Reply { len, delay: None };
        }
        Some(Fault::ErrorCode { rc, .. }) => Some(rc),
        Some(Fault::Delay { duration, .. }) => {
            delay = Some(duration);
            None
        }
        _ => None,
    };
    let reply = match rc_only {
        Some(rc) => SimReply::with_rc(rc),
        None => state.model.handle(fcode, payload, now),
    };
    *state.stats.commands.entry((fcode, reply.rc())).or_default() += 1;
    if matches!(fault, Some(Fault::DropReply { .. })) {
        state.stats.replies_dropped += 1;
        return Disposition::Withhold;
    }
    let len = encode_raw_reply(seq, fcode, reply.as_bytes(), out).unwrap_or(0);
    Disposition::Reply { len, delay }
}

/// The first pending per-command fault that applies to `fcode`, consuming one use.
fn take_fault(faults: &mut Vec<Fault>, fcode: FCode) -> Option<Fault> {
    let index = faults.iter().position(|fault| match fault {
        Fault::ErrorCode { fcode: filter, .. } => filter.is_none_or(|code| code == fcode),
        Fault::DropReply { .. } | Fault::Delay { .. } | Fault::Eio { .. } => true,
        _ => false,
    })?;
    let fault = faults.get_mut(index)?;
    let taken = fault.clone();
    let count = match fault {
        Fault::ErrorCode { count, .. }
        | Fault::DropReply { count }
        | Fault::Delay { count, .. }
        | Fault::Eio { count } => count,
        _ => return Some(taken),
    };
    *count = count.saturating_sub(1);
    if *count == 0 {
        faults.remove(index);
    }
    Some(taken)
}

/// One aging tick: REMOVED events out, undeliverable ones kept for the next tick.
fn age(shared: &Shared, tick: Duration) {
    let mut state = lock(&shared.state);
    let now = state.now();
    let State { model, faults, stats, .. } = &mut *state;
    model.tick_with(now, tick, &mut |event| {
        let copies = if take_duplicate(faults) { 2 } else { 1 };
        (0..copies).all(|_| send_event(&shared.events, stats, &event))
    });
}

fn take_duplicate(faults: &mut Vec<Fault>) -> bool {
    let Some(index) =
        faults.iter().position(|fault| matches!(fault, Fault::DuplicateRemoved { .. }))
    else {
        return false;
    };
    if let Some(Fault::DuplicateRemoved { count }) = faults.get_mut(index) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            faults.remove(index);
        }
    }
    true
}

/// Sends one event; `false` if it must be retried (peer full).
fn send_event(events: &PairSocket, stats: &mut SimStats, event: &CtEvent) -> bool {
    let mut payload = [0u8; 128];
    let mut frame = [0u8; MAX_FRAME];
    let len = event.emit(&mut payload).unwrap_or(0);
    let len = encode_event(event.fcode(), payload.get(..len).unwrap_or_default(), &mut frame)
        .unwrap_or(0);
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
        lock(&self.shared.state).stats.clone()
    }

    /// Stamps the selected flows as forwarded by the hardware now (keeps them from aging).
    /// Returns how many flows were stamped.
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

    /// Applies a fault: per-command and duplicate faults queue up in order; capacity and
    /// spurious events take effect now.
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
                if !send_event(&self.shared.events, &mut state.stats, &event) {
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

    /// Drops every pending fault (capacity changes stay).
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

fn spurious_event(orig: SimTuple, reply: SimTuple, protocol: u8) -> Result<CtEvent, SimError> {
    if let (Some(o), Some(r)) = (orig.to_family::<V4>(), reply.to_family::<V4>()) {
        let cmd = CtCmd::<V4>::new(Action::Removed, protocol, o, r);
        return Ok(CtEvent::V4(CtChange::removed(&cmd)));
    }
    if let (Some(o), Some(r)) = (orig.to_family::<V6>(), reply.to_family::<V6>()) {
        let cmd = CtCmd::<V6>::new(Action::Removed, protocol, o, r);
        return Ok(CtEvent::V6(CtChange::removed(&cmd)));
    }
    Err(SimError::Fault("original and reply tuples are of different families"))
}
