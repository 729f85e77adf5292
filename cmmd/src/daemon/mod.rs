//! The composition root: one mio loop that owns every socket, the engine and all timers.
//!
//! ```text
//!  ctnetlink events ─┐                                      ┌─▶ offload worker ─▶ cdx (FCI)
//!  ctnetlink dumps ──┤                                      │        │  results + Waker
//!  rtnetlink ────────┼──▶ engine (sans-IO) ──▶ actions ─────┼─▶ ctnetlink requests (keepalive, delete)
//!  cdx events ───────┤        ▲                             └─▶ rtnetlink lookups / dumps
//!  signals, timers ──┘        │
//!  CLI :2103 ──▶ cli::Session ─▶ control ─┘        /metrics /healthz /readyz ◀── counters
//! ```
//!
//! Nothing here blocks: hardware commands go to the worker thread, password checks to the
//! auth thread, logs to the log thread, and the initial conntrack dump is received by a thread
//! of its own that hands each datagram over and wakes the loop (`edge::ct_dump`); every socket
//! on the loop is non-blocking and read with a budget so one busy source cannot starve the
//! others. Under churn the conntrack event socket sits out a poll after each drain, so that
//! each turn reads many events for its fixed cost (`batching`). Start-up (`start`: sockets,
//! the initial link/address/neighbour dump) happens before the loop runs.

mod batching;
pub mod setup;
mod start;

pub use start::StartupError;

use std::time::{Duration, Instant};

use cdx_sys::fci::{DatagramSocket, FciError, FciSocket};
use cdx_sys::sim::SimHandle;
use mio::unix::SourceFd;
use mio::{Events, Poll, Token};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{Expiration, TimerFd, TimerSetTimeFlags};

use self::batching::EventBatching;
use crate::core::engine::{Action, Engine};
use crate::core::hw::{HwEvent, HwFailure, HwResult, HwTimeouts};
use crate::core::policy::Policy;
use crate::edge::cli_server::CliServer;
use crate::edge::control::{
    self, Awaited, ConnectionsJob, ControlState, Ctx, LinesJob, Next, SimControl,
};
use crate::edge::ctnetlink::CtIo;
use crate::edge::http::{HttpServer, Response};
use crate::edge::metrics::{self, Extra};
use crate::edge::pppoe::PppoeWatch;
use crate::edge::routing::Routing;
use crate::edge::telemetry::Telemetry;
use crate::edge::worker::Worker;

const CT_EVENTS: Token = Token(0);
const CT_DUMPS: Token = Token(1);
const CT_REQUESTS: Token = Token(2);
const RTNL_EVENTS: Token = Token(3);
const RTNL_LOOKUPS: Token = Token(4);
const RTNL_DUMPS: Token = Token(5);
const HW_EVENTS: Token = Token(6);
const WAKER: Token = Token(7);
const SIGNALS: Token = Token(8);
const CLI_LISTENER: Token = Token(9);
const HTTP_LISTENER: Token = Token(10);
const PRECISE_TIMER: Token = Token(11);
const CLI_BASE: usize = 1_000;
const CLI_SPAN: usize = 4_096;
const HTTP_BASE: usize = 10_000;
const HTTP_SPAN: usize = 64;

/// Block the signals the loop handles, in the calling thread and every thread it starts
/// afterwards. Call it first thing in `main`, before any thread exists.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}

/// Everything `run` needs besides the configuration.
pub struct RunOptions {
    /// The flags the configuration was loaded with (SIGHUP reloads with the same).
    pub overrides: config::Overrides,
    /// The installed logger.
    pub telemetry: Option<Telemetry>,
    /// Signals blocked by [`block_signals`].
    pub signals: SigSet,
    /// `--sim-socket`: a software cdx in another process.
    pub sim_socket: Option<std::path::PathBuf>,
}

enum Job {
    Stream(ConnectionsJob),
    Lines(LinesJob),
    Await { tag: u64, awaited: Awaited },
}

struct Daemon {
    poll: Poll,
    engine: Engine,
    ct: CtIo,
    routing: Routing,
    /// The kernel's PPPoE sessions, read while PPP links exist.
    pppoe: PppoeWatch,
    hw_events: FciSocket,
    worker: Worker,
    cli: Option<CliServer>,
    http: Option<HttpServer>,
    signals: SignalFd,
    /// Wakes the loop for deadlines closer than the poll's resolution (a millisecond).
    precise_timer: TimerFd,
    /// When the conntrack event socket is left out of a poll under churn.
    batching: EventBatching,
    /// The event socket is out of the poll (a pause, or its return failed).
    ct_aside: bool,
    telemetry: Option<Telemetry>,
    sim: Option<SimHandle>,
    loaded: config::Loaded,
    overrides: config::Overrides,
    config_text: String,
    control: ControlState,
    jobs: Vec<(Token, Job)>,
    backend: &'static str,
    started: Instant,
    stop: bool,
    backlog: Backlog,
    hw_failures_in_row: u32,
    hw_events_ignored: u64,
    results: Vec<HwResult>,
    hw_event_buf: Vec<HwEvent>,
    rx: Vec<u8>,
}

/// Sources whose last read stopped at its budget with data left, and replies being streamed.
/// mio is edge-triggered: a source raises no new event for what it already holds, so the loop
/// does not sleep and reads it again next turn, even when something else woke it.
#[derive(Debug, Default, Clone, Copy)]
struct Backlog {
    ct_events: bool,
    ct_dumps: bool,
    rtnl_events: bool,
    cli_output: bool,
}

impl Backlog {
    fn any(self) -> bool {
        self.ct_events || self.ct_dumps || self.rtnl_events || self.cli_output
    }
}

/// Run the daemon until SIGTERM/SIGINT or `stop`; gives the logger back to flush.
pub fn run(loaded: config::Loaded, options: RunOptions) -> Result<Option<Telemetry>, StartupError> {
    let mut daemon = Daemon::start(loaded, options)?;
    daemon.run_loop();
    daemon.shutdown();
    Ok(daemon.telemetry.take())
}

/// A wait the poll cannot keep (it counts in whole milliseconds and rounds up), or `None`.
fn sub_millisecond(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero() && timeout < Duration::from_millis(1)).then_some(timeout)
}

impl Daemon {
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.backlog.any() || self.engine.pending_actions() > 0 {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.engine.next_deadline(),
            self.worker.next_deadline(),
            self.routing.next_deadline(),
            self.pppoe.next_deadline(),
            self.cli.as_ref().and_then(CliServer::next_deadline),
            self.http.as_ref().and_then(HttpServer::next_deadline),
        ];
        // Never sleep longer than a second: cheap, and a bound on any missed wake-up.
        let next = deadlines.into_iter().flatten().min().unwrap_or(now + Duration::from_secs(1));
        Some(next.saturating_duration_since(now).min(Duration::from_secs(1)))
    }

    fn run_loop(&mut self) {
        let mut events = Events::with_capacity(256);
        while !self.stop {
            let now = Instant::now();
            let pause = self.pause(now);
            let mut timeout = self.next_timeout(now);
            if let Some(pause) = pause.filter(|_| timeout != Some(Duration::ZERO)) {
                // A pause under churn (`batching`): the worker's results wait for its end.
                timeout = Some(timeout.map_or(pause, |t| t.min(pause)));
                self.set_ct_aside(true);
                self.batching.paused();
            } else if timeout != Some(Duration::ZERO) && !self.worker.going_to_sleep() {
                // The worker wakes the loop only when it said it sleeps (`edge::worker`).
                timeout = Some(Duration::ZERO);
            }
            if let Some(wait) = timeout.and_then(sub_millisecond) {
                // The poll's timeout would round up to 1 ms; the timer wakes it on time. If
                // it cannot be set, the poll's millisecond is the bound. Set before every
                // such poll on purpose: skipping it when the deadline stands made the loop
                // find its socket empty, sleep and wake five to fifteen times as often under
                // churn, which cost more than the call (`docs/performance.md`).
                let at = Expiration::OneShot(TimeSpec::from_duration(wait));
                let _ = self.precise_timer.set(at, TimerSetTimeFlags::empty());
            }
            let polled = self.poll.poll(&mut events, timeout);
            self.worker.awake();
            if self.ct_aside {
                // Back in the poll; what arrived meanwhile is read this turn.
                self.set_ct_aside(false);
                self.backlog.ct_events = true;
            }
            if let Err(e) = polled
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                // Never fatal: log, back off a little, go on.
                tracing::error!(error = %e, "poll failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            let now = Instant::now();
            let backlog = std::mem::take(&mut self.backlog);
            for event in &events {
                self.dispatch(event.token(), now);
            }
            self.read_backlog(backlog, now);
            self.turn(now);
        }
    }

    /// The pause before this turn's poll (`batching`), with the queued hardware commands
    /// handed to the worker first so that none waits for company across it. None while a
    /// source has data left or the engine has actions queued: the poll will not wait then.
    fn pause(&mut self, now: Instant) -> Option<Duration> {
        let read = self.ct.counters.event_datagrams;
        let busy = self.backlog.any() || self.engine.pending_actions() > 0;
        let pause = self.batching.pause(read, now).filter(|_| !busy)?;
        self.worker.flush_all();
        Some(pause)
    }

    /// Take the conntrack event socket out of the poll (`aside`) or put it back. A failure
    /// is logged; a socket that could not be put back is read every turn until it is.
    fn set_ct_aside(&mut self, aside: bool) {
        if aside == self.ct_aside {
            return;
        }
        let registry = self.poll.registry();
        let done = if aside {
            registry.deregister(&mut self.ct.events)
        } else {
            registry.register(&mut self.ct.events, CT_EVENTS, mio::Interest::READABLE)
        };
        match done {
            Ok(()) => self.ct_aside = aside,
            Err(e) => tracing::warn!(error = %e, aside, "conntrack event socket: epoll_ctl failed"),
        }
    }

    fn dispatch(&mut self, token: Token, now: Instant) {
        match token {
            CT_EVENTS => self.backlog.ct_events |= self.ct.read_events(&mut self.engine, now),
            CT_DUMPS => self.backlog.ct_dumps |= self.ct.read_dump(&mut self.engine, now),
            CT_REQUESTS => self.ct.read_request_replies(),
            RTNL_EVENTS => {
                self.backlog.rtnl_events |= self.routing.read_events(&mut self.engine, now);
            }
            RTNL_LOOKUPS => self.routing.read_lookups(&mut self.engine, now),
            RTNL_DUMPS => self.routing.read_dumps(&mut self.engine, now),
            HW_EVENTS => self.read_hw_events(now),
            WAKER => {
                // The initial dump's thread and the offload worker wake the loop (the
                // worker's results are read every turn).
                self.backlog.ct_dumps |= self.ct.read_thread_dump(&mut self.engine, now);
                if let Some(cli) = self.cli.as_mut() {
                    cli.on_auth_results(self.poll.registry(), now);
                }
            }
            SIGNALS => self.read_signals(now),
            PRECISE_TIMER => {
                // Only the wake-up matters; the read rearms its readiness.
                let _ = self.precise_timer.wait();
            }
            t if self.cli.as_ref().is_some_and(|c| c.owns(t)) => {
                if let Some(cli) = self.cli.as_mut() {
                    cli.ready(self.poll.registry(), t, now);
                }
            }
            t if self.http.as_ref().is_some_and(|h| h.owns(t)) => self.serve_http(t, now),
            _ => {}
        }
    }

    /// Read again the sources that still held data after their budget last turn, whether or
    /// not they were ready this turn (edge-triggered: they raise no new event for it).
    fn read_backlog(&mut self, backlog: Backlog, now: Instant) {
        if backlog.ct_events {
            self.backlog.ct_events |= self.ct.read_events(&mut self.engine, now);
        }
        if backlog.ct_dumps {
            self.backlog.ct_dumps |= self.ct.read_dump(&mut self.engine, now);
        }
        if backlog.rtnl_events {
            self.backlog.rtnl_events |= self.routing.read_events(&mut self.engine, now);
        }
    }

    /// Work done every turn, whatever woke the loop.
    fn turn(&mut self, now: Instant) {
        self.worker.results(&mut self.results);
        // Drained, not taken: the vector keeps its room from turn to turn.
        let mut results = std::mem::take(&mut self.results);
        for result in results.drain(..) {
            match &result.outcome {
                Ok(_) => self.hw_failures_in_row = 0,
                Err(HwFailure::Timeout | HwFailure::ReplyLost | HwFailure::Io(_)) => {
                    self.hw_failures_in_row += 1;
                }
                Err(_) => {}
            }
            self.engine.on_hw_result(result, now);
        }
        self.results = results;
        self.engine.on_timer(now);
        self.pppoe.poll(&mut self.engine, now);
        self.ct.log_dialect(self.engine.is_ready());
        self.routing.expire_lookups(&mut self.engine, now);
        self.execute_actions(now);
        self.run_cli(now);
        self.execute_actions(now);
        self.worker.flush(now);
        self.engine.release_memory();
        self.worker.release_memory();
        if let Some(cli) = self.cli.as_mut() {
            cli.on_timer(self.poll.registry(), now);
        }
        if let Some(http) = self.http.as_mut() {
            http.expire(self.poll.registry(), now);
        }
    }

    fn execute_actions(&mut self, now: Instant) {
        while let Some(action) = self.engine.pop_action() {
            match action {
                Action::Hw(request) => {
                    tracing::trace!(target: "cmmd::offload", tag = request.tag, op = ?request.op, "hardware command");
                    self.worker.submit(request, now);
                }
                Action::RouteLookup(lookup) => self.routing.lookup(lookup, now),
                Action::Dump { generation } => {
                    if let Err(e) = self.ct.start_dump(generation) {
                        tracing::warn!(error = %e, "cannot start a conntrack dump");
                        self.engine.on_dump_failed(generation, now);
                    }
                }
                Action::NetDump => self.routing.start_net_dump(&mut self.engine, now),
                Action::KernelRefresh { key, timeout } => self.ct.refresh(&key, timeout),
                Action::KernelPermanent { key, id, set } => self.ct.set_permanent(&key, id, set),
                Action::KernelDelete { key, id } => self.ct.delete(&key, id),
            }
        }
    }

    fn read_hw_events(&mut self, now: Instant) {
        loop {
            match self.hw_events.try_recv(&mut self.rx) {
                Ok(Some(len)) => {
                    crate::edge::offload::decode_events(
                        &self.rx[..len],
                        &mut self.hw_event_buf,
                        &mut self.hw_events_ignored,
                    );
                    for event in self.hw_event_buf.drain(..) {
                        self.engine.on_hw_event(event, now);
                    }
                }
                Ok(None) => return,
                Err(FciError::Overrun) => {
                    // REMOVED events were lost: the sweep and keepalive polls find the flows
                    // the hardware dropped (GET_TIMEOUT answers "not found").
                    tracing::warn!("cdx event socket overrun: hardware events lost");
                }
                Err(e) => {
                    tracing::error!(error = %e, "cdx event socket failed");
                    let _ = self.poll.registry().deregister(&mut SourceFd(
                        &std::os::fd::AsRawFd::as_raw_fd(&self.hw_events),
                    ));
                    return;
                }
            }
        }
    }

    fn read_signals(&mut self, now: Instant) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM | Signal::SIGINT) => {
                    tracing::info!(signal = info.ssi_signo, "shutting down");
                    self.stop = true;
                }
                Ok(Signal::SIGHUP) => self.reload(now),
                _ => {}
            }
        }
    }

    fn reload(&mut self, now: Instant) {
        let options = config::LoadOptions::new(&config::process_env, self.overrides.clone());
        let checked = config::Config::load(&options)
            .and_then(|new| setup::conntrack_dialect(&new).map(|_| new));
        let mut new = match checked {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: configuration not reloaded; the running one stays in force");
                return;
            }
        };
        let changes = self.loaded.config.reload_diff(&new.config);
        if changes.is_empty() {
            tracing::info!("SIGHUP: configuration unchanged");
            return;
        }
        for change in &changes {
            match change.applies {
                config::Applies::Live => tracing::info!("SIGHUP: {change}"),
                config::Applies::NeedsRestart => tracing::warn!("SIGHUP: {change}"),
            }
        }
        let cfg = &new.config;
        self.engine.set_policy(Policy::new(&cfg.offload), now);
        let hw_timeouts = HwTimeouts::from(&cfg.timeouts);
        if hw_timeouts != self.engine.config().hw_timeouts {
            self.engine.set_hw_timeouts(hw_timeouts);
        }
        self.engine.set_keepalive(cfg.keepalive);
        if let Some(t) = self.telemetry.as_mut()
            && t.filter() != cfg.log.level
            && let Err(e) = t.set_filter(&cfg.log.level)
        {
            tracing::error!(error = %e, "SIGHUP: log filter not changed");
        }
        match setup::credentials(cfg) {
            Ok((creds, enable)) => {
                if let Some(cli) = self.cli.as_mut() {
                    cli.replace_credentials(creds, enable);
                }
            }
            Err(e) => tracing::error!(error = %e, "SIGHUP: CLI accounts not changed"),
        }
        let pending = new.keep_restart_keys(&self.loaded);
        self.config_text = new.render_effective();
        if !pending.is_empty() {
            self.config_text.push_str("\n# read on SIGHUP but not in force until cmmd restarts:\n");
            for change in &pending {
                self.config_text
                    .push_str(&format!("#   {}: {} -> {}\n", change.key, change.old, change.new));
            }
        }
        self.loaded = new;
    }

    fn extra(&self) -> Extra {
        let cli = self.cli.as_ref().map(CliServer::counters).unwrap_or_default();
        Extra {
            cli_sessions: self.cli.as_ref().map_or(0, |c| c.sessions() as u64),
            cli_login_failures: cli.login_failures,
            cli_refused: cli.refused,
            event_buffer_bytes: self.ct.event_buffer as u64,
            event_rate: self.batching.rate(),
            event_read_pauses: self.batching.pauses(),
            log_lines_dropped: self.telemetry.as_ref().map_or(0, Telemetry::dropped_lines),
            hw_backlog: self.worker.backlog() as u64,
            netlink_malformed: self.ct.counters.malformed
                + self.ct.counters.truncated
                + self.routing.counters.malformed,
            events_discarded: self.ct.counters.discarded,
            conntrack_dialect: Some(self.ct.dialect.state()),
            permanent_bit: self.ct.permanent_bit().map(conntrack::PermanentBit::bit),
            attributes_skipped: self.ct.counters.skipped,
            permanent_unsent: self.ct.counters.permanent_unsent,
            http_evicted: self.http.as_ref().map_or(0, HttpServer::evicted),
            ready: self.ready().is_ok(),
        }
    }

    fn ready(&self) -> Result<(), &'static str> {
        if self.engine.cdx_refused() {
            return Err("cdx refuses FCI commands (EOPNOTSUPP): it was booted with \
                        offload_owner=flowtable; boot it with offload_owner=cmm\n");
        }
        if !self.engine.is_ready() {
            return Err("initial conntrack dump not done\n");
        }
        if self.engine.net_redump_failures() > 0 {
            return Err("rtnetlink re-dump failed; retrying\n");
        }
        if self.engine.cdx_abi().is_none() {
            return Err("cdx's ABI not known yet (it did not answer the probes); retrying\n");
        }
        if self.engine.stats().hw_ok == 0 || self.hw_failures_in_row >= 3 {
            return Err("hardware backend not answering\n");
        }
        Ok(())
    }

    fn serve_http(&mut self, token: Token, now: Instant) {
        let extra = self.extra();
        let ready = self.ready();
        let Daemon { http, engine, poll, .. } = self;
        let Some(http) = http.as_mut() else { return };
        let mut respond = |path: &str| match path {
            "/metrics" => Response::ok(
                "text/plain; version=0.0.4; charset=utf-8",
                metrics::render(engine, &extra),
            ),
            "/healthz" => Response::text(200, "ok\n"),
            "/readyz" => match ready {
                Ok(()) => Response::text(200, "ready\n"),
                Err(why) => Response::text(503, why),
            },
            _ => Response::text(404, "try /metrics, /healthz or /readyz\n"),
        };
        http.ready(poll.registry(), token, now, &mut respond);
    }

    fn run_cli(&mut self, now: Instant) {
        let extra = self.extra();
        let Daemon {
            cli,
            engine,
            telemetry,
            config_text,
            control,
            loaded,
            sim,
            stop,
            started,
            backend,
            jobs,
            backlog,
            poll,
            ..
        } = self;
        let Some(cli) = cli.as_mut() else { return };
        while let Some((token, invocation)) = cli.next_invocation() {
            let Some(session) = cli.session(token) else { continue };
            let rules: Vec<config::ExcludeRule> =
                loaded.config.offload.deny_rules().cloned().collect();
            let mut ctx = Ctx {
                engine,
                now,
                telemetry: telemetry.as_mut(),
                log_level: &loaded.config.log.level,
                state: control,
                config_text,
                rules: &rules,
                sim: sim.as_ref().map(|s| s as &dyn SimControl),
                stop,
                started: *started,
                backend,
                extra: &extra,
            };
            match control::execute(&mut ctx, &invocation.command, session) {
                Next::Done => {}
                Next::Stream(job) => jobs.push((token, Job::Stream(job))),
                Next::Lines(job) => jobs.push((token, Job::Lines(job))),
                Next::Await { tag, awaited } => jobs.push((token, Job::Await { tag, awaited })),
            }
        }
        jobs.retain_mut(|(token, job)| {
            if !cli.is_open(*token) {
                return false;
            }
            match job {
                Job::Stream(stream) => {
                    if !cli.has_room(*token) {
                        return true;
                    }
                    let Some(session) = cli.session(*token) else { return false };
                    let done = stream.step(engine, now, session);
                    backlog.cli_output |= !done && cli.has_room(*token);
                    !done
                }
                Job::Lines(lines) => {
                    if !cli.has_room(*token) {
                        return true;
                    }
                    let Some(session) = cli.session(*token) else { return false };
                    let done = lines.step(session);
                    backlog.cli_output |= !done && cli.has_room(*token);
                    !done
                }
                Job::Await { tag, awaited } => match engine.take_external(*tag) {
                    Some(result) => {
                        if let Some(session) = cli.session(*token) {
                            control::finish(*awaited, result, control, session);
                        }
                        false
                    }
                    None => true,
                },
            }
        });
        cli.flush_all(poll.registry(), now);
    }

    fn shutdown(&mut self) {
        let flush = self.loaded.config.shutdown.flush_on_exit;
        let now = Instant::now();
        self.engine.shutdown(flush, now);
        let deadline = now + setup::SHUTDOWN_DRAIN;
        loop {
            let now = Instant::now();
            self.execute_actions(now);
            self.worker.flush_all();
            self.worker.results(&mut self.results);
            for result in std::mem::take(&mut self.results) {
                self.engine.on_hw_result(result, now);
            }
            if (self.engine.hw_idle()
                && self.worker.backlog() == 0
                && self.engine.pending_actions() == 0)
                || now >= deadline
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.worker.join();
        let offloaded = self.engine.flows().filter(|(_, f)| f.in_hw()).count();
        if flush {
            tracing::info!(remaining = offloaded, "stopped; hardware flows withdrawn");
        } else {
            tracing::info!(
                offloaded,
                "stopped; hardware flows left in place for the next start to adopt"
            );
        }
        if let Some(sim) = &self.sim {
            sim.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_waits_shorter_than_the_polls_millisecond_need_the_timer() {
        let us = Duration::from_micros;
        assert_eq!(sub_millisecond(us(200)), Some(us(200)));
        assert_eq!(sub_millisecond(us(999)), Some(us(999)));
        assert_eq!(sub_millisecond(Duration::ZERO), None, "a zero timeout does not block");
        assert_eq!(sub_millisecond(us(1000)), None);
        assert_eq!(sub_millisecond(Duration::from_secs(1)), None);
    }
}
