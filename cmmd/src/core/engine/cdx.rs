//! Which cdx: the ABI its commands are encoded in, and whether it takes commands at all.
//!
//! Owns what the engine knows of cdx itself. Contract: the first command of a start is
//! [`HwOp::Detect`], and nothing else is sent before its answer (the offload worker encodes
//! every later command in the ABI it found or was given); the answer is logged in one line,
//! and [`Engine::cdx_abi`] gives it to `show status` and the metrics. A detection that fails
//! (no answer, answers that name no ABI) is retried with back-off (`retry_base` doubling up
//! to `retry_max`) while the kernel's table is tracked and nothing is programmed
//! (`hw_error`). A netlink `EOPNOTSUPP` to any command means cdx's flows are owned by the
//! Linux flowtable (`offload_owner=flowtable`): that is logged once, with what to change;
//! nothing more is sent to cdx (connections wait with `not_offload_owner`, polls stop,
//! withdrawals count as done), [`Engine::cdx_refused`] makes `/readyz` answer 503, and the rest
//! of cmmd keeps running.

use std::time::Instant;

use cdx_sys::detect::DetectError;

use super::reconcile::Phase;
use super::resync::DumpKind;
use super::{Engine, LOG_TARGET, Pending};
use crate::core::hw::{Abi, AbiChoice, HwFailure, HwOp, HwReply};
use crate::core::stats::Reason;

/// What the engine knows of cdx itself.
#[derive(Default)]
pub(super) struct CdxLink {
    /// The ABI commands are encoded in, once known.
    pub(super) abi: Option<AbiChoice>,
    /// cdx answered `EOPNOTSUPP`: it is not cmm's to program.
    pub(super) refused: bool,
    /// Detections that failed in a row.
    pub(super) detect_failures: u32,
    /// When a failed detection is tried again.
    pub(super) detect_at: Option<Instant>,
}

impl Engine {
    /// Ask the offload worker to find out (or set) the ABI.
    pub(super) fn detect(&mut self) {
        self.hw(HwOp::Detect(self.cfg.cdx_abi), Pending::Detect);
    }

    /// The answer to [`HwOp::Detect`].
    pub(super) fn on_detect(&mut self, outcome: Result<HwReply, HwFailure>, now: Instant) {
        match outcome {
            Ok(HwReply::Abi(choice)) => {
                self.cdx.abi = Some(choice);
                self.cdx.detect_failures = 0;
                tracing::info!(target: LOG_TARGET, abi = %choice.abi, "cdx ABI: {choice}");
                if self.phase == Phase::Detecting {
                    self.begin(now);
                } else {
                    // Found after a failure: the kernel is tracked already (not walked).
                    self.send_hw_timeouts();
                    self.retry_waiting(now);
                }
            }
            Err(HwFailure::OffloadRefused) => {
                self.offload_refused();
                self.track_without_hardware(now);
            }
            other => {
                self.cdx.detect_failures = self.cdx.detect_failures.saturating_add(1);
                let exp = self.cdx.detect_failures.min(16).saturating_sub(1);
                let delay = self.cfg.retry_base.saturating_mul(1 << exp).min(self.cfg.retry_max);
                self.cdx.detect_at = Some(now + delay);
                tracing::warn!(target: LOG_TARGET,
                    outcome = ?other,
                    failures = self.cdx.detect_failures,
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot tell which cdx ABI to speak; nothing is programmed until it answers"
                );
                self.track_without_hardware(now);
            }
        }
    }

    /// Start tracking the kernel's table without the hardware (not walked, not programmed).
    fn track_without_hardware(&mut self, now: Instant) {
        if self.phase == Phase::Detecting {
            self.phase = Phase::Dumping;
            self.start_dump(DumpKind::Initial, now);
        }
    }

    /// cdx refused a command with `EOPNOTSUPP`: stop sending it anything.
    pub(super) fn offload_refused(&mut self) {
        self.stats.hw_offload_refused += 1;
        if !self.cdx.refused {
            self.cdx.refused = true;
            tracing::error!(target: LOG_TARGET, "{}", DetectError::OffloadOwnerNotCmm);
        }
    }

    /// Send a detection put off by a failure, when its time has come (from the timers).
    pub(super) fn retry_detect(&mut self, now: Instant) {
        if self.cdx.detect_at.is_some_and(|t| t <= now) {
            self.cdx.detect_at = None;
            self.detect();
        }
    }

    /// Why nothing can be programmed now: cdx is not cmm's, or its ABI is not known yet.
    pub(super) fn cdx_blocks(&self) -> Option<Reason> {
        if self.cdx.refused {
            Some(Reason::NotOffloadOwner)
        } else if self.cdx.abi.is_none() {
            Some(Reason::HwError)
        } else {
            None
        }
    }

    /// True when cdx's IPv6 activity answers are refreshed only by its aging timer (NXP's
    /// cdx, `IPv6_HandleIP_Get_Timeout`): they can show activity, never idleness.
    pub(super) fn ipv6_activity_stale(&self) -> bool {
        self.cdx.abi.is_some_and(|choice| choice.abi == Abi::Lsdk)
    }

    /// The ABI commands are encoded in, and how it was decided (`None` until known).
    pub fn cdx_abi(&self) -> Option<AbiChoice> {
        self.cdx.abi
    }

    /// True once cdx refused FCI with `EOPNOTSUPP` (`offload_owner=flowtable`).
    pub fn cdx_refused(&self) -> bool {
        self.cdx.refused
    }
}
