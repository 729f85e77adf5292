//! ctnetlink, the kernel's conntrack protocol: typed, zero-copy parse and emit of conntrack
//! messages, request builders, and the socket.
//!
//! # Layers
//!
//! From bytes up (each layer's module states its contract):
//!
//! 1. [`nla`]: the attribute (TLV) walk and writer on netlink-packet-core's `NlaBuffer`.
//! 2. `message`: a received datagram as netlink messages ([`Datagram`] → [`Message`]); a
//!    conntrack message as a borrowed view ([`CtMessage`]) with its header, `nfgenmsg` and
//!    attributes.
//! 3. `attr`: the attributes as typed, borrowed values ([`Attr`], [`TupleAttr`]…); nested
//!    attributes are lazily decoded views; unknown attributes are kept as [`RawAttr`].
//! 4. [`Conntrack`] and [`Event`]: the validated, owned, `Copy` value the daemon works with,
//!    built in one pass over the attributes, without allocating; an attribute it can do
//!    without that does not decode is skipped and named ([`SkippedAttrs`]).
//!    [`DialectTracker`] decodes them in the kernel's dialect: stock, or an NXP ASK kernel
//!    ([`ask`]: fast-path blocks, QoS connmark, `IPS_PERMANENT`), pinned or recognised.
//! 5. [`request`]: builders that append dump, get, update, delete and create requests to a
//!    caller's buffer; [`CtSocket`]: the socket, with `ENOBUFS` as a typed overrun.
//!
//! Parse errors are typed ([`DecodeError`]) and never panics: truncated or inconsistent input
//! is an error; unknown attributes and values are kept (`Other`), never an error.
//!
//! # Example
//!
//! ```
//! use conntrack::{Conntrack, CtMessage, Datagram, Message, Tuple, request};
//! use std::net::Ipv4Addr;
//!
//! // A get request, parsed back: the builders and the parser speak the same bytes.
//! let orig = Tuple::new(Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into(), 6, 40000, 80);
//! let mut buf = Vec::new();
//! request::get(&mut buf, &orig, 0, 7);
//! let Some(Ok(Message::Conntrack(message))) = Datagram::new(&buf).next() else { panic!() };
//! assert_eq!(message.header().seq, 7);
//! let mut tuples = message.attrs().iter().filter_map(Result::ok);
//! let Some(conntrack::Attr::TupleOrig(nest)) = tuples.next() else { panic!() };
//! assert_eq!(Tuple::from_nest(nest).unwrap(), orig);
//! ```
//!
//! # Kernel facts encoded here
//!
//! NEW and UPDATE events are both `IPCTNL_MSG_CT_NEW`: NEW carries `NLM_F_CREATE|NLM_F_EXCL`.
//! DESTROY is `IPCTNL_MSG_CT_DELETE`. Events have sequence number 0; dump entries carry
//! `NLM_F_MULTI`. All integers are big-endian.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]

pub mod ask;
mod attr;
mod conntrack;
mod consts;
mod dialect;
mod error;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod message;
pub mod nla;
pub mod request;
mod skipped;
mod socket;
mod status;
mod tcp;
mod tuple;

#[cfg(test)]
mod tests;

pub use crate::ask::{AskAttr, AskInfo, AskNumbering, FastPath, FastPathAttr, PermanentBit};
pub use crate::attr::{
    Attr, CounterAttr, FilterAttr, HelperAttr, IpAttr, NatAttr, NatProtoAttr, ProtoAttr,
    ProtoInfoAttr, SecCtxAttr, SeqAdjAttr, SynproxyAttr, TcpAttr, TimestampAttr, TupleAttr,
};
pub use crate::conntrack::{Conntrack, Counter, Counters, Event, Timestamp};
pub use crate::dialect::{Dialect, DialectSetting, DialectState, DialectTracker, KernelVersion};
pub use crate::error::{DecodeError, DialectError, EmitError, RecvError, RequestError};
pub use crate::message::{CtMessage, Datagram, Delivery, EventKind, Header, Message, MessageKind};
pub use crate::nla::{Nest, RawAttr};
pub use crate::request::{Create, Update};
pub use crate::skipped::{EntryAttr, SkippedAttrs};
pub use crate::socket::{CtSocket, Groups, RecvBatch};
pub use crate::status::Status;
pub use crate::tcp::{MaskedTcpFlags, TcpFlags, TcpInfo, TcpState};
pub use crate::tuple::{Family, Icmp, Tuple};

// Not only for ctnetlink: the receive-buffer rule every netlink socket of cmmd follows.
pub use crate::socket::set_receive_buffer;
