//! Every default value of cmmd, in one place.
//!
//! Contract: nothing else in the workspace writes a default literally; documentation, the example
//! `packaging/cmmd.toml` and `Config::default()` all derive from these constants (a test parses the
//! example file and compares it with `Config::default()`).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::num::NonZeroU32;
use std::time::Duration;

use crate::model::{
    Backend, CdxAbi, CdxAbiSetting, CdxConfig, CliConfig, Config, KeepaliveConfig, KeepaliveMode,
    L4Protocol, LogConfig, LogFormat, MetricsConfig, NetlinkConfig, OffloadConfig, OnRemoved,
    ShutdownConfig, SimConfig, SimIpv6Activity, SimUnwritten, Timeouts, UdpPolicy, VlanPolicy,
};
use crate::rules::ExcludeRule;

const fn non_zero(value: u32) -> NonZeroU32 {
    match NonZeroU32::new(value) {
        Some(value) => value,
        None => panic!("a default that must be positive is zero"),
    }
}

/// The TOML file read when neither `--config` nor `CMM_CONFIG` names one (only if it exists).
pub const CONFIG_PATH: &str = "/etc/cmm/cmmd.toml";

/// Tracked connections (`CMM_MAX_CONNECTIONS`).
pub const MAX_CONNECTIONS: NonZeroU32 = non_zero(131_072);
/// Largest accepted `max_connections`: 2^24 entries keeps the table within a few GiB.
pub const MAX_CONNECTIONS_LIMIT: u32 = 16_777_216;
/// Hardware backend.
pub const BACKEND: Backend = Backend::Cdx;

/// Layer-4 protocols offloaded (all cdx has tables for).
pub const OFFLOAD_PROTOCOLS: [L4Protocol; 2] = [L4Protocol::Tcp, L4Protocol::Udp];
/// Offload IPv4.
pub const OFFLOAD_IPV4: bool = true;
/// Offload IPv6.
pub const OFFLOAD_IPV6: bool = true;
/// UDP offload policy.
pub const UDP_POLICY: UdpPolicy = UdpPolicy::Assured;
/// `offload.vlan`: every VLAN on a fast-path port is registered, as the vendor's default.
pub const VLAN_POLICY: VlanPolicy = VlanPolicy::Allow;
/// Exclude conntracks with helpers or sequence adjustment.
pub const EXCLUDE_HELPERS: bool = true;
/// Pass the conntrack mark to cdx as QoS fwmark.
pub const FWMARK_FROM_CTMARK: bool = false;
/// Mask applied to the conntrack mark.
pub const FWMARK_MASK: u32 = 0xffff_ffff;

/// The vendor's deny rules (protocols that need an ALG), used when `offload.exclude` is absent:
/// `(name, protocol number, port)`.
pub const EXCLUDE_RULES: [(&str, u8, u16); 3] =
    [("ftp", 6, 21), ("sip", 17, 5060), ("pptp", 6, 1723)];

/// The vendor's deny rules as values.
pub fn exclude_rules() -> Vec<ExcludeRule> {
    EXCLUDE_RULES
        .iter()
        .map(|(name, proto, port)| ExcludeRule::proto_port(name, *proto, *port))
        .collect()
}

/// cdx TCP aging, seconds (5 days, as cdx).
pub const TIMEOUT_TCP: NonZeroU32 = non_zero(432_000);
/// cdx UDP aging with both directions offloaded, seconds.
pub const TIMEOUT_UDP: NonZeroU32 = non_zero(180);
/// cdx UDP aging with one direction offloaded, seconds.
pub const TIMEOUT_UDP_UNIDIRECTIONAL: NonZeroU32 = non_zero(30);
/// cdx aging of every other protocol, seconds.
pub const TIMEOUT_OTHER: NonZeroU32 = non_zero(600);
/// Largest timeout cdx can hold, seconds: `SET_TIMEOUT` is seconds × HZ in 32 bits, and cdx's
/// timer compares signed 32-bit jiffies, so from 2^31 ticks (2 147 484 s at HZ 1000, the ASK
/// kernels' HZ) a timeout is "already past" and misfires (cdx-sys README, the software cdx's
/// rule on time).
pub const TIMEOUT_LIMIT: u32 = 2_147_483;
/// Why [`TIMEOUT_LIMIT`] is the limit, as configuration errors say it.
pub const TIMEOUT_LIMIT_REASON: &str =
    "cdx keeps seconds × HZ (1000) in a signed 32-bit timer, which longer timeouts overflow";

/// Keepalive mode.
pub const KEEPALIVE_MODE: KeepaliveMode = KeepaliveMode::Refresh;
/// Hardware activity polling interval.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Margin over the time since the last activity.
pub const KEEPALIVE_MARGIN: Option<Duration> = None;
/// Timeout refreshes per second.
pub const KEEPALIVE_MAX_REFRESH_PER_SECOND: NonZeroU32 = non_zero(20_000);
/// `IPS_PERMANENT` bit number on the ASK kernel: `None`, the bit of the dialect the kernel
/// speaks (15 on the NXP 5.4 patch, 16 on the 6.x ports, where 15 is upstream's
/// `IPS_HW_OFFLOAD`).
pub const KEEPALIVE_PERMANENT_BIT: Option<u8> = None;
/// Reaction to cdx `REMOVED`.
pub const KEEPALIVE_ON_REMOVED: OnRemoved = OnRemoved::Delete;

/// Event socket receive buffer (32 MiB).
pub const NETLINK_EVENT_BUFFER: u32 = 32 << 20;
/// rtnetlink event socket receive buffer (4 MiB): route, neighbour, link and address changes.
pub const NETLINK_RTNL_BUFFER: u32 = 4 << 20;
/// Smallest accepted netlink socket buffer (events and rtnetlink).
pub const NETLINK_EVENT_BUFFER_MIN: u32 = 4_096;
/// Largest accepted netlink socket buffer (1 GiB).
pub const NETLINK_EVENT_BUFFER_MAX: u32 = 1 << 30;
/// `NETLINK_BROADCAST_ERROR` on the event socket. Off: when the socket is full the kernel
/// keeps every deleted conntrack until its DESTROY is delivered, and after one overrun under
/// load its table filled to `nf_conntrack_max` with no live entry (new connections refused,
/// `docs/performance.md` F1). The resync dump and the sweep repair lost DESTROYs instead.
pub const NETLINK_RELIABLE_DESTROY: bool = false;
/// Write `nf_conntrack_events=1` at start.
pub const NETLINK_ENABLE_EVENTS_SYSCTL: bool = true;
/// Period of the verifying dump-and-sweep.
pub const NETLINK_SWEEP_INTERVAL: Option<Duration> = Some(Duration::from_secs(60));
/// Under sustained churn, the event socket is read at most once per millisecond
/// (`cmmd::daemon::batching`).
pub const NETLINK_BATCH_INTERVAL: Option<Duration> = Some(Duration::from_millis(1));
/// Minimum time between resyncs.
pub const NETLINK_RESYNC_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The kernel's conntrack dialect: recognised from the messages.
pub const NETLINK_CONNTRACK_DIALECT: &str = "auto";
/// Route lookups carry the whole conntrack mark as the packet mark (stock kernels).
pub const NETLINK_ROUTE_MARK_MASK: u32 = u32::MAX;

/// The kernel's `nf_conntrack_tcp_timeout_established`, assumed when the namespace's sysctl
/// cannot be read at start (the kernel's own default, 5 days).
pub const KERNEL_TCP_TIMEOUT_ESTABLISHED: u32 = 432_000;
/// The kernel's `nf_conntrack_udp_timeout_stream` (ASSURED UDP), assumed when unreadable.
pub const KERNEL_UDP_TIMEOUT_STREAM: u32 = 120;
/// The kernel's `nf_conntrack_udp_timeout` (UDP not ASSURED), assumed when unreadable.
pub const KERNEL_UDP_TIMEOUT: u32 = 30;

/// First back-off delay after the hardware refused a command; it doubles per refusal.
/// (The engine's own tuning: not a configuration key.)
pub const ENGINE_RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest back-off delay after hardware refusals.
pub const ENGINE_RETRY_MAX: Duration = Duration::from_secs(60);
/// Walk the hardware tables at start and adopt what matches the kernel, instead of
/// registering everything again.
pub const ENGINE_RECONCILE: bool = true;
/// Connections refused because the table was full, remembered to be admitted when room
/// appears.
pub const ENGINE_RETRY_QUEUE: usize = 4096;
/// Connections being programmed at once; more wait their turn (`hw_busy`).
pub const ENGINE_PROGRAMMING_WINDOW: usize = 4096;

/// The CLI's TCP port (the vendor's, hard-coded there).
pub const CLI_PORT: u16 = 2103;
/// CLI listening address.
pub const CLI_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, CLI_PORT));
/// Concurrent CLI sessions.
pub const CLI_MAX_SESSIONS: NonZeroU32 = non_zero(8);
/// Idle session timeout.
pub const CLI_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Login timeout.
pub const CLI_LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Failed logins per session before disconnect.
pub const CLI_MAX_LOGIN_FAILURES: NonZeroU32 = non_zero(3);
/// Failed logins per source address that lock it out.
pub const CLI_LOCKOUT_FAILURES: NonZeroU32 = non_zero(10);
/// Window for counting failures per source address.
pub const CLI_LOCKOUT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Lockout duration.
pub const CLI_LOCKOUT_DURATION: Duration = Duration::from_secs(5 * 60);
/// User and password of the vendor's only account, active when no user is configured.
pub const CLI_DEFAULT_ADMIN: (&str, &str) = ("admin", "admin");

/// Metrics and health port.
pub const METRICS_PORT: u16 = 9103;
/// Metrics and health listening address.
pub const METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, METRICS_PORT));

/// Log filter.
pub const LOG_LEVEL: &str = "info";
/// Log format.
pub const LOG_FORMAT: LogFormat = LogFormat::Text;

/// Withdraw hardware flows on SIGTERM.
pub const SHUTDOWN_FLUSH_ON_EXIT: bool = false;

/// Software cdx table capacity, pairs.
pub const SIM_CAPACITY: NonZeroU32 = non_zero(32_768);
/// The cdx ABI cmmd speaks: detected at start.
pub const CDX_ABI: CdxAbiSetting = CdxAbiSetting::Auto;
/// The cdx the software model is: NXP's.
pub const SIM_ABI: CdxAbi = CdxAbi::Lsdk;
/// What the software cdx leaves in fields cdx never writes: garbage, as a board does.
pub const SIM_UNWRITTEN: SimUnwritten = SimUnwritten::Garbage;
/// IPv6 activity of the software cdx: as its build.
pub const SIM_IPV6_ACTIVITY: SimIpv6Activity = SimIpv6Activity::Build;
/// HZ of the software cdx (the ASK kernels').
pub const SIM_HZ: NonZeroU32 = non_zero(1_000);
/// Largest accepted `sim.hz`.
pub const SIM_HZ_LIMIT: u32 = 100_000;
/// Time of one FMan insert or delete in the software cdx.
pub const SIM_HW_LATENCY: Duration = Duration::ZERO;
/// Longest accepted `sim.hw_latency`.
pub const SIM_HW_LATENCY_LIMIT: Duration = Duration::from_secs(10);

impl Default for Config {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            backend: BACKEND,
            ports: Vec::new(),
            offload: OffloadConfig::default(),
            timeouts: Timeouts::default(),
            keepalive: KeepaliveConfig::default(),
            netlink: NetlinkConfig::default(),
            cli: CliConfig::default(),
            metrics: MetricsConfig { listen: Some(METRICS_LISTEN) },
            log: LogConfig { level: LOG_LEVEL.to_owned(), format: LOG_FORMAT },
            shutdown: ShutdownConfig { flush_on_exit: SHUTDOWN_FLUSH_ON_EXIT },
            cdx: CdxConfig { abi: CDX_ABI },
            sim: SimConfig {
                capacity: SIM_CAPACITY,
                abi: SIM_ABI,
                unwritten: SIM_UNWRITTEN,
                interfaces: Vec::new(),
                ipv6_activity: SIM_IPV6_ACTIVITY,
                hz: SIM_HZ,
                hw_latency: SIM_HW_LATENCY,
            },
        }
    }
}

impl Default for OffloadConfig {
    fn default() -> Self {
        Self {
            protocols: OFFLOAD_PROTOCOLS.to_vec(),
            ipv4: OFFLOAD_IPV4,
            ipv6: OFFLOAD_IPV6,
            udp_policy: UDP_POLICY,
            vlan: VLAN_POLICY,
            exclude_helpers: EXCLUDE_HELPERS,
            fwmark_from_ctmark: FWMARK_FROM_CTMARK,
            fwmark_mask: FWMARK_MASK,
            wan_ports: Vec::new(),
            zones: Vec::new(),
            fastforward_file: None,
            exclude: exclude_rules(),
            fastforward: None,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp: TIMEOUT_TCP,
            udp: TIMEOUT_UDP,
            udp_unidirectional: TIMEOUT_UDP_UNIDIRECTIONAL,
            other: TIMEOUT_OTHER,
        }
    }
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        Self {
            mode: KEEPALIVE_MODE,
            interval: KEEPALIVE_INTERVAL,
            margin: KEEPALIVE_MARGIN,
            max_refresh_per_second: KEEPALIVE_MAX_REFRESH_PER_SECOND,
            permanent_bit: KEEPALIVE_PERMANENT_BIT,
            on_removed: KEEPALIVE_ON_REMOVED,
        }
    }
}

impl Default for NetlinkConfig {
    fn default() -> Self {
        Self {
            event_buffer: NETLINK_EVENT_BUFFER,
            rtnl_buffer: NETLINK_RTNL_BUFFER,
            reliable_destroy: NETLINK_RELIABLE_DESTROY,
            enable_events_sysctl: NETLINK_ENABLE_EVENTS_SYSCTL,
            sweep_interval: NETLINK_SWEEP_INTERVAL,
            resync_min_interval: NETLINK_RESYNC_MIN_INTERVAL,
            batch_interval: NETLINK_BATCH_INTERVAL,
            conntrack_dialect: NETLINK_CONNTRACK_DIALECT.to_owned(),
            route_mark_mask: NETLINK_ROUTE_MARK_MASK,
        }
    }
}

impl Default for CliConfig {
    fn default() -> Self {
        Self {
            listen: Some(CLI_LISTEN),
            max_sessions: CLI_MAX_SESSIONS,
            idle_timeout: CLI_IDLE_TIMEOUT,
            login_timeout: CLI_LOGIN_TIMEOUT,
            max_login_failures: CLI_MAX_LOGIN_FAILURES,
            lockout_failures: CLI_LOCKOUT_FAILURES,
            lockout_window: CLI_LOCKOUT_WINDOW,
            lockout_duration: CLI_LOCKOUT_DURATION,
            password_file: None,
            password_file_users: Vec::new(),
            enable_password_hash: None,
            users: Vec::new(),
        }
    }
}
