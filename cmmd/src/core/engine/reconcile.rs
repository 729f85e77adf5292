//! Start-up and reconciliation: what the hardware already holds when cmmd starts.
//!
//! Owns the engine's phase (idle, walking the hardware, dumping the kernel, ready) and the
//! connections read back from the hardware that wait to be matched. Contract: the hardware
//! is walked before the kernel is dumped; a dumped conntrack that the hardware holds is
//! adopted (kept, no second registration, its route objects held) and confirmed against the
//! network when it is first resolved; whatever the hardware holds that the initial dump did
//! not show is removed, and route objects nobody uses are deregistered. Nothing is reset
//! wholesale, so a restart does not drop offloaded traffic to the CPU.

use std::time::Instant;

use super::lifecycle::{Facts, ORIG, REPLY, Transition};
use super::resync::DumpKind;
use super::{Engine, LOG_TARGET, Pending};
use crate::core::flow::FlowId;
use crate::core::flow::key::proto;
use crate::core::hw::{HwFailure, HwOp, HwReply, RouteIdentity, RouteSpec, WalkedCt};
use crate::core::net::IfName;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// `start` not called yet.
    Idle,
    /// Waiting for the hardware walk.
    Walking,
    /// Waiting for the initial dump.
    Dumping,
    /// The table reflects the kernel.
    Ready,
}

impl Engine {
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
        self.dumps.next_sweep = self.cfg.sweep_interval.map(|i| now + i);
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
                self.adoption.insert((ct.spec.proto, ct.spec.orig), ct);
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
            mac: spec.mac,
            mtu: spec.mtu,
        }
    }

    /// Remove what the hardware holds that the kernel does not (after the initial dump).
    pub(super) fn finish_reconcile(&mut self) {
        let orphans: Vec<WalkedCt> = self.adoption.drain().map(|(_, ct)| ct).collect();
        for ct in orphans {
            self.stats.reconcile_removed += 1;
            self.hw(HwOp::CtDeregister(ct.spec), Pending::Orphan);
        }
        self.release_unused_routes();
    }

    fn release_unused_routes(&mut self) {
        for id in self.hw_routes.unused() {
            self.hw_routes.mark_deregistering(id);
            self.hw(HwOp::RouteDeregister(id), Pending::RouteDeregister(id));
        }
    }

    pub(super) fn adopt(&mut self, id: FlowId, walked: &WalkedCt) {
        let mut held = [0u16; 2];
        for (d, rid) in [(ORIG, walked.spec.route_orig), (REPLY, walked.spec.route_reply)] {
            if rid != 0 && self.hw_routes.hold(rid) {
                held[d] = rid;
            }
        }
        self.hw_index_insert(id);
        if let Some(flow) = self.table.get_mut(id) {
            flow.hw = held;
            flow.step(Transition::Adopt);
            flow.facts.set(Facts::COUNTED);
        }
        self.stats.adopted += 1;
    }
}
