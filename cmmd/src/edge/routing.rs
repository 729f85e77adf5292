//! The daemon's rtnetlink I/O: events, route lookups and dumps.
//!
//! Route lookups are sent without waiting; at most [`MAX_LOOKUPS`] are in flight so the
//! answers always fit the socket's buffer (a reply that does not fit is dropped by the kernel),
//! and a lookup unanswered for [`LOOKUP_TIMEOUT`] is sent again, then reported to the engine as
//! failed. Dumps (start-up, and after an rtnetlink overrun) run on their own socket, one kind
//! after the other; a re-dump that cannot complete (a request refused, an error answer, the
//! dump socket overrun) is reported to the engine, which retries it with back-off.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use crate::core::engine::Engine;
use crate::core::net::NetView;
use crate::core::route::{Lookup, RouteError};
use crate::edge::rtnl::{self, DumpKind, NlSocket, Recv, RtnlMsg};

/// Route lookups in flight at most.
pub(crate) const MAX_LOOKUPS: usize = 256;
/// A lookup unanswered this long is sent again.
pub(crate) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
const LOOKUP_TRIES: u8 = 3;
const RX: usize = 64 * 1024;

struct InFlight {
    lookup: Lookup,
    sent: Instant,
    tries: u8,
}

/// Counters of the rtnetlink sockets.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RtnlCounters {
    /// Messages skipped as malformed.
    pub malformed: u64,
    /// Lookups sent again after a timeout.
    pub lookup_retries: u64,
    /// Lookups given up.
    pub lookup_failures: u64,
}

/// The sockets and the lookup bookkeeping.
pub(crate) struct Routing {
    /// Multicast groups.
    pub(crate) events: NlSocket,
    /// Route lookups.
    pub(crate) lookups: NlSocket,
    /// Dumps.
    pub(crate) dumps: NlSocket,
    queue: VecDeque<Lookup>,
    in_flight: HashMap<u32, InFlight>,
    net_dump: NetDump,
    rx: Vec<u8>,
    msgs: Vec<RtnlMsg>,
    /// Counters.
    pub(crate) counters: RtnlCounters,
}

fn apply(msg: RtnlMsg, engine: &mut Engine, now: Instant) {
    match msg {
        RtnlMsg::Link(link) => engine.on_link(link, now),
        RtnlMsg::LinkGone(index) => engine.on_link_removed(index, now),
        RtnlMsg::Address { ifindex, addr, added } => engine.on_address(ifindex, addr, added, now),
        RtnlMsg::Neighbour(n) => engine.on_neighbour(n, now),
        RtnlMsg::NeighbourGone { ifindex, addr } => engine.on_neighbour_removed(ifindex, addr, now),
        RtnlMsg::Route { prefix, .. } => engine.on_route_change(Some(prefix), now),
        RtnlMsg::Rule => engine.on_route_change(None, now),
        RtnlMsg::Done { .. } | RtnlMsg::Error { .. } => {}
    }
}

/// Fill a view with blocking dumps (start-up, before the loop runs).
pub(crate) fn initial_view(view: &mut NetView) -> io::Result<()> {
    let socket = NlSocket::route(&[])?;
    let mut rx = vec![0u8; RX];
    let mut msgs = Vec::new();
    for (seq, kind) in [(1, DumpKind::Links), (2, DumpKind::Addresses), (3, DumpKind::Neighbours)] {
        socket.send(&rtnl::dump_request(kind, seq))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        'dump: loop {
            let len = match socket.recv(&mut rx)? {
                Recv::Data(len) => len,
                Recv::Overrun => {
                    return Err(io::Error::other("rtnetlink overrun during the initial dump"));
                }
                Recv::Empty => {
                    if Instant::now() > deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "rtnetlink dump timed out",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            msgs.clear();
            rtnl::decode(&rx[..len], &mut msgs);
            for msg in msgs.drain(..) {
                match msg {
                    RtnlMsg::Link(link) => {
                        view.upsert_link(link);
                    }
                    RtnlMsg::Address { ifindex, addr, added: true } => {
                        view.add_address(ifindex, addr)
                    }
                    RtnlMsg::Neighbour(n) => {
                        view.upsert_neighbour(n);
                    }
                    RtnlMsg::Done { seq: s } if s == seq => break 'dump,
                    RtnlMsg::Error { seq: s, errno } if s == seq && errno != 0 => {
                        return Err(io::Error::from_raw_os_error(errno));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

impl Routing {
    /// Open the sockets; `event_buffer` bytes of receive buffer on the subscribed one.
    pub(crate) fn open(event_buffer: usize) -> io::Result<Routing> {
        let events = NlSocket::route(&rtnl::GROUPS)?;
        let effective = events.set_receive_buffer(event_buffer)?;
        super::warn_if_smaller("rtnetlink event", event_buffer, effective);
        let lookups = NlSocket::route(&[])?;
        lookups.set_receive_buffer(1 << 20)?;
        let dumps = NlSocket::route(&[])?;
        dumps.set_receive_buffer(4 << 20)?;
        Ok(Routing {
            events,
            lookups,
            dumps,
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            net_dump: NetDump::default(),
            rx: vec![0; RX],
            msgs: Vec::new(),
            counters: RtnlCounters::default(),
        })
    }

    /// Queue a lookup.
    pub(crate) fn lookup(&mut self, lookup: Lookup, now: Instant) {
        self.queue.push_back(lookup);
        self.pump(now);
    }

    fn pump(&mut self, now: Instant) {
        while self.in_flight.len() < MAX_LOOKUPS {
            let Some(lookup) = self.queue.pop_front() else { return };
            if self.lookups.send(&rtnl::route_lookup(lookup.request, &lookup.key)).is_err() {
                self.queue.push_front(lookup);
                return;
            }
            self.in_flight.insert(lookup.request, InFlight { lookup, sent: now, tries: 1 });
        }
    }

    /// Read lookup answers.
    pub(crate) fn read_lookups(&mut self, engine: &mut Engine, now: Instant) {
        loop {
            let len = match self.lookups.recv(&mut self.rx) {
                Ok(Recv::Data(len)) => len,
                Ok(Recv::Empty) | Err(_) => break,
                Ok(Recv::Overrun) => continue,
            };
            self.msgs.clear();
            self.counters.malformed += rtnl::decode(&self.rx[..len], &mut self.msgs) as u64;
            for msg in self.msgs.drain(..) {
                match msg {
                    RtnlMsg::Route { seq, info, .. } if self.in_flight.remove(&seq).is_some() => {
                        engine.on_route_answer(seq, Ok(info), now);
                    }
                    RtnlMsg::Error { seq, errno }
                        if errno != 0 && self.in_flight.remove(&seq).is_some() =>
                    {
                        engine.on_route_answer(seq, Err(RouteError { errno }), now);
                    }
                    _ => {}
                }
            }
        }
        self.pump(now);
    }

    /// Retry or fail lookups that were not answered.
    pub(crate) fn expire_lookups(&mut self, engine: &mut Engine, now: Instant) {
        let late: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, f)| now >= f.sent + LOOKUP_TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        for request in late {
            let Some(mut f) = self.in_flight.remove(&request) else { continue };
            if f.tries >= LOOKUP_TRIES {
                self.counters.lookup_failures += 1;
                engine.on_route_answer(request, Err(RouteError { errno: libc::ETIMEDOUT }), now);
                continue;
            }
            self.counters.lookup_retries += 1;
            f.tries += 1;
            f.sent = now;
            if self.lookups.send(&rtnl::route_lookup(request, &f.lookup.key)).is_ok() {
                self.in_flight.insert(request, f);
            } else {
                self.queue.push_front(f.lookup);
            }
        }
        self.pump(now);
    }

    /// When a lookup must be looked at again.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.values().map(|f| f.sent + LOOKUP_TIMEOUT).min()
    }

    /// Read multicast events; returns true if the budget ran out.
    pub(crate) fn read_events(&mut self, engine: &mut Engine, now: Instant) -> bool {
        for _ in 0..256 {
            let len = match self.events.recv(&mut self.rx) {
                Ok(Recv::Data(len)) => len,
                Ok(Recv::Empty) | Err(_) => return false,
                Ok(Recv::Overrun) => {
                    tracing::warn!("rtnetlink overrun: re-dumping links, addresses and neighbours");
                    engine.on_rtnl_overrun(now);
                    continue;
                }
            };
            self.msgs.clear();
            self.counters.malformed += rtnl::decode(&self.rx[..len], &mut self.msgs) as u64;
            for msg in self.msgs.drain(..) {
                apply(msg, engine, now);
            }
        }
        true
    }

    /// Re-dump links, addresses and neighbours (after an overrun). The view is cleared once
    /// the first request is out; a request the kernel refuses is reported to the engine,
    /// which retries with back-off.
    pub(crate) fn start_net_dump(&mut self, engine: &mut Engine, now: Instant) {
        if self.net_dump.under_way() {
            return;
        }
        let dumps = &self.dumps;
        match self.net_dump.start(&mut |request| dumps.send(request)) {
            Ok(()) => engine.net_mut().clear(),
            Err(e) => {
                tracing::warn!(error = %e, "rtnetlink re-dump not started");
                engine.on_net_dump_failed(now);
            }
        }
    }

    /// The re-dump under way cannot complete: it is dropped and the engine retries it.
    fn net_dump_failed(&mut self, engine: &mut Engine, why: &str, now: Instant) {
        if self.net_dump.under_way() {
            tracing::warn!(why, "rtnetlink re-dump failed");
            self.net_dump.abort();
            engine.on_net_dump_failed(now);
        }
    }

    /// Read dump replies.
    pub(crate) fn read_dumps(&mut self, engine: &mut Engine, now: Instant) {
        loop {
            let len = match self.dumps.recv(&mut self.rx) {
                Ok(Recv::Data(len)) => len,
                Ok(Recv::Empty) => return,
                Ok(Recv::Overrun) => {
                    self.net_dump_failed(
                        engine,
                        "dump socket overrun: part of the dump is lost",
                        now,
                    );
                    continue;
                }
                Err(e) => {
                    self.net_dump_failed(engine, &e.to_string(), now);
                    return;
                }
            };
            self.msgs.clear();
            rtnl::decode(&self.rx[..len], &mut self.msgs);
            let msgs: Vec<RtnlMsg> = self.msgs.drain(..).collect();
            for msg in msgs {
                match msg {
                    RtnlMsg::Error { seq, errno }
                        if errno != 0 && self.net_dump.is_running(seq) =>
                    {
                        self.net_dump_failed(engine, "the kernel refused a dump", now);
                    }
                    RtnlMsg::Done { seq } | RtnlMsg::Error { seq, .. }
                        if self.net_dump.is_running(seq) =>
                    {
                        let dumps = &self.dumps;
                        match self.net_dump.ended(&mut |request| dumps.send(request)) {
                            Ok(true) => engine.on_net_resynced(now),
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "rtnetlink re-dump not continued");
                                engine.on_net_dump_failed(now);
                            }
                        }
                    }
                    other => apply(other, engine, now),
                }
            }
        }
    }
}

/// The re-dump of links, addresses and neighbours on the dump socket, one kind after the
/// other (the kernel runs one dump at a time per socket). A request the socket refuses ends
/// the re-dump at once (nothing stays queued behind it), so the next one can start.
struct NetDump {
    /// Kinds still to dump.
    queue: VecDeque<DumpKind>,
    /// Sequence number of the last request.
    seq: u32,
    /// Sequence number of the dump being read.
    running: Option<u32>,
}

impl Default for NetDump {
    fn default() -> Self {
        NetDump { queue: VecDeque::new(), seq: 100, running: None }
    }
}

impl NetDump {
    /// A re-dump is under way.
    fn under_way(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }

    /// `seq` is the dump being read.
    fn is_running(&self, seq: u32) -> bool {
        self.running == Some(seq)
    }

    /// Begin with the links.
    fn start(&mut self, send: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        self.queue.extend([DumpKind::Links, DumpKind::Addresses, DumpKind::Neighbours]);
        self.next(send)
    }

    fn next(&mut self, send: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let Some(kind) = self.queue.pop_front() else { return Ok(()) };
        self.seq += 1;
        match send(&rtnl::dump_request(kind, self.seq)) {
            Ok(()) => {
                self.running = Some(self.seq);
                Ok(())
            }
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// The dump being read ended: go on with the next kind. `Ok(true)` when the last one
    /// ended; an error when the next request was refused (the re-dump is over).
    fn ended(&mut self, send: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<bool> {
        self.running = None;
        if self.queue.is_empty() {
            return Ok(true);
        }
        self.next(send).map(|()| false)
    }

    /// Forget the re-dump under way.
    fn abort(&mut self) {
        self.running = None;
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds of the dump requests in `sent`, in order.
    fn kinds(sent: &[Vec<u8>]) -> Vec<u16> {
        sent.iter().map(|bytes| u16::from_ne_bytes([bytes[4], bytes[5]])).collect()
    }

    #[test]
    fn a_redump_whose_request_is_refused_does_not_stop_the_next_one() {
        let refused = &mut |_: &[u8]| Err(io::Error::from_raw_os_error(libc::ENOBUFS));
        let mut sent = Vec::new();
        let mut accepted = |request: &[u8]| {
            sent.push(request.to_vec());
            Ok(())
        };
        // The first request is refused: nothing is under way afterwards.
        let mut dump = NetDump::default();
        let _ = dump.start(refused);
        assert!(!dump.under_way());
        let _ = dump.start(&mut accepted);
        // Links went out; the addresses are refused after the links ended.
        let mut links_done = NetDump::default();
        let _ = links_done.start(&mut |_| Ok(()));
        let _ = links_done.ended(refused);
        assert!(!links_done.under_way(), "a refused request ends the re-dump");
        assert_eq!(kinds(&sent), [libc::RTM_GETLINK]);
    }
}
