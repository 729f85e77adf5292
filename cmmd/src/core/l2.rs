//! What lies under a route: bridges, VLANs and PPPoE sessions, as the fast path sees them.
//!
//! cdx forwards between the interfaces it knows: the FMan ports `dpa_app` configured (cmmd's
//! fast-path `ports`) and the VLAN interfaces and PPPoE sessions registered with it. The
//! kernel routes through logical interfaces: a bridge, a VLAN, a PPP link. This module maps one
//! to the other, for one direction of a connection at a time:
//!
//! - **egress** ([`Resolver::egress`]): the route's output and next hop give the interface cdx
//!   sends through and the MAC it sends to. A bridge is replaced by the member port its
//!   forwarding database puts the next hop's MAC behind (the vendor read it with a legacy
//!   ioctl; here it is mirrored from `AF_BRIDGE` neighbour dumps and events); a VLAN or a PPP
//!   link is its own output, once registered; a PPP link needs no MAC (cdx writes the
//!   session's). The MTU is the logical interface's (PPPoE's 1492).
//! - **ingress** ([`Resolver::ingress`]): the interface packets of the direction arrive on. A
//!   bridge is replaced by the member port: the kernel's `UNDERLYING_IIF` on ASK kernels when
//!   the caller has it, else the port the forwarding database puts the previous hop's MAC
//!   behind (the neighbour of the source side on the bridge).
//!
//! Whether an interface is one cdx knows is the caller's ([`ItfStatus`], from the engine's
//! registrations); what is missing is a [`PortError`]: a wait the network can end (a
//! neighbour, a forwarding entry) or a refusal with its reason.
//!
//! It also reads the kernel's PPPoE sessions ([`parse_proc_pppoe`]) and pairs each PPP link
//! with its session ([`session_of`]).

use std::net::IpAddr;

use crate::core::net::{IfName, Link, LinkKind, Mac, Neighbour, NetView, PppoeSession};
use crate::core::stats::Reason;

/// Whether cdx knows an interface, as the engine's registrations say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItfStatus {
    /// A fast-path port (an FMan port cdx knows from `dpa_app`).
    Port,
    /// A VLAN or PPPoE interface cdx holds as it is now.
    Registered,
    /// A VLAN or PPPoE interface cdx will know (being registered, refused and retried, or
    /// waiting for its session or its parent).
    Pending,
    /// Not an interface cdx can know (a veth, a VLAN on a non-fast-path port or against the
    /// VLAN policy, a PPP link of no PPPoE session on a fast-path port).
    Unusable,
}

/// Why a direction's port is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortError {
    /// Not yet: a neighbour or a forwarding entry may be learnt, a link may appear.
    Wait(Reason),
    /// Not now, for this reason (which may be one the network undoes: a link down, an
    /// interface not registered).
    Refuse(Reason),
}

/// Where a direction leaves: the interface cdx sends through, the MAC it sends to, the MTU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Egress {
    /// Interface index of the output cdx knows (a port, a bridge member, a VLAN, a PPP link).
    pub index: u32,
    /// Its name.
    pub name: IfName,
    /// The next hop's MAC (all zero when the output needs none).
    pub mac: Mac,
    /// The logical output's MTU.
    pub mtu: u32,
}

/// Where a direction enters: the interface cdx receives it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ingress {
    /// Interface index of the input cdx knows.
    pub index: u32,
    /// Its name.
    pub name: IfName,
}

/// Maps logical interfaces to the ones cdx knows, over a view of the kernel.
pub struct Resolver<'a> {
    /// The kernel's links, neighbours and forwarding entries.
    pub net: &'a NetView,
    /// Whether cdx knows a link.
    pub status: &'a dyn Fn(&Link) -> ItfStatus,
}

impl Resolver<'_> {
    /// The output of a direction routed out of `oif` towards `nexthop`.
    pub fn egress(&self, oif: u32, nexthop: IpAddr) -> Result<Egress, PortError> {
        let logical = self.up(oif)?;
        let mac = if logical.noarp || logical.kind == LinkKind::Ppp {
            Mac::default()
        } else {
            self.net
                .neighbour(oif, &nexthop)
                .and_then(Neighbour::valid_mac)
                .ok_or(PortError::Wait(Reason::NoNeighbour))?
        };
        let port = self.under_bridge(logical, mac)?;
        Ok(Egress { index: port.index, name: port.name, mac, mtu: logical.mtu })
    }

    /// The input of a direction that arrives on `iif` from `peer` (the source, or the
    /// gateway towards it). `underlying` is the kernel's own answer for a bridge
    /// (`UNDERLYING_IIF` on ASK kernels), used when it is a member of that bridge.
    pub fn ingress(
        &self,
        iif: u32,
        underlying: Option<u32>,
        peer: IpAddr,
    ) -> Result<Ingress, PortError> {
        let logical = self.up(iif)?;
        let port = match (logical.kind, underlying.and_then(|u| self.net.link(u))) {
            (LinkKind::Bridge, Some(member)) if member.master == logical.index => {
                self.known(member)?
            }
            (LinkKind::Bridge, _) => {
                let mac = self
                    .net
                    .neighbour(iif, &peer)
                    .and_then(Neighbour::valid_mac)
                    .ok_or(PortError::Wait(Reason::NoNeighbour))?;
                self.under_bridge(logical, mac)?
            }
            _ => self.known(logical)?,
        };
        Ok(Ingress { index: port.index, name: port.name })
    }

    /// The link `index`, if it exists and is up (a bridge is judged by its member).
    fn up(&self, index: u32) -> Result<&Link, PortError> {
        let link = self.net.link(index).ok_or(PortError::Wait(Reason::LinkDown))?;
        if link.kind != LinkKind::Bridge && (self.status)(link) == ItfStatus::Unusable {
            return Err(PortError::Refuse(Reason::NotFastpathPort));
        }
        if !link.up {
            return Err(PortError::Refuse(Reason::LinkDown));
        }
        Ok(link)
    }

    /// `link` itself, or for a bridge the member `mac` is behind; cdx must know it.
    fn under_bridge<'l>(&'l self, link: &'l Link, mac: Mac) -> Result<&'l Link, PortError> {
        if link.kind != LinkKind::Bridge {
            return self.known(link);
        }
        let member = self
            .net
            .bridge_port(link.index, mac)
            .and_then(|port| self.net.link(port))
            .filter(|port| port.master == link.index)
            .ok_or(PortError::Wait(Reason::NoBridgePort))?;
        self.known(member)
    }

    /// `link`, if it is up and cdx knows it.
    fn known<'l>(&self, link: &'l Link) -> Result<&'l Link, PortError> {
        match (self.status)(link) {
            ItfStatus::Unusable => Err(PortError::Refuse(Reason::NotFastpathPort)),
            _ if !link.up => Err(PortError::Refuse(Reason::LinkDown)),
            ItfStatus::Port | ItfStatus::Registered => Ok(link),
            ItfStatus::Pending => Err(PortError::Refuse(Reason::InterfaceUnregistered)),
        }
    }
}

/// The kernel's PPPoE sessions from the text of `/proc/net/pppoe`. Two layouts exist: stock
/// kernels print `%08X %pM %8s` (the session id as stored, in network order, read as a host
/// integer: session 1 is `00000100` on little-endian machines) under `Id Address Device`;
/// ASK kernels print `%04X %pM %-10s %-10s %d` (the id in host order, then the PPP device and
/// its unit) under `Id Address Device PPPDevice Unit`. Lines that are neither are skipped.
pub fn parse_proc_pppoe(text: &str) -> Vec<PppoeSession> {
    text.lines().filter_map(parse_session).collect()
}

fn parse_session(line: &str) -> Option<PppoeSession> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (id, mac, device, ppp) = match words.as_slice() {
        [id, mac, device] => (u16::from_be(u16::try_from(hex(id)?).ok()?), *mac, *device, None),
        [id, mac, device, ppp, unit] if unit.parse::<u32>().is_ok() => {
            (u16::try_from(hex(id)?).ok()?, *mac, *device, Some(IfName::new(ppp)?))
        }
        _ => return None,
    };
    Some(PppoeSession { id, peer: parse_mac(mac)?, device: IfName::new(device)?, ppp })
}

fn hex(word: &str) -> Option<u32> {
    u32::from_str_radix(word, 16).ok()
}

/// A MAC address in the kernel's `%pM` notation (six colon-separated hex bytes).
pub fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().filter(|p| p.len() == 2)?;
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(Mac(mac))
}

/// The PPPoE session of the PPP link `ppp`: the session the kernel names it in (ASK
/// kernels); on stock kernels, which do not name it, the only session that names no PPP
/// link, if `ppp` is the only PPP link no session names. With several unnamed sessions the
/// pairing is unknown, and none is given.
pub fn session_of<'a>(net: &'a NetView, ppp: &Link) -> Option<&'a PppoeSession> {
    let sessions = net.pppoe_sessions();
    if let Some(named) = sessions.iter().find(|s| s.ppp == Some(ppp.name)) {
        return Some(named);
    }
    let mut unnamed = sessions.iter().filter(|s| s.ppp.is_none());
    let (Some(only), None) = (unnamed.next(), unnamed.next()) else { return None };
    let mut unpaired = net
        .links()
        .filter(|l| l.kind == LinkKind::Ppp && !sessions.iter().any(|s| s.ppp == Some(l.name)));
    match (unpaired.next(), unpaired.next()) {
        (Some(link), None) if link.index == ppp.index => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::net::{FdbEntry, nud};

    fn name(n: &str) -> IfName {
        IfName::new(n).unwrap()
    }

    fn link(index: u32, n: &str, kind: LinkKind, master: u32) -> Link {
        Link { kind, master, ..Link::plain(index, name(n), true, 1500) }
    }

    const CLIENT_MAC: Mac = Mac([2, 0, 0, 0, 0, 2]);
    const GATEWAY_MAC: Mac = Mac([2, 0, 0, 0, 0, 9]);

    /// br0 (1) over ports p1 (2) and p2 (3), VLAN p3.100 (5) on p3 (4), ppp0 (6), veth9 (7).
    fn view() -> NetView {
        let mut net = NetView::default();
        for l in [
            link(1, "br0", LinkKind::Bridge, 0),
            link(2, "p1", LinkKind::Plain, 1),
            link(3, "p2", LinkKind::Plain, 1),
            link(4, "p3", LinkKind::Plain, 0),
            link(5, "p3.100", LinkKind::Vlan { id: 100, parent: 4 }, 0),
            Link { mtu: 1492, noarp: true, ..link(6, "ppp0", LinkKind::Ppp, 0) },
            link(7, "veth9", LinkKind::Plain, 0),
        ] {
            net.upsert_link(l);
        }
        for (ifindex, addr, mac) in [
            (1, "10.1.0.2", CLIENT_MAC),
            (5, "10.2.0.254", GATEWAY_MAC),
            (7, "10.9.0.1", CLIENT_MAC),
        ] {
            net.upsert_neighbour(Neighbour {
                ifindex,
                addr: addr.parse().unwrap(),
                mac: Some(mac),
                state: nud::REACHABLE,
            });
        }
        net
    }

    fn status(link: &Link) -> ItfStatus {
        match link.name.as_str() {
            "p1" | "p2" | "p3" => ItfStatus::Port,
            "p3.100" => ItfStatus::Registered,
            "ppp0" => ItfStatus::Pending,
            _ => ItfStatus::Unusable,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_bridge_egress_is_the_member_its_fdb_puts_the_next_hop_behind() {
        let mut net = view();
        let r = Resolver { net: &net, status: &status };
        assert_eq!(
            r.egress(1, ip("10.1.0.2")),
            Err(PortError::Wait(Reason::NoBridgePort)),
            "no forwarding entry yet"
        );
        net.upsert_fdb(FdbEntry { bridge: 1, port: 3, mac: CLIENT_MAC });
        let r = Resolver { net: &net, status: &status };
        let egress = r.egress(1, ip("10.1.0.2")).unwrap();
        assert_eq!((egress.index, egress.name, egress.mac), (3, name("p2"), CLIENT_MAC));
        assert_eq!(r.egress(1, ip("10.1.0.3")), Err(PortError::Wait(Reason::NoNeighbour)));
        // The port left the bridge: its entry no longer counts.
        net.upsert_link(link(3, "p2", LinkKind::Plain, 0));
        let r = Resolver { net: &net, status: &status };
        assert_eq!(r.egress(1, ip("10.1.0.2")), Err(PortError::Wait(Reason::NoBridgePort)));
    }

    #[test]
    fn a_bridge_ingress_is_the_kernels_underlying_port_or_the_fdb_port_of_the_peer() {
        let mut net = view();
        net.upsert_fdb(FdbEntry { bridge: 1, port: 2, mac: CLIENT_MAC });
        let r = Resolver { net: &net, status: &status };
        assert_eq!(r.ingress(1, None, ip("10.1.0.2")).unwrap().name, name("p1"));
        assert_eq!(r.ingress(1, Some(3), ip("10.1.0.2")).unwrap().name, name("p2"), "ASK");
        assert_eq!(
            r.ingress(1, Some(4), ip("10.1.0.2")).unwrap().name,
            name("p1"),
            "an underlying port that is not a member is not believed"
        );
        assert_eq!(r.ingress(1, None, ip("10.1.0.7")), Err(PortError::Wait(Reason::NoNeighbour)));
    }

    #[test]
    fn vlans_and_ppp_links_are_their_own_ports_once_cdx_knows_them() {
        let net = view();
        let r = Resolver { net: &net, status: &status };
        let vlan = r.egress(5, ip("10.2.0.254")).unwrap();
        assert_eq!((vlan.name, vlan.mac, vlan.mtu), (name("p3.100"), GATEWAY_MAC, 1500));
        assert_eq!(r.ingress(5, None, ip("10.2.0.254")).unwrap().name, name("p3.100"));
        assert_eq!(
            r.egress(6, ip("10.64.0.1")),
            Err(PortError::Refuse(Reason::InterfaceUnregistered)),
            "no MAC needed, but not registered yet"
        );
        let registered = |l: &Link| {
            if l.name == name("ppp0") { ItfStatus::Registered } else { status(l) }
        };
        let r = Resolver { net: &net, status: &registered };
        let ppp = r.egress(6, ip("10.64.0.1")).unwrap();
        assert_eq!((ppp.name, ppp.mac, ppp.mtu), (name("ppp0"), Mac::default(), 1492));
        assert_eq!(r.egress(7, ip("10.9.0.1")), Err(PortError::Refuse(Reason::NotFastpathPort)));
        assert_eq!(r.egress(99, ip("10.9.0.1")), Err(PortError::Wait(Reason::LinkDown)));
    }

    #[test]
    fn both_layouts_of_proc_net_pppoe() {
        let stock = "Id       Address              Device\n00000100 5A:1B:2C:3D:4E:5F   r1.100\n";
        let one = u16::from_be(0x0100);
        assert_eq!(
            parse_proc_pppoe(stock),
            vec![PppoeSession {
                id: if cfg!(target_endian = "little") { 1 } else { one },
                peer: Mac([0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]),
                device: name("r1.100"),
                ppp: None
            }]
        );
        let ask = "Id   Address           Device     PPPDevice  Unit\n\
                   002A 02:00:00:00:00:01 eth0.7     ppp3       3\n\
                   garbage line\n00ZZ 02:00:00:00:00:01 eth0 ppp1 1\n";
        assert_eq!(
            parse_proc_pppoe(ask),
            vec![PppoeSession {
                id: 42,
                peer: Mac([2, 0, 0, 0, 0, 1]),
                device: name("eth0.7"),
                ppp: Some(name("ppp3"))
            }]
        );
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:01:02"), None);
    }

    #[test]
    fn stock_sessions_pair_with_a_ppp_link_only_when_unambiguous() {
        let mut net = view();
        let session = |id, ppp: Option<&str>| PppoeSession {
            id,
            peer: GATEWAY_MAC,
            device: name("p3.100"),
            ppp: ppp.map(name),
        };
        net.set_pppoe_sessions(vec![session(7, None)]);
        let ppp0 = *net.link(6).unwrap();
        assert_eq!(session_of(&net, &ppp0).map(|s| s.id), Some(7));
        net.upsert_link(link(8, "ppp1", LinkKind::Ppp, 0));
        assert_eq!(session_of(&net, &ppp0), None, "two PPP links, one unnamed session");
        net.set_pppoe_sessions(vec![session(7, None), session(8, Some("ppp1"))]);
        assert_eq!(session_of(&net, &ppp0).map(|s| s.id), Some(7), "ppp1 is named");
        let ppp1 = *net.link(8).unwrap();
        assert_eq!(session_of(&net, &ppp1).map(|s| s.id), Some(8));
    }
}
