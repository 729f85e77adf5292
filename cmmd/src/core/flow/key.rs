//! The identity of a tracked connection.
//!
//! A flow is identified the way the kernel identifies a conntrack: by its zone and its original
//! tuple (the direction of the first packet). The reply tuple is data, not identity: NAT shows
//! in it. Values here are plain `Copy` data with no heap, so a table of them costs what it
//! looks like it costs.

use std::fmt;
use std::hash::{Hash, Hasher};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// An address as one word for hashing: IPv4 as its IPv4-mapped IPv6 form. The two forms of
/// such an address hash the same and still compare different.
fn address_word(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// Three words instead of the derived field-by-field walk (an enum tag, a length and the bytes
/// for each address): the flow table hashes a key or two per event.
impl Hash for Tuple {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(address_word(&self.src));
        state.write_u128(address_word(&self.dst));
        state.write_u32(u32::from(self.src_port) << 16 | u32::from(self.dst_port));
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// Conntrack zone (0 = default zone).
    pub zone: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Original direction tuple.
    pub orig: Tuple,
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(u32::from(self.zone) << 8 | u32::from(self.proto));
        self.orig.hash(state);
    }
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
    fn keys_that_compare_equal_hash_equal_and_the_fields_all_count() {
        use std::hash::BuildHasher;
        let h = std::collections::hash_map::RandomState::new();
        let v4 = FlowKey {
            zone: 0,
            proto: proto::TCP,
            orig: Tuple {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                src_port: 1000,
                dst_port: 80,
            },
        };
        let same = FlowKey { orig: Tuple { src: "10.0.0.1".parse().unwrap(), ..v4.orig }, ..v4 };
        assert_eq!(h.hash_one(same), h.hash_one(v4));
        let mut mapped = v4;
        mapped.orig.src = "::ffff:10.0.0.1".parse().unwrap();
        mapped.orig.dst = "::ffff:10.0.0.2".parse().unwrap();
        assert_ne!(mapped, v4, "the mapped form is another address");
        let variants = [
            FlowKey { zone: 1, ..v4 },
            FlowKey { proto: proto::UDP, ..v4 },
            FlowKey { orig: Tuple { src: "10.0.0.3".parse().unwrap(), ..v4.orig }, ..v4 },
            FlowKey { orig: Tuple { dst: "10.0.0.3".parse().unwrap(), ..v4.orig }, ..v4 },
            FlowKey { orig: Tuple { src_port: 1001, ..v4.orig }, ..v4 },
            FlowKey { orig: Tuple { dst_port: 81, ..v4.orig }, ..v4 },
            FlowKey { orig: v4.orig.inverse(), ..v4 },
        ];
        for k in variants {
            assert_ne!(h.hash_one(k), h.hash_one(v4), "{k}");
        }
    }

    #[test]
    fn key_size_stays_small() {
        // The table stores one key per tracked connection: keep it compact.
        assert!(std::mem::size_of::<FlowKey>() <= 44, "{}", std::mem::size_of::<FlowKey>());
    }
}
