//! cdx: FCI frames and FPP payloads, as the offload worker and the event loop read them from
//! cdx (replies, walk entries, `CONNTRACK_CHANGE` events), and as the software cdx reads
//! commands. The first byte picks the decoder. Seeds: frames the software cdx produces.
#![no_main]

use cdx_sys::fci;
use cdx_sys::fpp::{
    Abi, AbiPayload, Ct4Change, Ct4Cmd, Ct6Change, Ct6Cmd, CtEvent, FCode, FfControl, Payload,
    RouteCmd, TimeoutCmd, V4, V6, VlanEntry, query,
};
use cdx_sys::sim::{Cdx, SimConfig, UnwrittenFill};
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
            let _ = TimeoutCmd::parse(rest);
            let _ = FfControl::parse(rest);
            for abi in Abi::ALL {
                let _ = Ct4Cmd::parse_for(abi, rest).map(|c| c.len_for(abi));
                let _ = Ct6Cmd::parse_for(abi, rest).map(|c| c.len_for(abi));
                let _ = Ct4Change::parse_for(abi, rest);
                let _ = Ct6Change::parse_for(abi, rest);
                let _ = VlanEntry::parse_for(abi, rest);
            }
        }
        2 => {
            let _ = query::route_from_walk(rest);
            for abi in Abi::ALL {
                let _ = query::conntrack_from_walk::<V4>(abi, rest);
                let _ = query::conntrack_from_walk::<V6>(abi, rest);
            }
            let _ = CtEvent::parse(FCode::Ipv4ConntrackChange, rest);
            let _ = CtEvent::parse(FCode::Ipv6ConntrackChange, rest);
        }
        _ => {
            // The software cdx answering any command: it must never panic either.
            let Some((code, payload)) = rest.split_first_chunk::<2>() else { return };
            let abi = if code[0] & 1 == 0 { Abi::Lsdk } else { Abi::Ask };
            let config = SimConfig {
                interfaces: vec!["eth0".into(), "eth1".into()],
                capacity: 16,
                abi,
                unwritten: UnwrittenFill::GARBAGE,
                ..SimConfig::default()
            };
            let mut cdx = Cdx::new(&config).expect("valid names");
            let now = std::time::Instant::now();
            let _ = cdx.handle(FCode::from(u16::from_ne_bytes(*code)), payload, now);
            let _ = cdx.tick(now + std::time::Duration::from_secs(1_000_000));
        }
    }
});
