//! cdx's interface table: how many VLANs and sessions it takes, what NXP's cdx loses on
//! removal, what a child reports once its parent is gone, and where a session's packets go.

use super::*;
use crate::fpp::query::pppoe_from_walk;
use crate::fpp::{PppoeEntry, VlanEntry};

const PEER: [u8; 6] = [0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f];

fn pppoe(rig: &mut Rig, action: Action, id: u16, phy: &str, name: &str) -> ReturnCode {
    let entry = PppoeEntry {
        action,
        session_id: id,
        mac: PEER,
        phy_ifname: IfName::new(phy).unwrap(),
        ifname: IfName::new(name).unwrap(),
        mode: 0,
    };
    rig.send(FCode::PppoeEntry, &entry.to_vec()).rc()
}

fn session_up(rig: &mut Rig, n: u16) -> ReturnCode {
    pppoe(rig, Action::Register, n, "eth0", &format!("ppp{n}"))
}

fn session_down(rig: &mut Rig, n: u16) -> ReturnCode {
    pppoe(rig, Action::Deregister, n, "", &format!("ppp{n}"))
}

/// `devman.c` `dpa_add_pppoe_if` and `cdx_ifstats.c` `alloc_iface_stats`: four statistics
/// slots for PPPoE sessions (`MAX_PPPoE_INTERFACES`, both builds; the ASK port also counts
/// them in `iface_pppoe_count`). A fifth session is `ERR_CREATION_FAILED` until one goes.
#[test]
fn cdx_holds_four_pppoe_sessions_at_most() {
    for abi in Abi::ALL {
        let mut rig = Rig::with(|c| c.abi = abi);
        for n in 0..4 {
            assert_eq!(session_up(&mut rig, n), ReturnCode::Ok, "{abi} ppp{n}");
        }
        assert_eq!(session_up(&mut rig, 4), ReturnCode::CreationFailed, "{abi}");
        assert_eq!(rig.route(Action::Register, 1, "ppp4", "eth1"), ReturnCode::UnknownInterface);
        assert_eq!(rig.cdx.counters().interfaces_refused, 1);
        assert_eq!(session_down(&mut rig, 3), ReturnCode::Ok, "the newest: its slot is free");
        assert_eq!(session_up(&mut rig, 4), ReturnCode::Ok, "{abi}");
    }
}

/// `cdx_ifstats.c` `cdxdrv_init_stats`: the other interfaces share the rest of 128 slots
/// with the FMan ports (122 on NXP's cdx, whose larger PPPoE slots take 6; 124 on the ASK
/// port, `dpa_add_vlan_if`'s `iface_count` check).
#[test]
fn vlans_share_the_statistics_slots_with_the_fman_ports() {
    for (abi, slots) in [(Abi::Lsdk, 122), (Abi::Ask, 124)] {
        let mut rig = Rig::with(|c| c.abi = abi);
        let vlans = slots - 3;
        for id in 1..=vlans {
            let name = format!("eth0.{id}");
            assert_eq!(rig.vlan(Action::Register, id, &name, "eth0"), ReturnCode::Ok, "{abi}");
        }
        let one_more = format!("eth1.{vlans}");
        assert_eq!(
            rig.vlan(Action::Register, vlans, &one_more, "eth1"),
            ReturnCode::CreationFailed,
            "{abi}"
        );
        let newest = format!("eth0.{vlans}");
        assert_eq!(rig.vlan(Action::Deregister, vlans, &newest, ""), ReturnCode::Ok);
        assert_eq!(rig.vlan(Action::Register, vlans, &one_more, "eth1"), ReturnCode::Ok);
        assert_eq!(session_up(&mut rig, 1), ReturnCode::Ok, "sessions have their own slots");
    }
}

/// NXP's `devman.c` `dpa_release_interface` frees an interface's statistics only when it
/// heads devman's list (the newest interface still there; `dpa_add_port_to_list`
/// prepends): removing any other keeps them for good. The ASK port frees them.
#[test]
fn nxp_loses_the_statistics_slot_of_an_interface_that_was_not_the_newest() {
    for (abi, lost) in [(Abi::Lsdk, 1), (Abi::Ask, 0)] {
        let mut rig = Rig::with(|c| c.abi = abi);
        for n in 0..4 {
            assert_eq!(session_up(&mut rig, n), ReturnCode::Ok);
        }
        assert_eq!(session_down(&mut rig, 0), ReturnCode::Ok, "the oldest");
        assert_eq!(rig.cdx.counters().interface_slots_leaked, lost);
        let expected = if lost == 1 { ReturnCode::CreationFailed } else { ReturnCode::Ok };
        assert_eq!(session_up(&mut rig, 4), expected, "{abi}");
        if abi == Abi::Lsdk {
            assert_eq!(session_down(&mut rig, 3), ReturnCode::Ok, "the newest");
            assert_eq!(session_up(&mut rig, 4), ReturnCode::Ok);
            assert_eq!(session_up(&mut rig, 5), ReturnCode::CreationFailed, "three and one lost");
        }
    }
}

/// `control_vlan.c` `Vlan_handle_reset` removes the VLANs bucket by bucket (`HASH_VLAN` of
/// the id), newest first in a bucket: eth1.2 (bucket 2, the older) goes before eth0.9
/// (bucket 9) while eth0.9 heads devman's list, so NXP's cdx loses eth1.2's slot.
#[test]
fn vlan_reset_removes_in_hash_order_and_nxp_loses_what_was_not_newest() {
    for (abi, lost) in [(Abi::Lsdk, 1), (Abi::Ask, 0)] {
        let mut rig = Rig::with(|c| c.abi = abi);
        assert_eq!(rig.vlan(Action::Register, 2, "eth1.2", "eth1"), ReturnCode::Ok);
        assert_eq!(rig.vlan(Action::Register, 9, "eth0.9", "eth0"), ReturnCode::Ok);
        assert_eq!(rig.send(FCode::VlanReset, &[]).rc(), ReturnCode::Ok);
        assert!(rig.snapshot().vlans.is_empty());
        assert_eq!(rig.cdx.counters().interface_slots_leaked, lost, "{abi}");
    }
}

/// A session keeps a pointer to the VLAN it runs on (`PPPoE_Info.itf.phys`); removing the
/// VLAN (`remove_onif_by_index`) clears its `gOnif_DB` slot and frees it. The session's
/// walk entry then names whatever the slot holds (`PPPoE_Get_Session_Snapshot`:
/// `get_onif_name(itf.phys->index)`): nothing, then the next interface given that slot.
/// Its packets have no FMan port any more: a flow out of it or into it fails (0xFFFF), even
/// after a VLAN of the same name is registered again (a new interface).
#[test]
fn a_session_whose_vlan_was_removed_reports_the_vlan_s_old_slot() {
    let mut rig = Rig::with(|c| c.unwritten = UnwrittenFill::Garbage { seed: 5 });
    assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(pppoe(&mut rig, Action::Register, 7, "eth0.100", "ppp0"), ReturnCode::Ok);
    let walk = |rig: &mut Rig| {
        let reply = rig.send(FCode::PppoeEntry, &PppoeEntry::walk_step(Action::Query).to_vec());
        assert_eq!(reply.rc(), ReturnCode::Ok);
        pppoe_from_walk(reply.data()).unwrap().phy_ifname.map(|n| n.to_string())
    };
    assert_eq!(walk(&mut rig).as_deref(), Some("eth0.100"));
    assert_eq!(rig.vlan(Action::Deregister, 100, "eth0.100", ""), ReturnCode::Ok);
    assert_eq!(walk(&mut rig), None, "the slot is empty");
    assert_eq!(rig.vlan(Action::Register, 7, "eth1.7", "eth1"), ReturnCode::Ok);
    assert_eq!(walk(&mut rig).as_deref(), Some("eth1.7"), "the slot's next interface");
    assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 1, "ppp0", "eth1"), ReturnCode::Ok, "ppp0 is known");
    assert_eq!(rig.route(Action::Register, 2, "eth1", "ppp0"), ReturnCode::Ok);
    assert_eq!(rig.ct4(&flow4(6, 1, (1, 0))), ReturnCode::Failure, "no port out of ppp0");
    assert_eq!(rig.ct4(&flow4(6, 2, (2, 0))), ReturnCode::Failure, "no port into it");
    assert_eq!(rig.snapshot().pppoe[0].parent, "eth0.100", "as registered");
}

/// `devman.c` `dpa_get_tx_info_by_itf` and `cdx_ehash.c`: out of a PPPoE session the
/// hardware entry's destination is the session's peer (`ac_mac_addr`), whatever MAC the
/// route carries; out of a VLAN it is the route's.
#[test]
fn a_flow_out_of_a_session_is_sent_to_the_session_s_peer() {
    for abi in Abi::ALL {
        let mut rig = Rig::with(|c| c.abi = abi);
        assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
        assert_eq!(pppoe(&mut rig, Action::Register, 7, "eth0.100", "ppp0"), ReturnCode::Ok);
        assert_eq!(rig.route(Action::Register, 1, "ppp0", "eth1"), ReturnCode::Ok);
        assert_eq!(rig.route(Action::Register, 2, "eth1", "ppp0"), ReturnCode::Ok);
        assert_eq!(rig.route(Action::Register, 3, "eth0.100", "eth1"), ReturnCode::Ok);
        let through_session = flow4(6, 1, (1, 2));
        let through_vlan = flow4(6, 2, (3, 0));
        assert_eq!(rig.ct4(&through_session), ReturnCode::Ok);
        assert_eq!(rig.ct4(&through_vlan), ReturnCode::Ok);
        let ct = rig.conntrack(through_session.orig);
        assert_eq!(ct.hw_orig.unwrap().mac, PEER, "{abi}");
        assert_eq!(ct.hw_reply.unwrap().mac, [2, 0, 0, 0, 0, 2], "into the session: route 2's");
        assert_eq!(rig.conntrack(through_vlan.orig).hw_orig.unwrap().mac, [2, 0, 0, 0, 0, 3]);
    }
}

/// The ASK port keeps the MAC of a VLAN registration (`dpa_add_vlan_if`,
/// `vlan_info.mac_addr`) and sends every frame out of the VLAN, or out of a session on it,
/// with it as source (`dpa_get_tx_info_by_itf`: the first VLAN's `src_mac`); NXP's command
/// has no MAC, its frames leave with the FMan port's own. Walks write no MAC in either.
#[test]
fn the_ask_port_sends_out_of_a_vlan_with_the_mac_it_was_registered_with() {
    for (abi, kept) in [(Abi::Lsdk, None), (Abi::Ask, Some([2, 0, 0, 0, 0, 0x64]))] {
        let mut rig = Rig::with(|c| c.abi = abi);
        assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
        assert_eq!(pppoe(&mut rig, Action::Register, 7, "eth0.100", "ppp0"), ReturnCode::Ok);
        assert_eq!(rig.snapshot().vlans[0].mac, kept.unwrap_or_default(), "{abi}");
        assert_eq!(rig.route(Action::Register, 1, "eth0.100", "eth1"), ReturnCode::Ok);
        assert_eq!(rig.route(Action::Register, 2, "ppp0", "eth1"), ReturnCode::Ok);
        assert_eq!(rig.route(Action::Register, 3, "eth1", "eth0.100"), ReturnCode::Ok);
        let (out_of_vlan, out_of_session) = (flow4(6, 1, (1, 3)), flow4(6, 2, (2, 0)));
        assert_eq!(rig.ct4(&out_of_vlan), ReturnCode::Ok);
        assert_eq!(rig.ct4(&out_of_session), ReturnCode::Ok);
        let ct = rig.conntrack(out_of_vlan.orig);
        assert_eq!(ct.hw_orig.unwrap().source_mac, kept, "{abi}");
        assert_eq!(ct.hw_reply.unwrap().source_mac, None, "out of eth1: the port's own");
        assert_eq!(rig.conntrack(out_of_session.orig).hw_orig.unwrap().source_mac, kept);
    }
}

/// A VLAN walk names a VLAN's removed parent (QinQ) as the session walk does.
#[test]
fn a_vlan_whose_parent_vlan_was_removed_reports_the_parent_s_old_slot() {
    let mut rig = Rig::new();
    assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(rig.vlan(Action::Register, 5, "eth0.100.5", "eth0.100"), ReturnCode::Ok);
    assert_eq!(rig.vlan(Action::Deregister, 100, "eth0.100", ""), ReturnCode::Ok);
    let step = VlanEntry {
        action: Action::Query,
        vlan_id: 0,
        ifname: IfName::EMPTY,
        phy_ifname: IfName::EMPTY,
        mac: [0; 6],
    };
    let reply = rig.send(FCode::VlanEntry, &step.to_vec_for(Abi::Lsdk));
    let walked = crate::fpp::query::vlan_from_walk(Abi::Lsdk, reply.data()).unwrap();
    assert_eq!((walked.vlan_id, walked.phy_ifname), (5, None));
}
