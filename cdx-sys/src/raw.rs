//! `#[repr(C)]` argument structs of the `/dev/cdx_ctrl` ioctls, with layout assertions for
//! the target being built.
//!
//! Field names follow the module's header (`cdx_ioctl.h`) in Rust case. Structs with user
//! pointers (`SetDpaParams`, `AddConnInfo`, `MuramData`) are 24/16/16 bytes on LP64 and
//! 12/8/8 on ILP32; the others are the same everywhere. Of these, only
//! `cdx_ctrl_set_dpa_params` differs between the two cdx ABIs ([`SetDpaParamsAsk`]). The pointees of `SetDpaParams`
//! (`cdx_fman_info`, `cdx_ipr_info`) and `AddConnInfo` (`test_conn_info`) belong to
//! `dpa_app` and are not modelled: they are `*mut c_void` here.

use std::ffi::c_void;
use std::mem::offset_of;
use std::ptr;

/// `struct cdx_ctrl_set_dpa_params` of NXP's cdx (LSDK).
#[derive(Debug)]
#[repr(C)]
pub struct SetDpaParams {
    /// Number of `cdx_fman_info` entries at `fman_info`.
    pub num_fmans: u32,
    /// `cdx_fman_info[num_fmans]`.
    pub fman_info: *mut c_void,
    /// One `cdx_ipr_info`.
    pub ipr_info: *mut c_void,
}

/// `struct cdx_ctrl_set_dpa_params` of the ASK port: the same fields, the count last
/// (`cdx_ioctl.h`). The struct has the same size as NXP's (padding), so the request number
/// is the same: the layout is chosen by the ABI, not by the number.
#[derive(Debug)]
#[repr(C)]
pub struct SetDpaParamsAsk {
    /// `cdx_fman_info[num_fmans]` (the ASK port's, a different layout from NXP's).
    pub fman_info: *mut c_void,
    /// One `cdx_ipr_info`.
    pub ipr_info: *mut c_void,
    /// Number of `cdx_fman_info` entries at `fman_info`.
    pub num_fmans: u32,
}

/// `struct add_conn_info`.
#[derive(Debug)]
#[repr(C)]
pub struct AddConnInfo {
    /// Number of `test_conn_info` entries at `conn_info`.
    pub num_conn: u32,
    /// `test_conn_info[num_conn]`.
    pub conn_info: *mut c_void,
}

/// `struct muram_data`.
#[derive(Debug)]
#[repr(C)]
pub struct MuramData {
    /// Buffer the module fills.
    pub buff: *mut u8,
    /// Its size.
    pub size: u32,
}

impl Default for MuramData {
    fn default() -> MuramData {
        MuramData { buff: ptr::null_mut(), size: 0 }
    }
}

/// `struct QoSConfig_Info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct QosConfigInfo {
    /// Interface name, NUL-terminated.
    pub if_info: [u8; 12],
    /// Committed information rate.
    pub cir: u32,
    /// Excess information rate.
    pub eir: u32,
    /// Committed burst size.
    pub cbs: u32,
    /// Excess burst size.
    pub ebs: u32,
    /// Number of schedulers.
    pub no_of_schedulers: i16,
    /// Number of queues.
    pub no_of_queues: i16,
    /// Strict-priority setting.
    pub sp: i32,
}

/// The address union of the multicast structs: IPv4 `{u32 src, dst}` or IPv6
/// `{u8 src[16], dst[16]}`, 32 bytes aligned to 4. Addresses in network order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(4))]
pub struct McAddr(pub [u8; 32]);

impl McAddr {
    /// The IPv4 form.
    pub fn v4(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr) -> McAddr {
        let mut bytes = [0; 32];
        bytes[..4].copy_from_slice(&src.octets());
        bytes[4..8].copy_from_slice(&dst.octets());
        McAddr(bytes)
    }

    /// The IPv6 form.
    pub fn v6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) -> McAddr {
        let mut bytes = [0; 32];
        bytes[..16].copy_from_slice(&src.octets());
        bytes[16..].copy_from_slice(&dst.octets());
        McAddr(bytes)
    }
}

/// `struct add_mc_group_info` (also the argument of `ADD_MCAST_MEMBER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct McGroupInfo {
    /// Source and group addresses.
    pub addr: McAddr,
    /// Listener port name, NUL-terminated.
    pub listener_port: [u8; 32],
    /// Maximum members.
    pub max_members: u8,
    /// Multicast type (IPv4/IPv6).
    pub mctype: u8,
}

/// `struct add_mc_entry_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct McEntryInfo {
    /// Source and group addresses.
    pub addr: McAddr,
    /// Ingress port name, NUL-terminated.
    pub ingress_port: [u8; 32],
    /// Multicast type.
    pub mctype: u8,
}

/// Pointer size of the target.
const PTR: usize = size_of::<*mut c_void>();

const _: () = {
    assert!(PTR == 8 || PTR == 4);
    // LP64: 24 / 16 / 16; ILP32: 12 / 8 / 8.
    assert!(size_of::<SetDpaParams>() == if PTR == 8 { 24 } else { 12 });
    assert!(offset_of!(SetDpaParams, num_fmans) == 0);
    assert!(offset_of!(SetDpaParams, fman_info) == PTR);
    assert!(offset_of!(SetDpaParams, ipr_info) == 2 * PTR);
    // ASK: fman_info, ipr_info, num_fmans; padded to the same size.
    assert!(size_of::<SetDpaParamsAsk>() == size_of::<SetDpaParams>());
    assert!(offset_of!(SetDpaParamsAsk, fman_info) == 0);
    assert!(offset_of!(SetDpaParamsAsk, ipr_info) == PTR);
    assert!(offset_of!(SetDpaParamsAsk, num_fmans) == 2 * PTR);
    assert!(size_of::<AddConnInfo>() == 2 * PTR);
    assert!(offset_of!(AddConnInfo, conn_info) == PTR);
    assert!(size_of::<MuramData>() == 2 * PTR);
    assert!(offset_of!(MuramData, size) == PTR);
    // Pointer-free: the same on every target.
    assert!(size_of::<QosConfigInfo>() == 36);
    assert!(offset_of!(QosConfigInfo, cir) == 12);
    assert!(offset_of!(QosConfigInfo, ebs) == 24);
    assert!(offset_of!(QosConfigInfo, no_of_schedulers) == 28);
    assert!(offset_of!(QosConfigInfo, no_of_queues) == 30);
    assert!(offset_of!(QosConfigInfo, sp) == 32);
    assert!(size_of::<McAddr>() == 32 && align_of::<McAddr>() == 4);
    assert!(size_of::<McGroupInfo>() == 68);
    assert!(offset_of!(McGroupInfo, listener_port) == 32);
    assert!(offset_of!(McGroupInfo, max_members) == 64);
    assert!(offset_of!(McGroupInfo, mctype) == 65);
    assert!(size_of::<McEntryInfo>() == 68);
    assert!(offset_of!(McEntryInfo, ingress_port) == 32);
    assert!(offset_of!(McEntryInfo, mctype) == 64);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_address_forms() {
        let v4 = McAddr::v4([10, 0, 0, 1].into(), [239, 1, 2, 3].into());
        assert_eq!(&v4.0[..8], &[10, 0, 0, 1, 239, 1, 2, 3]);
        assert!(v4.0[8..].iter().all(|&b| b == 0));
        let v6 = McAddr::v6("2001:db8::1".parse().unwrap(), "ff0e::1".parse().unwrap());
        assert_eq!(v6.0[0], 0x20);
        assert_eq!(v6.0[16], 0xff);
        assert_eq!(v6.0[31], 1);
    }
}
