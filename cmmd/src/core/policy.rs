//! The static part of the offload decision (DESIGN.md, "The offload decision", rules 1, 2 and 4).
//!
//! [`Policy::classify`] looks only at the conntrack itself: family, protocol, zone, state,
//! loopback and multicast addresses, helpers and exclusion rules. What needs the kernel's
//! routing view (fast-path ports, local addresses, routes, neighbours) is decided later, by
//! the resolver. A verdict is a value; counting and acting on it is the engine's job.

use std::net::IpAddr;

use conntrack::{Status, TcpState};

use crate::core::flow::{Family, FlowKey, Tuple, key::proto};
use crate::core::stats::Reason;

/// What the engine knows about one kernel conntrack, translated from the ctnetlink message at
/// the edge of the daemon. The kernel's values keep the `conntrack` crate's types (status
/// bits, TCP state) all the way to the decision; the protocol is the kernel's number, named
/// in [`crate::core::flow::key::proto`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtInfo {
    /// Zone, protocol and original tuple.
    pub key: FlowKey,
    /// Reply tuple (NAT shows here).
    pub reply: Tuple,
    /// `IPS_*` status bits, unknown ones kept.
    pub status: Status,
    /// TCP state, for TCP.
    pub tcp_state: Option<TcpState>,
    /// Conntrack mark.
    pub mark: u32,
    /// The ASK kernel's 64-bit QoS mark (`CTA_QOSCONNMARK`), when the kernel sends one.
    pub qos_connmark: Option<u64>,
    /// Conntrack id (0 when the kernel did not send one).
    pub id: u32,
    /// Remaining kernel timeout in seconds, when reported.
    pub timeout: Option<u32>,
    /// A helper is attached (CTA_HELP) or the helper bit is set.
    pub helper: bool,
    /// Sequence adjustment is present (CTA_SEQ_ADJ_*) or the bit is set.
    pub seq_adjust: bool,
    /// What an ASK kernel recorded of each direction's packets, `[ORIG, REPLY]` (its
    /// fast-path blocks); `None` on a stock kernel.
    pub fastpath: [Option<FastPathInfo>; 2],
}

/// One direction's fast-path block of an ASK kernel: where its last packet entered the box
/// and with which mark. Recorded at PRE_ROUTING, in the host network namespace only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastPathInfo {
    /// The device the packet was on at the IP layer (a bridge or VLAN interface, or a port):
    /// the input interface of the direction's route lookup.
    pub ifindex: u32,
    /// The input interface; 0 when the host itself generated the direction's packets (or
    /// none has been seen yet).
    pub iif: u32,
    /// The physical port under a bridge or VLAN interface (cdx's underlying input device).
    pub underlying_iif: u32,
    /// The packet's mark, what `ip rule fwmark` saw.
    pub mark: u32,
}

/// An end of a connection that is the host itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostEnd {
    /// The host opened it (its original direction was generated here).
    Originator,
    /// The host answers it (its replies are generated here).
    Replier,
}

impl CtInfo {
    /// Which end of this connection the kernel's fast-path information says is the host
    /// itself: the original direction was never seen entering the box (its packets were
    /// generated here), else replies were seen but none entered (they were generated here).
    /// `None` on stock kernels, which do not say.
    pub fn fastpath_host_end(&self) -> Option<HostEnd> {
        let [orig, reply] = self.fastpath;
        if orig.is_some_and(|fp| fp.iif == 0) {
            Some(HostEnd::Originator)
        } else if reply.is_some_and(|fp| fp.iif == 0) && self.status.contains(Status::SEEN_REPLY) {
            Some(HostEnd::Replier)
        } else {
            None
        }
    }
}

/// Directions to offload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dirs {
    /// Both directions.
    Both,
    /// Only the originator direction (vendor UDP behaviour before ASSURED).
    OrigOnly,
}

/// Outcome of the static classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a candidate yet and nothing to explain (TCP not ESTABLISHED, UDP not ASSURED).
    NotYet,
    /// Eligible, subject to resolution, in these directions.
    Candidate(Dirs),
    /// Never offloaded, for this reason.
    Refused(Reason),
}

pub use config::{Cidr, ExcludeRule as Rule, UdpPolicy};

fn opt_eq<T: PartialEq>(want: &Option<T>, have: T) -> bool {
    want.as_ref().is_none_or(|w| *w == have)
}

fn opt_in(want: &Option<Cidr>, have: &IpAddr) -> bool {
    want.as_ref().is_none_or(|c| c.contains(have))
}

/// True if the conntrack matches every field set in the rule (fields are ANDed; rules are
/// ORed by the caller). The rule model and its parsing belong to `config`; evaluating it
/// belongs here.
pub fn rule_matches(rule: &Rule, ct: &CtInfo) -> bool {
    let (o, r) = (&ct.key.orig, &ct.reply);
    let ports = [o.src_port, o.dst_port, r.src_port, r.dst_port];
    let addrs = [o.src, o.dst, r.src, r.dst];
    rule.family.is_none_or(|f| f == config::Family::of(&o.src))
        && opt_eq(&rule.proto, ct.key.proto)
        && rule.port.is_none_or(|p| ports.contains(&p))
        && opt_eq(&rule.orig_src_port, o.src_port)
        && opt_eq(&rule.orig_dst_port, o.dst_port)
        && opt_eq(&rule.reply_src_port, r.src_port)
        && opt_eq(&rule.reply_dst_port, r.dst_port)
        && rule.addr.is_none_or(|c| addrs.iter().any(|a| c.contains(a)))
        && opt_in(&rule.orig_src, &o.src)
        && opt_in(&rule.orig_dst, &o.dst)
        && opt_in(&rule.reply_src, &r.src)
        && opt_in(&rule.reply_dst, &r.dst)
        && rule.mark.is_none_or(|m| ct.mark & m.mask == m.value & m.mask)
        && opt_eq(&rule.zone, ct.key.zone)
}

/// The configurable static rules.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Offload TCP.
    pub tcp: bool,
    /// Offload UDP.
    pub udp: bool,
    /// Offload IPv4.
    pub ipv4: bool,
    /// Offload IPv6.
    pub ipv6: bool,
    /// UDP candidate rule: both directions once ASSURED, or (the vendor's) the originator
    /// direction as soon as the flow is confirmed, both once ASSURED.
    pub udp_policy: UdpPolicy,
    /// Exclude connections with a helper or sequence adjustment.
    pub exclude_helpers: bool,
    /// Zones to offload; empty means all.
    pub zones: Vec<u16>,
    /// Exclusion rules.
    pub rules: Vec<Rule>,
}

impl Policy {
    /// The rules of the `[offload]` table (its deny rules and those of the fastforward file).
    pub fn new(o: &config::OffloadConfig) -> Policy {
        Policy {
            tcp: o.offloads(config::L4Protocol::Tcp),
            udp: o.offloads(config::L4Protocol::Udp),
            ipv4: o.ipv4,
            ipv6: o.ipv6,
            udp_policy: o.udp_policy,
            exclude_helpers: o.exclude_helpers,
            zones: o.zones.clone(),
            rules: o.deny_rules().cloned().collect(),
        }
    }
}

impl Default for Policy {
    /// The rules of a default `[offload]` table.
    fn default() -> Self {
        Policy::new(&config::OffloadConfig::default())
    }
}

fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

fn is_multicast_or_broadcast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}

impl Policy {
    /// Classify a conntrack by its own content.
    pub fn classify(&self, ct: &CtInfo) -> Verdict {
        let dirs = match ct.key.proto {
            proto::TCP if !self.tcp => return Verdict::Refused(Reason::Disabled),
            proto::UDP if !self.udp => return Verdict::Refused(Reason::Disabled),
            proto::TCP => {
                if ct.tcp_state != Some(TcpState::Established) {
                    return Verdict::NotYet;
                }
                Dirs::Both
            }
            proto::UDP => {
                if ct.status.contains(Status::ASSURED) {
                    Dirs::Both
                } else if self.udp_policy == UdpPolicy::Confirmed
                    && ct.status.contains(Status::CONFIRMED)
                {
                    Dirs::OrigOnly
                } else {
                    return Verdict::NotYet;
                }
            }
            _ => return Verdict::Refused(Reason::UnsupportedProtocol),
        };
        let family_on = match ct.key.family() {
            Family::V4 => self.ipv4,
            Family::V6 => self.ipv6,
        };
        if !family_on || Family::of(&ct.key.orig.dst) != ct.key.family() {
            return Verdict::Refused(Reason::Disabled);
        }
        if !self.zones.is_empty() && !self.zones.contains(&ct.key.zone) {
            return Verdict::Refused(Reason::Zone);
        }
        let (o, r) = (&ct.key.orig, &ct.reply);
        if [o.src, o.dst, r.src, r.dst].iter().any(is_loopback) {
            return Verdict::Refused(Reason::Local);
        }
        if is_multicast_or_broadcast(&o.dst) || is_multicast_or_broadcast(&r.src) {
            return Verdict::Refused(Reason::Multicast);
        }
        let helper = ct.helper || ct.status.contains(Status::HELPER);
        let seq_adjust = ct.seq_adjust || ct.status.contains(Status::SEQ_ADJUST);
        if self.exclude_helpers && (helper || seq_adjust) {
            return Verdict::Refused(Reason::Helper);
        }
        if self.rules.iter().any(|rule| rule_matches(rule, ct)) {
            return Verdict::Refused(Reason::ExcludedByRule);
        }
        Verdict::Candidate(dirs)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn ct(proto: u8, src: &str, sport: u16, dst: &str, dport: u16) -> CtInfo {
        let orig = Tuple {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: sport,
            dst_port: dport,
        };
        CtInfo {
            key: FlowKey { zone: 0, proto, orig },
            reply: orig.inverse(),
            status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
            tcp_state: (proto == proto::TCP).then_some(TcpState::Established),
            mark: 0,
            qos_connmark: None,
            id: 1,
            timeout: Some(432_000),
            helper: false,
            seq_adjust: false,
            fastpath: [None; 2],
        }
    }

    fn established() -> CtInfo {
        ct(proto::TCP, "10.1.0.2", 40000, "10.2.0.2", 443)
    }

    #[test]
    fn established_tcp_is_a_candidate_both_ways() {
        assert_eq!(Policy::default().classify(&established()), Verdict::Candidate(Dirs::Both));
    }

    #[test]
    fn tcp_before_established_is_not_yet() {
        let mut c = established();
        c.tcp_state = Some(TcpState::SynSent);
        assert_eq!(Policy::default().classify(&c), Verdict::NotYet);
        c.tcp_state = None;
        assert_eq!(Policy::default().classify(&c), Verdict::NotYet);
    }

    #[test]
    fn udp_waits_for_assured_unless_confirmed_mode() {
        let mut c = ct(proto::UDP, "10.1.0.2", 5000, "10.2.0.2", 53);
        c.status = Status::CONFIRMED;
        let mut p = Policy::default();
        assert_eq!(p.classify(&c), Verdict::NotYet);
        p.udp_policy = UdpPolicy::Confirmed;
        assert_eq!(p.classify(&c), Verdict::Candidate(Dirs::OrigOnly));
        c.status |= Status::ASSURED;
        assert_eq!(p.classify(&c), Verdict::Candidate(Dirs::Both));
    }

    #[test]
    fn other_protocols_are_unsupported() {
        for p in [proto::ICMP, 47, 132, 33, 255] {
            let c = ct(p, "10.1.0.2", 0, "10.2.0.2", 0);
            assert_eq!(
                Policy::default().classify(&c),
                Verdict::Refused(Reason::UnsupportedProtocol),
                "proto {p}"
            );
        }
    }

    #[test]
    fn vendor_default_exclusions() {
        let p = Policy::default();
        let ftp = ct(proto::TCP, "10.1.0.2", 40000, "10.2.0.2", 21);
        let sip = ct(proto::UDP, "10.1.0.2", 5060, "10.2.0.2", 5070);
        let pptp = ct(proto::TCP, "10.1.0.2", 1723, "10.2.0.2", 40000);
        let sip_tcp = ct(proto::TCP, "10.1.0.2", 40000, "10.2.0.2", 5060);
        for c in [ftp, sip, pptp] {
            assert_eq!(p.classify(&c), Verdict::Refused(Reason::ExcludedByRule), "{:?}", c.key);
        }
        assert_eq!(p.classify(&sip_tcp), Verdict::Candidate(Dirs::Both));
    }

    #[test]
    fn loopback_multicast_helper_zone() {
        let p = Policy::default();
        assert_eq!(
            p.classify(&ct(proto::TCP, "127.0.0.1", 1, "127.0.0.1", 2)),
            Verdict::Refused(Reason::Local)
        );
        assert_eq!(
            p.classify(&ct(proto::UDP, "10.1.0.2", 1, "239.1.1.1", 2)),
            Verdict::Refused(Reason::Multicast)
        );
        assert_eq!(
            p.classify(&ct(proto::UDP, "fd00::2", 1, "ff02::1", 2)),
            Verdict::Refused(Reason::Multicast)
        );
        let mut h = established();
        h.helper = true;
        assert_eq!(p.classify(&h), Verdict::Refused(Reason::Helper));
        let mut z = established();
        z.key.zone = 7;
        let zp = Policy { zones: vec![0], ..Policy::default() };
        assert_eq!(zp.classify(&z), Verdict::Refused(Reason::Zone));
    }

    #[test]
    fn rule_fields_are_anded() {
        let rule = Rule {
            proto: Some(proto::TCP),
            orig_src: Cidr::parse("10.1.0.0/16"),
            mark: Some(config::MarkMatch { value: 0x10, mask: 0xf0 }),
            ..Rule::default()
        };
        let mut c = established();
        c.mark = 0x1f;
        assert!(rule_matches(&rule, &c));
        c.mark = 0x20;
        assert!(!rule_matches(&rule, &c), "mark differs under the mask");
        c.mark = 0x10;
        c.key.orig.src = "10.9.0.2".parse().unwrap();
        assert!(!rule_matches(&rule, &c), "source outside the prefix");
        let v6_only = Rule { family: Some(config::Family::Ipv6), ..Rule::default() };
        assert!(!rule_matches(&v6_only, &c));
    }
}
