//! Counters owned by the engine loop.
//!
//! Plain integers mutated by the loop thread; the CLI and the metrics endpoint read them on the
//! same thread, between events. Every
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
    /// The bridge's forwarding database does not (yet) say which member port a next hop (or
    /// the previous hop) is behind.
    NoBridgePort => "no_bridge_port",
    /// A VLAN or PPPoE interface on the path is not registered with cdx yet (being
    /// registered, refused and retried, or waiting for its session or its parent).
    InterfaceUnregistered => "interface_unregistered",
    /// The hardware could not be asked or did not answer: a transport error, a timeout, a
    /// lost reply, or cdx's ABI not known yet (retried with back-off).
    HwError => "hw_error",
    /// The hardware could not insert the connection (`0xFFFF`): its table is full (retried
    /// with back-off).
    HwFull => "hw_full",
    /// cdx does not know an interface of the path (a route's output answered
    /// `UNKNOWN_INTERFACE`, or its input is one cdx would fail every connection on): it knows
    /// only the FMan ports dpa_app configured and the VLAN/PPPoE interfaces registered with it
    /// (retried with back-off).
    UnknownInterface => "unknown_interface",
    /// cdx answered another return code (retried with back-off).
    HwRefused => "hw_refused",
    /// cdx refuses FCI (`EOPNOTSUPP`): it was booted with `offload_owner=flowtable`. Nothing
    /// is sent to it any more; boot it with `offload_owner=cmm`.
    NotOffloadOwner => "not_offload_owner",
    /// The QoS mark is wider than cdx's field (LSDK: 32 bits); never truncated.
    MarkTooWide => "mark_too_wide",
    /// The connection could not be written in cdx's format; nothing was sent (retried with
    /// back-off).
    Unencodable => "unencodable",
    /// Waiting for room in the window of connections being programmed (bursts, cold start).
    HwBusy => "hw_busy",
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

/// Upper bounds (microseconds) of the programming-latency histogram buckets; a last bucket
/// counts everything slower. Fine around the 1 ms target, so that a p99 near it is told apart.
pub const LATENCY_BOUNDS_US: [u32; 20] = [
    50, 100, 250, 500, 600, 700, 800, 900, 1_000, 1_250, 1_500, 2_000, 2_500, 5_000, 10_000,
    25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// A histogram of the time from a connection becoming a candidate to the hardware confirming
/// it (route lookups, route objects and the conntrack command included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Counts per bucket of [`LATENCY_BOUNDS_US`], plus one for slower.
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of all samples, microseconds.
    pub sum_us: u64,
    /// Number of samples.
    pub count: u64,
}

impl Latency {
    /// Add one sample.
    pub fn record(&mut self, us: u32) {
        let i = LATENCY_BOUNDS_US.iter().position(|b| us <= *b).unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i] += 1;
        self.sum_us += u64::from(us);
        self.count += 1;
    }

    /// The bucket bound at or above quantile `q` (0..=1), in microseconds; `None` without
    /// samples, `u32::MAX` if it falls in the last (unbounded) bucket.
    pub fn quantile_bound(&self, q: f64) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank within u64 counts"
        )]
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(LATENCY_BOUNDS_US.get(i).copied().unwrap_or(u32::MAX));
            }
        }
        Some(u32::MAX)
    }
}

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
    /// Hardware commands whose reply was lost (`ENOBUFS` on the command socket).
    pub hw_replies_lost: u64,
    /// Hardware commands cdx refused with `EOPNOTSUPP` (it is not cmm's: `offload_owner`).
    pub hw_offload_refused: u64,
    /// Path changes carried out as a deregistration and a new registration (cdx's UPDATE
    /// changes only the MTU of a direction in hardware).
    pub hw_reregistrations: u64,
    /// Route objects started for a path whose object reached cdx's reference-count limit.
    pub hw_route_splits: u64,
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
    /// VLAN interfaces and PPPoE sessions registered with cdx.
    pub itf_registered: u64,
    /// Registrations of VLAN interfaces and PPPoE sessions cdx refused (each retried with
    /// back-off).
    pub itf_register_failures: u64,
    /// VLAN interfaces and PPPoE sessions removed from cdx.
    pub itf_deregistered: u64,
    /// rtnetlink overruns (the route/neighbour/link view was re-dumped).
    pub rtnl_overruns: u64,
    /// Re-dumps of the route/neighbour/link view that failed (each is retried with back-off).
    pub rtnl_dump_failures: u64,
    /// Per-reason decision counters, indexed by `Reason as usize`.
    pub reasons: [u64; REASONS],
    /// Candidate → programmed latency.
    pub latency: Latency,
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
            ("hw_replies_lost", self.hw_replies_lost),
            ("hw_offload_refused", self.hw_offload_refused),
            ("hw_reregistrations", self.hw_reregistrations),
            ("hw_route_splits", self.hw_route_splits),
            ("hw_removed_events", self.hw_removed_events),
            ("hw_removed_unknown", self.hw_removed_unknown),
            ("keepalive_polls", self.keepalive_polls),
            ("keepalive_refreshes", self.keepalive_refreshes),
            ("kernel_deletes", self.kernel_deletes),
            ("route_lookups", self.route_lookups),
            ("hw_routes_registered", self.hw_routes_registered),
            ("hw_routes_released", self.hw_routes_released),
            ("itf_registered", self.itf_registered),
            ("itf_register_failures", self.itf_register_failures),
            ("itf_deregistered", self.itf_deregistered),
            ("rtnl_overruns", self.rtnl_overruns),
            ("rtnl_dump_failures", self.rtnl_dump_failures),
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
    fn latency_quantiles_come_from_buckets() {
        let mut l = Latency::default();
        assert_eq!(l.quantile_bound(0.5), None);
        for us in [10, 20, 30, 40, 60, 70, 80, 90, 200, 5000] {
            l.record(us);
        }
        assert_eq!(l.count, 10);
        assert_eq!(l.quantile_bound(0.4), Some(50));
        assert_eq!(l.quantile_bound(0.5), Some(100));
        assert_eq!(l.quantile_bound(0.9), Some(250));
        assert_eq!(l.quantile_bound(0.99), Some(5_000));
        l.record(2_000_000);
        assert_eq!(l.quantile_bound(1.0), Some(u32::MAX));
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
