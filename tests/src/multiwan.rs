//! A router with two uplinks chosen by policy routing, the multi-WAN shape of many gateways:
//! the kernel picks the egress by the packet's source address or mark (`ip rule`), not by its
//! destination alone.
//!
//! ```text
//!                                     r1 ── s0 10.2.0.2   (wan1, main table: default)
//!  client c0 ── r0 router 10.1.0.1 ─┤                      server, service 192.0.2.1 /
//!  10.1.0.2, 10.1.0.3                 r2 ── s1 10.3.0.2   (wan2, table 100)   2001:db8::1
//!  fd01::2, fd01::3
//! ```
//!
//! Rules in the router: `from 10.1.0.3` (`fd01::3`) and `fwmark 0x10` look up table 100, whose
//! default route leaves through `r2`; everything else takes the main table's default through
//! `r1`. Both tables route the client subnet to `r0`. nftables marks the client's packets to
//! [`MARKED_PORT`] with [`WAN2_MARK`] (packet and conntrack mark, restored from the conntrack
//! mark for later packets, the usual connmark pattern) and masquerades on both uplinks. The
//! server answers on both links; its service address sits on its loopback.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::netns::Netns;
use crate::topology::ROUTER_SYSCTLS;

/// The client's usual address (routed through wan1).
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
/// The client's second address, which a source rule sends through wan2.
pub const CLIENT_WAN2_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 3);
/// The client's usual IPv6 address.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 2);
/// The client's second IPv6 address (source rule to wan2).
pub const CLIENT_WAN2_V6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 3);
/// The service behind both uplinks.
pub const SERVICE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The service's IPv6 address.
pub const SERVICE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The service port.
pub const SERVICE_PORT: u16 = 80;
/// A second service port whose flows the router marks with [`WAN2_MARK`].
pub const MARKED_PORT: u16 = 8443;
/// The mark a rule sends through wan2.
pub const WAN2_MARK: u32 = 0x10;
/// The routing table of wan2.
pub const WAN2_TABLE: &str = "100";

const RULESET: &str = r#"
table inet cmmd_multiwan {
    chain mark_in {
        type filter hook prerouting priority mangle;
        meta mark set ct mark
        iifname "r0" ct state new tcp dport 8443 meta mark set 0x10 ct mark set meta mark
    }
    chain masquerade_out {
        type nat hook postrouting priority srcnat;
        oifname { "r1", "r2" } masquerade
    }
}
"#;

/// Client, router and server namespaces of the multi-WAN shape; removed on drop.
#[derive(Debug)]
pub struct MultiWan {
    /// Where connections start (two addresses per family).
    pub client: Netns,
    /// The router with the two uplinks and the rules.
    pub router: Netns,
    /// The server, reachable through both uplinks.
    pub server: Netns,
}

impl MultiWan {
    /// Builds it (a few dozen `ip`/`nft`/`sysctl` calls).
    pub fn new() -> io::Result<Self> {
        let topology = Self {
            client: Netns::new("mwc")?,
            router: Netns::new("mwr")?,
            server: Netns::new("mws")?,
        };
        let (client, router, server) = (&topology.client, &topology.router, &topology.server);
        client.veth("c0", router, "r0")?;
        server.veth("s0", router, "r1")?;
        server.veth("s1", router, "r2")?;
        for (netns, device, addrs) in [
            (client, "c0", &["10.1.0.2/24", "10.1.0.3/24", "fd01::2/64", "fd01::3/64"][..]),
            (router, "r0", &["10.1.0.1/24", "fd01::1/64"]),
            (router, "r1", &["10.2.0.100/24", "fd02::100/64"]),
            (router, "r2", &["10.3.0.100/24", "fd03::100/64"]),
            (server, "s0", &["10.2.0.2/24", "fd02::2/64"]),
            (server, "s1", &["10.3.0.2/24", "fd03::2/64"]),
            (server, "lo", &["192.0.2.1/32", "2001:db8::1/128"]),
        ] {
            for addr in addrs {
                let mut args = vec!["addr", "add", addr, "dev", device];
                if addr.contains(':') {
                    args.push("nodad");
                }
                netns.ip(&args)?;
            }
            netns.ip(&["link", "set", device, "up"])?;
        }
        client.ip(&["route", "add", "default", "via", "10.1.0.1"])?;
        client.ip(&["-6", "route", "add", "default", "via", "fd01::1"])?;
        for (family, wan1, wan2, lan) in [
            ("-4", "10.2.0.2", "10.3.0.2", "10.1.0.0/24"),
            ("-6", "fd02::2", "fd03::2", "fd01::/64"),
        ] {
            router.ip(&[family, "route", "add", "default", "via", wan1, "dev", "r1"])?;
            router.ip(&[
                family, "route", "add", "default", "via", wan2, "dev", "r2", "table", WAN2_TABLE,
            ])?;
            router.ip(&[family, "route", "add", lan, "dev", "r0", "table", WAN2_TABLE])?;
            router.ip(&[family, "rule", "add", "fwmark", "0x10", "lookup", WAN2_TABLE])?;
        }
        router.ip(&["-4", "rule", "add", "from", "10.1.0.3", "lookup", WAN2_TABLE])?;
        router.ip(&["-6", "rule", "add", "from", "fd01::3", "lookup", WAN2_TABLE])?;
        router.sysctl(ROUTER_SYSCTLS)?;
        router.nft(RULESET)?;
        Ok(topology)
    }

    /// The service's address in the family of `ipv6`.
    pub fn service(ipv6: bool, port: u16) -> SocketAddr {
        let ip: IpAddr = if ipv6 { SERVICE_V6.into() } else { SERVICE_V4.into() };
        SocketAddr::new(ip, port)
    }

    /// The client's address that a source rule sends through wan2 (`wan2`) or its usual one.
    pub fn client_addr(ipv6: bool, wan2: bool) -> IpAddr {
        match (ipv6, wan2) {
            (false, false) => CLIENT_V4.into(),
            (false, true) => CLIENT_WAN2_V4.into(),
            (true, false) => CLIENT_V6.into(),
            (true, true) => CLIENT_WAN2_V6.into(),
        }
    }

    /// Bytes sent so far by `device` in the router (`/sys/class/net/DEV/statistics`).
    pub fn tx_bytes(&self, device: &str) -> io::Result<u64> {
        let text =
            self.router.exec("cat", &[&format!("/sys/class/net/{device}/statistics/tx_bytes")])?;
        text.trim()
            .parse()
            .map_err(|error| io::Error::other(format!("tx_bytes of {device}: {error}")))
    }

    /// The output device the router's kernel picks for a forwarded packet:
    /// `ip route get DST from SRC iif IIF mark MARK`.
    pub fn kernel_egress(
        &self,
        dst: IpAddr,
        src: IpAddr,
        iif: &str,
        mark: u32,
    ) -> io::Result<String> {
        let (dst, src, mark) = (dst.to_string(), src.to_string(), format!("{mark:#x}"));
        let out =
            self.router.ip(&["route", "get", &dst, "from", &src, "iif", iif, "mark", &mark])?;
        out.split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .map(str::to_string)
            .ok_or_else(|| io::Error::other(format!("no device in `{out}`")))
    }
}
