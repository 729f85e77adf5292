//! The conntrack table of the model, generic over the address family: registration,
//! update and removal with cdx's lookups, links and hardware entries. Timing (aging,
//! `GET_TIMEOUT`) is in [`super::aging`].
//!
//! cdx keeps each connection as a pair of entries, one per direction, both hashed by their
//! own tuple in one table (`ct_cache`); a lookup finds an entry whatever its direction
//! (`IPv4_find_ctentry`, `IPv6_find_ctentry`). The model does the same with one index of
//! both tuples, hashed with foldhash as cdx hashes with a few arithmetic steps (SipHash, the
//! standard map's, was 3 % of cmmd's CPU with the software cdx in process;
//! `docs/performance.md`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::HashMap;

use crate::fpp::mark::{cdx_direction_marks, cdx_walk_mark};
use crate::fpp::{
    Abi, Action, CtChange, CtCmd, CtExtension, CtFlags, FCode, Family, ReturnCode, Tuple,
};

use super::clock::{Timer, jiffies32};
use super::env::{Env, HwEntry};

/// A direction of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Dir {
    Orig,
    Reply,
}

impl Dir {
    pub(super) const BOTH: [Dir; 2] = [Dir::Orig, Dir::Reply];

    /// The other direction of the pair.
    pub(super) fn twin(self) -> Dir {
        match self {
            Dir::Orig => Dir::Reply,
            Dir::Reply => Dir::Orig,
        }
    }
}

/// One value per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PerDir<T> {
    pub(super) orig: T,
    pub(super) reply: T,
}

impl<T> PerDir<T> {
    pub(super) fn from_fn(mut value: impl FnMut(Dir) -> T) -> PerDir<T> {
        PerDir { orig: value(Dir::Orig), reply: value(Dir::Reply) }
    }

    pub(super) fn get(&self, dir: Dir) -> &T {
        match dir {
            Dir::Orig => &self.orig,
            Dir::Reply => &self.reply,
        }
    }

    pub(super) fn get_mut(&mut self, dir: Dir) -> &mut T {
        match dir {
            Dir::Orig => &mut self.orig,
            Dir::Reply => &mut self.reply,
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.orig, &self.reply].into_iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        [&mut self.orig, &mut self.reply].into_iter()
    }
}

/// One direction of a pair (`CtEntry`, `control_ipv4.h`).
#[derive(Clone, Debug, Default)]
pub(super) struct Direction {
    /// `CONNTRACK_FF_DISABLED`.
    pub(super) disabled: bool,
    /// The mark cdx keeps for this direction.
    pub(super) mark: u32,
    /// `route_id` as last given.
    pub(super) route_id: u32,
    /// `pRtEntry`: the route this direction holds a reference on.
    pub(super) link: Option<u32>,
    /// `CONNTRACK_HWSET`: the hardware entry and what it forwards with.
    pub(super) hw: Option<HwEntry>,
    /// The hardware entry's timestamp (FMan stamps it on every hit).
    pub(super) hw_stamp: u32,
    /// `last_ct_timer`: the software copy of the activity time.
    pub(super) last_ct_timer: u32,
}

impl Direction {
    /// Whether cdx puts this direction in hardware: linked to a route (NXP's cdx), and on
    /// the ASK port also enabled (`is_CT_COMPLETE`).
    pub(super) fn complete(&self, build: Abi) -> bool {
        self.link.is_some() && (build == Abi::Lsdk || !self.disabled)
    }

    /// Activity as cdx would see it after refreshing from the hardware.
    pub(super) fn activity(&self) -> u32 {
        if self.hw.is_some() { self.hw_stamp } else { self.last_ct_timer }
    }
}

/// One registered connection: both directions, as cdx allocates a pair of entries.
#[derive(Clone, Debug)]
pub(super) struct Pair<F: Family> {
    /// Tuples of the original and reply directions.
    pub(super) tuples: PerDir<Tuple<F::Addr>>,
    pub(super) protocol: u16,
    pub(super) dirs: PerDir<Direction>,
    pub(super) extension: Option<CtExtension>,
    pub(super) timer: Timer,
}

impl<F: Family> Pair<F> {
    pub(super) fn bidirectional(&self) -> bool {
        self.dirs.iter().all(|dir| !dir.disabled)
    }

    pub(super) fn in_hardware(&self) -> bool {
        self.dirs.iter().any(|dir| dir.hw.is_some())
    }

    /// `flags` as the command last set them.
    pub(super) fn flags(&self) -> CtFlags {
        let mut flags = CtFlags::EMPTY;
        if self.dirs.orig.disabled {
            flags = flags | CtFlags::ORIG_DISABLED;
        }
        if self.dirs.reply.disabled {
            flags = flags | CtFlags::REP_DISABLED;
        }
        flags
    }

    /// The mark a walk reports.
    pub(super) fn walk_mark(&self, build: Abi) -> u64 {
        cdx_walk_mark(build, [self.dirs.orig.mark, self.dirs.reply.mark])
    }

    /// The REMOVED event cdx sends for it.
    pub(super) fn removed(&self) -> CtChange<F> {
        CtChange {
            kind: Action::Removed,
            protocol: self.protocol,
            orig: self.tuples.orig,
            reply: self.tuples.reply,
        }
    }
}

/// Lookup key: a tuple and the protocol.
type Key<A> = (Tuple<A>, u16);

/// How a command's tuples name a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Named {
    /// The command's original tuple is the pair's original one.
    Pair(usize),
    /// Both tuples hit the same pair the other way round: IPv6's lookup lets this through
    /// and then treats the reply entry as the pair (`container_of`), which is undefined.
    Swapped,
    Nothing,
}

/// The conntrack table of one family.
#[derive(Debug)]
pub(super) struct CtTable<F: Family> {
    pub(super) slots: Vec<Option<Pair<F>>>,
    free: Vec<usize>,
    index: HashMap<Key<F::Addr>, (usize, Dir)>,
    /// The walk cursor, shared by every client as in cdx: next slot to look at.
    pub(super) cursor: usize,
    /// The aging timers by due tick: `(due, slot)`. cdx runs only the timers that expire,
    /// from its wheels (`cdx_timer.c`); so does the model. Entries are hints: one whose slot
    /// no longer holds a timer due then is skipped (the timer moved and has an entry of its
    /// own, or its pair left). The scan of every slot whenever one was due held the control
    /// mutex, which commands wait for, for a time that grew with the table.
    pub(super) timers: BinaryHeap<Reverse<(u64, usize)>>,
}

impl<F: Family> Default for CtTable<F> {
    fn default() -> CtTable<F> {
        CtTable {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            cursor: 0,
            timers: BinaryHeap::new(),
        }
    }
}

/// `true` for the IPv4 table (IPv4 and IPv6 handlers differ in small ways).
pub(super) fn is_v4<F: Family>() -> bool {
    F::CONNTRACK == FCode::Ipv4Conntrack
}

impl<F: Family> CtTable<F> {
    pub(super) fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub(super) fn pairs(&self) -> impl Iterator<Item = &Pair<F>> {
        self.slots.iter().flatten()
    }

    /// `IPvX_find_ctentry`: the entry (slot, direction) with this tuple.
    pub(super) fn find(&self, tuple: Tuple<F::Addr>, protocol: u16) -> Option<(usize, Dir)> {
        self.index.get(&(tuple, protocol)).copied()
    }

    fn named(&self, cmd: &CtCmd<F>) -> Named {
        match (self.find(cmd.orig, cmd.protocol), self.find(cmd.reply, cmd.protocol)) {
            (Some((slot, Dir::Orig)), Some((twin, Dir::Reply))) if slot == twin => {
                Named::Pair(slot)
            }
            (Some((slot, Dir::Reply)), Some((twin, Dir::Orig)))
                if slot == twin && !is_v4::<F>() =>
            {
                Named::Swapped
            }
            _ => Named::Nothing,
        }
    }

    /// REGISTER (`IPv4_HandleIP_CONNTRACK` / `IPv6_handle_CONNTRACK`, then `ct_add`).
    pub(super) fn register(&mut self, env: &mut Env, cmd: &CtCmd<F>, now: u64) -> ReturnCode {
        let orig_hit = self.find(cmd.orig, cmd.protocol);
        let reply_hit = self.find(cmd.reply, cmd.protocol);
        // IPv4 only: both tuples hit and the original hits a reply entry (the inverse flow).
        if is_v4::<F>() && reply_hit.is_some() && matches!(orig_hit, Some((_, Dir::Reply))) {
            return ReturnCode::CreationFailed;
        }
        if orig_hit.is_some() || reply_hit.is_some() {
            return ReturnCode::CtEntryAlreadyRegistered;
        }
        let now32 = jiffies32(now);
        let fields = CommandFields::of(env.build, cmd);
        let dirs = PerDir::from_fn(|d| Direction {
            disabled: *fields.disabled.get(d),
            mark: *fields.marks.get(d),
            route_id: *fields.route_ids.get(d),
            last_ct_timer: now32,
            // IP_Check_Route: linked whatever the disabled flag says.
            link: env.route_get(*fields.route_ids.get(d)),
            ..Direction::default()
        });
        let mut pair = Pair {
            tuples: PerDir { orig: cmd.orig, reply: cmd.reply },
            protocol: cmd.protocol,
            dirs,
            extension: cmd.extension,
            timer: Timer::default(),
        };
        for d in Dir::BOTH {
            if pair.dirs.get(d).complete(env.build) && !insert(env, &mut pair, d, now32) {
                // ct_add's error path: undo the other insertion, drop the links.
                release(env, &mut pair);
                return ReturnCode::Failure;
            }
        }
        let timeout = env.timeout_ticks(pair.protocol, pair.bidirectional());
        pair.timer.update(timeout, now);
        let timer = pair.timer;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        // Added in this order, so a reply tuple equal to the original shadows it, as the
        // later entry is found first in cdx's hash chain.
        self.index.insert((cmd.orig, cmd.protocol), (slot, Dir::Orig));
        self.index.insert((cmd.reply, cmd.protocol), (slot, Dir::Reply));
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some(pair);
        }
        // Once the pair is in its slot: a rebuild of the index reads the slots.
        self.note_timer(slot, &timer);
        ReturnCode::Ok
    }

    /// UPDATE (the `ACTION_UPDATE` case, then `ct_update` / `ct_update_one`). Counts an
    /// IPv6 update with swapped tuples in `undefined`.
    pub(super) fn update(&mut self, env: &mut Env, cmd: &CtCmd<F>, now: u64) -> ReturnCode {
        let slot = match self.named(cmd) {
            Named::Pair(slot) => slot,
            Named::Swapped => {
                env.counters.undefined_commands += 1;
                return ReturnCode::Ok;
            }
            Named::Nothing => return ReturnCode::CtEntryNotFound,
        };
        let Some(pair) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return ReturnCode::CtEntryNotFound;
        };
        let fields = CommandFields::of(env.build, cmd);
        for d in Dir::BOTH {
            let dir = pair.dirs.get_mut(d);
            dir.mark = *fields.marks.get(d);
            dir.disabled = *fields.disabled.get(d);
            if dir.disabled {
                // IP_delete_CT_route: the link goes, the hardware entry stays.
                if let Some(id) = dir.link.take() {
                    env.route_put(id);
                }
            }
        }
        for d in Dir::BOTH {
            let dir = pair.dirs.get_mut(d);
            let wanted = *fields.route_ids.get(d);
            match dir.link {
                None => dir.route_id = wanted,
                Some(id) if id != wanted => {
                    env.route_put(id);
                    dir.link = None;
                    dir.route_id = wanted;
                }
                Some(_) => {}
            }
            if dir.link.is_none() {
                dir.link = env.route_get(dir.route_id);
            }
        }
        if cmd.extension.is_some() {
            pair.extension = cmd.extension;
        }
        let now32 = jiffies32(now);
        for d in Dir::BOTH {
            update_one(env, pair, d, now32);
        }
        let timeout = env.timeout_ticks(pair.protocol, pair.bidirectional());
        pair.timer.update(timeout, now);
        let timer = pair.timer;
        self.note_timer(slot, &timer);
        ReturnCode::Ok
    }

    /// DEREGISTER (`ct_remove`).
    pub(super) fn deregister(&mut self, env: &mut Env, cmd: &CtCmd<F>) -> ReturnCode {
        match self.named(cmd) {
            Named::Pair(slot) => {
                self.remove(env, slot);
                ReturnCode::Ok
            }
            Named::Swapped => {
                env.counters.undefined_commands += 1;
                ReturnCode::Ok
            }
            Named::Nothing => ReturnCode::CtEntryNotFound,
        }
    }

    /// Removes the pair in `slot`, deleting its hardware entries and releasing its routes.
    pub(super) fn remove(&mut self, env: &mut Env, slot: usize) -> Option<Pair<F>> {
        let mut pair = self.slots.get_mut(slot)?.take()?;
        release(env, &mut pair);
        for d in Dir::BOTH {
            let key = (*pair.tuples.get(d), pair.protocol);
            if self.index.get(&key) == Some(&(slot, d)) {
                self.index.remove(&key);
            }
        }
        self.free.push(slot);
        Some(pair)
    }

    /// Slots of the pairs with a direction linked to a route leaving through `output`
    /// (`IP_deleteCt_from_onif_index`, `control_ipv4.c`).
    pub(super) fn using_output(&self, env: &Env, output: &crate::fpp::IfName) -> Vec<usize> {
        let through = |dir: &Direction| {
            dir.link.and_then(|id| env.routes.get(&id)).is_some_and(|r| r.output == *output)
        };
        (0..self.slots.len())
            .filter(|&slot| {
                self.slots
                    .get(slot)
                    .and_then(Option::as_ref)
                    .is_some_and(|pair| pair.dirs.iter().any(through))
            })
            .collect()
    }

    /// Removes everything (RESET), deleting hardware entries and releasing routes.
    pub(super) fn clear(&mut self, env: &mut Env) {
        for slot in 0..self.slots.len() {
            self.remove(env, slot);
        }
        *self = CtTable::default();
    }

    /// The timer of the pair in `slot` was (re)armed: file it under its due tick. Once the
    /// stale entries outnumber the pairs, the index is rebuilt from the slots.
    pub(super) fn note_timer(&mut self, slot: usize, timer: &Timer) {
        let Some(due) = timer.due() else { return };
        self.timers.push(Reverse((due, slot)));
        let pairs = self.slots.len() - self.free.len();
        if self.timers.len() > 2 * pairs + 1024 {
            self.timers = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(slot, pair)| Some(Reverse((pair.as_ref()?.timer.due()?, slot))))
                .collect();
        }
    }
}

/// The per-direction fields of a command, as cdx reads them.
struct CommandFields {
    disabled: PerDir<bool>,
    marks: PerDir<u32>,
    route_ids: PerDir<u32>,
}

impl CommandFields {
    fn of<F: Family>(build: Abi, cmd: &CtCmd<F>) -> CommandFields {
        let [orig_mark, reply_mark] = cdx_direction_marks(build, cmd.qos_mark);
        CommandFields {
            disabled: PerDir {
                orig: cmd.flags.contains(CtFlags::ORIG_DISABLED),
                reply: cmd.flags.contains(CtFlags::REP_DISABLED),
            },
            marks: PerDir { orig: orig_mark, reply: reply_mark },
            route_ids: PerDir { orig: cmd.route_id, reply: cmd.route_id_reply },
        }
    }
}

/// Inserts direction `d` of `pair` into hardware; `false` if cdx's insertion fails.
fn insert<F: Family>(env: &mut Env, pair: &mut Pair<F>, d: Dir, now32: u32) -> bool {
    let Some(route) = pair.dirs.get(d).link else { return false };
    let pair_in_hw = pair.in_hardware();
    let Some(entry) = env.hw_insert(route, pair.protocol, pair_in_hw) else { return false };
    if !pair_in_hw {
        env.hw_pairs += 1;
    }
    let dir = pair.dirs.get_mut(d);
    dir.hw = Some(entry);
    // The entry's timestamp starts at insertion (`insert_entry_in_classif_table`).
    dir.hw_stamp = now32;
    true
}

/// Deletes direction `d`'s hardware entry.
fn delete<F: Family>(env: &mut Env, pair: &mut Pair<F>, d: Dir) {
    if pair.dirs.get_mut(d).hw.take().is_some() {
        env.hw_delete();
        if !pair.in_hardware() {
            env.hw_pairs = env.hw_pairs.saturating_sub(1);
        }
    }
}

/// Deletes both hardware entries and drops both links.
fn release<F: Family>(env: &mut Env, pair: &mut Pair<F>) {
    for d in Dir::BOTH {
        delete(env, pair, d);
        if let Some(id) = pair.dirs.get_mut(d).link.take() {
            env.route_put(id);
        }
    }
}

/// `ct_update_one`: a direction not in hardware is inserted if it can be (a failure is not
/// reported: UPDATE still answers 0); one already in hardware keeps the MAC and port it was
/// inserted with and only takes the MTU of the route it is linked to now, 0 if none (NXP's
/// cdx); the ASK port deletes it instead when it is no longer complete.
fn update_one<F: Family>(env: &mut Env, pair: &mut Pair<F>, d: Dir, now32: u32) {
    let build = env.build;
    let dir = pair.dirs.get(d);
    if dir.hw.is_none() {
        if dir.complete(build) {
            insert(env, pair, d, now32);
        }
        return;
    }
    if build == Abi::Ask && !dir.complete(build) {
        delete(env, pair, d);
        return;
    }
    let mtu = dir.link.and_then(|id| env.routes.get(&id)).map_or(0, |route| route.mtu);
    if let Some(hw) = pair.dirs.get_mut(d).hw.as_mut() {
        hw.mtu = mtu;
    }
}
