//! `ct-inject`: the end-to-end harness's ctnetlink load generator and reference listener.
//!
//! ```text
//! ct-inject churn  [--rate EVENTS/S] [--seconds S] [--events N] [--window W] [--batch B]
//!                  [--offloadable 1|0]
//! ct-inject fill   --count N [--batch B] [--timeout S]
//! ct-inject listen [--seconds S] [--idle S] [--buffer BYTES]
//! ct-inject dump
//! ct-inject ready  --port P [--seconds S] [--offloaded N] [--interval-ms I]
//! ```
//!
//! `churn` creates entries and deletes each one `W` creates later (so at most `W` live), `B`
//! requests per datagram, paced to `--rate` requests per second (0: as fast as the kernel takes
//! them), until `--events` requests or `--seconds` have passed; then it deletes what is left.
//! Each accepted request is one event the kernel emits (NEW or DESTROY). `fill` creates `N`
//! entries and leaves them. `listen` counts events on its own socket (a reference consumer).
//! `dump` times one dump of the whole table (the kernel's part of any cold start, plus our
//! zero-copy decode). `churn --offloadable 0` makes the same events with entries no policy
//! offloads (TCP SYN_SENT, UDP unreplied). `ready` asks `http://127.0.0.1:P/readyz` every
//! `I` ms (1) until it answers 200, or with `--offloaded N` `/metrics` until N connections are
//! offloaded, and prints when (Unix milliseconds): a cold start timed without a `curl` process
//! per poll. Every mode prints `name: value` lines and is
//! bounded in count and time.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use cmmd_benches::inject::{Batch, PERIOD, Plan, Refusals};
use conntrack::{Create, CtSocket, Datagram, Event, EventKind, Message, RecvError, Tuple};

/// Receive buffer of the injector's socket: refusals must not be lost.
const REFUSAL_BUFFER: usize = 8 << 20;
/// Longest run of any mode, whatever the arguments.
const MAX_SECONDS: f64 = 900.0;

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(
        "usage: ct-inject churn|fill|listen|dump|ready [--name value]... (see the source's docs)"
    )]
    Usage,
    #[error("--{0} wants a number")]
    Number(String),
    #[error("unknown option --{0}")]
    Unknown(String),
    #[error("dump: {0}")]
    Dump(String),
    #[error("socket: {0}")]
    Socket(#[from] std::io::Error),
}

struct Options {
    pairs: Vec<(String, f64)>,
}

impl Options {
    fn parse(args: &[String], known: &[&str]) -> Result<Options, CliError> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(name) = it.next() {
            let name = name.strip_prefix("--").ok_or(CliError::Usage)?;
            if !known.contains(&name) {
                return Err(CliError::Unknown(name.to_owned()));
            }
            let value = it.next().ok_or_else(|| CliError::Number(name.to_owned()))?;
            let value = value.parse().map_err(|_| CliError::Number(name.to_owned()))?;
            pairs.push((name.to_owned(), value));
        }
        Ok(Options { pairs })
    }

    fn get(&self, name: &str, default: f64) -> f64 {
        self.pairs.iter().rev().find(|(n, _)| n == name).map_or(default, |(_, v)| *v)
    }
}

/// The request socket with its batch under construction and what the kernel refused.
struct Sender {
    socket: CtSocket,
    batch: Batch,
    batch_size: usize,
    rx: Vec<u8>,
    refusals: Refusals,
    overruns: u64,
    creates: u64,
    deletes: u64,
}

impl Sender {
    /// A nonblocking request socket with a buffer large enough for refusals.
    fn new(batch_size: usize) -> Result<Sender, CliError> {
        let socket = CtSocket::requests()?;
        socket.set_receive_buffer(REFUSAL_BUFFER)?;
        socket.set_nonblocking(true)?;
        Ok(Sender {
            socket,
            batch: Batch::new(),
            batch_size: batch_size.max(1),
            rx: vec![0; 64 * 1024],
            refusals: Refusals::default(),
            overruns: 0,
            creates: 0,
            deletes: 0,
        })
    }

    fn sent(&self) -> u64 {
        self.creates + self.deletes
    }

    fn create(&mut self, entry: &Create) -> Result<(), CliError> {
        self.batch.create(entry);
        self.creates += 1;
        self.flush_if_full()
    }

    fn delete(&mut self, orig: &Tuple) -> Result<(), CliError> {
        self.batch.delete(orig);
        self.deletes += 1;
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> Result<(), CliError> {
        if self.batch.len() >= self.batch_size { self.flush() } else { Ok(()) }
    }

    /// Read every queued answer without waiting.
    fn drain_refusals(&mut self) {
        loop {
            match self.socket.recv(&mut self.rx) {
                Ok(n) => self.refusals.count(self.rx.get(..n).unwrap_or_default()),
                Err(RecvError::Overrun) => self.overruns += 1,
                Err(_) => return,
            }
        }
    }

    /// Send the batch (waiting while the kernel pushes back) and read refusals.
    fn flush(&mut self) -> Result<(), CliError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        loop {
            match self.socket.send(self.batch.bytes()) {
                Ok(()) => break,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    self.drain_refusals();
                    thread::sleep(Duration::from_micros(50));
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.batch.clear();
        self.drain_refusals();
        Ok(())
    }

    /// Send what is left, wait for the last refusals and print the totals.
    fn finish(mut self) -> Result<(), CliError> {
        self.flush()?;
        thread::sleep(Duration::from_millis(100));
        self.drain_refusals();
        let refused = self.refusals.creates + self.refusals.deletes;
        println!("creates_sent: {}", self.creates);
        println!("deletes_sent: {}", self.deletes);
        println!("creates_refused: {}", self.refusals.creates);
        println!("deletes_refused: {}", self.refusals.deletes);
        for (errno, n) in &self.refusals.by_errno {
            println!("refused_errno_{errno}: {n}");
        }
        println!("answer_overruns: {}", self.overruns);
        println!("events_emitted: {}", self.sent().saturating_sub(refused));
        Ok(())
    }
}

fn churn(options: &Options) -> Result<(), CliError> {
    let rate = options.get("rate", 0.0);
    let seconds = options.get("seconds", 10.0).min(MAX_SECONDS);
    let max_events = options.get("events", 1e9) as u64;
    let window = (options.get("window", 1024.0) as u32).clamp(1, PERIOD / 2);
    let offloadable = options.get("offloadable", 1.0) != 0.0;
    let plan = Plan { timeout: options.get("timeout", 600.0) as u32, offloadable };
    let mut sender = Sender::new(options.get("batch", 128.0) as usize)?;
    let (mut created, mut deleted) = (0u32, 0u32);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    loop {
        let now = Instant::now();
        if sender.sent() >= max_events || now >= deadline {
            break;
        }
        if rate > 0.0 && sender.batch.is_empty() {
            let due = started + Duration::from_secs_f64(sender.sent() as f64 / rate);
            if due > now {
                thread::sleep(due - now);
            }
        }
        if created.wrapping_sub(deleted) >= window {
            sender.delete(&plan.tuple(deleted))?;
            deleted = deleted.wrapping_add(1);
        } else {
            sender.create(&plan.entry(created))?;
            created = created.wrapping_add(1);
        }
    }
    sender.flush()?;
    let elapsed = started.elapsed();
    let rate = sender.sent() as f64 / elapsed.as_secs_f64().max(1e-9);
    // Delete what is still alive (bounded: at most `window` entries).
    while deleted != created {
        sender.delete(&plan.tuple(deleted))?;
        deleted = deleted.wrapping_add(1);
    }
    println!("mode: churn");
    println!("load_seconds: {:.3}", elapsed.as_secs_f64());
    println!("requests_per_second: {rate:.0}");
    sender.finish()
}

fn fill(options: &Options) -> Result<(), CliError> {
    let count = (options.get("count", 0.0) as u32).min(PERIOD);
    let plan = Plan { timeout: options.get("timeout", 3600.0) as u32, offloadable: true };
    let mut sender = Sender::new(options.get("batch", 128.0) as usize)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(MAX_SECONDS);
    for index in 0..count {
        if index % 4096 == 0 && Instant::now() >= deadline {
            break;
        }
        sender.create(&plan.entry(index))?;
    }
    sender.flush()?;
    println!("mode: fill");
    println!("load_seconds: {:.3}", started.elapsed().as_secs_f64());
    sender.finish()
}

fn listen(options: &Options) -> Result<(), CliError> {
    let seconds = options.get("seconds", 60.0).min(MAX_SECONDS);
    let idle = Duration::from_secs_f64(options.get("idle", 2.0));
    let buffer = options.get("buffer", (64 << 20) as f64) as usize;
    let mut socket = CtSocket::events()?;
    let granted = socket.set_receive_buffer(buffer)?;
    socket.set_nonblocking(true)?;
    let mut poll = mio::Poll::new()?;
    let mut events = mio::Events::with_capacity(4);
    poll.registry().register(&mut socket, mio::Token(0), mio::Interest::READABLE)?;
    println!("listen_buffer_bytes: {granted}");
    let mut rx = vec![0u8; 256 * 1024];
    let (mut new, mut update, mut destroy, mut overruns, mut malformed) = (0u64, 0u64, 0, 0, 0);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut last_event: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline || last_event.is_some_and(|t| now - t >= idle) {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        loop {
            let n = match socket.recv(&mut rx) {
                Ok(n) => n,
                Err(RecvError::Overrun) => {
                    overruns += 1;
                    continue;
                }
                Err(_) => break,
            };
            last_event = Some(Instant::now());
            for message in Datagram::new(rx.get(..n).unwrap_or_default()) {
                let Ok(Message::Conntrack(message)) = message else { continue };
                match Event::from_message(&message) {
                    Ok(Some(event)) => match event.kind {
                        EventKind::New => new += 1,
                        EventKind::Update => update += 1,
                        EventKind::Destroy => destroy += 1,
                    },
                    Ok(None) => {}
                    Err(_) => malformed += 1,
                }
            }
        }
    }
    println!("mode: listen");
    println!("events_new: {new}");
    println!("events_update: {update}");
    println!("events_destroy: {destroy}");
    println!("events_received: {}", new + update + destroy);
    println!("events_malformed: {malformed}");
    println!("overruns: {overruns}");
    Ok(())
}

fn dump() -> Result<(), CliError> {
    let socket = CtSocket::requests()?;
    socket.set_receive_buffer(4 << 20)?;
    let started = Instant::now();
    let entries = socket.dump_all(None).map_err(|e| CliError::Dump(e.to_string()))?;
    let took = started.elapsed();
    println!("mode: dump");
    println!("dump_entries: {}", entries.len());
    println!("dump_seconds: {:.3}", took.as_secs_f64());
    Ok(())
}

/// The answer to `GET path` on `address` (status line and body), if it came.
fn http_get(address: &SocketAddr, path: &str) -> Option<String> {
    let timeout = Duration::from_millis(500);
    let mut stream = TcpStream::connect_timeout(address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: cmmd\r\n\r\n").as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// Whether cmmd answers: `/readyz` with 200, or (`offloaded` > 0) `/metrics` with at least
/// that many connections offloaded.
fn reached(address: &SocketAddr, offloaded: u64) -> bool {
    if offloaded == 0 {
        return http_get(address, "/readyz").is_some_and(|a| a.starts_with("HTTP/1.0 200"));
    }
    let Some(metrics) = http_get(address, "/metrics") else { return false };
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("cmmd_flows{state=\"offloaded\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .is_some_and(|n| n >= offloaded)
}

fn ready(options: &Options) -> Result<(), CliError> {
    let port = options.get("port", 0.0) as u16;
    let seconds = options.get("seconds", 60.0).min(MAX_SECONDS);
    let offloaded = options.get("offloaded", 0.0) as u64;
    let interval = Duration::from_secs_f64(options.get("interval-ms", 1.0).max(0.1) / 1e3);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut polls = 0u64;
    let answered = loop {
        polls += 1;
        if reached(&address, offloaded) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        thread::sleep(interval);
    };
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_millis());
    println!("mode: ready");
    println!("reached: {}", u8::from(answered));
    println!("reached_unix_ms: {unix_ms}");
    println!("polls: {polls}");
    Ok(())
}

fn run(args: &[String]) -> Result<(), CliError> {
    let (mode, rest) = args.split_first().ok_or(CliError::Usage)?;
    match mode.as_str() {
        "churn" => churn(&Options::parse(
            rest,
            &["rate", "seconds", "events", "window", "batch", "timeout", "offloadable"],
        )?),
        "fill" => fill(&Options::parse(rest, &["count", "batch", "timeout"])?),
        "dump" if rest.is_empty() => dump(),
        "listen" => listen(&Options::parse(rest, &["seconds", "idle", "buffer"])?),
        "ready" => ready(&Options::parse(rest, &["port", "seconds", "offloaded", "interval-ms"])?),
        _ => Err(CliError::Usage),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ct-inject: {error}");
            ExitCode::from(2)
        }
    }
}
