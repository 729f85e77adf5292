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
//! - Every connection that is not offloaded has a [`Reason`](crate::core::stats::Reason), and
//!   every decision is counted.
//! - Nothing is left in the hardware without a kernel conntrack: DESTROY events, resync sweeps
//!   and start-up reconciliation all withdraw what the kernel no longer has.
//!
//! # Where things are
//!
//! [`Engine`] (this file) is the composition: the table, the views, the counters, the queue
//! of actions, and one piece of state per concern; each concern is an `impl Engine` of its
//! own file, whose module documentation states what it owns and its contract.
//!
//! | File | Concern |
//! | --- | --- |
//! | `lifecycle.rs` | a tracked connection ([`Flow`]); its stages and every transition between them, in one table |
//! | `config.rs` | [`EngineConfig`], taken from the configuration |
//! | `cdx.rs` | which cdx: the ABI detected at start, and whether it takes commands (offload owner) |
//! | `admission.rs` | conntrack messages in; what enters the table; the table-full queue; what is the host's own |
//! | `resolution.rs` | a connection's path, one direction at a time; waiting for the network |
//! | `programming.rs` | route objects before connections; the connection command; the programming window; back-off |
//! | `hw_index.rs` | the hardware's key (no zone) to the connection it holds |
//! | `commands.rs` | hardware commands sent and their results routed back |
//! | `withdrawal.rs` | out of the hardware, out of the table; REMOVED from cdx |
//! | `keepalive.rs` | activity polls, kernel timeout refreshes, the permanent bit |
//! | `resync.rs` | conntrack dumps, mark and sweep, coalesced resyncs |
//! | `reconcile.rs` | start-up: the hardware walk, adoption, orphans |
//! | `network.rs` | route answers and changes, links, addresses, neighbours, the rtnetlink re-dump |
//! | `interfaces.rs` | VLAN and PPPoE registrations with cdx and their lifecycle; bridge forwarding entries and PPPoE sessions |
//! | `timers.rs` | what is due, and when next |
//! | `operator.rs` | `set activate`, `set timeout`, SIGHUP, shutdown |
//!
//! Where the planned features go: the ASK kernel's per-direction fast-path information
//! (ingress interface, underlying port) enters `resolution.rs` (a direction's input port) and
//! `admission.rs` (`is_local`: input interface 0); policy-routed lookups (source, input
//! interface, mark) are the `RouteKey` built in `resolution.rs`; the QoS mark shapes
//! `Engine::ct_spec` in `programming.rs` (the ABI's bytes are the offload edge's);
//! re-registration on a path change is `programming.rs`, and route objects split before their
//! 16-bit reference count saturates in `crate::core::hw::HwRoutes`. Bridges, VLANs and PPPoE
//! are the ports `resolution.rs` asks `crate::core::l2` for, and `interfaces.rs` registers
//! the VLAN and PPPoE interfaces with cdx; the ASK kernel's `UNDERLYING_IIF` enters as the
//! `underlying` port of `Engine::dir_path`.

mod admission;
mod cdx;
mod commands;
mod config;
mod hw_index;
mod interfaces;
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

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use self::admission::RetryQueue;
use self::cdx::CdxLink;
use self::commands::{Commands, Pending};
pub use self::config::{EngineConfig, KeepaliveConfig, KeepaliveMode, KernelTimeouts, OnRemoved};
use self::hw_index::{HwIndex, HwKey, hw_key};
pub use self::interfaces::{DirPorts, RegState, Registration};
use self::keepalive::Polls;
pub use self::lifecycle::{Flow, FlowState};
use self::network::{NetRedump, Waiting};
use self::programming::Window;
use self::reconcile::{Phase, Reconcile};
pub use self::resolution::IngressSource;
use self::resync::Dumps;
use self::timers::Timers;
use crate::core::flow::{FlowId, FlowKey, FlowTable};
use crate::core::hw::{HwRequest, HwRoutes, WalkedCt};
use crate::core::net::NetView;
use crate::core::route::{Lookup, RouteCache};
use crate::core::stats::Stats;

/// The target of the engine's log lines, whatever file they come from: log filters name it
/// (`CMM_LOG=info,cmmd::engine=debug`).
const LOG_TARGET: &str = "cmmd::engine";

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
        generation: u16,
    },
    /// Re-dump links, addresses, neighbours; then call [`Engine::on_net_resynced`] (or
    /// [`Engine::on_net_dump_failed`]). The engine asks for one at a time.
    NetDump,
    /// Set the kernel conntrack's timeout.
    KernelRefresh {
        /// Which conntrack.
        key: FlowKey,
        /// New timeout in seconds.
        timeout: u32,
    },
    /// Set or clear `IPS_PERMANENT` on the kernel conntrack (permanent keepalive mode, ASK
    /// kernels): the bit's number and the request's form are the kernel dialect's, which the
    /// conntrack edge knows.
    KernelPermanent {
        /// Which conntrack.
        key: FlowKey,
        /// Its id: the ASK kernel changes the bit only for the entry with this id.
        id: u32,
        /// Set (true) or clear (false).
        set: bool,
    },
    /// Delete the kernel conntrack.
    KernelDelete {
        /// Which conntrack.
        key: FlowKey,
        /// Its id (0 = any).
        id: u32,
    },
}

/// The engine: the shared state every concern reads, and each concern's own.
pub struct Engine {
    cfg: EngineConfig,
    /// Instant 0 of the engine's seconds and microseconds.
    epoch: Instant,
    /// The tracked connections.
    table: FlowTable<Flow>,
    /// Route cache: destination to the kernel's route (`resolution.rs`, `network.rs`).
    routes: RouteCache,
    /// Route objects and their ids (`programming.rs`, `withdrawal.rs`).
    hw_routes: HwRoutes,
    /// Mirror of the kernel's links, addresses and neighbours (`network.rs`).
    net: NetView,
    stats: Stats,
    /// What the daemon must do, in order.
    actions: VecDeque<Action>,
    /// `set activate`: events are ignored while false (`operator.rs`).
    active: bool,
    hw_index: HwIndex,
    commands: Commands,
    timers: Timers,
    polls: Polls,
    waiting: Waiting,
    net_redump: NetRedump,
    retry: RetryQueue,
    dumps: Dumps,
    window: Window,
    /// Start-up phase (`reconcile.rs`).
    phase: Phase,
    /// VLAN and PPPoE registrations (`interfaces.rs`).
    itfs: interfaces::Interfaces,
    /// Connections read back from the hardware at start-up, until the kernel's dump shows
    /// them (`reconcile.rs`).
    adoption: HashMap<HwKey, WalkedCt>,
    /// Walked route objects waiting for the adopted connections to settle (`reconcile.rs`).
    reconcile: Reconcile,
    /// Which cdx: its ABI, its owner (`cdx.rs`).
    cdx: CdxLink,
}

impl Engine {
    /// A new engine. `net` is the initial view of links, addresses and neighbours (dumped by
    /// the daemon before [`Engine::start`]).
    pub fn new(cfg: EngineConfig, net: NetView, now: Instant) -> Engine {
        let table = FlowTable::with_capacity(cfg.capacity);
        Engine {
            hw_index: HwIndex::default(),
            polls: Polls::new(cfg.keepalive.max_refresh_per_second.get(), now),
            cfg,
            epoch: now,
            table,
            routes: RouteCache::default(),
            hw_routes: HwRoutes::default(),
            net,
            stats: Stats::default(),
            actions: VecDeque::new(),
            commands: Commands::default(),
            timers: Timers::default(),
            waiting: Waiting::default(),
            net_redump: NetRedump::default(),
            retry: RetryQueue::default(),
            active: true,
            phase: Phase::Idle,
            itfs: interfaces::Interfaces::default(),
            dumps: Dumps::new(now),
            adoption: HashMap::new(),
            reconcile: Reconcile::default(),
            cdx: CdxLink::default(),
            window: Window::default(),
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
        self.commands.inflight.release_memory(KEEP);
        self.table.release_memory();
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
        self.retry.by_key.len()
    }

    /// Heap bytes held by the flow table.
    pub fn table_bytes(&self) -> usize {
        self.table.heap_bytes() + self.hw_index.heap_bytes()
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
