//! Engine tests against a small fake world: a kernel conntrack table, a routing table, and a
//! model of cdx that checks the engine's command order (routes before the connections that
//! use them, no route removed while referenced, no duplicate registration).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{HwKey, Pending, *};
use crate::core::flow::Tuple;
use crate::core::flow::key::proto;
use crate::core::hw::{
    CtSpec, HwEvent, HwFailure, HwOp, HwReply, HwResult, RouteSpec, WalkedRoute,
};
use crate::core::net::{IfName, Link, Mac, Neighbour, nud};
use crate::core::policy::tests::ct as mk_ct;
use crate::core::policy::{Cidr, CtInfo, Policy, UdpPolicy};

/// `IPS_PERMANENT` of the fake world's kernel (an ASK 6.x kernel: bit 16).
pub(super) const PERMANENT: Status = Status::from_bits_retain(1 << 16);
use crate::core::route::{RouteError, RouteInfo, RouteKey, RouteKind};
use crate::core::stats::Reason;
use conntrack::{Status, TcpState};

mod admission;
mod keepalive;
mod network;
mod operator;
mod programming;
mod resync;
mod routing;
mod withdrawal;

const ETH0: u32 = 2; // client side, 10.1.0.0/24
const ETH1: u32 = 3; // server side, 10.2.0.0/24
const VETH: u32 = 4; // a CNI veth, 10.3.0.0/24
const ETH2: u32 = 5; // a second uplink, 10.4.0.0/24 (policy-routing tests)

fn mac(last: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, last])
}

fn ifname(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The hardware as the fake world sees it.
#[derive(Default)]
struct FakeCdx {
    routes: BTreeMap<u16, RouteSpec>,
    cts: HashMap<HwKey, CtSpec>,
    /// Failures to inject, by op name, consumed in order.
    fail: VecDeque<(&'static str, HwFailure)>,
    /// Ops executed whose reply is lost (the worker reports a timeout), by name, in order.
    lost_replies: Vec<&'static str>,
    remaining: HashMap<HwKey, u32>,
    log: Vec<HwOp>,
}

impl FakeCdx {
    fn apply(&mut self, op: &HwOp) -> Result<HwReply, HwFailure> {
        self.log.push(op.clone());
        if let Some(pos) = self.fail.iter().position(|(name, _)| *name == op.name()) {
            let (_, f) = self.fail.remove(pos).unwrap();
            return Err(f);
        }
        match op {
            HwOp::RouteRegister(r) => {
                assert!(!self.routes.contains_key(&r.id), "route {} registered twice", r.id);
                self.routes.insert(r.id, *r);
            }
            HwOp::RouteUpdate(r) => {
                assert!(self.routes.contains_key(&r.id), "update of unknown route {}", r.id);
                self.routes.insert(r.id, *r);
            }
            HwOp::RouteDeregister(id) => {
                let linked = self.cts.values().any(|c| c.route_orig == *id || c.route_reply == *id);
                assert!(!linked, "route {id} removed while a connection uses it");
                if self.routes.remove(id).is_none() {
                    return Err(HwFailure::NotFound);
                }
            }
            HwOp::CtRegister(c) | HwOp::CtUpdate(c) => {
                for id in [c.route_orig, c.route_reply] {
                    assert!(
                        id == 0 || self.routes.contains_key(&id),
                        "connection uses unregistered route {id}"
                    );
                }
                let exists = self.cts.contains_key(&(c.proto, c.orig));
                if matches!(op, HwOp::CtRegister(_)) {
                    assert!(!exists, "connection registered twice: {:?}", c.orig);
                } else if !exists {
                    return Err(HwFailure::NotFound);
                }
                self.cts.insert((c.proto, c.orig), *c);
            }
            HwOp::CtDeregister(c) => {
                if self.cts.remove(&(c.proto, c.orig)).is_none() {
                    return Err(HwFailure::NotFound);
                }
            }
            HwOp::CtRemaining(c) => {
                let key = (c.proto, c.orig);
                if !self.cts.contains_key(&key) {
                    return Err(HwFailure::NotFound);
                }
                return Ok(HwReply::Remaining(*self.remaining.get(&key).unwrap_or(&0)));
            }
            HwOp::SetTimeout { .. } | HwOp::FastForward(_) => {}
            HwOp::Reset => {
                self.cts.clear();
                self.routes.clear();
            }
            HwOp::Walk => {
                return Ok(HwReply::Walk {
                    conntracks: self.cts.values().map(|spec| WalkedCt { spec: *spec }).collect(),
                    routes: self.routes.values().map(|spec| WalkedRoute { spec: *spec }).collect(),
                });
            }
        }
        Ok(HwReply::Done)
    }
}

/// An `ip rule`: packets that match every field set look up `table` first.
struct PolicyRule {
    from: Option<Cidr>,
    iif: Option<u32>,
    fwmark: Option<u32>,
    table: Vec<(Cidr, Result<RouteInfo, RouteError>)>,
}

impl PolicyRule {
    fn matches(&self, key: &RouteKey) -> bool {
        self.from.is_none_or(|from| key.src.is_some_and(|src| from.contains(&src)))
            && self.iif.is_none_or(|iif| key.iif == iif)
            && self.fwmark.is_none_or(|mark| key.mark == mark)
    }
}

struct World {
    engine: Engine,
    now: Instant,
    kernel: HashMap<FlowKey, CtInfo>,
    cdx: FakeCdx,
    /// Route table: (prefix, answer). First match wins.
    rib: Vec<(Cidr, Result<RouteInfo, RouteError>)>,
    /// Policy rules before the main table, first match wins (`ip rule`).
    rules: Vec<PolicyRule>,
    /// Every lookup asked, in order.
    asked: Vec<RouteKey>,
    refreshed: Vec<(FlowKey, u32)>,
    deleted: Vec<FlowKey>,
    lookups: usize,
    /// Hold route answers instead of answering at once.
    hold_lookups: bool,
    held: Vec<Lookup>,
}

fn unicast(oif: u32, gateway: Option<&str>) -> Result<RouteInfo, RouteError> {
    Ok(RouteInfo { kind: RouteKind::Unicast, oif, gateway: gateway.map(ip), mtu: 0 })
}

fn cidr(s: &str) -> Cidr {
    Cidr::parse(s).unwrap()
}

fn net() -> NetView {
    let mut n = NetView::new([ifname("eth0"), ifname("eth1"), ifname("eth2")]);
    for (index, name) in [(ETH0, "eth0"), (ETH1, "eth1"), (VETH, "veth0"), (ETH2, "eth2")] {
        n.upsert_link(Link { index, name: ifname(name), up: true, mtu: 1500, noarp: false });
    }
    n.add_address(ETH0, ip("10.1.0.1"));
    n.add_address(ETH1, ip("10.2.0.1"));
    n.add_address(VETH, ip("10.3.0.1"));
    n.add_address(ETH2, ip("10.4.0.1"));
    for (ifindex, addr, m) in [
        (ETH0, "10.1.0.2", 0x12),
        (ETH1, "10.2.0.2", 0x22),
        (ETH1, "10.2.0.254", 0x2f),
        (VETH, "10.3.0.2", 0x32),
        (ETH2, "10.4.0.254", 0x4f),
    ] {
        n.upsert_neighbour(Neighbour {
            ifindex,
            addr: ip(addr),
            mac: Some(mac(m)),
            state: nud::REACHABLE,
        });
    }
    n
}

impl World {
    fn new(cfg: EngineConfig) -> World {
        let now = Instant::now();
        let mut w = World {
            engine: Engine::new(cfg, net(), now),
            now,
            kernel: HashMap::new(),
            cdx: FakeCdx::default(),
            rib: vec![
                (
                    cidr("10.1.0.1/32"),
                    Ok(RouteInfo { kind: RouteKind::Local, oif: 1, gateway: None, mtu: 0 }),
                ),
                (
                    cidr("10.2.0.1/32"),
                    Ok(RouteInfo { kind: RouteKind::Local, oif: 1, gateway: None, mtu: 0 }),
                ),
                (cidr("10.1.0.0/24"), unicast(ETH0, None)),
                (cidr("10.2.0.0/24"), unicast(ETH1, None)),
                (cidr("10.3.0.0/24"), unicast(VETH, None)),
                (cidr("10.9.0.0/16"), unicast(ETH1, Some("10.2.0.254"))),
                (cidr("fd01::/64"), unicast(ETH0, None)),
                (cidr("fd02::/64"), unicast(ETH1, None)),
            ],
            rules: Vec::new(),
            asked: Vec::new(),
            refreshed: Vec::new(),
            deleted: Vec::new(),
            lookups: 0,
            hold_lookups: false,
            held: Vec::new(),
        };
        w.engine.net_mut().upsert_neighbour(Neighbour {
            ifindex: ETH0,
            addr: ip("fd01::2"),
            mac: Some(mac(0x16)),
            state: nud::STALE,
        });
        w.engine.net_mut().upsert_neighbour(Neighbour {
            ifindex: ETH1,
            addr: ip("fd02::2"),
            mac: Some(mac(0x26)),
            state: nud::REACHABLE,
        });
        w.engine.start(w.now);
        w.run();
        assert!(w.engine.is_ready());
        w
    }

    /// The kernel's answer to a lookup: the first policy rule that matches the key's source,
    /// input interface and mark, if its table has a route for the destination, else the main
    /// table (`rib`), as `ip rule` falls through.
    fn route(&self, key: &RouteKey) -> Result<RouteInfo, RouteError> {
        let find = |table: &[(Cidr, Result<RouteInfo, RouteError>)]| {
            table.iter().find(|(c, _)| c.contains(&key.dst)).map(|(_, r)| *r)
        };
        self.rules
            .iter()
            .filter(|rule| rule.matches(key))
            .find_map(|rule| find(&rule.table))
            .or_else(|| find(&self.rib))
            .unwrap_or(Err(RouteError { errno: 101 }))
    }

    /// Execute actions until the engine is quiet.
    fn run(&mut self) {
        while let Some(action) = self.engine.pop_action() {
            match action {
                Action::Hw(req) => {
                    let mut outcome = self.cdx.apply(&req.op);
                    if let Some(i) = self.cdx.lost_replies.iter().position(|n| *n == req.op.name())
                    {
                        self.cdx.lost_replies.remove(i);
                        outcome = Err(HwFailure::Timeout);
                    }
                    self.engine.on_hw_result(HwResult { tag: req.tag, outcome }, self.now);
                }
                Action::RouteLookup(l) => {
                    self.lookups += 1;
                    self.asked.push(l.key);
                    if self.hold_lookups {
                        self.held.push(l);
                    } else {
                        let answer = self.route(&l.key);
                        self.engine.on_route_answer(l.request, answer, self.now);
                    }
                }
                Action::Dump { generation } => {
                    let entries: Vec<CtInfo> = self.kernel.values().copied().collect();
                    for ct in entries {
                        self.engine.on_conntrack(CtEventKind::Dump, &ct, self.now);
                    }
                    self.engine.on_dump_done(generation, self.now);
                }
                Action::NetDump => self.engine.on_net_resynced(self.now),
                Action::KernelRefresh { key, timeout } => self.refreshed.push((key, timeout)),
                Action::KernelPermanent { key, id, set } => {
                    // The ASK 6.x kernel: bit 16, changed only for the entry with this id.
                    if let Some(ct) = self.kernel.get_mut(&key).filter(|ct| ct.id == id) {
                        ct.status.set(PERMANENT, set);
                    }
                }
                Action::KernelDelete { key, .. } => {
                    self.deleted.push(key);
                    self.kernel.remove(&key);
                }
            }
        }
    }

    fn release_lookups(&mut self) {
        self.hold_lookups = false;
        for l in std::mem::take(&mut self.held) {
            let answer = self.route(&l.key);
            self.engine.on_route_answer(l.request, answer, self.now);
        }
        self.run();
    }

    fn event(&mut self, kind: CtEventKind, ct: CtInfo) {
        match kind {
            CtEventKind::Destroy => {
                self.kernel.remove(&ct.key);
            }
            _ => {
                self.kernel.insert(ct.key, ct);
            }
        }
        self.engine.on_conntrack(kind, &ct, self.now);
        self.run();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.engine.on_timer(self.now);
        self.run();
    }

    fn state(&self, ct: &CtInfo) -> Option<(FlowState, Reason)> {
        self.engine.flow(&ct.key).map(|f| (f.state(), f.reason()))
    }

    fn assert_no_leaks(&self) {
        assert_eq!(self.engine.len(), 0, "flows left in the table");
        assert!(self.engine.hw_routes().is_empty(), "route ids left allocated");
        assert!(self.cdx.routes.is_empty(), "routes left in the hardware: {:?}", self.cdx.routes);
        assert!(self.cdx.cts.is_empty(), "connections left in the hardware");
        assert!(self.engine.routes().is_empty(), "route cache entries left");
        assert!(self.engine.hw_idle(), "commands still in flight");
    }
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> CtInfo {
    mk_ct(proto::TCP, src, sport, dst, dport)
}

fn forwarded() -> CtInfo {
    tcp("10.1.0.2", 40000, "10.2.0.2", 443)
}

fn count(w: &World, r: Reason) -> u64 {
    w.engine.stats().reason(r)
}
