//! Faults the software cdx can be told to show, its statistics and its errors.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use crate::fpp::{Action, CtChange, CtCmd, CtEvent, FCode, IfNameError, ReturnCode, V4, V6};

use super::{SimCounters, SimTuple};

/// A fault the sim applies to the next matching commands or events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer the next `count` commands (of code `fcode`, or any) with `rc` without
    /// executing them.
    ErrorCode {
        /// Only commands with this code; `None`: any.
        fcode: Option<FCode>,
        /// The return code to answer.
        rc: ReturnCode,
        /// How many commands.
        count: u32,
    },
    /// Execute the next `count` commands but drop their replies, as `fci.ko` drops a reply
    /// a full socket cannot take: the client's next receive reports `ENOBUFS`
    /// ([`crate::fci::Frame::Overrun`] over the socket pair).
    DropReply {
        /// How many commands.
        count: u32,
    },
    /// Execute the next `count` commands and reply after `duration` (the thread stalls,
    /// as cdx's command mutex would).
    Delay {
        /// The delay.
        duration: Duration,
        /// How many commands.
        count: u32,
    },
    /// Answer the next `count` commands with `NLMSG_ERROR` −EIO without executing them.
    Eio {
        /// How many commands.
        count: u32,
    },
    /// cdx was booted with `offload_owner=flowtable`: from now until the faults are
    /// cleared, `fci.ko` answers every command with `NLMSG_ERROR` −`EOPNOTSUPP` (36 bytes:
    /// the error and the request's header) and nothing is executed. The ASK port's
    /// `comcerto_fpp_send_command` returns −EOPNOTSUPP before taking any command, and
    /// `__fci_fe_inbound_data` turns a negative return into `fci_outbound_err`.
    OffloadOwnerFlowtable,
    /// The hardware table is full from now on (capacity = pairs in hardware now).
    CapacityFull,
    /// Send a REMOVED event for a flow (known or not) now.
    SpuriousRemoved {
        /// Original tuple.
        orig: SimTuple,
        /// Reply tuple.
        reply: SimTuple,
        /// IP protocol.
        protocol: u8,
    },
    /// Send each of the next `count` aging REMOVED events twice.
    DuplicateRemoved {
        /// How many events.
        count: u32,
    },
}

/// Errors of the sim's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A configured interface name is not a valid cdx name.
    #[error("interface {name:?}: {source}")]
    Interface {
        /// The name.
        name: String,
        /// Why.
        source: IfNameError,
    },
    /// A fault that cannot be applied (e.g. tuples of different families).
    #[error("fault cannot be applied: {0}")]
    Fault(&'static str),
    /// Socket or thread creation, or sending an injected event.
    #[error("sim: {0}")]
    Io(#[from] io::Error),
}

/// What the sim did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Commands answered, by code and return code.
    pub commands: BTreeMap<(FCode, ReturnCode), u64>,
    /// Commands answered with a netlink error (injected EIO, offload owner flowtable).
    pub netlink_errors: u64,
    /// Replies withheld by [`Fault::DropReply`].
    pub replies_dropped: u64,
    /// Replies the peer had no room for (dropped, as netlink does).
    pub replies_undeliverable: u64,
    /// `ENOBUFS` reports sent for dropped replies ([`crate::fci::Frame::Overrun`]).
    pub overruns_reported: u64,
    /// Datagrams `fci.ko` would drop (shorter than the headers, or a payload length
    /// beyond them).
    pub malformed: u64,
    /// Netlink messages after the first of a datagram (`fci.ko` reads only the first).
    pub extra_messages_ignored: u64,
    /// Commands not answered because cdx is wedged (see [`SimCounters::out_of_table_commands`]).
    pub commands_unanswered: u64,
    /// Events sent (REMOVED by aging and by VLAN removal, spurious and duplicates).
    pub events_sent: u64,
    /// Event deliveries postponed because the peer had no room.
    pub events_deferred: u64,
    /// Events dropped because nobody listened.
    pub events_unheard: u64,
    /// What the model counted.
    pub model: SimCounters,
}

impl SimStats {
    /// Commands with this code and return code.
    pub fn count(&self, fcode: FCode, rc: ReturnCode) -> u64 {
        self.commands.get(&(fcode, rc)).copied().unwrap_or(0)
    }

    /// Commands answered with a reply.
    pub fn total_commands(&self) -> u64 {
        self.commands.values().sum()
    }
}

/// The first pending per-command fault that applies to `fcode`, consuming one use (the
/// offload-owner fault is never consumed).
pub(super) fn take_fault(faults: &mut Vec<Fault>, fcode: FCode) -> Option<Fault> {
    let index = faults.iter().position(|fault| match fault {
        Fault::ErrorCode { fcode: filter, .. } => filter.is_none_or(|code| code == fcode),
        Fault::DropReply { .. }
        | Fault::Delay { .. }
        | Fault::Eio { .. }
        | Fault::OffloadOwnerFlowtable => true,
        _ => false,
    })?;
    let fault = faults.get_mut(index)?;
    let taken = fault.clone();
    let count = match fault {
        Fault::ErrorCode { count, .. }
        | Fault::DropReply { count }
        | Fault::Delay { count, .. }
        | Fault::Eio { count } => count,
        _ => return Some(taken),
    };
    *count = count.saturating_sub(1);
    if *count == 0 {
        faults.remove(index);
    }
    Some(taken)
}

/// Whether the next aging event is to be sent twice, consuming one use.
pub(super) fn take_duplicate(faults: &mut Vec<Fault>) -> bool {
    let Some(index) =
        faults.iter().position(|fault| matches!(fault, Fault::DuplicateRemoved { .. }))
    else {
        return false;
    };
    if let Some(Fault::DuplicateRemoved { count }) = faults.get_mut(index) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            faults.remove(index);
        }
    }
    true
}

/// A REMOVED event for tuples of either family.
pub(super) fn spurious_event(
    orig: SimTuple,
    reply: SimTuple,
    protocol: u8,
) -> Result<CtEvent, SimError> {
    if let (Some(o), Some(r)) = (orig.to_family::<V4>(), reply.to_family::<V4>()) {
        let cmd = CtCmd::<V4>::new(Action::Removed, protocol, o, r);
        return Ok(CtEvent::V4(CtChange::removed(&cmd)));
    }
    if let (Some(o), Some(r)) = (orig.to_family::<V6>(), reply.to_family::<V6>()) {
        let cmd = CtCmd::<V6>::new(Action::Removed, protocol, o, r);
        return Ok(CtEvent::V6(CtChange::removed(&cmd)));
    }
    Err(SimError::Fault("original and reply tuples are of different families"))
}
