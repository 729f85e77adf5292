//! Conntrack load for the reliability tests: entries created and deleted in bulk through
//! ctnetlink (the kernel's own API, many requests per datagram, every one acknowledged), and
//! an independent witness that counts the events the kernel sends.
//!
//! Both act on the table of the namespace they are created in: build them inside
//! [`Netns::run_in`]. Their sockets stay in that namespace when moved to other threads.
//!
//! Contract of the [`Injector`]: every request is counted exactly once, as done (the kernel
//! acknowledged it) or refused (the kernel answered an errno), once [`Injector::finish`] has
//! returned; nothing is silently lost (an overrun of its own acknowledgement socket is an
//! error). Contract of the [`EventWitness`]: it counts NEW, UPDATE and DESTROY events with a
//! receive buffer large enough that it does not overrun, and says so when it did.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use conntrack::request::{self, Create};
use conntrack::{CtSocket, Datagram, Delivery, EventKind, Message, RecvError, Status, TcpState};

use crate::netns::Netns;

/// Receive buffer of the injector's socket (acknowledgements) and of the witness (events).
const ACK_BUFFER: usize = 8 << 20;
const WITNESS_BUFFER: usize = 64 << 20;
/// Longest wait for outstanding acknowledgements in [`Injector::finish`].
const ACK_WAIT: Duration = Duration::from_secs(10);

/// An ESTABLISHED, ASSURED TCP entry `src:sport → dst:dport` with no NAT, as `conntrack -I`
/// would create it; the kernel expires it after `timeout` seconds.
pub fn established_tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, timeout: u32) -> Create {
    let orig = conntrack::Tuple::new(src, dst, 6, sport, dport);
    let mut entry = Create::new(orig, timeout);
    entry.tcp_state = Some(TcpState::Established);
    entry.status = Status::SEEN_REPLY | Status::ASSURED;
    entry
}

/// What an [`Injector`] did, as the kernel acknowledged it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InjectStats {
    /// Creations the kernel acknowledged.
    pub created: u64,
    /// Deletions the kernel acknowledged.
    pub deleted: u64,
    /// Creations the kernel refused (`EEXIST`, table full…).
    pub create_refused: u64,
    /// Deletions the kernel refused (`ENOENT`: the entry was already gone).
    pub delete_refused: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Create,
    Delete,
}

/// Creates and deletes conntrack entries in batches (`per_datagram` requests per `send`).
pub struct Injector {
    socket: CtSocket,
    batch: Vec<u8>,
    queued: usize,
    per_datagram: usize,
    outstanding: HashMap<u32, Pending>,
    rx: Vec<u8>,
    stats: InjectStats,
}

impl Injector {
    /// A request socket in the calling thread's namespace.
    pub fn new(per_datagram: usize) -> io::Result<Injector> {
        let socket = CtSocket::requests()?;
        socket.set_receive_buffer(ACK_BUFFER)?;
        socket.set_nonblocking(true)?;
        Ok(Injector {
            socket,
            batch: Vec::with_capacity(per_datagram.max(1) * 160),
            queued: 0,
            per_datagram: per_datagram.max(1),
            outstanding: HashMap::new(),
            rx: vec![0; 64 * 1024],
            stats: InjectStats::default(),
        })
    }

    /// Queue the creation of `entry` (sent when the batch is full or on [`Injector::flush`]).
    pub fn create(&mut self, entry: &Create) -> io::Result<()> {
        let seq = self.socket.next_seq();
        request::create(&mut self.batch, entry, seq);
        self.queue(seq, Pending::Create)
    }

    /// Queue the deletion of the entry whose original tuple is `orig` (zone 0).
    pub fn delete(&mut self, orig: &conntrack::Tuple) -> io::Result<()> {
        let seq = self.socket.next_seq();
        request::delete(&mut self.batch, orig, 0, None, seq);
        self.queue(seq, Pending::Delete)
    }

    fn queue(&mut self, seq: u32, kind: Pending) -> io::Result<()> {
        self.outstanding.insert(seq, kind);
        self.queued += 1;
        if self.queued >= self.per_datagram { self.flush() } else { Ok(()) }
    }

    /// Send what is queued and read the acknowledgements that have arrived.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.queued > 0 {
            self.socket.send(&self.batch)?;
            self.batch.clear();
            self.queued = 0;
        }
        self.read_acks()
    }

    fn read_acks(&mut self) -> io::Result<()> {
        loop {
            let len = match self.socket.recv(&mut self.rx) {
                Ok(len) => len,
                Err(RecvError::WouldBlock) => return Ok(()),
                Err(RecvError::Overrun) => {
                    return Err(io::Error::other("the injector's acknowledgements overran"));
                }
                Err(e) => return Err(io::Error::other(e.to_string())),
            };
            let datagram = self.rx.get(..len).unwrap_or_default();
            for message in Datagram::new(datagram).flatten() {
                let Message::Error { seq, errno } = message else { continue };
                let stats = &mut self.stats;
                match (self.outstanding.remove(&seq), errno) {
                    (Some(Pending::Create), 0) => stats.created += 1,
                    (Some(Pending::Create), _) => stats.create_refused += 1,
                    (Some(Pending::Delete), 0) => stats.deleted += 1,
                    (Some(Pending::Delete), _) => stats.delete_refused += 1,
                    (None, _) => {}
                }
            }
        }
    }

    /// Requests sent whose acknowledgement has not been read yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len() + self.queued
    }

    /// Counts so far (acknowledged requests only).
    pub fn stats(&self) -> InjectStats {
        self.stats
    }

    /// Send the rest and wait for every acknowledgement.
    pub fn finish(mut self) -> io::Result<InjectStats> {
        self.flush()?;
        let deadline = Instant::now() + ACK_WAIT;
        while !self.outstanding.is_empty() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} requests never acknowledged", self.outstanding.len()),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
            self.read_acks()?;
        }
        Ok(self.stats)
    }
}

/// Event counts seen by an [`EventWitness`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// NEW events.
    pub new: u64,
    /// UPDATE events.
    pub update: u64,
    /// DESTROY events.
    pub destroy: u64,
    /// Overruns of the witness's own socket (0, or its counts are not a reference).
    pub overruns: u64,
}

#[derive(Default)]
struct SharedCounts {
    new: AtomicU64,
    update: AtomicU64,
    destroy: AtomicU64,
    overruns: AtomicU64,
}

/// Counts the conntrack events of a namespace on a thread of its own, until dropped.
pub struct EventWitness {
    counts: Arc<SharedCounts>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EventWitness {
    /// Subscribe in `netns` and start counting.
    pub fn start(netns: &Netns) -> io::Result<EventWitness> {
        let socket = netns.run_in(|| -> io::Result<CtSocket> {
            let socket = CtSocket::events()?;
            socket.set_receive_buffer(WITNESS_BUFFER)?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })??;
        let counts = Arc::new(SharedCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (counting, stopping) = (Arc::clone(&counts), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut rx = vec![0u8; 256 * 1024];
            while !stopping.load(Ordering::Relaxed) {
                match socket.recv(&mut rx) {
                    Ok(len) => count(rx.get(..len).unwrap_or_default(), &counting),
                    Err(RecvError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => {
                        counting.overruns.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(EventWitness { counts, stop, thread: Some(thread) })
    }

    /// The counts so far.
    pub fn counts(&self) -> EventCounts {
        let c = &self.counts;
        EventCounts {
            new: c.new.load(Ordering::Relaxed),
            update: c.update.load(Ordering::Relaxed),
            destroy: c.destroy.load(Ordering::Relaxed),
            overruns: c.overruns.load(Ordering::Relaxed),
        }
    }
}

fn count(datagram: &[u8], counts: &SharedCounts) {
    for message in Datagram::new(datagram).flatten() {
        let Message::Conntrack(m) = message else { continue };
        let counter = match m.delivery() {
            Delivery::Event(EventKind::New) => &counts.new,
            Delivery::Event(EventKind::Update) => &counts.update,
            Delivery::Event(EventKind::Destroy) => &counts.destroy,
            _ => continue,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for EventWitness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
