//! Start-up and reconciliation: what the hardware already holds when cmmd starts.
//!
//! Owns the engine's phase (idle, detecting cdx's ABI, walking the hardware, dumping the
//! kernel, ready) and the connections read back from the hardware that wait to be matched.
//! Contract: cdx's ABI is known before anything else is sent (`cdx.rs`); the hardware is
//! walked before the kernel is dumped; a dumped conntrack that the hardware holds is adopted
//! (kept, no second registration) and, when it is first resolved, confirmed on the walked
//! route objects of its resolved paths, or registered again when there is none: cdx's walk
//! does not write which route a connection links (its route ids are whatever cdx's heap
//! held), so nothing here reads them. Whatever the hardware holds that the initial dump did
//! not show is removed; walked route objects that no adopted connection confirmed are
//! deregistered once the adopted connections have settled (cdx refuses one still linked, and
//! it is retried). Nothing is reset wholesale, so a restart does not drop offloaded traffic
//! to the CPU.

use std::time::{Duration, Instant};

use super::lifecycle::{Facts, Stage, Transition};
use super::resync::DumpKind;
use super::{Engine, LOG_TARGET, Pending};
use crate::core::flow::FlowId;
use crate::core::hw::{HwFailure, HwOp, HwReply, RouteIdentity, RouteSpec, WalkedCt};
use crate::core::net::IfName;

/// How often the adopted connections are checked for having settled.
const SETTLE_CHECK: Duration = Duration::from_millis(100);
/// Walked route objects are released this long after the initial dump at the latest.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// `start` not called yet.
    Idle,
    /// Waiting for cdx's ABI (`cdx.rs`).
    Detecting,
    /// Waiting for the hardware walk.
    Walking,
    /// Waiting for the initial dump.
    Dumping,
    /// The table reflects the kernel.
    Ready,
}

/// Walked route objects nobody confirmed yet, released once the adopted connections settled.
#[derive(Default)]
pub(super) struct Reconcile {
    /// The next check of the adopted connections.
    pub(super) check_at: Option<Instant>,
    /// The release happens by then whatever is still unsettled.
    pub(super) release_by: Option<Instant>,
}

impl Engine {
    /// Begin: find cdx's ABI; then set its aging timeouts, read cdx's VLAN and PPPoE tables
    /// (`interfaces.rs`) and its hardware tables (reconcile), and dump the kernel's
    /// conntracks.
    pub fn start(&mut self, now: Instant) {
        self.phase = Phase::Detecting;
        self.detect();
        self.dumps.next_sweep = self.cfg.sweep_interval.map(|i| now + i);
    }

    /// cdx's ABI is known: set its timeouts, read its VLAN and PPPoE tables, walk it (or dump
    /// at once).
    pub(super) fn begin(&mut self, now: Instant) {
        self.send_hw_timeouts();
        self.start_interfaces();
        if self.cfg.reconcile {
            self.phase = Phase::Walking;
            self.hw(HwOp::Walk, Pending::Walk);
        } else {
            self.phase = Phase::Dumping;
            self.start_dump(DumpKind::Initial, now);
        }
    }

    /// True once the table reflects the kernel (the initial dump completed).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    pub(super) fn on_walk(&mut self, reply: Result<HwReply, HwFailure>, now: Instant) {
        if let Ok(HwReply::Walk { conntracks, routes }) = reply {
            for r in routes {
                let ident = self.identity_of(&r.spec);
                self.hw_routes.adopt(ident, r.spec);
            }
            for ct in conntracks {
                self.adoption.insert((ct.proto, ct.orig), ct);
            }
            tracing::info!(target: LOG_TARGET,
                conntracks = self.adoption.len(),
                routes = self.hw_routes.len(),
                "read the hardware tables for reconciliation"
            );
        } else {
            tracing::warn!(target: LOG_TARGET, result = ?reply, "could not read the hardware tables; not adopting");
        }
        self.phase = Phase::Dumping;
        self.start_dump(DumpKind::Initial, now);
    }

    fn identity_of(&self, spec: &RouteSpec) -> RouteIdentity {
        let index = |n: &IfName| self.net.link_by_name(n).map_or(0, |l| l.index);
        RouteIdentity {
            out_ifindex: index(&spec.output),
            in_ifindex: index(&spec.input),
            output: spec.output,
            input: spec.input,
            mac: spec.mac,
            mtu: spec.mtu,
        }
    }

    /// Remove what the hardware holds that the kernel does not (after the initial dump); the
    /// walked route objects follow once the adopted connections have settled.
    pub(super) fn finish_reconcile(&mut self, now: Instant) {
        let orphans: Vec<WalkedCt> = self.adoption.drain().map(|(_, ct)| ct).collect();
        for ct in orphans {
            self.stats.reconcile_removed += 1;
            let spec = crate::core::hw::CtSpec {
                proto: ct.proto,
                orig: ct.orig,
                reply: ct.reply,
                qos_mark: 0,
                originator_downstream: false,
                route_orig: 0,
                route_reply: 0,
            };
            self.hw(HwOp::CtDeregister(spec), Pending::Orphan);
        }
        if self.hw_routes.unused().is_empty() {
            return;
        }
        self.reconcile.check_at = Some(now);
        self.reconcile.release_by = Some(now + SETTLE_LIMIT);
    }

    /// Release the walked route objects nobody uses, once no adopted connection waits for its
    /// first resolution (from the timers).
    pub(super) fn settle_reconcile(&mut self, now: Instant) {
        if self.reconcile.check_at.is_none_or(|t| t > now) {
            return;
        }
        let unsettled =
            self.table.iter().any(|(_, f)| f.stage == (Stage::Resolving { adopted: true }));
        if unsettled && self.reconcile.release_by.is_some_and(|t| t > now) {
            self.reconcile.check_at = Some(now + SETTLE_CHECK);
            return;
        }
        self.reconcile = Reconcile::default();
        for id in self.hw_routes.unused() {
            self.hw_routes.mark_deregistering(id);
            self.hw(HwOp::RouteDeregister(id), Pending::RouteDeregister(id));
        }
    }

    /// The next check of the adopted connections, if one is due (for the timers).
    pub(super) fn reconcile_deadline(&self) -> Option<Instant> {
        self.reconcile.check_at
    }

    /// A dumped conntrack the hardware holds: it is there already. Its routes are not known
    /// (cdx does not write them in a walk): its first resolution finds them.
    pub(super) fn adopt(&mut self, id: FlowId, now: Instant) {
        self.hw_index_insert(id);
        let now_s = self.secs(now);
        if let Some(flow) = self.table.get_mut(id) {
            flow.hw = [0; 2];
            flow.step(Transition::Adopt);
            flow.facts.set(Facts::COUNTED);
            flow.since = now_s;
        }
        self.stats.adopted += 1;
    }
}
