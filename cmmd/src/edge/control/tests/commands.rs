//! The commands answered by the hardware (`query …`, `show stat`, `set ff`), `set timeout`
//! and the debug categories: their vendor output and what they change.

use super::*;
use crate::edge::telemetry::DebugLevels;

#[test]
fn query_walks_print_the_vendor_layout_and_its_empty_table_errors() {
    let mut bench = Bench::new();
    assert_eq!(
        bench.run_line("query connections"),
        text(&["ERROR: FPP IPV4 CONNTRACK table empty"])
    );
    assert_eq!(
        bench.run_line("query v6connections"),
        text(&["ERROR: FPP IPV6 CONNTRACK table empty"])
    );
    assert_eq!(bench.run_line("query route"), text(&["ERROR: FPP IP ROUTE table empty"]));
    bench.event(&tcp("10.1.0.2", 40000, "10.2.0.2", 443));
    bench.event(&tcp("fd01::2", 40003, "fd02::2", 443));
    assert_eq!(
        bench.run_line("query connections"),
        text(&[
            "IPv4 Connections:",
            "0000: protocol=6, fwmark=0x0",
            "  Init:  Saddr=10.1.0.2, Daddr=10.2.0.2, Sport=40000, Dport=443",
            "  Reply: Saddr=10.2.0.2, Daddr=10.1.0.2, Sport=443, Dport=40000",
            "Total Connection Entries: 1",
        ])
    );
    assert_eq!(
        bench.run_line("query v6connections"),
        text(&[
            "IPv6 Connections:",
            "0000: protocol=6, fwmark=0x0",
            "  Init:  Saddr=fd01::2, Daddr=fd02::2, Sport=40003, Dport=443",
            "  Reply: Saddr=fd02::2, Daddr=fd01::2, Sport=443, Dport=40003",
            "Total Connection Entries: 1",
        ])
    );
    assert_eq!(
        bench.run_line("query route"),
        text(&[
            "IP ROUTE:",
            "0000: Id: 1, Output Iface: eth1, Input Iface: eth0, DST Mac: 02:00:00:00:00:22, Mtu: 1500 Daddr: NULL",
            "0001: Id: 2, Output Iface: eth0, Input Iface: eth1, DST Mac: 02:00:00:00:00:12, Mtu: 1500 Daddr: NULL",
            "0002: Id: 3, Output Iface: eth1, Input Iface: eth0, DST Mac: 02:00:00:00:00:26, Mtu: 1500 Daddr: NULL",
            "0003: Id: 4, Output Iface: eth0, Input Iface: eth1, DST Mac: 02:00:00:00:00:16, Mtu: 1500 Daddr: NULL",
            "Total FPP Route Entries: 4",
        ])
    );
    bench.failure = Some(HwFailure::Rejected(4));
    assert_eq!(
        bench.run_line("query connections"),
        text(&["ERROR: Unexpected result returned from FPP rc:4"])
    );
    bench.failure = Some(HwFailure::Timeout);
    assert_eq!(
        bench.run_line("query route"),
        text(&["ERROR: Unexpected result returned from FPP rc:0"])
    );
}

/// The vendor's `show stat` usage with the fast-path ports of the bench.
fn stat_usage() -> Vec<&'static str> {
    vec![
        "Usage:        show stat interface {eth0|eth1} query|query_reset",
        "       show stat vlan query|query_reset",
        "       show stat connection query",
        "       show stat pppoe query|query_reset",
        "       show stat bridge query|query_reset",
        "       show stat tunnel [name {tnl-name}] query|query_reset",
        "       show stat ipsec query|query_reset",
    ]
}

#[test]
fn show_stat_reads_its_words_as_the_vendor_and_counts_what_cdx_holds() {
    let mut bench = Bench::new();
    for line in
        ["show stat", "show stat connection", "show stat interface eth9 query", "show stat ipsec x"]
    {
        assert_eq!(bench.run_line(line), text(&stat_usage()), "{line}");
    }
    let mut unknown = vec!["ERROR: Unknown keyword queue"];
    unknown.extend(stat_usage());
    assert_eq!(bench.run_line("show stat queue 1 interface eth0 query"), text(&unknown));
    unknown[0] = "ERROR: Unknown keyword query_reset";
    assert_eq!(bench.run_line("show stat connection query_reset"), text(&unknown));
    assert_eq!(
        bench.run_line("show stat interface eth0 query"),
        "% \"show stat interface\" is not supported by cmmd\n"
    );
    assert_eq!(
        bench.run_line("show stat tunnel name t0 query_reset"),
        "% \"show stat tunnel\" is not supported by cmmd\n"
    );
    bench.event(&tcp("10.1.0.2", 40000, "10.2.0.2", 443));
    bench.event(&tcp("fd01::2", 40003, "fd02::2", 443));
    assert_eq!(
        bench.run_line("show stat CONNECTION query"),
        text(&["Maximum Active Connections: 131072 ", "Number of Active Connections: 2 "])
    );
    assert_eq!(bench.hardware.sent.last(), Some(&HwOp::Walk), "the count is cdx's");
    bench.failure = Some(HwFailure::Rejected(0x44c));
    assert_eq!(
        bench.run_line("show stat connection query"),
        text(&["ERROR: Unexpected returned result from FPP rc:044c"])
    );
}

#[test]
fn set_ff_sends_ff_control_once_per_change_and_prints_at_the_error_level() {
    let mut bench = Bench::new();
    let sent = |bench: &Bench| {
        bench.hardware.sent.iter().filter(|op| matches!(op, HwOp::FastForward(_))).count()
    };
    assert_eq!(bench.run_line("set ff"), text(&["Usage: set ff <enable disable>"]));
    assert_eq!(bench.run_line("set ff on"), text(&["Usage: set ff <enable disable>"]));
    assert_eq!(bench.run_line("set ff enable"), text(&["Fast-forward is already enabled"]));
    assert_eq!(sent(&bench), 0, "cdx starts enabled");
    assert_eq!(bench.run_line("set ff DISABLE"), text(&["Fast-forward is disabled"]));
    assert_eq!(bench.hardware.sent.last(), Some(&HwOp::FastForward(false)));
    assert_eq!(bench.run_line("set ff disable"), text(&["Fast-forward is already disabled"]));
    bench.failure = Some(HwFailure::Rejected(3));
    assert_eq!(
        bench.run_line("set ff enable"),
        text(&["Error 3 while trying to enable fast-forward"])
    );
    assert!(!bench.state.fast_forward, "a refusal changes nothing");
    bench.failure = None;
    // At `set debug error 0` the vendor prints none of it.
    assert_eq!(bench.run_line("set debug error 0"), "");
    assert_eq!(bench.run_line("set ff enable"), "");
    assert!(bench.state.fast_forward);
    assert_eq!(bench.run_line("set ff bogus"), "");
    assert_eq!(sent(&bench), 2, "disable, then enable (the refused one never reached it)");
}

#[test]
fn set_timeout_reads_its_words_as_the_vendor() {
    const USAGE: &str = "Usage: set timeout <udp tcp other> value [value2] [4rd]";
    let mut bench = Bench::new();
    for (line, reply) in [
        ("set timeout", text(&[USAGE])),
        ("set timeout tcp", text(&[USAGE])),
        ("set timeout tcp 1 2 3 4", text(&[USAGE])),
        ("set timeout icmp 10", text(&[USAGE])),
        ("set timeout tcpx 10", text(&[USAGE])),
        ("set timeout tcp 4294967295", text(&[USAGE])),
        ("set timeout tcp abc", text(&["timeout value should be numeric string "])),
        ("set timeout tcp 12345678901", text(&["Too big string for timeout value"])),
        ("set timeout tcp 0", String::new()),
        ("set timeout udp 10 0", String::new()),
        (
            "set timeout udp 60 4rd",
            "% \"set timeout … 4rd\" is not supported by cmmd (it offloads no 4rd tunnel)\n"
                .to_owned(),
        ),
    ] {
        assert_eq!(bench.run_line(line), reply, "{line}");
    }
    let before = bench.engine.config().hw_timeouts;
    assert_eq!(before.tcp, 432_000, "nothing above changed the timeouts");
    assert_eq!(bench.run_line("set timeout t 100"), "");
    assert_eq!(bench.run_line("set timeout u 60 20"), "");
    assert_eq!(bench.run_line("set timeout other 0300"), "");
    let after = bench.engine.config().hw_timeouts;
    assert_eq!((after.tcp, after.udp, after.udp_unidir, after.other), (100, 60, 20, 300));
    assert!(
        bench.hardware.sent.contains(&HwOp::SetTimeout { proto: 6, seconds: 100, unidir: 0 }),
        "{:?}",
        bench.hardware.sent
    );
    assert_eq!(bench.run_line("set timeout udp 90"), "");
    assert_eq!(bench.engine.config().hw_timeouts.udp_unidir, 90, "value2 absent: the same");
}

#[test]
fn the_debug_categories_start_as_the_vendor_s_and_raise_the_log_filter() {
    let mut bench = Bench::new();
    assert_eq!(
        bench.run_line("show debug_level"),
        "command:\tnot printed\nerror:  \tprinted\nwarning:\tnot printed\ninfo:   \tnot printed\n"
    );
    assert_eq!(bench.run_line("set debug command 1"), "");
    assert_eq!(bench.run_line("set debug warning 1"), "");
    assert_eq!(
        bench.run_line("show debug_level"),
        "command:\tprinted\nerror:  \tprinted\nwarning:\tprinted\ninfo:   \tnot printed\n"
    );
    let vendor = VENDOR_DEBUG_LEVEL;
    let all = DebugLevels { command: true, error: true, warning: true, info: true };
    for (configured, categories, filter) in [
        ("info", vendor, "info"),
        ("warn", vendor, "warn"),
        ("warn", all, "info,cmmd::offload=debug"),
        (
            "error,cmmd::engine=debug",
            DebugLevels { info: true, ..vendor },
            "info,cmmd::engine=debug",
        ),
        ("debug", all, "debug,cmmd::offload=debug"),
        ("info,cmmd::offload=debug", all, "info,cmmd::offload=debug"),
        ("cmmd=debug", DebugLevels { warning: true, ..vendor }, "warn,cmmd=debug"),
        ("off", DebugLevels::default(), "off"),
    ] {
        assert_eq!(effective_filter(configured, categories), filter, "{configured} {categories:?}");
    }
}
