//! One tracked connection and its offload lifecycle: the stages, and every transition
//! between them, in one place.
//!
//! ```text
//!  admit ─▶ Resolving ─program─▶ Programming ─programmed─▶ Offloaded ─withdraw─▶ Withdrawing
//!            │  ▲  ▲                 │     ▲                     │                     │
//!            │  │  └─retry── Backoff ◀┘     └───program (update)──┘                     │
//!            │  │       (refused, not held)  (refused, held: back to Offloaded)         │
//!            │  └──── wait (not held: a route answer, the network, a programming place) │
//!            │                 ◀── deregistered (waits for the network, or leaves) ◀───┘
//!            └─adopt─▶ Resolving (adopted) ─confirm─▶ Offloaded
//!                                          ─keep adopted─▶ Offloaded (adopted)
//! ```
//!
//! While programming, what else happened waits for the result (`Then`: resolve again, or
//! withdraw, which wins). A stage the hardware does not hold leaves the table when the
//! connection ends; a stage it holds leaves it only through a deregistration, or when the
//! hardware drops the connection by itself (REMOVED, or "not found" to a poll).
//!
//! [`Stage`] is where a connection is, with what that stage needs to know; [`Stage::after`]
//! is the transition table, the only place a stage changes, and it rejects whatever the
//! diagram does not allow. The hardware holds a connection exactly in the stages
//! [`Stage::in_hw`] names, so "in the hardware" is no separate flag that could disagree.
//! [`Facts`] are what stays true independently of the stage.
//!
//! Every connection that is not offloaded carries a [`Reason`]. The struct is compact on
//! purpose: one exists per tracked connection (up to `CMM_MAX_CONNECTIONS`).

use conntrack::{Status, TcpState};

use super::LOG_TARGET;
use crate::core::flow::{FlowKey, Keyed, Tuple};
use crate::core::policy::Dirs;
use crate::core::stats::Reason;

/// Where a connection is in its offload life, as the CLI shows it.
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
    /// The host's own connection: tracked for display, never offloaded.
    Local,
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
            FlowState::Local => "local",
        }
    }
}

/// What a connection in [`Stage::Programming`] does once its command completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Then {
    /// Nothing: it stays where the result puts it.
    Settle,
    /// Resolve again: its path or mark changed while the command was in flight.
    Resolve,
    /// Withdraw: it ended, or stopped being a candidate, meanwhile (wins over `Resolve`).
    Withdraw,
}

/// Where a connection is in its offload life, with what each stage needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Waiting for a route answer, the network or a place in the programming window
    /// ([`Flow::reason`] says which). The hardware does not hold it, unless `adopted`: found
    /// there at start-up and not resolved yet.
    Resolving {
        /// Held by the hardware since before this start.
        adopted: bool,
    },
    /// The hardware refused it and does not hold it; the back-off timer retries.
    Backoff,
    /// A register is in flight, or an update when the hardware holds it (`update`).
    Programming {
        /// The hardware holds it (the command is an update).
        update: bool,
        /// What follows the command's result.
        then: Then,
    },
    /// In the hardware. `adopted`: found there at start-up and its routes not yet confirmed
    /// against the network (a neighbour was not known when it was resolved).
    Offloaded {
        /// Routes taken from the hardware, not yet confirmed.
        adopted: bool,
    },
    /// In the hardware; its deregister is in flight or waits to be retried.
    Withdrawing,
}

/// What happened to a connection: the input of [`Stage::after`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The hardware walk at start-up holds it: it is in the hardware already.
    Adopt,
    /// Not in the hardware: wait for a route answer, the network or a programming place.
    Wait,
    /// Resolved to exactly what the hardware holds: nothing to send.
    Confirm,
    /// Adopted, and a neighbour of its path is not known yet: keep the hardware's routes.
    KeepAdopted,
    /// Its register (or update) is sent.
    Program,
    /// While programming: run `Then` once the result arrives.
    Defer(Then),
    /// The hardware accepted the register or update.
    Programmed,
    /// The hardware refused (or could not be asked): keep what it holds, retry later.
    Refused,
    /// Its deregister is sent.
    Withdraw,
    /// The hardware confirmed the deregister.
    Deregistered,
    /// The back-off delay is over.
    Retry,
}

/// A transition the lifecycle does not allow from that stage (a bug, never input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no transition {transition:?} from {stage:?}")]
pub(crate) struct Illegal {
    /// Where the connection was.
    pub(crate) stage: Stage,
    /// What was asked.
    pub(crate) transition: Transition,
}

impl Stage {
    /// A connection just admitted from the kernel.
    pub(crate) const ADMITTED: Stage = Stage::Resolving { adopted: false };

    /// The transition table: the stage after `transition`, or why it is not allowed.
    pub(crate) fn after(self, transition: Transition) -> Result<Stage, Illegal> {
        use Stage::{Backoff, Offloaded, Programming, Resolving, Withdrawing};
        use Transition as T;
        let next = match (self, transition) {
            (Resolving { adopted: false }, T::Adopt) => Resolving { adopted: true },
            (Resolving { adopted: false } | Backoff, T::Wait) => Resolving { adopted: false },
            (Resolving { adopted: true } | Offloaded { .. }, T::Confirm) => {
                Offloaded { adopted: false }
            }
            (Resolving { adopted: true } | Offloaded { adopted: true }, T::KeepAdopted) => {
                Offloaded { adopted: true }
            }
            (Resolving { adopted }, T::Program) => {
                Programming { update: adopted, then: Then::Settle }
            }
            (Offloaded { .. }, T::Program) => Programming { update: true, then: Then::Settle },
            (Backoff, T::Program) => Programming { update: false, then: Then::Settle },
            (Programming { update, then }, T::Defer(more)) => {
                Programming { update, then: then.max(more) }
            }
            (Programming { .. }, T::Programmed) => Offloaded { adopted: false },
            (Programming { update: true, .. }, T::Refused) => Offloaded { adopted: false },
            (Programming { update: false, .. }, T::Refused) => Backoff,
            // Refused before anything was sent (no route id left): nothing changes in the
            // hardware, so what it holds stays, adopted or not.
            (Resolving { adopted: true }, T::Refused) => Offloaded { adopted: true },
            (Offloaded { adopted }, T::Refused) => Offloaded { adopted },
            (Resolving { adopted: false } | Backoff, T::Refused) => Backoff,
            (Resolving { adopted: true } | Offloaded { .. }, T::Withdraw) => Withdrawing,
            (Withdrawing, T::Deregistered) => Resolving { adopted: false },
            (Backoff, T::Retry) => Resolving { adopted: false },
            (stage, transition) => return Err(Illegal { stage, transition }),
        };
        Ok(next)
    }

    /// True while the hardware holds the connection (registered and not yet deregistered).
    pub(crate) fn in_hw(self) -> bool {
        match self {
            Stage::Resolving { adopted } => adopted,
            Stage::Backoff => false,
            Stage::Programming { update, .. } => update,
            Stage::Offloaded { .. } | Stage::Withdrawing => true,
        }
    }

    /// Found in the hardware at start-up and not confirmed yet.
    pub(crate) fn adopted(self) -> bool {
        matches!(self, Stage::Resolving { adopted: true } | Stage::Offloaded { adopted: true })
    }

    /// What follows the command in flight (`Settle` outside `Programming`).
    pub(crate) fn then(self) -> Then {
        match self {
            Stage::Programming { then, .. } => then,
            _ => Then::Settle,
        }
    }

    /// The stage as the CLI names it.
    pub(crate) fn state(self) -> FlowState {
        match self {
            Stage::Resolving { .. } => FlowState::Resolving,
            Stage::Backoff => FlowState::Backoff,
            Stage::Programming { .. } => FlowState::Programming,
            Stage::Offloaded { .. } => FlowState::Offloaded,
            Stage::Withdrawing => FlowState::Withdrawing,
        }
    }
}

/// What holds of a connection whatever its stage, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts(u16);

impl Facts {
    /// IPS_PERMANENT was set on the kernel conntrack (permanent keepalive mode); it is
    /// cleared when the hardware lets the connection go, unless the conntrack is gone.
    pub(crate) const PERMANENT: Facts = Facts(1);
    /// Counted as offloaded, and its programming latency recorded, once already.
    pub(crate) const COUNTED: Facts = Facts(2);
    /// What the hardware stores besides the routes (the mark) changed: the next programming
    /// sends an update even if the routes did not change.
    pub(crate) const DIRTY: Facts = Facts(4);
    /// An activity poll is scheduled or in flight (at most one per connection).
    pub(crate) const POLLING: Facts = Facts(8);
    /// The kernel said where the original direction comes in and with which mark (an ASK
    /// kernel's fast-path block): the `SERVER` route entry's key holds them.
    pub(crate) const KERNEL_INGRESS_ORIG: Facts = Facts(16);
    /// The same for the reply direction and the `CLIENT` route entry.
    pub(crate) const KERNEL_INGRESS_REPLY: Facts = Facts(32);
    /// The host's own connection, host-originated (the vendor's `LOCAL_CONN_ORIG`): tracked
    /// for display, never resolved nor offloaded.
    pub(crate) const LOCAL_ORIG: Facts = Facts(64);
    /// The host's own connection, host-terminated (the vendor's `LOCAL_CONN_REPL`).
    pub(crate) const LOCAL_REPLY: Facts = Facts(128);
    /// The connection holds its hardware key: it is in the hardware, or being given to it,
    /// under its protocol and original tuple, and no other tracked connection is
    /// (`hw_index.rs`).
    pub(crate) const HW_KEY: Facts = Facts(256);

    /// True if `fact` holds.
    pub(crate) fn has(self, fact: Facts) -> bool {
        self.0 & fact.0 != 0
    }

    /// `fact` holds from now on.
    pub(crate) fn set(&mut self, fact: Facts) {
        self.0 |= fact.0;
    }

    /// `fact` no longer holds.
    pub(crate) fn clear(&mut self, fact: Facts) {
        self.0 &= !fact.0;
    }
}

/// Index of the route-cache entry of the original direction: towards the reply source (the
/// server, after DNAT), from the client, as it came in.
pub(crate) const SERVER: usize = 0;
/// Index of the route-cache entry of the reply direction: towards the original source (the
/// client), from the server, as it came in.
pub(crate) const CLIENT: usize = 1;
/// Index of the route-cache entry that says where the original direction comes in, where the
/// kernel does not say it (stock kernels): the host's own route towards the client.
pub(crate) const INGRESS: usize = 2;
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
    pub(crate) status: Status,
    pub(crate) mark: u32,
    /// The QoS mark programmed (the kernel's `CTA_QOSCONNMARK`, else the conntrack mark when
    /// `offload.fwmark_from_ctmark` is set, else 0), low half first: two halves keep the
    /// entry 4-byte aligned ([`Flow::qos`]).
    pub(crate) qos: [u32; 2],
    /// Engine seconds at which the kernel conntrack expires (estimate).
    pub(crate) kernel_expires: u32,
    /// Until the connection is first in the hardware ([`Facts::COUNTED`] not set): engine
    /// microseconds (wrapping) when it became a candidate, the start of the programming
    /// latency. From then on: engine seconds of the latest hardware activity seen. One field
    /// serves both (they are never needed at once) to keep the entry compact.
    pub(crate) since: u32,
    /// Resync generation that last saw this connection in the kernel. 16 bits suffice: a
    /// connection a dump does not see is swept when that dump ends, so only the generation
    /// of the dump running is ever compared, and a wrap after 65,536 dumps is harmless.
    pub(crate) generation: u16,
    /// Bumped whenever a timer is armed; older timers are ignored (a timer waits at most a
    /// back-off, 60 s, far fewer than 65,536 arms).
    pub(crate) epoch: u16,
    /// Route-cache entries held, `[SERVER, CLIENT, INGRESS]`.
    pub(crate) routes: [u32; 3],
    /// Route objects the hardware uses now, `[ORIG, REPLY]` (0 = none).
    pub(crate) hw: [u16; 2],
    /// Route objects being programmed, `[ORIG, REPLY]` (0 = none).
    pub(crate) next_hw: [u16; 2],
    /// Where it is in its offload life (the only field a transition changes).
    pub(crate) stage: Stage,
    pub(crate) reason: Reason,
    pub(crate) tcp_state: Option<TcpState>,
    pub(crate) dirs: Dirs,
    pub(crate) facts: Facts,
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
    pub fn status(&self) -> Status {
        self.status
    }
    /// Conntrack mark.
    pub fn mark(&self) -> u32 {
        self.mark
    }
    /// The QoS mark programmed into cdx.
    pub fn qos(&self) -> u64 {
        u64::from(self.qos[0]) | u64::from(self.qos[1]) << 32
    }
    /// TCP state (`None` for other protocols).
    pub fn tcp_state(&self) -> Option<TcpState> {
        self.tcp_state
    }
    /// Offload state.
    pub fn state(&self) -> FlowState {
        if self.facts.has(Facts::LOCAL_ORIG) || self.facts.has(Facts::LOCAL_REPLY) {
            return FlowState::Local;
        }
        self.stage.state()
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
        self.stage.in_hw()
    }
    /// Engine seconds at which the kernel entry expires.
    pub fn kernel_expires(&self) -> u32 {
        self.kernel_expires
    }
    /// The host's own connection, host-originated: tracked for display, never offloaded.
    pub fn local_orig(&self) -> bool {
        self.facts.has(Facts::LOCAL_ORIG)
    }
    /// The host's own connection, host-terminated: tracked for display, never offloaded.
    pub fn local_reply(&self) -> bool {
        self.facts.has(Facts::LOCAL_REPLY)
    }
    /// An update of what the hardware holds is in flight.
    pub fn updating(&self) -> bool {
        matches!(self.stage, Stage::Programming { update: true, .. })
    }
}

impl Flow {
    /// Set the QoS mark programmed into cdx.
    pub(crate) fn set_qos(&mut self, qos: u64) {
        #[expect(clippy::cast_possible_truncation, reason = "the low half, by design")]
        let low = qos as u32;
        self.qos = [low, u32::try_from(qos >> 32).unwrap_or(u32::MAX)];
    }

    /// Move to the stage `transition` leads to. An illegal transition is a bug, never
    /// input: it is logged and the stage stays (the engine's own tests stop on it).
    pub(crate) fn step(&mut self, transition: Transition) {
        match self.stage.after(transition) {
            Ok(stage) => self.stage = stage,
            Err(illegal) => {
                tracing::error!(target: LOG_TARGET, key = %self.key, %illegal, "offload lifecycle: transition refused");
                #[cfg(test)]
                panic!("{illegal}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGES: [Stage; 10] = [
        Stage::Resolving { adopted: false },
        Stage::Resolving { adopted: true },
        Stage::Backoff,
        Stage::Programming { update: false, then: Then::Settle },
        Stage::Programming { update: true, then: Then::Resolve },
        Stage::Programming { update: true, then: Then::Withdraw },
        Stage::Offloaded { adopted: false },
        Stage::Offloaded { adopted: true },
        Stage::Withdrawing,
        Stage::ADMITTED,
    ];

    const TRANSITIONS: [Transition; 13] = [
        Transition::Adopt,
        Transition::Wait,
        Transition::Confirm,
        Transition::KeepAdopted,
        Transition::Program,
        Transition::Defer(Then::Resolve),
        Transition::Defer(Then::Withdraw),
        Transition::Programmed,
        Transition::Refused,
        Transition::Withdraw,
        Transition::Deregistered,
        Transition::Retry,
        Transition::Defer(Then::Settle),
    ];

    #[test]
    fn only_a_confirmed_registration_or_adoption_puts_a_connection_in_the_hardware() {
        for stage in STAGES {
            for transition in TRANSITIONS {
                let Ok(next) = stage.after(transition) else { continue };
                if !stage.in_hw() && next.in_hw() {
                    assert!(
                        matches!(transition, Transition::Programmed | Transition::Adopt),
                        "{transition:?} from {stage:?} put it in the hardware"
                    );
                }
                if stage.in_hw() && !next.in_hw() {
                    assert_eq!(transition, Transition::Deregistered, "from {stage:?}");
                }
            }
        }
    }

    #[test]
    fn what_the_diagram_does_not_allow_is_refused() {
        let refused = [
            (Stage::Backoff, Transition::Withdraw),
            (Stage::Withdrawing, Transition::Program),
            (Stage::Offloaded { adopted: false }, Transition::Programmed),
            (Stage::Offloaded { adopted: false }, Transition::Wait),
            (Stage::Resolving { adopted: false }, Transition::Deregistered),
            (Stage::Programming { update: false, then: Then::Settle }, Transition::Program),
            (Stage::Resolving { adopted: true }, Transition::Adopt),
            (Stage::Offloaded { adopted: false }, Transition::KeepAdopted),
        ];
        for (stage, transition) in refused {
            assert_eq!(stage.after(transition), Err(Illegal { stage, transition }));
        }
    }

    #[test]
    fn a_withdrawal_asked_during_programming_wins_over_a_new_resolution() {
        let programming = Stage::ADMITTED.after(Transition::Program).unwrap();
        let both = programming
            .after(Transition::Defer(Then::Withdraw))
            .and_then(|s| s.after(Transition::Defer(Then::Resolve)))
            .unwrap();
        assert_eq!(both.then(), Then::Withdraw);
        assert_eq!(both.after(Transition::Programmed), Ok(Stage::Offloaded { adopted: false }));
        assert_eq!(both.after(Transition::Refused), Ok(Stage::Backoff), "not held: back off");
    }

    #[test]
    fn the_cli_sees_an_adopted_connection_resolving_then_offloaded() {
        let adopted = Stage::ADMITTED.after(Transition::Adopt).unwrap();
        assert_eq!(adopted.state(), FlowState::Resolving);
        assert!(adopted.in_hw() && adopted.adopted());
        let kept = adopted.after(Transition::KeepAdopted).unwrap();
        assert_eq!((kept.state(), kept.adopted()), (FlowState::Offloaded, true));
        let confirmed = kept.after(Transition::Confirm).unwrap();
        assert_eq!((confirmed.state(), confirmed.adopted()), (FlowState::Offloaded, false));
    }

    #[test]
    fn facts_are_independent_bits() {
        let mut facts = Facts::default();
        facts.set(Facts::POLLING);
        facts.set(Facts::DIRTY);
        facts.clear(Facts::POLLING);
        assert!(facts.has(Facts::DIRTY) && !facts.has(Facts::POLLING));
        assert!(!facts.has(Facts::PERMANENT) && !facts.has(Facts::COUNTED));
    }

    #[test]
    fn flow_entry_stays_compact() {
        // ≤ 200 B per tracked connection is a published target; the entry is most of it.
        // 144 since the hardware-key holder bit (2026-12-03) took a byte past the padding;
        // the index of every offloaded connection it replaced cost 10 B each.
        let size = std::mem::size_of::<Flow>();
        assert!(size <= 144, "Flow is {size} bytes");
    }
}
