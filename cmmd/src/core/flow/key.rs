//! The identity of a tracked connection.
//!
//! A flow is identified the way the kernel identifies a conntrack: by its zone and its original
//! tuple (the direction of the first packet). The reply tuple is data, not identity: NAT shows
//! in it. Values here are plain `Copy` data with no heap, so a table of them costs what it
//! looks like it costs.

use std::fmt;
use std::net::IpAddr;

/// IP protocol numbers cmmd names. Others are carried as raw numbers.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// One direction of a connection: addresses and ports (0 for protocols without ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (or ICMP id).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl Tuple {
    /// The tuple of the packets flowing the other way, without NAT.
    pub fn inverse(&self) -> Tuple {
        Tuple { src: self.dst, dst: self.src, src_port: self.dst_port, dst_port: self.src_port }
    }
}

/// Address family of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// `ipv4` / `ipv6`, as the vendor prints it.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// Key of the flow table: conntrack zone, L4 protocol and original tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Conntrack zone (0 = default zone).
    pub zone: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Original direction tuple.
    pub orig: Tuple,
}

impl FlowKey {
    /// The address family (taken from the original source address).
    pub fn family(&self) -> Family {
        Family::of(&self.orig.src)
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}:{} > {}:{}",
            proto_name(self.proto),
            self.zone,
            self.orig.src,
            self.orig.src_port,
            self.orig.dst,
            self.orig.dst_port
        )
    }
}

/// Lower-case protocol name, or `unknown` for numbers cmmd does not name (the number is
/// printed next to it by the callers that need it, as `conntrack -L` does).
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        proto::TCP => "tcp",
        proto::UDP => "udp",
        proto::ICMP => "icmp",
        proto::ICMPV6 => "icmpv6",
        2 => "igmp",
        4 => "ipip",
        33 => "dccp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        132 => "sctp",
        136 => "udplite",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_swaps_addresses_and_ports() {
        let t = Tuple {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            src_port: 1000,
            dst_port: 80,
        };
        let i = t.inverse();
        assert_eq!((i.src, i.dst, i.src_port, i.dst_port), (t.dst, t.src, 80, 1000));
        assert_eq!(i.inverse(), t);
    }

    #[test]
    fn key_size_stays_small() {
        // The table stores one key per tracked connection: keep it compact.
        assert!(std::mem::size_of::<FlowKey>() <= 44, "{}", std::mem::size_of::<FlowKey>());
    }
}
