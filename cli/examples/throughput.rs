//! Rough throughput of the CLI layers, for the README: `cargo run --release -p cli --example throughput`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cli::{Credentials, Request, Session, SessionConfig};

fn logged_in() -> Session {
    let mut session = Session::new(SessionConfig::default());
    let now = Instant::now();
    session.start(now);
    session.receive(b"admin\nadmin\n", now);
    while session.next_request().is_some() {}
    session.authenticated(true, now);
    let pending = session.output_len();
    session.consume_output(pending);
    session
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    // Commands: parse, request, empty reply, prompt.
    let mut session = logged_in();
    let commands = 200_000u64;
    let started = Instant::now();
    for _ in 0..commands {
        session.receive(b"show connections proto tcp state established port 443\n", started);
        while let Some(request) = session.next_request() {
            if let Request::Execute(invocation) = request {
                black_box(invocation);
                session.reply_done();
            }
        }
        let pending = session.output_len();
        session.consume_output(pending);
    }
    println!("commands parsed and answered: {:.0}/s", rate(commands, started.elapsed()));

    // Reply lines, unfiltered and through `| include`.
    for line in ["show connections\n", "show connections | include ESTABLISHED\n"] {
        session.receive(line.as_bytes(), started);
        while session.next_request().is_some() {}
        let lines = 1_000_000u64;
        let started = Instant::now();
        let mut bytes = 0usize;
        for index in 0..lines {
            let state = if index % 2 == 0 { "ESTABLISHED" } else { "TIME_WAIT" };
            session.reply_line(&format!(
                "ipv4     2 tcp      6 431990 {state} src=192.168.1.10 dst=198.51.100.7 sport=51514 dport=443 src=198.51.100.7 dst=203.0.113.5 sport=443 dport=51514 [ASSURED] mark=0 use=1, Flags: 1, n_id: 1, local-conn: no"
            ));
            if session.output_len() > 64 * 1024 {
                bytes += session.output_len();
                let pending = session.output_len();
                session.consume_output(pending);
            }
        }
        session.reply_done();
        let elapsed = started.elapsed();
        println!(
            "reply lines ({}): {:.0}/s, {:.0} MB/s out",
            line.trim_end(),
            rate(lines, elapsed),
            bytes as f64 / elapsed.as_secs_f64() / 1e6
        );
        let pending = session.output_len();
        session.consume_output(pending);
    }

    // Typing in character mode with echo (telnet client), 64 KiB lines of keys.
    let mut session = Session::new(SessionConfig { max_line: 1 << 20, ..SessionConfig::default() });
    session.start(started);
    session.receive(&[255, 253, 1], started);
    session.receive(b"admin\r\nadmin\r\n", started);
    while session.next_request().is_some() {}
    session.authenticated(true, started);
    let keys = vec![b'x'; 64 * 1024];
    let rounds = 64u64;
    let started = Instant::now();
    for _ in 0..rounds {
        session.receive(&keys, started);
        session.receive(b"\x15", started);
        let pending = session.output_len();
        session.consume_output(pending);
    }
    let elapsed = started.elapsed();
    println!(
        "typed input with echo: {:.1} MB/s",
        (rounds as f64 * keys.len() as f64) / elapsed.as_secs_f64() / 1e6
    );

    // One password verification with the default argon2id cost.
    let credentials = Credentials::default_admin();
    let started = Instant::now();
    let ok = credentials.verify("admin", "admin");
    println!("argon2id verify (m=19456 KiB, t=2, p=1): {:?} ({ok})", started.elapsed());
}
