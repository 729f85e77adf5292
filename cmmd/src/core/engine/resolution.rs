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
//! This is where the kernel's per-direction fast-path information (ingress interface and
//! underlying port, on ASK kernels), policy-routed lookups (source, input interface, mark)
//! and bridge, VLAN or PPPoE egress ports enter the path of a direction.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::lifecycle::{CLIENT, NO_ROUTE, SERVER, Stage, Then, Transition};
use super::{Action, Engine, Flow};
use crate::core::flow::FlowId;
use crate::core::hw::RouteIdentity;
use crate::core::net::{IfName, Link, Mac, Neighbour};
use crate::core::policy::Dirs;
use crate::core::route::{RouteInfo, RouteKey, RouteKind, RouteRef, RouteState};
use crate::core::stats::Reason;

/// Connections waiting for the network are tried again at least this often.
const WAITING_BACKSTOP: Duration = Duration::from_secs(5);

/// Refusals the network can undo (an interface comes up, a route or an address comes back, a
/// neighbour is learnt): the connection stays tracked and waits, instead of being forgotten
/// until the next sweep (an ESTABLISHED conntrack sends no event while nothing changes).
pub(super) fn waits_for_network(reason: Reason) -> bool {
    matches!(reason, Reason::NoRoute | Reason::LinkDown | Reason::NoNeighbour)
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
    /// Not usable now but may become usable (neighbour, lookup).
    Wait(Reason),
    /// Not offloadable.
    Refuse(Reason),
}

impl Engine {
    pub(super) fn resolve(&mut self, id: FlowId, now: Instant) {
        let Some(flow) = self.table.get_mut(id) else { return };
        match flow.stage {
            Stage::Programming { .. } => {
                flow.step(Transition::Defer(Then::Resolve));
                return;
            }
            Stage::Withdrawing => return,
            _ => {}
        }
        let dsts = [flow.reply.src, flow.key.orig.src];
        for side in [SERVER, CLIENT] {
            if self.table.get(id).is_some_and(|f| f.routes[side] == NO_ROUTE) {
                let (r, lookup) = self.routes.acquire(RouteKey { dst: dsts[side], mark: 0 });
                if let Some(lookup) = lookup {
                    self.stats.route_lookups += 1;
                    self.actions.push_back(Action::RouteLookup(lookup));
                }
                if let Some(flow) = self.table.get_mut(id) {
                    flow.routes[side] = r.raw();
                }
            }
        }
        let Some(flow) = self.table.get(id) else { return };
        for side in [SERVER, CLIENT] {
            let r = RouteRef::from_raw(flow.routes[side]);
            if self.routes.state(r) == RouteState::Pending {
                self.routes.wait(r, id);
                let in_hw = flow.stage.in_hw();
                if let Some(flow) = self.table.get_mut(id)
                    && !in_hw
                {
                    flow.step(Transition::Wait);
                    flow.reason = Reason::RouteLookup;
                }
                return;
            }
        }
        match self.paths(flow) {
            Ok(paths) => self.program(id, paths, now),
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

    fn route_info(&self, raw: u32) -> Result<RouteInfo, PathError> {
        match self.routes.state(RouteRef::from_raw(raw)) {
            RouteState::Pending => Err(PathError::Wait(Reason::RouteLookup)),
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

    fn port(&self, ifindex: u32) -> Result<&Link, PathError> {
        let link = self.net.link(ifindex).ok_or(PathError::Wait(Reason::LinkDown))?;
        if !self.net.is_fastpath(link) {
            return Err(PathError::Refuse(Reason::NotFastpathPort));
        }
        if !link.up {
            return Err(PathError::Refuse(Reason::LinkDown));
        }
        Ok(link)
    }

    fn dir_path(&self, input: u32, route: &RouteInfo, dst: IpAddr) -> Result<DirPath, PathError> {
        let inp = self.port(input)?;
        let out = self.port(route.oif)?;
        let nexthop = route.gateway.unwrap_or(dst);
        let mac = if out.noarp {
            Mac::default()
        } else {
            self.net
                .neighbour(out.index, &nexthop)
                .and_then(Neighbour::valid_mac)
                .ok_or(PathError::Wait(Reason::NoNeighbour))?
        };
        let mtu = if route.mtu != 0 { route.mtu } else { out.mtu };
        Ok(DirPath {
            ident: RouteIdentity {
                out_ifindex: out.index,
                in_ifindex: inp.index,
                mac,
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            },
            output: out.name,
            input: inp.name,
            nexthop,
        })
    }

    /// Both directions' paths: the original direction enters where the client is reachable
    /// and leaves towards the (post-DNAT) server; the reply direction the other way round.
    fn paths(&self, flow: &Flow) -> Result<[Option<DirPath>; 2], PathError> {
        let server = self.route_info(flow.routes[SERVER])?;
        let client = self.route_info(flow.routes[CLIENT])?;
        let orig = self.dir_path(client.oif, &server, flow.reply.src)?;
        let reply = match flow.dirs {
            Dirs::Both => Some(self.dir_path(server.oif, &client, flow.key.orig.src)?),
            Dirs::OrigOnly => None,
        };
        Ok([Some(orig), reply])
    }
}
