//! Activity and aging of the model's conntracks, in cdx's 32-bit ticks.
//!
//! FMan stamps a hardware entry on every hit; cdx copies the stamp into the entry's
//! `last_ct_timer` only when it asks for the time remaining (`ct_timer_refresh` inside
//! `ct_get_time_remaining`, `control_ipv4.c`): from the aging handler, from IPv4
//! `GET_TIMEOUT`, and on the ASK port from IPv6 `GET_TIMEOUT`. NXP's IPv6 `GET_TIMEOUT`
//! (`IPv6_HandleIP_Get_Timeout`, `control_ipv6.c`) reads `last_ct_timer` as it is, so an
//! active IPv6 flow looks idle until its aging timer next runs.

use std::cmp::Reverse;

use crate::fpp::{CtChange, CtCmd, Family, Payload, ReturnCode, TimeoutCmd};

use super::clock::jiffies32;
use super::env::Env;
use super::model::SimReply;
use super::table::{CtTable, Dir, Pair, is_v4};
use super::{FlowMatch, Ipv6Activity, SimTuple};

impl<F: Family> Pair<F> {
    /// The directions whose activity counts: both, or the one enabled, or none
    /// (`ct_get_time_remaining`).
    fn counted(&self) -> &'static [Dir] {
        match (self.dirs.orig.disabled, self.dirs.reply.disabled) {
            (false, false) => &Dir::BOTH,
            (false, true) => &[Dir::Orig],
            (true, false) => &[Dir::Reply],
            (true, true) => &[],
        }
    }

    /// `ct_get_time_remaining`: refreshes the counted directions from their hardware
    /// stamps, then the ticks left of `timerdata` since the latest activity (0 when both
    /// directions are disabled).
    pub(super) fn time_remaining(&mut self, now32: u32) -> u32 {
        let counted = self.counted();
        for &d in counted {
            let dir = self.dirs.get_mut(d);
            if dir.hw.is_some() {
                dir.last_ct_timer = dir.hw_stamp;
            }
        }
        self.remaining_from(counted.iter().map(|&d| self.dirs.get(d).last_ct_timer), now32)
    }

    /// The same without refreshing anything, from what the hardware holds (the snapshot).
    pub(super) fn remaining_now(&self, now32: u32) -> u32 {
        self.remaining_from(self.counted().iter().map(|&d| self.dirs.get(d).activity()), now32)
    }

    fn remaining_from(&self, activity: impl Iterator<Item = u32>, now32: u32) -> u32 {
        // TIME_AFTER: the later of the two in signed 32-bit arithmetic.
        let latest = activity.reduce(|a, b| if (b.wrapping_sub(a) as i32) <= 0 { a } else { b });
        let Some(latest) = latest else { return 0 };
        let elapsed = now32.wrapping_sub(latest);
        self.timer.timerdata.saturating_sub(elapsed)
    }
}

impl<F: Family> CtTable<F> {
    /// `*_GET_TIMEOUT`: the seconds left of the conntrack either tuple of `payload` names.
    ///
    /// IPv4 (`IPv4_HandleIP_Get_Timeout`): refreshed, rounded up, in 32-bit arithmetic.
    /// IPv6 on NXP's cdx: from `last_ct_timer` without refreshing, the smaller idle time of
    /// the entry and (when the twin is enabled) its twin, signed and clamped at 0, truncated.
    /// IPv6 on the ASK port: as IPv4 but truncated.
    pub(super) fn get_timeout(&mut self, env: &Env, payload: &[u8], now: u64, out: &mut SimReply) {
        let cmd = match <CtCmd<F> as crate::fpp::AbiPayload>::parse_for(env.build, payload) {
            Ok(cmd) if cmd.extension.is_none() => cmd,
            _ => return out.set_rc(ReturnCode::WrongCommandSize),
        };
        let Some((slot, d)) = self.find(cmd.orig, cmd.protocol) else {
            return out.set_rc(ReturnCode::CmdErr);
        };
        let Some(pair) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return out.set_rc(ReturnCode::CmdErr);
        };
        let now32 = jiffies32(now);
        let hz = env.hz;
        let seconds = if is_v4::<F>() {
            pair.time_remaining(now32).wrapping_add(hz - 1) / hz
        } else if env.ipv6_activity == Ipv6Activity::Refreshed {
            pair.time_remaining(now32) / hz
        } else {
            let entry = pair.dirs.get(d);
            let twin = pair.dirs.get(d.twin());
            let mut idle = now32.wrapping_sub(entry.last_ct_timer);
            let bidirectional = !twin.disabled;
            if bidirectional {
                idle = idle.min(now32.wrapping_sub(twin.last_ct_timer));
            }
            let timeout = env.timeout_ticks(pair.protocol, bidirectional);
            let left = (timeout.wrapping_sub(idle) as i32).max(0);
            u32::try_from(left).unwrap_or(0) / hz
        };
        let reply = TimeoutCmd { protocol: pair.protocol, sam_4o6: 0, value1: seconds, value2: 0 };
        out.set_data(ReturnCode::Ok, &reply);
    }

    /// Runs every due aging timer (`ct_aging_handler`): a pair with time left is re-armed
    /// for it; one without is offered to `deliver` as a REMOVED event and removed once
    /// delivered, or re-armed for the next tick if not (`IPv4_delete_CTpair` returns 1).
    pub(super) fn age(
        &mut self,
        env: &mut Env,
        now: u64,
        deliver: &mut dyn FnMut(CtChange<F>) -> bool,
    ) {
        let now32 = jiffies32(now);
        while let Some(&Reverse((due, slot))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(pair) = self.slots.get_mut(slot).and_then(Option::as_mut) else { continue };
            if pair.timer.due() != Some(due) {
                continue; // stale: the timer moved (its new due has an entry) or stopped
            }
            pair.timer.fire();
            let mut period = pair.time_remaining(now32);
            if period == 0 {
                if deliver(pair.removed()) {
                    self.remove(env, slot);
                    continue;
                }
                period = 1;
            }
            pair.timer.rearm(period, now);
            let timer = pair.timer;
            self.note_timer(slot, &timer);
        }
    }

    /// After SET_TIMEOUT: `ct_timer_update` for every pair.
    pub(super) fn retime(&mut self, env: &Env, now: u64) {
        for slot in 0..self.slots.len() {
            let Some(pair) = self.slots.get_mut(slot).and_then(Option::as_mut) else { continue };
            let timeout = env.timeout_ticks(pair.protocol, pair.bidirectional());
            pair.timer.update(timeout, now);
            let timer = pair.timer;
            self.note_timer(slot, &timer);
        }
    }

    /// FF_CONTROL enable: `last_ct_timer` of every entry becomes now; the next refresh from
    /// the hardware overwrites it again.
    pub(super) fn reset_activity(&mut self, now: u64) {
        for pair in self.slots.iter_mut().flatten() {
            for dir in pair.dirs.iter_mut() {
                dir.last_ct_timer = jiffies32(now);
            }
        }
    }

    /// Stamps the hardware entries of the selected pairs (traffic through FMan). Returns
    /// how many pairs had one.
    pub(super) fn mark_active(&mut self, flows: &FlowMatch, now: u64) -> usize {
        let mut marked = 0;
        for pair in self.slots.iter_mut().flatten() {
            let selected = match flows {
                FlowMatch::All => true,
                FlowMatch::Orig(tuple) => *tuple == SimTuple::from(pair.tuples.orig),
            };
            if selected && pair.in_hardware() {
                for dir in pair.dirs.iter_mut().filter(|dir| dir.hw.is_some()) {
                    dir.hw_stamp = jiffies32(now);
                }
                marked += 1;
            }
        }
        marked
    }
}

/// Writes a timeout reply (used by the IPv4 and IPv6 handlers alike).
impl SimReply {
    pub(super) fn set_data<P: Payload>(&mut self, rc: ReturnCode, data: &P) {
        self.set_rc(rc);
        let mut buf = [0u8; 16];
        if let Ok(len) = data.emit(&mut buf) {
            self.extend(buf.get(..len).unwrap_or_default());
        }
    }
}
