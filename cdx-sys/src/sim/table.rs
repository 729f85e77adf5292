//! The conntrack table of the model, generic over the address family, and the state it
//! shares with routes and the hardware budget.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::fpp::{
    Action, CtChange, CtCmd, CtExtension, CtFlags, FCode, Family, IfName, Payload, ReturnCode,
    TimeoutCmd, Tuple, query,
};

use super::model::SimReply;

/// Protocols FMan has hash tables for.
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;

/// Default aging timeouts of cdx, in seconds.
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
    fn default() -> Timeouts {
        Timeouts { tcp: 432_000, udp: 180, udp_unidir: 30, other: 600 }
    }
}

impl Timeouts {
    fn for_flow(&self, protocol: u16, bidirectional: bool) -> Duration {
        let seconds = match protocol {
            IPPROTO_TCP => self.tcp,
            IPPROTO_UDP if bidirectional => self.udp,
            IPPROTO_UDP => self.udp_unidir,
            _ => self.other,
        };
        Duration::from_secs(u64::from(seconds))
    }
}

/// A registered route object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) output: IfName,
    pub(super) input: IfName,
    pub(super) underlying_input: IfName,
    pub(super) dst_mac: [u8; 6],
    pub(super) mtu: u16,
    pub(super) flags: u32,
    pub(super) tunnel_dst: [u8; 16],
    /// Conntrack directions linked to this route.
    pub(super) refcount: u32,
}

/// What conntrack tables share: routes, interfaces, the hardware budget, timeouts.
#[derive(Debug)]
pub(super) struct Env {
    pub(super) interfaces: HashSet<IfName>,
    pub(super) routes: BTreeMap<u32, Route>,
    /// Pairs with at least one direction in the hardware table, and the limit.
    pub(super) hw_pairs: usize,
    pub(super) capacity: usize,
    /// Index 0: normal flows; 1: the 4o6/4rd variants (stored, not used by any flow).
    pub(super) timeouts: [Timeouts; 2],
}

/// A direction of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dir {
    Orig,
    Reply,
}

const DIRECTIONS: [Dir; 2] = [Dir::Orig, Dir::Reply];

/// One value per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PerDir<T> {
    pub(super) orig: T,
    pub(super) reply: T,
}

impl<T> PerDir<T> {
    fn get(&self, dir: Dir) -> &T {
        match dir {
            Dir::Orig => &self.orig,
            Dir::Reply => &self.reply,
        }
    }

    fn get_mut(&mut self, dir: Dir) -> &mut T {
        match dir {
            Dir::Orig => &mut self.orig,
            Dir::Reply => &mut self.reply,
        }
    }
}

/// One registered connection: both directions, as cdx holds a pair of entries.
#[derive(Clone, Debug)]
pub(super) struct Pair<F: Family> {
    pub(super) orig: Tuple<F::Addr>,
    pub(super) reply: Tuple<F::Addr>,
    pub(super) protocol: u16,
    pub(super) flags: CtFlags,
    /// 16-bit marks of each direction (cdx stores marks per entry).
    pub(super) marks: [u16; 2],
    pub(super) route_ids: PerDir<u32>,
    pub(super) extension: Option<CtExtension>,
    /// Route id each direction is linked to (route registered and direction enabled).
    pub(super) linked: PerDir<Option<u32>>,
    /// Whether each direction has a hardware entry.
    pub(super) in_hw: PerDir<bool>,
    /// The latest hardware hit (or registration, or FF_CONTROL enable).
    pub(super) last_activity: Instant,
    /// When the aging timer fires next.
    pub(super) timer_at: Instant,
}

impl<F: Family> Pair<F> {
    fn enabled(&self, direction: Dir) -> bool {
        let disabled = match direction {
            Dir::Orig => CtFlags::ORIG_DISABLED,
            Dir::Reply => CtFlags::REP_DISABLED,
        };
        !self.flags.contains(disabled)
    }

    fn bidirectional(&self) -> bool {
        self.enabled(Dir::Orig) && self.enabled(Dir::Reply)
    }

    pub(super) fn timeout(&self, env: &Env) -> Duration {
        env.timeouts[0].for_flow(self.protocol, self.bidirectional())
    }

    /// Time left before aging removes the pair (zero once expired).
    pub(super) fn remaining(&self, env: &Env, now: Instant) -> Duration {
        (self.last_activity + self.timeout(env)).saturating_duration_since(now)
    }

    pub(super) fn in_hardware(&self) -> bool {
        self.in_hw.orig || self.in_hw.reply
    }

    /// The mark as a query reports it: one 16-bit mark, or both with bit 31 when they differ.
    pub(super) fn fwmark(&self) -> u32 {
        let [orig, reply] = self.marks.map(u32::from);
        if orig == reply { orig } else { orig | reply << 16 | 0x8000_0000 }
    }

    /// The pair as a command (query replies and events).
    pub(super) fn to_cmd(&self, action: Action) -> CtCmd<F> {
        CtCmd {
            action,
            orig: self.orig,
            reply: self.reply,
            protocol: self.protocol,
            flags: self.flags,
            fwmark: self.fwmark(),
            route_id: self.route_ids.orig,
            route_id_reply: self.route_ids.reply,
            extension: None,
        }
    }
}

/// Splits a command's mark into the two 16-bit marks cdx stores: bit 31 set means
/// `orig | reply << 16`, otherwise both directions use the low 16 bits.
fn split_mark(fwmark: u32) -> [u16; 2] {
    let orig = (fwmark & 0xffff) as u16;
    if fwmark & 0x8000_0000 != 0 { [orig, ((fwmark >> 16) & 0x7fff) as u16] } else { [orig, orig] }
}

type Key<A> = (Tuple<A>, u16);

/// The conntrack table of one family.
#[derive(Debug)]
pub(super) struct CtTable<F: Family> {
    slots: Vec<Option<Pair<F>>>,
    free: Vec<usize>,
    by_orig: HashMap<Key<F::Addr>, usize>,
    by_reply: HashMap<Key<F::Addr>, usize>,
    /// The walk cursor, shared by every client as in cdx: next slot to look at.
    cursor: usize,
    /// No pair's timer fires before this (a lower bound that spares most tick scans).
    earliest_timer: Option<Instant>,
}

impl<F: Family> Default for CtTable<F> {
    fn default() -> CtTable<F> {
        CtTable {
            slots: Vec::new(),
            free: Vec::new(),
            by_orig: HashMap::new(),
            by_reply: HashMap::new(),
            cursor: 0,
            earliest_timer: None,
        }
    }
}

impl<F: Family> CtTable<F> {
    pub(super) fn len(&self) -> usize {
        self.by_orig.len()
    }

    pub(super) fn pairs(&self) -> impl Iterator<Item = &Pair<F>> {
        self.slots.iter().flatten()
    }

    pub(super) fn pairs_mut(&mut self) -> impl Iterator<Item = &mut Pair<F>> {
        self.slots.iter_mut().flatten()
    }

    /// Handles one conntrack command.
    pub(super) fn command(
        &mut self,
        env: &mut Env,
        payload: &[u8],
        now: Instant,
        out: &mut SimReply,
    ) {
        let Ok(cmd) = CtCmd::<F>::parse(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        let rc = match cmd.action {
            Action::Register => self.register(env, &cmd, now),
            Action::Update => self.update(env, &cmd, now),
            Action::Deregister => self.deregister(env, &cmd),
            Action::Query => {
                self.cursor = 0;
                return self.walk(out);
            }
            Action::QueryCont => return self.walk(out),
            _ => ReturnCode::UnknownAction,
        };
        out.set_rc(rc);
    }

    fn register(&mut self, env: &mut Env, cmd: &CtCmd<F>, now: Instant) -> ReturnCode {
        let orig_key = (cmd.orig, cmd.protocol);
        let reply_key = (cmd.reply, cmd.protocol);
        // The inverse flow is registered: the new tuples collide with the other direction.
        if self.by_reply.contains_key(&orig_key) || self.by_orig.contains_key(&reply_key) {
            return ReturnCode::CreationFailed;
        }
        if self.by_orig.contains_key(&orig_key) || self.by_reply.contains_key(&reply_key) {
            return ReturnCode::CtEntryAlreadyRegistered;
        }
        let mut pair = Pair::<F> {
            orig: cmd.orig,
            reply: cmd.reply,
            protocol: cmd.protocol,
            flags: cmd.flags,
            marks: split_mark(cmd.fwmark),
            route_ids: PerDir { orig: cmd.route_id, reply: cmd.route_id_reply },
            extension: cmd.extension,
            linked: PerDir::default(),
            in_hw: PerDir::default(),
            last_activity: now,
            timer_at: now,
        };
        if let Err(rc) = apply_routes(env, &mut pair) {
            detach(env, &mut pair);
            return rc;
        }
        pair.timer_at = now + pair.timeout(env);
        self.note_timer(pair.timer_at);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.by_orig.insert(orig_key, slot);
        self.by_reply.insert(reply_key, slot);
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some(pair);
        }
        ReturnCode::Ok
    }

    /// The slot of the pair `cmd` names: its original tuple, with the reply tuple as twin.
    fn find(&self, cmd: &CtCmd<F>) -> Option<usize> {
        let slot = *self.by_orig.get(&(cmd.orig, cmd.protocol))?;
        (self.by_reply.get(&(cmd.reply, cmd.protocol)) == Some(&slot)).then_some(slot)
    }

    fn update(&mut self, env: &mut Env, cmd: &CtCmd<F>, now: Instant) -> ReturnCode {
        let Some(pair) =
            self.find(cmd).and_then(|slot| self.slots.get_mut(slot)).and_then(Option::as_mut)
        else {
            return ReturnCode::CtEntryNotFound;
        };
        pair.flags = cmd.flags;
        pair.marks = split_mark(cmd.fwmark);
        pair.route_ids = PerDir { orig: cmd.route_id, reply: cmd.route_id_reply };
        if cmd.extension.is_some() {
            pair.extension = cmd.extension;
        }
        let rc = match apply_routes(env, pair) {
            Ok(()) => ReturnCode::Ok,
            Err(rc) => rc,
        };
        // The timer is only ever shortened at once; a longer timeout applies at expiry.
        let deadline = (pair.last_activity + pair.timeout(env)).max(now);
        if deadline < pair.timer_at {
            pair.timer_at = deadline;
        }
        let timer_at = pair.timer_at;
        self.note_timer(timer_at);
        rc
    }

    fn deregister(&mut self, env: &mut Env, cmd: &CtCmd<F>) -> ReturnCode {
        match self.find(cmd) {
            Some(slot) => {
                self.remove(env, slot);
                ReturnCode::Ok
            }
            None => ReturnCode::CtEntryNotFound,
        }
    }

    /// Removes the pair in `slot`, releasing its routes and hardware entries.
    fn remove(&mut self, env: &mut Env, slot: usize) -> Option<Pair<F>> {
        let mut pair = self.slots.get_mut(slot)?.take()?;
        detach(env, &mut pair);
        self.by_orig.remove(&(pair.orig, pair.protocol));
        self.by_reply.remove(&(pair.reply, pair.protocol));
        self.free.push(slot);
        Some(pair)
    }

    /// One step of the walk: the next pair after the cursor, or the end.
    fn walk(&mut self, out: &mut SimReply) {
        let next = self
            .slots
            .iter()
            .enumerate()
            .skip(self.cursor)
            .find_map(|(slot, pair)| pair.as_ref().map(|pair| (slot, pair)));
        match next {
            Some((slot, pair)) => {
                self.cursor = slot + 1;
                let mut entry = pair.to_cmd(Action::Register);
                entry.extension = Some(CtExtension::default());
                out.set_query_entry(&entry);
            }
            None => {
                self.cursor = 0;
                out.set_rc(ReturnCode::CtEntryNotFound);
            }
        }
    }

    /// `*_GET_TIMEOUT`: remaining seconds of the pair with this original tuple.
    pub(super) fn get_timeout(&self, env: &Env, payload: &[u8], now: Instant, out: &mut SimReply) {
        let Ok(cmd) = CtCmd::<F>::parse(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        let Some(pair) = self
            .by_orig
            .get(&(cmd.orig, cmd.protocol))
            .and_then(|&slot| self.slots.get(slot))
            .and_then(Option::as_ref)
        else {
            return out.set_rc(ReturnCode::CmdErr);
        };
        let remaining = pair.remaining(env, now);
        // cdx's IPv4 handler rounds up, its IPv6 handler truncates.
        let seconds = if F::GET_TIMEOUT == FCode::Ipv4GetTimeout {
            remaining.as_nanos().div_ceil(1_000_000_000)
        } else {
            u128::from(remaining.as_secs())
        };
        let result = TimeoutCmd {
            protocol: pair.protocol,
            sam_4o6: 0,
            value1: u32::try_from(seconds).unwrap_or(u32::MAX),
            value2: 0,
        };
        out.set_data(ReturnCode::Ok, &result);
    }

    /// Every pair whose timer fired: re-armed if it was active since, otherwise offered to
    /// `deliver` as a REMOVED event and removed once delivered (kept and retried one tick
    /// later otherwise, as cdx does when its event buffer is busy).
    pub(super) fn age(
        &mut self,
        env: &mut Env,
        now: Instant,
        retry: Duration,
        deliver: &mut dyn FnMut(CtChange<F>) -> bool,
    ) {
        if self.earliest_timer.is_none_or(|earliest| earliest > now) {
            return;
        }
        let mut earliest: Option<Instant> = None;
        for slot in 0..self.slots.len() {
            let Some(pair) = self.slots.get_mut(slot).and_then(Option::as_mut) else { continue };
            if pair.timer_at <= now {
                let remaining = pair.remaining(env, now);
                if !remaining.is_zero() {
                    pair.timer_at = now + remaining;
                } else if deliver(CtChange::removed(&pair.to_cmd(Action::Removed))) {
                    self.remove(env, slot);
                    continue;
                } else {
                    pair.timer_at = now + retry;
                }
            }
            earliest = Some(earliest.map_or(pair.timer_at, |e| e.min(pair.timer_at)));
        }
        self.earliest_timer = earliest;
    }

    /// Re-evaluates every timer after a timeout change (shortening only).
    pub(super) fn retime(&mut self, env: &Env, now: Instant) {
        let mut earliest = self.earliest_timer;
        for pair in self.slots.iter_mut().flatten() {
            let deadline = (pair.last_activity + pair.timeout(env)).max(now);
            if deadline < pair.timer_at {
                pair.timer_at = deadline;
                earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
            }
        }
        self.earliest_timer = earliest;
    }

    fn note_timer(&mut self, at: Instant) {
        self.earliest_timer = Some(self.earliest_timer.map_or(at, |e| e.min(at)));
    }

    /// Removes everything (RESET); routes and the budget are reset by the caller.
    pub(super) fn clear(&mut self) {
        *self = CtTable::default();
    }
}

/// Links each direction to its route and puts it in hardware as cdx does on REGISTER and
/// UPDATE: a direction is linked when it is enabled and its route id is registered, and in
/// hardware when linked and the insertion succeeds (TCP and UDP only, within capacity).
fn apply_routes<F: Family>(env: &mut Env, pair: &mut Pair<F>) -> Result<(), ReturnCode> {
    let mut result = Ok(());
    for direction in DIRECTIONS {
        let wanted = *pair.route_ids.get(direction);
        let link = (pair.enabled(direction) && wanted != 0 && env.routes.contains_key(&wanted))
            .then_some(wanted);
        if *pair.linked.get(direction) != link {
            unlink(env, pair, direction);
            if let Some(id) = link {
                if let Some(route) = env.routes.get_mut(&id) {
                    route.refcount += 1;
                }
                *pair.linked.get_mut(direction) = Some(id);
            }
        }
        if pair.linked.get(direction).is_some() && !pair.in_hw.get(direction) {
            let insertable = matches!(pair.protocol, IPPROTO_TCP | IPPROTO_UDP);
            let room = pair.in_hardware() || env.hw_pairs < env.capacity;
            if insertable && room {
                if !pair.in_hardware() {
                    env.hw_pairs += 1;
                }
                *pair.in_hw.get_mut(direction) = true;
            } else {
                result = Err(ReturnCode::Failure);
            }
        }
    }
    result
}

/// Drops `direction`'s hardware entry and route link.
fn unlink<F: Family>(env: &mut Env, pair: &mut Pair<F>, direction: Dir) {
    if *pair.in_hw.get(direction) {
        *pair.in_hw.get_mut(direction) = false;
        if !pair.in_hardware() {
            env.hw_pairs = env.hw_pairs.saturating_sub(1);
        }
    }
    if let Some(id) = pair.linked.get_mut(direction).take()
        && let Some(route) = env.routes.get_mut(&id)
    {
        route.refcount = route.refcount.saturating_sub(1);
    }
}

/// Drops both directions.
fn detach<F: Family>(env: &mut Env, pair: &mut Pair<F>) {
    for direction in DIRECTIONS {
        unlink(env, pair, direction);
    }
}

/// Writes `entry` as a walk reply.
pub(super) fn emit_walk_entry<P: Payload>(entry: &P, out: &mut [u8]) -> usize {
    query::emit_reply(ReturnCode::Ok, entry, out).unwrap_or(0)
}
