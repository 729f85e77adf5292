//! Programming: putting a resolved connection into the hardware, or changing it there.
//!
//! Owns the window of connections being programmed and the queue of those waiting for a
//! place in it. Contract: the route objects a connection needs are registered before the
//! connection (it waits for a registration in flight); a connection whose paths and mark
//! are what the hardware already holds sends nothing (an adopted one is confirmed on the
//! walked route objects of its paths); at most `programming_window` connections are
//! programmed at once, the rest wait their turn (`hw_busy`); a refusal leaves what the
//! hardware held in place and retries with an exponential back-off (`retry_base` doubling up
//! to `retry_max`); a registration whose answer was lost is undone before its routes are
//! released. Whatever was asked meanwhile (withdraw, resolve again) runs when the command in
//! flight completes. Nothing is sent while cdx's ABI is unknown or cdx is not cmm's
//! (`cdx.rs`).
//!
//! cdx's UPDATE inserts a direction not yet in hardware and moves a direction in hardware to
//! the MTU of its new route, nothing else: the port and MAC a direction forwards with were
//! copied from its route when it was inserted. So a change that is only an MTU, or a new
//! direction, is an UPDATE; any other path change (a next hop's MAC, another next hop or
//! port, a direction dropped) and a new QoS mark are a re-registration: the connection is
//! deregistered first, then registered on its new route objects, and its old route objects
//! are released only after that registration, so cdx never holds the connection on a route
//! object cmmd let go.

use std::collections::VecDeque;
use std::time::Instant;

use cdx_sys::fpp::mark::{DirectionPorts, originator_is_downstream};

use super::lifecycle::{Facts, ORIG, REPLY, Stage, Then, Transition};
use super::resolution::DirPath;
use super::{Engine, Flow, FlowState, KeepaliveMode, LOG_TARGET, Pending};
use crate::core::flow::FlowId;
use crate::core::hw::{CtSpec, HwFailure, HwOp, RouteIdentity, RouteObjState};
use crate::core::stats::Reason;

/// The connections being programmed and those waiting for a place among them.
#[derive(Default)]
pub(super) struct Window {
    /// Connections in `Programming`.
    pub(super) programming: usize,
    /// Connections waiting for a place (`hw_busy`), in arrival order.
    pub(super) ready: VecDeque<FlowId>,
}

/// What a connection in the hardware needs for its new paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Nothing: the hardware holds exactly this.
    None,
    /// An UPDATE does it: only MTUs changed, or a direction is added.
    Update,
    /// A direction's port or MAC changed, a direction went, or the mark changed: deregister,
    /// then register again.
    Reregister,
}

/// Same ports and MAC: what cdx copied into the hardware entry stays right.
fn same_forwarding(a: &RouteIdentity, b: &RouteIdentity) -> bool {
    a.out_ifindex == b.out_ifindex && a.in_ifindex == b.in_ifindex && a.mac == b.mac
}

impl Engine {
    pub(super) fn program(&mut self, id: FlowId, paths: [Option<DirPath>; 2], now: Instant) {
        let Some(flow) = self.table.get(id) else { return };
        if self.hw_key_held_by_other(id).is_some() {
            // cdx has no zones: the same tuple is already offloaded from another zone.
            self.stats.count(Reason::Zone);
            self.withdraw(id, Reason::Zone, now);
            return;
        }
        if let Some(reason) = self.cdx_blocks() {
            self.hold_back(id, reason);
            return;
        }
        let (in_hw, adopted, current) = (flow.stage.in_hw(), flow.stage.adopted(), flow.hw);
        let dirty = flow.facts.has(Facts::DIRTY);
        let change = if !in_hw {
            Change::Update
        } else if adopted {
            self.adopted_change(id, &paths)
        } else {
            self.change(current, dirty, &paths)
        };
        let Some(flow) = self.table.get(id) else { return };
        match change {
            Change::None => {
                // Nothing the hardware holds would change (an adopted connection is confirmed).
                if let Some(flow) = self.table.get_mut(id) {
                    flow.step(Transition::Confirm);
                    flow.reason = Reason::None;
                }
                self.schedule_poll(id, now);
                return;
            }
            Change::Reregister => {
                self.reregister(id);
                return;
            }
            Change::Update => {}
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
                    if acq.split {
                        self.stats.hw_route_splits += 1;
                        tracing::info!(target: LOG_TARGET, route = acq.id, output = %p.output, "a route object reached cdx's reference-count limit; new connections on its path use another");
                    }
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

    /// What a connection in the hardware (not adopted) on route objects `hw` needs for these
    /// paths; `dirty`: its mark changed.
    fn change(&self, hw: [u16; 2], dirty: bool, paths: &[Option<DirPath>; 2]) -> Change {
        if dirty {
            // The mark is copied into the hardware entry at insertion, as the MAC is.
            return Change::Reregister;
        }
        let mut change = Change::None;
        for d in [ORIG, REPLY] {
            let held = hw[d];
            let old = (held != 0).then(|| self.hw_routes.get(held).map(|o| o.ident));
            match (old, paths[d]) {
                (None, None) => {}
                (None, Some(_)) => change = Change::Update,
                (Some(_), None) | (Some(None), Some(_)) => return Change::Reregister,
                (Some(Some(old)), Some(new)) if old == new.ident => {}
                (Some(Some(old)), Some(new)) if same_forwarding(&old, &new.ident) => {
                    change = Change::Update;
                }
                (Some(Some(_)), Some(_)) => return Change::Reregister,
            }
        }
        change
    }

    /// An adopted connection: confirmed on the walked route objects of its paths if every
    /// direction has one (it is then taken as linking them), registered again otherwise.
    fn adopted_change(&mut self, id: FlowId, paths: &[Option<DirPath>; 2]) -> Change {
        let mut found = [None; 2];
        for d in [ORIG, REPLY] {
            if let Some(p) = paths[d] {
                match self.hw_routes.registered_for(&p.ident) {
                    Some(rid) => found[d] = Some(rid),
                    None => return Change::Reregister,
                }
            }
        }
        let mut hw = [0u16; 2];
        for d in [ORIG, REPLY] {
            if let Some(rid) = found[d]
                && self.hw_routes.hold(rid)
            {
                hw[d] = rid;
            }
        }
        if let Some(flow) = self.table.get_mut(id) {
            flow.hw = hw;
        }
        Change::None
    }

    /// Take a connection out of the hardware to register it again on its new paths: its
    /// deregistration first (`withdrawal.rs` resolves it again once cdx confirms); the route
    /// objects it holds stay held until the new registration is done.
    fn reregister(&mut self, id: FlowId) {
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.step(Transition::Withdraw);
        flow.reason = Reason::PathChanged;
        self.stats.count(Reason::PathChanged);
        self.stats.hw_reregistrations += 1;
        if let Some(flow) = self.table.get(id) {
            let spec = self.ct_spec(flow, flow.hw);
            self.hw(HwOp::CtDeregister(spec), Pending::CtDeregister(id));
        }
    }

    /// Nothing can be programmed now (`cdx.rs`): a connection not in the hardware waits with
    /// the reason; one in the hardware stays as it is.
    fn hold_back(&mut self, id: FlowId, reason: Reason) {
        let Some(flow) = self.table.get_mut(id) else { return };
        self.stats.count(reason);
        if flow.stage.in_hw() {
            return;
        }
        flow.step(Transition::Wait);
        flow.reason = reason;
        if reason == Reason::HwError {
            // The ABI is not known yet: tried again when it is.
            self.waiting.ids.push(id);
        }
    }

    pub(super) fn ct_spec(&self, flow: &Flow, routes: [u16; 2]) -> CtSpec {
        CtSpec {
            proto: flow.key.proto,
            orig: flow.key.orig,
            reply: flow.reply,
            qos_mark: flow.qos(),
            originator_downstream: flow.qos() != 0 && self.originator_downstream(routes),
            route_orig: routes[ORIG],
            route_reply: routes[REPLY],
        }
    }

    /// The vendor's rule for the mark's halves (`cdx_sys::fpp::mark`): the originator is
    /// downstream when it enters through a WAN port and does not leave through one (or the
    /// reply does the opposite).
    fn originator_downstream(&self, routes: [u16; 2]) -> bool {
        if self.cfg.wan_ports.is_empty() {
            return false;
        }
        let is_wan = |ifindex: u32| {
            self.net.link(ifindex).is_some_and(|l| self.cfg.wan_ports.contains(&l.name))
        };
        let ports = |rid: u16| {
            self.hw_routes.get(rid).map_or(DirectionPorts::default(), |o| DirectionPorts {
                offloaded: true,
                input_is_wan: is_wan(o.ident.in_ifindex),
                output_is_wan: is_wan(o.ident.out_ifindex),
            })
        };
        originator_is_downstream(ports(routes[ORIG]), ports(routes[REPLY]))
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
            self.ct_not_sent(id, Reason::HwError, now);
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
    pub(super) fn programmed(&mut self, now: Instant) {
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
        let now_s = self.secs(now);
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
            let admitted_us = flow.since;
            if first {
                // From now on `since` is the latest hardware activity.
                flow.facts.set(Facts::COUNTED);
                flow.since = now_s;
            }
            (old, first, then, admitted_us)
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
        tracing::debug!(target: LOG_TARGET, outcome = ?failure, "hardware refused a connection; backing off");
        self.ct_refused(id, failure_reason(failure), failure.outcome_unknown(), now);
    }

    /// A route object a connection needs failed to register (`reason`): its command is never
    /// sent.
    pub(super) fn ct_not_sent(&mut self, id: FlowId, reason: Reason, now: Instant) {
        self.ct_refused(id, reason, false, now);
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

/// The reason a failed command gives the connections it was for: cdx's codes kept apart.
pub(super) fn failure_reason(failure: &HwFailure) -> Reason {
    match failure {
        HwFailure::Full => Reason::HwFull,
        HwFailure::UnknownInterface(_) => Reason::UnknownInterface,
        HwFailure::OffloadRefused => Reason::NotOffloadOwner,
        HwFailure::MarkTooWide(_) => Reason::MarkTooWide,
        HwFailure::Unencodable(_) => Reason::Unencodable,
        HwFailure::Rejected(_) | HwFailure::Linked | HwFailure::NotFound => Reason::HwRefused,
        HwFailure::Timeout | HwFailure::ReplyLost | HwFailure::Io(_) => Reason::HwError,
    }
}
