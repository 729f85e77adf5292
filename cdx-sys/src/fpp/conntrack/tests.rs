//! Golden bytes of the conntrack command and its event in both ABIs.

use std::net::{Ipv4Addr, Ipv6Addr};

use zerocopy::FromBytes;

use super::*;
use crate::fpp::Payload as _;

fn tcp4() -> Ct4Cmd {
    // 192.168.1.10:51514 → 198.51.100.7:443, SNAT to 203.0.113.5
    let mut cmd = Ct4Cmd::new(
        Action::Register,
        6,
        Tuple::new(Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(198, 51, 100, 7), 51514, 443),
        Tuple::new(Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(203, 0, 113, 5), 443, 51514),
    );
    cmd.flags = CtFlags::REP_DISABLED;
    cmd.qos_mark = 0x0000_0102;
    cmd.route_id = 7;
    cmd.route_id_reply = 0x0001_0203;
    cmd
}

/// The first 32 bytes of `tcp4()`, the same in both ABIs (little-endian host).
#[cfg(target_endian = "little")]
const TCP4_HEAD: [u8; 32] = [
    0x00, 0x00, // action REGISTER
    0x00, 0x00, // reserved
    192, 168, 1, 10, // saddr
    198, 51, 100, 7, // daddr
    0xc9, 0x3a, // sport 51514 (NBO)
    0x01, 0xbb, // dport 443 (NBO)
    198, 51, 100, 7, // saddr_reply
    203, 0, 113, 5, // daddr_reply
    0x01, 0xbb, // sport_reply
    0xc9, 0x3a, // dport_reply
    0x06, 0x00, // protocol 6
    0x02, 0x00, // flags REP_DISABLED
];

/// `tcp4()` in NXP's layout, by hand from the reference table.
#[cfg(target_endian = "little")]
fn tcp4_lsdk_golden() -> Vec<u8> {
    let mut golden = TCP4_HEAD.to_vec();
    golden.extend_from_slice(&[0x02, 0x01, 0x00, 0x00]); // fwmark 0x102
    golden.extend_from_slice(&[0x07, 0x00, 0x00, 0x00]); // route_id 7
    golden.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]); // route_id_reply 0x10203
    golden
}

/// `tcp4()` with a 64-bit mark in the ASK layout (fe.h `CtCommand`, packed).
#[cfg(target_endian = "little")]
fn tcp4_ask_golden() -> Vec<u8> {
    let mut golden = TCP4_HEAD.to_vec();
    golden.extend_from_slice(&[0x02, 0x01, 0, 0, 0x03, 0, 0, 0x80]); // qosconnmark
    golden.extend_from_slice(&[0x07, 0x00, 0x00, 0x00]); // route_id 7 at 40
    golden.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]); // route_id_reply at 44
    golden
}

#[cfg(target_endian = "little")]
#[test]
fn ipv4_basic_golden_bytes_in_both_abis() {
    let lsdk = tcp4_lsdk_golden();
    assert_eq!(lsdk.len(), 44);
    assert_eq!(tcp4().to_vec_for(Abi::Lsdk), lsdk);
    assert_eq!(Ct4Cmd::parse_for(Abi::Lsdk, &lsdk).unwrap(), tcp4());
    let view = Ct4Wire::ref_from_bytes(&lsdk).unwrap();
    assert_eq!((view.sport.get(), view.route_id_reply.get()), (51514, 0x0001_0203));

    let mut wide = tcp4();
    wide.qos_mark = 0x8000_0003_0000_0102;
    let ask = tcp4_ask_golden();
    assert_eq!(ask.len(), 48);
    assert_eq!(wide.to_vec_for(Abi::Ask), ask);
    assert_eq!(Ct4Cmd::parse_for(Abi::Ask, &ask).unwrap(), wide);
    assert_eq!(Ct4AskWire::ref_from_bytes(&ask).unwrap().mark.get(), 0x8000_0003_0000_0102);
    // A 64-bit mark does not fit the LSDK fwmark: an error, never a silent truncation.
    assert_eq!(
        wide.emit_for(Abi::Lsdk, &mut [0; 44]),
        Err(FppError::MarkTooWide { mark: 0x8000_0003_0000_0102, abi: Abi::Lsdk })
    );
    assert!(wide.to_vec_for(Abi::Lsdk).is_empty());
}

#[cfg(target_endian = "little")]
#[test]
fn ipv4_extended_golden_bytes_in_both_abis() {
    let mut cmd = tcp4();
    cmd.extension = Some(CtExtension {
        format: CtFormat::SECURE | CtFormat::ORIG_TUNNEL,
        sa: SaInfo { dir: 0x2, count: 1, handles: [0x1234, 0, 0, 0] },
        sa_reply: SaInfo { dir: 0x4, count: 2, handles: [1, 2, 0, 0] },
        tunnel_route_id: 9,
        tunnel_route_id_reply: 0,
    });
    let ext_golden = [
        0x02, 0x01, 0x34, 0x12, 0, 0, 0, 0, 0, 0, // sa_dir, sa_nr, sa_handle[4]
        0x04, 0x02, 0x01, 0x00, 0x02, 0x00, 0, 0, 0, 0, // reply SA
        0x09, 0, 0, 0, // tunnel_route_id
        0, 0, 0, 0, // tunnel_route_id_reply
    ];
    for (abi, basic, golden) in
        [(Abi::Lsdk, 44, tcp4_lsdk_golden()), (Abi::Ask, 48, tcp4_ask_golden())]
    {
        let bytes = cmd.to_vec_for(abi);
        assert_eq!(bytes.len(), basic + 28, "{abi}");
        assert_eq!(&bytes[2..4], &[0x03, 0x00], "format replaces the reserved field");
        assert_eq!(&bytes[4..32], &golden[4..32]);
        assert_eq!(&bytes[basic..], &ext_golden, "{abi}: the extension follows the basic layout");
        if abi == Abi::Ask {
            assert_eq!(&bytes[32..40], &[0x02, 0x01, 0, 0, 0, 0, 0, 0], "the mark, 64 bits");
        }
        assert_eq!(Ct4Cmd::parse_for(abi, &bytes).unwrap(), cmd);
    }
}

fn udp6() -> Ct6Cmd {
    let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:1::53".parse().unwrap();
    let mut cmd =
        Ct6Cmd::new(Action::Update, 17, Tuple::new(a, b, 5353, 53), Tuple::new(b, a, 53, 5353));
    cmd.route_id = 0x0000_ffff;
    cmd.route_id_reply = 1;
    cmd
}

#[cfg(target_endian = "little")]
#[test]
fn ipv6_basic_golden_bytes_in_both_abis() {
    let mut golden = [0u8; 92];
    golden[0] = 4; // action UPDATE
    golden[4..20].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    golden[20..36].copy_from_slice(&"2001:db8:1::53".parse::<Ipv6Addr>().unwrap().octets());
    golden[36..38].copy_from_slice(&[0x14, 0xe9]); // 5353
    golden[38..40].copy_from_slice(&[0x00, 0x35]); // 53
    golden.copy_within(20..36, 40);
    golden.copy_within(4..20, 56);
    golden[72..74].copy_from_slice(&[0x00, 0x35]);
    golden[74..76].copy_from_slice(&[0x14, 0xe9]);
    golden[76] = 17;
    golden[84..88].copy_from_slice(&[0xff, 0xff, 0, 0]);
    golden[88..92].copy_from_slice(&[1, 0, 0, 0]);
    assert_eq!(udp6().to_vec_for(Abi::Lsdk), golden);
    assert_eq!(Ct6Cmd::parse_for(Abi::Lsdk, &golden).unwrap(), udp6());

    // ASK: 8 mark bytes at 80, route ids at 88 and 92.
    let mut ask = [0u8; 96];
    ask[..80].copy_from_slice(&golden[..80]);
    ask[88..92].copy_from_slice(&[0xff, 0xff, 0, 0]);
    ask[92..96].copy_from_slice(&[1, 0, 0, 0]);
    assert_eq!(udp6().to_vec_for(Abi::Ask), ask);
    assert_eq!(Ct6Cmd::parse_for(Abi::Ask, &ask).unwrap(), udp6());
}

#[test]
fn each_abi_accepts_exactly_its_sizes_and_names_the_other() {
    let mut cmd = udp6();
    cmd.extension = Some(CtExtension { tunnel_route_id_reply: 77, ..CtExtension::default() });
    assert_eq!(cmd.to_vec_for(Abi::Lsdk).len(), 120);
    assert_eq!(cmd.to_vec_for(Abi::Ask).len(), 124);
    assert_eq!(&cmd.to_vec_for(Abi::Ask)[120..124], &77u32.to_ne_bytes());
    for abi in Abi::ALL {
        assert_eq!(Ct6Cmd::parse_for(abi, &cmd.to_vec_for(abi)).unwrap(), cmd);
        for &len in V6::sizes(abi.other()) {
            assert_eq!(
                Ct6Cmd::parse_for(abi, &vec![0; len]),
                Err(FppError::OtherAbi {
                    what: "FPP_CMD_IPV6_CONNTRACK",
                    expected: abi,
                    actual: len
                })
            );
        }
        for &len in V4::sizes(abi.other()) {
            assert!(matches!(
                Ct4Cmd::parse_for(abi, &vec![0; len]),
                Err(FppError::OtherAbi { actual, .. }) if actual == len
            ));
        }
    }
    for bad in [0, 44, 72, 91, 93, 119, 121, 125] {
        assert_eq!(
            Ct6Cmd::parse_for(Abi::Lsdk, &vec![0; bad]),
            Err(FppError::WrongSize {
                what: "FPP_CMD_IPV6_CONNTRACK",
                expected: &[92, 120],
                actual: bad
            }),
            "{bad}"
        );
    }
    for bad in [0, 43, 45, 71, 73, 77, 92] {
        assert!(matches!(
            Ct4Cmd::parse_for(Abi::Ask, &vec![0; bad]),
            Err(FppError::WrongSize { .. })
        ));
    }
    assert_eq!((V4::basic_len(Abi::Ask), V6::extended_len(Abi::Ask)), (48, 124));
}

#[test]
fn change_event_is_the_basic_layout_with_only_written_fields() {
    let event = CtChange::removed(&tcp4());
    for abi in Abi::ALL {
        let bytes = event.to_vec_for(abi);
        assert_eq!(bytes.len(), V4::basic_len(abi));
        assert_eq!(&bytes[..2], &3u16.to_ne_bytes());
        assert_eq!(&bytes[4..30], &tcp4().to_vec_for(abi)[4..30], "tuples and protocol");
        assert!(bytes[30..].iter().all(|&b| b == 0), "flags, mark and route ids are not cdx's");
        assert_eq!(CtChange::<V4>::parse_for(abi, &bytes).unwrap(), event);
        assert_eq!(CtChange::<V4>::parse_any(&bytes).unwrap(), (event, abi));
        // Whatever cdx left in the unwritten bytes changes nothing.
        let mut stale = bytes.clone();
        stale[2..4].fill(0xee);
        stale[30..].fill(0xa5);
        assert_eq!(
            CtEvent::parse(FCode::Ipv4ConntrackChange, &stale).unwrap(),
            Some(CtEvent::V4(event))
        );
    }
    assert!(matches!(
        CtChange::<V4>::parse_for(Abi::Lsdk, &[0; 48]),
        Err(FppError::OtherAbi { what: "FPP_CMD_IPV4_CONNTRACK_CHANGE", actual: 48, .. })
    ));
    assert!(matches!(CtChange::<V6>::parse_any(&[0; 120]), Err(FppError::WrongSize { .. })));
    let mut fin = event.to_vec_for(Abi::Lsdk);
    fin[..2].copy_from_slice(&9u16.to_ne_bytes());
    assert_eq!(CtChange::<V4>::parse_any(&fin).unwrap().0.kind(), Action::TcpFin);
    assert_eq!(CtEvent::parse(FCode::IpRoute, &[]).unwrap(), None);
}

#[test]
fn walk_steps_are_extended_and_zero() {
    for abi in Abi::ALL {
        let step = Ct4Cmd::walk_step(Action::Query).to_vec_for(abi);
        assert_eq!(step.len(), V4::extended_len(abi));
        assert_eq!(&step[..2], &6u16.to_ne_bytes());
        assert!(step[2..].iter().all(|&b| b == 0));
        let step = Ct6Cmd::walk_step(Action::QueryCont).to_vec_for(abi);
        assert_eq!(step.len(), V6::extended_len(abi));
        assert_eq!(&step[..2], &7u16.to_ne_bytes());
        assert!(step[2..].iter().all(|&b| b == 0));
    }
}

#[test]
fn basic_form_drops_the_extension() {
    let mut cmd = tcp4();
    cmd.extension = Some(CtExtension::default());
    let basic = cmd.basic(Action::Deregister);
    assert_eq!(basic.extension, None);
    assert_eq!(basic.action, Action::Deregister);
    assert_eq!(basic.to_vec_for(Abi::Lsdk).len(), 44);
    assert_eq!(basic.len_for(Abi::Ask), 48);
    assert_eq!(tcp4().orig.inverse(), Tuple::new(tcp4().orig.dst, tcp4().orig.src, 443, 51514));
    // Payload types stay usable through the blanket AbiPayload implementation.
    let timeout = crate::fpp::TimeoutCmd::default();
    assert_eq!(timeout.to_vec_for(Abi::Ask), timeout.to_vec());
}
