//! Counters owned by the engine loop.
//!
//! Plain integers mutated by one thread; readers (CLI, metrics) get a [`Snapshot`] copy. Every
//! refusal, wait and withdrawal carries a [`Reason`], and every reason has a counter, so each
//! connection that is not offloaded is explained by a number an operator can read.

use std::fmt;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// Why a connection is not (or no longer) offloaded, or what it waits for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in counter order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The counter / label name (`snake_case`).
            pub fn name(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }
        }
    };
}

reasons! {
    /// Not yet a candidate: nothing to explain (TCP not ESTABLISHED, UDP not yet ASSURED).
    None => "none",
    /// L4 protocol without a cdx table (ICMP, SCTP, GRE, ...).
    UnsupportedProtocol => "unsupported_protocol",
    /// Protocol or address family switched off in the configuration.
    Disabled => "disabled_by_config",
    /// A direction enters or leaves through a port that is not a fast-path port.
    NotFastpathPort => "not_fastpath_port",
    /// Host-originated, host-terminated or loopback traffic.
    Local => "local",
    /// Multicast or broadcast destination.
    Multicast => "multicast",
    /// Matched an exclusion rule (ALG ports, operator rules).
    ExcludedByRule => "excluded_by_rule",
    /// Has a conntrack helper or sequence adjustment.
    Helper => "helper",
    /// Conntrack zone not selected for offload.
    Zone => "zone",
    /// The flow table is full (`CMM_MAX_CONNECTIONS`).
    TableFull => "table_full",
    /// No usable route (unreachable, blackhole, prohibit, lookup failed).
    NoRoute => "no_route",
    /// Waiting for the kernel's answer to a route lookup.
    RouteLookup => "route_lookup",
    /// Next hop has no valid neighbour entry yet.
    NoNeighbour => "no_neighbour",
    /// An interface on the path is down.
    LinkDown => "link_down",
    /// The hardware refused or failed a command (retried with back-off).
    HwError => "hw_error",
    /// The hardware table is full (retried with back-off).
    HwFull => "hw_full",
    /// TCP left ESTABLISHED (FIN/RST seen by the kernel).
    NotEstablished => "not_established",
    /// The kernel conntrack is gone (DESTROY, or missing from a resync dump).
    Destroyed => "destroyed",
    /// The hardware aged the flow out (cdx REMOVED event).
    HwRemoved => "hw_removed",
    /// Offload switched off with `set activate 0`.
    Deactivated => "deactivated",
    /// Path changed (route, neighbour, link, MTU) and the flow was re-resolved.
    PathChanged => "path_changed",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const REASONS: usize = Reason::ALL.len();

/// Every counter of the engine. Monotonic unless the name says otherwise.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Conntrack NEW events received.
    pub events_new: u64,
    /// Conntrack UPDATE events received.
    pub events_update: u64,
    /// Conntrack DESTROY events received.
    pub events_destroy: u64,
    /// Entries received from dumps (start-up, resync, sweep).
    pub dump_entries: u64,
    /// Event-socket overruns (ENOBUFS): events were lost.
    pub overruns: u64,
    /// Resync dumps completed.
    pub resyncs: u64,
    /// Periodic verification sweeps completed.
    pub sweeps: u64,
    /// Entries added to the table by a resync or sweep (their events were lost).
    pub resync_added: u64,
    /// Entries removed by a resync or sweep (their DESTROY was lost).
    pub resync_removed: u64,
    /// Duration of the last resync in milliseconds (gauge).
    pub last_resync_ms: u64,
    /// Connections admitted to the table.
    pub admitted: u64,
    /// Connections programmed into the hardware.
    pub offloaded: u64,
    /// Connections withdrawn from the hardware.
    pub withdrawn: u64,
    /// Connections adopted from the hardware at start-up (reconcile).
    pub adopted: u64,
    /// Stale hardware entries removed at start-up (reconcile).
    pub reconcile_removed: u64,
    /// Hardware commands sent.
    pub hw_commands: u64,
    /// Hardware commands that succeeded.
    pub hw_ok: u64,
    /// Hardware commands that failed (any return code but success, EIO, timeout).
    pub hw_failed: u64,
    /// Hardware commands that timed out.
    pub hw_timeouts: u64,
    /// REMOVED events from the hardware.
    pub hw_removed_events: u64,
    /// REMOVED events for connections cmmd does not track.
    pub hw_removed_unknown: u64,
    /// Kernel conntrack timeouts refreshed by keepalive.
    pub keepalive_refreshes: u64,
    /// Keepalive polls of hardware activity.
    pub keepalive_polls: u64,
    /// Kernel conntracks deleted after the hardware aged them out.
    pub kernel_deletes: u64,
    /// Route lookups sent to the kernel.
    pub route_lookups: u64,
    /// Route-object registrations in the hardware.
    pub hw_routes_registered: u64,
    /// Route-object removals from the hardware.
    pub hw_routes_released: u64,
    /// rtnetlink overruns (the route/neighbour/link view was re-dumped).
    pub rtnl_overruns: u64,
    /// Per-reason decision counters, indexed by `Reason as usize`.
    pub reasons: [u64; REASONS],
}

impl Stats {
    /// Count one decision for `reason`.
    pub fn count(&mut self, reason: Reason) {
        self.reasons[reason as usize] += 1;
    }

    /// The counter of one reason.
    pub fn reason(&self, reason: Reason) -> u64 {
        self.reasons[reason as usize]
    }

    /// `(name, value)` of every plain counter, in a stable order, for `show counters` and
    /// the metrics endpoint.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("events_new", self.events_new),
            ("events_update", self.events_update),
            ("events_destroy", self.events_destroy),
            ("dump_entries", self.dump_entries),
            ("overruns", self.overruns),
            ("resyncs", self.resyncs),
            ("sweeps", self.sweeps),
            ("resync_added", self.resync_added),
            ("resync_removed", self.resync_removed),
            ("last_resync_ms", self.last_resync_ms),
            ("admitted", self.admitted),
            ("offloaded", self.offloaded),
            ("withdrawn", self.withdrawn),
            ("adopted", self.adopted),
            ("reconcile_removed", self.reconcile_removed),
            ("hw_commands", self.hw_commands),
            ("hw_ok", self.hw_ok),
            ("hw_failed", self.hw_failed),
            ("hw_timeouts", self.hw_timeouts),
            ("hw_removed_events", self.hw_removed_events),
            ("hw_removed_unknown", self.hw_removed_unknown),
            ("keepalive_polls", self.keepalive_polls),
            ("keepalive_refreshes", self.keepalive_refreshes),
            ("kernel_deletes", self.kernel_deletes),
            ("route_lookups", self.route_lookups),
            ("hw_routes_registered", self.hw_routes_registered),
            ("hw_routes_released", self.hw_routes_released),
            ("rtnl_overruns", self.rtnl_overruns),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_are_unique_snake_case() {
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "counter index follows declaration order");
        }
    }

    #[test]
    fn counting_by_reason() {
        let mut s = Stats::default();
        s.count(Reason::TableFull);
        s.count(Reason::TableFull);
        s.count(Reason::Local);
        assert_eq!(s.reason(Reason::TableFull), 2);
        assert_eq!(s.reason(Reason::Local), 1);
        assert_eq!(s.reason(Reason::NoRoute), 0);
    }
}
