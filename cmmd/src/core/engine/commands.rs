//! Hardware commands: sending them, and routing each result back to what asked.
//!
//! Owns the commands in flight (by tag, with what each is for) and the results kept for the
//! CLI. Contract: every command the engine sends goes through [`Engine::hw`] and is counted;
//! every result is counted (success, failure, timeout) and handed to the concern that sent
//! it: route objects here, connections to programming and withdrawal, polls to keepalive,
//! the walk to reconciliation, the ABI detection to `cdx.rs`. A result whose tag is unknown
//! is ignored. A route registration of unknown outcome (timeout, lost reply) counts as done,
//! so its id is not reused while cdx may hold it; a failed route deregistration is retried.
//! `EOPNOTSUPP` from cdx (not cmm's) is noted whatever command got it, and a deregistration
//! it refuses counts as done: nothing more will be sent.

use std::collections::VecDeque;
use std::time::Instant;

use hashbrown::HashMap;

use super::lifecycle::{Stage, Transition};
use super::programming::failure_reason;
use super::resolution::waits_for_network;
use super::{Action, Engine, LOG_TARGET};
use crate::core::flow::FlowId;
use crate::core::hw::{HwFailure, HwOp, HwReply, HwRequest, HwResult};
use crate::core::stats::Reason;

#[derive(Clone, Copy, Debug)]
pub(super) enum Pending {
    Detect,
    RouteRegister(u16),
    RouteDeregister(u16),
    Ct(FlowId),
    CtDeregister(FlowId),
    Orphan,
    Poll(FlowId),
    Config,
    Walk,
    External,
    /// A VLAN or PPPoE (de)registration (`interfaces.rs`).
    Itf {
        name: crate::core::net::IfName,
        register: bool,
    },
    /// The start-up walk of cdx's VLAN and PPPoE tables.
    ItfWalk,
}

/// What each command in flight is for, by tag. Tags are given out in sequence and the offload
/// worker answers in order, so the tags in flight form a window from the oldest unanswered
/// one: a ring indexed by `tag - first` (answered entries inside the window are `None` until
/// the oldest is answered). A tag outside the window is unknown. Against a hash map, an insert
/// and a remove touch the ends of one compact array instead of a random bucket of a table
/// that keeps the size of its largest burst (`docs/performance.md`).
#[derive(Default)]
pub(super) struct InFlight {
    first: u64,
    ring: VecDeque<Option<Pending>>,
    live: usize,
}

impl InFlight {
    /// Record `tag`, the next tag in sequence.
    fn insert(&mut self, tag: u64, pending: Pending) {
        if self.ring.is_empty() {
            self.first = tag;
        }
        debug_assert_eq!(
            tag,
            self.first + self.ring.len() as u64,
            "tags are given out in sequence"
        );
        self.ring.push_back(Some(pending));
        self.live += 1;
    }

    /// Take what `tag` was for; `None` for a tag not in flight (unknown or already answered).
    pub(super) fn remove(&mut self, tag: u64) -> Option<Pending> {
        let at = usize::try_from(tag.checked_sub(self.first)?).ok()?;
        let pending = self.ring.get_mut(at)?.take()?;
        self.live -= 1;
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.first += 1;
        }
        Some(pending)
    }

    /// True when nothing is in flight.
    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// What the commands in flight are for, oldest first.
    #[cfg(test)]
    pub(super) fn values(&self) -> impl Iterator<Item = &Pending> {
        self.ring.iter().flatten()
    }

    /// Give back the capacity of a burst once the window is small again.
    pub(super) fn release_memory(&mut self, keep: usize) {
        if self.ring.capacity() > 4 * keep && self.ring.len() < self.ring.capacity() / 8 {
            self.ring.shrink_to(keep.max(2 * self.ring.len()));
        }
    }
}

/// The commands in flight and the results kept for the CLI.
#[derive(Default)]
pub(super) struct Commands {
    /// What each command in flight is for.
    pub(super) inflight: InFlight,
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
        let Some(pending) = self.commands.inflight.remove(result.tag) else { return };
        match &result.outcome {
            Ok(_) => self.stats.hw_ok += 1,
            Err(failure) => {
                self.stats.hw_failed += 1;
                match failure {
                    HwFailure::Timeout => self.stats.hw_timeouts += 1,
                    HwFailure::ReplyLost => self.stats.hw_replies_lost += 1,
                    HwFailure::OffloadRefused => self.offload_refused(),
                    _ => {}
                }
            }
        }
        match pending {
            Pending::Detect => self.on_detect(result.outcome, now),
            Pending::RouteRegister(rid) => {
                let ok = result.outcome.is_ok();
                if !ok {
                    tracing::warn!(target: LOG_TARGET, route = rid, outcome = ?result.outcome, "route registration failed");
                }
                // A registration of unknown outcome may have happened: the object counts as
                // registered, so releasing it deregisters it and its id is not given to another
                // route while the hardware may hold it. Its waiters back off all the same.
                let maybe = result.outcome.as_ref().is_err_and(HwFailure::outcome_unknown);
                let (waiters, dereg) = self.hw_routes.registered(rid, ok || maybe);
                if dereg {
                    self.stats.hw_routes_released += 1;
                    self.hw(HwOp::RouteDeregister(rid), Pending::RouteDeregister(rid));
                }
                let reason = result.outcome.as_ref().err().map_or(Reason::HwError, failure_reason);
                for id in waiters {
                    if ok {
                        self.send_ct(id, now);
                    } else {
                        self.ct_not_sent(id, reason, now);
                    }
                }
            }
            Pending::RouteDeregister(rid) => {
                let ok = matches!(
                    result.outcome,
                    Ok(_) | Err(HwFailure::NotFound | HwFailure::OffloadRefused)
                );
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
                Ok(_) | Err(HwFailure::NotFound | HwFailure::OffloadRefused) => {
                    let Some(flow) = self.table.get_mut(id) else { return };
                    if flow.stage != Stage::Withdrawing {
                        // A second answer: a back-off timer armed before the withdrawal sent
                        // the deregister again; the first answer already moved it on.
                        return;
                    }
                    flow.step(Transition::Deregistered);
                    let reason = flow.reason;
                    if reason == Reason::PathChanged {
                        // Out of the hardware to be registered again on its new paths
                        // (`programming.rs`); it keeps its route objects until then.
                        self.resolve(id, now);
                        return;
                    }
                    self.stats.withdrawn += 1;
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
            Pending::Itf { name, register } => {
                self.on_itf_result(name, register, result.outcome, now);
            }
            Pending::ItfWalk => self.on_interface_walk(result.outcome, now),
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

#[cfg(test)]
mod tests {
    use super::{InFlight, Pending};

    fn tags(w: &InFlight) -> Vec<u64> {
        (w.first..w.first + w.ring.len() as u64)
            .filter(|t| w.ring[(t - w.first) as usize].is_some())
            .collect()
    }

    #[test]
    fn the_window_takes_answers_in_any_order_and_forgets_unknown_tags() {
        let mut w = InFlight::default();
        for tag in 7..12 {
            w.insert(tag, Pending::Config);
        }
        assert!(w.remove(6).is_none() && w.remove(12).is_none() && w.remove(u64::MAX).is_none());
        // Answered out of order: the window keeps its oldest unanswered tag.
        assert!(w.remove(9).is_some());
        assert!(w.remove(9).is_none(), "a second answer to the same tag is unknown");
        assert_eq!(tags(&w), [7, 8, 10, 11]);
        assert!(w.remove(7).is_some() && w.remove(8).is_some());
        assert_eq!((w.first, w.ring.len()), (10, 2), "answered tags at the front are dropped");
        assert!(w.remove(11).is_some() && w.remove(10).is_some());
        assert!(w.is_empty() && w.ring.is_empty());
        // Empty, it starts again at whatever tag comes next.
        w.insert(40, Pending::Walk);
        assert!(matches!(w.remove(40), Some(Pending::Walk)));
        assert!(w.is_empty());
    }

    #[test]
    fn an_unanswered_command_holds_the_window_and_nothing_else() {
        let mut w = InFlight::default();
        w.insert(1, Pending::Detect);
        for tag in 2..5000 {
            w.insert(tag, Pending::Config);
            assert!(w.remove(tag).is_some());
        }
        assert!(!w.is_empty());
        assert_eq!(tags(&w), [1]);
        w.release_memory(16);
        assert!(matches!(w.remove(1), Some(Pending::Detect)));
        assert!(w.is_empty() && w.ring.is_empty());
        w.release_memory(16);
        assert!(w.ring.capacity() <= 64, "{}", w.ring.capacity());
    }
}
