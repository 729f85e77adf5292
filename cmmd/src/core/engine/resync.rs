//! Resync: dumps of the kernel's conntrack table and the sweep that follows them.
//!
//! Owns the dump in progress, its generation and what is wanted next. Contract: at most one
//! dump runs at a time; requests made meanwhile (an overrun, the periodic sweep) coalesce
//! into one more dump after it (a resync wins over a sweep), never sooner than
//! `resync_min_interval` after the last one. When a dump completes, every tracked connection
//! it did not see is withdrawn as destroyed (mark and sweep by generation); a DESTROY seen
//! during the dump keeps a dumped copy of that conntrack from coming back. A failed dump is
//! retried the same way.

use std::time::Instant;

use hashbrown::HashSet;

use super::{Action, Engine, FlowState, LOG_TARGET, Phase};
use crate::core::flow::FlowKey;
use crate::core::stats::Reason;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DumpKind {
    Initial,
    Resync,
    Sweep,
}

pub(super) struct DumpRun {
    pub(super) generation: u16,
    pub(super) kind: DumpKind,
    started: Instant,
    pub(super) destroyed: HashSet<(FlowKey, u32)>,
}

/// The dump in progress and what is wanted next.
pub(super) struct Dumps {
    pub(super) run: Option<DumpRun>,
    /// Generation of the last dump started.
    pub(super) generation: u16,
    /// One more dump, after the one in progress.
    pub(super) wanted: Option<DumpKind>,
    /// No dump starts before this.
    pub(super) not_before: Instant,
    /// When the periodic sweep runs next.
    pub(super) next_sweep: Option<Instant>,
}

impl Dumps {
    /// No dump yet.
    pub(super) fn new(now: Instant) -> Dumps {
        Dumps { run: None, generation: 0, wanted: None, not_before: now, next_sweep: None }
    }
}

impl Engine {
    pub(super) fn start_dump(&mut self, kind: DumpKind, now: Instant) {
        self.dumps.generation = self.dumps.generation.wrapping_add(1);
        self.dumps.run = Some(DumpRun {
            generation: self.dumps.generation,
            kind,
            started: now,
            destroyed: HashSet::new(),
        });
        self.actions.push_back(Action::Dump { generation: self.dumps.generation });
    }

    pub(super) fn request_dump(&mut self, kind: DumpKind, now: Instant) {
        if self.phase != Phase::Ready || self.dumps.run.is_some() || now < self.dumps.not_before {
            // Coalesce: one more dump after the current one (a resync wins over a sweep).
            if self.dumps.wanted != Some(DumpKind::Resync) {
                self.dumps.wanted = Some(kind);
            }
            return;
        }
        self.start_dump(kind, now);
    }

    /// The event socket overflowed: events were lost. Resync by dump as soon as allowed.
    pub fn on_overrun(&mut self, now: Instant) {
        self.stats.overruns += 1;
        if self.active {
            self.request_dump(DumpKind::Resync, now);
        }
    }

    /// The dump of `generation` completed: sweep connections the kernel no longer has.
    pub fn on_dump_done(&mut self, generation: u16, now: Instant) {
        let Some(run) = self.dumps.run.take_if(|run| run.generation == generation) else { return };
        let stale = self.table.ids_where(|f| f.generation != generation);
        for id in stale {
            if run.kind != DumpKind::Initial {
                self.stats.resync_removed += 1;
            }
            self.withdraw(id, Reason::Destroyed, now);
        }
        let took = now.saturating_duration_since(run.started);
        match run.kind {
            DumpKind::Initial => {
                self.phase = Phase::Ready;
                self.finish_reconcile(now);
                tracing::info!(target: LOG_TARGET,
                    entries = self.table.len(),
                    ms = took.as_millis() as u64,
                    "initial conntrack dump done"
                );
                for id in self.table.ids_where(|f| f.state() == FlowState::Resolving) {
                    self.resolve(id, now);
                }
            }
            DumpKind::Resync => {
                self.stats.resyncs += 1;
                self.stats.last_resync_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
                tracing::info!(target: LOG_TARGET, ms = self.stats.last_resync_ms, "resync done");
            }
            DumpKind::Sweep => self.stats.sweeps += 1,
        }
        self.dumps.not_before = now + self.cfg.resync_min_interval;
        self.admit_from_retry(now);
    }

    /// The dump of `generation` failed (it will be retried).
    pub fn on_dump_failed(&mut self, generation: u16, now: Instant) {
        let Some(run) = self.dumps.run.take_if(|run| run.generation == generation) else { return };
        tracing::warn!(target: LOG_TARGET, generation, "conntrack dump failed; retrying");
        self.dumps.not_before = now + self.cfg.resync_min_interval;
        if run.kind == DumpKind::Initial {
            self.dumps.wanted = Some(DumpKind::Initial);
        } else {
            self.dumps.wanted = Some(DumpKind::Resync);
        }
    }
}
