//! What the engine asks of the hardware, in domain terms, and the route objects it owns there.
//!
//! The engine never builds FPP bytes: it emits [`HwOp`]s, which the offload worker translates
//! to `cdx-sys` commands and executes in order, and it receives [`HwResult`]s. Success and the
//! failures the engine treats differently (full, still linked, not found) are classified by the
//! worker, which knows cdx's return codes.
//!
//! Route objects ([`HwRoutes`]) are shared by every connection with the same ingress port,
//! egress port, next-hop MAC and MTU. Their ids come from a free list (1..=65535) and are
//! reference-counted; an id returns to the free list only when the hardware confirmed its
//! removal, so an id is never reused while cdx may still hold it.

use hashbrown::HashMap;
use std::net::IpAddr;

use crate::core::flow::{FlowId, Tuple};
use crate::core::net::{IfName, Mac};

/// A route object as cdx stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Route id (1..=65535).
    pub id: u16,
    /// Egress port name.
    pub output: IfName,
    /// Ingress port name.
    pub input: IfName,
    /// Next-hop MAC (all zero for NOARP egress).
    pub mac: Mac,
    /// Path MTU.
    pub mtu: u16,
}

/// A connection as cdx stores it: both tuples and the route of each direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtSpec {
    /// IP protocol.
    pub proto: u8,
    /// Original tuple.
    pub orig: Tuple,
    /// Reply tuple.
    pub reply: Tuple,
    /// QoS mark (`fwmark`).
    pub fwmark: u32,
    /// Route id of the original direction (0 = direction disabled).
    pub route_orig: u16,
    /// Route id of the reply direction (0 = direction disabled).
    pub route_reply: u16,
}

/// cdx's aging timeouts in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwTimeouts {
    /// TCP.
    pub tcp: u32,
    /// UDP with both directions offloaded.
    pub udp: u32,
    /// UDP with one direction offloaded.
    pub udp_unidir: u32,
    /// Everything else.
    pub other: u32,
}

impl From<&config::Timeouts> for HwTimeouts {
    /// The `[timeouts]` table.
    fn from(t: &config::Timeouts) -> Self {
        HwTimeouts {
            tcp: t.tcp.get(),
            udp: t.udp.get(),
            udp_unidir: t.udp_unidirectional.get(),
            other: t.other.get(),
        }
    }
}

/// One hardware command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwOp {
    /// Register a route object.
    RouteRegister(RouteSpec),
    /// Change a registered route object's ports or MAC (cdx ignores the MTU here).
    RouteUpdate(RouteSpec),
    /// Remove a route object.
    RouteDeregister(u16),
    /// Register a connection.
    CtRegister(CtSpec),
    /// Change a registered connection (routes, directions, mark).
    CtUpdate(CtSpec),
    /// Remove a connection.
    CtDeregister(CtSpec),
    /// Ask how long until cdx ages the connection out (activity for keepalive).
    CtRemaining(CtSpec),
    /// Set an aging timeout: protocol 6, 17 or 0 (others).
    SetTimeout {
        /// Protocol selector.
        proto: u8,
        /// Timeout (bidirectional for UDP).
        seconds: u32,
        /// Unidirectional UDP timeout.
        unidir: u32,
    },
    /// Remove every connection and route from the hardware.
    Reset,
    /// Walk the hardware tables (connections and routes).
    Walk,
}

impl HwOp {
    /// Short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            HwOp::RouteRegister(_) => "route_register",
            HwOp::RouteUpdate(_) => "route_update",
            HwOp::RouteDeregister(_) => "route_deregister",
            HwOp::CtRegister(_) => "ct_register",
            HwOp::CtUpdate(_) => "ct_update",
            HwOp::CtDeregister(_) => "ct_deregister",
            HwOp::CtRemaining(_) => "ct_remaining",
            HwOp::SetTimeout { .. } => "set_timeout",
            HwOp::Reset => "reset",
            HwOp::Walk => "walk",
        }
    }
}

/// A command with the tag that matches it to its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwRequest {
    /// Chosen by the engine, echoed in the result.
    pub tag: u64,
    /// The command.
    pub op: HwOp,
}

/// A connection read back from the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkedCt {
    /// The connection (route ids as stored in cdx).
    pub spec: CtSpec,
}

/// A route read back from the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkedRoute {
    /// The route object.
    pub spec: RouteSpec,
}

/// What a successful command returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwReply {
    /// Done.
    Done,
    /// Seconds until cdx ages the connection out.
    Remaining(u32),
    /// Contents of the hardware tables.
    Walk {
        /// Connections.
        conntracks: Vec<WalkedCt>,
        /// Routes.
        routes: Vec<WalkedRoute>,
    },
}

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwFailure {
    /// The hardware table is full (insertion failed).
    Full,
    /// A route is still referenced by connections.
    Linked,
    /// The entry does not exist.
    NotFound,
    /// Another return code of cdx (never 0: that is success).
    Rejected(u16),
    /// The command could not be written in cdx's format, so nothing was sent (a value cdx
    /// cannot hold, such as addresses of two families in one connection); the text says what.
    Unencodable(&'static str),
    /// No reply in time.
    Timeout,
    /// The transport failed (errno or description).
    Io(String),
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwResult {
    /// The request's tag.
    pub tag: u64,
    /// Outcome.
    pub outcome: Result<HwReply, HwFailure>,
}

/// An unsolicited message from the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwEvent {
    /// cdx aged the connection out (or its port disappeared) and removed it.
    Removed {
        /// IP protocol.
        proto: u8,
        /// Original tuple.
        orig: Tuple,
        /// Reply tuple.
        reply: Tuple,
    },
}

/// Identity of a route object: what cdx would do with packets using it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteIdentity {
    /// Egress interface index.
    pub out_ifindex: u32,
    /// Ingress interface index.
    pub in_ifindex: u32,
    /// Next-hop MAC.
    pub mac: Mac,
    /// Path MTU.
    pub mtu: u16,
}

/// State of a route object in the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteObjState {
    /// Register sent, no answer yet.
    Registering,
    /// In the hardware.
    Registered,
    /// Registration failed; kept until its users let go.
    Failed,
    /// Deregister sent (no users left).
    Deregistering,
}

/// One route object.
#[derive(Clone, Debug)]
pub struct RouteObj {
    /// Identity.
    pub ident: RouteIdentity,
    /// What was (or is being) registered.
    pub spec: RouteSpec,
    /// Flows holding it.
    pub refs: u32,
    /// Hardware state.
    pub state: RouteObjState,
    /// Next-hop address (for `show fpp_route` and neighbour changes).
    pub nexthop: Option<IpAddr>,
    /// Flows waiting for its registration.
    pub waiters: Vec<FlowId>,
}

/// All route ids are in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("all 65535 route ids are in use")]
pub struct RouteIdsExhausted;

/// The route objects and their id allocator.
#[derive(Default)]
pub struct HwRoutes {
    objs: HashMap<u16, RouteObj>,
    by_ident: HashMap<RouteIdentity, u16>,
    recycled: Vec<u16>,
    next_fresh: u32,
}

/// Result of [`HwRoutes::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// Route id.
    pub id: u16,
    /// A register command must be sent.
    pub register: bool,
}

impl HwRoutes {
    fn allocate(&mut self) -> Result<u16, RouteIdsExhausted> {
        if let Some(id) = self.recycled.pop() {
            return Ok(id);
        }
        let next = self.next_fresh + 1;
        let id = u16::try_from(next).map_err(|_| RouteIdsExhausted)?;
        self.next_fresh = next;
        Ok(id)
    }

    /// Take a reference on the route object with this identity, creating it (new id, register
    /// needed) when none is usable.
    pub fn acquire(
        &mut self,
        ident: RouteIdentity,
        output: IfName,
        input: IfName,
        nexthop: Option<IpAddr>,
    ) -> Result<Acquired, RouteIdsExhausted> {
        if let Some(&id) = self.by_ident.get(&ident)
            && let Some(obj) = self.objs.get_mut(&id)
            && matches!(obj.state, RouteObjState::Registering | RouteObjState::Registered)
        {
            obj.refs += 1;
            return Ok(Acquired { id, register: false });
        }
        let id = self.allocate()?;
        let spec = RouteSpec { id, output, input, mac: ident.mac, mtu: ident.mtu };
        self.objs.insert(
            id,
            RouteObj {
                ident,
                spec,
                refs: 1,
                state: RouteObjState::Registering,
                nexthop,
                waiters: Vec::new(),
            },
        );
        self.by_ident.insert(ident, id);
        Ok(Acquired { id, register: true })
    }

    /// Adopt a route found in the hardware at start-up (no references yet).
    pub fn adopt(&mut self, ident: RouteIdentity, spec: RouteSpec) {
        self.recycled.retain(|&i| i != spec.id);
        if u32::from(spec.id) > self.next_fresh {
            for id in (self.next_fresh + 1)..u32::from(spec.id) {
                if let Ok(id) = u16::try_from(id) {
                    self.recycled.push(id);
                }
            }
            self.next_fresh = u32::from(spec.id);
        }
        self.by_ident.entry(ident).or_insert(spec.id);
        self.objs.insert(
            spec.id,
            RouteObj {
                ident,
                spec,
                refs: 0,
                state: RouteObjState::Registered,
                nexthop: None,
                waiters: Vec::new(),
            },
        );
    }

    /// Take one more reference on an existing object (adopted connections).
    pub fn hold(&mut self, id: u16) -> bool {
        match self.objs.get_mut(&id) {
            Some(obj) => {
                obj.refs += 1;
                true
            }
            None => false,
        }
    }

    /// Drop a reference. Returns `true` when the object has no users left and a deregister
    /// must be sent (the id stays reserved until [`HwRoutes::deregistered`]).
    pub fn release(&mut self, id: u16) -> bool {
        let Some(obj) = self.objs.get_mut(&id) else { return false };
        obj.refs = obj.refs.saturating_sub(1);
        if obj.refs > 0 {
            return false;
        }
        if self.by_ident.get(&obj.ident) == Some(&id) {
            self.by_ident.remove(&obj.ident);
        }
        match obj.state {
            RouteObjState::Failed | RouteObjState::Registering => {
                // Registering: the register is still queued; its result will find no users
                // and the deregister is sent then.
                if obj.state == RouteObjState::Failed {
                    self.free(id);
                }
                false
            }
            RouteObjState::Registered => {
                obj.state = RouteObjState::Deregistering;
                true
            }
            RouteObjState::Deregistering => false,
        }
    }

    fn free(&mut self, id: u16) {
        self.objs.remove(&id);
        self.recycled.push(id);
    }

    /// Record the register result; returns the flows waiting for it and whether a deregister
    /// must now be sent (every user let go while the register was in flight).
    pub fn registered(&mut self, id: u16, ok: bool) -> (Vec<FlowId>, bool) {
        let Some(obj) = self.objs.get_mut(&id) else { return (Vec::new(), false) };
        let waiters = std::mem::take(&mut obj.waiters);
        if obj.refs == 0 {
            if ok {
                obj.state = RouteObjState::Deregistering;
                return (waiters, true);
            }
            self.free(id);
            return (waiters, false);
        }
        obj.state = if ok { RouteObjState::Registered } else { RouteObjState::Failed };
        if !ok && self.by_ident.get(&obj.ident) == Some(&id) {
            let ident = obj.ident;
            self.by_ident.remove(&ident);
        }
        (waiters, false)
    }

    /// Record a deregister result: on success the id returns to the free list; on failure the
    /// object stays reserved and the caller retries later.
    pub fn deregistered(&mut self, id: u16, ok: bool) {
        if ok {
            if self.objs.get(&id).is_some_and(|o| o.refs == 0) {
                self.free(id);
            }
        } else if let Some(obj) = self.objs.get_mut(&id) {
            obj.state = RouteObjState::Deregistering;
        }
    }

    /// Move an object to a new next-hop MAC (neighbour change); returns the spec to send as
    /// an update.
    pub fn change_mac(&mut self, id: u16, mac: Mac) -> Option<RouteSpec> {
        let obj = self.objs.get_mut(&id)?;
        if self.by_ident.get(&obj.ident) == Some(&id) {
            self.by_ident.remove(&obj.ident);
        }
        obj.ident.mac = mac;
        obj.spec.mac = mac;
        self.by_ident.entry(obj.ident).or_insert(id);
        Some(obj.spec)
    }

    /// Queue a flow until the object's registration completes.
    pub fn wait(&mut self, id: u16, flow: FlowId) {
        if let Some(obj) = self.objs.get_mut(&id) {
            obj.waiters.push(flow);
        }
    }

    /// One object.
    pub fn get(&self, id: u16) -> Option<&RouteObj> {
        self.objs.get(&id)
    }

    /// Every object, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &RouteObj)> {
        self.objs.iter().map(|(id, o)| (*id, o))
    }

    /// Ids of objects with no users that still need a deregister (after adoption).
    pub fn unused(&self) -> Vec<u16> {
        self.objs
            .iter()
            .filter(|(_, o)| o.refs == 0 && o.state == RouteObjState::Registered)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Mark an unused object as being deregistered.
    pub fn mark_deregistering(&mut self, id: u16) {
        if let Some(obj) = self.objs.get_mut(&id) {
            obj.state = RouteObjState::Deregistering;
            if self.by_ident.get(&obj.ident) == Some(&id) {
                let ident = obj.ident;
                self.by_ident.remove(&ident);
            }
        }
    }

    /// Number of ids in use (objects in any state).
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// True when no id is in use.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// Forget everything (after a hardware reset).
    pub fn clear(&mut self) {
        *self = HwRoutes::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(out: u32, mac: u8) -> RouteIdentity {
        RouteIdentity { out_ifindex: out, in_ifindex: 1, mac: Mac([2, 0, 0, 0, 0, mac]), mtu: 1500 }
    }

    fn name(n: &str) -> IfName {
        IfName::new(n).unwrap()
    }

    #[test]
    fn same_identity_shares_an_id() {
        let mut r = HwRoutes::default();
        let a = r.acquire(ident(2, 1), name("eth1"), name("eth0"), None).unwrap();
        let b = r.acquire(ident(2, 1), name("eth1"), name("eth0"), None).unwrap();
        let c = r.acquire(ident(3, 1), name("eth2"), name("eth0"), None).unwrap();
        assert_eq!((a.id, a.register), (1, true));
        assert_eq!((b.id, b.register), (1, false));
        assert_eq!((c.id, c.register), (2, true));
        assert_eq!(r.get(1).unwrap().refs, 2);
    }

    #[test]
    fn ids_are_reused_only_after_confirmed_removal() {
        let mut r = HwRoutes::default();
        let a = r.acquire(ident(2, 1), name("eth1"), name("eth0"), None).unwrap();
        r.registered(a.id, true);
        assert!(r.release(a.id), "last user: deregister");
        let b = r.acquire(ident(3, 1), name("eth2"), name("eth0"), None).unwrap();
        assert_ne!(b.id, a.id, "id still reserved while the deregister is in flight");
        r.deregistered(a.id, true);
        let c = r.acquire(ident(4, 1), name("eth3"), name("eth0"), None).unwrap();
        assert_eq!(c.id, a.id, "recycled after the hardware confirmed");
    }

    #[test]
    fn failed_registration_frees_with_its_last_user() {
        let mut r = HwRoutes::default();
        let a = r.acquire(ident(2, 1), name("eth1"), name("eth0"), None).unwrap();
        r.registered(a.id, false);
        let b = r.acquire(ident(2, 1), name("eth1"), name("eth0"), None).unwrap();
        assert_ne!(a.id, b.id, "a failed object is not shared");
        assert!(!r.release(a.id), "nothing to deregister");
        assert!(r.get(a.id).is_none());
    }

    #[test]
    fn users_leaving_during_registration() {
        let mut r = HwRoutes::default();
        let a = r.acquire(ident(2, 1), name("eth1"), name("eth0"), None).unwrap();
        assert!(!r.release(a.id));
        let (_, dereg) = r.registered(a.id, true);
        assert!(dereg, "registered with no users: remove it again");
    }

    #[test]
    fn adoption_reserves_ids() {
        let mut r = HwRoutes::default();
        let spec = RouteSpec {
            id: 3,
            output: name("eth1"),
            input: name("eth0"),
            mac: Mac::default(),
            mtu: 1500,
        };
        r.adopt(ident(2, 0), spec);
        let ids: Vec<u16> = (0..3)
            .map(|i| r.acquire(ident(10 + i, 9), name("x"), name("y"), None).unwrap().id)
            .collect();
        assert!(!ids.contains(&3));
        assert_eq!(r.unused(), vec![3]);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_hang() {
        let mut r = HwRoutes::default();
        for i in 0..65535u32 {
            r.acquire(ident(i + 1, 0), name("a"), name("b"), None).unwrap();
        }
        assert_eq!(r.acquire(ident(0, 7), name("a"), name("b"), None), Err(RouteIdsExhausted));
    }
}
