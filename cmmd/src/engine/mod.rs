//! The sans-IO core: events and `now` in, actions and the next deadline out.
//!
//! The engine owns the flow table, the route cache, the route objects, the mirror of the
//! kernel's links/addresses/neighbours and every counter. It performs no I/O and reads no clock:
//! the daemon's loop feeds it decoded kernel messages and hardware results, executes the
//! [`Action`]s it queues, and sleeps until [`Engine::next_deadline`]. Tests drive it the same way
//! with synthetic instants.
//!
//! Invariants kept here:
//! - A route object is registered before any connection that references it, and removed only
//!   after the last connection referencing it has been removed or moved.
//! - A connection is never evicted to make room; a full table refuses and counts.
//! - Every connection that is not offloaded has a [`Reason`], and every decision is counted.
//! - Nothing is left in the hardware without a kernel conntrack: DESTROY events, resync sweeps
//!   and start-up reconciliation all withdraw what the kernel no longer has.

mod flow;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use hashbrown::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashTable};

use self::flow::{CLIENT, NO_ROUTE, ORIG, REPLY, SERVER, flag};
pub use self::flow::{Flow, FlowState};
use crate::flow::{FlowId, FlowKey, FlowTable, Tuple, key::proto};
use crate::hw::{
    CtSpec, HwEvent, HwFailure, HwOp, HwReply, HwRequest, HwResult, HwRoutes, HwTimeouts,
    RouteIdentity, RouteObjState, RouteSpec, WalkedCt,
};
use crate::net::{IfName, Link, Mac, Neighbour, NetView};
use crate::policy::{CtInfo, Dirs, Policy, Verdict, status};
use crate::route::{
    Lookup, RouteCache, RouteError, RouteInfo, RouteKey, RouteKind, RouteRef, RouteState,
};
use crate::stats::{Reason, Stats};

/// Connections waiting for the network are tried again at least this often.
const WAITING_BACKSTOP: Duration = Duration::from_secs(5);

/// Refusals the network can undo (an interface comes up, a route or an address comes back, a
/// neighbour is learnt): the connection stays tracked and waits, instead of being forgotten
/// until the next sweep (an ESTABLISHED conntrack sends no event while nothing changes).
fn waits_for_network(reason: Reason) -> bool {
    matches!(reason, Reason::NoRoute | Reason::LinkDown | Reason::NoNeighbour)
}

/// What kind of conntrack message the engine is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtEventKind {
    /// Multicast NEW.
    New,
    /// Multicast UPDATE.
    Update,
    /// Multicast DESTROY.
    Destroy,
    /// An entry of the dump requested by [`Action::Dump`].
    Dump,
}

/// How kernel conntracks of offloaded connections are kept alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveMode {
    /// Refresh CTA_TIMEOUT from the hardware's activity (stock kernels).
    Refresh,
    /// Set IPS_PERMANENT on offloaded conntracks (ASK-patched kernels).
    Permanent,
    /// Do nothing.
    Off,
}

/// What to do with the kernel conntrack when the hardware ages a connection out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnRemoved {
    /// Delete it (vendor behaviour): the next packet creates a fresh conntrack.
    Delete,
    /// Leave it to expire in the kernel.
    Expire,
}

/// The kernel's own conntrack timeouts (read from the namespace's sysctls at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelTimeouts {
    /// `nf_conntrack_tcp_timeout_established`.
    pub tcp_established: u32,
    /// `nf_conntrack_udp_timeout_stream` (ASSURED UDP).
    pub udp_stream: u32,
    /// `nf_conntrack_udp_timeout` (not ASSURED UDP).
    pub udp: u32,
}

impl Default for KernelTimeouts {
    fn default() -> Self {
        KernelTimeouts { tcp_established: 432_000, udp_stream: 120, udp: 30 }
    }
}

/// Keepalive settings.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    /// Mechanism.
    pub mode: KeepaliveMode,
    /// Shortest period between two activity polls of one connection.
    pub interval: Duration,
    /// Upper bound of a refreshed kernel timeout (`None`: the kernel's own timeout).
    pub margin: Option<Duration>,
    /// Kernel timeout refreshes per second, at most.
    pub max_refresh_per_second: u32,
    /// Bit number of IPS_PERMANENT (permanent mode).
    pub permanent_bit: u8,
    /// Reaction to hardware aging.
    pub on_removed: OnRemoved,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            mode: KeepaliveMode::Refresh,
            interval: Duration::from_secs(10),
            margin: None,
            max_refresh_per_second: 20_000,
            permanent_bit: 15,
            on_removed: OnRemoved::Delete,
        }
    }
}

/// Everything the engine is configured with.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Flow table capacity (`CMM_MAX_CONNECTIONS`).
    pub capacity: usize,
    /// Static offload rules.
    pub policy: Policy,
    /// cdx aging timeouts (sent at start).
    pub hw_timeouts: HwTimeouts,
    /// The kernel's timeouts.
    pub kernel_timeouts: KernelTimeouts,
    /// Keepalive.
    pub keepalive: Keepalive,
    /// Pass the conntrack mark to cdx as its QoS fwmark, under this mask.
    pub fwmark_mask: Option<u32>,
    /// Periodic dump-and-sweep.
    pub sweep_interval: Option<Duration>,
    /// Minimum time between two resync dumps.
    pub resync_min_interval: Duration,
    /// First back-off delay after a hardware failure (doubles up to `retry_max`).
    pub retry_base: Duration,
    /// Longest back-off delay.
    pub retry_max: Duration,
    /// Read the hardware tables at start and adopt what matches the kernel.
    pub reconcile: bool,
    /// Refused-for-room connections remembered for a retry when room appears.
    pub retry_queue: usize,
    /// Connections being programmed at once; more wait their turn (`hw_busy`). Bounds the
    /// hardware backlog, and the memory of queued commands, during bursts and cold starts.
    pub programming_window: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            capacity: 131_072,
            policy: Policy::default(),
            hw_timeouts: HwTimeouts::default(),
            kernel_timeouts: KernelTimeouts::default(),
            keepalive: Keepalive::default(),
            fwmark_mask: None,
            sweep_interval: Some(Duration::from_secs(60)),
            resync_min_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            reconcile: true,
            retry_queue: 4096,
            programming_window: 4096,
        }
    }
}

/// Something the daemon must do for the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a hardware command to the offload worker.
    Hw(HwRequest),
    /// Send an RTM_GETROUTE; answer with [`Engine::on_route_answer`].
    RouteLookup(Lookup),
    /// Dump the conntrack table (both families); feed entries with [`CtEventKind::Dump`] and
    /// finish with [`Engine::on_dump_done`] (or [`Engine::on_dump_failed`]).
    Dump {
        /// Generation to pass back.
        generation: u32,
    },
    /// Re-dump links, addresses, neighbours; then call [`Engine::on_net_resynced`].
    NetDump,
    /// Set the kernel conntrack's timeout.
    KernelRefresh {
        /// Which conntrack.
        key: FlowKey,
        /// New timeout in seconds.
        timeout: u32,
    },
    /// Set or clear status bits of the kernel conntrack (IPS_PERMANENT mode).
    KernelStatus {
        /// Which conntrack.
        key: FlowKey,
        /// Complete new status value.
        status: u32,
    },
    /// Delete the kernel conntrack.
    KernelDelete {
        /// Which conntrack.
        key: FlowKey,
        /// Its id (0 = any).
        id: u32,
    },
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    RouteRegister(u16),
    RouteUpdate(u16),
    RouteDeregister(u16),
    Ct(FlowId),
    CtDeregister(FlowId),
    Orphan,
    Poll(FlowId),
    Config,
    Walk,
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DumpKind {
    Initial,
    Resync,
    Sweep,
}

struct DumpRun {
    generation: u32,
    kind: DumpKind,
    started: Instant,
    destroyed: HashSet<(FlowKey, u32)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `start` not called yet.
    Idle,
    /// Waiting for the hardware walk.
    Walking,
    /// Waiting for the initial dump.
    Dumping,
    /// The table reflects the kernel.
    Ready,
}

/// One direction's path through the box.
#[derive(Clone, Copy, Debug)]
struct DirPath {
    ident: RouteIdentity,
    output: IfName,
    input: IfName,
    nexthop: IpAddr,
}

enum PathError {
    /// Not usable now but may become usable (neighbour, lookup).
    Wait(Reason),
    /// Not offloadable.
    Refuse(Reason),
}

/// Hardware key of a connection: cdx knows no zones.
type HwKey = (u8, Tuple);

/// The engine.
pub struct Engine {
    cfg: EngineConfig,
    epoch: Instant,
    table: FlowTable<Flow>,
    hw_index: HashTable<u32>,
    hw_hasher: DefaultHashBuilder,
    routes: RouteCache,
    hw_routes: HwRoutes,
    net: NetView,
    stats: Stats,
    actions: VecDeque<Action>,
    inflight: HashMap<u64, Pending>,
    next_tag: u64,
    timers: BinaryHeap<Reverse<(Instant, FlowId, u32)>>,
    route_retries: Vec<(Instant, u16)>,
    /// Activity polls by due time; entries of connections that ended are skipped when due
    /// and dropped in bulk once they are the majority (`stale_polls` counts them).
    polls: BinaryHeap<Reverse<(Instant, FlowId)>>,
    stale_polls: usize,
    refresh_tokens: f64,
    refresh_at: Instant,
    waiting: Vec<FlowId>,
    waiting_backstop: Option<Instant>,
    retry: HashMap<FlowKey, CtInfo>,
    retry_order: VecDeque<FlowKey>,
    active: bool,
    phase: Phase,
    dump: Option<DumpRun>,
    generation: u32,
    resync_wanted: Option<DumpKind>,
    resync_not_before: Instant,
    next_sweep: Option<Instant>,
    adoption: HashMap<HwKey, WalkedCt>,
    orphans_pending: bool,
    programming: usize,
    ready: VecDeque<FlowId>,
    external: HashMap<u64, Result<HwReply, HwFailure>>,
}

fn hw_key(key: &FlowKey) -> HwKey {
    (key.proto, key.orig)
}

impl Engine {
    /// A new engine. `net` is the initial view of links, addresses and neighbours (dumped by
    /// the daemon before [`Engine::start`]).
    pub fn new(cfg: EngineConfig, net: NetView, now: Instant) -> Engine {
        let table = FlowTable::with_capacity(cfg.capacity);
        let refresh_tokens = f64::from(cfg.keepalive.max_refresh_per_second);
        Engine {
            hw_index: HashTable::with_capacity(cfg.capacity.min(1 << 16)),
            hw_hasher: DefaultHashBuilder::default(),
            cfg,
            epoch: now,
            table,
            routes: RouteCache::default(),
            hw_routes: HwRoutes::default(),
            net,
            stats: Stats::default(),
            actions: VecDeque::new(),
            inflight: HashMap::new(),
            next_tag: 0,
            timers: BinaryHeap::new(),
            route_retries: Vec::new(),
            polls: BinaryHeap::new(),
            stale_polls: 0,
            refresh_tokens,
            refresh_at: now,
            waiting: Vec::new(),
            waiting_backstop: None,
            retry: HashMap::new(),
            retry_order: VecDeque::new(),
            active: true,
            phase: Phase::Idle,
            dump: None,
            generation: 0,
            resync_wanted: None,
            resync_not_before: now,
            next_sweep: None,
            adoption: HashMap::new(),
            orphans_pending: false,
            programming: 0,
            ready: VecDeque::new(),
            external: HashMap::new(),
        }
    }

    fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    fn micros(&self, now: Instant) -> u32 {
        // Wraps every ~71 minutes; latencies are differences, computed with wrapping_sub.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "deliberately wrapping microsecond clock"
        )]
        let us = now.saturating_duration_since(self.epoch).as_micros() as u32;
        us
    }

    fn instant(&self, secs: u32) -> Instant {
        self.epoch + Duration::from_secs(u64::from(secs))
    }

    // ------------------------------------------------------------------ start-up

    /// Begin: set cdx's aging timeouts, read the hardware tables (reconcile) and dump the
    /// kernel's conntracks.
    pub fn start(&mut self, now: Instant) {
        let t = self.cfg.hw_timeouts;
        for (proto, seconds, unidir) in
            [(proto::TCP, t.tcp, 0), (proto::UDP, t.udp, t.udp_unidir), (0, t.other, 0)]
        {
            self.hw(HwOp::SetTimeout { proto, seconds, unidir }, Pending::Config);
        }
        if self.cfg.reconcile {
            self.phase = Phase::Walking;
            self.hw(HwOp::Walk, Pending::Walk);
        } else {
            self.phase = Phase::Dumping;
            self.start_dump(DumpKind::Initial, now);
        }
        self.next_sweep = self.cfg.sweep_interval.map(|i| now + i);
    }

    /// True once the table reflects the kernel (the initial dump completed).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    fn on_walk(&mut self, reply: Result<HwReply, HwFailure>, now: Instant) {
        if let Ok(HwReply::Walk { conntracks, routes }) = reply {
            for r in routes {
                let ident = self.identity_of(&r.spec);
                self.hw_routes.adopt(ident, r.spec);
            }
            for ct in conntracks {
                self.adoption.insert((ct.spec.proto, ct.spec.orig), ct);
            }
            tracing::info!(
                conntracks = self.adoption.len(),
                routes = self.hw_routes.len(),
                "read the hardware tables for reconciliation"
            );
        } else {
            tracing::warn!(result = ?reply, "could not read the hardware tables; not adopting");
        }
        self.phase = Phase::Dumping;
        self.start_dump(DumpKind::Initial, now);
    }

    fn identity_of(&self, spec: &RouteSpec) -> RouteIdentity {
        let index = |n: &IfName| self.net.link_by_name(n).map_or(0, |l| l.index);
        RouteIdentity {
            out_ifindex: index(&spec.output),
            in_ifindex: index(&spec.input),
            mac: spec.mac,
            mtu: spec.mtu,
        }
    }

    /// Remove what the hardware holds that the kernel does not (after the initial dump).
    fn finish_reconcile(&mut self) {
        let orphans: Vec<WalkedCt> = self.adoption.drain().map(|(_, ct)| ct).collect();
        for ct in orphans {
            self.stats.reconcile_removed += 1;
            self.hw(HwOp::CtDeregister(ct.spec), Pending::Orphan);
        }
        self.orphans_pending = true;
        self.release_unused_routes();
    }

    fn release_unused_routes(&mut self) {
        for id in self.hw_routes.unused() {
            self.hw_routes.mark_deregistering(id);
            self.hw(HwOp::RouteDeregister(id), Pending::RouteDeregister(id));
        }
    }

    // ------------------------------------------------------------------ conntrack input

    /// A conntrack message from the kernel.
    pub fn on_conntrack(&mut self, kind: CtEventKind, ct: &CtInfo, now: Instant) {
        match kind {
            CtEventKind::New => self.stats.events_new += 1,
            CtEventKind::Update => self.stats.events_update += 1,
            CtEventKind::Destroy => self.stats.events_destroy += 1,
            CtEventKind::Dump => self.stats.dump_entries += 1,
        }
        if !self.active {
            return;
        }
        if kind == CtEventKind::Destroy {
            if let Some(run) = self.dump.as_mut() {
                run.destroyed.insert((ct.key, ct.id));
            }
            self.forget_retry(&ct.key);
            if let Some(id) = self.table.find(&ct.key) {
                let same = self
                    .table
                    .get(id)
                    .is_some_and(|f| f.ct_id == 0 || ct.id == 0 || f.ct_id == ct.id);
                if same {
                    self.withdraw(id, Reason::Destroyed, now);
                }
            }
            return;
        }
        if kind == CtEventKind::Dump
            && self.dump.as_ref().is_some_and(|run| run.destroyed.contains(&(ct.key, ct.id)))
        {
            return;
        }
        let generation = self.dump.as_ref().map_or(self.generation, |run| run.generation);
        let now_s = self.secs(now);
        if let Some(id) = self.table.find(&ct.key) {
            self.on_tracked(id, ct, generation, now_s, now);
            return;
        }
        match self.cfg.policy.classify(ct) {
            Verdict::NotYet => {}
            Verdict::Refused(reason) => {
                let static_reason =
                    matches!(reason, Reason::UnsupportedProtocol | Reason::Disabled);
                if !static_reason || matches!(kind, CtEventKind::New | CtEventKind::Dump) {
                    self.stats.count(reason);
                }
            }
            Verdict::Candidate(dirs) => {
                if let Some(id) = self.admit(ct, dirs, generation, now) {
                    if kind == CtEventKind::Dump
                        && self.dump.as_ref().is_some_and(|d| d.kind != DumpKind::Initial)
                    {
                        self.stats.resync_added += 1;
                    }
                    // During the initial dump the table is only loaded: readiness first,
                    // resolution and programming for all at once when the dump is done.
                    if self.phase == Phase::Ready {
                        self.resolve(id, now);
                    }
                }
            }
        }
    }

    fn on_tracked(&mut self, id: FlowId, ct: &CtInfo, generation: u32, now_s: u32, now: Instant) {
        let fwmark_mask = self.cfg.fwmark_mask;
        let verdict = self.cfg.policy.classify(ct);
        let Some(flow) = self.table.get_mut(id) else { return };
        if flow.ct_id != 0 && ct.id != 0 && flow.ct_id != ct.id {
            // The conntrack we track was replaced by another with the same tuple: its DESTROY
            // was lost. Drop the old one; the new one is admitted by the next event or sweep.
            self.withdraw(id, Reason::Destroyed, now);
            return;
        }
        flow.generation = generation;
        flow.status = ct.status;
        if let Some(state) = ct.tcp_state {
            flow.tcp_state = state;
        }
        if let Some(t) = ct.timeout {
            flow.kernel_expires = now_s.saturating_add(t);
        }
        if ct.id != 0 {
            flow.ct_id = ct.id;
        }
        let mark_changed = flow.mark != ct.mark;
        flow.mark = ct.mark;
        match verdict {
            Verdict::NotYet => {
                let reason =
                    if ct.key.proto == proto::TCP { Reason::NotEstablished } else { Reason::None };
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
            Verdict::Refused(reason) => {
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
            Verdict::Candidate(dirs) => {
                let dirs_changed = flow.dirs != dirs;
                flow.dirs = dirs;
                let mark_matters = mark_changed && fwmark_mask.is_some();
                if mark_matters {
                    flow.flags |= flag::DIRTY;
                }
                if dirs_changed || mark_matters {
                    self.resolve(id, now);
                }
            }
        }
    }

    fn admit(&mut self, ct: &CtInfo, dirs: Dirs, generation: u32, now: Instant) -> Option<FlowId> {
        if self.net.is_local(&ct.key.orig.src) || self.net.is_local(&ct.reply.src) {
            self.stats.count(Reason::Local);
            return None;
        }
        let now_s = self.secs(now);
        let flow = Flow {
            key: ct.key,
            reply: ct.reply,
            ct_id: ct.id,
            status: ct.status,
            mark: ct.mark,
            kernel_expires: now_s.saturating_add(ct.timeout.unwrap_or(0)),
            hw_active: now_s,
            admitted_us: self.micros(now),
            generation,
            epoch: 0,
            routes: [NO_ROUTE; 2],
            hw: [0; 2],
            next_hw: [0; 2],
            state: FlowState::Resolving,
            reason: Reason::RouteLookup,
            tcp_state: ct.tcp_state.unwrap_or(0),
            dirs,
            flags: 0,
            attempts: 0,
        };
        match self.table.insert(flow) {
            Ok(id) => {
                self.stats.admitted += 1;
                self.forget_retry(&ct.key);
                if let Some(adopted) = self.adoption.remove(&hw_key(&ct.key)) {
                    self.adopt(id, &adopted);
                }
                Some(id)
            }
            Err(_) => {
                self.stats.count(Reason::TableFull);
                self.remember_retry(ct);
                None
            }
        }
    }

    fn adopt(&mut self, id: FlowId, walked: &WalkedCt) {
        let mut held = [0u16; 2];
        for (d, rid) in [(ORIG, walked.spec.route_orig), (REPLY, walked.spec.route_reply)] {
            if rid != 0 && self.hw_routes.hold(rid) {
                held[d] = rid;
            }
        }
        self.hw_index_insert(id);
        if let Some(flow) = self.table.get_mut(id) {
            flow.hw = held;
            flow.flags |= flag::IN_HW | flag::ADOPTED | flag::COUNTED;
        }
        self.stats.adopted += 1;
    }

    fn remember_retry(&mut self, ct: &CtInfo) {
        if self.cfg.retry_queue == 0 {
            return;
        }
        if self.retry.insert(ct.key, *ct).is_none() {
            self.retry_order.push_back(ct.key);
        }
        while self.retry.len() > self.cfg.retry_queue {
            match self.retry_order.pop_front() {
                Some(old) => {
                    self.retry.remove(&old);
                }
                None => break,
            }
        }
    }

    fn forget_retry(&mut self, key: &FlowKey) {
        self.retry.remove(key);
    }

    /// Admit remembered table-full refusals while there is room.
    fn admit_from_retry(&mut self, now: Instant) {
        while !self.table.is_full() {
            let Some(key) = self.retry_order.pop_front() else { return };
            let Some(ct) = self.retry.remove(&key) else { continue };
            if self.table.find(&key).is_some() {
                continue;
            }
            if let Verdict::Candidate(dirs) = self.cfg.policy.classify(&ct) {
                let generation = self.dump.as_ref().map_or(self.generation, |run| run.generation);
                if let Some(id) = self.admit(&ct, dirs, generation, now) {
                    self.resolve(id, now);
                }
            }
        }
    }

    // ------------------------------------------------------------------ dumps and resync

    fn start_dump(&mut self, kind: DumpKind, now: Instant) {
        self.generation = self.generation.wrapping_add(1);
        self.dump = Some(DumpRun {
            generation: self.generation,
            kind,
            started: now,
            destroyed: HashSet::new(),
        });
        self.actions.push_back(Action::Dump { generation: self.generation });
    }

    fn request_dump(&mut self, kind: DumpKind, now: Instant) {
        if self.phase != Phase::Ready || self.dump.is_some() || now < self.resync_not_before {
            // Coalesce: one more dump after the current one (a resync wins over a sweep).
            if self.resync_wanted != Some(DumpKind::Resync) {
                self.resync_wanted = Some(kind);
            }
            return;
        }
        self.start_dump(kind, now);
    }

    /// The event socket overflowed: events were lost. Resync by dump as soon as allowed.
    pub fn on_overrun(&mut self, now: Instant) {
        self.stats.overruns += 1;
        if self.active {
            self.request_dump(DumpKind::Resync, now);
        }
    }

    /// The dump of `generation` completed: sweep connections the kernel no longer has.
    pub fn on_dump_done(&mut self, generation: u32, now: Instant) {
        let Some(run) = self.dump.take_if(|run| run.generation == generation) else { return };
        let stale = self.table.ids_where(|f| f.generation != generation);
        for id in stale {
            if run.kind != DumpKind::Initial {
                self.stats.resync_removed += 1;
            }
            self.withdraw(id, Reason::Destroyed, now);
        }
        let took = now.saturating_duration_since(run.started);
        match run.kind {
            DumpKind::Initial => {
                self.phase = Phase::Ready;
                self.finish_reconcile();
                tracing::info!(
                    entries = self.table.len(),
                    ms = took.as_millis() as u64,
                    "initial conntrack dump done"
                );
                for id in self.table.ids_where(|f| f.state == FlowState::Resolving) {
                    self.resolve(id, now);
                }
            }
            DumpKind::Resync => {
                self.stats.resyncs += 1;
                self.stats.last_resync_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
                tracing::info!(ms = self.stats.last_resync_ms, "resync done");
            }
            DumpKind::Sweep => self.stats.sweeps += 1,
        }
        self.resync_not_before = now + self.cfg.resync_min_interval;
        self.admit_from_retry(now);
    }

    /// The dump of `generation` failed (it will be retried).
    pub fn on_dump_failed(&mut self, generation: u32, now: Instant) {
        let Some(run) = self.dump.take_if(|run| run.generation == generation) else { return };
        tracing::warn!(generation, "conntrack dump failed; retrying");
        self.resync_not_before = now + self.cfg.resync_min_interval;
        if run.kind == DumpKind::Initial {
            self.resync_wanted = Some(DumpKind::Initial);
        } else {
            self.resync_wanted = Some(DumpKind::Resync);
        }
    }

    // ------------------------------------------------------------------ resolution

    fn resolve(&mut self, id: FlowId, now: Instant) {
        let Some(flow) = self.table.get_mut(id) else { return };
        match flow.state {
            FlowState::Programming => {
                flow.flags |= flag::REPROGRAM;
                return;
            }
            FlowState::Withdrawing => return,
            _ => {}
        }
        let dsts = [flow.reply.src, flow.key.orig.src];
        for side in [SERVER, CLIENT] {
            if self.table.get(id).is_some_and(|f| f.routes[side] == NO_ROUTE) {
                let (r, lookup) = self.routes.acquire(RouteKey { dst: dsts[side], mark: 0 });
                if let Some(lookup) = lookup {
                    self.stats.route_lookups += 1;
                    self.actions.push_back(Action::RouteLookup(lookup));
                }
                if let Some(flow) = self.table.get_mut(id) {
                    flow.routes[side] = r.raw();
                }
            }
        }
        let Some(flow) = self.table.get(id) else { return };
        for side in [SERVER, CLIENT] {
            let r = RouteRef::from_raw(flow.routes[side]);
            if self.routes.state(r) == RouteState::Pending {
                self.routes.wait(r, id);
                let in_hw = flow.flags & flag::IN_HW != 0;
                if let Some(flow) = self.table.get_mut(id)
                    && !in_hw
                {
                    flow.state = FlowState::Resolving;
                    flow.reason = Reason::RouteLookup;
                }
                return;
            }
        }
        match self.paths(flow) {
            Ok(paths) => self.program(id, paths, now),
            Err(PathError::Wait(reason)) => {
                let Some(flow) = self.table.get_mut(id) else { return };
                if flow.flags & flag::IN_HW == 0 {
                    self.stats.count(reason);
                    self.wait_for_network(id, reason, now);
                } else if flow.flags & flag::ADOPTED != 0 {
                    // An adopted connection whose neighbour is not known yet: keep the
                    // hardware's routes and confirm later.
                    flow.state = FlowState::Offloaded;
                    flow.reason = Reason::None;
                    self.waiting.push(id);
                }
            }
            Err(PathError::Refuse(reason)) => {
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
        }
    }

    /// Keep a connection that is not in the hardware tracked until the network changes (a
    /// link, an address, a neighbour or a route), with a backstop retry every few seconds.
    fn wait_for_network(&mut self, id: FlowId, reason: Reason, now: Instant) {
        self.release_hardware(id);
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.state = FlowState::Resolving;
        flow.reason = reason;
        self.waiting.push(id);
        if self.waiting_backstop.is_none() {
            self.waiting_backstop = Some(now + WAITING_BACKSTOP);
        }
    }

    fn route_info(&self, raw: u32) -> Result<RouteInfo, PathError> {
        match self.routes.state(RouteRef::from_raw(raw)) {
            RouteState::Pending => Err(PathError::Wait(Reason::RouteLookup)),
            RouteState::Failed(_) => Err(PathError::Refuse(Reason::NoRoute)),
            RouteState::Resolved(info) => match info.kind {
                RouteKind::Unicast if info.oif != 0 => Ok(info),
                RouteKind::Unicast | RouteKind::Unusable(_) => {
                    Err(PathError::Refuse(Reason::NoRoute))
                }
                RouteKind::Local => Err(PathError::Refuse(Reason::Local)),
                RouteKind::Broadcast => Err(PathError::Refuse(Reason::Multicast)),
            },
        }
    }

    fn port(&self, ifindex: u32) -> Result<&Link, PathError> {
        let link = self.net.link(ifindex).ok_or(PathError::Wait(Reason::LinkDown))?;
        if !self.net.is_fastpath(link) {
            return Err(PathError::Refuse(Reason::NotFastpathPort));
        }
        if !link.up {
            return Err(PathError::Refuse(Reason::LinkDown));
        }
        Ok(link)
    }

    fn dir_path(&self, input: u32, route: &RouteInfo, dst: IpAddr) -> Result<DirPath, PathError> {
        let inp = self.port(input)?;
        let out = self.port(route.oif)?;
        let nexthop = route.gateway.unwrap_or(dst);
        let mac = if out.noarp {
            Mac::default()
        } else {
            self.net
                .neighbour(out.index, &nexthop)
                .and_then(Neighbour::valid_mac)
                .ok_or(PathError::Wait(Reason::NoNeighbour))?
        };
        let mtu = if route.mtu != 0 { route.mtu } else { out.mtu };
        Ok(DirPath {
            ident: RouteIdentity {
                out_ifindex: out.index,
                in_ifindex: inp.index,
                mac,
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            },
            output: out.name,
            input: inp.name,
            nexthop,
        })
    }

    /// Both directions' paths: the original direction enters where the client is reachable
    /// and leaves towards the (post-DNAT) server; the reply direction the other way round.
    fn paths(&self, flow: &Flow) -> Result<[Option<DirPath>; 2], PathError> {
        let server = self.route_info(flow.routes[SERVER])?;
        let client = self.route_info(flow.routes[CLIENT])?;
        let orig = self.dir_path(client.oif, &server, flow.reply.src)?;
        let reply = match flow.dirs {
            Dirs::Both => Some(self.dir_path(server.oif, &client, flow.key.orig.src)?),
            Dirs::OrigOnly => None,
        };
        Ok([Some(orig), reply])
    }

    fn hw_hash(&self, key: &HwKey) -> u64 {
        self.hw_hasher.hash_one(key)
    }

    fn hw_index_find(&self, key: &HwKey) -> Option<FlowId> {
        let hash = self.hw_hash(key);
        let slot = *self.hw_index.find(hash, |&s| {
            self.table
                .id_at(s)
                .and_then(|id| self.table.get(id))
                .is_some_and(|f| &hw_key(&f.key) == key)
        })?;
        self.table.id_at(slot)
    }

    fn hw_index_insert(&mut self, id: FlowId) {
        let Some(flow) = self.table.get(id) else { return };
        let key = hw_key(&flow.key);
        if self.hw_index_find(&key).is_some() {
            return;
        }
        let hash = self.hw_hash(&key);
        let (table, hasher) = (&self.table, &self.hw_hasher);
        self.hw_index.insert_unique(hash, id.slot(), |&s| {
            table.id_at(s).and_then(|i| table.get(i)).map_or(0, |f| hasher.hash_one(hw_key(&f.key)))
        });
    }

    fn hw_index_remove(&mut self, id: FlowId) {
        let Some(flow) = self.table.get(id) else { return };
        let hash = self.hw_hash(&hw_key(&flow.key));
        if let Ok(entry) = self.hw_index.find_entry(hash, |&s| s == id.slot()) {
            entry.remove();
        }
    }

    fn program(&mut self, id: FlowId, paths: [Option<DirPath>; 2], now: Instant) {
        let Some(flow) = self.table.get(id) else { return };
        let key = hw_key(&flow.key);
        if let Some(other) = self.hw_index_find(&key)
            && other != id
        {
            // cdx has no zones: the same tuple is already offloaded from another zone.
            self.stats.count(Reason::Zone);
            self.withdraw(id, Reason::Zone, now);
            return;
        }
        let in_hw = flow.flags & flag::IN_HW != 0;
        let current = flow.hw;
        let unchanged = in_hw
            && (0..2).all(|d| match paths[d] {
                Some(p) => self.hw_routes.get(current[d]).is_some_and(|o| o.ident == p.ident),
                None => current[d] == 0,
            });
        if unchanged && flow.flags & flag::DIRTY == 0 {
            // Nothing the hardware holds would change (an adopted connection is confirmed).
            if let Some(flow) = self.table.get_mut(id) {
                flow.flags &= !flag::ADOPTED;
                flow.state = FlowState::Offloaded;
                flow.reason = Reason::None;
            }
            self.schedule_poll(id, now);
            return;
        }
        if self.programming >= self.cfg.programming_window {
            let queued = flow.reason == Reason::HwBusy && flow.state == FlowState::Resolving;
            if let Some(flow) = self.table.get_mut(id)
                && !queued
            {
                if flow.flags & flag::IN_HW == 0 {
                    flow.state = FlowState::Resolving;
                    flow.reason = Reason::HwBusy;
                }
                self.stats.count(Reason::HwBusy);
                self.ready.push_back(id);
            }
            return;
        }
        let mut next = [0u16; 2];
        for d in [ORIG, REPLY] {
            let Some(p) = paths[d] else { continue };
            if current[d] != 0 && self.hw_routes.get(current[d]).is_some_and(|o| o.ident == p.ident)
            {
                self.hw_routes.hold(current[d]);
                next[d] = current[d];
                continue;
            }
            match self.hw_routes.acquire(p.ident, p.output, p.input, Some(p.nexthop)) {
                Ok(acq) => {
                    next[d] = acq.id;
                    if acq.register {
                        let spec = self.hw_routes.get(acq.id).map(|o| o.spec);
                        if let Some(spec) = spec {
                            self.stats.hw_routes_registered += 1;
                            self.hw(HwOp::RouteRegister(spec), Pending::RouteRegister(acq.id));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot program connection");
                    for rid in next.into_iter().filter(|&r| r != 0) {
                        self.release_route(rid);
                    }
                    self.fail_program(id, Reason::HwError, now);
                    return;
                }
            }
        }
        if !in_hw {
            self.hw_index_insert(id);
        }
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.next_hw = next;
        flow.state = FlowState::Programming;
        self.programming += 1;
        flow.flags &= !(flag::ADOPTED | flag::DIRTY);
        let mut ready = true;
        for rid in next.into_iter().filter(|&r| r != 0) {
            if self.hw_routes.get(rid).is_some_and(|o| o.state == RouteObjState::Registering) {
                self.hw_routes.wait(rid, id);
                ready = false;
            }
        }
        if ready {
            self.send_ct(id, now);
        }
    }

    fn ct_spec(&self, flow: &Flow, routes: [u16; 2]) -> CtSpec {
        CtSpec {
            proto: flow.key.proto,
            orig: flow.key.orig,
            reply: flow.reply,
            fwmark: self.cfg.fwmark_mask.map_or(0, |mask| flow.mark & mask),
            route_orig: routes[ORIG],
            route_reply: routes[REPLY],
        }
    }

    fn send_ct(&mut self, id: FlowId, now: Instant) {
        let Some(flow) = self.table.get(id) else { return };
        if flow.state != FlowState::Programming {
            return;
        }
        // Every route must be registered; a failed one fails the connection.
        if flow.next_hw.iter().any(|&r| {
            r != 0 && self.hw_routes.get(r).is_none_or(|o| o.state != RouteObjState::Registered)
        }) {
            if flow.next_hw.iter().any(|&r| {
                r != 0
                    && self.hw_routes.get(r).is_some_and(|o| o.state == RouteObjState::Registering)
            }) {
                return;
            }
            self.on_ct_failed(id, &HwFailure::Rejected(0), now);
            return;
        }
        let spec = self.ct_spec(flow, flow.next_hw);
        let op = if flow.flags & flag::IN_HW != 0 {
            HwOp::CtUpdate(spec)
        } else {
            HwOp::CtRegister(spec)
        };
        self.hw(op, Pending::Ct(id));
    }

    fn fail_program(&mut self, id: FlowId, reason: Reason, now: Instant) {
        self.stats.count(reason);
        let delay = {
            let Some(flow) = self.table.get_mut(id) else { return };
            flow.attempts = flow.attempts.saturating_add(1);
            flow.reason = reason;
            let exp = u32::from(flow.attempts.min(16).saturating_sub(1));
            self.cfg.retry_base.saturating_mul(1 << exp).min(self.cfg.retry_max)
        };
        let Some(flow) = self.table.get_mut(id) else { return };
        if flow.flags & flag::IN_HW != 0 {
            flow.state = FlowState::Offloaded;
        } else {
            flow.state = FlowState::Backoff;
            self.hw_index_remove(id);
        }
        self.arm(id, now + delay);
    }

    fn arm(&mut self, id: FlowId, at: Instant) {
        if let Some(flow) = self.table.get_mut(id) {
            flow.epoch = flow.epoch.wrapping_add(1);
            self.timers.push(Reverse((at, id, flow.epoch)));
        }
    }

    // ------------------------------------------------------------------ withdrawal

    fn withdraw(&mut self, id: FlowId, reason: Reason, now: Instant) {
        let Some(flow) = self.table.get_mut(id) else { return };
        if reason != Reason::None || flow.state != FlowState::Offloaded {
            flow.reason = reason;
        }
        match flow.state {
            FlowState::Programming => flow.flags |= flag::WITHDRAW,
            FlowState::Withdrawing => {}
            _ if flow.flags & flag::IN_HW != 0 => {
                flow.state = FlowState::Withdrawing;
                if let Some(flow) = self.table.get(id) {
                    let spec = self.ct_spec(flow, flow.hw);
                    self.hw(HwOp::CtDeregister(spec), Pending::CtDeregister(id));
                }
            }
            _ if waits_for_network(reason) => self.wait_for_network(id, reason, now),
            _ => self.remove_flow(id, now),
        }
    }

    fn release_route(&mut self, rid: u16) {
        if self.hw_routes.release(rid) {
            self.stats.hw_routes_released += 1;
            self.hw(HwOp::RouteDeregister(rid), Pending::RouteDeregister(rid));
        }
    }

    /// Give back what a connection holds because it was in the hardware: its index entry, its
    /// route objects, and the permanent bit on the kernel's entry.
    fn release_hardware(&mut self, id: FlowId) {
        self.hw_index_remove(id);
        let Some(flow) = self.table.get_mut(id) else { return };
        let route_ids = flow.hw.into_iter().chain(flow.next_hw);
        let route_ids: Vec<u16> = route_ids.filter(|&r| r != 0).collect();
        (flow.hw, flow.next_hw) = ([0; 2], [0; 2]);
        let permanent = flow.flags & flag::PERMANENT != 0 && flow.reason != Reason::Destroyed;
        flow.flags &= !flag::PERMANENT;
        let (key, status) = (flow.key, flow.status);
        for rid in route_ids {
            self.release_route(rid);
        }
        if permanent {
            let bit = 1u32 << self.cfg.keepalive.permanent_bit;
            self.actions.push_back(Action::KernelStatus { key, status: status & !bit });
        }
    }

    fn remove_flow(&mut self, id: FlowId, now: Instant) {
        self.release_hardware(id);
        let Some(flow) = self.table.remove(id) else { return };
        if flow.flags & flag::POLLING != 0 {
            // Its poll may be due in hours (an eighth of the kernel's TCP timeout).
            self.stale_polls += 1;
            if self.stale_polls > 1024 && self.stale_polls * 2 > self.polls.len() {
                let table = &self.table;
                self.polls.retain(|Reverse((_, id))| table.get(*id).is_some());
                self.stale_polls = 0;
            }
        }
        for raw in flow.routes {
            if raw != NO_ROUTE {
                self.routes.release(RouteRef::from_raw(raw));
            }
        }
        self.admit_from_retry(now);
    }

    // ------------------------------------------------------------------ hardware results

    fn hw(&mut self, op: HwOp, pending: Pending) {
        self.next_tag += 1;
        let tag = self.next_tag;
        self.inflight.insert(tag, pending);
        self.stats.hw_commands += 1;
        self.actions.push_back(Action::Hw(HwRequest { tag, op }));
    }

    /// The offload worker's result for one command.
    pub fn on_hw_result(&mut self, result: HwResult, now: Instant) {
        let Some(pending) = self.inflight.remove(&result.tag) else { return };
        match &result.outcome {
            Ok(_) => self.stats.hw_ok += 1,
            Err(HwFailure::Timeout) => {
                self.stats.hw_failed += 1;
                self.stats.hw_timeouts += 1;
            }
            Err(_) => self.stats.hw_failed += 1,
        }
        match pending {
            Pending::RouteRegister(rid) => {
                let ok = result.outcome.is_ok();
                if !ok {
                    tracing::warn!(route = rid, outcome = ?result.outcome, "route registration failed");
                }
                // A registration that timed out may have happened: the object counts as
                // registered, so releasing it deregisters it and its id is not given to another
                // route while the hardware may hold it. Its waiters back off all the same.
                let maybe = result.outcome == Err(HwFailure::Timeout);
                let (waiters, dereg) = self.hw_routes.registered(rid, ok || maybe);
                if dereg {
                    self.stats.hw_routes_released += 1;
                    self.hw(HwOp::RouteDeregister(rid), Pending::RouteDeregister(rid));
                }
                for id in waiters {
                    if ok {
                        self.send_ct(id, now);
                    } else {
                        self.on_ct_failed(id, &HwFailure::Rejected(0), now);
                    }
                }
            }
            Pending::RouteUpdate(rid) => {
                if result.outcome.is_err() {
                    tracing::warn!(route = rid, outcome = ?result.outcome, "route update failed");
                }
            }
            Pending::RouteDeregister(rid) => {
                let ok = matches!(result.outcome, Ok(_) | Err(HwFailure::NotFound));
                self.hw_routes.deregistered(rid, ok);
                if !ok {
                    self.route_retries.push((now + self.cfg.retry_base * 4, rid));
                }
            }
            Pending::Ct(id) => match result.outcome {
                Ok(_) => self.on_ct_done(id, now),
                Err(f) => self.on_ct_failed(id, &f, now),
            },
            Pending::CtDeregister(id) => match result.outcome {
                Ok(_) | Err(HwFailure::NotFound) => {
                    let Some(flow) = self.table.get_mut(id) else { return };
                    flow.flags &= !flag::IN_HW;
                    self.stats.withdrawn += 1;
                    let reason = flow.reason;
                    if waits_for_network(reason) {
                        self.wait_for_network(id, reason, now);
                    } else {
                        self.remove_flow(id, now);
                    }
                }
                Err(f) => {
                    tracing::warn!(outcome = ?f, "withdrawal failed; retrying");
                    let delay = {
                        let Some(flow) = self.table.get_mut(id) else { return };
                        flow.attempts = flow.attempts.saturating_add(1);
                        let exp = u32::from(flow.attempts.min(16).saturating_sub(1));
                        self.cfg.retry_base.saturating_mul(1 << exp).min(self.cfg.retry_max)
                    };
                    self.arm(id, now + delay);
                }
            },
            Pending::Orphan => {}
            Pending::Poll(id) => self.on_poll(id, result.outcome, now),
            Pending::Config => {
                if let Err(f) = result.outcome {
                    tracing::warn!(outcome = ?f, "hardware configuration command failed");
                }
            }
            Pending::Walk => self.on_walk(result.outcome, now),
            Pending::External => {
                self.external.insert(result.tag, result.outcome);
            }
        }
    }

    /// A connection left `Programming`: let the next waiting one in.
    fn programmed(&mut self, now: Instant) {
        self.programming = self.programming.saturating_sub(1);
        while self.programming < self.cfg.programming_window {
            let Some(id) = self.ready.pop_front() else { break };
            let Some(flow) = self.table.get(id) else { continue };
            let waiting = (flow.state == FlowState::Resolving && flow.reason == Reason::HwBusy)
                || flow.state == FlowState::Offloaded;
            if waiting {
                if let Some(flow) = self.table.get_mut(id)
                    && flow.state == FlowState::Resolving
                {
                    flow.reason = Reason::RouteLookup;
                }
                self.resolve(id, now);
            }
        }
    }

    fn on_ct_done(&mut self, id: FlowId, now: Instant) {
        let now_us = self.micros(now);
        if self.table.get(id).is_some_and(|f| f.state == FlowState::Programming) {
            self.programmed(now);
        }
        let (old, first, flags, admitted_us) = {
            let Some(flow) = self.table.get_mut(id) else { return };
            let old = flow.hw;
            flow.hw = flow.next_hw;
            flow.next_hw = [0; 2];
            flow.flags |= flag::IN_HW;
            flow.state = FlowState::Offloaded;
            flow.reason = Reason::None;
            flow.attempts = 0;
            let first = flow.flags & flag::COUNTED == 0;
            flow.flags |= flag::COUNTED;
            (old, first, flow.flags, flow.admitted_us)
        };
        for rid in old.into_iter().filter(|&r| r != 0) {
            self.release_route(rid);
        }
        if first {
            self.stats.offloaded += 1;
            self.stats.latency.record(now_us.wrapping_sub(admitted_us));
            if self.cfg.keepalive.mode == KeepaliveMode::Permanent {
                self.set_permanent(id);
            }
        }
        self.schedule_poll(id, now);
        if flags & flag::WITHDRAW != 0 {
            if let Some(flow) = self.table.get_mut(id) {
                flow.flags &= !(flag::WITHDRAW | flag::REPROGRAM);
                let reason = flow.reason;
                self.withdraw(
                    id,
                    if reason == Reason::None { Reason::Destroyed } else { reason },
                    now,
                );
            }
        } else if flags & flag::REPROGRAM != 0 {
            if let Some(flow) = self.table.get_mut(id) {
                flow.flags &= !flag::REPROGRAM;
            }
            self.resolve(id, now);
        }
    }

    fn on_ct_failed(&mut self, id: FlowId, failure: &HwFailure, now: Instant) {
        if self.table.get(id).is_none_or(|f| f.state != FlowState::Programming) {
            return;
        }
        self.programmed(now);
        let Some(flow) = self.table.get_mut(id) else { return };
        let next = std::mem::take(&mut flow.next_hw);
        let flags = flow.flags;
        flow.flags &= !(flag::WITHDRAW | flag::REPROGRAM);
        if *failure == HwFailure::Timeout
            && flags & flag::IN_HW == 0
            && let Some(flow) = self.table.get(id)
        {
            // The registration may have happened: undo it (cdx answers "not found" if it did
            // not) before the routes it would reference are released.
            let spec = self.ct_spec(flow, next);
            self.hw(HwOp::CtDeregister(spec), Pending::Orphan);
        }
        for rid in next.into_iter().filter(|&r| r != 0) {
            self.release_route(rid);
        }
        let reason = if *failure == HwFailure::Full { Reason::HwFull } else { Reason::HwError };
        if flags & flag::WITHDRAW != 0 {
            if let Some(flow) = self.table.get_mut(id) {
                flow.state = if flags & flag::IN_HW != 0 {
                    FlowState::Offloaded
                } else {
                    FlowState::Backoff
                };
                let reason = flow.reason;
                self.withdraw(id, reason, now);
            }
            return;
        }
        tracing::debug!(outcome = ?failure, "hardware refused a connection; backing off");
        self.fail_program(id, reason, now);
    }

    /// An unsolicited hardware event.
    pub fn on_hw_event(&mut self, event: HwEvent, now: Instant) {
        let HwEvent::Removed { proto, orig, .. } = event;
        self.stats.hw_removed_events += 1;
        let Some(id) = self.hw_index_find(&(proto, orig)) else {
            self.stats.hw_removed_unknown += 1;
            return;
        };
        self.hw_removed(id, now);
    }

    fn hw_removed(&mut self, id: FlowId, now: Instant) {
        let on_removed = self.cfg.keepalive.on_removed;
        let Some(flow) = self.table.get_mut(id) else { return };
        if flow.flags & flag::IN_HW == 0 {
            self.stats.hw_removed_unknown += 1;
            return;
        }
        flow.flags &= !flag::IN_HW;
        flow.reason = Reason::HwRemoved;
        let (key, ct_id) = (flow.key, flow.ct_id);
        self.stats.count(Reason::HwRemoved);
        if on_removed == OnRemoved::Delete {
            self.stats.kernel_deletes += 1;
            self.actions.push_back(Action::KernelDelete { key, id: ct_id });
        }
        self.remove_flow(id, now);
    }

    // ------------------------------------------------------------------ keepalive

    /// Schedule the next activity poll of a connection in the hardware (one at a time).
    fn schedule_poll(&mut self, id: FlowId, now: Instant) {
        if self.cfg.keepalive.mode != KeepaliveMode::Refresh {
            return;
        }
        let Some(flow) = self.table.get(id) else { return };
        if flow.flags & (flag::POLLING | flag::IN_HW) != flag::IN_HW {
            return;
        }
        let life = self.kernel_life(flow);
        let period = self.cfg.keepalive.interval.max(Duration::from_secs(u64::from(life / 8)));
        if let Some(flow) = self.table.get_mut(id) {
            flow.flags |= flag::POLLING;
        }
        self.polls.push(Reverse((now + period, id)));
    }

    /// The timeout the kernel gives this connection when it sees a packet.
    fn kernel_life(&self, flow: &Flow) -> u32 {
        let k = self.cfg.kernel_timeouts;
        let life = match flow.key.proto {
            proto::TCP => k.tcp_established,
            _ if flow.status & status::ASSURED != 0 => k.udp_stream,
            _ => k.udp,
        };
        match self.cfg.keepalive.margin {
            Some(m) => life.min(u32::try_from(m.as_secs()).unwrap_or(u32::MAX)),
            None => life,
        }
    }

    fn hw_life(&self, flow: &Flow) -> u32 {
        let t = self.cfg.hw_timeouts;
        match (flow.key.proto, flow.dirs) {
            (proto::TCP, _) => t.tcp,
            (proto::UDP, Dirs::Both) => t.udp,
            (proto::UDP, Dirs::OrigOnly) => t.udp_unidir,
            _ => t.other,
        }
    }

    fn on_poll(&mut self, id: FlowId, outcome: Result<HwReply, HwFailure>, now: Instant) {
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.flags &= !flag::POLLING;
        if flow.state != FlowState::Offloaded {
            // Being updated or withdrawn: poll again later if it stays in the hardware.
            self.schedule_poll(id, now);
            return;
        }
        match outcome {
            Ok(HwReply::Remaining(remaining)) => {
                let now_s = self.secs(now);
                let Some(flow) = self.table.get(id) else { return };
                let idle = self.hw_life(flow).saturating_sub(remaining);
                let active = now_s.saturating_sub(idle).max(flow.hw_active);
                let life = self.kernel_life(flow);
                let target = active.saturating_add(life);
                let slack = (life / 8).max(1);
                // Extend when the hardware saw traffic the kernel did not; with a margin, also
                // shorten so the kernel entry never outlives activity by more than the margin.
                let wanted = target > flow.kernel_expires.saturating_add(slack)
                    || (self.cfg.keepalive.margin.is_some()
                        && target.saturating_add(slack) < flow.kernel_expires);
                let key = flow.key;
                if let Some(flow) = self.table.get_mut(id) {
                    flow.hw_active = active;
                }
                if wanted && target > now_s && self.take_refresh_token(now) {
                    if let Some(flow) = self.table.get_mut(id) {
                        flow.kernel_expires = target;
                    }
                    self.stats.keepalive_refreshes += 1;
                    self.actions.push_back(Action::KernelRefresh { key, timeout: target - now_s });
                }
                self.schedule_poll(id, now);
            }
            Err(HwFailure::NotFound) => {
                // The hardware lost it and the REMOVED event with it.
                self.hw_removed(id, now);
            }
            _ => self.schedule_poll(id, now),
        }
    }

    fn take_refresh_token(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.cfg.keepalive.max_refresh_per_second);
        let elapsed = now.saturating_duration_since(self.refresh_at).as_secs_f64();
        self.refresh_at = now;
        self.refresh_tokens = (self.refresh_tokens + elapsed * rate).min(rate.max(1.0));
        if self.refresh_tokens >= 1.0 {
            self.refresh_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn set_permanent(&mut self, id: FlowId) {
        let bit = 1u32 << self.cfg.keepalive.permanent_bit;
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.flags |= flag::PERMANENT;
        let (key, status) = (flow.key, flow.status | bit);
        self.actions.push_back(Action::KernelStatus { key, status });
    }

    // ------------------------------------------------------------------ routing input

    /// The kernel's answer to a route lookup.
    pub fn on_route_answer(
        &mut self,
        request: u32,
        answer: Result<RouteInfo, RouteError>,
        now: Instant,
    ) {
        let Some(done) = self.routes.complete(request, answer) else { return };
        for id in done.waiters {
            self.resolve(id, now);
        }
        if done.changed {
            // Connections on this route, and those waiting because it had none.
            let raw = done.route.raw();
            let users = self.table.ids_where(|f| {
                f.routes.contains(&raw)
                    && matches!(
                        f.state,
                        FlowState::Offloaded
                            | FlowState::Backoff
                            | FlowState::Programming
                            | FlowState::Resolving
                    )
            });
            for id in users {
                self.resolve(id, now);
            }
        }
    }

    /// A route was added or removed: look up again every cached destination it may cover
    /// (`None`: a rule changed, everything).
    pub fn on_route_change(&mut self, prefix: Option<crate::policy::Cidr>, _now: Instant) {
        for lookup in self.routes.invalidate(prefix.as_ref()) {
            self.stats.route_lookups += 1;
            self.actions.push_back(Action::RouteLookup(lookup));
        }
    }

    /// A link appeared or changed.
    pub fn on_link(&mut self, link: Link, now: Instant) {
        let change = self.net.upsert_link(link);
        if change.affects_flows() {
            self.link_changed(link.index, now);
        }
        self.retry_waiting(now);
    }

    /// A link disappeared.
    ///
    /// Its connections leave the hardware and wait for it (RTM_DELLINK is explicit; an
    /// interface merely missing from the view, as during a re-dump, is only waited for).
    pub fn on_link_removed(&mut self, index: u32, now: Instant) {
        if self.net.remove_link(index).is_some() {
            self.on_route_change(None, now);
            for id in self.users_of_link(index) {
                self.stats.count(Reason::LinkDown);
                self.withdraw(id, Reason::LinkDown, now);
            }
        }
    }

    fn link_changed(&mut self, index: u32, now: Instant) {
        // Routes through this link may have changed too.
        self.on_route_change(None, now);
        for id in self.users_of_link(index) {
            self.resolve(id, now);
        }
    }

    /// The connections whose hardware routes (current or being programmed) use `index`.
    fn users_of_link(&self, index: u32) -> Vec<FlowId> {
        let affected: Vec<u16> = self
            .hw_routes
            .iter()
            .filter(|(_, o)| o.ident.out_ifindex == index || o.ident.in_ifindex == index)
            .map(|(id, _)| id)
            .collect();
        if affected.is_empty() {
            return Vec::new();
        }
        self.table.ids_where(|f| {
            f.hw.iter().chain(f.next_hw.iter()).any(|r| *r != 0 && affected.contains(r))
        })
    }

    /// A local address was added or removed.
    pub fn on_address(&mut self, ifindex: u32, addr: IpAddr, added: bool, now: Instant) {
        if added {
            self.net.add_address(ifindex, addr);
        } else {
            self.net.remove_address(&addr);
        }
        self.retry_waiting(now);
    }

    /// A neighbour appeared or changed.
    pub fn on_neighbour(&mut self, n: Neighbour, now: Instant) {
        let old = self.net.upsert_neighbour(n);
        let old_mac = old.and_then(|o| o.valid_mac());
        let new_mac = n.valid_mac();
        if let (Some(old_mac), Some(new_mac)) = (old_mac, new_mac)
            && old_mac != new_mac
        {
            self.neighbour_moved(n.ifindex, n.addr, old_mac, new_mac, now);
        }
        if old_mac.is_some() && n.state & crate::net::nud::FAILED != 0 {
            self.neighbour_failed(n.ifindex, n.addr, now);
        }
        self.retry_waiting(now);
    }

    /// A neighbour entry was deleted (the kernel's garbage collection does this to idle
    /// entries, which offloaded flows look like): offloaded flows keep their MAC.
    pub fn on_neighbour_removed(&mut self, ifindex: u32, addr: IpAddr, _now: Instant) {
        self.net.remove_neighbour(ifindex, &addr);
    }

    /// A next hop's MAC changed. Route objects are identified by the MAC they send to (an
    /// IPv4 and an IPv6 next hop of one host share one), so the objects on `ifindex` with the
    /// old MAC are updated in place, one command for all their connections, unless another
    /// next hop still has the old MAC: then only the connections through `addr` move.
    fn neighbour_moved(&mut self, ifindex: u32, addr: IpAddr, old: Mac, mac: Mac, now: Instant) {
        let ids: Vec<u16> = self
            .hw_routes
            .iter()
            .filter(|(_, o)| {
                o.ident.out_ifindex == ifindex
                    && o.ident.mac == old
                    && o.state == RouteObjState::Registered
            })
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let still_used = self
            .net
            .neighbours()
            .any(|n| n.ifindex == ifindex && n.addr != addr && n.valid_mac() == Some(old));
        if still_used {
            let users = self.table.ids_where(|f| f.hw.iter().any(|r| *r != 0 && ids.contains(r)));
            for id in users {
                self.resolve(id, now);
            }
            return;
        }
        for rid in ids {
            if let Some(spec) = self.hw_routes.change_mac(rid, mac) {
                tracing::info!(route = rid, %addr, %mac, "next hop moved; updating route");
                self.hw(HwOp::RouteUpdate(spec), Pending::RouteUpdate(rid));
            }
        }
    }

    fn neighbour_failed(&mut self, ifindex: u32, addr: IpAddr, now: Instant) {
        let ids: Vec<u16> = self
            .hw_routes
            .iter()
            .filter(|(_, o)| o.ident.out_ifindex == ifindex && o.nexthop == Some(addr))
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let users = self.table.ids_where(|f| f.hw.iter().any(|r| *r != 0 && ids.contains(r)));
        for id in users {
            self.stats.count(Reason::NoNeighbour);
            self.withdraw(id, Reason::NoNeighbour, now);
        }
    }

    fn retry_waiting(&mut self, now: Instant) {
        if self.waiting.is_empty() {
            return;
        }
        let mut waiting = std::mem::take(&mut self.waiting);
        // A connection re-resolved while it waited was queued again: once is enough.
        waiting.sort_unstable();
        waiting.dedup();
        self.waiting_backstop = None;
        for id in waiting {
            if self
                .table
                .get(id)
                .is_some_and(|f| matches!(f.state, FlowState::Resolving | FlowState::Offloaded))
            {
                self.resolve(id, now);
            }
        }
    }

    /// rtnetlink lost messages: the view must be re-dumped.
    pub fn on_rtnl_overrun(&mut self, _now: Instant) {
        self.stats.rtnl_overruns += 1;
        self.actions.push_back(Action::NetDump);
    }

    /// Clear the view before a re-dump (links, addresses, neighbours arrive again as updates).
    pub fn net_mut(&mut self) -> &mut NetView {
        &mut self.net
    }

    /// The re-dump after an rtnetlink overrun completed: everything may have changed.
    pub fn on_net_resynced(&mut self, now: Instant) {
        // MAC changes of next hops in use.
        let objs: Vec<(u16, u32, IpAddr, Mac)> = self
            .hw_routes
            .iter()
            .filter_map(|(id, o)| o.nexthop.map(|n| (id, o.ident.out_ifindex, n, o.ident.mac)))
            .collect();
        for (rid, ifindex, nexthop, mac) in objs {
            let current = self.net.neighbour(ifindex, &nexthop).and_then(Neighbour::valid_mac);
            if let Some(current) = current
                && current != mac
                && let Some(spec) = self.hw_routes.change_mac(rid, current)
            {
                self.hw(HwOp::RouteUpdate(spec), Pending::RouteUpdate(rid));
            }
        }
        // Links that vanished or went down.
        let gone: Vec<u32> = self
            .hw_routes
            .iter()
            .flat_map(|(_, o)| [o.ident.out_ifindex, o.ident.in_ifindex])
            .filter(|i| self.net.link(*i).is_none_or(|l| !l.up))
            .collect();
        for index in gone {
            self.link_changed(index, now);
        }
        // Other changes lost with the events (an MTU) were replayed against a half-built
        // view; resolve every offloaded connection against the complete one. Connections
        // whose path did not change send nothing to the hardware.
        for id in self.table.ids_where(|f| f.state == FlowState::Offloaded) {
            self.resolve(id, now);
        }
        self.on_route_change(None, now);
        self.retry_waiting(now);
    }

    // ------------------------------------------------------------------ time

    /// Run whatever is due.
    pub fn on_timer(&mut self, now: Instant) {
        while let Some(Reverse((at, id, epoch))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(flow) = self.table.get(id) else { continue };
            if flow.epoch != epoch {
                continue;
            }
            match flow.state {
                FlowState::Backoff => {
                    if let Some(flow) = self.table.get_mut(id) {
                        flow.state = FlowState::Resolving;
                    }
                    self.resolve(id, now);
                }
                FlowState::Offloaded => self.resolve(id, now),
                FlowState::Withdrawing => {
                    let spec = self.ct_spec(flow, flow.hw);
                    self.hw(HwOp::CtDeregister(spec), Pending::CtDeregister(id));
                }
                FlowState::Resolving | FlowState::Programming => {}
            }
        }
        let mut i = 0;
        while i < self.route_retries.len() {
            if self.route_retries[i].0 <= now {
                let (_, rid) = self.route_retries.swap_remove(i);
                self.hw(HwOp::RouteDeregister(rid), Pending::RouteDeregister(rid));
            } else {
                i += 1;
            }
        }
        while let Some(&Reverse((at, id))) = self.polls.peek() {
            if at > now {
                break;
            }
            self.polls.pop();
            let Some(flow) = self.table.get(id) else {
                self.stale_polls = self.stale_polls.saturating_sub(1);
                continue;
            };
            if flow.state == FlowState::Offloaded {
                // POLLING stays set until the answer arrives.
                self.stats.keepalive_polls += 1;
                let spec = self.ct_spec(flow, flow.hw);
                self.hw(HwOp::CtRemaining(spec), Pending::Poll(id));
            } else if let Some(flow) = self.table.get_mut(id) {
                flow.flags &= !flag::POLLING;
                self.schedule_poll(id, now);
            }
        }
        if self.waiting_backstop.is_some_and(|t| t <= now) {
            self.retry_waiting(now);
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = self.cfg.sweep_interval.map(|i| now + i);
            if self.active {
                self.request_dump(DumpKind::Sweep, now);
            }
        }
        if self.dump.is_none() && now >= self.resync_not_before {
            match self.resync_wanted.take() {
                Some(DumpKind::Initial) => self.start_dump(DumpKind::Initial, now),
                Some(kind) if self.phase == Phase::Ready => self.start_dump(kind, now),
                Some(kind) => self.resync_wanted = Some(kind),
                None => {}
            }
        }
    }

    /// When [`Engine::on_timer`] must run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        take(self.timers.peek().map(|Reverse((at, _, _))| *at));
        take(self.route_retries.iter().map(|(at, _)| *at).min());
        take(self.polls.peek().map(|Reverse((at, _))| *at));
        take(self.waiting_backstop);
        take(self.next_sweep);
        if self.resync_wanted.is_some() && self.dump.is_none() {
            take(Some(self.resync_not_before));
        }
        next
    }

    /// The next action to execute.
    pub fn pop_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Number of queued actions.
    pub fn pending_actions(&self) -> usize {
        self.actions.len()
    }

    /// Give back memory a burst left behind (the action queue and the map of commands in
    /// flight keep their peak capacity otherwise: after a cold start of 131072 connections
    /// that is more than the table itself). Cheap when there is nothing to give back.
    pub fn release_memory(&mut self) {
        const KEEP: usize = 1024;
        if self.actions.is_empty() && self.actions.capacity() > 4 * KEEP {
            self.actions.shrink_to(KEEP);
        }
        if self.inflight.capacity() > 4 * KEEP && self.inflight.len() < self.inflight.capacity() / 8
        {
            self.inflight.shrink_to(KEEP.max(2 * self.inflight.len()));
        }
    }

    // ------------------------------------------------------------------ control

    /// `set activate 0|1`: off withdraws everything and ignores events; on re-learns by dump.
    pub fn set_active(&mut self, on: bool, now: Instant) {
        if on == self.active {
            return;
        }
        self.active = on;
        if on {
            tracing::info!("offload activated; re-learning the conntrack table");
            if self.phase == Phase::Ready {
                self.start_dump(DumpKind::Resync, now);
            }
        } else {
            tracing::info!(flows = self.table.len(), "offload deactivated; withdrawing everything");
            self.retry.clear();
            self.retry_order.clear();
            for id in self.table.ids_where(|_| true) {
                self.withdraw(id, Reason::Deactivated, now);
            }
        }
    }

    /// True unless `set activate 0`.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Change cdx's aging timeouts (CLI `set timeout`, SIGHUP).
    pub fn set_hw_timeouts(&mut self, t: HwTimeouts) {
        self.cfg.hw_timeouts = t;
        for (proto, seconds, unidir) in
            [(proto::TCP, t.tcp, 0), (proto::UDP, t.udp, t.udp_unidir), (0, t.other, 0)]
        {
            self.hw(HwOp::SetTimeout { proto, seconds, unidir }, Pending::Config);
        }
    }

    /// Replace the keepalive settings (SIGHUP); polls already scheduled keep their time.
    pub fn set_keepalive(&mut self, keepalive: Keepalive) {
        self.cfg.keepalive = keepalive;
    }

    /// Replace the static policy (SIGHUP). Offloaded connections the new policy refuses are
    /// withdrawn.
    pub fn set_policy(&mut self, policy: Policy, now: Instant) {
        self.cfg.policy = policy;
        let ids = self.table.ids_where(|_| true);
        for id in ids {
            let Some(flow) = self.table.get(id) else { continue };
            let ct = CtInfo {
                key: flow.key,
                reply: flow.reply,
                status: flow.status,
                tcp_state: (flow.key.proto == proto::TCP).then_some(flow.tcp_state),
                mark: flow.mark,
                id: flow.ct_id,
                timeout: None,
                helper: false,
                seq_adjust: false,
            };
            if let Verdict::Refused(reason) = self.cfg.policy.classify(&ct) {
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
        }
    }

    /// Shutting down: with `flush`, withdraw every connection from the hardware; otherwise
    /// leave the hardware as it is (a restart adopts it).
    pub fn shutdown(&mut self, flush: bool, now: Instant) {
        self.next_sweep = None;
        self.polls.clear();
        self.stale_polls = 0;
        if flush {
            self.set_active(false, now);
        }
    }

    /// Send a hardware command on behalf of the CLI (`query …`); its result is kept for
    /// [`Engine::take_external`].
    pub fn submit_external(&mut self, op: HwOp) -> u64 {
        self.hw(op, Pending::External);
        self.next_tag
    }

    /// The result of a command sent with [`Engine::submit_external`], once it arrived.
    pub fn take_external(&mut self, tag: u64) -> Option<Result<HwReply, HwFailure>> {
        self.external.remove(&tag)
    }

    /// True when no hardware command is outstanding.
    pub fn hw_idle(&self) -> bool {
        self.inflight.is_empty()
    }

    // ------------------------------------------------------------------ queries

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Tracked connections.
    pub fn flows(&self) -> impl Iterator<Item = (FlowId, &Flow)> {
        self.table.iter()
    }

    /// The live entry in a table slot (for cursors that walk the table in steps).
    pub fn flow_at(&self, slot: u32) -> Option<&Flow> {
        self.table.id_at(slot).and_then(|id| self.table.get(id))
    }

    /// One past the highest slot (bound for slot cursors).
    pub fn slot_end(&self) -> u32 {
        self.table.slot_end()
    }

    /// A connection by key.
    pub fn flow(&self, key: &FlowKey) -> Option<&Flow> {
        self.table.find(key).and_then(|id| self.table.get(id))
    }

    /// Number of tracked connections.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Table capacity.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Connections refused because the table was full, remembered to be admitted when room
    /// appears (at most `EngineConfig::retry_queue`; older ones are left to the next sweep).
    pub fn waiting_for_room(&self) -> usize {
        self.retry.len()
    }

    /// Heap bytes held by the flow table.
    pub fn table_bytes(&self) -> usize {
        self.table.heap_bytes() + self.hw_index.allocation_size()
    }

    /// Route cache.
    pub fn routes(&self) -> &RouteCache {
        &self.routes
    }

    /// Route objects.
    pub fn hw_routes(&self) -> &HwRoutes {
        &self.hw_routes
    }

    /// Links, addresses, neighbours.
    pub fn net(&self) -> &NetView {
        &self.net
    }

    /// Engine seconds for an instant (the unit of [`Flow::kernel_expires`]).
    pub fn seconds_at(&self, now: Instant) -> u32 {
        self.secs(now)
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Instant of an engine-seconds value.
    pub fn instant_of(&self, secs: u32) -> Instant {
        self.instant(secs)
    }
}

#[cfg(test)]
mod tests;
