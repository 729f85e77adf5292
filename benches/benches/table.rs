//! The bounded flow table (`cmmd::core::flow::FlowTable`) at capacity (131072 entries): lookup of a
//! present key, lookup of an absent key, remove + insert (the churn of a full table), and the
//! refused insert when full; and the cost of hashing one key. Entries are `CtInfo` values, the size of what the engine stores.
//!
//! Run: `cargo bench -p cmmd-benches --bench table`.

use std::hash::{BuildHasher, RandomState};
use std::hint::black_box;

use cmmd::core::flow::{FlowKey, FlowTable, Keyed};
use cmmd::core::policy::CtInfo;
use cmmd_benches::load::{self, Kind, MIX};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FULL: u32 = 131_072;

/// A conntrack stored under its own key.
struct Tracked(CtInfo);

impl Keyed for Tracked {
    fn key(&self) -> &FlowKey {
        &self.0.key
    }
}

fn entry(index: u32) -> Tracked {
    Tracked(load::established(kind(index), index))
}

fn kind(index: u32) -> Kind {
    MIX[index as usize % MIX.len()]
}

fn full_table() -> FlowTable<Tracked> {
    let mut table = FlowTable::with_capacity(FULL as usize);
    for index in 0..FULL {
        if table.insert(entry(index)).is_err() {
            unreachable!("the table holds its capacity");
        }
    }
    table
}

/// Indices in a scattered order (a multiplicative walk), so lookups do not follow insertion.
fn scattered(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(move |i| i.wrapping_mul(2_654_435_761) % n)
}

fn table(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_table_131072");
    group.throughput(Throughput::Elements(1));

    let mut table = full_table();
    assert!(table.is_full());
    let keys: Vec<FlowKey> = scattered(FULL).map(|i| load::key(kind(i), i)).collect();
    let mut at = 0;
    group.bench_function("lookup_hit", |b| {
        b.iter(|| {
            at = (at + 1) % keys.len();
            black_box(table.find(&keys[at]))
        })
    });
    let absent: Vec<FlowKey> = scattered(FULL).map(|i| load::key(kind(i), i + 4 * FULL)).collect();
    group.bench_function("lookup_miss", |b| {
        b.iter(|| {
            at = (at + 1) % absent.len();
            black_box(table.find(&absent[at]))
        })
    });

    // Remove the oldest entry and insert a new one: the table stays full.
    let mut oldest = 0u32;
    group.bench_function("remove_insert", |b| {
        b.iter(|| {
            let old = load::key(kind(oldest), oldest);
            let removed = table.find(&old).and_then(|id| table.remove(id));
            assert!(removed.is_some(), "entry {oldest} is in the table");
            let inserted = table.insert(entry(oldest + FULL));
            oldest += 1;
            black_box(inserted)
        })
    });
    assert_eq!(table.len(), FULL as usize);

    let extra = entry(u32::MAX / 2);
    group.bench_function("insert_refused_when_full", |b| {
        b.iter(|| black_box(table.insert(Tracked(extra.0)).is_err()))
    });
    group.finish();

    // What one hash of a key costs with the table's hasher (std's SipHash-1-3 `RandomState`):
    // the engine hashes keys several times per event (table, hardware index, route cache).
    let mut group = c.benchmark_group("flow_key_hash");
    group.throughput(Throughput::Elements(1));
    let hasher = RandomState::new();
    for (name, kind) in [("std_random_state_v4", Kind::Tcp4), ("std_random_state_v6", Kind::Udp6)] {
        let key = load::key(kind, 12_345);
        group.bench_function(name, |b| b.iter(|| hasher.hash_one(black_box(&key))));
    }
    group.finish();
}

criterion_group!(benches, table);
criterion_main!(benches);
