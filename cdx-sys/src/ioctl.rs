//! `/dev/cdx_ctrl` request numbers (magic `0xbe`), computed for the running target.
//!
//! Every request of the module is `_IOWR(0xbe, nr, struct)`: the size of the argument
//! struct is part of the number, and the structs hold user pointers, so the numbers differ
//! between LP64 (aarch64: `CDX_CTRL_DPA_SET_PARAMS` = `0xc018be01`) and ILP32 (armv7:
//! `0xc00cbe01`). They are computed here from the [`crate::raw`] structs of the target being
//! built, with the generic Linux encoding (`asm-generic/ioctl.h`: 2 direction bits, 14 size
//! bits, 8 type bits, 8 number bits), which arm, aarch64, x86 and riscv use.
//!
//! `CDX_CTRL_DPA_CONNADD` and `CDX_CTRL_DPA_QOS_CONFIG_ADD` share number 3 and differ only in
//! their size bits. The module's `compat_ioctl` (32-bit processes on a 64-bit kernel) is a
//! stub that returns 0 without doing anything: only native callers work.

use crate::raw;

#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
compile_error!("cdx-sys computes ioctl numbers with the generic Linux encoding only");

/// The module's ioctl type (`CDX_IOC_MAGIC`).
pub const CDX_IOC_MAGIC: u8 = 0xbe;

/// Direction bit: user space writes the argument.
pub const IOC_WRITE: u32 = 1;
/// Direction bit: user space reads the argument back.
pub const IOC_READ: u32 = 2;

const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = 8;
const IOC_SIZESHIFT: u32 = 16;
const IOC_DIRSHIFT: u32 = 30;
const IOC_SIZEMASK: usize = (1 << 14) - 1;

/// `_IOC(dir, type, nr, size)`. `size` must fit 14 bits (a `const` use fails to build
/// otherwise).
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size <= IOC_SIZEMASK, "ioctl argument larger than 14 bits of size");
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `_IOWR(CDX_IOC_MAGIC, nr, size)`.
pub const fn cdx_iowr(nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, CDX_IOC_MAGIC, nr, size)
}

/// `CDX_CTRL_DPA_SET_PARAMS`: FMan configuration from `dpa_app`.
pub const CDX_CTRL_DPA_SET_PARAMS: u32 = cdx_iowr(1, size_of::<raw::SetDpaParams>());
/// `CDX_CTRL_DPA_CONNADD`: add test connections (dpa_app test code).
pub const CDX_CTRL_DPA_CONNADD: u32 = cdx_iowr(3, size_of::<raw::AddConnInfo>());
/// `CDX_CTRL_DPA_GET_MURAM_DATA`: read FMan MURAM (only with `DPAA_DEBUG_ENABLE`).
pub const CDX_CTRL_DPA_GET_MURAM_DATA: u32 = cdx_iowr(4, size_of::<raw::MuramData>());
/// `CDX_CTRL_DPA_QOS_CONFIG_ADD`: QoS configuration (same number as CONNADD).
pub const CDX_CTRL_DPA_QOS_CONFIG_ADD: u32 = cdx_iowr(3, size_of::<raw::QosConfigInfo>());
/// `CDX_CTRL_DPA_ADD_MCAST_GROUP`.
pub const CDX_CTRL_DPA_ADD_MCAST_GROUP: u32 = cdx_iowr(5, size_of::<raw::McGroupInfo>());
/// `CDX_CTRL_DPA_ADD_MCAST_MEMBER` (declared with the group struct).
pub const CDX_CTRL_DPA_ADD_MCAST_MEMBER: u32 = cdx_iowr(6, size_of::<raw::McGroupInfo>());
/// `CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY`.
pub const CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY: u32 = cdx_iowr(7, size_of::<raw::McEntryInfo>());

/// Every request with its name, in number order.
pub const ALL: [(&str, u32); 7] = [
    ("CDX_CTRL_DPA_SET_PARAMS", CDX_CTRL_DPA_SET_PARAMS),
    ("CDX_CTRL_DPA_CONNADD", CDX_CTRL_DPA_CONNADD),
    ("CDX_CTRL_DPA_QOS_CONFIG_ADD", CDX_CTRL_DPA_QOS_CONFIG_ADD),
    ("CDX_CTRL_DPA_GET_MURAM_DATA", CDX_CTRL_DPA_GET_MURAM_DATA),
    ("CDX_CTRL_DPA_ADD_MCAST_GROUP", CDX_CTRL_DPA_ADD_MCAST_GROUP),
    ("CDX_CTRL_DPA_ADD_MCAST_MEMBER", CDX_CTRL_DPA_ADD_MCAST_MEMBER),
    ("CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY", CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers the reference computed for AArch64 (LP64).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn lp64_numbers_are_pinned() {
        assert_eq!(CDX_CTRL_DPA_SET_PARAMS, 0xc018_be01);
        assert_eq!(CDX_CTRL_DPA_CONNADD, 0xc010_be03);
        assert_eq!(CDX_CTRL_DPA_GET_MURAM_DATA, 0xc010_be04);
        assert_eq!(CDX_CTRL_DPA_QOS_CONFIG_ADD, 0xc024_be03);
        assert_eq!(CDX_CTRL_DPA_ADD_MCAST_GROUP, 0xc044_be05);
        assert_eq!(CDX_CTRL_DPA_ADD_MCAST_MEMBER, 0xc044_be06);
        assert_eq!(CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY, 0xc044_be07);
    }

    /// The C layout rule (each field at the next multiple of its alignment, the size
    /// rounded up to the largest alignment), for describing another target's structs.
    fn c_layout(fields: &[(usize, usize)]) -> usize {
        let mut offset: usize = 0;
        let mut align: usize = 1;
        for &(size, field_align) in fields {
            offset = offset.next_multiple_of(field_align) + size;
            align = align.max(field_align);
        }
        offset.next_multiple_of(align)
    }

    /// ILP32 (armv7): 4-byte pointers with 4-byte alignment.
    #[test]
    fn ilp32_numbers_are_computed_from_the_ilp32_layouts() {
        const PTR: (usize, usize) = (4, 4);
        const U32: (usize, usize) = (4, 4);
        let set_params = c_layout(&[U32, PTR, PTR]);
        let conn_add = c_layout(&[U32, PTR]);
        let muram = c_layout(&[PTR, U32]);
        let qos = c_layout(&[(12, 1), U32, U32, U32, U32, (2, 2), (2, 2), (4, 4)]);
        let mc_group = c_layout(&[(32, 4), (32, 1), (1, 1), (1, 1)]);
        let mc_entry = c_layout(&[(32, 4), (32, 1), (1, 1)]);
        assert_eq!((set_params, conn_add, muram, qos, mc_group, mc_entry), (12, 8, 8, 36, 68, 68));
        assert_eq!(cdx_iowr(1, set_params), 0xc00c_be01);
        assert_eq!(cdx_iowr(3, conn_add), 0xc008_be03);
        assert_eq!(cdx_iowr(4, muram), 0xc008_be04);
        assert_eq!(cdx_iowr(3, qos), 0xc024_be03);
        assert_eq!(cdx_iowr(5, mc_group), 0xc044_be05);
        assert_eq!(cdx_iowr(7, mc_entry), 0xc044_be07);
    }

    /// The same rule reproduces the LP64 sizes of the host structs, so the ILP32 test
    /// describes the structs faithfully.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn layout_rule_matches_the_host_structs() {
        const PTR: (usize, usize) = (8, 8);
        const U32: (usize, usize) = (4, 4);
        assert_eq!(c_layout(&[U32, PTR, PTR]), size_of::<raw::SetDpaParams>());
        assert_eq!(c_layout(&[PTR, PTR, U32]), size_of::<raw::SetDpaParamsAsk>(), "ASK order");
        assert_eq!(c_layout(&[U32, PTR]), size_of::<raw::AddConnInfo>());
        assert_eq!(c_layout(&[PTR, U32]), size_of::<raw::MuramData>());
    }

    #[test]
    fn numbers_are_pairwise_distinct_and_use_the_magic() {
        for (i, (name, a)) in ALL.iter().enumerate() {
            assert_eq!((a >> 8) & 0xff, 0xbe, "{name}");
            assert_eq!(a >> 30, 3, "{name} is _IOWR");
            for (other, b) in &ALL[i + 1..] {
                assert_ne!(a, b, "{name} vs {other}");
            }
        }
        // CONNADD and QOS_CONFIG_ADD share nr 3: only the size tells them apart.
        assert_eq!(CDX_CTRL_DPA_CONNADD & 0xff, CDX_CTRL_DPA_QOS_CONFIG_ADD & 0xff);
    }

    #[test]
    fn generic_encoding_matches_a_libc_constant() {
        // TUNSETIFF = _IOW('T', 202, int)
        assert_eq!(ioc(IOC_WRITE, b'T', 202, 4) as libc::c_ulong, libc::TUNSETIFF as libc::c_ulong);
    }
}
