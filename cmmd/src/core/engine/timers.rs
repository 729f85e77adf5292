//! Time: everything that is due.
//!
//! Owns the per-connection timers (back-off retries, withdrawal retries) and the route
//! deregistrations to retry. Contract: [`Engine::on_timer`] runs whatever is due at `now`
//! and [`Engine::next_deadline`] says when it must run next; a connection's timer is
//! ignored if another was armed after it (epoch), or if the connection ended; due activity
//! polls, the backstop retry of connections waiting for the network, the periodic sweep and
//! a wanted resync run here too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::commands::Pending;
use super::lifecycle::{Facts, Stage, Transition};
use super::reconcile::Phase;
use super::resync::DumpKind;
use super::{Engine, FlowState};
use crate::core::flow::FlowId;
use crate::core::hw::HwOp;

/// Timers that are not activity polls.
#[derive(Default)]
pub(super) struct Timers {
    /// Per-connection timers: due time, connection, and the epoch it was armed with.
    pub(super) flows: BinaryHeap<Reverse<(Instant, FlowId, u16)>>,
    /// Route deregistrations to send again, by due time.
    pub(super) route_retries: Vec<(Instant, u16)>,
}

impl Engine {
    pub(super) fn arm(&mut self, id: FlowId, at: Instant) {
        if let Some(flow) = self.table.get_mut(id) {
            flow.epoch = flow.epoch.wrapping_add(1);
            self.timers.flows.push(Reverse((at, id, flow.epoch)));
        }
    }

    /// Run whatever is due.
    pub fn on_timer(&mut self, now: Instant) {
        while let Some(Reverse((at, id, epoch))) = self.timers.flows.peek().copied() {
            if at > now {
                break;
            }
            self.timers.flows.pop();
            let Some(flow) = self.table.get(id) else { continue };
            if flow.epoch != epoch {
                continue;
            }
            match flow.stage {
                Stage::Backoff => {
                    if let Some(flow) = self.table.get_mut(id) {
                        flow.step(Transition::Retry);
                    }
                    self.resolve(id, now);
                }
                Stage::Offloaded { .. } => self.resolve(id, now),
                Stage::Withdrawing => {
                    let spec = self.ct_spec(flow, flow.hw);
                    self.hw(HwOp::CtDeregister(spec), Pending::CtDeregister(id));
                }
                Stage::Resolving { .. } | Stage::Programming { .. } => {}
            }
        }
        let mut i = 0;
        while i < self.timers.route_retries.len() {
            if self.timers.route_retries[i].0 <= now {
                let (_, rid) = self.timers.route_retries.swap_remove(i);
                self.hw(HwOp::RouteDeregister(rid), Pending::RouteDeregister(rid));
            } else {
                i += 1;
            }
        }
        while let Some(&Reverse((at, id))) = self.polls.due.peek() {
            if at > now {
                break;
            }
            self.polls.due.pop();
            let Some(flow) = self.table.get(id) else {
                self.polls.stale = self.polls.stale.saturating_sub(1);
                continue;
            };
            if flow.state() == FlowState::Offloaded {
                // POLLING stays set until the answer arrives.
                self.stats.keepalive_polls += 1;
                let spec = self.ct_spec(flow, flow.hw);
                self.hw(HwOp::CtRemaining(spec), Pending::Poll(id));
            } else if let Some(flow) = self.table.get_mut(id) {
                flow.facts.clear(Facts::POLLING);
                self.schedule_poll(id, now);
            }
        }
        self.retry_net_dump(now);
        self.retry_detect(now);
        self.settle_reconcile(now);
        if self.interfaces_due().is_some_and(|t| t <= now) {
            self.sync_interfaces(now);
        }
        if self.waiting.backstop.is_some_and(|t| t <= now) {
            self.retry_waiting(now);
        }
        if self.dumps.next_sweep.is_some_and(|t| t <= now) {
            self.dumps.next_sweep = self.cfg.sweep_interval.map(|i| now + i);
            if self.active {
                self.request_dump(DumpKind::Sweep, now);
            }
        }
        if self.dumps.run.is_none() && now >= self.dumps.not_before {
            match self.dumps.wanted.take() {
                Some(DumpKind::Initial) => self.start_dump(DumpKind::Initial, now),
                Some(kind) if self.phase == Phase::Ready => self.start_dump(kind, now),
                Some(kind) => self.dumps.wanted = Some(kind),
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
        take(self.timers.flows.peek().map(|Reverse((at, _, _))| *at));
        take(self.timers.route_retries.iter().map(|(at, _)| *at).min());
        take(self.polls.due.peek().map(|Reverse((at, _))| *at));
        take(self.waiting.backstop);
        take(self.net_redump.retry_at);
        take(self.cdx.detect_at);
        take(self.reconcile_deadline());
        take(self.interfaces_due());
        take(self.dumps.next_sweep);
        if self.dumps.wanted.is_some() && self.dumps.run.is_none() {
            take(Some(self.dumps.not_before));
        }
        next
    }
}
