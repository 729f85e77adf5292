//! Time as cdx keeps it: 32-bit jiffies, and its aging timer entries.
//!
//! cdx's clock is `ct_timer` = the low 32 bits of `jiffies` (`cdx_timer.h`), compared with
//! signed 32-bit differences (`TIME_BEFORE`). Timeouts are seconds × `HZ` in a `u32`
//! (`IPv4_HandleIP_SET_TIMEOUT`, `control_ipv4.c`), so a timeout of 2³¹ ticks or more (about
//! 24.8 days at `HZ` = 1000) reads as "already past" and one of 2³² ticks wraps. The model
//! keeps a 64-bit tick count for its own scheduling and hands cdx's code the low 32 bits.
//!
//! [`Timer`] is one entry of cdx's timer wheels (`cdx_timer.c`) as the conntrack code uses
//! it: `ct_timer_update` (`control_ipv4.c`) arms or shortens it, the timer thread
//! (`cdx_ctrl_timer`, every 100 ms) runs the aging handler when it is due and re-arms it
//! with the period the handler returns.

use std::time::{Duration, Instant};

/// The model's clock: ticks since its first use, at `hz` ticks per second.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    epoch: Option<Instant>,
    hz: u32,
}

impl Clock {
    pub(super) fn new(hz: u32) -> Clock {
        Clock { epoch: None, hz: hz.max(1) }
    }

    /// Starts the clock at `now` if it has not started.
    pub(super) fn start(&mut self, now: Instant) {
        self.epoch.get_or_insert(now);
    }

    /// Ticks at `now` (0 before the clock started).
    pub(super) fn ticks(&self, now: Instant) -> u64 {
        let Some(epoch) = self.epoch else { return 0 };
        let nanos = now.saturating_duration_since(epoch).as_nanos();
        u64::try_from(nanos * u128::from(self.hz) / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// A tick count as a duration.
    pub(super) fn duration(&self, ticks: u64) -> Duration {
        Duration::from_nanos(
            u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(self.hz))
                .unwrap_or(u64::MAX),
        )
    }
}

/// cdx's view of `ticks`: `ct_timer`, 32 bits.
pub(super) const fn jiffies32(ticks: u64) -> u32 {
    ticks as u32
}

/// One aging timer, with cdx's 32-bit arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Timer {
    /// `timer->timerdata`: the timeout in force, in ticks.
    pub(super) timerdata: u32,
    /// On a wheel.
    running: bool,
    /// `timer->period`.
    period: u32,
    /// `timer->timeout`: the expiry in 32-bit jiffies.
    timeout: u32,
    /// When the timer thread runs the handler (model ticks).
    due: u64,
}

impl Timer {
    /// `timerdata` in ticks, for the snapshot.
    pub(super) fn due(&self) -> Option<u64> {
        self.running.then_some(self.due)
    }

    /// Places the timer on a wheel: `__timer_add` treats a non-positive signed distance to
    /// `timeout` as 1 tick.
    fn place(&mut self, now: u64) {
        let distance = self.timeout.wrapping_sub(jiffies32(now)) as i32;
        self.due = now + u64::try_from(distance).ok().filter(|&d| d > 0).unwrap_or(1);
        self.running = true;
    }

    fn del(&mut self) {
        self.running = false;
        self.period = 0;
    }

    /// `cdx_timer_add`: a period of 0 deletes the timer; a running timer is left alone.
    fn add(&mut self, period: u32, now: u64) {
        if period == 0 {
            self.del();
        } else if !self.running {
            self.period = period;
            self.timeout = jiffies32(now).wrapping_add(period);
            self.place(now);
        }
    }

    /// `ct_timer_update`: the timeout becomes `timerdata`; the timer is (re)armed only the
    /// first time or when the timeout shrinks (unsigned comparison, as cdx).
    pub(super) fn update(&mut self, timerdata: u32, now: u64) {
        let old = self.timerdata;
        self.timerdata = timerdata;
        if old != 0 && timerdata >= old {
            return;
        }
        let now32 = jiffies32(now);
        let new_timeout = if old == 0 {
            now32.wrapping_add(timerdata)
        } else {
            self.timeout.wrapping_sub(old).wrapping_add(timerdata)
        };
        self.del();
        let distance = new_timeout.wrapping_sub(now32);
        self.add(if (distance as i32) < 0 { 1 } else { distance }, now);
    }

    /// The timer thread takes the timer off its wheel to run the handler.
    pub(super) fn fire(&mut self) {
        self.running = false;
    }

    /// The handler returned 1 with new period `period` (its old one if 0): the timer goes
    /// back on a wheel `period` after its previous expiry.
    pub(super) fn rearm(&mut self, period: u32, now: u64) {
        if period != 0 {
            self.period = period;
        }
        self.timeout = self.timeout.wrapping_add(self.period);
        self.place(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_update_arms_shorter_updates_move_the_expiry_longer_ones_do_not() {
        let mut timer = Timer::default();
        timer.update(1000, 50);
        assert_eq!((timer.due(), timer.timerdata), (Some(1050), 1000));
        timer.update(400, 60);
        assert_eq!(
            timer.due(),
            Some(450),
            "shorter: the expiry minus the old timeout plus the new"
        );
        timer.update(5000, 70);
        assert_eq!((timer.due(), timer.timerdata), (Some(450), 5000), "longer: at expiry");
    }

    /// cdx_timer.c __timer_add / control_ipv4.c ct_timer_update: a timeout of 2^31 ticks
    /// or more is "already past" and fires at the next tick; 0 deletes the timer.
    #[test]
    fn timeouts_past_the_signed_range_fire_at_once_and_zero_never_fires() {
        let mut huge = Timer::default();
        huge.update(0x8000_0000, 10);
        assert_eq!(huge.due(), Some(11));
        let mut zero = Timer::default();
        zero.update(0, 10);
        assert_eq!(zero.due(), None, "cdx_timer_add(timer, 0) deletes: the flow never ages");
        let mut timer = Timer::default();
        timer.update(100, 0);
        timer.fire();
        timer.rearm(0x9000_0000, 100);
        assert_eq!(timer.due(), Some(101), "a huge remaining time re-arms at the next tick");
    }
}
