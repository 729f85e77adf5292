//! Route objects of the model (`IP_HandleIP_ROUTE_RESOLVE`, `control_ipv4.c`; `layer2.c`).

use zerocopy::FromBytes;

use crate::fpp::route::RouteWire;
use crate::fpp::{Action, IfName, ReturnCode, RouteCmd, RouteFlags, unwritten};

use super::env::Route;
use super::model::{Cdx, SimReply};

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
        let bytes = out.set_walk_entry(self.env.build, &entry, unwritten::WALK_REPLY_TAIL);
        let tail = bytes.len().saturating_sub(unwritten::WALK_REPLY_TAIL)..bytes.len();
        let mut ranges =
            unwritten::route_walk_entry(output.as_bytes().len(), input.as_bytes().len());
        ranges.push(tail);
        self.filler.fill(bytes, &ranges);
    }
}
