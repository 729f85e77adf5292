//! Keepalive: keeping the kernel's conntrack of an offloaded connection alive, and no longer.
//!
//! Owns the activity polls by due time and the refresh rate limit. Contract: in refresh mode
//! each connection in the hardware has at most one activity poll scheduled or in flight,
//! every `interval` or an eighth of the kernel's timeout, whichever is longer; the kernel
//! timeout is set to what the kernel would have set after the hardware's last packet (never
//! more; with a margin, never more than the margin past the activity), at most
//! `max_refresh_per_second`; a poll answered "not found" is the hardware having dropped the
//! connection. In permanent mode the kernel entry carries IPS_PERMANENT instead while the
//! hardware holds it. Polls stop when cdx refuses commands (`cdx.rs`).
//!
//! IPv6 on NXP's cdx (the LSDK ABI): its `GET_TIMEOUT` reads an activity time that only the
//! aging timer refreshes, so an active flow looks idle between two runs of that timer. Such
//! an answer can show activity, never idleness: the connection is treated as active (its
//! kernel entry refreshed as after a packet now), and cdx's own aging decides when it is
//! idle, with a REMOVED event (the kernel entry is then deleted or left to expire as
//! configured). `keepalive.margin` cannot hold for these connections; a dead daemon still
//! cannot make them immortal (each refresh is one kernel timeout at most).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use conntrack::Status;

use super::lifecycle::Facts;
use super::{Action, Engine, Flow, FlowState, KeepaliveMode};
use crate::core::flow::FlowId;
use crate::core::flow::key::proto;
use crate::core::hw::{HwFailure, HwReply};
use crate::core::policy::Dirs;

/// The activity polls and the refresh rate limit.
pub(super) struct Polls {
    /// Activity polls by due time; entries of connections that ended are skipped when due
    /// and dropped in bulk once they are the majority (`stale` counts them).
    pub(super) due: BinaryHeap<Reverse<(Instant, FlowId)>>,
    pub(super) stale: usize,
    /// Token bucket of kernel timeout refreshes.
    pub(super) refresh_tokens: f64,
    pub(super) refresh_at: Instant,
}

impl Polls {
    /// No poll scheduled, a full bucket of `per_second` refreshes.
    pub(super) fn new(per_second: u32, now: Instant) -> Polls {
        Polls {
            due: BinaryHeap::new(),
            stale: 0,
            refresh_tokens: f64::from(per_second),
            refresh_at: now,
        }
    }
}

impl Engine {
    /// Schedule the next activity poll of a connection in the hardware (one at a time).
    pub(super) fn schedule_poll(&mut self, id: FlowId, now: Instant) {
        if self.cfg.keepalive.mode != KeepaliveMode::Refresh {
            return;
        }
        let Some(flow) = self.table.get(id) else { return };
        if flow.facts.has(Facts::POLLING) || !flow.stage.in_hw() || self.cdx.refused {
            return;
        }
        let life = self.kernel_life(flow);
        let period = self.cfg.keepalive.interval.max(Duration::from_secs(u64::from(life / 8)));
        if let Some(flow) = self.table.get_mut(id) {
            flow.facts.set(Facts::POLLING);
        }
        self.polls.due.push(Reverse((now + period, id)));
    }

    /// The timeout the kernel gives this connection when it sees a packet.
    fn kernel_life(&self, flow: &Flow) -> u32 {
        let k = self.cfg.kernel_timeouts;
        let life = match flow.key.proto {
            proto::TCP => k.tcp_established,
            _ if flow.status.contains(Status::ASSURED) => k.udp_stream,
            _ => k.udp,
        };
        match self.cfg.keepalive.margin {
            Some(m) => life.min(u32::try_from(m.as_secs()).unwrap_or(u32::MAX)),
            None => life,
        }
    }

    /// Seconds until cdx ages the connection out, from what the activity polls learnt (cdx's
    /// last `GET_TIMEOUT` answer, counted down since); 0 when the hardware does not hold it.
    /// Without polls (permanent mode) it counts down from the registration.
    pub fn hw_remaining(&self, flow: &Flow, now: Instant) -> u32 {
        if !flow.in_hw() {
            return 0;
        }
        // In the hardware, `since` is the latest activity seen (see `Flow::since`).
        let idle = self.secs(now).saturating_sub(flow.since);
        self.hw_life(flow).saturating_sub(idle)
    }

    fn hw_life(&self, flow: &Flow) -> u32 {
        let t = self.cfg.hw_timeouts;
        match (flow.key.proto, flow.dirs) {
            (proto::TCP, _) => t.tcp,
            (proto::UDP, Dirs::Both) => t.udp,
            (proto::UDP, Dirs::OrigOnly) => t.udp_unidir,
            _ => t.other,
        }
    }

    pub(super) fn on_poll(
        &mut self,
        id: FlowId,
        outcome: Result<HwReply, HwFailure>,
        now: Instant,
    ) {
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.facts.clear(Facts::POLLING);
        if flow.state() != FlowState::Offloaded {
            // Being updated or withdrawn: poll again later if it stays in the hardware.
            self.schedule_poll(id, now);
            return;
        }
        match outcome {
            Ok(HwReply::Remaining(remaining)) => {
                let now_s = self.secs(now);
                let Some(flow) = self.table.get(id) else { return };
                let idle = self.hw_life(flow).saturating_sub(remaining);
                let active = if flow.key.orig.src.is_ipv6() && self.ipv6_activity_stale() {
                    // Refreshed only by cdx's aging timer: no proof of idleness.
                    now_s
                } else {
                    now_s.saturating_sub(idle).max(flow.since)
                };
                let life = self.kernel_life(flow);
                let target = active.saturating_add(life);
                let slack = (life / 8).max(1);
                // Extend when the hardware saw traffic the kernel did not; with a margin, also
                // shorten so the kernel entry never outlives activity by more than the margin.
                let wanted = target > flow.kernel_expires.saturating_add(slack)
                    || (self.cfg.keepalive.margin.is_some()
                        && target.saturating_add(slack) < flow.kernel_expires);
                let key = flow.key;
                if let Some(flow) = self.table.get_mut(id) {
                    flow.since = active;
                }
                if wanted && target > now_s && self.take_refresh_token(now) {
                    if let Some(flow) = self.table.get_mut(id) {
                        flow.kernel_expires = target;
                    }
                    self.stats.keepalive_refreshes += 1;
                    self.actions.push_back(Action::KernelRefresh { key, timeout: target - now_s });
                }
                self.schedule_poll(id, now);
            }
            Err(HwFailure::NotFound) => {
                // The hardware lost it and the REMOVED event with it.
                self.hw_removed(id, now);
            }
            // cdx is not cmm's: nothing more is asked of it.
            Err(HwFailure::OffloadRefused) => {}
            _ => self.schedule_poll(id, now),
        }
    }

    fn take_refresh_token(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.cfg.keepalive.max_refresh_per_second.get());
        let elapsed = now.saturating_duration_since(self.polls.refresh_at).as_secs_f64();
        self.polls.refresh_at = now;
        self.polls.refresh_tokens = (self.polls.refresh_tokens + elapsed * rate).min(rate.max(1.0));
        if self.polls.refresh_tokens >= 1.0 {
            self.polls.refresh_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub(super) fn set_permanent(&mut self, id: FlowId) {
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.facts.set(Facts::PERMANENT);
        let (key, id) = (flow.key, flow.ct_id);
        self.actions.push_back(Action::KernelPermanent { key, id, set: true });
    }
}
