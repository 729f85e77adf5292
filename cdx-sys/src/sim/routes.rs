//! Route objects and VLAN interfaces of the model (`IP_HandleIP_ROUTE_RESOLVE`,
//! `control_ipv4.c`; `Vlan_handle_entry`, `control_vlan.c`; `layer2.c`).

use zerocopy::FromBytes;

use crate::fpp::route::RouteWire;
use crate::fpp::{
    AbiPayload, Action, CtEvent, IfName, ReturnCode, RouteCmd, RouteFlags, VlanEntry, unwritten,
};

use super::env::{Route, VlanIf};
use super::model::{Cdx, SimEvent, SimReply};

impl Cdx {
    /// `FPP_CMD_IP_ROUTE`.
    pub(super) fn route_command(&mut self, payload: &[u8], out: &mut SimReply) {
        // Fields are read as the action needs them: QUERY and DEREGISTER ignore the names.
        let Ok(wire) = RouteWire::ref_from_bytes(payload) else {
            return out.set_rc(ReturnCode::WrongCommandSize);
        };
        let id = wire.id.get();
        let known = |field: &[u8; 16]| {
            IfName::from_field(field).ok().filter(|name| self.env.interfaces.known(name))
        };
        let (output, input, underlying) = (
            known(&wire.output_device),
            known(&wire.input_device),
            known(&wire.underlying_input_device),
        );
        // cdx keeps a 16-bit id and compares it with the command's 32 bits: an id above
        // 0xFFFF is never found again (`RouteEntry.id`, `L2_route_find`).
        let reachable = u16::try_from(id).is_ok();
        let rc = match Action::from(wire.action.get()) {
            Action::Register if self.env.routes.contains_key(&id) => {
                ReturnCode::RtEntryAlreadyRegistered
            }
            Action::Register => match output {
                None => ReturnCode::UnknownInterface,
                Some(_) if !reachable => {
                    self.env.counters.unreachable_routes += 1;
                    ReturnCode::Ok
                }
                Some(output) => {
                    let route = Route {
                        output,
                        // Unknown inputs are stored as no interface (input_itf = NULL); an
                        // unknown underlying input falls back to the input.
                        input,
                        underlying_input: underlying.or(input),
                        mac: wire.dst_mac,
                        mtu: if wire.mtu.get() == 0 { 0xffff } else { wire.mtu.get() },
                        flags: wire.flags.get(),
                        tunnel_dst: wire.dst_addr,
                        refcount: 0,
                    };
                    self.env.routes.insert(id, route);
                    ReturnCode::Ok
                }
            },
            Action::Update => match (self.env.routes.get_mut(&id), output) {
                (None, _) => ReturnCode::RtEntryNotFound,
                (Some(_), None) => ReturnCode::UnknownInterface,
                (Some(route), Some(output)) => {
                    // The route object only: entries already in hardware keep the output
                    // and MAC they were inserted with, and the MTU is the registered one.
                    route.output = output;
                    route.mac = wire.dst_mac;
                    route.input = input;
                    route.underlying_input = underlying.or(input);
                    ReturnCode::Ok
                }
            },
            Action::Deregister => match self.env.routes.get(&id) {
                None => ReturnCode::RtEntryNotFound,
                Some(route) if route.refcount > 0 => ReturnCode::RtEntryLinked,
                Some(_) => {
                    self.env.routes.remove(&id);
                    ReturnCode::Ok
                }
            },
            Action::Query => {
                self.route_cursor = None;
                return self.route_walk(out);
            }
            Action::QueryCont => return self.route_walk(out),
            _ => ReturnCode::UnknownAction,
        };
        out.set_rc(rc);
    }

    /// One step of the route walk (`IPV4_RT_Get_Hash_Snapshot`): MAC, output and input
    /// names, MTU, id and extra information written, the rest filled.
    fn route_walk(&mut self, out: &mut SimReply) {
        let start = self.route_cursor.map_or(0, |id| u64::from(id) + 1);
        let Some((&id, route)) =
            u32::try_from(start).ok().and_then(|start| self.env.routes.range(start..).next())
        else {
            self.route_cursor = None;
            return out.set_rc(ReturnCode::RtEntryNotFound);
        };
        self.route_cursor = Some(id);
        // The output's name comes from the interface table: gone with its interface.
        let output = Some(route.output)
            .filter(|name| self.env.interfaces.known(name))
            .unwrap_or(IfName::EMPTY);
        let input = route.input.unwrap_or(IfName::EMPTY);
        let entry = RouteCmd {
            action: Action::Register,
            mtu: route.mtu,
            dst_mac: route.mac,
            output,
            input,
            underlying_input: IfName::EMPTY,
            id,
            flags: RouteFlags::EMPTY,
            tunnel_dst: route.tunnel_dst,
        };
        let bytes = out.set_walk_entry(self.env.build, &entry);
        let tail = bytes.len().saturating_sub(unwritten::WALK_REPLY_TAIL)..bytes.len();
        let mut ranges =
            unwritten::route_walk_entry(output.as_bytes().len(), input.as_bytes().len());
        ranges.push(tail);
        self.filler.fill(bytes, &ranges);
    }

    /// `FPP_CMD_VLAN_ENTRY`: REGISTER needs a name cdx does not know yet and a known parent;
    /// DEREGISTER needs the id and the name of a registered VLAN, and removes the interface
    /// as cdx does ([`Cdx::remove_interface`]).
    pub(super) fn vlan_entry(
        &mut self,
        payload: &[u8],
        out: &mut SimReply,
        deliver: &mut dyn FnMut(&SimEvent) -> bool,
    ) {
        let entry = match VlanEntry::parse_for(self.env.build, payload) {
            Ok(entry) => entry,
            Err(crate::fpp::FppError::IfName(_)) => {
                return out.set_rc(ReturnCode::UnknownInterface);
            }
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
                let vlan = VlanIf { id, phys: entry.phy_ifname };
                self.env.interfaces.vlans.insert(entry.ifname, vlan);
                ReturnCode::Ok
            }
            Action::Deregister => match self.env.interfaces.vlans.get(&entry.ifname) {
                Some(vlan) if vlan.id == id => {
                    self.remove_interface(&entry.ifname, deliver);
                    ReturnCode::Ok
                }
                _ => ReturnCode::VlanEntryNotFound,
            },
            _ => ReturnCode::UnknownAction,
        };
        out.set_rc(rc);
    }

    /// `FPP_CMD_VLAN_RESET`: every VLAN interface removed.
    pub(super) fn vlan_reset(&mut self, deliver: &mut dyn FnMut(&SimEvent) -> bool) {
        let names: Vec<IfName> = self.env.interfaces.vlans.keys().copied().collect();
        for name in names {
            self.remove_interface(&name, deliver);
        }
    }

    /// `remove_onif_by_index` (`layer2.c`): every conntrack with a direction routed out of
    /// `name` is removed with a REMOVED event (kept if the event cannot be sent), then
    /// every route out of it that nothing references; routes whose input was `name` lose it
    /// (cdx keeps a pointer to the freed interface; the model treats it as unknown), and
    /// the interface is forgotten.
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
        self.env.interfaces.vlans.remove(name);
    }
}
