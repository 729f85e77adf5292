//! The NXP `cdx` kernel ABI, its transports, and a software model of cdx.
//!
//! `cdx.ko` programs the DPAA1 (FMan) fast path of LS1043A/LS1046A. It is driven with FPP
//! commands (`u16` command code + packed payload, answered by a `u16` return code), which
//! user space reaches through `fci.ko` on netlink protocol 30 (`NETLINK_FF`). The module also
//! has a character device, `/dev/cdx_ctrl`, whose ioctls configure FMan at boot.
//!
//! # Layers
//!
//! | module | contract |
//! | --- | --- |
//! | [`fpp`] | bytes ⇄ typed commands. Every payload has a packed wire struct (a zero-copy view whose size and field offsets are pinned at compile time) and an owned value with `parse`/`emit`/`buffer_len`. Parsing never panics and checks exact sizes; addresses and ports are network order, every other integer host order. |
//! | [`fci`] | FCI framing (netlink header + `u16 fcode` + `u16 length` + ≤ 256 B) and a [`fci::Transport`] that numbers requests, matches replies by sequence number, pipelines, and times out instead of blocking forever. It is generic over [`fci::DatagramSocket`]: the netlink socket of `fci.ko` ([`fci::NetlinkFf`]) or one end of a socket pair ([`fci::PairSocket`]). |
//! | [`ioctl`], [`raw`], [`device`] | `/dev/cdx_ctrl`: request numbers, `#[repr(C)]` argument structs with layout assertions, and [`device::CdxDevice`], the safe owner of the fd. `device` is the only module with `unsafe`. |
//! | [`sim`] | a software cdx: a pure, clock-free model ([`sim::Cdx`]) and a thread that serves it over socket pairs with the same framing as `fci.ko`, with fault injection. |
//!
//! This crate knows nothing about conntrack, flows or policy: it speaks cdx's language and
//! nothing else. Callers (the daemon's offload worker) translate their domain into
//! [`fpp`] values.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)
)]

#[macro_use]
mod macros;

pub mod device;
pub mod fci;
pub mod fpp;
pub mod ioctl;
pub mod raw;
pub mod sim;
