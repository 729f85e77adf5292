//! Table walks: the replies of QUERY / QUERY_CONT, and what of them can be trusted.
//!
//! cdx answers a walk step in place: it copies the entry (an extended conntrack command, or
//! a route command) from its snapshot to offset 0 of the reply buffer, writes the return
//! code over the entry's first two bytes (its `action`), and replies with `2 + entry`
//! bytes. After the return code a reply therefore holds the entry from its third byte on,
//! then two bytes past the entry; the end of a walk is a bare 2-byte return code
//! (`CT_ENTRY_NOT_FOUND` / `RT_ENTRY_NOT_FOUND`).
//!
//! VLAN walks have the same shape (`M_vlan_cmdproc`: `2 + sizeof(VlanCommand)`, the end is a
//! bare `VLAN_ENTRY_NOT_FOUND`). PPPoE walks answer the entry's own 44 bytes with the return
//! code over its action and nothing after it (`M_pppoe_cmdproc`: `sizeof(PPPoECommand)`),
//! and end with a bare `PPPOE_ENTRY_NOT_FOUND`.
//!
//! The snapshot is `kmalloc`ed and only some fields are written ([`super::unwritten`]). The
//! decoders here ([`conntrack_from_walk`], [`route_from_walk`], [`vlan_from_walk`],
//! [`pppoe_from_walk`]) read only the written fields, never fail on what the others hold,
//! and return values that do not pretend otherwise: [`WalkedConntrack`] keeps the unwritten
//! route ids and flags apart, under [`WalkedConntrack::unwritten_by_cdx`], [`WalkedRoute`]
//! has no underlying input or flags at all, [`WalkedVlan`] no MAC and [`WalkedPppoe`] no
//! mode.

use super::pppoe::{LEN as PPPOE_LEN, PppoeWire};
use super::route::{LEN as ROUTE_LEN, RouteWire};
use super::vlan::{VlanAskWire, VlanWire};
use super::{
    Abi, AbiPayload, CtCmd, CtFormat, Family, FppError, IfName, ReturnCode, Tuple, wrong_size,
};
use zerocopy::FromBytes;

/// A conntrack as a walk reports it: the fields cdx writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalkedConntrack<F: Family> {
    /// Original tuple.
    pub orig: Tuple<F::Addr>,
    /// Reply tuple.
    pub reply: Tuple<F::Addr>,
    /// IP protocol.
    pub protocol: u16,
    /// The mark as cdx reports it ([`super::mark::cdx_walk_mark`]): not the command's
    /// mark, but what cdx kept of it.
    pub qos_mark: u64,
    /// 0, or `SECURE` for an IPsec flow.
    pub format: CtFormat,
    /// SA handles of the original direction (non-zero ones; written only when secure).
    pub sa_count: u8,
    /// SA handles of the reply direction.
    pub sa_reply_count: u8,
    /// Fields cdx never writes in a walk entry.
    pub unwritten_by_cdx: UnwrittenByCdx,
}

/// Fields a conntrack walk entry carries that cdx never writes: on a board they hold what
/// earlier snapshots left in recycled memory, never this conntrack's values. They are kept
/// only so that code which used to trust them can be found and fixed; do not rely on them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UnwrittenByCdx {
    /// `flags` (which directions are disabled): not written.
    pub flags: u16,
    /// `route_id`: not written.
    pub route_id: u32,
    /// `route_id_reply`: not written.
    pub route_id_reply: u32,
}

/// A route as a walk reports it: the fields cdx writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalkedRoute {
    /// Route id (cdx keeps 16 bits of it).
    pub id: u32,
    /// MTU as stored (0 was stored as 0xFFFF).
    pub mtu: u16,
    /// Next-hop MAC.
    pub mac: [u8; 6],
    /// Output interface; `None` if cdx no longer knows it (or wrote no valid name).
    pub output: Option<IfName>,
    /// Input interface; `None` if cdx did not know it when the route was registered.
    pub input: Option<IfName>,
    /// The route's extra information (tunnel remote address; zero for a plain route).
    pub tunnel_dst: [u8; 16],
}

/// A VLAN interface as a walk reports it: the fields cdx writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalkedVlan {
    /// 802.1Q id (12 bits as cdx keeps it).
    pub vlan_id: u16,
    /// The VLAN interface; `None` if no valid name was written.
    pub ifname: Option<IfName>,
    /// Its parent interface.
    pub phy_ifname: Option<IfName>,
}

/// A PPPoE session as a walk reports it: the fields cdx writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalkedPppoe {
    /// The session id.
    pub session_id: u16,
    /// The peer's MAC address.
    pub mac: [u8; 6],
    /// The interface the session runs on.
    pub phy_ifname: Option<IfName>,
    /// The PPP interface (`relay` for a relayed session).
    pub ifname: Option<IfName>,
}

/// Rebuilds the entry (with a zero `action`) from the reply bytes after the return code.
fn entry_of<'a>(body: &[u8], entry: &'a mut [u8; 2 + super::MAX_ENTRY]) -> &'a [u8] {
    let len = body.len().min(super::MAX_ENTRY);
    let copied = len.saturating_sub(2);
    if let (Some(dst), Some(src)) = (entry.get_mut(2..2 + copied), body.get(..copied)) {
        dst.copy_from_slice(src);
    }
    entry.get(..len.max(2)).unwrap_or_default()
}

/// Decodes the reply body (after the return code) of a conntrack walk step in `abi`.
///
/// # Errors
/// [`FppError::OtherAbi`] or [`FppError::WrongSize`] if `body` is not an extended entry of
/// `abi`; nothing else: unwritten bytes are never read.
pub fn conntrack_from_walk<F: Family>(
    abi: Abi,
    body: &[u8],
) -> Result<WalkedConntrack<F>, FppError> {
    let size_error = || {
        let what = F::CONNTRACK_NAME;
        let extended = |abi: Abi| F::sizes(abi).get(1..).unwrap_or_default();
        super::abi::size_error(what, abi, extended, body.len())
    };
    if body.len() != F::extended_len(abi) {
        return Err(size_error());
    }
    let mut buf = [0u8; 2 + super::MAX_ENTRY];
    let entry = CtCmd::<F>::parse_for(abi, entry_of(body, &mut buf)).map_err(|_| size_error())?;
    let extension = entry.extension.unwrap_or_default();
    Ok(WalkedConntrack {
        orig: entry.orig,
        reply: entry.reply,
        protocol: entry.protocol,
        qos_mark: entry.qos_mark,
        format: extension.format,
        sa_count: extension.sa.count,
        sa_reply_count: extension.sa_reply.count,
        unwritten_by_cdx: UnwrittenByCdx {
            flags: entry.flags.bits(),
            route_id: entry.route_id,
            route_id_reply: entry.route_id_reply,
        },
    })
}

/// A name field as cdx wrote it: up to its first NUL; `None` when empty or unterminated.
fn written_name(field: &[u8; super::IFNAMSIZ]) -> Option<IfName> {
    IfName::from_field(field).ok().filter(|name| !name.is_empty())
}

/// Decodes the reply body (after the return code) of a route walk step (the same in both
/// ABIs).
///
/// # Errors
/// [`FppError::WrongSize`] if `body` is not `2 + 84 - 2` bytes; nothing else.
pub fn route_from_walk(body: &[u8]) -> Result<WalkedRoute, FppError> {
    if body.len() != ROUTE_LEN {
        return Err(wrong_size("FPP_CMD_IP_ROUTE walk reply", &[ROUTE_LEN], body.len()));
    }
    let mut buf = [0u8; 2 + super::MAX_ENTRY];
    let wire = RouteWire::ref_from_bytes(entry_of(body, &mut buf))
        .map_err(|_| wrong_size("FPP_CMD_IP_ROUTE walk reply", &[ROUTE_LEN], body.len()))?;
    Ok(WalkedRoute {
        id: wire.id.get(),
        mtu: wire.mtu.get(),
        mac: wire.dst_mac,
        output: written_name(&wire.output_device),
        input: written_name(&wire.input_device),
        tunnel_dst: wire.dst_addr,
    })
}

/// Decodes the reply body (after the return code) of a VLAN walk step in `abi`
/// (`2 + 36 - 2` bytes on NXP's cdx, `2 + 44 - 2` on the ASK port).
///
/// # Errors
/// [`FppError::OtherAbi`] or [`FppError::WrongSize`] for another size; nothing else.
pub fn vlan_from_walk(abi: Abi, body: &[u8]) -> Result<WalkedVlan, FppError> {
    let sizes = |abi: Abi| -> &'static [usize] {
        match abi {
            Abi::Lsdk => &[super::vlan::LEN],
            Abi::Ask => &[super::vlan::ASK_LEN],
        }
    };
    let size_error =
        || super::abi::size_error("FPP_CMD_VLAN_ENTRY walk reply", abi, sizes, body.len());
    let mut buf = [0u8; 2 + super::MAX_ENTRY];
    let entry = entry_of(body, &mut buf);
    let wire = match abi {
        Abi::Lsdk => VlanWire::ref_from_bytes(entry).map_err(|_| size_error())?,
        Abi::Ask => &VlanAskWire::ref_from_bytes(entry).map_err(|_| size_error())?.entry,
    };
    Ok(WalkedVlan {
        vlan_id: wire.vlan_id.get(),
        ifname: written_name(&wire.vlan_ifname),
        phy_ifname: written_name(&wire.vlan_phy_ifname),
    })
}

/// Decodes the reply body (after the return code) of a PPPoE walk step: the 42 bytes after
/// the return code (the same in both ABIs).
///
/// # Errors
/// [`FppError::WrongSize`] for another size; nothing else.
pub fn pppoe_from_walk(body: &[u8]) -> Result<WalkedPppoe, FppError> {
    const BODY: usize = PPPOE_LEN - 2;
    let error = || wrong_size("FPP_CMD_PPPOE_ENTRY walk reply", &[BODY], body.len());
    if body.len() != BODY {
        return Err(error());
    }
    let mut entry = [0u8; PPPOE_LEN];
    entry.get_mut(2..).unwrap_or_default().copy_from_slice(body);
    let wire = PppoeWire::ref_from_bytes(&entry).map_err(|_| error())?;
    Ok(WalkedPppoe {
        session_id: wire.session_id.get(),
        mac: wire.macaddr,
        phy_ifname: written_name(&wire.phy_intf),
        ifname: written_name(&wire.log_intf),
    })
}

/// Writes a walk reply as cdx does (return code over the entry's action, the entry's other
/// bytes, two zero bytes past it) to `buf`; returns its length. Unwritten fields hold what
/// `entry` holds; the software cdx overwrites them afterwards ([`super::unwritten`]).
///
/// # Errors
/// [`FppError::BufferTooShort`]; errors of [`AbiPayload::emit_for`].
pub fn emit_reply<P: AbiPayload>(
    abi: Abi,
    rc: ReturnCode,
    entry: &P,
    buf: &mut [u8],
) -> Result<usize, FppError> {
    emit_reply_with_tail(abi, rc, entry, super::unwritten::WALK_REPLY_TAIL, buf)
}

/// [`emit_reply`] with `tail` bytes after the entry: 2 for conntrack, route and VLAN walks,
/// 0 for PPPoE walks.
///
/// # Errors
/// As [`emit_reply`].
pub fn emit_reply_with_tail<P: AbiPayload>(
    abi: Abi,
    rc: ReturnCode,
    entry: &P,
    tail: usize,
    buf: &mut [u8],
) -> Result<usize, FppError> {
    let len = entry.len_for(abi) + tail;
    let available = buf.len();
    let out =
        buf.get_mut(..len).ok_or(FppError::BufferTooShort { needed: len, actual: available })?;
    entry.emit_for(abi, out)?;
    out.get_mut(..2).unwrap_or_default().copy_from_slice(&rc.value().to_ne_bytes());
    out.get_mut(len - tail..).unwrap_or_default().fill(0);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::fpp::unwritten;
    use crate::fpp::{Action, Ct4Cmd, Ct6Cmd, CtExtension, RouteCmd, V4, V6};

    fn udp4() -> Ct4Cmd {
        let mut entry = Ct4Cmd::new(
            Action::Register,
            17,
            Tuple::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 1), 1000, 53),
            Tuple::new(Ipv4Addr::new(10, 0, 1, 1), Ipv4Addr::new(10, 0, 0, 1), 53, 1000),
        );
        entry.extension = Some(CtExtension::default());
        entry.qos_mark = 0x8004_0003;
        entry
    }

    #[test]
    fn conntrack_walk_reply_is_rc_entry_tail_and_two_more_bytes() {
        for (abi, len) in [(Abi::Lsdk, 74), (Abi::Ask, 78)] {
            let mut buf = [0xAAu8; 300];
            assert_eq!(emit_reply(abi, ReturnCode::Ok, &udp4(), &mut buf).unwrap(), len);
            let full = udp4().to_vec_for(abi);
            assert_eq!(&buf[..2], &[0, 0], "return code over the action");
            assert_eq!(&buf[2..len - 2], &full[2..]);
            assert_eq!(&buf[len - 2..len], &[0, 0]);
            let walked: WalkedConntrack<V4> = conntrack_from_walk(abi, &buf[2..len]).unwrap();
            assert_eq!((walked.orig, walked.reply), (udp4().orig, udp4().reply));
            assert_eq!((walked.protocol, walked.qos_mark), (17, 0x8004_0003));
            assert!(matches!(
                conntrack_from_walk::<V4>(abi.other(), &buf[2..len]),
                Err(FppError::OtherAbi { .. })
            ));
        }
    }

    /// Random bytes (no NUL) in every field cdx does not write change nothing.
    #[test]
    fn unwritten_bytes_never_change_a_walked_value() {
        for abi in Abi::ALL {
            let mut buf = [0u8; 300];
            let len = emit_reply(abi, ReturnCode::Ok, &udp4(), &mut buf).unwrap();
            let clean: WalkedConntrack<V4> = conntrack_from_walk(abi, &buf[2..len]).unwrap();
            let mut dirty = buf;
            for range in unwritten::conntrack_walk_entry::<V4>(abi) {
                dirty[range].fill(0xC3);
            }
            dirty[len - 2..len].fill(0x7F);
            let walked: WalkedConntrack<V4> = conntrack_from_walk(abi, &dirty[2..len]).unwrap();
            assert_eq!(walked.unwritten_by_cdx.route_id, 0xC3C3_C3C3, "kept apart, by name");
            assert_eq!(
                WalkedConntrack { unwritten_by_cdx: clean.unwritten_by_cdx, ..walked },
                clean
            );
            let v6 = Ct6Cmd::walk_step(Action::Register);
            let len = emit_reply(abi, ReturnCode::Ok, &v6, &mut buf).unwrap();
            assert_eq!(len, V6::extended_len(abi) + 2);
            assert!(conntrack_from_walk::<V6>(abi, &buf[2..len]).is_ok());
        }
    }

    #[test]
    fn route_walk_reply_decodes_without_its_unwritten_names() {
        let route = RouteCmd::new(
            Action::Register,
            42,
            IfName::new("fm1-mac1").unwrap(),
            IfName::new("fm1-mac2").unwrap(),
            [2, 0, 0, 0, 0, 9],
            1500,
        );
        let mut buf = [0u8; 86];
        assert_eq!(emit_reply(Abi::Lsdk, ReturnCode::Ok, &route, &mut buf).unwrap(), 86);
        let expected = WalkedRoute {
            id: 42,
            mtu: 1500,
            mac: [2, 0, 0, 0, 0, 9],
            output: Some(IfName::new("fm1-mac1").unwrap()),
            input: Some(IfName::new("fm1-mac2").unwrap()),
            tunnel_dst: [0; 16],
        };
        assert_eq!(route_from_walk(&buf[2..]).unwrap(), expected);
        // cdx leaves the underlying input, flags, pad and the name tails unwritten: random
        // bytes without a NUL there still decode to the same route.
        for range in unwritten::route_walk_entry(8, 8) {
            buf[range].fill(b'Z');
        }
        buf[84..86].fill(b'Z');
        assert_eq!(route_from_walk(&buf[2..]).unwrap(), expected);
        // No input known to cdx: only its first byte is written.
        buf[28] = 0;
        assert_eq!(route_from_walk(&buf[2..]).unwrap().input, None);
    }

    #[test]
    fn vlan_and_pppoe_walk_replies_decode_without_their_unwritten_fields() {
        use crate::fpp::{PppoeEntry, VlanEntry};
        let vlan = VlanEntry {
            action: Action::Register,
            vlan_id: 100,
            ifname: IfName::new("eth0.100").unwrap(),
            phy_ifname: IfName::new("eth0").unwrap(),
            mac: [2, 0, 0, 0, 0, 1],
        };
        for (abi, len) in [(Abi::Lsdk, 38), (Abi::Ask, 46)] {
            let mut buf = [0u8; 64];
            assert_eq!(emit_reply(abi, ReturnCode::Ok, &vlan, &mut buf).unwrap(), len);
            for range in unwritten::vlan_walk_entry(abi, 8, 4) {
                buf[range].fill(b'Q');
            }
            buf[len - 2..len].fill(b'Q');
            let walked = vlan_from_walk(abi, &buf[2..len]).unwrap();
            assert_eq!(
                walked,
                WalkedVlan {
                    vlan_id: 100,
                    ifname: Some(vlan.ifname),
                    phy_ifname: Some(vlan.phy_ifname)
                }
            );
            assert!(matches!(
                vlan_from_walk(abi.other(), &buf[2..len]),
                Err(FppError::OtherAbi { .. })
            ));
        }
        let session = PppoeEntry {
            action: Action::Register,
            session_id: 7,
            mac: [2, 0, 0, 0, 0, 7],
            phy_ifname: IfName::new("eth0.100").unwrap(),
            ifname: IfName::new("ppp0").unwrap(),
            mode: 0,
        };
        let mut buf = [0u8; 64];
        let len = emit_reply_with_tail(Abi::Ask, ReturnCode::Ok, &session, 0, &mut buf).unwrap();
        assert_eq!(len, 44, "no bytes past the entry");
        for range in unwritten::pppoe_walk_entry(8, 4) {
            buf[range].fill(b'Q');
        }
        let walked = pppoe_from_walk(&buf[2..len]).unwrap();
        assert_eq!(
            walked,
            WalkedPppoe {
                session_id: 7,
                mac: session.mac,
                phy_ifname: Some(session.phy_ifname),
                ifname: Some(session.ifname)
            }
        );
        assert!(matches!(pppoe_from_walk(&buf[..len]), Err(FppError::WrongSize { .. })));
    }

    #[test]
    fn wrong_sized_walk_replies_are_errors() {
        assert!(matches!(
            conntrack_from_walk::<V4>(Abi::Lsdk, &[0; 71]),
            Err(FppError::WrongSize { actual: 71, .. })
        ));
        assert!(matches!(
            conntrack_from_walk::<V4>(Abi::Lsdk, &[]),
            Err(FppError::WrongSize { actual: 0, .. })
        ));
        assert!(matches!(route_from_walk(&[0; 400]), Err(FppError::WrongSize { .. })));
        assert!(matches!(route_from_walk(&[0; 83]), Err(FppError::WrongSize { .. })));
    }
}
