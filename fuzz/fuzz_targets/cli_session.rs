//! The operator CLI: bytes from a telnet client into a session (telnet codec, line editor,
//! login, command parsing, filters), answered like the daemon does; and bytes from a server
//! into the `cmmd ctl` client. Seeds: `seed-corpora.sh` (telnet negotiation, logins, commands).
#![no_main]

use std::time::{Duration, Instant};

use cli::{CtlClient, CtlRequest, Request, Secret, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = SessionConfig {
        max_line: 256,
        max_pending_input: 512,
        max_output: 8192,
        ..SessionConfig::default()
    };
    let mut now = Instant::now();
    let mut session = Session::new(config.clone());
    session.start(now);
    for piece in data.chunks(61) {
        session.receive(piece, now);
        while let Some(request) = session.next_request() {
            match request {
                Request::Authenticate { .. } => session.authenticated(true, now),
                Request::Enable { .. } => session.enable_result(true),
                Request::Execute(_) => {
                    session.reply_line("a line\twith a tab");
                    session.reply_done();
                }
                Request::Close => {}
            }
        }
        // The session closes once its output passes `max_output`; one key (`?`, or the end of
        // a `help` line replayed after login) may add a whole listing (about 4 KiB) first.
        assert!(session.output_len() <= config.max_output + 8192, "output stays bounded");
        let pending = session.output_len();
        session.consume_output(pending);
        now += Duration::from_millis(10);
        session.on_timer(now);
    }
    let mut client = CtlClient::new(CtlRequest {
        user: "admin".to_owned(),
        password: Secret::new("admin"),
        enable_password: None,
        command: "show counters".to_owned(),
    })
    .with_max_reply(4096);
    client.receive(data);
    client.closed();
    assert!(client.finished().is_some(), "a closed connection always finishes the client");
});
