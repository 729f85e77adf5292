//! The CLI backend: typed commands in, vendor-format lines out.
//!
//! `cli` parses and owns the session; this module knows what the commands mean. It reads and
//! changes the engine, the log filter and the configuration, and renders the replies in the
//! shapes operators know from the vendor `cmm` (reference §7.3). Long replies are streamed:
//! `show connections` on a full table is produced in steps of at most [`STEP_LINES`] lines
//! while the session's output buffer has room, so the event loop never pauses for it.
//! `query …` commands walk the hardware through the offload worker and answer when the walk
//! returns.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Instant;

use cli::{Command, ConnectionFilter, DebugCategory, Session, TimeoutClass};
use conntrack::{Status, TcpState};

use crate::core::engine::{Engine, Flow, FlowState, IngressSource};
use crate::core::flow::key::{Family, proto_name};
use crate::core::hw::{HwFailure, HwOp, HwReply, HwTimeouts, WalkedCt, WalkedRoute};
use crate::core::net::{IfName, nud};
use crate::core::route::RouteState;
use crate::core::stats::Reason;
use crate::edge::telemetry::{DebugLevels, Telemetry};

/// Lines produced per step of a streamed reply.
pub const STEP_LINES: usize = 1024;

/// What the software cdx offers to the CLI (only with `--backend sim`).
pub trait SimControl {
    /// `show sim`: tables and statistics, one line each.
    fn show(&self) -> Vec<String>;
    /// `sim fault …`.
    fn fault(&self, fault: &cli::SimFault) -> Result<String, String>;
    /// `sim activate …`: returns how many flows were marked active.
    fn activate(&self, which: &cli::SimFlowMatch) -> Result<usize, String>;
}

/// Everything a command may read or change.
pub struct Ctx<'a> {
    /// The engine.
    pub engine: &'a mut Engine,
    /// Now.
    pub now: Instant,
    /// The logger, when installed.
    pub telemetry: Option<&'a mut Telemetry>,
    /// `show config`: the effective configuration.
    pub config_text: &'a str,
    /// `show rules`: the exclusion rules, vendor format.
    pub rules: &'a [config::ExcludeRule],
    /// The software cdx, with `--backend sim`.
    pub sim: Option<&'a dyn SimControl>,
    /// Set by `stop`.
    pub stop: &'a mut bool,
    /// `show status`: when the daemon started and which backend it drives.
    pub started: Instant,
    /// Backend name.
    pub backend: &'a str,
    /// CLI and socket figures for `show counters`.
    pub extra: &'a crate::edge::metrics::Extra,
}

/// What happens after [`execute`].
pub enum Next {
    /// The reply is complete.
    Done,
    /// Continue with this job while the session has room.
    Stream(ConnectionsJob),
    /// Wait for this hardware walk; then call [`render_walk`].
    Walk {
        /// Tag of the hardware command.
        tag: u64,
        /// What to print.
        query: Query,
    },
}

/// Which `query` command is waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// `query connections`.
    V4,
    /// `query v6connections`.
    V6,
    /// `query route`.
    Routes,
}

/// Execute one command and write (the start of) its reply.
pub fn execute(ctx: &mut Ctx<'_>, command: &Command, out: &mut Session) -> Next {
    match command {
        Command::ShowConnections(filter) => {
            return Next::Stream(ConnectionsJob { filter: *filter, cursor: 0, printed: 0 });
        }
        Command::ShowCounters => show_counters(ctx, out),
        Command::ShowActivate => out.reply_line(if ctx.engine.is_active() { "1" } else { "0" }),
        Command::SetActivate(on) => ctx.engine.set_active(*on, ctx.now),
        Command::ShowDebugLevel => {
            let levels = ctx
                .telemetry
                .as_ref()
                .map_or_else(DebugLevels::default, |t| DebugLevels::from_level(t.filter()));
            for (name, on) in [
                ("command:", levels.command),
                ("error:  ", levels.error),
                ("warning:", levels.warning),
                ("info:   ", levels.info),
            ] {
                out.reply_line(&format!("{name}\t{}", if on { "printed" } else { "not printed" }));
            }
        }
        Command::SetDebug { category, enabled } => {
            let Some(t) = ctx.telemetry.as_deref_mut() else {
                out.reply_error("logging is not configurable in this process");
                out.reply_done();
                return Next::Done;
            };
            let mut levels = DebugLevels::from_level(t.filter());
            match category {
                DebugCategory::Command => levels.command = *enabled,
                DebugCategory::Error => levels.error = *enabled,
                DebugCategory::Warning => levels.warning = *enabled,
                DebugCategory::Info => levels.info = *enabled,
            }
            if let Err(e) = t.set_filter(&levels.directive()) {
                out.reply_error(&e);
            } else {
                tracing::info!(filter = %levels.directive(), "log filter changed from the CLI");
            }
        }
        Command::ShowRules => {
            for rule in ctx.rules.iter().rev() {
                for line in rule.to_string().lines() {
                    out.reply_line(line);
                }
            }
        }
        Command::ShowRoute => show_route(ctx.engine, out),
        Command::ShowNeighbor => show_neighbor(ctx.engine, out),
        Command::ShowFppRoute => show_fpp_route(ctx.engine, out),
        Command::ShowConfig => {
            for line in ctx.config_text.lines() {
                out.reply_line(line);
            }
        }
        Command::ShowVersion => out.reply_line(&version_line()),
        Command::ShowStatus => show_status(ctx, out),
        Command::QueryConnections | Command::QueryV6Connections | Command::QueryRoute => {
            let query = match command {
                Command::QueryConnections => Query::V4,
                Command::QueryV6Connections => Query::V6,
                _ => Query::Routes,
            };
            let tag = ctx.engine.submit_external(HwOp::Walk);
            return Next::Walk { tag, query };
        }
        Command::SetTimeout { class, seconds, unidirectional } => {
            let mut t: HwTimeouts = ctx.engine.config().hw_timeouts;
            match class {
                TimeoutClass::Tcp => t.tcp = *seconds,
                TimeoutClass::Udp => {
                    t.udp = *seconds;
                    t.udp_unidir = unidirectional.filter(|u| *u != 0).unwrap_or(*seconds);
                }
                TimeoutClass::Other => t.other = *seconds,
            }
            ctx.engine.set_hw_timeouts(t);
        }
        Command::Stop => {
            out.reply_line("Killing cmm ...");
            tracing::warn!("stop requested from the CLI");
            *ctx.stop = true;
        }
        Command::ShowSim => match ctx.sim {
            Some(sim) => {
                for line in sim.show() {
                    out.reply_line(&line);
                }
            }
            None => out.reply_error(NO_SIM),
        },
        Command::SimFault(fault) => match ctx.sim.map(|s| s.fault(fault)) {
            Some(Ok(msg)) => out.reply_line(&msg),
            Some(Err(e)) => out.reply_error(&e),
            None => out.reply_error(NO_SIM),
        },
        Command::SimActivate(which) => match ctx.sim.map(|s| s.activate(which)) {
            Some(Ok(n)) => out.reply_line(&format!("{n} flows marked active")),
            Some(Err(e)) => out.reply_error(&e),
            None => out.reply_error(NO_SIM),
        },
    }
    out.reply_done();
    Next::Done
}

const NO_SIM: &str = "only available with the software cdx (--backend sim)";

/// `show version`.
pub fn version_line() -> String {
    format!(
        "cmmd {} (Rust rewrite of the NXP ASK cmm, vendor version cmm_13_01_1)",
        env!("CARGO_PKG_VERSION")
    )
}

fn show_counters(ctx: &Ctx<'_>, out: &mut Session) {
    let e = &*ctx.engine;
    let s = e.stats();
    out.reply_line(&format!("table_entries: {}", e.len()));
    out.reply_line(&format!("table_capacity: {}", e.capacity()));
    out.reply_line(&format!("hw_route_objects: {}", e.hw_routes().len()));
    for (name, v) in s.named() {
        out.reply_line(&format!("{name}: {v}"));
    }
    for r in Reason::ALL.iter().filter(|r| **r != Reason::None) {
        out.reply_line(&format!("{}: {}", r.name(), s.reason(*r)));
    }
    let quantile = |q: f64| match s.latency.quantile_bound(q) {
        None => "-".to_string(),
        Some(u32::MAX) => "> 1s".to_string(),
        Some(us) => format!("<= {us}us"),
    };
    out.reply_line(&format!("programming_latency_p50: {}", quantile(0.5)));
    out.reply_line(&format!("programming_latency_p99: {}", quantile(0.99)));
    let x = ctx.extra;
    out.reply_line(&format!("cli_sessions: {}", x.cli_sessions));
    out.reply_line(&format!("cli_login_failures: {}", x.cli_login_failures));
    out.reply_line(&format!("cli_refused: {}", x.cli_refused));
    out.reply_line(&format!("event_buffer_bytes: {}", x.event_buffer_bytes));
    out.reply_line(&format!("hw_backlog: {}", x.hw_backlog));
    out.reply_line(&format!("netlink_malformed: {}", x.netlink_malformed));
    out.reply_line(&format!("events_discarded: {}", x.events_discarded));
    out.reply_line(&format!("log_lines_dropped: {}", x.log_lines_dropped));
}

fn show_status(ctx: &Ctx<'_>, out: &mut Session) {
    let e = &*ctx.engine;
    let up = ctx.now.saturating_duration_since(ctx.started).as_secs();
    out.reply_line(&format!("version: {}", env!("CARGO_PKG_VERSION")));
    out.reply_line(&format!("backend: {}", ctx.backend));
    out.reply_line(&format!(
        "ready: {}",
        if e.is_ready() { "yes" } else { "no (initial dump running)" }
    ));
    out.reply_line(&format!(
        "active: {}",
        if e.is_active() { "yes" } else { "no (set activate 0)" }
    ));
    out.reply_line(&format!("uptime: {up}s"));
    let offloaded = e.flows().filter(|(_, f)| f.state() == FlowState::Offloaded).count();
    out.reply_line(&format!(
        "connections: {} tracked, {offloaded} offloaded, capacity {}",
        e.len(),
        e.capacity()
    ));
    if let Some(dialect) = ctx.extra.conntrack_dialect {
        out.reply_line(&format!("conntrack dialect: {dialect}"));
    }
    out.reply_line(&format!(
        "ips_permanent bit: {}",
        ctx.extra
            .permanent_bit
            .map_or_else(|| "none (the kernel reads as stock)".into(), |b| b.to_string())
    ));
}

/// A streamed `show connections`.
pub struct ConnectionsJob {
    filter: ConnectionFilter,
    cursor: u32,
    printed: usize,
}

impl ConnectionsJob {
    /// Produce up to [`STEP_LINES`] more lines; returns true when the reply is complete.
    pub fn step(&mut self, engine: &Engine, now: Instant, out: &mut Session) -> bool {
        if !out.reply_wanted() {
            out.reply_done();
            return true;
        }
        let now_s = engine.seconds_at(now);
        let end = engine.slot_end();
        let mut lines = 0;
        let mut line = String::with_capacity(256);
        while self.cursor < end && lines < STEP_LINES {
            let slot = self.cursor;
            self.cursor += 1;
            let Some(flow) = engine.flow_at(slot) else { continue };
            if !matches(&self.filter, flow, engine) {
                continue;
            }
            line.clear();
            connection_line(&mut line, flow, now_s);
            ingress(&mut line, engine, flow);
            out.reply_line(&line);
            self.printed += 1;
            lines += 1;
        }
        if self.cursor >= end {
            out.reply_line(&format!("{} connections printed", self.printed));
            out.reply_done();
            return true;
        }
        false
    }
}

fn matches(f: &ConnectionFilter, flow: &Flow, engine: &Engine) -> bool {
    let key = flow.key();
    let reply = flow.reply();
    if f.protocol.is_some_and(|p| p != key.proto) {
        return false;
    }
    if let Some(state) = f.state {
        let want = tcp_state_of_word(state.as_str());
        if key.proto != crate::core::flow::key::proto::TCP
            || want.is_none()
            || flow.tcp_state() != want
        {
            return false;
        }
    }
    if let Some(a) = f.address
        && ![key.orig.src, key.orig.dst, reply.src, reply.dst].contains(&a)
    {
        return false;
    }
    if let Some(p) = f.port
        && ![key.orig.src_port, key.orig.dst_port, reply.src_port, reply.dst_port].contains(&p)
    {
        return false;
    }
    if f.offloaded || f.pending || f.refused || f.local {
        // The status flags: a connection matches if it has any of those given.
        let state = flow.state();
        let pending =
            matches!(state, FlowState::Resolving | FlowState::Programming | FlowState::Withdrawing);
        return (f.offloaded && state == FlowState::Offloaded)
            || (f.pending && pending)
            || (f.refused && state == FlowState::Backoff)
            || (f.local && engine.is_local(flow));
    }
    true
}

/// The kernel's TCP states as `conntrack -L` names them: `show connections` prints these
/// names, and its `state` filter takes them in lower case. The one table of TCP state words.
const TCP_STATE_NAMES: [(TcpState, &str); 10] = [
    (TcpState::None, "NONE"),
    (TcpState::SynSent, "SYN_SENT"),
    (TcpState::SynRecv, "SYN_RECV"),
    (TcpState::Established, "ESTABLISHED"),
    (TcpState::FinWait, "FIN_WAIT"),
    (TcpState::CloseWait, "CLOSE_WAIT"),
    (TcpState::LastAck, "LAST_ACK"),
    (TcpState::TimeWait, "TIME_WAIT"),
    (TcpState::Close, "CLOSE"),
    (TcpState::SynSent2, "SYN_SENT2"),
];

/// The name `conntrack -L` prints for a state (`NONE` when none was reported, `UNKNOWN` for
/// a state this table does not name).
pub fn tcp_state_name(state: Option<TcpState>) -> &'static str {
    let state = state.unwrap_or(TcpState::None);
    TCP_STATE_NAMES.iter().find(|(s, _)| *s == state).map_or("UNKNOWN", |(_, name)| name)
}

/// The state a word of the `state` filter names (any case), if any.
pub fn tcp_state_of_word(word: &str) -> Option<TcpState> {
    TCP_STATE_NAMES.iter().find(|(_, name)| name.eq_ignore_ascii_case(word)).map(|(s, _)| *s)
}

fn tuple(out: &mut String, src: &IpAddr, dst: &IpAddr, sport: u16, dport: u16, ports: bool) {
    let _ = write!(out, "src={src} dst={dst} ");
    if ports {
        let _ = write!(out, "sport={sport} dport={dport} ");
    }
}

/// One `show connections` line: the conntrack in `conntrack -L` layout with layer 3, then
/// cmmd's offload state (vendor: `Flags: 1` = programmed).
pub fn connection_line(out: &mut String, flow: &Flow, now_s: u32) {
    let key = flow.key();
    let reply = flow.reply();
    let (l3, l3num) = match key.family() {
        Family::V4 => ("ipv4", 2),
        Family::V6 => ("ipv6", 10),
    };
    let timeout = flow.kernel_expires().saturating_sub(now_s);
    let _ = write!(out, "{l3:<8} {l3num} {:<8} {} {timeout} ", proto_name(key.proto), key.proto);
    let is_tcp = key.proto == crate::core::flow::key::proto::TCP;
    if is_tcp {
        let _ = write!(out, "{} ", tcp_state_name(flow.tcp_state()));
    }
    let ports = is_tcp || key.proto == crate::core::flow::key::proto::UDP;
    tuple(out, &key.orig.src, &key.orig.dst, key.orig.src_port, key.orig.dst_port, ports);
    if !flow.status().contains(Status::SEEN_REPLY) {
        out.push_str("[UNREPLIED] ");
    }
    tuple(out, &reply.src, &reply.dst, reply.src_port, reply.dst_port, ports);
    if flow.status().contains(Status::ASSURED) {
        out.push_str("[ASSURED] ");
    }
    let _ = write!(out, "mark={} zone={} id={}", flow.mark(), key.zone, flow.ct_id());
    let flags = u8::from(flow.in_hw());
    let _ = write!(out, ", Flags: {flags:x}, offload: {}", flow.state().name());
    if flow.reason() != Reason::None {
        let _ = write!(out, " ({})", flow.reason().name());
    }
    let [ro, rr] = flow.hw_routes();
    if ro != 0 || rr != 0 {
        let _ = write!(out, ", routes: {ro}/{rr}");
    }
}

/// Where each direction comes in and who said so: `, in: eth0/eth2 (kernel)` — the original
/// direction's interface, then the reply's; `kernel` when an ASK kernel's fast-path blocks said
/// it, `inferred` from the routes otherwise (`-` while not known).
fn ingress(out: &mut String, engine: &Engine, flow: &Flow) {
    let [orig, reply] = engine.ingress_of(flow);
    if orig.is_none() && reply.is_none() {
        return;
    }
    let name = |i: Option<(u32, IngressSource)>| {
        i.map_or_else(|| "-".to_owned(), |(i, _)| ifname(engine, i))
    };
    let source = |i: Option<(u32, IngressSource)>| i.map_or("-", |(_, s)| s.name());
    let sources = if source(orig) == source(reply) || reply.is_none() {
        source(orig).to_owned()
    } else {
        format!("{}/{}", source(orig), source(reply))
    };
    let _ = write!(out, ", in: {}/{} ({sources})", name(orig), name(reply));
}

fn ifname(engine: &Engine, index: u32) -> String {
    engine.net().link(index).map_or_else(|| format!("if{index}"), |l| l.name.to_string())
}

fn show_route(engine: &Engine, out: &mut Session) {
    for (title, v4) in [("IPv4 Route:", true), ("IPv6 Route:", false)] {
        out.reply_line(title);
        let mut n = 0;
        for (key, state, users) in
            engine.routes().entries().filter(|(k, _, _)| k.dst.is_ipv4() == v4)
        {
            let via = match state {
                RouteState::Pending => "pending".to_string(),
                RouteState::Failed(e) => format!("unreachable (errno {})", e.errno),
                RouteState::Resolved(info) => {
                    let gw = info.gateway.map_or_else(|| "-".to_string(), |g| g.to_string());
                    let oif = ifname(engine, info.oif);
                    // The route's own MTU, else the output link's (what cdx is given).
                    let mtu = if info.mtu != 0 {
                        info.mtu
                    } else {
                        engine.net().link(info.oif).map_or(0, |l| l.mtu)
                    };
                    format!(
                        "Gateway: {gw}, OIf: {oif}, PhysOif: {oif}, Mtu: {mtu}, Type: {:?}",
                        info.kind
                    )
                }
            };
            // The vendor's cache identity is ours: input interface, mark, source, destination.
            let iif = if key.iif == 0 { "-".to_string() } else { ifname(engine, key.iif) };
            let src = key.src.map_or_else(|| "-".to_string(), |s| s.to_string());
            out.reply_line(&format!(
                "IIf: {iif}, Mark: {:08x}, Src: {src}, Dst: {} --> {via}, Count: {users}",
                key.mark, key.dst
            ));
            n += 1;
        }
        out.reply_line(&format!("{n} {} Routes printed", if v4 { "IPv4" } else { "IPv6" }));
    }
}

fn show_neighbor(engine: &Engine, out: &mut Session) {
    let uses = |n: &crate::core::net::Neighbour| {
        let Some(mac) = n.valid_mac() else { return 0 };
        engine
            .hw_routes()
            .iter()
            .filter(|(_, o)| o.ident.out_ifindex == n.ifindex && o.ident.mac == mac)
            .count()
    };
    for (title, footer, v4) in [
        ("IPv4 ARP:", "Total ARP Entries", true),
        ("IPv6 Neighbor:", "Total Neighbor Entries", false),
    ] {
        out.reply_line(title);
        let mut neighbours: Vec<_> =
            engine.net().neighbours().filter(|n| n.addr.is_ipv4() == v4).collect();
        neighbours.sort_by_key(|n| (n.ifindex, n.addr));
        for n in &neighbours {
            let mac = n.mac.map_or_else(|| "00:00:00:00:00:00".to_string(), |m| m.to_string());
            let valid = if n.state & nud::VALID != 0 { "" } else { " (not valid)" };
            out.reply_line(&format!(
                "IP addr: {} --> MAC addr: {mac} If: {}, Port:-1, state: {:x}{valid}, Count: {}",
                n.addr,
                ifname(engine, n.ifindex),
                n.state,
                uses(n)
            ));
        }
        out.reply_line(&format!("{footer}: {}", neighbours.len()));
    }
}

fn show_fpp_route(engine: &Engine, out: &mut Session) {
    out.reply_line("FPP Route:");
    let mut objs: Vec<_> = engine.hw_routes().iter().collect();
    objs.sort_by_key(|(id, _)| *id);
    for (id, o) in &objs {
        let flags = u8::from(o.state == crate::core::hw::RouteObjState::Registered);
        out.reply_line(&format!(
            "OIf: {}, IIf: {}, Mtu: {}, Mac: {}, Id: {id}, Count: {}, Flags: {flags:x}",
            o.spec.output, o.spec.input, o.spec.mtu, o.spec.mac, o.refs
        ));
    }
    out.reply_line(&format!("{} FPP Routes printed", objs.len()));
}

fn name_or_null(n: &IfName) -> String {
    if n.as_str() == "?" { "NULL".into() } else { n.to_string() }
}

/// Print the result of a `query` walk in the vendor format.
pub fn render_walk(query: Query, result: Result<HwReply, HwFailure>, out: &mut Session) {
    let (conntracks, routes) = match result {
        Ok(HwReply::Walk { conntracks, routes }) => (conntracks, routes),
        Ok(other) => {
            out.reply_error(&format!("unexpected reply from the fast path: {other:?}"));
            out.reply_done();
            return;
        }
        Err(e) => {
            out.reply_line(&format!("ERROR: fast path query failed: {e:?}"));
            out.reply_done();
            return;
        }
    };
    match query {
        Query::V4 | Query::V6 => {
            let v4 = query == Query::V4;
            let entries: Vec<&WalkedCt> =
                conntracks.iter().filter(|c| c.spec.orig.src.is_ipv4() == v4).collect();
            if entries.is_empty() {
                out.reply_line(if v4 {
                    "ERROR: FPP IPV4 CONNTRACK table empty"
                } else {
                    "ERROR: FPP IPV6 CONNTRACK table empty"
                });
            } else {
                out.reply_line(if v4 { "IPv4 Connections:" } else { "IPv6 Connections:" });
                for (i, c) in entries.iter().enumerate() {
                    let s = &c.spec;
                    out.reply_line(&format!(
                        "{:04}: protocol={}, fwmark=0x{:x}",
                        i, s.proto, s.fwmark
                    ));
                    out.reply_line(&format!(
                        "  Init:  Saddr={}, Daddr={}, Sport={}, Dport={}",
                        s.orig.src, s.orig.dst, s.orig.src_port, s.orig.dst_port
                    ));
                    out.reply_line(&format!(
                        "  Reply: Saddr={}, Daddr={}, Sport={}, Dport={}",
                        s.reply.src, s.reply.dst, s.reply.src_port, s.reply.dst_port
                    ));
                    out.reply_line(&format!(
                        "  Routes: orig={}, reply={}",
                        s.route_orig, s.route_reply
                    ));
                }
                out.reply_line(&format!("Total Connection Entries: {}", entries.len()));
            }
        }
        Query::Routes => {
            out.reply_line("IP ROUTE:");
            for (i, WalkedRoute { spec }) in routes.iter().enumerate() {
                out.reply_line(&format!(
                    "{:04}: Id: {:x}, Output Iface: {}, Input Iface: {}, DST Mac: {}, Mtu: {} Daddr: NULL",
                    i,
                    spec.id,
                    name_or_null(&spec.output),
                    name_or_null(&spec.input),
                    spec.mac,
                    spec.mtu
                ));
            }
            out.reply_line(&format!("Total FPP Route Entries: {}", routes.len()));
        }
    }
    out.reply_done();
}

#[cfg(test)]
mod tests;
