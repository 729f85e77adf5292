//! Bounded fuzzing of the ctnetlink decoder, seeded with the messages captured from the kernel
//! and their ASK versions (`conntrack::fixtures`), mutated at the attribute level, where byte
//! flips rarely reach:
//!
//! - the order of top-level attributes does not change the decoded entry (the kernel's order is
//!   not a contract);
//! - dropping an attribute never panics, fails only for a missing tuple, and never changes the
//!   tuples it did not carry;
//! - attributes spliced from other captures, and attribute lengths set to their boundary
//!   values, decode to a value or a typed error, never a panic;
//! - captures concatenated into one datagram (as a dump delivers them) decode each as alone.
//!
//! `CMM_FUZZ_CASES` sets the cases per property (default 1024).

use conntrack::fixtures::{
    ALL, ASK, ASK54_DUMP_TWO_ENTRIES, ASK612_DUMP_TWO_ENTRIES, DUMP_TWO_ENTRIES, Fixture,
};
use conntrack::{Conntrack, Datagram, DecodeError, Message};
use proptest::prelude::*;
use proptest::sample::Index;

const NETLINK_HEADER: usize = 16;
const NFGENMSG: usize = 4;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const NLA_TYPE_MASK: u16 = 0x3fff;

fn cases() -> u32 {
    std::env::var("CMM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024)
}

/// A captured single message, split into its headers and its top-level attributes (type with
/// flags, payload).
#[derive(Clone, Debug)]
struct Split {
    headers: Vec<u8>,
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Split {
    fn of(bytes: &[u8]) -> Split {
        let headers = bytes[..NETLINK_HEADER + NFGENMSG].to_vec();
        let mut attrs = Vec::new();
        let mut rest = &bytes[NETLINK_HEADER + NFGENMSG..];
        while rest.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            let kind = u16::from_ne_bytes([rest[2], rest[3]]);
            attrs.push((kind, rest[4..len].to_vec()));
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        Split { headers, attrs }
    }

    fn join(&self) -> Vec<u8> {
        let mut out = self.headers.clone();
        for (kind, payload) in &self.attrs {
            let len = 4 + payload.len();
            out.extend_from_slice(&(len as u16).to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(payload);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        let total = out.len() as u32;
        out[..4].copy_from_slice(&total.to_ne_bytes());
        out
    }
}

/// The captures (and their ASK versions) that hold one message each (the dumps hold two and
/// a DONE).
fn singles() -> Vec<Fixture> {
    let dumps = [DUMP_TWO_ENTRIES, ASK612_DUMP_TWO_ENTRIES, ASK54_DUMP_TWO_ENTRIES];
    ALL.iter().chain(ASK).copied().filter(|f| !dumps.contains(f)).collect()
}

/// Every conntrack message of a datagram, decoded.
fn decode(bytes: &[u8]) -> Vec<Result<Conntrack, DecodeError>> {
    Datagram::new(bytes)
        .map(|message| match message? {
            Message::Conntrack(m) => Conntrack::from_message(&m).map(Some),
            _ => Ok(None),
        })
        .filter_map(Result::transpose)
        .collect()
}

fn decode_one(bytes: &[u8]) -> Result<Conntrack, DecodeError> {
    let mut all = decode(bytes);
    assert_eq!(all.len(), 1, "one conntrack message");
    all.remove(0)
}

fn fixture() -> impl Strategy<Value = Fixture> {
    prop::sample::select(singles())
}

/// Lengths worth trying for an attribute of real length `len`.
fn boundary(len: usize, pick: u8) -> u16 {
    let len = len as i64;
    let candidates = [0, 1, 3, 4, 5, len - 4, len - 1, len + 1, len + 4, 0x7fff, 0xffff];
    candidates[usize::from(pick) % candidates.len()].clamp(0, 0xffff) as u16
}

#[test]
fn every_single_capture_splits_and_joins_back_to_its_bytes() {
    for f in singles() {
        assert_eq!(Split::of(&f.bytes()).join(), f.bytes(), "{}", f.name);
        assert!(decode_one(&f.bytes()).is_ok(), "{}", f.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_order_of_attributes_does_not_change_the_entry(
        f in fixture(),
        order in Just((0..32usize).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let split = Split::of(&f.bytes());
        let mut shuffled = split.clone();
        shuffled.attrs = order
            .iter()
            .filter(|i| **i < split.attrs.len())
            .map(|i| split.attrs[*i].clone())
            .collect();
        prop_assert_eq!(decode_one(&shuffled.join()), decode_one(&f.bytes()), "{}", f.name);
    }

    #[test]
    fn a_dropped_attribute_fails_only_for_a_tuple_and_keeps_the_tuples(f in fixture(), which in any::<Index>()) {
        let whole = decode_one(&f.bytes()).unwrap();
        let mut split = Split::of(&f.bytes());
        let (kind, _) = split.attrs.remove(which.index(split.attrs.len()));
        let tuple = matches!(kind & NLA_TYPE_MASK, CTA_TUPLE_ORIG | CTA_TUPLE_REPLY);
        match decode_one(&split.join()) {
            Ok(ct) => {
                prop_assert!(!tuple, "{}: decoded without tuple attribute {kind}", f.name);
                prop_assert_eq!((ct.orig, ct.reply, ct.family), (whole.orig, whole.reply, whole.family));
            }
            Err(e) => prop_assert!(tuple, "{}: dropping attribute {kind} failed: {e}", f.name),
        }
    }

    #[test]
    fn attributes_spliced_from_other_captures_never_panic(
        into in fixture(),
        from in fixture(),
        target in any::<Index>(),
        source in any::<Index>(),
        keep_type in any::<bool>(),
    ) {
        let mut split = Split::of(&into.bytes());
        let donor = Split::of(&from.bytes());
        let (kind, payload) = donor.attrs[source.index(donor.attrs.len())].clone();
        let slot = target.index(split.attrs.len());
        split.attrs[slot] = if keep_type { (split.attrs[slot].0, payload) } else { (kind, payload) };
        let _ = decode_one(&split.join());
    }

    #[test]
    fn attribute_lengths_at_their_boundaries_never_panic(f in fixture(), which in any::<Index>(), pick in any::<u8>()) {
        let bytes = f.bytes();
        // Walk to the chosen top-level attribute, or into a nested one of it.
        let mut offsets = Vec::new();
        let mut at = NETLINK_HEADER + NFGENMSG;
        while at + 4 <= bytes.len() {
            let len = usize::from(u16::from_ne_bytes([bytes[at], bytes[at + 1]]));
            offsets.push((at, len));
            let mut inner = at + 4;
            while inner + 4 <= at + len {
                let inner_len = usize::from(u16::from_ne_bytes([bytes[inner], bytes[inner + 1]]));
                if inner_len < 4 {
                    break;
                }
                offsets.push((inner, inner_len));
                inner += inner_len.next_multiple_of(4);
            }
            at += len.next_multiple_of(4);
        }
        let (at, len) = offsets[which.index(offsets.len())];
        let mut mutated = bytes.clone();
        mutated[at..at + 2].copy_from_slice(&boundary(len, pick).to_ne_bytes());
        let _ = decode(&mutated);
    }

    #[test]
    fn captures_in_one_datagram_decode_each_as_alone(picks in prop::collection::vec(fixture(), 1..12)) {
        let datagram: Vec<u8> = picks.iter().flat_map(|f| f.bytes()).collect();
        let alone: Vec<_> = picks.iter().map(|f| decode_one(&f.bytes())).collect();
        prop_assert_eq!(decode(&datagram), alone);
    }
}
