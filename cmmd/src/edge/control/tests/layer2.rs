//! Bridges, VLANs and PPPoE in the vendor's formats: the kernel's links (`show vlan`, `show
//! pppoe`), cdx's tables (`query vlan`, `query pppoe`), `vlan add|delete`, and the ports of
//! `show connections detail`.

use super::*;
use crate::core::net::{LinkKind, PppoeSession};

fn name(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

/// Port `r1`, its VLAN `r1.100`, a PPP link `ppp0` whose session runs on the VLAN, and a VLAN
/// on `veth0` (not a fast-path port).
fn wan() -> NetView {
    let mut n = NetView::new([name("r1")]);
    n.upsert_link(Link::plain(10, name("r1"), true, 1500));
    n.upsert_link(Link::plain(VETH, name("veth0"), true, 1500));
    n.upsert_link(Link {
        kind: LinkKind::Vlan { id: 100, parent: 10 },
        ..Link::plain(11, name("r1.100"), true, 1500)
    });
    n.upsert_link(Link {
        kind: LinkKind::Vlan { id: 7, parent: VETH },
        ..Link::plain(12, name("veth0.7"), true, 1500)
    });
    n.upsert_link(Link {
        kind: LinkKind::Ppp,
        noarp: true,
        ..Link::plain(13, name("ppp0"), true, 1492)
    });
    n.set_pppoe_sessions(vec![PppoeSession {
        id: 42,
        peer: Mac([0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]),
        device: name("r1.100"),
        ppp: None,
    }]);
    n
}

#[test]
fn show_vlan_and_show_pppoe_list_the_kernel_s_links_with_what_cdx_holds() {
    let mut bench = Bench::with(wan(), EngineConfig::default());
    let vlans = text(&[
        "Interface: r1.100, VLAN Id:  100, physical Interface: r1, Flags: 1",
        "Interface: veth0.7, VLAN Id:    7, physical Interface: veth0, Flags: 0",
    ]);
    assert_eq!(bench.run_line("show vlan"), vlans);
    assert_eq!(bench.run_line("vlan show"), vlans);
    assert_eq!(
        bench.run_line("show pppoe"),
        text(&[
            "PPP Device: ppp0, Session ID: 42, MAC addr: 5A:1B:2C:3D:4E:5F, Physical Device: r1.100, \
             Flags: 1, itf_flags: 10"
        ])
    );
    // The session ends: the link stays, unprogrammed, without its session.
    bench.engine.on_pppoe_sessions(Vec::new(), bench.now);
    bench.run();
    assert_eq!(
        bench.run_line("show pppoe"),
        text(&[
            "PPP Device: ppp0, Session ID: 0, MAC addr: 00:00:00:00:00:00, Physical Device: ppp0, \
             Flags: 0, itf_flags: 0"
        ])
    );
    assert_eq!(bench.run_line("show vlan").lines().count(), 2);
}

#[test]
fn query_vlan_and_query_pppoe_walk_cdx_s_tables() {
    let mut bench = Bench::new();
    assert_eq!(bench.run_line("query vlan"), text(&["ERROR: FPP VLAN table empty"]));
    assert_eq!(bench.run_line("query pppoe"), text(&["ERROR: FPP PPPoE table empty"]));
    let mut bench = Bench::with(wan(), EngineConfig::default());
    assert_eq!(
        bench.run_line("query vlan"),
        text(&[
            "VLAN interfaces:",
            "Interface: r1.100, VLAN Id  :  100,  physical Interface: r1 ",
            "Total VLAN Entries:1",
        ]),
        "the VLAN on a port that is not cdx's is not registered"
    );
    assert_eq!(
        bench.run_line("query pppoe"),
        text(&[
            "PPP Device: ppp0, Session ID: 42, MAC addr: 5A:1B:2C:3D:4E:5F, Physical Device: r1.100",
            "PPPoE Entry Count: 1",
        ])
    );
    assert!(bench.hardware.sent.contains(&HwOp::WalkInterfaces));
    bench.failure = Some(HwFailure::Rejected(4));
    assert_eq!(
        bench.run_line("query vlan"),
        text(&["ERROR: Unexpected result returned from FPP rc:4"])
    );
}

#[test]
fn vlan_add_and_delete_register_under_the_manual_policy_only() {
    let mut bench = Bench::with(wan(), EngineConfig::default());
    assert_eq!(bench.run_line("vlan add veth0"), "% veth0 is not a VLAN interface\n");
    assert_eq!(
        bench.run_line("vlan add r1.100"),
        "% offload.vlan is \"allow\": it decides which VLANs cdx holds, not vlan add|delete\n"
    );
    let manual = EngineConfig { vlan_policy: config::VlanPolicy::Manual, ..Default::default() };
    let mut bench = Bench::with(wan(), manual);
    let held = |bench: &Bench| bench.hardware.itfs.iter().map(|i| i.name()).collect::<Vec<_>>();
    assert!(!held(&bench).contains(&name("r1.100")), "manual: nothing until vlan add");
    assert_eq!(bench.run_line("vlan add r1.100"), "");
    assert!(held(&bench).contains(&name("r1.100")));
    assert_eq!(bench.run_line("vlan delete r1.100"), "");
    assert!(!held(&bench).contains(&name("r1.100")));
}

#[test]
fn show_connections_detail_names_each_direction_s_kernel_and_cdx_ports() {
    let mut bench = Bench::new();
    bench.event(&tcp("10.1.0.2", 40000, "10.2.0.2", 443));
    let detail = bench.run_line("show connections detail port 40000");
    assert!(detail.contains(", ports: eth0>eth1 eth1>eth0\n"), "{detail}");
}
