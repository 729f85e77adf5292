//! `show connections` on a full table (131072 offloaded connections): lines per second through
//! the real path (session parses the command, `cmmd::edge::control` executes it, `ConnectionsJob`
//! streams it in steps of `STEP_LINES` lines, the session filters and buffers the output),
//! and the duration of each step — the longest the event loop waits for the CLI.
//!
//! Target: no step longer than 5 ms. Run: `cargo bench -p cmmd-benches --bench render`.

use std::time::{Duration, Instant};

use cmmd_benches::cli::{logged_in_session, render, start_show_connections};
use cmmd_benches::world::{Churn, FakeWorld};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FULL: usize = 131_072;
/// Complete renderings timed step by step.
const STALL_RUNS: usize = 5;
const STALL_LIMIT: Duration = Duration::from_millis(5);

fn full_world() -> FakeWorld {
    let mut world = FakeWorld::new(FULL);
    Churn::new(FULL).fill(&mut world);
    world
}

fn show_connections(c: &mut Criterion) {
    let mut world = full_world();
    let now = world.now;
    let mut session = match logged_in_session(now) {
        Ok(session) => session,
        Err(error) => panic!("{error}"),
    };
    let mut group = c.benchmark_group("show_connections_131072");
    group.sample_size(10);
    group.throughput(Throughput::Elements(FULL as u64));
    for (name, line) in
        [("all", "show connections"), ("filtered_udp", "show connections proto udp")]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                let job = start_show_connections(&mut session, &mut world.engine, line, now);
                let mut job = job.unwrap_or_else(|error| panic!("{error}"));
                render(&mut job, &world.engine, &mut session, now, |_| {})
            })
        });
    }
    group.finish();

    // Step by step: the stall each step imposes on the event loop.
    let mut steps: Vec<Duration> = Vec::new();
    for _ in 0..STALL_RUNS {
        let job = start_show_connections(&mut session, &mut world.engine, "show connections", now);
        let mut job = job.unwrap_or_else(|error| panic!("{error}"));
        loop {
            let started = Instant::now();
            let done = job.step(&world.engine, now, &mut session);
            steps.push(started.elapsed());
            session.consume_output(session.output_len());
            if done {
                break;
            }
        }
    }
    steps.sort_unstable();
    let at = |q: f64| steps[((steps.len() - 1) as f64 * q) as usize];
    let max = steps[steps.len() - 1];
    println!(
        "show_connections_step ({} steps of {} lines): p50 {:?}, p99 {:?}, max {:?} (limit {:?})",
        steps.len(),
        cmmd::edge::control::STEP_LINES,
        at(0.5),
        at(0.99),
        max,
        STALL_LIMIT
    );
}

criterion_group!(benches, show_connections);
criterion_main!(benches);
