//! One CLI connection as a state machine: bytes in, bytes and requests out.
//!
//! Contract (for the daemon's non-blocking server):
//! - [`Session::start`] queues the negotiation, the banner and `Username: `. Then every read
//!   goes to [`Session::receive`]; every write takes from [`Session::pending_output`] and
//!   reports with [`Session::consume_output`].
//! - After each call, drain [`Session::next_request`]. `Authenticate` and `Enable` are answered
//!   with [`Session::authenticated`] / [`Session::enable_result`] (verify off the event loop);
//!   `Execute` is answered with any number of [`Session::reply_line`] /
//!   [`Session::reply_error`] calls, then [`Session::reply_done`]; `Close` means: flush the
//!   pending output, then close the socket. While a request is outstanding, typed input is
//!   buffered (at most `max_pending_input` bytes) and replayed afterwards.
//! - When the client shuts its sending side (`printf … | ncat`), call
//!   [`Session::end_of_input`]: what it sent is still answered, then the session closes.
//! - Time is an argument: call [`Session::on_timer`] at [`Session::next_deadline`] (login delay,
//!   login timeout, idle timeout).
//! - Back-pressure: stop producing reply lines while [`Session::output_len`] is above your
//!   high-water mark. The session itself never holds more than `max_output` bytes: a client that
//!   floods input without reading its output is disconnected.
//! - The bytes are libcli 1.10's with cmm's print callback: its negotiation, banner and prompts
//!   (a new line before `Username: ` and the command prompt), the echo of every line but
//!   passwords whatever the client negotiated, its error texts, `?`, TAB, `help` and `history`
//!   layouts; reply lines end in CR LF and a new line precedes the next prompt.
//! - Until the client agrees to `WILL ECHO`, `?`, TAB and the arrows are not special: a raw TCP
//!   client (ncat) may end lines in LF alone, and `show ?` at the end of a line lists the
//!   choices.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::auth::Secret;
use crate::command::{Action, Builtin, Command, CommandSpec, Privilege};
use crate::complete::{self, TabAction};
use crate::editor::{EditMode, EditorEvent, LineEditor};
use crate::filter::{FilterRun, OutputFilter};
use crate::grammar;
use crate::lexer::ends_inside_quote;
use crate::listing;
use crate::output::OutputBuffer;
use crate::telnet::{Input, Telnet, timing_mark_reply};

/// The vendor's banner.
pub const DEFAULT_BANNER: &str = "Welcome to the CMM (Conntrack Monitor Module) CLI";

/// Longest login delay, whatever the number of failures.
const MAX_LOGIN_DELAY: Duration = Duration::from_secs(60);

/// Settings of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Prompt name: `<hostname>> ` and `<hostname># `.
    pub hostname: String,
    /// Printed before the first `Username: ` (no trailing newline needed; empty for none).
    pub banner: String,
    /// `enable` asks for a password ([`Request::Enable`]).
    pub enable_password_required: bool,
    /// Privileged commands need `enable`; if false every command runs at `cmm>`.
    pub privileged_commands_need_enable: bool,
    /// Longest input line in bytes; longer lines are refused with one error line.
    pub max_line: usize,
    /// History lines kept per session.
    pub history: usize,
    /// Input buffered while a request is outstanding, in bytes; the rest is dropped.
    pub max_pending_input: usize,
    /// Output buffered for the client, in bytes; above it the session closes.
    pub max_output: usize,
    /// Failed logins before the session is closed.
    pub max_login_failures: u32,
    /// Delay after the first failed login; it doubles with each further failure (1 s, 2 s, …).
    pub login_delay: Duration,
    /// Time allowed from connect to a successful login.
    pub login_timeout: Option<Duration>,
    /// Inactivity at the prompt after which the session is closed.
    pub idle_timeout: Option<Duration>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            hostname: "cmm".to_owned(),
            banner: DEFAULT_BANNER.to_owned(),
            enable_password_required: false,
            privileged_commands_need_enable: true,
            max_line: 4096,
            history: 256,
            max_pending_input: 16 * 1024,
            max_output: 1024 * 1024,
            max_login_failures: 3,
            login_delay: Duration::from_secs(1),
            login_timeout: Some(Duration::from_secs(60)),
            idle_timeout: Some(Duration::from_secs(15 * 60)),
        }
    }
}

/// A command for the daemon with the output filter the session applies to its reply.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The command.
    pub command: Command,
    /// The filter after `|` (applied by [`Session::reply_line`]; informational for the daemon).
    pub filter: Option<OutputFilter>,
}

/// What the session asks of the daemon.
#[derive(Debug, Clone)]
pub enum Request {
    /// Verify these credentials (off the event loop), then call [`Session::authenticated`].
    Authenticate {
        /// The user name as typed (trimmed).
        user: String,
        /// The password as typed.
        password: Secret,
    },
    /// Verify the enable password, then call [`Session::enable_result`].
    Enable {
        /// The password as typed.
        password: Secret,
    },
    /// Run a command and stream its reply.
    Execute(Invocation),
    /// Flush the pending output, then close the connection.
    Close,
}

/// Why a session closed itself (also counted in [`SessionStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `quit`, `exit`, `logout`, Ctrl-D, or the end of the client's input once everything it
    /// sent was answered ([`Session::end_of_input`]).
    Quit,
    /// Too many failed logins in this session.
    LoginFailures,
    /// The source address is locked out ([`Session::refuse_locked_out`]).
    LockedOut,
    /// No login within the login timeout.
    LoginTimeout,
    /// No input within the idle timeout.
    IdleTimeout,
    /// The client did not read its output.
    OutputOverflow,
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// Failed logins.
    pub login_failures: u32,
    /// Failed enable attempts.
    pub enable_failures: u32,
    /// Command lines submitted at the prompt.
    pub commands: u64,
    /// Input bytes dropped (buffer full while a request was outstanding, or during a login delay).
    pub input_dropped: u64,
    /// Lines refused because they exceeded `max_line`.
    pub lines_too_long: u64,
    /// Why the session closed, once it did.
    pub closed: Option<CloseReason>,
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Username,
    Password { user: String },
    Authenticating { user: String },
    LoginDelay { until: Instant },
    Prompt,
    EnablePassword,
    EnableCheck,
    Executing,
    Closed,
}

impl Phase {
    /// Phases that count toward the login timeout.
    fn is_login(&self) -> bool {
        matches!(
            self,
            Self::Username
                | Self::Password { .. }
                | Self::Authenticating { .. }
                | Self::LoginDelay { .. }
        )
    }

    /// Phases where typed input waits for a reply from the daemon.
    fn awaits_daemon(&self) -> bool {
        matches!(self, Self::Authenticating { .. } | Self::EnableCheck | Self::Executing)
    }
}

/// The reply being streamed.
#[derive(Debug)]
struct Reply {
    filter: Option<FilterRun>,
    /// Ctrl-C or `IAC AO`: further lines are dropped.
    cancelled: bool,
}

/// Input kept while the daemon answers, replayed in order afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// A key.
    Key(u8),
    /// `DO TIMING-MARK`.
    TimingMark,
}

/// One CLI connection (see the module docs).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    telnet: Telnet,
    editor: LineEditor,
    output: OutputBuffer,
    requests: VecDeque<Request>,
    phase: Phase,
    privilege: Privilege,
    user: Option<String>,
    /// Keys and timing marks received while a reply was outstanding, in order.
    pending_input: VecDeque<Pending>,
    reply: Option<Reply>,
    started: Option<Instant>,
    last_input: Option<Instant>,
    /// The idle clock restarts at the next [`Session::on_timer`] (a reply just ended).
    idle_restart: bool,
    /// The client sends nothing more: close once its input is answered.
    input_ended: bool,
    window: Option<(u16, u16)>,
    /// The last key was a TAB that left choices: the next TAB lists them (libcli).
    tab_pending: bool,
    stats: SessionStats,
}

impl Session {
    /// A session that has sent nothing yet.
    pub fn new(config: SessionConfig) -> Self {
        let editor = LineEditor::new(config.max_line, config.history);
        Self {
            config,
            telnet: Telnet::server(),
            editor,
            output: OutputBuffer::default(),
            requests: VecDeque::new(),
            phase: Phase::NotStarted,
            privilege: Privilege::Unprivileged,
            user: None,
            pending_input: VecDeque::new(),
            reply: None,
            started: None,
            last_input: None,
            idle_restart: false,
            input_ended: false,
            window: None,
            tab_pending: false,
            stats: SessionStats::default(),
        }
    }

    /// Queue libcli's negotiation (`IAC WILL SGA, IAC WILL ECHO, IAC DO SGA, IAC DO ECHO`), the
    /// banner and `Username: `. Calling it again does nothing.
    pub fn start(&mut self, now: Instant) {
        if self.phase != Phase::NotStarted {
            return;
        }
        self.started = Some(now);
        self.last_input = Some(now);
        self.telnet.start(&mut self.output);
        if !self.config.banner.is_empty() {
            self.output.push_text(&self.config.banner);
            self.output.push_text("\n");
        }
        self.enter(Phase::Username);
    }

    /// Tell a client whose address is locked out, and close. Works before or after [`start`](Self::start).
    pub fn refuse_locked_out(&mut self) {
        if self.phase == Phase::NotStarted {
            self.output.push_text("% Too many failed logins from your address; try again later\n");
        } else {
            self.output
                .push_text("\n% Too many failed logins from your address; try again later\n");
        }
        self.close(CloseReason::LockedOut);
    }

    /// The client will send nothing more (it shut its sending side down). Input already
    /// received is still processed: the outstanding request is answered and buffered lines run.
    /// Then the session closes ([`CloseReason::Quit`]); a failed login closes it at once, as no
    /// retry can come.
    pub fn end_of_input(&mut self) {
        if matches!(self.phase, Phase::NotStarted | Phase::Closed) {
            return;
        }
        self.input_ended = true;
        self.close_if_input_ended();
    }

    fn close_if_input_ended(&mut self) {
        if self.input_ended
            && self.pending_input.is_empty()
            && !self.phase.awaits_daemon()
            && self.phase != Phase::Closed
        {
            self.close(CloseReason::Quit);
        }
    }

    /// Process bytes read from the connection.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.phase, Phase::NotStarted | Phase::Closed) {
            return;
        }
        if !bytes.is_empty() {
            self.last_input = Some(now);
        }
        for &byte in bytes {
            if let Some(input) = self.telnet.feed(byte, &mut self.output) {
                self.on_input(input);
            }
            if self.output.len() > self.config.max_output {
                self.close(CloseReason::OutputOverflow);
            }
            if self.phase == Phase::Closed {
                break;
            }
        }
    }

    /// The next request for the daemon, oldest first.
    pub fn next_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// Bytes waiting to be written to the connection.
    pub fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    /// Number of bytes waiting to be written.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Forget the first `n` pending bytes (they were written).
    pub fn consume_output(&mut self, n: usize) {
        self.output.consume(n);
    }

    /// The answer to [`Request::Authenticate`]. On success the prompt appears; on failure
    /// `Access denied`, then `Username: ` after a growing delay, or the session closes after
    /// `max_login_failures`.
    pub fn authenticated(&mut self, ok: bool, now: Instant) {
        let Phase::Authenticating { user } = &self.phase else { return };
        if ok {
            self.last_input = Some(now);
            self.user = Some(user.clone());
            self.privilege = Privilege::Unprivileged;
            // libcli's line after a successful login: one blank.
            self.output.push_text(" \n");
            self.enter(Phase::Prompt);
            self.replay_pending_input();
            return;
        }
        self.stats.login_failures += 1;
        self.pending_input.clear();
        self.output.push_text("Access denied\n");
        if self.stats.login_failures >= self.config.max_login_failures {
            self.close(CloseReason::LoginFailures);
            return;
        }
        let doublings = self.stats.login_failures.saturating_sub(1).min(16);
        let delay = self.config.login_delay.saturating_mul(1 << doublings).min(MAX_LOGIN_DELAY);
        // A delay that does not fit in an Instant (absurd configuration) means no delay.
        self.phase = Phase::LoginDelay { until: now.checked_add(delay).unwrap_or(now) };
        self.close_if_input_ended();
    }

    /// The answer to [`Request::Enable`].
    pub fn enable_result(&mut self, ok: bool) {
        if self.phase != Phase::EnableCheck {
            return;
        }
        self.idle_restart = true;
        if ok {
            self.privilege = Privilege::Privileged;
        } else {
            self.stats.enable_failures += 1;
            self.output.push_text("Access denied\n");
        }
        self.enter(Phase::Prompt);
        self.replay_pending_input();
    }

    /// One line of the reply to [`Request::Execute`] (passes through the output filter; a line
    /// containing `\n` counts as several lines). Ignored when no command is running.
    pub fn reply_line(&mut self, line: &str) {
        if self.phase != Phase::Executing {
            return;
        }
        for part in line.split('\n') {
            self.emit_line(part.strip_suffix('\r').unwrap_or(part));
        }
    }

    /// An error reply: one `% …` line, never filtered.
    pub fn reply_error(&mut self, message: &str) {
        if self.phase != Phase::Executing {
            return;
        }
        let message = message.trim_end();
        let message = message.strip_prefix("% ").unwrap_or(message);
        self.output.push_text("% ");
        self.output.push_text(message);
        self.output.push_text("\n");
    }

    /// The reply is complete: print the count if the filter counts, then the prompt.
    pub fn reply_done(&mut self) {
        if self.phase != Phase::Executing {
            return;
        }
        self.finish_reply();
        self.replay_pending_input();
    }

    /// True while the running command's output is still wanted (false after Ctrl-C); the daemon
    /// may stop producing lines and call [`reply_done`](Self::reply_done) early.
    pub fn reply_wanted(&self) -> bool {
        self.phase == Phase::Executing && self.reply.as_ref().is_some_and(|reply| !reply.cancelled)
    }

    /// When [`on_timer`](Self::on_timer) must run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let login = match (self.phase.is_login(), self.started, self.config.login_timeout) {
            (true, Some(started), Some(timeout)) => started.checked_add(timeout),
            _ => None,
        };
        let idle = match (&self.phase, self.last_input, self.config.idle_timeout) {
            // Due at once: `on_timer` restarts the clock.
            (Phase::Prompt | Phase::EnablePassword, Some(last), Some(_)) if self.idle_restart => {
                Some(last)
            }
            (Phase::Prompt | Phase::EnablePassword, Some(last), Some(timeout)) => {
                last.checked_add(timeout)
            }
            _ => None,
        };
        let delay = match self.phase {
            Phase::LoginDelay { until } => Some(until),
            _ => None,
        };
        [login, idle, delay].into_iter().flatten().min()
    }

    /// Run the timers that are due.
    pub fn on_timer(&mut self, now: Instant) {
        if std::mem::take(&mut self.idle_restart) {
            self.last_input = Some(now);
        }
        if let Phase::LoginDelay { until } = self.phase
            && now >= until
        {
            self.enter(Phase::Username);
        }
        let deadline = self.next_deadline();
        if deadline.is_none_or(|deadline| now < deadline) {
            return;
        }
        if self.phase.is_login() {
            self.output.push_text("\n% Login timed out\n");
            self.close(CloseReason::LoginTimeout);
        } else if matches!(self.phase, Phase::Prompt | Phase::EnablePassword) {
            self.output.push_text("\n% Idle timeout, closing the session\n");
            self.close(CloseReason::IdleTimeout);
        }
    }

    /// True once the session asked to be closed (it accepts no more input).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The logged-in user.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The current privilege level.
    pub fn privilege(&self) -> Privilege {
        self.privilege
    }

    /// The client's window size (columns, rows) if it sent one with NAWS.
    pub fn window_size(&self) -> Option<(u16, u16)> {
        self.window
    }

    /// Counters of this session.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    // ----- input -----

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Byte(byte) => self.on_key(byte),
            Input::Interrupt => self.on_key(0x03),
            Input::EraseChar => self.on_key(0x7F),
            Input::EraseLine => self.on_key(0x15),
            Input::AbortOutput => self.cancel_reply(),
            Input::AreYouThere => {
                let text = format!("[{}: yes]", self.config.hostname);
                self.notice(&[text]);
            }
            Input::WindowSize { width, height } => self.window = Some((width, height)),
            Input::TimingMark => self.on_timing_mark(),
            Input::TimingMarkRefused => {}
        }
    }

    /// `DO TIMING-MARK`: answered once everything received before it has been answered, so a
    /// client (`cmmd ctl`) knows where a reply ends whatever the reply contains.
    fn on_timing_mark(&mut self) {
        if self.phase.awaits_daemon() {
            self.buffer(Pending::TimingMark);
        } else if self.phase != Phase::Closed {
            self.output.push_raw(&timing_mark_reply());
        }
    }

    fn buffer(&mut self, input: Pending) {
        if self.pending_input.len() < self.config.max_pending_input {
            self.pending_input.push_back(input);
        } else {
            self.stats.input_dropped += 1;
        }
    }

    fn on_key(&mut self, byte: u8) {
        match self.phase {
            Phase::Executing if byte == 0x03 => self.cancel_reply(),
            ref phase if phase.awaits_daemon() => self.buffer(Pending::Key(byte)),
            Phase::LoginDelay { .. } => self.stats.input_dropped += 1,
            Phase::NotStarted | Phase::Closed => {}
            _ => self.edit(byte),
        }
    }

    fn replay_pending_input(&mut self) {
        while !self.phase.awaits_daemon() && self.phase != Phase::Closed {
            // A short buffered line can have a long reply: a client that queues commands
            // without reading is disconnected here as it is in `receive`.
            if self.output.len() > self.config.max_output && !self.pending_input.is_empty() {
                self.close(CloseReason::OutputOverflow);
                break;
            }
            match self.pending_input.pop_front() {
                Some(Pending::Key(byte)) => self.on_key(byte),
                Some(Pending::TimingMark) => self.on_timing_mark(),
                None => break,
            }
        }
        self.close_if_input_ended();
    }

    /// The client echoes nothing itself: it agreed to our `WILL ECHO`.
    fn character_mode(&self) -> bool {
        self.telnet.server_echoes()
    }

    /// A password is being typed: nothing is echoed, Enter does not move to a new line.
    fn secret(&self) -> bool {
        matches!(self.phase, Phase::Password { .. } | Phase::EnablePassword)
    }

    /// libcli echoes every character except passwords, whether or not the client agreed to
    /// `WILL ECHO`; TAB, `?` and the history keys are commands in character mode only.
    fn edit_mode(&self) -> EditMode {
        EditMode {
            echo: !self.secret(),
            command_keys: self.character_mode() && self.phase == Phase::Prompt,
        }
    }

    fn edit(&mut self, byte: u8) {
        let second_tab = std::mem::take(&mut self.tab_pending);
        let mode = self.edit_mode();
        let Some(event) = self.editor.key(byte, mode, &mut self.output) else { return };
        match event {
            EditorEvent::Submit(line) => {
                self.end_input_line();
                self.submit(line);
            }
            EditorEvent::TooLong => {
                self.end_input_line();
                self.stats.lines_too_long += 1;
                let message = format!("% Line too long (limit {} bytes)\n", self.config.max_line);
                self.output.push_text(&message);
                let phase = self.phase.clone();
                self.enter(phase);
            }
            EditorEvent::EndOfInput => {
                self.end_input_line();
                self.close(CloseReason::Quit);
            }
            EditorEvent::Complete => self.tab_complete(second_tab),
            EditorEvent::Help => match self.help_lines(&self.editor.before_cursor()) {
                Some(lines) => self.notice(&lines),
                // libcli rings the bell when nothing can follow.
                None => self.output.push_byte(0x07),
            },
        }
    }

    /// Enter is echoed as a new line, except after a password (libcli).
    fn end_input_line(&mut self) {
        if !self.secret() {
            self.output.push_text("\n");
        }
    }

    fn submit(&mut self, line: String) {
        match &self.phase {
            Phase::Username => {
                let user = line.trim().to_owned();
                let next = if user.is_empty() { Phase::Username } else { Phase::Password { user } };
                self.enter(next);
            }
            Phase::Password { user } => {
                let user = user.clone();
                self.phase = Phase::Authenticating { user: user.clone() };
                self.requests
                    .push_back(Request::Authenticate { user, password: Secret::new(line) });
            }
            Phase::EnablePassword => {
                self.phase = Phase::EnableCheck;
                self.requests.push_back(Request::Enable { password: Secret::new(line) });
            }
            Phase::Prompt => self.run_line(&line),
            _ => {}
        }
    }

    // ----- commands -----

    fn may_run(&self, spec: &CommandSpec) -> bool {
        spec.privilege == Privilege::Unprivileged
            || self.privilege == Privilege::Privileged
            || !self.config.privileged_commands_need_enable
    }

    fn run_line(&mut self, line: &str) {
        self.stats.commands += 1;
        // A line-mode client cannot send `?` on its own: `show ?` + Enter asks for help.
        if !self.character_mode()
            && let Some(text) = line.trim_end().strip_suffix('?')
            && !ends_inside_quote(text)
        {
            let lines = self.help_lines(text).unwrap_or_else(|| vec![self.nothing_follows(text)]);
            self.print_lines(&lines);
            self.enter(Phase::Prompt);
            return;
        }
        if line.is_empty() {
            return self.enter(Phase::Prompt);
        }
        // libcli keeps every line but `history` and lines ending in `?`.
        if !line.ends_with('?') && !line.eq_ignore_ascii_case("history") {
            self.editor.remember(line);
        }
        let parsed = match grammar::parse_line(line, &|spec| self.may_run(spec)) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return self.enter(Phase::Prompt),
            Err(error) => {
                self.output.push_text(&format!("{error}\n"));
                return self.enter(Phase::Prompt);
            }
        };
        match parsed.action {
            Action::Run(command) => {
                self.start_reply(parsed.filter.clone());
                self.phase = Phase::Executing;
                self.requests
                    .push_back(Request::Execute(Invocation { command, filter: parsed.filter }));
            }
            Action::NotSupported => {
                let mut lines = vec![listing::not_supported(parsed.spec)];
                lines.extend(parsed.spec.usage.unwrap_or_default().lines().map(str::to_owned));
                self.print_lines(&lines);
                self.enter(Phase::Prompt);
            }
            Action::Builtin(Builtin::Help) => {
                let lines = listing::commands(|spec| self.may_run(spec));
                self.local_reply(parsed.filter, &lines);
            }
            Action::Builtin(Builtin::History) => {
                let lines = listing::history(self.editor.history());
                self.local_reply(parsed.filter, &lines);
            }
            Action::Builtin(Builtin::Quit) => self.close(CloseReason::Quit),
            Action::Builtin(Builtin::Enable) => {
                if self.privilege == Privilege::Privileged || !self.config.enable_password_required
                {
                    self.privilege = Privilege::Privileged;
                    self.enter(Phase::Prompt);
                } else {
                    self.enter(Phase::EnablePassword);
                }
            }
            Action::Builtin(Builtin::Disable) => {
                self.privilege = Privilege::Unprivileged;
                self.enter(Phase::Prompt);
            }
        }
    }

    /// Output produced by the session itself, through the same filter as a daemon reply.
    fn local_reply(&mut self, filter: Option<OutputFilter>, lines: &[String]) {
        self.start_reply(filter);
        for line in lines {
            if self.output.len() + line.len() + 2 > self.config.max_output {
                return self.close(CloseReason::OutputOverflow);
            }
            self.emit_line(line);
        }
        self.finish_reply();
    }

    fn start_reply(&mut self, filter: Option<OutputFilter>) {
        self.reply = Some(Reply { filter: filter.map(FilterRun::new), cancelled: false });
    }

    fn emit_line(&mut self, line: &str) {
        let Some(reply) = self.reply.as_mut() else { return };
        if reply.cancelled || !reply.filter.as_mut().is_none_or(|filter| filter.pass(line)) {
            return;
        }
        self.output.push_text(line);
        self.output.push_text("\n");
    }

    fn finish_reply(&mut self) {
        self.idle_restart = true;
        if let Some(reply) = self.reply.take()
            && !reply.cancelled
            && let Some(filter) = reply.filter.as_ref()
        {
            for count in filter.counts() {
                self.output.push_text(&format!("{count}\n"));
            }
        }
        self.enter(Phase::Prompt);
    }

    fn cancel_reply(&mut self) {
        if let (Phase::Executing, Some(reply)) = (&self.phase, self.reply.as_mut())
            && !reply.cancelled
        {
            reply.cancelled = true;
            self.pending_input.clear();
            self.output.push_text("^C\n");
        }
    }

    // ----- help and completion -----

    fn completion(&self, text: &str) -> complete::Completion {
        complete::complete(text, &|spec| self.may_run(spec))
    }

    /// The `?` listing for `text` (the line before the cursor); `None` when nothing can follow.
    fn help_lines(&self, text: &str) -> Option<Vec<String>> {
        let completion = self.completion(text);
        (!completion.candidates.is_empty()).then(|| listing::candidates(&completion.candidates))
    }

    /// Why nothing can follow `text` (line mode's answer to `?`).
    fn nothing_follows(&self, text: &str) -> String {
        match grammar::parse_line(text, &|spec| self.may_run(spec)) {
            Err(error) => error.to_string(),
            Ok(_) => "% Nothing can follow here".to_owned(),
        }
    }

    /// TAB as libcli: complete in place, or ring the bell and list on a second TAB. Only at
    /// the end of the line.
    fn tab_complete(&mut self, second: bool) {
        if self.editor.cursor_at_end() {
            let completion = self.completion(&self.editor.before_cursor());
            let typed = completion.partial.chars().count();
            match complete::tab(&completion, second) {
                TabAction::Replace(text) => {
                    let echo = self.edit_mode().echo;
                    self.editor.complete_word(typed, &text, echo, &mut self.output);
                    self.tab_pending = !text.ends_with(' ');
                }
                TabAction::List(entries) => self.notice(&listing::rows(&entries)),
                TabAction::Bell => {
                    self.output.push_byte(0x07);
                    self.tab_pending = true;
                }
                TabAction::Wait => self.tab_pending = true,
                TabAction::Nothing => self.output.push_byte(0x07),
            }
        }
    }

    /// Print lines below the line being typed, then the prompt and the line again.
    fn notice(&mut self, lines: &[String]) {
        let editing = matches!(
            self.phase,
            Phase::Username | Phase::Password { .. } | Phase::Prompt | Phase::EnablePassword
        );
        if editing {
            self.output.push_text("\n");
        }
        self.print_lines(lines);
        if editing {
            self.write_prompt();
            if self.edit_mode().echo {
                self.editor.redraw(&mut self.output);
            }
        }
    }

    /// Print the session's own lines; a listing that would pass the output bound closes the
    /// session instead (the client does not read).
    fn print_lines(&mut self, lines: &[String]) {
        for line in lines {
            if self.output.len() + line.len() + 2 > self.config.max_output {
                self.close(CloseReason::OutputOverflow);
                return;
            }
            self.output.push_text(line);
            self.output.push_text("\n");
        }
    }

    // ----- phases -----

    /// Switch to an input phase with an empty line and print its prompt.
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.editor.clear();
        self.write_prompt();
    }

    /// libcli's prompts: a new line before `Username: ` and the command prompt, none before
    /// `Password: `.
    fn write_prompt(&mut self) {
        let prompt = match self.phase {
            Phase::Username => "\nUsername: ".to_owned(),
            Phase::Password { .. } | Phase::EnablePassword => "Password: ".to_owned(),
            Phase::Prompt => {
                let mark = if self.privilege == Privilege::Privileged { '#' } else { '>' };
                format!("\n{}{mark} ", self.config.hostname)
            }
            _ => return,
        };
        self.output.push_text(&prompt);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.stats.closed = Some(reason);
        self.pending_input.clear();
        self.reply = None;
        self.requests.push_back(Request::Close);
    }
}
