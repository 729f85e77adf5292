//! Sizes, codes, routes, registration, walks and reset.

use super::*;
use crate::fpp::query::{self, WalkedConntrack};
use crate::fpp::{CtExtension, CtFlags, V4, V6, unwritten};

/// Every handler checks the length first (`IPv4_HandleIP_CONNTRACK`,
/// `IP_HandleIP_ROUTE_RESOLVE`, `IPv4_HandleIP_Get_Timeout`, … in `control_ipv4.c`).
#[test]
fn every_payload_needs_its_exact_size_in_its_abi() {
    for abi in Abi::ALL {
        let mut rig = Rig::with(|c| c.abi = abi);
        let other = abi.other();
        let cases: [(FCode, usize); 11] = [
            (FCode::IpRoute, 83),
            (FCode::Ipv4Conntrack, 45),
            (FCode::Ipv4Conntrack, V4::basic_len(other)),
            (FCode::Ipv4Conntrack, V4::extended_len(other)),
            (FCode::Ipv6Conntrack, V6::basic_len(other)),
            (FCode::Ipv6Conntrack, 72),
            (FCode::Ipv4SetTimeout, 11),
            (FCode::Ipv4GetTimeout, V4::basic_len(other)),
            (FCode::Ipv4GetTimeout, V4::extended_len(abi)),
            (FCode::Ipv4FfControl, 3),
            (FCode::VlanEntry, if abi == Abi::Lsdk { 44 } else { 36 }),
        ];
        for (fcode, len) in cases {
            let reply = rig.send(fcode, &vec![0; len]);
            assert_eq!(reply.rc(), ReturnCode::WrongCommandSize, "{abi}: {fcode:?}, {len} B");
            assert_eq!(reply.as_bytes(), &[2, 0], "a bare 2-byte code");
        }
        rig.two_routes();
        assert_eq!(rig.ct4(&flow4(6, 1000, (1, 2))), ReturnCode::Ok, "{abi}: basic");
        let extended =
            with(&flow4(6, 1001, (1, 2)), |c| c.extension = Some(CtExtension::default()));
        assert_eq!(rig.ct4(&extended), ReturnCode::Ok, "{abi}: extended");
    }
}

/// `cdx_cmd_handler` (`cdx_cmdhandler.c`): VOICE_BUFFER_RESET answered by the dispatcher,
/// modules without a handler `UNKNOWN_COMMAND`; `IPv4_HandleIP_CONNTRACK` answers an
/// unknown action `UNKNOWN_ACTION`, `IPv6_handle_CONNTRACK` `UNKNOWN_COMMAND`.
#[test]
fn unknown_commands_and_actions() {
    let mut rig = Rig::new();
    assert_eq!(rig.send(FCode::Unknown(0x0999), &[]).rc(), ReturnCode::UnknownCommand);
    assert_eq!(rig.send(FCode::MacvlanEntry, &[0; 40]).rc(), ReturnCode::UnknownCommand);
    assert_eq!(
        rig.send(FCode::PppoeEntry, &[0; 44]).rc(),
        ReturnCode::UnknownInterface,
        "PPPoE has a handler: a session on no interface"
    );
    assert_eq!(rig.route(Action::KeepAlive, 1, "eth0", "eth1"), ReturnCode::UnknownAction);
    let cmd = with(&flow4(6, 1, (0, 0)), |c| c.action = Action::Unknown(5));
    assert_eq!(rig.ct4(&cmd), ReturnCode::UnknownAction);
    let cmd = with(&flow6(6, 1, (0, 0)), |c| c.action = Action::Unknown(5));
    assert_eq!(rig.ct6(&cmd), ReturnCode::UnknownCommand, "IPv6's default case");
    assert_eq!(rig.send(FCode::VoiceBufferReset, &[]).rc(), ReturnCode::Ok);
}

/// `IP_HandleIP_ROUTE_RESOLVE` (`control_ipv4.c`): duplicate id 200, unknown output 5,
/// unknown input stored as none; `rte_set_mtu` (`layer2.h`): MTU 0 stored as 0xFFFF.
#[test]
fn route_register_rules() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Register, 7, "eth0", "eth1"), ReturnCode::Ok);
    assert_eq!(
        rig.route(Action::Register, 7, "eth2", "eth1"),
        ReturnCode::RtEntryAlreadyRegistered
    );
    assert_eq!(rig.route(Action::Register, 8, "veth9", "eth1"), ReturnCode::UnknownInterface);
    assert_eq!(rig.route(Action::Register, 9, "eth2", "cni0"), ReturnCode::Ok);
    let zero_mtu = with(&route_cmd(Action::Register, 10, "eth0", "eth1"), |c| c.mtu = 0);
    assert_eq!(rig.send(FCode::IpRoute, &zero_mtu.to_vec()).rc(), ReturnCode::Ok);
    let table = rig.snapshot();
    assert_eq!(table.routes.iter().map(|r| r.id).collect::<Vec<_>>(), vec![7, 9, 10]);
    assert_eq!(
        table.route(7),
        Some(&SimRoute {
            id: 7,
            output: "eth0".into(),
            input: "eth1".into(),
            underlying_input: "eth1".into(),
            mac: [2, 0, 0, 0, 0, 7],
            mtu: 1500,
            refcount: 0
        })
    );
    assert_eq!(
        (table.route(9).unwrap().input.as_str(), table.route(9).unwrap().underlying_input.as_str()),
        ("", "")
    );
    assert_eq!(table.route(10).unwrap().mtu, 0xffff, "MTU 0 means no limit");
    assert_eq!(table.interfaces, vec!["eth0", "eth1", "eth2"]);
    // `RouteEntry.id` is 16 bits: an id above 0xFFFF is accepted and never found again.
    assert_eq!(rig.route(Action::Register, 0x1_0001, "eth0", "eth1"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Deregister, 0x1_0001, "", ""), ReturnCode::RtEntryNotFound);
    assert_eq!(rig.cdx.counters().unreachable_routes, 1);
}

/// `IP_HandleIP_ROUTE_RESOLVE`, ACTION_UPDATE: output, MAC and inputs replaced, MTU kept.
#[test]
fn route_update_replaces_ports_and_mac_but_not_mtu() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Update, 3, "eth0", "eth1"), ReturnCode::RtEntryNotFound);
    assert_eq!(rig.route(Action::Register, 3, "eth0", "eth1"), ReturnCode::Ok);
    let update = with(&route_cmd(Action::Update, 3, "eth2", "eth0"), |c| {
        c.mtu = 9000;
        c.dst_mac = [0xaa; 6];
    });
    assert_eq!(rig.send(FCode::IpRoute, &update.to_vec()).rc(), ReturnCode::Ok);
    let route = rig.snapshot().route(3).cloned().unwrap();
    assert_eq!((route.output.as_str(), route.input.as_str()), ("eth2", "eth0"));
    assert_eq!((route.mac, route.mtu), ([0xaa; 6], 1500));
    assert_eq!(rig.route(Action::Update, 3, "bogus0", "eth0"), ReturnCode::UnknownInterface);
}

/// `L2_route_remove` (`layer2.c`): 201 unknown, 202 still referenced.
#[test]
fn route_deregister_refuses_linked_routes() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Deregister, 1, "", ""), ReturnCode::RtEntryNotFound);
    rig.two_routes();
    let flow = flow4(6, 1000, (1, 2));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert_eq!(rig.snapshot().route(1).unwrap().refcount, 1);
    assert_eq!(rig.route(Action::Deregister, 1, "", ""), ReturnCode::RtEntryLinked);
    assert_eq!(rig.ct4(&flow.basic(Action::Deregister)), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Deregister, 1, "", ""), ReturnCode::Ok);
    assert_eq!(rig.snapshot().route(1), None);
}

/// `IPV4_Get_Next_Hash_RtEntry` / `IPV4_RT_Get_Hash_Snapshot`: the entry at offset 0 under
/// the code, names, MAC, MTU, id written; the end is a bare 201.
#[test]
fn route_walk_returns_each_route_then_not_found() {
    let mut rig = Rig::with(|c| c.unwritten = UnwrittenFill::GARBAGE);
    assert_eq!(rig.route(Action::Register, 20, "eth0", "eth1"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 5, "eth1", "cni0"), ReturnCode::Ok);
    let query = route_cmd(Action::Query, 0, "", "").to_vec();
    let cont = route_cmd(Action::QueryCont, 0, "", "").to_vec();
    let first = rig.send(FCode::IpRoute, &query);
    assert_eq!((first.rc(), first.as_bytes().len()), (ReturnCode::Ok, 86));
    let bytes = first.as_bytes();
    assert_eq!(&bytes[4..10], &[2, 0, 0, 0, 0, 5], "MAC written");
    assert_eq!(&bytes[12..17], b"eth1\0", "output name and its NUL written");
    assert_eq!(bytes[28], 0, "no input known: only its first byte");
    for range in unwritten::route_walk_entry(4, 0).into_iter().chain(std::iter::once(84..86)) {
        assert!(bytes[range.clone()].iter().all(|&b| b != 0), "{range:?} is garbage without NUL");
    }
    let route = query::route_from_walk(first.data()).unwrap();
    assert_eq!((route.id, route.mtu, route.input), (5, 1500, None));
    assert_eq!(route.output.map(|n| n.to_string()).as_deref(), Some("eth1"));
    let second = query::route_from_walk(rig.send(FCode::IpRoute, &cont).data()).unwrap();
    assert_eq!((second.id, second.input.map(|n| n.to_string())), (20, Some("eth1".into())));
    let end = rig.send(FCode::IpRoute, &cont);
    assert_eq!((end.rc(), end.as_bytes().len()), (ReturnCode::RtEntryNotFound, 2));
    let again = query::route_from_walk(rig.send(FCode::IpRoute, &cont).data()).unwrap();
    assert_eq!(again.id, 5, "the walk starts over after its end");
}

#[test]
fn conntrack_with_registered_routes_is_in_hardware_both_ways() {
    let mut rig = Rig::new();
    rig.two_routes();
    let flow = with(&flow4(6, 1000, (1, 2)), |c| c.qos_mark = 0x10);
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let hw = |output: &str, input: &str, mac: u8| {
        Some(SimHwEntry {
            output: output.into(),
            input: input.into(),
            mac: [2, 0, 0, 0, 0, mac],
            mtu: 1500,
            source_mac: None,
        })
    };
    assert_eq!(
        rig.conntrack(flow.orig),
        SimConntrack {
            orig: flow.orig.into(),
            reply: flow.reply.into(),
            protocol: 6,
            flags: CtFlags::EMPTY,
            qos_mark: 0x10,
            route_id: 1,
            route_id_reply: 2,
            linked_orig: Some(1),
            linked_reply: Some(2),
            in_hw_orig: true,
            in_hw_reply: true,
            hw_orig: hw("eth0", "eth1", 1),
            hw_reply: hw("eth1", "eth0", 2),
            remaining: Duration::from_secs(432_000),
            aging: true,
        }
    );
    let table = rig.snapshot();
    assert_eq!((table.route(1).unwrap().refcount, table.route(2).unwrap().refcount), (1, 1));
    assert_eq!(rig.cdx.hw_pairs(), 1);
}

/// `IP_Check_Route` links a direction only when its route exists; REGISTER answers 0 either
/// way; a route registered later is linked by the next UPDATE.
#[test]
fn unregistered_route_id_is_accepted_but_not_in_hardware() {
    let mut rig = Rig::new();
    assert_eq!(rig.route(Action::Register, 1, "eth0", "eth1"), ReturnCode::Ok);
    let flow = flow4(17, 1000, (1, 99));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let ct = rig.conntrack(flow.orig);
    assert_eq!((ct.in_hw_orig, ct.in_hw_reply, ct.route_id_reply), (true, false, 99));
    assert_eq!(rig.route(Action::Register, 99, "eth1", "eth0"), ReturnCode::Ok);
    assert!(!rig.conntrack(flow.orig).in_hw_reply);
    assert_eq!(rig.ct4(&with(&flow, |c| c.action = Action::Update)), ReturnCode::Ok);
    assert!(rig.conntrack(flow.orig).in_hw_reply);
    assert_eq!(rig.snapshot().route(99).unwrap().refcount, 1);
}

#[test]
fn deregister_unknown_is_not_found_and_known_releases_everything() {
    let mut rig = Rig::new();
    rig.two_routes();
    let flow = flow4(6, 1000, (1, 2));
    assert_eq!(rig.ct4(&flow.basic(Action::Deregister)), ReturnCode::CtEntryNotFound);
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let swapped = with(&flow, |c| std::mem::swap(&mut c.orig, &mut c.reply));
    assert_eq!(
        rig.ct4(&swapped.basic(Action::Deregister)),
        ReturnCode::CtEntryNotFound,
        "IPv4 wants the original first"
    );
    assert_eq!(rig.ct4(&flow.basic(Action::Deregister)), ReturnCode::Ok);
    let table = rig.snapshot();
    assert!(table.conntracks.is_empty());
    assert_eq!((table.route(1).unwrap().refcount, rig.cdx.hw_pairs()), (0, 0));
    assert_eq!(rig.cdx.counters().hw_deletes, 2);
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok, "the tuples are free again");
}

/// `IPv4_CT_Get_Hash_Snapshot`: tuples, protocol, mark, format and SA counts written; flags
/// and route ids not (they read as garbage here, and the decoder keeps them apart).
#[test]
fn conntrack_walk_writes_only_what_cdx_writes_with_one_cursor_per_family() {
    for abi in Abi::ALL {
        let mut rig = Rig::with(|c| {
            c.abi = abi;
            c.unwritten = UnwrittenFill::GARBAGE;
        });
        rig.two_routes();
        let a = with(&flow4(6, 1, (1, 2)), |c| c.qos_mark = 7);
        let b = flow4(17, 2, (1, 0));
        assert_eq!(rig.ct4(&a), ReturnCode::Ok);
        assert_eq!(rig.ct4(&b), ReturnCode::Ok);
        assert_eq!(rig.ct6(&flow6(6, 1, (0, 0))), ReturnCode::Ok);
        let query = Ct4Cmd::walk_step(Action::Query).to_vec_for(abi);
        let cont = Ct4Cmd::walk_step(Action::QueryCont).to_vec_for(abi);
        let first = rig.send(FCode::Ipv4Conntrack, &query);
        assert_eq!(
            (first.rc(), first.as_bytes().len()),
            (ReturnCode::Ok, V4::extended_len(abi) + 2)
        );
        let bytes = first.as_bytes();
        for range in unwritten::conntrack_walk_entry::<V4>(abi) {
            assert!(bytes[range.clone()].iter().all(|&b| b != 0), "{abi}: {range:?} garbage");
        }
        let walked: WalkedConntrack<V4> = query::conntrack_from_walk(abi, first.data()).unwrap();
        assert_eq!(
            (walked.orig, walked.reply, walked.protocol, walked.qos_mark),
            (a.orig, a.reply, 6, 7)
        );
        assert_ne!(walked.unwritten_by_cdx.route_id, 1, "{abi}: route ids are not written");
        let second: WalkedConntrack<V4> =
            query::conntrack_from_walk(abi, rig.send(FCode::Ipv4Conntrack, &cont).data()).unwrap();
        assert_eq!((second.orig, second.protocol), (b.orig, 17));
        let v6 = rig.send(FCode::Ipv6Conntrack, &Ct6Cmd::walk_step(Action::Query).to_vec_for(abi));
        assert_eq!(v6.as_bytes().len(), V6::extended_len(abi) + 2, "its own cursor");
        let end = rig.send(FCode::Ipv4Conntrack, &cont);
        assert_eq!(end.as_bytes(), &[101, 0], "CT_ENTRY_NOT_FOUND ends the walk");
    }
}

/// `IPv4_HandleIP_RESET` clears both families and every route; IPv6's reset is a no-op.
#[test]
fn reset_clears_both_families_and_routes_ipv6_reset_does_nothing() {
    let mut rig = Rig::new();
    rig.two_routes();
    assert_eq!(rig.ct4(&flow4(6, 1, (1, 2))), ReturnCode::Ok);
    assert_eq!(rig.ct6(&flow6(6, 1, (1, 2))), ReturnCode::Ok);
    assert_eq!(rig.send(FCode::Ipv6Reset, &[]).rc(), ReturnCode::Ok);
    assert_eq!((rig.snapshot().conntracks.len(), rig.snapshot().routes.len()), (2, 2));
    assert_eq!(rig.send(FCode::Ipv4Reset, &[]).rc(), ReturnCode::Ok);
    assert!(rig.snapshot().conntracks.is_empty() && rig.snapshot().routes.is_empty());
    assert_eq!(rig.cdx.hw_pairs(), 0);
    assert_eq!(
        rig.route(Action::Register, 1, "eth0", "eth1"),
        ReturnCode::Ok,
        "ids are free again"
    );
}

/// The mark per direction and in walks, per ABI (`crate::fpp::mark`).
#[test]
fn marks_are_kept_per_direction_as_each_build_keeps_them() {
    let mut lsdk = Rig::new();
    let same = with(&flow4(6, 1, (0, 0)), |c| c.qos_mark = 0x0001_0005);
    let split = with(&flow4(6, 2, (0, 0)), |c| c.qos_mark = 0x8004_0003);
    for flow in [same, split] {
        assert_eq!(lsdk.ct4(&flow), ReturnCode::Ok);
    }
    assert_eq!(lsdk.conntrack(same.orig).qos_mark, 5, "without bit 31 both use the low 16");
    assert_eq!(lsdk.conntrack(split.orig).qos_mark, 0x8004_0003);
    let mut ask = Rig::with(|c| c.abi = Abi::Ask);
    let wide = with(&flow4(6, 3, (0, 0)), |c| c.qos_mark = 0x8000_0002_0000_0103);
    let orig_only = with(&flow4(6, 4, (0, 0)), |c| c.qos_mark = 0x0000_0002_0000_0103);
    for flow in [wide, orig_only] {
        assert_eq!(ask.ct4(&flow), ReturnCode::Ok);
    }
    assert_eq!(ask.conntrack(wide.orig).qos_mark, 0x8000_0002_0000_0103);
    assert_eq!(ask.conntrack(orig_only.orig).qos_mark, 0x103, "no bit 63: the reply gets 0");
}
