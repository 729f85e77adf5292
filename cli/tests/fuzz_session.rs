//! Bounded fuzzing of the CLI through its public API, the scripting client and the session
//! talking to each other in memory, the bytes cut at random places, as TCP delivers them:
//!
//! - whatever the daemon replies (printable lines, error lines), `cmmd ctl` finishes with
//!   exactly that reply, flags it as an error exactly when its first line is one, and the session
//!   executed exactly the command given, once;
//! - any command words, joined by [`cli::command_line`], reach the session as one line: at
//!   most one command runs, unfiltered it returns exactly the daemon's reply, and both sides
//!   finish;
//! - a logged-in session given any line (printable noise, known commands, `?`, filters) answers
//!   each one and shows the prompt again.
//!
//! `CMM_FUZZ_CASES` sets the cases per property (default 256).

use std::time::{Duration, Instant};

use cli::{Command, CtlClient, CtlRequest, Finished, Request, Secret, Session, SessionConfig};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CMM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// What a conversation ended with.
#[derive(Debug)]
struct Conversation {
    finished: Option<Finished>,
    executed: Vec<Command>,
    session_closed: bool,
}

/// `cmmd ctl COMMAND` against a session whose daemon answers every command with `reply`;
/// bytes travel in pieces of `chunk` bytes.
fn converse(command: &str, reply: &[String], chunk: usize) -> Conversation {
    let now = Instant::now();
    let mut session = Session::new(SessionConfig::default());
    session.start(now);
    let mut client = CtlClient::new(CtlRequest {
        user: "admin".to_owned(),
        password: Secret::new("admin"),
        enable_password: None,
        command: command.to_owned(),
    });
    let mut executed = Vec::new();
    let mut session_closed = false;
    for _ in 0..10_000 {
        let to_client = session.pending_output().to_vec();
        session.consume_output(to_client.len());
        for piece in to_client.chunks(chunk) {
            client.receive(piece);
        }
        let to_session = client.pending_output().to_vec();
        client.consume_output(to_session.len());
        for piece in to_session.chunks(chunk) {
            session.receive(piece, now);
        }
        while let Some(request) = session.next_request() {
            match request {
                Request::Authenticate { .. } => session.authenticated(true, now),
                Request::Enable { .. } => session.enable_result(true),
                Request::Execute(invocation) => {
                    executed.push(invocation.command);
                    for line in reply {
                        session.reply_line(line);
                    }
                    session.reply_done();
                }
                Request::Close => session_closed = true,
            }
        }
        if to_client.is_empty() && to_session.is_empty() {
            if session_closed && client.finished().is_none() {
                client.closed();
            }
            break;
        }
    }
    Conversation { finished: client.finished().cloned(), executed, session_closed }
}

/// A reply line: printable, some of them looking like the prompt (`cmm> …`, `cmm# `), which
/// the client must not take for the end of the reply: the server marks the end with
/// `WILL TIMING-MARK`.
fn reply_line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[ -~]{0,60}",
        1 => "% [ -~]{0,30}",
        1 => Just("Access denied".to_owned()),
        1 => "cmm[>#] [ -~]{0,20}",
        1 => prop::sample::select(vec!["cmm> ".to_owned(), "cmm# ".to_owned(), "cmm>".to_owned()]),
    ]
}

/// Words of real commands and their arguments, and words that are not.
const WORDS: &[&str] = &[
    "show",
    "connections",
    "counters",
    "activate",
    "set",
    "debug_level",
    "rules",
    "route",
    "neighbor",
    "fpp_route",
    "config",
    "version",
    "status",
    "query",
    "v6connections",
    "timeout",
    "tcp",
    "udp",
    "other",
    "120",
    "0",
    "1",
    "|",
    "include",
    "exclude",
    "count",
    "begin",
    "?",
    "sim",
    "fault",
    "eio",
    "count",
    "a b",
    "\"",
    "'",
    "x|y",
    "https?",
    "\\",
    "",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn ctl_finishes_with_exactly_the_reply_and_flags_errors(
        reply in prop::collection::vec(reply_line(), 0..20),
        chunk in 1usize..64,
    ) {
        let talk = converse("show version", &reply, chunk);
        let finished = talk.finished.expect("the client finishes");
        let expected: String = reply.iter().map(|line| format!("{line}\n")).collect();
        prop_assert_eq!(&finished.output, &expected);
        prop_assert_eq!(finished.error, cli::is_error_reply(&expected));
        prop_assert_eq!(talk.executed, vec![Command::ShowVersion]);
        prop_assert!(talk.session_closed, "the client quits");
    }

    #[test]
    fn any_quoted_words_are_one_line_and_both_sides_finish(
        words in prop::collection::vec(prop::sample::select(WORDS), 1..8),
        chunk in 1usize..64,
    ) {
        let line = cli::command_line(&words);
        let talk = converse(&line, &["done".to_owned()], chunk);
        let finished = talk.finished.expect("the client finishes");
        prop_assert!(talk.executed.len() <= 1, "one line runs at most one command: {:?}", talk.executed);
        if talk.executed.len() == 1 && !words.contains(&"|") {
            prop_assert_eq!(&finished, &Finished { output: "done\n".to_owned(), error: false });
        }
        prop_assert!(talk.session_closed, "the client quits");
    }

    #[test]
    fn a_session_answers_every_line_with_the_prompt(
        lines in prop::collection::vec(prop_oneof![
            "[ -~]{0,40}",
            prop::collection::vec(prop::sample::select(WORDS), 0..6).prop_map(|w| w.join(" ")),
        ], 1..12),
    ) {
        let now = Instant::now();
        let mut session = Session::new(SessionConfig::default());
        session.start(now);
        session.receive(b"admin\r\nadmin\r\n", now);
        while let Some(request) = session.next_request() {
            if let Request::Authenticate { .. } = request {
                session.authenticated(true, now);
            }
        }
        let quits = |l: &str| {
            // Unique prefixes in any case: `L` is `logout`.
            // libcli's lexer: backslashes go, a word ends at a blank, a quote or `|`.
            let unescaped = l.replace('\\', "");
            let first = unescaped
                .split(|c: char| c.is_ascii_whitespace() || matches!(c, '\'' | '"' | '|'))
                .find(|word| !word.is_empty())
                .unwrap_or("")
                .to_ascii_lowercase();
            ["quit", "exit", "logout"].iter().any(|q| q.starts_with(&first) && !first.is_empty())
        };
        for line in lines.iter().filter(|l| !quits(l)) {
            let before = session.pending_output().len();
            session.receive(format!("{line}\r\n").as_bytes(), now + Duration::from_millis(1));
            while let Some(request) = session.next_request() {
                match request {
                    Request::Execute(_) => {
                        session.reply_line("ok");
                        session.reply_done();
                    }
                    Request::Enable { .. } => session.enable_result(true),
                    other => prop_assert!(false, "unexpected {other:?} for {line:?}"),
                }
            }
            let output = String::from_utf8_lossy(&session.pending_output()[before..]).into_owned();
            prop_assert!(output.ends_with("cmm> ") || output.ends_with("cmm# ") || output.ends_with("Password: "),
                "{line:?} left {output:?}");
            prop_assert!(!session.is_closed());
        }
    }
}
