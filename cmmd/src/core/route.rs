//! The route cache: one kernel route lookup per key, shared by every flow that needs it.
//!
//! A lookup is keyed by what policy routing decides on, exactly what is sent to the kernel in an
//! RTM_GETROUTE request (`ip route get DST from SRC iif IIF mark MARK`): the destination, and
//! for a forwarded direction its source, input interface and mark, so that `ip rule`s on any of
//! them give cmmd the egress the kernel itself uses. Lookups are asynchronous: [`RouteCache::acquire`] says
//! whether a request must be sent, and [`RouteCache::complete`] takes the answer, matched by
//! request number. Entries are reference-counted by the flows that use them and disappear with
//! their last user, so the cache never outgrows the flow table. Route and rule events do not
//! flush the cache: they mark the affected entries for a fresh lookup, and only an answer that
//! differs from the cached one re-programs flows.

use hashbrown::HashMap;
use std::net::IpAddr;

use crate::core::flow::FlowId;
use crate::core::policy::Cidr;

/// Kernel route types (`rtm_type`) the engine distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// RTN_UNICAST: a gateway or directly connected route.
    Unicast,
    /// RTN_LOCAL: the destination is this host.
    Local,
    /// RTN_BROADCAST or RTN_MULTICAST.
    Broadcast,
    /// RTN_UNREACHABLE, RTN_BLACKHOLE, RTN_PROHIBIT, RTN_THROW and others.
    Unusable(u8),
}

impl RouteKind {
    /// From the kernel's `rtm_type`.
    pub fn from_rtm_type(t: u8) -> RouteKind {
        match t {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 | 5 => RouteKind::Broadcast,
            other => RouteKind::Unusable(other),
        }
    }
}

/// The kernel's answer to a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// Route type.
    pub kind: RouteKind,
    /// Output interface index (0 if none).
    pub oif: u32,
    /// Gateway, when the destination is not directly connected.
    pub gateway: Option<IpAddr>,
    /// Route MTU (RTAX_MTU), 0 when the route has none (the link MTU applies).
    pub mtu: u32,
}

/// A lookup that failed (the kernel answered with an error, e.g. ENETUNREACH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteError {
    /// Positive errno.
    pub errno: i32,
}

/// What is known about one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteState {
    /// The first lookup is in flight.
    Pending,
    /// The kernel answered.
    Resolved(RouteInfo),
    /// The kernel refused the lookup.
    Failed(RouteError),
}

/// Identity of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteKey {
    /// Destination address.
    pub dst: IpAddr,
    /// Source address of the packets (`None`: the host's own choice, an output lookup).
    pub src: Option<IpAddr>,
    /// Interface the packets come in on (0: none, an output lookup from the host).
    pub iif: u32,
    /// Firewall mark used for policy routing (0 = none).
    pub mark: u32,
}

impl RouteKey {
    /// The lookup the host makes for its own packets to `dst` (no source, no input interface).
    pub fn output(dst: IpAddr, mark: u32) -> RouteKey {
        RouteKey { dst, src: None, iif: 0, mark }
    }

    /// The lookup of a forwarded packet from `src` to `dst` that came in on `iif`.
    pub fn forwarded(dst: IpAddr, src: IpAddr, iif: u32, mark: u32) -> RouteKey {
        RouteKey { dst, src: Some(src), iif, mark }
    }

    /// True for the lookup of a direction of a connection (it has a source); false for the
    /// host's own route towards a client, which only says where that client comes in.
    pub fn is_forwarded(&self) -> bool {
        self.src.is_some()
    }
}

/// Handle of a cache entry held by a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteRef(u32);

impl RouteRef {
    /// Compact form stored in flow entries.
    pub fn raw(self) -> u32 {
        self.0
    }

    /// From the compact form.
    pub fn from_raw(raw: u32) -> RouteRef {
        RouteRef(raw)
    }
}

struct Entry {
    key: RouteKey,
    state: RouteState,
    users: u32,
    /// Request in flight for this entry (first lookup or re-lookup).
    request: Option<u32>,
    /// Flows waiting for the first answer.
    waiters: Vec<FlowId>,
}

/// A lookup the caller must send to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Request number (use it as the netlink sequence number).
    pub request: u32,
    /// What to look up.
    pub key: RouteKey,
}

/// The answer to a lookup, applied to the cache.
#[derive(Debug, PartialEq, Eq)]
pub struct Completed {
    /// The entry.
    pub route: RouteRef,
    /// True when a previous answer was cached and this one differs from it (flows using the
    /// old answer must be re-resolved). False for a first answer: its users are the waiters.
    pub changed: bool,
    /// Flows that were waiting for the first answer.
    pub waiters: Vec<FlowId>,
}

/// The cache.
#[derive(Default)]
pub struct RouteCache {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_key: HashMap<RouteKey, u32>,
    requests: HashMap<u32, u32>,
    next_request: u32,
}

impl RouteCache {
    /// Take a reference on the entry for `key`, creating it if needed. Returns the lookup to
    /// send when the entry is new.
    pub fn acquire(&mut self, key: RouteKey) -> (RouteRef, Option<Lookup>) {
        if let Some(&idx) = self.by_key.get(&key) {
            if let Some(e) = self.entries[idx as usize].as_mut() {
                e.users += 1;
            }
            return (RouteRef(idx), None);
        }
        let request = self.new_request();
        let entry = Entry {
            key,
            state: RouteState::Pending,
            users: 1,
            request: Some(request),
            waiters: Vec::new(),
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.entries[idx as usize] = Some(entry);
                idx
            }
            None => {
                self.entries.push(Some(entry));
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_key.insert(key, idx);
        self.requests.insert(request, idx);
        (RouteRef(idx), Some(Lookup { request, key }))
    }

    fn new_request(&mut self) -> u32 {
        self.next_request = self.next_request.wrapping_add(1).max(1);
        self.next_request
    }

    /// Drop a reference; the entry goes away with its last user.
    pub fn release(&mut self, route: RouteRef) {
        let Some(Some(e)) = self.entries.get_mut(route.0 as usize) else { return };
        e.users = e.users.saturating_sub(1);
        if e.users == 0 {
            let key = e.key;
            if let Some(req) = e.request {
                self.requests.remove(&req);
            }
            self.by_key.remove(&key);
            self.entries[route.0 as usize] = None;
            self.free.push(route.0);
        }
    }

    /// The state of an entry (`Pending` for an unknown handle).
    pub fn state(&self, route: RouteRef) -> RouteState {
        match self.entries.get(route.0 as usize) {
            Some(Some(e)) => e.state,
            _ => RouteState::Pending,
        }
    }

    /// The key of an entry.
    pub fn key(&self, route: RouteRef) -> Option<RouteKey> {
        self.entries.get(route.0 as usize)?.as_ref().map(|e| e.key)
    }

    /// Register a flow to be told when the first answer arrives.
    pub fn wait(&mut self, route: RouteRef, flow: FlowId) {
        if let Some(Some(e)) = self.entries.get_mut(route.0 as usize) {
            e.waiters.push(flow);
        }
    }

    /// Apply the kernel's answer to request `request`. `None` if the request is unknown (the
    /// entry was released meanwhile, or a newer request superseded it).
    pub fn complete(
        &mut self,
        request: u32,
        answer: Result<RouteInfo, RouteError>,
    ) -> Option<Completed> {
        let idx = self.requests.remove(&request)?;
        let e = self.entries.get_mut(idx as usize)?.as_mut()?;
        if e.request != Some(request) {
            return None;
        }
        e.request = None;
        let new = match answer {
            Ok(info) => RouteState::Resolved(info),
            Err(err) => RouteState::Failed(err),
        };
        let changed = e.state != RouteState::Pending && e.state != new;
        e.state = new;
        Some(Completed { route: RouteRef(idx), changed, waiters: std::mem::take(&mut e.waiters) })
    }

    /// Schedule a fresh lookup of every entry whose destination lies in `prefix` (all entries
    /// when `prefix` is `None`: rule changes, link changes, rtnetlink overruns). The cached
    /// state stays in use until the new answer arrives.
    pub fn invalidate(&mut self, prefix: Option<&Cidr>) -> Vec<Lookup> {
        let mut lookups = Vec::new();
        for idx in 0..self.entries.len() {
            let Some(key) = self.entries[idx].as_ref().map(|e| e.key) else { continue };
            if prefix.is_some_and(|p| !p.contains(&key.dst)) {
                continue;
            }
            let request = self.new_request();
            let Some(e) = self.entries[idx].as_mut() else { continue };
            if let Some(old) = e.request.replace(request) {
                self.requests.remove(&old);
            }
            let idx = u32::try_from(idx).unwrap_or(u32::MAX);
            self.requests.insert(request, idx);
            lookups.push(Lookup { request, key });
        }
        lookups
    }

    /// Every entry with its key, state and number of users (for `show route`).
    pub fn entries(&self) -> impl Iterator<Item = (RouteKey, RouteState, u32)> + '_ {
        self.entries.iter().flatten().map(|e| (e.key, e.state, e.users))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dst: &str) -> RouteKey {
        RouteKey::output(dst.parse().unwrap(), 0)
    }

    fn info(oif: u32) -> RouteInfo {
        RouteInfo { kind: RouteKind::Unicast, oif, gateway: None, mtu: 0 }
    }

    #[test]
    fn one_lookup_per_destination_shared_by_users() {
        let mut c = RouteCache::default();
        let (a, la) = c.acquire(key("10.0.0.1"));
        let (b, lb) = c.acquire(key("10.0.0.1"));
        assert_eq!(a, b);
        assert!(la.is_some() && lb.is_none());
        assert_eq!(c.state(a), RouteState::Pending);
        let done = c.complete(la.unwrap().request, Ok(info(3))).unwrap();
        assert!(!done.changed, "a first answer is not a change");
        assert_eq!(c.state(a), RouteState::Resolved(info(3)));
        c.release(a);
        assert_eq!(c.len(), 1, "still one user");
        c.release(b);
        assert!(c.is_empty());
    }

    #[test]
    fn late_answers_for_released_entries_are_ignored() {
        let mut c = RouteCache::default();
        let (a, l) = c.acquire(key("10.0.0.1"));
        c.release(a);
        assert!(c.complete(l.unwrap().request, Ok(info(1))).is_none());
    }

    #[test]
    fn invalidation_is_scoped_and_reports_changes() {
        let mut c = RouteCache::default();
        let (a, la) = c.acquire(key("10.1.0.1"));
        let (b, lb) = c.acquire(key("10.2.0.1"));
        c.complete(la.unwrap().request, Ok(info(3)));
        c.complete(lb.unwrap().request, Ok(info(4)));
        let prefix = Cidr::parse("10.1.0.0/16").unwrap();
        let again = c.invalidate(Some(&prefix));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].key, key("10.1.0.1"));
        assert_eq!(c.state(a), RouteState::Resolved(info(3)), "old answer stays in use");
        let same = c.complete(again[0].request, Ok(info(3))).unwrap();
        assert!(!same.changed);
        let all = c.invalidate(None);
        assert_eq!(all.len(), 2);
        for l in all {
            let r = c.complete(l.request, Ok(info(9))).unwrap();
            assert!(r.changed);
        }
        assert_eq!(c.state(b), RouteState::Resolved(info(9)));
    }

    #[test]
    fn superseded_requests_are_ignored() {
        let mut c = RouteCache::default();
        let (_, first) = c.acquire(key("10.0.0.1"));
        let second = c.invalidate(None);
        assert!(c.complete(first.unwrap().request, Ok(info(1))).is_none());
        assert!(c.complete(second[0].request, Ok(info(2))).is_some());
    }
}
