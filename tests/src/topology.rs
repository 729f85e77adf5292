//! The three-namespace topology the kernel tests run in: a client and a server joined through a
//! router that forwards, tracks, masquerades and port-forwards, over IPv4 and IPv6.
//!
//! ```text
//!  client c0 ── r0 router r1 ── s0 server
//!  10.1.0.2       10.1.0.1 | 10.2.0.100      10.2.0.2
//!  fd01::2        fd01::1  | fd02::100       fd02::2
//! ```
//!
//! The router's ruleset ([`RULESET`]) accepts `ct state established,related` and new flows,
//! masquerades what leaves towards the server (SNAT to 10.2.0.100 / fd02::100), port-forwards
//! its port 8080 to the server's port 80 (DNAT, not masqueraded), gives port 21 the FTP helper
//! and marks port 8443 with 0x4000. Accounting, timestamps and event delivery
//! (`nf_conntrack_events=1`) are on, and the TIME_WAIT and UDP timeouts are short so that
//! DESTROY events come within seconds.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::netns::Netns;

/// Client address, IPv4.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
/// Router address on the client side, IPv4 (the port-forward's public address).
pub const ROUTER_CLIENT_SIDE_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// Router address on the server side, IPv4 (what masquerading rewrites sources to).
pub const ROUTER_SERVER_SIDE_V4: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 100);
/// Server address, IPv4.
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
/// Client address, IPv6.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 2);
/// Router address on the client side, IPv6.
pub const ROUTER_CLIENT_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 1);
/// Router address on the server side, IPv6.
pub const ROUTER_SERVER_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 0x100);
/// Server address, IPv6.
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 2);

/// The router port that is forwarded to the server's [`SERVICE_PORT`].
pub const FORWARDED_PORT: u16 = 8080;
/// The server port behind the port-forward.
pub const SERVICE_PORT: u16 = 80;
/// A port the router gives the FTP helper.
pub const HELPER_PORT: u16 = 21;
/// A port whose flows the router marks with [`MARK`].
pub const MARKED_PORT: u16 = 8443;
/// The mark of flows to [`MARKED_PORT`] (the value CNI plugins such as kube-proxy use).
pub const MARK: u32 = 0x4000;

/// The router's nftables ruleset (`router.nft`, which `conntrack/fixtures/capture-session.sh`
/// loads too).
pub const RULESET: &str = include_str!("router.nft");

/// Router sysctls: forwarding, counters, timestamps, events for every entry, short timeouts.
pub const ROUTER_SYSCTLS: &[&str] = &[
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.forwarding=1",
    "net.netfilter.nf_conntrack_acct=1",
    "net.netfilter.nf_conntrack_timestamp=1",
    "net.netfilter.nf_conntrack_events=1",
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1",
    "net.netfilter.nf_conntrack_udp_timeout=1",
    "net.netfilter.nf_conntrack_udp_timeout_stream=2",
];

/// Client, router and server namespaces, wired and configured; removed on drop.
#[derive(Debug)]
pub struct Topology {
    /// Where connections start.
    pub client: Netns,
    /// Where they are tracked: subscribe and dump here.
    pub router: Netns,
    /// Where they end.
    pub server: Netns,
}

impl Topology {
    /// Builds the topology (about 20 `ip`/`nft`/`sysctl` calls, a fraction of a second).
    pub fn new() -> io::Result<Self> {
        let topology = Self {
            client: Netns::new("ctc")?,
            router: Netns::new("ctr")?,
            server: Netns::new("cts")?,
        };
        let (client, router, server) = (&topology.client, &topology.router, &topology.server);
        client.veth("c0", router, "r0")?;
        server.veth("s0", router, "r1")?;
        for (netns, device, v4, v6) in [
            (client, "c0", "10.1.0.2/24", "fd01::2/64"),
            (router, "r0", "10.1.0.1/24", "fd01::1/64"),
            (router, "r1", "10.2.0.100/24", "fd02::100/64"),
            (server, "s0", "10.2.0.2/24", "fd02::2/64"),
        ] {
            netns.ip(&["addr", "add", v4, "dev", device])?;
            netns.ip(&["addr", "add", v6, "dev", device, "nodad"])?;
            netns.ip(&["link", "set", device, "up"])?;
        }
        client.ip(&["route", "add", "default", "via", "10.1.0.1"])?;
        client.ip(&["-6", "route", "add", "default", "via", "fd01::1"])?;
        server.ip(&["route", "add", "default", "via", "10.2.0.100"])?;
        server.ip(&["-6", "route", "add", "default", "via", "fd02::100"])?;
        router.sysctl(ROUTER_SYSCTLS)?;
        router.nft(RULESET)?;
        Ok(topology)
    }

    /// The server's address in the family of `ipv6`.
    pub fn server_addr(ipv6: bool, port: u16) -> SocketAddr {
        let ip: IpAddr = if ipv6 { SERVER_V6.into() } else { SERVER_V4.into() };
        SocketAddr::new(ip, port)
    }

    /// The router's client-side address (the port-forward's public side).
    pub fn forward_addr(ipv6: bool) -> SocketAddr {
        let ip: IpAddr =
            if ipv6 { ROUTER_CLIENT_SIDE_V6.into() } else { ROUTER_CLIENT_SIDE_V4.into() };
        SocketAddr::new(ip, FORWARDED_PORT)
    }

    /// What masquerading rewrites the client's address to.
    pub fn masquerade_addr(ipv6: bool) -> IpAddr {
        if ipv6 { ROUTER_SERVER_SIDE_V6.into() } else { ROUTER_SERVER_SIDE_V4.into() }
    }
}
