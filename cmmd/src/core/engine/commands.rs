//! Hardware commands: sending them, and routing each result back to what asked.
//!
//! Owns the commands in flight (by tag, with what each is for) and the results kept for the
//! CLI. Contract: every command the engine sends goes through [`Engine::hw`] and is counted;
//! every result is counted (success, failure, timeout) and handed to the concern that sent
//! it: route objects here, connections to programming and withdrawal, polls to keepalive,
//! the walk to reconciliation. A result whose tag is unknown is ignored. A route
//! registration of unknown outcome (timeout) counts as done, so its id is not reused while
//! cdx may hold it; a failed route deregistration is retried.

use std::time::Instant;

use hashbrown::HashMap;

use super::lifecycle::{Stage, Transition};
use super::resolution::waits_for_network;
use super::{Action, Engine, LOG_TARGET};
use crate::core::flow::FlowId;
use crate::core::hw::{HwFailure, HwOp, HwReply, HwRequest, HwResult};

#[derive(Clone, Copy, Debug)]
pub(super) enum Pending {
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

/// The commands in flight and the results kept for the CLI.
#[derive(Default)]
pub(super) struct Commands {
    /// What each command in flight is for, by tag.
    pub(super) inflight: HashMap<u64, Pending>,
    /// The last tag given out.
    pub(super) next_tag: u64,
    /// Results of [`Engine::submit_external`] commands not yet taken.
    pub(super) external: HashMap<u64, Result<HwReply, HwFailure>>,
}

impl Engine {
    pub(super) fn hw(&mut self, op: HwOp, pending: Pending) {
        self.commands.next_tag += 1;
        let tag = self.commands.next_tag;
        self.commands.inflight.insert(tag, pending);
        self.stats.hw_commands += 1;
        self.actions.push_back(Action::Hw(HwRequest { tag, op }));
    }

    /// The offload worker's result for one command.
    pub fn on_hw_result(&mut self, result: HwResult, now: Instant) {
        let Some(pending) = self.commands.inflight.remove(&result.tag) else { return };
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
                    tracing::warn!(target: LOG_TARGET, route = rid, outcome = ?result.outcome, "route registration failed");
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
                        self.ct_not_sent(id, now);
                    }
                }
            }
            Pending::RouteUpdate(rid) => {
                if result.outcome.is_err() {
                    tracing::warn!(target: LOG_TARGET, route = rid, outcome = ?result.outcome, "route update failed");
                }
            }
            Pending::RouteDeregister(rid) => {
                let ok = matches!(result.outcome, Ok(_) | Err(HwFailure::NotFound));
                self.hw_routes.deregistered(rid, ok);
                if !ok {
                    self.timers.route_retries.push((now + self.cfg.retry_base * 4, rid));
                }
            }
            Pending::Ct(id) => match result.outcome {
                Ok(_) => self.on_ct_done(id, now),
                Err(f) => self.on_ct_failed(id, &f, now),
            },
            Pending::CtDeregister(id) => match result.outcome {
                Ok(_) | Err(HwFailure::NotFound) => {
                    let Some(flow) = self.table.get_mut(id) else { return };
                    if flow.stage != Stage::Withdrawing {
                        // A second answer: a back-off timer armed before the withdrawal sent
                        // the deregister again; the first answer already moved it on.
                        return;
                    }
                    flow.step(Transition::Deregistered);
                    self.stats.withdrawn += 1;
                    let reason = flow.reason;
                    if waits_for_network(reason) {
                        self.wait_for_network(id, reason, now);
                    } else {
                        self.remove_flow(id, now);
                    }
                }
                Err(f) => {
                    tracing::warn!(target: LOG_TARGET, outcome = ?f, "withdrawal failed; retrying");
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
                    tracing::warn!(target: LOG_TARGET, outcome = ?f, "hardware configuration command failed");
                }
            }
            Pending::Walk => self.on_walk(result.outcome, now),
            Pending::External => {
                self.commands.external.insert(result.tag, result.outcome);
            }
        }
    }

    /// Send a hardware command on behalf of the CLI (`query …`); its result is kept for
    /// [`Engine::take_external`].
    pub fn submit_external(&mut self, op: HwOp) -> u64 {
        self.hw(op, Pending::External);
        self.commands.next_tag
    }

    /// The result of a command sent with [`Engine::submit_external`], once it arrived.
    pub fn take_external(&mut self, tag: u64) -> Option<Result<HwReply, HwFailure>> {
        self.commands.external.remove(&tag)
    }

    /// True when no hardware command is outstanding.
    pub fn hw_idle(&self) -> bool {
        self.commands.inflight.is_empty()
    }
}
