//! The logical interfaces of the model: VLANs (`Vlan_handle_entry`, `Vlan_handle_reset`,
//! `Vlan_Get_Next_Hash_Entry`, `control_vlan.c`) and PPPoE sessions (`PPPoE_Handle_Entry`,
//! `PPPoE_Get_Next_SessionEntry`, `control_pppoe.c`), and what removing one does
//! (`remove_onif_by_index`, `layer2.c`).
//!
//! Both become entries of cdx's interface table ([`super::onif`]), named by their Linux
//! interface, with a parent that must already be there (an FMan port, or a registered VLAN
//! for PPPoE over a VLAN), as long as the table has room for them. Walks go in name order
//! (cdx's go in hash order) with one cursor per table shared by every client, as cdx's
//! static snapshot index is.

use crate::fpp::{
    AbiPayload, Action, CtEvent, FppError, IfName, Payload, PppoeEntry, ReturnCode, VlanEntry,
    unwritten,
};

use super::model::{Cdx, SimEvent, SimReply};
use super::onif::{PppoeIf, VlanIf, vlan_hash};

impl Cdx {
    /// `FPP_CMD_VLAN_ENTRY`: REGISTER needs a name cdx does not know yet, a known parent and
    /// room in the interface table (`CREATION_FAILED` otherwise); DEREGISTER needs the id
    /// and the name of a registered VLAN, and removes the interface as cdx does
    /// ([`Cdx::remove_interface`]); QUERY/QUERY_CONT walk the VLANs.
    ///
    /// cdx keeps 12 bits of the id but looks a DEREGISTER up in the hash bucket of the id as
    /// sent (`HASH_VLAN(htons(vlanID))`): an id with any of the 4 upper bits set hashes
    /// elsewhere and is not found.
    pub(super) fn vlan_entry(
        &mut self,
        payload: &[u8],
        out: &mut SimReply,
        deliver: &mut dyn FnMut(&SimEvent) -> bool,
    ) {
        let entry = match VlanEntry::parse_for(self.env.build, payload) {
            Ok(entry) => entry,
            Err(FppError::IfName(_)) => return out.set_rc(ReturnCode::UnknownInterface),
            Err(_) => return out.set_rc(ReturnCode::WrongCommandSize),
        };
        let id = entry.vlan_id & 0xfff;
        let rc = match entry.action {
            Action::Register if self.env.interfaces.known(&entry.ifname) => {
                ReturnCode::VlanEntryAlreadyRegistered
            }
            Action::Register if !self.env.interfaces.known(&entry.phy_ifname) => {
                ReturnCode::UnknownInterface
            }
            Action::Register => {
                match self.env.interfaces.admit(entry.ifname, entry.phy_ifname, false) {
                    Ok(parent) => {
                        let vlan = VlanIf { id, parent, mac: entry.mac };
                        self.env.interfaces.vlans.insert(entry.ifname, vlan);
                        ReturnCode::Ok
                    }
                    Err(_) => {
                        self.env.counters.interfaces_refused += 1;
                        ReturnCode::CreationFailed
                    }
                }
            }
            Action::Deregister => match self.env.interfaces.vlans.get(&entry.ifname) {
                Some(vlan) if vlan.id == id && vlan_hash(entry.vlan_id) == vlan_hash(id) => {
                    self.remove_interface(&entry.ifname, deliver);
                    ReturnCode::Ok
                }
                _ => ReturnCode::VlanEntryNotFound,
            },
            Action::Query => {
                self.vlan_cursor = None;
                return self.vlan_walk(out);
            }
            Action::QueryCont => return self.vlan_walk(out),
            _ => ReturnCode::UnknownAction,
        };
        out.set_rc(rc);
    }

    /// One step of the VLAN walk: `2 + entry` bytes (the id and both names written), or a
    /// bare `VLAN_ENTRY_NOT_FOUND` at the end.
    fn vlan_walk(&mut self, out: &mut SimReply) {
        let vlans = &self.env.interfaces.vlans;
        let next = match self.vlan_cursor {
            None => vlans.iter().next(),
            Some(last) => vlans.range(last..).find(|(name, _)| **name != last),
        };
        let Some((&name, vlan)) = next else {
            self.vlan_cursor = None;
            return out.set_rc(ReturnCode::VlanEntryNotFound);
        };
        self.vlan_cursor = Some(name);
        let parent = self.env.interfaces.parent_name(&vlan.parent);
        let entry = VlanEntry {
            action: Action::Register,
            vlan_id: vlan.id,
            ifname: name,
            phy_ifname: parent,
            mac: [0; 6],
        };
        let abi = self.env.build;
        let bytes = out.set_walk_entry(abi, &entry, unwritten::WALK_REPLY_TAIL);
        let tail = bytes.len().saturating_sub(unwritten::WALK_REPLY_TAIL)..bytes.len();
        let mut ranges =
            unwritten::vlan_walk_entry(abi, name.as_bytes().len(), parent.as_bytes().len());
        ranges.push(tail);
        self.filler.fill(bytes, &ranges);
    }

    /// `FPP_CMD_VLAN_RESET`: every VLAN interface removed, in cdx's order (which decides
    /// which of them NXP's cdx loses the statistics of).
    pub(super) fn vlan_reset(&mut self, deliver: &mut dyn FnMut(&SimEvent) -> bool) {
        for name in self.env.interfaces.reset_order() {
            self.remove_interface(&name, deliver);
        }
        self.vlan_cursor = None;
    }

    /// `FPP_CMD_PPPOE_ENTRY` (`PPPoE_Handle_Entry`): REGISTER refuses a PPP name cdx already
    /// knows and a session (id and peer MAC) already registered (`PPPOE_ENTRY_ALREADY_
    /// REGISTERED`), an unknown parent (`UNKNOWN_INTERFACE`), and a fifth session or a full
    /// interface table (`CREATION_FAILED`, [`super::onif`]); DEREGISTER needs the
    /// session id, the MAC and the PPP name (`PPPOE_ENTRY_NOT_FOUND` otherwise) and removes
    /// the interface; QUERY/QUERY_CONT walk the sessions.
    pub(super) fn pppoe_entry(
        &mut self,
        payload: &[u8],
        out: &mut SimReply,
        deliver: &mut dyn FnMut(&SimEvent) -> bool,
    ) {
        let entry = match PppoeEntry::parse(payload) {
            Ok(entry) => entry,
            Err(FppError::IfName(_)) => return out.set_rc(ReturnCode::UnknownInterface),
            Err(_) => return out.set_rc(ReturnCode::WrongCommandSize),
        };
        let same_session = |p: &PppoeIf| p.session == entry.session_id && p.mac == entry.mac;
        let rc = match entry.action {
            Action::Register if self.env.interfaces.known(&entry.ifname) => {
                ReturnCode::PppoeEntryAlreadyRegistered
            }
            Action::Register if !self.env.interfaces.known(&entry.phy_ifname) => {
                ReturnCode::UnknownInterface
            }
            Action::Register if self.env.interfaces.pppoe.values().any(same_session) => {
                ReturnCode::PppoeEntryAlreadyRegistered
            }
            Action::Register => {
                match self.env.interfaces.admit(entry.ifname, entry.phy_ifname, true) {
                    Ok(parent) => {
                        let session = PppoeIf {
                            session: entry.session_id,
                            mac: entry.mac,
                            parent,
                            mode: entry.mode,
                        };
                        self.env.interfaces.pppoe.insert(entry.ifname, session);
                        ReturnCode::Ok
                    }
                    Err(_) => {
                        self.env.counters.interfaces_refused += 1;
                        ReturnCode::CreationFailed
                    }
                }
            }
            Action::Deregister => match self.env.interfaces.pppoe.get(&entry.ifname) {
                Some(session) if same_session(session) => {
                    self.remove_interface(&entry.ifname, deliver);
                    ReturnCode::Ok
                }
                _ => ReturnCode::PppoeEntryNotFound,
            },
            Action::Query => {
                self.pppoe_cursor = None;
                return self.pppoe_walk(out);
            }
            Action::QueryCont => return self.pppoe_walk(out),
            _ => ReturnCode::UnknownAction,
        };
        out.set_rc(rc);
    }

    /// One step of the PPPoE walk: the entry's 44 bytes under the return code (session,
    /// MAC and both names written, the mode not), or a bare `PPPOE_ENTRY_NOT_FOUND`.
    fn pppoe_walk(&mut self, out: &mut SimReply) {
        let sessions = &self.env.interfaces.pppoe;
        let next = match self.pppoe_cursor {
            None => sessions.iter().next(),
            Some(last) => sessions.range(last..).find(|(name, _)| **name != last),
        };
        let Some((&name, session)) = next else {
            self.pppoe_cursor = None;
            return out.set_rc(ReturnCode::PppoeEntryNotFound);
        };
        self.pppoe_cursor = Some(name);
        let parent = self.env.interfaces.parent_name(&session.parent);
        let entry = PppoeEntry {
            action: Action::Register,
            session_id: session.session,
            mac: session.mac,
            phy_ifname: parent,
            ifname: name,
            mode: 0,
        };
        let bytes = out.set_walk_entry(self.env.build, &entry, 0);
        let ranges = unwritten::pppoe_walk_entry(parent.as_bytes().len(), name.as_bytes().len());
        self.filler.fill(bytes, &ranges);
    }

    /// `remove_onif_by_index` (`layer2.c`): every conntrack with a direction routed out of
    /// `name` is removed with a REMOVED event (kept if the event cannot be sent), then
    /// every route out of it that nothing references; routes whose input was `name` lose it
    /// (cdx keeps a pointer to the freed interface; the model treats it as unknown), and
    /// the interface is forgotten ([`super::onif::Interfaces::remove`]: NXP's cdx may lose
    /// its statistics slot). A PPPoE session on a removed VLAN stays, with a parent cdx no
    /// longer has (cdx does not remove it either).
    fn remove_interface(&mut self, name: &IfName, deliver: &mut dyn FnMut(&SimEvent) -> bool) {
        let abi = self.env.build;
        for slot in self.ct4.using_output(&self.env, name) {
            let Some(pair) = self.ct4.slots.get(slot).and_then(Option::as_ref) else { continue };
            let event = SimEvent::encode(abi, &mut self.filler, CtEvent::V4(pair.removed()));
            if deliver(&event) {
                self.ct4.remove(&mut self.env, slot);
            }
        }
        for slot in self.ct6.using_output(&self.env, name) {
            let Some(pair) = self.ct6.slots.get(slot).and_then(Option::as_ref) else { continue };
            let event = SimEvent::encode(abi, &mut self.filler, CtEvent::V6(pair.removed()));
            if deliver(&event) {
                self.ct6.remove(&mut self.env, slot);
            }
        }
        self.env.routes.retain(|_, route| route.output != *name || route.refcount > 0);
        for route in self.env.routes.values_mut() {
            if route.input == Some(*name) {
                route.input = None;
            }
            if route.underlying_input == Some(*name) {
                route.underlying_input = route.input;
            }
        }
        if self.env.interfaces.remove(name) {
            self.env.counters.interface_slots_leaked += 1;
        }
    }
}
