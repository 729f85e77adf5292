//! The conntrack QoS mark: the vendor's per-direction halves rule, and how cdx keeps the
//! mark per direction.
//!
//! CMM copies the kernel's conntrack mark into the conntrack command (LSDK cmm: the 32-bit
//! `ATTR_MARK` into `fwmark`; ASK cmm: `ATTR_QOSCONNMARK` into `qosconnmark` when built with
//! `USE_QOSCONNMARK`, otherwise the 32-bit mark zero-extended). One half is the originator
//! direction's QoS, the other the reply direction's, flagged by the top bit. CMM assumes the
//! originator is upstream (leaves through a WAN port); when it is not, CMM swaps the halves
//! before REGISTER or UPDATE ([`for_directions`]).
//!
//! The rule, from `cmmFeCtUpdate4`/`cmmFeCtUpdate6` in cmm's `forward_engine.c` (LSDK
//! cmm 13.01, around line 349; the same in the ASK port): swap when the mark has its reply
//! half (bit 31 of `fwmark`, bit 63 of `qosconnmark`) and either the originator direction is
//! offloaded, entered through a WAN port and does not leave through one, or the reply
//! direction is offloaded, did not enter through a WAN port and leaves through one
//! ([`originator_is_downstream`]). The ASK cmm compiles its 64-bit variant only when
//! `LS1043` is not defined, and its Makefile defines it: on LS1043A/LS1046A boards the ASK cmm
//! never swaps. Callers decide whether to apply it; this module states what it does.
//!
//! cdx then stores one mark per direction ([`cdx_direction_marks`], `IPv4_HandleIP_CONNTRACK`
//! and `IPv6_handle_CONNTRACK`; ASK: `get_ctentry_qosmark_from_qosconnmark` in `cdx.h`) and
//! reports the pair in walks as [`cdx_walk_mark`] (`IP_get_fwmark` / `IP_get_qosconnmark`,
//! `control_ipv4.c`).

use super::Abi;

/// The ports of one direction, as CMM judges them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectionPorts {
    /// The direction is offloaded (CMM's `fpp_dir` has it).
    pub offloaded: bool,
    /// It enters through a WAN port (the kernel's fast-path input interface).
    pub input_is_wan: bool,
    /// It leaves through a WAN port (its route's output).
    pub output_is_wan: bool,
}

/// Whether CMM would consider the originator direction downstream, i.e. swap the halves.
pub const fn originator_is_downstream(orig: DirectionPorts, reply: DirectionPorts) -> bool {
    (orig.offloaded && orig.input_is_wan && !orig.output_is_wan)
        || (reply.offloaded && !reply.input_is_wan && reply.output_is_wan)
}

/// The mark with its halves swapped as CMM swaps them, if it has a reply half; otherwise
/// `mark` unchanged.
///
/// LSDK (`fwmark`, 16-bit halves): the reply half's low 15 bits become the originator half,
/// keeping the originator's bit 15; the originator's low 15 bits become the reply half; bit
/// 31 stays set. Bits above 31 are kept (they do not fit the LSDK field). ASK
/// (`qosconnmark`, 32-bit halves): the halves trade places, the originator half's top bit
/// cleared and the reply half's set.
pub const fn swap_halves(abi: Abi, mark: u64) -> u64 {
    match abi {
        Abi::Lsdk => {
            if mark & 0x8000_0000 == 0 {
                return mark;
            }
            let lo = mark & 0xffff;
            let hi = (mark >> 16) & 0xffff;
            let swapped = ((hi & 0x7fff) | (lo & 0x8000)) | ((lo & 0x7fff) << 16) | 0x8000_0000;
            (mark & !0xffff_ffff) | swapped
        }
        Abi::Ask => {
            if mark & (1 << 63) == 0 {
                return mark;
            }
            let lo = mark & 0xffff_ffff;
            let hi = mark >> 32;
            ((lo | 0x8000_0000) << 32) | (hi & 0x7fff_ffff)
        }
    }
}

/// The mark CMM sends for a conntrack whose directions have these ports.
pub const fn for_directions(
    abi: Abi,
    mark: u64,
    orig: DirectionPorts,
    reply: DirectionPorts,
) -> u64 {
    if originator_is_downstream(orig, reply) { swap_halves(abi, mark) } else { mark }
}

/// The mark cdx stores for each direction, `[originator, reply]`, from a command's mark.
///
/// LSDK: 16 bits each; the originator gets the low 16, the reply bits 16..30 plus the
/// originator's bit 15 when bit 31 is set, else the originator's mark. ASK: the originator
/// gets the low 32 bits, the reply the high 32 when bit 63 is set, else 0.
pub const fn cdx_direction_marks(abi: Abi, mark: u64) -> [u32; 2] {
    match abi {
        Abi::Lsdk => {
            let fwmark = mark as u32; // cdx's field is 32 bits
            let orig = fwmark & 0xffff;
            let reply = if fwmark & 0x8000_0000 != 0 {
                ((fwmark >> 16) & 0x7fff) | (fwmark & 0x8000)
            } else {
                orig
            };
            [orig, reply]
        }
        Abi::Ask => {
            let orig = mark as u32; // the low half
            let reply = if mark & (1 << 63) != 0 { (mark >> 32) as u32 } else { 0 };
            [orig, reply]
        }
    }
}

/// The mark a walk reports for a conntrack whose directions hold `marks`.
///
/// LSDK: the originator's mark, or `orig | reply << 16 | 1 << 31` when they differ. ASK: the
/// originator's, or `orig | reply << 32 | 1 << 63` when the reply's is not zero.
pub const fn cdx_walk_mark(abi: Abi, marks: [u32; 2]) -> u64 {
    let [orig, reply] = marks;
    let (orig, reply) = (orig as u64, reply as u64);
    match abi {
        Abi::Lsdk if orig != reply => (orig | reply << 16 | 0x8000_0000) & 0xffff_ffff,
        Abi::Ask if reply != 0 => orig | reply << 32 | 1 << 63,
        _ => orig,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAN_IN: DirectionPorts =
        DirectionPorts { offloaded: true, input_is_wan: true, output_is_wan: false };
    const WAN_OUT: DirectionPorts =
        DirectionPorts { offloaded: true, input_is_wan: false, output_is_wan: true };

    /// cmm `forward_engine.c`, cmmFeCtUpdate4: swap when the originator came from the WAN.
    #[test]
    fn halves_swap_only_for_a_downstream_originator_with_a_reply_half() {
        // Originator LAN → WAN: upstream, as CMM assumes; nothing changes.
        assert!(!originator_is_downstream(WAN_OUT, WAN_IN));
        assert_eq!(for_directions(Abi::Lsdk, 0x8005_0003, WAN_OUT, WAN_IN), 0x8005_0003);
        // Originator WAN → LAN: either direction's ports say so.
        assert!(originator_is_downstream(WAN_IN, WAN_OUT));
        let not_offloaded = DirectionPorts { offloaded: false, ..WAN_IN };
        assert!(originator_is_downstream(not_offloaded, WAN_OUT), "the reply's ports decide");
        assert!(!originator_is_downstream(not_offloaded, DirectionPorts::default()));
        // LSDK: queue 3 / queue 5 trade places, bit 15 of the originator half stays.
        assert_eq!(for_directions(Abi::Lsdk, 0x8005_0003, WAN_IN, WAN_OUT), 0x8003_0005);
        assert_eq!(swap_halves(Abi::Lsdk, 0x8005_8003), 0x8003_8005);
        assert_eq!(swap_halves(Abi::Lsdk, 0x0005_0003), 0x0005_0003, "no reply half");
        // ASK: 32-bit halves, the flag moves with the downstream half.
        let mark = (1u64 << 63) | (0x15 << 32) | 0x0000_0103;
        assert_eq!(for_directions(Abi::Ask, mark, WAN_IN, WAN_OUT), (0x8000_0103 << 32) | 0x15);
        assert_eq!(swap_halves(Abi::Ask, 0x0000_0015_0000_0103), 0x0000_0015_0000_0103);
    }

    /// control_ipv4.c IPv4_HandleIP_CONNTRACK (REGISTER) and IP_get_fwmark; ASK cdx.h
    /// get_ctentry_qosmark_from_qosconnmark and IP_get_qosconnmark.
    #[test]
    fn cdx_keeps_one_mark_per_direction_and_walks_report_both() {
        assert_eq!(cdx_direction_marks(Abi::Lsdk, 0x0001_0005), [5, 5], "no bit 31: both low");
        assert_eq!(cdx_direction_marks(Abi::Lsdk, 0x8004_0003), [3, 4]);
        assert_eq!(cdx_direction_marks(Abi::Lsdk, 0x8004_8003), [0x8003, 0x8004]);
        assert_eq!(cdx_walk_mark(Abi::Lsdk, [3, 4]), 0x8004_0003);
        assert_eq!(cdx_walk_mark(Abi::Lsdk, [9, 9]), 9, "equal halves read as one");
        assert_eq!(cdx_direction_marks(Abi::Ask, 0x0000_0007_0000_0102), [0x102, 0]);
        assert_eq!(cdx_direction_marks(Abi::Ask, 0x8000_0007_0000_0102), [0x102, 0x8000_0007]);
        assert_eq!(cdx_walk_mark(Abi::Ask, [0x102, 0x8000_0007]), 0x8000_0007_0000_0102);
        assert_eq!(cdx_walk_mark(Abi::Ask, [0x102, 0]), 0x102);
    }
}
