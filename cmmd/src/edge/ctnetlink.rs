//! The daemon's conntrack I/O: the event socket, the dump socket and the request socket.
//!
//! Events are read until the socket is empty or a per-turn budget is spent (the loop comes
//! back at once when the budget ran out: mio is edge-triggered). Each datagram is parsed in
//! place into `conntrack::Conntrack` values (no allocation) and handed to the engine as
//! [`CtInfo`]. `ENOBUFS` is an overrun the engine answers with a resync dump. Dumps run on
//! their own socket, so events keep flowing during a resync; kernel updates (keepalive
//! refreshes, deletes, status bits) go out on a third socket without waiting for answers.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use conntrack::{
    Conntrack, CtSocket, Datagram, Delivery, EventKind, Message, RecvBatch, RecvError, Status,
    request,
};

use crate::core::engine::{CtEventKind, Engine};
use crate::core::flow::{FlowKey, Tuple};
use crate::core::policy::CtInfo;

/// `recvmmsg` calls on the event socket per loop turn before other sources get a turn.
const EVENT_BUDGET: usize = 64;
/// Datagrams per `recvmmsg` call, and the room for each (an event is a few hundred bytes).
const BATCH: usize = 64;
const SLOT: usize = 4096;
/// Dump datagrams read per loop turn.
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
    CtInfo {
        key: FlowKey { zone: ct.zone, proto: ct.orig.proto, orig: tuple(&ct.orig) },
        reply: tuple(&ct.reply),
        status: ct.status,
        tcp_state: ct.tcp.map(|t| t.state),
        mark: ct.mark.unwrap_or(0),
        id: ct.id.unwrap_or(0),
        timeout: ct.timeout,
        helper: ct.has_helper,
        seq_adjust: ct.seq_adjust,
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
    /// Datagrams truncated by a too-small buffer.
    pub truncated: u64,
    /// Events discarded unread after an overrun: queued before the resync dump, they are older
    /// than it.
    pub discarded: u64,
}

/// The three sockets.
pub(crate) struct CtIo {
    /// Subscribed to NEW/UPDATE/DESTROY.
    pub(crate) events: CtSocket,
    /// Dumps.
    pub(crate) dumps: CtSocket,
    /// Updates and deletes.
    pub(crate) requests: CtSocket,
    /// Effective receive buffer of the event socket.
    pub(crate) event_buffer: usize,
    dumps_in_flight: HashMap<u32, u32>,
    batch: RecvBatch,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Counters.
    pub(crate) counters: CtCounters,
}

impl CtIo {
    /// Open and configure the sockets.
    pub(crate) fn open(event_buffer: usize, reliable_destroy: bool) -> io::Result<CtIo> {
        let events = CtSocket::events()?;
        events.set_nonblocking(true)?;
        let effective = events.set_receive_buffer(event_buffer)?;
        if reliable_destroy {
            events.set_broadcast_error(true)?;
        }
        let dumps = CtSocket::requests()?;
        dumps.set_nonblocking(true)?;
        dumps.set_receive_buffer(4 << 20)?;
        let requests = CtSocket::requests()?;
        requests.set_nonblocking(true)?;
        requests.set_receive_buffer(1 << 20)?;
        Ok(CtIo {
            events,
            dumps,
            requests,
            event_buffer: effective,
            dumps_in_flight: HashMap::new(),
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
                            match Conntrack::from_message(&m) {
                                Ok(ct) => engine.on_conntrack(kind, &ct_info(&ct), now),
                                Err(_) => self.counters.malformed += 1,
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

    /// Start a dump for the engine's `generation`.
    pub(crate) fn start_dump(&mut self, generation: u32) -> io::Result<()> {
        let seq = self.dumps.next_seq();
        self.tx.clear();
        request::dump(&mut self.tx, None, seq);
        self.dumps.send(&self.tx)?;
        self.dumps_in_flight.insert(seq, generation);
        Ok(())
    }

    /// Read dump replies; returns true if there may be more to read now.
    pub(crate) fn read_dump(&mut self, engine: &mut Engine, now: Instant) -> bool {
        for _ in 0..DUMP_BUDGET {
            let len = match self.dumps.recv(&mut self.rx) {
                Ok(len) => len,
                Err(RecvError::WouldBlock) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, "conntrack dump failed");
                    for (_, generation) in self.dumps_in_flight.drain() {
                        engine.on_dump_failed(generation, now);
                    }
                    return false;
                }
            };
            for message in Datagram::new(&self.rx[..len]) {
                match message {
                    Ok(Message::Conntrack(m)) => match Conntrack::from_message(&m) {
                        Ok(ct) => engine.on_conntrack(CtEventKind::Dump, &ct_info(&ct), now),
                        Err(_) => self.counters.malformed += 1,
                    },
                    Ok(Message::Done { seq }) => {
                        if let Some(generation) = self.dumps_in_flight.remove(&seq) {
                            engine.on_dump_done(generation, now);
                        }
                    }
                    Ok(Message::Error { seq, errno }) if errno != 0 => {
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
        }
        true
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

    /// Set a kernel conntrack's status bits.
    pub(crate) fn set_status(&mut self, key: &FlowKey, status: Status) {
        self.tx.clear();
        let seq = self.requests.next_seq();
        let change = request::Update { status: Some(status), ..request::Update::default() };
        request::update(&mut self.tx, &kernel_tuple(key), key.zone, change, seq, false);
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
        assert_ne!(info.status & Status::ASSURED, Status::empty());
    }
}
