//! Bounded fuzzing of the FCI transport against a hostile cdx: replies in any order, late and
//! duplicated replies, replies to requests never sent, netlink errors, events, truncated frames
//! and garbage on the command socket, all in one script the peer plays before the transport
//! reads. The transport must deliver exactly the first answer to each request in flight, in
//! the order they came, drop and count everything else, and never panic.
//!
//! `CMM_FUZZ_CASES` sets the cases per property (default 1024).

use std::time::Instant;

use cdx_sys::fci::{
    self, DatagramSocket, FciError, Frame, MAX_FRAME, MAX_PACK, PackedSocket, PairSocket, Reply,
    Transport, TransportStats,
};
use cdx_sys::fpp::{FCode, ReturnCode};
use proptest::prelude::*;
use proptest::sample::Index;

fn cases() -> u32 {
    std::env::var("CMM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024)
}

/// One datagram the hostile peer sends.
#[derive(Clone, Debug)]
enum Answer {
    /// A reply to one of the requests sent (answered before or not).
    Reply { to: Index, rc: u16, data: Vec<u8> },
    /// A netlink error for one of the requests sent.
    NetlinkError { to: Index, errno: i32 },
    /// A reply to a request that was never sent.
    Foreign { seq: u32 },
    /// An unsolicited event (sequence 0).
    Event { payload: Vec<u8> },
    /// A valid reply cut short.
    Truncated { to: Index, cut: usize },
    /// Bytes too short to be a frame.
    Garbage(Vec<u8>),
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => (any::<Index>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(to, rc, data)| Answer::Reply { to, rc, data }),
        1 => (any::<Index>(), 1i32..200).prop_map(|(to, errno)| Answer::NetlinkError { to, errno }),
        1 => (1_000_000u32..).prop_map(|seq| Answer::Foreign { seq }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|payload| Answer::Event { payload }),
        1 => (any::<Index>(), 1usize..16).prop_map(|(to, cut)| Answer::Truncated { to, cut }),
        1 => prop::collection::vec(any::<u8>(), 1..16).prop_map(Answer::Garbage),
    ]
}

const FCODE: FCode = FCode::Ipv4Reset;

fn frame(encode: impl FnOnce(&mut [u8]) -> Result<usize, fci::FciError>) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let len = encode(&mut out).expect("encodable");
    out[..len].to_vec()
}

/// Play `script` against requests `sent`; return what the transport must deliver.
fn play(peer: &PairSocket, sent: &[u32], script: &[Answer]) -> Vec<Result<Reply, (u32, i32)>> {
    let mut in_flight = sent.to_vec();
    let mut expected = Vec::new();
    let mut first_answer = |seq: u32, outcome: Result<Reply, (u32, i32)>| {
        if let Some(i) = in_flight.iter().position(|s| *s == seq) {
            in_flight.remove(i);
            expected.push(outcome);
        }
    };
    for answer in script {
        let bytes = match answer {
            Answer::Reply { to, rc, data } => {
                let seq = sent[to.index(sent.len())];
                let rc = ReturnCode::from(*rc);
                let reply = Reply { seq, fcode: FCODE, rc, payload: data.clone() };
                first_answer(seq, Ok(reply));
                frame(|out| fci::encode_reply(seq, FCODE, rc, data, out))
            }
            Answer::NetlinkError { to, errno } => {
                let seq = sent[to.index(sent.len())];
                first_answer(seq, Err((seq, *errno)));
                frame(|out| fci::encode_netlink_error(seq, *errno, 20, out))
            }
            Answer::Foreign { seq } => {
                frame(|out| fci::encode_reply(*seq, FCODE, ReturnCode::Ok, &[], out))
            }
            Answer::Event { payload } => {
                frame(|out| fci::encode_event(FCode::Ipv4ConntrackChange, payload, out))
            }
            Answer::Truncated { to, cut } => {
                let seq = sent[to.index(sent.len())];
                let whole =
                    frame(|out| fci::encode_reply(seq, FCODE, ReturnCode::Ok, &[7; 8], out));
                whole[..whole.len() - cut.min(&(whole.len() - 1))].to_vec()
            }
            Answer::Garbage(bytes) => bytes.clone(),
        };
        peer.send(&bytes).expect("the script fits the socket buffer");
    }
    expected
}

/// Everything the transport delivers now, until it has nothing more.
fn drain(transport: &mut Transport<PairSocket>) -> Vec<Result<Reply, (u32, i32)>> {
    let mut got = Vec::new();
    loop {
        match transport.recv_until(Instant::now()) {
            Ok(reply) => got.push(Ok(reply)),
            Err(FciError::Netlink { seq, errno }) => got.push(Err((seq, errno))),
            Err(FciError::Timeout) => return got,
            Err(other) => panic!("unexpected transport error {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn only_the_first_answer_to_each_request_in_flight_is_delivered(
        requests in 1usize..16,
        script in prop::collection::vec(answer(), 0..40),
    ) {
        let (ours, peer) = PairSocket::pair().unwrap();
        let mut transport = Transport::with_window(ours, 16);
        let sent: Vec<u32> = (0..requests).map(|_| transport.send(FCODE, &[]).unwrap()).collect();
        let expected = play(&peer, &sent, &script);
        let got = drain(&mut transport);
        prop_assert_eq!(&got, &expected);
        let stats: TransportStats = transport.stats();
        prop_assert_eq!(stats.sent, requests as u64);
        prop_assert_eq!(stats.matched, expected.len() as u64);
        prop_assert_eq!(
            stats.matched + stats.unmatched + stats.stray + stats.malformed,
            script.len() as u64,
            "every datagram is counted once: {:?}", stats
        );
        prop_assert_eq!(transport.in_flight().len(), requests - expected.len());
    }

    #[test]
    fn a_call_returns_its_own_answer_and_keeps_the_others(
        earlier in 1usize..8,
        script in prop::collection::vec(answer(), 0..24),
        rc in any::<u16>(),
    ) {
        let (ours, peer) = PairSocket::pair().unwrap();
        let mut transport = Transport::with_window(ours, 16);
        let sent: Vec<u32> = (0..earlier).map(|_| transport.send(FCODE, &[]).unwrap()).collect();
        let expected = play(&peer, &sent, &script);
        // The call's request will be the next number; its reply comes after the script.
        let own = sent[sent.len() - 1] + 1;
        let reply = frame(|out| fci::encode_reply(own, FCODE, ReturnCode::from(rc), &[], out));
        peer.send(&reply).unwrap();
        let answer = transport.call(FCODE, &[], std::time::Duration::from_secs(5)).unwrap();
        prop_assert_eq!((answer.seq, answer.rc), (own, ReturnCode::from(rc)));
        let got = drain(&mut transport);
        prop_assert_eq!(&got, &expected, "the others, in order");
    }

    /// Requests in packs (the connection to `cmmd sim serve`): the peer finds the very frames
    /// a one-per-message socket would carry, in order, in as few messages as fit; replies
    /// packed the same way come back one by one, in order, with their data.
    #[test]
    fn packed_requests_and_replies_are_the_same_frames_in_order(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..=256), 1..200),
    ) {
        let (ours, peer) = PairSocket::pair().unwrap();
        let mut transport = Transport::with_window(PackedSocket::new(ours), payloads.len());
        let sent: Vec<u32> =
            payloads.iter().map(|p| transport.send(FCODE, p).unwrap()).collect();
        // Nothing leaves before the transport reads, unless a pack filled up.
        let mut buf = vec![0u8; 2 * MAX_PACK];
        let bytes: usize = payloads
            .iter()
            .map(|p| frame(|out| fci::encode_request(1, FCODE, p, out)).len())
            .sum();
        if bytes <= MAX_PACK {
            prop_assert!(peer.recv(&mut buf).is_err());
        }
        prop_assert!(matches!(
            transport.recv_until(Instant::now()),
            Err(FciError::Timeout)
        ));
        // Each message as (its length, the padded length of its first frame).
        let (mut got, mut messages) = (Vec::new(), Vec::new());
        while let Ok(n) = peer.recv(&mut buf) {
            prop_assert!(n <= MAX_PACK);
            let mut first = None;
            for message in fci::unpack(&buf[..n]) {
                first.get_or_insert(message.len().next_multiple_of(4));
                let Ok(Frame::Request { seq, fcode, payload }) =
                    fci::frames(message).next().unwrap()
                else {
                    return Err(TestCaseError::fail("not a request"));
                };
                prop_assert_eq!(fcode, FCODE);
                let alone = frame(|out| fci::encode_request(seq, FCODE, payload, out));
                prop_assert_eq!(message, &alone[..]);
                got.push((seq, payload.to_vec()));
            }
            messages.push((n, first.unwrap_or(0)));
        }
        let want: Vec<(u32, Vec<u8>)> =
            sent.iter().copied().zip(payloads.iter().cloned()).collect();
        prop_assert_eq!(&got, &want);
        for pair in messages.windows(2) {
            prop_assert!(pair[0].0 + pair[1].1 > MAX_PACK, "a pack left with room: {:?}", pair);
        }
        let mut pack = Vec::new();
        for (seq, payload) in &got {
            let data = payload.get(..payload.len().min(200)).unwrap_or_default();
            let reply = frame(|out| fci::encode_reply(*seq, FCODE, ReturnCode::Ok, data, out));
            fci::pack_into(&mut pack, &reply);
        }
        for chunk in pack_chunks(&pack) {
            peer.send(chunk).unwrap();
        }
        for (seq, payload) in &got {
            let reply = transport.recv_until(Instant::now() + std::time::Duration::from_secs(5));
            let reply = reply.unwrap();
            prop_assert_eq!(reply.seq, *seq);
            prop_assert_eq!(&reply.payload[..], payload.get(..payload.len().min(200)).unwrap_or_default());
        }
        prop_assert_eq!(transport.stats().malformed, 0);
    }

    /// Any bytes: `unpack` never panics and never gives more bytes than it was given.
    #[test]
    fn unpack_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let total: usize = fci::unpack(&bytes).map(<[u8]>::len).sum();
        prop_assert!(total <= bytes.len());
    }
}

/// A pack cut at message boundaries into messages of at most [`MAX_PACK`] bytes.
fn pack_chunks(pack: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let (mut start, mut at) = (0, 0);
    for message in fci::unpack(pack) {
        let next = at + message.len().div_ceil(4) * 4;
        if next - start > MAX_PACK {
            chunks.push(&pack[start..at]);
            start = at;
        }
        at = next;
    }
    chunks.push(&pack[start..pack.len()]);
    chunks
}
