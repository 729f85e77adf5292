//! What the operator changes at run time: `set activate`, `set timeout`, SIGHUP, shutdown.
//!
//! Contract: deactivation withdraws every connection and ignores events until reactivation,
//! which re-learns the table by dump; new cdx timeouts are sent at once; a new policy
//! withdraws the tracked connections it refuses; new keepalive settings apply to polls
//! scheduled from then on. Shutdown stops the sweep and the polls and, only with `flush`,
//! withdraws everything (otherwise the next start adopts what the hardware holds).

use std::time::Instant;

use super::commands::Pending;
use super::reconcile::Phase;
use super::resync::DumpKind;
use super::{Engine, KeepaliveConfig, LOG_TARGET};
use crate::core::flow::key::proto;
use crate::core::hw::{HwOp, HwTimeouts};
use crate::core::policy::{CtInfo, Policy, Verdict};
use crate::core::stats::Reason;

impl Engine {
    /// `set activate 0|1`: off withdraws everything and ignores events; on re-learns by dump.
    pub fn set_active(&mut self, on: bool, now: Instant) {
        if on == self.active {
            return;
        }
        self.active = on;
        if on {
            tracing::info!(target: LOG_TARGET, "offload activated; re-learning the conntrack table");
            if self.phase == Phase::Ready {
                self.start_dump(DumpKind::Resync, now);
            }
        } else {
            tracing::info!(target: LOG_TARGET, flows = self.table.len(), "offload deactivated; withdrawing everything");
            self.retry.by_key.clear();
            self.retry.order.clear();
            for id in self.table.ids_where(|_| true) {
                self.withdraw(id, Reason::Deactivated, now);
            }
        }
    }

    /// True unless `set activate 0`.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Change cdx's aging timeouts (CLI `set timeout`, SIGHUP).
    pub fn set_hw_timeouts(&mut self, t: HwTimeouts) {
        self.cfg.hw_timeouts = t;
        self.send_hw_timeouts();
    }

    /// Send cdx the aging timeouts in force (at start, once its ABI is known, and on change).
    pub(super) fn send_hw_timeouts(&mut self) {
        let t = self.cfg.hw_timeouts;
        for (proto, seconds, unidir) in
            [(proto::TCP, t.tcp, 0), (proto::UDP, t.udp, t.udp_unidir), (0, t.other, 0)]
        {
            self.hw(HwOp::SetTimeout { proto, seconds, unidir }, Pending::Config);
        }
    }

    /// Replace the keepalive settings (SIGHUP); polls already scheduled keep their time.
    pub fn set_keepalive(&mut self, keepalive: KeepaliveConfig) {
        self.cfg.keepalive = keepalive;
    }

    /// Replace the static policy (SIGHUP). Offloaded connections the new policy refuses are
    /// withdrawn.
    pub fn set_policy(&mut self, policy: Policy, now: Instant) {
        self.cfg.policy = policy;
        let ids = self.table.ids_where(|_| true);
        for id in ids {
            let Some(flow) = self.table.get(id) else { continue };
            let ct = CtInfo {
                key: flow.key,
                reply: flow.reply,
                status: flow.status,
                tcp_state: flow.tcp_state.filter(|_| flow.key.proto == proto::TCP),
                mark: flow.mark,
                qos_connmark: None,
                id: flow.ct_id,
                timeout: None,
                helper: false,
                seq_adjust: false,
                fastpath: [None; 2],
            };
            if let Verdict::Refused(reason) = self.cfg.policy.classify(&ct) {
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
        }
    }

    /// Shutting down: with `flush`, withdraw every connection from the hardware; otherwise
    /// leave the hardware as it is (a restart adopts it).
    pub fn shutdown(&mut self, flush: bool, now: Instant) {
        self.dumps.next_sweep = None;
        self.polls.due.clear();
        self.polls.stale = 0;
        if flush {
            self.set_active(false, now);
        }
    }
}
