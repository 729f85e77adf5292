//! A fake world that answers everything the engine asks at once.
//!
//! Two fast-path ports: `eth0` (clients, `10.1.0.0/16` and `fd01::/16` via a router on
//! `10.10.0.0/24` / `fd10::/64`) and `eth1` (servers, `10.2.0.0/16` and `fd02::/16` via
//! `10.20.0.0/24` / `fd20::/64`). Route lookups are answered from that plan, the two routers'
//! neighbours are permanent, and the hardware accepts every command (a walk finds nothing).
//! So the engine's own work — policy, table, route cache, route objects and the programming
//! state machine — is all that is measured.
//!
//! [`Churn`] keeps a fixed number of connections alive while new ones arrive and old ones
//! end, the shape of a busy node's event stream.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use cmmd::core::engine::{Action, CtEventKind, Engine, EngineConfig};
use cmmd::core::hw::{Abi, AbiChoice, AbiDecided, HwOp, HwReply, HwResult};
use cmmd::core::net::{IfName, Link, Mac, Neighbour, NetView, nud};
use cmmd::core::policy::CtInfo;
use cmmd::core::route::{RouteError, RouteInfo, RouteKind};

use crate::load::{self, Kind, MIX};

/// Interface index of the client-side port.
pub const CLIENT_IFINDEX: u32 = 2;
/// Interface index of the server-side port.
pub const SERVER_IFINDEX: u32 = 3;
/// `ENETUNREACH`, the answer for destinations outside the plan.
const ENETUNREACH: i32 = 101;
/// Seconds the fake hardware reports as left before aging.
const HW_REMAINING: u32 = 100;

fn port_name(name: &str) -> IfName {
    IfName::new(name).unwrap_or_else(|| unreachable!("{name} is a valid interface name"))
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    Ipv4Addr::new(a, b, c, d).into()
}

fn v6(prefix: u16, host: u16) -> IpAddr {
    Ipv6Addr::new(prefix, 0, 0, 0, 0, 0, 0, host).into()
}

/// The routers in front of each port: (ifindex, router address, our address, router MAC).
fn routers() -> [(u32, IpAddr, IpAddr, Mac); 4] {
    [
        (CLIENT_IFINDEX, v4(10, 10, 0, 254), v4(10, 10, 0, 1), Mac([2, 0, 0, 0, 0, 0x10])),
        (SERVER_IFINDEX, v4(10, 20, 0, 254), v4(10, 20, 0, 1), Mac([2, 0, 0, 0, 0, 0x20])),
        (CLIENT_IFINDEX, v6(0xfd10, 0xfe), v6(0xfd10, 1), Mac([2, 0, 0, 0, 0, 0x16])),
        (SERVER_IFINDEX, v6(0xfd20, 0xfe), v6(0xfd20, 1), Mac([2, 0, 0, 0, 0, 0x26])),
    ]
}

/// Links, addresses and neighbours of the fake node; `eth0` and `eth1` are fast-path ports.
pub fn net_view() -> NetView {
    let mut net = NetView::new([port_name("eth0"), port_name("eth1")]);
    for (index, name) in [(CLIENT_IFINDEX, "eth0"), (SERVER_IFINDEX, "eth1")] {
        net.upsert_link(Link::plain(index, port_name(name), true, 1500));
    }
    for (ifindex, router, ours, mac) in routers() {
        net.add_address(ifindex, ours);
        net.upsert_neighbour(Neighbour {
            ifindex,
            addr: router,
            mac: Some(mac),
            state: nud::PERMANENT,
        });
    }
    net
}

/// The kernel's answer to a route lookup for `dst` in the fake node.
pub fn route(dst: IpAddr) -> Result<RouteInfo, RouteError> {
    let side = match dst {
        IpAddr::V4(a) => match a.octets() {
            [10, 1, ..] => Some(0),
            [10, 2, ..] => Some(1),
            _ => None,
        },
        IpAddr::V6(a) => match a.segments()[0] {
            0xfd01 => Some(2),
            0xfd02 => Some(3),
            _ => None,
        },
    };
    let [c4, s4, c6, s6] = routers();
    let (oif, gateway) = match side {
        Some(0) => (c4.0, c4.1),
        Some(1) => (s4.0, s4.1),
        Some(2) => (c6.0, c6.1),
        Some(_) => (s6.0, s6.1),
        None => return Err(RouteError { errno: ENETUNREACH }),
    };
    Ok(RouteInfo { kind: RouteKind::Unicast, oif, gateway: Some(gateway), mtu: 0 })
}

/// The hardware's answer: every command succeeds (the ABI is NXP's).
fn hardware(op: &HwOp) -> HwReply {
    match op {
        HwOp::Detect(_) => HwReply::Abi(AbiChoice { abi: Abi::Lsdk, how: AbiDecided::Configured }),
        HwOp::Walk => HwReply::Walk { conntracks: Vec::new(), routes: Vec::new() },
        HwOp::CtRemaining(_) => HwReply::Remaining(HW_REMAINING),
        _ => HwReply::Done,
    }
}

/// What the world did for the engine, by kind of action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Executed {
    /// Hardware commands answered.
    pub hw_commands: u64,
    /// Route lookups answered.
    pub route_lookups: u64,
    /// Kernel conntrack refreshes, status changes and deletes asked for.
    pub kernel_requests: u64,
    /// Conntrack dumps served.
    pub dumps: u64,
}

/// The engine in its fake world.
pub struct FakeWorld {
    /// The engine under test.
    pub engine: Engine,
    /// The world's clock; the caller moves it.
    pub now: Instant,
    /// Conntracks the kernel holds, served to the engine's dumps.
    kernel_table: Vec<CtInfo>,
    /// Work done so far.
    pub executed: Executed,
}

impl FakeWorld {
    /// An engine with `capacity` connections, started and ready (its initial dump was empty).
    pub fn new(capacity: usize) -> FakeWorld {
        FakeWorld::with_kernel_table(
            EngineConfig { capacity, ..EngineConfig::default() },
            Vec::new(),
        )
    }

    /// An engine started against a kernel that already holds `kernel_table`: it reads the
    /// (empty) hardware, dumps those conntracks and programs every offloadable one.
    pub fn with_kernel_table(cfg: EngineConfig, kernel_table: Vec<CtInfo>) -> FakeWorld {
        let now = Instant::now();
        let mut world = FakeWorld {
            engine: Engine::new(cfg, net_view(), now),
            now,
            kernel_table,
            executed: Executed::default(),
        };
        world.engine.start(now);
        world.settle();
        world
    }

    /// One conntrack message, then everything it caused.
    pub fn feed(&mut self, kind: CtEventKind, ct: &CtInfo) {
        self.engine.on_conntrack(kind, ct, self.now);
        self.settle();
    }

    /// Execute the engine's actions, answering each at once, until it has none left.
    pub fn settle(&mut self) {
        while let Some(action) = self.engine.pop_action() {
            match action {
                Action::Hw(request) => {
                    self.executed.hw_commands += 1;
                    let outcome = Ok(hardware(&request.op));
                    self.engine.on_hw_result(HwResult { tag: request.tag, outcome }, self.now);
                }
                Action::RouteLookup(lookup) => {
                    self.executed.route_lookups += 1;
                    self.engine.on_route_answer(lookup.request, route(lookup.key.dst), self.now);
                }
                Action::Dump { generation } => {
                    self.executed.dumps += 1;
                    for ct in &self.kernel_table {
                        self.engine.on_conntrack(CtEventKind::Dump, ct, self.now);
                    }
                    self.engine.on_dump_done(generation, self.now);
                }
                Action::NetDump => self.engine.on_net_resynced(self.now),
                Action::KernelRefresh { .. }
                | Action::KernelPermanent { .. }
                | Action::KernelDelete { .. } => self.executed.kernel_requests += 1,
            }
        }
    }

    /// Move the clock; run the engine's timers if one is due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.engine.next_deadline().is_some_and(|due| due <= self.now) {
            self.engine.on_timer(self.now);
            self.settle();
        }
    }
}

/// Connections kept alive in a ring: each step ends the oldest connection of every kind and
/// starts a new one of every kind, so the table stays at the same size.
pub struct Churn {
    live: VecDeque<(Kind, u32)>,
    next_index: u32,
    target: usize,
}

impl Churn {
    /// A ring that keeps `target` connections alive (0: each connection ends in the step
    /// that started it).
    pub fn new(target: usize) -> Churn {
        Churn { live: VecDeque::with_capacity(target + MIX.len()), next_index: 0, target }
    }

    /// Start connections until `target` are alive (each is offloaded when this returns).
    pub fn fill(&mut self, world: &mut FakeWorld) {
        for kind in MIX.into_iter().cycle().take(self.target.saturating_sub(self.live.len())) {
            self.start(world, kind);
        }
    }

    fn start(&mut self, world: &mut FakeWorld, kind: Kind) -> usize {
        let index = self.next_index;
        self.next_index = self.next_index.wrapping_add(1);
        let mut events = 0;
        for (event, ct) in load::setup(kind, index) {
            world.feed(event, &ct);
            events += 1;
        }
        self.live.push_back((kind, index));
        events
    }

    fn end_oldest(&mut self, world: &mut FakeWorld) -> usize {
        match self.live.pop_front() {
            Some((kind, index)) => {
                world.feed(CtEventKind::Destroy, &load::destroy(kind, index));
                1
            }
            None => 0,
        }
    }

    /// One step: for each kind, end the oldest connection, then start a new one; with a target
    /// of 0 the new ones end at once. Returns the number of events fed.
    pub fn step(&mut self, world: &mut FakeWorld) -> usize {
        let mut events = 0;
        for kind in MIX {
            if self.live.len() >= self.target.max(1) {
                events += self.end_oldest(world);
            }
            events += self.start(world, kind);
        }
        while self.live.len() > self.target {
            events += self.end_oldest(world);
        }
        events
    }

    /// Events in one [`Churn::step`] once the ring is full.
    pub fn events_per_step() -> usize {
        MIX.iter().map(|kind| kind.setup_events() + 1).sum()
    }

    /// Connections alive now.
    pub fn live(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use cmmd::core::engine::FlowState;

    use super::*;

    #[test]
    fn every_kind_is_offloaded_with_both_routes() {
        let mut world = FakeWorld::new(16);
        for (n, kind) in MIX.into_iter().enumerate() {
            for (event, ct) in load::setup(kind, 3) {
                world.feed(event, &ct);
            }
            let flow = world.engine.flow(&load::key(kind, 3)).expect("tracked");
            assert_eq!(flow.state(), FlowState::Offloaded, "{kind:?}");
            assert!(flow.in_hw());
            assert_eq!(world.engine.len(), n + 1);
        }
        // Four families/sides of routes, each registered once, then one register per flow.
        assert_eq!(world.engine.stats().offloaded, 4);
    }

    #[test]
    fn churn_keeps_the_table_full_and_every_flow_offloaded() {
        let mut world = FakeWorld::new(64);
        let mut churn = Churn::new(64);
        churn.fill(&mut world);
        assert_eq!(world.engine.len(), 64);
        let before = world.executed.hw_commands;
        for _ in 0..10 {
            assert_eq!(churn.step(&mut world), Churn::events_per_step());
        }
        assert_eq!(world.engine.len(), 64);
        assert_eq!(churn.live(), 64);
        assert!(world.engine.flows().all(|(_, f)| f.state() == FlowState::Offloaded));
        // 40 flows registered and 40 deregistered; routes are shared and already registered.
        assert_eq!(world.executed.hw_commands - before, 80);
        assert_eq!(world.engine.stats().events_destroy, 40);
    }

    #[test]
    fn empty_churn_leaves_nothing_behind() {
        let mut world = FakeWorld::new(64);
        let mut churn = Churn::new(0);
        assert_eq!(churn.step(&mut world), Churn::events_per_step());
        assert_eq!(world.engine.len(), 0);
        assert_eq!(churn.live(), 0);
    }

    #[test]
    fn cold_start_programs_the_dumped_table() {
        let table: Vec<CtInfo> =
            (0..100).map(|i| load::established(MIX[i % 4], i as u32)).collect();
        let world = FakeWorld::with_kernel_table(EngineConfig::default(), table);
        assert!(world.engine.is_ready());
        assert_eq!(world.engine.len(), 100);
        assert_eq!(world.executed.dumps, 1);
        assert!(world.engine.flows().all(|(_, f)| f.state() == FlowState::Offloaded));
    }

    #[test]
    fn routes_follow_the_plan() {
        assert_eq!(route(v4(10, 2, 0, 9)).map(|r| r.oif), Ok(SERVER_IFINDEX));
        assert_eq!(
            route(v6(0xfd01, 9)).map(|r| (r.oif, r.gateway)),
            Ok((CLIENT_IFINDEX, Some(v6(0xfd10, 0xfe))))
        );
        assert_eq!(route(v4(192, 0, 2, 1)), Err(RouteError { errno: ENETUNREACH }));
    }
}
