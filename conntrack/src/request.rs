//! Request builders: dump, get, update, delete and create, and an ASK kernel's
//! `IPS_PERMANENT` set and clear, written into a caller's buffer.
//!
//! Contract: each builder *appends* one complete netlink message to `out` and allocates only
//! if `out` has to grow, so a reused `Vec` costs nothing; several requests appended to one
//! buffer can go out in one `send` (the kernel processes them in order). Entries are named by
//! their original tuple and zone, as the kernel looks them up. The builders cannot fail: every
//! attribute they write has a small fixed size.

use crate::ask::PermanentBit;
use crate::consts::*;
use crate::message::{
    CREATE_FLAGS, DUMP_FLAGS, Header, MessageKind, begin_message, end_message, request_flags,
};
use crate::nla::AttrWriter;
use crate::status::Status;
use crate::tcp::TcpState;
use crate::tuple::{Family, Tuple};

/// What an update request changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Update {
    /// New timeout in seconds (`CTA_TIMEOUT`): how the daemon keeps offloaded entries alive.
    pub timeout: Option<u32>,
    /// New mark (`CTA_MARK`).
    pub mark: Option<u32>,
    /// Status bits to set (`CTA_STATUS`); the kernel refuses to clear some bits and to change
    /// the NAT bits.
    pub status: Option<Status>,
}

/// An entry to create (`IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL`), as `conntrack -I`
/// does. Tests and the load injector use it to make the kernel create entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Create {
    /// Original-direction tuple.
    pub orig: Tuple,
    /// Reply-direction tuple.
    pub reply: Tuple,
    /// Timeout in seconds (the kernel requires one).
    pub timeout: u32,
    /// Status bits (e.g. `SEEN_REPLY | ASSURED`). `CONFIRMED` is always added: the kernel
    /// confirms an entry it creates this way and refuses (`EBUSY`) a status without the bit.
    pub status: Status,
    /// Mark.
    pub mark: Option<u32>,
    /// Zone (0 is the default zone and is not written).
    pub zone: u16,
    /// TCP state, for TCP entries.
    pub tcp_state: Option<TcpState>,
}

impl Create {
    /// An entry for `orig` whose reply is `orig` reversed (no NAT), with no status bits.
    pub fn new(orig: Tuple, timeout: u32) -> Self {
        Self {
            orig,
            reply: orig.reversed(),
            timeout,
            status: Status::empty(),
            mark: None,
            zone: 0,
            tcp_state: None,
        }
    }
}

fn header(kind: MessageKind, flags: u16, seq: u32) -> Header {
    Header { message_type: kind.message_type(), flags, seq, port: 0 }
}

fn zone(out: &mut AttrWriter<'_>, zone: u16) {
    if zone != 0 {
        out.leaf(CTA_ZONE, &zone.to_be_bytes());
    }
}

/// Appends a dump request for all entries of `family`, or of every family with `None`.
/// The kernel answers with `NLM_F_MULTI` entries and `NLMSG_DONE`.
pub fn dump(out: &mut Vec<u8>, family: Option<Family>, seq: u32) {
    let family = family.map_or(libc::AF_UNSPEC as u8, Family::as_raw);
    let start = begin_message(out, header(MessageKind::Get, DUMP_FLAGS, seq), family, 0);
    end_message(out, start);
}

/// Appends a request about one entry: its original tuple and zone, then `more` attributes.
fn entry_request(
    out: &mut Vec<u8>,
    header: Header,
    orig: &Tuple,
    zone_id: u16,
    more: impl FnOnce(&mut AttrWriter<'_>),
) {
    let start = begin_message(out, header, orig.family().as_raw(), 0);
    let mut attrs = AttrWriter::new(out);
    orig.emit(&mut attrs, CTA_TUPLE_ORIG);
    zone(&mut attrs, zone_id);
    more(&mut attrs);
    end_message(out, start);
}

/// Appends a request for the entry whose original tuple is `orig` in `zone`. The kernel
/// answers with the entry, or `NLMSG_ERROR` `ENOENT`.
pub fn get(out: &mut Vec<u8>, orig: &Tuple, zone_id: u16, seq: u32) {
    entry_request(out, header(MessageKind::Get, request_flags(false), seq), orig, zone_id, |_| {});
}

/// Appends an update of the entry whose original tuple is `orig` in `zone`: an
/// `IPCTNL_MSG_CT_NEW` without `NLM_F_CREATE`, so the kernel changes an existing entry and
/// never creates one. With `ack`, the kernel acknowledges success too.
///
/// It never carries `CTA_ID`: on an ASK kernel, `CTA_STATUS` with `CTA_ID` is the request that
/// sets or clears `IPS_PERMANENT` (and then nothing else is applied), so a keepalive refresh
/// (a timeout alone) can never clear the bit. A status sent here goes through the ordinary
/// update, which only ever sets bits; use [`set_permanent`] and [`clear_permanent`] for
/// `IPS_PERMANENT`.
pub fn update(out: &mut Vec<u8>, orig: &Tuple, zone_id: u16, change: Update, seq: u32, ack: bool) {
    let header = header(MessageKind::New, request_flags(ack), seq);
    entry_request(out, header, orig, zone_id, |attrs| {
        if let Some(timeout) = change.timeout {
            attrs.leaf(CTA_TIMEOUT, &timeout.to_be_bytes());
        }
        if let Some(status) = change.status {
            attrs.leaf(CTA_STATUS, &status.bits().to_be_bytes());
        }
        if let Some(mark) = change.mark {
            attrs.leaf(CTA_MARK, &mark.to_be_bytes());
        }
    });
}

/// Appends a delete of the entry whose original tuple is `orig` in `zone`; with `id`, only
/// if the entry still has that id (so a reused tuple is not deleted by mistake).
pub fn delete(out: &mut Vec<u8>, orig: &Tuple, zone_id: u16, id: Option<u32>, seq: u32) {
    entry_request(
        out,
        header(MessageKind::Delete, request_flags(true), seq),
        orig,
        zone_id,
        |attrs| {
            if let Some(id) = id {
                attrs.leaf(CTA_ID, &id.to_be_bytes());
            }
        },
    );
}

/// Appends a request that creates `entry` (acknowledged; `EEXIST` if it exists).
pub fn create(out: &mut Vec<u8>, entry: &Create, seq: u32) {
    let start = begin_message(
        out,
        header(MessageKind::New, CREATE_FLAGS, seq),
        entry.orig.family().as_raw(),
        0,
    );
    let mut attrs = AttrWriter::new(out);
    entry.orig.emit(&mut attrs, CTA_TUPLE_ORIG);
    entry.reply.emit(&mut attrs, CTA_TUPLE_REPLY);
    zone(&mut attrs, entry.zone);
    attrs.leaf(CTA_TIMEOUT, &entry.timeout.to_be_bytes());
    attrs.leaf(CTA_STATUS, &(entry.status | Status::CONFIRMED).bits().to_be_bytes());
    if let Some(mark) = entry.mark {
        attrs.leaf(CTA_MARK, &mark.to_be_bytes());
    }
    if let Some(state) = entry.tcp_state {
        let info = attrs.begin_nested();
        let tcp = attrs.begin_nested();
        attrs.leaf(CTA_PROTOINFO_TCP_STATE, &[u8::from(state)]);
        attrs.end_nested(tcp, CTA_PROTOINFO_TCP);
        attrs.end_nested(info, CTA_PROTOINFO);
    }
    end_message(out, start);
}

/// Appends the ASK kernel's request that sets `IPS_PERMANENT` (`bit`) on the entry whose
/// original tuple is `orig` in `zone`, if its id is still `id`: `IPCTNL_MSG_CT_NEW` without
/// `NLM_F_CREATE` or `NLM_F_EXCL`, with `CTA_STATUS` (the bit alone) and `CTA_ID`
/// (`ctnetlink_change_permanent`, see [`crate::ask`]). The kernel applies nothing else, answers
/// `ENOENT` if the id differs (or the entry is gone) and broadcasts no event. The bit must be
/// the kernel's: on a 6.12 kernel, bit 15 is `IPS_HW_OFFLOAD`; on a 5.4 kernel, bit 16 is
/// `IPS_DPI_ALLOWED`, and a request with it would clear a set `IPS_PERMANENT`. A stock kernel
/// refuses the request with `EBUSY` and changes nothing.
pub fn set_permanent(
    out: &mut Vec<u8>,
    orig: &Tuple,
    zone_id: u16,
    id: u32,
    bit: PermanentBit,
    seq: u32,
    ack: bool,
) {
    permanent(out, orig, zone_id, id, bit.status(), seq, ack);
}

/// Appends the ASK kernel's request that clears `IPS_PERMANENT` on the entry whose original
/// tuple is `orig` in `zone`, if its id is still `id`: as [`set_permanent`], with a status of
/// 0, which works whatever the bit's number. On an entry without the bit (or a stock kernel)
/// the kernel falls through to an ordinary update to status 0, refuses it with `EBUSY`
/// (`IPS_CONFIRMED` cannot be cleared) and changes nothing.
pub fn clear_permanent(
    out: &mut Vec<u8>,
    orig: &Tuple,
    zone_id: u16,
    id: u32,
    seq: u32,
    ack: bool,
) {
    permanent(out, orig, zone_id, id, Status::empty(), seq, ack);
}

/// A status-and-id request: the pair an ASK kernel reads as a change of `IPS_PERMANENT`.
fn permanent(
    out: &mut Vec<u8>,
    orig: &Tuple,
    zone_id: u16,
    id: u32,
    status: Status,
    seq: u32,
    ack: bool,
) {
    let header = header(MessageKind::New, request_flags(ack), seq);
    entry_request(out, header, orig, zone_id, |attrs| {
        attrs.leaf(CTA_STATUS, &status.bits().to_be_bytes());
        attrs.leaf(CTA_ID, &id.to_be_bytes());
    });
}
