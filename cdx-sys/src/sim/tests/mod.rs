//! The model's rules, one test each, with exact codes and bytes. Tests of a rule read from
//! cdx's source name the file and function they follow.

mod basics;
mod onif;
mod pppoe;
mod strict;
mod timing;
mod vlan;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::fpp::{
    Abi, AbiPayload, Action, Ct4Cmd, Ct6Cmd, FCode, IfName, Payload, ReturnCode, RouteCmd,
    TimeoutCmd, Tuple,
};

const S: Duration = Duration::from_secs(1);

/// A model, its start time, and helpers that speak its ABI.
struct Rig {
    cdx: Cdx,
    t0: Instant,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(|_| {})
    }

    /// A model knowing eth0..eth2, changed by `config`.
    fn with(config: impl FnOnce(&mut SimConfig)) -> Rig {
        let mut base = SimConfig {
            interfaces: vec!["eth0".into(), "eth1".into(), "eth2".into()],
            ..SimConfig::default()
        };
        config(&mut base);
        Rig { cdx: Cdx::new(&base).unwrap(), t0: Instant::now() }
    }

    fn abi(&self) -> Abi {
        self.cdx.abi()
    }

    fn at(&self, offset: Duration) -> Instant {
        self.t0 + offset
    }

    fn send(&mut self, fcode: FCode, payload: &[u8]) -> SimReply {
        self.send_at(Duration::ZERO, fcode, payload)
    }

    fn send_at(&mut self, offset: Duration, fcode: FCode, payload: &[u8]) -> SimReply {
        let now = self.at(offset);
        self.cdx.handle(fcode, payload, now)
    }

    fn route(&mut self, action: Action, id: u32, output: &str, input: &str) -> ReturnCode {
        let cmd = route_cmd(action, id, output, input);
        self.send(FCode::IpRoute, &cmd.to_vec()).rc()
    }

    /// `FPP_CMD_VLAN_ENTRY` in the model's ABI.
    fn vlan(&mut self, action: Action, id: u16, name: &str, phy: &str) -> ReturnCode {
        let entry = crate::fpp::VlanEntry {
            action,
            vlan_id: id,
            ifname: IfName::new(name).unwrap(),
            phy_ifname: IfName::new(phy).unwrap(),
            mac: [2, 0, 0, 0, 0, 0x64],
        };
        let bytes = entry.to_vec_for(self.abi());
        self.send(FCode::VlanEntry, &bytes).rc()
    }

    fn ct4_at(&mut self, offset: Duration, cmd: &Ct4Cmd) -> ReturnCode {
        let bytes = cmd.to_vec_for(self.abi());
        self.send_at(offset, FCode::Ipv4Conntrack, &bytes).rc()
    }

    fn ct4(&mut self, cmd: &Ct4Cmd) -> ReturnCode {
        self.ct4_at(Duration::ZERO, cmd)
    }

    fn ct6(&mut self, cmd: &Ct6Cmd) -> ReturnCode {
        let bytes = cmd.to_vec_for(self.abi());
        self.send(FCode::Ipv6Conntrack, &bytes).rc()
    }

    /// GET_TIMEOUT of `cmd`'s original tuple at `offset`: the code and the seconds.
    fn remaining4(&mut self, offset: Duration, cmd: &Ct4Cmd) -> (ReturnCode, u32) {
        let bytes = cmd.basic(Action::Register).to_vec_for(self.abi());
        seconds(&self.send_at(offset, FCode::Ipv4GetTimeout, &bytes))
    }

    fn remaining6(&mut self, offset: Duration, cmd: &Ct6Cmd) -> (ReturnCode, u32) {
        let bytes = cmd.basic(Action::Register).to_vec_for(self.abi());
        seconds(&self.send_at(offset, FCode::Ipv6GetTimeout, &bytes))
    }

    /// Runs aging at `offset`; the original tuples of the pairs it removed.
    fn aged(&mut self, offset: Duration) -> Vec<SimTuple> {
        let now = self.at(offset);
        self.cdx.tick(now).iter().map(|e| SimTuple::from(e.event().orig())).collect()
    }

    fn snapshot(&self) -> SimTable {
        self.cdx.snapshot(self.t0)
    }

    fn conntrack(&self, orig: Tuple<impl Into<std::net::IpAddr>>) -> SimConntrack {
        self.snapshot().conntrack(orig.into()).cloned().unwrap()
    }

    fn set_timeout(
        &mut self,
        offset: Duration,
        protocol: u16,
        value1: u32,
        value2: u32,
    ) -> ReturnCode {
        let cmd = TimeoutCmd { protocol, sam_4o6: 0, value1, value2 };
        self.send_at(offset, FCode::Ipv4SetTimeout, &cmd.to_vec()).rc()
    }

    /// Routes 1 and 2, a UDP flow through them (in hardware) and one with no routes
    /// (software only).
    fn udp_in_and_out_of_hardware(&mut self) -> (Ct4Cmd, Ct4Cmd) {
        self.two_routes();
        let in_hw = flow4(17, 1, (1, 2));
        let software_only = flow4(17, 2, (0, 0));
        assert_eq!(self.ct4(&in_hw), ReturnCode::Ok);
        assert_eq!(self.ct4(&software_only), ReturnCode::Ok);
        (in_hw, software_only)
    }

    fn two_routes(&mut self) {
        assert_eq!(self.route(Action::Register, 1, "eth0", "eth1"), ReturnCode::Ok);
        assert_eq!(self.route(Action::Register, 2, "eth1", "eth0"), ReturnCode::Ok);
    }
}

fn seconds(reply: &SimReply) -> (ReturnCode, u32) {
    let value =
        if reply.rc().is_ok() { TimeoutCmd::parse(reply.data()).unwrap().value1 } else { 0 };
    (reply.rc(), value)
}

fn route_cmd(action: Action, id: u32, output: &str, input: &str) -> RouteCmd {
    RouteCmd::new(
        action,
        id,
        IfName::new(output).unwrap(),
        IfName::new(input).unwrap(),
        [0x02, 0, 0, 0, 0, id as u8],
        1500,
    )
}

fn v4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

/// A TCP (6) or UDP (17) flow 10.0.0.1:sport → 10.0.0.2:80 with routes `ids`.
fn flow4(protocol: u8, sport: u16, ids: (u32, u32)) -> Ct4Cmd {
    let orig = Tuple::new(v4(1), v4(2), sport, 80);
    let mut cmd = Ct4Cmd::new(Action::Register, protocol, orig, orig.inverse());
    (cmd.route_id, cmd.route_id_reply) = ids;
    cmd
}

fn flow6(protocol: u8, sport: u16, ids: (u32, u32)) -> Ct6Cmd {
    let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let orig = Tuple::new(a, b, sport, 443);
    let mut cmd = Ct6Cmd::new(Action::Register, protocol, orig, orig.inverse());
    (cmd.route_id, cmd.route_id_reply) = ids;
    cmd
}

fn with<T: Copy>(cmd: &T, set: impl FnOnce(&mut T)) -> T {
    let mut copy = *cmd;
    set(&mut copy);
    copy
}
