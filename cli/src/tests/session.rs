//! The session state machine, driven like the daemon drives it.

use std::time::Duration;

use crate::command::{Command, ConnectionFilter, Privilege};
use crate::session::{CloseReason, Request, Session, SessionConfig};
use crate::telnet::{DO, IAC, OPT_ECHO, OPT_NAWS, OPT_SGA, OPT_TIMING_MARK, SB, SE, WILL};
use crate::tests::{t0, visible};

/// What a telnet client answers to the server's negotiation, plus a 100x40 window.
const TELNET_HELLO: &[u8] = &[
    IAC, DO, OPT_ECHO, IAC, DO, OPT_SGA, IAC, WILL, OPT_SGA, IAC, WILL, OPT_NAWS, IAC, SB,
    OPT_NAWS, 0, 100, 0, 40, IAC, SE,
];

/// Take the pending output, made visible.
fn take(session: &mut Session) -> String {
    let text = visible(session.pending_output());
    let len = session.output_len();
    session.consume_output(len);
    text
}

fn requests(session: &mut Session) -> Vec<Request> {
    std::iter::from_fn(|| session.next_request()).collect()
}

fn execute(session: &mut Session) -> Command {
    match requests(session).as_slice() {
        [Request::Execute(invocation)] => invocation.command.clone(),
        other => panic!("expected one Execute, got {other:?}"),
    }
}

/// A session logged in as admin; `telnet` selects a negotiating client (character mode).
fn logged_in(config: SessionConfig, telnet: bool) -> Session {
    let mut session = Session::new(config);
    session.start(t0());
    if telnet {
        session.receive(TELNET_HELLO, t0());
    }
    session.receive(b"admin\r\nadmin\r\n", t0());
    match requests(&mut session).as_slice() {
        [Request::Authenticate { user, password }] => {
            assert_eq!((user.as_str(), password.expose()), ("admin", "admin"));
        }
        other => panic!("expected Authenticate, got {other:?}"),
    }
    session.authenticated(true, t0());
    take(&mut session);
    session
}

fn raw() -> Session {
    logged_in(SessionConfig::default(), false)
}

fn telnet() -> Session {
    logged_in(SessionConfig::default(), true)
}

#[test]
fn start_sends_negotiation_banner_and_username_prompt() {
    let mut session = Session::new(SessionConfig::default());
    assert_eq!(session.pending_output(), b"");
    session.start(t0());
    let mut expected = vec![0xFF, 0xFB, 0x01, 0xFF, 0xFB, 0x03, 0xFF, 0xFD, 0x03, 0xFF, 0xFD, 0x1F];
    expected.extend_from_slice(b"Welcome to the CMM (Conntrack Monitor Module) CLI\r\nUsername: ");
    assert_eq!(session.pending_output(), expected);
    session.start(t0());
    assert_eq!(session.output_len(), expected.len(), "start twice sends nothing more");
}

#[test]
fn raw_tcp_client_gets_clean_output() {
    let mut session =
        Session::new(SessionConfig { banner: String::new(), ..SessionConfig::default() });
    session.start(t0());
    take(&mut session);
    // No echo: the client's terminal already shows what it typed.
    session.receive(b"admin\n", t0());
    assert_eq!(take(&mut session), "Password: ");
    session.receive(b"secret\n", t0());
    assert_eq!(take(&mut session), "");
    match requests(&mut session).as_slice() {
        [Request::Authenticate { user, password }] => {
            assert_eq!((user.as_str(), password.expose()), ("admin", "secret"))
        }
        other => panic!("{other:?}"),
    }
    session.authenticated(true, t0());
    assert_eq!(take(&mut session), "cmm> ");
    session.receive(b"show version\n", t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
    session.reply_line("cmmd 0.1.0");
    session.reply_done();
    assert_eq!(take(&mut session), "cmmd 0.1.0\\r\\ncmm> ");
    // TAB and `?` typed by a line-mode client: TAB is a blank, `?` at the end asks for help.
    session.receive(b"show\tversion\n", t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
    session.reply_done();
    take(&mut session);
    session.receive(b"show ve?\n", t0());
    assert_eq!(take(&mut session), "  version  Show the version\\r\\ncmm> ");
    assert!(requests(&mut session).is_empty());
}

#[test]
fn telnet_client_login_echoes_the_user_but_not_the_password() {
    let mut session = Session::new(SessionConfig::default());
    session.start(t0());
    take(&mut session);
    session.receive(TELNET_HELLO, t0());
    assert_eq!(take(&mut session), "", "agreeing to what we asked needs no answer");
    assert_eq!(session.window_size(), Some((100, 40)));
    session.receive(b"adm", t0());
    assert_eq!(take(&mut session), "adm");
    session.receive(b"in\r\0", t0());
    assert_eq!(take(&mut session), "in\\r\\nPassword: ");
    session.receive(b"pw\x7f\x7fadmin\r\0", t0());
    assert_eq!(take(&mut session), "\\r\\n");
    assert!(matches!(requests(&mut session).as_slice(), [Request::Authenticate { .. }]));
    session.authenticated(true, t0());
    assert_eq!(take(&mut session), "cmm> ");
    assert_eq!(session.user(), Some("admin"));
    session.receive(b"sh ver\r\0", t0());
    assert_eq!(take(&mut session), "sh ver\\r\\n");
    assert_eq!(execute(&mut session), Command::ShowVersion);
}

#[test]
fn empty_user_name_asks_again_and_ctrl_c_restarts_login() {
    let mut session =
        Session::new(SessionConfig { banner: String::new(), ..SessionConfig::default() });
    session.start(t0());
    session.receive(TELNET_HELLO, t0());
    take(&mut session);
    session.receive(b"\r\n", t0());
    assert_eq!(take(&mut session), "\\r\\nUsername: ");
    session.receive(b"bob\r\nxx\x03", t0());
    assert_eq!(take(&mut session), "bob\\r\\nPassword: ^C\\r\\nUsername: ");
    assert!(requests(&mut session).is_empty());
}

#[test]
fn failed_logins_delay_then_disconnect() {
    let mut session =
        Session::new(SessionConfig { banner: String::new(), ..SessionConfig::default() });
    session.start(t0());
    take(&mut session);
    let mut now = t0();
    for (attempt, delay) in [(1, Some(1)), (2, Some(2)), (3, None)] {
        session.receive(b"admin\nwrong\n", now);
        assert!(
            matches!(requests(&mut session).as_slice(), [Request::Authenticate { .. }]),
            "attempt {attempt}"
        );
        session.authenticated(false, now);
        let Some(delay) = delay else {
            assert_eq!(take(&mut session), "Password: Access denied\\r\\n");
            assert!(matches!(requests(&mut session).as_slice(), [Request::Close]));
            assert!(session.is_closed());
            assert_eq!(session.stats().closed, Some(CloseReason::LoginFailures));
            break;
        };
        assert_eq!(take(&mut session), "Password: Access denied\\r\\n");
        let until = now + Duration::from_secs(delay);
        assert_eq!(session.next_deadline(), Some(until));
        // Typing during the delay is dropped.
        session.receive(b"admin\n", now);
        session.on_timer(until - Duration::from_millis(1));
        assert_eq!(take(&mut session), "");
        session.on_timer(until);
        assert_eq!(take(&mut session), "Username: ");
        now = until;
    }
    assert_eq!(session.stats().login_failures, 3);
    assert_eq!(session.stats().input_dropped, 12);
    session.receive(b"admin\n", now);
    assert_eq!(take(&mut session), "");
}

#[test]
fn login_times_out() {
    let mut session = Session::new(SessionConfig::default());
    session.start(t0());
    take(&mut session);
    assert_eq!(session.next_deadline(), Some(t0() + Duration::from_secs(60)));
    session.on_timer(t0() + Duration::from_secs(59));
    assert!(!session.is_closed());
    session.on_timer(t0() + Duration::from_secs(60));
    assert_eq!(take(&mut session), "\\r\\n% Login timed out\\r\\n");
    assert!(matches!(requests(&mut session).as_slice(), [Request::Close]));
    assert_eq!(session.stats().closed, Some(CloseReason::LoginTimeout));
}

#[test]
fn idle_sessions_are_closed_and_input_restarts_the_clock() {
    let mut session = raw();
    let idle = Duration::from_secs(15 * 60);
    assert_eq!(session.next_deadline(), Some(t0() + idle));
    let later = t0() + Duration::from_secs(600);
    session.receive(b"x", later);
    assert_eq!(session.next_deadline(), Some(later + idle));
    session.on_timer(later + idle - Duration::from_secs(1));
    assert!(!session.is_closed());
    session.on_timer(later + idle);
    assert_eq!(take(&mut session), "\\r\\n% Idle timeout, closing the session\\r\\n");
    assert_eq!(session.stats().closed, Some(CloseReason::IdleTimeout));
}

#[test]
fn a_long_command_does_not_count_as_idle_time() {
    let mut session = raw();
    session.receive(b"show connections\n", t0());
    execute(&mut session);
    assert_eq!(session.next_deadline(), None, "no idle timer while a command runs");
    let done = t0() + Duration::from_secs(3600);
    session.reply_done();
    // Due at once; the timer restarts the idle clock instead of closing.
    assert!(session.next_deadline().is_some_and(|deadline| deadline <= done));
    session.on_timer(done);
    assert!(!session.is_closed());
    assert_eq!(session.next_deadline(), Some(done + Duration::from_secs(15 * 60)));
}

#[test]
fn locked_out_sources_are_told_and_closed() {
    let mut session = Session::new(SessionConfig::default());
    session.refuse_locked_out();
    assert_eq!(
        take(&mut session),
        "% Too many failed logins from your address; try again later\\r\\n"
    );
    assert!(matches!(requests(&mut session).as_slice(), [Request::Close]));
    assert_eq!(session.stats().closed, Some(CloseReason::LockedOut));
}

#[test]
fn privileged_commands_need_enable() {
    let mut session = raw();
    session.receive(b"stop\n", t0());
    assert_eq!(take(&mut session), "% Privileged command: type \"enable\" first\\r\\ncmm> ");
    assert!(requests(&mut session).is_empty());
    session.receive(b"enable\n", t0());
    assert_eq!(take(&mut session), "cmm# ");
    assert_eq!(session.privilege(), Privilege::Privileged);
    session.receive(b"stop\n", t0());
    assert_eq!(execute(&mut session), Command::Stop);
    session.reply_line("Killing cmm ...");
    session.reply_done();
    assert_eq!(take(&mut session), "Killing cmm ...\\r\\ncmm# ");
    session.receive(b"disable\n", t0());
    assert_eq!(take(&mut session), "cmm> ");
    session.receive(b"set activate 1\n", t0());
    assert_eq!(take(&mut session), "% Privileged command: type \"enable\" first\\r\\ncmm> ");
}

#[test]
fn privilege_can_be_turned_off() {
    let config =
        SessionConfig { privileged_commands_need_enable: false, ..SessionConfig::default() };
    let mut session = logged_in(config, false);
    session.receive(b"set activate 0\n", t0());
    assert_eq!(execute(&mut session), Command::SetActivate(false));
}

#[test]
fn enable_password() {
    let config = SessionConfig { enable_password_required: true, ..SessionConfig::default() };
    let mut session = logged_in(config, true);
    session.receive(b"enable\r\0", t0());
    assert_eq!(take(&mut session), "enable\\r\\nPassword: ");
    session.receive(b"nope\r\0", t0());
    assert_eq!(take(&mut session), "\\r\\n", "the enable password is not echoed");
    match requests(&mut session).as_slice() {
        [Request::Enable { password }] => assert_eq!(password.expose(), "nope"),
        other => panic!("{other:?}"),
    }
    session.enable_result(false);
    assert_eq!(take(&mut session), "% Access denied\\r\\ncmm> ");
    assert_eq!(session.stats().enable_failures, 1);
    session.receive(b"en\r\0right\r\0", t0());
    assert!(matches!(requests(&mut session).as_slice(), [Request::Enable { .. }]));
    session.enable_result(true);
    take(&mut session);
    assert_eq!(session.privilege(), Privilege::Privileged);
    // Ctrl-C at the enable password returns to the prompt.
    session.receive(b"disable\r\0en\r\0x\x03", t0());
    assert_eq!(take(&mut session), "disable\\r\\ncmm> en\\r\\nPassword: ^C\\r\\ncmm> ");
}

#[test]
fn errors_are_one_line_and_keep_the_session() {
    let mut session = raw();
    for (line, error) in [
        ("frobnicate\n", "% Unknown command: frobnicate"),
        ("show\n", "% Incomplete command"),
        ("set\n", "% Incomplete command"),
        ("sh c\n", "% Ambiguous command: sh c (matches connections, counters, config)"),
        (
            "show connections port x\n",
            "% Invalid value for port: \"x\" (expected an integer in 0..=65535)",
        ),
    ] {
        session.receive(line.as_bytes(), t0());
        assert_eq!(take(&mut session), format!("{error}\\r\\ncmm> "), "{line:?}");
        assert!(!session.is_closed());
    }
    session.receive(b"\n   \n", t0());
    assert_eq!(take(&mut session), "cmm> cmm> ");
}

#[test]
fn output_filters_apply_to_reply_lines() {
    let mut session = raw();
    let lines = ["tcp a", "udp b", "tcp c", "icmp d"];
    for (line, expected) in [
        ("show connections | include tcp\n", "tcp a\\r\\ntcp c\\r\\n"),
        ("show connections | exclude tcp\n", "udp b\\r\\nicmp d\\r\\n"),
        ("show connections | begin udp\n", "udp b\\r\\ntcp c\\r\\nicmp d\\r\\n"),
        ("show connections | count\n", "4\\r\\n"),
        ("show connections | include tcp | count\n", "2\\r\\n"),
    ] {
        session.receive(line.as_bytes(), t0());
        match requests(&mut session).as_slice() {
            [Request::Execute(invocation)] => {
                assert_eq!(
                    invocation.command,
                    Command::ShowConnections(ConnectionFilter::default())
                );
                assert!(invocation.filter.is_some());
            }
            other => panic!("{other:?}"),
        }
        for reply in lines {
            session.reply_line(reply);
        }
        session.reply_done();
        assert_eq!(take(&mut session), format!("{expected}cmm> "), "{line:?}");
    }
}

#[test]
fn errors_bypass_filters_and_multi_line_replies_split() {
    let mut session = raw();
    session.receive(b"show rules | count\n", t0());
    execute(&mut session);
    session.reply_line("a:\n\tproto: tcp (6)  mask ff\r\nb:");
    session.reply_error("% Error UNKNOWN_COMMAND (1) received from FPP");
    session.reply_done();
    assert_eq!(
        take(&mut session),
        "% Error UNKNOWN_COMMAND (1) received from FPP\\r\\n3\\r\\ncmm> "
    );
    session.receive(b"show rules | include tcp\n", t0());
    execute(&mut session);
    session.reply_line("a:\n\tproto: tcp (6)  mask ff\nb:");
    session.reply_done();
    assert_eq!(take(&mut session), "<09>proto: tcp (6)  mask ff\\r\\ncmm> ");
    // Replies outside a command are ignored.
    session.reply_line("stray");
    session.reply_error("stray");
    session.reply_done();
    assert_eq!(take(&mut session), "");
}

#[test]
fn input_typed_during_a_command_is_replayed_after_it() {
    let mut session = raw();
    session.receive(b"show version\nshow counters\n", t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
    session.reply_line("v");
    session.reply_done();
    assert_eq!(execute(&mut session), Command::ShowCounters);
    assert_eq!(take(&mut session), "v\\r\\ncmm> ");
    session.reply_done();
    assert_eq!(take(&mut session), "cmm> ");
}

#[test]
fn a_timing_mark_is_answered_after_the_replies_to_what_came_before_it() {
    let mut session = raw();
    // Idle: answered at once.
    session.receive(&[IAC, DO, OPT_TIMING_MARK], t0());
    assert_eq!(take(&mut session), "<ff><fb><06>");
    // Two commands and a mark in one segment: the mark waits for both replies.
    let mut input = b"show version\nshow counters\n".to_vec();
    input.extend([IAC, DO, OPT_TIMING_MARK]);
    session.receive(&input, t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
    session.reply_line("cmm> not the end");
    session.reply_done();
    assert_eq!(execute(&mut session), Command::ShowCounters);
    assert_eq!(take(&mut session), "cmm> not the end\\r\\ncmm> ");
    session.reply_line("x");
    session.reply_done();
    assert_eq!(take(&mut session), "x\\r\\ncmm> <ff><fb><06>");
}

#[test]
fn pending_input_is_bounded() {
    let config = SessionConfig { max_pending_input: 8, ..SessionConfig::default() };
    let mut session = logged_in(config, false);
    session.receive(b"show version\n", t0());
    execute(&mut session);
    session.receive(&[b'a'; 100], t0());
    assert_eq!(session.stats().input_dropped, 92);
}

#[test]
fn ctrl_c_cancels_the_running_reply() {
    let mut session = telnet();
    session.receive(b"show connections | count\r\0", t0());
    execute(&mut session);
    take(&mut session);
    session.reply_line("one");
    assert!(session.reply_wanted());
    session.receive(&[IAC, 244], t0());
    assert!(!session.reply_wanted());
    session.reply_line("two");
    session.reply_done();
    assert_eq!(take(&mut session), "^C\\r\\ncmm> ");
    // Plain ^C works too and also drops type-ahead.
    session.receive(b"show version\r\0show counters\r\0", t0());
    execute(&mut session);
    session.receive(b"\x03", t0());
    session.reply_done();
    assert!(requests(&mut session).is_empty());
}

#[test]
fn quit_exit_logout_and_ctrl_d_close() {
    for input in [&b"quit\n"[..], b"exit\n", b"logout\n", b"\x04", b"lo\n"] {
        let mut session = raw();
        session.receive(input, t0());
        assert!(matches!(requests(&mut session).as_slice(), [Request::Close]), "{input:?}");
        assert_eq!(session.stats().closed, Some(CloseReason::Quit));
        session.receive(b"show version\n", t0());
        assert!(requests(&mut session).is_empty());
    }
}

#[test]
fn a_one_mebibyte_line_is_refused_with_one_error_line() {
    let mut session = raw();
    let mut line = vec![b'a'; 1 << 20];
    line.push(b'\n');
    for chunk in line.chunks(64 * 1024) {
        session.receive(chunk, t0());
        assert!(session.output_len() < 1024);
    }
    assert_eq!(take(&mut session), "% Line too long (limit 4096 bytes)\\r\\ncmm> ");
    assert_eq!(session.stats().lines_too_long, 1);
    assert!(requests(&mut session).is_empty());
    // In character mode the echo stops at the limit with one bell.
    let mut session = telnet();
    session.receive(&line, t0());
    let output = take(&mut session);
    assert_eq!(
        output,
        format!("{}\\a\\r\\n% Line too long (limit 4096 bytes)\\r\\ncmm> ", "a".repeat(4096))
    );
}

#[test]
fn question_mark_lists_choices_and_redraws_the_line() {
    let mut session = telnet();
    session.receive(b"show ve?", t0());
    assert_eq!(take(&mut session), "show ve\\r\\n  version  Show the version\\r\\ncmm> show ve");
    session.receive(b"\x15set ?", t0());
    // Unprivileged: `set` has nothing to offer.
    assert!(
        take(&mut session)
            .ends_with("set \\r\\n% Privileged command: type \"enable\" first\\r\\ncmm> set ")
    );
    session.receive(b"\x15?", t0());
    let listing = take(&mut session);
    assert!(listing.contains("\\r\\n  show     Show information\\r\\n"), "{listing}");
    assert!(!listing.contains("stop"), "{listing}");
    session.receive(b"\x15show version ?", t0());
    assert!(take(&mut session).ends_with("\\r\\n  |     Filter the output (include, exclude, begin, count)\\r\\n  <cr>\\r\\ncmm> show version "));
}

#[test]
fn tab_completes_in_place_and_lists_choices() {
    let mut session = telnet();
    session.receive(b"sh\t", t0());
    assert_eq!(take(&mut session), "show ");
    session.receive(b"co\t", t0());
    assert_eq!(take(&mut session), "co\\r\\nconfig       connections  counters\\r\\ncmm> show co");
    session.receive(b"nn\t", t0());
    assert_eq!(take(&mut session), "nnections ");
    session.receive(b"\t", t0());
    assert!(take(&mut session).starts_with("\\r\\nproto      state      addr"));
    session.receive(b"\x15show bogus \t", t0());
    assert!(take(&mut session).ends_with("show bogus \\a"));
}

#[test]
fn help_lists_the_commands_of_the_privilege_level() {
    // Columns are aligned; compare with blanks squeezed.
    let squeeze = |text: String| {
        text.split(' ').filter(|word| !word.is_empty()).collect::<Vec<_>>().join(" ")
    };
    let mut session = raw();
    session.receive(b"help | include \"^  (show version|stop) \"\n", t0());
    assert_eq!(squeeze(take(&mut session)), "show version Show the version\\r\\ncmm>");
    session.receive(b"enable\nhelp | include \"^  (show version|stop) \"\n", t0());
    assert_eq!(
        squeeze(take(&mut session)),
        "cmm# show version Show the version\\r\\n stop Stop the daemon\\r\\ncmm#"
    );
    session.receive(b"help | exclude \"^  \" | count\n", t0());
    assert_eq!(take(&mut session), "2\\r\\ncmm# ");
}

#[test]
fn history_command_and_arrow_keys() {
    let mut session = telnet();
    session.receive(b"show version\r\0", t0());
    execute(&mut session);
    session.reply_done();
    session.receive(b"history\r\0", t0());
    take(&mut session);
    session.receive(b"history\r\0", t0());
    assert_eq!(take(&mut session), "history\\r\\n   1  show version\\r\\n   2  history\\r\\ncmm> ");
    session.receive(b"\x1b[A\x1b[A", t0());
    assert_eq!(take(&mut session), "history\\b\\b\\b\\b\\b\\b\\bshow version");
    session.receive(b"\r\0", t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
}

#[test]
fn are_you_there_and_window_size() {
    let mut session = telnet();
    session.receive(b"sh", t0());
    take(&mut session);
    session.receive(&[IAC, 246], t0());
    assert_eq!(take(&mut session), "\\r\\n[cmm: yes]\\r\\ncmm> sh");
    session.receive(&[IAC, SB, OPT_NAWS, 0, 200, 0, 50, IAC, SE], t0());
    assert_eq!(session.window_size(), Some((200, 50)));
}

#[test]
fn a_client_that_floods_without_reading_is_disconnected() {
    let config = SessionConfig { max_output: 1000, ..SessionConfig::default() };
    let mut session = logged_in(config, false);
    let flood: Vec<u8> = std::iter::repeat_n([IAC, DO, 24], 10_000).flatten().collect();
    session.receive(&flood, t0());
    assert!(session.is_closed());
    assert_eq!(session.stats().closed, Some(CloseReason::OutputOverflow));
    assert!(session.output_len() <= 1003);
    assert!(matches!(requests(&mut session).as_slice(), [Request::Close]));
}

#[test]
fn buffered_commands_of_a_client_that_does_not_read_stop_at_the_output_bound() {
    let config = SessionConfig { max_output: 1000, ..SessionConfig::default() };
    let mut session = logged_in(config, false);
    // Eight bytes of input, a long reply each: the buffered lines must not run unbounded.
    session.receive(&b"show config\n".repeat(200), t0());
    for _ in 0..200 {
        let Some(Request::Execute(_)) = session.next_request() else { break };
        session.reply_line(&"x".repeat(300));
        session.reply_done();
    }
    assert_eq!(session.stats().closed, Some(CloseReason::OutputOverflow));
    assert!(session.output_len() < 1000 + 300 + 16, "{}", session.output_len());
    // Session-local replies (help) are bounded the same way.
    let mut session =
        logged_in(SessionConfig { max_output: 5000, ..SessionConfig::default() }, false);
    session.receive(b"show version\n", t0());
    execute(&mut session);
    session.receive(&b"help\n".repeat(1000), t0());
    session.reply_done();
    assert_eq!(session.stats().closed, Some(CloseReason::OutputOverflow));
    assert!(session.output_len() < 5000 + 4000, "{}", session.output_len());
    assert!(matches!(requests(&mut session).as_slice(), [Request::Close]));
}

#[test]
fn end_of_input_answers_what_was_sent_then_closes() {
    // `printf 'admin\nadmin\nshow version\nshow counters\n' | ncat`: the client's FIN arrives
    // while the password is being verified.
    let mut session =
        Session::new(SessionConfig { banner: String::new(), ..SessionConfig::default() });
    session.start(t0());
    session.receive(b"admin\nadmin\nshow version\nshow counters\n", t0());
    session.end_of_input();
    assert!(matches!(requests(&mut session).as_slice(), [Request::Authenticate { .. }]));
    assert!(!session.is_closed(), "the login is still being verified");
    session.authenticated(true, t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
    session.reply_line("v");
    session.reply_done();
    assert_eq!(execute(&mut session), Command::ShowCounters);
    session.reply_line("c");
    session.reply_done();
    assert!(matches!(requests(&mut session).as_slice(), [Request::Close]));
    assert_eq!(session.stats().closed, Some(CloseReason::Quit));
    assert!(take(&mut session).ends_with("cmm> v\\r\\ncmm> c\\r\\ncmm> "));

    // Nothing outstanding: closes at once; a failed login cannot be retried: closes at once.
    let mut idle = raw();
    idle.end_of_input();
    assert!(matches!(requests(&mut idle).as_slice(), [Request::Close]));
    let mut failing = Session::new(SessionConfig::default());
    failing.start(t0());
    failing.receive(b"admin\nwrong\n", t0());
    failing.end_of_input();
    requests(&mut failing);
    failing.authenticated(false, t0());
    assert!(matches!(requests(&mut failing).as_slice(), [Request::Close]));
    assert!(take(&mut failing).ends_with("Access denied\\r\\n"));
}

#[test]
fn a_custom_hostname_and_banner() {
    let config = SessionConfig {
        hostname: "node-7".to_owned(),
        banner: "cmmd on node-7\nauthorised use only".to_owned(),
        ..SessionConfig::default()
    };
    let mut session = Session::new(config);
    session.start(t0());
    assert!(
        take(&mut session).ends_with("cmmd on node-7\\r\\nauthorised use only\\r\\nUsername: ")
    );
    session.receive(b"u\np\n", t0());
    requests(&mut session);
    session.authenticated(true, t0());
    assert_eq!(take(&mut session), "Password: node-7> ");
}

#[test]
fn absurd_timeouts_do_not_panic() {
    let config = SessionConfig {
        login_timeout: Some(Duration::MAX),
        idle_timeout: Some(Duration::MAX),
        login_delay: Duration::MAX,
        ..SessionConfig::default()
    };
    let mut session = Session::new(config);
    session.start(t0());
    assert_eq!(session.next_deadline(), None);
    session.receive(b"a\nb\n", t0());
    requests(&mut session);
    session.authenticated(false, t0());
    // The delay is capped at 60 s.
    assert_eq!(session.next_deadline(), Some(t0() + Duration::from_secs(60)));
}
