//! The kernel's PPPoE sessions: `/proc/net/pppoe` of the daemon's network namespace, read
//! while PPP links exist.
//!
//! The kernel sends no event when a PPPoE session starts or ends; the PPP link's own events
//! (up, down, deleted) arrive through rtnetlink, and the session table is read again at most
//! every [`INTERVAL`] while the view holds a PPP link (and once at start-up). The read is a
//! procfs file of a few lines: it neither waits nor blocks the loop. A missing file (the
//! `pppoe` module is not loaded) is no session. The text is parsed by
//! [`crate::core::l2::parse_proc_pppoe`].

use std::time::{Duration, Instant};

use crate::core::engine::Engine;
use crate::core::l2::parse_proc_pppoe;
use crate::core::net::{LinkKind, NetView, PppoeSession};

/// The session table of this namespace.
pub const PATH: &str = "/proc/net/pppoe";
/// How often it is read while PPP links exist.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The sessions the kernel lists now (none when the file cannot be read).
pub fn read() -> Vec<PppoeSession> {
    std::fs::read_to_string(PATH).map(|text| parse_proc_pppoe(&text)).unwrap_or_default()
}

/// When the session table is read next.
#[derive(Debug, Default)]
pub(crate) struct PppoeWatch {
    next: Option<Instant>,
}

fn has_ppp_link(net: &NetView) -> bool {
    net.links().any(|link| link.kind == LinkKind::Ppp)
}

impl PppoeWatch {
    /// Read the table if it is time (and the view holds a PPP link), and give it to the
    /// engine.
    pub(crate) fn poll(&mut self, engine: &mut Engine, now: Instant) {
        if self.next.is_some_and(|next| now < next) {
            return;
        }
        self.next = Some(now + INTERVAL);
        if has_ppp_link(engine.net()) || !engine.net().pppoe_sessions().is_empty() {
            engine.on_pppoe_sessions(read(), now);
        }
    }

    /// When [`PppoeWatch::poll`] wants to run.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.next
    }
}
