//! Event batching under churn: when the loop leaves the conntrack event socket aside.
//!
//! Contract: while conntrack events arrive at [`BUSY_RATE`] or more (measured over
//! [`WINDOW`]), the loop, once it has drained the event socket, leaves that socket out of its
//! next poll for up to the `netlink.batch_interval` setting (1 ms by default), then reads
//! everything that arrived meanwhile in one go. Everything else the loop polls (rtnetlink,
//! cdx events, the CLI, metrics, signals, timers) still wakes it at once, and the pause ends
//! early when one does. Below the rate, or with the setting off, every arrival wakes the loop
//! as before. The pause is shortened so that what arrives during it, at the measured rate,
//! fills at most 1/[`BUFFER_SHARE`] of the socket's receive buffer, and not taken when that
//! leaves less than [`MIN_PAUSE`]: batching never trades events for CPU.
//!
//! Why: each turn of the loop costs the same system calls whether it reads three events or
//! three hundred (the poll, the receive that finds the socket empty, the hand-over to the
//! offload worker and its wake-up, the precise timer: 11.8 µs of CPU per arming on a virtual
//! machine). Under churn at the kernel's maximum rate the loop took a turn every 14 events,
//! and those fixed costs were over half of its time; reading once a millisecond halved cmmd's
//! CPU per event (`docs/performance.md`, 2026-12-03 fifth session). The cost is latency: a connection that becomes offloadable during a pause
//! is programmed up to one interval later. The latency goal (1 ms at 10,000 new flows/s,
//! 20,000 events/s) is measured below [`BUSY_RATE`], where nothing pauses.

use std::time::{Duration, Instant};

/// Events per second from which the loop batches its reads.
pub(super) const BUSY_RATE: u64 = 50_000;
/// How long the rate is measured over.
pub(super) const WINDOW: Duration = Duration::from_millis(10);
/// Bytes of receive buffer counted per conntrack event (a NEW or DESTROY message takes about
/// 300 bytes, its socket buffer a kilobyte or more of the socket's allowance).
pub(super) const BYTES_PER_EVENT: u64 = 2048;
/// The share of the event socket's buffer a pause may fill, at the measured rate: one eighth.
pub(super) const BUFFER_SHARE: u64 = 8;
/// A shorter pause is not worth its system calls.
pub(super) const MIN_PAUSE: Duration = Duration::from_micros(200);

/// The loop's pacing of its event-socket reads.
#[derive(Debug)]
pub(super) struct EventBatching {
    interval: Option<Duration>,
    /// The event socket's receive buffer (the size the kernel granted), bytes.
    buffer: u64,
    window_start: Instant,
    /// Events read before the window started.
    window_base: u64,
    /// Events per second over the last complete window.
    rate: u64,
    /// Pauses given.
    pauses: u64,
}

impl EventBatching {
    /// Pauses of up to `interval` (`None`: never) on a socket with `buffer` bytes.
    pub(super) fn new(interval: Option<Duration>, buffer: usize, now: Instant) -> EventBatching {
        EventBatching {
            interval,
            buffer: u64::try_from(buffer).unwrap_or(u64::MAX),
            window_start: now,
            window_base: 0,
            rate: 0,
            pauses: 0,
        }
    }

    /// The events per second measured over the last complete window.
    pub(super) fn rate(&self) -> u64 {
        self.rate
    }

    /// Pauses taken since start.
    pub(super) fn pauses(&self) -> u64 {
        self.pauses
    }

    /// The loop took the pause it was given.
    pub(super) fn paused(&mut self) {
        self.pauses += 1;
    }

    /// How long to leave the drained event socket aside before the next poll, given how many
    /// events the loop has read since it started (`read`); `None` to poll it as usual.
    pub(super) fn pause(&mut self, read: u64, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            let events = read.saturating_sub(self.window_base);
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
            self.rate = events.saturating_mul(1_000_000) / micros;
            self.window_start = now;
            self.window_base = read;
        }
        let interval = self.interval?;
        if self.rate < BUSY_RATE {
            return None;
        }
        // What the buffer's share holds at this rate, in microseconds.
        let room = self.buffer / BUFFER_SHARE / BYTES_PER_EVENT;
        let fits = Duration::from_micros(room.saturating_mul(1_000_000) / self.rate);
        let pause = interval.min(fits);
        (pause >= MIN_PAUSE).then_some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const BUFFER: usize = 32 << 20;

    /// Reads `per_ms` events every millisecond for `ms` milliseconds; the pause asked for at
    /// the last one.
    fn run(
        b: &mut EventBatching,
        t0: Instant,
        read: &mut u64,
        per_ms: u64,
        ms: u32,
    ) -> Option<Duration> {
        let mut pause = None;
        for i in 1..=ms {
            *read += per_ms;
            pause = b.pause(*read, t0 + MS * i);
        }
        pause
    }

    #[test]
    fn pauses_only_under_sustained_churn_and_stops_when_it_ends() {
        let t0 = Instant::now();
        let mut b = EventBatching::new(Some(MS), BUFFER, t0);
        let mut read = 0;
        // 20,000 events/s (the latency goal's load): never.
        assert_eq!(run(&mut b, t0, &mut read, 20, 50), None);
        assert_eq!(b.rate(), 20_000);
        // 200,000 events/s: once a window has measured it, the whole interval.
        let t1 = t0 + MS * 50;
        assert_eq!(run(&mut b, t1, &mut read, 200, 30), Some(MS));
        assert_eq!(b.rate(), 200_000);
        // Quiet again: no pause from the first window that sees it.
        let t2 = t1 + MS * 30;
        assert_eq!(run(&mut b, t2, &mut read, 0, 10), None);
        assert_eq!(b.rate(), 0);
    }

    #[test]
    fn a_small_buffer_shortens_the_pause_or_forbids_it() {
        let t0 = Instant::now();
        let mut read = 0;
        // 1 MiB: an eighth holds 64 events, 320 µs at 200,000 events/s.
        let mut b = EventBatching::new(Some(MS), 1 << 20, t0);
        assert_eq!(run(&mut b, t0, &mut read, 200, 20), Some(Duration::from_micros(320)));
        // 256 KiB: 80 µs, not worth pausing.
        let mut b = EventBatching::new(Some(MS), 256 << 10, t0);
        assert_eq!(run(&mut b, t0, &mut read, 200, 20), None);
    }

    #[test]
    fn off_never_pauses_but_still_measures() {
        let t0 = Instant::now();
        let mut b = EventBatching::new(None, BUFFER, t0);
        let mut read = 0;
        assert_eq!(run(&mut b, t0, &mut read, 500, 30), None);
        assert_eq!(b.rate(), 500_000);
    }

    #[test]
    fn a_long_idle_gap_counts_as_a_low_rate() {
        let t0 = Instant::now();
        let mut b = EventBatching::new(Some(MS), BUFFER, t0);
        // One burst of 5,000 events after 10 s of nothing: 500 events/s.
        assert_eq!(b.pause(5_000, t0 + Duration::from_secs(10)), None);
        assert_eq!(b.rate(), 500);
    }
}
