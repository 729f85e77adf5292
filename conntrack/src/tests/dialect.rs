//! The dialect: its configuration text, recognition and learning, the ambiguities with
//! upstream's attributes, the `IPS_PERMANENT` bit and the kernel-release guess.

use proptest::prelude::*;

use super::build_message;
use crate::consts::*;
use crate::fixtures::{self, ALL};
use crate::message::Header;
use crate::nla::AttrWriter;
use crate::*;

fn setting(text: &str) -> Result<DialectSetting, DialectError> {
    text.parse()
}

fn ask(numbering: AskNumbering) -> DialectSetting {
    DialectSetting::Pinned(Dialect::Ask(numbering))
}

#[test]
fn settings_parse_and_print_the_same_text() {
    let cases = [
        ("auto", DialectSetting::Auto),
        ("stock", DialectSetting::Pinned(Dialect::Stock)),
        ("ask-5.4", ask(AskNumbering::LINUX_5_4)),
        ("ask-6.12", ask(AskNumbering::LINUX_6_12)),
        (
            "fp_orig=28,fp_reply=29,qosconnmark=30,pad=31",
            ask(AskNumbering::new(28, 29, 30, 31).unwrap()),
        ),
    ];
    for (text, wanted) in cases {
        assert_eq!(setting(text), Ok(wanted), "{text}");
        assert_eq!(wanted.to_string(), text);
    }
    assert_eq!(setting(" ASK-6.12 "), Ok(ask(AskNumbering::LINUX_6_12)));
    // The explicit form of a patch's numbers is that patch.
    assert_eq!(
        setting("fp_orig=27,fp_reply=28,qosconnmark=29,pad=30"),
        Ok(ask(AskNumbering::LINUX_6_12))
    );
    assert_eq!(
        setting("fp_orig=25, fp_reply=26, qosconnmark=27, pad=3"),
        Ok(ask(AskNumbering::LINUX_5_4))
    );
    // Missing numbers follow the patches' order; at 25 the pad is 5.4's 3.
    assert_eq!(setting("fp_orig=27"), Ok(ask(AskNumbering::LINUX_6_12)));
    assert_eq!(setting("fp_orig=25"), Ok(ask(AskNumbering::LINUX_5_4)));
    assert_eq!(setting("fp_orig=31,pad=27"), Ok(ask(AskNumbering::new(31, 32, 33, 27).unwrap())));
    assert_eq!(DialectSetting::default(), DialectSetting::Auto);
}

#[test]
fn bad_settings_say_what_is_wrong() {
    assert_eq!(setting("ask"), Err(DialectError::Unknown("ask".into())));
    assert_eq!(setting("fp=27"), Err(DialectError::UnknownKey("fp".into())));
    assert_eq!(setting("fp_orig=27,fp_orig=28"), Err(DialectError::Duplicate("fp_orig")));
    assert_eq!(setting("fp_reply=28"), Err(DialectError::MissingOrig));
    assert_eq!(
        setting("fp_orig=x"),
        Err(DialectError::NotANumber { key: "fp_orig", value: "x".into() })
    );
    assert_eq!(setting("fp_orig=24"), Err(DialectError::Reserved { key: "fp_orig", number: 24 }));
    assert_eq!(
        setting("fp_orig=27,pad=20"),
        Err(DialectError::Reserved { key: "pad", number: 20 })
    );
    assert_eq!(
        setting("fp_orig=16383"),
        Err(DialectError::Reserved { key: "fp_reply", number: 16384 })
    );
    assert_eq!(setting("fp_orig=27,qosconnmark=28"), Err(DialectError::Shared(28)));
    assert!(setting("fp_orig=27,fp_reply").is_err());
    assert!(AskNumbering::new(27, 28, 29, 3).is_ok(), "3 is a pad (5.4), never an attribute");
    assert_eq!(
        AskNumbering::new(3, 28, 29, 30),
        Err(DialectError::Reserved { key: "fp_orig", number: 3 })
    );
}

/// A NEW event with both tuples and then what `more` writes.
fn event_with(more: impl FnOnce(&mut AttrWriter<'_>)) -> Vec<u8> {
    let header =
        Header { message_type: MessageKind::New.message_type(), flags: 0x0600, seq: 0, port: 0 };
    build_message(header, libc::AF_INET as u8, |attrs| {
        let orig = Tuple::new([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 6, 1000, 80);
        orig.emit(attrs, CTA_TUPLE_ORIG);
        orig.reversed().emit(attrs, CTA_TUPLE_REPLY);
        more(attrs);
    })
}

/// A nest (with `NLA_F_NESTED`) of `members` (kind, value) at `kind`.
fn nest(attrs: &mut AttrWriter<'_>, kind: u16, members: &[(u16, &[u8])]) {
    let start = attrs.begin_nested();
    for (member, value) in members {
        attrs.leaf(*member, value);
    }
    attrs.end_nested(start, kind);
}

const BLOCK: [(u16, &[u8]); 5] =
    [(1, &[0; 4]), (2, &[3, 0, 0, 0]), (3, &[3, 0, 0, 0]), (4, &[3, 0, 0, 0]), (5, &[0, 0])];
const SYNPROXY: [(u16, &[u8]); 3] = [(1, &[0; 4]), (2, &[0; 4]), (3, &[0; 4])];

fn decode_with(tracker: &mut DialectTracker, bytes: &[u8]) -> Conntrack {
    let Some(Ok(Message::Conntrack(message))) = Datagram::new(bytes).next() else { panic!() };
    tracker.decode(&message).unwrap()
}

#[test]
fn upstream_attributes_of_ask_numbers_are_not_misread() {
    let mut tracker = DialectTracker::new(DialectSetting::Auto);
    // Every stock capture: CTA_SYNPROXY (24, three u32) in the conntrack-tool entry,
    // CTA_TIMESTAMP_EVENT (27, a u64) in the events.
    for fixture in ALL {
        let bytes = fixture.bytes();
        for message in Datagram::new(&bytes) {
            let Ok(Message::Conntrack(message)) = message else { continue };
            let ct = tracker.decode(&message).unwrap();
            assert!(ct.ask.is_empty() && ct.skipped.is_empty(), "{}", fixture.name);
        }
    }
    assert_eq!(tracker.state(), DialectState::Unrecognised { entries: 30 });
    // Nests of upstream's shapes where ASK blocks would be: a synproxy-shaped pair at 25 and
    // 26, CTA_FILTER (two u32) at 25; block-shaped pairs that are not ASK's: below 25, without
    // NLA_F_NESTED, alone, or with a member too many, too few or of the wrong size.
    let wide: Vec<(u16, &[u8])> = BLOCK.iter().map(|(kind, _)| (*kind, &[0u8; 8][..])).collect();
    let not_blocks: [&dyn Fn(&mut AttrWriter<'_>); 7] = [
        &|a| {
            nest(a, 25, &SYNPROXY);
            nest(a, 26, &SYNPROXY);
        },
        &|a| nest(a, 25, &SYNPROXY[..2]),
        &|a| {
            nest(a, 22, &BLOCK);
            nest(a, 23, &BLOCK);
        },
        &|a| {
            a.leaf(27, &block_bytes(&BLOCK));
            a.leaf(28, &block_bytes(&BLOCK));
        },
        &|a| {
            nest(a, 27, &BLOCK);
            a.leaf(29, &7u64.to_be_bytes());
        },
        &|a| {
            nest(a, 27, &BLOCK[..4]);
            nest(a, 28, &BLOCK[..4]);
        },
        &|a| {
            nest(a, 27, &wide);
            nest(a, 28, &wide);
        },
    ];
    for (i, more) in not_blocks.into_iter().enumerate() {
        let bytes = event_with(|attrs| more(attrs));
        let mut fresh = DialectTracker::new(DialectSetting::Auto);
        let ct = decode_with(&mut fresh, &bytes);
        assert_eq!(fresh.dialect(), Dialect::Stock, "case {i}");
        assert!(ct.ask.is_empty(), "case {i}");
    }
}

/// The members of `block` as bytes (for a nest written without `NLA_F_NESTED`).
fn block_bytes(block: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = AttrWriter::new(&mut out);
    for (kind, value) in block {
        writer.leaf(*kind, value);
    }
    out
}

#[test]
fn a_recognised_numbering_is_kept_and_reads_the_ambiguous_number() {
    // 27 as a u64 with nothing else of ASK's: upstream's CTA_TIMESTAMP_EVENT to a tracker
    // that has not recognised anything...
    let timestamp = event_with(|attrs| attrs.leaf(CTA_TIMESTAMP_EVENT, &42u64.to_be_bytes()));
    let mut tracker = DialectTracker::new(DialectSetting::Auto);
    assert_eq!(decode_with(&mut tracker, &timestamp).ask.qos_connmark, None);
    assert_eq!(tracker.state(), DialectState::Unrecognised { entries: 1 });
    // ...the QoS connmark once a 5.4 kernel's message was seen...
    decode_with(&mut tracker, &fixtures::ASK54_TCP4_SNAT_ESTABLISHED.bytes());
    assert_eq!(tracker.state(), DialectState::Recognised(AskNumbering::LINUX_5_4));
    let ct = decode_with(&mut tracker, &timestamp);
    assert_eq!((ct.ask.qos_connmark, ct.skipped), (Some(42), SkippedAttrs::NONE));
    // ...and a malformed block once a 6.12 kernel's was.
    let mut tracker = DialectTracker::new(DialectSetting::Auto);
    decode_with(&mut tracker, &fixtures::ASK612_DUMP_TWO_ENTRIES.bytes());
    assert_eq!(tracker.dialect(), Dialect::Ask(AskNumbering::LINUX_6_12));
    let ct = decode_with(&mut tracker, &timestamp);
    assert_eq!(ct.skipped.iter().collect::<Vec<_>>(), [EntryAttr::FastPathOrig]);
    // A stock message after recognition does not unlearn it.
    decode_with(&mut tracker, &fixtures::TCP4_SNAT_NEW.bytes());
    assert_eq!(tracker.state(), DialectState::Recognised(AskNumbering::LINUX_6_12));
    // A later port's numbers: blocks at 28 and 29 (after CTA_TIMESTAMP_EVENT), whose 27 stays
    // upstream's.
    let later = event_with(|attrs| {
        attrs.leaf(CTA_TIMESTAMP_EVENT, &42u64.to_be_bytes());
        nest(attrs, 28, &BLOCK);
        nest(attrs, 29, &BLOCK);
        attrs.leaf(30, &7u64.to_be_bytes());
    });
    let mut tracker = DialectTracker::new(DialectSetting::Auto);
    let ct = decode_with(&mut tracker, &later);
    assert_eq!(
        tracker.state(),
        DialectState::Recognised(AskNumbering::new(28, 29, 30, 31).unwrap())
    );
    assert_eq!(ct.ask.qos_connmark, Some(7));
    assert_eq!(ct.ask.orig.map(|block| block.iif), Some(3));
    assert!(ct.skipped.is_empty());
}

#[test]
fn the_state_says_where_the_dialect_comes_from() {
    let mut tracker = DialectTracker::new(DialectSetting::Auto);
    assert_eq!(tracker.state().to_string(), "stock (auto, no entry seen yet)");
    decode_with(&mut tracker, &fixtures::TCP4_SNAT_NEW.bytes());
    assert_eq!(tracker.state().to_string(), "stock (auto, no ASK attributes in 1 entries)");
    decode_with(&mut tracker, &fixtures::ASK612_TCP4_SNAT_NEW.bytes());
    assert_eq!(
        tracker.state().to_string(),
        "ask-6.12 (recognised: fp_orig=27,fp_reply=28,qosconnmark=29,pad=30)"
    );
    let pinned = DialectTracker::new(ask(AskNumbering::LINUX_5_4));
    assert_eq!(pinned.state().to_string(), "ask-5.4 (pinned)");
    let other = Dialect::Ask(AskNumbering::new(40, 41, 42, 43).unwrap());
    assert_eq!(
        (other.label(), other.to_string()),
        ("ask-other", "fp_orig=40,fp_reply=41,qosconnmark=42,pad=43".into())
    );
    assert_eq!(Dialect::Stock.label(), "stock");
}

#[test]
fn the_permanent_bit_follows_the_dialect() {
    let kernel = |major, minor| Some(KernelVersion::new(major, minor));
    assert_eq!(Dialect::Stock.permanent_bit(kernel(6, 12)), None);
    assert_eq!(
        Dialect::Ask(AskNumbering::LINUX_5_4).permanent_bit(None),
        Some(PermanentBit::LINUX_5_4)
    );
    assert_eq!(
        Dialect::Ask(AskNumbering::LINUX_6_12).permanent_bit(None),
        Some(PermanentBit::LINUX_6_12)
    );
    let at_26 = Dialect::Ask(AskNumbering::following(26).unwrap());
    assert_eq!(at_26.permanent_bit(None), None, "5.7 to 5.14: the numbers do not tell");
    assert_eq!(at_26.permanent_bit(kernel(5, 7)), PermanentBit::new(15));
    assert_eq!(at_26.permanent_bit(kernel(5, 10)), PermanentBit::new(16));
    let mut tracker = DialectTracker::new(DialectSetting::Auto);
    assert_eq!(tracker.permanent_bit(kernel(6, 12)), None, "nothing recognised: no ASK kernel yet");
    decode_with(&mut tracker, &fixtures::ASK612_TCP4_SNAT_NEW.bytes());
    assert_eq!(tracker.permanent_bit(None), Some(PermanentBit::LINUX_6_12));

    let bit = PermanentBit::LINUX_6_12;
    assert_eq!((bit.bit(), bit.status().bits(), bit.dpi_allowed().bits()), (16, 1 << 16, 1 << 17));
    assert!(bit.is_set(Status::CONFIRMED | bit.status()));
    assert!(!bit.is_set(Status::HW_OFFLOAD), "bit 15 is IPS_HW_OFFLOAD on 6.12");
    assert!(PermanentBit::LINUX_5_4.is_set(Status::HW_OFFLOAD), "and IPS_PERMANENT on 5.4");
    assert_eq!(PermanentBit::new(31), None);
}

#[test]
fn the_kernel_release_guess() {
    let version = |release| KernelVersion::from_release(release);
    assert_eq!(version("6.12.20-ask-g1a2b3c4"), Some(KernelVersion::new(6, 12)));
    assert_eq!(version("5.4.3-rt1"), Some(KernelVersion::new(5, 4)));
    assert_eq!(version("6.18.0+\n"), Some(KernelVersion::new(6, 18)));
    assert_eq!(version("6"), None);
    assert_eq!(version("linux"), None);
    let bit = |major, minor| KernelVersion::new(major, minor).ask_permanent_bit();
    assert_eq!(
        (bit(5, 4), bit(5, 7), bit(5, 8), bit(6, 12)),
        (
            PermanentBit::LINUX_5_4,
            PermanentBit::LINUX_5_4,
            PermanentBit::LINUX_6_12,
            PermanentBit::LINUX_6_12
        )
    );
    let numbering = |major, minor| KernelVersion::new(major, minor).ask_numbering();
    assert_eq!(numbering(5, 4), Some(AskNumbering::LINUX_5_4));
    assert_eq!(numbering(5, 7).map(|n| n.fp_orig()), Some(26));
    assert_eq!(numbering(5, 15), Some(AskNumbering::LINUX_6_12));
    assert_eq!(numbering(6, 12), Some(AskNumbering::LINUX_6_12));
    assert_eq!(
        numbering(6, 13),
        None,
        "CTA_TIMESTAMP_EVENT may be there, the port may go either side"
    );
    assert_eq!(numbering(4, 19), None);
    let running = KernelVersion::running().unwrap().unwrap();
    assert!(running >= KernelVersion::new(3, 0), "{running}");
}

proptest! {
    #[test]
    fn any_numbering_prints_and_parses_back(fp_orig in 25u16..16000, gaps in any::<[u8; 3]>(), pad_three in any::<bool>()) {
        let fp_reply = fp_orig + 1 + u16::from(gaps[0] % 4);
        let qos = fp_reply + 1 + u16::from(gaps[1] % 4);
        let pad = if pad_three { 3 } else { qos + 1 + u16::from(gaps[2] % 4) };
        let numbering = AskNumbering::new(fp_orig, fp_reply, qos, pad).unwrap();
        let pinned = DialectSetting::Pinned(Dialect::Ask(numbering));
        prop_assert_eq!(pinned.to_string().parse::<DialectSetting>(), Ok(pinned));
    }

    #[test]
    fn any_text_parses_or_says_why(text in "[a-z0-9_=,. -]{0,40}") {
        if let Ok(parsed) = text.parse::<DialectSetting>() {
            prop_assert_eq!(parsed.to_string().parse::<DialectSetting>(), Ok(parsed));
        }
    }
}
