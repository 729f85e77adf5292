//! The pure model: cdx's command handling without threads, sockets or clocks.

use std::collections::BTreeMap;
use std::time::Instant;

use zerocopy::FromBytes;

use crate::fci::MAX_PAYLOAD;
use crate::fpp::ff_control::FfControlWire;
use crate::fpp::{
    Abi, AbiPayload, Action, CtCmd, CtEvent, FCode, Family, Payload, ReturnCode, TimeoutCmd, V4,
    V6, query, unwritten,
};

use super::clock::{Clock, jiffies32};
use super::env::Env;
use super::fill::Filler;
use super::onif::Interfaces;
use super::table::{CtTable, is_v4};
use super::{
    FlowMatch, SimConfig, SimConntrack, SimCounters, SimError, SimPppoe, SimRoute, SimTable,
    SimVlan, Timeouts,
};

/// cdx's hardware conntrack hash: 32 768 buckets.
pub const DEFAULT_CAPACITY: usize = 32_768;

/// Module bytes (the high byte of a command code) NXP's `FCODE_TO_EVENT` maps to a handler
/// slot (`cdx_cmdhandler.c`). Any other byte makes it return -1 into an unsigned `eventid`,
/// and `gCmdProcTable[eventid]` reads far outside the table.
const LSDK_MODULES: [u8; 21] = [
    0x00, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0d, 0x0e, 0x0f, 0x10, 0x11,
    0x12, 0x14, 0x15, 0x16, 0x20,
];

/// A reply payload as cdx writes it: the return code, then data. At most 2 + 256 bytes.
/// A withheld reply ([`SimReply::is_withheld`]) is no reply at all.
#[derive(Clone)]
pub struct SimReply {
    buf: [u8; 2 + MAX_PAYLOAD],
    len: usize,
    withheld: bool,
}

impl SimReply {
    fn new() -> SimReply {
        SimReply { buf: [0; 2 + MAX_PAYLOAD], len: 2, withheld: false }
    }

    /// A reply carrying only `rc`.
    pub fn with_rc(rc: ReturnCode) -> SimReply {
        let mut reply = SimReply::new();
        reply.set_rc(rc);
        reply
    }

    fn withheld() -> SimReply {
        SimReply { withheld: true, len: 0, ..SimReply::new() }
    }

    /// `true` when cdx sends nothing back (it is wedged).
    pub fn is_withheld(&self) -> bool {
        self.withheld
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

    pub(super) fn extend(&mut self, data: &[u8]) {
        let end = (self.len + data.len()).min(self.buf.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(data.get(..end - self.len).unwrap_or_default());
            self.len = end;
        }
    }

    /// Writes a walk reply of `entry` (return code OK) followed by `tail` bytes, and returns
    /// its bytes, so that the unwritten ones can be filled.
    pub(super) fn set_walk_entry<P: AbiPayload>(
        &mut self,
        abi: Abi,
        entry: &P,
        tail: usize,
    ) -> &mut [u8] {
        self.len = query::emit_reply_with_tail(abi, ReturnCode::Ok, entry, tail, &mut self.buf)
            .unwrap_or(2);
        self.buf.get_mut(..self.len).unwrap_or_default()
    }
}

impl std::fmt::Debug for SimReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimReply").field("rc", &self.rc()).field("data", &self.data()).finish()
    }
}

/// A change event as the software cdx sends it: the event and its payload bytes (in the
/// model's ABI, unwritten fields filled).
#[derive(Clone)]
pub struct SimEvent {
    event: CtEvent,
    payload: [u8; 128],
    len: usize,
}

impl SimEvent {
    pub(super) fn encode(abi: Abi, filler: &mut Filler, event: CtEvent) -> SimEvent {
        let mut payload = [0u8; 128];
        let len = event.emit_for(abi, &mut payload).unwrap_or(0);
        let ranges = match event {
            CtEvent::V4(_) => unwritten::removed_event::<V4>(abi),
            CtEvent::V6(_) => unwritten::removed_event::<V6>(abi),
        };
        filler.fill(payload.get_mut(..len).unwrap_or_default(), &ranges);
        SimEvent { event, payload, len }
    }

    /// The event.
    pub fn event(&self) -> CtEvent {
        self.event
    }

    /// Its code.
    pub fn fcode(&self) -> FCode {
        self.event.fcode()
    }

    /// Its payload bytes.
    pub fn payload(&self) -> &[u8] {
        self.payload.get(..self.len).unwrap_or_default()
    }
}

impl std::fmt::Debug for SimEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.event.fmt(f)
    }
}

/// The software cdx: tables, routes, interfaces, timeouts and aging, driven by FPP
/// commands and a caller-supplied clock.
#[derive(Debug)]
pub struct Cdx {
    pub(super) env: Env,
    pub(super) clock: Clock,
    pub(super) filler: Filler,
    pub(super) ct4: CtTable<V4>,
    pub(super) ct6: CtTable<V6>,
    pub(super) route_cursor: Option<u32>,
    /// The last VLAN and PPPoE session a walk returned.
    pub(super) vlan_cursor: Option<crate::fpp::IfName>,
    pub(super) pppoe_cursor: Option<crate::fpp::IfName>,
    ff_enabled: bool,
    wedged: bool,
    outbox: Vec<SimEvent>,
}

impl Cdx {
    /// A cdx as `config` describes it (its interfaces, capacity, ABI, clock rate, fill and
    /// IPv6 activity rule).
    ///
    /// # Errors
    /// [`SimError::Interface`] for a name that is not a valid cdx interface name.
    pub fn new(config: &SimConfig) -> Result<Cdx, SimError> {
        let fman: Vec<crate::fpp::IfName> = config
            .interfaces
            .iter()
            .map(|name| {
                crate::fpp::IfName::new(name)
                    .map_err(|source| SimError::Interface { name: name.clone(), source })
            })
            .collect::<Result<_, _>>()?;
        Ok(Cdx {
            env: Env {
                build: config.abi,
                ipv6_activity: config.ipv6_activity(),
                hz: config.hz.max(1),
                interfaces: Interfaces::new(config.abi, &fman),
                routes: BTreeMap::new(),
                hw_pairs: 0,
                capacity: config.capacity,
                timeouts: [Timeouts::default(); 2],
                counters: SimCounters::default(),
                hw_ops: 0,
            },
            clock: Clock::new(config.hz),
            filler: Filler::new(config.unwritten),
            ct4: CtTable::default(),
            ct6: CtTable::default(),
            route_cursor: None,
            vlan_cursor: None,
            pppoe_cursor: None,
            ff_enabled: true,
            wedged: false,
            outbox: Vec::new(),
        })
    }

    /// The ABI (and build) modelled.
    pub fn abi(&self) -> Abi {
        self.env.build
    }

    /// Handles one command as cdx does and returns its reply payload; events the command
    /// causes (VLAN or PPPoE deregistration) are kept for [`Cdx::take_events`].
    pub fn handle(&mut self, fcode: FCode, payload: &[u8], now: Instant) -> SimReply {
        let mut outbox = std::mem::take(&mut self.outbox);
        let reply = self.handle_with(fcode, payload, now, &mut |event| {
            outbox.push(event.clone());
            true
        });
        self.outbox = outbox;
        reply
    }

    /// Handles one command, offering the events it causes to `deliver` (`false`: the event
    /// could not be sent, and cdx keeps the conntrack).
    pub fn handle_with(
        &mut self,
        fcode: FCode,
        payload: &[u8],
        now: Instant,
        deliver: &mut dyn FnMut(&SimEvent) -> bool,
    ) -> SimReply {
        if self.wedged {
            return SimReply::withheld();
        }
        self.clock.start(now);
        let ticks = self.clock.ticks(now);
        let module = fcode.value().to_be_bytes()[0];
        // cdx_cmd_handler answers VOICE_BUFFER_RESET itself, before the table lookup.
        if fcode == FCode::VoiceBufferReset {
            return SimReply::with_rc(ReturnCode::Ok);
        }
        if !LSDK_MODULES.contains(&module) && self.env.build == Abi::Lsdk {
            // NXP's cdx indexes its handler table with (u32)-1: on a board the kernel oopses
            // with the control mutex held. Modelled as a cdx that never answers again.
            self.env.counters.out_of_table_commands += 1;
            self.wedged = true;
            return SimReply::withheld();
        }
        let mut out = SimReply::new();
        let (env, filler) = (&mut self.env, &mut self.filler);
        match fcode {
            FCode::IpRoute => self.route_command(payload, &mut out),
            FCode::Ipv4Conntrack => {
                ct_command(&mut self.ct4, env, filler, payload, ticks, &mut out)
            }
            FCode::Ipv6Conntrack => {
                ct_command(&mut self.ct6, env, filler, payload, ticks, &mut out)
            }
            FCode::Ipv4Reset => self.reset(),
            FCode::Ipv6Reset => {}
            FCode::Ipv4SetTimeout => self.set_timeout(payload, ticks, &mut out),
            FCode::Ipv4GetTimeout => self.ct4.get_timeout(&self.env, payload, ticks, &mut out),
            FCode::Ipv6GetTimeout => self.ct6.get_timeout(&self.env, payload, ticks, &mut out),
            FCode::Ipv4FfControl => self.ff_control(payload, ticks, &mut out),
            FCode::VlanEntry => self.vlan_entry(payload, &mut out, deliver),
            FCode::VlanReset => self.vlan_reset(deliver),
            FCode::PppoeEntry => self.pppoe_entry(payload, &mut out, deliver),
            _ => out.set_rc(ReturnCode::UnknownCommand),
        }
        out
    }

    /// Events caused by commands given to [`Cdx::handle`], oldest first.
    pub fn take_events(&mut self) -> Vec<SimEvent> {
        std::mem::take(&mut self.outbox)
    }

    /// Runs aging at `now` and returns the REMOVED events of the pairs it removed.
    pub fn tick(&mut self, now: Instant) -> Vec<SimEvent> {
        let mut events = Vec::new();
        self.tick_with(now, &mut |event| {
            events.push(event.clone());
            true
        });
        events
    }

    /// Runs aging at `now`, offering each REMOVED event to `deliver`. A pair is removed
    /// only when `deliver` returns `true`; otherwise its timer fires again at the next tick.
    pub fn tick_with(&mut self, now: Instant, deliver: &mut dyn FnMut(&SimEvent) -> bool) {
        if self.wedged {
            return;
        }
        self.clock.start(now);
        let ticks = self.clock.ticks(now);
        let abi = self.env.build;
        let Cdx { env, filler, ct4, ct6, .. } = self;
        ct4.age(env, ticks, &mut |change| {
            deliver(&SimEvent::encode(abi, filler, CtEvent::V4(change)))
        });
        ct6.age(env, ticks, &mut |change| {
            deliver(&SimEvent::encode(abi, filler, CtEvent::V6(change)))
        });
    }

    /// Stamps the hardware entries of the pairs `flows` selects, as FMan does when it
    /// forwards their packets. Returns how many pairs had one.
    pub fn mark_active(&mut self, flows: &FlowMatch, now: Instant) -> usize {
        self.clock.start(now);
        let ticks = self.clock.ticks(now);
        self.ct4.mark_active(flows, ticks) + self.ct6.mark_active(flows, ticks)
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

    /// The aging timeouts in force, in seconds as set.
    pub fn timeouts(&self) -> Timeouts {
        self.env.timeouts[0]
    }

    /// Whether FF_CONTROL last enabled fast forwarding (the default).
    pub fn ff_enabled(&self) -> bool {
        self.ff_enabled
    }

    /// `true` once a command made NXP's cdx read outside its handler table.
    pub fn is_wedged(&self) -> bool {
        self.wedged
    }

    /// What the model counted.
    pub fn counters(&self) -> SimCounters {
        self.env.counters
    }

    /// Hardware inserts and deletes since the last call (each a slow FMan host command).
    pub fn take_hw_ops(&mut self) -> u32 {
        std::mem::take(&mut self.env.hw_ops)
    }

    /// Everything the model holds, in a stable order (routes by id, conntracks IPv4 first,
    /// then by original tuple).
    pub fn snapshot(&self, now: Instant) -> SimTable {
        let now32 = jiffies32(self.clock.ticks(now));
        let routes = self.env.routes.iter().map(|(&id, route)| SimRoute::of(id, route)).collect();
        let mut v4: Vec<SimConntrack> =
            self.ct4.pairs().map(|pair| SimConntrack::of(pair, self, now32)).collect();
        let mut v6: Vec<SimConntrack> =
            self.ct6.pairs().map(|pair| SimConntrack::of(pair, self, now32)).collect();
        v4.sort_by_key(|ct| (ct.orig, ct.protocol));
        v6.sort_by_key(|ct| (ct.orig, ct.protocol));
        v4.extend(v6);
        let interfaces = self.env.interfaces.names().map(ToString::to_string).collect();
        let vlans =
            self.env.interfaces.vlans.iter().map(|(name, v)| SimVlan::of(name, v)).collect();
        let pppoe =
            self.env.interfaces.pppoe.iter().map(|(name, p)| SimPppoe::of(name, p)).collect();
        SimTable { routes, conntracks: v4, interfaces, vlans, pppoe }
    }

    /// `IPV4_RESET`: every conntrack of both families and every route (no events).
    fn reset(&mut self) {
        self.ct4.clear(&mut self.env);
        self.ct6.clear(&mut self.env);
        self.env.routes.clear();
        self.route_cursor = None;
    }

    /// `IPv4_HandleIP_SET_TIMEOUT`: seconds × HZ in 32 bits; any non-zero `sam_4o6` sets
    /// the 4o6 variants; an unknown protocol is `UNKNOWN_ACTION` (the timers are
    /// re-evaluated anyway).
    fn set_timeout(&mut self, payload: &[u8], now: u64, out: &mut SimReply) {
        let Ok(cmd) = TimeoutCmd::parse(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        let variant = usize::from(cmd.sam_4o6 != 0);
        let rc = match self.env.timeouts.get_mut(variant) {
            Some(timeouts) => match cmd.protocol {
                6 => {
                    timeouts.tcp = cmd.value1;
                    ReturnCode::Ok
                }
                17 => {
                    timeouts.udp = cmd.value1;
                    timeouts.udp_unidir = if cmd.value2 > 0 { cmd.value2 } else { cmd.value1 };
                    ReturnCode::Ok
                }
                0 => {
                    timeouts.other = cmd.value1;
                    ReturnCode::Ok
                }
                _ => ReturnCode::UnknownAction,
            },
            None => ReturnCode::UnknownAction,
        };
        self.ct4.retime(&self.env, now);
        self.ct6.retime(&self.env, now);
        out.set_rc(rc);
    }

    /// `IPv4_HandleIP_FF_CONTROL`: 1 enables and resets every entry's activity time, 0
    /// disables, anything else is `WRONG_COMMAND_PARAM`.
    fn ff_control(&mut self, payload: &[u8], now: u64, out: &mut SimReply) {
        let Ok(cmd) = FfControlWire::ref_from_bytes(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        match cmd.enable.get() {
            1 => {
                self.ff_enabled = true;
                self.ct4.reset_activity(now);
                self.ct6.reset_activity(now);
            }
            0 => self.ff_enabled = false,
            _ => return out.set_rc(ReturnCode::WrongCommandParam),
        }
        out.set_rc(ReturnCode::Ok);
    }
}

/// `FPP_CMD_IPV4_CONNTRACK` / `FPP_CMD_IPV6_CONNTRACK`.
fn ct_command<F: Family>(
    table: &mut CtTable<F>,
    env: &mut Env,
    filler: &mut Filler,
    payload: &[u8],
    now: u64,
    out: &mut SimReply,
) {
    let Ok(cmd) = CtCmd::<F>::parse_for(env.build, payload) else {
        return out.set_rc(ReturnCode::WrongCommandSize);
    };
    let rc = match cmd.action {
        Action::Register => table.register(env, &cmd, now),
        Action::Update => table.update(env, &cmd, now),
        Action::Deregister => table.deregister(env, &cmd),
        Action::Query => {
            table.cursor = 0;
            return walk(table, env, filler, out);
        }
        Action::QueryCont => return walk(table, env, filler, out),
        // IPv6_handle_CONNTRACK's default case answers UNKNOWN_COMMAND.
        _ if is_v4::<F>() => ReturnCode::UnknownAction,
        _ => ReturnCode::UnknownCommand,
    };
    out.set_rc(rc);
}

/// One step of a conntrack walk: the next pair after the cursor, or the end. The entry
/// carries what cdx writes (`IPvX_CT_Get_Hash_Snapshot`); the rest is filled.
fn walk<F: Family>(table: &mut CtTable<F>, env: &Env, filler: &mut Filler, out: &mut SimReply) {
    let next = table
        .slots
        .iter()
        .enumerate()
        .skip(table.cursor)
        .find_map(|(slot, pair)| pair.as_ref().map(|pair| (slot, pair)));
    let Some((slot, pair)) = next else {
        table.cursor = 0;
        return out.set_rc(ReturnCode::CtEntryNotFound);
    };
    table.cursor = slot + 1;
    let mut entry = pair.removed().to_cmd();
    entry.action = Action::Register;
    entry.qos_mark = pair.walk_mark(env.build);
    entry.extension = Some(crate::fpp::CtExtension::default());
    let bytes = out.set_walk_entry(env.build, &entry, unwritten::WALK_REPLY_TAIL);
    let tail = bytes.len().saturating_sub(unwritten::WALK_REPLY_TAIL)..bytes.len();
    let mut ranges = unwritten::conntrack_walk_entry::<F>(env.build);
    ranges.push(tail);
    filler.fill(bytes, &ranges);
}
