//! A router whose LAN is a Linux bridge, as on a home or edge gateway: two hosts, each behind
//! its own bridge port, and a server behind the router's WAN port (masqueraded). It needs only
//! bridges and veth, so it runs on the CI host; inside the VM ([`crate::vm`]) the same LAN
//! fronts a VLAN or PPPoE WAN ([`crate::wan`]).
//!
//! ```text
//!  host a  a0 10.5.0.2 ── r0a ┐
//!                              br0 10.5.0.1  router  r1 10.2.0.100 ── s0 10.2.0.2 server
//!  host b  b0 10.5.0.3 ── r0b ┘
//! ```
//!
//! The router's fast-path ports are the bridge's members and the WAN port
//! ([`BridgedLan::PORTS`]); the bridge itself is not one. [`BridgedLan::move_host`] makes
//! host a's MAC address appear behind r0b, as a host moving to another switch port does: the
//! bridge learns it there, and its forwarding entry moves.

use std::io;

use crate::netns::Netns;
use crate::topology::{ROUTER_SYSCTLS, RULESET};

/// The LAN subnet's prefix length and the router's address on the bridge.
pub const ROUTER_LAN: &str = "10.5.0.1/24";
/// Host a's address.
pub const HOST_A: &str = "10.5.0.2";
/// Host b's address.
pub const HOST_B: &str = "10.5.0.3";

/// The topology; see the module documentation.
#[derive(Debug)]
pub struct BridgedLan {
    /// Host a, behind r0a.
    pub host_a: Netns,
    /// Host b, behind r0b.
    pub host_b: Netns,
    /// The router: br0 over r0a and r0b, r1 to the server, masquerade.
    pub router: Netns,
    /// The server, when the WAN is the plain port r1 (`None` when the caller builds its own).
    pub server: Option<Netns>,
}

impl BridgedLan {
    /// The router's fast-path ports with the plain WAN (`--ports`).
    pub const PORTS: &'static str = "r0a,r0b,r1";

    /// Hosts, the bridged LAN and the router with `ROUTER_SYSCTLS`; no WAN.
    pub fn lan_only(router: Netns) -> io::Result<Self> {
        let lan =
            Self { host_a: Netns::new("lna")?, host_b: Netns::new("lnb")?, router, server: None };
        lan.host_a.veth("a0", &lan.router, "r0a")?;
        lan.host_b.veth("b0", &lan.router, "r0b")?;
        let r = &lan.router;
        r.ip(&["link", "add", "br0", "type", "bridge"])?;
        for port in ["r0a", "r0b"] {
            r.ip(&["link", "set", port, "master", "br0"])?;
            r.ip(&["link", "set", port, "up"])?;
        }
        r.ip(&["addr", "add", ROUTER_LAN, "dev", "br0"])?;
        r.ip(&["link", "set", "br0", "up"])?;
        for (host, device, addr) in [(&lan.host_a, "a0", HOST_A), (&lan.host_b, "b0", HOST_B)] {
            host.ip(&["addr", "add", &format!("{addr}/24"), "dev", device])?;
            host.ip(&["link", "set", device, "up"])?;
            host.ip(&["route", "add", "default", "via", "10.5.0.1"])?;
        }
        r.sysctl(ROUTER_SYSCTLS)?;
        Ok(lan)
    }

    /// The whole topology with the plain WAN port r1 and the test router's ruleset.
    pub fn new() -> io::Result<Self> {
        let mut lan = Self::lan_only(Netns::new("lnr")?)?;
        let server = Netns::new("lns")?;
        server.veth("s0", &lan.router, "r1")?;
        lan.router.ip(&["addr", "add", "10.2.0.100/24", "dev", "r1"])?;
        lan.router.ip(&["link", "set", "r1", "up"])?;
        server.ip(&["addr", "add", "10.2.0.2/24", "dev", "s0"])?;
        server.ip(&["link", "set", "s0", "up"])?;
        server.ip(&["route", "add", "default", "via", "10.2.0.100"])?;
        lan.router.nft(RULESET)?;
        lan.server = Some(server);
        Ok(lan)
    }

    /// Host a's MAC address.
    pub fn host_a_mac(&self) -> io::Result<String> {
        crate::scenario::mac(&self.host_a, "a0")
    }

    /// Host a moves to r0b: its MAC and address now answer from behind host b's port (a
    /// macvlan of b0 with a's MAC and address, which pings the router), host a's own link is
    /// down, and the bridge learns the MAC behind r0b. Returns the MAC.
    pub fn move_host(&self) -> io::Result<String> {
        let mac = self.host_a_mac()?;
        self.host_a.ip(&["link", "set", "a0", "down"])?;
        let b = &self.host_b;
        b.ip(&["link", "add", "link", "b0", "name", "moved", "address", &mac, "type", "macvlan"])?;
        b.ip(&["addr", "add", &format!("{HOST_A}/32"), "dev", "moved"])?;
        b.ip(&["link", "set", "moved", "up"])?;
        b.exec("ping", &["-c", "1", "-W", "2", "-I", "moved", "10.5.0.1"])?;
        Ok(mac)
    }

    /// The bridge port the router's bridge has `mac` behind (`bridge fdb show`).
    pub fn fdb_port(&self, mac: &str) -> io::Result<Option<String>> {
        let text = self.router.exec("bridge", &["fdb", "show", "br", "br0"])?;
        Ok(text.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(mac) && words.next() == Some("dev"))
                .then(|| words.next().map(str::to_string))
                .flatten()
        }))
    }
}
