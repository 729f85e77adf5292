//! A mirror of the kernel's links, local addresses and neighbours.
//!
//! Filled from rtnetlink dumps and kept current by rtnetlink events (the daemon decodes the
//! messages; this module only stores the facts). The engine reads it to decide whether a
//! connection is local, whether its ports are fast-path ports, and which MAC address its next
//! hop has. Every update reports what changed so the engine can re-program exactly the flows
//! that depend on it.

use hashbrown::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

/// An interface name as cdx wants it: at most 15 bytes, NUL padded to 16.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IfName([u8; 16]);

impl IfName {
    /// The name, or `None` if it is empty or longer than 15 bytes.
    pub fn new(name: &str) -> Option<IfName> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > 15 || bytes.contains(&0) {
            return None;
        }
        let mut raw = [0u8; 16];
        raw[..bytes.len()].copy_from_slice(bytes);
        Some(IfName(raw))
    }

    /// The NUL-padded bytes.
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(16);
        std::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

/// Neighbour (NUD) states, as in `<linux/neighbour.h>`.
pub mod nud {
    /// NUD_INCOMPLETE.
    pub const INCOMPLETE: u16 = 0x01;
    /// NUD_REACHABLE.
    pub const REACHABLE: u16 = 0x02;
    /// NUD_STALE.
    pub const STALE: u16 = 0x04;
    /// NUD_DELAY.
    pub const DELAY: u16 = 0x08;
    /// NUD_PROBE.
    pub const PROBE: u16 = 0x10;
    /// NUD_FAILED.
    pub const FAILED: u16 = 0x20;
    /// NUD_NOARP.
    pub const NOARP: u16 = 0x40;
    /// NUD_PERMANENT.
    pub const PERMANENT: u16 = 0x80;
    /// States in which the link-layer address may be used.
    pub const VALID: u16 = PERMANENT | NOARP | REACHABLE | PROBE | STALE | DELAY;
}

/// One network interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: IfName,
    /// Administratively and operationally up (IFF_UP and IFF_RUNNING or IFF_LOWER_UP).
    pub up: bool,
    /// MTU.
    pub mtu: u32,
    /// IFF_NOARP: next hops need no MAC address.
    pub noarp: bool,
}

/// One neighbour entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index.
    pub ifindex: u32,
    /// Protocol address.
    pub addr: IpAddr,
    /// Link-layer address, if the kernel knows one.
    pub mac: Option<Mac>,
    /// NUD state bits.
    pub state: u16,
}

impl Neighbour {
    /// The MAC address if the entry is in a usable state.
    pub fn valid_mac(&self) -> Option<Mac> {
        if self.state & nud::VALID != 0 { self.mac } else { None }
    }
}

/// What a link update changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkChange {
    /// The link was not known before.
    pub added: bool,
    /// It went down (or was removed).
    pub went_down: bool,
    /// It came up.
    pub came_up: bool,
    /// Its MTU changed.
    pub mtu_changed: bool,
    /// It was renamed.
    pub renamed: bool,
}

impl LinkChange {
    /// True if flows using this link may need attention.
    pub fn affects_flows(&self) -> bool {
        self.went_down || self.came_up || self.mtu_changed || self.renamed
    }
}

/// The mirrored view.
#[derive(Debug, Default)]
pub struct NetView {
    links: HashMap<u32, Link>,
    local: HashMap<IpAddr, u32>,
    neighbours: HashMap<(u32, IpAddr), Neighbour>,
    fastpath: HashSet<IfName>,
}

impl NetView {
    /// An empty view whose fast-path ports are the given interface names.
    pub fn new(fastpath_ports: impl IntoIterator<Item = IfName>) -> Self {
        NetView { fastpath: fastpath_ports.into_iter().collect(), ..NetView::default() }
    }

    /// Insert or replace a link; reports what changed.
    pub fn upsert_link(&mut self, link: Link) -> LinkChange {
        match self.links.insert(link.index, link) {
            None => LinkChange { added: true, came_up: link.up, ..LinkChange::default() },
            Some(old) => LinkChange {
                added: false,
                went_down: old.up && !link.up,
                came_up: !old.up && link.up,
                mtu_changed: old.mtu != link.mtu,
                renamed: old.name != link.name,
            },
        }
    }

    /// Forget a link and everything attached to it.
    pub fn remove_link(&mut self, index: u32) -> Option<Link> {
        self.neighbours.retain(|(i, _), _| *i != index);
        self.local.retain(|_, i| *i != index);
        self.links.remove(&index)
    }

    /// A link by index.
    pub fn link(&self, index: u32) -> Option<&Link> {
        self.links.get(&index)
    }

    /// A link by name.
    pub fn link_by_name(&self, name: &IfName) -> Option<&Link> {
        self.links.values().find(|l| &l.name == name)
    }

    /// All links, in no particular order.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    /// True if the link is one of the configured fast-path ports.
    pub fn is_fastpath(&self, link: &Link) -> bool {
        self.fastpath.contains(&link.name)
    }

    /// Record a local address on `ifindex`.
    pub fn add_address(&mut self, ifindex: u32, addr: IpAddr) {
        self.local.insert(addr, ifindex);
    }

    /// Forget a local address.
    pub fn remove_address(&mut self, addr: &IpAddr) {
        self.local.remove(addr);
    }

    /// True if `addr` is one of this host's addresses.
    pub fn is_local(&self, addr: &IpAddr) -> bool {
        self.local.contains_key(addr)
    }

    /// Insert or replace a neighbour; returns the previous entry.
    pub fn upsert_neighbour(&mut self, n: Neighbour) -> Option<Neighbour> {
        self.neighbours.insert((n.ifindex, n.addr), n)
    }

    /// Forget a neighbour; returns it.
    pub fn remove_neighbour(&mut self, ifindex: u32, addr: &IpAddr) -> Option<Neighbour> {
        self.neighbours.remove(&(ifindex, *addr))
    }

    /// The neighbour entry for `addr` on `ifindex`.
    pub fn neighbour(&self, ifindex: u32, addr: &IpAddr) -> Option<&Neighbour> {
        self.neighbours.get(&(ifindex, *addr))
    }

    /// All neighbours, in no particular order.
    pub fn neighbours(&self) -> impl Iterator<Item = &Neighbour> {
        self.neighbours.values()
    }

    /// Drop everything learnt from the kernel (before a re-dump), keeping the configuration.
    pub fn clear(&mut self) {
        self.links.clear();
        self.local.clear();
        self.neighbours.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, up: bool, mtu: u32) -> Link {
        Link { index, name: IfName::new(name).unwrap(), up, mtu, noarp: false }
    }

    #[test]
    fn ifname_bounds() {
        assert_eq!(IfName::new("eth0").unwrap().as_str(), "eth0");
        assert_eq!(IfName::new("fifteen-chars-x").unwrap().as_str(), "fifteen-chars-x");
        assert!(IfName::new("sixteen-chars-xx").is_none());
        assert!(IfName::new("").is_none());
    }

    #[test]
    fn link_changes_are_reported() {
        let mut v = NetView::new([IfName::new("eth0").unwrap()]);
        assert!(v.upsert_link(link(2, "eth0", true, 1500)).added);
        assert!(v.is_fastpath(v.link(2).unwrap()));
        let c = v.upsert_link(link(2, "eth0", false, 9000));
        assert!(c.went_down && c.mtu_changed && !c.came_up && !c.renamed);
        assert!(v.upsert_link(link(2, "eth0", true, 9000)).came_up);
        assert!(!v.upsert_link(link(2, "eth0", true, 9000)).affects_flows());
    }

    #[test]
    fn neighbour_validity_and_link_removal() {
        let mut v = NetView::default();
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        let mac = Some(Mac([2, 0, 0, 0, 0, 1]));
        v.upsert_neighbour(Neighbour { ifindex: 3, addr, mac, state: nud::STALE });
        assert_eq!(v.neighbour(3, &addr).unwrap().valid_mac(), mac);
        v.upsert_neighbour(Neighbour { ifindex: 3, addr, mac, state: nud::FAILED });
        assert_eq!(v.neighbour(3, &addr).unwrap().valid_mac(), None);
        v.add_address(3, "10.0.0.254".parse().unwrap());
        v.upsert_link(link(3, "eth1", true, 1500));
        v.remove_link(3);
        assert!(v.neighbour(3, &addr).is_none());
        assert!(!v.is_local(&"10.0.0.254".parse().unwrap()));
    }
}
