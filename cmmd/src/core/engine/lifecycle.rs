//! One tracked connection and its offload state machine.
//!
//! ```text
//!  admitted ──▶ Resolving(reason) ──▶ Programming ──▶ Offloaded ──▶ Withdrawing ──▶ gone
//!                    ▲      │              │   ▲          │   │
//!                    │      ▼              ▼   │          │   └─ REMOVED (hw aged it) ─▶ gone
//!                    └── Backoff ◀── hw error  └── path change (update) ◀─┘
//! ```
//!
//! Every state that is not `Offloaded` carries a [`Reason`]. The struct is compact on purpose:
//! one exists per tracked connection (up to `CMM_MAX_CONNECTIONS`).

use crate::core::flow::{FlowKey, Keyed, Tuple};
use crate::core::policy::Dirs;
use crate::core::stats::Reason;

/// Where a connection is in its offload life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowState {
    /// Waiting for a route answer or a neighbour (see the reason).
    Resolving,
    /// Route objects and the connection are being registered or updated in the hardware.
    Programming,
    /// In the hardware.
    Offloaded,
    /// The deregister is in flight (or being retried).
    Withdrawing,
    /// The hardware refused it; retried when the back-off timer fires.
    Backoff,
}

impl FlowState {
    /// Lower-case name as shown by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            FlowState::Resolving => "resolving",
            FlowState::Programming => "programming",
            FlowState::Offloaded => "offloaded",
            FlowState::Withdrawing => "withdrawing",
            FlowState::Backoff => "backoff",
        }
    }
}

/// Flag bits of [`Flow::flags`].
pub(crate) mod flag {
    /// The connection is in the hardware (registered and not yet deregistered).
    pub(crate) const IN_HW: u8 = 1;
    /// Withdraw as soon as the command in flight completes.
    pub(crate) const WITHDRAW: u8 = 2;
    /// Resolve again as soon as the command in flight completes.
    pub(crate) const REPROGRAM: u8 = 4;
    /// Found in the hardware at start-up; confirm its routes before trusting them.
    pub(crate) const ADOPTED: u8 = 8;
    /// IPS_PERMANENT was set on the kernel conntrack (permanent keepalive mode).
    pub(crate) const PERMANENT: u8 = 16;
    /// Already counted as offloaded once.
    pub(crate) const COUNTED: u8 = 32;
    /// Something the hardware stores besides the routes (the mark) changed: update even if
    /// the routes did not.
    pub(crate) const DIRTY: u8 = 64;
    /// An activity poll is scheduled or in flight (at most one per connection).
    pub(crate) const POLLING: u8 = 128;
}

/// Index of the route-cache entry towards the reply source (the original destination side).
pub(crate) const SERVER: usize = 0;
/// Index of the route-cache entry towards the original source (the client side).
pub(crate) const CLIENT: usize = 1;
/// No route-cache entry held.
pub(crate) const NO_ROUTE: u32 = u32::MAX;
/// Original direction index in per-direction arrays.
pub(crate) const ORIG: usize = 0;
/// Reply direction index in per-direction arrays.
pub(crate) const REPLY: usize = 1;

/// A tracked connection.
#[derive(Clone, Debug)]
pub struct Flow {
    pub(crate) key: FlowKey,
    pub(crate) reply: Tuple,
    pub(crate) ct_id: u32,
    pub(crate) status: u32,
    pub(crate) mark: u32,
    /// Engine seconds at which the kernel conntrack expires (estimate).
    pub(crate) kernel_expires: u32,
    /// Engine seconds of the latest hardware activity seen.
    pub(crate) hw_active: u32,
    /// Engine microseconds (wrapping) when the connection became a candidate: the start of
    /// the programming latency.
    pub(crate) admitted_us: u32,
    /// Resync generation that last saw this connection in the kernel.
    pub(crate) generation: u32,
    /// Bumped whenever a timer is armed; older timers are ignored.
    pub(crate) epoch: u32,
    /// Route-cache entries held, `[SERVER, CLIENT]`.
    pub(crate) routes: [u32; 2],
    /// Route objects the hardware uses now, `[ORIG, REPLY]` (0 = none).
    pub(crate) hw: [u16; 2],
    /// Route objects being programmed, `[ORIG, REPLY]` (0 = none).
    pub(crate) next_hw: [u16; 2],
    pub(crate) state: FlowState,
    pub(crate) reason: Reason,
    pub(crate) tcp_state: u8,
    pub(crate) dirs: Dirs,
    pub(crate) flags: u8,
    pub(crate) attempts: u8,
}

impl Keyed for Flow {
    fn key(&self) -> &FlowKey {
        &self.key
    }
}

impl Flow {
    /// Zone, protocol and original tuple.
    pub fn key(&self) -> &FlowKey {
        &self.key
    }
    /// Reply tuple.
    pub fn reply(&self) -> &Tuple {
        &self.reply
    }
    /// Kernel conntrack id.
    pub fn ct_id(&self) -> u32 {
        self.ct_id
    }
    /// Conntrack status bits.
    pub fn status(&self) -> u32 {
        self.status
    }
    /// Conntrack mark.
    pub fn mark(&self) -> u32 {
        self.mark
    }
    /// TCP state number (0 for UDP).
    pub fn tcp_state(&self) -> u8 {
        self.tcp_state
    }
    /// Offload state.
    pub fn state(&self) -> FlowState {
        self.state
    }
    /// Why it is not (yet) offloaded; `Reason::None` when offloaded.
    pub fn reason(&self) -> Reason {
        self.reason
    }
    /// Directions requested.
    pub fn dirs(&self) -> Dirs {
        self.dirs
    }
    /// Route ids in the hardware `[orig, reply]`.
    pub fn hw_routes(&self) -> [u16; 2] {
        self.hw
    }
    /// True while the hardware holds the connection.
    pub fn in_hw(&self) -> bool {
        self.flags & flag::IN_HW != 0
    }
    /// Engine seconds at which the kernel entry expires.
    pub fn kernel_expires(&self) -> u32 {
        self.kernel_expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_entry_stays_compact() {
        // ≤ 200 B per tracked connection is a published target; the entry is most of it.
        let size = std::mem::size_of::<Flow>();
        assert!(size <= 140, "Flow is {size} bytes");
    }
}
