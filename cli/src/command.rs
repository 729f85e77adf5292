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
//!   build a session action instead of a [`Command`].
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
    /// Builds the action from validated arguments; `None` only if the table is inconsistent.
    pub(crate) build: fn(&Args) -> Option<Action>,
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("words", &self.words)
            .field("params", &self.params)
            .field("privilege", &self.privilege)
            .finish_non_exhaustive()
    }
}

impl CommandSpec {
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
    /// A flag that was given.
    Present,
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

    fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(given, _)| *given == name).map(|(_, value)| value)
    }

    fn keyword<T>(&self, name: &str, from: fn(&str) -> Option<T>) -> Option<T> {
        match self.get(name)? {
            Value::Keyword(word) => from(word),
            _ => None,
        }
    }

    fn switch(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Switch(on) => Some(*on),
            _ => None,
        }
    }

    fn integer<T: TryFrom<u64>>(&self, name: &str) -> Option<T> {
        match self.get(name)? {
            Value::Integer(value) => T::try_from(*value).ok(),
            _ => None,
        }
    }

    /// An optional argument: `Some(None)` when absent, `None` when present but not valid.
    fn optional<T>(&self, get: fn(&Self, &str) -> Option<T>, name: &str) -> Option<Option<T>> {
        if self.has(name) { get(self, name).map(Some) } else { Some(None) }
    }

    fn protocol(&self, name: &str) -> Option<u8> {
        match self.get(name)? {
            Value::Protocol(number) => Some(*number),
            _ => None,
        }
    }

    fn address(&self, name: &str) -> Option<IpAddr> {
        match self.get(name)? {
            Value::Address(address) => Some(*address),
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

keyword_enum! {
    /// TCP states accepted by `show connections state` (conntrack's names, lower case).
    TcpState {
        /// SYN_SENT.
        SynSent = "syn_sent",
        /// SYN_RECV.
        SynRecv = "syn_recv",
        /// ESTABLISHED.
        Established = "established",
        /// FIN_WAIT.
        FinWait = "fin_wait",
        /// CLOSE_WAIT.
        CloseWait = "close_wait",
        /// LAST_ACK.
        LastAck = "last_ack",
        /// TIME_WAIT.
        TimeWait = "time_wait",
        /// CLOSE.
        Close = "close",
        /// SYN_SENT2 (simultaneous open).
        SynSent2 = "syn_sent2",
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
    pub state: Option<TcpState>,
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
    /// Remove every injected fault.
    Clear,
}

/// A command for the daemon, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `show connections [filters]`: the daemon's connection table.
    ShowConnections(ConnectionFilter),
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
    /// `show neighbor`: the neighbour cache.
    ShowNeighbor,
    /// `show fpp_route`: route objects registered in the fast path.
    ShowFppRoute,
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
    /// `set timeout tcp|udp|other <seconds> [<unidirectional>]`.
    SetTimeout {
        /// Which class.
        class: TimeoutClass,
        /// Timeout (both directions seen), seconds.
        seconds: u32,
        /// Timeout with only one direction seen (UDP), seconds; 0 or absent: same as `seconds`.
        unidirectional: Option<u32>,
    },
    /// `stop`: terminate the daemon.
    Stop,
    /// `show sim`: the software cdx's tables and statistics.
    ShowSim,
    /// `sim fault …`.
    SimFault(SimFault),
    /// `sim activate …`: mark flows as active in the software cdx.
    SimActivate(SimFlowMatch),
}

/// A required positional parameter.
const fn required(name: &'static str, help: &'static str, kind: ValueKind) -> Param {
    Param { name, help, shape: Shape::Required(kind) }
}

/// An optional positional parameter.
const fn optional(name: &'static str, help: &'static str, kind: ValueKind) -> Param {
    Param { name, help, shape: Shape::Optional(kind) }
}

/// A named option `<name> <value>`.
const fn named(name: &'static str, help: &'static str, kind: ValueKind) -> Param {
    Param { name, help, shape: Shape::Named(kind) }
}

/// A flag `<name>`.
const fn flag(name: &'static str, help: &'static str) -> Param {
    Param { name, help, shape: Shape::Flag }
}

/// A table entry.
const fn spec(
    words: &'static [&'static str],
    params: &'static [Param],
    help: &'static str,
    privilege: Privilege,
    build: fn(&Args) -> Option<Action>,
) -> CommandSpec {
    CommandSpec { words, params, help, privilege, build }
}

/// A table entry for a command without parameters.
const fn simple(
    words: &'static [&'static str],
    help: &'static str,
    privilege: Privilege,
    build: fn(&Args) -> Option<Action>,
) -> CommandSpec {
    spec(words, &[], help, privilege, build)
}

const fn run(command: Command) -> Option<Action> {
    Some(Action::Run(command))
}

const fn builtin(builtin: Builtin) -> Option<Action> {
    Some(Action::Builtin(builtin))
}

const SECONDS: ValueKind = ValueKind::Integer { min: 1, max: 4_294_967_294 };
const SECONDS_OR_ZERO: ValueKind = ValueKind::Integer { min: 0, max: 4_294_967_294 };
const U16: ValueKind = ValueKind::Integer { min: 0, max: u16::MAX as u64 };
const U32: ValueKind = ValueKind::Integer { min: 0, max: u32::MAX as u64 };
const POSITIVE_U32: ValueKind = ValueKind::Integer { min: 1, max: u32::MAX as u64 };

const COUNT: Param =
    named("count", "How many commands the fault affects (default 1)", POSITIVE_U32);

const FLOW_TUPLE: &[Param] = &[
    required("protocol", "IP protocol of the flow", ValueKind::Protocol),
    required("saddr", "Source address (originating direction)", ValueKind::Address),
    required("daddr", "Destination address (originating direction)", ValueKind::Address),
    required("sport", "Source port (originating direction)", U16),
    required("dport", "Destination port (originating direction)", U16),
];

const CONNECTION_FILTERS: &[Param] = &[
    named("proto", "Only this IP protocol", ValueKind::Protocol),
    named("state", "Only this TCP state", ValueKind::Keyword(TcpState::KEYWORDS)),
    named("addr", "Only connections with this address", ValueKind::Address),
    named("port", "Only connections with this port", U16),
    flag("offloaded", "Connections programmed into the fast path"),
    flag("pending", "Connections waiting for route or neighbour"),
    flag("refused", "Connections refused by policy or capacity"),
    flag("local", "Connections of the host itself"),
];

use Privilege::{Privileged, Unprivileged};

/// Help for words that only lead to other words (`show`, `set`, …).
pub const GROUPS: &[(&[&str], &str)] = &[
    (&["show"], "Show information"),
    (&["set"], "Change a setting"),
    (&["query"], "Walk a table of the fast path (cdx)"),
    (&["sim"], "Drive the software cdx model (sim backend only)"),
    (&["sim", "fault"], "Inject a fault into the software cdx model"),
    (&["sim", "activate"], "Mark flows active in the software cdx model"),
];

/// Every command, in the order `help` lists them.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec(&["show", "connections"], CONNECTION_FILTERS, "Show tracked connections", Unprivileged, |args| {
        run(Command::ShowConnections(ConnectionFilter {
            protocol: args.optional(Args::protocol, "proto")?,
            state: args.optional(|args, name| args.keyword(name, TcpState::from_keyword), "state")?,
            address: args.optional(Args::address, "addr")?,
            port: args.optional(Args::integer, "port")?,
            offloaded: args.has("offloaded"),
            pending: args.has("pending"),
            refused: args.has("refused"),
            local: args.has("local"),
        }))
    }),
    simple(&["show", "counters"], "Show counters by reason", Unprivileged, |_| run(Command::ShowCounters)),
    simple(&["show", "activate"], "Show whether offload is active (1 or 0)", Unprivileged, |_| run(Command::ShowActivate)),
    simple(&["show", "debug_level"], "Show which debug categories are printed", Unprivileged, |_| run(Command::ShowDebugLevel)),
    simple(&["show", "rules"], "Show the fast-forward exclusion rules", Unprivileged, |_| run(Command::ShowRules)),
    simple(&["show", "route"], "Show the route cache", Unprivileged, |_| run(Command::ShowRoute)),
    simple(&["show", "neighbor"], "Show the neighbour cache", Unprivileged, |_| run(Command::ShowNeighbor)),
    simple(&["show", "fpp_route"], "Show the route objects registered in the fast path", Unprivileged, |_| run(Command::ShowFppRoute)),
    simple(&["show", "config"], "Show the effective configuration", Unprivileged, |_| run(Command::ShowConfig)),
    simple(&["show", "version"], "Show the version", Unprivileged, |_| run(Command::ShowVersion)),
    simple(&["show", "status"], "Show health and readiness", Unprivileged, |_| run(Command::ShowStatus)),
    simple(&["show", "sim"], "Show the software cdx model's tables", Unprivileged, |_| run(Command::ShowSim)),
    simple(&["query", "connections"], "Walk the fast path's IPv4 connections", Unprivileged, |_| run(Command::QueryConnections)),
    simple(&["query", "v6connections"], "Walk the fast path's IPv6 connections", Unprivileged, |_| run(Command::QueryV6Connections)),
    simple(&["query", "route"], "Walk the fast path's routes", Unprivileged, |_| run(Command::QueryRoute)),
    spec(&["set", "activate"], &[required("active", "1 enables offload, 0 disables it", ValueKind::Switch)],
        "Enable or disable offload", Privileged, |args| run(Command::SetActivate(args.switch("active")?))),
    spec(&["set", "debug"],
        &[
            required("category", "Debug category", ValueKind::Keyword(DebugCategory::KEYWORDS)),
            required("enabled", "1 prints the category, 0 does not", ValueKind::Switch),
        ],
        "Choose which debug categories are printed", Privileged, |args| {
            run(Command::SetDebug {
                category: args.keyword("category", DebugCategory::from_keyword)?,
                enabled: args.switch("enabled")?,
            })
        }),
    spec(&["set", "timeout"],
        &[
            required("class", "Protocol class", ValueKind::Keyword(TimeoutClass::KEYWORDS)),
            required("seconds", "Timeout in seconds", SECONDS),
            optional("unidirectional", "UDP timeout with one direction seen (0: same)", SECONDS_OR_ZERO),
        ],
        "Set the fast path's aging timeout", Privileged, |args| {
            run(Command::SetTimeout {
                class: args.keyword("class", TimeoutClass::from_keyword)?,
                seconds: args.integer("seconds")?,
                unidirectional: args.optional(Args::integer, "unidirectional")?,
            })
        }),
    simple(&["stop"], "Stop the daemon", Privileged, |_| run(Command::Stop)),
    simple(&["sim", "activate", "all"], "Mark every flow active in the software cdx", Privileged,
        |_| run(Command::SimActivate(SimFlowMatch::All))),
    spec(&["sim", "activate"], FLOW_TUPLE, "Mark one flow active in the software cdx", Privileged, |args| {
        run(Command::SimActivate(SimFlowMatch::Tuple(FlowTuple {
            protocol: args.protocol("protocol")?,
            source: args.address("saddr")?,
            destination: args.address("daddr")?,
            source_port: args.integer("sport")?,
            destination_port: args.integer("dport")?,
        })))
    }),
    spec(&["sim", "fault", "error"],
        &[
            required("rc", "Return code to answer with", U16),
            named("fcode", "Only commands with this FPP code", U16),
            COUNT,
        ],
        "Answer commands with an error code", Privileged, |args| {
            run(Command::SimFault(SimFault::ErrorCode {
                rc: args.integer("rc")?,
                fcode: args.optional(Args::integer, "fcode")?,
                count: args.optional(Args::integer, "count")?,
            }))
        }),
    spec(&["sim", "fault", "drop"], &[COUNT], "Swallow replies", Privileged,
        |args| run(Command::SimFault(SimFault::DropReply { count: args.optional(Args::integer, "count")? }))),
    spec(&["sim", "fault", "delay"], &[required("milliseconds", "Delay of each reply", U32), COUNT],
        "Delay replies", Privileged, |args| {
            run(Command::SimFault(SimFault::Delay {
                milliseconds: args.integer("milliseconds")?,
                count: args.optional(Args::integer, "count")?,
            }))
        }),
    spec(&["sim", "fault", "eio"], &[COUNT], "Answer commands with a netlink error -EIO", Privileged,
        |args| run(Command::SimFault(SimFault::Eio { count: args.optional(Args::integer, "count")? }))),
    spec(&["sim", "fault", "capacity"], &[required("pairs", "Hardware conntrack pairs", U32)],
        "Set the hardware table capacity", Privileged,
        |args| run(Command::SimFault(SimFault::Capacity { pairs: args.integer("pairs")? }))),
    simple(&["sim", "fault", "removed"], "Emit a REMOVED event for an unknown flow", Privileged,
        |_| run(Command::SimFault(SimFault::SpuriousRemoved))),
    simple(&["sim", "fault", "clear"], "Remove every injected fault", Privileged, |_| run(Command::SimFault(SimFault::Clear))),
    simple(&["enable"], "Enter privileged mode", Unprivileged, |_| builtin(Builtin::Enable)),
    simple(&["disable"], "Leave privileged mode", Privileged, |_| builtin(Builtin::Disable)),
    simple(&["history"], "Show the commands of this session", Unprivileged, |_| builtin(Builtin::History)),
    simple(&["help"], "List the commands", Unprivileged, |_| builtin(Builtin::Help)),
    simple(&["quit"], "Close the session", Unprivileged, |_| builtin(Builtin::Quit)),
    simple(&["exit"], "Close the session", Unprivileged, |_| builtin(Builtin::Quit)),
    simple(&["logout"], "Close the session", Unprivileged, |_| builtin(Builtin::Quit)),
];

/// Help for a word path: the group's, else that of the spec that ends there.
pub(crate) fn word_help(path: &[&str]) -> &'static str {
    GROUPS
        .iter()
        .find(|(words, _)| *words == path)
        .map(|(_, help)| *help)
        .or_else(|| COMMANDS.iter().find(|spec| spec.words == path).map(|spec| spec.help))
        .unwrap_or("")
}
