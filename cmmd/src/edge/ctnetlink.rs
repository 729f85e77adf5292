//! The daemon's conntrack I/O: the event socket, the dump socket and the request socket.
//!
//! Events are read until the socket is empty or a per-turn budget is spent (the loop comes
//! back at once when the budget ran out: mio is edge-triggered). Each datagram is parsed in
//! place into `conntrack::Conntrack` values (no allocation) and handed to the engine as
//! [`CtInfo`]. `ENOBUFS` is an overrun the engine answers with a resync dump. Dumps run on
//! their own socket, so events keep flowing during a resync; the initial dump is received by
//! a thread of its own ([`DumpReceiver`], on a socket of its own), so that at start the loop
//! applies one datagram while the kernel builds the next. Kernel updates (keepalive refreshes,
//! deletes, the permanent bit) go out on a third socket without waiting for answers.
//!
//! The kernel's dialect: one [`DialectTracker`] reads both the events and the dumps, so an
//! ASK kernel's fast-path blocks and QoS connmark are recognised once (or pinned by
//! `netlink.conntrack_dialect`) and read the same way on both sockets. Attributes that do not
//! decode are skipped by the crate and counted here, per attribute. `IPS_PERMANENT` is set and
//! cleared with the ASK kernel's status-and-id request, with the bit of the dialect found
//! (`keepalive.permanent_bit` pins it); on a kernel that reads as stock there is no such bit,
//! and the requests are counted as not sent.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use conntrack::{
    Conntrack, CtSocket, Datagram, Delivery, DialectSetting, DialectTracker, EntryAttr, EventKind,
    KernelVersion, Message, PermanentBit, RecvBatch, RecvError, request,
};

use super::ct_dump::{DumpChunk, DumpReceiver};
use crate::core::engine::{CtEventKind, Engine};
use crate::core::flow::{FlowKey, Tuple};
use crate::core::policy::{CtInfo, FastPathInfo};

/// `recvmmsg` calls on the event socket per loop turn before other sources get a turn.
const EVENT_BUDGET: usize = 64;
/// Datagrams per `recvmmsg` call, and the room for each (an event is a few hundred bytes).
const BATCH: usize = 64;
const SLOT: usize = 4096;
/// Dump datagrams applied per loop turn.
const DUMP_BUDGET: usize = 256;
/// At most this many reads when dropping the events queued before an overrun.
const DISCARD_CALLS: usize = 1 << 16;
/// Receive buffer of the loop (the kernel packs many messages into dump datagrams).
const RX: usize = 256 * 1024;

/// Translate the crate's value into the engine's.
pub(crate) fn ct_info(ct: &Conntrack) -> CtInfo {
    let tuple = |t: &conntrack::Tuple| Tuple {
        src: t.src,
        dst: t.dst,
        src_port: t.src_port,
        dst_port: t.dst_port,
    };
    let fastpath = |fp: Option<conntrack::FastPath>| {
        fp.map(|fp| FastPathInfo {
            ifindex: fp.ifindex,
            iif: fp.iif,
            underlying_iif: fp.underlying_iif,
            mark: fp.mark,
        })
    };
    CtInfo {
        key: FlowKey { zone: ct.zone, proto: ct.orig.proto, orig: tuple(&ct.orig) },
        reply: tuple(&ct.reply),
        status: ct.status,
        tcp_state: ct.tcp.map(|t| t.state),
        mark: ct.mark.unwrap_or(0),
        qos_connmark: ct.ask.qos_connmark,
        id: ct.id.unwrap_or(0),
        timeout: ct.timeout,
        helper: ct.has_helper,
        seq_adjust: ct.seq_adjust,
        fastpath: [fastpath(ct.ask.orig), fastpath(ct.ask.reply)],
    }
}

/// Decode an entry in the kernel's dialect; count what was skipped, or the message when the
/// entry cannot be understood.
fn decode(
    dialect: &mut DialectTracker,
    counters: &mut CtCounters,
    message: &conntrack::CtMessage<'_>,
) -> Option<Conntrack> {
    match dialect.decode(message) {
        Ok(ct) => {
            for attr in ct.skipped.iter() {
                if let Some(count) = counters.skipped.get_mut(attr.index()) {
                    *count += 1;
                }
            }
            Some(ct)
        }
        Err(_) => {
            counters.malformed += 1;
            None
        }
    }
}

fn kernel_tuple(key: &FlowKey) -> conntrack::Tuple {
    conntrack::Tuple::new(
        key.orig.src,
        key.orig.dst,
        key.proto,
        key.orig.src_port,
        key.orig.dst_port,
    )
}

/// Counters of the conntrack sockets.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CtCounters {
    /// Messages that failed to decode (skipped, counted).
    pub malformed: u64,
    /// Kernel errors answering our updates/deletes (ENOENT when the entry went away...).
    pub request_errors: u64,
    /// Updates and deletes sent.
    pub(crate) requests: u64,
    /// Datagrams read from the event socket (one event each).
    pub event_datagrams: u64,
    /// Datagrams truncated by a too-small buffer.
    pub truncated: u64,
    /// Events discarded unread after an overrun: queued before the resync dump, they are older
    /// than it.
    pub discarded: u64,
    /// Attributes that did not decode and were skipped (the entry was kept), by
    /// [`EntryAttr::index`].
    pub skipped: [u64; EntryAttr::COUNT],
    /// Permanent-bit requests not sent: the kernel reads as stock (no such bit), or the entry's
    /// id is unknown.
    pub permanent_unsent: u64,
}

/// The three sockets.
pub(crate) struct CtIo {
    /// Subscribed to NEW/UPDATE/DESTROY.
    pub(crate) events: CtSocket,
    /// Dumps after the initial one, read on the loop.
    pub(crate) dumps: CtSocket,
    /// The initial dump, received on a thread of its own, until it ends.
    initial_dump: Option<DumpReceiver>,
    /// The initial dump was requested (later dumps go on `dumps`).
    initial_requested: bool,
    /// Updates and deletes.
    pub(crate) requests: CtSocket,
    /// Effective receive buffer of the event socket.
    pub(crate) event_buffer: usize,
    dumps_in_flight: HashMap<u32, u16>,
    /// The kernel's conntrack dialect, shared by the event and dump sockets.
    pub(crate) dialect: DialectTracker,
    /// The running kernel's version, the fallback for the permanent bit of an ASK numbering
    /// that does not tell it.
    kernel: Option<KernelVersion>,
    /// `keepalive.permanent_bit` when pinned.
    permanent_pinned: Option<PermanentBit>,
    /// The dialect last written to the log.
    dialect_logged: Option<conntrack::Dialect>,
    batch: RecvBatch,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Counters.
    pub(crate) counters: CtCounters,
}

impl CtIo {
    /// Open and configure the sockets, reading the kernel's messages in `dialect`; a pinned
    /// `permanent_bit` overrides the dialect's. The dump thread calls `wake` when it has
    /// handed over dump datagrams ([`CtIo::read_dump`] applies them).
    pub(crate) fn open(
        event_buffer: usize,
        reliable_destroy: bool,
        dialect: DialectSetting,
        permanent_bit: Option<PermanentBit>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> io::Result<CtIo> {
        let events = CtSocket::events()?;
        events.set_nonblocking(true)?;
        let effective = events.set_receive_buffer(event_buffer)?;
        if reliable_destroy {
            events.set_broadcast_error(true)?;
        }
        let dumps = CtSocket::requests()?;
        dumps.set_nonblocking(true)?;
        dumps.set_receive_buffer(4 << 20)?;
        let initial = CtSocket::requests()?;
        initial.set_receive_buffer(4 << 20)?;
        let initial_dump = Some(DumpReceiver::spawn(initial, wake)?);
        let requests = CtSocket::requests()?;
        requests.set_nonblocking(true)?;
        requests.set_receive_buffer(1 << 20)?;
        Ok(CtIo {
            events,
            dumps,
            initial_dump,
            initial_requested: false,
            requests,
            event_buffer: effective,
            dumps_in_flight: HashMap::new(),
            dialect: DialectTracker::new(dialect),
            kernel: KernelVersion::running().ok().flatten(),
            permanent_pinned: permanent_bit,
            dialect_logged: None,
            batch: RecvBatch::new(BATCH, SLOT),
            rx: vec![0; RX],
            tx: Vec::with_capacity(512),
            counters: CtCounters::default(),
        })
    }

    /// Read events; returns true if the budget ran out before the socket was empty.
    pub(crate) fn read_events(&mut self, engine: &mut Engine, now: Instant) -> bool {
        for _ in 0..EVENT_BUDGET {
            let received = match self.events.recv_batch(&mut self.batch) {
                Ok(n) => n,
                Err(RecvError::WouldBlock) => return false,
                Err(RecvError::Overrun) => {
                    let discarded = self.discard_queued_events();
                    tracing::warn!(
                        discarded,
                        "conntrack event socket overrun (ENOBUFS): events lost; resyncing"
                    );
                    engine.on_overrun(now);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "conntrack event socket error");
                    return false;
                }
            };
            self.counters.event_datagrams += received as u64;
            for i in 0..received {
                if self.batch.truncated(i) {
                    // Part of a datagram was lost: as good as an overrun.
                    self.counters.truncated += 1;
                    engine.on_overrun(now);
                    continue;
                }
                let Some(datagram) = self.batch.datagram(i) else { continue };
                for message in Datagram::new(datagram) {
                    match message {
                        Ok(Message::Conntrack(m)) => {
                            let kind = match m.delivery() {
                                Delivery::Event(EventKind::New) => CtEventKind::New,
                                Delivery::Event(EventKind::Update) => CtEventKind::Update,
                                Delivery::Event(EventKind::Destroy) => CtEventKind::Destroy,
                                _ => continue,
                            };
                            if let Some(ct) = decode(&mut self.dialect, &mut self.counters, &m) {
                                engine.on_conntrack(kind, &ct_info(&ct), now);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {
                            self.counters.malformed += 1;
                            break;
                        }
                    }
                }
            }
            if received < BATCH {
                return false;
            }
        }
        true
    }

    /// Log the kernel's dialect once the initial dump is read (`ready`), and again if it is
    /// recognised later (an ASK kernel whose table was empty at start).
    pub(crate) fn log_dialect(&mut self, ready: bool) {
        let dialect = self.dialect.dialect();
        if !ready || self.dialect_logged == Some(dialect) {
            return;
        }
        self.dialect_logged = Some(dialect);
        let kernel = self.kernel.map_or_else(|| "unknown".to_owned(), |k| k.to_string());
        let permanent = self.permanent_bit().map_or_else(|| "none".to_owned(), |b| b.to_string());
        tracing::info!(
            dialect = %self.dialect.state(),
            kernel,
            ips_permanent_bit = permanent,
            "conntrack dialect"
        );
    }

    /// The `IPS_PERMANENT` bit in force: pinned, else the dialect's; `None` on a kernel that
    /// reads as stock.
    pub(crate) fn permanent_bit(&self) -> Option<PermanentBit> {
        self.permanent_pinned.or_else(|| self.dialect.permanent_bit(self.kernel))
    }

    /// After an overrun: drop what the event socket still holds. The kernel reports ENOBUFS
    /// before the events queued ahead of the loss, so those are older than the resync dump
    /// requested next; applied during that dump they would mark connections that already
    /// ended as seen, and the sweep would keep them. Bounded by twice the buffer size (the
    /// kernel keeps queueing new events meanwhile); returns the datagrams dropped.
    fn discard_queued_events(&mut self) -> u64 {
        let (mut bytes, mut datagrams) = (0, 0);
        for _ in 0..DISCARD_CALLS {
            if bytes >= 2 * self.event_buffer {
                break;
            }
            match self.events.recv_batch(&mut self.batch) {
                Ok(n) => {
                    datagrams += n as u64;
                    bytes += (0..n)
                        .filter_map(|i| self.batch.datagram(i))
                        .map(<[u8]>::len)
                        .sum::<usize>();
                    if n < BATCH {
                        break;
                    }
                }
                Err(RecvError::Overrun) => {}
                Err(_) => break,
            }
        }
        self.counters.discarded += datagrams;
        datagrams
    }

    /// Start a dump for the engine's `generation`: the first on the initial dump's thread,
    /// the others on the loop's dump socket.
    pub(crate) fn start_dump(&mut self, generation: u16) -> io::Result<()> {
        let seq = self.dumps.next_seq();
        self.tx.clear();
        request::dump(&mut self.tx, None, seq);
        match self.initial_dump.as_ref().filter(|_| !self.initial_requested) {
            Some(thread) => {
                thread.request(seq, self.tx.clone())?;
                self.initial_requested = true;
            }
            None => self.dumps.send(&self.tx)?,
        }
        self.dumps_in_flight.insert(seq, generation);
        Ok(())
    }

    /// Apply dump replies: those the initial dump's thread handed over, then those on the
    /// loop's dump socket; returns true if there may be more to apply now.
    pub(crate) fn read_dump(&mut self, engine: &mut Engine, now: Instant) -> bool {
        let mut budget = DUMP_BUDGET;
        if self.read_initial_dump(engine, now, &mut budget) {
            return true;
        }
        self.read_dump_socket(engine, now, budget)
    }

    /// Apply what the initial dump's thread handed over (it wakes the loop for each batch;
    /// the dump socket has its own readiness, so a wake-up does not read it); returns true
    /// if there may be more to apply now.
    pub(crate) fn read_thread_dump(&mut self, engine: &mut Engine, now: Instant) -> bool {
        let mut budget = DUMP_BUDGET;
        self.read_initial_dump(engine, now, &mut budget)
    }

    /// The initial dump thread's datagrams, within `budget`; true when the budget ran out.
    fn read_initial_dump(&mut self, engine: &mut Engine, now: Instant, budget: &mut usize) -> bool {
        while let Some(thread) = self.initial_dump.as_ref() {
            if *budget == 0 {
                return true;
            }
            *budget -= 1;
            match thread.try_next() {
                Some(DumpChunk::Datagram(datagram)) => {
                    let ended = self.apply_dump(&datagram, engine, now);
                    if ended {
                        // The thread ends with its receiver; later dumps run on the loop.
                        self.initial_dump = None;
                    }
                }
                Some(DumpChunk::Failed(error)) => {
                    self.fail_dumps(&error, engine, now);
                    self.initial_dump = None;
                }
                None => break,
            }
        }
        false
    }

    /// Datagrams on the loop's dump socket, within `budget`; true when the budget ran out.
    fn read_dump_socket(&mut self, engine: &mut Engine, now: Instant, budget: usize) -> bool {
        for _ in 0..budget {
            let len = match self.dumps.recv(&mut self.rx) {
                Ok(len) => len,
                Err(RecvError::WouldBlock) => return false,
                Err(e) => {
                    self.fail_dumps(&e.to_string(), engine, now);
                    return false;
                }
            };
            let datagram = std::mem::take(&mut self.rx);
            self.apply_dump(datagram.get(..len).unwrap_or_default(), engine, now);
            self.rx = datagram;
        }
        true
    }

    /// Every dump in flight failed (`error`).
    fn fail_dumps(&mut self, error: &str, engine: &mut Engine, now: Instant) {
        tracing::warn!(error, "conntrack dump failed");
        for (_, generation) in self.dumps_in_flight.drain() {
            engine.on_dump_failed(generation, now);
        }
    }

    /// Apply one dump datagram; returns whether it ended a dump (its `NLMSG_DONE` or error).
    fn apply_dump(&mut self, datagram: &[u8], engine: &mut Engine, now: Instant) -> bool {
        let mut ended = false;
        for message in Datagram::new(datagram) {
            match message {
                Ok(Message::Conntrack(m)) => {
                    if let Some(ct) = decode(&mut self.dialect, &mut self.counters, &m) {
                        engine.on_conntrack(CtEventKind::Dump, &ct_info(&ct), now);
                    }
                }
                Ok(Message::Done { seq }) => {
                    ended = true;
                    if let Some(generation) = self.dumps_in_flight.remove(&seq) {
                        engine.on_dump_done(generation, now);
                    }
                }
                Ok(Message::Error { seq, errno }) if errno != 0 => {
                    ended = true;
                    tracing::warn!(errno, "conntrack dump refused");
                    if let Some(generation) = self.dumps_in_flight.remove(&seq) {
                        engine.on_dump_failed(generation, now);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    self.counters.malformed += 1;
                    break;
                }
            }
        }
        ended
    }

    fn send_request(&mut self) {
        self.counters.requests += 1;
        if let Err(e) = self.requests.send(&self.tx) {
            self.counters.request_errors += 1;
            tracing::debug!(error = %e, "conntrack request not sent");
        }
    }

    /// Set a kernel conntrack's timeout.
    pub(crate) fn refresh(&mut self, key: &FlowKey, timeout: u32) {
        self.tx.clear();
        let seq = self.requests.next_seq();
        let change = request::Update { timeout: Some(timeout), ..request::Update::default() };
        request::update(&mut self.tx, &kernel_tuple(key), key.zone, change, seq, false);
        self.send_request();
    }

    /// Set or clear `IPS_PERMANENT` on the kernel conntrack `key` whose id is `id`, with the
    /// ASK kernel's request (status and id, which changes that bit alone and sends no event).
    pub(crate) fn set_permanent(&mut self, key: &FlowKey, id: u32, set: bool) {
        let Some(bit) = self.permanent_bit().filter(|_| id != 0) else {
            self.counters.permanent_unsent += 1;
            return;
        };
        self.tx.clear();
        let seq = self.requests.next_seq();
        let tuple = kernel_tuple(key);
        if set {
            request::set_permanent(&mut self.tx, &tuple, key.zone, id, bit, seq, false);
        } else {
            request::clear_permanent(&mut self.tx, &tuple, key.zone, id, seq, false);
        }
        self.send_request();
    }

    /// Delete a kernel conntrack.
    pub(crate) fn delete(&mut self, key: &FlowKey, id: u32) {
        self.tx.clear();
        let seq = self.requests.next_seq();
        request::delete(&mut self.tx, &kernel_tuple(key), key.zone, (id != 0).then_some(id), seq);
        self.send_request();
    }

    /// Read (and count) the kernel's answers to updates and deletes.
    pub(crate) fn read_request_replies(&mut self) {
        loop {
            let len = match self.requests.recv(&mut self.rx) {
                Ok(len) => len,
                Err(RecvError::WouldBlock) => return,
                Err(RecvError::Overrun) => {
                    self.counters.request_errors += 1;
                    continue;
                }
                Err(_) => return,
            };
            for message in Datagram::new(&self.rx[..len]).flatten() {
                if let Message::Error { errno, .. } = message
                    && errno != 0
                {
                    self.counters.request_errors += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack::fixtures;

    #[test]
    fn captured_events_become_engine_inputs() {
        let bytes = fixtures::TCP4_SNAT_ESTABLISHED.bytes();
        let Some(Ok(Message::Conntrack(m))) = Datagram::new(&bytes).next() else {
            panic!("fixture")
        };
        let ct = Conntrack::from_message(&m).unwrap();
        let info = ct_info(&ct);
        assert_eq!(info.key.proto, 6);
        assert_eq!(info.key.orig.src, ct.orig.src);
        assert_eq!(info.reply.src_port, ct.reply.src_port);
        assert_eq!(info.tcp_state, Some(conntrack::TcpState::Established));
        assert!(info.status.contains(conntrack::Status::ASSURED));
        assert_eq!(info.fastpath, [None, None], "a stock kernel says nothing of ingress");
    }

    /// An ASK 6.12 kernel's UPDATE: both fast-path blocks reach the engine.
    #[test]
    fn an_ask_kernel_s_fast_path_blocks_become_engine_inputs() {
        let bytes = fixtures::ASK612_TCP4_SNAT_ESTABLISHED.bytes();
        let Some(Ok(Message::Conntrack(m))) = Datagram::new(&bytes).next() else {
            panic!("fixture")
        };
        let mut dialect = DialectTracker::new(DialectSetting::Auto);
        let mut counters = CtCounters::default();
        let ct = decode(&mut dialect, &mut counters, &m).expect("decodes");
        assert_eq!(dialect.dialect().label(), "ask-6.12", "recognised by shape");
        assert_eq!(counters.malformed, 0);
        let info = ct_info(&ct);
        let orig = FastPathInfo { ifindex: 3, iif: 3, underlying_iif: 3, mark: 0 };
        let reply = FastPathInfo { ifindex: 5, iif: 5, underlying_iif: 2, mark: 0 };
        assert_eq!(info.fastpath, [Some(orig), Some(reply)]);
        assert_eq!(info.fastpath_host_end(), None);
    }

    /// A stock kernel's entry whose attribute 27 is not the 8 bytes upstream's
    /// CTA_TIMESTAMP_EVENT has: the entry is kept, the attribute skipped and counted.
    #[test]
    fn an_attribute_that_does_not_decode_is_counted_not_fatal() {
        let bytes = fixtures::ASK612_TCP4_SNAT_ESTABLISHED.bytes();
        let Some(Ok(Message::Conntrack(m))) = Datagram::new(&bytes).next() else {
            panic!("fixture")
        };
        let mut stock = DialectTracker::new("stock".parse().expect("setting"));
        let mut counters = CtCounters::default();
        let ct = decode(&mut stock, &mut counters, &m).expect("kept");
        assert_eq!(ct_info(&ct).fastpath, [None, None]);
        assert_eq!(counters.malformed, 0);
        let skipped: u64 = counters.skipped.iter().sum();
        assert!(skipped >= 1, "{:?}", counters.skipped);
        assert_eq!(counters.skipped[EntryAttr::TimestampEvent.index()], 1);
    }
}
