//! cdx's interface table and what bounds it: the slots of `gOnif_DB` (`layer2.c`), the
//! interface statistics each logical interface takes (`alloc_iface_stats`,
//! `cdx_ifstats.c`), and devman's device list (`dpa_add_port_to_list`,
//! `dpa_release_interface`, `devman.c`).
//!
//! - **Names and slots.** Every interface has a slot of the 255-slot `gOnif_DB`; FMan
//!   ports take the first ones at start, a VLAN or PPPoE session the lowest free one
//!   (`add_onif`). A child keeps a pointer to its parent's interface: when the parent is
//!   removed, the child stays with a pointer to freed memory, and a walk then reports as its
//!   parent whatever name the parent's slot holds now (`get_onif_name(itf.phys->index)`:
//!   empty once the slot is cleared, another interface's once it is reused).
//! - **Statistics.** Both builds give PPPoE sessions 4 statistics slots
//!   (`MAX_PPPoE_INTERFACES`) and every other interface, FMan ports included, the rest of
//!   128: 122 on NXP's cdx (the PPPoE slots are larger and take 6), 124 on the ASK port
//!   (which counts them, `iface_count`, `iface_pppoe_count`). A registration beyond them
//!   fails in `dpa_add_vlan_if` / `dpa_add_pppoe_if`: `ERR_CREATION_FAILED`.
//! - **NXP's leak.** devman's list is kept newest first; NXP's `dpa_release_interface`
//!   frees an interface's statistics only when it is the head of that list (the newest
//!   interface still listed) and otherwise unlinks it and keeps them. Each such removal
//!   loses a slot until the module is reloaded: after four removals of sessions that were
//!   not the newest interface, no PPPoE session registers again. The ASK port frees them.

use std::collections::{BTreeMap, BTreeSet};

use crate::fpp::{Abi, IfName};

/// `L2_MAX_ONIF` (`layer2.h`).
const MAX_ONIF: usize = 255;
/// `MAX_PPPoE_INTERFACES` (`cdx_common.h`, both builds).
pub(super) const MAX_PPPOE: usize = 4;

/// Statistics slots for interfaces other than PPPoE sessions (FMan ports included).
fn other_slots(build: Abi) -> usize {
    match build {
        // 128 − ⌈4 × 48 B / 32 B⌉ (`cdxdrv_init_stats`).
        Abi::Lsdk => 122,
        // `MAX_LOGICAL_INTERFACES − MAX_PPPoE_INTERFACES`.
        Abi::Ask => 124,
    }
}

/// `HASH_VLAN` (`control_vlan.h`) of an id as a command carries it: the bucket of cdx's
/// 64-bucket VLAN table.
pub(super) fn vlan_hash(id: u16) -> usize {
    usize::from(((id >> 12) ^ (id >> 8) ^ id) & 63)
}

/// Where a logical interface hangs: its parent's name and slot, and whether the parent was
/// removed under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Parent {
    /// The parent's name when the child was registered.
    pub(super) name: IfName,
    slot: usize,
    gone: bool,
}

/// A registered VLAN interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VlanIf {
    /// 802.1Q id as cdx keeps it (12 bits).
    pub(super) id: u16,
    /// The parent interface.
    pub(super) parent: Parent,
    /// The MAC the ASK port keeps (`vlan_info.mac_addr`, the source of the frames sent out
    /// of the VLAN); zero on NXP's cdx, whose command carries none.
    pub(super) mac: [u8; 6],
}

/// A registered PPPoE session (`PPPoE_Info`, `control_pppoe.h`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PppoeIf {
    /// Session id as the command carried it (cdx stores it in network order).
    pub(super) session: u16,
    /// The peer's MAC address: the destination of every packet routed out of it.
    pub(super) mac: [u8; 6],
    /// The interface the session runs on.
    pub(super) parent: Parent,
    /// The mode word.
    pub(super) mode: u16,
}

/// Why cdx could not add an interface (`ERR_CREATION_FAILED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TableFull;

/// cdx's interface table: the FMan ports dpa_app configured, and the VLAN interfaces and
/// PPPoE sessions registered over FCI.
#[derive(Clone, Debug)]
pub(super) struct Interfaces {
    build: Abi,
    pub(super) fman: BTreeSet<IfName>,
    pub(super) vlans: BTreeMap<IfName, VlanIf>,
    pub(super) pppoe: BTreeMap<IfName, PppoeIf>,
    /// `gOnif_DB`: the name in each used slot.
    slots: Vec<Option<IfName>>,
    /// devman's list of logical interfaces, oldest first (its head is the last).
    listed: Vec<IfName>,
    /// Statistics slots lost by NXP's `dpa_release_interface`, of other interfaces and of
    /// sessions.
    leaked_other: usize,
    leaked_sessions: usize,
}

impl Interfaces {
    /// A table holding `fman`, in their order, in its first slots.
    pub(super) fn new(build: Abi, fman: &[IfName]) -> Interfaces {
        let mut slots = Vec::new();
        for name in fman {
            if !slots.contains(&Some(*name)) && slots.len() < MAX_ONIF {
                slots.push(Some(*name));
            }
        }
        Interfaces {
            build,
            fman: slots.iter().flatten().copied().collect(),
            vlans: BTreeMap::new(),
            pppoe: BTreeMap::new(),
            slots,
            listed: Vec::new(),
            leaked_other: 0,
            leaked_sessions: 0,
        }
    }

    /// `get_onif_by_name` finds it.
    pub(super) fn known(&self, name: &IfName) -> bool {
        !name.is_empty()
            && (self.fman.contains(name)
                || self.vlans.contains_key(name)
                || self.pppoe.contains_key(name))
    }

    /// Takes a slot and the statistics for a new VLAN (`session` false) or PPPoE session
    /// named `name` on the known interface `parent` (`add_onif`, then `dpa_add_vlan_if` or
    /// `dpa_add_pppoe_if`); the caller then inserts it with the returned [`Parent`].
    pub(super) fn admit(
        &mut self,
        name: IfName,
        parent: IfName,
        session: bool,
    ) -> Result<Parent, TableFull> {
        let parent_slot = self.slot_of(&parent).ok_or(TableFull)?;
        let room = if session {
            self.pppoe.len() + self.leaked_sessions < MAX_PPPOE
        } else {
            self.fman.len() + self.vlans.len() + self.leaked_other < other_slots(self.build)
        };
        if !room {
            return Err(TableFull);
        }
        if let Some(free) = self.slots.iter_mut().find(|slot| slot.is_none()) {
            *free = Some(name);
        } else if self.slots.len() < MAX_ONIF {
            self.slots.push(Some(name));
        } else {
            return Err(TableFull);
        }
        self.listed.push(name);
        Ok(Parent { name: parent, slot: parent_slot, gone: false })
    }

    /// Forgets `name` (`remove_onif_by_index`: its slot cleared, `dpa_release_interface`).
    /// Its children keep a parent that is gone. Returns `true` when NXP's cdx lost its
    /// statistics slot.
    pub(super) fn remove(&mut self, name: &IfName) -> bool {
        let session = self.pppoe.remove(name).is_some();
        let vlan = self.vlans.remove(name).is_some();
        if !session && !vlan {
            return false;
        }
        if let Some(slot) = self.slots.iter_mut().find(|slot| slot.as_ref() == Some(name)) {
            *slot = None;
        }
        let head = self.listed.last() == Some(name);
        self.listed.retain(|listed| listed != name);
        let children = self.vlans.values_mut().map(|v| &mut v.parent);
        for parent in children.chain(self.pppoe.values_mut().map(|p| &mut p.parent)) {
            if parent.name == *name {
                parent.gone = true;
            }
        }
        let leaked = !head && self.build == Abi::Lsdk;
        if leaked && session {
            self.leaked_sessions += 1;
        } else if leaked {
            self.leaked_other += 1;
        }
        leaked
    }

    fn slot_of(&self, name: &IfName) -> Option<usize> {
        self.slots.iter().position(|slot| slot.as_ref() == Some(name))
    }

    /// The name a walk reports for `parent` (`get_onif_name(itf.phys->index)`): its own
    /// while it is registered, else whatever its former slot holds now.
    pub(super) fn parent_name(&self, parent: &Parent) -> IfName {
        if !parent.gone {
            return parent.name;
        }
        self.slots.get(parent.slot).copied().flatten().unwrap_or(IfName::EMPTY)
    }

    /// The VLANs in the order `Vlan_handle_reset` removes them: by hash bucket, the newest
    /// first within a bucket (`slist_add` prepends).
    pub(super) fn reset_order(&self) -> Vec<IfName> {
        let age = |name: &IfName| self.listed.iter().position(|l| l == name).unwrap_or(0);
        let mut names: Vec<IfName> = self.vlans.keys().copied().collect();
        names.sort_by_key(|name| {
            let bucket = self.vlans.get(name).map_or(0, |v| vlan_hash(v.id));
            (bucket, std::cmp::Reverse(age(name)))
        });
        names
    }

    /// The FMan port under `name` (itself, or the parent of a VLAN or a PPPoE session,
    /// followed a few levels: `dpa_get_fm_port_index`, `devman.c`); none once a parent on
    /// the way was removed (cdx would follow freed memory).
    pub(super) fn fman_port(&self, name: &IfName) -> Option<IfName> {
        let mut current = *name;
        for _ in 0..8 {
            if self.fman.contains(&current) {
                return Some(current);
            }
            let parent = match (self.vlans.get(&current), self.pppoe.get(&current)) {
                (Some(vlan), _) => vlan.parent,
                (None, Some(session)) => session.parent,
                (None, None) => return None,
            };
            if parent.gone {
                return None;
            }
            current = parent.name;
        }
        None
    }

    /// The PPPoE session on the way from `name` down to its FMan port, if any: its peer's
    /// MAC is the destination of every packet sent out of `name`
    /// (`dpa_get_tx_info_by_itf`, `devman.c`; `ac_mac_addr` replaces the route's MAC).
    pub(super) fn session_under(&self, name: &IfName) -> Option<&PppoeIf> {
        let mut current = *name;
        for _ in 0..8 {
            if let Some(session) = self.pppoe.get(&current) {
                return Some(session);
            }
            let parent = self.vlans.get(&current)?.parent;
            if parent.gone {
                return None;
            }
            current = parent.name;
        }
        None
    }

    /// The source MAC of frames sent out of `name` when it is not the FMan port's own: on
    /// the ASK port the MAC registered with the first VLAN on the way down
    /// (`dpa_get_tx_info_by_itf`, `src_mac`); NXP's cdx always sends with the port's.
    pub(super) fn source_mac(&self, name: &IfName) -> Option<[u8; 6]> {
        if self.build != Abi::Ask {
            return None;
        }
        let mut current = *name;
        for _ in 0..8 {
            if let Some(vlan) = self.vlans.get(&current) {
                return Some(vlan.mac);
            }
            current = self.pppoe.get(&current)?.parent.name;
        }
        None
    }

    /// Every known name: FMan ports, then VLANs, then PPPoE sessions.
    pub(super) fn names(&self) -> impl Iterator<Item = &IfName> {
        self.fman.iter().chain(self.vlans.keys()).chain(self.pppoe.keys())
    }
}
