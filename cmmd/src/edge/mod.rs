//! The I/O edges: each translates one foreign vocabulary into the core's and back.
//!
//! - Kernel: `ctnetlink` (conntrack events, dumps and updates ⇄ engine; `ct_dump` receives
//!   the initial dump on a thread of its own), [`rtnl`] (rtnetlink messages ⇄ engine values,
//!   and the socket), `routing` (route lookups, multicast events and re-dumps on the loop)
//!   and [`pppoe`] (the PPPoE session table).
//! - Hardware: [`offload`] (engine commands ⇄ FPP over FCI), run by the [`worker`] thread;
//!   [`backend`] opens cdx or the software cdx.
//! - Operators: [`control`] (CLI commands ⇄ engine, vendor output formats), [`cli_server`]
//!   (sessions on the loop, the auth thread), [`http`] and [`metrics`] (Prometheus and
//!   probes), [`telemetry`] (the only logger installation).
//! - [`tokens`]: the mio token ranges the servers hand out.
//!
//! Contract: an edge owns its sockets and threads, reads with a budget and never blocks the
//! loop; bad input is counted and dropped. It calls the engine's `on_*` methods and executes
//! the engine's actions; it holds no offload decision of its own.

pub mod backend;
pub mod cli_server;
pub mod control;
pub(crate) mod ct_dump;
pub(crate) mod ctnetlink;
pub mod http;
pub mod metrics;
pub mod offload;
pub mod pppoe;
pub(crate) mod routing;
pub mod rtnl;
pub mod telemetry;
pub mod tokens;
pub mod worker;

/// A socket buffer the kernel made smaller than configured (SO_RCVBUFFORCE needs
/// CAP_NET_ADMIN; without it SO_RCVBUF is capped by `net.core.rmem_max`).
pub(crate) fn warn_if_smaller(socket: &str, requested: usize, effective: usize) {
    if effective < requested {
        tracing::warn!(
            socket,
            requested,
            effective,
            "socket buffer smaller than requested (no CAP_NET_ADMIN for SO_RCVBUFFORCE?)"
        );
    }
}
