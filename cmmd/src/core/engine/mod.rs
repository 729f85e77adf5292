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

mod admission;
mod commands;
mod config;
mod hw_index;
mod keepalive;
mod lifecycle;
mod network;
mod operator;
mod programming;
mod reconcile;
mod resolution;
mod resync;
mod timers;
mod withdrawal;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use self::commands::Pending;
pub use self::config::{EngineConfig, Keepalive, KeepaliveMode, KernelTimeouts, OnRemoved};
use self::hw_index::{HwKey, hw_key};
pub use self::lifecycle::{Flow, FlowState};
use self::reconcile::Phase;
use self::resync::{DumpKind, DumpRun};
use crate::core::flow::{FlowId, FlowKey, FlowTable};
use crate::core::hw::{HwFailure, HwReply, HwRequest, HwRoutes, WalkedCt};
use crate::core::net::NetView;
use crate::core::policy::CtInfo;
use crate::core::route::{Lookup, RouteCache};
use crate::core::stats::Stats;

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
