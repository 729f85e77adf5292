//! Start-up: from the loaded configuration to a daemon whose sockets are open, subscribed
//! and registered with the loop, before the loop runs.
//!
//! Contract: conntrack events are subscribed before anything is dumped (nothing falls between
//! dump and events); the initial link, address, neighbour and PPPoE view is read before the
//! engine exists; every failure is a [`StartupError`] that says what to do (exit code 1).

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Poll, Waker};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};

use super::batching::EventBatching;
use super::{
    Backlog, CLI_BASE, CLI_LISTENER, CLI_SPAN, CT_DUMPS, CT_EVENTS, CT_REQUESTS, Daemon, HTTP_BASE,
    HTTP_LISTENER, HTTP_SPAN, HW_EVENTS, PRECISE_TIMER, RTNL_DUMPS, RTNL_EVENTS, RTNL_LOOKUPS,
    RunOptions, SIGNALS, WAKER, setup,
};
use crate::core::engine::{Engine, EngineConfig};
use crate::core::net::{IfName, NetView};
use crate::edge::backend::{Backend, BackendError};
use crate::edge::cli_server::CliServer;
use crate::edge::control::ControlState;
use crate::edge::ctnetlink::CtIo;
use crate::edge::http::HttpServer;
use crate::edge::pppoe::PppoeWatch;
use crate::edge::routing::{self, Routing};
use crate::edge::warn_if_smaller;
use crate::edge::worker::Worker;

/// Why the daemon could not start (exit code 1, message says what to do).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A kernel facility refused us.
    #[error("{what}: {source}{hint}")]
    Kernel {
        /// What was being opened.
        what: &'static str,
        /// The error.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The hardware backend.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A listening socket.
    #[error("cannot listen on {addr} for the {what}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// CLI or metrics.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Configuration that only fails when used (an unusable password hash).
    #[error("{0}")]
    Config(String),
}

fn kernel(what: &'static str) -> impl FnOnce(std::io::Error) -> StartupError {
    move |source| {
        let hint = if source.raw_os_error() == Some(libc::EPERM) {
            " (cmmd needs CAP_NET_ADMIN: run it as root or grant the capability)"
        } else if source.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
            " (is the nf_conntrack_netlink module available?)"
        } else {
            ""
        };
        StartupError::Kernel { what, source, hint }
    }
}

impl Daemon {
    pub(super) fn start(
        loaded: config::Loaded,
        options: RunOptions,
    ) -> Result<Daemon, StartupError> {
        let cfg = &loaded.config;
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let signals =
            SignalFd::with_flags(&options.signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
                .map_err(|e| kernel("signalfd")(e.into()))?;
        if cfg.netlink.enable_events_sysctl {
            match setup::enable_conntrack_events() {
                Ok(1) => {}
                Ok(before) => tracing::info!(
                    before,
                    "set net.netfilter.nf_conntrack_events=1 in this network namespace so every entry reports its events"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not enable conntrack events for entries created before cmmd; the periodic sweep covers them")
                }
            }
        }
        // Subscribe before anything is dumped, so nothing falls between dump and events.
        let (dialect, permanent_bit) = setup::conntrack_dialect(&loaded)
            .map_err(|error| StartupError::Config(error.to_string()))?;
        let poll = Poll::new().map_err(kernel("epoll"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(kernel("eventfd"))?);
        let wake_loop = waker.clone();
        let ct = CtIo::open(
            cfg.netlink.event_buffer as usize,
            cfg.netlink.reliable_destroy,
            dialect,
            permanent_bit,
            Arc::new(move || {
                let _ = wake_loop.wake();
            }),
        )
        .map_err(kernel("conntrack netlink socket"))?;
        warn_if_smaller("conntrack event", cfg.netlink.event_buffer as usize, ct.event_buffer);
        tracing::info!(
            bytes = ct.event_buffer,
            reliable_destroy = cfg.netlink.reliable_destroy,
            "subscribed to conntrack events"
        );
        let routing =
            Routing::open(cfg.netlink.rtnl_buffer as usize).map_err(kernel("rtnetlink socket"))?;
        let ports: Vec<IfName> = cfg.ports.iter().filter_map(|p| IfName::new(p.as_str())).collect();
        let mut net = NetView::new(ports.iter().copied());
        routing::initial_view(&mut net).map_err(kernel("rtnetlink dump"))?;
        net.set_pppoe_sessions(crate::edge::pppoe::read());
        for p in &ports {
            if net.link_by_name(p).is_none() {
                tracing::warn!(port = %p, "fast-path port not present (yet); it is used when it appears");
            }
        }
        let backend = match (cfg.backend, &options.sim_socket) {
            (config::Backend::Sim, Some(path)) => Backend::remote_sim(path)?,
            (config::Backend::Cdx, Some(path)) => {
                return Err(StartupError::Config(format!(
                    "--sim-socket {} needs --backend sim",
                    path.display()
                )));
            }
            (config::Backend::Cdx, None) => Backend::cdx(cfg.netlink.event_buffer as usize)?,
            (config::Backend::Sim, None) => Backend::sim(crate::edge::backend::sim_config(cfg))?,
        };
        tracing::info!(backend = backend.name, ports = ?cfg.ports.iter().map(|p| p.as_str()).collect::<Vec<_>>(), "hardware backend ready");
        let wake_worker = waker.clone();
        let worker = Worker::spawn(
            backend.executor,
            Arc::new(move || {
                let _ = wake_worker.wake();
            }),
        )
        .map_err(kernel("offload worker thread"))?;
        let (credentials, enable) = setup::credentials(cfg).map_err(StartupError::Config)?;
        let registry = poll.registry();
        let mut ct = ct;
        registry
            .register(&mut ct.events, CT_EVENTS, Interest::READABLE)
            .map_err(kernel("epoll"))?;
        registry.register(&mut ct.dumps, CT_DUMPS, Interest::READABLE).map_err(kernel("epoll"))?;
        registry
            .register(&mut ct.requests, CT_REQUESTS, Interest::READABLE)
            .map_err(kernel("epoll"))?;
        let mut routing = routing;
        registry
            .register(routing.events.source(), RTNL_EVENTS, Interest::READABLE)
            .map_err(kernel("epoll"))?;
        registry
            .register(routing.lookups.source(), RTNL_LOOKUPS, Interest::READABLE)
            .map_err(kernel("epoll"))?;
        registry
            .register(routing.dumps.source(), RTNL_DUMPS, Interest::READABLE)
            .map_err(kernel("epoll"))?;
        let hw_events = backend.events;
        registry
            .register(
                &mut SourceFd(&std::os::fd::AsRawFd::as_raw_fd(&hw_events)),
                HW_EVENTS,
                Interest::READABLE,
            )
            .map_err(kernel("epoll"))?;
        registry
            .register(
                &mut SourceFd(&std::os::fd::AsRawFd::as_raw_fd(&signals)),
                SIGNALS,
                Interest::READABLE,
            )
            .map_err(kernel("epoll"))?;
        let precise_timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| kernel("timerfd")(e.into()))?;
        registry
            .register(
                &mut SourceFd(&precise_timer.as_fd().as_raw_fd()),
                PRECISE_TIMER,
                Interest::READABLE,
            )
            .map_err(kernel("epoll"))?;
        let cli = match cfg.cli.listen {
            Some(addr) => {
                let wake_auth = waker.clone();
                let server = CliServer::bind(
                    addr,
                    registry,
                    CLI_LISTENER,
                    CLI_BASE,
                    CLI_SPAN,
                    setup::cli_settings(cfg),
                    credentials,
                    enable,
                    Arc::new(move || {
                        let _ = wake_auth.wake();
                    }),
                )
                .map_err(|source| StartupError::Listen {
                    addr,
                    what: "CLI",
                    source,
                })?;
                tracing::info!(addr = %server.local_addr().unwrap_or(addr), "CLI listening (telnet)");
                Some(server)
            }
            None => None,
        };
        let http = match cfg.metrics.listen {
            Some(addr) => {
                let server =
                    HttpServer::bind(addr, registry, HTTP_LISTENER, HTTP_BASE, HTTP_SPAN).map_err(
                        |source| StartupError::Listen { addr, what: "metrics endpoint", source },
                    )?;
                tracing::info!(addr = %server.local_addr().unwrap_or(addr), "metrics on /metrics, probes on /healthz and /readyz");
                Some(server)
            }
            None => None,
        };
        let now = Instant::now();
        let mut engine = Engine::new(EngineConfig::new(cfg, setup::kernel_timeouts()), net, now);
        engine.start(now);
        let config_text = loaded.render_effective();
        let batching = EventBatching::new(cfg.netlink.batch_interval, ct.event_buffer, now);
        Ok(Daemon {
            poll,
            engine,
            ct,
            routing,
            pppoe: PppoeWatch::default(),
            hw_events,
            worker,
            cli,
            http,
            signals,
            precise_timer,
            batching,
            ct_aside: false,
            telemetry: options.telemetry,
            sim: backend.sim,
            loaded,
            overrides: options.overrides,
            config_text,
            control: ControlState::default(),
            jobs: Vec::new(),
            backend: backend.name,
            started: now,
            stop: false,
            backlog: Backlog::default(),
            hw_failures_in_row: 0,
            hw_events_ignored: 0,
            results: Vec::new(),
            hw_event_buf: Vec::new(),
            rx: vec![0; 64 * 1024],
        })
    }
}
