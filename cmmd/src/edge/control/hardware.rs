//! Commands answered by the hardware: `query connections|v6connections|route|vlan|pppoe`
//! (walks of cdx's tables; `vlan` and `pppoe` print in [`super::layer2`]), `show stat` (its `connection query` counts what cdx holds), `set ff`
//! (`FPP_CMD_IPV4_FF_CONTROL`).
//!
//! Each sends one command through the offload worker and returns [`Next::Await`]; the daemon
//! calls [`finish`] with the result, which prints what the vendor prints (`forward_engine.c`,
//! `module_stat.c` of the LS1043 build, `cmmFeFFControl`). The vendor prints `set ff`'s
//! messages and its usage at its `error` debug level, so they show only while `show
//! debug_level` says `error: printed` (the default).

use cli::Session;

use super::layer2::{self, InterfaceQuery};
use super::{ControlState, Ctx, Next};
use crate::core::hw::{HwFailure, HwOp, HwReply, WalkedCt, WalkedRoute};
use crate::core::net::IfName;

/// What a command waiting for the hardware prints when the answer comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaited {
    /// `query connections`.
    V4Connections,
    /// `query v6connections`.
    V6Connections,
    /// `query route`.
    Routes,
    /// `show stat connection query`, with the connection bound it prints as the maximum.
    ConnectionStat {
        /// `CMM_MAX_CONNECTIONS` (the vendor's `-n`).
        maximum: usize,
    },
    /// `set ff enable` (true) or `disable`.
    FastForward(bool),
    /// `query vlan`, `query pppoe`: walk cdx's interface tables.
    Interfaces(InterfaceQuery),
}

/// Send `op` and wait for it.
fn send(ctx: &mut Ctx<'_>, op: HwOp, awaited: Awaited) -> Next {
    let tag = ctx.engine.submit_external(op);
    Next::Await { tag, awaited }
}

/// `query connections`, `query v6connections`, `query route`, `query vlan`, `query pppoe`:
/// walk cdx's tables.
pub(super) fn query(ctx: &mut Ctx<'_>, awaited: Awaited) -> Next {
    let op = match awaited {
        Awaited::Interfaces(_) => HwOp::WalkInterfaces,
        _ => HwOp::Walk,
    };
    send(ctx, op, awaited)
}

/// The return code the vendor prints for a failed exchange (0 when no reply came).
fn return_code(failure: &HwFailure) -> u16 {
    match failure {
        HwFailure::Rejected(rc) => *rc,
        HwFailure::NotFound => 101,
        _ => 0,
    }
}

/// Print the answer to a command that waited for the hardware.
pub fn finish(
    awaited: Awaited,
    result: Result<HwReply, HwFailure>,
    state: &mut ControlState,
    out: &mut Session,
) {
    match awaited {
        Awaited::FastForward(enable) => fast_forward_done(enable, result, state, out),
        Awaited::ConnectionStat { maximum } => match result {
            Ok(HwReply::Walk { conntracks, .. }) => {
                out.reply_line(&format!("Maximum Active Connections: {maximum} "));
                out.reply_line(&format!("Number of Active Connections: {} ", conntracks.len()));
            }
            Ok(_) => out.reply_line("ERROR: Unexpected returned result from FPP rc:0000"),
            Err(e) => out.reply_line(&format!(
                "ERROR: Unexpected returned result from FPP rc:{:04x}",
                return_code(&e)
            )),
        },
        Awaited::V4Connections
        | Awaited::V6Connections
        | Awaited::Routes
        | Awaited::Interfaces(_) => match (awaited, result) {
            (Awaited::Routes, Ok(HwReply::Walk { routes, .. })) => print_routes(&routes, out),
            (Awaited::Interfaces(query), Ok(HwReply::Interfaces(held))) => {
                layer2::render(query, &held, out);
            }
            (
                Awaited::V4Connections | Awaited::V6Connections,
                Ok(HwReply::Walk { conntracks, .. }),
            ) => {
                print_connections(awaited == Awaited::V4Connections, &conntracks, out);
            }
            (_, Ok(_)) => out.reply_line("ERROR: Unexpected result returned from FPP rc:0"),
            (_, Err(e)) => out.reply_line(&format!(
                "ERROR: Unexpected result returned from FPP rc:{}",
                return_code(&e)
            )),
        },
    }
    out.reply_done();
}

fn print_connections(v4: bool, conntracks: &[WalkedCt], out: &mut Session) {
    let entries: Vec<&WalkedCt> =
        conntracks.iter().filter(|c| c.orig.src.is_ipv4() == v4).collect();
    if entries.is_empty() {
        out.reply_line(if v4 {
            "ERROR: FPP IPV4 CONNTRACK table empty"
        } else {
            "ERROR: FPP IPV6 CONNTRACK table empty"
        });
        return;
    }
    out.reply_line(if v4 { "IPv4 Connections:" } else { "IPv6 Connections:" });
    for (i, s) in entries.iter().enumerate() {
        out.reply_line(&format!("{i:04}: protocol={}, fwmark=0x{:x}", s.proto, s.qos_mark));
        out.reply_line(&format!(
            "  Init:  Saddr={}, Daddr={}, Sport={}, Dport={}",
            s.orig.src, s.orig.dst, s.orig.src_port, s.orig.dst_port
        ));
        out.reply_line(&format!(
            "  Reply: Saddr={}, Daddr={}, Sport={}, Dport={}",
            s.reply.src, s.reply.dst, s.reply.src_port, s.reply.dst_port
        ));
    }
    out.reply_line(&format!("Total Connection Entries: {}", entries.len()));
}

/// A name cdx stored, as the vendor prints it (`NULL` for the unset name).
fn stored_name(n: &IfName) -> String {
    if n.as_str() == "?" { "NULL".into() } else { n.to_string() }
}

fn print_routes(routes: &[WalkedRoute], out: &mut Session) {
    if routes.is_empty() {
        out.reply_line("ERROR: FPP IP ROUTE table empty");
        return;
    }
    out.reply_line("IP ROUTE:");
    for (i, WalkedRoute { spec }) in routes.iter().enumerate() {
        // cmmd registers no destination address in a route (that is for tunnels).
        out.reply_line(&format!(
            "{i:04}: Id: {:x}, Output Iface: {}, Input Iface: {}, DST Mac: {}, Mtu: {} Daddr: NULL",
            spec.id,
            stored_name(&spec.output),
            stored_name(&spec.input),
            spec.mac,
            spec.mtu
        ));
    }
    out.reply_line(&format!("Total FPP Route Entries: {}", routes.len()));
}

/// `set ff enable|disable` (`cmmFFControlProcess`, then the daemon's `cmmFeFFControl`).
pub(super) fn set_fast_forward(
    ctx: &mut Ctx<'_>,
    words: &[String],
    out: &mut Session,
) -> Option<Next> {
    let printed = ctx.state.debug.error;
    let enable = match words.first() {
        Some(word) if word.eq_ignore_ascii_case("enable") => true,
        Some(word) if word.eq_ignore_ascii_case("disable") => false,
        _ => {
            if printed {
                out.reply_line("Usage: set ff <enable disable>");
            }
            return None;
        }
    };
    if ctx.state.fast_forward == enable {
        if printed {
            out.reply_line(if enable {
                "Fast-forward is already enabled"
            } else {
                "Fast-forward is already disabled"
            });
        }
        return None;
    }
    Some(send(ctx, HwOp::FastForward(enable), Awaited::FastForward(enable)))
}

fn fast_forward_done(
    enable: bool,
    result: Result<HwReply, HwFailure>,
    state: &mut ControlState,
    out: &mut Session,
) {
    let line = match result {
        Ok(_) => {
            state.fast_forward = enable;
            if enable {
                "Fast-forward is enabled".to_owned()
            } else {
                "Fast-forward is disabled".to_owned()
            }
        }
        // The vendor says "enable" in both directions.
        Err(HwFailure::Rejected(rc)) => format!("Error {rc} while trying to enable fast-forward"),
        Err(e) => format!("Error '{}' while trying to enable fast-forward", failure_text(&e)),
    };
    if state.debug.error {
        out.reply_line(&line);
    }
}

/// A failure as `strerror` would name it.
fn failure_text(failure: &HwFailure) -> String {
    match failure {
        HwFailure::Timeout => "Connection timed out".to_owned(),
        HwFailure::Io(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

/// The vendor's `show stat` usage (LS1043 build, without flow statistics): `ports` are the
/// fast-path ports (the vendor's enabled GEM ports).
fn show_stat_usage(ports: &str, out: &mut Session) {
    out.reply_line(&format!("Usage:        show stat interface {{{ports}}} query|query_reset"));
    for line in [
        "       show stat vlan query|query_reset",
        "       show stat connection query",
        "       show stat pppoe query|query_reset",
        "       show stat bridge query|query_reset",
        "       show stat tunnel [name {tnl-name}] query|query_reset",
        "       show stat ipsec query|query_reset",
    ] {
        out.reply_line(line);
    }
}

/// How `show stat` reads its words (`cmmStatShowProcess`).
enum StatWords<'a> {
    /// Print the usage.
    Help,
    /// `ERROR: Unknown keyword <word>`, then the usage.
    Unknown(&'a str),
    /// A complete request for these statistics.
    Query(&'static str),
}

fn is(word: Option<&String>, keyword: &str) -> bool {
    word.is_some_and(|w| w.eq_ignore_ascii_case(keyword))
}

fn read_stat_words<'a>(words: &'a [String], ports: &[String]) -> StatWords<'a> {
    let mut words = words.iter();
    let Some(first) = words.next() else { return StatWords::Help };
    let keyword = first.to_ascii_lowercase();
    let what: &'static str = match keyword.as_str() {
        "interface" => "interface",
        "vlan" => "vlan",
        "connection" => "connection",
        "pppoe" => "pppoe",
        "bridge" => "bridge",
        "ipsec" => "ipsec",
        "tunnel" => "tunnel",
        _ => return StatWords::Unknown(first),
    };
    if what == "interface" {
        match words.next() {
            None => return StatWords::Help,
            Some(port) if !ports.contains(port) => return StatWords::Help,
            Some(_) => {}
        }
    }
    let mut action = words.next();
    if what == "tunnel" && is(action, "name") {
        if words.next().is_none() {
            return StatWords::Help;
        }
        action = words.next();
    }
    let Some(action_word) = action else { return StatWords::Help };
    let query = is(action, "query");
    let query_reset = is(action, "query_reset") && what != "connection";
    match (query || query_reset, what) {
        (true, _) => StatWords::Query(what),
        // The vendor's ipsec branch prints the usage alone.
        (false, "ipsec") => StatWords::Help,
        (false, _) => StatWords::Unknown(action_word),
    }
}

/// `show stat …`.
pub(super) fn show_stat(ctx: &mut Ctx<'_>, words: &[String], out: &mut Session) -> Option<Next> {
    let net = ctx.engine.net();
    let mut links: Vec<_> = net.links().filter(|l| net.is_fastpath(l)).collect();
    links.sort_by_key(|l| l.index);
    let ports: Vec<String> = links.iter().map(|l| l.name.to_string()).collect();
    match read_stat_words(words, &ports) {
        StatWords::Help => show_stat_usage(&ports.join("|"), out),
        StatWords::Unknown(word) => {
            out.reply_line(&format!("ERROR: Unknown keyword {word}"));
            show_stat_usage(&ports.join("|"), out);
        }
        StatWords::Query("connection") => {
            let maximum = ctx.engine.capacity();
            return Some(send(ctx, HwOp::Walk, Awaited::ConnectionStat { maximum }));
        }
        StatWords::Query(what) => {
            out.reply_error(&format!("\"show stat {what}\" is not supported by cmmd"));
        }
    }
    None
}
