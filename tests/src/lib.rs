//! Shared helpers of the integration tests: real kernel conntrack in network namespaces.
//!
//! - [`netns`]: namespaces that clean up after themselves, commands and code run inside them,
//!   [`require_root`].
//! - [`topology`]: client, router and server namespaces over IPv4 and IPv6, with the router's
//!   nftables ruleset (ct state, masquerade, a DNAT port-forward, a helper, a mark).
//! - [`traffic`]: TCP and UDP servers and clients that make real flows through the router.
//! - [`conntrack_cli`]: the `conntrack` tool as an independent witness (`-I`, `-L` parsed).
//! - [`daemon`]: the real `cmmd` process in a namespace, driven through `cmmd ctl`, and the
//!   software cdx as its own process (`cmmd sim serve`).
//! - [`vm`]: a command, or one integration test, run inside a QEMU VM booting Debian's kernel
//!   (802.1Q, PPP and PPPoE, which the CI host's kernel lacks), with the host's root shared.
//! - [`wan`]: the router's WAN as ISPs build it, a PPPoE session over an 802.1Q VLAN (in the VM).
//! - [`lan`]: the router's LAN as gateways build it, a bridge of two ports with a host behind each.

pub mod conntrack_cli;
pub mod ct_load; // bulk conntrack creation/deletion and an independent event counter
pub mod daemon;
pub mod http; // GET from inside a namespace; samples of a Prometheus exposition
pub mod lan; // a router whose LAN is a bridge of two ports, a host behind each, and a plain WAN
pub mod measure; // resident memory of a process, report lines of measured figures
pub mod multiwan; // a router whose egress policy rules choose by source and mark
pub mod netns;
pub mod scenario; // routers ready to offload injected entries, kernel and hardware sets, waits
pub mod sim_relay; // the software cdx in the test process, served to cmmd --sim-socket
pub mod telnet; // CLI clients: a raw TCP client that never negotiates, the real telnet under expect
pub mod topology;
pub mod traffic;
pub mod vm; // QEMU with Debian's kernel and the host's root: tests that need 8021q, ppp, pppoe
pub mod wan; // PPPoE over a VLAN between router and server namespaces, masquerade on ppp0

pub use netns::{Netns, require_root};
pub use topology::Topology;
