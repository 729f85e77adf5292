//! A tiny, non-blocking HTTP/1.0 server for `/metrics`, `/healthz` and `/readyz`.
//!
//! It lives on the event loop: each connection reads one request (bounded size, bounded
//! time), is answered with one response written without blocking, and is closed. Anything
//! else (methods other than GET/HEAD, oversized requests, slow clients) gets a short error or
//! is dropped. The content is produced by the caller, so this module knows nothing of the
//! daemon's state.
//!
//! The port is reachable from the network (Prometheus scrapes it on the node's address), and
//! the kubelet's probes use it: whatever other clients do, a probe must be answered. So a new
//! connection is never refused. When all [`MAX_CONNECTIONS`] places are taken, the oldest
//! connection that has not sent a whole request is closed to make room (clients that connect
//! and send nothing, or half a request line, only push each other out), and a request that
//! arrived with its connection is answered as soon as it is accepted.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::edge::tokens::TokenRange;

/// Longest request accepted.
const MAX_REQUEST: usize = 4096;
/// A client must send its request within this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many connections at once; beyond, the oldest without a whole request is closed.
pub const MAX_CONNECTIONS: usize = 64;

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Response {
    /// `200 OK` with text.
    pub fn ok(content_type: &'static str, body: String) -> Response {
        Response { status: 200, content_type, body }
    }

    /// A plain-text response with the given status.
    pub fn text(status: u16, body: &str) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8", body: body.to_string() }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The parsed request line.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `GET path` (or HEAD).
    Get {
        /// Path without query string.
        path: &'a str,
        /// HEAD: send no body.
        head: bool,
    },
    /// Another method.
    BadMethod,
    /// Not HTTP.
    Malformed,
}

/// Parse the request once the header block is complete; `None` while incomplete.
pub fn parse_request(buf: &[u8]) -> Option<Request<'_>> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"))?;
    let head = buf.get(..end).and_then(|head| std::str::from_utf8(head).ok());
    let Some(line) = head.and_then(|h| h.lines().next()) else { return Some(Request::Malformed) };
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Some(Request::Malformed);
    };
    if !version.starts_with("HTTP/") {
        return Some(Request::Malformed);
    }
    let path = target.split('?').next().unwrap_or(target);
    match method {
        "GET" => Some(Request::Get { path, head: false }),
        "HEAD" => Some(Request::Get { path, head: true }),
        _ => Some(Request::BadMethod),
    }
}

/// Serialize a response.
pub fn encode(response: &Response, head: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(response.body.as_bytes());
    }
    out
}

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    deadline: Instant,
    /// Order of acceptance: the oldest is evicted first.
    opened: u64,
}

impl Conn {
    /// True once the whole request arrived and the answer is being written.
    fn answering(&self) -> bool {
        !self.output.is_empty()
    }
}

/// The server: a listener plus its connections, registered with tokens from `base`.
pub struct HttpServer {
    listener: TcpListener,
    tokens: TokenRange,
    conns: HashMap<Token, Conn>,
    opened: u64,
    evicted: u64,
}

impl HttpServer {
    /// Bind `addr` and register the listener as `listener_token`; connections use tokens in
    /// `base..base + span`.
    pub fn bind(
        addr: SocketAddr,
        registry: &Registry,
        listener_token: Token,
        base: usize,
        span: usize,
    ) -> io::Result<HttpServer> {
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        Ok(HttpServer {
            listener,
            tokens: TokenRange::new(listener_token, base, span),
            conns: HashMap::new(),
            opened: 0,
            evicted: 0,
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

    /// Connections closed to make room for a new one.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Handle readiness of one of this server's tokens; `respond` builds the answer for a path.
    pub fn ready(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
        respond: &mut dyn FnMut(&str) -> Response,
    ) {
        if token == self.tokens.listener() {
            self.accept(registry, now, respond);
        } else {
            self.serve(registry, token, respond);
        }
    }

    /// Accept every waiting connection. A new connection is never refused: when all places are
    /// taken, the oldest connection that has not sent a whole request is closed (or, if every
    /// one is being answered, the oldest of all), so clients that open connections and send
    /// nothing cannot lock the probes out.
    fn accept(
        &mut self,
        registry: &Registry,
        now: Instant,
        respond: &mut dyn FnMut(&str) -> Response,
    ) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.conns.len() >= MAX_CONNECTIONS {
                        self.evict_one(registry);
                    }
                    let conns = &self.conns;
                    let Some(token) = self.tokens.next_free(|t| conns.contains_key(t)) else {
                        continue;
                    };
                    if registry
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        continue;
                    }
                    self.opened += 1;
                    let conn = Conn {
                        stream,
                        input: Vec::new(),
                        output: Vec::new(),
                        written: 0,
                        deadline: now + REQUEST_TIMEOUT,
                        opened: self.opened,
                    };
                    self.conns.insert(token, conn);
                    // A probe sends its request right after connecting, so it is usually here
                    // already: answer it before later arrivals can make it the oldest.
                    self.serve(registry, token, respond);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn evict_one(&mut self, registry: &Registry) {
        let victim = self
            .conns
            .iter()
            .min_by_key(|(_, conn)| (conn.answering(), conn.opened))
            .map(|(token, _)| *token);
        if let Some(token) = victim {
            self.close(registry, token);
            self.evicted += 1;
        }
    }

    /// Read the request of one connection, answer it when complete, close it when done.
    fn serve(
        &mut self,
        registry: &Registry,
        token: Token,
        respond: &mut dyn FnMut(&str) -> Response,
    ) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let mut done = false;
        if !conn.answering() {
            let mut buf = [0u8; 1024];
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => {
                        done = true;
                        break;
                    }
                    Ok(n) => {
                        conn.input.extend_from_slice(buf.get(..n).unwrap_or_default());
                        if conn.input.len() > MAX_REQUEST {
                            conn.output =
                                encode(&Response::text(400, "request too large\n"), false);
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        done = true;
                        break;
                    }
                }
            }
            if !conn.answering() {
                match parse_request(&conn.input) {
                    Some(Request::Get { path, head }) => conn.output = encode(&respond(path), head),
                    Some(Request::BadMethod) => {
                        conn.output = encode(&Response::text(405, "GET only\n"), false)
                    }
                    Some(Request::Malformed) => {
                        conn.output = encode(&Response::text(400, "bad request\n"), false)
                    }
                    None => {}
                }
            }
        }
        while !done && conn.written < conn.output.len() {
            match conn.stream.write(conn.output.get(conn.written..).unwrap_or_default()) {
                Ok(0) => done = true,
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => done = true,
            }
        }
        if done || (conn.answering() && conn.written >= conn.output.len()) {
            self.close(registry, token);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = registry.deregister(&mut conn.stream);
        }
    }

    /// Drop connections that did not finish in time.
    pub fn expire(&mut self, registry: &Registry, now: Instant) {
        let late: Vec<Token> =
            self.conns.iter().filter(|(_, c)| c.deadline <= now).map(|(t, _)| *t).collect();
        for t in late {
            self.close(registry, t);
        }
    }

    /// The earliest connection deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.values().map(|c| c.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None, "incomplete");
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Request::Get { path: "/metrics", head: false })
        );
        assert_eq!(
            parse_request(b"HEAD /healthz HTTP/1.0\n\n"),
            Some(Request::Get { path: "/healthz", head: true })
        );
        assert_eq!(parse_request(b"POST / HTTP/1.1\r\n\r\n"), Some(Request::BadMethod));
        assert_eq!(parse_request(b"\xff\xfe\r\n\r\n"), Some(Request::Malformed));
        assert_eq!(parse_request(b"hello\r\n\r\n"), Some(Request::Malformed));
    }

    /// 64 clients that send nothing fill every place; a 65th that sends a whole request is
    /// answered at once, and the oldest idle client is the one closed for it.
    #[test]
    fn a_full_server_evicts_the_oldest_idle_connection_for_a_new_one() {
        use std::io::{Read as _, Write as _};
        use std::net::TcpStream as StdStream;

        let poll = mio::Poll::new().unwrap();
        let listener = Token(1);
        let mut server = HttpServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            poll.registry(),
            listener,
            100,
            MAX_CONNECTIONS,
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        let mut respond = |path: &str| Response::text(200, path);
        let mut idle: Vec<StdStream> = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(StdStream::connect(addr).unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
        server.ready(poll.registry(), listener, Instant::now(), &mut respond);
        assert_eq!(server.conns.len(), MAX_CONNECTIONS);
        assert_eq!(server.evicted(), 0);

        let mut probe = StdStream::connect(addr).unwrap();
        probe.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        server.ready(poll.registry(), listener, Instant::now(), &mut respond);
        probe.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut answer = String::new();
        probe.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer:?}");
        assert!(answer.ends_with("/healthz"), "{answer:?}");
        assert_eq!(server.evicted(), 1);
        assert_eq!(server.conns.len(), MAX_CONNECTIONS - 1, "the probe's place is free again");

        let mut oldest = idle.remove(0);
        oldest.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(oldest.read(&mut [0u8; 16]).unwrap(), 0, "the oldest idle client was closed");
        let newest = idle.last_mut().unwrap();
        newest.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        assert!(newest.read(&mut [0u8; 16]).is_err(), "the others are still open (timed out)");
    }

    #[test]
    fn responses() {
        let r = encode(&Response::text(503, "not ready\n"), false);
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("HTTP/1.0 503 Service Unavailable\r\n"));
        assert!(s.contains("Content-Length: 10\r\n"));
        assert!(s.ends_with("\r\n\r\nnot ready\n"));
        let head = String::from_utf8(encode(&Response::text(200, "x"), true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
    }
}
