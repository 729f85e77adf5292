//! VLAN interfaces: registration, removal and what removal does to flows and routes.

use super::*;
use crate::fpp::VlanEntry;

/// `control_vlan.c` `Vlan_handle_entry`: REGISTER refuses a name cdx already knows (600)
/// and an unknown parent (5), and keeps 12 bits of the id; DEREGISTER needs both the id and
/// the name (601 otherwise), and looks in the hash bucket of the id as sent
/// (`HASH_VLAN(htons(vlanID))`), so an id with upper bits set is not found;
/// `Vlan_handle_reset` removes them all. Both ABIs' entry sizes.
#[test]
fn vlan_interfaces_become_route_interfaces_and_leave_by_id_and_name() {
    for abi in Abi::ALL {
        let mut rig = Rig::with(|c| c.abi = abi);
        assert_eq!(
            rig.route(Action::Register, 1, "eth0.100", "eth1"),
            ReturnCode::UnknownInterface
        );
        assert_eq!(
            rig.vlan(Action::Register, 100, "eth0.100", "eth9"),
            ReturnCode::UnknownInterface
        );
        assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok, "{abi}");
        assert_eq!(
            rig.vlan(Action::Register, 7, "eth0.100", "eth0"),
            ReturnCode::VlanEntryAlreadyRegistered
        );
        assert_eq!(
            rig.vlan(Action::Register, 1, "eth1", "eth0"),
            ReturnCode::VlanEntryAlreadyRegistered,
            "a port's name"
        );
        assert_eq!(rig.route(Action::Register, 1, "eth0.100", "eth1"), ReturnCode::Ok);
        assert_eq!(rig.snapshot().interfaces, vec!["eth0", "eth1", "eth2", "eth0.100"]);
        assert_eq!(
            rig.vlan(Action::Deregister, 200, "eth0.100", "eth0"),
            ReturnCode::VlanEntryNotFound,
            "wrong id"
        );
        assert_eq!(
            rig.vlan(Action::Deregister, 100, "eth0.200", "eth0"),
            ReturnCode::VlanEntryNotFound,
            "wrong name"
        );
        assert_eq!(
            rig.vlan(Action::Deregister, 100 | 0x1000, "eth0.100", ""),
            ReturnCode::VlanEntryNotFound,
            "looked up in the bucket of the id as sent"
        );
        assert_eq!(rig.vlan(Action::Deregister, 100, "eth0.100", ""), ReturnCode::Ok);
        assert_eq!(
            rig.route(Action::Register, 2, "eth0.100", "eth1"),
            ReturnCode::UnknownInterface
        );
        assert_eq!(rig.snapshot().route(1), None, "its unused route went with it");
        assert_eq!(rig.vlan(Action::Register, 5, "eth1.5", "eth1"), ReturnCode::Ok);
        assert_eq!(rig.send(FCode::VlanReset, &[]).rc(), ReturnCode::Ok);
        assert_eq!(rig.route(Action::Register, 3, "eth1.5", "eth1"), ReturnCode::UnknownInterface);
    }
}

/// `layer2.c` `remove_onif_by_index`: `IP_deleteCt_from_onif_index` sends REMOVED for every
/// conntrack with a direction routed out of the interface and removes it (not if the event
/// cannot be sent), then the routes out of it that nothing references. A route whose input
/// was the interface keeps no input, so new conntracks through it fail with 0xFFFF.
#[test]
fn removing_a_vlan_removes_its_flows_with_events_and_its_routes() {
    let mut rig = Rig::new();
    assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 1, "eth0.100", "eth1"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 2, "eth1", "eth0.100"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 3, "eth2", "eth1"), ReturnCode::Ok);
    let through = flow4(6, 1, (1, 2));
    let elsewhere = flow4(6, 2, (3, 0));
    assert_eq!(rig.ct4(&through), ReturnCode::Ok);
    assert_eq!(rig.ct4(&elsewhere), ReturnCode::Ok);
    assert_eq!(rig.vlan(Action::Deregister, 100, "eth0.100", "eth0"), ReturnCode::Ok);
    let events = rig.cdx.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].event().kind(), events[0].event().orig()),
        (Action::Removed, through.orig.to_ip())
    );
    let table = rig.snapshot();
    assert_eq!(
        table.conntracks.iter().map(|c| c.orig).collect::<Vec<_>>(),
        vec![elsewhere.orig.into()]
    );
    assert_eq!(table.routes.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2, 3], "route 1 went");
    assert_eq!(table.route(2).unwrap().input, "", "route 2's input is gone");
    assert_eq!(rig.ct4(&flow4(6, 3, (2, 0))), ReturnCode::Failure);
}

/// `IPv4_delete_CTpair` returns 1 when `msg_send` fails, and `IP_deleteCt_from_onif_index`
/// then leaves the conntrack (and its route) in place.
#[test]
fn a_flow_whose_event_cannot_be_sent_outlives_its_vlan() {
    let mut rig = Rig::new();
    assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 1, "eth0.100", "eth1"), ReturnCode::Ok);
    let flow = flow4(6, 1, (1, 0));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    let entry = VlanEntry {
        action: Action::Deregister,
        vlan_id: 100,
        ifname: IfName::new("eth0.100").unwrap(),
        phy_ifname: IfName::EMPTY,
        mac: [0; 6],
    };
    let now = rig.t0;
    let reply =
        rig.cdx.handle_with(FCode::VlanEntry, &entry.to_vec_for(Abi::Lsdk), now, &mut |_| false);
    assert_eq!(reply.rc(), ReturnCode::Ok);
    let table = rig.snapshot();
    assert_eq!(table.conntracks.len(), 1);
    assert_eq!(table.route(1).map(|r| r.refcount), Some(1), "still linked, its output gone");
}
