//! Deny rules: the one model both rule formats parse into.
//!
//! Contract: an [`ExcludeRule`] is data, not a matcher. All present fields are ANDed; rules are ORed;
//! a connection matching any rule is never offloaded. The daemon's policy stage evaluates them (only
//! [`Cidr::contains`] is offered here, because a prefix is a value type). A rule built by this crate has
//! at least one match field and never mixes IPv4 and IPv6 (such a rule could never match, so it is an
//! error). `Display` renders the vendor's `show rules` layout; [`ExcludeRule::to_toml`] renders our
//! TOML format.

use std::fmt;
use std::net::IpAddr;

use crate::model::{Named, named_enum};

named_enum! {
    /// Layer-3 family.
    pub enum Family {
        /// IPv4.
        Ipv4 = "ipv4",
        /// IPv6.
        Ipv6 = "ipv6",
    }
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }

    /// The `AF_*` number the vendor prints next to the name.
    fn af_number(self) -> u8 {
        match self {
            Self::Ipv4 => 2,
            Self::Ipv6 => 10,
        }
    }
}

/// An address prefix: `10.0.0.0/8`, `2001:db8::/32`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// The rule a text must follow to be a `Cidr`.
    pub(crate) const RULE: &'static str =
        "expected an address or prefix such as 10.0.0.0/8 or 2001:db8::/32, without host bits";

    /// Parses `addr` or `addr/len`; host bits must be zero.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().ok()?;
        let max_len = Self::max_len(&addr);
        let prefix_len = match len_text {
            None => max_len,
            Some(len) if !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) => {
                len.parse::<u8>().ok().filter(|len| *len <= max_len)?
            }
            Some(_) => return None,
        };
        let cidr = Self { addr, prefix_len };
        (cidr.network_bits() == Self::bits(&addr)).then_some(cidr)
    }

    /// The prefix `addr/prefix_len`; `None` if the length exceeds the family's width or host
    /// bits are set.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        let cidr = Self { addr, prefix_len };
        (prefix_len <= Self::max_len(&addr) && cidr.network_bits() == Self::bits(&addr))
            .then_some(cidr)
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` lies inside this prefix (always false across families).
    pub fn contains(&self, addr: &IpAddr) -> bool {
        Family::of(addr) == Family::of(&self.addr)
            && Self::bits(addr) & self.mask() == Self::bits(&self.addr)
    }

    /// The mask as a number of the address width (IPv4 in the low 32 bits).
    pub fn mask(&self) -> u128 {
        let width = u32::from(Self::max_len(&self.addr));
        let all_ones = if width == 32 { u128::from(u32::MAX) } else { u128::MAX };
        let host_bits = width - u32::from(self.prefix_len);
        all_ones.checked_shl(host_bits).map_or(0, |shifted| shifted & all_ones)
    }

    fn network_bits(&self) -> u128 {
        Self::bits(&self.addr) & self.mask()
    }

    fn bits(addr: &IpAddr) -> u128 {
        match addr {
            IpAddr::V4(v4) => u128::from(u32::from(*v4)),
            IpAddr::V6(v6) => u128::from(*v6),
        }
    }

    fn max_len(addr: &IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix_len == Self::max_len(&self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix_len)
        }
    }
}

/// A conntrack mark match: `(ct.mark & mask) == value & mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkMatch {
    /// The mark value.
    pub value: u32,
    /// Bits compared (`0xffffffff` when no mask is given).
    pub mask: u32,
}

/// One deny rule. Absent fields match anything; present ones are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ExcludeRule {
    /// Shown by `show rules`; the vendor section name, or `rule<N>` for an unnamed TOML rule.
    pub name: String,
    /// Layer-3 family.
    pub family: Option<Family>,
    /// Layer-4 protocol number of the original direction.
    pub proto: Option<u8>,
    /// Matches when any of the four ports (orig src/dst, reply src/dst) equals it.
    pub port: Option<u16>,
    /// Original direction source port.
    pub orig_src_port: Option<u16>,
    /// Original direction destination port.
    pub orig_dst_port: Option<u16>,
    /// Reply direction source port.
    pub reply_src_port: Option<u16>,
    /// Reply direction destination port.
    pub reply_dst_port: Option<u16>,
    /// Matches when any of the four addresses lies inside it.
    pub addr: Option<Cidr>,
    /// Original direction source address.
    pub orig_src: Option<Cidr>,
    /// Original direction destination address.
    pub orig_dst: Option<Cidr>,
    /// Reply direction source address.
    pub reply_src: Option<Cidr>,
    /// Reply direction destination address.
    pub reply_dst: Option<Cidr>,
    /// Conntrack mark.
    pub mark: Option<MarkMatch>,
    /// Conntrack zone.
    pub zone: Option<u16>,
}

/// One present field of a rule, in display order: what both renderings walk.
enum Field {
    Family(Family),
    Proto(u8),
    Port { key: &'static str, port: u16 },
    Addr { key: &'static str, cidr: Cidr },
    Mark(MarkMatch),
    Zone(u16),
}

impl ExcludeRule {
    /// A rule on protocol and any port: the shape of the vendor's default rules.
    pub fn proto_port(name: &str, proto: u8, port: u16) -> Self {
        Self { name: name.to_owned(), proto: Some(proto), port: Some(port), ..Self::default() }
    }

    fn fields(&self) -> Vec<Field> {
        let mut fields = Vec::new();
        fields.extend(self.family.map(Field::Family));
        fields.extend(self.proto.map(Field::Proto));
        let ports = [
            ("port", self.port),
            ("orig_src_port", self.orig_src_port),
            ("orig_dst_port", self.orig_dst_port),
            ("reply_src_port", self.reply_src_port),
            ("reply_dst_port", self.reply_dst_port),
        ];
        fields.extend(
            ports.into_iter().filter_map(|(key, port)| Some(Field::Port { key, port: port? })),
        );
        let addrs = [
            ("addr", self.addr),
            ("src", self.orig_src),
            ("dst", self.orig_dst),
            ("reply_src", self.reply_src),
            ("reply_dst", self.reply_dst),
        ];
        fields.extend(
            addrs.into_iter().filter_map(|(key, cidr)| Some(Field::Addr { key, cidr: cidr? })),
        );
        fields.extend(self.mark.map(Field::Mark));
        fields.extend(self.zone.map(Field::Zone));
        fields
    }

    /// Checks what makes a rule meaningful: at least one match field, and one address family.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.fields().is_empty() {
            return Err(
                "a deny rule needs at least one match field (it would exclude everything)".into()
            );
        }
        self.check_families()
    }

    /// Checks that the rule does not mix IPv4 and IPv6 (in `family` or its addresses).
    pub(crate) fn check_families(&self) -> Result<(), String> {
        let fields = self.fields();
        let mut families = fields.iter().filter_map(|field| match field {
            Field::Family(family) => Some(*family),
            Field::Addr { cidr, .. } => Some(Family::of(&cidr.addr())),
            _ => None,
        });
        if let Some(first) = families.next()
            && families.any(|family| family != first)
        {
            return Err("a deny rule cannot mix IPv4 and IPv6 (it could never match)".into());
        }
        Ok(())
    }

    /// Our TOML notation as an inline table, e.g. `{ name = "ftp", proto = "tcp", port = 21 }`.
    pub fn to_toml(&self) -> String {
        let mut parts = vec![format!("name = {}", toml_string(&self.name))];
        for field in self.fields() {
            parts.push(match field {
                Field::Family(family) => format!("family = \"{family}\""),
                Field::Proto(proto) => match proto_name(proto) {
                    Some(name @ ("tcp" | "udp")) => format!("proto = \"{name}\""),
                    _ => format!("proto = {proto}"),
                },
                Field::Port { key, port } => format!("{key} = {port}"),
                Field::Addr { key, cidr } => format!("{key} = \"{cidr}\""),
                Field::Mark(mark) => {
                    format!("mark = {:#x}, mark_mask = {:#x}", mark.value, mark.mask)
                }
                Field::Zone(zone) => format!("zone = {zone}"),
            });
        }
        format!("{{ {} }}", parts.join(", "))
    }
}

/// The vendor `show rules` layout: `<name>:` then one tab-indented line per field, each line ended by
/// a newline, e.g. `ftp:\n\tproto: tcp (6)  mask ff\n\tport: 21 mask ffff\n`.
impl fmt::Display for ExcludeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:", self.name)?;
        for field in self.fields() {
            match field {
                Field::Family(family) => {
                    writeln!(f, "\tfamily: {family} ({})", family.af_number())?
                }
                Field::Proto(proto) => match proto_name(proto) {
                    Some(name) => writeln!(f, "\tproto: {name} ({proto})  mask ff")?,
                    None => writeln!(f, "\tproto: {proto}  mask ff")?,
                },
                Field::Port { key, port } => writeln!(f, "\t{key}: {port} mask ffff")?,
                Field::Addr { key, cidr } => {
                    let label = if key == "src" || key == "dst" { "orig_" } else { "" };
                    let width = if cidr.addr().is_ipv4() { 8 } else { 32 };
                    writeln!(f, "\t{label}{key}: {} mask {:0width$x}", cidr.addr(), cidr.mask())?;
                }
                Field::Mark(mark) => writeln!(f, "\tmark: {:x} mask {:x}", mark.value, mark.mask)?,
                Field::Zone(zone) => writeln!(f, "\tzone: {zone}")?,
            }
        }
        Ok(())
    }
}

/// Protocol names shown next to numbers.
fn proto_name(proto: u8) -> Option<&'static str> {
    match proto {
        1 => Some("icmp"),
        6 => Some("tcp"),
        17 => Some("udp"),
        58 => Some("icmpv6"),
        _ => None,
    }
}

/// A TOML basic string with the escaping TOML requires.
pub(crate) fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_prefixes_and_rejects_host_bits() {
        let net = Cidr::parse("10.1.0.0/16").expect("valid");
        assert_eq!(net.mask(), 0xffff_0000);
        assert!(net.contains(&"10.1.200.3".parse().expect("addr")));
        assert!(!net.contains(&"10.2.0.1".parse().expect("addr")));
        assert!(!net.contains(&"::ffff:10.1.0.1".parse().expect("addr")));
        assert_eq!(Cidr::parse("10.1.0.1/16"), None);
        assert_eq!(Cidr::parse("10.1.0.0/33"), None);
        assert_eq!(Cidr::parse("10.1.0.0/"), None);
        assert_eq!(Cidr::parse("10.1.0.0/+8"), None);
        assert_eq!(Cidr::parse("0.0.0.0/0").map(|c| c.mask()), Some(0));
        let host = Cidr::parse("192.0.2.7").expect("valid");
        assert_eq!((host.prefix_len(), host.to_string()), (32, "192.0.2.7".to_owned()));
        let v6 = Cidr::parse("2001:db8::/32").expect("valid");
        assert_eq!(v6.mask(), 0xffff_ffff_u128 << 96);
        assert_eq!(v6.to_string(), "2001:db8::/32");
        assert!(v6.contains(&"2001:db8:1::9".parse().expect("addr")));
    }

    #[test]
    fn display_is_the_vendor_show_rules_layout() {
        let ftp = ExcludeRule::proto_port("ftp", 6, 21);
        assert_eq!(ftp.to_string(), "ftp:\n\tproto: tcp (6)  mask ff\n\tport: 21 mask ffff\n");
        let rule = ExcludeRule {
            name: "lan".into(),
            family: Some(Family::Ipv4),
            orig_src_port: Some(1024),
            orig_src: Cidr::parse("192.168.0.0/16"),
            reply_dst: Cidr::parse("10.0.0.1"),
            mark: Some(MarkMatch { value: 0x4000, mask: 0xff00 }),
            zone: Some(3),
            proto: Some(47),
            ..ExcludeRule::default()
        };
        assert_eq!(
            rule.to_string(),
            "lan:\n\tfamily: ipv4 (2)\n\tproto: 47  mask ff\n\torig_src_port: 1024 mask ffff\n\
             \torig_src: 192.168.0.0 mask ffff0000\n\treply_dst: 10.0.0.1 mask ffffffff\n\
             \tmark: 4000 mask ff00\n\tzone: 3\n"
        );
        let v6 = ExcludeRule {
            name: "v6".into(),
            addr: Cidr::parse("2001:db8::/32"),
            ..ExcludeRule::default()
        };
        assert_eq!(
            v6.to_string(),
            "v6:\n\taddr: 2001:db8:: mask ffffffff000000000000000000000000\n"
        );
    }

    #[test]
    fn toml_rendering_uses_our_key_names() {
        let rule = ExcludeRule {
            mark: Some(MarkMatch { value: 16, mask: 0xff }),
            orig_dst: Cidr::parse("10.0.0.0/8"),
            ..ExcludeRule::proto_port("a\"b", 17, 5060)
        };
        assert_eq!(
            rule.to_toml(),
            r#"{ name = 'a"b', proto = "udp", port = 5060, dst = "10.0.0.0/8", mark = 0x10, mark_mask = 0xff }"#
        );
    }

    #[test]
    fn check_rejects_empty_and_mixed_family_rules() {
        let empty = ExcludeRule { name: "x".into(), ..ExcludeRule::default() };
        assert!(empty.check().is_err());
        let mixed = ExcludeRule {
            family: Some(Family::Ipv6),
            addr: Cidr::parse("10.0.0.0/8"),
            ..ExcludeRule::default()
        };
        assert_eq!(
            mixed.check(),
            Err("a deny rule cannot mix IPv4 and IPv6 (it could never match)".into())
        );
        assert_eq!(ExcludeRule::proto_port("ftp", 6, 21).check(), Ok(()));
    }
}
