//! The ASK dialect: stock captures with each patch's attributes (see `fixtures::ask`) decode to
//! the stock entry plus the fast-path blocks and the QoS connmark, in both numberings, with
//! and without `XFRM_HANDLE` and the pad, for dump entries and every event kind; they emit
//! back to their bytes; and the views show the attributes as the patch wrote them.

use proptest::prelude::*;

use crate::fixtures::ask::{AskValues, LAN, MADE, Patch, QOS, UNSEEN, WAN_VLAN, as_ask};
use crate::fixtures::{self, ALL, Fixture};
use crate::message::{begin_message, end_message};
use crate::*;

fn conntrack_messages(bytes: &[u8]) -> Vec<CtMessage<'_>> {
    Datagram::new(bytes)
        .filter_map(|message| match message.unwrap() {
            Message::Conntrack(message) => Some(message),
            _ => None,
        })
        .collect()
}

fn numbering(patch: Patch) -> AskNumbering {
    match patch {
        Patch::Linux5_4 => AskNumbering::LINUX_5_4,
        Patch::Linux6_12 => AskNumbering::LINUX_6_12,
    }
}

/// What a stock entry becomes on an ASK kernel sending `values`.
fn with_ask(stock: Conntrack, delivery: Delivery, values: &AskValues) -> Conntrack {
    let dump = matches!(delivery, Delivery::DumpEntry);
    Conntrack {
        ask: AskInfo {
            orig: Some(values.orig),
            reply: Some(values.reply),
            qos_connmark: (dump || values.qos_connmark != 0).then_some(values.qos_connmark),
        },
        ..stock
    }
}

#[test]
fn the_ask_fixtures_are_their_recipes() {
    for made in MADE {
        assert_eq!(
            made.fixture.bytes(),
            as_ask(&made.from.bytes(), made.patch, &made.values),
            "{}: run the ask-fixtures example",
            made.fixture.name
        );
    }
    assert_eq!(MADE.map(|made| made.fixture), fixtures::ASK);
}

#[test]
fn an_ask_6_12_event_decodes_with_its_fast_path_blocks() {
    // Before the dialect, this failed the whole entry with "CTA_TIMESTAMP_EVENT: value is 40
    // bytes, expected 8": 27 is CTA_LAYERSCAPE_FP_ORIG on 6.12.
    let bytes = fixtures::ASK612_TCP4_SNAT_NEW.bytes();
    let [message] = conntrack_messages(&bytes)[..] else { panic!() };
    let stock = fixtures::TCP4_SNAT_NEW.bytes();
    let [stock] = conntrack_messages(&stock)[..] else { panic!() };
    assert_eq!(
        Conntrack::from_message(&message),
        Ok(Conntrack {
            ask: AskInfo { orig: Some(LAN), reply: Some(UNSEEN), qos_connmark: None },
            ..Conntrack::from_message(&stock).unwrap()
        })
    );
    // Upstream's view reads 27 as CTA_TIMESTAMP_EVENT and says so, and goes on.
    let upstream: Vec<_> = message.attrs().iter().collect();
    assert_eq!(
        upstream[2],
        Err(DecodeError::ValueLength { attr: "CTA_TIMESTAMP_EVENT", expected: 8, actual: 40 })
    );
    assert!(matches!(upstream[3], Ok(Attr::Other(raw)) if raw.kind() == 28 && raw.is_nested()));
    assert_eq!(upstream.len(), 8, "both tuples, two blocks, id, status, timeout, protoinfo");
    // The layout: the blocks right after the tuples, before CTA_ID; no CTA_TIMESTAMP_EVENT.
    let kinds: Vec<u16> = message.raw_attrs().map(|raw| raw.unwrap().type_field()).collect();
    assert_eq!(kinds, [0x8001, 0x8002, 0x801b, 0x801c, 12, 3, 7, 0x8004]);
}

#[test]
fn ask_fixtures_decode_to_exact_values() {
    // The values are those the files' comments state (the views test reads some of them from
    // the bytes by hand).
    let expected: [(Fixture, Fixture, AskInfo); 8] = [
        (
            fixtures::ASK612_TCP4_SNAT_NEW,
            fixtures::TCP4_SNAT_NEW,
            AskInfo { orig: Some(LAN), reply: Some(UNSEEN), qos_connmark: None },
        ),
        (
            fixtures::ASK612_TCP4_SNAT_ESTABLISHED,
            fixtures::TCP4_SNAT_ESTABLISHED,
            AskInfo { orig: Some(LAN), reply: Some(WAN_VLAN), qos_connmark: Some(QOS) },
        ),
        (
            fixtures::ASK612_TCP4_SNAT_DESTROY,
            fixtures::TCP4_SNAT_DESTROY,
            AskInfo { orig: Some(LAN), reply: Some(WAN_VLAN), qos_connmark: Some(QOS) },
        ),
        (
            fixtures::ASK612_TCP6_SNAT_NEW,
            fixtures::TCP6_SNAT_NEW,
            AskInfo { orig: Some(LAN), reply: Some(UNSEEN), qos_connmark: None },
        ),
        (
            fixtures::ASK612_UDP4_SNAT_NEW,
            fixtures::UDP4_SNAT_NEW,
            AskInfo { orig: Some(LAN), reply: Some(UNSEEN), qos_connmark: Some(QOS) },
        ),
        (
            fixtures::ASK612_DUMP_TWO_ENTRIES,
            fixtures::DUMP_TWO_ENTRIES,
            AskInfo { orig: Some(LAN), reply: Some(WAN_VLAN), qos_connmark: Some(0) },
        ),
        (
            fixtures::ASK54_TCP4_SNAT_ESTABLISHED,
            fixtures::TCP4_SNAT_ESTABLISHED,
            AskInfo {
                orig: Some(FastPath {
                    mark: 0x4000,
                    xfrm_handles: Some([0x11, 0, 0x12, 0]),
                    ..LAN
                }),
                reply: Some(FastPath { xfrm_handles: Some([0, 0, 0x21, 0]), ..WAN_VLAN }),
                qos_connmark: Some(QOS),
            },
        ),
        (
            fixtures::ASK54_DUMP_TWO_ENTRIES,
            fixtures::DUMP_TWO_ENTRIES,
            AskInfo { orig: Some(LAN), reply: Some(WAN_VLAN), qos_connmark: Some(QOS) },
        ),
    ];
    for (ask, stock, info) in expected {
        let (bytes, stock_bytes) = (ask.bytes(), stock.bytes());
        let decoded: Vec<_> = conntrack_messages(&bytes)
            .iter()
            .map(|m| Conntrack::from_message(m).unwrap())
            .collect();
        let wanted: Vec<_> = conntrack_messages(&stock_bytes)
            .iter()
            .map(|m| Conntrack { ask: info, ..Conntrack::from_message(m).unwrap() })
            .collect();
        assert_eq!(decoded, wanted, "{}", ask.name);
        let mut emitted = Vec::new();
        for message in conntrack_messages(&bytes) {
            message.emit(&mut emitted).unwrap();
        }
        assert!(bytes.starts_with(&emitted), "{}: emits back to its bytes", ask.name);
    }
}

#[test]
fn the_views_show_what_each_patch_wrote() {
    let bytes = fixtures::ASK54_TCP4_SNAT_ESTABLISHED.bytes();
    let [message] = conntrack_messages(&bytes)[..] else { panic!() };
    let ask: Vec<_> = message.ask_attrs(AskNumbering::LINUX_5_4).map(Result::unwrap).collect();
    let [AskAttr::FastPathOrig(orig), AskAttr::FastPathReply(reply), pad, qos] = ask[..] else {
        panic!("{ask:?}")
    };
    assert_eq!((pad, qos), (AskAttr::QosConnmarkPad, AskAttr::QosConnmark(0x0000_0003_0000_0020)));
    assert_eq!(
        orig.iter().map(Result::unwrap).collect::<Vec<_>>(),
        [
            FastPathAttr::Mark(ask::HostU32(0x4000)),
            FastPathAttr::Ifindex(ask::HostU32(3)),
            FastPathAttr::Iif(ask::HostU32(3)),
            FastPathAttr::UnderlyingIif(ask::HostU32(3)),
            FastPathAttr::UnderlyingVid(ask::HostU16(0)),
            FastPathAttr::XfrmHandles(ask::XfrmHandles([0x11, 0, 0x12, 0])),
        ]
    );
    assert_eq!(reply.iter().count(), 6);
    // 5.4's pad is a zero-length attribute 3: upstream's view sees an empty CTA_STATUS, which
    // fails as a status, while the entry reads it as the pad and keeps the real status.
    assert!(
        message.attrs().iter().any(|attr| attr
            == Err(DecodeError::ValueLength { attr: "CTA_STATUS", expected: 4, actual: 0 }))
    );
    let ct = Conntrack::from_message(&message).unwrap();
    assert!(ct.status.contains(Status::ASSURED) && ct.skipped.is_empty());
    // Under 6.12's numbers the same message's 27, its QoS connmark, reads as a block that
    // does not decode (its 8 bytes are no member).
    let other: Vec<_> = message.ask_attrs(AskNumbering::LINUX_6_12).map(Result::unwrap).collect();
    let [AskAttr::FastPathOrig(block)] = other[..] else { panic!("{other:?}") };
    assert!(FastPath::from_nest(block).is_err());
}

/// Every stock capture as each patch sends it, with and without XFRM handles, pad and QoS
/// connmark: the stock entry plus the ASK values, however it is decoded.
#[test]
fn every_capture_in_every_ask_layout() {
    let xfrm = FastPath { xfrm_handles: Some([7, 0, 9, 0]), ..WAN_VLAN };
    let mut seen = std::collections::BTreeSet::new();
    for fixture in ALL {
        let stock_bytes = fixture.bytes();
        let stock: Vec<_> = conntrack_messages(&stock_bytes)
            .iter()
            .map(|m| (m.delivery(), Conntrack::from_message(m).unwrap()))
            .collect();
        for patch in [Patch::Linux5_4, Patch::Linux6_12] {
            for (orig, reply) in [(LAN, UNSEEN), (LAN, xfrm), (xfrm, WAN_VLAN)] {
                for (qos_connmark, pad) in [(0, false), (0, true), (u64::MAX - 1, false), (1, true)]
                {
                    let values = AskValues { orig, reply, qos_connmark, pad };
                    let bytes = as_ask(&stock_bytes, patch, &values);
                    let wanted: Vec<_> = stock
                        .iter()
                        .map(|(delivery, ct)| with_ask(*ct, *delivery, &values))
                        .collect();
                    let case = format!("{} {patch:?} {values:?}", fixture.name);
                    let messages = conntrack_messages(&bytes);
                    let alone: Vec<_> =
                        messages.iter().map(|m| Conntrack::from_message(m).unwrap()).collect();
                    assert_eq!(alone, wanted, "{case}: each message alone");
                    for setting in [
                        DialectSetting::Auto,
                        DialectSetting::Pinned(Dialect::Ask(numbering(patch))),
                    ] {
                        let mut tracker = DialectTracker::new(setting);
                        let tracked: Vec<_> =
                            messages.iter().map(|m| tracker.decode(m).unwrap()).collect();
                        assert_eq!(tracked, wanted, "{case}: {setting}");
                        assert_eq!(tracker.dialect(), Dialect::Ask(numbering(patch)), "{case}");
                    }
                    let mut emitted = Vec::new();
                    for message in &messages {
                        message.emit(&mut emitted).unwrap();
                    }
                    assert!(bytes.starts_with(&emitted), "{case}: emits back to its bytes");
                    for (message, ct) in messages.iter().zip(&alone) {
                        let proto = (ct.family, ct.orig.proto);
                        seen.insert((format!("{:?}", message.delivery()), proto.0 as u8, proto.1));
                    }
                }
            }
        }
    }
    let ipv4 = Family::Ipv4 as u8;
    let ipv6 = Family::Ipv6 as u8;
    for wanted in [
        ("Event(New)", ipv4, 6),
        ("Event(Update)", ipv4, 6),
        ("Event(Destroy)", ipv4, 6),
        ("Event(New)", ipv6, 6),
        ("Event(Update)", ipv6, 6),
        ("Event(Destroy)", ipv6, 6),
        ("DumpEntry", ipv6, 6),
        ("Event(New)", ipv4, 17),
        ("Event(Update)", ipv4, 17),
        ("Event(Destroy)", ipv4, 17),
        ("DumpEntry", ipv4, 17),
    ] {
        assert!(seen.contains(&(wanted.0.to_owned(), wanted.1, wanted.2)), "{wanted:?} covered");
    }
}

#[test]
fn a_pinned_stock_dialect_still_decodes_an_ask_kernels_entries() {
    // The wrong pin costs the ASK values, never the entry; the misfit is named.
    let bytes = fixtures::ASK612_TCP4_SNAT_ESTABLISHED.bytes();
    let [message] = conntrack_messages(&bytes)[..] else { panic!() };
    let mut tracker = DialectTracker::new(DialectSetting::Pinned(Dialect::Stock));
    let ct = tracker.decode(&message).unwrap();
    assert!(ct.ask.is_empty());
    assert_eq!(ct.skipped.iter().collect::<Vec<_>>(), [EntryAttr::TimestampEvent]);
    assert_eq!(ct.orig, Conntrack::from_message(&message).unwrap().orig);
    // 5.4's messages under 6.12's numbers: 26 (the reply block) fails as upstream's
    // CTA_STATUS_MASK, 27 (the QoS connmark) as a block.
    let bytes = fixtures::ASK54_TCP4_SNAT_ESTABLISHED.bytes();
    let [message] = conntrack_messages(&bytes)[..] else { panic!() };
    let mut tracker =
        DialectTracker::new(DialectSetting::Pinned(Dialect::Ask(AskNumbering::LINUX_6_12)));
    let ct = tracker.decode(&message).unwrap();
    assert_eq!(ct.ask, AskInfo::default());
    assert_eq!(
        ct.skipped.iter().collect::<Vec<_>>(),
        [EntryAttr::StatusMask, EntryAttr::FastPathOrig]
    );
}

#[test]
fn a_damaged_block_is_skipped_and_named() {
    let made = MADE[1];
    let bytes = made.fixture.bytes();
    // The original block's IIF member (third, 4 bytes) cut to 2: the block does not decode;
    // the reply block, the QoS connmark and the entry do.
    let [message] = conntrack_messages(&bytes)[..] else { panic!() };
    let block = message.raw_attrs().map(Result::unwrap).find(|raw| raw.kind() == 27).unwrap();
    let at = block.value().as_ptr() as usize - bytes.as_ptr() as usize + 16;
    let mut damaged = bytes.clone();
    damaged[at..at + 2].copy_from_slice(&6u16.to_ne_bytes());
    let [message] = conntrack_messages(&damaged)[..] else { panic!() };
    let mut tracker =
        DialectTracker::new(DialectSetting::Pinned(Dialect::Ask(AskNumbering::LINUX_6_12)));
    let ct = tracker.decode(&message).unwrap();
    assert_eq!((ct.ask.orig, ct.ask.reply), (None, Some(made.values.reply)));
    assert_eq!(ct.ask.qos_connmark, Some(made.values.qos_connmark));
    assert_eq!(ct.skipped.iter().collect::<Vec<_>>(), [EntryAttr::FastPathOrig]);
    // Missing a member the kernel always writes is as bad as a wrong size.
    let block = FastPath::from_nest(Nest::new(&damaged[at - 16..at - 8], "CTA_LAYERSCAPE_FP_ORIG"));
    assert_eq!(block, Err(DecodeError::MissingAttr("CTA_COMCERTO_FP_IFINDEX")));
}

fn any_block() -> impl Strategy<Value = FastPath> {
    (any::<[u32; 4]>(), any::<u16>(), proptest::option::of(any::<[u16; 4]>())).prop_map(
        |([mark, ifindex, iif, underlying_iif], underlying_vid, xfrm_handles)| FastPath {
            mark,
            ifindex,
            iif,
            underlying_iif,
            underlying_vid,
            xfrm_handles,
        },
    )
}

proptest! {
    #[test]
    fn any_ask_values_decode_back(
        which in 0..ALL.len(),
        orig in any_block(),
        reply in any_block(),
        qos_connmark in any::<u64>(),
        pad in any::<bool>(),
        five in any::<bool>(),
    ) {
        let patch = if five { Patch::Linux5_4 } else { Patch::Linux6_12 };
        let values = AskValues { orig, reply, qos_connmark, pad };
        let bytes = as_ask(&ALL[which].bytes(), patch, &values);
        for message in conntrack_messages(&bytes) {
            let ct = Conntrack::from_message(&message).unwrap();
            prop_assert_eq!(ct.ask.orig, Some(orig));
            prop_assert_eq!(ct.ask.reply, Some(reply));
            prop_assert!(ct.skipped.is_empty());
        }
    }

    #[test]
    fn the_block_decoders_take_any_bytes(value in proptest::collection::vec(any::<u8>(), 0..96), kind in 0u16..40, nested in any::<bool>()) {
        let _ = FastPath::from_nest(Nest::new(&value, "CTA_LAYERSCAPE_FP_ORIG"));
        let _ = format!("{:?}", Nest::<FastPathAttr<'_>>::new(&value, "CTA_LAYERSCAPE_FP_ORIG"));
        let raw = nla::RawAttr::new(if nested { kind | 0x8000 } else { kind }, &value);
        for numbering in [AskNumbering::LINUX_5_4, AskNumbering::LINUX_6_12] {
            if let Some(Ok(AskAttr::FastPathOrig(block) | AskAttr::FastPathReply(block))) = numbering.attr(raw) {
                let _ = FastPath::from_nest(block);
            }
        }
        let recognised = crate::ask::recognise([raw, nla::RawAttr::new(raw.type_field().wrapping_add(1), &value)].into_iter());
        if let Some(numbering) = recognised {
            prop_assert!(numbering.fp_orig() >= AskNumbering::FIRST && nested);
            prop_assert!(FastPath::from_nest(Nest::new(&value, "CTA_LAYERSCAPE_FP_ORIG")).is_ok());
        }
    }

    #[test]
    fn random_bytes_in_a_block_never_cost_the_entry(
        which in 0..MADE.len(),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let made = MADE[which];
        let stock = made.from.bytes();
        let [fp_orig, ..] = made.patch.numbers();
        let bytes = made.fixture.bytes();
        // The original block's value replaced by garbage (lengths and alignment kept right).
        let mut out = Vec::new();
        for message in conntrack_messages(&bytes) {
            let start = begin_message(&mut out, message.header(), message.family(), message.res_id());
            let mut writer = nla::AttrWriter::new(&mut out);
            for raw in message.raw_attrs().map(Result::unwrap) {
                let value = if raw.kind() == fp_orig { &garbage[..] } else { raw.value() };
                writer.put_raw(&nla::RawAttr::new(raw.type_field(), value));
            }
            end_message(&mut out, start);
        }
        let stock: Vec<_> = conntrack_messages(&stock).iter().map(|m| Conntrack::from_message(m).unwrap()).collect();
        let mut tracker = DialectTracker::new(DialectSetting::Pinned(Dialect::Ask(numbering(made.patch))));
        for (message, stock) in conntrack_messages(&out).iter().zip(stock) {
            let ct = tracker.decode(message).unwrap();
            prop_assert_eq!((ct.orig, ct.reply, ct.status), (stock.orig, stock.reply, stock.status));
            prop_assert_eq!(ct.ask.reply, Some(made.values.reply));
        }
    }
}
