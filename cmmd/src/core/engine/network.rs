//! The network view: route answers and route, rule, link, address and neighbour changes.
//!
//! Owns the list of connections waiting for the network. Contract: a route answer resumes
//! the connections waiting on it and, when the route changed, re-resolves those using it; a
//! route or rule change looks every cached destination it may cover up again; a link change
//! that matters (up, down, MTU, name) re-resolves the connections on it, and a deleted link
//! withdraws them; a next hop that moved to another MAC re-resolves the connections on route
//! objects with its old MAC (route objects never change: those that moved are registered
//! again, `programming.rs`), and one that failed withdraws its connections; a neighbour deleted by the kernel's garbage collection
//! disturbs nothing. Every change retries the connections that wait for the network. After an
//! rtnetlink overrun the view is dumped again (one re-dump at a time; overruns meanwhile
//! coalesce) and everything in use is checked against it; a re-dump that fails is counted,
//! reported until one completes, and retried with back-off.

use std::net::IpAddr;
use std::time::Instant;

use super::{Action, Engine, FlowState, LOG_TARGET};
use crate::core::flow::FlowId;
use crate::core::net::{Link, Mac, Neighbour, NetView};
use crate::core::route::{RouteError, RouteInfo};
use crate::core::stats::Reason;

/// Connections that wait for the network (not in the hardware, or adopted and not yet
/// confirmed), and the backstop retry of all of them.
#[derive(Default)]
pub(super) struct Waiting {
    /// May hold a connection twice or one that ended: checked when retried.
    pub(super) ids: Vec<FlowId>,
    pub(super) backstop: Option<Instant>,
}

/// The re-dump of the view after an rtnetlink overrun: asked, or failed and put off.
#[derive(Default)]
pub(super) struct NetRedump {
    /// [`Action::NetDump`] was asked and has not completed or failed.
    pub(super) running: bool,
    /// Re-dumps failed in a row.
    pub(super) failures: u32,
    /// When a failed re-dump is tried again.
    pub(super) retry_at: Option<Instant>,
}

impl Engine {
    /// The kernel's answer to a route lookup.
    pub fn on_route_answer(
        &mut self,
        request: u32,
        answer: Result<RouteInfo, RouteError>,
        now: Instant,
    ) {
        let Some(done) = self.routes.complete(request, answer) else { return };
        for id in done.waiters {
            self.resolve(id, now);
        }
        if done.changed {
            // Connections on this route, and those waiting because it had none.
            let raw = done.route.raw();
            let users = self.table.ids_where(|f| {
                f.routes.contains(&raw)
                    && matches!(
                        f.state(),
                        FlowState::Offloaded
                            | FlowState::Backoff
                            | FlowState::Programming
                            | FlowState::Resolving
                    )
            });
            for id in users {
                self.resolve(id, now);
            }
        }
    }

    /// A route was added or removed: look up again every cached destination it may cover
    /// (`None`: a rule changed, everything).
    pub fn on_route_change(&mut self, prefix: Option<crate::core::policy::Cidr>, _now: Instant) {
        for lookup in self.routes.invalidate(prefix.as_ref()) {
            self.stats.route_lookups += 1;
            self.actions.push_back(Action::RouteLookup(lookup));
        }
    }

    /// A link appeared or changed.
    pub fn on_link(&mut self, link: Link, now: Instant) {
        let change = self.net.upsert_link(link);
        self.sync_interfaces(now);
        if change.left_bridge {
            self.left_bridge(link.index, now);
        }
        if change.affects_flows() {
            self.link_changed(link.index, now);
        }
        self.retry_waiting(now);
    }

    /// A link disappeared.
    ///
    /// Its connections leave the hardware and wait for it (RTM_DELLINK is explicit; an
    /// interface merely missing from the view, as during a re-dump, is only waited for).
    pub fn on_link_removed(&mut self, index: u32, now: Instant) {
        if self.net.remove_link(index).is_some() {
            self.sync_interfaces(now);
            self.on_route_change(None, now);
            for id in self.users_of_link(index) {
                self.stats.count(Reason::LinkDown);
                self.withdraw(id, Reason::LinkDown, now);
            }
        }
    }

    fn link_changed(&mut self, index: u32, now: Instant) {
        // Routes through this link may have changed too.
        self.on_route_change(None, now);
        for id in self.users_of_link(index) {
            self.resolve(id, now);
        }
    }

    /// The connections whose hardware routes (current or being programmed) use `index`.
    pub(super) fn users_of_link(&self, index: u32) -> Vec<FlowId> {
        let affected: Vec<u16> = self
            .hw_routes
            .iter()
            .filter(|(_, o)| o.ident.out_ifindex == index || o.ident.in_ifindex == index)
            .map(|(id, _)| id)
            .collect();
        if affected.is_empty() {
            return Vec::new();
        }
        self.table.ids_where(|f| {
            f.hw.iter().chain(f.next_hw.iter()).any(|r| *r != 0 && affected.contains(r))
        })
    }

    /// A local address was added or removed.
    pub fn on_address(&mut self, ifindex: u32, addr: IpAddr, added: bool, now: Instant) {
        if added {
            self.net.add_address(ifindex, addr);
        } else {
            self.net.remove_address(&addr);
        }
        self.retry_waiting(now);
    }

    /// A neighbour appeared or changed.
    pub fn on_neighbour(&mut self, n: Neighbour, now: Instant) {
        let old = self.net.upsert_neighbour(n);
        let old_mac = old.and_then(|o| o.valid_mac());
        let new_mac = n.valid_mac();
        if let (Some(old_mac), Some(new_mac)) = (old_mac, new_mac)
            && old_mac != new_mac
        {
            tracing::info!(target: LOG_TARGET, addr = %n.addr, mac = %new_mac, "next hop moved");
            self.neighbour_moved(n.ifindex, old_mac, now);
        }
        if old_mac.is_some() && n.state & crate::core::net::nud::FAILED != 0 {
            self.neighbour_failed(n.ifindex, n.addr, now);
        }
        self.retry_waiting(now);
    }

    /// A neighbour entry was deleted (the kernel's garbage collection does this to idle
    /// entries, which offloaded flows look like): offloaded flows keep their MAC.
    pub fn on_neighbour_removed(&mut self, ifindex: u32, addr: IpAddr, _now: Instant) {
        self.net.remove_neighbour(ifindex, &addr);
    }

    /// A next hop's MAC changed. Route objects are identified by the MAC they send to and
    /// never change (cdx copied that MAC into every connection it inserted on them): the
    /// connections on `ifindex`'s objects with the old MAC are resolved again. Those whose
    /// next hop moved are registered again on an object with the new MAC; those whose next
    /// hop still has the old one (another address of the same host) stay where they are.
    fn neighbour_moved(&mut self, ifindex: u32, old: Mac, now: Instant) {
        let ids: Vec<u16> = self
            .hw_routes
            .iter()
            .filter(|(_, o)| o.ident.out_ifindex == ifindex && o.ident.mac == old)
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let users = self
            .table
            .ids_where(|f| f.hw.iter().chain(f.next_hw.iter()).any(|r| *r != 0 && ids.contains(r)));
        for id in users {
            self.resolve(id, now);
        }
    }

    fn neighbour_failed(&mut self, ifindex: u32, addr: IpAddr, now: Instant) {
        let ids: Vec<u16> = self
            .hw_routes
            .iter()
            .filter(|(_, o)| o.ident.out_ifindex == ifindex && o.nexthop == Some(addr))
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let users = self.table.ids_where(|f| f.hw.iter().any(|r| *r != 0 && ids.contains(r)));
        for id in users {
            self.stats.count(Reason::NoNeighbour);
            self.withdraw(id, Reason::NoNeighbour, now);
        }
    }

    pub(super) fn retry_waiting(&mut self, now: Instant) {
        if self.waiting.ids.is_empty() {
            return;
        }
        let mut waiting = std::mem::take(&mut self.waiting.ids);
        // A connection re-resolved while it waited was queued again: once is enough.
        waiting.sort_unstable();
        waiting.dedup();
        self.waiting.backstop = None;
        for id in waiting {
            if self
                .table
                .get(id)
                .is_some_and(|f| matches!(f.state(), FlowState::Resolving | FlowState::Offloaded))
            {
                self.resolve(id, now);
            }
        }
    }

    /// rtnetlink lost messages: the view must be re-dumped.
    pub fn on_rtnl_overrun(&mut self, _now: Instant) {
        self.stats.rtnl_overruns += 1;
        if !self.net_redump.running && self.net_redump.retry_at.is_none() {
            self.net_redump.running = true;
            self.actions.push_back(Action::NetDump);
        }
    }

    /// The re-dump asked by [`Action::NetDump`] could not complete (a request refused, an
    /// error answer, the dump socket overrun): the view may be partial until it is retried,
    /// after `retry_base`, doubling up to `retry_max` while it keeps failing.
    pub fn on_net_dump_failed(&mut self, now: Instant) {
        self.stats.rtnl_dump_failures += 1;
        let redump = &mut self.net_redump;
        redump.running = false;
        redump.failures = redump.failures.saturating_add(1);
        let exp = redump.failures.min(16).saturating_sub(1);
        let delay = self.cfg.retry_base.saturating_mul(1 << exp).min(self.cfg.retry_max);
        redump.retry_at = Some(now + delay);
        tracing::warn!(target: LOG_TARGET,
            failures = redump.failures,
            retry_in_ms = delay.as_millis() as u64,
            "rtnetlink re-dump failed; the network view may be incomplete until it is retried"
        );
    }

    /// Re-dumps of the network view that failed in a row (0 once one completes): while not
    /// 0, the view may miss links, addresses or neighbours, and `/readyz` says so.
    pub fn net_redump_failures(&self) -> u32 {
        self.net_redump.failures
    }

    /// Start the re-dump a failure put off, when its time has come (from the timers).
    pub(super) fn retry_net_dump(&mut self, now: Instant) {
        if self.net_redump.retry_at.is_some_and(|t| t <= now) {
            self.net_redump.retry_at = None;
            self.net_redump.running = true;
            self.actions.push_back(Action::NetDump);
        }
    }

    /// Clear the view before a re-dump (links, addresses, neighbours arrive again as updates).
    pub fn net_mut(&mut self) -> &mut NetView {
        &mut self.net
    }

    /// The re-dump after an rtnetlink overrun completed: everything may have changed.
    pub fn on_net_resynced(&mut self, now: Instant) {
        self.net_redump.running = false;
        self.sync_interfaces(now);
        if std::mem::take(&mut self.net_redump.failures) > 0 {
            tracing::info!(target: LOG_TARGET, "rtnetlink re-dump completed after failures");
        }
        // MAC changes of next hops in use, MTUs and anything else lost with the events are
        // found by resolving every offloaded connection below.
        // Links that vanished or went down.
        let gone: Vec<u32> = self
            .hw_routes
            .iter()
            .flat_map(|(_, o)| [o.ident.out_ifindex, o.ident.in_ifindex])
            .filter(|i| self.net.link(*i).is_none_or(|l| !l.up))
            .collect();
        for index in gone {
            self.link_changed(index, now);
        }
        // Other changes lost with the events (an MTU) were replayed against a half-built
        // view; resolve every offloaded connection against the complete one. Connections
        // whose path did not change send nothing to the hardware.
        for id in self.table.ids_where(|f| f.state() == FlowState::Offloaded) {
            self.resolve(id, now);
        }
        self.on_route_change(None, now);
        self.retry_waiting(now);
    }
}
