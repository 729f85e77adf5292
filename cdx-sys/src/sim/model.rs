//! The pure model: cdx's command handling without threads, sockets or clocks.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use zerocopy::FromBytes;

use crate::fci::MAX_PAYLOAD;
use crate::fpp::route::RouteWire;
use crate::fpp::{
    Action, FCode, FfControl, IfName, Payload, ReturnCode, RouteCmd, RouteFlags, TimeoutCmd, V4,
    V6, VlanEntry,
};

use super::table::{CtTable, Env, Route, Timeouts, emit_walk_entry};
use super::{CtEvent, FlowMatch, SimConntrack, SimRoute, SimTable, SimTuple};

/// cdx's hardware conntrack hash: 32 768 buckets.
pub const DEFAULT_CAPACITY: usize = 32_768;

/// A reply payload as cdx writes it: the return code, then data. At most 2 + 256 bytes.
#[derive(Clone)]
pub struct SimReply {
    buf: [u8; 2 + MAX_PAYLOAD],
    len: usize,
}

impl SimReply {
    fn new() -> SimReply {
        SimReply { buf: [0; 2 + MAX_PAYLOAD], len: 2 }
    }

    /// A reply carrying only `rc`.
    pub fn with_rc(rc: ReturnCode) -> SimReply {
        let mut reply = SimReply::new();
        reply.set_rc(rc);
        reply
    }

    /// The return code.
    pub fn rc(&self) -> ReturnCode {
        ReturnCode::from(u16::from_ne_bytes([self.buf[0], self.buf[1]]))
    }

    /// The whole reply payload (return code first), as the FCI reply carries it.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The data after the return code.
    pub fn data(&self) -> &[u8] {
        self.buf.get(2..self.len).unwrap_or_default()
    }

    pub(super) fn set_rc(&mut self, rc: ReturnCode) {
        self.buf[..2].copy_from_slice(&rc.value().to_ne_bytes());
        self.len = 2;
    }

    pub(super) fn set_data<P: Payload>(&mut self, rc: ReturnCode, data: &P) {
        self.set_rc(rc);
        if let Some(dst) = self.buf.get_mut(2..) {
            self.len = 2 + data.emit(dst).unwrap_or(0);
        }
    }

    pub(super) fn set_query_entry<P: Payload>(&mut self, entry: &P) {
        self.len = emit_walk_entry(entry, &mut self.buf).max(2);
    }
}

impl std::fmt::Debug for SimReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimReply").field("rc", &self.rc()).field("data", &self.data()).finish()
    }
}

/// The software cdx: tables, routes, interfaces, timeouts and aging, driven by FPP
/// commands and a caller-supplied clock.
#[derive(Debug)]
pub struct Cdx {
    env: Env,
    ports: HashSet<IfName>,
    vlans: BTreeMap<IfName, VlanEntry>,
    ct4: CtTable<V4>,
    ct6: CtTable<V6>,
    route_cursor: Option<u32>,
    ff_enabled: bool,
}

impl Cdx {
    /// A cdx that knows `ports` as its interfaces and holds at most `capacity` conntrack
    /// pairs in hardware.
    pub fn new(ports: impl IntoIterator<Item = IfName>, capacity: usize) -> Cdx {
        let ports: HashSet<IfName> = ports.into_iter().collect();
        Cdx {
            env: Env {
                interfaces: ports.clone(),
                routes: BTreeMap::new(),
                hw_pairs: 0,
                capacity,
                timeouts: [Timeouts::default(); 2],
            },
            ports,
            vlans: BTreeMap::new(),
            ct4: CtTable::default(),
            ct6: CtTable::default(),
            route_cursor: None,
            ff_enabled: true,
        }
    }

    /// Handles one command as cdx does and returns its reply payload.
    pub fn handle(&mut self, fcode: FCode, payload: &[u8], now: Instant) -> SimReply {
        let mut out = SimReply::new();
        match fcode {
            FCode::IpRoute => self.route_command(payload, &mut out),
            FCode::Ipv4Conntrack => self.ct4.command(&mut self.env, payload, now, &mut out),
            FCode::Ipv6Conntrack => self.ct6.command(&mut self.env, payload, now, &mut out),
            FCode::Ipv4Reset => self.reset(),
            FCode::Ipv6Reset | FCode::VoiceBufferReset => {}
            FCode::Ipv4SetTimeout => self.set_timeout(payload, now, &mut out),
            FCode::Ipv4GetTimeout => self.ct4.get_timeout(&self.env, payload, now, &mut out),
            FCode::Ipv6GetTimeout => self.ct6.get_timeout(&self.env, payload, now, &mut out),
            FCode::Ipv4FfControl => self.ff_control(payload, now, &mut out),
            FCode::VlanEntry => self.vlan_entry(payload, &mut out),
            FCode::VlanReset => self.vlan_reset(),
            _ => out.set_rc(ReturnCode::UnknownCommand),
        }
        out
    }

    /// Runs aging at `now` and returns the REMOVED events of the pairs it removed.
    pub fn tick(&mut self, now: Instant) -> Vec<CtEvent> {
        let mut events = Vec::new();
        self.tick_with(now, Duration::ZERO, &mut |event| {
            events.push(event);
            true
        });
        events
    }

    /// Runs aging at `now`, offering each REMOVED event to `deliver`. A pair is removed
    /// only when `deliver` returns `true`; otherwise it stays and its event is offered
    /// again `retry` later.
    pub fn tick_with(
        &mut self,
        now: Instant,
        retry: Duration,
        deliver: &mut dyn FnMut(CtEvent) -> bool,
    ) {
        self.ct4.age(&mut self.env, now, retry, &mut |change| deliver(CtEvent::V4(change)));
        self.ct6.age(&mut self.env, now, retry, &mut |change| deliver(CtEvent::V6(change)));
    }

    /// Stamps the pairs `flows` selects as forwarded by the hardware at `now` (only pairs
    /// with a direction in hardware: FMan stamps nothing else). Returns how many.
    pub fn mark_active(&mut self, flows: &FlowMatch, now: Instant) -> usize {
        let mut marked = 0;
        let selected = |orig: SimTuple| match flows {
            FlowMatch::All => true,
            FlowMatch::Orig(tuple) => *tuple == orig,
        };
        for pair in self.ct4.pairs_mut() {
            if pair.in_hardware() && selected(pair.orig.into()) {
                pair.last_activity = now;
                marked += 1;
            }
        }
        for pair in self.ct6.pairs_mut() {
            if pair.in_hardware() && selected(pair.orig.into()) {
                pair.last_activity = now;
                marked += 1;
            }
        }
        marked
    }

    /// Sets the hardware capacity (pairs). Pairs already in hardware stay.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.env.capacity = capacity;
    }

    /// Pairs with a direction in hardware.
    pub fn hw_pairs(&self) -> usize {
        self.env.hw_pairs
    }

    /// Registered conntracks (both families).
    pub fn conntrack_count(&self) -> usize {
        self.ct4.len() + self.ct6.len()
    }

    /// The aging timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.env.timeouts[0]
    }

    /// Whether FF_CONTROL last enabled fast forwarding (the default).
    pub fn ff_enabled(&self) -> bool {
        self.ff_enabled
    }

    /// Everything the model holds, in a stable order (routes by id, conntracks IPv4 first,
    /// then by original tuple).
    pub fn snapshot(&self, now: Instant) -> SimTable {
        let routes = self
            .env
            .routes
            .iter()
            .map(|(&id, route)| SimRoute {
                id,
                output: route.output.to_string(),
                input: route.input.to_string(),
                mac: route.dst_mac,
                mtu: route.mtu,
                refcount: route.refcount,
            })
            .collect();
        let mut v4: Vec<SimConntrack> =
            self.ct4.pairs().map(|pair| SimConntrack::of(pair, &self.env, now)).collect();
        let mut v6: Vec<SimConntrack> =
            self.ct6.pairs().map(|pair| SimConntrack::of(pair, &self.env, now)).collect();
        v4.sort_by_key(|ct| (ct.orig, ct.protocol));
        v6.sort_by_key(|ct| (ct.orig, ct.protocol));
        v4.extend(v6);
        SimTable { routes, conntracks: v4 }
    }

    fn route_command(&mut self, payload: &[u8], out: &mut SimReply) {
        // Fields are read as the action needs them: QUERY and DEREGISTER ignore the names.
        let Ok(wire) = RouteWire::ref_from_bytes(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        let id = wire.id.get();
        let rc = match Action::from(wire.action.get()) {
            Action::Register if self.env.routes.contains_key(&id) => {
                ReturnCode::RtEntryAlreadyRegistered
            }
            Action::Register => match self.resolve_ports(wire) {
                Ok((output, input, underlying_input)) => {
                    let mtu = match wire.mtu.get() {
                        0 => 0xffff,
                        mtu => mtu,
                    };
                    let route = Route {
                        output,
                        input,
                        underlying_input,
                        dst_mac: wire.dst_mac,
                        mtu,
                        flags: wire.flags.get(),
                        tunnel_dst: wire.dst_addr,
                        refcount: 0,
                    };
                    self.env.routes.insert(id, route);
                    ReturnCode::Ok
                }
                Err(rc) => rc,
            },
            Action::Update => match (self.resolve_ports(wire), self.env.routes.get_mut(&id)) {
                (_, None) => ReturnCode::RtEntryNotFound,
                (Err(rc), Some(_)) => rc,
                (Ok((output, input, underlying_input)), Some(route)) => {
                    // cdx replaces ports and MAC but keeps the MTU given at registration.
                    route.output = output;
                    route.input = input;
                    route.underlying_input = underlying_input;
                    route.dst_mac = wire.dst_mac;
                    ReturnCode::Ok
                }
            },
            Action::Deregister => match self.env.routes.get(&id) {
                None => ReturnCode::RtEntryNotFound,
                Some(route) if route.refcount > 0 => ReturnCode::RtEntryLinked,
                Some(_) => {
                    self.env.routes.remove(&id);
                    ReturnCode::Ok
                }
            },
            Action::Query => {
                self.route_cursor = None;
                return self.route_walk(out);
            }
            Action::QueryCont => return self.route_walk(out),
            _ => ReturnCode::UnknownAction,
        };
        out.set_rc(rc);
    }

    /// Output, input and underlying input of a route command; unknown inputs are stored
    /// empty (cdx stores NULL), an unknown output is refused.
    fn resolve_ports(&self, wire: &RouteWire) -> Result<(IfName, IfName, IfName), ReturnCode> {
        let known = |field: &[u8; 16]| {
            IfName::from_field(field).ok().filter(|name| self.env.interfaces.contains(name))
        };
        let output = known(&wire.output_device).ok_or(ReturnCode::UnknownInterface)?;
        let input = known(&wire.input_device).unwrap_or(IfName::EMPTY);
        let underlying = known(&wire.underlying_input_device).unwrap_or(IfName::EMPTY);
        Ok((output, input, underlying))
    }

    fn route_walk(&mut self, out: &mut SimReply) {
        let start = self.route_cursor.map_or(0, |id| u64::from(id) + 1);
        let Some((&id, route)) =
            u32::try_from(start).ok().and_then(|start| self.env.routes.range(start..).next())
        else {
            self.route_cursor = None;
            return out.set_rc(ReturnCode::RtEntryNotFound);
        };
        self.route_cursor = Some(id);
        let entry = RouteCmd {
            action: Action::Register,
            mtu: route.mtu,
            dst_mac: route.dst_mac,
            output: route.output,
            input: route.input,
            underlying_input: route.underlying_input,
            id,
            flags: RouteFlags(route.flags),
            tunnel_dst: route.tunnel_dst,
        };
        out.set_query_entry(&entry);
    }

    /// `IPV4_RESET`: every conntrack of both families and every route.
    fn reset(&mut self) {
        self.ct4.clear();
        self.ct6.clear();
        self.env.routes.clear();
        self.env.hw_pairs = 0;
        self.route_cursor = None;
    }

    fn set_timeout(&mut self, payload: &[u8], now: Instant, out: &mut SimReply) {
        let Ok(cmd) = TimeoutCmd::parse(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        let variant = usize::from(cmd.sam_4o6 == 1);
        let Some(timeouts) = self.env.timeouts.get_mut(variant) else { return };
        match cmd.protocol {
            6 => timeouts.tcp = cmd.value1,
            17 => {
                timeouts.udp = cmd.value1;
                timeouts.udp_unidir = if cmd.value2 == 0 { cmd.value1 } else { cmd.value2 };
            }
            0 => timeouts.other = cmd.value1,
            _ => return out.set_rc(ReturnCode::UnknownAction),
        }
        self.ct4.retime(&self.env, now);
        self.ct6.retime(&self.env, now);
        out.set_rc(ReturnCode::Ok);
    }

    fn ff_control(&mut self, payload: &[u8], now: Instant, out: &mut SimReply) {
        let Ok(cmd) = FfControl::parse(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        self.ff_enabled = cmd.enable;
        if cmd.enable {
            self.ct4.pairs_mut().for_each(|pair| pair.last_activity = now);
            self.ct6.pairs_mut().for_each(|pair| pair.last_activity = now);
        }
        out.set_rc(ReturnCode::Ok);
    }

    fn vlan_entry(&mut self, payload: &[u8], out: &mut SimReply) {
        let entry = match VlanEntry::parse(payload) {
            Ok(entry) => entry,
            Err(crate::fpp::FppError::IfName(_)) => {
                return out.set_rc(ReturnCode::UnknownInterface);
            }
            Err(_) => return out.set_rc(ReturnCode::WrongCommandSize),
        };
        let rc = match entry.action {
            Action::Register if self.vlans.contains_key(&entry.ifname) => {
                ReturnCode::VlanEntryAlreadyRegistered
            }
            Action::Register if !self.ports.contains(&entry.phy_ifname) => {
                ReturnCode::UnknownInterface
            }
            Action::Register => {
                self.vlans.insert(entry.ifname, entry);
                self.env.interfaces.insert(entry.ifname);
                ReturnCode::Ok
            }
            Action::Deregister => match self.vlans.remove(&entry.ifname) {
                Some(_) => {
                    self.env.interfaces.remove(&entry.ifname);
                    ReturnCode::Ok
                }
                None => ReturnCode::VlanEntryNotFound,
            },
            _ => ReturnCode::UnknownAction,
        };
        out.set_rc(rc);
    }

    fn vlan_reset(&mut self) {
        for name in std::mem::take(&mut self.vlans).into_keys() {
            self.env.interfaces.remove(&name);
        }
    }
}
