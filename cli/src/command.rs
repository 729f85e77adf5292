//! The command table: one list of [`CommandSpec`] entries drives parsing, `?` help, TAB
//! completion, the `help` listing and abbreviations.
//!
//! Contract:
//! - A spec is a path of literal words (`show connections`) plus parameters ([`Param`]) whose
//!   [`ValueKind`] says how a token is validated. The parser in `grammar` turns a line into
//!   [`Command`] through the spec's `build` function, so the daemon never sees a string.
//! - Adding a command is one table entry plus one [`Command`] variant; the table tests check that
//!   every entry is reachable, has help, and builds from valid input.
//! - Commands the session handles itself (`help`, `quit`, `enable`, …) are in the same table and
//!   build a session action instead of a [`Command`]; so do the vendor commands cmmd knows by
//!   name but does not implement ([`Origin::Vendor`] entries that build
//!   `Action::NotSupported`): the session answers them with one line.
//! - Every entry says where it comes from ([`Origin`]): the vendor's command table (libcli's
//!   built-ins and `cmm`'s registrations) or cmmd. Abbreviations of vendor words resolve as on
//!   the vendor, whatever cmmd adds (see `grammar`); vendor entries ignore extra words and
//!   answer a bad argument with the vendor's usage text ([`CommandSpec::usage`]).
//! - The crate knows nothing of conntrack or cdx: values are plain numbers, addresses and
//!   keywords; the daemon gives them meaning.

use std::fmt;
use std::net::IpAddr;

/// Who may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// Available at the `cmm>` prompt.
    Unprivileged,
    /// Needs `enable` first (prompt `cmm#`), unless the session is configured otherwise.
    Privileged,
}

/// How a parameter's token is validated and what value it yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// One of these words (case-insensitive, unique prefixes accepted).
    Keyword(&'static [&'static str]),
    /// `0` or `1`.
    Switch,
    /// An unsigned integer in `min..=max`, decimal or `0x` hexadecimal.
    Integer {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// An IP protocol: `tcp`, `udp`, `icmp`, `icmpv6` or a number 0..=255.
    Protocol,
    /// An IPv4 or IPv6 address.
    Address,
    /// A network interface name: 1 to 15 bytes, no blank, `/` or `:`.
    Interface,
}

/// Where a parameter stands and whether it must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Positional, must be given.
    Required(ValueKind),
    /// Positional, may be left out (only after the required ones).
    Optional(ValueKind),
    /// `<name> <value>` in any order after the positionals, at most once.
    Named(ValueKind),
    /// `<name>` alone in any order after the positionals, at most once.
    Flag,
    /// Every word after the command words, unparsed: for a vendor command whose handler reads
    /// its own arguments (and prints its own messages about them). A spec with `Words` has no
    /// other parameter.
    Words,
}

/// One parameter of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Placeholder name of a positional (`seconds`), or the keyword of a named option or flag.
    pub name: &'static str,
    /// One line of help for `?`.
    pub help: &'static str,
    /// Position, presence and value.
    pub shape: Shape,
}

/// Where a command comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The vendor CLI (libcli's built-ins and `cmm`'s command table).
    Vendor,
    /// cmmd's own.
    Cmmd,
}

/// One entry of the command table.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// The literal words, e.g. `["show", "connections"]`.
    pub words: &'static [&'static str],
    /// Parameters after the words.
    pub params: &'static [Param],
    /// One line of help for `?` and `help`.
    pub help: &'static str,
    /// Who may run it.
    pub privilege: Privilege,
    /// The vendor's or cmmd's.
    pub origin: Origin,
    /// The vendor's usage text (lines separated by `\n`), printed instead of cmmd's error when
    /// an argument is missing or invalid, and after the "not supported" line.
    pub usage: Option<&'static str>,
    /// Builds the action from validated arguments; `None` only if the table is inconsistent.
    pub(crate) build: fn(&Args) -> Option<Action>,
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("words", &self.words)
            .field("params", &self.params)
            .field("privilege", &self.privilege)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CommandSpec {
    /// True for the vendor's commands.
    pub fn is_vendor(&self) -> bool {
        self.origin == Origin::Vendor
    }

    /// The usage line, e.g. `set timeout tcp|udp|other <seconds> [<unidirectional>]`.
    pub fn usage(&self) -> String {
        let mut usage = self.words.join(" ");
        for param in self.params {
            usage.push(' ');
            match param.shape {
                Shape::Required(kind) => usage.push_str(&positional_label(param.name, kind)),
                Shape::Optional(kind) => {
                    usage.push('[');
                    usage.push_str(&positional_label(param.name, kind));
                    usage.push(']');
                }
                Shape::Named(kind) => {
                    usage.push('[');
                    usage.push_str(param.name);
                    usage.push(' ');
                    usage.push_str(&value_label(kind));
                    usage.push(']');
                }
                Shape::Flag => {
                    usage.push('[');
                    usage.push_str(param.name);
                    usage.push(']');
                }
                Shape::Words => {
                    usage.push('[');
                    usage.push_str(param.name);
                    usage.push_str("...]");
                }
            }
        }
        usage
    }
}

/// How a positional parameter is shown: its keywords, or `<name>`.
pub(crate) fn positional_label(name: &str, kind: ValueKind) -> String {
    match kind {
        ValueKind::Keyword(words) => words.join("|"),
        ValueKind::Switch => "0|1".to_owned(),
        _ => format!("<{name}>"),
    }
}

/// How the value of a named option is shown.
pub(crate) fn value_label(kind: ValueKind) -> String {
    match kind {
        ValueKind::Keyword(words) => words.join("|"),
        ValueKind::Switch => "0|1".to_owned(),
        ValueKind::Integer { min, max } => format!("<{min}-{max}>"),
        ValueKind::Protocol => "<protocol>".to_owned(),
        ValueKind::Address => "<address>".to_owned(),
        ValueKind::Interface => "<ifname>".to_owned(),
    }
}

/// A validated argument value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// The canonical keyword (as written in the table).
    Keyword(&'static str),
    /// `0` or `1`.
    Switch(bool),
    /// An integer within the kind's range.
    Integer(u64),
    /// An IP protocol number.
    Protocol(u8),
    /// An address.
    Address(IpAddr),
    /// An interface name.
    Interface(String),
    /// A flag that was given.
    Present,
    /// The words of a [`Shape::Words`] parameter, as typed.
    Words(Vec<String>),
}

/// The validated arguments of one command line, by parameter name.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    values: Vec<(&'static str, Value)>,
}

impl Args {
    pub(crate) fn new() -> Self {
        Self { values: Vec::new() }
    }

    pub(crate) fn set(&mut self, name: &'static str, value: Value) {
        self.values.push((name, value));
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(given, _)| *given == name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(given, _)| *given == name).map(|(_, value)| value)
    }

    pub(crate) fn keyword<T>(&self, name: &str, from: fn(&str) -> Option<T>) -> Option<T> {
        match self.get(name)? {
            Value::Keyword(word) => from(word),
            _ => None,
        }
    }

    pub(crate) fn switch(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Switch(on) => Some(*on),
            _ => None,
        }
    }

    pub(crate) fn integer<T: TryFrom<u64>>(&self, name: &str) -> Option<T> {
        match self.get(name)? {
            Value::Integer(value) => T::try_from(*value).ok(),
            _ => None,
        }
    }

    /// An optional argument: `Some(None)` when absent, `None` when present but not valid.
    pub(crate) fn optional<T>(
        &self,
        get: fn(&Self, &str) -> Option<T>,
        name: &str,
    ) -> Option<Option<T>> {
        if self.has(name) { get(self, name).map(Some) } else { Some(None) }
    }

    pub(crate) fn protocol(&self, name: &str) -> Option<u8> {
        match self.get(name)? {
            Value::Protocol(number) => Some(*number),
            _ => None,
        }
    }

    /// The words of a [`Shape::Words`] parameter (none when nothing was typed).
    pub(crate) fn words(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Value::Words(words)) => words.clone(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn address(&self, name: &str) -> Option<IpAddr> {
        match self.get(name)? {
            Value::Address(address) => Some(*address),
            _ => None,
        }
    }

    pub(crate) fn interface(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::Interface(ifname) => Some(ifname.clone()),
            _ => None,
        }
    }
}

/// What a parsed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Handled by the session itself.
    Builtin(Builtin),
    /// Handed to the daemon.
    Run(Command),
    /// A vendor command cmmd does not implement: the session answers with one line (and the
    /// vendor's usage text, if any).
    NotSupported,
}

/// Commands the session answers without the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Help,
    History,
    Quit,
    Enable,
    Disable,
}

/// Defines a keyword enum whose keyword list, parser and display come from one place.
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every keyword, as typed on the CLI.
            pub const KEYWORDS: &'static [&'static str] = &[$($word,)+];

            /// The keyword as typed on the CLI.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// The value of a canonical keyword.
            pub fn from_keyword(word: &str) -> Option<Self> {
                match word {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum! {
    /// Debug categories of `set debug` / `show debug_level` (vendor names).
    DebugCategory {
        /// Commands received.
        Command = "command",
        /// Errors.
        Error = "error",
        /// Warnings.
        Warning = "warning",
        /// Informational messages.
        Info = "info",
    }
}

keyword_enum! {
    /// Timeout classes of `set timeout` (vendor names).
    TimeoutClass {
        /// TCP connections.
        Tcp = "tcp",
        /// UDP connections.
        Udp = "udp",
        /// Every other protocol.
        Other = "other",
    }
}

/// A TCP state word of `show connections state …`: conntrack's state names in lower case.
/// The crate only carries the word; the daemon maps it to its typed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateWord(&'static str);

impl StateWord {
    /// Every state word, as typed on the CLI.
    pub const KEYWORDS: &'static [&'static str] = &[
        "syn_sent",
        "syn_recv",
        "established",
        "fin_wait",
        "close_wait",
        "last_ack",
        "time_wait",
        "close",
        "syn_sent2",
    ];

    /// The word as typed on the CLI (lower case), e.g. `established`.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The state word for a canonical keyword.
    pub fn from_keyword(word: &str) -> Option<Self> {
        Self::KEYWORDS.iter().find(|known| **known == word).map(|known| Self(known))
    }
}

impl fmt::Display for StateWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Filters of `show connections`. Fields that are set must all match; among the status flags
/// (`offloaded`, `pending`, `refused`, `local`) a connection matches if it has any flagged
/// status, or every status when no flag is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionFilter {
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// TCP state.
    pub state: Option<StateWord>,
    /// Address on either side of either direction.
    pub address: Option<IpAddr>,
    /// Port on either side of either direction.
    pub port: Option<u16>,
    /// Programmed into the fast path.
    pub offloaded: bool,
    /// Waiting for route or neighbour resolution.
    pub pending: bool,
    /// Refused by policy or capacity.
    pub refused: bool,
    /// Local (host-originated or host-terminated).
    pub local: bool,
}

/// The five-tuple of a flow (`sim activate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTuple {
    /// IP protocol number.
    pub protocol: u8,
    /// Source address of the originating direction.
    pub source: IpAddr,
    /// Destination address of the originating direction.
    pub destination: IpAddr,
    /// Source port of the originating direction.
    pub source_port: u16,
    /// Destination port of the originating direction.
    pub destination_port: u16,
}

/// Which flows `sim activate` marks as active in the software cdx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFlowMatch {
    /// Every flow.
    All,
    /// The flow whose originating tuple is this.
    Tuple(FlowTuple),
}

/// Faults `sim fault` injects into the software cdx. `count` is how many commands a fault
/// affects; `None` lets the daemon choose (one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFault {
    /// Answer with return code `rc`, for commands with code `fcode` (any command if `None`).
    ErrorCode {
        /// Return code to answer with.
        rc: u16,
        /// FPP command code to match.
        fcode: Option<u16>,
        /// How many commands.
        count: Option<u32>,
    },
    /// Swallow replies.
    DropReply {
        /// How many commands.
        count: Option<u32>,
    },
    /// Delay replies.
    Delay {
        /// The delay.
        milliseconds: u32,
        /// How many commands.
        count: Option<u32>,
    },
    /// Answer with a netlink error -EIO.
    Eio {
        /// How many commands.
        count: Option<u32>,
    },
    /// Set the hardware table capacity (conntrack pairs).
    Capacity {
        /// New capacity.
        pairs: u32,
    },
    /// Emit a REMOVED event for a flow cdx does not hold.
    SpuriousRemoved,
    /// Refuse every command with `EOPNOTSUPP`, as cdx booted with `offload_owner=flowtable`
    /// (until cleared).
    OffloadOwnerFlowtable,
    /// Remove every injected fault.
    Clear,
}

/// A command for the daemon, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `show connections [filters]`: the daemon's connection table, the vendor's lines.
    ShowConnections(ConnectionFilter),
    /// `show connections detail [filters]`: the same connections with what cmmd knows beyond
    /// the vendor (zone, id, offload state and reason, route ids).
    ShowConnectionsDetail(ConnectionFilter),
    /// `show counters`: per-reason counters.
    ShowCounters,
    /// `show activate`: the offload switch (`1` or `0`).
    ShowActivate,
    /// `set activate 0|1`.
    SetActivate(bool),
    /// `show debug_level`.
    ShowDebugLevel,
    /// `set debug <category> 0|1`.
    SetDebug {
        /// The category.
        category: DebugCategory,
        /// Print it or not.
        enabled: bool,
    },
    /// `show rules`: exclusion rules.
    ShowRules,
    /// `show route`: the route cache.
    ShowRoute,
    /// `show route detail`: the route cache with pending and failed lookups, MTU and type.
    ShowRouteDetail,
    /// `show neighbor`: the neighbour cache.
    ShowNeighbor,
    /// `show fpp_route`: route objects registered in the fast path.
    ShowFppRoute,
    /// `show fpp_route detail`: the route objects with input port and state.
    ShowFppRouteDetail,
    /// `show stat …`: the words after `show stat`, read as the vendor's handler reads them.
    ShowStat(Vec<String>),
    /// `set ff …`: the words after `set ff` (`enable` or `disable`).
    SetFastForward(Vec<String>),
    /// `show config`: the effective configuration.
    ShowConfig,
    /// `show version`.
    ShowVersion,
    /// `show status`: health and readiness summary.
    ShowStatus,
    /// `query connections`: walk the fast path's IPv4 conntrack table.
    QueryConnections,
    /// `query v6connections`: walk the fast path's IPv6 conntrack table.
    QueryV6Connections,
    /// `query route`: walk the fast path's route table.
    QueryRoute,
    /// `show vlan` (and `vlan show`): the VLAN interfaces and whether cdx holds them.
    ShowVlan,
    /// `show pppoe`: the PPP interfaces, their PPPoE sessions and whether cdx holds them.
    ShowPppoe,
    /// `query vlan`: walk the fast path's VLAN table.
    QueryVlan,
    /// `query pppoe`: walk the fast path's PPPoE table.
    QueryPppoe,
    /// `vlan add <ifname>`: register this VLAN interface with the fast path (the `manual`
    /// VLAN policy).
    VlanAdd(String),
    /// `vlan delete <ifname>`: no longer register it.
    VlanDelete(String),
    /// `set timeout …`: the words after `set timeout` (`udp|tcp|other <seconds> [<seconds>]
    /// [4rd]`), read as the vendor's handler reads them.
    SetTimeout(Vec<String>),
    /// `stop`: terminate the daemon.
    Stop,
    /// `show sim`: the software cdx's tables and statistics.
    ShowSim,
    /// `sim fault …`.
    SimFault(SimFault),
    /// `sim activate …`: mark flows as active in the software cdx.
    SimActivate(SimFlowMatch),
}

pub(crate) use crate::table::word_help;
pub use crate::table::{COMMANDS, GROUPS};
