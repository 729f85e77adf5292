//! The CLI backend's behaviour: what commands print for a given engine, byte for byte.
//!
//! A [`Bench`] is an engine over a small network (fast-path ports `eth0` and `eth1`), driven
//! the way the daemon drives it, with a hardware that accepts every command and remembers
//! what it holds, and a CLI session that runs one command line at a time.

mod commands;
mod layer2;
mod lines;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cli::{Request, SessionConfig};
use conntrack::{Status, TcpState};

use super::*;
use crate::core::engine::{Action, CtEventKind, EngineConfig};
use crate::core::flow::key::proto;
use crate::core::flow::{FlowKey, Tuple};
use crate::core::hw::{
    Abi, AbiChoice, AbiDecided, CtSpec, HwFailure, HwOp, HwReply, HwResult, ItfSpec, RouteSpec,
    WalkedCt, WalkedRoute,
};
use crate::core::net::{IfName, Link, Mac, Neighbour, NetView, nud};
use crate::core::policy::CtInfo;
use crate::core::route::{RouteError, RouteInfo, RouteKind};

const ETH0: u32 = 2;
const ETH1: u32 = 3;
const VETH: u32 = 4;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn mac(last: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, last])
}

/// The host: `10.1.0.1`/`fd01::1` on `eth0`, `10.2.0.1`/`fd02::1` on `eth1`, a pod network
/// on `veth0`; clients `10.1.0.2`, `fd01::2`, servers `10.2.0.2`, `fd02::2`, a router
/// `10.2.0.254`.
fn net() -> NetView {
    let mut n = NetView::new([IfName::new("eth0").unwrap(), IfName::new("eth1").unwrap()]);
    for (index, name) in [(ETH0, "eth0"), (ETH1, "eth1"), (VETH, "veth0")] {
        let name = IfName::new(name).unwrap();
        n.upsert_link(Link::plain(index, name, true, 1500));
    }
    for (ifindex, addr) in
        [(ETH0, "10.1.0.1"), (ETH1, "10.2.0.1"), (ETH0, "fd01::1"), (ETH1, "fd02::1")]
    {
        n.add_address(ifindex, ip(addr));
    }
    for (ifindex, addr, last, state) in [
        (ETH0, "10.1.0.2", 0x12, nud::REACHABLE),
        (ETH1, "10.2.0.2", 0x22, nud::STALE),
        (ETH1, "10.2.0.254", 0x2f, nud::REACHABLE),
        (ETH0, "fd01::2", 0x16, nud::REACHABLE),
        (ETH1, "fd02::2", 0x26, nud::DELAY),
    ] {
        n.upsert_neighbour(Neighbour { ifindex, addr: ip(addr), mac: Some(mac(last)), state });
    }
    // Not resolved yet: listed without its MAC. NOARP entries are not listed.
    n.upsert_neighbour(Neighbour {
        ifindex: ETH1,
        addr: ip("10.2.0.9"),
        mac: None,
        state: nud::INCOMPLETE,
    });
    n.upsert_neighbour(Neighbour {
        ifindex: VETH,
        addr: ip("10.3.0.2"),
        mac: Some(mac(0x32)),
        state: nud::NOARP,
    });
    n
}

/// The kernel's routes: first match.
fn route(dst: IpAddr) -> Result<RouteInfo, RouteError> {
    let unicast = |oif, gateway: Option<&str>| {
        Ok(RouteInfo { kind: RouteKind::Unicast, oif, gateway: gateway.map(ip), mtu: 0 })
    };
    match dst {
        IpAddr::V4(v4) => match v4.octets() {
            [10, 1, 0, _] => unicast(ETH0, None),
            [10, 2, 0, _] => unicast(ETH1, None),
            [10, 9, _, _] => unicast(ETH1, Some("10.2.0.254")),
            _ => Err(RouteError { errno: 101 }),
        },
        IpAddr::V6(v6) => match v6.segments() {
            [0xfd01, ..] => unicast(ETH0, None),
            [0xfd02, ..] => unicast(ETH1, None),
            _ => Err(RouteError { errno: 101 }),
        },
    }
}

/// An established TCP conntrack from `client:sport` to `server:dport` (`id` = `sport`).
fn tcp(client: &str, sport: u16, server: &str, dport: u16) -> CtInfo {
    let orig = Tuple { src: ip(client), dst: ip(server), src_port: sport, dst_port: dport };
    CtInfo {
        key: FlowKey { zone: 0, proto: proto::TCP, orig },
        reply: orig.inverse(),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        tcp_state: Some(TcpState::Established),
        mark: 0,
        id: u32::from(sport),
        timeout: Some(432_000),
        helper: false,
        seq_adjust: false,
        qos_connmark: None,
        fastpath: [None; 2],
    }
}

/// A confirmed UDP conntrack that has seen no reply yet.
fn udp_unreplied(client: &str, sport: u16, server: &str, dport: u16) -> CtInfo {
    let mut ct = tcp(client, sport, server, dport);
    ct.key.proto = proto::UDP;
    ct.status = Status::CONFIRMED;
    ct.tcp_state = None;
    ct.timeout = Some(30);
    ct
}

/// What the hardware holds, and every command it was sent.
#[derive(Default)]
struct Hardware {
    cts: Vec<CtSpec>,
    routes: Vec<RouteSpec>,
    itfs: Vec<ItfSpec>,
    sent: Vec<HwOp>,
}

impl Hardware {
    fn apply(&mut self, op: &HwOp) -> Result<HwReply, HwFailure> {
        self.sent.push(op.clone());
        match op {
            HwOp::RouteRegister(r) => self.routes.push(*r),
            HwOp::RouteDeregister(id) => self.routes.retain(|r| r.id != *id),
            HwOp::CtRegister(c) => self.cts.push(*c),
            HwOp::CtDeregister(c) => self.cts.retain(|held| held.orig != c.orig),
            HwOp::ItfRegister(i) => self.itfs.push(*i),
            HwOp::ItfDeregister(i) => self.itfs.retain(|held| held.name() != i.name()),
            HwOp::WalkInterfaces => return Ok(HwReply::Interfaces(self.itfs.clone())),
            // No activity figure: the keepalive polls again later.
            HwOp::CtRemaining(_) => return Err(HwFailure::Timeout),
            HwOp::Walk => {
                // cdx writes no route ids in a walk.
                return Ok(HwReply::Walk {
                    conntracks: self.cts.iter().map(WalkedCt::of).collect(),
                    routes: self.routes.iter().map(|spec| WalkedRoute { spec: *spec }).collect(),
                });
            }
            HwOp::Detect(_) => {
                let abi = AbiChoice { abi: Abi::Lsdk, how: AbiDecided::Configured };
                return Ok(HwReply::Abi(abi));
            }
            _ => {}
        }
        Ok(HwReply::Done)
    }
}

/// An engine, its hardware and the CLI's state.
struct Bench {
    engine: Engine,
    now: Instant,
    hardware: Hardware,
    state: ControlState,
    rules: Vec<config::ExcludeRule>,
    /// The hardware's answers, in order, replaced by this failure.
    failure: Option<HwFailure>,
}

impl Bench {
    fn new() -> Bench {
        Bench::with(net(), EngineConfig::default())
    }

    /// A bench over another network and configuration.
    fn with(net: NetView, cfg: EngineConfig) -> Bench {
        let now = Instant::now();
        let cfg = EngineConfig { reconcile: false, ..cfg };
        let mut bench = Bench {
            engine: Engine::new(cfg, net, now),
            now,
            hardware: Hardware::default(),
            state: ControlState::default(),
            rules: Vec::new(),
            failure: None,
        };
        bench.engine.start(now);
        bench.run();
        assert!(bench.engine.is_ready());
        bench
    }

    /// Execute the engine's actions until it is quiet.
    fn run(&mut self) {
        while let Some(action) = self.engine.pop_action() {
            match action {
                Action::Hw(req) => {
                    let outcome = match &self.failure {
                        Some(failure) => Err(failure.clone()),
                        None => self.hardware.apply(&req.op),
                    };
                    self.engine.on_hw_result(HwResult { tag: req.tag, outcome }, self.now);
                }
                Action::RouteLookup(lookup) => {
                    self.engine.on_route_answer(lookup.request, route(lookup.key.dst), self.now);
                }
                Action::Dump { generation } => self.engine.on_dump_done(generation, self.now),
                Action::NetDump => self.engine.on_net_resynced(self.now),
                _ => {}
            }
        }
    }

    /// A conntrack message from the kernel.
    fn event(&mut self, ct: &CtInfo) {
        self.engine.on_conntrack(CtEventKind::Update, ct, self.now);
        self.run();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.engine.on_timer(self.now);
        self.run();
    }

    /// What `line` prints, run the way the daemon runs it: the reply's lines, each ended by
    /// `\n`, without the echo and the prompt.
    fn run_line(&mut self, line: &str) -> String {
        let now = self.now;
        let config =
            SessionConfig { privileged_commands_need_enable: false, ..SessionConfig::default() };
        let mut session = Session::new(config);
        session.start(now);
        session.receive(b"admin\r\nadmin\r\n", now);
        let Some(Request::Authenticate { .. }) = session.next_request() else { panic!("login") };
        session.authenticated(true, now);
        session.consume_output(session.output_len());
        session.receive(format!("{line}\r\n").as_bytes(), now);
        let Some(Request::Execute(invocation)) = session.next_request() else { panic!("{line}") };
        let (mut stop, extra) = (false, crate::edge::metrics::Extra::default());
        let mut ctx = Ctx {
            engine: &mut self.engine,
            now,
            telemetry: None,
            log_level: "info",
            state: &mut self.state,
            config_text: "",
            rules: &self.rules,
            sim: None,
            stop: &mut stop,
            started: now,
            backend: "sim",
            extra: &extra,
        };
        match execute(&mut ctx, &invocation.command, &mut session) {
            Next::Done => {}
            Next::Stream(mut job) => while !job.step(&self.engine, now, &mut session) {},
            Next::Lines(mut job) => while !job.step(&mut session) {},
            Next::Await { tag, awaited } => {
                self.run();
                let result = self.engine.take_external(tag).expect("the hardware answered");
                finish(awaited, result, &mut self.state, &mut session);
            }
        }
        self.run();
        let text = String::from_utf8_lossy(session.pending_output()).replace("\r\n", "\n");
        let reply = text.strip_prefix(&format!("{line}\n")).unwrap_or_else(|| panic!("{text:?}"));
        reply.strip_suffix("\ncmm> ").unwrap_or_else(|| panic!("{reply:?}")).to_owned()
    }
}

/// Lines, each ended by `\n`.
fn text(lines: &[&str]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}
