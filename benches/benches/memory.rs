//! Memory per tracked connection, three ways, with 131072 offloaded connections in the engine:
//!
//! 1. `Engine::table_bytes()`: what the engine says its flow table holds on the heap;
//! 2. live heap counted by a global allocator (`stats_alloc`): the whole engine (table, index,
//!    route cache, timers, hardware index…) after filling, divided by the connections;
//! 3. the process's resident set (`VmRSS`) before and after filling.
//!
//! Then heap allocations per event while churning a full table (the hot path should not need
//! the allocator), the engine's heap after a cold start from a 131072-entry dump, and how much the heap grows per connection that came and went (state left
//! behind by ended connections). Prints one `name: value` line each; no criterion (nothing to repeat).
//! Target: ≤ 200 B per tracked connection. Run: `cargo bench -p cmmd-benches --bench memory`.

use std::alloc::System;
use std::fs;

use cmmd::core::engine::{Action, EngineConfig};
use cmmd::core::policy::CtInfo;
use cmmd_benches::load::{self, MIX};
use cmmd_benches::world::{Churn, FakeWorld};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const FULL: usize = 131_072;
const CHURN_STEPS: usize = 100_000;

/// Resident set of this process in bytes, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes live on the heap since `region` started. (`stats_alloc` adds a reallocation's growth
/// to `bytes_allocated` and its shrinkage to `bytes_deallocated`; `bytes_reallocated` repeats
/// that net change, so it is not added again.)
fn live_bytes(region: &Region<'_, System>) -> i64 {
    let change = region.change();
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

fn main() {
    let rss_before = rss_bytes();
    let region = Region::new(GLOBAL);
    let mut world = FakeWorld::new(FULL);
    let empty_heap = live_bytes(&region);
    let empty_table = world.engine.table_bytes();
    let mut churn = Churn::new(FULL);
    churn.fill(&mut world);
    assert_eq!(world.engine.len(), FULL);
    let full_heap = live_bytes(&region);
    let rss_after = rss_bytes();
    let table = world.engine.table_bytes();

    let per = |bytes: i64| bytes as f64 / FULL as f64;
    println!("memory_tracked_connections: {FULL}");
    println!("memory_flow_size_bytes: {}", std::mem::size_of::<cmmd::core::engine::Flow>());
    println!("memory_table_bytes_empty: {empty_table}");
    println!("memory_table_bytes_full: {table}");
    println!("memory_table_bytes_per_connection: {:.1}", per(table as i64));
    println!("memory_engine_heap_bytes_empty: {empty_heap}");
    println!("memory_engine_heap_bytes_full: {full_heap}");
    println!("memory_engine_heap_bytes_per_connection: {:.1}", per(full_heap));
    println!("memory_engine_heap_growth_bytes_per_connection: {:.1}", per(full_heap - empty_heap));
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let delta = after.saturating_sub(before) as i64;
        println!("memory_rss_delta_bytes: {delta}");
        println!("memory_rss_delta_bytes_per_connection: {:.1}", per(delta));
    }

    let before = region.change();
    let mut events = 0;
    for _ in 0..CHURN_STEPS {
        events += churn.step(&mut world);
    }
    let after = region.change();
    let allocations = after.allocations - before.allocations;
    let after_churn = live_bytes(&region);
    drop(churn);
    drop(world);

    // A cold start: the same number of connections arrive in one dump, each queued for the
    // hardware at once. What the engine keeps afterwards includes the queues' peak capacity.
    let table: Vec<CtInfo> =
        (0..FULL).map(|i| load::established(MIX[i % MIX.len()], i as u32)).collect();
    let cold_region = Region::new(GLOBAL);
    let cold = FakeWorld::with_kernel_table(EngineConfig::default(), table);
    let cold_heap = live_bytes(&cold_region);
    assert_eq!(cold.engine.len(), FULL);
    println!("memory_action_size_bytes: {}", std::mem::size_of::<Action>());
    println!("memory_cold_start_engine_heap_bytes: {cold_heap}");
    println!("memory_cold_start_engine_heap_bytes_per_connection: {:.1}", per(cold_heap));
    let churned = (CHURN_STEPS * MIX.len()) as f64;
    println!("memory_churn_events: {events}");
    println!("memory_churn_allocations_per_event: {:.3}", allocations as f64 / events as f64);
    println!("memory_engine_heap_bytes_after_churn: {after_churn}");
    println!(
        "memory_engine_heap_growth_bytes_per_churned_connection: {:.1}",
        (after_churn - full_heap) as f64 / churned
    );
}
