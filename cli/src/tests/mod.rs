//! Unit tests of the whole crate, one file per layer, plus property tests on hostile input.

mod auth;
mod client;
mod editor;
mod filter;
mod grammar;
mod limiter;
mod properties;
mod session;
mod telnet;

use std::sync::OnceLock;
use std::time::Instant;

/// A fixed origin so that tests can name instants.
pub(crate) fn t0() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Text with control bytes made visible: `\r`, `\n`, `\b` (0x08), `\a` (0x07), others `<xx>`.
pub(crate) fn visible(bytes: &[u8]) -> String {
    let mut text = String::new();
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\r' => text.push_str("\\r"),
                '\n' => text.push_str("\\n"),
                '\u{8}' => text.push_str("\\b"),
                '\u{7}' => text.push_str("\\a"),
                ch if ch.is_control() => text.push_str(&format!("<{:02x}>", u32::from(ch))),
                ch => text.push(ch),
            }
        }
        for byte in chunk.invalid() {
            text.push_str(&format!("<{byte:02x}>"));
        }
    }
    text
}
