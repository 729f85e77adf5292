//! An ISP-style WAN in namespaces: the router reaches the server through a PPPoE session carried
//! on an 802.1Q VLAN, and masquerades the client behind it. It needs a kernel with `8021q`,
//! `pppoe` and `ppp_async`, so it runs inside the test VM ([`crate::vm`]), not on the CI host.
//!
//! ```text
//!  client c0 ── r0 router r1 ══ VLAN 100 ══ s0 server (the access concentrator)
//!  10.1.0.2    10.1.0.1    r1.100      s0.100
//!                          ppp0 10.64.0.2 ⇄ 10.64.0.1 ppp0 (pppoe-server's pppd)
//!                                                   10.2.0.2 the service address (on lo)
//! ```
//!
//! The router runs `pppd` with the `rp-pppoe.so` plugin on `r1.100` (kernel-mode PPPoE, so the
//! session is in the router's `/proc/net/pppoe` and `ppp0`'s MTU is PPPoE's 1492), takes its
//! address from the server and its default route through `ppp0`. The server runs
//! `pppoe-server` on `s0.100` (user-mode PPPoE: `pppd` over a pty with `pppoe`), and answers
//! on [`SERVER_V4`]. The router forwards the client (`ct state`), masquerades what leaves through
//! `ppp0` and clamps the TCP MSS to the route's MTU ([`RULESET`]).
//!
//! Build it in steps ([`PppoeOverVlan::links`], [`PppoeOverVlan::start_pppoe`],
//! [`PppoeOverVlan::masquerade`]) to time them, or at once with [`PppoeOverVlan::new`].
//! Dropping it stops `pppd` and `pppoe-server` and removes the namespaces.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::{Netns, run};
use crate::topology::ROUTER_SYSCTLS;
use crate::traffic::wait_for;

/// The VLAN id of the WAN.
pub const VLAN_ID: u16 = 100;
/// The router's WAN port (the VLAN's parent).
pub const ROUTER_WAN_PORT: &str = "r1";
/// The router's VLAN device on [`ROUTER_WAN_PORT`].
pub const ROUTER_VLAN: &str = "r1.100";
/// The server's VLAN device.
pub const SERVER_VLAN: &str = "s0.100";
/// The router's PPP device.
pub const PPP_DEVICE: &str = "ppp0";
/// The router's PPP address (what masquerading rewrites the client's address to).
pub const ROUTER_PPP_V4: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 2);
/// The server's end of the PPP link.
pub const SERVER_PPP_V4: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
/// The server's service address, behind its PPP end.
pub const SERVER_V4: Ipv4Addr = crate::topology::SERVER_V4;
/// PPPoE's MTU: Ethernet's 1500 less the 6-byte PPPoE and 2-byte PPP headers.
pub const PPPOE_MTU: u32 = 1492;
/// Kernel modules the topology needs, loaded explicitly so that a missing one is named.
pub const MODULES: &[&str] =
    &["veth", "8021q", "ppp_generic", "pppoe", "ppp_async", "nf_conntrack"];

/// The router's nftables ruleset: forward the client, masquerade out of `ppp0`, clamp the MSS.
pub const RULESET: &str = r#"
table inet cmmd_wan {
    chain filter_forward {
        type filter hook forward priority filter; policy drop;
        tcp flags syn tcp option maxseg size set rt mtu
        ct state established,related accept
        iifname "r0" oifname "ppp0" ct state new accept
    }
    chain masquerade_out {
        type nat hook postrouting priority srcnat;
        oifname "ppp0" masquerade
    }
}
"#;

/// How long the PPPoE session may take to come up (discovery, LCP, IPCP; slow under TCG).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// The topology; see the module documentation.
#[derive(Debug)]
pub struct PppoeOverVlan {
    /// Where connections start.
    pub client: Netns,
    /// The router: VLAN, PPPoE client, masquerade, conntrack.
    pub router: Netns,
    /// The access concentrator and the service.
    pub server: Netns,
    pppd: Option<Child>,
    server_pidfile: Option<PathBuf>,
    logs: tempfile::TempDir,
}

/// One line of `/proc/net/pppoe`: a kernel PPPoE session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppoeSession {
    /// The session id.
    pub id: u16,
    /// The peer's (the concentrator's) MAC address, lower case with colons.
    pub peer: String,
    /// The Ethernet device the session runs on.
    pub device: String,
}

/// A device's counters from `/proc/net/dev`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

/// Loads [`MODULES`] (`modprobe -a`).
pub fn load_modules() -> io::Result<()> {
    let mut args = vec!["-a"];
    args.extend_from_slice(MODULES);
    run("modprobe", &args, None).map(drop)
}

/// The kernel PPPoE sessions of `netns` (`/proc/net/pppoe`).
pub fn pppoe_sessions(netns: &Netns) -> io::Result<Vec<PppoeSession>> {
    Ok(parse_pppoe_sessions(&netns.exec("cat", &["/proc/net/pppoe"])?))
}

/// Parses `/proc/net/pppoe` (`Id Address Device` header, then `%08X %pM %8s` lines). The
/// kernel prints the session id as it stores it, in network byte order read as a host integer
/// (session 1 is `00000100` on x86), so the id is converted back.
pub fn parse_pppoe_sessions(text: &str) -> Vec<PppoeSession> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = u16::from_be(u16::from_str_radix(words.next()?, 16).ok()?);
            let peer = words.next()?.to_ascii_lowercase();
            let device = words.next()?.to_owned();
            Some(PppoeSession { id, peer, device })
        })
        .collect()
}

/// The counters of `device` in `netns` (`/proc/net/dev`).
pub fn device_counters(netns: &Netns, device: &str) -> io::Result<DeviceCounters> {
    parse_device_counters(&netns.exec("cat", &["/proc/net/dev"])?, device).ok_or_else(|| {
        io::Error::other(format!("no {device} in /proc/net/dev of {}", netns.name()))
    })
}

/// Parses one device's line of `/proc/net/dev` (8 receive columns, then 8 transmit columns).
pub fn parse_device_counters(text: &str, device: &str) -> Option<DeviceCounters> {
    let line =
        text.lines().find_map(|line| line.trim_start().strip_prefix(device)?.strip_prefix(':'))?;
    let numbers: Vec<u64> =
        line.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    Some(DeviceCounters {
        rx_bytes: *numbers.first()?,
        rx_packets: *numbers.get(1)?,
        tx_bytes: *numbers.get(8)?,
        tx_packets: *numbers.get(9)?,
    })
}

/// The MAC address of `device` in `netns`, lower case with colons.
pub fn mac_address(netns: &Netns, device: &str) -> io::Result<String> {
    let text = netns.exec("cat", &[&format!("/sys/class/net/{device}/address")])?;
    Ok(text.trim().to_ascii_lowercase())
}

/// The MTU of `device` in `netns`.
pub fn mtu(netns: &Netns, device: &str) -> io::Result<u32> {
    let text = netns.exec("cat", &[&format!("/sys/class/net/{device}/mtu")])?;
    text.trim().parse().map_err(|e| io::Error::other(format!("mtu of {device}: {text:?}: {e}")))
}

impl PppoeOverVlan {
    /// The whole topology: links, the PPPoE session (waited for) and the router's ruleset.
    pub fn new() -> io::Result<Self> {
        let mut wan = Self::links()?;
        wan.start_pppoe()?;
        wan.masquerade()?;
        Ok(wan)
    }

    /// Namespaces, veth pairs, the VLAN on both WAN ends, LAN addresses and the router's
    /// sysctls. No PPPoE yet.
    pub fn links() -> io::Result<Self> {
        let wan = Self {
            client: Netns::new("vmc")?,
            router: Netns::new("vmr")?,
            server: Netns::new("vms")?,
            pppd: None,
            server_pidfile: None,
            logs: tempfile::Builder::new().prefix("cmmd-wan-").tempdir()?,
        };
        let (client, router, server) = (&wan.client, &wan.router, &wan.server);
        client.veth("c0", router, "r0")?;
        server.veth("s0", router, "r1")?;
        let id = VLAN_ID.to_string();
        router.ip(&[
            "link",
            "add",
            "link",
            "r1",
            "name",
            ROUTER_VLAN,
            "type",
            "vlan",
            "id",
            &id,
        ])?;
        server.ip(&[
            "link",
            "add",
            "link",
            "s0",
            "name",
            SERVER_VLAN,
            "type",
            "vlan",
            "id",
            &id,
        ])?;
        for (netns, device) in [
            (client, "c0"),
            (router, "r0"),
            (router, "r1"),
            (router, ROUTER_VLAN),
            (server, "s0"),
            (server, SERVER_VLAN),
        ] {
            netns.ip(&["link", "set", device, "up"])?;
        }
        client.ip(&["addr", "add", "10.1.0.2/24", "dev", "c0"])?;
        router.ip(&["addr", "add", "10.1.0.1/24", "dev", "r0"])?;
        client.ip(&["route", "add", "default", "via", "10.1.0.1"])?;
        server.ip(&["addr", "add", &format!("{SERVER_V4}/32"), "dev", "lo"])?;
        router.sysctl(ROUTER_SYSCTLS)?;
        Ok(wan)
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.logs.path().join(name)
    }

    /// What `pppd` and `pppoe-server` logged, for failure messages.
    pub fn logs(&self) -> String {
        ["pppd-router.log", "pppoe-server.log"]
            .iter()
            .map(|name| {
                format!(
                    "== {name}\n{}",
                    fs::read_to_string(self.log_path(name)).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Starts `pppoe-server` on the server's VLAN and `pppd` with the rp-pppoe plugin on the
    /// router's, and waits until `ppp0` has its address and the kernel lists the session.
    pub fn start_pppoe(&mut self) -> io::Result<PppoeSession> {
        let options = self.log_path("pppoe-server-options");
        // The server's pppd (started per session by pppoe-server): no authentication, the
        // addresses come from pppoe-server's -L and -R.
        fs::write(
            &options,
            format!(
                "noauth\nlcp-echo-interval 5\nlcp-echo-failure 3\nlogfile {}\n",
                self.log_path("pppoe-server.log").display()
            ),
        )?;
        let pidfile = self.log_path("pppoe-server.pid");
        self.server.exec(
            "pppoe-server",
            &[
                "-I",
                SERVER_VLAN,
                "-L",
                &SERVER_PPP_V4.to_string(),
                "-R",
                &ROUTER_PPP_V4.to_string(),
                "-N",
                "1",
                "-O",
                &options.to_string_lossy(),
                "-X",
                &pidfile.to_string_lossy(),
            ],
        )?;
        self.server_pidfile = Some(pidfile);
        let log = fs::File::create(self.log_path("pppd-router.log"))?;
        let nic = format!("nic-{ROUTER_VLAN}");
        let pppd = Command::new("ip")
            .args(["netns", "exec", self.router.name(), "pppd", "plugin", "rp-pppoe.so", &nic])
            .args([
                "unit",
                "0",
                "noauth",
                "noipdefault",
                "defaultroute",
                "nodetach",
                "maxfail",
                "1",
            ])
            .args(["lcp-echo-interval", "5", "lcp-echo-failure", "3", "logfd", "2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.pppd = Some(pppd);
        let router = &self.router;
        let up = wait_for(SESSION_TIMEOUT, Duration::from_millis(200), || {
            let addr = router.ip(&["-4", "addr", "show", "dev", PPP_DEVICE]).ok()?;
            if !addr.contains(&format!("inet {ROUTER_PPP_V4} peer {SERVER_PPP_V4}")) {
                return None;
            }
            pppoe_sessions(router).ok()?.into_iter().find(|s| s.device == ROUTER_VLAN)
        });
        up.ok_or_else(|| {
            io::Error::other(format!(
                "the PPPoE session did not come up within {SESSION_TIMEOUT:?}\n{}",
                self.logs()
            ))
        })
    }

    /// Loads [`RULESET`] into the router.
    pub fn masquerade(&self) -> io::Result<()> {
        self.router.nft(RULESET)
    }
}

impl Drop for PppoeOverVlan {
    fn drop(&mut self) {
        // Best effort, and never a panic: the router's pppd ends the session (PADT), then the
        // server stops; the namespaces go with their fields.
        if let Some(mut pppd) = self.pppd.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pppd.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
                pppd.try_wait().ok().flatten()
            });
            let _ = pppd.kill();
            let _ = pppd.wait();
        }
        if let Some(pid) = self
            .server_pidfile
            .as_ref()
            .and_then(|path| fs::read_to_string(path).ok())
            .and_then(|text| text.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_the_kernels_pppoe_session_list() {
        let text = "Id       Address              Device\n00000100 5A:1B:2C:3D:4E:5F   r1.100\n";
        assert_eq!(
            parse_pppoe_sessions(text),
            vec![PppoeSession { id: 1, peer: "5a:1b:2c:3d:4e:5f".into(), device: "r1.100".into() }]
        );
    }

    #[test]
    fn parses_one_devices_counters_and_not_its_vlans() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             r1: 9000 90 0 0 0 0 0 0 8000 80 0 0 0 0 0 0\nr1.100: 700 7 0 0 0 0 0 0 600 6 0 0 0 0 0 0\n";
        assert_eq!(
            parse_device_counters(text, "r1.100"),
            Some(DeviceCounters { rx_bytes: 700, rx_packets: 7, tx_bytes: 600, tx_packets: 6 })
        );
        assert_eq!(parse_device_counters(text, "r1").map(|c| c.tx_packets), Some(80));
        assert_eq!(parse_device_counters(text, "r2"), None);
    }
}
