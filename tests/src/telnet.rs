//! Clients of the daemon's telnet CLI for tests: a raw TCP client that never negotiates (what
//! `ncat` is to the server, but scriptable and byte-exact), and the real `telnet` program driven
//! through a pseudo-terminal by an `expect` script.
//!
//! [`CliClient`] keeps every byte it received ([`CliClient::raw`]) and a decoded transcript with
//! telnet commands removed and carriage returns dropped, which [`CliClient::expect`] and
//! [`CliClient::command`] consume from the front. It answers no option, so the server stays in
//! line mode; as libcli, the server still echoes each command line, and puts a blank line
//! before each prompt: [`CliClient::command`] returns the reply without either. Every read has
//! a deadline; a wait that runs out is an error that carries what was received.
//!
//! [`run_expect`] runs an expect script (with [`EXPECT_PRELUDE`]'s `want` and `want_re`
//! procedures, which fail the script on a timeout or an early end of file) inside a namespace
//! and returns what the terminal showed.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::traffic::connect_in;

/// The unprivileged prompt.
pub const PROMPT: &str = "cmm> ";
/// The privileged prompt (after `enable`).
pub const ENABLED_PROMPT: &str = "cmm# ";
/// What the server sends first, as libcli: `IAC WILL SGA, IAC WILL ECHO, IAC DO SGA, IAC DO ECHO`.
pub const NEGOTIATION: [u8; 12] =
    [0xFF, 0xFB, 0x03, 0xFF, 0xFB, 0x01, 0xFF, 0xFD, 0x03, 0xFF, 0xFD, 0x01];
/// Default deadline of one wait.
pub const WAIT: Duration = Duration::from_secs(15);

/// Where the telnet decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decode {
    Data,
    Iac,
    Option,
    Subnegotiation,
    SubnegotiationIac,
}

/// A raw TCP client of the CLI (see the module docs).
#[derive(Debug)]
pub struct CliClient {
    stream: TcpStream,
    raw: Vec<u8>,
    text: Vec<u8>,
    seen: usize,
    decode: Decode,
    closed: bool,
}

impl CliClient {
    /// Connect from inside `netns` to `to`.
    pub fn connect(netns: &Netns, to: SocketAddr) -> io::Result<CliClient> {
        Ok(CliClient::new(connect_in(netns, None, to, WAIT)?))
    }

    /// Connect from inside `netns` to `to` with the source address `source` (one of the
    /// namespace's addresses): a client from another host, as far as the server can tell.
    pub fn connect_from(netns: &Netns, source: IpAddr, to: SocketAddr) -> io::Result<CliClient> {
        Ok(CliClient::new(connect_in(netns, Some(source), to, WAIT)?))
    }

    fn new(stream: TcpStream) -> CliClient {
        CliClient {
            stream,
            raw: Vec::new(),
            text: Vec::new(),
            seen: 0,
            decode: Decode::Data,
            closed: false,
        }
    }

    /// Every byte received so far, telnet commands included.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The decoded transcript so far (telnet commands removed, CR dropped).
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// True once the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The socket, e.g. to shrink its receive buffer or shut one direction.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Send bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Send `line` and a line feed (what a line-mode client sends for Enter).
    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        self.send(format!("{line}\n").as_bytes())
    }

    /// Close our sending direction (the server reads end of input).
    pub fn finish_input(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    fn decode(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.decode = match (self.decode, byte) {
                (Decode::Data, 0xFF) => Decode::Iac,
                (Decode::Data, b'\r') => Decode::Data,
                (Decode::Data, _) => {
                    self.text.push(byte);
                    Decode::Data
                }
                (Decode::Iac, 0xFF) => {
                    self.text.push(0xFF);
                    Decode::Data
                }
                (Decode::Iac, 0xFB..=0xFE) => Decode::Option,
                (Decode::Iac, 0xFA) => Decode::Subnegotiation,
                (Decode::Iac | Decode::Option, _) => Decode::Data,
                (Decode::Subnegotiation, 0xFF) => Decode::SubnegotiationIac,
                (Decode::Subnegotiation, _) => Decode::Subnegotiation,
                (Decode::SubnegotiationIac, 0xF0) => Decode::Data,
                (Decode::SubnegotiationIac, _) => Decode::Subnegotiation,
            };
        }
    }

    /// Read once, waiting at most until `deadline`; false when nothing came in time.
    fn read_some(&mut self, deadline: Instant) -> io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || self.closed {
            return Ok(false);
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Ok(false)
            }
            Ok(n) => {
                let got = buf.get(..n).unwrap_or_default();
                self.raw.extend_from_slice(got);
                self.decode(got);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Read until `done(unconsumed text)` gives the length to consume, the connection closes or
    /// `timeout` passes; returns the consumed text.
    fn read_until(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[u8]) -> Option<usize>,
    ) -> io::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let fresh = self.text.get(self.seen..).unwrap_or_default();
            if let Some(end) = done(fresh) {
                let consumed = String::from_utf8_lossy(fresh.get(..end).unwrap_or_default());
                let consumed = consumed.into_owned();
                self.seen += end;
                return Ok(consumed);
            }
            if !self.read_some(deadline)? && (self.closed || Instant::now() >= deadline) {
                let fresh = String::from_utf8_lossy(self.text.get(self.seen..).unwrap_or_default());
                let why =
                    if self.closed { "the server closed the connection" } else { "timed out" };
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("waiting for {what}: {why}; received since the last match: {fresh:?}"),
                ));
            }
        }
    }

    /// Wait for `needle`; returns the text up to and including it.
    pub fn expect(&mut self, needle: &str) -> io::Result<String> {
        self.expect_within(needle, WAIT)
    }

    /// [`expect`](Self::expect) with a deadline of its own.
    pub fn expect_within(&mut self, needle: &str, timeout: Duration) -> io::Result<String> {
        let pattern = needle.as_bytes().to_vec();
        self.read_until(&format!("{needle:?}"), timeout, |fresh| {
            fresh.windows(pattern.len()).position(|w| w == pattern).map(|at| at + pattern.len())
        })
    }

    /// Answer `Username:` and `Password:` and wait for the prompt.
    pub fn login(&mut self, user: &str, password: &str) -> io::Result<()> {
        self.expect("Username: ")?;
        self.send_line(user)?;
        self.expect("Password: ")?;
        self.send_line(password)?;
        self.expect(PROMPT).map(drop)
    }

    /// Run one command line and return its reply: what the server sent before the next
    /// prompt (`cmm> ` or `cmm# `), without the echo of the line, the blank line before the
    /// prompt, or the prompt. The echo must be exactly the line sent.
    pub fn command(&mut self, line: &str) -> io::Result<String> {
        self.send_line(line)?;
        let reply = self.reply()?;
        match reply.strip_prefix(line).and_then(|rest| rest.strip_prefix('\n')) {
            Some(rest) => Ok(rest.to_string()),
            None => Err(io::Error::other(format!("{line:?} was not echoed: {reply:?}"))),
        }
    }

    /// Wait for the next prompt; returns what came before it, without the blank line libcli
    /// puts before a prompt.
    pub fn reply(&mut self) -> io::Result<String> {
        let reply = self.read_until("a prompt", WAIT, |fresh| {
            [PROMPT, ENABLED_PROMPT]
                .iter()
                .any(|p| fresh.ends_with(p.as_bytes()))
                .then_some(fresh.len())
        })?;
        let reply = [PROMPT, ENABLED_PROMPT].iter().find_map(|p| reply.strip_suffix(p));
        let reply = reply.unwrap_or_default();
        Ok(reply.strip_suffix('\n').unwrap_or(reply).to_string())
    }

    /// Wait until the server closes the connection; returns the rest of the transcript.
    pub fn expect_closed(&mut self, timeout: Duration) -> io::Result<String> {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            if !self.read_some(deadline)? && Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the server kept the connection open; received: {:?}",
                        self.transcript()
                    ),
                ));
            }
        }
        let rest = String::from_utf8_lossy(self.text.get(self.seen..).unwrap_or_default());
        let rest = rest.into_owned();
        self.seen = self.text.len();
        Ok(rest)
    }
}

/// Tcl procedures every script of [`run_expect`] starts with: `want PATTERN` waits for exact
/// text and `want_re REGEX` for a regular expression; both end the script with exit code 2 and
/// a message on a timeout or an early end of file.
pub const EXPECT_PRELUDE: &str = r#"
set timeout 15
log_user 1
proc want {pattern} {
    expect {
        -exact $pattern {}
        timeout { send_user "\nEXPECT-FAILED timeout waiting for {$pattern}\n"; exit 2 }
        eof { send_user "\nEXPECT-FAILED end of file waiting for {$pattern}\n"; exit 2 }
    }
}
proc want_re {pattern} {
    expect {
        -re $pattern {}
        timeout { send_user "\nEXPECT-FAILED timeout waiting for /$pattern/\n"; exit 2 }
        eof { send_user "\nEXPECT-FAILED end of file waiting for /$pattern/\n"; exit 2 }
    }
}
"#;

/// The start of an expect script for [`run_expect`]: the real `telnet` to the CLI on
/// 127.0.0.1:2103, logged in as admin/admin, at the `cmm> ` prompt.
pub const TELNET_LOGIN: &str = r#"
spawn telnet 127.0.0.1 2103
want "Username: "
send "admin\r"
want "Password: "
send "admin\r"
want "cmm> "
"#;

/// Run `expect` with [`EXPECT_PRELUDE`] followed by `script` inside `netns`; returns what the
/// spawned programs printed (the terminal's view, CR LF line ends). A failed `want` is an
/// error carrying the transcript.
pub fn run_expect(netns: &Netns, script: &str) -> io::Result<String> {
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(EXPECT_PRELUDE.as_bytes())?;
    file.write_all(script.as_bytes())?;
    file.flush()?;
    let output = Command::new("ip")
        .args(["netns", "exec", netns.name(), "expect", "-f"])
        .arg(file.path())
        .stdin(Stdio::null())
        .output()?;
    let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(transcript)
    } else {
        Err(io::Error::other(format!(
            "expect failed ({}): {}\ntranscript:\n{transcript}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
