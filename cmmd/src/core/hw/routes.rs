//! The route objects cmmd owns in cdx: their identities, ids and reference counts.
//!
//! Contract: objects are shared by every connection direction with the same ingress port,
//! egress port, next-hop MAC and MTU ([`RouteIdentity`]); ids come from a free list
//! (1..=[`MAX_ROUTE_ID`]) and return to it only when cdx confirmed the removal; an object
//! never changes once registered; one that serves [`MAX_ROUTE_LINKS`] directions is split
//! (cdx's 16-bit count would refuse the next link silently).

use hashbrown::HashMap;
use std::net::IpAddr;

use super::RouteSpec;
use crate::core::flow::FlowId;
use crate::core::net::{IfName, Mac};

/// Highest route id given out. 0xFFFF is kept for the offload worker's probe of whether cdx
/// knows an interface (a route registered and removed at once).
pub const MAX_ROUTE_ID: u16 = 0xFFFE;

/// Directions one route object may serve: cdx's 16-bit reference count refuses a link at
/// 0xFFFF (and the direction then silently stays out of hardware), so objects split one
/// short of it.
pub const MAX_ROUTE_LINKS: u32 = 0xFFFE;

/// Identity of a route object: what cdx would do with packets using it. The names are part
/// of it: cdx knows interfaces by name, so a renamed interface is another route object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteIdentity {
    /// Egress interface index.
    pub out_ifindex: u32,
    /// Ingress interface index.
    pub in_ifindex: u32,
    /// Egress interface name.
    pub output: IfName,
    /// Ingress interface name.
    pub input: IfName,
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
#[error("all {MAX_ROUTE_ID} route ids are in use")]
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
    /// The path's object had [`MAX_ROUTE_LINKS`] users: this is a second object for it.
    pub split: bool,
}

impl HwRoutes {
    fn allocate(&mut self) -> Result<u16, RouteIdsExhausted> {
        if let Some(id) = self.recycled.pop() {
            return Ok(id);
        }
        let next = self.next_fresh + 1;
        let id =
            u16::try_from(next).ok().filter(|id| *id <= MAX_ROUTE_ID).ok_or(RouteIdsExhausted)?;
        self.next_fresh = next;
        Ok(id)
    }

    /// Take a reference on the route object with this identity, creating it (new id, register
    /// needed) when none is usable: none exists, or the one that does serves
    /// [`MAX_ROUTE_LINKS`] directions already (split: later users share the new one).
    pub fn acquire(
        &mut self,
        ident: RouteIdentity,
        output: IfName,
        input: IfName,
        nexthop: Option<IpAddr>,
    ) -> Result<Acquired, RouteIdsExhausted> {
        let mut split = false;
        if let Some(&id) = self.by_ident.get(&ident)
            && let Some(obj) = self.objs.get_mut(&id)
            && matches!(obj.state, RouteObjState::Registering | RouteObjState::Registered)
        {
            if obj.refs < MAX_ROUTE_LINKS {
                obj.refs += 1;
                return Ok(Acquired { id, register: false, split: false });
            }
            split = true;
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
        Ok(Acquired { id, register: true, split })
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

    /// The registered object new users of this path would share, if there is one with room
    /// (adoption: a walked connection whose resolved path has an object is taken as using
    /// it; cdx's walk does not say which route a connection links).
    pub fn registered_for(&self, ident: &RouteIdentity) -> Option<u16> {
        let id = *self.by_ident.get(ident)?;
        let obj = self.objs.get(&id)?;
        (obj.state == RouteObjState::Registered && obj.refs < MAX_ROUTE_LINKS).then_some(id)
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
        RouteIdentity {
            out_ifindex: out,
            in_ifindex: 1,
            output: IfName::default(),
            input: IfName::default(),
            mac: Mac([2, 0, 0, 0, 0, mac]),
            mtu: 1500,
        }
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
        assert_eq!((a.id, a.register, a.split), (1, true, false));
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
        for i in 0..u32::from(MAX_ROUTE_ID) {
            r.acquire(ident(i + 1, 0), name("a"), name("b"), None).unwrap();
        }
        assert_eq!(r.acquire(ident(0, 7), name("a"), name("b"), None), Err(RouteIdsExhausted));
        assert!(r.get(0xFFFF).is_none(), "0xFFFF is the worker's probe id, never given out");
    }

    /// cdx `layer2.c` `L2_route_get`: a route's 16-bit reference count refuses a link at
    /// 0xFFFF, and the direction then silently stays out of hardware.
    #[test]
    fn a_path_gets_a_second_object_before_cdx_would_refuse_a_link() {
        let mut r = HwRoutes::default();
        let gateway = ident(2, 1);
        let first = r.acquire(gateway, name("eth1"), name("eth0"), None).unwrap();
        r.registered(first.id, true);
        for _ in 1..MAX_ROUTE_LINKS {
            let same = r.acquire(gateway, name("eth1"), name("eth0"), None).unwrap();
            assert_eq!((same.id, same.register, same.split), (first.id, false, false));
        }
        assert_eq!(r.get(first.id).unwrap().refs, MAX_ROUTE_LINKS);
        assert!(MAX_ROUTE_LINKS < u32::from(u16::MAX), "one short of cdx's saturation");
        let second = r.acquire(gateway, name("eth1"), name("eth0"), None).unwrap();
        assert_eq!((second.register, second.split), (true, true));
        assert_ne!(second.id, first.id);
        r.registered(second.id, true);
        let third = r.acquire(gateway, name("eth1"), name("eth0"), None).unwrap();
        assert_eq!((third.id, third.register), (second.id, false), "later users share it");
        assert_eq!(r.registered_for(&gateway), Some(second.id));
        // The first object's users leave: it goes when the last one does.
        for _ in 1..MAX_ROUTE_LINKS {
            assert!(!r.release(first.id));
        }
        assert!(r.release(first.id), "last user of the first object: deregister it");
        assert_eq!(r.get(second.id).unwrap().refs, 2);
    }
}
