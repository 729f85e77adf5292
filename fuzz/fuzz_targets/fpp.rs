//! cdx: FCI frames and FPP payloads, as the offload worker and the event loop read them from
//! cdx (replies, walk entries, `CONNTRACK_CHANGE` events), and as the software cdx reads
//! commands. The first byte picks the decoder. Seeds: frames the software cdx produces.
#![no_main]

use cdx_sys::fci;
use cdx_sys::fpp::{
    Ct4Change, Ct4Cmd, Ct6Change, Ct6Cmd, CtEvent, FCode, FfControl, Payload, RouteCmd, TimeoutCmd,
    VlanEntry, query,
};
use cdx_sys::sim::Cdx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 4 {
        0 => {
            for frame in fci::frames(rest) {
                let _ = frame;
            }
            let _ = fci::decode(rest);
            let mut events = Vec::new();
            let mut ignored = 0;
            cmmd::edge::offload::decode_events(rest, &mut events, &mut ignored);
        }
        1 => {
            let _ = RouteCmd::parse(rest).map(|c| c.buffer_len());
            let _ = Ct4Cmd::parse(rest).map(|c| c.buffer_len());
            let _ = Ct6Cmd::parse(rest).map(|c| c.buffer_len());
            let _ = Ct4Change::parse(rest);
            let _ = Ct6Change::parse(rest);
            let _ = TimeoutCmd::parse(rest);
            let _ = FfControl::parse(rest);
            let _ = VlanEntry::parse(rest);
        }
        2 => {
            let _ = query::entry_from_reply::<RouteCmd>(rest);
            let _ = query::entry_from_reply::<Ct4Cmd>(rest);
            let _ = query::entry_from_reply::<Ct6Cmd>(rest);
            let _ = CtEvent::parse(FCode::Ipv4ConntrackChange, rest);
            let _ = CtEvent::parse(FCode::Ipv6ConntrackChange, rest);
        }
        _ => {
            // The software cdx answering any command: it must never panic either.
            let Some((code, payload)) = rest.split_first_chunk::<2>() else { return };
            let ports = ["eth0", "eth1"].map(|p| cdx_sys::fpp::IfName::new(p).expect("valid"));
            let mut cdx = Cdx::new(ports, 16);
            let now = std::time::Instant::now();
            let _ = cdx.handle(FCode::from(u16::from_ne_bytes(*code)), payload, now);
            let _ = cdx.tick(now + std::time::Duration::from_secs(1_000_000));
        }
    }
});
