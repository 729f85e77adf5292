//! The CLI server on the event loop: TCP sessions around `cli::Session`.
//!
//! The listener and every session socket are non-blocking mio sources. Bytes read go to the
//! session; its requests come back here: logins and enable passwords are verified on the auth
//! thread (argon2 costs tens of milliseconds, which the loop must never spend), commands are
//! queued as invocations for the daemon to execute. Output is written as the socket accepts it:
//! a session whose client stops reading keeps at most its bounded output buffer, and the daemon
//! produces more reply lines only while [`CliServer::has_room`] says so.
//!
//! Limits: at most `max_sessions` sessions (further clients get one line and are closed), a
//! per-source lockout after repeated failures (`cli::LoginLimiter`), the session's own login
//! and idle timeouts, and a flush deadline for closing sessions.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::{
    Admission, Credentials, Invocation, LockoutPolicy, LoginLimiter, PhcHash, Request, Secret,
    Session, SessionConfig, VerifyMemory,
};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::edge::tokens::TokenRange;

/// Output kept per session before the daemon stops producing reply lines.
pub const HIGH_WATER: usize = 256 * 1024;
/// A closing session gets this long to flush its output.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// Bytes read per readiness event and session (fairness between sessions).
const READ_BUDGET: usize = 64 * 1024;

enum AuthMsg {
    Check { token: Token, serial: u64, enable: bool, user: String, password: Secret },
    Replace { credentials: Credentials, enable: Option<PhcHash> },
}

struct AuthDone {
    token: Token,
    serial: u64,
    enable: bool,
    user: String,
    ok: bool,
}

fn auth_thread(
    rx: Receiver<AuthMsg>,
    tx: Sender<AuthDone>,
    mut creds: Credentials,
    mut enable: Option<PhcHash>,
    wake: Arc<dyn Fn() + Send + Sync>,
) {
    // One argon2 working memory for every verification (see `cli::VerifyMemory`).
    let mut memory = VerifyMemory::default();
    for msg in rx {
        match msg {
            AuthMsg::Replace { credentials, enable: e } => {
                creds = credentials;
                enable = e;
            }
            AuthMsg::Check { token, serial, enable: is_enable, user, password } => {
                let ok = if is_enable {
                    enable.as_ref().is_none_or(|h| h.verify_with(password.expose(), &mut memory))
                } else {
                    creds.verify_with(&user, password.expose(), &mut memory)
                };
                if tx.send(AuthDone { token, serial, enable: is_enable, user, ok }).is_err() {
                    return;
                }
                wake();
            }
        }
    }
}

/// Counters of the CLI.
#[derive(Clone, Copy, Debug, Default)]
pub struct CliCounters {
    /// Sessions accepted.
    pub sessions: u64,
    /// Failed logins.
    pub login_failures: u64,
    /// Failed enable passwords.
    pub enable_failures: u64,
    /// Connections, and logins of open sessions, refused (session limit or lockout).
    pub refused: u64,
    /// Commands executed.
    pub commands: u64,
}

struct Conn {
    stream: TcpStream,
    session: Session,
    peer: SocketAddr,
    serial: u64,
    closing: Option<Instant>,
    logged_in: bool,
}

/// Settings of the server.
#[derive(Clone, Debug)]
pub struct CliSettings {
    /// Session limit.
    pub max_sessions: usize,
    /// Per-session behaviour.
    pub session: SessionConfig,
    /// Per-source lockout.
    pub lockout: LockoutPolicy,
}

/// The server.
pub struct CliServer {
    listener: TcpListener,
    tokens: TokenRange,
    conns: HashMap<Token, Conn>,
    serial: u64,
    settings: CliSettings,
    limiter: LoginLimiter,
    auth_tx: Sender<AuthMsg>,
    auth_rx: Receiver<AuthDone>,
    auth_backlog: VecDeque<AuthMsg>,
    invocations: VecDeque<(Token, Invocation)>,
    /// Sessions whose last read stopped at `READ_BUDGET` with bytes left: the readiness edge
    /// was consumed, so the next turn reads them without waiting for one.
    unread: Vec<Token>,
    counters: CliCounters,
}

impl CliServer {
    /// Bind and register the listener; sessions use tokens `base..base + span`. `wake` is
    /// called by the auth thread when a verification finished.
    #[allow(clippy::too_many_arguments, reason = "composition root passes each piece explicitly")]
    pub fn bind(
        addr: SocketAddr,
        registry: &Registry,
        listener_token: Token,
        base: usize,
        span: usize,
        settings: CliSettings,
        credentials: Credentials,
        enable: Option<PhcHash>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> io::Result<CliServer> {
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        let (auth_tx, rx) = bounded(64);
        let (tx, auth_rx) = bounded(256);
        std::thread::Builder::new()
            .name("cmmd-auth".into())
            .spawn(move || auth_thread(rx, tx, credentials, enable, wake))?;
        Ok(CliServer {
            listener,
            tokens: TokenRange::new(listener_token, base, span),
            conns: HashMap::new(),
            serial: 0,
            limiter: LoginLimiter::new(settings.lockout),
            settings,
            auth_tx,
            auth_rx,
            auth_backlog: VecDeque::new(),
            invocations: VecDeque::new(),
            unread: Vec::new(),
            counters: CliCounters::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// True if `token` belongs to this server.
    pub fn owns(&self, token: Token) -> bool {
        self.tokens.owns(token)
    }

    /// Counters.
    pub fn counters(&self) -> CliCounters {
        self.counters
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        self.conns.len()
    }

    /// New credentials (SIGHUP).
    pub fn replace_credentials(&mut self, credentials: Credentials, enable: Option<PhcHash>) {
        self.settings.session.enable_password_required = enable.is_some();
        self.auth_backlog.push_back(AuthMsg::Replace { credentials, enable });
        self.pump_auth();
    }

    /// Handle readiness of one of this server's tokens.
    pub fn ready(&mut self, registry: &Registry, token: Token, now: Instant) {
        if token == self.tokens.listener() {
            self.accept(registry, now);
            return;
        }
        self.read(token, now);
        self.flush(registry, token, now);
    }

    fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE, ECONNABORTED...: never fatal; the next readiness retries.
                    tracing::warn!(error = %e, "CLI accept failed");
                    return;
                }
            };
            if self.conns.len() >= self.settings.max_sessions {
                self.counters.refused += 1;
                let line = format!(
                    "% Too many sessions ({} open, the limit); try again later\r\n",
                    self.conns.len()
                );
                let _ = stream.write(line.as_bytes());
                tracing::warn!(%peer, limit = self.settings.max_sessions, "CLI session refused: limit reached");
                continue;
            }
            let conns = &self.conns;
            let Some(token) = self.tokens.next_free(|t| conns.contains_key(t)) else { continue };
            if registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            let mut session = Session::new(self.settings.session.clone());
            if let Admission::LockedOut { .. } = self.limiter.check(peer.ip(), now) {
                self.counters.refused += 1;
                tracing::warn!(%peer, "CLI connection from a locked-out source refused");
                session.refuse_locked_out();
            } else {
                session.start(now);
            }
            self.serial += 1;
            self.counters.sessions += 1;
            tracing::info!(%peer, sessions = self.conns.len() + 1, "CLI session opened");
            self.conns.insert(
                token,
                Conn {
                    stream,
                    session,
                    peer,
                    serial: self.serial,
                    closing: None,
                    logged_in: false,
                },
            );
            self.process(token, now);
            self.flush(registry, token, now);
        }
    }

    fn read(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        if conn.closing.is_some() {
            return;
        }
        let mut buf = [0u8; 4096];
        let mut total = 0;
        let mut drained = false;
        while total < READ_BUDGET {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    // The client shut its side: answer what it sent, then close.
                    conn.session.end_of_input();
                    drained = true;
                    break;
                }
                Ok(n) => {
                    total += n;
                    conn.session.receive(&buf[..n], now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.closing = Some(now);
                    drained = true;
                    break;
                }
            }
        }
        if !drained && !self.unread.contains(&token) {
            self.unread.push(token);
        }
        self.process(token, now);
    }

    fn process(&mut self, token: Token, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else { return };
            let Some(request) = conn.session.next_request() else { return };
            match request {
                Request::Authenticate { user, password } => {
                    if let Admission::LockedOut { .. } = self.limiter.check(conn.peer.ip(), now) {
                        // Not verified: the source was locked out while this session was open.
                        self.counters.refused += 1;
                        tracing::warn!(peer = %conn.peer, %user, "CLI login refused: source locked out");
                        conn.session.authenticated(false, now);
                        continue;
                    }
                    let serial = conn.serial;
                    self.auth_backlog.push_back(AuthMsg::Check {
                        token,
                        serial,
                        enable: false,
                        user,
                        password,
                    });
                    self.pump_auth();
                }
                Request::Enable { password } => {
                    let serial = conn.serial;
                    let user = conn.session.user().unwrap_or("").to_string();
                    self.auth_backlog.push_back(AuthMsg::Check {
                        token,
                        serial,
                        enable: true,
                        user,
                        password,
                    });
                    self.pump_auth();
                }
                Request::Execute(invocation) => {
                    self.counters.commands += 1;
                    self.invocations.push_back((token, invocation));
                }
                Request::Close => {
                    conn.closing.get_or_insert(now);
                }
            }
        }
    }

    fn pump_auth(&mut self) {
        while let Some(msg) = self.auth_backlog.pop_front() {
            match self.auth_tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(msg) | TrySendError::Disconnected(msg)) => {
                    self.auth_backlog.push_front(msg);
                    return;
                }
            }
        }
    }

    /// Apply finished verifications (after a wake-up).
    pub fn on_auth_results(&mut self, registry: &Registry, now: Instant) {
        while let Ok(done) = self.auth_rx.try_recv() {
            let Some(conn) = self.conns.get_mut(&done.token) else { continue };
            if conn.serial != done.serial {
                continue;
            }
            let peer = conn.peer;
            if done.enable {
                if !done.ok {
                    self.counters.enable_failures += 1;
                    tracing::warn!(%peer, user = %done.user, "CLI enable password refused");
                }
                conn.session.enable_result(done.ok);
            } else if done.ok {
                conn.logged_in = true;
                self.limiter.record_success(peer.ip(), now);
                tracing::info!(%peer, user = %done.user, "CLI login");
                conn.session.authenticated(true, now);
            } else {
                self.counters.login_failures += 1;
                let admission = self.limiter.record_failure(peer.ip(), now);
                if let Admission::LockedOut { .. } = admission {
                    tracing::warn!(%peer, user = %done.user, "CLI login failed; source locked out");
                } else {
                    tracing::warn!(%peer, user = %done.user, "CLI login failed");
                }
                conn.session.authenticated(false, now);
            }
            self.process(done.token, now);
            self.flush(registry, done.token, now);
        }
        self.pump_auth();
    }

    /// The next command to execute.
    pub fn next_invocation(&mut self) -> Option<(Token, Invocation)> {
        self.invocations.pop_front()
    }

    /// The session of `token`, to write a reply.
    pub fn session(&mut self, token: Token) -> Option<&mut Session> {
        self.conns.get_mut(&token).map(|c| &mut c.session)
    }

    /// The peer of `token`.
    pub fn peer(&self, token: Token) -> Option<IpAddr> {
        self.conns.get(&token).map(|c| c.peer.ip())
    }

    /// True while the session's output is below the high-water mark (produce more lines).
    pub fn has_room(&self, token: Token) -> bool {
        self.conns
            .get(&token)
            .is_some_and(|c| c.session.output_len() < HIGH_WATER && c.closing.is_none())
    }

    /// True if the session still exists.
    pub fn is_open(&self, token: Token) -> bool {
        self.conns.contains_key(&token)
    }

    /// Write what the socket accepts; close the session when it is done.
    pub fn flush(&mut self, registry: &Registry, token: Token, now: Instant) {
        // A finished reply lets the session run the next line the client typed ahead (or
        // close after its end of input): take those requests now, not at the next socket event.
        self.process(token, now);
        let Some(conn) = self.conns.get_mut(&token) else { return };
        loop {
            let pending = conn.session.pending_output();
            if pending.is_empty() {
                break;
            }
            match conn.stream.write(pending) {
                Ok(0) => {
                    conn.closing.get_or_insert(now);
                    break;
                }
                Ok(n) => conn.session.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.session.consume_output(conn.session.output_len());
                    conn.closing.get_or_insert(now);
                    break;
                }
            }
        }
        let drained = conn.session.output_len() == 0;
        let closed = conn.session.is_closed();
        if closed {
            conn.closing.get_or_insert(now);
        }
        if conn.closing.is_some_and(|since| drained || now >= since + CLOSE_FLUSH) {
            self.close(registry, token);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = registry.deregister(&mut conn.stream);
            let reason = conn.session.stats().closed;
            tracing::info!(peer = %conn.peer, reason = ?reason, "CLI session closed");
        }
    }

    /// Go on reading sessions whose input exceeded one turn's budget, run session timers and
    /// close what must close.
    pub fn on_timer(&mut self, registry: &Registry, now: Instant) {
        for token in std::mem::take(&mut self.unread) {
            self.read(token, now);
            self.flush(registry, token, now);
        }
        let due: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.session.next_deadline().is_some_and(|d| d <= now)
                    || c.closing.is_some_and(|s| now >= s + CLOSE_FLUSH)
            })
            .map(|(t, _)| *t)
            .collect();
        for token in due {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.session.on_timer(now);
            }
            self.process(token, now);
            self.flush(registry, token, now);
        }
        self.limiter.prune(now);
    }

    /// Flush every session (after the daemon wrote replies).
    pub fn flush_all(&mut self, registry: &Registry, now: Instant) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            self.flush(registry, t, now);
        }
    }

    /// The earliest session deadline; now while commands wait to be executed or input to be
    /// read.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.invocations.is_empty() || !self.unread.is_empty() {
            return Some(Instant::now());
        }
        self.conns
            .values()
            .filter_map(|c| {
                let close = c.closing.map(|s| s + CLOSE_FLUSH);
                match (c.session.next_deadline(), close) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }
}
