//! Withdrawal: taking a connection out of the hardware, and forgetting it.
//!
//! Contract: a connection the hardware holds is deregistered before it is forgotten (a
//! failed deregister is retried with back-off; a programming command in flight is let finish
//! first); the route objects it held are released, and an object deregistered once its last
//! user lets go; the kernel entry's permanent bit is cleared unless the conntrack is gone. A
//! connection withdrawn because its path went away stays tracked and waits for the network;
//! any other is removed from the table, which lets a refused-for-room connection in. When
//! the hardware drops a connection by itself (REMOVED, or "not found" to a poll), the kernel
//! entry is deleted or left to expire as configured; a connection dropped while its update was
//! in flight gives its place in the programming window back.

use std::cmp::Reverse;
use std::time::Instant;

use super::lifecycle::{Facts, NO_ROUTE, Stage, Then, Transition};
use super::resolution::waits_for_network;
use super::{Action, Engine, FlowState, OnRemoved, Pending};
use crate::core::flow::FlowId;
use crate::core::hw::{HwEvent, HwOp};
use crate::core::route::RouteRef;
use crate::core::stats::Reason;

impl Engine {
    pub(super) fn withdraw(&mut self, id: FlowId, reason: Reason, now: Instant) {
        let Some(flow) = self.table.get_mut(id) else { return };
        if reason != Reason::None || flow.state() != FlowState::Offloaded {
            flow.reason = reason;
        }
        match flow.stage {
            Stage::Programming { .. } => flow.step(Transition::Defer(Then::Withdraw)),
            Stage::Withdrawing => {}
            stage if stage.in_hw() => {
                flow.step(Transition::Withdraw);
                if let Some(flow) = self.table.get(id) {
                    let spec = self.ct_spec(flow, flow.hw);
                    self.hw(HwOp::CtDeregister(spec), Pending::CtDeregister(id));
                }
            }
            _ if waits_for_network(reason) => self.wait_for_network(id, reason, now),
            _ => self.remove_flow(id, now),
        }
    }

    pub(super) fn release_route(&mut self, rid: u16) {
        if self.hw_routes.release(rid) {
            self.stats.hw_routes_released += 1;
            self.hw(HwOp::RouteDeregister(rid), Pending::RouteDeregister(rid));
        }
    }

    /// Give back what a connection holds because it was in the hardware: its index entry, its
    /// route objects, and the permanent bit on the kernel's entry.
    pub(super) fn release_hardware(&mut self, id: FlowId) {
        self.hw_index_remove(id);
        let Some(flow) = self.table.get_mut(id) else { return };
        let [a, b] = flow.hw;
        let [c, d] = flow.next_hw;
        (flow.hw, flow.next_hw) = ([0; 2], [0; 2]);
        let permanent = flow.facts.has(Facts::PERMANENT) && flow.reason != Reason::Destroyed;
        flow.facts.clear(Facts::PERMANENT);
        let (key, ct_id) = (flow.key, flow.ct_id);
        for rid in [a, b, c, d].into_iter().filter(|&r| r != 0) {
            self.release_route(rid);
        }
        if permanent {
            self.actions.push_back(Action::KernelPermanent { key, id: ct_id, set: false });
        }
    }

    pub(super) fn remove_flow(&mut self, id: FlowId, now: Instant) {
        self.release_hardware(id);
        let Some(flow) = self.table.remove(id) else { return };
        if flow.facts.has(Facts::POLLING) {
            // Its poll may be due in hours (an eighth of the kernel's TCP timeout).
            self.polls.stale += 1;
            if self.polls.stale > 1024 && self.polls.stale * 2 > self.polls.due.len() {
                let table = &self.table;
                self.polls.due.retain(|Reverse((_, id))| table.get(*id).is_some());
                self.polls.stale = 0;
            }
        }
        for raw in flow.routes {
            if raw != NO_ROUTE {
                self.routes.release(RouteRef::from_raw(raw));
            }
        }
        self.admit_from_retry(now);
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

    pub(super) fn hw_removed(&mut self, id: FlowId, now: Instant) {
        let on_removed = self.cfg.keepalive.on_removed;
        let Some(flow) = self.table.get_mut(id) else { return };
        if !flow.stage.in_hw() {
            self.stats.hw_removed_unknown += 1;
            return;
        }
        // The hardware let go by itself: the connection leaves the table from where it is.
        flow.reason = Reason::HwRemoved;
        let (key, ct_id) = (flow.key, flow.ct_id);
        let programming = matches!(flow.stage, Stage::Programming { .. });
        self.stats.count(Reason::HwRemoved);
        if on_removed == OnRemoved::Delete {
            self.stats.kernel_deletes += 1;
            self.actions.push_back(Action::KernelDelete { key, id: ct_id });
        }
        self.remove_flow(id, now);
        if programming {
            // Its update's answer will find it gone: its place in the window is free now.
            self.programmed(now);
        }
    }
}
