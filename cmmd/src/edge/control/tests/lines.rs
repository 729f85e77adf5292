//! The vendor's lines of `show connections`, `show route`, `show neighbor`, `show fpp_route`
//! and `show rules`, filled with known data, and cmmd's `detail` variants.

use std::path::Path;

use config::UdpPolicy;

use super::*;
use crate::core::policy::Policy;

/// A forwarded TCP connection, offloaded.
fn forwarded() -> CtInfo {
    tcp("10.1.0.2", 40000, "10.2.0.2", 443)
}

#[test]
fn show_connections_prints_the_vendor_lines_with_cdx_s_remaining_time() {
    let mut bench = Bench::new();
    let policy = Policy { udp_policy: UdpPolicy::Confirmed, ..Policy::default() };
    bench.engine.set_policy(policy, bench.now);
    let host_terminated = tcp("10.1.0.2", 40001, "10.1.0.1", 22);
    let host_originated = tcp("10.2.0.1", 40002, "10.2.0.2", 80);
    let unreplied = udp_unreplied("10.1.0.2", 5353, "10.2.0.2", 53);
    let mut zoned = tcp("fd01::2", 40003, "fd02::2", 443);
    (zoned.key.zone, zoned.mark) = (7, 5);
    for ct in [forwarded(), host_terminated, host_originated, unreplied, zoned] {
        bench.event(&ct);
    }
    bench.advance(Duration::from_secs(10));
    assert_eq!(bench.engine.len(), 5, "the host's own connections are tracked");
    assert_eq!(bench.hardware.cts.len(), 3, "and never offloaded: {:?}", bench.hardware.cts);
    assert_eq!(
        bench.run_line("show connections"),
        text(&[
            "ipv4     2 tcp      6 431990 ESTABLISHED src=10.1.0.2 dst=10.2.0.2 sport=40000 dport=443 \
             src=10.2.0.2 dst=10.1.0.2 sport=443 dport=40000 [ASSURED] mark=0 use=1, Flags: 1, n_id: 1, \
             local-conn: no",
            "ipv4     2 tcp      6 0 ESTABLISHED src=10.1.0.2 dst=10.1.0.1 sport=40001 dport=22 \
             src=10.1.0.1 dst=10.1.0.2 sport=22 dport=40001 [ASSURED] mark=0 use=1, Flags: 200, n_id: 1, \
             local-conn: yes",
            "ipv4     2 tcp      6 0 ESTABLISHED src=10.2.0.1 dst=10.2.0.2 sport=40002 dport=80 \
             src=10.2.0.2 dst=10.2.0.1 sport=80 dport=40002 [ASSURED] mark=0 use=1, Flags: 100, n_id: 1, \
             local-conn: yes",
            "ipv4     2 udp      17 20 src=10.1.0.2 dst=10.2.0.2 sport=5353 dport=53 [UNREPLIED] \
             src=10.2.0.2 dst=10.1.0.2 sport=53 dport=5353 mark=0 use=1, Flags: 1, n_id: 1, local-conn: no",
            "ipv6     10 tcp      6 431990 ESTABLISHED src=fd01::2 dst=fd02::2 sport=40003 dport=443 \
             src=fd02::2 dst=fd01::2 sport=443 dport=40003 [ASSURED] mark=5 zone=7 use=1, Flags: 1, \
             n_id: 1, local-conn: no",
            "5 connections printed",
            "0 connections with > 1 ids",
        ])
    );
    // What the vendor does not print is in `detail`: the kernel's timeout, zone, id, state.
    let detail = bench.run_line("show connections detail port 22");
    assert_eq!(
        detail,
        text(&[
            "ipv4     2 tcp      6 431990 ESTABLISHED src=10.1.0.2 dst=10.1.0.1 sport=40001 dport=22 \
             src=10.1.0.1 dst=10.1.0.2 sport=22 dport=40001 [ASSURED] mark=0 zone=0 id=40001, \
             offload: local, routes: 0/0, hw-timeout: 0",
            "1 connections printed",
        ])
    );
    let [orig, reply] = bench.engine.flow(&forwarded().key).unwrap().hw_routes();
    assert_eq!(
        bench.run_line("show connections detail port 40000"),
        text(&[
            &format!(
                "ipv4     2 tcp      6 431990 ESTABLISHED src=10.1.0.2 dst=10.2.0.2 sport=40000 \
                 dport=443 src=10.2.0.2 dst=10.1.0.2 sport=443 dport=40000 [ASSURED] mark=0 zone=0 \
                 id=40000, offload: offloaded, routes: {orig}/{reply}, hw-timeout: 431990, \
                 in: eth0/eth1 (inferred), ports: eth0>eth1 eth1>eth0"
            ),
            "1 connections printed",
        ])
    );
    assert!(orig != 0 && reply != 0 && orig != reply);
}

#[test]
fn a_vendor_parser_reads_the_lines_key_by_key() {
    // What a script written for the vendor does with a line: split at ", " for cmm's fields,
    // then at blanks for libnetfilter_conntrack's.
    let mut bench = Bench::new();
    bench.event(&forwarded());
    let table = bench.run_line("show connections");
    let line = table.lines().next().unwrap();
    let (conntrack, fields) = line.split_once(", ").unwrap();
    let fields: Vec<(&str, &str)> =
        fields.split(", ").map(|f| f.split_once(": ").unwrap()).collect();
    assert_eq!(fields, [("Flags", "1"), ("n_id", "1"), ("local-conn", "no")]);
    let words: Vec<&str> = conntrack.split(' ').collect();
    assert_eq!(&words[..6], ["ipv4", "", "", "", "", "2"]);
    let keys: Vec<&str> = words.iter().filter_map(|w| w.split_once('=').map(|(k, _)| k)).collect();
    assert_eq!(
        keys,
        ["src", "dst", "sport", "dport", "src", "dst", "sport", "dport", "mark", "use"]
    );
}

#[test]
fn the_state_filter_selects_by_the_kernel_s_tcp_state() {
    let mut bench = Bench::new();
    bench.event(&forwarded());
    let out = bench.run_line("show connections state established");
    assert!(out.contains(" ESTABLISHED src=10.1.0.2 "), "{out}");
    assert!(out.ends_with("1 connections printed\n0 connections with > 1 ids\n"), "{out}");
    let out = bench.run_line("show connections state time_wait");
    assert_eq!(out, text(&["0 connections printed", "0 connections with > 1 ids"]));
}

#[test]
fn show_connections_local_lists_the_connections_of_the_host_itself() {
    let mut bench = Bench::new();
    let (host, forwarded) =
        (tcp("10.1.0.2", 40000, "10.1.0.1", 22), tcp("10.1.0.2", 40001, "10.2.0.2", 443));
    bench.event(&host);
    bench.event(&forwarded);
    let out = bench.run_line("show connections local");
    assert!(out.contains("sport=40000") && !out.contains("sport=40001"), "{out}");
    assert!(out.contains("1 connections printed"), "{out}");
    let out = bench.run_line("show connections local offloaded");
    assert!(out.contains("2 connections printed"), "either status matches: {out}");
    let out = bench.run_line("show connections pending");
    assert!(out.contains("0 connections printed"), "the host's own are not pending: {out}");
}

#[test]
fn every_tcp_state_name_is_one_word_of_the_filter() {
    for (state, name) in super::super::connections::TCP_STATE_NAMES {
        assert_eq!(tcp_state_of_word(&name.to_ascii_lowercase()), Some(state), "{name}");
        assert_eq!(tcp_state_name(state), name);
    }
    assert_eq!(tcp_state_name(TcpState::Other(42)), "NONE", "as libnetfilter_conntrack");
    assert_eq!(tcp_state_of_word("open"), None);
}

/// A forwarded IPv4 and IPv6 connection, and one through the router `10.2.0.254`.
fn three_paths() -> Bench {
    let mut bench = Bench::new();
    bench.event(&forwarded());
    bench.event(&tcp("fd01::2", 40003, "fd02::2", 443));
    bench.event(&tcp("10.1.0.2", 40005, "10.9.0.5", 443));
    assert_eq!(bench.hardware.cts.len(), 3);
    bench
}

#[test]
fn show_route_prints_answered_lookups_as_the_vendor() {
    let mut bench = Bench::new();
    assert_eq!(bench.run_line("show route"), text(&["IPv4 Route:", "IPv6 Route:"]));
    let mut bench = three_paths();
    assert_eq!(
        bench.run_line("show route"),
        text(&[
            "IPv4 Route:",
            "IIf: eth1, Mark: 00000000, Src: 10.2.0.2, Dst: 10.1.0.2 --> Gateway: 10.1.0.2, OIf: eth0, \
             PhysOif: eth0, Count: 1",
            "IIf: eth1, Mark: 00000000, Src: 10.9.0.5, Dst: 10.1.0.2 --> Gateway: 10.1.0.2, OIf: eth0, \
             PhysOif: eth0, Count: 1",
            "IIf: eth0, Mark: 00000000, Src: 10.1.0.2, Dst: 10.2.0.2 --> Gateway: 10.2.0.2, OIf: eth1, \
             PhysOif: eth1, Count: 1",
            "IIf: eth0, Mark: 00000000, Src: 10.1.0.2, Dst: 10.9.0.5 --> Gateway: 10.2.0.254, OIf: eth1, \
             PhysOif: eth1, Count: 1",
            "4 IPv4 Routes printed",
            "IPv6 Route:",
            "IIf: eth1, Mark: 00000000, Src: fd02::2, Dst: fd01::2 --> Gateway: fd01::2, Oif: eth0, \
             PhysOif: eth0, Count: 1",
            "IIf: eth0, Mark: 00000000, Src: fd01::2, Dst: fd02::2 --> Gateway: fd02::2, Oif: eth1, \
             PhysOif: eth1, Count: 1",
            "2 IPv6 Routes printed",
        ])
    );
    // A lookup without an answer is no route to the vendor; `detail` shows it.
    bench.event(&tcp("10.1.0.2", 40006, "10.7.0.1", 443));
    assert!(!bench.run_line("show route").contains("10.7.0.1"));
    let detail = bench.run_line("show route detail");
    assert!(
        detail.contains(
            "\nIIf: eth0, Mark: 00000000, Src: 10.1.0.2, Dst: 10.7.0.1 --> unreachable (errno 101), \
             Count: 1\n"
        ),
        "{detail}"
    );
    assert!(
        detail.contains(
            "\nIIf: eth0, Mark: 00000000, Src: 10.1.0.2, Dst: 10.9.0.5 --> Gateway: 10.2.0.254, \
             OIf: eth1, Mtu: 1500, Type: Unicast, Count: 1\n"
        ),
        "{detail}"
    );
    assert!(
        detail.contains(
            "\nIIf: (null), Mark: 00000000, Src: 0.0.0.0, Dst: 10.1.0.2 --> Gateway: -, OIf: eth0, \
             Mtu: 1500, Type: Unicast, Count: 3\n"
        ),
        "the host's own route towards the client, where a stock kernel's ingress comes from: {detail}"
    );
    assert!(detail.ends_with("3 IPv6 Routes printed\n"), "{detail}");
}

#[test]
fn show_neighbor_lists_every_neighbour_the_vendor_keeps() {
    let mut bench = three_paths();
    assert_eq!(
        bench.run_line("show neighbor"),
        text(&[
            "IPv4 ARP:",
            // Two reply routes lead to the client: one per server (the vendor's cache has a
            // route per source, too).
            "IP addr: 10.1.0.2 --> MAC addr: 02:00:00:00:00:12 If: eth0, Port:-1, state: 2, Count: 2",
            "IP addr: 10.2.0.2 --> MAC addr: 02:00:00:00:00:22 If: eth1, Port:-1, state: 4, Count: 1",
            "IP addr: 10.2.0.9 --> MAC addr: 00:00:00:00:00:00 If: eth1, Port:-1, state: 1, Count: 0",
            "IP addr: 10.2.0.254 --> MAC addr: 02:00:00:00:00:2f If: eth1, Port:-1, state: 2, Count: 1",
            "Total ARP Entries: 4",
            "IPv6 Neighbor:",
            "IP addr: fd01::2 --> MAC addr: 02:00:00:00:00:16 If: eth0, Port: -1, state: 2, Count: 1",
            "IP addr: fd02::2 --> MAC addr: 02:00:00:00:00:26 If: eth1, Port: -1, state: 8, Count: 1",
            "Total Neighbor Entries: 2",
        ])
    );
}

#[test]
fn show_fpp_route_prints_the_route_objects_as_the_vendor() {
    let mut bench = Bench::new();
    assert_eq!(bench.run_line("show fpp_route"), text(&["FPP Route:"]), "no trailer when empty");
    bench.event(&forwarded());
    bench.event(&tcp("10.1.0.2", 40005, "10.9.0.5", 443));
    let ids = |ct: &CtInfo| bench.engine.flow(&ct.key).unwrap().hw_routes();
    let ([a_orig, a_reply], [b_orig, b_reply]) =
        (ids(&forwarded()), ids(&tcp("10.1.0.2", 40005, "10.9.0.5", 443)));
    assert_eq!((a_orig, a_reply, b_orig, b_reply), (1, 2, 3, 2), "replies share one object");
    assert_eq!(
        bench.run_line("show fpp_route"),
        text(&[
            "FPP Route:",
            "OIf: eth1, Mtu: 1500, Mac: 02:00:00:00:00:22, Id: 1, Count: 1, Flags: 1",
            "OIf: eth0, Mtu: 1500, Mac: 02:00:00:00:00:12, Id: 2, Count: 2, Flags: 1",
            "OIf: eth1, Mtu: 1500, Mac: 02:00:00:00:00:2f, Id: 3, Count: 1, Flags: 1",
            "3 FPP Routes printed",
        ])
    );
    assert_eq!(
        bench.run_line("show fpp_route detail"),
        text(&[
            "FPP Route:",
            "OIf: eth1, IIf: eth0, Mtu: 1500, Mac: 02:00:00:00:00:22, Id: 1, Count: 1, State: Registered",
            "OIf: eth0, IIf: eth1, Mtu: 1500, Mac: 02:00:00:00:00:12, Id: 2, Count: 2, State: Registered",
            "OIf: eth1, IIf: eth0, Mtu: 1500, Mac: 02:00:00:00:00:2f, Id: 3, Count: 1, State: Registered",
            "3 FPP Routes printed",
        ])
    );
}

/// The vendor's lists of one `proto`/`port` section, newest first.
fn port_lists(name: &str, proto: &str, port: u16) -> Vec<String> {
    ["repl_dst", "repl_src", "orig_dst", "orig_src"]
        .iter()
        .flat_map(|position| {
            [
                format!("{name}:"),
                format!("\t{position}_port: {port} mask ffff"),
                format!("\tproto: {proto}  mask ff"),
            ]
        })
        .collect()
}

#[test]
fn show_rules_expands_a_port_into_the_vendor_s_four_lists() {
    let expected: Vec<String> = [
        port_lists("pptp", "tcp (6)", 1723),
        port_lists("sip", "udp (17)", 5060),
        port_lists("ftp", "tcp (6)", 21),
    ]
    .concat();
    let mut bench = Bench::new();
    bench.rules = config::OffloadConfig::default().deny_rules().cloned().collect();
    let expected_text: String = expected.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(bench.run_line("show rules"), expected_text, "the built-in rules");
    // The vendor's own file gives the same lists.
    let vendor = include_bytes!("../../../../../packaging/fastforward.vendor.orig");
    let file = config::parse_fastforward(Path::new("fastforward"), vendor).unwrap();
    assert_eq!(super::super::rules::lines(&file.rules), expected);
}

#[test]
fn show_rules_prints_every_field_in_the_vendor_s_shape() {
    let rule = config::ExcludeRule {
        name: "lan".into(),
        family: Some(config::Family::Ipv4),
        proto: Some(17),
        orig_dst_port: Some(53),
        reply_src: config::Cidr::parse("10.2.0.0/24"),
        mark: Some(config::MarkMatch { value: 0x8000_0000, mask: 0xff00_0000 }),
        zone: Some(3),
        ..config::ExcludeRule::default()
    };
    let six = config::ExcludeRule {
        name: "six".into(),
        proto: Some(47),
        addr: config::Cidr::parse("2001:db8::1"),
        ..config::ExcludeRule::default()
    };
    assert_eq!(
        super::super::rules::lines(&[rule, six]),
        [
            "six:",
            "\trepl_dst_ipv6: 2001:db8::1 mask ffffffff",
            "\tproto: unknown (47) mask ff",
            "six:",
            "\trepl_src_ipv6: 2001:db8::1 mask ffffffff",
            "\tproto: unknown (47) mask ff",
            "six:",
            "\torig_dst_ipv6: 2001:db8::1 mask ffffffff",
            "\tproto: unknown (47) mask ff",
            "six:",
            "\torig_src_ipv6: 2001:db8::1 mask ffffffff",
            "\tproto: unknown (47) mask ff",
            "lan:",
            "\tzone: 3",
            "\tmark: -2147483648 mask ff000000",
            "\trepl_src_ipv4: 10.2.0.0 mask ffffff00",
            "\torig_dst_port: 53 mask ffff",
            "\tproto: udp (17)  mask ff",
            "\tl3 proto: ipv4 (2)  mask ff",
        ]
    );
}
