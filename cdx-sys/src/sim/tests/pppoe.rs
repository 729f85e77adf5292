//! PPPoE sessions (`control_pppoe.c`), PPPoE over a VLAN, and the VLAN and PPPoE walks.

use super::*;
use crate::fpp::query::{WalkedPppoe, WalkedVlan, pppoe_from_walk, vlan_from_walk};
use crate::fpp::{PppoeEntry, VlanEntry};

const PEER: [u8; 6] = [0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f];

fn session(action: Action, id: u16, mac: [u8; 6], phy: &str, name: &str) -> PppoeEntry {
    PppoeEntry {
        action,
        session_id: id,
        mac,
        phy_ifname: IfName::new(phy).unwrap(),
        ifname: IfName::new(name).unwrap(),
        mode: 0,
    }
}

fn pppoe(rig: &mut Rig, entry: &PppoeEntry) -> ReturnCode {
    rig.send(FCode::PppoeEntry, &entry.to_vec()).rc()
}

/// `PPPoE_Handle_Entry`: the size first (44 B in both ABIs); REGISTER refuses a name cdx
/// knows and a session id + MAC it holds (800), and an unknown parent (5); DEREGISTER needs
/// the id, the MAC and the PPP name (801); an unknown action is `UNKNOWN_ACTION`.
#[test]
fn sessions_register_once_on_a_known_parent_and_leave_by_id_mac_and_name() {
    for abi in Abi::ALL {
        let mut rig = Rig::with(|c| c.abi = abi);
        let up = session(Action::Register, 7, PEER, "eth0", "ppp0");
        assert_eq!(
            rig.send(FCode::PppoeEntry, &up.to_vec()[..43]).rc(),
            ReturnCode::WrongCommandSize
        );
        assert_eq!(rig.route(Action::Register, 1, "ppp0", "eth1"), ReturnCode::UnknownInterface);
        let orphan = session(Action::Register, 7, PEER, "eth9", "ppp0");
        assert_eq!(pppoe(&mut rig, &orphan), ReturnCode::UnknownInterface);
        assert_eq!(pppoe(&mut rig, &up), ReturnCode::Ok, "{abi}");
        assert_eq!(pppoe(&mut rig, &up), ReturnCode::PppoeEntryAlreadyRegistered, "its name");
        let same_session = session(Action::Register, 7, PEER, "eth1", "ppp1");
        assert_eq!(pppoe(&mut rig, &same_session), ReturnCode::PppoeEntryAlreadyRegistered);
        let port_name = session(Action::Register, 8, PEER, "eth0", "eth1");
        assert_eq!(pppoe(&mut rig, &port_name), ReturnCode::PppoeEntryAlreadyRegistered);
        assert_eq!(rig.route(Action::Register, 1, "ppp0", "eth1"), ReturnCode::Ok);
        let table = rig.snapshot();
        assert_eq!(table.interfaces, vec!["eth0", "eth1", "eth2", "ppp0"]);
        assert_eq!(
            table.pppoe,
            vec![SimPppoe {
                name: "ppp0".into(),
                session: 7,
                mac: PEER,
                parent: "eth0".into(),
                mode: 0
            }]
        );
        for wrong in [
            session(Action::Deregister, 8, PEER, "", "ppp0"),
            session(Action::Deregister, 7, [2, 0, 0, 0, 0, 1], "", "ppp0"),
            session(Action::Deregister, 7, PEER, "", "ppp1"),
        ] {
            assert_eq!(pppoe(&mut rig, &wrong), ReturnCode::PppoeEntryNotFound, "{wrong:?}");
        }
        let update = session(Action::Update, 7, PEER, "eth0", "ppp0");
        assert_eq!(pppoe(&mut rig, &update), ReturnCode::UnknownAction);
        assert_eq!(
            pppoe(&mut rig, &session(Action::Deregister, 7, PEER, "", "ppp0")),
            ReturnCode::Ok
        );
        assert!(rig.snapshot().pppoe.is_empty());
        assert_eq!(rig.snapshot().route(1), None, "its unused route went with it");
    }
}

/// A session on a registered VLAN: its FMan port is the VLAN's parent
/// (`dpa_get_fm_port_index` follows VLAN and PPPoE parents), so a route whose input is the
/// PPP interface inserts; a route whose input cdx did not know fails the conntrack (0xFFFF).
/// Deregistering the session removes the conntracks routed out of it with REMOVED events.
#[test]
fn pppoe_over_a_vlan_carries_flows_until_the_session_leaves() {
    let mut rig = Rig::new();
    let up = session(Action::Register, 9, PEER, "eth0.100", "ppp0");
    assert_eq!(pppoe(&mut rig, &up), ReturnCode::UnknownInterface, "the VLAN first");
    assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
    assert_eq!(pppoe(&mut rig, &up), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 1, "ppp0", "eth1"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 2, "eth1", "ppp0"), ReturnCode::Ok);
    assert_eq!(rig.route(Action::Register, 3, "eth1", "ppp7"), ReturnCode::Ok);
    let through = flow4(6, 1, (1, 2));
    assert_eq!(rig.ct4(&through), ReturnCode::Ok);
    let ct = rig.conntrack(through.orig);
    assert!(ct.in_hw_orig && ct.in_hw_reply);
    assert_eq!(ct.hw_orig.unwrap().output, "ppp0");
    assert_eq!(ct.hw_reply.unwrap().input, "ppp0");
    assert_eq!(rig.ct4(&flow4(6, 2, (1, 3))), ReturnCode::Failure, "input ppp7 unknown");
    assert_eq!(pppoe(&mut rig, &session(Action::Deregister, 9, PEER, "", "ppp0")), ReturnCode::Ok);
    let events = rig.cdx.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event().orig(), through.orig.to_ip());
    let table = rig.snapshot();
    assert!(table.conntracks.is_empty());
    assert_eq!(table.route(1), None, "route out of ppp0 removed");
    assert_eq!(table.route(2).unwrap().input, "", "route 2 lost its input");
    assert_eq!(table.interfaces, vec!["eth0", "eth1", "eth2", "eth0.100"]);
}

/// `Vlan_Get_Next_Hash_Entry` and `PPPoE_Get_Next_SessionEntry`: QUERY restarts,
/// QUERY_CONT goes on, the end is a bare 601 / 801; VLAN replies are `2 + entry` bytes,
/// PPPoE replies the entry's 44.
#[test]
fn vlan_and_pppoe_walks_list_what_is_registered() {
    for abi in Abi::ALL {
        let mut rig = Rig::with(|c| {
            c.abi = abi;
            c.unwritten = UnwrittenFill::Garbage { seed: 3 };
        });
        let walk_vlans = |rig: &mut Rig| {
            let mut out = Vec::new();
            let mut action = Action::Query;
            loop {
                let step = VlanEntry {
                    action,
                    vlan_id: 0,
                    ifname: IfName::EMPTY,
                    phy_ifname: IfName::EMPTY,
                    mac: [0; 6],
                };
                let reply = rig.send(FCode::VlanEntry, &step.to_vec_for(rig.abi()));
                if reply.rc() != ReturnCode::Ok {
                    assert_eq!(reply.rc(), ReturnCode::VlanEntryNotFound);
                    assert!(reply.data().is_empty());
                    return out;
                }
                out.push(vlan_from_walk(rig.abi(), reply.data()).unwrap());
                action = Action::QueryCont;
            }
        };
        assert!(walk_vlans(&mut rig).is_empty());
        assert_eq!(rig.vlan(Action::Register, 200, "eth1.200", "eth1"), ReturnCode::Ok);
        assert_eq!(rig.vlan(Action::Register, 100, "eth0.100", "eth0"), ReturnCode::Ok);
        let name = |n: &str| Some(IfName::new(n).unwrap());
        assert_eq!(
            walk_vlans(&mut rig),
            vec![
                WalkedVlan { vlan_id: 100, ifname: name("eth0.100"), phy_ifname: name("eth0") },
                WalkedVlan { vlan_id: 200, ifname: name("eth1.200"), phy_ifname: name("eth1") },
            ]
        );
        let up = session(Action::Register, 3, PEER, "eth0.100", "ppp0");
        assert_eq!(pppoe(&mut rig, &up), ReturnCode::Ok);
        let first = rig.send(FCode::PppoeEntry, &PppoeEntry::walk_step(Action::Query).to_vec());
        assert_eq!((first.rc(), first.as_bytes().len()), (ReturnCode::Ok, 44));
        assert_eq!(
            pppoe_from_walk(first.data()).unwrap(),
            WalkedPppoe {
                session_id: 3,
                mac: PEER,
                phy_ifname: name("eth0.100"),
                ifname: name("ppp0")
            }
        );
        let end = rig.send(FCode::PppoeEntry, &PppoeEntry::walk_step(Action::QueryCont).to_vec());
        assert_eq!((end.rc(), end.as_bytes().len()), (ReturnCode::PppoeEntryNotFound, 2));
    }
}
