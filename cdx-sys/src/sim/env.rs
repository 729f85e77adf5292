//! What both conntrack tables of the model share: the build being modelled, the interface
//! table, the route objects, the hardware budget, the timeouts and the counters.

use std::collections::BTreeMap;

use crate::fpp::{Abi, IfName};

use super::onif::Interfaces;
use super::{Ipv6Activity, SimCounters, Timeouts};

/// Protocols FMan has hash tables for (`get_table_type`, `cdx_ehash.c`).
pub(super) const IPPROTO_TCP: u16 = 6;
pub(super) const IPPROTO_UDP: u16 = 17;

/// A route object (`RouteEntry`, `layer2.h`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) output: IfName,
    /// `input_itf`: `None` when cdx did not know the name.
    pub(super) input: Option<IfName>,
    /// `underlying_input_itf`: the named interface if known, else the input.
    pub(super) underlying_input: Option<IfName>,
    pub(super) mac: [u8; 6],
    pub(super) mtu: u16,
    pub(super) flags: u32,
    pub(super) tunnel_dst: [u8; 16],
    /// `nbref`: 16 bits, links refused at 0xFFFF.
    pub(super) refcount: u16,
}

/// What one direction's hardware entry forwards with: copied from its route at insertion
/// (`dpa_get_tx_info_by_itf`, `devman.c`), and after that only the MTU changes
/// (`ct_update_one`, `control_ipv4.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct HwEntry {
    pub(super) output: IfName,
    pub(super) input: IfName,
    pub(super) mac: [u8; 6],
    pub(super) mtu: u16,
    /// The source MAC when it is not the FMan port's own (ASK: a VLAN's).
    pub(super) source_mac: Option<[u8; 6]>,
}

/// The shared state.
#[derive(Debug)]
pub(super) struct Env {
    pub(super) build: Abi,
    pub(super) ipv6_activity: Ipv6Activity,
    pub(super) hz: u32,
    pub(super) interfaces: Interfaces,
    pub(super) routes: BTreeMap<u32, Route>,
    /// Pairs with at least one direction in hardware, and the limit.
    pub(super) hw_pairs: usize,
    pub(super) capacity: usize,
    /// Index 0: normal flows; 1: the 4o6/4rd variants (stored, not used by any flow).
    pub(super) timeouts: [Timeouts; 2],
    pub(super) counters: SimCounters,
    /// Hardware inserts and deletes since the runner last asked (each a slow FMan command).
    pub(super) hw_ops: u32,
}

impl Env {
    /// `L2_route_get` (`layer2.c`): links `id`, unless it is unknown or its 16-bit reference
    /// count is saturated (0xFFFF), which cdx answers with "no route" and nothing else.
    pub(super) fn route_get(&mut self, id: u32) -> Option<u32> {
        let route = self.routes.get_mut(&id)?;
        if route.refcount == u16::MAX {
            self.counters.links_refused += 1;
            return None;
        }
        route.refcount += 1;
        Some(id)
    }

    /// `L2_route_put`.
    pub(super) fn route_put(&mut self, id: u32) {
        if let Some(route) = self.routes.get_mut(&id) {
            route.refcount = route.refcount.saturating_sub(1);
        }
    }

    /// `insert_entry_in_classif_table` (`cdx_ehash.c`) for a direction linked to `route`:
    /// fails (cdx's `FAILURE`, 0xFFFF) for a protocol FMan has no table for, a route whose
    /// input cdx did not know or whose output it no longer knows, an input or an output
    /// that is on no FMan port (a parent removed under it), or a full table (`pair_in_hw`:
    /// the pair already holds a slot). Out of a PPPoE session the entry sends to the
    /// session's peer, whatever MAC the route holds (`dpa_get_tx_info_by_itf`).
    pub(super) fn hw_insert(
        &mut self,
        route: u32,
        protocol: u16,
        pair_in_hw: bool,
    ) -> Option<HwEntry> {
        let entry = self.routes.get(&route).and_then(|route| {
            let input = route.input?;
            let underlying = route.underlying_input.unwrap_or(input);
            self.interfaces.fman_port(&underlying)?;
            self.interfaces.fman_port(&route.output)?;
            let session = self.interfaces.session_under(&route.output);
            Some(HwEntry {
                output: route.output,
                input,
                mac: session.map_or(route.mac, |session| session.mac),
                mtu: route.mtu,
                source_mac: self.interfaces.source_mac(&route.output),
            })
        });
        let table = matches!(protocol, IPPROTO_TCP | IPPROTO_UDP);
        let room = pair_in_hw || self.hw_pairs < self.capacity;
        match entry.filter(|_| table && room) {
            Some(entry) => {
                self.hw_ops += 1;
                self.counters.hw_inserts += 1;
                Some(entry)
            }
            None => {
                self.counters.insert_failures += 1;
                None
            }
        }
    }

    /// A hardware entry removed (one FMan command).
    pub(super) fn hw_delete(&mut self) {
        self.hw_ops += 1;
        self.counters.hw_deletes += 1;
    }

    /// `get_timeout_value` for a flow, in ticks: seconds × `HZ` in 32 bits, as cdx
    /// multiplies them.
    pub(super) fn timeout_ticks(&self, protocol: u16, bidirectional: bool) -> u32 {
        self.timeouts[0].for_flow(protocol, bidirectional).wrapping_mul(self.hz)
    }
}
