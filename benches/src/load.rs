//! Synthetic connections and the kernel events they produce.
//!
//! A connection is named by its [`Kind`] and an index; the same pair always yields the same
//! tuples, id and events. Clients live behind the client port (`10.1.0.0/16`, `fd01::/16`),
//! servers behind the server port (`10.2.0.0/16`, `fd02::/16`) — the subnets the fake world
//! in [`crate::world`] routes — so every connection is forwarded traffic the engine offloads.
//!
//! Event sequences follow what the kernel sends (DESIGN.md, "Kernel facts"): TCP is NEW
//! (SYN_SENT) then UPDATE (ESTABLISHED with ASSURED in the same event); UDP is NEW, UPDATE
//! when the reply is seen, UPDATE when ASSURED. Both end with DESTROY.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cmmd::core::engine::CtEventKind;
use cmmd::core::flow::key::proto;
use cmmd::core::flow::{FlowKey, Tuple};
use cmmd::core::policy::CtInfo;
use conntrack::{Status, TcpState};

/// Distinct client ports per client address.
const PORTS_PER_CLIENT: u32 = 50_000;
/// First client port.
const FIRST_PORT: u32 = 10_000;
/// Distinct servers per family.
const SERVERS: u32 = 16;

/// Protocol and family of a synthetic connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP over IPv4.
    Tcp4,
    /// TCP over IPv6.
    Tcp6,
    /// UDP over IPv4.
    Udp4,
    /// UDP over IPv6.
    Udp6,
}

/// The mix the engine benches cycle through: one of each kind.
pub const MIX: [Kind; 4] = [Kind::Tcp4, Kind::Tcp6, Kind::Udp4, Kind::Udp6];

impl Kind {
    /// IP protocol number.
    pub fn proto(self) -> u8 {
        match self {
            Kind::Tcp4 | Kind::Tcp6 => proto::TCP,
            Kind::Udp4 | Kind::Udp6 => proto::UDP,
        }
    }

    fn v6(self) -> bool {
        matches!(self, Kind::Tcp6 | Kind::Udp6)
    }

    /// Events from creation to offload eligibility (NEW, then UPDATEs).
    pub fn setup_events(self) -> usize {
        match self.proto() {
            proto::TCP => 2,
            _ => 3,
        }
    }
}

/// The client address of connection `index`: 250 addresses share a /24, 50 000 ports each.
fn client(kind: Kind, index: u32) -> IpAddr {
    let host = index / PORTS_PER_CLIENT;
    if kind.v6() {
        let [a, b, c, d] = (host + 1).to_be_bytes();
        Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))
            .into()
    } else {
        // Host bytes 1..=250, so no address is a network or broadcast address.
        let low = (host % 250 + 1) as u8;
        let mid = (host / 250 % 250) as u8;
        Ipv4Addr::new(10, 1, mid, low).into()
    }
}

fn server(kind: Kind, index: u32) -> IpAddr {
    let host = (index % SERVERS + 1) as u16;
    if kind.v6() {
        Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, host).into()
    } else {
        Ipv4Addr::new(10, 2, 0, host as u8).into()
    }
}

/// Zone, protocol and original tuple of connection `index` (unique for indices below 3.125
/// billion for IPv4, for every `u32` for IPv6).
pub fn key(kind: Kind, index: u32) -> FlowKey {
    let port = (FIRST_PORT + index % PORTS_PER_CLIENT) as u16;
    let dst_port = if kind.proto() == proto::TCP { 443 } else { 53 };
    let orig =
        Tuple { src: client(kind, index), dst: server(kind, index), src_port: port, dst_port };
    FlowKey { zone: 0, proto: kind.proto(), orig }
}

/// The connection once offloadable: TCP ESTABLISHED or UDP ASSURED, both directions seen.
pub fn established(kind: Kind, index: u32) -> CtInfo {
    let key = key(kind, index);
    let tcp = kind.proto() == proto::TCP;
    CtInfo {
        key,
        reply: key.orig.inverse(),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        tcp_state: tcp.then_some(TcpState::Established),
        mark: 0,
        qos_connmark: None,
        id: index.wrapping_add(1).max(1),
        timeout: Some(if tcp { 432_000 } else { 120 }),
        helper: false,
        seq_adjust: false,
        fastpath: [None; 2],
    }
}

/// The events the kernel sends for connection `index` from its creation until it is
/// offloadable; the last one is [`established`].
pub fn setup(kind: Kind, index: u32) -> impl Iterator<Item = (CtEventKind, CtInfo)> {
    let done = established(kind, index);
    let new = CtInfo {
        status: Status::CONFIRMED,
        tcp_state: done.tcp_state.map(|_| TcpState::SynSent),
        timeout: Some(if done.tcp_state.is_some() { 120 } else { 30 }),
        ..done
    };
    let replied = CtInfo { status: Status::CONFIRMED | Status::SEEN_REPLY, ..new };
    let udp_reply = (kind.proto() == proto::UDP).then_some((CtEventKind::Update, replied));
    [(CtEventKind::New, new)].into_iter().chain(udp_reply).chain([(CtEventKind::Update, done)])
}

/// The DESTROY event of connection `index`.
pub fn destroy(kind: Kind, index: u32) -> CtInfo {
    CtInfo { timeout: None, ..established(kind, index) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_in_the_routed_subnets() {
        let a = key(Kind::Tcp4, 0);
        let b = key(Kind::Tcp4, PORTS_PER_CLIENT);
        assert_eq!(a.orig.src, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(b.orig.src, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!((a.orig.src_port, b.orig.src_port), (10_000, 10_000));
        assert_eq!(a.orig.dst, IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)));
        let v6 = key(Kind::Udp6, 0x0001_0002);
        assert_eq!(v6.orig.src, "fd01::2".parse::<IpAddr>().unwrap());
        assert_eq!((v6.proto, v6.orig.dst_port), (proto::UDP, 53));
        let many: std::collections::HashSet<FlowKey> =
            (0..300_000).map(|i| key(Kind::Tcp4, i)).collect();
        assert_eq!(many.len(), 300_000);
    }

    #[test]
    fn setup_follows_the_kernel_sequences() {
        let tcp: Vec<_> = setup(Kind::Tcp4, 7).collect();
        assert_eq!(tcp.len(), Kind::Tcp4.setup_events());
        assert_eq!((tcp[0].0, tcp[0].1.tcp_state), (CtEventKind::New, Some(TcpState::SynSent)));
        assert_eq!(tcp[1], (CtEventKind::Update, established(Kind::Tcp4, 7)));
        let udp: Vec<_> = setup(Kind::Udp6, 7).collect();
        let kinds: Vec<_> = udp.iter().map(|(k, ct)| (*k, ct.status)).collect();
        assert_eq!(
            kinds,
            [
                (CtEventKind::New, Status::CONFIRMED),
                (CtEventKind::Update, Status::CONFIRMED | Status::SEEN_REPLY),
                (CtEventKind::Update, Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED),
            ]
        );
        assert_eq!(destroy(Kind::Udp6, 7).key, established(Kind::Udp6, 7).key);
    }
}
