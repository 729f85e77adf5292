//! Property tests: every decoder on arbitrary bytes (no panic, errors are typed), encoders
//! round-trip, and the sim survives arbitrary command streams without leaking routes or
//! hardware slots.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use cdx_sys::fci::{self, Frame};
use cdx_sys::fpp::{
    Abi, AbiPayload, Action, Ct4Change, Ct4Cmd, Ct6Change, Ct6Cmd, CtEvent, CtExtension, CtFlags,
    CtFormat, FCode, FfControl, FppError, IfName, Payload, PppoeEntry, ReturnCode, RouteCmd,
    RouteFlags, SaInfo, TimeoutCmd, Tuple, V4, V6, VlanEntry, query,
};
use cdx_sys::sim::{Cdx, SimConfig, UnwrittenFill};
use proptest::prelude::*;

fn decode_everything(bytes: &[u8]) {
    let _ = RouteCmd::parse(bytes);
    let _ = TimeoutCmd::parse(bytes);
    let _ = FfControl::parse(bytes);
    let _ = query::route_from_walk(bytes);
    let _ = query::pppoe_from_walk(bytes);
    let _ = PppoeEntry::parse(bytes);
    let _ = CtEvent::parse(FCode::Ipv4ConntrackChange, bytes);
    let _ = CtEvent::parse(FCode::Ipv6ConntrackChange, bytes);
    for abi in Abi::ALL {
        let _ = Ct4Cmd::parse_for(abi, bytes);
        let _ = Ct6Cmd::parse_for(abi, bytes);
        let _ = Ct4Change::parse_for(abi, bytes);
        let _ = Ct6Change::parse_for(abi, bytes);
        let _ = VlanEntry::parse_for(abi, bytes);
        let _ = query::vlan_from_walk(abi, bytes);
        let _ = query::conntrack_from_walk::<V4>(abi, bytes);
        let _ = query::conntrack_from_walk::<V6>(abi, bytes);
        let _ = CtEvent::parse_for(abi, FCode::Ipv4ConntrackChange, bytes);
    }
    if let Ok(field) = <[u8; 16]>::try_from(bytes) {
        let _ = IfName::from_field(&field);
    }
    let _ = fci::decode(bytes);
    let _ = fci::frames(bytes).count();
    let _ = fci::read_request_as_fci(bytes);
}

fn name() -> impl Strategy<Value = IfName> {
    "[a-z0-9.-]{0,15}".prop_map(|s| IfName::new(&s).unwrap())
}

fn action() -> impl Strategy<Value = Action> {
    any::<u16>().prop_map(Action::from)
}

fn tuple4() -> impl Strategy<Value = Tuple<Ipv4Addr>> {
    (any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>())
        .prop_map(|(s, d, sp, dp)| Tuple::new(s.into(), d.into(), sp, dp))
}

fn tuple6() -> impl Strategy<Value = Tuple<Ipv6Addr>> {
    (any::<u128>(), any::<u128>(), any::<u16>(), any::<u16>())
        .prop_map(|(s, d, sp, dp)| Tuple::new(s.into(), d.into(), sp, dp))
}

fn sa() -> impl Strategy<Value = SaInfo> {
    (any::<u8>(), any::<u8>(), any::<[u16; 4]>()).prop_map(|(dir, count, handles)| SaInfo {
        dir,
        count,
        handles,
    })
}

fn extension() -> impl Strategy<Value = Option<CtExtension>> {
    proptest::option::of((any::<u16>(), sa(), sa(), any::<u32>(), any::<u32>()).prop_map(
        |(format, sa, sa_reply, tunnel_route_id, tunnel_route_id_reply)| CtExtension {
            format: CtFormat(format),
            sa,
            sa_reply,
            tunnel_route_id,
            tunnel_route_id_reply,
        },
    ))
}

prop_compose! {
    fn ct4()(action in action(), orig in tuple4(), reply in tuple4(), protocol: u16, flags: u16,
             qos_mark: u64, route_id: u32, route_id_reply: u32, extension in extension()) -> Ct4Cmd {
        Ct4Cmd { action, orig, reply, protocol, flags: CtFlags(flags), qos_mark, route_id, route_id_reply, extension }
    }
}

prop_compose! {
    fn ct6()(action in action(), orig in tuple6(), reply in tuple6(), protocol: u16, flags: u16,
             qos_mark: u64, route_id: u32, route_id_reply: u32, extension in extension()) -> Ct6Cmd {
        Ct6Cmd { action, orig, reply, protocol, flags: CtFlags(flags), qos_mark, route_id, route_id_reply, extension }
    }
}

prop_compose! {
    fn route()(action in action(), mtu: u16, dst_mac: [u8; 6], output in name(), input in name(),
               underlying_input in name(), id: u32, flags: u32, tunnel_dst: [u8; 16]) -> RouteCmd {
        RouteCmd { action, mtu, dst_mac, output, input, underlying_input, id, flags: RouteFlags(flags), tunnel_dst }
    }
}

fn round_trip<P: AbiPayload + PartialEq + std::fmt::Debug>(
    abi: Abi,
    value: &P,
) -> Result<(), TestCaseError> {
    let bytes = value.to_vec_for(abi);
    prop_assert_eq!(bytes.len(), value.len_for(abi));
    prop_assert_eq!(&P::parse_for(abi, &bytes).unwrap(), value);
    Ok(())
}

/// A conntrack command round-trips in the ASK layout, and in the LSDK one when its mark
/// fits 32 bits (otherwise encoding refuses it).
fn round_trip_ct<F: cdx_sys::fpp::Family>(
    cmd: &cdx_sys::fpp::CtCmd<F>,
) -> Result<(), TestCaseError> {
    round_trip(Abi::Ask, cmd)?;
    if u32::try_from(cmd.qos_mark).is_ok() {
        round_trip(Abi::Lsdk, cmd)?;
    } else {
        let refused = cmd.emit_for(Abi::Lsdk, &mut [0; 200]);
        prop_assert!(matches!(refused, Err(FppError::MarkTooWide { .. })), "{:?}", refused);
    }
    Ok(())
}

/// A command stream over a small space of ids, ports and names, so that collisions,
/// duplicates, unknown entries and linked routes all happen.
#[derive(Clone, Debug)]
enum Op {
    Route {
        action: u16,
        id: u32,
        output: usize,
        input: usize,
    },
    Ct {
        action: u16,
        sport: u16,
        protocol: u8,
        flags: u16,
        ids: (u32, u32),
        v6: bool,
        extended: bool,
    },
    SetTimeout {
        protocol: u16,
        value: u32,
    },
    Reset,
    Tick {
        seconds: u64,
    },
    Mark,
    /// A VLAN (`pppoe` false) or PPPoE registration, deregistration or walk step.
    Itf {
        pppoe: bool,
        action: u16,
        name: usize,
        parent: usize,
        id: u16,
    },
    Raw {
        fcode: u16,
        payload: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u16..8, 0u32..5, 0usize..NAMES.len(), 0usize..NAMES.len())
            .prop_map(|(action, id, output, input)| Op::Route { action, id, output, input }),
        8 => (0u16..8, 0u16..6, prop_oneof![Just(6u8), Just(17u8), Just(1u8)], 0u16..4, (0u32..5, 0u32..5), any::<bool>(), any::<bool>())
            .prop_map(|(action, sport, protocol, flags, ids, v6, extended)| Op::Ct { action, sport, protocol, flags, ids, v6, extended }),
        1 => (prop_oneof![Just(0u16), Just(6u16), Just(17u16), Just(1u16)], 1u32..400)
            .prop_map(|(protocol, value)| Op::SetTimeout { protocol, value }),
        1 => Just(Op::Reset),
        2 => (0u64..400).prop_map(|seconds| Op::Tick { seconds }),
        1 => Just(Op::Mark),
        2 => (any::<bool>(), 0u16..8, 4usize..NAMES.len(), 0usize..NAMES.len(), 0u16..3)
            .prop_map(|(pppoe, action, name, parent, id)| Op::Itf { pppoe, action, name, parent, id }),
        2 => (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..130))
            .prop_map(|(fcode, payload)| Op::Raw { fcode, payload }),
    ]
}

const NAMES: [&str; 6] = ["eth0", "eth1", "eth2", "bogus", "v100", "ppp0"];

fn run(ops: &[Op], abi: Abi, garbage: bool) -> Result<(), TestCaseError> {
    let capacity = 3;
    let mut cdx = Cdx::new(&SimConfig {
        interfaces: vec!["eth0".into(), "eth1".into(), "eth2".into()],
        capacity,
        abi,
        unwritten: if garbage { UnwrittenFill::GARBAGE } else { UnwrittenFill::Zeros },
        ..SimConfig::default()
    })
    .unwrap();
    let t0 = Instant::now();
    let mut now = t0;
    for op in ops {
        match op {
            Op::Route { action, id, output, input } => {
                let cmd = RouteCmd::new(
                    Action::from(*action),
                    *id,
                    IfName::new(NAMES[*output]).unwrap(),
                    IfName::new(NAMES[*input]).unwrap(),
                    [2, 0, 0, 0, 0, 1],
                    1500,
                );
                cdx.handle(FCode::IpRoute, &cmd.to_vec(), now);
            }
            Op::Ct { action, sport, protocol, flags, ids, v6, extended } => {
                let ext = extended.then(CtExtension::default);
                let payload = if *v6 {
                    let orig = Tuple::new(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, *sport, 80);
                    let mut cmd =
                        Ct6Cmd::new(Action::from(*action), *protocol, orig, orig.inverse());
                    (cmd.flags, cmd.route_id, cmd.route_id_reply, cmd.extension) =
                        (CtFlags(*flags), ids.0, ids.1, ext);
                    (FCode::Ipv6Conntrack, cmd.to_vec_for(abi))
                } else {
                    let orig = Tuple::new(Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST, *sport, 80);
                    let mut cmd =
                        Ct4Cmd::new(Action::from(*action), *protocol, orig, orig.inverse());
                    (cmd.flags, cmd.route_id, cmd.route_id_reply, cmd.extension) =
                        (CtFlags(*flags), ids.0, ids.1, ext);
                    (FCode::Ipv4Conntrack, cmd.to_vec_for(abi))
                };
                let reply = cdx.handle(payload.0, &payload.1, now);
                prop_assert!(reply.as_bytes().len() >= 2 || cdx.is_wedged());
            }
            Op::SetTimeout { protocol, value } => {
                let cmd = TimeoutCmd { protocol: *protocol, sam_4o6: 0, value1: *value, value2: 0 };
                cdx.handle(FCode::Ipv4SetTimeout, &cmd.to_vec(), now);
            }
            Op::Reset => {
                prop_assert_eq!(cdx.handle(FCode::Ipv4Reset, &[], now).rc(), ReturnCode::Ok);
            }
            Op::Tick { seconds } => {
                now += Duration::from_secs(*seconds);
                for event in cdx.tick(now) {
                    let expected = match event.event() {
                        CtEvent::V4(_) => <V4 as cdx_sys::fpp::Family>::basic_len(abi),
                        CtEvent::V6(_) => <V6 as cdx_sys::fpp::Family>::basic_len(abi),
                    };
                    prop_assert_eq!(event.payload().len(), expected);
                    prop_assert_eq!(
                        CtEvent::parse(event.fcode(), event.payload()).unwrap(),
                        Some(event.event())
                    );
                }
            }
            Op::Mark => {
                cdx.mark_active(&cdx_sys::sim::FlowMatch::All, now);
            }
            Op::Itf { pppoe, action, name, parent, id } => {
                let (name, parent) =
                    (IfName::new(NAMES[*name]).unwrap(), IfName::new(NAMES[*parent]).unwrap());
                let action = Action::from(*action);
                let reply = if *pppoe {
                    let entry = PppoeEntry {
                        action,
                        session_id: *id,
                        mac: [2, 0, 0, 0, 0, 1],
                        phy_ifname: parent,
                        ifname: name,
                        mode: 0,
                    };
                    cdx.handle(FCode::PppoeEntry, &entry.to_vec(), now)
                } else {
                    let entry = VlanEntry {
                        action,
                        vlan_id: *id,
                        ifname: name,
                        phy_ifname: parent,
                        mac: [0; 6],
                    };
                    cdx.handle(FCode::VlanEntry, &entry.to_vec_for(abi), now)
                };
                prop_assert!(reply.as_bytes().len() >= 2 || cdx.is_wedged());
                let _ = cdx.take_events();
            }
            Op::Raw { fcode, payload } => {
                cdx.handle(FCode::from(*fcode), payload, now);
            }
        }
        let table = cdx.snapshot(now);
        prop_assert!(cdx.hw_pairs() <= capacity);
        prop_assert_eq!(table.conntracks.len(), cdx.conntrack_count());
        let in_hw = table.conntracks.iter().filter(|ct| ct.in_hw_orig || ct.in_hw_reply).count();
        prop_assert_eq!(in_hw, cdx.hw_pairs());
        let links: u32 = table
            .conntracks
            .iter()
            .map(|ct| u32::from(ct.linked_orig.is_some()) + u32::from(ct.linked_reply.is_some()))
            .sum();
        let refs: u32 = table.routes.iter().map(|r| r.refcount).sum();
        prop_assert_eq!(refs, links, "route references are exactly the links held");
    }
    if cdx.is_wedged() {
        // NXP's cdx after an out-of-table command: nothing moves any more.
        return Ok(());
    }
    // Everything whose aging timer still runs ages out eventually and gives back its route
    // references and hardware slot. cdx deletes the timer of a pair whose timeout a
    // SET_TIMEOUT shrank to exactly the time elapsed: that pair stays, as on the board.
    let far = now + Duration::from_secs(10_000_000);
    cdx.tick(far);
    let table = cdx.snapshot(far);
    let stuck: Vec<_> = table.conntracks.iter().filter(|ct| !ct.aging).collect();
    prop_assert_eq!(stuck.len(), table.conntracks.len(), "only pairs without a timer stay");
    let stuck_in_hw = stuck.iter().filter(|ct| ct.in_hw_orig || ct.in_hw_reply).count();
    prop_assert_eq!(cdx.hw_pairs(), stuck_in_hw);
    let links: u32 = stuck
        .iter()
        .map(|ct| u32::from(ct.linked_orig.is_some()) + u32::from(ct.linked_reply.is_some()))
        .sum();
    prop_assert_eq!(table.routes.iter().map(|r| r.refcount).sum::<u32>(), links);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoders_never_panic_near_the_exact_sizes(len in prop_oneof![Just(4usize), Just(12), Just(36), Just(44), Just(48), Just(72), Just(76), Just(84), Just(86), Just(92), Just(96), Just(120), Just(124)], fill: u8, delta in 0usize..3) {
        decode_everything(&vec![fill; len + delta]);
        decode_everything(&vec![fill; len.saturating_sub(delta)]);
    }

    #[test]
    fn frame_headers_with_any_lengths_never_panic(len: u32, ty: u16, flags: u16, seq: u32, fci_len: u16, tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&len.to_ne_bytes());
        bytes.extend_from_slice(&ty.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&0x0314u16.to_ne_bytes());
        bytes.extend_from_slice(&fci_len.to_ne_bytes());
        bytes.extend_from_slice(&tail);
        if let Ok(Frame::Reply { payload, .. } | Frame::Request { payload, .. } | Frame::Event { payload, .. }) = fci::decode(&bytes) {
            prop_assert!(payload.len() <= 256);
        }
        let _ = fci::frames(&bytes).count();
    }

    #[test]
    fn conntrack_commands_round_trip(v4 in ct4(), v6 in ct6()) {
        round_trip_ct(&v4)?;
        round_trip_ct(&v6)?;
        for abi in Abi::ALL {
            round_trip(abi, &Ct4Change::removed(&v4))?;
            round_trip(abi, &Ct6Change::removed(&v6))?;
        }
    }

    #[test]
    fn route_and_small_commands_round_trip(route in route(), protocol: u16, sam_4o6: u16, value1: u32, value2: u32,
                                           enable: bool, vlan_id: u16, ifname in name(), phy in name(), action in action()) {
        round_trip(Abi::Lsdk, &route)?;
        round_trip(Abi::Lsdk, &TimeoutCmd { protocol, sam_4o6, value1, value2 })?;
        round_trip(Abi::Ask, &FfControl { enable })?;
        round_trip(Abi::Ask, &VlanEntry { action, vlan_id, ifname, phy_ifname: phy, mac: [2, 0, 0, 0, 0, 1] })?;
        round_trip(Abi::Lsdk, &VlanEntry { action, vlan_id, ifname, phy_ifname: phy, mac: [0; 6] })?;
        let mut buf = [0u8; 300];
        let len = query::emit_reply(Abi::Lsdk, ReturnCode::Ok, &route, &mut buf).unwrap();
        prop_assert_eq!(len, 86);
        let walked = query::route_from_walk(&buf[2..len]).unwrap();
        prop_assert_eq!((walked.id, walked.mtu, walked.mac), (route.id, route.mtu, route.dst_mac));
        prop_assert_eq!(walked.output, Some(route.output).filter(|n| !n.is_empty()));
        prop_assert_eq!(walked.input, Some(route.input).filter(|n| !n.is_empty()));
    }

    #[test]
    fn framing_round_trips(seq in 1u32.., fcode: u16, payload in proptest::collection::vec(any::<u8>(), 0..=256), rc: u16) {
        let mut out = [0u8; fci::MAX_FRAME];
        let len = fci::encode_request(seq, FCode::from(fcode), &payload, &mut out).unwrap();
        prop_assert_eq!(fci::decode(&out[..len]).unwrap(), Frame::Request { seq, fcode: FCode::from(fcode), payload: &payload });
        let data = &payload[..payload.len().min(254)];
        let len = fci::encode_reply(seq, FCode::from(fcode), ReturnCode::from(rc), data, &mut out).unwrap();
        prop_assert_eq!(fci::decode(&out[..len]).unwrap(), Frame::Reply { seq, fcode: FCode::from(fcode), rc: ReturnCode::from(rc), payload: data });
    }

    #[test]
    fn the_sim_survives_any_command_stream(ops in proptest::collection::vec(op(), 1..60), ask: bool, garbage: bool) {
        run(&ops, if ask { Abi::Ask } else { Abi::Lsdk }, garbage)?;
    }
}
