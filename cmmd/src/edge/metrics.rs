//! Prometheus text exposition of the engine's counters and gauges.
//!
//! Names follow the Prometheus conventions: `cmmd_` prefix, `_total` for counters, labels for
//! the dimension an operator filters on (event type, reason, state, result).

use std::fmt::Write;

use crate::core::engine::{Engine, FlowState};
use crate::core::stats::Reason;

/// Gauges and counters that live outside the engine (CLI, sockets, logger).
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// Open CLI sessions.
    pub cli_sessions: u64,
    /// CLI logins that failed.
    pub cli_login_failures: u64,
    /// CLI connections refused (limit or lockout).
    pub cli_refused: u64,
    /// Effective receive buffer of the conntrack event socket, bytes.
    pub event_buffer_bytes: u64,
    /// Conntrack events per second over the last 10 ms the loop measured.
    pub event_rate: u64,
    /// Polls that left the event socket aside under churn (`netlink.batch_interval`).
    pub event_read_pauses: u64,
    /// Log lines dropped because stdout did not drain.
    pub log_lines_dropped: u64,
    /// Hardware requests queued for the offload worker.
    pub hw_backlog: u64,
    /// Netlink messages (conntrack and rtnetlink) that failed to decode, and truncated
    /// datagrams: skipped and counted.
    pub netlink_malformed: u64,
    /// Conntrack events dropped unread after an overrun (older than the resync dump).
    pub events_discarded: u64,
    /// HTTP connections closed to make room for new ones (a flood of idle clients).
    pub http_evicted: u64,
    /// True while `/readyz` answers 200 (initial dump done, hardware answering).
    pub ready: bool,
    /// The kernel's conntrack dialect and where it comes from (`None` before the sockets).
    pub conntrack_dialect: Option<conntrack::DialectState>,
    /// The `IPS_PERMANENT` bit in force (`None`: the kernel reads as stock).
    pub permanent_bit: Option<u8>,
    /// Conntrack attributes skipped because they did not decode, by `EntryAttr::index`.
    pub attributes_skipped: [u64; conntrack::EntryAttr::COUNT],
    /// Permanent-bit requests not sent (no such bit on this kernel, or no conntrack id).
    pub permanent_unsent: u64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Render every metric.
pub fn render(engine: &Engine, extra: &Extra) -> String {
    let s = engine.stats();
    let mut out = String::with_capacity(8192);

    family(&mut out, "cmmd_events_total", "counter", "Conntrack messages received, by type.");
    for (t, v) in [
        ("new", s.events_new),
        ("update", s.events_update),
        ("destroy", s.events_destroy),
        ("dump", s.dump_entries),
    ] {
        sample(&mut out, "cmmd_events_total", &format!("type=\"{t}\""), v);
    }

    family(
        &mut out,
        "cmmd_decisions_total",
        "counter",
        "Decisions not to offload a connection, or to withdraw it, by reason. Counts decisions, \
         not connections: every event, sweep and hardware retry of a connection decides again.",
    );
    for r in Reason::ALL.iter().filter(|r| **r != Reason::None) {
        sample(&mut out, "cmmd_decisions_total", &format!("reason=\"{}\"", r.name()), s.reason(*r));
    }

    // Connections, not decisions: every tracked connection not in the hardware, by the reason
    // it carries, plus the refusals remembered until the full table has room. Connections the
    // policy refuses are not held, so they are only in cmmd_decisions_total.
    let mut waiting = [0u64; Reason::ALL.len()];
    for (_, f) in engine.flows() {
        if f.state() != FlowState::Offloaded
            && let Some(n) = waiting.get_mut(f.reason() as usize)
        {
            *n += 1;
        }
    }
    if let Some(n) = waiting.get_mut(Reason::TableFull as usize) {
        *n += engine.waiting_for_room() as u64;
    }
    family(
        &mut out,
        "cmmd_connections_not_offloaded",
        "gauge",
        "Connections cmmd holds that are not in the hardware, by reason (tracked and waiting, \
         being programmed or withdrawn, and table-full refusals waiting for room).",
    );
    for r in Reason::ALL.iter().filter(|r| **r != Reason::None) {
        let n = waiting.get(*r as usize).copied().unwrap_or(0);
        sample(&mut out, "cmmd_connections_not_offloaded", &format!("reason=\"{}\"", r.name()), n);
    }

    let mut by_state = [0u64; 6];
    for (_, f) in engine.flows() {
        let i = match f.state() {
            FlowState::Resolving => 0,
            FlowState::Programming => 1,
            FlowState::Offloaded => 2,
            FlowState::Withdrawing => 3,
            FlowState::Backoff => 4,
            FlowState::Local => 5,
        };
        by_state[i] += 1;
    }
    family(&mut out, "cmmd_flows", "gauge", "Tracked connections, by offload state.");
    for (i, st) in ["resolving", "programming", "offloaded", "withdrawing", "backoff", "local"]
        .iter()
        .enumerate()
    {
        sample(&mut out, "cmmd_flows", &format!("state=\"{st}\""), by_state[i]);
    }
    family(&mut out, "cmmd_table_entries", "gauge", "Tracked connections.");
    sample(&mut out, "cmmd_table_entries", "", engine.len() as u64);
    family(&mut out, "cmmd_table_capacity", "gauge", "Flow table capacity (CMM_MAX_CONNECTIONS).");
    sample(&mut out, "cmmd_table_capacity", "", engine.capacity() as u64);
    family(
        &mut out,
        "cmmd_table_bytes",
        "gauge",
        "Heap bytes held by the flow table and its indexes.",
    );
    sample(&mut out, "cmmd_table_bytes", "", engine.table_bytes() as u64);
    family(&mut out, "cmmd_hw_routes", "gauge", "Route objects (ids) in use in the hardware.");
    sample(&mut out, "cmmd_hw_routes", "", engine.hw_routes().len() as u64);

    let counters: [(&str, &str, u64); 24] = [
        ("cmmd_overruns_total", "Event-socket overruns (ENOBUFS): events were lost.", s.overruns),
        ("cmmd_resyncs_total", "Resync dumps completed after overruns.", s.resyncs),
        ("cmmd_sweeps_total", "Periodic verification dumps completed.", s.sweeps),
        (
            "cmmd_resync_added_total",
            "Connections a resync or sweep added (their events were lost).",
            s.resync_added,
        ),
        (
            "cmmd_resync_removed_total",
            "Connections a resync or sweep removed (their DESTROY was lost).",
            s.resync_removed,
        ),
        ("cmmd_admitted_total", "Connections admitted to the table.", s.admitted),
        ("cmmd_offloaded_total", "Connections programmed into the hardware.", s.offloaded),
        ("cmmd_withdrawn_total", "Connections withdrawn from the hardware.", s.withdrawn),
        ("cmmd_adopted_total", "Connections adopted from the hardware at start-up.", s.adopted),
        (
            "cmmd_reconcile_removed_total",
            "Stale hardware entries removed at start-up.",
            s.reconcile_removed,
        ),
        ("cmmd_hw_removed_total", "REMOVED events from the hardware.", s.hw_removed_events),
        ("cmmd_keepalive_polls_total", "Hardware activity polls.", s.keepalive_polls),
        (
            "cmmd_keepalive_refreshes_total",
            "Kernel conntrack timeouts refreshed.",
            s.keepalive_refreshes,
        ),
        (
            "cmmd_kernel_deletes_total",
            "Kernel conntracks deleted after hardware aging.",
            s.kernel_deletes,
        ),
        ("cmmd_route_lookups_total", "Route lookups sent to the kernel.", s.route_lookups),
        (
            "cmmd_interfaces_registered_total",
            "VLAN interfaces and PPPoE sessions registered with cdx.",
            s.itf_registered,
        ),
        (
            "cmmd_interface_registration_failures_total",
            "VLAN and PPPoE registrations cdx refused (each retried with back-off).",
            s.itf_register_failures,
        ),
        (
            "cmmd_interfaces_deregistered_total",
            "VLAN interfaces and PPPoE sessions removed from cdx.",
            s.itf_deregistered,
        ),
        (
            "cmmd_rtnl_overruns_total",
            "rtnetlink overruns (the view was re-dumped).",
            s.rtnl_overruns,
        ),
        (
            "cmmd_rtnl_dump_failures_total",
            "rtnetlink re-dumps that failed (each retried with back-off).",
            s.rtnl_dump_failures,
        ),
        (
            "cmmd_hw_replies_lost_total",
            "Hardware replies lost to a full command socket (ENOBUFS).",
            s.hw_replies_lost,
        ),
        (
            "cmmd_hw_offload_refused_total",
            "Hardware commands cdx refused with EOPNOTSUPP (booted with offload_owner=flowtable).",
            s.hw_offload_refused,
        ),
        (
            "cmmd_hw_reregistrations_total",
            "Path changes carried out as a deregistration and a new registration.",
            s.hw_reregistrations,
        ),
        (
            "cmmd_hw_route_splits_total",
            "Route objects started because one reached cdx's 16-bit reference count.",
            s.hw_route_splits,
        ),
    ];
    for (name, help, v) in counters {
        family(&mut out, name, "counter", help);
        sample(&mut out, name, "", v);
    }
    family(&mut out, "cmmd_resync_duration_milliseconds", "gauge", "Duration of the last resync.");
    sample(&mut out, "cmmd_resync_duration_milliseconds", "", s.last_resync_ms);

    family(
        &mut out,
        "cmmd_programming_latency_seconds",
        "histogram",
        "Time from a connection becoming a candidate to the hardware confirming it.",
    );
    let mut cumulative = 0;
    for (i, bound) in crate::core::stats::LATENCY_BOUNDS_US.iter().enumerate() {
        cumulative += s.latency.buckets[i];
        let le = f64::from(*bound) / 1e6;
        sample(
            &mut out,
            "cmmd_programming_latency_seconds_bucket",
            &format!("le=\"{le}\""),
            cumulative,
        );
    }
    sample(&mut out, "cmmd_programming_latency_seconds_bucket", "le=\"+Inf\"", s.latency.count);
    let _ = writeln!(out, "cmmd_programming_latency_seconds_sum {}", s.latency.sum_us as f64 / 1e6);
    sample(&mut out, "cmmd_programming_latency_seconds_count", "", s.latency.count);

    family(
        &mut out,
        "cmmd_cdx_abi_info",
        "gauge",
        "The cdx ABI commands are encoded in (lsdk or ask), and how it was decided \
         (configured or detected); absent until known.",
    );
    if let Some(choice) = engine.cdx_abi() {
        let decided = match choice.how {
            crate::core::hw::AbiDecided::Configured => "configured",
            crate::core::hw::AbiDecided::Detected(_) => "detected",
        };
        sample(
            &mut out,
            "cmmd_cdx_abi_info",
            &format!("abi=\"{}\",decided=\"{decided}\"", choice.abi),
            1,
        );
    }
    family(
        &mut out,
        "cmmd_cdx_offload_refused",
        "gauge",
        "1 when cdx refuses FCI (EOPNOTSUPP: offload_owner=flowtable) and nothing is programmed.",
    );
    sample(&mut out, "cmmd_cdx_offload_refused", "", u64::from(engine.cdx_refused()));

    family(&mut out, "cmmd_hw_commands_total", "counter", "Hardware commands, by result.");
    sample(&mut out, "cmmd_hw_commands_total", "result=\"ok\"", s.hw_ok);
    sample(
        &mut out,
        "cmmd_hw_commands_total",
        "result=\"failed\"",
        s.hw_failed.saturating_sub(s.hw_timeouts),
    );
    sample(&mut out, "cmmd_hw_commands_total", "result=\"timeout\"", s.hw_timeouts);
    family(
        &mut out,
        "cmmd_hw_backlog",
        "gauge",
        "Hardware commands queued for the offload worker.",
    );
    sample(&mut out, "cmmd_hw_backlog", "", extra.hw_backlog);
    family(
        &mut out,
        "cmmd_netlink_malformed_total",
        "counter",
        "Netlink messages that failed to decode, and truncated datagrams (skipped).",
    );
    sample(&mut out, "cmmd_netlink_malformed_total", "", extra.netlink_malformed);
    family(
        &mut out,
        "cmmd_events_discarded_total",
        "counter",
        "Conntrack events dropped unread after an overrun (older than the resync dump).",
    );
    sample(&mut out, "cmmd_events_discarded_total", "", extra.events_discarded);
    family(
        &mut out,
        "cmmd_conntrack_attributes_skipped_total",
        "counter",
        "Conntrack attributes that did not decode as expected and were skipped (the entry kept).",
    );
    for attr in conntrack::EntryAttr::ALL {
        let count = extra.attributes_skipped.get(attr.index()).copied().unwrap_or(0);
        let labels = format!("attribute=\"{}\"", attr.kernel_name());
        sample(&mut out, "cmmd_conntrack_attributes_skipped_total", &labels, count);
    }
    family(
        &mut out,
        "cmmd_conntrack_dialect",
        "gauge",
        "The kernel's conntrack dialect (1): stock or an ASK numbering; pinned, recognised or not (yet).",
    );
    let (dialect, source) = match extra.conntrack_dialect {
        Some(conntrack::DialectState::Pinned(d)) => (d.label(), "pinned"),
        Some(state @ conntrack::DialectState::Recognised(_)) => {
            (state.dialect().label(), "recognised")
        }
        Some(conntrack::DialectState::Unrecognised { .. }) | None => ("stock", "auto"),
    };
    let labels = format!("dialect=\"{dialect}\",source=\"{source}\"");
    sample(&mut out, "cmmd_conntrack_dialect", &labels, 1);
    family(
        &mut out,
        "cmmd_kernel_permanent_unsent_total",
        "counter",
        "IPS_PERMANENT requests not sent: the kernel reads as stock (no such bit), or no conntrack id.",
    );
    sample(&mut out, "cmmd_kernel_permanent_unsent_total", "", extra.permanent_unsent);

    family(&mut out, "cmmd_cli_sessions", "gauge", "Open CLI sessions.");
    sample(&mut out, "cmmd_cli_sessions", "", extra.cli_sessions);
    family(&mut out, "cmmd_cli_login_failures_total", "counter", "Failed CLI logins.");
    sample(&mut out, "cmmd_cli_login_failures_total", "", extra.cli_login_failures);
    family(
        &mut out,
        "cmmd_cli_refused_total",
        "counter",
        "CLI connections and logins refused (session limit, lockout).",
    );
    sample(&mut out, "cmmd_cli_refused_total", "", extra.cli_refused);
    family(
        &mut out,
        "cmmd_event_buffer_bytes",
        "gauge",
        "Effective receive buffer of the conntrack event socket.",
    );
    sample(&mut out, "cmmd_event_buffer_bytes", "", extra.event_buffer_bytes);
    family(
        &mut out,
        "cmmd_conntrack_events_per_second",
        "gauge",
        "Conntrack events read per second, over the last 10 ms measured.",
    );
    sample(&mut out, "cmmd_conntrack_events_per_second", "", extra.event_rate);
    family(
        &mut out,
        "cmmd_event_read_pauses_total",
        "counter",
        "Polls that left the conntrack event socket aside under churn (netlink.batch_interval).",
    );
    sample(&mut out, "cmmd_event_read_pauses_total", "", extra.event_read_pauses);
    family(
        &mut out,
        "cmmd_log_lines_dropped_total",
        "counter",
        "Log lines dropped because stdout did not drain.",
    );
    sample(&mut out, "cmmd_log_lines_dropped_total", "", extra.log_lines_dropped);
    family(
        &mut out,
        "cmmd_http_evicted_total",
        "counter",
        "Connections to this endpoint closed before their request was whole, to make room.",
    );
    sample(&mut out, "cmmd_http_evicted_total", "", extra.http_evicted);
    family(
        &mut out,
        "cmmd_ready",
        "gauge",
        "1 while /readyz answers 200: initial dump done and the hardware answering.",
    );
    sample(&mut out, "cmmd_ready", "", u64::from(extra.ready));
    family(&mut out, "cmmd_active", "gauge", "0 after `set activate 0`.");
    sample(&mut out, "cmmd_active", "", u64::from(engine.is_active()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::engine::EngineConfig;
    use crate::core::net::NetView;
    use std::time::Instant;

    #[test]
    fn exposition_is_well_formed() {
        let e = Engine::new(EngineConfig::default(), NetView::default(), Instant::now());
        let text = render(&e, &Extra { cli_sessions: 2, ..Extra::default() });
        assert!(text.contains("cmmd_table_capacity 131072\n"));
        assert!(text.contains("cmmd_decisions_total{reason=\"table_full\"} 0\n"));
        assert!(text.contains("cmmd_connections_not_offloaded{reason=\"table_full\"} 0\n"));
        assert!(!text.contains("reason=\"none\""), "no reason is not a reason");
        assert!(text.contains("cmmd_ready 0\n"), "not ready until the daemon says so");
        assert!(text.contains("cmmd_cli_sessions 2\n"));
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP cmmd_") || line.starts_with("# TYPE cmmd_"),
                    "{line}"
                );
            } else {
                let (name, value) = line.rsplit_once(' ').unwrap();
                assert!(name.starts_with("cmmd_"), "{line}");
                value.parse::<f64>().unwrap();
            }
        }
    }
}
