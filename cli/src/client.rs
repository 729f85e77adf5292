//! The scripting client behind `cmmd ctl`, without I/O.
//!
//! Contract: the caller connects, feeds every byte read to [`CtlClient::receive`], writes
//! [`CtlClient::pending_output`] (then [`CtlClient::consume_output`]) and calls
//! [`CtlClient::closed`] on EOF. The client refuses every telnet option (the server then stays in
//! line mode and echoes nothing), answers `Username:` and `Password:`, sends `enable` first when
//! the command is privileged, sends the command after the prompt followed by `IAC DO
//! TIMING-MARK`, collects the output until the server's `WILL TIMING-MARK` (which it sends once the
//! reply and the next prompt are out, so a reply line that looks like the prompt cannot end the
//! reply early; a server that refuses the mark is read until the prompt comes back) and sends
//! `quit`. [`CtlClient::finished`] then holds the output, without telnet bytes, the echo of the
//! command line, the blank line libcli puts before the prompt, or the prompt, and whether it is
//! an error ([`is_error_reply`]). Read timeouts are the caller's.

use crate::auth::Secret;
use crate::command::Privilege;
use crate::grammar;
use crate::output::OutputBuffer;
use crate::telnet::{Input, Telnet, timing_mark_request};

/// Largest reply collected (bytes); more is an error.
pub const DEFAULT_MAX_REPLY: usize = 256 * 1024 * 1024;

/// What `cmmd ctl` wants to run.
#[derive(Debug, Clone)]
pub struct CtlRequest {
    /// Login name.
    pub user: String,
    /// Login password.
    pub password: Secret,
    /// Enable password, if the server asks one (else the login password is tried).
    pub enable_password: Option<Secret>,
    /// The command line (see [`command_line`]).
    pub command: String,
}

/// The outcome of one `cmmd ctl` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The command's output (lines end with `\n`), or the error.
    pub output: String,
    /// The output is an error: the process should exit non-zero.
    pub error: bool,
}

/// Where the reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndOfReply {
    /// `DO TIMING-MARK` sent, no answer yet: the reply is not over.
    Awaiting,
    /// `WILL TIMING-MARK` received: the reply and the next prompt are complete.
    Marked,
    /// `WONT TIMING-MARK`: the reply ends where the prompt comes back.
    AtPrompt,
}

/// Where the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Login,
    Enabling,
    Running,
    Done,
}

/// The sans-IO scripting client (see the module docs).
#[derive(Debug)]
pub struct CtlClient {
    request: CtlRequest,
    needs_enable: bool,
    telnet: Telnet,
    output: OutputBuffer,
    /// Text received since the last thing the client sent (CR LF turned into `\n`).
    text: Vec<u8>,
    stage: Stage,
    sent_user: bool,
    sent_password: bool,
    prompt: String,
    end: EndOfReply,
    max_reply: usize,
    finished: Option<Finished>,
}

impl CtlClient {
    /// A client for one command.
    pub fn new(request: CtlRequest) -> Self {
        let needs_enable = matches!(
            grammar::parse_line(&request.command, &|_| true),
            Ok(Some(parsed)) if parsed.spec.privilege == Privilege::Privileged
        );
        Self {
            request,
            needs_enable,
            telnet: Telnet::refusing_client(),
            output: OutputBuffer::default(),
            text: Vec::new(),
            stage: Stage::Login,
            sent_user: false,
            sent_password: false,
            prompt: String::new(),
            end: EndOfReply::Awaiting,
            max_reply: DEFAULT_MAX_REPLY,
            finished: None,
        }
    }

    /// Change the largest reply collected.
    pub fn with_max_reply(mut self, bytes: usize) -> Self {
        self.max_reply = bytes;
        self
    }

    /// Bytes read from the server.
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.stage == Stage::Done {
            return;
        }
        for &byte in bytes {
            match self.telnet.feed(byte, &mut self.output) {
                Some(Input::Byte(b'\r')) => self.text.push(b'\n'),
                Some(Input::Byte(0)) => {}
                Some(Input::Byte(data)) => self.text.push(data),
                Some(Input::TimingMark) if self.stage == Stage::Running => {
                    self.end = EndOfReply::Marked;
                    // Nothing of the reply comes after the mark.
                    break;
                }
                Some(Input::TimingMarkRefused) if self.stage == Stage::Running => {
                    self.end = EndOfReply::AtPrompt;
                }
                _ => {}
            }
        }
        self.advance();
    }

    /// The server closed the connection.
    pub fn closed(&mut self) {
        if self.stage == Stage::Done {
            return;
        }
        let during = if self.stage == Stage::Running { "the command" } else { "login" };
        let mut output = String::from_utf8_lossy(&self.text).into_owned();
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str(&format!("connection closed by the server during {during}\n"));
        self.finish(output, true);
    }

    /// Bytes to send to the server.
    pub fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    /// Forget the first `n` pending bytes (they were sent).
    pub fn consume_output(&mut self, n: usize) {
        self.output.consume(n);
    }

    /// The result, once known (the client may still have `quit` to send).
    pub fn finished(&self) -> Option<&Finished> {
        self.finished.as_ref()
    }

    fn send_line(&mut self, line: &str) {
        self.text.clear();
        self.output.push_text(line);
        self.output.push_text("\n");
    }

    fn finish(&mut self, output: String, error: bool) {
        self.stage = Stage::Done;
        self.finished = Some(Finished { output, error });
    }

    fn advance(&mut self) {
        while self.stage != Stage::Done {
            let text = String::from_utf8_lossy(&self.text).into_owned();
            let (complete, tail) = match text.rfind('\n') {
                Some(end) => {
                    (text.get(..end).unwrap_or_default(), text.get(end + 1..).unwrap_or_default())
                }
                None => ("", text.as_str()),
            };
            if self.stage == Stage::Running {
                self.collect(&text);
                return;
            }
            if let Some(error) = complete.lines().find(|line| is_error_line(line)) {
                self.finish(format!("{error}\n"), true);
                return;
            }
            if !self.step(tail) {
                return;
            }
        }
    }

    /// React to the unfinished last line during login and enable; false if nothing happened.
    fn step(&mut self, tail: &str) -> bool {
        if tail.ends_with("Username: ") {
            if self.sent_user {
                self.finish("login refused\n".to_owned(), true);
            } else {
                self.sent_user = true;
                let user = self.request.user.clone();
                self.send_line(&user);
            }
            return true;
        }
        if tail.ends_with("Password: ") {
            let password = match self.stage {
                Stage::Enabling => {
                    self.request.enable_password.as_ref().unwrap_or(&self.request.password)
                }
                _ => &self.request.password,
            }
            .expose()
            .to_owned();
            self.sent_password = true;
            self.send_line(&password);
            return true;
        }
        if !self.sent_password || !is_prompt(tail) {
            return false;
        }
        let privileged = tail.ends_with("# ");
        match self.stage {
            Stage::Login if self.needs_enable && !privileged => {
                self.stage = Stage::Enabling;
                self.send_line("enable");
            }
            Stage::Enabling if !privileged => {
                self.finish("% enable failed\n".to_owned(), true);
            }
            _ => {
                self.prompt = tail.to_owned();
                self.stage = Stage::Running;
                let command = self.request.command.clone();
                self.send_line(&command);
                self.output.push_raw(&timing_mark_request());
            }
        }
        true
    }

    /// Collect the reply until the server marks its end (or, if it refused the mark, until the
    /// prompt comes back at the start of a line).
    fn collect(&mut self, text: &str) {
        let at_prompt = || {
            text.strip_suffix(self.prompt.as_str())
                .filter(|reply| reply.is_empty() || reply.ends_with('\n'))
        };
        let reply = match self.end {
            EndOfReply::Awaiting => None,
            // The mark follows the next prompt (which a command such as `disable` changes).
            EndOfReply::Marked => Some(without_prompt(text)),
            EndOfReply::AtPrompt => at_prompt(),
        };
        match reply {
            Some(reply) => {
                // The server echoes the command line and puts a blank line before the prompt.
                let reply = reply.split_once('\n').map_or("", |(_, rest)| rest);
                let reply = reply.strip_suffix('\n').unwrap_or(reply);
                let error = is_error_reply(reply);
                let reply = reply.to_owned();
                self.send_line("quit");
                self.finish(reply, error);
            }
            None if self.text.len() > self.max_reply => {
                self.send_line("quit");
                self.finish(format!("reply larger than {} bytes\n", self.max_reply), true);
            }
            None => {}
        }
    }
}

/// `text` without its last line if that line is a prompt.
fn without_prompt(text: &str) -> &str {
    match text.rfind('\n') {
        Some(end) if text.get(end + 1..).is_some_and(is_prompt) => text.get(..=end).unwrap_or(text),
        None if is_prompt(text) => "",
        _ => text,
    }
}

fn is_error_line(line: &str) -> bool {
    line.starts_with("% ") || line == "Access denied"
}

/// True if a reply is an error: its first line is one of the session's error lines (libcli's
/// texts, a vendor usage text, `Access denied`, or cmmd's `% …`).
pub fn is_error_reply(reply: &str) -> bool {
    let first = reply.lines().next().unwrap_or_default();
    is_error_line(first)
        || [
            "Invalid command \"",
            "Incomplete command",
            "Empty command given",
            "Count filter does not take arguments",
            "Problem parsing command setting ",
            "Invalid pattern \"",
            "Usage: ",
        ]
        .iter()
        .any(|prefix| first.starts_with(prefix))
}

/// `host> ` or `host# `: a short word followed by `> ` or `# `.
fn is_prompt(tail: &str) -> bool {
    let name = tail.strip_suffix("> ").or_else(|| tail.strip_suffix("# "));
    name.is_some_and(|name| {
        !name.is_empty() && name.len() <= 64 && !name.contains(char::is_whitespace)
    })
}

/// The CLI line of `cmmd ctl`'s arguments: one argument is the whole line as typed at the
/// prompt (`cmmd ctl "show connections | include tcp"`); several are words, joined with the
/// ones that contain blanks, quotes, backslashes, `?` or `|` quoted (so `cmmd ctl show
/// connections '|' include 'https?'` filters instead of asking for help); a lone `|` still
/// separates a filter and a lone `?` still asks for help.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    match words {
        [line] => line.as_ref().to_owned(),
        _ => quote_words(words),
    }
}

fn quote_words<S: AsRef<str>>(words: &[S]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|word| {
            let word = word.as_ref();
            let plain =
                |ch: char| !(ch.is_whitespace() || matches!(ch, '"' | '\'' | '?' | '|' | '\\'));
            // A lone `?` asks for help and a lone `|` starts a filter; inside a word both are
            // text (a regex such as `a|b`).
            if word == "?" || word == "|" || (!word.is_empty() && word.chars().all(plain)) {
                return word.to_owned();
            }
            let escaped = word.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        })
        .collect();
    quoted.join(" ")
}
