//! Engine tests against a small fake world: a kernel conntrack table, a routing table, and a
//! model of cdx that checks the engine's command order (routes before the connections that
//! use them, no route removed while referenced, no duplicate registration).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::HwKey;
use super::Pending;
use super::*;
use crate::core::flow::Tuple;
use crate::core::flow::key::proto;
use crate::core::hw::CtSpec;
use crate::core::hw::HwEvent;
use crate::core::hw::HwFailure;
use crate::core::hw::HwOp;
use crate::core::hw::HwReply;
use crate::core::hw::HwResult;
use crate::core::hw::{RouteSpec, WalkedRoute};
use crate::core::net::IfName;
use crate::core::net::Link;
use crate::core::net::Mac;
use crate::core::net::Neighbour;
use crate::core::net::nud;
use crate::core::policy::CtInfo;
use crate::core::policy::Policy;
use crate::core::policy::status;
use crate::core::policy::tests::ct as mk_ct;
use crate::core::policy::{Cidr, UdpMode, tcp_state};
use crate::core::route::RouteError;
use crate::core::route::RouteInfo;
use crate::core::route::RouteKind;
use crate::core::stats::Reason;

const ETH0: u32 = 2; // client side, 10.1.0.0/24
const ETH1: u32 = 3; // server side, 10.2.0.0/24
const VETH: u32 = 4; // a CNI veth, 10.3.0.0/24

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
            HwOp::SetTimeout { .. } => {}
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

struct World {
    engine: Engine,
    now: Instant,
    kernel: HashMap<FlowKey, CtInfo>,
    cdx: FakeCdx,
    /// Route table: (prefix, answer). First match wins.
    rib: Vec<(Cidr, Result<RouteInfo, RouteError>)>,
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
    let mut n = NetView::new([ifname("eth0"), ifname("eth1")]);
    for (index, name) in [(ETH0, "eth0"), (ETH1, "eth1"), (VETH, "veth0")] {
        n.upsert_link(Link { index, name: ifname(name), up: true, mtu: 1500, noarp: false });
    }
    n.add_address(ETH0, ip("10.1.0.1"));
    n.add_address(ETH1, ip("10.2.0.1"));
    n.add_address(VETH, ip("10.3.0.1"));
    for (ifindex, addr, m) in [
        (ETH0, "10.1.0.2", 0x12),
        (ETH1, "10.2.0.2", 0x22),
        (ETH1, "10.2.0.254", 0x2f),
        (VETH, "10.3.0.2", 0x32),
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

    fn route(&self, dst: IpAddr) -> Result<RouteInfo, RouteError> {
        self.rib
            .iter()
            .find(|(c, _)| c.contains(&dst))
            .map_or(Err(RouteError { errno: 101 }), |(_, r)| *r)
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
                    if self.hold_lookups {
                        self.held.push(l);
                    } else {
                        let answer = self.route(l.key.dst);
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
                Action::KernelStatus { key, status } => {
                    if let Some(ct) = self.kernel.get_mut(&key) {
                        ct.status = status;
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
            let answer = self.route(l.key.dst);
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

#[test]
fn established_tcp_is_programmed_with_both_routes() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!((hw.orig, hw.reply), (ct.key.orig, ct.reply));
    let orig = w.cdx.routes[&hw.route_orig];
    let reply = w.cdx.routes[&hw.route_reply];
    assert_eq!(
        (orig.input, orig.output, orig.mac, orig.mtu),
        (ifname("eth0"), ifname("eth1"), mac(0x22), 1500)
    );
    assert_eq!((reply.input, reply.output, reply.mac), (ifname("eth1"), ifname("eth0"), mac(0x12)));
    // Routes went to the hardware before the connection that uses them.
    let names: Vec<_> =
        w.cdx.log.iter().map(HwOp::name).filter(|n| *n != "set_timeout" && *n != "walk").collect();
    assert_eq!(names, ["route_register", "route_register", "ct_register"]);
    assert_eq!(w.engine.stats().offloaded, 1);
    assert_eq!(w.engine.stats().latency.count, 1, "programming latency recorded once");
}

#[test]
fn destroy_withdraws_and_frees_everything() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
    assert_eq!(w.engine.stats().withdrawn, 1);
    assert_eq!(count(&w, Reason::Destroyed), 0, "destroy is not a refusal");
}

#[test]
fn leaving_established_withdraws() {
    let mut w = World::new(EngineConfig::default());
    let mut ct = forwarded();
    w.event(CtEventKind::Update, ct);
    ct.tcp_state = Some(4); // FIN_WAIT
    w.event(CtEventKind::Update, ct);
    w.assert_no_leaks();
    assert_eq!(count(&w, Reason::NotEstablished), 1);
    assert!(w.kernel.contains_key(&ct.key), "the kernel entry is left alone");
}

#[test]
fn connections_are_not_programmed_before_established() {
    let mut w = World::new(EngineConfig::default());
    let mut ct = forwarded();
    ct.tcp_state = Some(tcp_state::ESTABLISHED - 2);
    w.event(CtEventKind::New, ct);
    assert!(w.engine.is_empty());
    assert!(w.cdx.cts.is_empty());
}

#[test]
fn refusals_are_counted_and_not_tracked() {
    let mut w = World::new(EngineConfig::default());
    let pod = tcp("10.1.0.2", 40000, "10.3.0.2", 80);
    let local = tcp("10.1.0.2", 40000, "10.2.0.1", 22);
    let host = tcp("10.2.0.1", 40000, "10.2.0.2", 80);
    let ftp = tcp("10.1.0.2", 40000, "10.2.0.2", 21);
    let icmp = mk_ct(proto::ICMP, "10.1.0.2", 7, "10.2.0.2", 0);
    for ct in [pod, local, host, ftp, icmp] {
        w.event(CtEventKind::New, ct);
        w.event(CtEventKind::Update, ct);
    }
    assert!(w.engine.is_empty(), "nothing tracked");
    assert!(w.cdx.cts.is_empty() && w.cdx.routes.is_empty());
    assert_eq!(count(&w, Reason::NotFastpathPort), 2);
    assert_eq!(count(&w, Reason::Local), 4);
    assert_eq!(count(&w, Reason::ExcludedByRule), 2);
    assert_eq!(
        count(&w, Reason::UnsupportedProtocol),
        1,
        "static reasons count once per conntrack"
    );
    assert!(w.engine.routes().is_empty(), "refused connections hold no route");
}

#[test]
fn dnat_routes_towards_the_translated_destination() {
    let mut w = World::new(EngineConfig::default());
    // Client 10.1.0.2 connects to the router's 10.1.0.1:8080, DNATed to 10.2.0.2:80.
    let mut ct = tcp("10.1.0.2", 40000, "10.1.0.1", 8080);
    ct.reply = Tuple { src: ip("10.2.0.2"), dst: ip("10.1.0.2"), src_port: 80, dst_port: 40000 };
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(hw.reply.src, ip("10.2.0.2"));
    assert_eq!(w.cdx.routes[&hw.route_orig].output, ifname("eth1"));
}

#[test]
fn gateway_next_hop_mac_is_used() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mac, mac(0x2f));
}

#[test]
fn ipv6_is_programmed() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("fd01::2", 40000, "fd02::2", 443);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mac, mac(0x26));
    assert_eq!(w.cdx.routes[&hw.route_reply].mac, mac(0x16));
}

#[test]
fn route_objects_are_shared_and_released_with_the_last_user() {
    let mut w = World::new(EngineConfig::default());
    let a = tcp("10.1.0.2", 40000, "10.2.0.2", 443);
    let b = tcp("10.1.0.2", 40001, "10.2.0.2", 443);
    w.event(CtEventKind::Update, a);
    w.event(CtEventKind::Update, b);
    assert_eq!(w.cdx.routes.len(), 2, "two directions, shared by both connections");
    w.event(CtEventKind::Destroy, a);
    assert_eq!(w.cdx.routes.len(), 2, "still used by b");
    w.event(CtEventKind::Destroy, b);
    w.assert_no_leaks();
}

#[test]
fn one_route_lookup_per_destination() {
    let mut w = World::new(EngineConfig::default());
    for port in 0..50 {
        w.event(CtEventKind::Update, tcp("10.1.0.2", 40000 + port, "10.2.0.2", 443));
    }
    assert_eq!(w.lookups, 2);
    assert_eq!(w.engine.len(), 50);
}

#[test]
fn full_table_refuses_counts_and_admits_when_room_appears() {
    let mut w = World::new(EngineConfig { capacity: 3, ..EngineConfig::default() });
    let cts: Vec<CtInfo> = (0..5).map(|i| tcp("10.1.0.2", 40000 + i, "10.2.0.2", 443)).collect();
    for ct in &cts {
        w.event(CtEventKind::Update, *ct);
    }
    assert_eq!(w.engine.len(), 3);
    assert_eq!(w.cdx.cts.len(), 3);
    assert_eq!(count(&w, Reason::TableFull), 2);
    for ct in &cts[..3] {
        assert!(w.engine.flow(&ct.key).is_some(), "no offloaded flow was evicted");
    }
    w.event(CtEventKind::Destroy, cts[0]);
    assert_eq!(w.engine.len(), 3, "a refused connection took the free slot");
    assert_eq!(w.state(&cts[3]), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, cts[4]);
    w.event(CtEventKind::Destroy, cts[1]);
    assert_eq!(w.engine.len(), 2, "a destroyed refusal is not admitted later");
}

#[test]
fn hardware_failures_back_off_and_retry_without_leaks() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.fail.push_back(("ct_register", HwFailure::Full));
    w.cdx.fail.push_back(("ct_register", HwFailure::Io("EIO".into())));
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwFull)));
    assert!(w.cdx.routes.is_empty(), "routes of a refused connection are released");
    assert!(w.engine.hw_routes().is_empty(), "route ids returned");
    w.advance(Duration::from_millis(999));
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Backoff, "not before the back-off");
    w.advance(Duration::from_millis(1));
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwError)));
    w.advance(Duration::from_millis(1999));
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Backoff, "back-off doubled");
    w.advance(Duration::from_millis(1));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(count(&w, Reason::HwFull), 1);
    assert_eq!(count(&w, Reason::HwError), 1);
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn route_registration_failure_fails_its_connections() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.fail.push_back(("route_register", HwFailure::Rejected(5)));
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwError)));
    assert!(w.cdx.cts.is_empty());
    w.advance(Duration::from_secs(1));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn route_registrations_that_timed_out_are_undone_and_their_ids_not_reused() {
    let mut w = World::new(EngineConfig::default());
    // Both registrations happen in the hardware; their answers are lost.
    w.cdx.lost_replies = vec!["route_register", "route_register"];
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwError)));
    assert!(w.cdx.routes.is_empty(), "registrations of unknown outcome are deregistered");
    assert!(w.engine.hw_routes().is_empty());
    w.advance(Duration::from_secs(2));
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].output, ifname("eth1"));
    assert_eq!(w.cdx.routes[&hw.route_reply].output, ifname("eth0"));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_connection_registration_that_timed_out_leaves_nothing_when_the_flow_ends() {
    let mut w = World::new(EngineConfig::default());
    w.cdx.lost_replies = vec!["ct_register"];
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Backoff, Reason::HwError)));
    assert!(w.cdx.cts.is_empty(), "a registration of unknown outcome is deregistered");
    // The connection ends during the back-off.
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn failed_withdrawal_is_retried() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.fail.push_back(("ct_deregister", HwFailure::Timeout));
    w.event(CtEventKind::Destroy, ct);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Withdrawing);
    assert_eq!(w.cdx.cts.len(), 1);
    w.advance(Duration::from_secs(1));
    w.assert_no_leaks();
    assert_eq!(w.engine.stats().hw_timeouts, 1);
}

#[test]
fn destroy_while_programming_withdraws_after_the_reply() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.kernel.insert(ct.key, ct);
    w.engine.on_conntrack(CtEventKind::Update, &ct, w.now);
    // Execute route lookups but hold the hardware: deliver the DESTROY first.
    let mut hw = Vec::new();
    while let Some(a) = w.engine.pop_action() {
        match a {
            Action::RouteLookup(l) => {
                let answer = w.route(l.key.dst);
                w.engine.on_route_answer(l.request, answer, w.now);
            }
            Action::Hw(r) => hw.push(r),
            other => panic!("unexpected {other:?}"),
        }
    }
    w.kernel.remove(&ct.key);
    w.engine.on_conntrack(CtEventKind::Destroy, &ct, w.now);
    for r in hw {
        let outcome = w.cdx.apply(&r.op);
        w.engine.on_hw_result(HwResult { tag: r.tag, outcome }, w.now);
        w.run();
    }
    w.run();
    w.assert_no_leaks();
}

#[test]
fn hardware_aging_deletes_the_kernel_entry() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.cts.clear(); // cdx aged it out
    w.engine.on_hw_event(
        HwEvent::Removed { proto: proto::TCP, orig: ct.key.orig, reply: ct.reply },
        w.now,
    );
    w.run();
    assert_eq!(w.deleted, vec![ct.key]);
    w.assert_no_leaks();
    // A duplicate or unknown REMOVED is counted and ignored.
    w.engine.on_hw_event(
        HwEvent::Removed { proto: proto::TCP, orig: ct.key.orig, reply: ct.reply },
        w.now,
    );
    assert_eq!(w.engine.stats().hw_removed_unknown, 1);
}

#[test]
fn hardware_aging_can_leave_the_kernel_entry() {
    let mut cfg = EngineConfig::default();
    cfg.keepalive.on_removed = OnRemoved::Expire;
    let mut w = World::new(cfg);
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.cts.clear();
    w.engine.on_hw_event(
        HwEvent::Removed { proto: proto::TCP, orig: ct.key.orig, reply: ct.reply },
        w.now,
    );
    w.run();
    assert!(w.deleted.is_empty());
    assert!(w.kernel.contains_key(&ct.key));
    w.assert_no_leaks();
}

#[test]
fn neighbour_mac_change_updates_the_route_object() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    let rid = w.cdx.cts[&(proto::TCP, ct.key.orig)].route_orig;
    w.engine.on_neighbour(
        Neighbour {
            ifindex: ETH1,
            addr: ip("10.2.0.2"),
            mac: Some(mac(0x99)),
            state: nud::REACHABLE,
        },
        w.now,
    );
    w.run();
    assert_eq!(w.cdx.routes[&rid].mac, mac(0x99));
    assert!(matches!(w.cdx.log.last(), Some(HwOp::RouteUpdate(_))));
    // A neighbour deleted by the kernel's GC does not disturb offloaded flows.
    w.engine.on_neighbour_removed(ETH1, ip("10.2.0.2"), w.now);
    w.run();
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
}

#[test]
fn a_next_hop_leaving_a_shared_mac_moves_only_its_connections() {
    let mut w = World::new(EngineConfig::default());
    // The gateway answers with the same MAC as 10.2.0.2 (one host, two addresses): both
    // connections share one route object.
    let n = |addr: &str, m: u8| Neighbour {
        ifindex: ETH1,
        addr: ip(addr),
        mac: Some(mac(m)),
        state: nud::REACHABLE,
    };
    w.engine.on_neighbour(n("10.2.0.254", 0x22), w.now);
    w.run();
    let direct = forwarded();
    let routed = tcp("10.1.0.2", 40001, "10.9.1.1", 443);
    w.event(CtEventKind::Update, direct);
    w.event(CtEventKind::Update, routed);
    let shared = w.cdx.cts[&(proto::TCP, direct.key.orig)].route_orig;
    assert_eq!(w.cdx.cts[&(proto::TCP, routed.key.orig)].route_orig, shared);
    // 10.2.0.2 moves to another MAC; the gateway keeps the old one.
    w.engine.on_neighbour(n("10.2.0.2", 0x99), w.now);
    w.run();
    let moved = w.cdx.cts[&(proto::TCP, direct.key.orig)].route_orig;
    assert_eq!(w.cdx.routes[&moved].mac, mac(0x99));
    let kept = w.cdx.cts[&(proto::TCP, routed.key.orig)].route_orig;
    assert_eq!(w.cdx.routes[&kept].mac, mac(0x22), "the gateway's connections are untouched");
    assert_eq!(w.state(&direct), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(w.state(&routed), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, direct);
    w.event(CtEventKind::Destroy, routed);
    w.assert_no_leaks();
}

#[test]
fn missing_neighbour_waits_until_it_appears() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.2.0.7", 443);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoNeighbour)));
    w.engine.on_neighbour(
        Neighbour {
            ifindex: ETH1,
            addr: ip("10.2.0.7"),
            mac: Some(mac(0x77)),
            state: nud::REACHABLE,
        },
        w.now,
    );
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
}

#[test]
fn route_change_moves_connections_to_a_new_route_object() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    let old = w.cdx.cts[&(proto::TCP, ct.key.orig)].route_orig;
    // The route to 10.9.0.0/16 now goes through another gateway.
    w.rib.insert(0, (cidr("10.9.0.0/16"), unicast(ETH1, Some("10.2.0.2"))));
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_ne!(hw.route_orig, old);
    assert_eq!(w.cdx.routes[&hw.route_orig].mac, mac(0x22));
    assert!(!w.cdx.routes.contains_key(&old), "the old route object was removed");
    // An unrelated route change costs no lookup of this destination.
    let before = w.lookups;
    w.engine.on_route_change(Some(cidr("172.16.0.0/12")), w.now);
    w.run();
    assert_eq!(w.lookups, before);
}

#[test]
fn link_down_withdraws_its_connections() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.engine.on_link(
        Link { index: ETH1, name: ifname("eth1"), up: false, mtu: 1500, noarp: false },
        w.now,
    );
    w.run();
    assert!(w.cdx.cts.is_empty());
    assert_eq!(count(&w, Reason::LinkDown), 1);
    // Still tracked: the link coming back offloads it again, with no event from the kernel
    // (an ESTABLISHED conntrack sends none while nothing changes) and no sweep.
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::LinkDown)));
    assert!(w.cdx.routes.is_empty() && w.engine.hw_routes().is_empty(), "route objects released");
    w.engine.on_link(
        Link { index: ETH1, name: ifname("eth1"), up: true, mtu: 1500, noarp: false },
        w.now,
    );
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    assert!(w.cdx.cts.contains_key(&(proto::TCP, ct.key.orig)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_deleted_interface_takes_its_connections_out_of_the_hardware() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    let eth1 = w.engine.net().link(ETH1).copied().unwrap();
    let neighbours: Vec<Neighbour> =
        w.engine.net().neighbours().filter(|n| n.ifindex == ETH1).copied().collect();
    w.engine.on_link_removed(ETH1, w.now);
    w.run();
    assert!(w.cdx.cts.is_empty(), "nothing forwards to an interface that is gone");
    assert!(w.cdx.routes.is_empty() && w.engine.hw_routes().is_empty());
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::LinkDown)));
    assert_eq!(w.engine.stats().reason(Reason::LinkDown), 1);
    // The interface comes back (a new veth with the same index, say) and its neighbours,
    // flushed with it, are learnt again.
    w.engine.on_link(eth1, w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoNeighbour)));
    for n in neighbours {
        w.engine.on_neighbour(n, w.now);
    }
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn a_route_that_comes_back_offloads_the_connections_it_took_away() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    let route = w.rib.iter().position(|(c, _)| *c == cidr("10.9.0.0/16")).unwrap();
    let saved = w.rib.remove(route);
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    assert!(w.cdx.cts.is_empty(), "withdrawn without a route");
    assert_eq!(w.state(&ct), Some((FlowState::Resolving, Reason::NoRoute)));
    assert!(w.cdx.routes.is_empty() && w.engine.hw_routes().is_empty(), "route objects released");
    // Waiting costs no lookup while nothing changes.
    let lookups = w.lookups;
    w.advance(Duration::from_secs(30));
    assert_eq!(w.lookups, lookups);
    w.rib.insert(route, saved);
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    assert_eq!(w.state(&ct), Some((FlowState::Offloaded, Reason::None)));
    w.event(CtEventKind::Destroy, ct);
    w.assert_no_leaks();
}

#[test]
fn mtu_change_reprograms_with_the_new_mtu() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.engine.on_link(
        Link { index: ETH1, name: ifname("eth1"), up: true, mtu: 9000, noarp: false },
        w.now,
    );
    w.run();
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mtu, 9000);
    assert_eq!(w.cdx.routes.len(), 2, "old route objects removed");
}

#[test]
fn overrun_resync_converges_to_the_kernel() {
    let mut w =
        World::new(EngineConfig { resync_min_interval: Duration::ZERO, ..EngineConfig::default() });
    let kept = tcp("10.1.0.2", 40000, "10.2.0.2", 443);
    let lost_destroy = tcp("10.1.0.2", 40001, "10.2.0.2", 443);
    let lost_new = tcp("10.1.0.2", 40002, "10.2.0.2", 443);
    w.event(CtEventKind::Update, kept);
    w.event(CtEventKind::Update, lost_destroy);
    // Events lost: one DESTROY and one UPDATE never arrive.
    w.kernel.remove(&lost_destroy.key);
    w.kernel.insert(lost_new.key, lost_new);
    w.engine.on_overrun(w.now);
    w.run();
    assert!(w.engine.flow(&kept.key).is_some());
    assert!(w.engine.flow(&lost_destroy.key).is_none());
    assert_eq!(w.state(&lost_new), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(w.cdx.cts.len(), 2);
    let s = w.engine.stats();
    assert_eq!((s.overruns, s.resyncs, s.resync_added, s.resync_removed), (1, 1, 1, 1));
}

#[test]
fn a_link_change_lost_in_an_rtnetlink_overrun_is_applied_after_the_redump() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    // The daemon's re-dump: the view is cleared, then links (eth1's MTU changed while the
    // events were lost), addresses and neighbours arrive again, then the dump ends.
    let view: Vec<Link> = w.engine.net().links().copied().collect();
    let neighbours: Vec<Neighbour> = w.engine.net().neighbours().copied().collect();
    w.engine.on_rtnl_overrun(w.now);
    w.engine.net_mut().clear();
    for link in view {
        let mtu = if link.index == ETH1 { 9000 } else { link.mtu };
        w.engine.on_link(Link { mtu, ..link }, w.now);
    }
    for n in neighbours {
        w.engine.on_neighbour(n, w.now);
    }
    w.run();
    let hw = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    assert_eq!(w.cdx.routes[&hw.route_orig].mtu, 9000, "the new MTU reaches the hardware");
    assert_eq!(w.cdx.routes[&hw.route_reply].mtu, 1500);
    assert_eq!(w.cdx.routes.len(), 2, "the old route object is released");
    assert_eq!(w.engine.stats().rtnl_overruns, 1);
}

#[test]
fn overruns_during_a_dump_coalesce_into_one_more_dump() {
    let mut w =
        World::new(EngineConfig { resync_min_interval: Duration::ZERO, ..EngineConfig::default() });
    w.engine.on_overrun(w.now);
    w.engine.on_overrun(w.now);
    w.engine.on_overrun(w.now);
    let dumps = std::iter::from_fn(|| w.engine.pop_action())
        .filter(|a| matches!(a, Action::Dump { .. }))
        .count();
    assert_eq!(dumps, 1, "one dump now");
    assert!(w.engine.next_deadline().is_some());
}

#[test]
fn restart_adopts_matching_hardware_entries_and_removes_the_rest() {
    // First life: two connections offloaded.
    let mut first = World::new(EngineConfig::default());
    let kept = forwarded();
    let gone = tcp("10.1.0.2", 40001, "10.2.0.2", 443);
    first.event(CtEventKind::Update, kept);
    first.event(CtEventKind::Update, gone);
    let cdx = std::mem::take(&mut first.cdx);
    // Second life: the kernel still has only one of them.
    let now = Instant::now();
    let mut w = World {
        engine: Engine::new(EngineConfig::default(), net(), now),
        now,
        kernel: HashMap::from([(kept.key, kept)]),
        cdx: FakeCdx { log: Vec::new(), ..cdx },
        rib: first.rib.clone(),
        refreshed: Vec::new(),
        deleted: Vec::new(),
        lookups: 0,
        hold_lookups: false,
        held: Vec::new(),
    };
    w.engine.start(w.now);
    w.run();
    let registrations = w
        .cdx
        .log
        .iter()
        .filter(|op| matches!(op, HwOp::CtRegister(_) | HwOp::RouteRegister(_) | HwOp::CtUpdate(_)))
        .count();
    assert_eq!(registrations, 0, "nothing registered twice");
    assert_eq!(w.cdx.cts.len(), 1);
    assert!(w.cdx.cts.contains_key(&(proto::TCP, kept.key.orig)));
    assert_eq!(w.state(&kept), Some((FlowState::Offloaded, Reason::None)));
    assert_eq!(w.engine.stats().adopted, 1);
    assert_eq!(w.engine.stats().reconcile_removed, 1);
    w.event(CtEventKind::Destroy, kept);
    w.assert_no_leaks();
}

#[test]
fn keepalive_refreshes_active_flows_only() {
    let mut cfg = EngineConfig::default();
    cfg.kernel_timeouts.udp_stream = 40;
    cfg.keepalive.interval = Duration::from_secs(2);
    let mut w = World::new(cfg);
    let mut ct = mk_ct(proto::UDP, "10.1.0.2", 5000, "10.2.0.2", 5001);
    ct.timeout = Some(40);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    let key = (proto::UDP, ct.key.orig);
    // Active: cdx says 180 s remain (a packet just went through).
    w.cdx.remaining.insert(key, 180);
    w.advance(Duration::from_secs(5));
    w.advance(Duration::from_secs(5));
    assert!(!w.refreshed.is_empty());
    let (k, timeout) = w.refreshed[w.refreshed.len() - 1];
    assert_eq!(k, ct.key);
    assert_eq!(timeout, 40, "the kernel's own timeout, counted from the last activity");
    // Idle: the hardware's remaining time runs down, no more refreshes.
    w.refreshed.clear();
    let mut remaining = 170;
    for _ in 0..10 {
        w.cdx.remaining.insert(key, remaining);
        remaining -= 5;
        w.advance(Duration::from_secs(5));
    }
    assert!(w.refreshed.is_empty(), "{:?}", w.refreshed);
    assert!(w.engine.stats().keepalive_polls >= 10);
}

#[test]
fn activity_polls_come_in_time_order_whatever_the_protocol() {
    let mut w = World::new(EngineConfig::default());
    // TCP first: its poll period is long (an eighth of five days); UDP's is 15 s (an eighth
    // of the 120 s stream timeout).
    w.event(CtEventKind::Update, forwarded());
    let udp = mk_ct(proto::UDP, "10.1.0.2", 5000, "10.2.0.2", 5001);
    w.event(CtEventKind::Update, udp);
    assert_eq!(w.state(&udp).unwrap().0, FlowState::Offloaded);
    w.advance(Duration::from_secs(16));
    assert_eq!(w.engine.stats().keepalive_polls, 1, "the UDP flow is polled on time");
}

#[test]
fn connections_that_end_leave_no_activity_poll_behind() {
    let mut w = World::new(EngineConfig::default());
    for port in 0..5_000u16 {
        let ct = tcp("10.1.0.2", 10_000 + port, "10.2.0.2", 443);
        w.event(CtEventKind::Update, ct);
        w.event(CtEventKind::Destroy, ct);
    }
    w.assert_no_leaks();
    assert!(
        w.engine.polls.due.len() <= 2_048,
        "{} polls kept for ended flows",
        w.engine.polls.due.len()
    );
}

#[test]
fn adopted_and_updated_flows_keep_being_polled() {
    let mut w = World::new(EngineConfig::default());
    let ct = tcp("10.1.0.2", 40000, "10.9.1.1", 443);
    w.event(CtEventKind::Update, ct);
    // A path change while offloaded: the connection is updated in place.
    w.rib.insert(0, (cidr("10.9.0.0/16"), unicast(ETH1, Some("10.2.0.2"))));
    w.engine.on_route_change(Some(cidr("10.9.0.0/16")), w.now);
    w.run();
    assert!(matches!(w.cdx.log.last(), Some(HwOp::RouteDeregister(_)) | Some(HwOp::CtUpdate(_))));
    let before = w.engine.stats().keepalive_polls;
    w.advance(Duration::from_secs(60_000));
    w.advance(Duration::from_secs(60_000));
    assert!(w.engine.stats().keepalive_polls >= before + 2, "still polled after the update");
    // Exactly one poll is ever outstanding per connection.
    let polls_in_flight =
        w.engine.commands.inflight.values().filter(|p| matches!(p, Pending::Poll(_))).count();
    assert!(polls_in_flight <= 1);
}

#[test]
fn keepalive_margin_caps_the_refresh() {
    let mut cfg = EngineConfig::default();
    cfg.keepalive.margin = Some(Duration::from_secs(30));
    cfg.keepalive.interval = Duration::from_secs(1);
    let mut w = World::new(cfg);
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    w.cdx.remaining.insert((proto::TCP, ct.key.orig), 432_000);
    for _ in 0..10 {
        w.advance(Duration::from_secs(1));
    }
    assert!(w.refreshed.iter().all(|(_, t)| *t <= 30), "{:?}", w.refreshed);
    assert!(!w.refreshed.is_empty());
}

#[test]
fn permanent_mode_sets_and_clears_the_bit() {
    let mut cfg = EngineConfig::default();
    cfg.keepalive.mode = KeepaliveMode::Permanent;
    let mut w = World::new(cfg);
    let mut ct = forwarded();
    w.event(CtEventKind::Update, ct);
    assert_ne!(w.kernel[&ct.key].status & (1 << 15), 0);
    ct.tcp_state = Some(7);
    ct.status = w.kernel[&ct.key].status;
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.kernel[&ct.key].status & (1 << 15), 0, "cleared on withdrawal");
}

#[test]
fn udp_confirmed_mode_offloads_the_originator_first() {
    let mut cfg = EngineConfig::default();
    cfg.policy.udp_mode = UdpMode::Confirmed;
    let mut w = World::new(cfg);
    let mut ct = mk_ct(proto::UDP, "10.1.0.2", 5000, "10.2.0.2", 5001);
    ct.status = status::CONFIRMED;
    w.event(CtEventKind::New, ct);
    let hw = w.cdx.cts[&(proto::UDP, ct.key.orig)];
    assert!(hw.route_orig != 0 && hw.route_reply == 0);
    ct.status |= status::SEEN_REPLY | status::ASSURED;
    w.event(CtEventKind::Update, ct);
    let hw = w.cdx.cts[&(proto::UDP, ct.key.orig)];
    assert!(hw.route_orig != 0 && hw.route_reply != 0, "both directions once assured");
    assert!(matches!(w.cdx.log.last(), Some(HwOp::CtUpdate(_))));
}

#[test]
fn deactivation_withdraws_everything_and_reactivation_relearns() {
    let mut w = World::new(EngineConfig::default());
    let a = forwarded();
    let b = tcp("fd01::2", 1, "fd02::2", 2);
    w.event(CtEventKind::Update, a);
    w.event(CtEventKind::Update, b);
    w.engine.set_active(false, w.now);
    w.run();
    w.assert_no_leaks();
    w.event(CtEventKind::Update, a);
    assert!(w.engine.is_empty(), "events ignored while deactivated");
    w.engine.set_active(true, w.now);
    w.run();
    assert_eq!(w.cdx.cts.len(), 2);
}

#[test]
fn same_tuple_in_two_zones_is_offloaded_once() {
    let mut w = World::new(EngineConfig::default());
    let a = forwarded();
    let mut b = forwarded();
    b.key.zone = 5;
    w.event(CtEventKind::Update, a);
    w.event(CtEventKind::Update, b);
    assert_eq!(w.cdx.cts.len(), 1);
    assert_eq!(count(&w, Reason::Zone), 1);
    // REMOVED for the tuple finds the zone-0 flow.
    w.cdx.cts.clear();
    w.engine.on_hw_event(
        HwEvent::Removed { proto: proto::TCP, orig: a.key.orig, reply: a.reply },
        w.now,
    );
    w.run();
    assert!(w.engine.flow(&a.key).is_none());
}

#[test]
fn lookups_in_flight_are_shared_and_answers_after_destroy_are_harmless() {
    let mut w = World::new(EngineConfig::default());
    w.hold_lookups = true;
    let a = forwarded();
    w.event(CtEventKind::Update, a);
    assert_eq!(w.state(&a), Some((FlowState::Resolving, Reason::RouteLookup)));
    w.event(CtEventKind::Destroy, a);
    w.release_lookups();
    w.assert_no_leaks();
}

#[test]
fn policy_reload_withdraws_newly_excluded_flows() {
    let mut w = World::new(EngineConfig::default());
    let ct = forwarded();
    w.event(CtEventKind::Update, ct);
    let mut policy = Policy::default();
    policy.rules.push(crate::core::policy::Rule {
        name: "https".into(),
        port: Some(443),
        ..Default::default()
    });
    w.engine.set_policy(policy, w.now);
    w.run();
    w.assert_no_leaks();
}

#[test]
fn churn_leaves_nothing_behind() {
    let mut w = World::new(EngineConfig { capacity: 64, ..EngineConfig::default() });
    let mut live = Vec::new();
    for i in 0..2000u32 {
        let ct = tcp(
            "10.1.0.2",
            u16::try_from(1000 + i % 3000).unwrap(),
            if i % 2 == 0 { "10.2.0.2" } else { "10.9.3.3" },
            443,
        );
        w.event(CtEventKind::Update, ct);
        live.push(ct);
        if i % 7 == 3 {
            w.cdx.fail.push_back(("ct_register", HwFailure::Full));
        }
        if live.len() > 40 {
            let gone = live.remove(0);
            w.event(CtEventKind::Destroy, gone);
        }
        if i % 100 == 0 {
            w.advance(Duration::from_secs(2));
        }
    }
    for ct in live {
        w.event(CtEventKind::Destroy, ct);
    }
    w.advance(Duration::from_secs(120));
    w.assert_no_leaks();
}

#[test]
fn at_most_a_window_of_connections_is_programmed_at_once() {
    let mut w = World::new(EngineConfig { programming_window: 2, ..EngineConfig::default() });
    let cts: Vec<CtInfo> = (0..5).map(|i| tcp("10.1.0.2", 41000 + i, "10.2.0.2", 443)).collect();
    for ct in &cts {
        w.kernel.insert(ct.key, *ct);
        w.engine.on_conntrack(CtEventKind::Update, ct, w.now);
    }
    // Answer route lookups, hold the hardware.
    let mut held = Vec::new();
    while let Some(a) = w.engine.pop_action() {
        match a {
            Action::RouteLookup(l) => {
                let answer = w.route(l.key.dst);
                w.engine.on_route_answer(l.request, answer, w.now);
            }
            Action::Hw(r) => held.push(r),
            other => panic!("unexpected {other:?}"),
        }
    }
    let programming =
        |w: &World| w.engine.flows().filter(|(_, f)| f.state() == FlowState::Programming).count();
    assert_eq!(programming(&w), 2);
    let waiting: Vec<_> = w.engine.flows().filter(|(_, f)| f.reason() == Reason::HwBusy).collect();
    assert_eq!(waiting.len(), 3, "the rest wait their turn");
    // Release the hardware: everything ends programmed, never more than two at once.
    let mut queue: VecDeque<HwRequest> = held.into();
    while let Some(r) = queue.pop_front() {
        let outcome = w.cdx.apply(&r.op);
        w.engine.on_hw_result(HwResult { tag: r.tag, outcome }, w.now);
        assert!(programming(&w) <= 2);
        while let Some(a) = w.engine.pop_action() {
            match a {
                Action::Hw(r) => queue.push_back(r),
                Action::RouteLookup(l) => {
                    let answer = w.route(l.key.dst);
                    w.engine.on_route_answer(l.request, answer, w.now);
                }
                _ => {}
            }
        }
    }
    assert_eq!(w.cdx.cts.len(), 5);
    assert!(w.engine.flows().all(|(_, f)| f.state() == FlowState::Offloaded));
}
