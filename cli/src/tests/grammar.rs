//! The command table, libcli's word resolution and errors, quoting and completion candidates.

use std::net::IpAddr;

use crate::command::{
    Action, Builtin, COMMANDS, Command, CommandSpec, ConnectionFilter, DebugCategory, FlowTuple,
    Origin, Privilege, Shape, SimFault, SimFlowMatch, StateWord, ValueKind, word_help,
};
use crate::complete::{Completion, TabAction, complete, help_lines, tab};
use crate::grammar::{ParseError, parse_line};
use crate::lexer::lex;

fn everything(_: &CommandSpec) -> bool {
    true
}

fn unprivileged(spec: &CommandSpec) -> bool {
    spec.privilege == Privilege::Unprivileged
}

fn action(line: &str) -> Action {
    match parse_line(line, &everything) {
        Ok(Some(parsed)) => parsed.action,
        other => panic!("{line:?} gave {other:?}"),
    }
}

fn command(line: &str) -> Command {
    match action(line) {
        Action::Run(command) => command,
        other => panic!("{line:?} is {other:?}"),
    }
}

fn error_as(line: &str, visible: &dyn Fn(&CommandSpec) -> bool) -> String {
    match parse_line(line, visible) {
        Err(error) => error.to_string(),
        Ok(parsed) => panic!("{line:?} parsed: {parsed:?}"),
    }
}

fn error(line: &str) -> String {
    error_as(line, &everything)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn lexing_follows_libcli() {
    let words = |line: &str| lex(line).words;
    assert_eq!(words("  show   conn  "), ["show", "conn"]);
    // A quote ends the word before it; the closing quote ends the quoted word.
    assert_eq!(words(r#"a "b c" 'd "e"' f"g h"i"#), ["a", "b c", "d \"e\"", "f", "g h", "i"]);
    // A backslash escapes anything and is removed, quoted or not.
    assert_eq!(words(r#""a \"q\" \\ w" a\ b \|"#), [r#"a "q" \ w"#, "a b", "|"]);
    assert_eq!(words("show conn|count"), ["show", "conn", "|", "count"]);
    assert_eq!(words(r#"include "a|b""#), ["include", "a|b"]);
    assert_eq!(words(r#""""#), [""]);
    assert_eq!(words("| include x"), ["", "|", "include", "x"], "libcli's empty first word");
    let open = lex("show \"open");
    assert!(open.open_quote);
    assert_eq!(open.words, ["show", "open"], "an open quote runs to the end");
    assert!(lex("show co").ends_in_word);
    assert!(!lex("show ").ends_in_word);
    assert_eq!(lex(&"w ".repeat(200)).words.len(), 127, "libcli's word limit");
}

fn owned(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

#[test]
fn every_implemented_vendor_command_parses() {
    assert_eq!(command("show connections"), Command::ShowConnections(ConnectionFilter::default()));
    assert_eq!(command("show counters"), Command::ShowCounters);
    assert_eq!(command("show activate"), Command::ShowActivate);
    assert_eq!(command("set activate 0"), Command::SetActivate(false));
    assert_eq!(command("set activate 1"), Command::SetActivate(true));
    assert_eq!(command("show debug_level"), Command::ShowDebugLevel);
    assert_eq!(
        command("set debug info 1"),
        Command::SetDebug { category: DebugCategory::Info, enabled: true }
    );
    assert_eq!(command("show rules"), Command::ShowRules);
    assert_eq!(command("show route"), Command::ShowRoute);
    assert_eq!(command("show neighbor"), Command::ShowNeighbor);
    assert_eq!(command("show fpp_route"), Command::ShowFppRoute);
    assert_eq!(command("show config"), Command::ShowConfig);
    assert_eq!(command("show version"), Command::ShowVersion);
    assert_eq!(command("show status"), Command::ShowStatus);
    assert_eq!(command("query connections"), Command::QueryConnections);
    assert_eq!(command("query v6connections"), Command::QueryV6Connections);
    assert_eq!(command("query route"), Command::QueryRoute);
    assert_eq!(
        command("set timeout udp 180 30"),
        Command::SetTimeout(owned(&["udp", "180", "30"]))
    );
    assert_eq!(command("set timeout"), Command::SetTimeout(Vec::new()));
    assert_eq!(command("set ff disable"), Command::SetFastForward(owned(&["disable"])));
    assert_eq!(
        command("show stat connection query"),
        Command::ShowStat(owned(&["connection", "query"]))
    );
    assert_eq!(
        command("show connections detail proto tcp"),
        Command::ShowConnectionsDetail(ConnectionFilter {
            protocol: Some(6),
            ..ConnectionFilter::default()
        })
    );
    assert_eq!(command("sh conn det"), Command::ShowConnectionsDetail(ConnectionFilter::default()));
    assert_eq!(command("show route detail"), Command::ShowRouteDetail);
    assert_eq!(command("show fpp_route detail"), Command::ShowFppRouteDetail);
    assert_eq!(command("stop"), Command::Stop);
    assert_eq!(command("show sim"), Command::ShowSim);
    assert_eq!(command("show vlan"), Command::ShowVlan);
    assert_eq!(command("vlan show"), Command::ShowVlan);
    assert_eq!(command("show pppoe"), Command::ShowPppoe);
    assert_eq!(command("query vlan"), Command::QueryVlan);
    assert_eq!(command("query pppoe"), Command::QueryPppoe);
    assert_eq!(command("vlan add eth1.100"), Command::VlanAdd("eth1.100".into()));
    assert_eq!(command("vlan delete eth1.100"), Command::VlanDelete("eth1.100".into()));
    assert_eq!(action("help"), Action::Builtin(Builtin::Help));
    assert_eq!(action("logout"), Action::Builtin(Builtin::Quit));
    assert_eq!(action("history"), Action::Builtin(Builtin::History));
}

#[test]
fn vendor_commands_cmmd_does_not_implement_are_known() {
    for line in [
        "show macvlan",
        "query macvlan",
        "query ipr4stats",
        "query tunnels",
        "query sa",
        "set stat enable",
        "set route x",
        "set bridge",
        "ipv4 update 1 2 3",
        "ipv6",
        "ipv4 anything",
        "prf trace start",
        "icc query",
        "configure terminal",
    ] {
        assert_eq!(action(line), Action::NotSupported, "{line}");
    }
    let spec = |line: &str| parse_line(line, &everything).unwrap().unwrap().spec;
    assert_eq!(spec("prf busycpu").usage, Some("Usage: prf busycpu {start|stop} [weight_factor]"));
    assert_eq!(spec("show macvlan").usage, None);
    assert!(COMMANDS.iter().filter(|s| s.origin == Origin::Vendor).count() > 90);
}

#[test]
fn sim_commands_parse() {
    assert_eq!(command("sim activate all"), Command::SimActivate(SimFlowMatch::All));
    assert_eq!(
        command("sim activate udp 10.0.0.1 2001:db8::2 5353 53"),
        Command::SimActivate(SimFlowMatch::Tuple(FlowTuple {
            protocol: 17,
            source: ip("10.0.0.1"),
            destination: ip("2001:db8::2"),
            source_port: 5353,
            destination_port: 53,
        }))
    );
    // A literal word wins over an argument: `a` abbreviates `all`.
    assert_eq!(command("sim act a"), Command::SimActivate(SimFlowMatch::All));
    assert_eq!(
        command("sim fault error 100 fcode 0x0314 count 2"),
        Command::SimFault(SimFault::ErrorCode { rc: 100, fcode: Some(0x0314), count: Some(2) })
    );
    assert_eq!(
        command("sim fault error 4"),
        Command::SimFault(SimFault::ErrorCode { rc: 4, fcode: None, count: None })
    );
    assert_eq!(command("sim fault drop"), Command::SimFault(SimFault::DropReply { count: None }));
    assert_eq!(
        command("sim fault delay 250 c 3"),
        Command::SimFault(SimFault::Delay { milliseconds: 250, count: Some(3) })
    );
    assert_eq!(
        command("sim fault eio count 1"),
        Command::SimFault(SimFault::Eio { count: Some(1) })
    );
    assert_eq!(
        command("sim fault capacity 16"),
        Command::SimFault(SimFault::Capacity { pairs: 16 })
    );
    assert_eq!(command("sim fault removed"), Command::SimFault(SimFault::SpuriousRemoved));
    assert_eq!(command("sim fault clear"), Command::SimFault(SimFault::Clear));
    assert_eq!(command("sim fault flowtable"), Command::SimFault(SimFault::OffloadOwnerFlowtable));
}

#[test]
fn connection_filters_combine_in_any_order() {
    assert_eq!(
        command("sh conn local port 443 offl addr 10.1.2.3 state est proto tcp"),
        Command::ShowConnections(ConnectionFilter {
            protocol: Some(6),
            state: Some(StateWord::from_keyword("established").unwrap()),
            address: Some(ip("10.1.2.3")),
            port: Some(443),
            offloaded: true,
            pending: false,
            refused: false,
            local: true,
        })
    );
    assert_eq!(
        command("show connections proto 132 pending refused"),
        Command::ShowConnections(ConnectionFilter {
            protocol: Some(132),
            pending: true,
            refused: true,
            ..ConnectionFilter::default()
        })
    );
    // `close` is exact even though it also abbreviates `close_wait`.
    assert_eq!(
        command("show connections state CLOSE"),
        Command::ShowConnections(ConnectionFilter {
            state: StateWord::from_keyword("close"),
            ..ConnectionFilter::default()
        })
    );
    // A vendor command: what it does not read is ignored.
    assert_eq!(
        command("show connections proto tcp proto udp"),
        Command::ShowConnections(ConnectionFilter {
            protocol: Some(6),
            ..ConnectionFilter::default()
        })
    );
    assert_eq!(error("show connections proto"), "% Incomplete command: missing proto <protocol>");
    assert_eq!(
        error("show connections addr 10.0.0"),
        "% Invalid value for addr: \"10.0.0\" (expected an IPv4 or IPv6 address)"
    );
    assert_eq!(
        error("show connections state syn"),
        "% Invalid value for state: \"syn\" (expected one of syn_sent, syn_recv, syn_sent2)"
    );
    assert_eq!(
        error("show connections proto gre"),
        "% Invalid value for proto: \"gre\" (expected tcp, udp, icmp, icmpv6 or a number in 0..=255)"
    );
}

#[test]
fn words_resolve_like_libcli() {
    // Unique prefixes among the vendor's words, case-insensitive; cmmd's additions do not make
    // a vendor abbreviation ambiguous.
    assert_eq!(command("sh act"), Command::ShowActivate);
    assert_eq!(command("SHOW ACTIVATE"), Command::ShowActivate);
    assert_eq!(command("sh c"), command("show connections"), "`config`/`counters` are cmmd's");
    assert_eq!(command("sh conf"), Command::ShowConfig);
    assert_eq!(command("sh cou"), Command::ShowCounters);
    assert_eq!(command("sh ro"), Command::ShowRoute);
    assert_eq!(command("sh ru"), Command::ShowRules);
    assert_eq!(command("que con"), Command::QueryConnections, "quit/query: the vendor needs `que`");
    assert_eq!(command("st"), Command::Stop);
    // The whole word always names its command, even when a longer one shares it (`sa`).
    assert_eq!(action("show sa"), Action::NotSupported);
    // Too short for the vendor too.
    assert_eq!(error("s"), "Invalid command \"s\"");
    assert_eq!(error("qu"), "Invalid command \"qu\"");
    assert_eq!(error("show a"), "Invalid command \"show a\"");
    assert_eq!(error("sh s"), "Invalid command \"show s\"");
    assert_eq!(error("show foo"), "Invalid command \"show foo\"");
    assert_eq!(error("sh fooo bar"), "Invalid command \"show fooo\"");
    assert_eq!(error("prf trace bogus"), "Invalid command \"prf trace bogus\"");
    assert_eq!(error("frobnicate"), "Invalid command \"frobnicate\"");
    assert_eq!(error("| include x"), "Invalid command \"\"");
    assert_eq!(error("show"), "Incomplete command");
    assert_eq!(error("prf trace"), "Incomplete command");
    assert_eq!(error("show version |"), "Empty command given");
    assert_eq!(error("show version | bogus"), "Invalid command \"bogus\"");
    assert!(parse_line("", &everything).unwrap().is_none());
    assert!(parse_line("   ", &everything).unwrap().is_none());
}

#[test]
fn privileged_commands_are_invisible_at_the_unprivileged_prompt() {
    assert_eq!(error_as("stop", &unprivileged), "Invalid command \"stop\"");
    assert_eq!(error_as("set activate 1", &unprivileged), "Invalid command \"set activate\"");
    assert_eq!(error_as("st", &unprivileged), "Invalid command \"st\"");
    assert_eq!(error_as("disable", &unprivileged), "Invalid command \"disable\"");
    // `set ff` is unprivileged at the vendor.
    assert!(parse_line("set ff enable", &unprivileged).is_ok());
}

#[test]
fn vendor_commands_ignore_extra_words_and_answer_bad_arguments_with_their_usage() {
    assert_eq!(command("show activate   extra words"), Command::ShowActivate);
    assert_eq!(
        command("show connections ?x"),
        Command::ShowConnections(ConnectionFilter::default())
    );
    assert_eq!(command("set activate 1 2"), Command::SetActivate(true));
    assert_eq!(action("quit now"), Action::Builtin(Builtin::Quit));
    assert_eq!(error("set activate"), "Usage: activate <0 1>");
    assert_eq!(error("set activate x"), "Usage: activate <0 1>");
    assert_eq!(error("set debug info"), "Usage: set debug <command error warning info> <0 1>");
    assert_eq!(error("set debug bogus 1"), "Usage: set debug <command error warning info> <0 1>");
    // Handlers that read their own words (their messages are the daemon's): anything parses.
    assert_eq!(
        command("set timeout tcp x y z w"),
        Command::SetTimeout(owned(&["tcp", "x", "y", "z", "w"]))
    );
    // cmmd's own commands keep their precise messages, marked `% `.
    assert_eq!(error("sim fault capacity"), "% Incomplete command: missing <pairs>");
    assert_eq!(
        error("sim fault capacity x"),
        "% Invalid value for <pairs>: \"x\" (expected an integer in 0..=4294967295)"
    );
    assert_eq!(error("sim fault capacity 1 2"), "% Unexpected argument: \"2\"");
    assert_eq!(error("vlan add sixteen-chars-xx"), "Usage: vlan add ifname.vlanid");
    assert_eq!(error("vlan delete"), "Usage: vlan delete ifname.vlanid");
    assert_eq!(
        error("show connections port 70000"),
        "% Invalid value for port: \"70000\" (expected an integer in 0..=65535)"
    );
    assert_eq!(
        ParseError::Usage("Usage: a\nb").to_string().lines().collect::<Vec<_>>(),
        ["Usage: a", "b"]
    );
}

/// A token that validates for a kind.
fn sample(kind: ValueKind) -> String {
    match kind {
        ValueKind::Keyword(words) => words.last().unwrap().to_string(),
        ValueKind::Switch => "1".to_owned(),
        ValueKind::Integer { min, .. } => min.to_string(),
        ValueKind::Protocol => "udp".to_owned(),
        ValueKind::Address => "192.0.2.1".to_owned(),
        ValueKind::Interface => "eth1.100".to_owned(),
    }
}

fn sample_line(spec: &CommandSpec, all: bool) -> String {
    let mut line = spec.words.join(" ");
    for param in spec.params {
        match param.shape {
            Shape::Required(kind) => line.push_str(&format!(" {}", sample(kind))),
            Shape::Optional(kind) if all => line.push_str(&format!(" {}", sample(kind))),
            Shape::Named(kind) if all => {
                line.push_str(&format!(" {} {}", param.name, sample(kind)))
            }
            Shape::Flag if all => line.push_str(&format!(" {}", param.name)),
            _ => {}
        }
    }
    line
}

#[test]
fn every_table_entry_is_reachable_and_builds() {
    for spec in COMMANDS {
        for all in [false, true] {
            let line = sample_line(spec, all);
            let parsed = parse_line(&line, &everything)
                .unwrap_or_else(|error| panic!("{line:?}: {error}"))
                .unwrap();
            assert_eq!(parsed.spec.words, spec.words, "{line:?}");
        }
    }
}

#[test]
fn table_invariants() {
    for (index, spec) in COMMANDS.iter().enumerate() {
        assert!(spec.is_vendor() || !spec.help.is_empty(), "{:?} has no help", spec.words);
        assert!(
            COMMANDS.iter().skip(index + 1).all(|other| other.words != spec.words),
            "{:?} is defined twice",
            spec.words
        );
        if !spec.is_vendor() {
            assert!(!word_help(spec.words).is_empty(), "{:?}", spec.words);
        }
        let order: Vec<u8> = spec
            .params
            .iter()
            .map(|param| match param.shape {
                Shape::Required(_) => 0,
                Shape::Optional(_) => 1,
                Shape::Named(_) | Shape::Flag => 2,
                Shape::Words => 3,
            })
            .collect();
        assert!(order.is_sorted(), "{:?} has parameters out of order", spec.words);
    }
    // The vendor's order: libcli's built-ins, then cmm's registrations; cmmd's after them.
    let top: Vec<&str> = crate::grammar::choices_at(&COMMANDS.iter().collect::<Vec<_>>(), 0)
        .iter()
        .map(|choice| choice.word)
        .collect();
    assert_eq!(
        top,
        [
            "help",
            "quit",
            "logout",
            "exit",
            "history",
            "enable",
            "disable",
            "configure",
            "show",
            "query",
            "set",
            "ipv4",
            "ipv6",
            "stop",
            "prf",
            "mspmem",
            "vlan",
            "pktcapture",
            "icc",
            "sim"
        ]
    );
}

fn labels(completion: &Completion) -> Vec<&str> {
    completion.candidates.iter().map(|candidate| candidate.label.as_str()).collect()
}

#[test]
fn candidates_follow_the_table_order() {
    let show = complete("show ", &everything);
    assert_eq!(show.partial, "");
    assert_eq!(&labels(&show)[..4], ["connections", "fpp_route", "route", "neighbor"]);
    assert_eq!(labels(&show).last(), Some(&"sim"));
    assert_eq!(labels(&complete("sh", &everything)), ["show"]);
    assert_eq!(labels(&complete("show co", &everything)), ["connections", "counters", "config"]);
    assert_eq!(labels(&complete("SHOW VER", &everything)), ["version"]);
    assert_eq!(
        labels(&complete("set ", &unprivileged)),
        [
            "ff",
            "expt_queue",
            "socket",
            "socket6",
            "rtp",
            "natpt",
            "sa_query_timer",
            "config",
            "bridge",
            "asym_fastforward",
            "4rd-id-conversion"
        ]
    );
    assert_eq!(labels(&complete("sim fault capacity ", &everything)), ["<pairs>"]);
    assert_eq!(labels(&complete("sim fault delay 10 ", &everything)), ["[count]", "<cr>"]);
    assert_eq!(labels(&complete("show activate ", &everything)), ["<cr>"]);
    assert_eq!(
        labels(&complete("show version | ", &everything)),
        ["begin", "between", "count", "exclude", "include", "grep", "egrep"]
    );
    assert_eq!(labels(&complete("show version | e", &everything)), ["exclude", "egrep"]);
    assert_eq!(labels(&complete("show version | inc ", &everything)), ["<search_pattern>"]);
    assert_eq!(
        labels(&complete("show version | grep ", &everything)),
        ["[search_flags]", "<search_pattern>"]
    );
    assert_eq!(labels(&complete("show version | between a ", &everything)), ["<range_end>"]);
    assert_eq!(labels(&complete("show version | count ", &everything)), ["<cr>"]);
    assert!(complete("show \"open", &everything).candidates.is_empty());
}

#[test]
fn help_lines_are_laid_out_as_libcli_does() {
    assert_eq!(help_lines("  show", ""), ["  show                 "]);
    assert_eq!(
        help_lines("  connections", "Show the table of fast forwarded connections"),
        ["  connections          Show the table of fast forwarded connections"]
    );
    // Wrapped at 80 columns on a blank, continued under the help column.
    assert_eq!(
        help_lines(
            "  fpp_route",
            "Show the fpp route entries used by the fast forwarded connections"
        ),
        [
            "  fpp_route            Show the fpp route entries used by the fast forwarded",
            "                       connections"
        ]
    );
    // A label longer than the column stands alone.
    assert_eq!(
        help_lines("  asym_fastforward_and_more", "Help"),
        ["  asym_fastforward_and_more", "                       Help"]
    );
}

#[test]
fn tab_completes_unique_words_and_common_prefixes() {
    let first = |text: &str| tab(&complete(text, &everything), false);
    let replace = |text: &str| match first(text) {
        TabAction::Replace(text) => text,
        other => panic!("{other:?}"),
    };
    // libcli replaces the typed part with the whole word, or with the common prefix.
    assert_eq!(replace("sh"), "show ");
    assert_eq!(replace("SH"), "show ");
    assert_eq!(replace("show fpp"), "fpp_route ");
    assert_eq!(replace("show asym"), "asym_f");
    assert_eq!(replace("show a"), "a");
    assert_eq!(replace("show version | inc"), "include ");
    // No common prefix: the bell; a second TAB lists.
    assert_eq!(first("show "), TabAction::Bell);
    assert_eq!(
        tab(&complete("show a", &everything), true),
        TabAction::List(vec!["activate".into(), "asym_fastforward".into(), "asym_ff_rules".into()])
    );
    // An argument name alone is not written; optional ones are not extended.
    assert_eq!(first("sim fault capacity "), TabAction::Wait);
    assert_eq!(first("sim fault error 1 "), TabAction::Bell);
    assert_eq!(first("bogus "), TabAction::Nothing);
}
