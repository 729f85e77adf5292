//! Property tests: hostile bytes never panic and never grow buffers past their bounds.

use proptest::prelude::*;

use crate::auth::Secret;
use crate::client::{CtlClient, CtlRequest};
use crate::complete::{complete, tab};
use crate::editor::{EditMode, LineEditor};
use crate::grammar::parse_line;
use crate::output::OutputBuffer;
use crate::session::{Request, Session, SessionConfig};
use crate::telnet::Telnet;
use crate::tests::t0;

/// Bytes that matter to the codec and the editor.
const SPECIAL: &[u8] =
    &[1, 3, 24, 31, b'\r', b'\n', 0, 0x1B, b'[', b'?', b'\t', 0x03, 0x04, 0x7F, b'|', b'"'];

/// Bytes biased toward telnet commands, options, escapes and line ends (uniform bytes mapped
/// through a table: cheaper to generate than a weighted union per byte).
fn telnet_noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048).prop_map(|raw| {
        raw.into_iter()
            .map(|byte| match byte {
                0..=47 => 0xFF,
                48..=71 => 0xF0 + byte % 15,
                72..=111 => SPECIAL[usize::from(byte) % SPECIAL.len()],
                112..=175 => b'a' + byte % 26,
                _ => byte,
            })
            .collect()
    })
}

fn small_config() -> SessionConfig {
    SessionConfig {
        max_line: 64,
        history: 4,
        max_pending_input: 32,
        max_output: 4096,
        ..SessionConfig::default()
    }
}

/// Drive a session with `input` in chunks, answering every request; checks the bounds.
fn drive(input: &[u8], chunk: usize, accept: bool) {
    let config = small_config();
    let mut session = Session::new(config.clone());
    session.start(t0());
    let mut now = t0();
    let mut requests = 0usize;
    for piece in input.chunks(chunk.max(1)) {
        session.receive(piece, now);
        // The bound is checked after each byte, and one key's echo redraws at most the line
        // three times (libcli echoes even to clients that refused it).
        let slack = 3 * config.max_line + 64;
        assert!(session.output_len() <= config.max_output + slack, "{}", session.output_len());
        while let Some(request) = session.next_request() {
            requests += 1;
            match request {
                Request::Authenticate { .. } => session.authenticated(accept, now),
                Request::Enable { .. } => session.enable_result(accept),
                Request::Execute(_) => {
                    session.reply_line("line one\nline two");
                    session.reply_done();
                }
                Request::Close => {}
            }
        }
        // Each byte can at most end one line, so requests cannot outgrow the input.
        assert!(requests <= input.len() + 1);
        if let Some(deadline) = session.next_deadline() {
            now = now.max(deadline);
            session.on_timer(now);
        }
        // The client reads half of what is pending.
        let half = session.output_len() / 2;
        session.consume_output(half);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sessions_survive_any_bytes(input in telnet_noise(), chunk in 1usize..64, accept in any::<bool>()) {
        drive(&input, chunk, accept);
    }

    #[test]
    fn sessions_survive_uniform_random_bytes(input in prop::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..512) {
        drive(&input, chunk, true);
    }

    #[test]
    fn the_codec_answers_at_most_three_bytes_per_three_bytes(input in telnet_noise()) {
        let mut telnet = Telnet::server();
        let mut out = OutputBuffer::default();
        for &byte in &input {
            let _ = telnet.feed(byte, &mut out);
        }
        prop_assert!(out.len() <= input.len());
    }

    #[test]
    fn the_editor_never_exceeds_its_line_limit(input in telnet_noise(), echo in any::<bool>(), command_keys in any::<bool>()) {
        let mut editor = LineEditor::new(32, 4);
        let mut out = OutputBuffer::default();
        for &byte in &input {
            let _ = editor.key(byte, EditMode { echo, command_keys }, &mut out);
            prop_assert!(editor.line().len() <= 32);
            prop_assert!(editor.before_cursor().len() <= editor.line().len());
        }
        if !echo {
            // Only libcli's bells (Ctrl-C, nothing to erase) reach a client without echo.
            prop_assert!(out.pending().iter().all(|byte| *byte == 0x07));
        }
    }

    #[test]
    fn parsing_and_completion_never_panic(line in "[ -~\\t]{0,80}") {
        let _ = parse_line(&line, &|_| true);
        let _ = tab(&complete(&line, &|_| true), false);
        let _ = tab(&complete(&line, &|_| true), true);
    }

    /// Any POSIX pattern either translates to a regex that compiles, or is refused; a pattern
    /// made only of ordinary characters always matches itself.
    #[test]
    fn posix_translation_is_total_and_literals_match_themselves(
        pattern in r"[\[\](){}|*+?.^$\\a-c:=\-]{0,24}",
        literal in "[a-z0-9 _/=,]{1,16}",
        extended in any::<bool>(),
    ) {
        if let Some(regex) = crate::posix::translate(&pattern, extended) {
            let _ = regex::Regex::new(&regex);
        }
        let translated = crate::posix::translate(&literal, extended).expect("literal");
        let regex = regex::Regex::new(&translated).expect("compiles");
        prop_assert!(regex.is_match(&literal), "{literal:?} -> {translated:?}");
    }

    #[test]
    fn the_client_survives_any_bytes(input in telnet_noise(), chunk in 1usize..64) {
        let mut client = CtlClient::new(CtlRequest {
            user: "u".to_owned(),
            password: Secret::new("p"),
            enable_password: None,
            command: "show version".to_owned(),
        })
        .with_max_reply(1024);
        for piece in input.chunks(chunk) {
            client.receive(piece);
            let pending = client.pending_output().len();
            client.consume_output(pending);
        }
        client.closed();
        prop_assert!(client.finished().is_some());
    }
}

#[test]
fn an_iac_flood_keeps_memory_bounded() {
    let config = small_config();
    let mut session = Session::new(config.clone());
    session.start(t0());
    // Endless subnegotiation, IAC IAC data and refused options, 1 MiB each, the client reading.
    let floods: [Vec<u8>; 3] = [
        [0xFF, 0xFA, 31].into_iter().chain(std::iter::repeat_n(0x41, 1 << 20)).collect(),
        std::iter::repeat_n([0xFF, 0xFF], 1 << 19).flatten().collect(),
        std::iter::repeat_n([0xFF, 0xFD, 99], 350_000).flatten().collect(),
    ];
    for flood in &floods {
        for piece in flood.chunks(1024) {
            session.receive(piece, t0());
            assert!(session.output_len() <= config.max_output);
            let pending = session.output_len();
            session.consume_output(pending);
        }
    }
    assert!(!session.is_closed(), "a client that reads its output is not disconnected");
}
