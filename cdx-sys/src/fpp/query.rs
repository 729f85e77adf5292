//! Table walks: the reply layout of QUERY / QUERY_CONT.
//!
//! cdx answers a walk step in place: it copies the entry (a full extended conntrack command,
//! or a route command) to offset 0 of the reply buffer, writes the return code over the
//! entry's first two bytes (its `action`), and replies with `2 + entry` bytes. After the
//! return code a reply therefore holds the entry from its third byte on, then two bytes of
//! padding; the end of the walk is a bare 2-byte return code (`CT_ENTRY_NOT_FOUND` /
//! `RT_ENTRY_NOT_FOUND`). The `action` of a walked entry is meaningless and reads as
//! REGISTER.

use super::{FppError, Payload};

/// Parses the entry of a walk reply from the bytes after the return code.
///
/// # Errors
/// [`FppError::WrongSize`] if `body` is not an entry of the command's size (as `P::parse`
/// reports it, counting the entry's two overwritten bytes).
pub fn entry_from_reply<P: Payload>(body: &[u8]) -> Result<P, FppError> {
    let mut entry = [0u8; 2 + crate::fci::MAX_PAYLOAD];
    let copied = body.len().saturating_sub(2);
    let dst = entry
        .get_mut(2..2 + copied)
        .ok_or(FppError::BufferTooShort { needed: copied + 2, actual: crate::fci::MAX_PAYLOAD })?;
    dst.copy_from_slice(body.get(..copied).unwrap_or_default());
    P::parse(entry.get(..2 + copied).unwrap_or_default())
}

/// Writes a walk reply (return code + entry + padding) to `buf`, as cdx does; returns its
/// length.
///
/// # Errors
/// [`FppError::BufferTooShort`] if `buf` is shorter than `2 + entry.buffer_len()`.
pub fn emit_reply<P: Payload>(
    rc: super::ReturnCode,
    entry: &P,
    buf: &mut [u8],
) -> Result<usize, FppError> {
    let len = 2 + entry.buffer_len();
    let available = buf.len();
    let out =
        buf.get_mut(..len).ok_or(FppError::BufferTooShort { needed: len, actual: available })?;
    entry.emit(out)?;
    out.get_mut(..2).unwrap_or_default().copy_from_slice(&rc.value().to_ne_bytes());
    out.get_mut(len - 2..).unwrap_or_default().fill(0);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::fpp::{Action, Ct4Cmd, CtExtension, IfName, ReturnCode, RouteCmd, Tuple};

    #[test]
    fn conntrack_walk_reply_is_rc_entry_tail_and_padding() {
        let mut entry = Ct4Cmd::new(
            Action::Register,
            17,
            Tuple::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 1), 1000, 53),
            Tuple::new(Ipv4Addr::new(10, 0, 1, 1), Ipv4Addr::new(10, 0, 0, 1), 53, 1000),
        );
        entry.extension = Some(CtExtension::default());
        let mut buf = [0xAAu8; 300];
        let len = emit_reply(ReturnCode::Ok, &entry, &mut buf).unwrap();
        assert_eq!(len, 74);
        let full = entry.to_vec();
        assert_eq!(&buf[..2], &[0, 0], "return code over the action");
        assert_eq!(&buf[2..72], &full[2..72]);
        assert_eq!(&buf[72..74], &[0, 0]);
        let parsed: Ct4Cmd = entry_from_reply(&buf[2..74]).unwrap();
        assert_eq!(parsed, entry);
    }

    #[test]
    fn route_walk_reply_round_trips() {
        let route = RouteCmd::new(
            Action::Register,
            42,
            IfName::new("fm1-mac1").unwrap(),
            IfName::new("fm1-mac2").unwrap(),
            [2, 0, 0, 0, 0, 9],
            1500,
        );
        let mut buf = [0u8; 86];
        assert_eq!(emit_reply(ReturnCode::Ok, &route, &mut buf).unwrap(), 86);
        assert_eq!(entry_from_reply::<RouteCmd>(&buf[2..]).unwrap(), route);
    }

    #[test]
    fn wrong_sized_walk_replies_are_errors() {
        assert!(matches!(
            entry_from_reply::<Ct4Cmd>(&[0; 71]),
            Err(FppError::WrongSize { actual: 71, .. })
        ));
        assert!(matches!(
            entry_from_reply::<Ct4Cmd>(&[]),
            Err(FppError::WrongSize { actual: 2, .. })
        ));
        assert!(matches!(
            entry_from_reply::<RouteCmd>(&[0; 400]),
            Err(FppError::BufferTooShort { .. })
        ));
    }
}
