//! cmmd: watches the kernel's connection tracking and pushes the connections the NXP DPAA
//! hardware can forward by itself into the `cdx` kernel module (or its software model).
//!
//! ```text
//!  kernel ctnetlink ──events/dump──▶ edge::ctnetlink ─┐
//!  kernel rtnetlink ──links/addrs/neigh/routes──▶ edge::routing ─┤   one mio loop (daemon)
//!  CLI :2103 ──bytes──▶ cli::Session ──Command──▶ control ─────────┼─▶ engine ──Actions──▶ worker ──▶ cdx (FCI) or sim
//!  /metrics /healthz /readyz ◀── metrics ◀── counters ─────────────┘      ▲   results + Waker
//!  kernel ctnetlink ◀── keepalive refresh / delete ◀────────────────────────┘
//! ```
//!
//! # Layers and their contracts
//!
//! The tree is the layer map: each directory is one layer, and imports only run downwards
//! (`cmd` → `daemon` → `edge` → `core`; nothing in `core` imports an edge).
//!
//! - [`core`]: the sans-IO core, no socket, no thread, no clock. The pure domain
//!   ([`core::flow`] keys and the bounded table, [`core::policy`] the static offload rules,
//!   [`core::net`] the mirrored links, addresses and neighbours, [`core::route`] the route
//!   cache, [`core::hw`] what the hardware is asked and the route objects, [`core::stats`]
//!   every counter and reason) and [`core::engine`], the state machine that owns it: events
//!   and `now` in, [`core::engine::Action`]s and the next deadline out. Tested without a
//!   kernel.
//! - [`edge`]: the I/O edges, each translating one foreign vocabulary into the core's:
//!   ctnetlink and rtnetlink (the kernel), [`edge::offload`] on the [`edge::worker`] thread
//!   (FPP over FCI to cdx or the software cdx), [`edge::control`] and [`edge::cli_server`]
//!   (the CLI), [`edge::http`] and [`edge::metrics`] (Prometheus and probes),
//!   [`edge::telemetry`] (the only logger installation). An edge owns its sockets and
//!   threads and holds no offload decision.
//! - [`daemon`]: the composition: one mio loop that owns the engine and every edge,
//!   start-up, shutdown, SIGHUP.
//! - [`cmd`]: what `main` dispatches to: the command line and exit codes ([`cmd::cmdline`]),
//!   `cmmd ctl`, `cmmd manifests`, `cmmd sim serve|ctl`.
//!
//! Rules kept everywhere: no blocking call on the loop (hardware on the worker, password checks
//! on the auth thread, logs on the log thread); bad input from the kernel, the hardware or a
//! client is counted and dropped, never a panic or an exit; every refusal has a counted
//! [`core::stats::Reason`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cmd;
pub mod core;
pub mod daemon;
pub mod edge;
