//! A mirror of the kernel's links, local addresses, neighbours, bridge forwarding entries and
//! PPPoE sessions.
//!
//! Filled from rtnetlink dumps and kept current by rtnetlink events (the daemon decodes the
//! messages; this module only stores the facts); the PPPoE sessions come from
//! `/proc/net/pppoe`, read by the daemon ([`crate::core::l2::parse_proc_pppoe`]). The engine
//! reads it to decide whether a connection is local, whether its ports are fast-path ports,
//! which MAC address its next hop has and, through [`crate::core::l2`], which bridge member,
//! VLAN or PPPoE session a direction uses. Every update reports what changed so the engine can
//! re-program exactly the flows that depend on it.

use hashbrown::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

/// An interface name as cdx wants it: at most 15 bytes, NUL padded to 16.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
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

/// What kind of interface a link is, as far as the fast path cares (`IFLA_LINKINFO`'s kind,
/// and the link type for PPP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// An Ethernet port, a veth, or any kind the fast path treats as a plain port.
    #[default]
    Plain,
    /// A Linux bridge (kind `bridge`).
    Bridge,
    /// An 802.1Q VLAN (kind `vlan`) on `parent` (`IFLA_LINK`).
    Vlan {
        /// The VLAN id.
        id: u16,
        /// The parent's interface index.
        parent: u32,
    },
    /// A PPP interface (link type `ARPHRD_PPP`), PPPoE when a session names it.
    Ppp,
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
    /// What kind of interface it is.
    pub kind: LinkKind,
    /// The bridge it is a port of (`IFLA_MASTER`; 0: none).
    pub master: u32,
    /// Its own MAC address (`IFLA_ADDRESS`), when it has a 6-byte one.
    pub mac: Option<Mac>,
}

impl Link {
    /// A plain, up-or-down port with no master and no MAC (tests and benches build links so).
    pub fn plain(index: u32, name: IfName, up: bool, mtu: u32) -> Link {
        Link { index, name, up, mtu, noarp: false, kind: LinkKind::Plain, master: 0, mac: None }
    }
}

/// A bridge forwarding entry (an `AF_BRIDGE` neighbour): the bridge port a MAC address was
/// learnt on (or configured on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    /// The bridge (`NDA_MASTER`).
    pub bridge: u32,
    /// The bridge port (the message's interface index).
    pub port: u32,
    /// The MAC address.
    pub mac: Mac,
}

/// One kernel PPPoE session (a line of `/proc/net/pppoe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PppoeSession {
    /// The session id.
    pub id: u16,
    /// The peer's (the access concentrator's) MAC address.
    pub peer: Mac,
    /// The interface the session runs on.
    pub device: IfName,
    /// The PPP interface, when the kernel names it (ASK kernels); stock kernels do not.
    pub ppp: Option<IfName>,
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
    /// Its kind, bridge or parent changed (a port left or joined a bridge).
    pub layer2_changed: bool,
    /// It was a bridge port and no longer is (or is another bridge's).
    pub left_bridge: bool,
}

impl LinkChange {
    /// True if flows using this link may need attention.
    pub fn affects_flows(&self) -> bool {
        self.went_down || self.came_up || self.mtu_changed || self.renamed || self.layer2_changed
    }
}

/// The mirrored view.
#[derive(Debug, Default)]
pub struct NetView {
    links: HashMap<u32, Link>,
    local: HashMap<IpAddr, u32>,
    neighbours: HashMap<(u32, IpAddr), Neighbour>,
    fastpath: HashSet<IfName>,
    /// Bridge forwarding entries: (bridge, MAC) to the port.
    fdb: HashMap<(u32, Mac), u32>,
    /// Kernel PPPoE sessions, as last read.
    pppoe: Vec<PppoeSession>,
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
                layer2_changed: old.kind != link.kind || old.master != link.master,
                left_bridge: old.master != 0 && old.master != link.master,
            },
        }
    }

    /// Forget a link and everything attached to it.
    pub fn remove_link(&mut self, index: u32) -> Option<Link> {
        self.neighbours.retain(|(i, _), _| *i != index);
        self.local.retain(|_, i| *i != index);
        self.fdb.retain(|(bridge, _), port| *bridge != index && *port != index);
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

    /// True if `name` is one of the configured fast-path ports.
    pub fn is_fastpath_name(&self, name: &IfName) -> bool {
        self.fastpath.contains(name)
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

    /// Insert or replace a bridge forwarding entry; returns the port it was on before.
    pub fn upsert_fdb(&mut self, entry: FdbEntry) -> Option<u32> {
        self.fdb.insert((entry.bridge, entry.mac), entry.port)
    }

    /// Forget a bridge forwarding entry, if it is still on `entry.port`; returns whether it
    /// was.
    pub fn remove_fdb(&mut self, entry: FdbEntry) -> bool {
        let key = (entry.bridge, entry.mac);
        if self.fdb.get(&key) == Some(&entry.port) {
            self.fdb.remove(&key);
            return true;
        }
        false
    }

    /// The port of `bridge` that `mac` is behind.
    pub fn bridge_port(&self, bridge: u32, mac: Mac) -> Option<u32> {
        self.fdb.get(&(bridge, mac)).copied()
    }

    /// Every bridge forwarding entry, in no particular order.
    pub fn fdb(&self) -> impl Iterator<Item = FdbEntry> + '_ {
        self.fdb.iter().map(|(&(bridge, mac), &port)| FdbEntry { bridge, port, mac })
    }

    /// Replace the kernel's PPPoE sessions; returns whether they changed.
    pub fn set_pppoe_sessions(&mut self, mut sessions: Vec<PppoeSession>) -> bool {
        sessions.sort_unstable_by_key(|s| (s.device.as_str().to_owned(), s.id));
        sessions.dedup();
        if sessions == self.pppoe {
            return false;
        }
        self.pppoe = sessions;
        true
    }

    /// The kernel's PPPoE sessions, as last read.
    pub fn pppoe_sessions(&self) -> &[PppoeSession] {
        &self.pppoe
    }

    /// Drop everything learnt from the kernel (before a re-dump), keeping the configuration
    /// (and the PPPoE sessions, which come from `/proc/net/pppoe`, not from the dump).
    pub fn clear(&mut self) {
        self.links.clear();
        self.local.clear();
        self.neighbours.clear();
        self.fdb.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, up: bool, mtu: u32) -> Link {
        Link::plain(index, IfName::new(name).unwrap(), up, mtu)
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
        let enslaved = v.upsert_link(Link { master: 9, ..link(2, "eth0", true, 9000) });
        assert!(enslaved.layer2_changed && enslaved.affects_flows(), "joined a bridge");
        assert!(!enslaved.left_bridge);
        assert!(v.upsert_link(link(2, "eth0", true, 9000)).left_bridge);
    }

    #[test]
    fn fdb_entries_move_and_leave_with_their_port_or_bridge() {
        let mut v = NetView::default();
        let mac = Mac([2, 0, 0, 0, 0, 7]);
        let entry = |port| FdbEntry { bridge: 10, port, mac };
        assert_eq!(v.upsert_fdb(entry(11)), None);
        assert_eq!(v.upsert_fdb(entry(12)), Some(11), "moved to port 12");
        assert!(!v.remove_fdb(entry(11)), "a late delete of the old port changes nothing");
        assert_eq!(v.bridge_port(10, mac), Some(12));
        v.remove_link(12);
        assert_eq!(v.bridge_port(10, mac), None, "gone with its port");
        v.upsert_fdb(entry(11));
        v.remove_link(10);
        assert_eq!(v.fdb().count(), 0, "gone with its bridge");
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
