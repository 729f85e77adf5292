//! The validated, typed configuration.
//!
//! Contract: a `Config` value is always valid. It is only built from [`Config::default`] (every
//! default lives in `defaults.rs`) and then changed key by key through the validators of `keys.rs`, so
//! every field already holds a checked type (`SocketAddr`, `Duration`, `NonZeroU32`, enums) and the
//! daemon never re-validates. The structure mirrors the TOML file one table per struct.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::fastforward::Fastforward;
use crate::rules::ExcludeRule;
use crate::users::User;

/// An enum whose variants are written as fixed words in the configuration.
pub(crate) trait Named: Sized + Copy + PartialEq + 'static {
    /// Every variant with its word, in the order they are listed in error messages.
    const ALL: &'static [(&'static str, Self)];

    /// The word of this variant.
    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, variant)| *variant == self).map_or("", |(name, _)| name)
    }

    /// The variant a word names.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(word, _)| *word == name).map(|(_, variant)| *variant)
    }
}

/// Declares a fieldless enum together with its configuration words.
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl Named for $name {
            const ALL: &'static [(&'static str, Self)] = &[$(($word, Self::$variant),)+];
        }

        impl $name {
            /// The word that selects this variant in the configuration.
            pub fn as_str(self) -> &'static str {
                Named::name(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

named_enum! {
    /// Where hardware commands go.
    pub enum Backend {
        /// The `cdx` kernel module (FCI, netlink protocol 30).
        Cdx = "cdx",
        /// The software model of cdx in `cdx-sys` (tests, development, nodes without the module).
        Sim = "sim",
    }
}

named_enum! {
    /// Which cdx ABI commands are encoded in (`cdx.abi`): detected at start, or fixed. The
    /// words are those `cdx-sys`'s `AbiSetting` parses.
    pub enum CdxAbiSetting {
        /// Ask cdx at start (a command that changes nothing) and use what it answers.
        Auto = "auto",
        /// NXP's cdx (LSDK): 32-bit `fwmark`.
        Lsdk = "lsdk",
        /// The maintained ASK port: 64-bit `qosconnmark`.
        Ask = "ask",
    }
}

named_enum! {
    /// A cdx ABI (`sim.abi`: the cdx the software model is).
    pub enum CdxAbi {
        /// NXP's cdx (LSDK).
        Lsdk = "lsdk",
        /// The maintained ASK port.
        Ask = "ask",
    }
}

named_enum! {
    /// What the software cdx puts in the reply fields cdx never writes (`sim.unwritten`).
    pub enum SimUnwritten {
        /// Random bytes without a NUL, as a board's recycled memory holds.
        Garbage = "garbage",
        /// Zeros (kinder than a board).
        Zeros = "zeros",
    }
}

named_enum! {
    /// How the software cdx's IPv6 `GET_TIMEOUT` sees activity (`sim.ipv6_activity`).
    pub enum SimIpv6Activity {
        /// As the modelled build does (NXP: only when the aging timer runs; ASK: refreshed).
        Build = "build",
        /// Refreshed only by the aging timer (NXP's cdx).
        AgingTimer = "aging-timer",
        /// Refreshed by every query (the ASK port).
        Refreshed = "refreshed",
    }
}

named_enum! {
    /// When a UDP flow is offloaded.
    pub enum UdpPolicy {
        /// Both directions once conntrack marks the flow ASSURED.
        Assured = "assured",
        /// Vendor behaviour: also the originator direction of a confirmed flow that has seen no reply.
        Confirmed = "confirmed",
    }
}

named_enum! {
    /// Which VLAN interfaces are registered with cdx (the vendor's `config vlan` /
    /// `option policy`).
    pub enum VlanPolicy {
        /// Every VLAN interface on a fast-path port, when it comes up.
        Allow = "allow",
        /// None: flows through VLAN interfaces stay in the kernel (`not_fastpath_port`).
        Prohibit = "prohibit",
        /// Only those the operator adds with the CLI's `vlan add <ifname>`.
        Manual = "manual",
    }
}

named_enum! {
    /// How offloaded flows are kept alive in the kernel conntrack table.
    pub enum KeepaliveMode {
        /// Refresh `CTA_TIMEOUT` from the hardware's view of activity (stock kernels).
        Refresh = "refresh",
        /// Set the ASK kernel's `IPS_PERMANENT` status bit (ASK-patched kernels only).
        Permanent = "permanent",
        /// Do nothing: the kernel times offloaded flows out by itself.
        Off = "off",
    }
}

named_enum! {
    /// What to do with the kernel conntrack when cdx ages a flow out (`REMOVED` event).
    pub enum OnRemoved {
        /// Delete the kernel conntrack.
        Delete = "delete",
        /// Leave it to expire by its own timeout.
        Expire = "expire",
    }
}

named_enum! {
    /// Log line format on stdout.
    pub enum LogFormat {
        /// Human-readable lines.
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
}

named_enum! {
    /// A layer-4 protocol cdx has hardware tables for.
    pub enum L4Protocol {
        /// TCP (protocol number 6).
        Tcp = "tcp",
        /// UDP (protocol number 17).
        Udp = "udp",
    }
}

/// A network interface name as the kernel accepts it (`dev_valid_name`): 1 to 15 bytes, not `.` or
/// `..`, without `/`, `:` or whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceName(String);

impl InterfaceName {
    /// Longest name the kernel accepts (`IFNAMSIZ - 1`).
    pub const MAX_LEN: usize = 15;

    /// Checks a name; the error is the rule it broke.
    pub fn new(name: &str) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name != "."
            && name != ".."
            && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "expected an interface name of 1..={} bytes without '/', ':' or whitespace",
                Self::MAX_LEN
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The whole configuration of cmmd.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Upper bound of tracked connections (`CMM_MAX_CONNECTIONS`); a new one is refused when full.
    pub max_connections: NonZeroU32,
    /// Where hardware commands go (`CMM_BACKEND`).
    pub backend: Backend,
    /// Fast-path interfaces (`CMM_PORTS`); empty means nothing is offloaded.
    pub ports: Vec<InterfaceName>,
    /// `[offload]`: which connections are offloaded.
    pub offload: OffloadConfig,
    /// `[timeouts]`: cdx aging, in seconds.
    pub timeouts: Timeouts,
    /// `[keepalive]`: keeping kernel conntracks of offloaded flows alive.
    pub keepalive: KeepaliveConfig,
    /// `[netlink]`: the ctnetlink event socket and resync.
    pub netlink: NetlinkConfig,
    /// `[cli]`: the telnet CLI.
    pub cli: CliConfig,
    /// `[metrics]`: Prometheus metrics and health endpoints.
    pub metrics: MetricsConfig,
    /// `[log]`: log filter and format.
    pub log: LogConfig,
    /// `[shutdown]`: what SIGTERM does to the hardware table.
    pub shutdown: ShutdownConfig,
    /// `[cdx]`: how cmmd speaks to cdx.
    pub cdx: CdxConfig,
    /// `[sim]`: the software model of cdx.
    pub sim: SimConfig,
}

/// The `[offload]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct OffloadConfig {
    /// Layer-4 protocols offloaded (no duplicates).
    pub protocols: Vec<L4Protocol>,
    /// Offload IPv4 connections.
    pub ipv4: bool,
    /// Offload IPv6 connections.
    pub ipv6: bool,
    /// When a UDP flow qualifies.
    pub udp_policy: UdpPolicy,
    /// Which VLAN interfaces are registered with cdx.
    pub vlan: VlanPolicy,
    /// Exclude conntracks with a helper or sequence adjustment.
    pub exclude_helpers: bool,
    /// Pass the conntrack mark to cdx as its QoS `fwmark`.
    pub fwmark_from_ctmark: bool,
    /// Mask applied to the mark when `fwmark_from_ctmark` is on.
    pub fwmark_mask: u32,
    /// WAN ports, for the vendor's QoS-mark halves rule (LSDK): the halves are swapped when the
    /// originator comes in through one of these and does not leave through one. Empty: never.
    pub wan_ports: Vec<InterfaceName>,
    /// Zones offloaded; empty means every zone.
    pub zones: Vec<u16>,
    /// Path of a vendor `fastforward` file whose deny rules are added (`CMM_FASTFORWARD_FILE`).
    pub fastforward_file: Option<PathBuf>,
    /// Deny rules of the TOML file (the vendor's three ALG rules when the key is absent).
    pub exclude: Vec<ExcludeRule>,
    /// The parsed `fastforward_file`, when one is configured.
    pub fastforward: Option<Fastforward>,
}

impl OffloadConfig {
    /// Every deny rule the daemon evaluates: the TOML rules, then those of the fastforward file.
    pub fn deny_rules(&self) -> impl Iterator<Item = &ExcludeRule> {
        self.exclude.iter().chain(self.fastforward.iter().flat_map(|file| file.rules.iter()))
    }

    /// Whether connections of this layer-4 protocol may be offloaded.
    pub fn offloads(&self, protocol: L4Protocol) -> bool {
        self.protocols.contains(&protocol)
    }
}

/// The `[timeouts]` table: cdx aging in seconds (FPP `SET_TIMEOUT`), each in
/// `1..=`[`crate::defaults::TIMEOUT_LIMIT`] (what cdx's signed 32-bit timer holds at HZ 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP flows.
    pub tcp: NonZeroU32,
    /// UDP flows with both directions offloaded.
    pub udp: NonZeroU32,
    /// UDP flows with one direction offloaded.
    pub udp_unidirectional: NonZeroU32,
    /// Every other protocol.
    pub other: NonZeroU32,
}

/// The `[keepalive]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// How kernel conntracks of offloaded flows are kept alive.
    pub mode: KeepaliveMode,
    /// How often hardware activity is polled per flow.
    pub interval: Duration,
    /// Upper bound of a refreshed kernel timeout, counted from the hardware's last activity
    /// (`None`, written `"0s"`: the kernel's own timeout for the connection's state). Either way a
    /// refresh never sets more than the kernel itself would after a packet, so a dead daemon
    /// cannot make entries immortal; the margin only shortens that.
    pub margin: Option<Duration>,
    /// Rate limit of timeout refreshes sent to the kernel.
    pub max_refresh_per_second: NonZeroU32,
    /// Status bit number of `IPS_PERMANENT` on the ASK kernel; `None` (`"auto"`): the bit of
    /// the conntrack dialect the kernel speaks (`netlink.conntrack_dialect`).
    pub permanent_bit: Option<u8>,
    /// What happens to the kernel conntrack when cdx ages a flow out.
    pub on_removed: OnRemoved,
}

/// The `[netlink]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetlinkConfig {
    /// `SO_RCVBUFFORCE` bytes on the event socket.
    pub event_buffer: u32,
    /// `SO_RCVBUFFORCE` bytes on the rtnetlink event socket (an overrun there re-dumps the
    /// routing view).
    pub rtnl_buffer: u32,
    /// Set `NETLINK_BROADCAST_ERROR` on the event socket.
    pub reliable_destroy: bool,
    /// Write `net.netfilter.nf_conntrack_events=1` in our network namespace at start.
    pub enable_events_sysctl: bool,
    /// Period of the dump-and-sweep that verifies the table; `None` is off.
    pub sweep_interval: Option<Duration>,
    /// Minimum time between two resyncs after overruns.
    pub resync_min_interval: Duration,
    /// Under sustained churn, how long the loop leaves the event socket aside after draining
    /// it, so that the next read takes what arrived meanwhile at once; `None` reads at every
    /// arrival.
    pub batch_interval: Option<Duration>,
    /// The kernel's conntrack dialect: `"auto"` (recognised from the messages), `"stock"`,
    /// `"ask-5.4"`, `"ask-6.12"` or explicit attribute numbers. Its grammar is the `conntrack`
    /// crate's; the daemon checks it at start ([`crate::Loaded::check_text`]).
    pub conntrack_dialect: String,
    /// The conntrack mark bits that route lookups carry as the packet's mark where the kernel
    /// does not report the packet's own mark (stock kernels); 0 looks routes up without a mark.
    pub route_mark_mask: u32,
}

/// The `[cli]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliConfig {
    /// Listening address; `None` disables the CLI.
    pub listen: Option<SocketAddr>,
    /// Concurrent sessions.
    pub max_sessions: NonZeroU32,
    /// An idle session is closed after this long.
    pub idle_timeout: Duration,
    /// Time allowed between connect and successful login.
    pub login_timeout: Duration,
    /// Failed logins in one session before it is disconnected.
    pub max_login_failures: NonZeroU32,
    /// Failed logins from one source address within `lockout_window` that lock it out.
    pub lockout_failures: NonZeroU32,
    /// Window over which failures per source address are counted.
    pub lockout_window: Duration,
    /// How long a locked-out address stays locked.
    pub lockout_duration: Duration,
    /// File of `user:$argon2id$...` lines (a mounted Secret; `CMM_CLI_PASSWORD_FILE`).
    pub password_file: Option<PathBuf>,
    /// Users read from `password_file` (empty when none is configured).
    pub password_file_users: Vec<User>,
    /// Argon2id PHC string for `enable`; `None` means `enable` needs no password (vendor behaviour).
    pub enable_password_hash: Option<String>,
    /// Users of the TOML file.
    pub users: Vec<User>,
}

impl CliConfig {
    /// True when no user is configured at all, so the CLI falls back to the vendor's `admin`/`admin`
    /// (the daemon warns at start-up).
    pub fn uses_default_admin(&self) -> bool {
        self.users.is_empty() && self.password_file.is_none()
    }

    /// Every configured user: those of the TOML file, then those of the password file.
    pub fn all_users(&self) -> impl Iterator<Item = &User> {
        self.users.iter().chain(&self.password_file_users)
    }
}

/// The `[metrics]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Listening address of `/metrics`, `/healthz`, `/readyz`; `None` disables them.
    pub listen: Option<SocketAddr>,
}

/// The `[log]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` `EnvFilter` directive string, e.g. `info,cmmd::engine=debug`.
    pub level: String,
    /// Line format.
    pub format: LogFormat,
}

/// The `[shutdown]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// Withdraw every hardware flow on SIGTERM (default: leave them, so a rolling update keeps
    /// forwarding in hardware).
    pub flush_on_exit: bool,
}

/// The `[cdx]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdxConfig {
    /// The ABI commands are encoded in: detected at start (`auto`) or fixed.
    pub abi: CdxAbiSetting,
}

/// The `[sim]` table: the software cdx (`backend = "sim"`, `cmmd sim serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Hardware table capacity of the software cdx, in conntrack pairs.
    pub capacity: NonZeroU32,
    /// The cdx it models: its payload layouts and, where the builds differ, its behaviour.
    pub abi: CdxAbi,
    /// What the reply fields cdx never writes hold in walks and events.
    pub unwritten: SimUnwritten,
    /// The FMan ports dpa_app configured: the interfaces it knows. Empty: the names of `ports`.
    pub interfaces: Vec<InterfaceName>,
    /// How its IPv6 `GET_TIMEOUT` sees activity.
    pub ipv6_activity: SimIpv6Activity,
    /// The kernel's HZ it counts in.
    pub hz: NonZeroU32,
    /// Time each hardware insert or delete takes (an FMan host command).
    pub hw_latency: Duration,
}
