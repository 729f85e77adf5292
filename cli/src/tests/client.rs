//! The scripting client driven against a real [`Session`] in memory.

use crate::auth::Secret;
use crate::client::{CtlClient, CtlRequest, Finished, command_line, is_error_reply};
use crate::command::{Command, ConnectionFilter};
use crate::session::{Request, Session, SessionConfig};
use crate::telnet::{DONT, IAC, OPT_ECHO, OPT_SGA, WONT};
use crate::tests::t0;

fn request(command: &str, password: &str) -> CtlRequest {
    CtlRequest {
        user: "admin".to_owned(),
        password: Secret::new(password),
        enable_password: None,
        command: command.to_owned(),
    }
}

/// The daemon side: users admin/admin, enable password "en", replies per command.
fn reply(session: &mut Session, command: &Command) {
    match command {
        Command::ShowVersion => session.reply_line("cmmd 0.1.0"),
        Command::ShowConnections(_) => {
            for line in ["tcp one", "udp two", "tcp three"] {
                session.reply_line(line);
            }
        }
        Command::QueryRoute => session.reply_error("Error FPP_ERR_UNKNOWN_COMMAND (1)"),
        _ => {}
    }
    session.reply_done();
}

/// Run the client against a session until both are done; returns the result and the commands.
fn converse(config: SessionConfig, mut client: CtlClient) -> (Finished, Vec<Command>) {
    let mut session = Session::new(config);
    session.start(t0());
    let mut executed = Vec::new();
    let mut closed = false;
    for _ in 0..100 {
        let to_client = session.pending_output().to_vec();
        session.consume_output(to_client.len());
        client.receive(&to_client);
        if closed {
            client.closed();
            break;
        }
        let to_server = client.pending_output().to_vec();
        client.consume_output(to_server.len());
        session.receive(&to_server, t0());
        while let Some(request) = session.next_request() {
            match request {
                Request::Authenticate { user, password } => {
                    session.authenticated(user == "admin" && password.expose() == "admin", t0());
                }
                Request::Enable { password } => session.enable_result(password.expose() == "en"),
                Request::Execute(invocation) => {
                    reply(&mut session, &invocation.command);
                    executed.push(invocation.command);
                }
                Request::Close => closed = true,
            }
        }
        if to_client.is_empty() && to_server.is_empty() && session.output_len() == 0 && !closed {
            // Nothing moves: a login delay; let it pass.
            if let Some(deadline) = session.next_deadline() {
                session.on_timer(deadline);
            } else {
                break;
            }
        }
    }
    (client.finished().expect("client finished").clone(), executed)
}

#[test]
fn runs_one_command_and_returns_its_output() {
    let (finished, executed) =
        converse(SessionConfig::default(), CtlClient::new(request("sh ver", "admin")));
    assert_eq!(finished, Finished { output: "cmmd 0.1.0\n".to_owned(), error: false });
    assert_eq!(executed, [Command::ShowVersion]);
}

#[test]
fn filters_pass_through() {
    let command = command_line(&["show", "connections", "|", "include", "tcp t", "|", "count"]);
    assert_eq!(command, "show connections | include \"tcp t\" | count");
    let (finished, executed) =
        converse(SessionConfig::default(), CtlClient::new(request(&command, "admin")));
    assert_eq!(finished, Finished { output: "1\n".to_owned(), error: false });
    assert_eq!(executed, [Command::ShowConnections(ConnectionFilter::default())]);
}

#[test]
fn errors_are_reported_as_errors() {
    let (finished, executed) =
        converse(SessionConfig::default(), CtlClient::new(request("frobnicate", "admin")));
    assert_eq!(
        finished,
        Finished { output: "Invalid command \"frobnicate\"\n".to_owned(), error: true }
    );
    assert!(executed.is_empty());
    let (finished, _) =
        converse(SessionConfig::default(), CtlClient::new(request("query route", "admin")));
    assert_eq!(
        finished,
        Finished { output: "% Error FPP_ERR_UNKNOWN_COMMAND (1)\n".to_owned(), error: true }
    );
    let (finished, _) =
        converse(SessionConfig::default(), CtlClient::new(request("show ?", "admin")));
    assert!(!finished.error);
    assert!(finished.output.contains("  version "), "{}", finished.output);
}

#[test]
fn a_wrong_password_is_access_denied() {
    let (finished, executed) =
        converse(SessionConfig::default(), CtlClient::new(request("show version", "nope")));
    assert_eq!(finished, Finished { output: "Access denied\n".to_owned(), error: true });
    assert!(executed.is_empty());
}

#[test]
fn privileged_commands_enable_first() {
    let config = SessionConfig { enable_password_required: true, ..SessionConfig::default() };
    let mut privileged = request("set activate 1", "admin");
    privileged.enable_password = Some(Secret::new("en"));
    let (finished, executed) = converse(config.clone(), CtlClient::new(privileged));
    assert_eq!(finished, Finished { output: String::new(), error: false });
    assert_eq!(executed, [Command::SetActivate(true)]);
    // Without an enable password the login password is tried, and refused here.
    let (finished, executed) = converse(config, CtlClient::new(request("set activate 1", "admin")));
    assert_eq!(finished, Finished { output: "Access denied\n".to_owned(), error: true });
    assert!(executed.is_empty());
    // When enable needs no password the client just enables.
    let (finished, executed) =
        converse(SessionConfig::default(), CtlClient::new(request("stop", "admin")));
    assert_eq!(finished, Finished { output: String::new(), error: false });
    assert_eq!(executed, [Command::Stop]);
}

#[test]
fn the_client_refuses_telnet_options_and_answers_the_login() {
    let mut session = Session::new(SessionConfig::default());
    session.start(t0());
    let mut client = CtlClient::new(request("show version", "admin"));
    client.receive(session.pending_output());
    let mut expected =
        vec![IAC, DONT, OPT_SGA, IAC, DONT, OPT_ECHO, IAC, WONT, OPT_SGA, IAC, WONT, OPT_ECHO];
    expected.extend_from_slice(b"admin\r\n");
    assert_eq!(client.pending_output(), expected);
    assert!(client.finished().is_none());
}

#[test]
fn a_server_that_closes_early_is_an_error() {
    let mut client = CtlClient::new(request("show version", "admin"));
    client.receive(b"Username: ");
    client.closed();
    assert_eq!(
        client.finished(),
        Some(&Finished {
            output: "connection closed by the server during login\n".to_owned(),
            error: true
        })
    );
    let mut client = CtlClient::new(request("show version", "admin"));
    client.receive(b"Username: ");
    client.receive(b"Password: ");
    client.receive(b"cmm> ");
    client.receive(b"partial li");
    client.closed();
    assert_eq!(
        client.finished(),
        Some(&Finished {
            output: "partial li\nconnection closed by the server during the command\n".to_owned(),
            error: true
        })
    );
}

#[test]
fn replies_are_bounded() {
    let mut client = CtlClient::new(request("show version", "admin")).with_max_reply(16);
    for prompt in [&b"Username: "[..], b"Password: ", b"cmm> "] {
        client.receive(prompt);
    }
    client.receive(&[b'x'; 64]);
    assert_eq!(
        client.finished(),
        Some(&Finished { output: "reply larger than 16 bytes\n".to_owned(), error: true })
    );
    assert!(client.pending_output().ends_with(b"quit\r\n"));
}

#[test]
fn one_argument_is_the_line_several_are_quoted_words() {
    assert_eq!(command_line(&["show connections | include a b"]), "show connections | include a b");
    assert_eq!(command_line(&["show", "version"]), "show version");
    assert_eq!(
        command_line(&["a b", "", "say \"hi\"", r"back\slash"]),
        r#""a b" "" "say \"hi\"" "back\\slash""#
    );
    assert_eq!(command_line(&["show", "?"]), "show ?");
    assert_eq!(
        command_line(&["show", "conn", "|", "include", "https?"]),
        r#"show conn | include "https?""#
    );
    assert_eq!(
        command_line(&["show", "counters", "|", "egrep", "local|table_full"]),
        r#"show counters | egrep "local|table_full""#,
        "a | inside a word is part of the regex"
    );
}

#[test]
fn both_forms_of_a_command_run_the_same() {
    for form in [&["show connections"][..], &["show", "connections"][..]] {
        let (finished, executed) = converse(
            SessionConfig::default(),
            CtlClient::new(request(&command_line(form), "admin")),
        );
        assert_eq!(finished.output, "tcp one\nudp two\ntcp three\n");
        assert_eq!(executed, [Command::ShowConnections(ConnectionFilter::default())]);
    }
}

#[test]
fn error_replies_are_recognised_by_their_first_line() {
    for reply in [
        "Invalid command \"x\"\n",
        "Incomplete command\n",
        "Empty command given\n",
        "Usage: activate <0 1>\n",
        "Invalid pattern \"(\"\n",
        "% \"show pppoe\" is not supported by cmmd\n",
        "Access denied\n",
    ] {
        assert!(is_error_reply(reply), "{reply}");
    }
    for reply in ["", "1\n", "ipv4 tcp Invalid command \"x\"\n", "a\n% b\n"] {
        assert!(!is_error_reply(reply), "{reply}");
    }
}

#[test]
fn an_alternation_survives_the_round_trip_through_a_session() {
    let command = command_line(&["show", "connections", "|", "egrep", "one|three"]);
    let (finished, _) =
        converse(SessionConfig::default(), CtlClient::new(request(&command, "admin")));
    assert_eq!(finished, Finished { output: "tcp one\ntcp three\n".to_owned(), error: false });
}
