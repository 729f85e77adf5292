//! Writes the ASK fixtures (`fixtures/ask*.hex`) from their recipes in
//! `conntrack::fixtures::ask::MADE`: each stock capture with the attributes an ASK kernel adds.
//! A test checks the files against the recipes, so they are rewritten only when those change.
//!
//! `cargo run -p conntrack --example ask-fixtures --features fixtures -- conntrack/fixtures`

use std::io::Write;
use std::path::PathBuf;

use conntrack::fixtures::ask::{MADE, Made, Patch, as_ask};
use conntrack::{Datagram, FastPath, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "conntrack/fixtures".into()));
    for made in MADE {
        let path = dir.join(format!("{}.hex", made.fixture.name));
        let mut out = std::fs::File::create(&path)?;
        write_fixture(&mut out, &made)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn block(values: &FastPath) -> String {
    let xfrm = values.xfrm_handles.map_or("none".to_owned(), |handles| format!("{handles:04x?}"));
    format!(
        "mark {:#x} ifindex {} iif {} underlying_iif {} vid {} xfrm {xfrm}",
        values.mark, values.ifindex, values.iif, values.underlying_iif, values.underlying_vid
    )
}

fn write_fixture(out: &mut impl Write, made: &Made) -> std::io::Result<()> {
    let patch = match made.patch {
        Patch::Linux5_4 => "5.4 (999-layerscape-ask-kernel_linux_5_4_3_00_0.patch)",
        Patch::Linux6_12 => "6.12 (002-mono-gateway-ask-kernel_linux_6_12.patch)",
    };
    let stock = made.from.description().next().unwrap_or_default();
    writeln!(out, "# {stock}")?;
    writeln!(out, "# As an ASK {patch} kernel sends it: made from {}.hex by", made.from.name)?;
    writeln!(
        out,
        "# fixtures::ask::as_ask (examples/ask_fixtures.rs), CTA_TIMESTAMP_EVENT removed,"
    )?;
    writeln!(out, "# fast-path blocks before CTA_ID, the QoS connmark where the patch puts it.")?;
    writeln!(out, "# CTA_LAYERSCAPE_FP_ORIG: {}", block(&made.values.orig))?;
    writeln!(out, "# CTA_LAYERSCAPE_FP_REPLY: {}", block(&made.values.reply))?;
    writeln!(
        out,
        "# CTA_QOSCONNMARK: {:#018x} (events leave 0 out), pad before it: {}",
        made.values.qos_connmark, made.values.pad
    )?;
    let bytes = as_ask(&made.from.bytes(), made.patch, &made.values);
    let mut offset = 0;
    for message in Datagram::new(&bytes) {
        let described = match message {
            Ok(Message::Conntrack(ct)) => {
                let header = ct.header();
                format!(
                    "{:?} type={:#06x} flags={:#06x} seq={}",
                    ct.delivery(),
                    header.message_type,
                    header.flags,
                    header.seq
                )
            }
            Ok(other) => format!("{other:?}"),
            Err(error) => format!("undecodable: {error}"),
        };
        let length = bytes
            .get(offset..offset + 4)
            .and_then(|field| field.try_into().ok())
            .map_or(0, |field| u32::from_ne_bytes(field) as usize);
        writeln!(out, "# {described}")?;
        for line in bytes.get(offset..offset + length).unwrap_or_default().chunks(16) {
            let hex: Vec<String> = line.iter().map(|byte| format!("{byte:02x}")).collect();
            writeln!(out, "{}", hex.join(" "))?;
        }
        offset += (length + 3) & !3;
    }
    out.flush()
}
