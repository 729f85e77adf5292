//! The CLI backend's behaviour: what commands print for a given engine.

use std::net::Ipv4Addr;

use cli::{Request, SessionConfig};

use super::*;
use crate::core::engine::{Action, CtEventKind, EngineConfig};
use crate::core::flow::{FlowKey, Tuple};
use crate::core::net::NetView;
use crate::core::policy::CtInfo;

fn established(client: [u8; 4], port: u16) -> CtInfo {
    let orig = Tuple {
        src: Ipv4Addr::from(client).into(),
        dst: Ipv4Addr::new(10, 2, 0, 2).into(),
        src_port: port,
        dst_port: 443,
    };
    CtInfo {
        key: FlowKey { zone: 0, proto: crate::core::flow::key::proto::TCP, orig },
        reply: orig.inverse(),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        tcp_state: Some(TcpState::Established),
        mark: 0,
        id: u32::from(port),
        timeout: Some(300),
        helper: false,
        seq_adjust: false,
        fastpath: [None; 2],
    }
}

/// An engine whose initial dump held `cts` (no hardware walk; route lookups unanswered).
fn engine_with(cts: &[CtInfo], now: Instant) -> Engine {
    let cfg = EngineConfig { reconcile: false, ..EngineConfig::default() };
    let mut engine = Engine::new(cfg, NetView::new([]), now);
    engine.start(now);
    while let Some(action) = engine.pop_action() {
        if let Action::Dump { generation } = action {
            for ct in cts {
                engine.on_conntrack(CtEventKind::Dump, ct, now);
            }
            engine.on_dump_done(generation, now);
        }
    }
    engine
}

/// What `line` prints, run the way the daemon runs it.
fn run(engine: &mut Engine, line: &str, now: Instant) -> String {
    let mut session = Session::new(SessionConfig::default());
    session.start(now);
    session.receive(b"admin\r\nadmin\r\n", now);
    let Some(Request::Authenticate { .. }) = session.next_request() else { panic!("login") };
    session.authenticated(true, now);
    session.consume_output(session.output_len());
    session.receive(format!("{line}\r\n").as_bytes(), now);
    let Some(Request::Execute(invocation)) = session.next_request() else { panic!("{line}") };
    let (mut stop, extra) = (false, crate::edge::metrics::Extra::default());
    let mut ctx = Ctx {
        engine,
        now,
        telemetry: None,
        config_text: "",
        rules: &[],
        sim: None,
        stop: &mut stop,
        started: now,
        backend: "sim",
        extra: &extra,
    };
    if let Next::Stream(mut job) = execute(&mut ctx, &invocation.command, &mut session) {
        while !job.step(ctx.engine, now, &mut session) {}
    }
    String::from_utf8_lossy(session.pending_output()).into_owned()
}

#[test]
fn show_connections_local_lists_the_connections_of_the_host_itself() {
    let now = Instant::now();
    let (host, forwarded) = (established([10, 1, 0, 1], 40000), established([10, 1, 0, 2], 40001));
    let mut engine = engine_with(&[host, forwarded], now);
    assert_eq!(engine.len(), 2);
    // 10.1.0.1 becomes an address of this host: its connection is the host's own.
    engine.on_address(1, host.key.orig.src, true, now);
    let out = run(&mut engine, "show connections local", now);
    assert!(out.contains("sport=40000"), "{out}");
    assert!(!out.contains("sport=40001"), "{out}");
    assert!(out.contains("1 connections printed"), "{out}");
    let out = run(&mut engine, "show connections local pending", now);
    assert!(out.contains("2 connections printed"), "either status matches: {out}");
}

#[test]
fn the_state_filter_selects_by_the_kernel_s_tcp_state() {
    let now = Instant::now();
    let mut engine = engine_with(&[established([10, 1, 0, 2], 40001)], now);
    assert_eq!(engine.len(), 1);
    let out = run(&mut engine, "show connections state established", now);
    assert!(out.contains(" ESTABLISHED src=10.1.0.2 "), "{out}");
    assert!(out.contains("1 connections printed"), "{out}");
    let out = run(&mut engine, "show connections state time_wait", now);
    assert!(out.contains("0 connections printed"), "{out}");
}

#[test]
fn every_tcp_state_name_is_one_word_of_the_filter() {
    for (state, name) in TCP_STATE_NAMES {
        assert_eq!(tcp_state_of_word(&name.to_ascii_lowercase()), Some(state), "{name}");
        assert_eq!(tcp_state_name(Some(state)), name);
    }
    assert_eq!(tcp_state_name(Some(TcpState::Other(42))), "UNKNOWN");
    assert_eq!(tcp_state_name(None), "NONE");
    assert_eq!(tcp_state_of_word("open"), None);
}
