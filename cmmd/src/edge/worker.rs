//! The offload worker: the one thread allowed to block on the hardware.
//!
//! The event loop hands it batches of [`HwRequest`]s through a bounded channel and never
//! waits: when the channel is full the loop keeps the requests queued and retries on the next
//! turn (back-pressure instead of unbounded memory). The worker executes each batch in order
//! with an [`Executor`] (cdx over FCI, or the software cdx), sends the results back through a
//! second channel and wakes the loop with a `mio::Waker`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

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

/// Handle held by the event loop.
pub struct Worker {
    tx: Option<Sender<Vec<HwRequest>>>,
    results: Receiver<Vec<HwResult>>,
    outbox: VecDeque<HwRequest>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start the worker thread; `wake` is called after each batch of results.
    pub fn spawn<E: Executor>(
        mut executor: E,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = bounded::<Vec<HwRequest>>(DEPTH);
        let (rtx, results) = unbounded::<Vec<HwResult>>();
        let thread = std::thread::Builder::new().name("cmmd-offload".into()).spawn(move || {
            for batch in rx {
                // Sized once: grown from empty it was reallocated (and copied) several times.
                let mut out = Vec::with_capacity(batch.len());
                executor.execute(&batch, &mut out);
                if rtx.send(out).is_err() {
                    return;
                }
                wake();
            }
        })?;
        Ok(Worker {
            tx: Some(tx),
            results,
            outbox: VecDeque::new(),
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Queue a request (never blocks).
    pub fn submit(&mut self, request: HwRequest) {
        self.outbox.push_back(request);
    }

    /// Hand queued requests to the worker while the channel has room.
    pub fn flush(&mut self) {
        let Some(tx) = self.tx.as_ref() else { return };
        while !self.outbox.is_empty() {
            let n = self.outbox.len().min(BATCH);
            let batch: Vec<HwRequest> = self.outbox.drain(..n).collect();
            match tx.try_send(batch) {
                Ok(()) => self.in_flight += n,
                Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                    for r in batch.into_iter().rev() {
                        self.outbox.push_front(r);
                    }
                    return;
                }
            }
        }
    }

    /// Take every result available now.
    pub fn results(&mut self, out: &mut Vec<HwResult>) {
        loop {
            match self.results.try_recv() {
                Ok(batch) => {
                    self.in_flight = self.in_flight.saturating_sub(batch.len());
                    out.extend(batch);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Give back the queue's peak capacity once it is empty.
    pub fn release_memory(&mut self) {
        if self.outbox.is_empty() && self.outbox.capacity() > 4 * BATCH {
            self.outbox.shrink_to(BATCH);
        }
    }

    /// Requests queued or executing.
    pub fn backlog(&self) -> usize {
        self.outbox.len() + self.in_flight
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

    #[test]
    fn results_come_back_in_order_and_wake_the_loop() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w2 = wakes.clone();
        let mut w = Worker::spawn(
            Echo,
            Arc::new(move || {
                w2.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        for tag in 0..1000 {
            w.submit(HwRequest { tag, op: HwOp::Reset });
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 1000 && Instant::now() < deadline {
            w.flush();
            w.results(&mut got);
            std::thread::yield_now();
        }
        assert_eq!(got.iter().map(|r| r.tag).collect::<Vec<_>>(), (0..1000).collect::<Vec<_>>());
        assert!(wakes.load(Ordering::SeqCst) >= 4);
        assert_eq!(w.backlog(), 0);
        w.join();
    }
}
