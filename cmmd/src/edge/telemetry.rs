//! Logging: the only place that installs a `tracing` subscriber.
//!
//! Logs go to stdout (text or JSON, one event per line) for `kubectl logs`. Lines are handed to
//! a writer thread through a bounded queue, so a stalled stdout pipe never blocks the event
//! loop: when the queue is full, lines are dropped and counted, and the count is logged once
//! the pipe drains. The filter (an `EnvFilter` directive such as `info,cmmd::engine=debug`) can
//! be changed at run time (`set debug`, SIGHUP).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Text,
    /// One JSON object per line.
    Json,
}

const QUEUE_LINES: usize = 8192;

/// A `MakeWriter` whose writers queue whole lines for the writer thread.
#[derive(Clone)]
struct QueueWriter {
    tx: Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

struct LineBuffer {
    queue: QueueWriter,
    buf: Vec<u8>,
}

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.buf);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.tx.try_send(line)
        {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        LineBuffer { queue: self.clone(), buf: Vec::with_capacity(256) }
    }
}

fn writer_thread(rx: Receiver<Vec<u8>>, dropped: Arc<AtomicU64>) {
    let stdout = std::io::stdout();
    let mut reported = 0;
    for line in rx {
        let mut out = stdout.lock();
        let lost = dropped.load(Ordering::Relaxed);
        if lost != reported {
            let _ = writeln!(
                out,
                "cmmd: {} log lines dropped (stdout was not draining)",
                lost - reported
            );
            reported = lost;
        }
        if out.write_all(&line).is_err() {
            return;
        }
        let _ = out.flush();
    }
}

/// Handle on the installed subscriber.
pub struct Telemetry {
    handle: reload::Handle<EnvFilter, Registry>,
    directive: String,
    dropped: Arc<AtomicU64>,
    queue: Sender<Vec<u8>>,
}

/// Check a filter directive without installing it.
pub fn parse_filter(directive: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(directive)
        .map_err(|e| format!("invalid log filter {directive:?}: {e}"))
}

impl Telemetry {
    /// Install the global subscriber.
    pub fn init(directive: &str, format: LogFormat) -> Result<Telemetry, String> {
        let filter = parse_filter(directive)?;
        let (filter, handle) = reload::Layer::new(filter);
        let (tx, rx) = bounded(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let queue = tx.clone();
        let writer = QueueWriter { tx, dropped: dropped.clone() };
        let thread_dropped = dropped.clone();
        std::thread::Builder::new()
            .name("cmmd-log".into())
            .spawn(move || writer_thread(rx, thread_dropped))
            .map_err(|e| format!("cannot start the log writer: {e}"))?;
        let registry = tracing_subscriber::registry().with(filter);
        let result = match format {
            LogFormat::Text => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(false)
                        .with_target(true),
                )
                .try_init(),
            LogFormat::Json => registry
                .with(
                    tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(writer),
                )
                .try_init(),
        };
        result.map_err(|e| format!("cannot install the logger: {e}"))?;
        Ok(Telemetry { handle, directive: directive.to_string(), dropped, queue })
    }

    /// The filter in force.
    pub fn filter(&self) -> &str {
        &self.directive
    }

    /// Replace the filter.
    pub fn set_filter(&mut self, directive: &str) -> Result<(), String> {
        let filter = parse_filter(directive)?;
        self.handle.reload(filter).map_err(|e| format!("cannot change the log filter: {e}"))?;
        self.directive = directive.to_string();
        Ok(())
    }

    /// Wait (at most `limit`) until queued lines are written: call before the process exits.
    pub fn flush(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while !self.queue.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // The line being written when the queue emptied.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    /// Lines dropped because stdout did not drain.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The vendor's `set debug` categories, mapped to a filter directive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugLevels {
    /// Hardware commands (`command`): `cmmd::offload=debug`.
    pub command: bool,
    /// Errors.
    pub error: bool,
    /// Warnings.
    pub warning: bool,
    /// Informational messages.
    pub info: bool,
}

impl DebugLevels {
    /// The categories implied by a base level name.
    pub fn from_level(level: &str) -> DebugLevels {
        let base = level.split(',').next().unwrap_or("info").trim().to_ascii_lowercase();
        let rank = match base.as_str() {
            "off" => 0,
            "error" => 1,
            "warn" | "warning" => 2,
            _ => 3,
        };
        DebugLevels {
            command: level.contains("cmmd::offload=debug") || base == "debug" || base == "trace",
            error: rank >= 1,
            warning: rank >= 2,
            info: rank >= 3,
        }
    }

    /// The filter directive for these categories.
    pub fn directive(&self) -> String {
        let base = if self.info {
            "info"
        } else if self.warning {
            "warn"
        } else if self.error {
            "error"
        } else {
            "off"
        };
        if self.command { format!("{base},cmmd::offload=debug") } else { base.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_categories_round_trip_through_directives() {
        let d = DebugLevels::from_level("warn");
        assert_eq!(d, DebugLevels { command: false, error: true, warning: true, info: false });
        assert_eq!(d.directive(), "warn");
        let with_cmd = DebugLevels { command: true, ..d };
        assert_eq!(with_cmd.directive(), "warn,cmmd::offload=debug");
        assert_eq!(DebugLevels::from_level(&with_cmd.directive()), with_cmd);
        assert!(parse_filter(&with_cmd.directive()).is_ok());
        assert!(parse_filter("info,[garbage").is_err());
    }
}
