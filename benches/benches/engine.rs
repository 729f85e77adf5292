//! The engine in-process: conntrack events per second through policy, flow table, route cache,
//! route objects and the programming state machine, with a hardware and a kernel that answer
//! at once (`cmmd_benches::world`). The mix cycles TCP/UDP over IPv4/IPv6; each connection
//! produces its kernel sequence (TCP: NEW, UPDATE ESTABLISHED; UDP: NEW, UPDATE, UPDATE
//! ASSURED) and a DESTROY, and is programmed and withdrawn on the way.
//!
//! - `engine_churn/empty_table`: every connection ends in the step that started it.
//! - `engine_churn/full_table_131072`: 131072 offloaded connections stay in the table; each
//!   new one replaces the oldest.
//! - `engine_cold_start/dump_131072`: a new engine reconciles a 131072-entry dump (every entry
//!   offloadable) until every connection is programmed — the in-process part of a cold start.
//!
//! Target: ≥ 2 000 000 events/s. Run: `cargo bench -p cmmd-benches --bench engine`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cmmd::core::engine::EngineConfig;
use cmmd::core::policy::CtInfo;
use cmmd_benches::load::{self, MIX};
use cmmd_benches::world::{Churn, FakeWorld};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FULL: usize = 131_072;
/// Clock advance per step (keeps the engine's timers real without running keepalive storms).
const TICK: Duration = Duration::from_micros(10);

fn churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_churn");
    group.throughput(Throughput::Elements(Churn::events_per_step() as u64));
    for (name, live) in [("empty_table", 0), ("full_table_131072", FULL)] {
        let mut world = FakeWorld::new(FULL);
        let mut ring = Churn::new(live);
        ring.fill(&mut world);
        assert_eq!(world.engine.len(), live, "{name}: table not at its size");
        group.bench_function(name, |b| {
            b.iter(|| {
                world.advance(TICK);
                black_box(ring.step(&mut world))
            })
        });
        assert_eq!(world.engine.len(), live, "{name}: churn changed the table size");
        let stats = world.engine.stats();
        assert_eq!(stats.offloaded, stats.admitted, "{name}: a connection was not offloaded");
    }
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    let table: Vec<CtInfo> =
        (0..FULL).map(|i| load::established(MIX[i % MIX.len()], i as u32)).collect();
    let mut group = c.benchmark_group("engine_cold_start");
    group.sample_size(10);
    group.throughput(Throughput::Elements(FULL as u64));
    group.bench_function("dump_131072", |b| {
        b.iter_custom(|iterations| {
            let mut took = Duration::ZERO;
            for _ in 0..iterations {
                let cfg = EngineConfig { capacity: FULL, ..EngineConfig::default() };
                let kernel = table.clone();
                let started = Instant::now();
                let world = FakeWorld::with_kernel_table(cfg, kernel);
                took += started.elapsed();
                assert_eq!(world.engine.len(), FULL);
                assert!(world.engine.is_ready());
                drop(black_box(world));
            }
            took
        })
    });
    group.finish();
}

criterion_group!(benches, churn, cold_start);
criterion_main!(benches);
