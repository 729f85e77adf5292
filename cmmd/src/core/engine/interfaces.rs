//! Interfaces: the VLAN interfaces and PPPoE sessions cdx must know, and the layer-2 facts
//! (bridge forwarding entries, PPPoE sessions) the paths through them depend on.
//!
//! Owns the registrations (what cdx holds, or is asked to hold, by interface name) and the
//! VLAN names the operator added (`vlan add`, for the `manual` VLAN policy). Contract:
//! - **What cdx should know** is recomputed from the network view on every change of a link,
//!   a PPPoE session or a registration: a VLAN that is up, allowed by the VLAN policy, on a
//!   fast-path port or a registered VLAN; a PPP link that is up, whose PPPoE session the kernel
//!   lists, on a fast-path port or a registered VLAN. A fast-path port itself is never
//!   registered: cdx knows it from `dpa_app`.
//! - **Registration** goes parent first (a PPPoE session on a VLAN waits for the VLAN); a
//!   refusal is counted and retried with back-off (`retry_base` doubling up to `retry_max`);
//!   connections through an interface not registered yet wait (`interface_unregistered`) and
//!   are retried once it is.
//! - **Removal** (the interface went down or away, its session ended or changed, it was
//!   renamed, the policy no longer allows it, its MAC changed where cdx keeps it (the ASK
//!   port sends with the MAC a VLAN was registered with), or what it runs on is being
//!   removed): the connections through it are withdrawn first and wait for the network; the
//!   interface is deregistered only once no route object names it any more, and sessions
//!   before the VLAN under them; nothing is registered on an interface being replaced. cdx therefore never removes a
//!   connection by itself (its REMOVED events would make the engine delete the kernel's
//!   entry): the kernel's conntracks stay intact.
//! - **Start-up**: cdx's VLAN and PPPoE tables are walked before anything is registered; with
//!   reconciliation what matches the kernel is adopted and the rest removed (once the start-up
//!   is over), otherwise everything is removed (sessions, then `VLAN_RESET`). A walk that
//!   fails falls back to `VLAN_RESET`.
//! - **Bridges**: a forwarding entry that moves to another port re-resolves the connections
//!   on the bridge's ports; one that ages out disturbs nothing (an offloaded flow refreshes no
//!   kernel forwarding entry, as it refreshes no neighbour); a new one retries the waiting
//!   connections (`no_bridge_port`).

use std::time::Instant;

use cdx_sys::fpp::ReturnCode;
use hashbrown::{HashMap, HashSet};

use super::commands::Pending;
use super::lifecycle::{CLIENT, ORIG, REPLY, SERVER};
use super::reconcile::Phase;
use super::{Engine, Flow, LOG_TARGET};
use crate::core::flow::FlowId;
use crate::core::hw::{Abi, HwFailure, HwOp, HwReply, ItfSpec, PppoeSpec, VlanSpec};
use crate::core::l2::{ItfStatus, session_of};
use crate::core::net::{FdbEntry, IfName, Link, LinkKind, Mac, PppoeSession};
use crate::core::route::{RouteRef, RouteState};
use crate::core::stats::Reason;

/// How deep VLANs may nest (QinQ and the like) before the chain is not followed.
const MAX_DEPTH: usize = 4;

/// Where a registration is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegState {
    /// The register command is in flight.
    Registering,
    /// cdx holds it.
    Registered,
    /// cdx refused it; retried when `retry_at` comes.
    Failed,
    /// The deregister command is in flight.
    Deregistering,
}

/// One interface cdx holds, or is asked to.
#[derive(Clone, Copy, Debug)]
pub struct Registration {
    /// What is (being) registered.
    pub spec: ItfSpec,
    /// Where it is.
    pub state: RegState,
    /// Refusals in a row.
    pub failures: u32,
    retry_at: Option<Instant>,
}

/// A direction's ports: the kernel's logical interfaces (where its route goes) and the
/// interfaces cdx holds for it (its route object's), each when known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirPorts {
    /// The kernel's input (a bridge, a VLAN, a PPP link, a port).
    pub logical_in: Option<IfName>,
    /// The kernel's output.
    pub logical_out: Option<IfName>,
    /// cdx's input (a bridge's member, the VLAN, the session, the port).
    pub input: Option<IfName>,
    /// cdx's output.
    pub output: Option<IfName>,
}

/// The registrations, and what the network view says each link is to cdx.
#[derive(Default)]
pub(super) struct Interfaces {
    /// By interface name (cdx's key).
    regs: HashMap<IfName, Registration>,
    /// `vlan add` names (the `manual` VLAN policy).
    manual: HashSet<IfName>,
    /// What each VLAN or PPP link should be in cdx, by interface index.
    wanted: HashMap<u32, ItfSpec>,
    /// VLAN and PPP links that could be registered but are not wanted now (down, no session
    /// yet, a parent not registered yet): their connections wait rather than being refused.
    could_be: HashSet<u32>,
    /// cdx's tables were read (or could not be): registrations may be sent.
    started: bool,
    /// When to look again (a retry after a refusal, a removal waiting for its users to go).
    next: Option<Instant>,
}

/// Whether `a` and `b` are the same registration. A walk reports no VLAN MAC (zero): such a
/// VLAN matches any MAC. Where cdx keeps the MAC (`macs_count`: the ASK port, whose
/// `dpa_add_vlan_if` stores it as the source of the VLAN's frames) a VLAN whose MAC changed
/// is another registration; NXP's cdx takes none.
/// cdx refused a registration because it holds that name (or that session) already.
fn held_from_before(failure: &HwFailure) -> bool {
    let held = [ReturnCode::VlanEntryAlreadyRegistered, ReturnCode::PppoeEntryAlreadyRegistered];
    matches!(failure, HwFailure::Rejected(rc) if held.iter().any(|code| code.value() == *rc))
}

fn same(a: &ItfSpec, b: &ItfSpec, macs_count: bool) -> bool {
    match (a, b) {
        (ItfSpec::Vlan(a), ItfSpec::Vlan(b)) => {
            let unknown = Mac::default();
            (a.name, a.id, a.parent) == (b.name, b.id, b.parent)
                && (!macs_count || a.mac == unknown || b.mac == unknown || a.mac == b.mac)
        }
        (a, b) => a == b,
    }
}

impl Engine {
    /// True when cdx keeps a VLAN's MAC (the ASK port): see [`same`].
    fn vlan_macs_count(&self) -> bool {
        self.cdx.abi.is_some_and(|choice| choice.abi == Abi::Ask)
    }

    /// What cdx knows `link` as (for [`crate::core::l2::Resolver`]).
    pub(super) fn itf_status(&self, link: &Link) -> ItfStatus {
        if self.net.is_fastpath(link) {
            return ItfStatus::Port;
        }
        let itfs = &self.itfs;
        match itfs.wanted.get(&link.index) {
            Some(_) if self.registered_as_wanted(&link.name, 0) => ItfStatus::Registered,
            Some(_) => ItfStatus::Pending,
            None if itfs.could_be.contains(&link.index) => ItfStatus::Pending,
            None => ItfStatus::Unusable,
        }
    }

    /// The ports of each direction of `flow`, `[orig, reply]` (a direction not offloaded has
    /// no cdx ports; one whose route is not resolved has no logical ones).
    pub fn flow_ports(&self, flow: &Flow) -> [DirPorts; 2] {
        let oif = |side: usize| match self.routes.state(RouteRef::from_raw(flow.routes[side])) {
            RouteState::Resolved(info) => self.net.link(info.oif).map(|l| l.name),
            _ => None,
        };
        let (server, client) = (oif(SERVER), oif(CLIENT));
        let object = |d: usize| {
            let id = if flow.hw[d] != 0 { flow.hw[d] } else { flow.next_hw[d] };
            self.hw_routes.get(id).map(|o| o.spec)
        };
        let ports = |d: usize, logical_in, logical_out| DirPorts {
            logical_in,
            logical_out,
            input: object(d).map(|s| s.input),
            output: object(d).map(|s| s.output),
        };
        [ports(ORIG, client, server), ports(REPLY, server, client)]
    }

    /// Every registration, by name.
    pub fn registrations(&self) -> impl Iterator<Item = (&IfName, &Registration)> {
        self.itfs.regs.iter()
    }

    /// `vlan add <ifname>`: under the `manual` VLAN policy, register this VLAN interface.
    pub fn vlan_add(&mut self, name: IfName, now: Instant) {
        self.itfs.manual.insert(name);
        self.sync_interfaces(now);
    }

    /// `vlan delete <ifname>`: stop registering this VLAN interface (`manual` policy).
    pub fn vlan_delete(&mut self, name: IfName, now: Instant) {
        self.itfs.manual.remove(&name);
        self.sync_interfaces(now);
    }

    /// The kernel's PPPoE sessions, as `/proc/net/pppoe` lists them now.
    pub fn on_pppoe_sessions(&mut self, sessions: Vec<PppoeSession>, now: Instant) {
        if self.net.set_pppoe_sessions(sessions) {
            self.sync_interfaces(now);
            self.retry_waiting(now);
        }
    }

    /// A bridge forwarding entry appeared or moved.
    pub fn on_fdb(&mut self, entry: FdbEntry, now: Instant) {
        match self.net.upsert_fdb(entry) {
            Some(old) if old != entry.port => {
                tracing::info!(target: LOG_TARGET, bridge = entry.bridge, mac = %entry.mac, from = old, to = entry.port, "bridge forwarding entry moved");
                // Connections on either port may have used it, in one direction or the other.
                let mut users = self.users_of_link(old);
                users.extend(self.users_of_link(entry.port));
                users.sort_unstable();
                users.dedup();
                for id in users {
                    self.resolve(id, now);
                }
            }
            Some(_) => {}
            None => self.retry_waiting(now),
        }
    }

    /// A port left its bridge: what went through it in the bridge's name leaves the hardware
    /// and waits (the kernel flushes the port's forwarding entries with it).
    pub(super) fn left_bridge(&mut self, index: u32, now: Instant) {
        for id in self.users_of_link(index) {
            self.stats.count(Reason::NoBridgePort);
            self.withdraw(id, Reason::NoBridgePort, now);
        }
    }

    /// A bridge forwarding entry was deleted (aged out, flushed): offloaded connections keep
    /// their port, as they keep their next hop's MAC when its neighbour entry goes.
    pub fn on_fdb_removed(&mut self, entry: FdbEntry, _now: Instant) {
        self.net.remove_fdb(entry);
    }

    /// Begin: read cdx's VLAN and PPPoE tables (before anything is registered).
    pub(super) fn start_interfaces(&mut self) {
        self.hw(HwOp::WalkInterfaces, Pending::ItfWalk);
    }

    /// cdx's VLAN and PPPoE tables, read at start-up.
    pub(super) fn on_interface_walk(&mut self, reply: Result<HwReply, HwFailure>, now: Instant) {
        match reply {
            Ok(HwReply::Interfaces(held)) if self.cfg.reconcile => {
                tracing::info!(target: LOG_TARGET, interfaces = held.len(), "read cdx's VLAN and PPPoE tables for reconciliation");
                for spec in held {
                    let reg = Registration {
                        spec,
                        state: RegState::Registered,
                        failures: 0,
                        retry_at: None,
                    };
                    self.itfs.regs.insert(spec.name(), reg);
                }
            }
            Ok(HwReply::Interfaces(held)) => {
                let sessions = held.iter().filter(|s| matches!(s, ItfSpec::Pppoe(_)));
                for spec in sessions {
                    self.hw(HwOp::ItfDeregister(*spec), Pending::Orphan);
                }
                self.hw(HwOp::VlanReset, Pending::Config);
            }
            other => {
                tracing::warn!(target: LOG_TARGET, result = ?other, "could not read cdx's VLAN and PPPoE tables; resetting its VLANs");
                self.hw(HwOp::VlanReset, Pending::Config);
            }
        }
        self.itfs.started = true;
        self.sync_interfaces(now);
    }

    /// The result of a registration or deregistration of `name`.
    pub(super) fn on_itf_result(
        &mut self,
        name: IfName,
        register: bool,
        outcome: Result<HwReply, HwFailure>,
        now: Instant,
    ) {
        let Some(reg) = self.itfs.regs.get_mut(&name) else { return };
        match (register, outcome) {
            (true, Ok(_)) => {
                tracing::info!(target: LOG_TARGET, interface = %name, spec = ?reg.spec, "registered with cdx");
                reg.state = RegState::Registered;
                reg.failures = 0;
                self.stats.itf_registered += 1;
            }
            (true, Err(failure)) => {
                reg.failures = reg.failures.saturating_add(1);
                let exp = reg.failures.min(16).saturating_sub(1);
                let delay = self.cfg.retry_base.saturating_mul(1 << exp).min(self.cfg.retry_max);
                tracing::warn!(target: LOG_TARGET, interface = %name, ?failure, failures = reg.failures, retry_in_ms = delay.as_millis() as u64, "cdx refused an interface; retrying");
                reg.state = RegState::Failed;
                reg.retry_at = Some(now + delay);
                self.stats.itf_register_failures += 1;
                if failure.outcome_unknown() || held_from_before(&failure) {
                    // It may be in cdx already: the answer was lost, or cdx kept it from
                    // before cmmd started when its tables could not be read (a VLAN_RESET
                    // leaves the sessions). Remove it as it is wanted (cdx answers "not
                    // found" otherwise), then register it again after the back-off. Nothing
                    // uses it yet.
                    let spec = reg.spec;
                    reg.state = RegState::Deregistering;
                    self.hw(HwOp::ItfDeregister(spec), Pending::Itf { name, register: false });
                }
            }
            (false, Ok(_) | Err(HwFailure::NotFound)) if reg.retry_at.is_some() => {
                // The removal that follows a refused registration: registered again when
                // its back-off ends, the refusals still counted.
                tracing::debug!(target: LOG_TARGET, interface = %name, "cleared in cdx before registering again");
                reg.state = RegState::Failed;
            }
            (false, Ok(_) | Err(HwFailure::NotFound)) => {
                tracing::info!(target: LOG_TARGET, interface = %name, "removed from cdx");
                self.itfs.regs.remove(&name);
                self.stats.itf_deregistered += 1;
            }
            (false, Err(failure)) => {
                tracing::warn!(target: LOG_TARGET, interface = %name, ?failure, "cdx did not remove an interface; retrying");
                reg.state = RegState::Registered;
                reg.retry_at = Some(now + self.cfg.retry_base);
            }
        }
        self.sync_interfaces(now);
        self.retry_waiting(now);
    }

    /// Bring cdx's registrations in line with the network view (see the module contract).
    pub(super) fn sync_interfaces(&mut self, now: Instant) {
        self.compute_wanted();
        if !self.itfs.started {
            return;
        }
        self.itfs.next = None;
        let wanted: Vec<ItfSpec> = self.itfs.wanted.values().copied().collect();
        let macs = self.vlan_macs_count();
        // Removals: registrations no link wants as they are, and what runs on them (a
        // session on a VLAN registered again goes first, and comes back on the new one).
        let mut stale: HashSet<IfName> = (self.itfs.regs.values())
            .filter(|reg| !wanted.iter().any(|w| same(w, &reg.spec, macs)))
            .map(|reg| reg.spec.name())
            .collect();
        for _ in 0..MAX_DEPTH {
            let on_stale: Vec<IfName> = (self.itfs.regs.values())
                .filter(|reg| stale.contains(&reg.spec.parent()))
                .map(|reg| reg.spec.name())
                .filter(|name| !stale.contains(name))
                .collect();
            if on_stale.is_empty() {
                break;
            }
            stale.extend(on_stale);
        }
        let stale: Vec<Registration> =
            stale.iter().filter_map(|name| self.itfs.regs.get(name)).copied().collect();
        for reg in stale {
            self.remove_registration(reg, now);
        }
        // Registrations: parents first (a VLAN before the sessions on it).
        let mut todo: Vec<ItfSpec> = wanted;
        todo.sort_by_key(|spec| matches!(spec, ItfSpec::Pppoe(_)));
        for spec in todo {
            self.register(spec, now);
        }
        let retries = self.itfs.regs.values().filter_map(|reg| reg.retry_at);
        if let Some(at) = retries.min() {
            self.itfs.next = Some(self.itfs.next.map_or(at, |n| n.min(at)));
        }
    }

    fn register(&mut self, spec: ItfSpec, now: Instant) {
        let name = spec.name();
        let macs = self.vlan_macs_count();
        if let Some(reg) = self.itfs.regs.get(&name) {
            let due = reg.retry_at.is_none_or(|at| at <= now);
            if reg.state != RegState::Failed || !same(&reg.spec, &spec, macs) || !due {
                return;
            }
        }
        let parent = spec.parent();
        let parent_ready = self.net.is_fastpath_name(&parent)
            || (self.itfs.regs.get(&parent).is_some_and(|p| matches!(p.spec, ItfSpec::Vlan(_)))
                && self.registered_as_wanted(&parent, 0));
        if !parent_ready {
            return;
        }
        let failures = self.itfs.regs.get(&name).map_or(0, |r| r.failures);
        let reg = Registration { spec, state: RegState::Registering, failures, retry_at: None };
        self.itfs.regs.insert(name, reg);
        self.hw(HwOp::ItfRegister(spec), Pending::Itf { name, register: true });
    }

    /// `name` is a fast-path port, or cdx holds it as the network wants it now and holds
    /// what it runs on likewise (not a VLAN waiting to be registered again, nor a session on
    /// one).
    fn registered_as_wanted(&self, name: &IfName, depth: usize) -> bool {
        if self.net.is_fastpath_name(name) {
            return true;
        }
        let macs = self.vlan_macs_count();
        let Some(reg) = self.itfs.regs.get(name) else { return false };
        depth <= MAX_DEPTH
            && reg.state == RegState::Registered
            && self.itfs.wanted.values().any(|w| w.name() == *name && same(w, &reg.spec, macs))
            && self.registered_as_wanted(&reg.spec.parent(), depth + 1)
    }

    /// Withdraw what goes through a registration nothing wants, then remove it from cdx
    /// once no route object names it and nothing is registered on it.
    fn remove_registration(&mut self, reg: Registration, now: Instant) {
        let name = reg.spec.name();
        let reason = match self.net.link_by_name(&name) {
            Some(link) if link.up => Reason::InterfaceUnregistered,
            _ => Reason::LinkDown,
        };
        for id in self.users_of_name(&name) {
            self.stats.count(reason);
            self.withdraw(id, reason, now);
        }
        match reg.state {
            RegState::Failed => {
                self.itfs.regs.remove(&name);
                return;
            }
            RegState::Registering | RegState::Deregistering => return,
            RegState::Registered => {}
        }
        if reg.retry_at.is_some_and(|at| at > now) {
            return;
        }
        let named =
            self.hw_routes.iter().any(|(_, o)| o.spec.output == name || o.spec.input == name);
        let children = self.itfs.regs.values().any(|r| r.spec.parent() == name);
        // During start-up the adopted route objects are not known yet: wait for them.
        if named || children || self.phase != Phase::Ready {
            let soon = now + self.cfg.retry_base / 4;
            self.itfs.next = Some(self.itfs.next.map_or(soon, |n| n.min(soon)));
            return;
        }
        if let Some(reg) = self.itfs.regs.get_mut(&name) {
            reg.state = RegState::Deregistering;
            reg.retry_at = None;
        }
        self.hw(HwOp::ItfDeregister(reg.spec), Pending::Itf { name, register: false });
    }

    /// The connections whose route objects (in use or being programmed) name `name`.
    fn users_of_name(&self, name: &IfName) -> Vec<FlowId> {
        let objects: Vec<u16> = self
            .hw_routes
            .iter()
            .filter(|(_, o)| o.spec.output == *name || o.spec.input == *name)
            .map(|(id, _)| id)
            .collect();
        if objects.is_empty() {
            return Vec::new();
        }
        self.table.ids_where(|f| {
            f.hw.iter().chain(f.next_hw.iter()).any(|r| *r != 0 && objects.contains(r))
        })
    }

    /// Time for [`Engine::sync_interfaces`] again.
    pub(super) fn interfaces_due(&self) -> Option<Instant> {
        self.itfs.next
    }

    /// What each VLAN and PPP link should be in cdx now.
    fn compute_wanted(&mut self) {
        let mut wanted = HashMap::new();
        let mut could_be = HashSet::new();
        for link in self.net.links() {
            match self.wanted_spec(link, 0) {
                Some(spec) => {
                    wanted.insert(link.index, spec);
                }
                None if self.could_be_registered(link, 0) => {
                    could_be.insert(link.index);
                }
                None => {}
            }
        }
        self.itfs.wanted = wanted;
        self.itfs.could_be = could_be;
    }

    /// The registration `link` should have now, if any.
    fn wanted_spec(&self, link: &Link, depth: usize) -> Option<ItfSpec> {
        if !link.up || self.net.is_fastpath(link) || depth > MAX_DEPTH {
            return None;
        }
        match link.kind {
            LinkKind::Vlan { id, parent } => {
                let parent = self.net.link(parent)?;
                if !self.vlan_allowed(link) || !self.is_cdx_parent(parent, depth) {
                    return None;
                }
                Some(ItfSpec::Vlan(VlanSpec {
                    name: link.name,
                    id,
                    parent: parent.name,
                    mac: link.mac.unwrap_or_default(),
                }))
            }
            LinkKind::Ppp => {
                let session = session_of(&self.net, link)?;
                let parent = self.net.link_by_name(&session.device)?;
                if !self.is_cdx_parent(parent, depth) {
                    return None;
                }
                Some(ItfSpec::Pppoe(PppoeSpec {
                    name: link.name,
                    session: session.id,
                    peer: session.peer,
                    parent: session.device,
                }))
            }
            LinkKind::Plain | LinkKind::Bridge => None,
        }
    }

    /// A fast-path port, or a VLAN that should be registered.
    fn is_cdx_parent(&self, link: &Link, depth: usize) -> bool {
        self.net.is_fastpath(link)
            || (matches!(link.kind, LinkKind::Vlan { .. })
                && self.wanted_spec(link, depth + 1).is_some())
    }

    /// A VLAN or PPP link that is not wanted now but may be (down, no session yet, a parent
    /// VLAN not up yet): its connections wait.
    fn could_be_registered(&self, link: &Link, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match link.kind {
            LinkKind::Vlan { parent, .. } => {
                self.vlan_allowed(link)
                    && self.net.link(parent).is_some_and(|p| {
                        self.net.is_fastpath(p) || self.could_be_registered(p, depth + 1)
                    })
            }
            LinkKind::Ppp => match session_of(&self.net, link) {
                // A session on an interface cdx can never know (a veth): refused.
                Some(session) => self.net.link_by_name(&session.device).is_some_and(|p| {
                    self.net.is_fastpath(p) || self.could_be_registered(p, depth + 1)
                }),
                None => true,
            },
            LinkKind::Plain | LinkKind::Bridge => false,
        }
    }

    fn vlan_allowed(&self, link: &Link) -> bool {
        match self.cfg.vlan_policy {
            config::VlanPolicy::Allow => true,
            config::VlanPolicy::Prohibit => false,
            config::VlanPolicy::Manual => self.itfs.manual.contains(&link.name),
        }
    }
}
