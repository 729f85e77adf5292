//! A software cdx: what `cmmd --backend sim` and the integration tests run instead of the
//! kernel module.
//!
//! # Layers
//!
//! - [`Cdx`] is a pure model: `handle(fcode, payload, now)` answers one FPP command with the
//!   reply payload cdx would produce, `tick(now)` runs aging and returns the REMOVED events.
//!   No threads, no clock, no I/O: every rule is unit-tested with exact bytes and codes.
//! - [`spawn`] runs the model on a thread behind two socket pairs with the framing of
//!   `fci.ko`: the daemon's worker talks to the command end exactly as to the kernel (same
//!   requests, replies, sequence numbers, netlink errors), and its event loop reads REMOVED
//!   events from the event end as from group 1. [`SimHandle`] inspects the model
//!   ([`SimHandle::snapshot`], [`SimHandle::stats`]), stands in for traffic
//!   ([`SimHandle::mark_active`]), moves its clock ([`SimHandle::advance`]) and injects
//!   faults ([`SimHandle::inject`]).
//!
//! # What it models (as the cdx sources do it)
//!
//! - Exact payload sizes (`WRONG_COMMAND_SIZE`), unknown actions, unknown command codes.
//! - Routes: id uniqueness (200), unknown output interface (5), UPDATE keeps the MTU, MTU
//!   0 stored as 0xFFFF, DEREGISTER of an unknown id (201) or of a route conntracks still
//!   reference (202), QUERY/QUERY_CONT walks.
//! - Conntracks: duplicate registration (100), the inverse flow already registered (7),
//!   unknown entry on UPDATE/DEREGISTER (101); a direction whose route id is not
//!   registered (or which is disabled) is accepted but not in hardware, and UPDATE
//!   re-applies flags, marks and route ids; hardware insertion only for TCP and UDP and
//!   within the configured capacity, failing the command with `0xFFFF`; QUERY/QUERY_CONT
//!   with the extended layout and one cursor per family shared by every client.
//! - `IPV4_RESET` clears both families and every route; `IPV6_RESET` is a no-op.
//! - Timeouts: cdx's defaults (TCP 432 000 s, UDP 180 s / 30 s one-way, other 600 s),
//!   SET_TIMEOUT (protocol 6, 17, 0, anything else `UNKNOWN_ACTION`), GET_TIMEOUT
//!   (remaining seconds; IPv4 rounds up, IPv6 truncates; unknown → `0xFFFE`).
//! - Aging from hardware hit timestamps: a pair's timer fires after its timeout; it is
//!   re-armed if the pair was active since, else a `*_CONNTRACK_CHANGE` REMOVED event is
//!   sent and the pair removed (kept and retried a tick later if the event cannot be
//!   delivered; dropped silently if nobody listens). Timers are shortened at once when a
//!   timeout shrinks and lengthened only at expiry. FF_CONTROL enable resets activity.
//! - VLAN registration makes the VLAN name a valid route interface (600/601).
//!
//! # What it does not model
//!
//! IPsec SAs and tunnel routes (the extension is stored, not interpreted), multicast,
//! PPPoE, QoS, statistics, sockets and every other module (their codes answer
//! `UNKNOWN_COMMAND`); per-packet forwarding (activity comes from
//! [`SimHandle::mark_active`]); interface removal; the 16-bit split of `fwmark`
//! (bit 31 set: `orig | reply << 16`) follows the query encoding and is inferred.

mod model;
mod runner;
mod table;

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use crate::fpp::CtEvent;
use crate::fpp::{CtFlags, Family, Tuple};

pub use model::{Cdx, DEFAULT_CAPACITY, SimReply};
pub use runner::{Fault, SimError, SimHandle, SimSocket, SimStats, attach, spawn};
pub use table::Timeouts;

/// Configuration of a spawned sim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The ports cdx knows (as dpa_app registers FMan ports); other names are
    /// `UNKNOWN_INTERFACE`.
    pub interfaces: Vec<String>,
    /// Conntrack pairs the hardware table holds.
    pub capacity: usize,
    /// Aging tick (cdx: 100 ms).
    pub tick: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            interfaces: Vec::new(),
            capacity: DEFAULT_CAPACITY,
            tick: Duration::from_millis(100),
        }
    }
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
    /// Next-hop MAC.
    pub mac: [u8; 6],
    /// MTU as stored (0 was stored as 0xFFFF).
    pub mtu: u16,
    /// Conntrack directions linked to it.
    pub refcount: u32,
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
    /// Disabled directions.
    pub flags: CtFlags,
    /// The mark as a query reports it.
    pub fwmark: u32,
    /// Route id of the original direction as registered.
    pub route_id: u32,
    /// Route id of the reply direction as registered.
    pub route_id_reply: u32,
    /// Original direction has a hardware entry.
    pub in_hw_orig: bool,
    /// Reply direction has a hardware entry.
    pub in_hw_reply: bool,
    /// Time left before aging removes it without further activity.
    pub remaining: Duration,
}

impl SimConntrack {
    fn of<F: Family>(pair: &table::Pair<F>, env: &table::Env, now: Instant) -> SimConntrack {
        SimConntrack {
            orig: pair.orig.into(),
            reply: pair.reply.into(),
            protocol: pair.protocol,
            flags: pair.flags,
            fwmark: pair.fwmark(),
            route_id: pair.route_ids.orig,
            route_id_reply: pair.route_ids.reply,
            in_hw_orig: pair.in_hw.orig,
            in_hw_reply: pair.in_hw.reply,
            remaining: pair.remaining(env, now),
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
