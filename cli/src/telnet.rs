//! Telnet codec (RFC 854, option negotiation after RFC 1143), without I/O.
//!
//! Contract:
//! - [`Telnet::feed`] takes one received byte at a time and returns at most one [`Input`]
//!   for the layers above; everything that belongs to the protocol (IAC commands, option
//!   negotiation, subnegotiation) is consumed here and never reaches the line editor.
//! - Negotiation answers are appended to the caller's [`OutputBuffer`] immediately. An answer is
//!   sent only when an option's state changes, or to refuse an option we do not support, so two
//!   correct peers can never loop.
//! - Line ends are normalised: CR LF, CR NUL and a lone CR become one `\r`; a lone LF (raw TCP
//!   clients such as ncat) is passed on as `\n`. Both mean "Enter" to the editor.
//! - Memory is bounded: the only buffer is the subnegotiation buffer ([`SB_LIMIT`] bytes; longer
//!   subnegotiations are consumed and dropped).
//!
//! Options the server implements: it opens with libcli's bytes, `WILL SGA`, `WILL ECHO` (character-
//! at-a-time mode with remote echo), `DO SGA` and `DO ECHO` (whose answer, either way, is taken
//! silently: libcli asks it and ignores the answer), and accepts `WILL NAWS` (window size) from a
//! client that offers it. Every other option is refused,
//! except TIMING-MARK (RFC 860), which is not a state but a question: `DO TIMING-MARK` comes up as
//! [`Input::TimingMark`], in order with the data around it, and the session answers
//! `WILL TIMING-MARK` once everything typed before it has been answered ([`timing_mark_reply`]).
//! The same decoder serves the scripting client, which refuses every option so that the server
//! stays in line mode and echoes nothing, and which hears the answer to its own
//! `DO TIMING-MARK` as [`Input::TimingMark`]: the end of a reply.

use crate::output::OutputBuffer;

/// Interpret As Command.
pub(crate) const IAC: u8 = 255;
/// Refuse to perform an option (peer asked us).
pub(crate) const DONT: u8 = 254;
/// Ask the peer to perform an option.
pub(crate) const DO: u8 = 253;
/// Refuse to perform an option (we announce).
pub(crate) const WONT: u8 = 252;
/// Offer to perform an option.
pub(crate) const WILL: u8 = 251;
/// Subnegotiation begin.
pub(crate) const SB: u8 = 250;
/// Erase line.
const EL: u8 = 248;
/// Erase character.
const EC: u8 = 247;
/// Are you there.
const AYT: u8 = 246;
/// Abort output.
const AO: u8 = 245;
/// Interrupt process.
const IP: u8 = 244;
/// Break.
const BRK: u8 = 243;
/// Subnegotiation end.
pub(crate) const SE: u8 = 240;

/// Option: the sender echoes what it receives (RFC 857).
pub(crate) const OPT_ECHO: u8 = 1;
/// Option: suppress go-ahead (RFC 858).
pub(crate) const OPT_SGA: u8 = 3;
/// Option: negotiate about window size (RFC 1073).
pub(crate) const OPT_NAWS: u8 = 31;
/// Option: timing mark (RFC 860), a synchronisation point rather than a state.
pub(crate) const OPT_TIMING_MARK: u8 = 6;

/// What a server sends once the input before a `DO TIMING-MARK` has been dealt with.
pub(crate) const fn timing_mark_reply() -> [u8; 3] {
    [IAC, WILL, OPT_TIMING_MARK]
}

/// What a client sends to learn when the server has dealt with everything sent before.
pub(crate) const fn timing_mark_request() -> [u8; 3] {
    [IAC, DO, OPT_TIMING_MARK]
}

/// Longest subnegotiation kept; NAWS needs 4 bytes (8 if every byte is an escaped 255).
pub(crate) const SB_LIMIT: usize = 16;

/// What the codec hands to the layers above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// One data byte (line ends normalised, see the module docs).
    Byte(u8),
    /// `IAC IP` or `IAC BRK`: the user pressed the interrupt key.
    Interrupt,
    /// `IAC EC`: erase the character before the cursor.
    EraseChar,
    /// `IAC EL`: erase the whole line.
    EraseLine,
    /// `IAC AYT`: the peer asks for a sign of life.
    AreYouThere,
    /// `IAC AO`: discard pending output of the running command.
    AbortOutput,
    /// On the server, `IAC DO TIMING-MARK`: answer [`timing_mark_reply`] after the input
    /// before it; on the client, the server's `WILL TIMING-MARK`: everything sent before the
    /// request has been answered.
    TimingMark,
    /// On the client, `WONT TIMING-MARK`: the server does not mark where replies end.
    TimingMarkRefused,
    /// `IAC SB NAWS`: the client's window size (0 means unknown).
    WindowSize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
}

/// The state of one option on one side (RFC 1143 without the queue bit: the server never changes
/// its mind while a request is in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum OptionState {
    /// Disabled.
    #[default]
    No,
    /// We asked to enable it and wait for the answer.
    WantYes,
    /// Enabled.
    Yes,
}

/// Decoder position inside the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// Plain data.
    Data,
    /// After `IAC`.
    Command,
    /// After `IAC WILL|WONT|DO|DONT`: the option byte follows.
    Negotiation(u8),
    /// After `IAC SB`: the option byte follows.
    SubnegotiationOption,
    /// Inside a subnegotiation body.
    Subnegotiation,
    /// After `IAC` inside a subnegotiation body.
    SubnegotiationIac,
}

/// Which options a [`Telnet`] endpoint is willing to enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The CLI server: ECHO and SGA on our side, SGA and NAWS on the peer's.
    Server,
    /// The scripting client: refuses every option, so the server stays in line mode.
    RefuseAll,
}

/// Telnet state of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Telnet {
    role: Role,
    decode: Decode,
    /// The previous data byte was CR: swallow one following LF or NUL.
    after_cr: bool,
    /// Option our side performs: ECHO.
    local_echo: OptionState,
    /// Option our side performs: SGA.
    local_sga: OptionState,
    /// Option the client performs: SGA.
    remote_sga: OptionState,
    /// Option the client performs: NAWS.
    remote_naws: OptionState,
    /// libcli's `DO ECHO` was sent and its answer not yet received.
    remote_echo_asked: bool,
    sb_option: u8,
    sb_buf: [u8; SB_LIMIT],
    sb_len: usize,
    sb_overflow: bool,
}

impl Telnet {
    /// The server side, nothing negotiated yet.
    pub(crate) fn server() -> Self {
        Self::with_role(Role::Server)
    }

    /// A client that refuses every option the server offers or asks for.
    pub(crate) fn refusing_client() -> Self {
        Self::with_role(Role::RefuseAll)
    }

    fn with_role(role: Role) -> Self {
        Self {
            role,
            decode: Decode::Data,
            after_cr: false,
            local_echo: OptionState::No,
            local_sga: OptionState::No,
            remote_sga: OptionState::No,
            remote_naws: OptionState::No,
            remote_echo_asked: false,
            sb_option: 0,
            sb_buf: [0; SB_LIMIT],
            sb_len: 0,
            sb_overflow: false,
        }
    }

    /// Queue libcli's opening negotiation: `IAC WILL SGA, IAC WILL ECHO, IAC DO SGA,
    /// IAC DO ECHO` (`FF FB 03 FF FB 01 FF FD 03 FF FD 01`).
    pub(crate) fn start(&mut self, out: &mut OutputBuffer) {
        self.local_echo = OptionState::WantYes;
        self.local_sga = OptionState::WantYes;
        self.remote_sga = OptionState::WantYes;
        self.remote_echo_asked = true;
        out.push_raw(&[
            IAC, WILL, OPT_SGA, IAC, WILL, OPT_ECHO, IAC, DO, OPT_SGA, IAC, DO, OPT_ECHO,
        ]);
    }

    /// True once the client agreed that the server echoes (`DO ECHO`): the client is then in
    /// character mode and does not echo locally (the session makes TAB, `?` and the arrows
    /// commands then; it echoes in every mode, as libcli does).
    pub(crate) fn server_echoes(&self) -> bool {
        self.local_echo == OptionState::Yes
    }

    /// Decode one received byte; negotiation answers go to `out`.
    pub(crate) fn feed(&mut self, byte: u8, out: &mut OutputBuffer) -> Option<Input> {
        match self.decode {
            Decode::Data => self.data(byte),
            Decode::Command => self.command(byte),
            Decode::Negotiation(verb) => {
                self.decode = Decode::Data;
                self.negotiate(verb, byte, out)
            }
            Decode::SubnegotiationOption => {
                self.sb_option = byte;
                self.sb_len = 0;
                self.sb_overflow = false;
                self.decode = Decode::Subnegotiation;
                None
            }
            Decode::Subnegotiation => {
                if byte == IAC {
                    self.decode = Decode::SubnegotiationIac;
                } else {
                    self.sb_push(byte);
                }
                None
            }
            Decode::SubnegotiationIac => match byte {
                IAC => {
                    self.decode = Decode::Subnegotiation;
                    self.sb_push(IAC);
                    None
                }
                SE => {
                    self.decode = Decode::Data;
                    self.subnegotiation_end()
                }
                // RFC 854 allows no other command here; treat it as the end of a broken
                // subnegotiation and interpret the byte as a command.
                _ => {
                    self.decode = Decode::Data;
                    self.command(byte)
                }
            },
        }
    }

    fn data(&mut self, byte: u8) -> Option<Input> {
        if byte == IAC {
            self.decode = Decode::Command;
            return None;
        }
        let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
        match byte {
            b'\n' | 0 if after_cr => None,
            _ => Some(Input::Byte(byte)),
        }
    }

    fn command(&mut self, byte: u8) -> Option<Input> {
        self.decode = Decode::Data;
        match byte {
            IAC => {
                self.after_cr = false;
                Some(Input::Byte(IAC))
            }
            WILL | WONT | DO | DONT => {
                self.decode = Decode::Negotiation(byte);
                None
            }
            SB => {
                self.decode = Decode::SubnegotiationOption;
                None
            }
            IP | BRK => Some(Input::Interrupt),
            EC => Some(Input::EraseChar),
            EL => Some(Input::EraseLine),
            AYT => Some(Input::AreYouThere),
            AO => Some(Input::AbortOutput),
            // NOP, DM, GA, a stray SE and unassigned codes carry nothing for us.
            _ => None,
        }
    }

    fn sb_push(&mut self, byte: u8) {
        match self.sb_buf.get_mut(self.sb_len) {
            Some(slot) => {
                *slot = byte;
                self.sb_len += 1;
            }
            None => self.sb_overflow = true,
        }
    }

    fn subnegotiation_end(&mut self) -> Option<Input> {
        if self.sb_option != OPT_NAWS || self.sb_overflow {
            return None;
        }
        match self.sb_buf.get(..self.sb_len)? {
            &[w0, w1, h0, h1] => Some(Input::WindowSize {
                width: u16::from_be_bytes([w0, w1]),
                height: u16::from_be_bytes([h0, h1]),
            }),
            _ => None,
        }
    }

    fn negotiate(&mut self, verb: u8, option: u8, out: &mut OutputBuffer) -> Option<Input> {
        let server = self.role == Role::Server;
        // TIMING-MARK questions and answers go up, in order with the data; the other verbs are
        // refused below like any unsupported option.
        match (option, server, verb) {
            (OPT_TIMING_MARK, true, DO) | (OPT_TIMING_MARK, false, WILL) => {
                return Some(Input::TimingMark);
            }
            (OPT_TIMING_MARK, false, WONT) => return Some(Input::TimingMarkRefused),
            _ => {}
        }
        // The answer to libcli's `DO ECHO`: taken silently whatever it is.
        if server && option == OPT_ECHO && matches!(verb, WILL | WONT) && self.remote_echo_asked {
            self.remote_echo_asked = false;
            return None;
        }
        // (enable?, our "yes" answer, our "no" answer, the option's state if we support it)
        let (enable, yes, no, state) = match verb {
            DO | DONT => {
                let state = match option {
                    OPT_ECHO if server => Some(&mut self.local_echo),
                    OPT_SGA if server => Some(&mut self.local_sga),
                    _ => None,
                };
                (verb == DO, WILL, WONT, state)
            }
            _ => {
                let state = match option {
                    OPT_SGA if server => Some(&mut self.remote_sga),
                    OPT_NAWS if server => Some(&mut self.remote_naws),
                    _ => None,
                };
                (verb == WILL, DO, DONT, state)
            }
        };
        let answer = match state {
            Some(state) => transition(state, enable, yes, no),
            // Refusing an option we do not support; a request to disable it is already true.
            None => enable.then_some(no),
        };
        if let Some(answer) = answer {
            out.push_raw(&[IAC, answer, option]);
        }
        None
    }
}

/// RFC 1143 for an option we are willing to have enabled: returns the answer to send, if any.
fn transition(state: &mut OptionState, enable: bool, yes: u8, no: u8) -> Option<u8> {
    match (*state, enable) {
        (OptionState::Yes, true) | (OptionState::No, false) => None,
        // The peer agrees with what we asked for: no answer, or we would loop.
        (OptionState::WantYes, true) => {
            *state = OptionState::Yes;
            None
        }
        // The peer refuses what we asked for.
        (OptionState::WantYes, false) => {
            *state = OptionState::No;
            None
        }
        (OptionState::No, true) => {
            *state = OptionState::Yes;
            Some(yes)
        }
        (OptionState::Yes, false) => {
            *state = OptionState::No;
            Some(no)
        }
    }
}
