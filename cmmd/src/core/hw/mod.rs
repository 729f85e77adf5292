//! What the engine asks of the hardware, in domain terms, and the route objects it owns there.
//!
//! The engine never builds FPP bytes: it emits [`HwOp`]s, which the offload worker translates
//! to `cdx-sys` commands and executes in order, and it receives [`HwResult`]s. Success and the
//! failures the engine treats differently (full, still linked, not found) are classified by the
//! worker, which knows cdx's return codes.
//!
//! Route objects ([`HwRoutes`]) are shared by every connection with the same ingress port,
//! egress port, next-hop MAC and MTU. Their ids come from a free list (1..=[`MAX_ROUTE_ID`])
//! and are reference-counted; an id returns to the free list only when the hardware confirmed
//! its removal, so an id is never reused while cdx may still hold it. A route object never
//! changes once registered (cdx copies a route's port and MAC into each flow when it inserts
//! the flow, and a route UPDATE reaches no inserted flow): a path change makes a new object.
//! cdx counts a route's links in 16 bits and silently refuses links at 0xFFFF, so an object
//! that reaches [`MAX_ROUTE_LINKS`] users is split: the next user gets a new id for the same
//! path.

mod routes;

pub use self::routes::{
    Acquired, HwRoutes, MAX_ROUTE_ID, MAX_ROUTE_LINKS, RouteIdentity, RouteIdsExhausted, RouteObj,
    RouteObjState,
};
pub use cdx_sys::detect::Detection;
pub use cdx_sys::fpp::{Abi, AbiSetting};

use crate::core::flow::Tuple;
use crate::core::net::{IfName, Mac};

/// A route object as cdx stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Route id (1..=65535).
    pub id: u16,
    /// Egress port name.
    pub output: IfName,
    /// Ingress port name.
    pub input: IfName,
    /// Next-hop MAC (all zero for NOARP egress).
    pub mac: Mac,
    /// Path MTU.
    pub mtu: u16,
}

/// A connection as cdx stores it: both tuples and the route of each direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtSpec {
    /// IP protocol.
    pub proto: u8,
    /// Original tuple.
    pub orig: Tuple,
    /// Reply tuple.
    pub reply: Tuple,
    /// QoS mark (cdx's `fwmark` on LSDK, `qosconnmark` on ASK): the kernel's own QoS mark
    /// (`CTA_QOSCONNMARK`) or the conntrack mark, as configured; 0 for none.
    pub qos_mark: u64,
    /// The originator is downstream by the vendor's rule (it enters through a WAN port and
    /// does not leave through one): the worker swaps the mark's halves where the ABI's cmm
    /// does (LSDK).
    pub originator_downstream: bool,
    /// Route id of the original direction (0 = direction disabled).
    pub route_orig: u16,
    /// Route id of the reply direction (0 = direction disabled).
    pub route_reply: u16,
}

/// A VLAN interface as cdx registers it (`FPP_CMD_VLAN_ENTRY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanSpec {
    /// The VLAN interface.
    pub name: IfName,
    /// 802.1Q id.
    pub id: u16,
    /// Its parent (a fast-path port, or a registered VLAN).
    pub parent: IfName,
    /// Its MAC address (the ASK layout carries it; zero when unknown).
    pub mac: Mac,
}

/// A PPPoE session as cdx registers it (`FPP_CMD_PPPOE_ENTRY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PppoeSpec {
    /// The PPP interface.
    pub name: IfName,
    /// The session id.
    pub session: u16,
    /// The peer's (the access concentrator's) MAC address.
    pub peer: Mac,
    /// The interface the session runs on (a fast-path port, or a registered VLAN).
    pub parent: IfName,
}

/// A logical interface cdx is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItfSpec {
    /// A VLAN interface.
    Vlan(VlanSpec),
    /// A PPPoE session.
    Pppoe(PppoeSpec),
}

impl ItfSpec {
    /// The interface's name, as cdx knows it.
    pub fn name(&self) -> IfName {
        match self {
            ItfSpec::Vlan(v) => v.name,
            ItfSpec::Pppoe(p) => p.name,
        }
    }

    /// The interface it sits on.
    pub fn parent(&self) -> IfName {
        match self {
            ItfSpec::Vlan(v) => v.parent,
            ItfSpec::Pppoe(p) => p.parent,
        }
    }
}

/// cdx's aging timeouts in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwTimeouts {
    /// TCP.
    pub tcp: u32,
    /// UDP with both directions offloaded.
    pub udp: u32,
    /// UDP with one direction offloaded.
    pub udp_unidir: u32,
    /// Everything else.
    pub other: u32,
}

impl From<&config::Timeouts> for HwTimeouts {
    /// The `[timeouts]` table.
    fn from(t: &config::Timeouts) -> Self {
        HwTimeouts {
            tcp: t.tcp.get(),
            udp: t.udp.get(),
            udp_unidir: t.udp_unidirectional.get(),
            other: t.other.get(),
        }
    }
}

/// One hardware command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwOp {
    /// Find out which ABI cdx speaks ([`AbiSetting::Auto`]: ask it with a command that
    /// changes nothing) and encode every later command in it.
    Detect(AbiSetting),
    /// Register a route object.
    RouteRegister(RouteSpec),
    /// Remove a route object.
    RouteDeregister(u16),
    /// Register a connection.
    CtRegister(CtSpec),
    /// Change a registered connection: cdx inserts directions not yet in hardware, relinks
    /// the routes and takes the new route's MTU; a direction already in hardware keeps the
    /// port and MAC it was inserted with (a path change is a deregister and a register).
    CtUpdate(CtSpec),
    /// Remove a connection.
    CtDeregister(CtSpec),
    /// Ask how long until cdx ages the connection out (activity for keepalive).
    CtRemaining(CtSpec),
    /// Set an aging timeout: protocol 6, 17 or 0 (others).
    SetTimeout {
        /// Protocol selector.
        proto: u8,
        /// Timeout (bidirectional for UDP).
        seconds: u32,
        /// Unidirectional UDP timeout.
        unidir: u32,
    },
    /// Enable or disable fast forwarding (`FPP_CMD_IPV4_FF_CONTROL`, the vendor's `set ff`;
    /// enabling also restarts cdx's aging of every connection).
    FastForward(bool),
    /// Remove every connection and route from the hardware.
    Reset,
    /// Walk the hardware tables (connections and routes).
    Walk,
    /// Register a VLAN interface or a PPPoE session.
    ItfRegister(ItfSpec),
    /// Remove a VLAN interface or a PPPoE session (cdx removes the connections routed out of
    /// it, with REMOVED events: the engine withdraws them first).
    ItfDeregister(ItfSpec),
    /// Remove every VLAN interface (`FPP_CMD_VLAN_RESET`).
    VlanReset,
    /// Walk cdx's VLAN and PPPoE tables.
    WalkInterfaces,
}

impl HwOp {
    /// Short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            HwOp::Detect(_) => "detect",
            HwOp::RouteRegister(_) => "route_register",
            HwOp::RouteDeregister(_) => "route_deregister",
            HwOp::CtRegister(_) => "ct_register",
            HwOp::CtUpdate(_) => "ct_update",
            HwOp::CtDeregister(_) => "ct_deregister",
            HwOp::CtRemaining(_) => "ct_remaining",
            HwOp::SetTimeout { .. } => "set_timeout",
            HwOp::FastForward(_) => "ff_control",
            HwOp::Reset => "reset",
            HwOp::Walk => "walk",
            HwOp::ItfRegister(_) => "itf_register",
            HwOp::ItfDeregister(_) => "itf_deregister",
            HwOp::VlanReset => "vlan_reset",
            HwOp::WalkInterfaces => "walk_interfaces",
        }
    }
}

/// A command with the tag that matches it to its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwRequest {
    /// Chosen by the engine, echoed in the result.
    pub tag: u64,
    /// The command.
    pub op: HwOp,
}

/// A connection read back from the hardware: what cdx writes in a walk entry. Its route ids
/// and disabled flags are not among them (cdx leaves them as its heap held them), so the
/// routes of a walked connection are found by resolving it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkedCt {
    /// IP protocol.
    pub proto: u8,
    /// Original tuple.
    pub orig: Tuple,
    /// Reply tuple.
    pub reply: Tuple,
    /// The mark as cdx reports it (what it kept of each direction's).
    pub qos_mark: u64,
}

impl WalkedCt {
    /// What a walk reports of a connection registered as `spec`: its tuples, protocol and
    /// mark, never its route ids (the fake cdx of the engine's and the control's tests).
    #[cfg(test)]
    pub fn of(spec: &CtSpec) -> WalkedCt {
        WalkedCt { proto: spec.proto, orig: spec.orig, reply: spec.reply, qos_mark: spec.qos_mark }
    }
}

/// The ABI commands are encoded in, and how it was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbiChoice {
    /// The ABI.
    pub abi: Abi,
    /// How it was decided.
    pub how: AbiDecided,
}

/// How the ABI was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiDecided {
    /// `cdx.abi` names it.
    Configured,
    /// cdx's answers to the probes showed it.
    Detected(Detection),
}

impl std::fmt::Display for AbiChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.how {
            AbiDecided::Configured => {
                write!(f, "{} (configured: cdx.abi = \"{}\")", self.abi, self.abi)
            }
            AbiDecided::Detected(d) => write!(f, "{} (detected: {})", self.abi, probe_answers(&d)),
        }
    }
}

/// The probes' answers, e.g. `IPv4 GET_TIMEOUT of 44 B → WrongCommandSize (2), 48 B → CmdErr (65534)`.
fn probe_answers(d: &Detection) -> String {
    let answers: Vec<String> = d
        .answers
        .iter()
        .map(|(abi, rc)| format!("{} B → {rc}", cdx_sys::detect::probe(*abi).len()))
        .collect();
    format!("IPv4 GET_TIMEOUT of {}", answers.join(", "))
}

/// A route read back from the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkedRoute {
    /// The route object.
    pub spec: RouteSpec,
}

/// What a successful command returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwReply {
    /// Done.
    Done,
    /// The ABI commands are encoded in from now on ([`HwOp::Detect`]).
    Abi(AbiChoice),
    /// Seconds until cdx ages the connection out.
    Remaining(u32),
    /// Contents of the hardware tables.
    Walk {
        /// Connections.
        conntracks: Vec<WalkedCt>,
        /// Routes.
        routes: Vec<WalkedRoute>,
    },
    /// Contents of cdx's VLAN and PPPoE tables (a VLAN's MAC is not reported: zero).
    Interfaces(Vec<ItfSpec>),
}

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwFailure {
    /// The hardware could not insert the connection (`0xFFFF` to a register): its table is
    /// full (or another insertion failure cdx does not tell apart).
    Full,
    /// cdx does not know an interface of the route (`UNKNOWN_INTERFACE` to its register as
    /// output; as input, found by the worker before registering: cdx would take the route
    /// and fail every connection on it).
    UnknownInterface(IfName),
    /// cdx refuses FCI (netlink `EOPNOTSUPP`): it was booted with `offload_owner=flowtable`.
    OffloadRefused,
    /// The reply was lost (`ENOBUFS` on the command socket): the command may have been
    /// executed.
    ReplyLost,
    /// The QoS mark is wider than the ABI's field (LSDK: 32 bits); nothing was sent.
    MarkTooWide(u64),
    /// A route is still referenced by connections.
    Linked,
    /// The entry does not exist.
    NotFound,
    /// Another return code of cdx (never 0: that is success).
    Rejected(u16),
    /// The command could not be written in cdx's format, so nothing was sent (a value cdx
    /// cannot hold, such as addresses of two families in one connection); the text says what.
    Unencodable(&'static str),
    /// No reply in time.
    Timeout,
    /// The transport failed (errno or description).
    Io(String),
}

impl HwFailure {
    /// The command may have been executed although no answer says so (timeout, lost reply).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, HwFailure::Timeout | HwFailure::ReplyLost)
    }
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwResult {
    /// The request's tag.
    pub tag: u64,
    /// Outcome.
    pub outcome: Result<HwReply, HwFailure>,
}

/// An unsolicited message from the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwEvent {
    /// cdx aged the connection out (or its port disappeared) and removed it.
    Removed {
        /// IP protocol.
        proto: u8,
        /// Original tuple.
        orig: Tuple,
        /// Reply tuple.
        reply: Tuple,
    },
}
