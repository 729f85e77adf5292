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
//! | [`detect`] | which ABI cdx speaks, from a command that changes nothing: the probe's bytes and the decision (sans-IO), and [`detect::detect`] over a transport. |
//! | [`sim`] | a software cdx: a pure, clock-free model ([`sim::Cdx`]) and a thread that serves it over socket pairs with the same framing as `fci.ko`, with fault injection. |
//!
//! This crate knows nothing about conntrack, flows or policy: it speaks cdx's language and
//! nothing else. Callers (the daemon's offload worker) translate their domain into
//! [`fpp`] values.
//!
//! # Example: a route registered in the software cdx, exactly as with `fci.ko`
//!
//! ```
//! use std::time::Duration;
//! use cdx_sys::fci::Transport;
//! use cdx_sys::fpp::{Action, FCode, IfName, ReturnCode, RouteCmd};
//! use cdx_sys::sim::{self, SimConfig};
//!
//! let config = SimConfig { interfaces: vec!["eth0".into(), "eth1".into()], ..SimConfig::default() };
//! let (sim, commands, _events) = sim::spawn(config)?;
//! let mut cdx = Transport::new(commands); // or Transport::new(NetlinkFf::command()?)
//! let (eth0, eth1) = (IfName::new("eth0")?, IfName::new("eth1")?);
//! let route = RouteCmd::new(Action::Register, 1, eth0, eth1, [2, 0, 0, 0, 0, 1], 1500);
//! let reply = cdx.call_payload(FCode::IpRoute, &route, Duration::from_secs(1))?;
//! assert_eq!(reply.rc, ReturnCode::Ok);
//! assert_eq!(sim.snapshot().route(1).map(|r| r.refcount), Some(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)
)]

#[macro_use]
mod macros;

pub mod detect;
pub mod device;
pub mod fci;
pub mod fpp;
pub mod ioctl;
pub mod raw;
pub mod sim;

#[cfg(test)]
mod tests {
    /// The types the daemon moves to its worker thread or shares are `Send`/`Sync`.
    #[test]
    fn thread_boundaries() {
        fn send<T: Send>() {}
        fn shared<T: Send + Sync + Clone>() {}
        send::<crate::fci::Transport<crate::fci::FciSocket>>();
        send::<crate::fci::Transport<crate::fci::PairSocket>>();
        send::<crate::fci::FciSocket>();
        send::<crate::fci::FciError>();
        send::<crate::device::CdxDevice>();
        shared::<crate::sim::SimHandle>();
    }
}
