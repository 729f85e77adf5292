//! cmmd: watches the kernel's connection tracking and pushes the connections the NXP DPAA
//! hardware can forward by itself into the `cdx` kernel module (or its software model).
//!
//! ```text
//!  kernel ctnetlink ──events/dump──▶ daemon::ct ─┐
//!  kernel rtnetlink ──links/addrs/neigh/routes──▶ daemon::routing ─┤   one mio loop (daemon)
//!  CLI :2103 ──bytes──▶ cli::Session ──Command──▶ control ─────────┼─▶ engine ──Actions──▶ worker ──▶ cdx (FCI) or sim
//!  /metrics /healthz /readyz ◀── metrics ◀── counters ─────────────┘      ▲   results + Waker
//!  kernel ctnetlink ◀── keepalive refresh / delete ◀────────────────────────┘
//! ```
//!
//! # Layers and their contracts
//!
//! - Pure domain, no I/O and no clock: [`flow`] (keys, the bounded table), [`policy`] (the
//!   static offload rules), [`net`] (the mirrored links, addresses, neighbours), [`route`] (the
//!   route cache), [`hw`] (what the hardware is asked, the route objects and their ids),
//!   [`stats`] (every counter and reason).
//! - [`engine`]: the sans-IO core. Events and `now` in, [`engine::Action`]s and the next
//!   deadline out; it owns all of the above. Tested without a kernel.
//! - Edges, each translating one foreign vocabulary: [`daemon`]'s `ct` (ctnetlink ⇄ engine),
//!   [`rtnl`] (rtnetlink ⇄ engine), [`offload`] (engine ⇄ FPP over FCI, on the [`worker`]
//!   thread), [`control`] (CLI commands ⇄ engine, vendor output formats), [`metrics`] and
//!   [`http`] (Prometheus), [`telemetry`] (the only logger installation).
//! - Composition: [`daemon`] (the loop, start-up, shutdown, SIGHUP), [`cli_server`] (sessions
//!   on the loop, the auth thread), [`cmdline`] (subcommands, exit codes).
//! - Tools around the daemon: [`ctl`] (`cmmd ctl`), [`manifests`] (`cmmd manifests`),
//!   [`sim_server`] (`cmmd sim serve|ctl`: the software cdx as its own process).
//!
//! Rules kept everywhere: no blocking call on the loop (hardware on the worker, password checks
//! on the auth thread, logs on the log thread); bad input from the kernel, the hardware or a
//! client is counted and dropped, never a panic or an exit; every refusal has a counted
//! [`stats::Reason`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cmd;
pub mod core;
pub mod daemon;
pub mod edge;
