//! Admission: conntrack messages in, tracked connections out.
//!
//! Owns the queue of connections refused for room. Contract: every NEW, UPDATE, DESTROY and
//! dump entry is counted; a conntrack that is not tracked yet is classified by the static
//! policy, and a candidate enters the table unless the table is full (then it is refused,
//! counted and remembered, and admitted when room appears: nothing already tracked is ever
//! evicted); a tracked one is updated in place and re-resolved when what the hardware holds
//! would change, or withdrawn when it stops being a candidate. A DESTROY (or a conntrack
//! replaced under the same tuple) withdraws it. A candidate that is the host's own enters
//! the table as the vendor's do (counted as `local`, and against the table's capacity), for
//! `show connections` only: it is never resolved, programmed or adopted.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use hashbrown::HashMap;

use super::lifecycle::{Facts, NO_ROUTE, Stage};
use super::reconcile::Phase;
use super::resync::DumpKind;
use super::{CtEventKind, Engine, Flow, hw_key};
use crate::core::flow::key::proto;
use crate::core::flow::{FlowId, FlowKey};
use crate::core::policy::{CtInfo, Dirs, HostEnd, Verdict};
use crate::core::stats::Reason;

/// Connections refused because the table was full, oldest first, bounded by `retry_queue`.
#[derive(Default)]
pub(super) struct RetryQueue {
    pub(super) by_key: HashMap<FlowKey, CtInfo>,
    pub(super) order: VecDeque<FlowKey>,
}

impl Engine {
    /// A conntrack message from the kernel.
    pub fn on_conntrack(&mut self, kind: CtEventKind, ct: &CtInfo, now: Instant) {
        match kind {
            CtEventKind::New => self.stats.events_new += 1,
            CtEventKind::Update => self.stats.events_update += 1,
            CtEventKind::Destroy => self.stats.events_destroy += 1,
            CtEventKind::Dump => self.stats.dump_entries += 1,
        }
        if !self.active {
            return;
        }
        if kind == CtEventKind::Destroy {
            if let Some(run) = self.dumps.run.as_mut() {
                run.destroyed.insert((ct.key, ct.id));
            }
            self.forget_retry(&ct.key);
            if let Some(id) = self.table.find(&ct.key) {
                let same = self
                    .table
                    .get(id)
                    .is_some_and(|f| f.ct_id == 0 || ct.id == 0 || f.ct_id == ct.id);
                if same {
                    self.withdraw(id, Reason::Destroyed, now);
                }
            }
            return;
        }
        if kind == CtEventKind::Dump
            && self.dumps.run.as_ref().is_some_and(|run| run.destroyed.contains(&(ct.key, ct.id)))
        {
            return;
        }
        let generation =
            self.dumps.run.as_ref().map_or(self.dumps.generation, |run| run.generation);
        let now_s = self.secs(now);
        if let Some(id) = self.table.find(&ct.key) {
            self.on_tracked(id, ct, generation, now_s, now);
            return;
        }
        match self.cfg.policy.classify(ct) {
            Verdict::NotYet => {}
            Verdict::Refused(reason) => {
                let static_reason =
                    matches!(reason, Reason::UnsupportedProtocol | Reason::Disabled);
                if !static_reason || matches!(kind, CtEventKind::New | CtEventKind::Dump) {
                    self.stats.count(reason);
                }
            }
            Verdict::Candidate(dirs) => {
                if let Some(id) = self.admit(ct, dirs, generation, now) {
                    if kind == CtEventKind::Dump
                        && self.dumps.run.as_ref().is_some_and(|d| d.kind != DumpKind::Initial)
                    {
                        self.stats.resync_added += 1;
                    }
                    // During the initial dump the table is only loaded: readiness first,
                    // resolution and programming for all at once when the dump is done.
                    if self.phase == Phase::Ready {
                        self.resolve(id, now);
                    }
                }
            }
        }
    }

    fn on_tracked(&mut self, id: FlowId, ct: &CtInfo, generation: u16, now_s: u32, now: Instant) {
        let qos = self.qos_of(ct);
        let verdict = self.cfg.policy.classify(ct);
        let Some(flow) = self.table.get_mut(id) else { return };
        if flow.ct_id != 0 && ct.id != 0 && flow.ct_id != ct.id {
            // The conntrack we track was replaced by another with the same tuple: its DESTROY
            // was lost. Drop the old one; the new one is admitted by the next event or sweep.
            self.withdraw(id, Reason::Destroyed, now);
            return;
        }
        flow.generation = generation;
        flow.status = ct.status;
        if let Some(state) = ct.tcp_state {
            flow.tcp_state = Some(state);
        }
        if let Some(t) = ct.timeout {
            flow.kernel_expires = now_s.saturating_add(t);
        }
        if ct.id != 0 {
            flow.ct_id = ct.id;
        }
        let mark_changed = flow.mark != ct.mark;
        flow.mark = ct.mark;
        let qos_changed = flow.qos() != qos;
        flow.set_qos(qos);
        match verdict {
            Verdict::NotYet => {
                let reason =
                    if ct.key.proto == proto::TCP { Reason::NotEstablished } else { Reason::None };
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
            Verdict::Refused(reason) => {
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
            Verdict::Candidate(dirs) => {
                let dirs_changed = flow.dirs != dirs;
                flow.dirs = dirs;
                if qos_changed {
                    flow.facts.set(Facts::DIRTY);
                }
                // A new mark changes the lookups where it stands for the packet mark.
                let lookup_mark_changed = mark_changed && self.cfg.route_mark_mask != 0;
                let ingress_changed = self.take_kernel_ingress(id, ct);
                if dirs_changed || qos_changed || lookup_mark_changed || ingress_changed {
                    self.resolve(id, now);
                }
            }
        }
    }

    fn admit(&mut self, ct: &CtInfo, dirs: Dirs, generation: u16, now: Instant) -> Option<FlowId> {
        let local = self.host_side_of(ct);
        let now_s = self.secs(now);
        let mut flow = Flow {
            key: ct.key,
            reply: ct.reply,
            ct_id: ct.id,
            status: ct.status,
            mark: ct.mark,
            qos: [0; 2],
            kernel_expires: now_s.saturating_add(ct.timeout.unwrap_or(0)),
            since: self.micros(now),
            generation,
            epoch: 0,
            routes: [NO_ROUTE; 3],
            hw: [0; 2],
            next_hw: [0; 2],
            stage: Stage::ADMITTED,
            reason: if local.is_some() { Reason::Local } else { Reason::RouteLookup },
            tcp_state: ct.tcp_state,
            dirs,
            facts: local.unwrap_or_default(),
            attempts: 0,
        };
        flow.set_qos(self.qos_of(ct));
        match self.table.insert(flow) {
            Ok(id) if local.is_some() => {
                // Tracked for display only; what the hardware may hold of it from an earlier
                // start stays an orphan of the reconciliation.
                self.stats.count(Reason::Local);
                self.forget_retry(&ct.key);
                Some(id)
            }
            Ok(id) => {
                self.stats.admitted += 1;
                self.forget_retry(&ct.key);
                self.take_kernel_ingress(id, ct);
                if self.adoption.remove(&hw_key(&ct.key)).is_some() {
                    self.adopt(id, now);
                }
                Some(id)
            }
            Err(_) => {
                self.stats.count(Reason::TableFull);
                self.remember_retry(ct);
                None
            }
        }
    }

    /// The QoS mark to program for a conntrack: the kernel's own (`CTA_QOSCONNMARK`) where
    /// it sends one, else the conntrack mark under `fwmark_mask` when configured, else 0.
    fn qos_of(&self, ct: &CtInfo) -> u64 {
        ct.qos_connmark
            .unwrap_or_else(|| self.cfg.fwmark_mask.map_or(0, |mask| u64::from(ct.mark & mask)))
    }

    fn remember_retry(&mut self, ct: &CtInfo) {
        if self.cfg.retry_queue == 0 {
            return;
        }
        if self.retry.by_key.insert(ct.key, *ct).is_none() {
            self.retry.order.push_back(ct.key);
        }
        while self.retry.by_key.len() > self.cfg.retry_queue {
            match self.retry.order.pop_front() {
                Some(old) => {
                    self.retry.by_key.remove(&old);
                }
                None => break,
            }
        }
    }

    fn forget_retry(&mut self, key: &FlowKey) {
        self.retry.by_key.remove(key);
    }

    /// Admit remembered table-full refusals while there is room.
    pub(super) fn admit_from_retry(&mut self, now: Instant) {
        while !self.table.is_full() {
            let Some(key) = self.retry.order.pop_front() else { return };
            let Some(ct) = self.retry.by_key.remove(&key) else { continue };
            if self.table.find(&key).is_some() {
                continue;
            }
            if let Verdict::Candidate(dirs) = self.cfg.policy.classify(&ct) {
                let generation =
                    self.dumps.run.as_ref().map_or(self.dumps.generation, |run| run.generation);
                if let Some(id) = self.admit(&ct, dirs, generation, now) {
                    self.resolve(id, now);
                }
            }
        }
    }

    /// True when a connection is the host's own (host-originated or host-terminated): it was
    /// admitted as such (its client, the original source, or its server, the reply's source
    /// after DNAT, is an address of this host), it was refused as `local` on its way out, or
    /// its address became local since. `show connections local` lists these.
    pub fn is_local(&self, flow: &Flow) -> bool {
        flow.local_orig()
            || flow.local_reply()
            || flow.reason == Reason::Local
            || self.host_side(&flow.key.orig.src, &flow.reply.src).is_some()
    }

    /// Which end of the connection is the host itself, if any: the vendor's order, the
    /// original direction first. An ASK kernel says it (a direction that never entered the
    /// box was generated by the host: [`CtInfo::fastpath_host_end`]); else an end whose
    /// address is the host's is.
    fn host_side_of(&self, ct: &CtInfo) -> Option<Facts> {
        match ct.fastpath_host_end() {
            Some(HostEnd::Originator) => Some(Facts::LOCAL_ORIG),
            Some(HostEnd::Replier) => Some(Facts::LOCAL_REPLY),
            None => self.host_side(&ct.key.orig.src, &ct.reply.src),
        }
    }

    /// The one test of "the host's own" by address, for admission and [`Engine::is_local`]:
    /// host-originated when its client is an address of this host, else host-terminated when
    /// its server is (the vendor tests the original direction first, then the reply). (Where
    /// the kernel's per-direction fast-path information is present, an input interface of 0
    /// says the same.)
    fn host_side(&self, client: &IpAddr, server: &IpAddr) -> Option<Facts> {
        if self.net.is_local(client) {
            Some(Facts::LOCAL_ORIG)
        } else if self.net.is_local(server) {
            Some(Facts::LOCAL_REPLY)
        } else {
            None
        }
    }
}
