//! Messages captured from the real kernel (Linux 6.18, network namespaces), for tests and
//! benchmarks of this crate and of the daemon; and ([`ASK`]) the same messages as an NXP ASK
//! kernel sends them, made from the captures by [`ask::as_ask`].
//!
//! Each fixture is a file in `conntrack/fixtures/` whose comment lines (`#`) say what it is and
//! which commands produced it; the rest is the message in hex. `fixtures/capture-session.sh`
//! recreates the namespaces and traffic, and the `capture` example recorded the bytes.

pub mod ask;

/// One captured message (or, for dumps, one datagram's worth of messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixture {
    /// File name without `.hex`.
    pub name: &'static str,
    text: &'static str,
}

impl Fixture {
    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .flat_map(str::split_whitespace)
            .map(|byte| {
                #[allow(clippy::expect_used, reason = "fixture files are part of the crate; every fixture is parsed by the tests")]
                u8::from_str_radix(byte, 16).expect("fixture files hold hex bytes")
            })
            .collect()
    }

    /// The comment lines: what the fixture is and how it was captured.
    pub fn description(&self) -> impl Iterator<Item = &'static str> {
        self.text.lines().filter_map(|line| line.strip_prefix("# "))
    }
}

macro_rules! fixture {
    ($name:literal) => {
        Fixture { name: $name, text: include_str!(concat!("../fixtures/", $name, ".hex")) }
    };
}

/// A UDP entry changed with conntrack -U -t 777 --mark 7: UPDATE.
pub const CLI_UPDATE: Fixture = fixture!("cli_update");

/// The zone-7 entry removed with conntrack -D: DESTROY (zero counters, timestamps).
pub const CLI_ZONE_MARK_DESTROY: Fixture = fixture!("cli_zone_mark_destroy");

/// An entry made with conntrack -I in zone 7 with mark 42: NEW (CTA_ZONE, CTA_MARK, CTA_SYNPROXY, portid of conntrack).
pub const CLI_ZONE_MARK_NEW: Fixture = fixture!("cli_zone_mark_new");

/// A dump reply: an IPv6 TCP entry and an IPv4 UDP entry (NLM_F_MULTI), then NLMSG_DONE.
pub const DUMP_TWO_ENTRIES: Fixture = fixture!("dump_two_entries");

/// TCP over IPv4 to port 21, which the router gives the FTP helper: NEW with CTA_HELP and IPS_HELPER.
pub const FTP4_HELPER_NEW: Fixture = fixture!("ftp4_helper_new");

/// ICMP echo over IPv4: DESTROY with counters.
pub const ICMP4_DESTROY: Fixture = fixture!("icmp4_destroy");

/// ICMP echo over IPv4, masqueraded: NEW (type 8, code 0, id 0x1234).
pub const ICMP4_NEW: Fixture = fixture!("icmp4_new");

/// ICMPv6 echo, masqueraded: NEW (type 128, code 0, id 0x1234).
pub const ICMP6_NEW: Fixture = fixture!("icmp6_new");

/// ICMPv6 echo: UPDATE on the reply.
pub const ICMP6_UPDATE: Fixture = fixture!("icmp6_update");

/// TCP over IPv4, DNAT to 10.2.0.2:80: DESTROY with counters.
pub const TCP4_DNAT_DESTROY: Fixture = fixture!("tcp4_dnat_destroy");

/// TCP over IPv4 to the router port 8080, port-forwarded (DNAT) to 10.2.0.2:80: NEW.
pub const TCP4_DNAT_NEW: Fixture = fixture!("tcp4_dnat_new");

/// TCP over IPv4 to port 8443, which the router marks 0x4000: UPDATE (ESTABLISHED) with CTA_MARK.
pub const TCP4_MARK_ESTABLISHED: Fixture = fixture!("tcp4_mark_established");

/// TCP over IPv4 to a closed port (RST): DESTROY at once, state CLOSE.
pub const TCP4_REFUSED_DESTROY: Fixture = fixture!("tcp4_refused_destroy");

/// TCP over IPv4, masqueraded: DESTROY after TIME_WAIT expired, with counters and timestamps.
pub const TCP4_SNAT_DESTROY: Fixture = fixture!("tcp4_snat_destroy");

/// TCP over IPv4, masqueraded: UPDATE on the handshake ACK (ESTABLISHED, ASSURED in the same event).
pub const TCP4_SNAT_ESTABLISHED: Fixture = fixture!("tcp4_snat_established");

/// TCP over IPv4, masqueraded: UPDATE on the first FIN (FIN_WAIT).
pub const TCP4_SNAT_FIN_WAIT: Fixture = fixture!("tcp4_snat_fin_wait");

/// TCP over IPv4 through the masquerading router: NEW (SYN_SENT, unreplied).
pub const TCP4_SNAT_NEW: Fixture = fixture!("tcp4_snat_new");

/// TCP over IPv4, masqueraded: UPDATE on the SYN-ACK (SYN_RECV, SEEN_REPLY).
pub const TCP4_SNAT_SYN_RECV: Fixture = fixture!("tcp4_snat_syn_recv");

/// TCP over IPv6 to `[fd01::1]:8080`, DNAT to `[fd02::2]:80`: UPDATE (ESTABLISHED).
pub const TCP6_DNAT_ESTABLISHED: Fixture = fixture!("tcp6_dnat_established");

/// TCP over IPv6, masqueraded: DESTROY with counters and timestamps.
pub const TCP6_SNAT_DESTROY: Fixture = fixture!("tcp6_snat_destroy");

/// TCP over IPv6, masqueraded: UPDATE (ESTABLISHED, ASSURED).
pub const TCP6_SNAT_ESTABLISHED: Fixture = fixture!("tcp6_snat_established");

/// TCP over IPv6 through the masquerading router: NEW (SYN_SENT).
pub const TCP6_SNAT_NEW: Fixture = fixture!("tcp6_snat_new");

/// UDP over IPv4, masqueraded: UPDATE after 2 s of two-way traffic (ASSURED).
pub const UDP4_SNAT_ASSURED: Fixture = fixture!("udp4_snat_assured");

/// UDP over IPv4, masqueraded: DESTROY with counters (7 datagrams each way).
pub const UDP4_SNAT_DESTROY: Fixture = fixture!("udp4_snat_destroy");

/// UDP over IPv4, masqueraded: NEW.
pub const UDP4_SNAT_NEW: Fixture = fixture!("udp4_snat_new");

/// UDP over IPv4, masqueraded: UPDATE on the first reply (SEEN_REPLY).
pub const UDP4_SNAT_UPDATE: Fixture = fixture!("udp4_snat_update");

/// UDP over IPv6, masqueraded: UPDATE (ASSURED).
pub const UDP6_SNAT_ASSURED: Fixture = fixture!("udp6_snat_assured");

/// UDP over IPv6, masqueraded: DESTROY with counters.
pub const UDP6_SNAT_DESTROY: Fixture = fixture!("udp6_snat_destroy");

/// UDP over IPv6, masqueraded: NEW.
pub const UDP6_SNAT_NEW: Fixture = fixture!("udp6_snat_new");

/// Every fixture.
pub const ALL: &[Fixture] = &[
    CLI_UPDATE,
    CLI_ZONE_MARK_DESTROY,
    CLI_ZONE_MARK_NEW,
    DUMP_TWO_ENTRIES,
    FTP4_HELPER_NEW,
    ICMP4_DESTROY,
    ICMP4_NEW,
    ICMP6_NEW,
    ICMP6_UPDATE,
    TCP4_DNAT_DESTROY,
    TCP4_DNAT_NEW,
    TCP4_MARK_ESTABLISHED,
    TCP4_REFUSED_DESTROY,
    TCP4_SNAT_DESTROY,
    TCP4_SNAT_ESTABLISHED,
    TCP4_SNAT_FIN_WAIT,
    TCP4_SNAT_NEW,
    TCP4_SNAT_SYN_RECV,
    TCP6_DNAT_ESTABLISHED,
    TCP6_SNAT_DESTROY,
    TCP6_SNAT_ESTABLISHED,
    TCP6_SNAT_NEW,
    UDP4_SNAT_ASSURED,
    UDP4_SNAT_DESTROY,
    UDP4_SNAT_NEW,
    UDP4_SNAT_UPDATE,
    UDP6_SNAT_ASSURED,
    UDP6_SNAT_DESTROY,
    UDP6_SNAT_NEW,
];

/// TCP over IPv4 NEW as an ASK 6.12 kernel sends it: fast-path blocks (reply all zero, no QoS connmark).
pub const ASK612_TCP4_SNAT_NEW: Fixture = fixture!("ask612_tcp4_snat_new");

/// TCP over IPv4 UPDATE (ESTABLISHED) as an ASK 6.12 kernel sends it: reply through VLAN 100, QoS connmark.
pub const ASK612_TCP4_SNAT_ESTABLISHED: Fixture = fixture!("ask612_tcp4_snat_established");

/// TCP over IPv4 DESTROY as an ASK 6.12 kernel sends it.
pub const ASK612_TCP4_SNAT_DESTROY: Fixture = fixture!("ask612_tcp4_snat_destroy");

/// TCP over IPv6 NEW as an ASK 6.12 kernel sends it.
pub const ASK612_TCP6_SNAT_NEW: Fixture = fixture!("ask612_tcp6_snat_new");

/// UDP over IPv4 NEW as an ASK 6.12 kernel sends it, with the QoS connmark's pad (attribute 30).
pub const ASK612_UDP4_SNAT_NEW: Fixture = fixture!("ask612_udp4_snat_new");

/// The two-entry dump as an ASK 6.12 kernel sends it (QoS connmark 0, present in dumps).
pub const ASK612_DUMP_TWO_ENTRIES: Fixture = fixture!("ask612_dump_two_entries");

/// TCP over IPv4 UPDATE (ESTABLISHED) as an ASK 5.4 kernel sends it: XFRM handles, a marked original direction, the pad (attribute 3).
pub const ASK54_TCP4_SNAT_ESTABLISHED: Fixture = fixture!("ask54_tcp4_snat_established");

/// The two-entry dump as an ASK 5.4 kernel sends it, with the pad (attribute 3).
pub const ASK54_DUMP_TWO_ENTRIES: Fixture = fixture!("ask54_dump_two_entries");

/// Every ASK fixture: stock captures with the attributes each ASK patch adds, made by
/// [`ask::as_ask`] (the recipes are [`ask::MADE`]).
pub const ASK: &[Fixture] = &[
    ASK612_TCP4_SNAT_NEW,
    ASK612_TCP4_SNAT_ESTABLISHED,
    ASK612_TCP4_SNAT_DESTROY,
    ASK612_TCP6_SNAT_NEW,
    ASK612_UDP4_SNAT_NEW,
    ASK612_DUMP_TWO_ENTRIES,
    ASK54_TCP4_SNAT_ESTABLISHED,
    ASK54_DUMP_TWO_ENTRIES,
];
