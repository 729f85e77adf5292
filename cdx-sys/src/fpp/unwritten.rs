//! The bytes cdx sends without writing them: what a walk reply or a change event holds there
//! is whatever memory held before.
//!
//! | message | cdx source (both builds) | fields cdx never writes |
//! | --- | --- | --- |
//! | conntrack walk entry (`QUERY`/`QUERY_CONT`, extended layout) | `IPv4_CT_Get_Hash_Snapshot` (`control_ipv4.c`), `IPv6_CT_Get_Hash_Snapshot` (`control_ipv6.c`); the snapshot buffer comes from `Heap_Alloc` = `kmalloc` (`cdx_hal.c`), not zeroed | `flags`, `route_id`, `route_id_reply`, `SA_dir`, `SAReply_dir`, `tunnel_route_id`, `tunnel_route_id_reply`, and the SA handles unless the flow is secure (then only the non-zero ones) |
//! | route walk entry | `IPV4_RT_Get_Hash_Snapshot` (`control_ipv4.c`), same `kmalloc` buffer | `pad`, `UnderlyingInputDevice`, `flags`, and every byte after the NUL of `outputDevice` and `inputDevice` (`strcpy`, or only `[0] = '\0'` when there is no input) |
//! | VLAN walk entry | `Vlan_Get_Hash_Snapshot` (`control_vlan.c`), `kmalloc`ed | every byte after the NUL of both names; the ASK port's `macaddr` and `unused` |
//! | PPPoE walk entry | `PPPoE_Get_Session_Snapshot` (`control_pppoe.c`), `kmalloc`ed | every byte after the NUL of both names, and `mode` (the reply is the entry's 44 bytes: no tail) |
//! | every walk reply | `M_ipv4_cmdproc`/`M_ipv6_cmdproc` (and `M_vlan_cmdproc`) answer `2 + sizeof(entry)` bytes from the reply buffer, whose entry starts at offset 0 under the return code | the 2 bytes after the entry |
//! | `*_CONNTRACK_CHANGE` (REMOVED) | `IPv4_delete_CTpair`, `IPv6_delete_CTpair`; the message is the static `msg_buf` (`cdx_hal.c`), reused by every event | the reserved word at 2, `flags`, `route_id`, `route_id_reply` (the mark is written, as 0) |
//!
//! `GET_TIMEOUT` replies are fully written (`memset(p, 0, 256)` first). Offsets here are in
//! the entry's own layout (a command's), so offset 0 is the `action` the return code
//! overwrites; [`crate::fpp::query`] maps reply bytes to it. The software cdx fills these
//! ranges with zeros, or with random non-zero bytes in its garbage mode, and the decoders of
//! this crate never read them.

use std::ops::Range;

use super::{Abi, Family};

/// Bytes a walk reply carries after its entry.
pub const WALK_REPLY_TAIL: usize = 2;

/// Offsets of `flags` and of the route ids in the basic layout of `F` in `abi`.
fn flags_and_route_ids<F: Family>(abi: Abi) -> [Range<usize>; 2] {
    let basic = F::basic_len(abi);
    let route_ids = basic - 8;
    let flags = route_ids - abi.mark_len() - 2;
    [flags..flags + 2, route_ids..basic]
}

/// Unwritten bytes of a `*_CONNTRACK_CHANGE` event of `F` in `abi`.
pub fn removed_event<F: Family>(abi: Abi) -> Vec<Range<usize>> {
    let [flags, route_ids] = flags_and_route_ids::<F>(abi);
    vec![2..4, flags, route_ids]
}

/// Unwritten bytes of a conntrack walk entry (extended layout) of `F` in `abi`, for a
/// conntrack that is not secure.
pub fn conntrack_walk_entry<F: Family>(abi: Abi) -> Vec<Range<usize>> {
    let [flags, route_ids] = flags_and_route_ids::<F>(abi);
    let ext = F::basic_len(abi);
    vec![
        flags,
        route_ids,
        ext..ext + 1,                              // SA_dir
        ext + 2..ext + 10,                         // SA_handle[4]
        ext + 10..ext + 11,                        // SAReply_dir
        ext + 12..ext + 20,                        // SAReply_handle[4]
        ext + 20..ext + super::conntrack::EXT_LEN, // tunnel route ids
    ]
}

/// Unwritten bytes of a route walk entry whose output and input names are `output_len` and
/// `input_len` bytes long (0: no name).
pub fn route_walk_entry(output_len: usize, input_len: usize) -> Vec<Range<usize>> {
    let output_tail = (12 + output_len + 1).min(28);
    let input_tail = (28 + input_len + 1).min(44);
    vec![10..12, output_tail..28, input_tail..44, 44..60, 64..68]
}

/// Bytes after the NUL of a 16-byte name field at `start` holding `len` bytes.
fn name_tail(start: usize, len: usize) -> Range<usize> {
    (start + len + 1).min(start + super::IFNAMSIZ)..start + super::IFNAMSIZ
}

/// Unwritten bytes of a VLAN walk entry in `abi` whose names are `name_len` and `phy_len`
/// bytes long.
pub fn vlan_walk_entry(abi: Abi, name_len: usize, phy_len: usize) -> Vec<Range<usize>> {
    let mut ranges = vec![name_tail(4, name_len), name_tail(20, phy_len)];
    if abi == Abi::Ask {
        ranges.push(super::vlan::LEN..super::vlan::ASK_LEN);
    }
    ranges
}

/// Unwritten bytes of a PPPoE walk entry whose interface names are `phy_len` and `log_len`
/// bytes long.
pub fn pppoe_walk_entry(phy_len: usize, log_len: usize) -> Vec<Range<usize>> {
    vec![name_tail(10, phy_len), name_tail(26, log_len), 42..44]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpp::{V4, V6};

    #[test]
    fn ranges_follow_each_abi_layout() {
        assert_eq!(removed_event::<V4>(Abi::Lsdk), vec![2..4, 30..32, 36..44]);
        assert_eq!(removed_event::<V4>(Abi::Ask), vec![2..4, 30..32, 40..48]);
        assert_eq!(removed_event::<V6>(Abi::Lsdk), vec![2..4, 78..80, 84..92]);
        assert_eq!(removed_event::<V6>(Abi::Ask), vec![2..4, 78..80, 88..96]);
        assert_eq!(
            conntrack_walk_entry::<V4>(Abi::Lsdk),
            vec![30..32, 36..44, 44..45, 46..54, 54..55, 56..64, 64..72]
        );
        assert_eq!(conntrack_walk_entry::<V6>(Abi::Ask).last(), Some(&(116..124)));
        assert_eq!(route_walk_entry(8, 0), vec![10..12, 21..28, 29..44, 44..60, 64..68]);
        assert_eq!(route_walk_entry(15, 15), vec![10..12, 28..28, 44..44, 44..60, 64..68]);
        assert_eq!(vlan_walk_entry(Abi::Lsdk, 8, 4), vec![13..20, 25..36]);
        assert_eq!(vlan_walk_entry(Abi::Ask, 15, 4), vec![20..20, 25..36, 36..44]);
        assert_eq!(pppoe_walk_entry(8, 4), vec![19..26, 31..42, 42..44]);
    }
}
