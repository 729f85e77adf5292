//! The rtnetlink codec: messages built by netlink-packet-route decode into what the engine
//! reads, and the requests cmmd sends parse back.

use super::*;
use netlink_packet_route::neighbour::NeighbourState;

fn emit(seq: u32, inner: RouteNetlinkMessage) -> Vec<u8> {
    request(seq, 0, inner)
}

#[test]
fn a_receive_buffer_larger_than_the_kernel_holds_is_clamped_not_wrapped() {
    // The kernel doubles the size as an int. 4 GiB must give the largest buffer there is
    // (with CAP_NET_ADMIN) or net.core.rmem_max (without), never a wrapped, tiny one.
    let rmem_max: usize =
        std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap().trim().parse().unwrap();
    let socket = NlSocket::route(&[]).unwrap();
    let effective = socket.set_receive_buffer(1 << 32).unwrap();
    assert!(effective >= 2 * rmem_max.min(1 << 30), "{effective} bytes");
}

#[test]
fn decodes_links_neighbours_addresses_routes() {
    let mut l = LinkMessage::default();
    l.header.index = 7;
    l.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
    l.attributes.push(LinkAttribute::IfName("eth1".into()));
    l.attributes.push(LinkAttribute::Mtu(9000));
    let mut n = NeighbourMessage::default();
    n.header.family = AddressFamily::Inet;
    n.header.ifindex = 7;
    n.header.state = NeighbourState::Reachable;
    n.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet("10.2.0.2".parse().unwrap())));
    n.attributes.push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 9]));
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    a.header.index = 7;
    a.attributes.push(AddressAttribute::Local("10.2.0.1".parse().unwrap()));
    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    r.header.destination_prefix_length = 16;
    r.header.kind = RouteType::Unicast;
    r.attributes.push(RouteAttribute::Destination(RouteAddress::Inet("10.9.0.0".parse().unwrap())));
    r.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet("10.2.0.254".parse().unwrap())));
    r.attributes.push(RouteAttribute::Oif(7));
    r.attributes.push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(1400)]));
    let mut dgram = Vec::new();
    for inner in [
        RouteNetlinkMessage::NewLink(l),
        RouteNetlinkMessage::NewNeighbour(n.clone()),
        RouteNetlinkMessage::DelNeighbour(n),
        RouteNetlinkMessage::NewAddress(a.clone()),
        RouteNetlinkMessage::DelAddress(a),
        RouteNetlinkMessage::NewRoute(r),
    ] {
        dgram.extend(emit(42, inner));
    }
    let mut out = Vec::new();
    assert_eq!(decode(&dgram, &mut out), 0);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        out,
        vec![
            RtnlMsg::Link(Link::plain(7, IfName::new("eth1").unwrap(), true, 9000)),
            RtnlMsg::Neighbour(Neighbour {
                ifindex: 7,
                addr: ip("10.2.0.2"),
                mac: Some(Mac([2, 0, 0, 0, 0, 9])),
                state: crate::core::net::nud::REACHABLE
            }),
            RtnlMsg::NeighbourGone { ifindex: 7, addr: ip("10.2.0.2") },
            RtnlMsg::Address { ifindex: 7, addr: ip("10.2.0.1"), added: true },
            RtnlMsg::Address { ifindex: 7, addr: ip("10.2.0.1"), added: false },
            RtnlMsg::Route {
                seq: 42,
                info: RouteInfo {
                    kind: RouteKind::Unicast,
                    oif: 7,
                    gateway: Some(ip("10.2.0.254")),
                    mtu: 1400
                },
                prefix: Cidr::parse("10.9.0.0/16").unwrap(),
                deleted: false
            },
        ]
    );
}

#[test]
fn links_carry_their_layer_two_and_bridge_neighbours_are_forwarding_entries() {
    let link = |index: u32, name: &str, attrs: Vec<LinkAttribute>| {
        let mut l = LinkMessage::default();
        l.header.index = index;
        l.header.flags = LinkFlags::Up | LinkFlags::Running;
        l.attributes.push(LinkAttribute::IfName(name.into()));
        l.attributes.push(LinkAttribute::Mtu(1500));
        l.attributes.extend(attrs);
        l
    };
    let vlan = link(
        9,
        "r1.100",
        vec![
            LinkAttribute::Link(3),
            LinkAttribute::Address(vec![2, 0, 0, 0, 1, 0x64]),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vlan),
                LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(100)])),
            ]),
        ],
    );
    let bridge =
        link(5, "br0", vec![LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)])]);
    let port = link(6, "p1", vec![LinkAttribute::Controller(5)]);
    let mut ppp = link(10, "ppp0", vec![]);
    ppp.header.link_layer_type = LinkLayerType::Ppp;
    let fdb = |state: NeighbourState, master: Option<u32>| {
        let mut n = NeighbourMessage::default();
        n.header.family = AddressFamily::Bridge;
        n.header.ifindex = 6;
        n.header.state = state;
        n.attributes.push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 7]));
        n.attributes.extend(master.map(NeighbourAttribute::Controller));
        n
    };
    let mut dgram = Vec::new();
    for inner in [
        RouteNetlinkMessage::NewLink(vlan),
        RouteNetlinkMessage::NewLink(bridge),
        RouteNetlinkMessage::NewLink(port),
        RouteNetlinkMessage::NewLink(ppp),
        RouteNetlinkMessage::NewNeighbour(fdb(NeighbourState::Reachable, Some(5))),
        RouteNetlinkMessage::NewNeighbour(fdb(NeighbourState::Permanent, Some(5))),
        RouteNetlinkMessage::NewNeighbour(fdb(NeighbourState::Reachable, None)),
        RouteNetlinkMessage::DelNeighbour(fdb(NeighbourState::Stale, Some(5))),
    ] {
        dgram.extend(emit(0, inner));
    }
    let mut out = Vec::new();
    assert_eq!(decode(&dgram, &mut out), 0);
    let links: Vec<(u32, LinkKind, u32, Option<Mac>)> = out
        .iter()
        .filter_map(|m| match m {
            RtnlMsg::Link(l) => Some((l.index, l.kind, l.master, l.mac)),
            _ => None,
        })
        .collect();
    assert_eq!(
        links,
        vec![
            (9, LinkKind::Vlan { id: 100, parent: 3 }, 0, Some(Mac([2, 0, 0, 0, 1, 0x64]))),
            (5, LinkKind::Bridge, 0, None),
            (6, LinkKind::Plain, 5, None),
            (10, LinkKind::Ppp, 0, None),
        ]
    );
    let entry = FdbEntry { bridge: 5, port: 6, mac: Mac([2, 0, 0, 0, 0, 7]) };
    assert_eq!(
        out[4..].to_vec(),
        vec![RtnlMsg::Fdb(entry), RtnlMsg::FdbGone(entry)],
        "the bridge's own address and entries of no bridge are not forwarding entries"
    );
    let request = dump_request(DumpKind::BridgeFdb, 4);
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&request).unwrap();
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetNeighbour(m)) = msg.payload else {
        panic!("not a GETNEIGH")
    };
    assert_eq!(m.header.family, AddressFamily::Bridge);
}

fn lookup(bytes: &[u8]) -> (u32, RouteMessage) {
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).unwrap();
    assert_eq!(msg.header.flags, NLM_F_REQUEST);
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(m)) = msg.payload else {
        panic!("not a GETROUTE")
    };
    (msg.header.sequence_number, m)
}

#[test]
fn output_lookup_carries_destination_and_mark_only() {
    let key = RouteKey::output("2001:db8::1".parse().unwrap(), 0x40);
    let (seq, m) = lookup(&route_lookup(9, &key));
    assert_eq!(seq, 9);
    assert_eq!(m.header.address_family, AddressFamily::Inet6);
    assert_eq!(m.header.destination_prefix_length, 128);
    assert_eq!(m.header.source_prefix_length, 0);
    assert_eq!(
        m.attributes,
        [RouteAttribute::Destination(RouteAddress::from(key.dst)), RouteAttribute::Mark(0x40)]
    );
}

#[test]
fn forwarded_lookup_carries_source_input_interface_and_mark() {
    // `ip route get 192.0.2.1 from 10.1.0.3 iif <7> mark 0x10`
    let key =
        RouteKey::forwarded("192.0.2.1".parse().unwrap(), "10.1.0.3".parse().unwrap(), 7, 0x10);
    let (_, m) = lookup(&route_lookup(3, &key));
    assert_eq!(m.header.address_family, AddressFamily::Inet);
    assert_eq!((m.header.destination_prefix_length, m.header.source_prefix_length), (32, 32));
    assert_eq!(
        m.attributes,
        [
            RouteAttribute::Destination(RouteAddress::from(key.dst)),
            RouteAttribute::Source(RouteAddress::Inet("10.1.0.3".parse().unwrap())),
            RouteAttribute::Iif(7),
            RouteAttribute::Mark(0x10),
        ]
    );
    let unmarked = RouteKey { mark: 0, ..key };
    let (_, m) = lookup(&route_lookup(4, &unmarked));
    assert!(!m.attributes.iter().any(|a| matches!(a, RouteAttribute::Mark(_))));
}

#[test]
fn garbage_is_skipped_not_fatal() {
    let mut out = Vec::new();
    for len in 0..64 {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        decode(&junk, &mut out);
    }
    // A header claiming more bytes than present.
    let mut short = emit(1, RouteNetlinkMessage::NewLink(LinkMessage::default()));
    short[0] = 200;
    decode(&short, &mut out);
}
