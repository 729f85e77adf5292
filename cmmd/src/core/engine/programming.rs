//! Programming: putting a resolved connection into the hardware, or changing it there.
//!
//! Owns the window of connections being programmed and the queue of those waiting for a
//! place in it. Contract: the route objects a connection needs are registered before the
//! connection (it waits for a registration in flight); a connection whose paths and mark
//! are what the hardware already holds sends nothing (an adopted one is confirmed); at most
//! `programming_window` connections are programmed at once, the rest wait their turn
//! (`hw_busy`); a refusal leaves what the hardware held in place and retries with an
//! exponential back-off (`retry_base` doubling up to `retry_max`); a registration whose
//! answer was lost is undone before its routes are released. Whatever was asked meanwhile
//! (withdraw, resolve again) runs when the command in flight completes.
//!
//! This is where the cdx ABI variants and the QoS mark shape the connection command
//! ([`Engine::ct_spec`]), where a path change becomes a deregister and a new registration,
//! and where route objects are split before their 16-bit reference count saturates.

use std::collections::VecDeque;
use std::time::Instant;

use super::hw_index::hw_key;
use super::lifecycle::{Facts, ORIG, REPLY, Stage, Then, Transition};
use super::resolution::DirPath;
use super::{Engine, Flow, FlowState, KeepaliveMode, LOG_TARGET, Pending};
use crate::core::flow::FlowId;
use crate::core::hw::{CtSpec, HwFailure, HwOp, RouteObjState};
use crate::core::stats::Reason;

/// The connections being programmed and those waiting for a place among them.
#[derive(Default)]
pub(super) struct Window {
    /// Connections in `Programming`.
    pub(super) programming: usize,
    /// Connections waiting for a place (`hw_busy`), in arrival order.
    pub(super) ready: VecDeque<FlowId>,
}

impl Engine {
    pub(super) fn program(&mut self, id: FlowId, paths: [Option<DirPath>; 2], now: Instant) {
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
        let in_hw = flow.stage.in_hw();
        let current = flow.hw;
        let unchanged = in_hw
            && (0..2).all(|d| match paths[d] {
                Some(p) => self.hw_routes.get(current[d]).is_some_and(|o| o.ident == p.ident),
                None => current[d] == 0,
            });
        if unchanged && !flow.facts.has(Facts::DIRTY) {
            // Nothing the hardware holds would change (an adopted connection is confirmed).
            if let Some(flow) = self.table.get_mut(id) {
                flow.step(Transition::Confirm);
                flow.reason = Reason::None;
            }
            self.schedule_poll(id, now);
            return;
        }
        if self.window.programming >= self.cfg.programming_window {
            let queued = flow.reason == Reason::HwBusy && flow.state() == FlowState::Resolving;
            if let Some(flow) = self.table.get_mut(id)
                && !queued
            {
                if !in_hw {
                    flow.step(Transition::Wait);
                    flow.reason = Reason::HwBusy;
                }
                self.stats.count(Reason::HwBusy);
                self.window.ready.push_back(id);
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
                    tracing::warn!(target: LOG_TARGET, error = %e, "cannot program connection");
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
        flow.step(Transition::Program);
        self.window.programming += 1;
        flow.facts.clear(Facts::DIRTY);
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

    pub(super) fn ct_spec(&self, flow: &Flow, routes: [u16; 2]) -> CtSpec {
        CtSpec {
            proto: flow.key.proto,
            orig: flow.key.orig,
            reply: flow.reply,
            fwmark: self.cfg.fwmark_mask.map_or(0, |mask| flow.mark & mask),
            route_orig: routes[ORIG],
            route_reply: routes[REPLY],
        }
    }

    pub(super) fn send_ct(&mut self, id: FlowId, now: Instant) {
        let Some(flow) = self.table.get(id) else { return };
        if !matches!(flow.stage, Stage::Programming { .. }) {
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
            self.ct_not_sent(id, now);
            return;
        }
        let spec = self.ct_spec(flow, flow.next_hw);
        let op = if flow.stage.in_hw() { HwOp::CtUpdate(spec) } else { HwOp::CtRegister(spec) };
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
        let held = flow.stage.in_hw();
        flow.step(Transition::Refused);
        if !held {
            self.hw_index_remove(id);
        }
        self.arm(id, now + delay);
    }

    /// A connection left `Programming`: let the next waiting one in.
    fn programmed(&mut self, now: Instant) {
        self.window.programming = self.window.programming.saturating_sub(1);
        while self.window.programming < self.cfg.programming_window {
            let Some(id) = self.window.ready.pop_front() else { break };
            let Some(flow) = self.table.get(id) else { continue };
            let waiting = (flow.state() == FlowState::Resolving && flow.reason == Reason::HwBusy)
                || flow.state() == FlowState::Offloaded;
            if waiting {
                if let Some(flow) = self.table.get_mut(id)
                    && flow.state() == FlowState::Resolving
                {
                    flow.reason = Reason::RouteLookup;
                }
                self.resolve(id, now);
            }
        }
    }

    pub(super) fn on_ct_done(&mut self, id: FlowId, now: Instant) {
        let now_us = self.micros(now);
        if self.table.get(id).is_some_and(|f| f.state() == FlowState::Programming) {
            self.programmed(now);
        }
        let (old, first, then, admitted_us) = {
            let Some(flow) = self.table.get_mut(id) else { return };
            let then = flow.stage.then();
            let old = flow.hw;
            flow.hw = flow.next_hw;
            flow.next_hw = [0; 2];
            flow.step(Transition::Programmed);
            flow.reason = Reason::None;
            flow.attempts = 0;
            let first = !flow.facts.has(Facts::COUNTED);
            flow.facts.set(Facts::COUNTED);
            (old, first, then, flow.admitted_us)
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
        match then {
            Then::Withdraw => {
                if let Some(flow) = self.table.get(id) {
                    let reason = flow.reason;
                    self.withdraw(
                        id,
                        if reason == Reason::None { Reason::Destroyed } else { reason },
                        now,
                    );
                }
            }
            Then::Resolve => self.resolve(id, now),
            Then::Settle => {}
        }
    }

    /// The hardware did not take a connection's register or update.
    pub(super) fn on_ct_failed(&mut self, id: FlowId, failure: &HwFailure, now: Instant) {
        let reason = match failure {
            HwFailure::Full => Reason::HwFull,
            HwFailure::Unencodable(_) => Reason::Unencodable,
            _ => Reason::HwError,
        };
        tracing::debug!(target: LOG_TARGET, outcome = ?failure, "hardware refused a connection; backing off");
        self.ct_refused(id, reason, *failure == HwFailure::Timeout, now);
    }

    /// A route object a connection needs failed to register: its command is never sent.
    pub(super) fn ct_not_sent(&mut self, id: FlowId, now: Instant) {
        self.ct_refused(id, Reason::HwError, false, now);
    }

    /// A connection being programmed ends up not (or no longer updated) in the hardware for
    /// `reason`; `maybe_registered`: its register may have happened (no answer), so it is
    /// undone before the routes it would reference are released.
    fn ct_refused(&mut self, id: FlowId, reason: Reason, maybe_registered: bool, now: Instant) {
        if self.table.get(id).is_none_or(|f| f.state() != FlowState::Programming) {
            return;
        }
        self.programmed(now);
        let Some(flow) = self.table.get_mut(id) else { return };
        let next = std::mem::take(&mut flow.next_hw);
        let (held, then) = (flow.stage.in_hw(), flow.stage.then());
        if maybe_registered
            && !held
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
        if then == Then::Withdraw {
            if let Some(flow) = self.table.get_mut(id) {
                flow.step(Transition::Refused);
                let reason = flow.reason;
                self.withdraw(id, reason, now);
            }
            return;
        }
        self.fail_program(id, reason, now);
    }
}
