//! The model's rules, one test each, with exact codes and bytes.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::fpp::{
    Action, Ct4Cmd, Ct6Cmd, CtChange, CtExtension, CtFlags, FCode, FfControl, IfName, Payload,
    ReturnCode, RouteCmd, TimeoutCmd, Tuple, VlanEntry, query,
};

const S: Duration = Duration::from_secs(1);

struct Rig {
    cdx: Cdx,
    t0: Instant,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_capacity(DEFAULT_CAPACITY)
    }

    fn with_capacity(capacity: usize) -> Rig {
        let ports = ["eth0", "eth1", "eth2"].map(|name| IfName::new(name).unwrap());
        Rig { cdx: Cdx::new(ports, capacity), t0: Instant::now() }
    }

    fn at(&self, offset: Duration) -> Instant {
        self.t0 + offset
    }

    fn send(&mut self, fcode: FCode, payload: &[u8]) -> SimReply {
        let now = self.t0;
        self.cdx.handle(fcode, payload, now)
    }

    fn send_at(&mut self, offset: Duration, fcode: FCode, payload: &[u8]) -> SimReply {
        let now = self.at(offset);
        self.cdx.handle(fcode, payload, now)
    }

    fn route(&mut self, action: Action, id: u32, output: &str, input: &str) -> ReturnCode {
        let cmd = route_cmd(action, id, output, input);
        self.send(FCode::IpRoute, &cmd.to_vec()).rc()
    }

    fn ct4(&mut self, cmd: &Ct4Cmd) -> ReturnCode {
        self.send(FCode::Ipv4Conntrack, &cmd.to_vec()).rc()
    }

    fn snapshot(&self) -> SimTable {
        self.cdx.snapshot(self.t0)
    }
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
    cmd.route_id = ids.0;
    cmd.route_id_reply = ids.1;
    cmd
}

fn flow6(protocol: u8, sport: u16, ids: (u32, u32)) -> Ct6Cmd {
    let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let orig = Tuple::new(a, b, sport, 443);
    let mut cmd = Ct6Cmd::new(Action::Register, protocol, orig, orig.inverse());
    cmd.route_id = ids.0;
    cmd.route_id_reply = ids.1;
    cmd
}

fn with_action<T: Copy>(cmd: &T, set: impl FnOnce(&mut T)) -> T {
    let mut copy = *cmd;
    set(&mut copy);
    copy
}

fn two_routes(rig: &mut Rig) {
    assert_eq!(rig.route(Action::Register, 1, "eth0", "eth1"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 2, "eth1", "eth0"), ReturnCode::Ok);
}

#[test]
fn every_payload_needs_its_exact_size() {
    let mut rig = Rig::new();
    let cases: [(FCode, usize); 9] = [
        (FCode::IpRoute, 83),
        (FCode::Ipv4Conntrack, 45),
        (FCode::Ipv4Conntrack, 71),
        (FCode::Ipv6Conntrack, 93),
        (FCode::Ipv6Conntrack, 72),
        (FCode::Ipv4SetTimeout, 11),
        (FCode::Ipv4GetTimeout, 43),
        (FCode::Ipv4FfControl, 3),
        (FCode::VlanEntry, 35),
    ];
    for (fcode, len) in cases {
        let reply = rig.send(fcode, &vec![0; len]);
        assert_eq!(reply.rc(), ReturnCode::WrongCommandSize, "{fcode:?} with {len} bytes");
        assert_eq!(reply.as_bytes(), &[2, 0], "a bare 2-byte code");
    }
    // both conntrack sizes are accepted
    two_routes(&mut rig);
    assert_eq!(rig.ct4(&flow4(6, 1000, (1, 2))), ReturnCode::Ok);
    let mut extended = flow4(6, 1001, (1, 2));
    extended.extension = Some(CtExtension::default());
    assert_eq!(rig.ct4(&extended), ReturnCode::Ok);
}

#[test]
fn unknown_commands_and_actions() {
    let mut rig = Rig::new();
    assert_eq!(rig.send(FCode::Unknown(0x0999), &[]).rc(), ReturnCode::UnknownCommand);
    assert_eq!(rig.send(FCode::PppoeEntry, &[0; 44]).rc(), ReturnCode::UnknownCommand);
    assert_eq!(rig.route(Action::KeepAlive, 1, "eth0", "eth1"), ReturnCode::UnknownAction);
    let cmd = with_action(&flow4(6, 1, (0, 0)), |c| c.action = Action::Unknown(5));
    assert_eq!(rig.ct4(&cmd), ReturnCode::UnknownAction);
    assert_eq!(rig.send(FCode::VoiceBufferReset, &[]).rc(), ReturnCode::Ok);
}

#[test]
fn route_register_rules() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Register, 7, "eth0", "eth1"), ReturnCode::Ok);
    assert_eq!(
        rig.route(Action::Register, 7, "eth2", "eth1"),
        ReturnCode::RtEntryAlreadyRegistered
    );
    assert_eq!(rig.route(Action::Register, 8, "veth9", "eth1"), ReturnCode::UnknownInterface);
    // unknown input: accepted, stored as no interface
    assert_eq!(rig.route(Action::Register, 9, "eth2", "cni0"), ReturnCode::Ok);
    let mut zero_mtu = route_cmd(Action::Register, 10, "eth0", "eth1");
    zero_mtu.mtu = 0;
    assert_eq!(rig.send(FCode::IpRoute, &zero_mtu.to_vec()).rc(), ReturnCode::Ok);
    let table = rig.snapshot();
    assert_eq!(table.routes.iter().map(|r| r.id).collect::<Vec<_>>(), vec![7, 9, 10]);
    assert_eq!(
        table.route(7),
        Some(&SimRoute {
            id: 7,
            output: "eth0".into(),
            input: "eth1".into(),
            mac: [2, 0, 0, 0, 0, 7],
            mtu: 1500,
            refcount: 0
        })
    );
    assert_eq!(table.route(9).unwrap().input, "");
    assert_eq!(table.route(10).unwrap().mtu, 0xffff, "MTU 0 means no limit");
}

#[test]
fn route_update_replaces_ports_and_mac_but_not_mtu() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Update, 3, "eth0", "eth1"), ReturnCode::RtEntryNotFound);
    assert_eq!(rig.route(Action::Register, 3, "eth0", "eth1"), ReturnCode::Ok);
    let mut update = route_cmd(Action::Update, 3, "eth2", "eth0");
    update.mtu = 9000;
    update.dst_mac = [0xaa; 6];
    assert_eq!(rig.send(FCode::IpRoute, &update.to_vec()).rc(), ReturnCode::Ok);
    let route = rig.snapshot().route(3).cloned().unwrap();
    assert_eq!((route.output.as_str(), route.input.as_str()), ("eth2", "eth0"));
    assert_eq!((route.mac, route.mtu), ([0xaa; 6], 1500));
    assert_eq!(rig.route(Action::Update, 3, "bogus0", "eth0"), ReturnCode::UnknownInterface);
}

#[test]
fn route_deregister_refuses_linked_routes() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Deregister, 1, "", ""), ReturnCode::RtEntryNotFound);
    two_routes(&mut rig);
    let flow = flow4(6, 1000, (1, 2));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert_eq!(rig.snapshot().route(1).unwrap().refcount, 1);
    assert_eq!(rig.route(Action::Deregister, 1, "", ""), ReturnCode::RtEntryLinked);
    assert_eq!(rig.ct4(&flow.basic(Action::Deregister)), ReturnCode::Ok);
    assert_eq!(rig.snapshot().route(1).unwrap().refcount, 0);
    assert_eq!(rig.route(Action::Deregister, 1, "", ""), ReturnCode::Ok);
    assert_eq!(rig.snapshot().route(1), None);
}

#[test]
fn route_walk_returns_each_route_then_not_found() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Register, 20, "eth0", "eth1"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 5, "eth1", "eth2"), ReturnCode::Ok);
    let query = route_cmd(Action::Query, 0, "", "").to_vec();
    let cont = route_cmd(Action::QueryCont, 0, "", "").to_vec();
    let first = rig.send(FCode::IpRoute, &query);
    assert_eq!(first.rc(), ReturnCode::Ok);
    assert_eq!(first.as_bytes().len(), 86);
    let mut expected = route_cmd(Action::Register, 5, "eth1", "eth2").to_vec();
    expected[..2].copy_from_slice(&[0, 0]);
    expected.extend_from_slice(&[0, 0]);
    assert_eq!(first.as_bytes(), expected.as_slice(), "entry at offset 0, rc over its action");
    let entry: RouteCmd = query::entry_from_reply(first.data()).unwrap();
    assert_eq!(entry.id, 5);
    let second: RouteCmd = query::entry_from_reply(rig.send(FCode::IpRoute, &cont).data()).unwrap();
    assert_eq!((second.id, second.output.as_str()), (20, Some("eth0")));
    let end = rig.send(FCode::IpRoute, &cont);
    assert_eq!((end.rc(), end.as_bytes().len()), (ReturnCode::RtEntryNotFound, 2));
    // the walk starts over after its end
    let again: RouteCmd = query::entry_from_reply(rig.send(FCode::IpRoute, &cont).data()).unwrap();
    assert_eq!(again.id, 5);
}

#[test]
fn conntrack_with_registered_routes_is_in_hardware_both_ways() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let mut flow = flow4(6, 1000, (1, 2));
    flow.fwmark = 0x10;
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let table = rig.snapshot();
    let ct = table.conntrack(flow.orig.into()).unwrap();
    assert_eq!(
        ct,
        &SimConntrack {
            orig: flow.orig.into(),
            reply: flow.reply.into(),
            protocol: 6,
            flags: CtFlags::EMPTY,
            fwmark: 0x10,
            route_id: 1,
            route_id_reply: 2,
            in_hw_orig: true,
            in_hw_reply: true,
            remaining: Duration::from_secs(432_000),
        }
    );
    assert_eq!((table.route(1).unwrap().refcount, table.route(2).unwrap().refcount), (1, 1));
    assert_eq!(rig.cdx.hw_pairs(), 1);
}

#[test]
fn unregistered_route_id_is_accepted_but_not_in_hardware() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Register, 1, "eth0", "eth1"), ReturnCode::Ok);
    let flow = flow4(17, 1000, (1, 99));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let table = rig.snapshot();
    let ct = table.conntrack(flow.orig.into()).unwrap();
    assert_eq!((ct.in_hw_orig, ct.in_hw_reply), (true, false));
    assert_eq!(ct.route_id_reply, 99, "the id is kept as registered");
    // registering route 99 later does not link it by itself; UPDATE re-applies the ids
    assert_eq!(rig.route(Action::Register, 99, "eth1", "eth0"), ReturnCode::Ok);
    assert!(!rig.snapshot().conntrack(flow.orig.into()).unwrap().in_hw_reply);
    assert_eq!(rig.ct4(&with_action(&flow, |c| c.action = Action::Update)), ReturnCode::Ok);
    let table = rig.snapshot();
    assert!(table.conntrack(flow.orig.into()).unwrap().in_hw_reply);
    assert_eq!(table.route(99).unwrap().refcount, 1);
}

#[test]
fn duplicate_and_inverse_registrations() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let flow = flow4(6, 1000, (1, 2));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert_eq!(rig.ct4(&flow), ReturnCode::CtEntryAlreadyRegistered);
    // another orig tuple with the same reply tuple (a NAT collision)
    let clash = with_action(&flow, |c| c.orig.src = v4(9));
    assert_eq!(rig.ct4(&clash), ReturnCode::CtEntryAlreadyRegistered);
    // the inverse flow
    let inverse = with_action(&flow, |c| std::mem::swap(&mut c.orig, &mut c.reply));
    assert_eq!(rig.ct4(&inverse), ReturnCode::CreationFailed);
    // same tuples, other protocol: a different flow
    assert_eq!(rig.ct4(&with_action(&flow, |c| c.protocol = 17)), ReturnCode::Ok);
    assert_eq!(rig.cdx.conntrack_count(), 2);
    assert_eq!(rig.snapshot().route(1).unwrap().refcount, 2, "failed registrations link nothing");
}

#[test]
fn update_reapplies_flags_marks_and_route_ids() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let flow = flow4(17, 1000, (1, 2));
    assert_eq!(
        rig.ct4(&with_action(&flow, |c| c.action = Action::Update)),
        ReturnCode::CtEntryNotFound
    );
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let update = with_action(&flow, |c| {
        c.action = Action::Update;
        c.flags = CtFlags::REP_DISABLED;
        c.fwmark = 0x8003_0001;
    });
    assert_eq!(rig.ct4(&update), ReturnCode::Ok);
    let table = rig.snapshot();
    let ct = table.conntrack(flow.orig.into()).unwrap();
    assert_eq!((ct.in_hw_orig, ct.in_hw_reply), (true, false));
    assert_eq!(ct.fwmark, 0x8003_0001, "two different 16-bit marks");
    assert_eq!(ct.remaining, Duration::from_secs(30), "one-way UDP");
    assert_eq!(table.route(2).unwrap().refcount, 0, "the disabled direction lets go of its route");
    // a wrong reply tuple names no registered pair
    let stranger = with_action(&update, |c| c.reply.dport = 1);
    assert_eq!(rig.ct4(&stranger), ReturnCode::CtEntryNotFound);
}

#[test]
fn deregister_unknown_is_not_found_and_known_releases_everything() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let flow = flow4(6, 1000, (1, 2));
    assert_eq!(rig.ct4(&flow.basic(Action::Deregister)), ReturnCode::CtEntryNotFound);
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert_eq!(rig.ct4(&flow.basic(Action::Deregister)), ReturnCode::Ok);
    let table = rig.snapshot();
    assert!(table.conntracks.is_empty());
    assert_eq!((table.route(1).unwrap().refcount, rig.cdx.hw_pairs()), (0, 0));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok, "the tuples are free again");
}

#[test]
fn protocols_without_a_hardware_table_fail_insertion() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let gre = flow4(47, 0, (1, 2));
    assert_eq!(rig.ct4(&gre), ReturnCode::Failure);
    assert_eq!(rig.send(FCode::Ipv4Conntrack, &gre.to_vec()).as_bytes(), &[0xff, 0xff]);
    assert!(rig.snapshot().conntracks.is_empty(), "the failed pair is not kept");
    assert_eq!(rig.snapshot().route(1).unwrap().refcount, 0);
    // nothing to insert (no routes): cdx keeps it, software only
    assert_eq!(rig.ct4(&flow4(47, 0, (0, 0))), ReturnCode::Ok);
}

#[test]
fn hardware_capacity_limits_pairs_in_hardware() {
    let mut rig = Rig::with_capacity(2);
    two_routes(&mut rig);
    assert_eq!(rig.ct4(&flow4(6, 1, (1, 2))), ReturnCode::Ok);
    assert_eq!(rig.send(FCode::Ipv6Conntrack, &flow6(6, 1, (1, 2)).to_vec()).rc(), ReturnCode::Ok);
    assert_eq!(rig.cdx.hw_pairs(), 2);
    assert_eq!(rig.ct4(&flow4(6, 3, (1, 2))), ReturnCode::Failure, "full");
    assert_eq!(rig.ct4(&flow4(6, 4, (0, 0))), ReturnCode::Ok, "software-only pairs need no room");
    assert_eq!(rig.ct4(&flow4(6, 1, (1, 2)).basic(Action::Deregister)), ReturnCode::Ok);
    assert_eq!(rig.ct4(&flow4(6, 3, (1, 2))), ReturnCode::Ok, "room again");
    rig.cdx.set_capacity(2);
    // an UPDATE that would put a software-only pair in hardware fails while full
    let update = with_action(&flow4(6, 4, (1, 2)), |c| c.action = Action::Update);
    assert_eq!(rig.ct4(&update), ReturnCode::Failure);
}

#[test]
fn conntrack_walk_uses_the_extended_layout_and_one_cursor_per_family() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let a = with_action(&flow4(6, 1, (1, 2)), |c| c.fwmark = 7);
    let b = flow4(17, 2, (1, 0));
    assert_eq!(rig.ct4(&a), ReturnCode::Ok);
    assert_eq!(rig.ct4(&b), ReturnCode::Ok);
    assert_eq!(rig.send(FCode::Ipv6Conntrack, &flow6(6, 1, (0, 0)).to_vec()).rc(), ReturnCode::Ok);
    let query = a.basic(Action::Query);
    let cont = a.basic(Action::QueryCont);
    let first = rig.send(FCode::Ipv4Conntrack, &query.to_vec());
    assert_eq!((first.rc(), first.as_bytes().len()), (ReturnCode::Ok, 74));
    let mut expected = with_action(&a, |c| c.extension = Some(CtExtension::default())).to_vec();
    expected.extend_from_slice(&[0, 0]);
    assert_eq!(first.as_bytes(), expected.as_slice());
    let second: Ct4Cmd =
        query::entry_from_reply(rig.send(FCode::Ipv4Conntrack, &cont.to_vec()).data()).unwrap();
    assert_eq!((second.orig, second.protocol, second.route_id_reply), (b.orig, 17, 0));
    // the IPv6 walk has its own cursor
    let v6 = rig.send(FCode::Ipv6Conntrack, &flow6(6, 1, (0, 0)).basic(Action::Query).to_vec());
    assert_eq!(v6.as_bytes().len(), 122);
    let end = rig.send(FCode::Ipv4Conntrack, &cont.to_vec());
    assert_eq!(end.as_bytes(), &[101, 0], "CT_ENTRY_NOT_FOUND ends the walk");
    let restart: Ct4Cmd =
        query::entry_from_reply(rig.send(FCode::Ipv4Conntrack, &query.to_vec()).data()).unwrap();
    assert_eq!(restart.orig, a.orig);
}

#[test]
fn reset_clears_both_families_and_routes_ipv6_reset_does_nothing() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    assert_eq!(rig.ct4(&flow4(6, 1, (1, 2))), ReturnCode::Ok);
    assert_eq!(rig.send(FCode::Ipv6Conntrack, &flow6(6, 1, (1, 2)).to_vec()).rc(), ReturnCode::Ok);
    assert_eq!(rig.send(FCode::Ipv6Reset, &[]).rc(), ReturnCode::Ok);
    assert_eq!((rig.snapshot().conntracks.len(), rig.snapshot().routes.len()), (2, 2));
    assert_eq!(rig.send(FCode::Ipv4Reset, &[]).rc(), ReturnCode::Ok);
    assert_eq!(rig.snapshot(), SimTable::default());
    assert_eq!(rig.cdx.hw_pairs(), 0);
    assert_eq!(
        rig.route(Action::Register, 1, "eth0", "eth1"),
        ReturnCode::Ok,
        "ids are free again"
    );
}

fn remaining(rig: &mut Rig, offset: Duration, cmd: &Ct4Cmd) -> (ReturnCode, u32) {
    let reply = rig.send_at(offset, FCode::Ipv4GetTimeout, &cmd.basic(Action::Register).to_vec());
    let seconds =
        if reply.rc().is_ok() { TimeoutCmd::parse(reply.data()).unwrap().value1 } else { 0 };
    (reply.rc(), seconds)
}

#[test]
fn default_timeouts_are_cdx_defaults() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let tcp = flow4(6, 1, (1, 2));
    let udp = flow4(17, 2, (1, 2));
    let udp_one_way = with_action(&flow4(17, 3, (1, 2)), |c| c.flags = CtFlags::REP_DISABLED);
    let other = flow4(1, 4, (0, 0));
    for flow in [tcp, udp, udp_one_way, other] {
        assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    }
    assert_eq!(remaining(&mut rig, Duration::ZERO, &tcp), (ReturnCode::Ok, 432_000));
    assert_eq!(remaining(&mut rig, Duration::ZERO, &udp), (ReturnCode::Ok, 180));
    assert_eq!(remaining(&mut rig, Duration::ZERO, &udp_one_way), (ReturnCode::Ok, 30));
    assert_eq!(remaining(&mut rig, Duration::ZERO, &other), (ReturnCode::Ok, 600));
    assert_eq!(rig.cdx.timeouts(), Timeouts { tcp: 432_000, udp: 180, udp_unidir: 30, other: 600 });
}

#[test]
fn get_timeout_rounds_up_for_ipv4_truncates_for_ipv6_and_reports_unknown() {
    let mut rig = Rig::new();
    let udp4 = flow4(17, 1, (0, 0));
    let udp6 = flow6(17, 1, (0, 0));
    assert_eq!(rig.ct4(&udp4), ReturnCode::Ok);
    assert_eq!(rig.send(FCode::Ipv6Conntrack, &udp6.to_vec()).rc(), ReturnCode::Ok);
    let half = Duration::from_millis(500);
    let reply = rig.send_at(half, FCode::Ipv4GetTimeout, &udp4.to_vec());
    // rc, then protocol 17, sam 0, value1 180 (179.5 rounded up), value2 0
    assert_eq!(reply.as_bytes(), &[0, 0, 17, 0, 0, 0, 180, 0, 0, 0, 0, 0, 0, 0]);
    let reply = rig.send_at(half, FCode::Ipv6GetTimeout, &udp6.to_vec());
    assert_eq!(TimeoutCmd::parse(reply.data()).unwrap().value1, 179, "truncated");
    let unknown = flow4(17, 9, (0, 0));
    assert_eq!(rig.send(FCode::Ipv4GetTimeout, &unknown.to_vec()).as_bytes(), &[0xfe, 0xff]);
    assert_eq!(rig.send(FCode::Ipv4GetTimeout, &[0; 40]).rc(), ReturnCode::WrongCommandSize);
}

fn set_timeout(
    rig: &mut Rig,
    offset: Duration,
    protocol: u16,
    value1: u32,
    value2: u32,
) -> ReturnCode {
    let cmd = TimeoutCmd { protocol, sam_4o6: 0, value1, value2 };
    rig.send_at(offset, FCode::Ipv4SetTimeout, &cmd.to_vec()).rc()
}

#[test]
fn set_timeout_per_protocol_class() {
    let mut rig = Rig::new();
    assert_eq!(set_timeout(&mut rig, Duration::ZERO, 6, 3600, 0), ReturnCode::Ok);
    assert_eq!(set_timeout(&mut rig, Duration::ZERO, 17, 60, 0), ReturnCode::Ok);
    assert_eq!(rig.cdx.timeouts(), Timeouts { tcp: 3600, udp: 60, udp_unidir: 60, other: 600 });
    assert_eq!(set_timeout(&mut rig, Duration::ZERO, 17, 90, 20), ReturnCode::Ok);
    assert_eq!(set_timeout(&mut rig, Duration::ZERO, 0, 120, 0), ReturnCode::Ok);
    assert_eq!(rig.cdx.timeouts(), Timeouts { tcp: 3600, udp: 90, udp_unidir: 20, other: 120 });
    assert_eq!(set_timeout(&mut rig, Duration::ZERO, 1, 5, 0), ReturnCode::UnknownAction);
    // the 4o6 variants are separate
    let tunnel = TimeoutCmd { protocol: 6, sam_4o6: 1, value1: 5, value2: 0 };
    assert_eq!(rig.send(FCode::Ipv4SetTimeout, &tunnel.to_vec()).rc(), ReturnCode::Ok);
    assert_eq!(rig.cdx.timeouts().tcp, 3600);
}

#[test]
fn aging_removes_idle_pairs_with_an_exact_removed_event() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let flow = with_action(&flow4(17, 1000, (1, 2)), |c| c.fwmark = 3);
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert!(rig.cdx.tick(rig.at(179 * S)).is_empty());
    let events = rig.cdx.tick(rig.at(180 * S));
    assert_eq!(events.len(), 1);
    let CtEvent::V4(change) = events[0] else { panic!("{events:?}") };
    assert_eq!(events[0].fcode(), FCode::Ipv4ConntrackChange);
    let mut expected = flow.to_vec();
    expected[..2].copy_from_slice(&3u16.to_ne_bytes());
    assert_eq!(events[0].to_vec(), expected, "REMOVED, then the pair as registered");
    assert_eq!(change.kind(), Action::Removed);
    assert!(rig.snapshot().conntracks.is_empty());
    assert_eq!((rig.snapshot().route(1).unwrap().refcount, rig.cdx.hw_pairs()), (0, 0));
    assert!(rig.cdx.tick(rig.at(400 * S)).is_empty(), "removed once");
}

#[test]
fn marking_active_keeps_pairs_in_hardware_alive() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let hw = flow4(17, 1, (1, 2));
    let software_only = flow4(17, 2, (0, 0));
    assert_eq!(rig.ct4(&hw), ReturnCode::Ok);
    assert_eq!(rig.ct4(&software_only), ReturnCode::Ok);
    let marked = rig.cdx.mark_active(&FlowMatch::All, rig.at(100 * S));
    assert_eq!(marked, 1, "FMan stamps only entries it holds");
    let events = rig.cdx.tick(rig.at(180 * S));
    assert_eq!(
        events.iter().map(|e| SimTuple::from(e.orig())).collect::<Vec<_>>(),
        vec![software_only.orig.into()]
    );
    assert_eq!(remaining(&mut rig, 180 * S, &hw), (ReturnCode::Ok, 100));
    assert!(rig.cdx.tick(rig.at(279 * S)).is_empty());
    assert_eq!(rig.cdx.mark_active(&FlowMatch::Orig(hw.orig.into()), rig.at(279 * S)), 1);
    assert!(rig.cdx.tick(rig.at(280 * S)).is_empty(), "re-armed by the second hit");
    assert_eq!(rig.cdx.tick(rig.at(459 * S)).len(), 1);
    let other = FlowMatch::Orig(flow4(17, 77, (0, 0)).orig.into());
    assert_eq!(rig.cdx.mark_active(&other, rig.at(460 * S)), 0);
}

#[test]
fn shorter_timeouts_apply_at_once_longer_ones_at_expiry() {
    let mut rig = Rig::new();
    two_routes(&mut rig);
    let tcp = flow4(6, 1, (1, 2));
    let udp = flow4(17, 2, (1, 2));
    assert_eq!(rig.ct4(&tcp), ReturnCode::Ok);
    assert_eq!(rig.ct4(&udp), ReturnCode::Ok);
    assert_eq!(set_timeout(&mut rig, 5 * S, 6, 10, 0), ReturnCode::Ok);
    assert_eq!(set_timeout(&mut rig, 5 * S, 17, 1000, 0), ReturnCode::Ok);
    let events = rig.cdx.tick(rig.at(10 * S));
    assert_eq!(
        events.iter().map(|e| SimTuple::from(e.orig())).collect::<Vec<_>>(),
        vec![tcp.orig.into()]
    );
    // the UDP timer still fires at 180 s, finds 820 s left and re-arms
    assert!(rig.cdx.tick(rig.at(180 * S)).is_empty());
    assert!(rig.cdx.tick(rig.at(999 * S)).is_empty());
    assert_eq!(rig.cdx.tick(rig.at(1000 * S)).len(), 1);
}

#[test]
fn undelivered_events_keep_the_pair_and_are_retried() {
    let mut rig = Rig::new();
    let flow = flow4(17, 1, (0, 0));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let mut offered = 0;
    rig.cdx.tick_with(rig.at(180 * S), S / 10, &mut |_| {
        offered += 1;
        false
    });
    assert_eq!((offered, rig.cdx.conntrack_count()), (1, 1));
    assert!(rig.cdx.tick(rig.at(180 * S + S / 20)).is_empty(), "not before the retry");
    assert_eq!(rig.cdx.tick(rig.at(180 * S + S / 10)).len(), 1);
    assert_eq!(rig.cdx.conntrack_count(), 0);
}

#[test]
fn ff_control_enable_resets_activity() {
    let mut rig = Rig::new();
    let flow = flow4(17, 1, (0, 0));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let off = FfControl { enable: false }.to_vec();
    let on = FfControl { enable: true }.to_vec();
    assert_eq!(rig.send_at(100 * S, FCode::Ipv4FfControl, &off).rc(), ReturnCode::Ok);
    assert!(!rig.cdx.ff_enabled());
    assert_eq!(remaining(&mut rig, 100 * S, &flow).1, 80, "disabling touches nothing");
    assert_eq!(rig.send_at(100 * S, FCode::Ipv4FfControl, &on).rc(), ReturnCode::Ok);
    assert!(rig.cdx.ff_enabled());
    assert_eq!(remaining(&mut rig, 100 * S, &flow).1, 180);
}

fn vlan(rig: &mut Rig, action: Action, name: &str, phy: &str) -> ReturnCode {
    let entry = VlanEntry {
        action,
        vlan_id: 100,
        ifname: IfName::new(name).unwrap(),
        phy_ifname: IfName::new(phy).unwrap(),
    };
    rig.send(FCode::VlanEntry, &entry.to_vec()).rc()
}

#[test]
fn vlan_interfaces_become_route_interfaces() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Register, 1, "eth0.100", "eth1"), ReturnCode::UnknownInterface);
    assert_eq!(vlan(&mut rig, Action::Register, "eth0.100", "eth9"), ReturnCode::UnknownInterface);
    assert_eq!(vlan(&mut rig, Action::Register, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(
        vlan(&mut rig, Action::Register, "eth0.100", "eth0"),
        ReturnCode::VlanEntryAlreadyRegistered
    );
    assert_eq!(rig.route(Action::Register, 1, "eth0.100", "eth1"), ReturnCode::Ok);
    assert_eq!(
        vlan(&mut rig, Action::Deregister, "eth0.200", "eth0"),
        ReturnCode::VlanEntryNotFound
    );
    assert_eq!(vlan(&mut rig, Action::Deregister, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 2, "eth0.100", "eth1"), ReturnCode::UnknownInterface);
    assert_eq!(vlan(&mut rig, Action::Register, "eth1.5", "eth1"), ReturnCode::Ok);
    assert_eq!(rig.send(FCode::VlanReset, &[]).rc(), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 3, "eth1.5", "eth1"), ReturnCode::UnknownInterface);
}

#[test]
fn fwmark_is_stored_as_two_sixteen_bit_marks() {
    let mut rig = Rig::new();
    let same = with_action(&flow4(6, 1, (0, 0)), |c| c.fwmark = 0x0001_0005);
    let split = with_action(&flow4(6, 2, (0, 0)), |c| c.fwmark = 0x8004_0003);
    let equal_halves = with_action(&flow4(6, 3, (0, 0)), |c| c.fwmark = 0x8009_0009);
    for flow in [same, split, equal_halves] {
        assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    }
    let table = rig.snapshot();
    let mark = |flow: &Ct4Cmd| table.conntrack(flow.orig.into()).unwrap().fwmark;
    assert_eq!(mark(&same), 5, "without bit 31 both directions use the low 16 bits");
    assert_eq!(mark(&split), 0x8004_0003);
    assert_eq!(mark(&equal_halves), 9);
}

#[test]
fn change_events_parse_back_by_code() {
    let flow = flow4(6, 1, (1, 2));
    let event = CtEvent::V4(CtChange::removed(&flow));
    let parsed = CtEvent::parse(event.fcode(), &event.to_vec()).unwrap();
    assert_eq!(parsed, Some(event));
    assert_eq!(CtEvent::parse(FCode::IpRoute, &[]).unwrap(), None);
    assert!(CtEvent::parse(FCode::Ipv6ConntrackChange, &[0; 44]).is_err());
}
