//! ctnetlink: a datagram from the conntrack event or dump socket, every message decoded into
//! the daemon's value, and each entry's tuples emitted again as a request (what keepalive and
//! deletes send back to the kernel). Seeds: `conntrack/fixtures/*.hex`.
#![no_main]

use conntrack::{Conntrack, Datagram, Message, request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    for message in Datagram::new(data) {
        let Ok(Message::Conntrack(m)) = message else { continue };
        let _ = m.helper_name();
        if let Ok(ct) = Conntrack::from_message(&m) {
            out.clear();
            request::delete(&mut out, &ct.orig, ct.zone, ct.id, 1);
            let again = Datagram::new(&out).next();
            assert!(matches!(again, Some(Ok(Message::Conntrack(_)))), "a request we build parses");
        }
    }
});
