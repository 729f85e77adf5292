//! Resolution: a tracked connection's path through the box, one direction at a time.
//!
//! Contract: a connection is programmed only when both directions (one, for an originator-only
//! UDP flow) resolve to a fast-path ingress port, a fast-path egress port that is up, a next
//! hop's MAC (none for a NOARP egress) and an MTU. What is not known yet (a route answer, a
//! neighbour, a link missing from the view) makes it wait with that reason; what the network
//! can undo (no route, a link down, a neighbour gone) makes it wait for the network, without
//! the hardware, retried on every network change and at least every few seconds; what it
//! cannot undo (a local or broadcast route, a port that is not a fast-path port) refuses it.
//!
//! Lookups follow policy routing: each direction is looked up as the kernel routes its packets,
//! with its source, the interface it comes in on and its mark (`ip route get DST from SRC iif
//! IIF mark M`), so `ip rule`s on any of them give the egress the kernel uses. Where a
//! direction comes in is the kernel's own word on ASK kernels (the fast-path block's
//! interface, taken when the conntrack message arrives, [`Engine::take_kernel_ingress`]);
//! elsewhere it is inferred: the original direction enters where the host's own route
//! towards the client leaves (`INGRESS`), the reply direction where the original one leaves.
//! So a connection's lookups chain: `INGRESS` (stock kernels only), then `SERVER` (the original
//! direction, which needs its ingress), then `CLIENT` (the reply, which comes in where the
//! original leaves). Each entry's key is computed from the answers before it and re-taken
//! when they change. The mark is the kernel's per-direction packet mark on ASK kernels, the
//! conntrack mark under `netlink.route_mark_mask` elsewhere.
//!
//! The ports of a direction are the interfaces cdx knows under the kernel's logical ones
//! ([`crate::core::l2::Resolver`]): a bridge's member port (from its forwarding database: the
//! next hop's MAC for the egress, the previous hop's for the ingress), a registered VLAN, a
//! registered PPPoE session; what is not known yet waits (`no_bridge_port`), an interface
//! cdx does not hold yet leaves the hardware and waits (`interface_unregistered`). The ASK
//! kernel's `UNDERLYING_IIF` is the `underlying` port of [`Engine::dir_path`] where a caller
//! has it (it is not stored per connection yet: the forwarding database stands in).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::lifecycle::{
    CLIENT, Facts, INGRESS, NO_ROUTE, ORIG, REPLY, SERVER, Stage, Then, Transition,
};
use super::{Action, Engine, Flow};
use crate::core::flow::FlowId;
use crate::core::hw::RouteIdentity;
use crate::core::l2::{PortError, Resolver};
use crate::core::net::{IfName, Link};
use crate::core::policy::{CtInfo, Dirs};
use crate::core::route::{RouteInfo, RouteKey, RouteKind, RouteRef, RouteState};
use crate::core::stats::Reason;

/// Connections waiting for the network are tried again at least this often.
const WAITING_BACKSTOP: Duration = Duration::from_secs(5);

/// Refusals the network can undo (an interface comes up, a route or an address comes back, a
/// neighbour is learnt): the connection stays tracked and waits, instead of being forgotten
/// until the next sweep (an ESTABLISHED conntrack sends no event while nothing changes).
pub(super) fn waits_for_network(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::NoRoute
            | Reason::LinkDown
            | Reason::NoNeighbour
            | Reason::NoBridgePort
            | Reason::InterfaceUnregistered
    )
}

/// Who said where a direction comes in (`show connections`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngressSource {
    /// The kernel (an ASK kernel's fast-path block).
    Kernel,
    /// cmmd, from the routes (stock kernels, or a direction without a packet yet).
    Inferred,
}

impl IngressSource {
    /// `kernel` or `inferred`.
    pub fn name(self) -> &'static str {
        match self {
            IngressSource::Kernel => "kernel",
            IngressSource::Inferred => "inferred",
        }
    }
}

/// One direction's path through the box.
#[derive(Clone, Copy, Debug)]
pub(super) struct DirPath {
    pub(super) ident: RouteIdentity,
    pub(super) output: IfName,
    pub(super) input: IfName,
    pub(super) nexthop: IpAddr,
}

enum PathError {
    /// A route answer this path needs is not in yet: wait for it.
    Lookup(RouteRef),
    /// Not usable now but may become usable (neighbour, lookup).
    Wait(Reason),
    /// Not offloadable.
    Refuse(Reason),
}

impl From<PortError> for PathError {
    fn from(e: PortError) -> PathError {
        match e {
            PortError::Wait(reason) => PathError::Wait(reason),
            PortError::Refuse(reason) => PathError::Refuse(reason),
        }
    }
}

impl Engine {
    pub(super) fn resolve(&mut self, id: FlowId, now: Instant) {
        let Some(flow) = self.table.get_mut(id) else { return };
        if flow.local_orig() || flow.local_reply() {
            // The host's own: tracked for display, never offloaded (see admission).
            return;
        }
        match flow.stage {
            Stage::Programming { .. } => {
                flow.step(Transition::Defer(Then::Resolve));
                return;
            }
            Stage::Withdrawing => return,
            _ => {}
        }
        match self.paths(id) {
            Ok(paths) => self.program(id, paths, now),
            Err(PathError::Lookup(route)) => {
                self.routes.wait(route, id);
                if let Some(flow) = self.table.get_mut(id)
                    && !flow.stage.in_hw()
                {
                    flow.step(Transition::Wait);
                    flow.reason = Reason::RouteLookup;
                }
            }
            Err(PathError::Wait(reason)) => {
                let Some(flow) = self.table.get_mut(id) else { return };
                if !flow.stage.in_hw() {
                    self.stats.count(reason);
                    self.wait_for_network(id, reason, now);
                } else if flow.stage.adopted() {
                    // An adopted connection whose neighbour is not known yet: keep the
                    // hardware's routes and confirm later.
                    flow.step(Transition::KeepAdopted);
                    flow.reason = Reason::None;
                    self.waiting.ids.push(id);
                }
            }
            Err(PathError::Refuse(reason)) => {
                self.stats.count(reason);
                self.withdraw(id, reason, now);
            }
        }
    }

    /// Keep a connection that is not in the hardware tracked until the network changes (a
    /// link, an address, a neighbour or a route), with a backstop retry every few seconds.
    pub(super) fn wait_for_network(&mut self, id: FlowId, reason: Reason, now: Instant) {
        self.release_hardware(id);
        let Some(flow) = self.table.get_mut(id) else { return };
        flow.step(Transition::Wait);
        flow.reason = reason;
        self.waiting.ids.push(id);
        if self.waiting.backstop.is_none() {
            self.waiting.backstop = Some(now + WAITING_BACKSTOP);
        }
    }

    /// Take what the kernel says of where each direction of a tracked connection comes in
    /// (an ASK kernel's fast-path blocks; nothing on stock kernels): the direction's lookup is
    /// keyed by that interface and mark from now on. Returns true when a key changed, so the
    /// connection must be resolved again.
    pub(super) fn take_kernel_ingress(&mut self, id: FlowId, ct: &CtInfo) -> bool {
        if self.table.get(id).is_none_or(|f| f.local_orig() || f.local_reply()) {
            return false; // the host's own: never resolved
        }
        let mut changed = false;
        for (dir, side, fact) in [
            (ORIG, SERVER, Facts::KERNEL_INGRESS_ORIG),
            (REPLY, CLIENT, Facts::KERNEL_INGRESS_REPLY),
        ] {
            let Some(flow) = self.table.get_mut(id) else { return false };
            let Some(fp) = ct.fastpath[dir].filter(|fp| fp.ifindex != 0) else {
                // Not said (a stock kernel, or a direction without a packet yet): inferred.
                changed |= flow.facts.has(fact);
                flow.facts.clear(fact);
                continue;
            };
            flow.facts.set(fact);
            let (dst, src) = match dir {
                ORIG => (flow.reply.src, flow.key.orig.src),
                _ => (flow.key.orig.src, flow.reply.src),
            };
            let key = RouteKey::forwarded(dst, src, fp.ifindex, fp.mark);
            changed |= self.hold_route(id, side, key);
        }
        changed
    }

    /// Hold the route-cache entry `key` as the connection's entry `side`, giving back the one
    /// held before if it was another (a lookup is queued for a new entry). Returns true when
    /// the entry changed.
    fn hold_route(&mut self, id: FlowId, side: usize, key: RouteKey) -> bool {
        let Some(held) = self.table.get(id).map(|f| f.routes[side]) else { return false };
        if held != NO_ROUTE {
            let held = RouteRef::from_raw(held);
            if self.routes.key(held) == Some(key) {
                return false;
            }
            self.routes.release(held);
        }
        let (route, lookup) = self.routes.acquire(key);
        if let Some(lookup) = lookup {
            self.stats.route_lookups += 1;
            self.actions.push_back(Action::RouteLookup(lookup));
        }
        if let Some(flow) = self.table.get_mut(id) {
            flow.routes[side] = route.raw();
        }
        true
    }

    /// The answer of the connection's route entry `side` for `key` (taking it if needed).
    fn route_for(
        &mut self,
        id: FlowId,
        side: usize,
        key: RouteKey,
    ) -> Result<RouteInfo, PathError> {
        self.hold_route(id, side, key);
        let raw = self.table.get(id).map_or(NO_ROUTE, |f| f.routes[side]);
        self.route_info(raw)
    }

    /// Where each direction of a connection comes in, `[ORIG, REPLY]` (an interface index),
    /// and who said so; `None` while the lookups that say it are not taken.
    pub fn ingress_of(&self, flow: &Flow) -> [Option<(u32, IngressSource)>; 2] {
        [(SERVER, Facts::KERNEL_INGRESS_ORIG), (CLIENT, Facts::KERNEL_INGRESS_REPLY)].map(
            |(side, fact)| {
                let key = self.routes.key(RouteRef::from_raw(flow.routes[side]))?;
                let source = if flow.facts.has(fact) {
                    IngressSource::Kernel
                } else {
                    IngressSource::Inferred
                };
                (key.iif != 0).then_some((key.iif, source))
            },
        )
    }

    /// The key the connection's entry `side` was taken with from the kernel's word (see
    /// [`Engine::take_kernel_ingress`]): its input interface and mark.
    fn kernel_ingress(&self, flow: &Flow, side: usize, fact: Facts) -> Option<(u32, u32)> {
        if !flow.facts.has(fact) {
            return None;
        }
        let key = self.routes.key(RouteRef::from_raw(flow.routes[side]))?;
        Some((key.iif, key.mark))
    }

    fn route_info(&self, raw: u32) -> Result<RouteInfo, PathError> {
        let route = RouteRef::from_raw(raw);
        match self.routes.state(route) {
            RouteState::Pending => Err(PathError::Lookup(route)),
            RouteState::Failed(_) => Err(PathError::Refuse(Reason::NoRoute)),
            RouteState::Resolved(info) => match info.kind {
                RouteKind::Unicast if info.oif != 0 => Ok(info),
                RouteKind::Unicast | RouteKind::Unusable(_) => {
                    Err(PathError::Refuse(Reason::NoRoute))
                }
                RouteKind::Local => Err(PathError::Refuse(Reason::Local)),
                RouteKind::Broadcast => Err(PathError::Refuse(Reason::Multicast)),
            },
        }
    }

    /// One direction's path: it arrives on `input` from `peer` (the source, or the gateway
    /// towards it), and leaves by `route` towards `dst`. `underlying` is the kernel's own
    /// ingress port, where it reports one (ASK kernels' `UNDERLYING_IIF`); otherwise a
    /// bridge's member port is inferred from its forwarding database.
    fn dir_path(
        &self,
        input: u32,
        peer: IpAddr,
        underlying: Option<u32>,
        route: &RouteInfo,
        dst: IpAddr,
    ) -> Result<DirPath, PathError> {
        let status = |link: &Link| self.itf_status(link);
        let ports = Resolver { net: &self.net, status: &status };
        let inp = ports.ingress(input, underlying, peer)?;
        let nexthop = route.gateway.unwrap_or(dst);
        let out = ports.egress(route.oif, nexthop)?;
        let mtu = if route.mtu != 0 { route.mtu } else { out.mtu };
        Ok(DirPath {
            ident: RouteIdentity {
                out_ifindex: out.index,
                in_ifindex: inp.index,
                output: out.name,
                input: inp.name,
                mac: out.mac,
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            },
            output: out.name,
            input: inp.name,
            nexthop,
        })
    }

    /// Both directions' paths, each looked up as the kernel routes it (see the module
    /// documentation for the chain of lookups and where each input interface comes from).
    /// A bridge's member port on the way in is the one the previous hop is behind: the next
    /// hop of the other direction (or of the host's own route towards the client).
    fn paths(&mut self, id: FlowId) -> Result<[Option<DirPath>; 2], PathError> {
        let Some(flow) = self.table.get(id) else {
            return Err(PathError::Refuse(Reason::Destroyed));
        };
        let (client, server, dirs) = (flow.key.orig.src, flow.reply.src, flow.dirs);
        let inferred_mark = flow.mark & self.cfg.route_mark_mask;
        let orig_ingress = self.kernel_ingress(flow, SERVER, Facts::KERNEL_INGRESS_ORIG);
        let reply_ingress = self.kernel_ingress(flow, CLIENT, Facts::KERNEL_INGRESS_REPLY);

        let (orig_in, orig_mark, mut client_peer) = match orig_ingress {
            Some((iif, mark)) => (iif, mark, client),
            None => {
                let towards_client = RouteKey::output(client, inferred_mark);
                let route = self.route_for(id, INGRESS, towards_client)?;
                (route.oif, inferred_mark, route.gateway.unwrap_or(client))
            }
        };
        let orig_key = RouteKey::forwarded(server, client, orig_in, orig_mark);
        let orig_route = self.route_for(id, SERVER, orig_key)?;
        let reply_route = match dirs {
            Dirs::OrigOnly => None,
            Dirs::Both => {
                let (reply_in, reply_mark) =
                    reply_ingress.unwrap_or((orig_route.oif, inferred_mark));
                let reply_key = RouteKey::forwarded(client, server, reply_in, reply_mark);
                let route = self.route_for(id, CLIENT, reply_key)?;
                client_peer = route.gateway.unwrap_or(client);
                Some((reply_in, route))
            }
        };
        let orig = self.dir_path(orig_in, client_peer, None, &orig_route, server)?;
        let reply = match reply_route {
            None => None,
            Some((reply_in, route)) => {
                let server_peer = orig_route.gateway.unwrap_or(server);
                Some(self.dir_path(reply_in, server_peer, None, &route, client)?)
            }
        };
        Ok([Some(orig), reply])
    }
}
