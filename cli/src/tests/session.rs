//! The session state machine, driven like the daemon drives it.

use std::time::Duration;

use crate::command::{Command, ConnectionFilter, Privilege};
use crate::session::{CloseReason, Request, Session, SessionConfig};
use crate::telnet::{DO, IAC, OPT_ECHO, OPT_NAWS, OPT_SGA, OPT_TIMING_MARK, SB, SE, WILL, WONT};
use crate::tests::{t0, visible};

/// What a telnet client answers to the server's negotiation (libcli's), plus a 100x40 window.
const TELNET_HELLO: &[u8] = &[
    IAC, DO, OPT_SGA, IAC, DO, OPT_ECHO, IAC, WILL, OPT_SGA, IAC, WONT, OPT_ECHO, IAC, WILL,
    OPT_NAWS, IAC, SB, OPT_NAWS, 0, 100, 0, 40, IAC, SE,
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
    let mut expected = vec![0xFF, 0xFB, 0x03, 0xFF, 0xFB, 0x01, 0xFF, 0xFD, 0x03, 0xFF, 0xFD, 0x01];
    expected
        .extend_from_slice(b"Welcome to the CMM (Conntrack Monitor Module) CLI\r\n\r\nUsername: ");
    assert_eq!(session.pending_output(), expected);
    session.start(t0());
    assert_eq!(session.output_len(), expected.len(), "start twice sends nothing more");
}

/// The bytes libcli 1.10.7 with cmm's print callback sends for the same input (recorded from
/// libcli itself), from the negotiation on: the command line echoed even to a client that never
/// agreed to echo, `\r\n` before each prompt, libcli's error texts and `history` layout.
#[test]
fn a_raw_session_is_byte_for_byte_libcli() {
    let mut session = Session::new(SessionConfig::default());
    session.start(t0());
    let input: &[&[u8]] = &[
        b"admin\r",
        b"admin\r",
        b"show activate\r",
        b"\r",
        b"show foo\r",
        b"foo\r",
        b"s\r",
        b"show\r",
        b"history\r",
        b"quit\r",
    ];
    for chunk in input {
        session.receive(chunk, t0());
        while let Some(request) = session.next_request() {
            match request {
                Request::Authenticate { .. } => session.authenticated(true, t0()),
                Request::Execute(invocation) => {
                    assert_eq!(invocation.command, Command::ShowActivate);
                    session.reply_line("1");
                    session.reply_done();
                }
                Request::Close => {}
                other => panic!("{other:?}"),
            }
        }
    }
    let output = session.pending_output();
    assert_eq!(
        output[..12],
        [0xFF, 0xFB, 0x03, 0xFF, 0xFB, 0x01, 0xFF, 0xFD, 0x03, 0xFF, 0xFD, 0x01]
    );
    assert_eq!(
        String::from_utf8_lossy(&output[12..]),
        "Welcome to the CMM (Conntrack Monitor Module) CLI\r\n\r\nUsername: admin\r\nPassword:  \
         \r\n\r\ncmm> show activate\r\n1\r\n\r\ncmm> \r\n\r\ncmm> show foo\r\nInvalid command \
         \"show foo\"\r\n\r\ncmm> foo\r\nInvalid command \"foo\"\r\n\r\ncmm> s\r\nInvalid command \
         \"s\"\r\n\r\ncmm> show\r\nIncomplete command\r\n\r\ncmm> history\r\nCommand history:\r\n  \
         0. show activate\r\n  1. show foo\r\n  2. foo\r\n  3. s\r\n  4. show\r\n\r\ncmm> quit\r\n"
    );
}

/// A failed login as libcli prints it (recorded from libcli 1.10.7): an empty user name asks
/// again, Ctrl-C rings, `Access denied`, then `Username:` again (here after cmmd's delay).
#[test]
fn a_failed_login_is_byte_for_byte_libcli() {
    let mut session = Session::new(SessionConfig::default());
    session.start(t0());
    for chunk in [&b"\r"[..], b"adm\x03in\r", b"wrong\r"] {
        session.receive(chunk, t0());
    }
    assert!(matches!(requests(&mut session).as_slice(), [Request::Authenticate { .. }]));
    session.authenticated(false, t0());
    let delay = session.next_deadline().expect("the login delay");
    session.on_timer(delay);
    assert_eq!(
        String::from_utf8_lossy(&session.pending_output()[12..]),
        "Welcome to the CMM (Conntrack Monitor Module) CLI\r\n\r\nUsername: \r\n\r\nUsername: \
         adm\u{7}in\r\nPassword: Access denied\r\n\r\nUsername: "
    );
}

/// libcli's filters on the same reply lines, byte for byte (recorded from libcli 1.10.7).
#[test]
fn filters_are_byte_for_byte_libcli() {
    let mut session = raw();
    let table = [
        "ipv4     2 tcp      6 100 ESTABLISHED src=10.0.0.1 [ASSURED] mark=0",
        "ipv6     10 udp      17 30 src=fd00::1 mark=0",
        "  Indented Line",
        "2 connections printed",
    ];
    let run = |session: &mut Session, line: &str| {
        session.receive(format!("{line}\r").as_bytes(), t0());
        while let Some(request) = session.next_request() {
            if let Request::Execute(_) = request {
                table.iter().for_each(|row| session.reply_line(row));
                session.reply_done();
            }
        }
        let text = String::from_utf8_lossy(session.pending_output()).into_owned();
        session.consume_output(text.len());
        text
    };
    for (line, expected) in [
        (
            "show connections | include [ASSURED]",
            "ipv4     2 tcp      6 100 ESTABLISHED src=10.0.0.1 [ASSURED] mark=0\r\n",
        ),
        ("show connections | exclude mark", "  Indented Line\r\n2 connections printed\r\n"),
        ("show connections | count", "4\r\n"),
        ("show connections | count x", "Count filter does not take arguments\r\n"),
        (
            "show connections | begin ipv6",
            "ipv6     10 udp      17 30 src=fd00::1 mark=0\r\n  Indented Line\r\n2 connections printed\r\n",
        ),
        (
            "show connections | between ipv4 ipv6",
            "ipv4     2 tcp      6 100 ESTABLISHED src=10.0.0.1 [ASSURED] mark=0\r\nipv6     10 udp      17 30 src=fd00::1 mark=0\r\n",
        ),
        (
            "show connections | grep -i ESTAB",
            "ipv4     2 tcp      6 100 ESTABLISHED src=10.0.0.1 [ASSURED] mark=0\r\n",
        ),
        (
            "show connections | egrep \"tcp|udp\"",
            "ipv4     2 tcp      6 100 ESTABLISHED src=10.0.0.1 [ASSURED] mark=0\r\nipv6     10 udp      17 30 src=fd00::1 mark=0\r\n",
        ),
        ("show connections | grep (", ""),
        ("show connections | egrep (", "Invalid pattern \"(\"\r\n"),
        (
            "show connections | include",
            "Incomplete command, missing required argument 'search_pattern' for command 'include'\r\n",
        ),
        ("show connections |", "Empty command given\r\n"),
        ("| include x", "Invalid command \"\"\r\n"),
        ("show connections | foo", "Invalid command \"foo\"\r\n"),
        ("show connections | be x", "Invalid command \"be\"\r\n"),
        (
            "show connections | grep -x y",
            "Problem parsing command setting search_flags with value -x\r\n",
        ),
        ("show connections | count | include ipv4", "4\r\n"),
        ("show connections | include ipv4 | count", "1\r\n"),
    ] {
        assert_eq!(run(&mut session, line), format!("{line}\r\n{expected}\r\ncmm> "), "{line}");
    }
}

#[test]
fn raw_tcp_clients_are_echoed_as_libcli_does_and_may_end_lines_with_lf() {
    let mut session =
        Session::new(SessionConfig { banner: String::new(), ..SessionConfig::default() });
    session.start(t0());
    assert_eq!(
        take(&mut session),
        "<ff><fb><03><ff><fb><01><ff><fd><03><ff><fd><01>\\r\\nUsername: "
    );
    // libcli echoes what is typed even to a client that never agreed to echo; a lone LF is
    // Enter here (libcli waits for CR).
    session.receive(b"admin\n", t0());
    assert_eq!(take(&mut session), "admin\\r\\nPassword: ");
    session.receive(b"secret\n", t0());
    assert_eq!(take(&mut session), "", "never the password");
    match requests(&mut session).as_slice() {
        [Request::Authenticate { user, password }] => {
            assert_eq!((user.as_str(), password.expose()), ("admin", "secret"))
        }
        other => panic!("{other:?}"),
    }
    session.authenticated(true, t0());
    assert_eq!(take(&mut session), " \\r\\n\\r\\ncmm> ");
    session.receive(b"show version\n", t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
    session.reply_line("cmmd 0.1.0");
    session.reply_done();
    assert_eq!(take(&mut session), "show version\\r\\ncmmd 0.1.0\\r\\n\\r\\ncmm> ");
    // TAB and `?` typed by a line-mode client: TAB is a blank, `?` at the end asks for help.
    session.receive(b"show\tversion\n", t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
    session.reply_done();
    take(&mut session);
    session.receive(b"show ve?\n", t0());
    assert_eq!(
        take(&mut session),
        "show ve?\\r\\n  version              Show the version\\r\\n\\r\\ncmm> "
    );
    assert!(requests(&mut session).is_empty());
    session.receive(b"show bogus ?\n", t0());
    assert_eq!(
        take(&mut session),
        "show bogus ?\\r\\nInvalid command \"show bogus\"\\r\\n\\r\\ncmm> "
    );
}

#[test]
fn telnet_client_login_echoes_the_user_but_not_the_password() {
    let mut session = Session::new(SessionConfig::default());
    session.start(t0());
    take(&mut session);
    session.receive(TELNET_HELLO, t0());
    assert_eq!(take(&mut session), "<ff><fd><1f>", "only the offered NAWS is answered");
    assert_eq!(session.window_size(), Some((100, 40)));
    session.receive(b"adm", t0());
    assert_eq!(take(&mut session), "adm");
    session.receive(b"in\r\0", t0());
    assert_eq!(take(&mut session), "in\\r\\nPassword: ");
    session.receive(b"pw\x7f\x7fadmin\r\0", t0());
    assert_eq!(take(&mut session), "", "no new line after a password (libcli)");
    assert!(matches!(requests(&mut session).as_slice(), [Request::Authenticate { .. }]));
    session.authenticated(true, t0());
    assert_eq!(take(&mut session), " \\r\\n\\r\\ncmm> ");
    assert_eq!(session.user(), Some("admin"));
    session.receive(b"sh ver\r\0", t0());
    assert_eq!(take(&mut session), "sh ver\\r\\n");
    assert_eq!(execute(&mut session), Command::ShowVersion);
}

#[test]
fn empty_user_name_asks_again_and_ctrl_c_rings_and_keeps_the_line() {
    let mut session =
        Session::new(SessionConfig { banner: String::new(), ..SessionConfig::default() });
    session.start(t0());
    session.receive(TELNET_HELLO, t0());
    take(&mut session);
    session.receive(b"\r\n", t0());
    assert_eq!(take(&mut session), "\\r\\n\\r\\nUsername: ");
    session.receive(b"bo\x03b\r\nxx\x03", t0());
    assert_eq!(take(&mut session), "bo\\ab\\r\\nPassword: \\a");
    session.receive(b"\r\n", t0());
    assert!(
        matches!(requests(&mut session).as_slice(), [Request::Authenticate { user, password }] if user == "bob" && password.expose() == "xx")
    );
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
            assert_eq!(take(&mut session), "admin\\r\\nPassword: Access denied\\r\\n");
            assert!(matches!(requests(&mut session).as_slice(), [Request::Close]));
            assert!(session.is_closed());
            assert_eq!(session.stats().closed, Some(CloseReason::LoginFailures));
            break;
        };
        assert_eq!(take(&mut session), "admin\\r\\nPassword: Access denied\\r\\n");
        let until = now + Duration::from_secs(delay);
        assert_eq!(session.next_deadline(), Some(until));
        // Typing during the delay is dropped.
        session.receive(b"admin\n", now);
        session.on_timer(until - Duration::from_millis(1));
        assert_eq!(take(&mut session), "");
        session.on_timer(until);
        assert_eq!(take(&mut session), "\\r\\nUsername: ");
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
    assert_eq!(take(&mut session), "x\\r\\n% Idle timeout, closing the session\\r\\n");
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
fn privileged_commands_are_invisible_until_enable() {
    let mut session = raw();
    session.receive(b"stop\n", t0());
    assert_eq!(take(&mut session), "stop\\r\\nInvalid command \"stop\"\\r\\n\\r\\ncmm> ");
    assert!(requests(&mut session).is_empty());
    session.receive(b"enable\n", t0());
    assert_eq!(take(&mut session), "enable\\r\\n\\r\\ncmm# ");
    assert_eq!(session.privilege(), Privilege::Privileged);
    session.receive(b"stop\n", t0());
    assert_eq!(execute(&mut session), Command::Stop);
    session.reply_line("Killing cmm ...");
    session.reply_done();
    assert_eq!(take(&mut session), "stop\\r\\nKilling cmm ...\\r\\n\\r\\ncmm# ");
    session.receive(b"disable\n", t0());
    assert_eq!(take(&mut session), "disable\\r\\n\\r\\ncmm> ");
    session.receive(b"set activate 1\n", t0());
    assert_eq!(
        take(&mut session),
        "set activate 1\\r\\nInvalid command \"set activate\"\\r\\n\\r\\ncmm> "
    );
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
    assert_eq!(take(&mut session), "", "the enable password is not echoed");
    match requests(&mut session).as_slice() {
        [Request::Enable { password }] => assert_eq!(password.expose(), "nope"),
        other => panic!("{other:?}"),
    }
    session.enable_result(false);
    assert_eq!(take(&mut session), "Access denied\\r\\n\\r\\ncmm> ");
    assert_eq!(session.stats().enable_failures, 1);
    session.receive(b"en\r\0right\r\0", t0());
    assert!(matches!(requests(&mut session).as_slice(), [Request::Enable { .. }]));
    session.enable_result(true);
    assert_eq!(take(&mut session), "en\\r\\nPassword: \\r\\ncmm# ");
    assert_eq!(session.privilege(), Privilege::Privileged);
}

#[test]
fn errors_are_one_line_and_keep_the_session() {
    let mut session = raw();
    for (line, error) in [
        ("frobnicate", "Invalid command \"frobnicate\""),
        ("show", "Incomplete command"),
        ("set", "Incomplete command"),
        ("sh s", "Invalid command \"show s\""),
        ("set timeout tcp 100", "Invalid command \"set timeout\""),
        (
            "show connections port x",
            "% Invalid value for port: \"x\" (expected an integer in 0..=65535)",
        ),
        ("show macvlan", "% \"show macvlan\" is not supported by cmmd"),
        (
            "prf busycpu",
            "% \"prf busycpu\" is not supported by cmmd\\r\\nUsage: prf busycpu {start|stop} [weight_factor]",
        ),
    ] {
        session.receive(format!("{line}\n").as_bytes(), t0());
        assert_eq!(take(&mut session), format!("{line}\\r\\n{error}\\r\\n\\r\\ncmm> "), "{line:?}");
        assert!(requests(&mut session).is_empty());
        assert!(!session.is_closed());
    }
    session.receive(b"\n   \n", t0());
    assert_eq!(take(&mut session), "\\r\\n\\r\\ncmm>    \\r\\n\\r\\ncmm> ");
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
        let echo = line.trim_end();
        assert_eq!(take(&mut session), format!("{echo}\\r\\n{expected}\\r\\ncmm> "), "{line:?}");
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
        "show rules | count\\r\\n% Error UNKNOWN_COMMAND (1) received from FPP\\r\\n3\\r\\n\\r\\ncmm> "
    );
    session.receive(b"show rules | include tcp\n", t0());
    execute(&mut session);
    session.reply_line("a:\n\tproto: tcp (6)  mask ff\nb:");
    session.reply_done();
    assert_eq!(
        take(&mut session),
        "show rules | include tcp\\r\\n<09>proto: tcp (6)  mask ff\\r\\n\\r\\ncmm> "
    );
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
    assert_eq!(take(&mut session), "show version\\r\\nv\\r\\n\\r\\ncmm> show counters\\r\\n");
    session.reply_done();
    assert_eq!(take(&mut session), "\\r\\ncmm> ");
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
    assert_eq!(
        take(&mut session),
        "show version\\r\\ncmm> not the end\\r\\n\\r\\ncmm> show counters\\r\\n"
    );
    session.reply_line("x");
    session.reply_done();
    assert_eq!(take(&mut session), "x\\r\\n\\r\\ncmm> <ff><fb><06>");
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
    assert_eq!(take(&mut session), "^C\\r\\n\\r\\ncmm> ");
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
        assert!(session.output_len() < 4096 + 1024, "the echo stops at the limit");
    }
    assert_eq!(
        take(&mut session),
        format!("{}\\a\\r\\n% Line too long (limit 4096 bytes)\\r\\n\\r\\ncmm> ", "a".repeat(4096))
    );
    assert_eq!(session.stats().lines_too_long, 1);
    assert!(requests(&mut session).is_empty());
    // In character mode the echo stops at the limit with one bell.
    let mut session = telnet();
    session.receive(&line, t0());
    let output = take(&mut session);
    assert_eq!(
        output,
        format!("{}\\a\\r\\n% Line too long (limit 4096 bytes)\\r\\n\\r\\ncmm> ", "a".repeat(4096))
    );
}

#[test]
fn question_mark_lists_choices_as_libcli_and_redraws_the_line() {
    let mut session = telnet();
    session.receive(b"show ve?", t0());
    assert_eq!(
        take(&mut session),
        "show ve\\r\\n  version              Show the version\\r\\n\\r\\ncmm> show ve"
    );
    // Unprivileged: `set` offers only what the vendor lets everyone run.
    session.receive(b"\x15set a?", t0());
    assert!(take(&mut session).ends_with(
        "set a\\r\\n  asym_fastforward     Enable or disable Asymmetric Fast forward\\r\\n\\r\\ncmm> set a"
    ));
    // Nothing can follow: the bell, as libcli.
    session.receive(b"\x15bogus ?", t0());
    assert_eq!(take(&mut session), "\\b\\b\\b\\b\\b     \\b\\b\\b\\b\\bbogus \\a");
    session.receive(b"\x15?", t0());
    let listing = take(&mut session);
    assert!(listing.contains(
        "\\r\\n  enable               Turn on privileged commands\\r\\n  show                 \\r\\n  \
         query                \\r\\n  set                  \\r\\n  ipv4                 \\r\\n"
    ), "{listing}");
    assert!(!listing.contains("stop") && !listing.contains("disable"), "{listing}");
    session.receive(b"\x15show version ?", t0());
    assert!(
        take(&mut session).ends_with("show version \\r\\n  <cr>\\r\\n\\r\\ncmm> show version ")
    );
    session.receive(b"\x15show version | ?", t0());
    assert!(take(&mut session).contains(
        "\\r\\n  begin                Begin with lines that match\\r\\n  between              Between lines that match\\r\\n"
    ));
}

/// `show ?` lists the vendor's commands in the vendor's order with the vendor's help, wrapped
/// at 80 columns as libcli does; cmmd's own follow.
#[test]
fn the_show_listing_is_the_vendors() {
    let mut session = telnet();
    session.receive(b"show ?", t0());
    let listing = take(&mut session).replace("\\r\\n", "\n");
    let expected = "show 
  connections          Show the table of fast forwarded connections
  fpp_route            Show the fpp route entries used by the fast forwarded
                       connections
  route                Show the route entries used by the fast forwarded
                       connections
  neighbor             Show the neighbor entries used by the fast forwarded
                       connections
  rules                Show the table of non fast forwardable connections
  debug_level          Show the debug level
  activate             Show if cmm is activated or not
  pppoe                Show the pppoe entries used by the fast forwarded
                       connections
  vlan                 Show the vlan entries programmmed
  macvlan              Show the macvlan entries programmmed
  rx                   Show ICC, Bridge status
  stat                 Show Statistics
  sa_query_timer       Show the DPD SA query timer configuration
  sa                   Show the SA stored by CMM
  sec-connections      Show the local table of secure connections
  relay                Show pppoe relay entries used by  the fast forwarded
                       connections
  mc6                  Show the table of V6 multicat listeners
  mc4                  Show the table of V4 multicat listeners
  asym_fastforward     Show the Asymmetric fast forward status
  asym_ff_rules        Show the table of asymmetric fast forwardable connections
  counters             Show counters by reason
  config               Show the effective configuration
  version              Show the version
  status               Show health and readiness
  sim                  Show the software cdx model's tables

cmm> show ";
    assert_eq!(listing, expected);
}

/// TAB as libcli (bytes recorded from libcli 1.10.7): the typed part is rewritten with the
/// word, a common prefix or the bell; a second TAB lists four entries a row.
#[test]
fn tab_completes_in_place_and_lists_choices() {
    let mut session = telnet();
    session.receive(b"sh\t", t0());
    assert_eq!(take(&mut session), "sh\\b\\bshow ");
    session.receive(b"a\t", t0());
    assert_eq!(take(&mut session), "a\\ba");
    session.receive(b"\t", t0());
    assert_eq!(
        take(&mut session),
        "\\r\\nactivate asym_fastforward asym_ff_rules\\r\\n\\r\\ncmm> show a"
    );
    session.receive(b"\x15s\t", t0());
    assert!(take(&mut session).ends_with("s\\bs"));
    session.receive(b"\t", t0());
    assert_eq!(take(&mut session), "\\r\\nshow set\\r\\n\\r\\ncmm> s");
    // Another key in between: the next TAB starts over.
    session.receive(b"h\tco\t", t0());
    assert_eq!(take(&mut session), "h\\b\\bshow co\\b\\bco");
    session.receive(b"n\t\t", t0());
    assert_eq!(
        take(&mut session),
        "n\\b\\b\\bcon\\r\\nconnections config\\r\\n\\r\\ncmm> show con"
    );
    session.receive(b"n\t", t0());
    assert_eq!(take(&mut session), "n\\b\\b\\b\\bconnections ");
    session.receive(b"\t", t0());
    assert_eq!(take(&mut session), "\\a");
    session.receive(b"\t", t0());
    let listed = take(&mut session);
    assert!(listed.starts_with("\\r\\ndetail [proto] [state] [addr]\\r\\n"), "{listed}");
    session.receive(b"\x15show bogus \t", t0());
    assert!(take(&mut session).ends_with("show bogus \\a"));
}

#[test]
fn help_lists_the_commands_of_the_privilege_level_as_libcli() {
    let mut session = raw();
    session.receive(b"help\n", t0());
    let listing = take(&mut session);
    assert!(
        listing.starts_with(
            "help\\r\\nCommands available:\\r\\n  help                 Show available commands\\r\\n  \
             quit                 Disconnect\\r\\n  logout               Disconnect\\r\\n  \
             exit                 Exit from current mode\\r\\n  history              Show a list \
             of previously run commands\\r\\n  enable               Turn on privileged commands\\r\\n  \
             show connections     Show the table of fast forwarded connections\\r\\n"
        ),
        "{listing}"
    );
    assert!(
        listing.contains(
            "\\r\\n  show asym_fastforward Show the Asymmetric fast forward status\\r\\n"
        )
    );
    assert!(listing.contains(
        "\\r\\n  ipv4                 \\r\\n  ipv4 update          Update IPv4 Connection\\r\\n"
    ));
    assert!(!listing.contains("stop") && !listing.contains("set activate"), "{listing}");
    session.receive(b"enable\nhelp | include Kill\n", t0());
    assert!(take(&mut session).ends_with("\\r\\n  stop                 Kill cmm\\r\\n\\r\\ncmm# "));
}

#[test]
fn history_command_and_arrow_keys() {
    let mut session = telnet();
    for line in [&b"show version\r\0"[..], b"Show Version\r\0", b"show ve?"] {
        session.receive(line, t0());
        requests(&mut session);
        session.reply_done();
    }
    session.receive(b"\x15history\r\0", t0());
    take(&mut session);
    session.receive(b"HISTORY\r\0hist\r\0", t0());
    // `history` itself, a repeat (any case) and a line ending in `?` are not kept; `hist` is.
    assert_eq!(
        take(&mut session),
        "HISTORY\\r\\nCommand history:\\r\\n  0. show version\\r\\n\\r\\ncmm> hist\\r\\nCommand \
         history:\\r\\n  0. show version\\r\\n  1. hist\\r\\n\\r\\ncmm> "
    );
    session.receive(b"\x1b[A\x1b[A", t0());
    assert_eq!(take(&mut session), "hist\\b\\b\\b\\bshow version");
    session.receive(b"\r\0", t0());
    assert_eq!(execute(&mut session), Command::ShowVersion);
}

#[test]
fn are_you_there_and_window_size() {
    let mut session = telnet();
    session.receive(b"sh", t0());
    take(&mut session);
    session.receive(&[IAC, 246], t0());
    assert_eq!(take(&mut session), "\\r\\n[cmm: yes]\\r\\n\\r\\ncmm> sh");
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
    assert!(take(&mut session).ends_with(
        "cmm> show version\\r\\nv\\r\\n\\r\\ncmm> show counters\\r\\nc\\r\\n\\r\\ncmm> "
    ));

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
        take(&mut session)
            .ends_with("cmmd on node-7\\r\\nauthorised use only\\r\\n\\r\\nUsername: ")
    );
    session.receive(b"u\np\n", t0());
    requests(&mut session);
    session.authenticated(true, t0());
    assert_eq!(take(&mut session), "u\\r\\nPassword:  \\r\\n\\r\\nnode-7> ");
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
