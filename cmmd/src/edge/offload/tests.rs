//! The executor against the software cdx (strict, unwritten fields filled with garbage), in
//! both ABIs.

use std::net::Ipv4Addr;

use cdx_sys::fpp::{AbiPayload, Ct4Change, Ct4Cmd};
use cdx_sys::sim::{self, Fault, SimConfig, SimHandle, UnwrittenFill};

use super::*;
use crate::core::hw::{CtSpec, HwReply};

fn t(s: &str, sp: u16, d: &str, dp: u16) -> Tuple {
    Tuple { src: s.parse().unwrap(), dst: d.parse().unwrap(), src_port: sp, dst_port: dp }
}

fn spec(orig: Tuple, r_orig: u16, r_reply: u16) -> CtSpec {
    CtSpec {
        proto: 6,
        orig,
        reply: orig.inverse(),
        qos_mark: 0,
        originator_downstream: false,
        route_orig: r_orig,
        route_reply: r_reply,
    }
}

fn route(id: u16, out: &str, inp: &str, mac: u8) -> RouteSpec {
    RouteSpec {
        id,
        output: IfName::new(out).unwrap(),
        input: IfName::new(inp).unwrap(),
        mac: Mac([2, 0, 0, 0, 0, mac]),
        mtu: 1500,
    }
}

/// A strict software cdx of `abi` knowing eth0 and eth1, and an executor that detected it.
fn on_sim(
    abi: Abi,
    capacity: usize,
    timeout: Duration,
) -> (SimHandle, FciExecutor<fci::PairSocket>) {
    let (sim, commands, _events) = sim::spawn(SimConfig {
        interfaces: vec!["eth0".into(), "eth1".into()],
        capacity,
        abi,
        unwritten: UnwrittenFill::GARBAGE,
        ..SimConfig::default()
    })
    .unwrap();
    let mut exec = FciExecutor::new(Transport::new(commands), timeout);
    let detected = run(&mut exec, vec![HwOp::Detect(AbiSetting::Auto)]).remove(0);
    let Ok(HwReply::Abi(choice)) = detected else { panic!("{detected:?}") };
    assert_eq!(choice.abi, abi, "{choice}");
    assert!(matches!(choice.how, AbiDecided::Detected(_)));
    (sim, exec)
}

fn run<S: DatagramSocket + Send + 'static>(
    exec: &mut FciExecutor<S>,
    ops: Vec<HwOp>,
) -> Vec<Result<HwReply, HwFailure>> {
    let batch: Vec<HwRequest> =
        ops.into_iter().enumerate().map(|(i, op)| HwRequest { tag: i as u64, op }).collect();
    let mut out = Vec::new();
    exec.execute(&batch, &mut out);
    assert_eq!(
        out.iter().map(|r| r.tag).collect::<Vec<_>>(),
        (0..batch.len() as u64).collect::<Vec<_>>()
    );
    out.into_iter().map(|r| r.outcome).collect()
}

#[test]
fn commands_reach_the_software_cdx_and_walks_read_back_only_what_cdx_writes() {
    for abi in Abi::ALL {
        let (sim, mut exec) = on_sim(abi, 1024, Duration::from_secs(2));
        let v4 = t("10.1.0.2", 40000, "10.2.0.2", 443);
        let v6 = t("fd01::2", 40000, "fd02::2", 443);
        let results = run(
            &mut exec,
            vec![
                HwOp::SetTimeout { proto: 17, seconds: 60, unidir: 20 },
                HwOp::RouteRegister(route(1, "eth1", "eth0", 9)),
                HwOp::RouteRegister(route(2, "eth0", "eth1", 8)),
                HwOp::CtRegister(spec(v4, 1, 2)),
                HwOp::CtRegister(spec(v6, 1, 2)),
                HwOp::CtRegister(spec(v4, 1, 2)),
                HwOp::CtRemaining(spec(v4, 1, 2)),
                HwOp::RouteDeregister(1),
                HwOp::RouteRegister(route(3, "wlan9", "eth0", 7)),
                HwOp::RouteRegister(route(4, "eth1", "wlan9", 7)),
            ],
        );
        assert!(results[..6].iter().all(Result::is_ok), "{abi}: {results:?}");
        assert_eq!(results[6], Ok(HwReply::Remaining(432_000)));
        assert_eq!(results[7], Err(HwFailure::Linked));
        let wlan9 = IfName::new("wlan9").unwrap();
        assert_eq!(results[8], Err(HwFailure::UnknownInterface(wlan9)), "cdx refuses the output");
        assert_eq!(
            results[9],
            Err(HwFailure::UnknownInterface(wlan9)),
            "an input cdx does not know is found before cdx takes a route it would fail"
        );
        let table = sim.snapshot();
        assert!(table.route(4).is_none() && table.route(0xFFFF).is_none(), "{table:#?}");
        assert_eq!(table.conntracks.len(), 2);
        for c in &table.conntracks {
            let hw = c.hw_orig.as_ref().unwrap();
            assert_eq!((hw.output.as_str(), hw.mac), ("eth1", [2, 0, 0, 0, 0, 9]));
            assert_eq!(c.hw_reply.as_ref().unwrap().output, "eth0");
        }
        let walk = run(&mut exec, vec![HwOp::Walk]).remove(0);
        let Ok(HwReply::Walk { conntracks, routes }) = walk else { panic!("{walk:?}") };
        let mut origs: Vec<Tuple> = conntracks.iter().map(|c| c.orig).collect();
        origs.sort_by_key(|t| t.src.is_ipv6());
        assert_eq!(origs, vec![v4, v6], "{abi}: the walk decodes whatever cdx left unwritten");
        assert_eq!(conntracks[0].reply, v4.inverse());
        assert_eq!(routes.iter().map(|r| r.spec.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            (routes[0].spec.output.as_str(), routes[0].spec.input.as_str()),
            ("eth1", "eth0")
        );
        let results = run(
            &mut exec,
            vec![
                HwOp::CtDeregister(spec(v4, 1, 2)),
                HwOp::CtDeregister(spec(v4, 1, 2)),
                HwOp::CtRemaining(spec(v4, 1, 2)),
                HwOp::Reset,
            ],
        );
        assert_eq!(results[0], Ok(HwReply::Done));
        assert_eq!(results[1], Err(HwFailure::NotFound));
        assert_eq!(results[2], Err(HwFailure::NotFound));
        assert_eq!(results[3], Ok(HwReply::Done));
        assert!(sim.snapshot().conntracks.is_empty() && sim.snapshot().routes.is_empty());
        sim.shutdown();
    }
}

#[test]
fn a_connection_registered_before_is_registered_anew_on_its_new_route() {
    let (sim, mut exec) = on_sim(Abi::Lsdk, 1024, Duration::from_secs(2));
    let flow = t("10.1.0.2", 40000, "10.2.0.2", 443);
    let results = run(
        &mut exec,
        vec![
            HwOp::RouteRegister(route(1, "eth1", "eth0", 9)),
            HwOp::RouteRegister(route(2, "eth1", "eth0", 5)),
            HwOp::CtRegister(spec(flow, 1, 0)),
            // A register of the same connection (a lost reply): cdx answers 100, and an
            // UPDATE would keep the MAC it inserted.
            HwOp::CtRegister(spec(flow, 2, 0)),
            HwOp::RouteDeregister(1),
        ],
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let table = sim.snapshot();
    let hw = table.conntracks[0].hw_orig.as_ref().unwrap();
    assert_eq!(hw.mac, [2, 0, 0, 0, 0, 5], "forwards to the new route's MAC");
    sim.shutdown();
}

/// A command socket that counts the requests sent and not yet answered.
struct Counting {
    inner: fci::PairSocket,
    unanswered: std::cell::Cell<usize>,
    most_unanswered: std::cell::Cell<usize>,
}

impl std::os::fd::AsFd for Counting {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl DatagramSocket for Counting {
    fn send(&self, message: &[u8]) -> std::io::Result<()> {
        self.inner.send(message)?;
        self.unanswered.set(self.unanswered.get() + 1);
        self.most_unanswered.set(self.most_unanswered.get().max(self.unanswered.get()));
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = DatagramSocket::recv(&self.inner, buf)?;
        self.unanswered.set(self.unanswered.get().saturating_sub(1));
        Ok(n)
    }
}

#[test]
fn conntrack_registers_are_pipelined_and_one_held_from_before_is_registered_anew_in_order() {
    let (sim, commands, _events) = sim::spawn(SimConfig {
        interfaces: vec!["eth0".into(), "eth1".into()],
        ..SimConfig::default()
    })
    .unwrap();
    let socket = Counting {
        inner: commands,
        unanswered: std::cell::Cell::new(0),
        most_unanswered: std::cell::Cell::new(0),
    };
    let mut exec = FciExecutor::new(Transport::new(socket), Duration::from_secs(2));
    let sim_tuple =
        |t: Tuple| sim::SimTuple { src: t.src, dst: t.dst, sport: t.src_port, dport: t.dst_port };
    let mut ops = vec![
        HwOp::Detect(AbiSetting::Fixed(Abi::Lsdk)),
        HwOp::RouteRegister(route(1, "eth1", "eth0", 9)),
        HwOp::RouteRegister(route(2, "eth1", "eth0", 5)),
    ];
    ops.extend(
        (0..200).map(|port| HwOp::CtRegister(spec(t("10.1.0.2", port, "10.2.0.2", 443), 1, 0))),
    );
    let results = run(&mut exec, ops);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(sim.snapshot().conntracks.len(), 200);
    assert_eq!(
        exec.transport.socket().most_unanswered.get(),
        fci::DEFAULT_WINDOW,
        "registers go out a window at a time"
    );

    // Port 0 is held (on route 1) from before: cdx answers "already registered", and it is
    // registered anew on route 2 before the deregister that follows it in the same batch.
    let (held, other) = (t("10.1.0.2", 0, "10.2.0.2", 443), t("10.1.0.2", 1000, "10.2.0.2", 443));
    let results = run(
        &mut exec,
        vec![
            HwOp::CtRegister(spec(held, 2, 0)),
            HwOp::CtRegister(spec(other, 2, 0)),
            HwOp::CtDeregister(spec(held, 2, 0)),
            HwOp::RouteDeregister(1),
        ],
    );
    assert_eq!(results[..3], [Ok(HwReply::Done), Ok(HwReply::Done), Ok(HwReply::Done)]);
    assert_eq!(results[3], Err(HwFailure::Linked), "199 connections still use route 1");
    let table = sim.snapshot();
    assert!(
        table.conntrack(sim_tuple(held)).is_none(),
        "deregistered after it was registered anew"
    );
    let hw = table.conntrack(sim_tuple(other)).unwrap().hw_orig.clone().unwrap();
    assert_eq!(hw.mac, [2, 0, 0, 0, 0, 5]);
    sim.shutdown();
}

#[test]
fn full_table_lost_replies_and_timeouts_are_told_apart() {
    let (sim, mut exec) = on_sim(Abi::Lsdk, 1, Duration::from_millis(300));
    let results = run(
        &mut exec,
        vec![
            HwOp::RouteRegister(route(1, "eth1", "eth0", 9)),
            HwOp::CtRegister(spec(t("10.1.0.2", 1, "10.2.0.2", 2), 1, 0)),
            HwOp::CtRegister(spec(t("10.1.0.2", 3, "10.2.0.2", 4), 1, 0)),
        ],
    );
    assert!(results[1].is_ok());
    assert_eq!(results[2], Err(HwFailure::Full));
    // fci.ko drops a reply the socket has no room for: the next receive says ENOBUFS, and
    // replies come in order, so the lost one is known as soon as the next arrives.
    sim.inject(Fault::DropReply { count: 1 }).unwrap();
    let results = run(
        &mut exec,
        vec![
            HwOp::SetTimeout { proto: 6, seconds: 100, unidir: 0 },
            HwOp::SetTimeout { proto: 0, seconds: 100, unidir: 0 },
        ],
    );
    assert_eq!(results[0], Err(HwFailure::ReplyLost));
    assert_eq!(results[1], Ok(HwReply::Done), "the transport recovers after a lost reply");
    sim.inject(Fault::DropReply { count: 1 }).unwrap();
    let results =
        run(&mut exec, vec![HwOp::CtRegister(spec(t("10.1.0.2", 5, "10.2.0.2", 6), 1, 0))]);
    assert_eq!(results[0], Err(HwFailure::ReplyLost), "one at a time as well");
    sim.inject(Fault::Delay { duration: Duration::from_millis(600), count: 1 }).unwrap();
    let results = run(&mut exec, vec![HwOp::SetTimeout { proto: 6, seconds: 100, unidir: 0 }]);
    assert_eq!(results[0], Err(HwFailure::Timeout), "no answer at all is a timeout");
    std::thread::sleep(Duration::from_millis(400));
    sim.inject(Fault::Eio { count: 1 }).unwrap();
    // Its input was probed with route 1: the fault meets the route's own register.
    let results = run(&mut exec, vec![HwOp::RouteRegister(route(2, "eth1", "eth0", 8))]);
    assert!(
        matches!(&results[0], Err(HwFailure::Io(m)) if m.contains("netlink error 5")),
        "{results:?}"
    );
    sim.shutdown();
}

#[test]
fn a_cdx_owned_by_the_flowtable_is_told_from_any_other_failure() {
    let (sim, commands, _events) =
        sim::spawn(SimConfig { interfaces: vec!["eth0".into()], ..SimConfig::default() }).unwrap();
    sim.inject(Fault::OffloadOwnerFlowtable).unwrap();
    let mut exec = FciExecutor::new(Transport::new(commands), Duration::from_secs(2));
    let results = run(
        &mut exec,
        vec![HwOp::Detect(AbiSetting::Auto), HwOp::SetTimeout { proto: 6, seconds: 1, unidir: 0 }],
    );
    assert_eq!(results, vec![Err(HwFailure::OffloadRefused), Err(HwFailure::OffloadRefused)]);
    sim.shutdown();
}

#[test]
fn a_fixed_abi_is_used_without_asking_and_the_other_abi_is_refused_by_size() {
    let (sim, commands, _events) = sim::spawn(SimConfig {
        interfaces: vec!["eth0".into(), "eth1".into()],
        abi: Abi::Ask,
        ..SimConfig::default()
    })
    .unwrap();
    let mut exec = FciExecutor::new(Transport::new(commands), Duration::from_secs(2));
    let flow = t("10.1.0.2", 1, "10.2.0.2", 2);
    let results = run(
        &mut exec,
        vec![
            HwOp::Detect(AbiSetting::Fixed(Abi::Lsdk)),
            HwOp::RouteRegister(route(1, "eth1", "eth0", 9)),
            HwOp::CtRegister(spec(flow, 1, 0)),
            HwOp::Detect(AbiSetting::Fixed(Abi::Ask)),
            HwOp::CtRegister(spec(flow, 1, 0)),
        ],
    );
    assert_eq!(
        results[0],
        Ok(HwReply::Abi(AbiChoice { abi: Abi::Lsdk, how: AbiDecided::Configured }))
    );
    assert_eq!(sim.stats().count(FCode::Ipv4GetTimeout, ReturnCode::CmdErr), 0, "no probe");
    assert_eq!(results[2], Err(HwFailure::Rejected(2)), "WRONG_COMMAND_SIZE, as cdx answers");
    assert_eq!(results[4], Ok(HwReply::Done));
    sim.shutdown();
}

#[test]
fn the_qos_mark_fills_the_abis_field_and_is_never_truncated() {
    let wide = 0x8000_0007_0000_0102_u64;
    for abi in Abi::ALL {
        let (sim, mut exec) = on_sim(abi, 16, Duration::from_secs(2));
        let mut marked = spec(t("10.1.0.2", 1, "10.2.0.2", 2), 1, 2);
        marked.qos_mark = wide;
        let mut swapped = spec(t("10.1.0.2", 3, "10.2.0.2", 4), 1, 2);
        (swapped.qos_mark, swapped.originator_downstream) = (0x8005_0003, true);
        let results = run(
            &mut exec,
            vec![
                HwOp::RouteRegister(route(1, "eth1", "eth0", 9)),
                HwOp::RouteRegister(route(2, "eth0", "eth1", 8)),
                HwOp::CtRegister(marked),
                HwOp::CtRegister(swapped),
            ],
        );
        let table = sim.snapshot();
        let mark =
            |sport: u16| table.conntracks.iter().find(|c| c.orig.sport == sport).unwrap().qos_mark;
        match abi {
            Abi::Lsdk => {
                assert_eq!(results[2], Err(HwFailure::MarkTooWide(wide)), "not truncated");
                assert_eq!(mark(3), 0x8003_0005, "LSDK cmm's halves rule: swapped");
            }
            Abi::Ask => {
                assert_eq!(results[2], Ok(HwReply::Done));
                assert_eq!(mark(1), wide, "all 64 bits in qosconnmark");
                assert_eq!(mark(3), 0x8005_0003, "the ASK cmm on LS1043A never swaps");
            }
        }
        sim.shutdown();
    }
}

#[test]
fn a_command_that_cannot_be_encoded_is_not_reported_as_a_cdx_answer() {
    let (sim, mut exec) = on_sim(Abi::Lsdk, 16, Duration::from_secs(2));
    // One direction IPv4, the other IPv6: no FPP conntrack command holds that.
    let mut mixed = spec(t("10.1.0.2", 40000, "10.2.0.2", 443), 0, 0);
    mixed.reply = t("fd02::2", 443, "fd01::2", 40000);
    let results = run(
        &mut exec,
        vec![
            HwOp::CtRegister(mixed),
            HwOp::CtUpdate(mixed),
            HwOp::CtRemaining(mixed),
            HwOp::RouteRegister(route(1, "eth1", "eth0", 9)),
        ],
    );
    for result in &results[..3] {
        assert!(matches!(result, Err(HwFailure::Unencodable(_))), "{results:?}");
    }
    assert_eq!(results[3], Ok(HwReply::Done), "the transport is not disturbed");
    sim.shutdown();
}

#[test]
fn removed_events_are_decoded_in_either_abi() {
    for abi in Abi::ALL {
        let orig = fpp::Tuple::new(Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 2, 0, 2), 1, 2);
        let cmd = Ct4Cmd::new(Action::Register, 17, orig, orig.inverse());
        let payload = Ct4Change::removed(&cmd).to_vec_for(abi);
        let mut frame = [0u8; 128];
        let len = fci::encode_event(FCode::Ipv4ConntrackChange, &payload, &mut frame).unwrap();
        let mut out = Vec::new();
        let mut ignored = 0;
        decode_events(&frame[..len], &mut out, &mut ignored);
        decode_events(b"garbage that is not netlink", &mut out, &mut ignored);
        assert_eq!(
            out,
            vec![HwEvent::Removed {
                proto: 17,
                orig: t("10.1.0.2", 1, "10.2.0.2", 2),
                reply: t("10.2.0.2", 2, "10.1.0.2", 1)
            }],
            "{abi}"
        );
        assert!(ignored >= 1);
    }
}
