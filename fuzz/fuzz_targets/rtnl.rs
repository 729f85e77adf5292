//! rtnetlink: a datagram from the route/neighbour/link sockets decoded into engine inputs.
//! Seeds: real kernel dumps (`seed-corpora.sh` captures them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let skipped = cmmd::edge::rtnl::decode(data, &mut out);
    assert!(out.len() + skipped <= data.len() / 16 + 1, "at most one result per header");
});
