//! `show connections` and `show connections detail`.
//!
//! The vendor's line is libnetfilter_conntrack's plain text with layer 3 (`nfct_snprintf`,
//! `NFCT_O_PLAIN`, `NFCT_OF_SHOW_LAYER3`, version 1.1.0 as the ASK tree builds it) with the
//! timeout field replaced by cdx's remaining time (0 when the hardware does not hold the
//! connection), then cmm's `, Flags: %x, n_id: %d, local-conn: yes|no`; the trailers are
//! `<N> connections printed` and `<M> connections with > 1 ids`. The fields cmmd has are
//! printed where and as the library prints them, as for an entry the vendor learnt by dump
//! (the kernel then sends `mark` and `use`): `mark=<m>` always, `zone=<z>` when not 0,
//! `use=1` (the reference count the kernel reports for an entry of its table).
//!
//! `detail` prints the same conntrack text with the kernel's own remaining timeout, the zone
//! and the conntrack id, then what cmmd knows beyond the vendor: the offload state and its
//! reason, the route objects, cdx's remaining time, where each direction comes in and the
//! ports of each direction (the kernel's interfaces and cdx's, [`super::layer2`]).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Instant;

use cli::{ConnectionFilter, Session};
use conntrack::{Status, TcpState};

use super::STEP_LINES;
use crate::core::engine::{Engine, Flow, FlowState, IngressSource};
use crate::core::flow::key::{Family, proto};
use crate::core::stats::Reason;

/// Which lines a streamed `show connections` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The vendor's lines and trailers.
    Vendor,
    /// `show connections detail`.
    Detail,
}

/// A streamed `show connections`.
pub struct ConnectionsJob {
    filter: ConnectionFilter,
    view: View,
    cursor: u32,
    printed: usize,
}

impl ConnectionsJob {
    /// A job that has printed nothing yet.
    pub fn new(filter: ConnectionFilter, view: View) -> ConnectionsJob {
        ConnectionsJob { filter, view, cursor: 0, printed: 0 }
    }

    /// Produce up to [`STEP_LINES`] more lines; returns true when the reply is complete.
    pub fn step(&mut self, engine: &Engine, now: Instant, out: &mut Session) -> bool {
        if !out.reply_wanted() {
            out.reply_done();
            return true;
        }
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
            match self.view {
                View::Vendor => vendor_line(&mut line, flow, engine.hw_remaining(flow, now)),
                View::Detail => detail_line(&mut line, flow, engine, now),
            }
            out.reply_line(&line);
            self.printed += 1;
            lines += 1;
        }
        if self.cursor < end {
            return false;
        }
        out.reply_line(&format!("{} connections printed", self.printed));
        if self.view == View::Vendor {
            // cmmd tracks one conntrack id per connection (a conntrack replaced under the
            // same tuple replaces the connection), so none has more.
            out.reply_line("0 connections with > 1 ids");
        }
        out.reply_done();
        true
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
        if key.proto != proto::TCP || want.is_none() || flow.tcp_state() != want {
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
        let local = engine.is_local(flow);
        let pending = !local
            && matches!(
                state,
                FlowState::Resolving | FlowState::Programming | FlowState::Withdrawing
            );
        return (f.offloaded && state == FlowState::Offloaded)
            || (f.pending && pending)
            || (f.refused && state == FlowState::Backoff)
            || (f.local && local);
    }
    true
}

/// The kernel's TCP states as libnetfilter_conntrack and `conntrack -L` name them: the
/// connection lines print these names, and the `state` filter takes them in lower case. The
/// one table of TCP state words.
pub(super) const TCP_STATE_NAMES: [(TcpState, &str); 10] = [
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

/// The name libnetfilter_conntrack prints for a state (`NONE` for a state its table does not
/// have, as the library does).
pub fn tcp_state_name(state: TcpState) -> &'static str {
    TCP_STATE_NAMES.iter().find(|(s, _)| *s == state).map_or("NONE", |(_, name)| name)
}

/// The state a word of the `state` filter names (any case), if any.
pub fn tcp_state_of_word(word: &str) -> Option<TcpState> {
    TCP_STATE_NAMES.iter().find(|(_, name)| name.eq_ignore_ascii_case(word)).map(|(s, _)| *s)
}

/// `IPS_OFFLOAD` (nf_flow_table), which the library prints as `[OFFLOAD]`.
const IPS_OFFLOAD: u32 = 1 << 14;
/// `IPS_HW_OFFLOAD`, which the library prints as `[HW_OFFLOAD]` (on ASK 5.4 kernels the same
/// bit is `IPS_PERMANENT`, and the vendor's line shows it so).
const IPS_HW_OFFLOAD: u32 = 1 << 15;

/// The library's protocol names (`__proto2str`).
fn l4_name(number: u8) -> &'static str {
    match number {
        proto::TCP => "tcp",
        proto::UDP => "udp",
        proto::ICMP => "icmp",
        proto::ICMPV6 => "icmpv6",
        33 => "dccp",
        47 => "gre",
        132 => "sctp",
        136 => "udplite",
        _ => "unknown",
    }
}

/// Protocols whose tuples the library prints with `sport=` and `dport=`.
fn has_ports(number: u8) -> bool {
    matches!(number, proto::TCP | proto::UDP | 33 | 132 | 136)
}

fn tuple(out: &mut String, src: &IpAddr, dst: &IpAddr, ports: Option<(u16, u16)>) {
    let _ = write!(out, "src={src} dst={dst} ");
    if let Some((sport, dport)) = ports {
        let _ = write!(out, "sport={sport} dport={dport} ");
    }
}

/// The conntrack as libnetfilter_conntrack prints it with layer 3, up to `[ASSURED]` (with a
/// trailing blank): `timeout` in the timeout field.
fn conntrack_text(out: &mut String, flow: &Flow, timeout: u32) {
    let key = flow.key();
    let reply = flow.reply();
    let (l3, l3num) = match key.family() {
        Family::V4 => ("ipv4", 2),
        Family::V6 => ("ipv6", 10),
    };
    let _ = write!(out, "{l3:<8} {l3num} {:<8} {} {timeout} ", l4_name(key.proto), key.proto);
    if let Some(state) = flow.tcp_state() {
        let _ = write!(out, "{} ", tcp_state_name(state));
    }
    let ports = has_ports(key.proto);
    let orig_ports = ports.then_some((key.orig.src_port, key.orig.dst_port));
    tuple(out, &key.orig.src, &key.orig.dst, orig_ports);
    let status = flow.status();
    if !status.contains(Status::SEEN_REPLY) {
        out.push_str("[UNREPLIED] ");
    }
    tuple(out, &reply.src, &reply.dst, ports.then_some((reply.src_port, reply.dst_port)));
    if status.bits() & IPS_HW_OFFLOAD != 0 {
        out.push_str("[HW_OFFLOAD] ");
    } else if status.bits() & IPS_OFFLOAD != 0 {
        out.push_str("[OFFLOAD] ");
    } else if status.contains(Status::ASSURED) {
        out.push_str("[ASSURED] ");
    }
}

/// cmm's `ctTable` flags of a connection: `0x1` programmed, `0x2` an update pending, `0x100`
/// host-originated, `0x200` host-terminated.
pub fn vendor_flags(flow: &Flow) -> u32 {
    let mut flags = 0;
    if flow.in_hw() {
        flags |= 0x1;
    }
    if flow.updating() {
        flags |= 0x2;
    }
    if flow.local_orig() {
        flags |= 0x100;
    }
    if flow.local_reply() {
        flags |= 0x200;
    }
    flags
}

/// One vendor `show connections` line; `hw_remaining` is cdx's remaining time (0 when the
/// hardware does not hold the connection).
pub fn vendor_line(out: &mut String, flow: &Flow, hw_remaining: u32) {
    conntrack_text(out, flow, hw_remaining);
    let _ = write!(out, "mark={} ", flow.mark());
    if flow.key().zone != 0 {
        let _ = write!(out, "zone={} ", flow.key().zone);
    }
    out.push_str("use=1");
    let flags = vendor_flags(flow);
    let local = if flags & 0x300 != 0 { "yes" } else { "no" };
    let _ = write!(out, ", Flags: {flags:x}, n_id: 1, local-conn: {local}");
}

/// One `show connections detail` line.
pub fn detail_line(out: &mut String, flow: &Flow, engine: &Engine, now: Instant) {
    let kernel = flow.kernel_expires().saturating_sub(engine.seconds_at(now));
    conntrack_text(out, flow, kernel);
    let _ = write!(out, "mark={} zone={} id={}", flow.mark(), flow.key().zone, flow.ct_id());
    let state = flow.state();
    let _ = write!(out, ", offload: {}", state.name());
    if flow.reason() != Reason::None && state != FlowState::Local {
        let _ = write!(out, " ({})", flow.reason().name());
    }
    let [orig, reply] = flow.hw_routes();
    let _ = write!(out, ", routes: {orig}/{reply}, hw-timeout: {}", engine.hw_remaining(flow, now));
    ingress(out, engine, flow);
    super::layer2::connection_ports(out, engine, flow);
}

/// Where each direction comes in and who said so: `, in: eth0/eth2 (kernel)`, the original
/// direction's interface, then the reply's; `kernel` when an ASK kernel's fast-path blocks said
/// it, `inferred` from the routes otherwise (`-` while not known).
fn ingress(out: &mut String, engine: &Engine, flow: &Flow) {
    let [orig, reply] = engine.ingress_of(flow);
    if orig.is_none() && reply.is_none() {
        return;
    }
    let name = |i: Option<(u32, IngressSource)>| {
        i.map_or_else(|| "-".to_owned(), |(index, _)| super::network::ifname(engine, index))
    };
    let source = |i: Option<(u32, IngressSource)>| i.map_or("-", |(_, s)| s.name());
    let sources = if reply.is_none() || source(orig) == source(reply) {
        source(orig).to_owned()
    } else {
        format!("{}/{}", source(orig), source(reply))
    };
    let _ = write!(out, ", in: {}/{} ({sources})", name(orig), name(reply));
}
