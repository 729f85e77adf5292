//! The command table, parsing, abbreviations, quoting and completion candidates.

use std::net::IpAddr;

use crate::command::{
    Action, Builtin, COMMANDS, Command, CommandSpec, ConnectionFilter, DebugCategory, FlowTuple,
    Privilege, Shape, SimFault, SimFlowMatch, TcpState, TimeoutClass, ValueKind, word_help,
};
use crate::grammar::{Completion, ParseError, TabAction, Token, complete, lex, parse_line, tab};

fn command(line: &str) -> Command {
    match parse_line(line) {
        Ok(Some(parsed)) => match parsed.action {
            Action::Run(command) => command,
            Action::Builtin(builtin) => panic!("{line:?} is the builtin {builtin:?}"),
        },
        other => panic!("{line:?} gave {other:?}"),
    }
}

fn error(line: &str) -> String {
    match parse_line(line) {
        Err(error) => error.to_string(),
        Ok(parsed) => panic!("{line:?} parsed: {parsed:?}"),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn lexing_words_quotes_and_pipes() {
    let words = |line: &str| lex(line).tokens;
    let w = |text: &str| Token::Word(text.to_owned());
    assert_eq!(words("  show   conn  "), [w("show"), w("conn")]);
    assert_eq!(words(r#"a "b c" 'd "e"' f"g h"i"#), [w("a"), w("b c"), w("d \"e\""), w("fg hi")]);
    assert_eq!(words(r#""a \"quoted\" \\ word" \x"#), [w(r#"a "quoted" \ word"#), w(r"\x")]);
    assert_eq!(words("show conn|count"), [w("show"), w("conn"), Token::Pipe, w("count")]);
    assert_eq!(words(r#"include "a|b""#), [w("include"), w("a|b")]);
    assert_eq!(words(r#""""#), [w("")]);
    let lexed = lex("show \"open");
    assert!(lexed.open_quote);
    assert!(lex("show co").ends_in_word);
    assert!(!lex("show ").ends_in_word);
}

#[test]
fn every_vendor_command_parses() {
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
        Command::SetTimeout { class: TimeoutClass::Udp, seconds: 180, unidirectional: Some(30) }
    );
    assert_eq!(
        command("set timeout tcp 0x10"),
        Command::SetTimeout { class: TimeoutClass::Tcp, seconds: 16, unidirectional: None }
    );
    assert_eq!(command("stop"), Command::Stop);
    assert_eq!(command("show sim"), Command::ShowSim);
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
}

#[test]
fn connection_filters_combine_in_any_order() {
    assert_eq!(
        command("sh conn local port 443 offl addr 10.1.2.3 state est proto tcp"),
        Command::ShowConnections(ConnectionFilter {
            protocol: Some(6),
            state: Some(TcpState::Established),
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
            state: Some(TcpState::Close),
            ..ConnectionFilter::default()
        })
    );
    assert_eq!(error("show connections proto tcp proto udp"), "Unexpected argument: \"proto\"");
    assert_eq!(error("show connections proto"), "Incomplete command: missing proto <protocol>");
    assert_eq!(
        error("show connections port 70000"),
        "Invalid value for port: \"70000\" (expected an integer in 0..=65535)"
    );
    assert_eq!(
        error("show connections addr 10.0.0"),
        "Invalid value for addr: \"10.0.0\" (expected an IPv4 or IPv6 address)"
    );
    assert_eq!(
        error("show connections state syn"),
        "Invalid value for state: \"syn\" (expected one of syn_sent, syn_recv, syn_sent2)"
    );
    assert_eq!(
        error("show connections proto gre"),
        "Invalid value for proto: \"gre\" (expected tcp, udp, icmp, icmpv6 or a number in 0..=255)"
    );
}

#[test]
fn abbreviations_resolve_case_insensitively() {
    assert_eq!(command("sh ver"), Command::ShowVersion);
    assert_eq!(command("SHOW VERSION"), Command::ShowVersion);
    assert_eq!(command("que v6"), Command::QueryV6Connections);
    assert_eq!(
        command("se deb warn 0"),
        Command::SetDebug { category: DebugCategory::Warning, enabled: false }
    );
    assert_eq!(
        command("set t o 600"),
        Command::SetTimeout { class: TimeoutClass::Other, seconds: 600, unidirectional: None }
    );
    assert!(
        matches!(parse_line("en"), Ok(Some(parsed)) if parsed.action == Action::Builtin(Builtin::Enable))
    );
}

#[test]
fn ambiguity_and_unknown_words_are_one_clear_error() {
    assert_eq!(error("s"), "Ambiguous command: s (matches show, set, stop, sim)");
    assert_eq!(
        error("show co"),
        "Ambiguous command: show co (matches connections, counters, config)"
    );
    assert_eq!(error("qu"), "Ambiguous command: qu (matches query, quit)");
    assert_eq!(error("show foo"), "Unknown command: show foo");
    assert_eq!(error("frobnicate now"), "Unknown command: frobnicate");
    assert_eq!(error("show"), "Incomplete command");
    assert_eq!(error("sim fault"), "Incomplete command");
    assert_eq!(error("set timeout tcp"), "Incomplete command: missing <seconds>");
    assert_eq!(error("set timeout"), "Incomplete command: missing tcp|udp|other");
    assert_eq!(
        error("set timeout tcp abc"),
        "Invalid value for <seconds>: \"abc\" (expected an integer in 1..=4294967294)"
    );
    assert_eq!(
        error("set timeout tcp 0"),
        "Invalid value for <seconds>: \"0\" (expected an integer in 1..=4294967294)"
    );
    assert_eq!(error("set activate 2"), "Invalid value for <active>: \"2\" (expected 0 or 1)");
    assert_eq!(
        error("set debug x 1"),
        "Invalid value for <category>: \"x\" (expected one of command, error, warning, info)"
    );
    assert_eq!(error("show version now"), "Unexpected argument: \"now\"");
    assert_eq!(error("show \"version"), "Unterminated quote");
}

#[test]
fn quoted_words_and_blank_lines() {
    assert_eq!(command(r#""show" 'version'"#), Command::ShowVersion);
    assert_eq!(
        command(r#"show connections state "established""#),
        Command::ShowConnections(ConnectionFilter {
            state: Some(TcpState::Established),
            ..ConnectionFilter::default()
        })
    );
    assert!(matches!(parse_line("   "), Ok(None)));
    assert!(matches!(parse_line(""), Ok(None)));
}

#[test]
fn filters_parse_after_the_pipe() {
    let parsed = parse_line(r#"show conn | include "ESTABLISHED src=10" | exclude udp|count"#)
        .unwrap()
        .unwrap();
    let stages: Vec<String> =
        parsed.filter.unwrap().stages().iter().map(|stage| stage.describe()).collect();
    assert_eq!(stages, ["include ESTABLISHED src=10", "exclude udp", "count"]);
    let parsed = parse_line("show conn | inc a b | beg ^x").unwrap().unwrap();
    let stages: Vec<String> =
        parsed.filter.unwrap().stages().iter().map(|stage| stage.describe()).collect();
    assert_eq!(stages, ["include a b", "begin ^x"]);
    assert_eq!(error("| count"), "Missing command before \"|\"");
    assert_eq!(
        error("show version |"),
        "Missing filter after \"|\" (include, exclude, begin or count)"
    );
    assert_eq!(
        error("show version | grep x"),
        "Unknown filter: \"grep\" (expected include, exclude, begin or count)"
    );
    assert_eq!(
        error("show version | include"),
        "Incomplete command: missing <regex> after include"
    );
    assert_eq!(
        error("show version | count | include x"),
        "\"count\" must be the last filter and takes no argument"
    );
    assert_eq!(
        error("show version | count x"),
        "\"count\" must be the last filter and takes no argument"
    );
    assert!(error("show version | include (").starts_with("Invalid regex for include: "));
    // A pattern whose compiled form exceeds the size limit is refused, not built.
    assert!(
        error("show version | include a{1000}{1000}").starts_with("Invalid regex for include: ")
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
            let parsed =
                parse_line(&line).unwrap_or_else(|error| panic!("{line:?}: {error}")).unwrap();
            assert_eq!(parsed.spec.words, spec.words, "{line:?}");
        }
    }
}

#[test]
fn table_invariants() {
    for (index, spec) in COMMANDS.iter().enumerate() {
        assert!(!spec.help.is_empty(), "{:?} has no help", spec.words);
        assert!(
            COMMANDS.iter().skip(index + 1).all(|other| other.words != spec.words),
            "{:?} is defined twice",
            spec.words
        );
        for end in 1..=spec.words.len() {
            assert!(
                !word_help(&spec.words[..end]).is_empty(),
                "no help for {:?}",
                &spec.words[..end]
            );
        }
        // Required positionals come first, then optional ones, then options and flags.
        let order: Vec<u8> = spec
            .params
            .iter()
            .map(|param| match param.shape {
                Shape::Required(_) => 0,
                Shape::Optional(_) => 1,
                Shape::Named(_) | Shape::Flag => 2,
            })
            .collect();
        assert!(order.is_sorted(), "{:?} has parameters out of order", spec.words);
        for param in spec.params {
            assert!(!param.help.is_empty(), "{:?} {} has no help", spec.words, param.name);
        }
    }
}

#[test]
fn usage_lines() {
    let usage = |words: &[&str]| COMMANDS.iter().find(|spec| spec.words == words).unwrap().usage();
    assert_eq!(
        usage(&["set", "timeout"]),
        "set timeout tcp|udp|other <seconds> [<unidirectional>]"
    );
    assert_eq!(usage(&["set", "activate"]), "set activate 0|1");
    assert_eq!(
        usage(&["show", "connections"]),
        "show connections [proto <protocol>] [state syn_sent|syn_recv|established|fin_wait|close_wait|last_ack|time_wait|close|syn_sent2] [addr <address>] [port <0-65535>] [offloaded] [pending] [refused] [local]"
    );
    assert_eq!(
        usage(&["sim", "fault", "error"]),
        "sim fault error <rc> [fcode <0-65535>] [count <1-4294967295>]"
    );
}

fn everything(_: &CommandSpec) -> bool {
    true
}

fn labels(completion: &Completion) -> Vec<&str> {
    completion.candidates.iter().map(|candidate| candidate.label.as_str()).collect()
}

#[test]
fn candidates_for_words() {
    let show = complete("show ", everything);
    assert_eq!(show.partial, "");
    assert_eq!(
        labels(&show),
        [
            "activate",
            "config",
            "connections",
            "counters",
            "debug_level",
            "fpp_route",
            "neighbor",
            "route",
            "rules",
            "sim",
            "status",
            "version"
        ]
    );
    let version = &show.candidates[11];
    assert_eq!((version.word, version.help.as_str()), (Some("version"), "Show the version"));
    assert_eq!(labels(&complete("sh", everything)), ["show"]);
    assert_eq!(labels(&complete("show co", everything)), ["config", "connections", "counters"]);
    assert_eq!(labels(&complete("SHOW VER", everything)), ["version"]);
    assert_eq!(labels(&complete("show version ", everything)), ["|", "<cr>"]);
    assert!(labels(&complete("show bogus ", everything)).is_empty());
    assert!(labels(&complete("show \"ver", everything)).is_empty());
    // `sim activate` offers both the word `all` and the tuple.
    assert_eq!(
        labels(&complete("sim activate ", everything)),
        ["all", "tcp", "udp", "icmp", "icmpv6", "<0-255>"]
    );
    // Help of group words.
    let top = complete("", everything);
    let sim = top.candidates.iter().find(|candidate| candidate.label == "sim").unwrap();
    assert_eq!(sim.help, "Drive the software cdx model (sim backend only)");
}

#[test]
fn candidates_for_arguments() {
    assert_eq!(labels(&complete("set timeout ", everything)), ["tcp", "udp", "other"]);
    let seconds = complete("set timeout tcp ", everything);
    assert_eq!(labels(&seconds), ["<seconds>"]);
    assert_eq!(seconds.candidates[0].help, "Timeout in seconds (1-4294967294)");
    assert_eq!(
        labels(&complete("set timeout tcp 30 ", everything)),
        ["<unidirectional>", "|", "<cr>"]
    );
    assert_eq!(labels(&complete("set timeout tcp 30 0 ", everything)), ["|", "<cr>"]);
    assert_eq!(labels(&complete("set timeout tcp 30 0 9 ", everything)), Vec::<&str>::new());
    assert_eq!(
        labels(&complete("set debug ", everything)),
        ["command", "error", "warning", "info"]
    );
    assert_eq!(labels(&complete("set debug w", everything)), ["warning"]);
    assert_eq!(labels(&complete("set activate ", everything)), ["0", "1"]);
    assert_eq!(
        labels(&complete("show connections ", everything)),
        ["proto", "state", "addr", "port", "offloaded", "pending", "refused", "local", "|", "<cr>"]
    );
    assert_eq!(
        labels(&complete("show connections proto tcp local ", everything)),
        ["state", "addr", "port", "offloaded", "pending", "refused", "|", "<cr>"]
    );
    assert_eq!(
        labels(&complete("show connections proto ", everything)),
        ["tcp", "udp", "icmp", "icmpv6", "<0-255>"]
    );
    assert_eq!(labels(&complete("show connections port ", everything)), ["<0-65535>"]);
    assert_eq!(labels(&complete("show connections st", everything)), ["state"]);
    // Options are offered only once the required positionals are there.
    assert_eq!(labels(&complete("sim fault error ", everything)), ["<rc>"]);
    assert_eq!(
        labels(&complete("sim fault error 3 ", everything)),
        ["fcode", "count", "|", "<cr>"]
    );
}

#[test]
fn candidates_after_the_pipe() {
    assert_eq!(
        labels(&complete("show version | ", everything)),
        ["include", "exclude", "begin", "count"]
    );
    assert_eq!(labels(&complete("show version |c", everything)), ["count"]);
    assert_eq!(labels(&complete("show version | include ", everything)), ["<regex>"]);
    assert_eq!(labels(&complete("show version | include x ", everything)), ["|", "<cr>"]);
    assert_eq!(labels(&complete("show version | count ", everything)), ["<cr>"]);
}

#[test]
fn invisible_commands_are_not_offered() {
    let unprivileged = |spec: &CommandSpec| spec.privilege == Privilege::Unprivileged;
    assert_eq!(labels(&complete("s", unprivileged)), ["show"]);
    assert_eq!(labels(&complete("set ", unprivileged)), Vec::<&str>::new());
    assert_eq!(labels(&complete("s", everything)), ["set", "show", "sim", "stop"]);
}

#[test]
fn tab_completes_unique_words_and_common_prefixes() {
    let tab_of = |text: &str| tab(&complete(text, everything));
    assert_eq!(tab_of("sh"), TabAction::Insert("ow ".to_owned()));
    assert_eq!(tab_of("SH"), TabAction::Insert("ow ".to_owned()));
    assert_eq!(tab_of("show conn"), TabAction::Insert("ections ".to_owned()));
    assert_eq!(tab_of("show n"), TabAction::Insert("eighbor ".to_owned()));
    assert_eq!(tab_of("show r"), TabAction::List(vec!["route".to_owned(), "rules".to_owned()]));
    assert_eq!(tab_of("show ro"), TabAction::Insert("ute ".to_owned()));
    assert_eq!(tab_of("query v"), TabAction::Insert("6connections ".to_owned()));
    assert_eq!(tab_of("sho"), TabAction::Insert("w ".to_owned()));
    assert_eq!(
        tab_of("show co"),
        TabAction::List(vec!["config".to_owned(), "connections".to_owned(), "counters".to_owned()])
    );
    assert_eq!(tab_of("set timeout tcp "), TabAction::List(vec!["<seconds>".to_owned()]));
    assert_eq!(tab_of("show version | inc"), TabAction::Insert("lude ".to_owned()));
    assert_eq!(tab_of("show bogus "), TabAction::Nothing);
    assert_eq!(
        tab_of("show connections state close"),
        TabAction::List(vec!["close_wait".to_owned(), "close".to_owned()])
    );
}

#[test]
fn parse_errors_display_without_the_percent_sign() {
    let error = ParseError::AmbiguousCommand { typed: "x".to_owned(), candidates: vec!["a", "b"] };
    assert_eq!(error.to_string(), "Ambiguous command: x (matches a, b)");
}
