//! Byte-exact tests of the telnet codec.

use crate::output::OutputBuffer;
use crate::telnet::{
    DO, DONT, IAC, Input, OPT_ECHO, OPT_NAWS, OPT_SGA, OPT_TIMING_MARK, SB, SB_LIMIT, SE, Telnet,
    WILL, WONT,
};

const OPT_TTYPE: u8 = 24;

/// Feed bytes; returns the decoded inputs and the negotiation answers.
fn decode(telnet: &mut Telnet, bytes: &[u8]) -> (Vec<Input>, Vec<u8>) {
    let mut out = OutputBuffer::default();
    let inputs = bytes.iter().filter_map(|&byte| telnet.feed(byte, &mut out)).collect();
    (inputs, out.pending().to_vec())
}

fn started() -> Telnet {
    let mut telnet = Telnet::server();
    let mut out = OutputBuffer::default();
    telnet.start(&mut out);
    telnet
}

fn answer(telnet: &mut Telnet, verb: u8, option: u8) -> Vec<u8> {
    let (inputs, replies) = decode(telnet, &[IAC, verb, option]);
    assert!(inputs.is_empty());
    replies
}

#[test]
fn start_sends_libcli_negotiation() {
    let mut telnet = Telnet::server();
    let mut out = OutputBuffer::default();
    telnet.start(&mut out);
    assert_eq!(
        out.pending(),
        &[0xFF, 0xFB, 0x03, 0xFF, 0xFB, 0x01, 0xFF, 0xFD, 0x03, 0xFF, 0xFD, 0x01]
    );
    assert!(!telnet.server_echoes(), "not character mode before the client agrees");
}

#[test]
fn the_answer_to_do_echo_is_taken_silently_once() {
    for answer_verb in [WILL, WONT] {
        let mut telnet = started();
        assert_eq!(answer(&mut telnet, answer_verb, OPT_ECHO), b"");
        // Afterwards the client echoing is not wanted.
        assert_eq!(answer(&mut telnet, WILL, OPT_ECHO), [IAC, DONT, OPT_ECHO]);
    }
}

#[test]
fn do_for_an_option_we_offered_is_acknowledged_silently() {
    let mut telnet = started();
    assert_eq!(answer(&mut telnet, DO, OPT_ECHO), b"");
    assert!(telnet.server_echoes());
    assert_eq!(answer(&mut telnet, DO, OPT_SGA), b"");
    // Repeating an agreed DO changes nothing and is not answered (no loops).
    assert_eq!(answer(&mut telnet, DO, OPT_ECHO), b"");
}

#[test]
fn dont_for_an_option_we_offered_is_a_refusal_not_answered() {
    let mut telnet = started();
    assert_eq!(answer(&mut telnet, DONT, OPT_ECHO), b"");
    assert!(!telnet.server_echoes());
    // Now disabled: another DONT is ignored, a later DO is accepted with WILL.
    assert_eq!(answer(&mut telnet, DONT, OPT_ECHO), b"");
    assert_eq!(answer(&mut telnet, DO, OPT_ECHO), [IAC, WILL, OPT_ECHO]);
    assert!(telnet.server_echoes());
}

#[test]
fn dont_for_an_enabled_option_is_answered_with_wont() {
    let mut telnet = started();
    answer(&mut telnet, DO, OPT_ECHO);
    assert_eq!(answer(&mut telnet, DONT, OPT_ECHO), [IAC, WONT, OPT_ECHO]);
    assert!(!telnet.server_echoes());
    answer(&mut telnet, DO, OPT_SGA);
    assert_eq!(answer(&mut telnet, DONT, OPT_SGA), [IAC, WONT, OPT_SGA]);
}

#[test]
fn do_before_start_is_accepted_with_will() {
    let mut telnet = Telnet::server();
    assert_eq!(answer(&mut telnet, DO, OPT_ECHO), [IAC, WILL, OPT_ECHO]);
    assert!(telnet.server_echoes());
    assert_eq!(answer(&mut telnet, DO, OPT_SGA), [IAC, WILL, OPT_SGA]);
    assert_eq!(answer(&mut telnet, WILL, OPT_NAWS), [IAC, DO, OPT_NAWS]);
    assert_eq!(answer(&mut telnet, WILL, OPT_SGA), [IAC, DO, OPT_SGA]);
}

#[test]
fn unsupported_options_are_refused_and_disabling_them_is_ignored() {
    let mut telnet = started();
    assert_eq!(answer(&mut telnet, DO, OPT_TTYPE), [IAC, WONT, OPT_TTYPE]);
    assert_eq!(answer(&mut telnet, DONT, OPT_TTYPE), b"");
    assert_eq!(answer(&mut telnet, WILL, OPT_TTYPE), [IAC, DONT, OPT_TTYPE]);
    assert_eq!(answer(&mut telnet, WONT, OPT_TTYPE), b"");
    assert_eq!(answer(&mut telnet, DO, OPT_NAWS), [IAC, WONT, OPT_NAWS]);
}

#[test]
fn will_and_wont_for_options_we_asked() {
    let mut telnet = started();
    assert_eq!(answer(&mut telnet, WILL, OPT_SGA), b"");
    // NAWS is not asked (libcli does not), but accepted when offered.
    assert_eq!(answer(&mut telnet, WILL, OPT_NAWS), [IAC, DO, OPT_NAWS]);
    assert_eq!(answer(&mut telnet, WILL, OPT_NAWS), b"");
    assert_eq!(answer(&mut telnet, WONT, OPT_NAWS), [IAC, DONT, OPT_NAWS]);
    assert_eq!(answer(&mut telnet, WONT, OPT_NAWS), b"");
    assert_eq!(answer(&mut telnet, WILL, OPT_NAWS), [IAC, DO, OPT_NAWS]);
    // A refusal of what we asked is not answered.
    let mut telnet = started();
    assert_eq!(answer(&mut telnet, WONT, OPT_SGA), b"");
    assert_eq!(answer(&mut telnet, WILL, OPT_SGA), [IAC, DO, OPT_SGA]);
}

#[test]
fn refusing_client_refuses_everything() {
    let mut telnet = Telnet::refusing_client();
    assert_eq!(answer(&mut telnet, WILL, OPT_ECHO), [IAC, DONT, OPT_ECHO]);
    assert_eq!(answer(&mut telnet, WILL, OPT_SGA), [IAC, DONT, OPT_SGA]);
    assert_eq!(answer(&mut telnet, DO, OPT_SGA), [IAC, WONT, OPT_SGA]);
    assert_eq!(answer(&mut telnet, DO, OPT_NAWS), [IAC, WONT, OPT_NAWS]);
    assert_eq!(answer(&mut telnet, DONT, OPT_ECHO), b"");
    assert_eq!(answer(&mut telnet, WONT, OPT_ECHO), b"");
}

#[test]
fn timing_marks_go_up_in_order_with_the_data_and_are_answered_by_the_session() {
    // Server: DO TIMING-MARK between two data bytes, no automatic answer.
    let mut telnet = started();
    let (inputs, replies) = decode(&mut telnet, &[b'a', IAC, DO, OPT_TIMING_MARK, b'b']);
    assert_eq!(inputs, [Input::Byte(b'a'), Input::TimingMark, Input::Byte(b'b')]);
    assert!(replies.is_empty());
    // A client offering it is refused like any option the server does not perform.
    assert_eq!(answer(&mut telnet, WILL, OPT_TIMING_MARK), [IAC, DONT, OPT_TIMING_MARK]);
    // Client: the server's WILL is the mark, its WONT a refusal; a DO is refused.
    let mut client = Telnet::refusing_client();
    let (inputs, _) = decode(&mut client, &[IAC, WILL, OPT_TIMING_MARK]);
    assert_eq!(inputs, [Input::TimingMark]);
    let (inputs, _) = decode(&mut client, &[IAC, WONT, OPT_TIMING_MARK]);
    assert_eq!(inputs, [Input::TimingMarkRefused]);
    assert_eq!(answer(&mut client, DO, OPT_TIMING_MARK), [IAC, WONT, OPT_TIMING_MARK]);
}

#[test]
fn naws_gives_the_window_size() {
    let mut telnet = started();
    let (inputs, replies) = decode(&mut telnet, &[IAC, SB, OPT_NAWS, 0, 132, 0, 43, IAC, SE]);
    assert_eq!(inputs, [Input::WindowSize { width: 132, height: 43 }]);
    assert!(replies.is_empty());
    // 255 inside a subnegotiation is escaped as IAC IAC.
    let (inputs, _) = decode(&mut telnet, &[IAC, SB, OPT_NAWS, 0, IAC, IAC, 1, 0, IAC, SE]);
    assert_eq!(inputs, [Input::WindowSize { width: 255, height: 256 }]);
}

#[test]
fn malformed_and_oversized_subnegotiations_are_dropped() {
    let mut telnet = started();
    // Wrong length.
    let (inputs, _) = decode(&mut telnet, &[IAC, SB, OPT_NAWS, 0, 80, 0, IAC, SE, b'x']);
    assert_eq!(inputs, [Input::Byte(b'x')]);
    // Longer than the buffer: consumed, nothing kept, decoding resumes after IAC SE.
    let mut flood = vec![IAC, SB, OPT_NAWS];
    flood.extend(std::iter::repeat_n(7u8, SB_LIMIT * 100));
    flood.extend([IAC, SE, b'y']);
    let (inputs, _) = decode(&mut telnet, &flood);
    assert_eq!(inputs, [Input::Byte(b'y')]);
    // Another option's subnegotiation is ignored.
    let (inputs, _) = decode(&mut telnet, &[IAC, SB, 24, 0, b'v', b't', IAC, SE, b'z']);
    assert_eq!(inputs, [Input::Byte(b'z')]);
}

#[test]
fn iac_iac_is_a_data_byte() {
    let mut telnet = started();
    let (inputs, _) = decode(&mut telnet, &[b'a', IAC, IAC, b'b']);
    assert_eq!(inputs, [Input::Byte(b'a'), Input::Byte(0xFF), Input::Byte(b'b')]);
}

#[test]
fn line_ends_are_normalised() {
    let mut telnet = started();
    let bytes = |inputs: Vec<Input>| -> Vec<u8> {
        inputs
            .into_iter()
            .map(|input| match input {
                Input::Byte(byte) => byte,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    assert_eq!(bytes(decode(&mut telnet, b"a\r\nb").0), b"a\rb");
    assert_eq!(bytes(decode(&mut telnet, b"a\r\0b").0), b"a\rb");
    assert_eq!(bytes(decode(&mut telnet, b"a\nb").0), b"a\nb");
    assert_eq!(bytes(decode(&mut telnet, b"a\rb").0), b"a\rb");
    assert_eq!(bytes(decode(&mut telnet, b"\r\r\n").0), b"\r\r");
    // Split across calls: the LF after a CR in the previous read is still swallowed.
    assert_eq!(bytes(decode(&mut telnet, b"c\r").0), b"c\r");
    assert_eq!(bytes(decode(&mut telnet, b"\nd").0), b"d");
    // A NUL that does not follow CR is data (the editor ignores it).
    assert_eq!(bytes(decode(&mut telnet, b"\0").0), b"\0");
}

#[test]
fn commands_map_to_keys() {
    let mut telnet = started();
    let (inputs, replies) = decode(
        &mut telnet,
        &[IAC, 244, IAC, 243, IAC, 247, IAC, 248, IAC, 246, IAC, 245, IAC, 241, IAC, 242, IAC, 249],
    );
    assert_eq!(
        inputs,
        [
            Input::Interrupt,
            Input::Interrupt,
            Input::EraseChar,
            Input::EraseLine,
            Input::AreYouThere,
            Input::AbortOutput
        ]
    );
    assert!(replies.is_empty());
}

#[test]
fn sequences_split_byte_by_byte_decode_the_same() {
    let stream: Vec<u8> = [
        &[IAC, DO, OPT_ECHO][..],
        b"ab",
        &[IAC, SB, OPT_NAWS, 0, 80, 0, 24, IAC, SE],
        &[IAC, WILL, OPT_TTYPE],
        b"\r\n",
    ]
    .concat();
    let mut whole = started();
    let expected = decode(&mut whole, &stream);
    let mut split = started();
    let mut inputs = Vec::new();
    let mut replies = Vec::new();
    for byte in &stream {
        let (mut i, mut r) = decode(&mut split, std::slice::from_ref(byte));
        inputs.append(&mut i);
        replies.append(&mut r);
    }
    assert_eq!((inputs, replies), expected);
    assert_eq!(
        expected,
        (
            vec![
                Input::Byte(b'a'),
                Input::Byte(b'b'),
                Input::WindowSize { width: 80, height: 24 },
                Input::Byte(b'\r')
            ],
            vec![IAC, DONT, OPT_TTYPE]
        )
    );
}

#[test]
fn output_text_is_nvt_encoded() {
    let mut out = OutputBuffer::default();
    out.push_text("a\nb\r\nc");
    out.push_data(&[0xFF, b'\n']);
    assert_eq!(out.pending(), b"a\r\nb\r\nc\xFF\xFF\r\n");
    out.consume(3);
    assert_eq!(out.pending(), b"b\r\nc\xFF\xFF\r\n");
    assert_eq!(out.len(), 8);
    out.consume(100);
    assert_eq!(out.len(), 0);
    assert_eq!(out.pending(), b"");
}
