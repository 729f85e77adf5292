//! Parsing an event allocates nothing: a counting global allocator watches the whole path from
//! datagram bytes to `Event`, for every captured kernel message and every ASK fixture, alone
//! and through a `DialectTracker` (recognising, and pinned).

use std::alloc::System;

use conntrack::{
    AskNumbering, Conntrack, Datagram, Dialect, DialectSetting, DialectTracker, Event, Message,
    fixtures,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Parses every message of `bytes` to its final value, alone and with `tracker`; returns how
/// many conntrack messages.
fn parse_all(bytes: &[u8], tracker: &mut DialectTracker) -> usize {
    let mut entries = 0;
    for message in Datagram::new(bytes) {
        if let Ok(Message::Conntrack(message)) = message {
            let event = Event::from_message(&message).expect("captured events decode");
            let entry = Conntrack::from_message(&message).expect("captured entries decode");
            let tracked = tracker.decode(&message).expect("captured entries decode");
            let tracked_event = tracker.event(&message).expect("captured events decode");
            std::hint::black_box((event, entry, tracked, tracked_event));
            entries += 1;
        }
    }
    entries
}

#[test]
fn parsing_events_and_dumps_allocates_nothing() {
    // One test, so no other test thread allocates while the regions count. First, the control:
    // the counter does see an allocation.
    let region = Region::new(GLOBAL);
    drop(std::hint::black_box(Box::new([0u8; 64])));
    assert_eq!(region.change().allocations, 1);

    let captured: Vec<(&str, Vec<u8>)> = fixtures::ALL
        .iter()
        .chain(fixtures::ASK)
        .map(|fixture| (fixture.name, fixture.bytes()))
        .collect();
    let settings = [
        DialectSetting::Auto,
        DialectSetting::Pinned(Dialect::Stock),
        DialectSetting::Pinned(Dialect::Ask(AskNumbering::LINUX_6_12)),
        DialectSetting::Pinned(Dialect::Ask(AskNumbering::LINUX_5_4)),
    ];
    for setting in settings {
        for (name, bytes) in &captured {
            let mut tracker = DialectTracker::new(setting);
            let region = Region::new(GLOBAL);
            let mut parsed = 0;
            for _ in 0..100 {
                parsed += parse_all(bytes, &mut tracker);
            }
            let change = region.change();
            let allocations = change.allocations + change.reallocations;
            assert!(parsed >= 100, "{name}");
            assert_eq!(
                allocations, 0,
                "{name} {setting}: {allocations} allocations in {parsed} parses"
            );
        }
    }
}
