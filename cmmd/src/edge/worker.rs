//! The offload worker: the one thread allowed to block on the hardware.
//!
//! The event loop hands it batches of [`HwRequest`]s through a bounded channel and never
//! waits: when the channel is full the loop keeps the requests queued and retries on the next
//! turn (back-pressure instead of unbounded memory). While hand-overs are frequent (the last
//! one less than [`COALESCE_WAIT`] ago), a batch waits until it holds [`COALESCE`] requests
//! or its oldest has waited [`COALESCE_WAIT`] ([`Worker::next_deadline`] tells the loop
//! when): under churn the loop wakes for a few conntrack events at a time, and handing each
//! turn's two or three commands over on their own made the two threads trade the CPU (two
//! context switches) every few events. On a quiet system a request goes at once.
//!
//! The worker executes each batch in order with an [`Executor`] (cdx over FCI, or the
//! software cdx), sends the results back through a second channel and wakes the loop with a
//! `mio::Waker`, but only when the loop said it is going to sleep
//! ([`Worker::going_to_sleep`]): a loop that is awake reads the results at the end of its
//! turn anyway, and waking a thread on another core was the largest single cost of the
//! hand-off (an inter-processor interrupt per batch; `docs/performance.md`).
//!
//! The handshake: the loop sets `sleeping` and then reads `ready`; the worker publishes a
//! batch (`ready`) and then takes `sleeping`. Both sequentially consistent, so either the
//! loop sees the batch and does not block, or the worker sees the flag and wakes it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded, unbounded};

use crate::core::hw::{HwEvent, HwRequest, HwResult};

/// Executes hardware commands. Called only on the worker thread.
pub trait Executor: Send + 'static {
    /// Execute `batch` in order, appending one result per request to `out` (same order).
    fn execute(&mut self, batch: &[HwRequest], out: &mut Vec<HwResult>);

    /// Collect unsolicited events received while executing (for executors whose events arrive
    /// on the command path); most return nothing.
    fn take_events(&mut self, _out: &mut Vec<HwEvent>) {}
}

/// Requests per batch handed to the worker.
const BATCH: usize = 256;
/// Batches queued in the channel.
const DEPTH: usize = 16;
/// Empty batches kept for reuse, and the room each keeps: under churn a batch holds a few
/// dozen requests.
const SPARE: usize = 4;
const SPARE_ROOM: usize = 64;
/// Requests that make a batch worth a hand-over at once.
pub const COALESCE: usize = 32;
/// How long a request may wait for others to share its hand-over (a fifth of the
/// programming-latency goal, 1 ms), and how recent the last hand-over must be for it to
/// wait at all.
pub const COALESCE_WAIT: Duration = Duration::from_micros(200);

/// A batch going to the worker with its requests, and coming back with their results and
/// its requests cleared. Both buffers go round and round: allocated by one thread and freed
/// by the other, they cost an allocation, a copy into cold memory and a free through
/// another thread's arena per batch (8 % of the loop's time in a profile of the churn;
/// `docs/performance.md`).
#[derive(Default)]
struct Batch {
    requests: Vec<HwRequest>,
    results: Vec<HwResult>,
}

/// Handle held by the event loop.
pub struct Worker {
    tx: Option<Sender<Batch>>,
    done: Receiver<Batch>,
    /// The loop is (about to be) blocked in its poll: a new batch of results must wake it.
    sleeping: Arc<AtomicBool>,
    /// Batches of results sent and not yet taken by the loop.
    ready: Arc<AtomicUsize>,
    /// Requests not handed over yet, in batches of at most [`BATCH`], oldest first.
    outbox: VecDeque<Batch>,
    /// Empty batches to fill (at most [`SPARE`]).
    spare: Vec<Batch>,
    queued: usize,
    /// When the oldest request not handed over yet was queued.
    held_since: Option<Instant>,
    /// When requests were last handed over by [`flush`](Self::flush).
    handed_over: Option<Instant>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start the worker thread; `wake` is called after a batch of results when the loop is
    /// going to sleep.
    pub fn spawn<E: Executor>(
        mut executor: E,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = bounded::<Batch>(DEPTH);
        let (dtx, done) = unbounded::<Batch>();
        let sleeping = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicUsize::new(0));
        let (worker_sleeping, worker_ready) = (sleeping.clone(), ready.clone());
        let thread = std::thread::Builder::new().name("cmmd-offload".into()).spawn(move || {
            for mut batch in rx {
                batch.results.reserve(batch.requests.len());
                executor.execute(&batch.requests, &mut batch.results);
                batch.requests.clear();
                if dtx.send(batch).is_err() {
                    return;
                }
                worker_ready.fetch_add(1, Ordering::SeqCst);
                if worker_sleeping.swap(false, Ordering::SeqCst) {
                    wake();
                }
            }
        })?;
        Ok(Worker {
            tx: Some(tx),
            done,
            sleeping,
            ready,
            outbox: VecDeque::new(),
            spare: Vec::new(),
            queued: 0,
            held_since: None,
            handed_over: None,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Queue a request (never blocks); `now` starts its wait for company.
    pub fn submit(&mut self, request: HwRequest, now: Instant) {
        self.held_since.get_or_insert(now);
        if self.outbox.back().is_none_or(|b| b.requests.len() >= BATCH) {
            let batch = self.spare.pop().unwrap_or_default();
            self.outbox.push_back(batch);
        }
        if let Some(batch) = self.outbox.back_mut() {
            batch.requests.push(request);
            self.queued += 1;
        }
    }

    /// Hand queued requests to the worker if hand-overs are rare (none in the last
    /// [`COALESCE_WAIT`]), or there are [`COALESCE`] of them, or the oldest has waited
    /// [`COALESCE_WAIT`]; while the channel has room.
    pub fn flush(&mut self, now: Instant) {
        let quiet = self.handed_over.is_none_or(|last| now >= last + COALESCE_WAIT);
        let due = self.held_since.is_some_and(|since| now >= since + COALESCE_WAIT);
        if self.queued > 0 && (quiet || due || self.queued >= COALESCE) && self.flush_all() > 0 {
            self.handed_over = Some(now);
        }
    }

    /// Hand every queued request to the worker while the channel has room; returns how many
    /// went.
    pub fn flush_all(&mut self) -> usize {
        let Some(tx) = self.tx.as_ref() else { return 0 };
        let mut sent = 0;
        while let Some(batch) = self.outbox.pop_front() {
            let n = batch.requests.len();
            match tx.try_send(batch) {
                Ok(()) => {
                    self.queued -= n;
                    self.in_flight += n;
                    sent += n;
                }
                Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                    self.outbox.push_front(batch);
                    return sent;
                }
            }
        }
        self.held_since = None;
        sent
    }

    /// When [`flush`](Self::flush) must run next to hand over requests held for company;
    /// `None` when nothing is held, or the channel is full (the worker's next results wake
    /// the loop then).
    pub fn next_deadline(&self) -> Option<Instant> {
        let full = self.tx.as_ref().is_none_or(Sender::is_full);
        self.held_since.filter(|_| !full).map(|since| since + COALESCE_WAIT)
    }

    /// Take every result available now.
    pub fn results(&mut self, out: &mut Vec<HwResult>) {
        loop {
            match self.done.try_recv() {
                Ok(mut batch) => {
                    self.ready.fetch_sub(1, Ordering::SeqCst);
                    self.in_flight = self.in_flight.saturating_sub(batch.results.len());
                    out.append(&mut batch.results);
                    if self.spare.len() < SPARE {
                        // A burst's full batches are not kept at their size.
                        batch.requests.shrink_to(SPARE_ROOM);
                        batch.results.shrink_to(SPARE_ROOM);
                        self.spare.push(batch);
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// The loop is about to block in its poll. False when results are waiting: then it must
    /// not block (the worker may have sent them without a wake-up).
    pub fn going_to_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        self.ready.load(Ordering::SeqCst) == 0
    }

    /// The loop is back from its poll: results need no wake-up until it goes to sleep again.
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Give back the queue's peak capacity once it is empty.
    pub fn release_memory(&mut self) {
        if self.outbox.is_empty() && self.outbox.capacity() > 4 * DEPTH {
            self.outbox.shrink_to(DEPTH);
        }
    }

    /// Requests queued or executing.
    pub fn backlog(&self) -> usize {
        self.queued + self.in_flight
    }

    /// Stop accepting work and wait for the thread to finish what it was given.
    pub fn join(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hw::{HwOp, HwReply};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    struct Echo;
    impl Executor for Echo {
        fn execute(&mut self, batch: &[HwRequest], out: &mut Vec<HwResult>) {
            out.extend(batch.iter().map(|r| HwResult { tag: r.tag, outcome: Ok(HwReply::Done) }));
        }
    }

    /// A worker echoing every request, and the number of times it woke the loop.
    fn counting_wakes() -> (Worker, Arc<AtomicUsize>) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let wake = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        (Worker::spawn(Echo, wake).unwrap(), wakes)
    }

    #[test]
    fn results_come_back_in_order_and_wake_the_loop() {
        let (mut w, wakes) = counting_wakes();
        for tag in 0..1000 {
            w.submit(HwRequest { tag, op: HwOp::Reset }, Instant::now());
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 1000 && Instant::now() < deadline {
            w.flush_all();
            // Asleep between turns whenever nothing is waiting: each batch that finds the
            // loop asleep wakes it.
            if w.going_to_sleep() {
                std::thread::sleep(Duration::from_millis(1));
            }
            w.awake();
            w.results(&mut got);
        }
        assert_eq!(got.iter().map(|r| r.tag).collect::<Vec<_>>(), (0..1000).collect::<Vec<_>>());
        assert!(wakes.load(Ordering::SeqCst) >= 1);
        assert_eq!(w.backlog(), 0);
        w.join();
    }

    #[test]
    fn an_awake_loop_is_not_woken_and_a_sleeping_one_always_is() {
        let (mut w, wakes) = counting_wakes();
        let mut got = Vec::new();
        let wait = |w: &mut Worker, got: &mut Vec<HwResult>, n: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while got.len() < n && Instant::now() < deadline {
                w.results(got);
                std::thread::yield_now();
            }
            assert_eq!(got.len(), n);
        };
        // Awake: results arrive without a wake-up.
        w.submit(HwRequest { tag: 1, op: HwOp::Reset }, Instant::now());
        w.flush_all();
        wait(&mut w, &mut got, 1);
        assert_eq!(wakes.load(Ordering::SeqCst), 0);
        // Going to sleep with nothing waiting: the next batch wakes the loop, once.
        assert!(w.going_to_sleep());
        w.submit(HwRequest { tag: 2, op: HwOp::Reset }, Instant::now());
        w.flush_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while wakes.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        // Results waiting: the loop must not block.
        assert!(!w.going_to_sleep());
        w.awake();
        wait(&mut w, &mut got, 2);
        assert!(w.going_to_sleep(), "nothing waiting once taken");
        w.awake();
        w.join();
    }

    #[test]
    fn requests_wait_for_company_only_while_hand_overs_are_frequent() {
        let (mut w, _) = counting_wakes();
        let t0 = Instant::now();
        let reset = |tag| HwRequest { tag, op: HwOp::Reset };
        // Quiet: the first request goes at once.
        w.submit(reset(0), t0);
        w.flush(t0);
        assert_eq!((w.queued, w.next_deadline()), (0, None));
        // Busy (a hand-over just now): too few, too young, held; the loop is told until when.
        let t1 = t0 + COALESCE_WAIT / 4;
        for tag in 1..COALESCE as u64 {
            w.submit(reset(tag), t1);
        }
        w.flush(t1);
        assert_eq!(w.queued, COALESCE - 1);
        assert_eq!(w.next_deadline(), Some(t1 + COALESCE_WAIT));
        w.flush(t1 + COALESCE_WAIT / 2);
        assert_eq!(w.queued, COALESCE - 1, "still busy, still young");
        // Old enough: they go, however few.
        let t2 = t1 + COALESCE_WAIT;
        w.flush(t2);
        assert_eq!((w.queued, w.next_deadline()), (0, None));
        // Busy again, and enough of them: they go at once.
        for tag in 0..COALESCE as u64 {
            w.submit(reset(100 + tag), t2);
        }
        w.flush(t2);
        assert_eq!((w.queued, w.next_deadline()), (0, None));
        // Quiet again (the last hand-over long ago): one goes at once.
        let t3 = t2 + COALESCE_WAIT * 2;
        w.submit(reset(1000), t3);
        w.flush(t3);
        assert_eq!(w.queued, 0);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 2 * COALESCE + 1 && Instant::now() < deadline {
            w.results(&mut got);
            std::thread::yield_now();
        }
        assert_eq!(got.len(), 2 * COALESCE + 1);
        w.join();
    }
}
