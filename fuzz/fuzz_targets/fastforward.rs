//! The vendor `fastforward` file (`/etc/config/fastforward`): any bytes parse to rules or fail
//! with one line. Seeds: `packaging/fastforward.vendor.orig`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = config::parse_fastforward(Path::new("fastforward"), data) {
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
});
