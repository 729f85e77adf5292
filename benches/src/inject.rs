//! The ctnetlink load of the end-to-end harness: entries the kernel creates and deletes on
//! request, so it emits NEW and DESTROY events at a chosen rate.
//!
//! Entries are TCP ESTABLISHED and UDP ASSURED connections (alternating) between 16 clients on
//! `10.81.1.0/24` and 16 servers on `10.81.2.0/24` — the subnets of the two ports the harness
//! gives cmmd — so cmmd offloads every one of them. With [`Plan::offloadable`] off they are TCP
//! SYN_SENT and UDP unreplied instead: the same events, none of them a candidate (the load a
//! node's other connections make). [`Plan`] names entry `i`'s tuple; tuples are
//! unique for 16.5 million consecutive indices.
//!
//! Requests go out many per datagram with `NLM_F_ACK` cleared: the kernel answers only
//! failures, which are read back (without blocking) and counted per request kind by sequence
//! number parity (odd: create, even: delete). One accepted request is one event emitted.

use std::net::{IpAddr, Ipv4Addr};

use conntrack::{Create, Datagram, Message, Status, TcpState, Tuple, request};

/// `NLM_F_ACK` in the netlink header's flags.
const NLM_F_ACK: u16 = 0x4;
/// Offset of the flags in a netlink header (after the length and the type).
const FLAGS_OFFSET: usize = 6;
/// Distinct client and server addresses.
pub const HOSTS: u32 = 16;
/// First address byte of clients and servers (`.2` .. `.17`; `.1` is the node itself).
pub const FIRST_HOST: u8 = 2;
/// Client subnet (behind the first port).
pub const CLIENT_NET: [u8; 3] = [10, 81, 1];
/// Server subnet (behind the second port).
pub const SERVER_NET: [u8; 3] = [10, 81, 2];
const FIRST_PORT: u32 = 1024;
const PORTS: u32 = 65536 - FIRST_PORT;
/// Indices after which tuples repeat.
pub const PERIOD: u32 = HOSTS * HOSTS * PORTS;

/// The tuples the load uses.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Timeout given to created entries, seconds.
    pub timeout: u32,
    /// Entries cmmd offloads (TCP ESTABLISHED, UDP ASSURED); `false`: entries it leaves to the
    /// kernel (TCP SYN_SENT, UDP unreplied).
    pub offloadable: bool,
}

fn host(net: [u8; 3], n: u32) -> IpAddr {
    let [a, b, c] = net;
    Ipv4Addr::new(a, b, c, FIRST_HOST + (n % HOSTS) as u8).into()
}

impl Plan {
    /// Original tuple of entry `index`: TCP for even indices, UDP for odd ones.
    pub fn tuple(&self, index: u32) -> Tuple {
        let index = index % PERIOD;
        let client = host(CLIENT_NET, index);
        let server = host(SERVER_NET, index / HOSTS);
        let sport = (FIRST_PORT + index / (HOSTS * HOSTS) % PORTS) as u16;
        if index.is_multiple_of(2) {
            Tuple::new(client, server, 6, sport, 80)
        } else {
            Tuple::new(client, server, 17, sport, 53)
        }
    }

    /// The create request's entry: both directions seen, ASSURED, TCP ESTABLISHED (or, not
    /// offloadable, nothing seen back and TCP SYN_SENT).
    pub fn entry(&self, index: u32) -> Create {
        let orig = self.tuple(index);
        let mut entry = Create::new(orig, self.timeout);
        if self.offloadable {
            entry.status = Status::SEEN_REPLY | Status::ASSURED;
        }
        if orig.proto == 6 {
            entry.tcp_state =
                Some(if self.offloadable { TcpState::Established } else { TcpState::SynSent });
        }
        entry
    }
}

/// Clear `NLM_F_ACK` in the message that starts at `start` of `buf`.
fn clear_ack(buf: &mut [u8], start: usize) {
    if let Some([low, high]) = buf.get_mut(start + FLAGS_OFFSET..start + FLAGS_OFFSET + 2) {
        let value = u16::from_ne_bytes([*low, *high]) & !NLM_F_ACK;
        [*low, *high] = value.to_ne_bytes();
    }
}

/// A batch of requests being built, with sequence numbers that tell their kind apart.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    messages: usize,
    seq: u32,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch { bytes: Vec::with_capacity(64 * 1024), messages: 0, seq: 0 }
    }

    fn next_seq(&mut self, create: bool) -> u32 {
        // Odd for creates, even (never 0) for deletes.
        self.seq = self.seq.wrapping_add(2);
        let even = self.seq.max(2) & !1;
        if create { even | 1 } else { even }
    }

    /// Append a create of `entry`, without acknowledgement.
    pub fn create(&mut self, entry: &Create) {
        let start = self.bytes.len();
        let seq = self.next_seq(true);
        request::create(&mut self.bytes, entry, seq);
        clear_ack(&mut self.bytes, start);
        self.messages += 1;
    }

    /// Append a delete of the entry whose original tuple is `orig`, without acknowledgement.
    pub fn delete(&mut self, orig: &Tuple) {
        let start = self.bytes.len();
        let seq = self.next_seq(false);
        request::delete(&mut self.bytes, orig, 0, None, seq);
        clear_ack(&mut self.bytes, start);
        self.messages += 1;
    }

    /// The datagram.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Requests in the batch.
    pub fn len(&self) -> usize {
        self.messages
    }

    /// True when nothing was appended since the last clear.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// Start the next batch.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.messages = 0;
    }
}

/// Requests the kernel refused, by kind and errno.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Creates refused.
    pub creates: u64,
    /// Deletes refused.
    pub deletes: u64,
    /// `(errno, count)` of every refusal.
    pub by_errno: Vec<(i32, u64)>,
}

impl Refusals {
    /// Count the error answers in one received datagram.
    pub fn count(&mut self, datagram: &[u8]) {
        for message in Datagram::new(datagram) {
            let Ok(Message::Error { errno, seq }) = message else { continue };
            if errno == 0 {
                continue;
            }
            if seq % 2 == 1 {
                self.creates += 1;
            } else {
                self.deletes += 1;
            }
            match self.by_errno.iter_mut().find(|(e, _)| *e == errno) {
                Some((_, n)) => *n += 1,
                None => self.by_errno.push((errno, 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use conntrack::{Attr, Datagram, Message};

    use super::*;

    #[test]
    fn tuples_stay_in_the_two_subnets_and_are_unique() {
        let plan = Plan { timeout: 60, offloadable: true };
        let t = plan.tuple(0);
        assert_eq!(t.src, IpAddr::from([10, 81, 1, 2]));
        assert_eq!(t.dst, IpAddr::from([10, 81, 2, 2]));
        assert_eq!((t.proto, t.src_port, t.dst_port), (6, 1024, 80));
        let u = plan.tuple(HOSTS * HOSTS + 17);
        assert_eq!(u.src, IpAddr::from([10, 81, 1, 3]));
        assert_eq!(u.dst, IpAddr::from([10, 81, 2, 3]));
        assert_eq!((u.proto, u.src_port, u.dst_port), (17, 1025, 53));
        let keys: std::collections::HashSet<_> = (0..1_000_000).map(|i| plan.tuple(i)).collect();
        assert_eq!(keys.len(), 1_000_000);
        assert_eq!(plan.tuple(PERIOD + 5), plan.tuple(5));
    }

    #[test]
    fn entries_that_are_not_offloadable_are_neither_established_nor_assured() {
        let plan = Plan { timeout: 60, offloadable: false };
        let (tcp, udp) = (plan.entry(0), plan.entry(1));
        assert_eq!((tcp.orig.proto, tcp.tcp_state), (6, Some(TcpState::SynSent)));
        assert_eq!((udp.orig.proto, udp.tcp_state), (17, None));
        assert!(!tcp.status.contains(Status::ASSURED) && !udp.status.contains(Status::ASSURED));
        let offloadable = Plan { offloadable: true, ..plan };
        assert_eq!(offloadable.entry(0).tcp_state, Some(TcpState::Established));
        assert!(offloadable.entry(1).status.contains(Status::ASSURED | Status::SEEN_REPLY));
        assert_eq!(offloadable.entry(7).orig, plan.entry(7).orig, "the same tuples");
    }

    #[test]
    fn batched_requests_carry_no_ack_and_seq_parity_names_the_kind() {
        let plan = Plan { timeout: 60, offloadable: true };
        let mut batch = Batch::new();
        batch.create(&plan.entry(0));
        batch.delete(&plan.tuple(0));
        batch.create(&plan.entry(1));
        assert_eq!(batch.len(), 3);
        let mut seqs = Vec::new();
        for message in Datagram::new(batch.bytes()) {
            let Ok(Message::Conntrack(message)) = message else { panic!("{message:?}") };
            let header = message.header();
            assert_eq!(header.flags & NLM_F_ACK, 0, "ack cleared");
            assert_ne!(header.flags & 0x1, 0, "still a request");
            seqs.push(header.seq % 2);
            if header.seq % 2 == 1 {
                let attrs: Vec<_> = message.attrs().iter().filter_map(Result::ok).collect();
                assert!(attrs.iter().any(|a| matches!(a, Attr::Timeout(60))), "{attrs:?}");
            }
        }
        assert_eq!(seqs, [1, 0, 1]);
        batch.clear();
        assert!(batch.is_empty() && batch.bytes().is_empty());
    }

    #[test]
    fn refusals_are_counted_by_kind_and_errno() {
        // Two NLMSG_ERROR messages: create (seq 3) EEXIST, delete (seq 4) ENOENT, and an ack.
        let mut datagram = Vec::new();
        for (seq, errno) in [(3u32, -17i32), (4, -2), (5, 0)] {
            datagram.extend_from_slice(&36u32.to_ne_bytes());
            datagram.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
            datagram.extend_from_slice(&0u16.to_ne_bytes());
            datagram.extend_from_slice(&seq.to_ne_bytes());
            datagram.extend_from_slice(&0u32.to_ne_bytes());
            datagram.extend_from_slice(&errno.to_ne_bytes());
            // The request's header, echoed.
            datagram.extend_from_slice(&16u32.to_ne_bytes());
            datagram.extend_from_slice(&[0; 12]);
        }
        let mut refusals = Refusals::default();
        refusals.count(&datagram);
        assert_eq!((refusals.creates, refusals.deletes), (1, 1));
        assert_eq!(refusals.by_errno, [(17, 1), (2, 1)]);
    }
}
