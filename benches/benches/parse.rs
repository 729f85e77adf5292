//! ctnetlink decode of events captured from the kernel (`conntrack::fixtures`): nanoseconds per
//! event from datagram bytes to a validated `conntrack::Event`, and, for comparison, the owned
//! decoder of netlink-packet-netfilter on the same bytes.
//!
//! `cargo bench -p cmmd-benches --bench parse`

use std::hint::black_box;

use conntrack::fixtures::{self, Fixture};
use conntrack::{Datagram, DialectSetting, DialectTracker, Event, Message};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netlink_packet_core::NetlinkMessage;
use netlink_packet_netfilter::NetfilterMessage;

/// Every event (or dump entry) of `bytes`, parsed and validated; returns how many.
fn parse_events(bytes: &[u8]) -> usize {
    let mut events = 0;
    for message in Datagram::new(bytes) {
        if let Ok(Message::Conntrack(message)) = message {
            match Event::from_message(&message) {
                Ok(Some(event)) => black_box(event).ct.id.map_or((), drop),
                // Dump entries are not events: decode them as entries.
                Ok(None) => {
                    black_box(conntrack::Conntrack::from_message(&message)).map_or((), drop)
                }
                Err(error) => panic!("captured message does not decode: {error}"),
            }
            events += 1;
        }
    }
    events
}

/// As [`parse_events`], through the daemon's `DialectTracker` (the dialect already known).
fn parse_events_tracked(bytes: &[u8], tracker: &mut DialectTracker) -> usize {
    let mut events = 0;
    for message in Datagram::new(bytes) {
        if let Ok(Message::Conntrack(message)) = message {
            match tracker.decode(&message) {
                Ok(entry) => black_box(entry).id.map_or((), drop),
                Err(error) => panic!("message does not decode: {error}"),
            }
            events += 1;
        }
    }
    events
}

fn parse(c: &mut Criterion) {
    let cases: [(&str, Fixture); 6] = [
        ("tcp4_established_update", fixtures::TCP4_SNAT_ESTABLISHED),
        ("tcp4_new", fixtures::TCP4_SNAT_NEW),
        ("tcp4_destroy_counters", fixtures::TCP4_SNAT_DESTROY),
        ("tcp6_new", fixtures::TCP6_SNAT_NEW),
        ("udp4_new", fixtures::UDP4_SNAT_NEW),
        ("dump_two_entries", fixtures::DUMP_TWO_ENTRIES),
    ];
    let mut group = c.benchmark_group("conntrack_parse");
    for (name, fixture) in cases {
        let bytes = fixture.bytes();
        let events = parse_events(&bytes);
        assert!(events > 0, "{name}: no event decoded");
        group.throughput(Throughput::Elements(events as u64));
        group.bench_function(name, |b| b.iter(|| parse_events(black_box(&bytes))));
    }
    // An ASK 6.12 kernel's UPDATE (fast-path blocks, QoS connmark): recognised in each message
    // alone, and through a tracker that has learned the numbering.
    let bytes = fixtures::ASK612_TCP4_SNAT_ESTABLISHED.bytes();
    assert_eq!(parse_events(&bytes), 1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("ask612_tcp4_established_update_recognise", |b| {
        b.iter(|| parse_events(black_box(&bytes)))
    });
    let mut tracker = DialectTracker::new(DialectSetting::Auto);
    assert_eq!(parse_events_tracked(&bytes, &mut tracker), 1);
    assert_eq!(tracker.dialect().label(), "ask-6.12");
    group.bench_function("ask612_tcp4_established_update_tracked", |b| {
        b.iter(|| parse_events_tracked(black_box(&bytes), &mut tracker))
    });
    group.finish();

    let mut group = c.benchmark_group("netlink_packet_netfilter_parse");
    let bytes = fixtures::TCP4_SNAT_ESTABLISHED.bytes();
    assert!(NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).is_ok());
    group.throughput(Throughput::Elements(1));
    group.bench_function("tcp4_established_update", |b| {
        b.iter(|| {
            NetlinkMessage::<NetfilterMessage>::deserialize(black_box(&bytes))
                .map(black_box)
                .is_ok()
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
