//! The CLI backend: typed commands in, the vendor's lines out.
//!
//! `cli` parses and owns the session; this module knows what the commands mean. It reads and
//! changes the engine, the log filter and the configuration, and renders the replies.
//!
//! Contract:
//! - A vendor command prints exactly what the vendor `cmm` prints for the same data (its
//!   handlers and print callback, reference §7.3): the same lines, spacing and trailers, and
//!   never an empty line (the vendor's print callback drops them). Vendor error and usage
//!   lines (`ERROR: …`, `Usage: …`) are reply lines as the vendor prints them; cmmd's own
//!   messages are `% …` errors.
//! - What cmmd knows beyond the vendor (zone, conntrack id, offload state and reason, route
//!   ids, MTU, route type, lookups in flight) is printed by cmmd's own commands
//!   (`show connections detail`, `show route detail`, `show fpp_route detail`, `show counters`,
//!   `show status`), never inside a vendor line.
//! - Long replies are streamed: `show connections` on a full table is produced in steps of at
//!   most [`STEP_LINES`] lines while the session's output buffer has room, so the event loop
//!   never pauses for it.
//! - A command answered by the hardware returns [`Next::Await`]; the daemon calls
//!   [`hardware::finish`] with the result.
//! - What the vendor keeps between commands (its debug categories, the fast-forward switch)
//!   is [`ControlState`], owned by the daemon.
//!
//! Files: `connections.rs` (show connections), `network.rs` (show route, neighbor,
//! fpp_route), `rules.rs` (show rules), `hardware.rs` (query, show stat, set ff),
//! `settings.rs` (debug levels, set timeout), `layer2.rs` (bridges, VLANs, PPPoE: show vlan,
//! show pppoe, query vlan|pppoe, vlan add|delete, the ports of `show connections detail`).

mod connections;
mod hardware;
mod network;
mod rules;
mod settings;

use std::time::Instant;

use cli::{Command, Session};

pub use self::connections::{
    ConnectionsJob, View, detail_line, tcp_state_name, tcp_state_of_word, vendor_flags, vendor_line,
};
pub use self::hardware::{Awaited, finish};
pub use self::settings::{VENDOR_DEBUG_LEVEL, effective_filter};
use crate::core::engine::{Engine, FlowState};
use crate::core::stats::Reason;
use crate::edge::telemetry::{DebugLevels, Telemetry};

pub mod layer2;

use self::layer2::InterfaceQuery;

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

/// What the vendor's CLI keeps between commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlState {
    /// The `set debug` categories (the vendor's `debug_level`).
    pub debug: DebugLevels,
    /// The `set ff` switch (the vendor's `ff_enable`; cdx starts enabled).
    pub fast_forward: bool,
}

impl Default for ControlState {
    /// The vendor's state at start.
    fn default() -> Self {
        ControlState { debug: VENDOR_DEBUG_LEVEL, fast_forward: true }
    }
}

/// Everything a command may read or change.
pub struct Ctx<'a> {
    /// The engine.
    pub engine: &'a mut Engine,
    /// Now.
    pub now: Instant,
    /// The logger, when installed.
    pub telemetry: Option<&'a mut Telemetry>,
    /// The configured log filter (`set debug` turns categories on over it).
    pub log_level: &'a str,
    /// What the CLI keeps between commands.
    pub state: &'a mut ControlState,
    /// `show config`: the effective configuration.
    pub config_text: &'a str,
    /// `show rules`: the exclusion rules.
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
    /// Write these lines while the session has room (`show sim`: one per hardware entry).
    Lines(LinesJob),
    /// Wait for this hardware command; then call [`finish`].
    Await {
        /// Tag of the hardware command.
        tag: u64,
        /// What to print.
        awaited: Awaited,
    },
}

/// Execute one command and write (the start of) its reply.
pub fn execute(ctx: &mut Ctx<'_>, command: &Command, out: &mut Session) -> Next {
    match command {
        Command::ShowConnections(filter) => {
            return Next::Stream(ConnectionsJob::new(*filter, View::Vendor));
        }
        Command::ShowConnectionsDetail(filter) => {
            return Next::Stream(ConnectionsJob::new(*filter, View::Detail));
        }
        Command::ShowCounters => show_counters(ctx, out),
        Command::ShowActivate => out.reply_line(if ctx.engine.is_active() { "1" } else { "0" }),
        Command::SetActivate(on) => ctx.engine.set_active(*on, ctx.now),
        Command::ShowDebugLevel => settings::show_debug_level(ctx.state.debug, out),
        Command::SetDebug { category, enabled } => settings::set_debug(ctx, *category, *enabled),
        Command::ShowRules => rules::show(ctx.rules, out),
        Command::ShowRoute => network::show_route(ctx.engine, out),
        Command::ShowRouteDetail => network::show_route_detail(ctx.engine, out),
        Command::ShowNeighbor => network::show_neighbor(ctx.engine, out),
        Command::ShowFppRoute => network::show_fpp_route(ctx.engine, false, out),
        Command::ShowFppRouteDetail => network::show_fpp_route(ctx.engine, true, out),
        Command::ShowStat(words) => {
            if let Some(next) = hardware::show_stat(ctx, words, out) {
                return next;
            }
        }
        Command::SetFastForward(words) => {
            if let Some(next) = hardware::set_fast_forward(ctx, words, out) {
                return next;
            }
        }
        Command::ShowConfig => {
            for line in ctx.config_text.lines() {
                out.reply_line(line);
            }
        }
        Command::ShowVersion => out.reply_line(&version_line()),
        Command::ShowStatus => show_status(ctx, out),
        Command::ShowVlan => layer2::show_vlan(ctx.engine, out),
        Command::VlanAdd(name) => layer2::vlan_add(ctx.engine, name, true, ctx.now, out),
        Command::VlanDelete(name) => layer2::vlan_add(ctx.engine, name, false, ctx.now, out),
        Command::ShowPppoe => layer2::show_pppoe(ctx.engine, out),
        Command::QueryVlan => {
            return hardware::query(ctx, Awaited::Interfaces(InterfaceQuery::Vlans));
        }
        Command::QueryPppoe => {
            return hardware::query(ctx, Awaited::Interfaces(InterfaceQuery::Pppoe));
        }
        Command::QueryConnections => return hardware::query(ctx, Awaited::V4Connections),
        Command::QueryV6Connections => return hardware::query(ctx, Awaited::V6Connections),
        Command::QueryRoute => return hardware::query(ctx, Awaited::Routes),
        Command::SetTimeout(words) => settings::set_timeout(ctx, words, out),
        Command::Stop => {
            out.reply_line("Killing cmm ...");
            tracing::warn!("stop requested from the CLI");
            *ctx.stop = true;
        }
        Command::ShowSim => match ctx.sim {
            Some(sim) => return Next::Lines(LinesJob { lines: sim.show().into_iter() }),
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
    out.reply_line(&format!("events_per_second: {}", x.event_rate));
    out.reply_line(&format!("event_read_pauses: {}", x.event_read_pauses));
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
    let cdx = match (e.cdx_refused(), e.cdx_abi()) {
        (true, _) => "refuses FCI (EOPNOTSUPP): boot cdx with offload_owner=cmm".to_string(),
        (false, Some(choice)) => choice.to_string(),
        (false, None) => "ABI not known yet".to_string(),
    };
    out.reply_line(&format!("cdx: {cdx}"));
}

/// A reply made in one piece but written in steps, as the session has room (the session
/// holds at most `max_output` bytes, and `show sim` of a large table is more).
pub struct LinesJob {
    lines: std::vec::IntoIter<String>,
}

impl LinesJob {
    /// Write up to [`STEP_LINES`] more lines; returns true when the reply is complete.
    pub fn step(&mut self, out: &mut Session) -> bool {
        if !out.reply_wanted() {
            out.reply_done();
            return true;
        }
        for line in self.lines.by_ref().take(STEP_LINES) {
            out.reply_line(&line);
        }
        if self.lines.len() == 0 {
            out.reply_done();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests;
