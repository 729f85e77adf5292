//! cdx-sys: FPP encode/decode cost, and the software cdx's command rate through its socket
//! pair, one request at a time and pipelined, and in the caller's thread (`sim::attach`,
//! what cmmd's offload thread does with `--backend sim`: no scheduler in the measure).
//!
//! Run: `cargo bench -p cmmd-benches --bench fpp`. The sim target is ≥ 200 000 commands/s
//! (each command is a request frame, the sim's decode + model + reply frame, and the reply
//! matched by sequence number).

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use cdx_sys::fci::{self, FciSocket, PairSocket, Transport};
use cdx_sys::fpp::{
    Abi, AbiPayload, Action, Ct4Cmd, Ct6Cmd, CtExtension, FCode, IfName, Payload, ReturnCode,
    RouteCmd, Tuple,
};
use cdx_sys::sim::{self, Cdx, SimConfig, SimHandle};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn tcp4(sport: u16) -> Ct4Cmd {
    let orig =
        Tuple::new(Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(198, 51, 100, 7), sport, 443);
    let mut reply = orig.inverse();
    reply.dst = Ipv4Addr::new(203, 0, 113, 5);
    let mut cmd = Ct4Cmd::new(Action::Register, 6, orig, reply);
    (cmd.route_id, cmd.route_id_reply, cmd.qos_mark) = (1, 2, 0x10);
    cmd
}

fn udp6() -> Ct6Cmd {
    let a: Ipv6Addr = "2001:db8::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
    let b: Ipv6Addr = "2001:db8:1::53".parse().unwrap_or(Ipv6Addr::LOCALHOST);
    let orig = Tuple::new(a, b, 5353, 53);
    let mut cmd = Ct6Cmd::new(Action::Register, 17, orig, orig.inverse());
    cmd.extension = Some(CtExtension::default());
    cmd
}

fn route(id: u32) -> RouteCmd {
    let name = |n| IfName::new(n).unwrap_or(IfName::EMPTY);
    RouteCmd::new(Action::Register, id, name("eth0"), name("eth1"), [2, 0, 0, 0, 0, 1], 1500)
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("fpp");
    let ct4 = tcp4(51514);
    let ct6 = udp6();
    let rt = route(7);
    let mut buf = [0u8; 256];
    group.bench_function("encode ipv4 conntrack (44 B)", |b| {
        b.iter(|| black_box(&ct4).emit_for(Abi::Lsdk, &mut buf))
    });
    group.bench_function("encode ipv6 conntrack (120 B)", |b| {
        b.iter(|| black_box(&ct6).emit_for(Abi::Lsdk, &mut buf))
    });
    group.bench_function("encode route (84 B)", |b| b.iter(|| black_box(&rt).emit(&mut buf)));
    let ct4_bytes = ct4.to_vec_for(Abi::Lsdk);
    let ct6_bytes = ct6.to_vec_for(Abi::Lsdk);
    let rt_bytes = rt.to_vec();
    group.bench_function("decode ipv4 conntrack", |b| {
        b.iter(|| Ct4Cmd::parse_for(Abi::Lsdk, black_box(&ct4_bytes)))
    });
    group.bench_function("decode ipv6 conntrack", |b| {
        b.iter(|| Ct6Cmd::parse_for(Abi::Lsdk, black_box(&ct6_bytes)))
    });
    group.bench_function("decode route", |b| b.iter(|| RouteCmd::parse(black_box(&rt_bytes))));
    let mut frame = [0u8; fci::MAX_FRAME];
    group.bench_function("frame request (ipv4 conntrack)", |b| {
        b.iter(|| fci::encode_request(black_box(9), FCode::Ipv4Conntrack, &ct4_bytes, &mut frame))
    });
    let len = fci::encode_request(9, FCode::Ipv4Conntrack, &ct4_bytes, &mut frame).unwrap_or(0);
    let request = frame[..len].to_vec();
    group.bench_function("decode request frame", |b| b.iter(|| fci::decode(black_box(&request))));
    group.finish();
}

/// The model alone: REGISTER then DEREGISTER of one flow with both routes in hardware.
fn model(c: &mut Criterion) {
    let Ok(mut cdx) = Cdx::new(&sim_config()) else { panic!("cannot build the model") };
    let now = Instant::now();
    for id in [1, 2] {
        cdx.handle(FCode::IpRoute, &route(id).to_vec(), now);
    }
    let register = tcp4(1000).to_vec_for(Abi::Lsdk);
    let deregister = tcp4(1000).basic(Action::Deregister).to_vec_for(Abi::Lsdk);
    let mut group = c.benchmark_group("sim model");
    group.throughput(Throughput::Elements(2));
    group.bench_function("register + deregister", |b| {
        b.iter(|| {
            let a = cdx.handle(FCode::Ipv4Conntrack, &register, now).rc();
            let d = cdx.handle(FCode::Ipv4Conntrack, &deregister, now).rc();
            assert!(a.is_ok() && d.is_ok());
        })
    });
    group.finish();
}

/// The software cdx of these benches: two FMan ports.
fn sim_config() -> SimConfig {
    SimConfig { interfaces: vec!["eth0".into(), "eth1".into()], ..SimConfig::default() }
}

/// A transport with window 64 over `socket`, the two routes the flows use registered.
fn with_routes<S: fci::DatagramSocket>(socket: S) -> Transport<S> {
    let mut transport = Transport::with_window(socket, 64);
    for id in [1, 2] {
        let rc = transport
            .call_payload(FCode::IpRoute, &route(id), Duration::from_secs(5))
            .map(|r| r.rc);
        assert!(matches!(rc, Ok(ReturnCode::Ok)));
    }
    transport
}

/// REGISTER and DEREGISTER of 32 flows, alternating: the table stays small and every reply
/// is OK.
fn churn_commands() -> Vec<Vec<u8>> {
    (0..32u16)
        .flat_map(|i| {
            [tcp4(i).to_vec_for(Abi::Lsdk), tcp4(i).basic(Action::Deregister).to_vec_for(Abi::Lsdk)]
        })
        .collect()
}

fn start_sim() -> (SimHandle, Transport<PairSocket>) {
    let Ok((handle, commands, _events)) = sim::spawn(sim_config()) else {
        panic!("cannot spawn the sim");
    };
    (handle, with_routes(commands))
}

/// Commands through the socket pair: alternating REGISTER/DEREGISTER of 32 flows so the
/// table stays small and every reply is OK.
fn sim_rate(c: &mut Criterion) {
    let (handle, mut transport) = start_sim();
    let commands = churn_commands();
    let timeout = Duration::from_secs(5);
    let mut group = c.benchmark_group("sim over socket pair");
    group.measurement_time(Duration::from_secs(4)).sample_size(20);

    // One position over the alternating sequence, shared by both benchmarks, so that a
    // flow is always registered before it is deregistered.
    let mut sequence = commands.iter().cycle();

    group.throughput(Throughput::Elements(1));
    group.bench_function("one at a time", |b| {
        b.iter(|| {
            let command = sequence.next().map_or(&[][..], Vec::as_slice);
            let reply = transport.call(FCode::Ipv4Conntrack, command, timeout);
            assert!(matches!(reply, Ok(ref r) if r.rc.is_ok()), "{reply:?}");
        })
    });

    let batch = 64;
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("pipelined, window 64", |b| {
        b.iter(|| {
            for command in sequence.by_ref().take(batch) {
                let sent = transport.send(FCode::Ipv4Conntrack, command);
                assert!(sent.is_ok(), "{sent:?}");
            }
            let deadline = Instant::now() + timeout;
            for _ in 0..batch {
                let reply = transport.recv_until(deadline);
                assert!(matches!(reply, Ok(ref r) if r.rc.is_ok()), "{reply:?}");
            }
        })
    });
    group.finish();
    handle.shutdown();
}

/// The same pipelined commands through the software cdx answering in the caller's thread:
/// framing, the model, the reply queued and read back, per command.
fn sim_in_process(c: &mut Criterion) {
    let Ok((handle, commands, _events)) = sim::attach(sim_config()) else {
        panic!("cannot attach the sim");
    };
    let mut transport = with_routes(FciSocket::from(commands));
    let timeout = Duration::from_secs(5);
    let commands = churn_commands();
    let mut group = c.benchmark_group("sim in process");
    let batch = 64;
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("pipelined, window 64", |b| {
        b.iter(|| {
            for command in &commands {
                let sent = transport.send(FCode::Ipv4Conntrack, command);
                assert!(sent.is_ok(), "{sent:?}");
            }
            for _ in 0..batch {
                let reply = transport.recv_within(timeout);
                assert!(matches!(reply, Ok(ref r) if r.rc.is_ok()), "{reply:?}");
            }
        })
    });
    group.finish();
    handle.shutdown();
}

criterion_group!(benches, codec, model, sim_rate, sim_in_process);
criterion_main!(benches);
