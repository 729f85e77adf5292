//! The command table: every command cmmd knows, in the order `?` and `help` list them.
//!
//! Contract:
//! - The vendor's commands come first, in the vendor's order: libcli's built-ins (`help`,
//!   `quit`, `logout`, `exit`, `history`, `enable`, `disable`, `configure terminal`), then the
//!   registrations of `cmm`'s `cmmCliInit` (the union of NXP's tree and the ASK tree the boards
//!   run), each with the vendor's help text and privilege. cmmd's own commands follow the
//!   vendor's in each group.
//! - A vendor command cmmd does not implement builds `Action::NotSupported`; implementing one
//!   later is a change of its entry's `build` (to `run(Command::…)`) plus a [`Command`] variant.
//! - [`GROUPS`] gives the help of words that only lead to other words.

use crate::command::{
    Action, Args, Builtin, Command, CommandSpec, ConnectionFilter, DebugCategory, FlowTuple,
    Origin, Param, Privilege, Shape, SimFault, SimFlowMatch, StateWord, ValueKind,
};

/// A required positional parameter.
const fn required(name: &'static str, help: &'static str, kind: ValueKind) -> Param {
    Param { name, help, shape: Shape::Required(kind) }
}

/// A named option `<name> <value>`.
const fn named(name: &'static str, help: &'static str, kind: ValueKind) -> Param {
    Param { name, help, shape: Shape::Named(kind) }
}

/// A flag `<name>`.
const fn flag(name: &'static str, help: &'static str) -> Param {
    Param { name, help, shape: Shape::Flag }
}

/// The words after a vendor command, for a handler that reads them as the vendor's does.
const fn words(name: &'static str, help: &'static str) -> Param {
    Param { name, help, shape: Shape::Words }
}

/// A cmmd table entry.
const fn spec(
    words: &'static [&'static str],
    params: &'static [Param],
    help: &'static str,
    privilege: Privilege,
    build: fn(&Args) -> Option<Action>,
) -> CommandSpec {
    CommandSpec { words, params, help, privilege, origin: Origin::Cmmd, usage: None, build }
}

/// A cmmd table entry without parameters.
const fn simple(
    words: &'static [&'static str],
    help: &'static str,
    privilege: Privilege,
    build: fn(&Args) -> Option<Action>,
) -> CommandSpec {
    spec(words, &[], help, privilege, build)
}

/// A vendor entry cmmd implements.
const fn vendor(
    words: &'static [&'static str],
    params: &'static [Param],
    help: &'static str,
    privilege: Privilege,
    usage: Option<&'static str>,
    build: fn(&Args) -> Option<Action>,
) -> CommandSpec {
    CommandSpec { words, params, help, privilege, origin: Origin::Vendor, usage, build }
}

/// A vendor entry cmmd knows by name only: it answers "not supported".
const fn unsupported(
    words: &'static [&'static str],
    help: &'static str,
    privilege: Privilege,
) -> CommandSpec {
    vendor(words, &[], help, privilege, None, |_| Some(Action::NotSupported))
}

/// [`unsupported`] with the vendor's usage text.
const fn unsupported_with(
    words: &'static [&'static str],
    help: &'static str,
    privilege: Privilege,
    usage: &'static str,
) -> CommandSpec {
    vendor(words, &[], help, privilege, Some(usage), |_| Some(Action::NotSupported))
}

const fn run(command: Command) -> Option<Action> {
    Some(Action::Run(command))
}

const fn builtin(builtin: Builtin) -> Option<Action> {
    Some(Action::Builtin(builtin))
}

/// The filters of `show connections` and `show connections detail`.
fn connection_filter(args: &Args) -> Option<ConnectionFilter> {
    Some(ConnectionFilter {
        protocol: args.optional(Args::protocol, "proto")?,
        state: args.optional(|args, name| args.keyword(name, StateWord::from_keyword), "state")?,
        address: args.optional(Args::address, "addr")?,
        port: args.optional(Args::integer, "port")?,
        offloaded: args.has("offloaded"),
        pending: args.has("pending"),
        refused: args.has("refused"),
        local: args.has("local"),
    })
}

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
    named("state", "Only this TCP state", ValueKind::Keyword(StateWord::KEYWORDS)),
    named("addr", "Only connections with this address", ValueKind::Address),
    named("port", "Only connections with this port", U16),
    flag("offloaded", "Connections programmed into the fast path"),
    flag("pending", "Connections waiting for route or neighbour"),
    flag("refused", "Connections refused by policy or capacity"),
    flag("local", "Connections of the host itself"),
];

/// The vendor's usage texts of the commands cmmd implements (those whose handlers print their
/// own are in the daemon).
const ACTIVATE_USAGE: &str = "Usage: activate <0 1>";
const DEBUG_USAGE: &str = "Usage: set debug <command error warning info> <0 1>";
const VLAN_ADD_USAGE: &str = "Usage: vlan add ifname.vlanid";
const VLAN_DELETE_USAGE: &str = "Usage: vlan delete ifname.vlanid";
const IPV4_UPDATE_USAGE: &str = "Usage: ipv4 update {orig-srcIPaddr} {orig-destIPaddr} {orig-srcPort} \
    {orig-destPort} {reply-srcIPaddr} {reply-destIPaddr} {reply-srcPort} {reply-destPort} {protocol} {mark}";
const IPV6_UPDATE_USAGE: &str = "Usage: ipv6 update {orig-srcIPaddr} {orig-destIPaddr} {orig-srcPort} \
    {orig-destPort} {reply-srcIPaddr} {reply-destIPaddr} {reply-srcPort} {reply-destPort} {protocol} {mark}";

use Privilege::{Privileged as P, Unprivileged as U};

/// Help for words that only lead to other words (`show`, `set`, …); the vendor's are empty.
pub const GROUPS: &[(&[&str], &str)] = &[
    (&["show"], ""),
    (&["query"], ""),
    (&["set"], ""),
    (&["configure"], "Enter configuration mode"),
    (&["prf"], ""),
    (&["prf", "trace"], ""),
    (&["mspmem"], ""),
    (&["vlan"], ""),
    (&["pktcapture"], ""),
    (&["icc"], ""),
    (&["sim"], "Drive the software cdx model (sim backend only)"),
    (&["sim", "fault"], "Inject a fault into the software cdx model"),
    (&["sim", "activate"], "Mark flows active in the software cdx model"),
];

/// Every command, in the order `?` and `help` list them.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    // libcli's built-ins.
    vendor(&["help"], &[], "Show available commands", U, None, |_| builtin(Builtin::Help)),
    vendor(&["quit"], &[], "Disconnect", U, None, |_| builtin(Builtin::Quit)),
    vendor(&["logout"], &[], "Disconnect", U, None, |_| builtin(Builtin::Quit)),
    vendor(&["exit"], &[], "Exit from current mode", U, None, |_| builtin(Builtin::Quit)),
    vendor(&["history"], &[], "Show a list of previously run commands", U, None, |_| builtin(Builtin::History)),
    vendor(&["enable"], &[], "Turn on privileged commands", U, None, |_| builtin(Builtin::Enable)),
    vendor(&["disable"], &[], "Turn off privileged commands", P, None, |_| builtin(Builtin::Disable)),
    unsupported(&["configure", "terminal"], "Conlfigure from the terminal", P),
    // cmm: show.
    vendor(&["show", "connections"], CONNECTION_FILTERS, "Show the table of fast forwarded connections", U, None, |args| {
        run(Command::ShowConnections(connection_filter(args)?))
    }),
    vendor(&["show", "fpp_route"], &[], "Show the fpp route entries used by the fast forwarded connections", U, None, |_| run(Command::ShowFppRoute)),
    vendor(&["show", "route"], &[], "Show the route entries used by the fast forwarded connections", U, None, |_| run(Command::ShowRoute)),
    vendor(&["show", "neighbor"], &[], "Show the neighbor entries used by the fast forwarded connections", U, None, |_| run(Command::ShowNeighbor)),
    vendor(&["show", "rules"], &[], "Show the table of non fast forwardable connections", U, None, |_| run(Command::ShowRules)),
    vendor(&["show", "debug_level"], &[], "Show the debug level", U, None, |_| run(Command::ShowDebugLevel)),
    vendor(&["show", "activate"], &[], "Show if cmm is activated or not", U, None, |_| run(Command::ShowActivate)),
    vendor(&["show", "pppoe"], &[], "Show the pppoe entries used by the fast forwarded connections", U, None, |_| run(Command::ShowPppoe)),
    vendor(&["show", "vlan"], &[], "Show the vlan entries programmmed", U, None, |_| run(Command::ShowVlan)),
    unsupported(&["show", "macvlan"], "Show the macvlan entries programmmed", U),
    unsupported(&["show", "rx"], "Show ICC, Bridge status", U),
    vendor(&["show", "stat"], &[words("arguments", "What to show (the usage when absent)")], "Show Statistics", U, None,
        |args| run(Command::ShowStat(args.words("arguments")))),
    unsupported(&["show", "sa_query_timer"], "Show the DPD SA query timer configuration", U),
    unsupported(&["show", "sa"], "Show the SA stored by CMM", U),
    unsupported(&["show", "sec-connections"], "Show the local table of secure connections", U),
    unsupported(&["show", "relay"], "Show pppoe relay entries used by  the fast forwarded connections", U),
    unsupported(&["show", "mc6"], "Show the table of V6 multicat listeners", U),
    unsupported(&["show", "mc4"], "Show the table of V4 multicat listeners", U),
    unsupported(&["show", "asym_fastforward"], "Show the Asymmetric fast forward status", U),
    unsupported(&["show", "asym_ff_rules"], "Show the table of asymmetric fast forwardable connections", U),
    // cmmd: show.
    spec(&["show", "connections", "detail"], CONNECTION_FILTERS, "Show the connections with what cmmd knows beyond the vendor", U, |args| {
        run(Command::ShowConnectionsDetail(connection_filter(args)?))
    }),
    simple(&["show", "route", "detail"], "Show the route cache with lookups, MTU and type", U, |_| run(Command::ShowRouteDetail)),
    simple(&["show", "fpp_route", "detail"], "Show the route objects with input port and state", U, |_| run(Command::ShowFppRouteDetail)),
    simple(&["show", "counters"], "Show counters by reason", U, |_| run(Command::ShowCounters)),
    simple(&["show", "config"], "Show the effective configuration", U, |_| run(Command::ShowConfig)),
    simple(&["show", "version"], "Show the version", U, |_| run(Command::ShowVersion)),
    simple(&["show", "status"], "Show health and readiness", U, |_| run(Command::ShowStatus)),
    simple(&["show", "sim"], "Show the software cdx model's tables", U, |_| run(Command::ShowSim)),
    // cmm: query.
    vendor(&["query", "pppoe"], &[], "Query PPPoE entries on FPP", U, None, |_| run(Command::QueryPppoe)),
    unsupported(&["query", "rx"], "Query Bridge entries on FPP", U),
    vendor(&["query", "route"], &[], "Query Route entries on FPP", U, None, |_| run(Command::QueryRoute)),
    vendor(&["query", "connections"], &[], "Query Connection entries on FPP", U, None, |_| run(Command::QueryConnections)),
    unsupported(&["query", "macvlan"], "Query Macvlan interfaces on FPP", U),
    vendor(&["query", "v6connections"], &[], "Query IPV6Connection entries on FPP", U, None, |_| run(Command::QueryV6Connections)),
    vendor(&["query", "vlan"], &[], "Query VLAN entries on FPP", U, None, |_| run(Command::QueryVlan)),
    unsupported(&["query", "ipr4stats"], "Query ipv4 reassembly statistics", U),
    unsupported(&["query", "ipr6stats"], "Query ipv6 reassembly statistics", U),
    unsupported(&["query", "mc4"], "Query Multicast IPV4 entries on FPP", U),
    unsupported(&["query", "mc6"], "Query Multicast IPV6 entries on FPP", U),
    unsupported(&["query", "qm"], "Query QOS configuration on FPP", U),
    unsupported(&["query", "qmexptrate"], "Query Exception rate configured on FPP", U),
    unsupported(&["query", "sa"], "Query for SA details", U),
    unsupported_with(&["query", "qm-dscp-fqmap"], "Query DSCP Fq map configuration", U, "Usage: query qm-dscp-fqmap {physical interface name}"),
    unsupported(&["query", "tx-dscp-to-vlanpcp"], "Query DSCP VLAN PCP map configuration", U),
    unsupported(&["query", "secfailstats"], "Query SEC engine failure statistics", U),
    unsupported(&["query", "natpt"], "Query NAT-PT connections", U),
    unsupported(&["query", "pktcapture"], "Query packet capture config parameters", U),
    unsupported(&["query", "tunnels"], "Query tunnel parameters", U),
    unsupported(&["query", "l2flows"], "Query L2Flows entries on FPP", U),
    unsupported_with(&["query", "qmffrate"], "Query rate configured  for fast path", U, "Usage: query qmffrate portname"),
    // cmm: set.
    vendor(&["set", "activate"], &[required("active", "1 enables offload, 0 disables it", ValueKind::Switch)],
        "Activate or desactivate fast forwarding", P, Some(ACTIVATE_USAGE),
        |args| run(Command::SetActivate(args.switch("active")?))),
    vendor(&["set", "debug"],
        &[
            required("category", "Debug category", ValueKind::Keyword(DebugCategory::KEYWORDS)),
            required("enabled", "1 prints the category, 0 does not", ValueKind::Switch),
        ],
        "Debug level", P, Some(DEBUG_USAGE), |args| {
            run(Command::SetDebug {
                category: args.keyword("category", DebugCategory::from_keyword)?,
                enabled: args.switch("enabled")?,
            })
        }),
    unsupported(&["set", "rx"], "Manage RX module (ICC, Bridge ...)", P),
    unsupported(&["set", "tx"], "Manage TX module (DSCP VLAN P bit map)", P),
    unsupported(&["set", "qm"], "Manage QM module (QOS, Rate Limiting ...)", P),
    unsupported(&["set", "mc6"], "Manage MC6 module (IpV6 multicast)", P),
    unsupported(&["set", "mc4"], "Manage MC4 module (IPv4 multicast)", P),
    vendor(&["set", "timeout"], &[words("arguments", "udp|tcp|other <seconds> [<seconds one way>] [4rd]")],
        "Set UDP/TCP/IPIP timeout value in FPP", P, None,
        |args| run(Command::SetTimeout(args.words("arguments")))),
    unsupported(&["set", "route"], "Set Extended Route", P),
    vendor(&["set", "ff"], &[words("arguments", "enable|disable")], "Enable or disable fast forward", U, None,
        |args| run(Command::SetFastForward(args.words("arguments")))),
    unsupported(&["set", "stat"], "Manage Statistics (PPPoE, Bridge ...)", P),
    unsupported(&["set", "expt_queue"], "Manage Exception Path Queuing", U),
    unsupported(&["set", "socket"], "Manage Socket module", U),
    unsupported(&["set", "socket6"], "Manage Socket module", U),
    unsupported(&["set", "rtp"], "Manage RTP-relay module", U),
    unsupported(&["set", "natpt"], "Manage NAT-PT module", U),
    unsupported(&["set", "sa_query_timer"], "Enable or disable SA query timer", U),
    unsupported(&["set", "config"], "Manage Alternate Configuration module", U),
    unsupported(&["set", "bridge"], "Manage automatic bridging", U),
    unsupported(&["set", "asym_fastforward"], "Enable or disable Asymmetric Fast forward", U),
    unsupported(&["set", "4rd-id-conversion"], "Enable or disable 4rd Ipv4  header ID conversion", U),
    // cmm: the rest of the top level.
    unsupported_with(&["ipv4"], "", U, IPV4_UPDATE_USAGE),
    unsupported_with(&["ipv4", "update"], "Update IPv4 Connection", U, IPV4_UPDATE_USAGE),
    unsupported_with(&["ipv6"], "", U, IPV6_UPDATE_USAGE),
    unsupported_with(&["ipv6", "update"], "Update IPv6 Connection", U, IPV6_UPDATE_USAGE),
    vendor(&["stop"], &[], "Kill cmm", P, None, |_| run(Command::Stop)),
    unsupported_with(&["prf", "busycpu"], "Measure available CPU cycles", U, "Usage: prf busycpu {start|stop} [weight_factor]"),
    unsupported(&["prf", "status"], "Show status of profiling/CPU measurement", U),
    unsupported_with(&["prf", "trace", "setmask"], "Set module mask", U, "Usage: prf trace setmask MASK_VALUE"),
    unsupported_with(&["prf", "trace", "start"], "Start trace", U, "Usage: prf trace start [ctr_id0 [ctrid1]]"),
    unsupported_with(&["prf", "trace", "switch"], "Stop or switch trace and show inactive trace", U, "Usage: prf trace switch [stop]"),
    unsupported_with(&["prf", "trace", "showtrace"], "Show inactive trace", U, "Usage: prf trace showtrace"),
    unsupported_with(&["mspmem", "ct"], "Show the table of fast forwarded connections", U, "Usage: mspmem ct addr [count|9999], Address and length have to be multiple of 4"),
    unsupported(&["mspmem", "bytes"], "Show msp memory in host order", U),
    unsupported_with(&["mspmem", "words"], "Show msp memory in network order", U, "Usage: mspmem words addr [len|16], Address and length have to be multiple of 4"),
    vendor(&["vlan", "add"], &[required("ifname", "VLAN interface", ValueKind::Interface)], "Register vlan entry with fpp", U, Some(VLAN_ADD_USAGE),
        |args| run(Command::VlanAdd(args.interface("ifname")?))),
    vendor(&["vlan", "delete"], &[required("ifname", "VLAN interface", ValueKind::Interface)], "Deregister vlan with fpp", U, Some(VLAN_DELETE_USAGE),
        |args| run(Command::VlanDelete(args.interface("ifname")?))),
    vendor(&["vlan", "show"], &[], "Deregister vlan with fpp", U, None, |_| run(Command::ShowVlan)),
    unsupported(&["pktcapture", "slice"], "Register packet capture size with fpp", U),
    unsupported(&["pktcapture", "status"], "Enable/disable packet capture on LAN/WAN with fpp", U),
    unsupported(&["pktcapture", "filter"], "Register first-level-filter string for LAN/WAN with fpp", U),
    unsupported_with(&["icc", "reset"], "Reset ICC", U, "Usage: icc reset"),
    unsupported_with(&["icc", "threshold"], "Set ICC threshold values", U, "Usage: icc threshold <bmu1-thresh> <bmu2-thresh>"),
    unsupported(&["icc", "add"], "Add ICC table entry", U),
    unsupported(&["icc", "delete"], "Delete ICC table entry", U),
    unsupported_with(&["icc", "query"], "Query ICC table values", U, "Usage: icc query [<interface>]"),
    // cmmd: the software cdx.
    simple(&["sim", "activate", "all"], "Mark every flow active in the software cdx", P,
        |_| run(Command::SimActivate(SimFlowMatch::All))),
    spec(&["sim", "activate"], FLOW_TUPLE, "Mark one flow active in the software cdx", P, |args| {
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
        "Answer commands with an error code", P, |args| {
            run(Command::SimFault(SimFault::ErrorCode {
                rc: args.integer("rc")?,
                fcode: args.optional(Args::integer, "fcode")?,
                count: args.optional(Args::integer, "count")?,
            }))
        }),
    spec(&["sim", "fault", "drop"], &[COUNT], "Swallow replies", P,
        |args| run(Command::SimFault(SimFault::DropReply { count: args.optional(Args::integer, "count")? }))),
    spec(&["sim", "fault", "delay"], &[required("milliseconds", "Delay of each reply", U32), COUNT],
        "Delay replies", P, |args| {
            run(Command::SimFault(SimFault::Delay {
                milliseconds: args.integer("milliseconds")?,
                count: args.optional(Args::integer, "count")?,
            }))
        }),
    spec(&["sim", "fault", "eio"], &[COUNT], "Answer commands with a netlink error -EIO", P,
        |args| run(Command::SimFault(SimFault::Eio { count: args.optional(Args::integer, "count")? }))),
    spec(&["sim", "fault", "capacity"], &[required("pairs", "Hardware conntrack pairs", U32)],
        "Set the hardware table capacity", P,
        |args| run(Command::SimFault(SimFault::Capacity { pairs: args.integer("pairs")? }))),
    simple(&["sim", "fault", "removed"], "Emit a REMOVED event for an unknown flow", P,
        |_| run(Command::SimFault(SimFault::SpuriousRemoved))),
    simple(&["sim", "fault", "flowtable"], "Refuse every command as cdx owned by the flowtable", P,
        |_| run(Command::SimFault(SimFault::OffloadOwnerFlowtable))),
    simple(&["sim", "fault", "clear"], "Remove every injected fault", P, |_| run(Command::SimFault(SimFault::Clear))),
];

/// Help for a word path: the group's, else that of the spec that ends there.
pub(crate) fn word_help(path: &[&str]) -> &'static str {
    COMMANDS
        .iter()
        .find(|spec| spec.words == path)
        .map(|spec| spec.help)
        .or_else(|| GROUPS.iter().find(|(words, _)| *words == path).map(|(_, help)| *help))
        .unwrap_or("")
}
