//! A software cdx: what `cmmd --backend sim` and the integration tests run instead of the
//! kernel module. It is as strict as cdx: every rule is read from cdx's source, and the
//! crate README lists them, rule by rule, with what the model still does not do.
//!
//! # Layers
//!
//! - [`Cdx`] is a pure model: `handle(fcode, payload, now)` answers one FPP command with the
//!   reply payload cdx would produce, `tick(now)` runs aging and returns the REMOVED events.
//!   No threads, no clock, no I/O: every rule is unit-tested with exact bytes and codes.
//! - [`spawn`] runs the model on a thread behind two socket pairs with the framing of
//!   `fci.ko`; [`attach`] answers commands inside the caller's `send`, as `fci.ko` answers
//!   inside `sendmsg`. [`SimHandle`] inspects the model ([`SimHandle::snapshot`],
//!   [`SimHandle::stats`]), stands in for traffic ([`SimHandle::mark_active`]), moves its
//!   clock ([`SimHandle::advance`]) and injects faults ([`SimHandle::inject`]).
//!
//! # Which cdx
//!
//! [`SimConfig::abi`] picks the payload layouts and, where the two builds behave
//! differently, the behaviour: [`Abi::Lsdk`] is NXP's cdx (the default), [`Abi::Ask`] the
//! maintained ASK port. A command sized for the other ABI is answered `WRONG_COMMAND_SIZE`,
//! as cdx answers it. [`SimConfig::interfaces`] are the FMan ports `dpa_app` configured:
//! cdx knows those and the VLAN interfaces and PPPoE sessions registered over FCI, nothing
//! else.

mod aging;
mod batch;
mod clock;
mod env;
mod faults;
mod fill;
mod interfaces;
mod model;
mod onif;
mod routes;
mod runner;
mod table;

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

pub use crate::fpp::CtEvent;
use crate::fpp::{Abi, CtFlags, Family, Tuple};

pub use faults::{Fault, SimError, SimStats};
pub use fill::{FillParseError, UnwrittenFill};
pub use model::{Cdx, DEFAULT_CAPACITY, SimEvent, SimReply};
pub use runner::{SimHandle, SimSocket, attach, spawn};

/// Configuration of a software cdx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The FMan ports dpa_app configured: the interfaces cdx knows at start (VLAN
    /// interfaces and PPPoE sessions registered over FCI are added to them). Other names are
    /// `UNKNOWN_INTERFACE` as outputs and "no interface" as inputs.
    pub interfaces: Vec<String>,
    /// Conntrack pairs the hardware table holds.
    pub capacity: usize,
    /// Aging tick (cdx's timer thread: 100 ms).
    pub tick: Duration,
    /// The cdx modelled: its payload layouts and, where they differ, its behaviour.
    pub abi: Abi,
    /// What the fields cdx does not write in walk replies and events hold.
    pub unwritten: UnwrittenFill,
    /// How IPv6 `GET_TIMEOUT` sees activity; `None`: as the ABI's build does (NXP: only
    /// when the aging timer runs; ASK: refreshed by every query).
    pub ipv6_activity: Option<Ipv6Activity>,
    /// The kernel's `HZ` (cdx's ticks per second; 1000 on the ASK kernels).
    pub hz: u32,
    /// Time one hardware insert or delete takes (an FMan host command); a command's reply
    /// and the aging tick wait for theirs, holding cdx's single control mutex.
    pub hw_latency: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            interfaces: Vec::new(),
            capacity: DEFAULT_CAPACITY,
            tick: Duration::from_millis(100),
            abi: Abi::Lsdk,
            unwritten: UnwrittenFill::Zeros,
            ipv6_activity: None,
            hz: 1000,
            hw_latency: Duration::ZERO,
        }
    }
}

impl SimConfig {
    /// The IPv6 activity rule in force.
    pub fn ipv6_activity(&self) -> Ipv6Activity {
        self.ipv6_activity.unwrap_or(match self.abi {
            Abi::Lsdk => Ipv6Activity::AgingTimer,
            Abi::Ask => Ipv6Activity::Refreshed,
        })
    }
}

/// How IPv6 `GET_TIMEOUT` sees a flow's activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv6Activity {
    /// NXP's cdx (`IPv6_HandleIP_Get_Timeout`, `control_ipv6.c`): from the activity time
    /// the aging timer last copied from the hardware; an active flow looks idle in between.
    AgingTimer,
    /// The ASK port: refreshed from the hardware on every query, as IPv4 is.
    Refreshed,
}

/// A name that is no IPv6 activity rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown IPv6 activity rule {0:?}: expected aging-timer or refreshed")]
pub struct Ipv6ActivityParseError(pub String);

impl FromStr for Ipv6Activity {
    type Err = Ipv6ActivityParseError;

    /// `aging-timer` (also `nxp`, `lsdk`) or `refreshed` (also `ask`).
    fn from_str(text: &str) -> Result<Ipv6Activity, Ipv6ActivityParseError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "aging-timer" | "nxp" | "lsdk" => Ok(Ipv6Activity::AgingTimer),
            "refreshed" | "ask" => Ok(Ipv6Activity::Refreshed),
            _ => Err(Ipv6ActivityParseError(text.to_string())),
        }
    }
}

/// cdx's aging timeouts, in seconds as SET_TIMEOUT set them (cdx multiplies them by `HZ`
/// in 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP.
    pub tcp: u32,
    /// UDP with both directions offloaded.
    pub udp: u32,
    /// UDP with one direction offloaded.
    pub udp_unidir: u32,
    /// Every other protocol.
    pub other: u32,
}

impl Default for Timeouts {
    /// cdx's defaults (`fe.h`): TCP 432 000 s, UDP 180 s / 30 s one-way, other 600 s.
    fn default() -> Timeouts {
        Timeouts { tcp: 432_000, udp: 180, udp_unidir: 30, other: 600 }
    }
}

impl Timeouts {
    /// `get_timeout_value`: the seconds for a flow.
    pub fn for_flow(&self, protocol: u16, bidirectional: bool) -> u32 {
        match protocol {
            env::IPPROTO_TCP => self.tcp,
            env::IPPROTO_UDP if bidirectional => self.udp,
            env::IPPROTO_UDP => self.udp_unidir,
            _ => self.other,
        }
    }
}

/// What the model counted (all since start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Hardware entries inserted (FMan host commands).
    pub hw_inserts: u64,
    /// Hardware entries deleted.
    pub hw_deletes: u64,
    /// Insertions cdx's `insert_entry_in_classif_table` would fail (0xFFFF on REGISTER,
    /// silent on UPDATE).
    pub insert_failures: u64,
    /// Links refused because the route's 16-bit reference count was saturated (the
    /// direction silently stays out of hardware).
    pub links_refused: u64,
    /// Routes registered with an id above 0xFFFF (accepted, never found again).
    pub unreachable_routes: u64,
    /// Commands with a module byte NXP's cdx has no slot for (it is then wedged).
    pub out_of_table_commands: u64,
    /// IPv6 UPDATE/DEREGISTER with the tuples swapped: cdx's lookup lets them through and
    /// its `container_of` then reads the wrong object; the model answers 0 and changes
    /// nothing.
    pub undefined_commands: u64,
    /// VLAN and PPPoE registrations refused for want of room (`CREATION_FAILED`: the
    /// four PPPoE statistics slots, the other interfaces' slots, the interface table).
    pub interfaces_refused: u64,
    /// Statistics slots NXP's cdx lost by removing an interface that was not the newest
    /// (`dpa_release_interface`); they never come back.
    pub interface_slots_leaked: u64,
}

/// A tuple of either family, for inspection and matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimTuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl<A: Into<IpAddr>> From<Tuple<A>> for SimTuple {
    fn from(tuple: Tuple<A>) -> SimTuple {
        SimTuple {
            src: tuple.src.into(),
            dst: tuple.dst.into(),
            sport: tuple.sport,
            dport: tuple.dport,
        }
    }
}

impl SimTuple {
    /// The tuple in family `F`, if both addresses are of that family.
    pub fn to_family<F: Family>(self) -> Option<Tuple<F::Addr>> {
        Some(Tuple {
            src: F::addr_from_ip(self.src)?,
            dst: F::addr_from_ip(self.dst)?,
            sport: self.sport,
            dport: self.dport,
        })
    }
}

/// Which flows [`SimHandle::mark_active`] stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowMatch {
    /// Every flow with a direction in hardware.
    All,
    /// Flows with this original tuple (any protocol).
    Orig(SimTuple),
}

/// A route as the model holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRoute {
    /// Route id.
    pub id: u32,
    /// Output interface.
    pub output: String,
    /// Input interface (empty if cdx did not know it).
    pub input: String,
    /// Underlying input interface (the input if cdx did not know it; empty if neither).
    pub underlying_input: String,
    /// Next-hop MAC.
    pub mac: [u8; 6],
    /// MTU as stored (0 was stored as 0xFFFF).
    pub mtu: u16,
    /// Conntrack directions linked to it (16 bits in cdx; links refused at 0xFFFF).
    pub refcount: u32,
}

impl SimRoute {
    fn of(id: u32, route: &env::Route) -> SimRoute {
        let name =
            |name: Option<crate::fpp::IfName>| name.map(|n| n.to_string()).unwrap_or_default();
        SimRoute {
            id,
            output: route.output.to_string(),
            input: name(route.input),
            underlying_input: name(route.underlying_input),
            mac: route.mac,
            mtu: route.mtu,
            refcount: u32::from(route.refcount),
        }
    }
}

/// What a direction's hardware entry forwards with: the output port, MAC and input copied
/// from its route when it was inserted, and its current MTU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimHwEntry {
    /// Output interface.
    pub output: String,
    /// Input interface.
    pub input: String,
    /// Next-hop MAC.
    pub mac: [u8; 6],
    /// MTU (0 after an UPDATE left the direction without a route on NXP's cdx).
    pub mtu: u16,
    /// Source MAC, when it is not the FMan port's own: on the ASK port, the MAC registered
    /// with the VLAN the entry sends out of (directly or under a PPPoE session).
    pub source_mac: Option<[u8; 6]>,
}

/// A conntrack pair as the model holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConntrack {
    /// Original tuple.
    pub orig: SimTuple,
    /// Reply tuple.
    pub reply: SimTuple,
    /// IP protocol.
    pub protocol: u16,
    /// Disabled directions, as last set.
    pub flags: CtFlags,
    /// The mark as a walk reports it.
    pub qos_mark: u64,
    /// Route id of the original direction as last given.
    pub route_id: u32,
    /// Route id of the reply direction as last given.
    pub route_id_reply: u32,
    /// The route the original direction holds a reference on.
    pub linked_orig: Option<u32>,
    /// The route the reply direction holds a reference on.
    pub linked_reply: Option<u32>,
    /// Original direction has a hardware entry.
    pub in_hw_orig: bool,
    /// Reply direction has a hardware entry.
    pub in_hw_reply: bool,
    /// What the original direction's hardware entry forwards with.
    pub hw_orig: Option<SimHwEntry>,
    /// What the reply direction's hardware entry forwards with.
    pub hw_reply: Option<SimHwEntry>,
    /// Time left before aging removes it without further activity (what a refreshing
    /// `GET_TIMEOUT` would report).
    pub remaining: Duration,
    /// cdx's aging timer for the pair is on a wheel. `false` once cdx deleted it: a
    /// SET_TIMEOUT that shrank the timeout to exactly the time already elapsed makes
    /// `ct_timer_update` call `cdx_timer_add(timer, 0)`, which deletes (`control_ipv4.c`,
    /// `cdx_timer.c`). Such a pair never ages; only DEREGISTER or a reset removes it.
    pub aging: bool,
}

impl SimConntrack {
    fn of<F: Family>(pair: &table::Pair<F>, cdx: &Cdx, now32: u32) -> SimConntrack {
        let hw = |dir: &table::Direction| {
            dir.hw.map(|hw| SimHwEntry {
                output: hw.output.to_string(),
                input: hw.input.to_string(),
                mac: hw.mac,
                mtu: hw.mtu,
                source_mac: hw.source_mac,
            })
        };
        let (orig, reply) = (&pair.dirs.orig, &pair.dirs.reply);
        SimConntrack {
            orig: pair.tuples.orig.into(),
            reply: pair.tuples.reply.into(),
            protocol: pair.protocol,
            flags: pair.flags(),
            qos_mark: pair.walk_mark(cdx.env.build),
            route_id: orig.route_id,
            route_id_reply: reply.route_id,
            linked_orig: orig.link,
            linked_reply: reply.link,
            in_hw_orig: orig.hw.is_some(),
            in_hw_reply: reply.hw.is_some(),
            hw_orig: hw(orig),
            hw_reply: hw(reply),
            remaining: cdx.clock.duration(u64::from(pair.remaining_now(now32))),
            aging: pair.timer.due().is_some(),
        }
    }
}

/// A registered VLAN interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimVlan {
    /// The VLAN interface.
    pub name: String,
    /// 802.1Q id (12 bits).
    pub id: u16,
    /// Its parent.
    pub parent: String,
    /// The MAC cdx keeps for it (ASK: as registered, the source of its frames; NXP: none,
    /// zero).
    pub mac: [u8; 6],
}

impl SimVlan {
    fn of(name: &crate::fpp::IfName, vlan: &onif::VlanIf) -> SimVlan {
        SimVlan {
            name: name.to_string(),
            id: vlan.id,
            parent: vlan.parent.name.to_string(),
            mac: vlan.mac,
        }
    }
}

/// A registered PPPoE session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPppoe {
    /// The PPP interface.
    pub name: String,
    /// The session id.
    pub session: u16,
    /// The peer's MAC address.
    pub mac: [u8; 6],
    /// The interface the session runs on.
    pub parent: String,
    /// The mode word.
    pub mode: u16,
}

impl SimPppoe {
    fn of(name: &crate::fpp::IfName, session: &onif::PppoeIf) -> SimPppoe {
        SimPppoe {
            name: name.to_string(),
            session: session.session,
            mac: session.mac,
            parent: session.parent.name.to_string(),
            mode: session.mode,
        }
    }
}

/// Everything the model holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimTable {
    /// Routes by id.
    pub routes: Vec<SimRoute>,
    /// Conntracks, IPv4 first.
    pub conntracks: Vec<SimConntrack>,
    /// The interfaces cdx knows: FMan ports, then registered VLANs, then PPPoE sessions.
    pub interfaces: Vec<String>,
    /// Registered VLAN interfaces, by name.
    pub vlans: Vec<SimVlan>,
    /// Registered PPPoE sessions, by PPP interface name.
    pub pppoe: Vec<SimPppoe>,
}

impl SimTable {
    /// The conntrack with this original tuple, if any.
    pub fn conntrack(&self, orig: SimTuple) -> Option<&SimConntrack> {
        self.conntracks.iter().find(|ct| ct.orig == orig)
    }

    /// The route with this id, if any.
    pub fn route(&self, id: u32) -> Option<&SimRoute> {
        self.routes.iter().find(|route| route.id == id)
    }
}

#[cfg(test)]
mod tests;
