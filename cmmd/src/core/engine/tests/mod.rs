//! Engine tests against a small fake world: a kernel conntrack table, a routing table, and a
//! model of cdx that checks the engine's command order (routes before the connections that
//! use them, no route removed while referenced, no duplicate registration) and keeps, as cdx
//! does, what each direction in hardware forwards with: the port, MAC and MTU of its route
//! when it was inserted, of which an UPDATE changes only the MTU.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{HwKey, Pending, *};
use crate::core::flow::Tuple;
use crate::core::flow::key::proto;
use crate::core::hw::{
    Abi, AbiChoice, AbiDecided, AbiSetting, CtSpec, Detection, HwEvent, HwFailure, HwOp, HwReply,
    HwResult, ItfSpec, RouteSpec, WalkedRoute,
};
use crate::core::net::{IfName, Link, Mac, Neighbour, nud};
use crate::core::policy::tests::ct as mk_ct;
use crate::core::policy::{Cidr, CtInfo, Policy, UdpPolicy};

/// `IPS_PERMANENT` of the fake world's kernel (an ASK 6.x kernel: bit 16).
pub(super) const PERMANENT: Status = Status::from_bits_retain(1 << 16);
use crate::core::route::{RouteError, RouteInfo, RouteKey, RouteKind};
use crate::core::stats::Reason;
use cdx_sys::fpp::ReturnCode;
use conntrack::{Status, TcpState};

mod admission;
mod cdx;
mod keepalive;
mod layer2;
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

/// What a direction in hardware forwards with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HwEntry {
    output: IfName,
    mac: Mac,
    mtu: u16,
}

/// The hardware as the fake world sees it.
struct FakeCdx {
    /// The ports cdx knows from dpa_app.
    ports: Vec<IfName>,
    /// Registered VLANs and PPPoE sessions, by name.
    itfs: BTreeMap<IfName, ItfSpec>,
    /// A registration of a name cdx holds is refused as cdx refuses it (`ALREADY_REGISTERED`)
    /// rather than failing the test: cdx holds what cmmd cannot know of (a session left from
    /// before a start whose walk failed).
    refuse_held: bool,
    /// The ABI it answers the detection with.
    abi: Abi,
    routes: BTreeMap<u16, RouteSpec>,
    cts: HashMap<HwKey, CtSpec>,
    /// Each connection's directions in hardware, `[orig, reply]`.
    hw: HashMap<HwKey, [Option<HwEntry>; 2]>,
    /// The route each direction of a connection links (0: none), `[orig, reply]`.
    linked: HashMap<HwKey, [u16; 2]>,
    /// Links per route: 16 bits in cdx, refused at 0xFFFF (`layer2.c` `L2_route_get`).
    links: HashMap<u16, u32>,
    /// Failures to inject, by op name, consumed in order.
    fail: VecDeque<(&'static str, HwFailure)>,
    /// Ops executed whose reply is lost (the worker reports a timeout), by name, in order.
    lost_replies: Vec<&'static str>,
    /// cdx is slow to let go of the route objects out of these interfaces: each
    /// deregistration of one times out, and the object stays, until the test clears this.
    slow_route_release: Vec<IfName>,
    remaining: HashMap<HwKey, u32>,
    log: Vec<HwOp>,
}

impl Default for FakeCdx {
    fn default() -> FakeCdx {
        FakeCdx {
            ports: vec![ifname("eth0"), ifname("eth1"), ifname("eth2")],
            itfs: BTreeMap::new(),
            refuse_held: false,
            abi: Abi::default(),
            routes: BTreeMap::new(),
            cts: HashMap::new(),
            hw: HashMap::new(),
            linked: HashMap::new(),
            links: HashMap::new(),
            fail: VecDeque::new(),
            lost_replies: Vec::new(),
            slow_route_release: Vec::new(),
            remaining: HashMap::new(),
            log: Vec::new(),
        }
    }
}

impl FakeCdx {
    fn knows(&self, name: &IfName) -> bool {
        self.ports.contains(name) || self.itfs.contains_key(name)
    }

    fn apply(&mut self, op: &HwOp) -> Result<HwReply, HwFailure> {
        self.log.push(op.clone());
        if let Some(pos) = self.fail.iter().position(|(name, _)| *name == op.name()) {
            let (_, f) = self.fail.remove(pos).unwrap();
            return Err(f);
        }
        match op {
            HwOp::Detect(AbiSetting::Fixed(abi)) => {
                return Ok(HwReply::Abi(AbiChoice { abi: *abi, how: AbiDecided::Configured }));
            }
            HwOp::Detect(AbiSetting::Auto) => {
                let answers = [(Abi::Lsdk, ReturnCode::CmdErr), (Abi::Ask, ReturnCode::CmdErr)];
                let detection = Detection { abi: self.abi, answers };
                let how = AbiDecided::Detected(detection);
                return Ok(HwReply::Abi(AbiChoice { abi: self.abi, how }));
            }
            HwOp::RouteRegister(r) => {
                assert!(!self.routes.contains_key(&r.id), "route {} registered twice", r.id);
                assert!(
                    self.knows(&r.output) && self.knows(&r.input),
                    "route {} names an interface cdx does not know: {r:?}",
                    r.id
                );
                assert!(r.id != 0xFFFF, "0xFFFF is the worker's probe id");
                self.routes.insert(r.id, *r);
            }
            HwOp::RouteDeregister(id) => {
                let output = self.routes.get(id).map(|r| r.output);
                if output.is_some_and(|name| self.slow_route_release.contains(&name)) {
                    return Err(HwFailure::Timeout);
                }
                let linked = self.links.get(id).copied().unwrap_or(0);
                assert_eq!(linked, 0, "route {id} removed while a connection uses it");
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
                let key = (c.proto, c.orig);
                let exists = self.cts.contains_key(&key);
                if matches!(op, HwOp::CtRegister(_)) {
                    assert!(!exists, "connection registered twice: {:?}", c.orig);
                } else if !exists {
                    return Err(HwFailure::NotFound);
                }
                self.cts.insert(key, *c);
                let links = self.link(key, [c.route_orig, c.route_reply]);
                let entry = |rid: u16| {
                    self.routes.get(&rid).map(|r| HwEntry {
                        output: r.output,
                        mac: r.mac,
                        mtu: r.mtu,
                    })
                };
                let hw = self.hw.entry(key).or_default();
                for d in 0..2 {
                    match &mut hw[d] {
                        // cdx_dpa.c/devman.c: port and MAC are copied at insertion.
                        None => hw[d] = entry(links[d]),
                        // control_ipv4.c ct_update_one: only the MTU follows the new route.
                        Some(held) => held.mtu = entry(links[d]).map_or(0, |e| e.mtu),
                    }
                }
            }
            HwOp::CtDeregister(c) => {
                if self.cts.remove(&(c.proto, c.orig)).is_none() {
                    return Err(HwFailure::NotFound);
                }
                self.hw.remove(&(c.proto, c.orig));
                self.link((c.proto, c.orig), [0, 0]);
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
                self.hw.clear();
                self.linked.clear();
                self.links.clear();
                self.routes.clear();
            }
            HwOp::Walk => {
                // A walk writes no route ids: only the tuples, the protocol, the mark.
                return Ok(HwReply::Walk {
                    conntracks: self.cts.values().map(WalkedCt::of).collect(),
                    routes: self.routes.values().map(|spec| WalkedRoute { spec: *spec }).collect(),
                });
            }
            HwOp::ItfRegister(spec) => {
                assert!(self.knows(&spec.parent()), "{spec:?} registered before its parent");
                if self.refuse_held && self.knows(&spec.name()) {
                    let held = match spec {
                        ItfSpec::Vlan(_) => ReturnCode::VlanEntryAlreadyRegistered,
                        ItfSpec::Pppoe(_) => ReturnCode::PppoeEntryAlreadyRegistered,
                    };
                    return Err(HwFailure::Rejected(held.value()));
                }
                assert!(!self.knows(&spec.name()), "{spec:?} registered twice");
                self.itfs.insert(spec.name(), *spec);
            }
            HwOp::ItfDeregister(spec) => {
                let name = spec.name();
                let used = self.routes.values().any(|r| r.output == name || r.input == name);
                assert!(!used, "{spec:?} removed while a route object names it");
                let child = self.itfs.values().any(|s| s.parent() == name);
                assert!(!child, "{spec:?} removed under a registered interface");
                if self.itfs.remove(&name).is_none() {
                    return Err(HwFailure::NotFound);
                }
            }
            HwOp::VlanReset => self.itfs.retain(|_, s| matches!(s, ItfSpec::Pppoe(_))),
            HwOp::WalkInterfaces => {
                // cdx's VLAN walk writes no MAC (the decoder reports none).
                let walked = |spec: &ItfSpec| match *spec {
                    ItfSpec::Vlan(v) => {
                        ItfSpec::Vlan(crate::core::hw::VlanSpec { mac: Mac::default(), ..v })
                    }
                    other => other,
                };
                return Ok(HwReply::Interfaces(self.itfs.values().map(walked).collect()));
            }
        }
        Ok(HwReply::Done)
    }
}

impl FakeCdx {
    /// cdx's aging removes a connection (its REMOVED event is the test's to send).
    fn age_out(&mut self, key: HwKey) {
        self.cts.remove(&key);
        self.hw.remove(&key);
        self.link(key, [0, 0]);
    }

    /// cdx's aging removes every connection.
    fn age_out_all(&mut self) {
        let keys: Vec<HwKey> = self.cts.keys().copied().collect();
        for key in keys {
            self.age_out(key);
        }
    }

    /// Link the directions of `key` to `routes` (0: none) as cdx does: a direction keeps its
    /// link to the same route, leaves another, and is refused a link (silently: it stays out
    /// of hardware) to a route whose 16-bit count is saturated. Returns the links made.
    fn link(&mut self, key: HwKey, routes: [u16; 2]) -> [u16; 2] {
        let old = self.linked.remove(&key).unwrap_or_default();
        let mut made = [0u16; 2];
        for d in 0..2 {
            if old[d] != 0 && old[d] == routes[d] {
                made[d] = old[d];
                continue;
            }
            if old[d] != 0
                && let Some(n) = self.links.get_mut(&old[d])
            {
                *n -= 1;
            }
            if routes[d] != 0 {
                let n = self.links.entry(routes[d]).or_default();
                if *n < u32::from(u16::MAX) {
                    *n += 1;
                    made[d] = routes[d];
                }
            }
        }
        if made != [0, 0] {
            self.linked.insert(key, made);
        }
        made
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

/// How many actions one drive of the fake world ([`World::run`], [`World::run_holding`]) may
/// execute before the engine counts as runaway: it never goes quiet (a livelock), and the
/// test fails rather than hangs. The busiest drive of any test takes a few dozen.
const RUNAWAY_ACTIONS: usize = 10_000;

/// The actions one drive of the fake world has executed: fails the test, with the last few,
/// once there are more than [`RUNAWAY_ACTIONS`].
struct Budget {
    spent: usize,
    last: VecDeque<Action>,
}

impl Budget {
    const SHOWN: usize = 12;

    fn new() -> Budget {
        Budget { spent: 0, last: VecDeque::with_capacity(Budget::SHOWN) }
    }

    fn spend(&mut self, action: &Action) {
        self.spent += 1;
        if self.last.len() == Budget::SHOWN {
            self.last.pop_front();
        }
        self.last.push_back(action.clone());
        if self.spent > RUNAWAY_ACTIONS {
            let last: String = self.last.iter().map(|a| format!("\n  {a:?}")).collect();
            panic!(
                "runaway engine: still not quiet after {RUNAWAY_ACTIONS} actions in one drive \
                 of the fake world; the last {}:{last}",
                self.last.len()
            );
        }
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

/// The routing table: (prefix, answer), first match wins.
fn rib() -> Vec<(Cidr, Result<RouteInfo, RouteError>)> {
    let local = Ok(RouteInfo { kind: RouteKind::Local, oif: 1, gateway: None, mtu: 0 });
    vec![
        (cidr("10.1.0.1/32"), local),
        (cidr("10.2.0.1/32"), local),
        (cidr("10.1.0.0/24"), unicast(ETH0, None)),
        (cidr("10.2.0.0/24"), unicast(ETH1, None)),
        (cidr("10.3.0.0/24"), unicast(VETH, None)),
        (cidr("10.9.0.0/16"), unicast(ETH1, Some("10.2.0.254"))),
        (cidr("fd01::/64"), unicast(ETH0, None)),
        (cidr("fd02::/64"), unicast(ETH1, None)),
    ]
}

fn net() -> NetView {
    let mut n = NetView::new([ifname("eth0"), ifname("eth1"), ifname("eth2")]);
    for (index, name) in [(ETH0, "eth0"), (ETH1, "eth1"), (VETH, "veth0"), (ETH2, "eth2")] {
        n.upsert_link(Link::plain(index, ifname(name), true, 1500));
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
        World::on(cfg, FakeCdx::default())
    }

    /// A world whose cdx speaks `abi` (what the engine's detection finds).
    fn with_abi(cfg: EngineConfig, abi: Abi) -> World {
        World::on(cfg, FakeCdx { abi, ..FakeCdx::default() })
    }

    /// A world whose network view and hardware start as given, with the usual routes.
    fn with_net(cfg: EngineConfig, net: NetView, cdx: FakeCdx) -> World {
        World::started(cfg, net, cdx, &[], rib(), Instant::now())
    }

    fn on(cfg: EngineConfig, cdx: FakeCdx) -> World {
        let mut net = net();
        for (ifindex, addr, m, state) in
            [(ETH0, "fd01::2", 0x16, nud::STALE), (ETH1, "fd02::2", 0x26, nud::REACHABLE)]
        {
            net.upsert_neighbour(Neighbour { ifindex, addr: ip(addr), mac: Some(mac(m)), state });
        }
        World::started(cfg, net, cdx, &[], rib(), Instant::now())
    }

    /// A world whose engine has `net`, its cdx `cdx`, its kernel `kernel`: started and run
    /// until quiet.
    fn started(
        cfg: EngineConfig,
        net: NetView,
        cdx: FakeCdx,
        kernel: &[CtInfo],
        rib: Vec<(Cidr, Result<RouteInfo, RouteError>)>,
        now: Instant,
    ) -> World {
        let mut w = World {
            engine: Engine::new(cfg, net, now),
            now,
            kernel: kernel.iter().map(|ct| (ct.key, *ct)).collect(),
            cdx,
            rib,
            rules: Vec::new(),
            asked: Vec::new(),
            refreshed: Vec::new(),
            deleted: Vec::new(),
            lookups: 0,
            hold_lookups: false,
            held: Vec::new(),
        };
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
        let mut budget = Budget::new();
        while let Some(action) = self.engine.pop_action() {
            budget.spend(&action);
            match action {
                Action::Hw(req) => {
                    let mut outcome = self.cdx.apply(&req.op);
                    if let Some(i) = self.cdx.lost_replies.iter().position(|n| *n == req.op.name())
                    {
                        self.cdx.lost_replies.remove(i);
                        outcome = Err(HwFailure::ReplyLost);
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

    /// Execute actions until the engine is quiet, answering route lookups but holding the
    /// hardware commands named `hold` (returned, in order).
    fn run_holding(&mut self, hold: &str) -> Vec<HwRequest> {
        let mut held = Vec::new();
        let mut budget = Budget::new();
        loop {
            let mut progressed = false;
            while let Some(action) = self.engine.pop_action() {
                progressed = true;
                budget.spend(&action);
                match action {
                    Action::Hw(req) if req.op.name() == hold => held.push(req),
                    Action::Hw(req) => {
                        let outcome = self.cdx.apply(&req.op);
                        self.engine.on_hw_result(HwResult { tag: req.tag, outcome }, self.now);
                    }
                    Action::RouteLookup(l) => {
                        let answer = self.route(&l.key);
                        self.engine.on_route_answer(l.request, answer, self.now);
                    }
                    other => {
                        self.engine.actions.push_front(other);
                        self.run();
                    }
                }
            }
            if !progressed {
                return held;
            }
        }
    }

    /// A second life of cmmd with `cfg` on the hardware of this one, whose kernel holds
    /// `kernel`: started and run until quiet.
    fn restart(mut self, cfg: EngineConfig, kernel: &[CtInfo]) -> World {
        let net = std::mem::take(self.engine.net_mut());
        let cdx = FakeCdx { log: Vec::new(), ..self.cdx };
        World::started(cfg, net, cdx, kernel, self.rib, self.now + Duration::from_secs(1))
    }

    fn release_lookups(&mut self) {
        self.hold_lookups = false;
        for l in std::mem::take(&mut self.held) {
            let answer = self.route(&l.key);
            self.engine.on_route_answer(l.request, answer, self.now);
        }
        self.run();
    }

    /// cdx reports `ct`'s pair REMOVED (aging, or a flush), by its tuples and protocol.
    fn cdx_removed(&mut self, ct: &CtInfo) {
        let removed = HwEvent::Removed { proto: ct.key.proto, orig: ct.key.orig, reply: ct.reply };
        self.engine.on_hw_event(removed, self.now);
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

    /// What the hardware forwards `ct` with, `[orig, reply]`.
    fn hw_of(&self, ct: &CtInfo) -> [Option<HwEntry>; 2] {
        self.cdx.hw.get(&(ct.key.proto, ct.key.orig)).copied().unwrap_or_default()
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
