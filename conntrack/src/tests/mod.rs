//! Unit tests: golden kernel captures, malformed input, request builders, and the
//! netlink-packet-netfilter oracle.

use crate::message::{Header, begin_message, end_message};
use crate::nla::AttrWriter;

mod ask;
mod dialect;
mod differential;
mod golden;
mod malformed;
mod requests;

/// A whole message with `header`, `nfgenmsg` of `family`, and the attributes `attrs` writes.
fn build_message(header: Header, family: u8, attrs: impl FnOnce(&mut AttrWriter<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    let start = begin_message(&mut out, header, family, 0);
    let mut writer = AttrWriter::new(&mut out);
    attrs(&mut writer);
    writer.finish().unwrap();
    end_message(&mut out, start);
    out
}
