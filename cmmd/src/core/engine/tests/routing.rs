//! Policy routing and where a direction comes in: lookups carry source, input interface and
//! mark; an ASK kernel's fast-path blocks say where each direction entered, and that the host
//! is an end of the connection.

use super::*;
use crate::core::policy::FastPathInfo;

/// A second uplink, chosen by `ip rule from 10.1.0.3` and `ip rule fwmark 0x10`: its table
/// routes the client subnet back to eth0 and everything else through eth2.
fn wan2_rules() -> Vec<PolicyRule> {
    let table = || {
        vec![
            (cidr("10.1.0.0/24"), unicast(ETH0, None)),
            (cidr("0.0.0.0/0"), unicast(ETH2, Some("10.4.0.254"))),
        ]
    };
    vec![
        PolicyRule { from: Some(cidr("10.1.0.3/32")), iif: None, fwmark: None, table: table() },
        PolicyRule { from: None, iif: None, fwmark: Some(0x10), table: table() },
    ]
}

fn world_with_two_uplinks() -> World {
    let mut w = World::new(EngineConfig::default());
    w.rules = wan2_rules();
    w.engine.net_mut().upsert_neighbour(Neighbour {
        ifindex: ETH0,
        addr: ip("10.1.0.3"),
        mac: Some(mac(0x13)),
        state: nud::REACHABLE,
    });
    w
}

/// The route objects (orig, reply) of a connection in the fake cdx.
fn hw_routes(w: &World, ct: &CtInfo) -> (RouteSpec, RouteSpec) {
    let spec = w.cdx.cts[&(proto::TCP, ct.key.orig)];
    (w.cdx.routes[&spec.route_orig], w.cdx.routes[&spec.route_reply])
}

fn names(r: &RouteSpec) -> (String, String) {
    (r.input.to_string(), r.output.to_string())
}

#[test]
fn source_and_mark_rules_pick_the_uplink_the_kernel_uses() {
    let mut w = world_with_two_uplinks();
    let main = tcp("10.1.0.2", 40000, "10.9.0.5", 443);
    let by_source = tcp("10.1.0.3", 40001, "10.9.0.5", 443);
    let by_mark = CtInfo { mark: 0x10, ..tcp("10.1.0.2", 40002, "10.9.0.5", 443) };
    for ct in [main, by_source, by_mark] {
        w.event(CtEventKind::Update, ct);
        assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded, "{:?}", ct.key);
    }
    let (orig, reply) = hw_routes(&w, &main);
    assert_eq!((names(&orig), orig.mac), (("eth0".into(), "eth1".into()), mac(0x2f)));
    assert_eq!(names(&reply), ("eth1".into(), "eth0".into()));
    for ct in [by_source, by_mark] {
        let (orig, reply) = hw_routes(&w, &ct);
        assert_eq!(
            (names(&orig), orig.mac),
            (("eth0".into(), "eth2".into()), mac(0x4f)),
            "{:?} leaves through the second uplink's gateway",
            ct.key
        );
        assert_eq!(names(&reply), ("eth2".into(), "eth0".into()), "and its replies enter there");
    }
    // What was asked: the client's side as the host routes it (mark included), then each
    // direction from its source, as it came in, with the mark.
    let marked = w.asked.iter().filter(|k| k.mark == 0x10).collect::<Vec<_>>();
    assert!(marked.contains(&&RouteKey::output(ip("10.1.0.2"), 0x10)), "{marked:?}");
    assert!(
        marked.contains(&&RouteKey::forwarded(ip("10.9.0.5"), ip("10.1.0.2"), ETH0, 0x10)),
        "{marked:?}"
    );
    assert!(
        marked.contains(&&RouteKey::forwarded(ip("10.1.0.2"), ip("10.9.0.5"), ETH2, 0x10)),
        "the reply is looked up as entering where the original leaves: {marked:?}"
    );
}

#[test]
fn a_mark_that_changes_moves_the_connection_to_the_other_uplink() {
    let mut w = world_with_two_uplinks();
    let ct = tcp("10.1.0.2", 40000, "10.9.0.5", 443);
    w.event(CtEventKind::Update, ct);
    assert_eq!(names(&hw_routes(&w, &ct).0).1, "eth1");
    w.event(CtEventKind::Update, CtInfo { mark: 0x10, ..ct });
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    assert_eq!(names(&hw_routes(&w, &ct).0).1, "eth2", "the new mark's rule applies");
}

#[test]
fn route_mark_mask_zero_looks_routes_up_without_the_conntrack_mark() {
    let mut w = World::new(EngineConfig { route_mark_mask: 0, ..EngineConfig::default() });
    w.rules = wan2_rules();
    let ct = CtInfo { mark: 0x10, ..tcp("10.1.0.2", 40000, "10.9.0.5", 443) };
    w.event(CtEventKind::Update, ct);
    assert_eq!(names(&hw_routes(&w, &ct).0).1, "eth1");
    assert!(w.asked.iter().all(|k| k.mark == 0), "{:?}", w.asked);
}

/// What an ASK kernel reports for a forwarded connection from the client on eth0 through
/// eth2, with its packet mark (here the rules' mark, which the conntrack mark does not carry).
fn ask_kernel(ct: CtInfo, orig_in: u32, reply_in: u32, mark: u32) -> CtInfo {
    let block = |ifindex| FastPathInfo { ifindex, iif: ifindex, underlying_iif: ifindex, mark };
    CtInfo { fastpath: [Some(block(orig_in)), Some(block(reply_in))], ..ct }
}

#[test]
fn an_ask_kernel_says_where_each_direction_enters_and_with_which_mark() {
    let mut w = world_with_two_uplinks();
    let ct = ask_kernel(tcp("10.1.0.2", 40000, "10.9.0.5", 443), ETH0, ETH2, 0x10);
    w.event(CtEventKind::Update, ct);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    let (orig, reply) = hw_routes(&w, &ct);
    assert_eq!(names(&orig), ("eth0".into(), "eth2".into()), "the packet mark's rule");
    assert_eq!(names(&reply), ("eth2".into(), "eth0".into()));
    assert_eq!(
        w.asked,
        [
            RouteKey::forwarded(ip("10.9.0.5"), ip("10.1.0.2"), ETH0, 0x10),
            RouteKey::forwarded(ip("10.1.0.2"), ip("10.9.0.5"), ETH2, 0x10),
        ],
        "no guess of the ingress: the kernel's interfaces and mark, nothing else"
    );
    // The kernel now sees the original direction enter on eth1 (the client moved).
    w.engine.net_mut().upsert_neighbour(Neighbour {
        ifindex: ETH1,
        addr: ip("10.1.0.2"),
        mac: Some(mac(0x77)),
        state: nud::REACHABLE,
    });
    let moved = ask_kernel(ct, ETH1, ETH2, 0x10);
    w.event(CtEventKind::Update, moved);
    assert_eq!(w.state(&ct).unwrap().0, FlowState::Offloaded);
    assert_eq!(names(&hw_routes(&w, &ct).0).0, "eth1", "the new ingress is programmed");
}

#[test]
fn a_direction_without_a_packet_yet_is_not_local_on_an_ask_kernel() {
    // The vendor's UDP rule: the originator direction of a confirmed flow, before any reply.
    // The reply block is all zero (no packet yet): that is not "generated by the host".
    let mut cfg = EngineConfig::default();
    cfg.policy.udp_policy = UdpPolicy::Confirmed;
    let mut w = World::new(cfg);
    let unseen = FastPathInfo::default();
    let udp = CtInfo {
        status: Status::CONFIRMED,
        tcp_state: None,
        fastpath: [Some(FastPathInfo { ifindex: ETH0, iif: ETH0, ..unseen }), Some(unseen)],
        ..mk_ct(proto::UDP, "10.1.0.2", 5353, "10.2.0.2", 53)
    };
    w.event(CtEventKind::New, udp);
    assert_eq!(w.state(&udp).unwrap().0, FlowState::Offloaded, "originator direction");
    let spec = w.cdx.cts[&(proto::UDP, udp.key.orig)];
    assert_eq!(spec.route_reply, 0, "the reply direction is not programmed");
    assert_eq!(w.asked, [RouteKey::forwarded(ip("10.2.0.2"), ip("10.1.0.2"), ETH0, 0)]);
}

#[test]
fn an_ask_kernel_says_when_the_host_is_an_end_of_the_connection() {
    let mut w = World::new(EngineConfig::default());
    // Host-originated: the original direction never entered the box.
    let out = FastPathInfo { ifindex: 0, iif: 0, underlying_iif: 0, mark: 0 };
    let back = FastPathInfo { ifindex: ETH1, iif: ETH1, underlying_iif: ETH1, mark: 0 };
    let from_host =
        CtInfo { fastpath: [Some(out), Some(back)], ..tcp("10.1.0.2", 40000, "10.2.0.2", 443) };
    // Host-terminated: replies were seen, none entered (the host generated them).
    let to_host =
        CtInfo { fastpath: [Some(back), Some(out)], ..tcp("10.2.0.2", 40001, "10.1.0.2", 22) };
    for ct in [from_host, to_host] {
        w.event(CtEventKind::Update, ct);
    }
    // Tracked for display only, as the vendor's LOCAL_CONN_ORIG / LOCAL_CONN_REPL: the
    // kernel's word, though neither address is the host's.
    let flow =
        |ct: &CtInfo| w.engine.flow(&ct.key).map(|f| (f.state(), f.local_orig(), f.local_reply()));
    assert_eq!(flow(&from_host), Some((FlowState::Local, true, false)));
    assert_eq!(flow(&to_host), Some((FlowState::Local, false, true)));
    assert_eq!(count(&w, Reason::Local), 2);
    assert!(w.cdx.cts.is_empty());
    assert!(w.asked.is_empty(), "no lookup for the host's own connections");
}
