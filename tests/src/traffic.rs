//! Real TCP and UDP traffic between namespaces: small servers and clients on std sockets.
//!
//! Servers bind inside their namespace and then serve from an ordinary thread until dropped.
//! Clients run inside theirs and return the local address they used, which is the source of
//! the conntrack tuple the test then looks for. Every blocking call has a timeout.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, bind, connect, socket,
};

use crate::netns::Netns;

/// How long any single network wait of these helpers may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// What a TCP server answers: the request, prefixed.
pub const TCP_REPLY_PREFIX: &[u8] = b"hello ";

/// A server thread that stops and is joined on drop.
#[derive(Debug)]
struct ServerThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    fn spawn(serve_once: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let mut serve_once = serve_once;
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                serve_once();
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP server: for each connection, reads the request until the client's FIN, answers
/// [`TCP_REPLY_PREFIX`] + request, and closes (so the client closes first, the server second).
#[derive(Debug)]
pub struct TcpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    _thread: ServerThread,
}

impl TcpServer {
    /// Binds `addr` inside `netns` and serves until dropped.
    pub fn start(netns: &Netns, addr: SocketAddr) -> io::Result<Self> {
        let listener = netns.run_in(|| TcpListener::bind(addr))??;
        listener.set_nonblocking(true)?;
        let thread = ServerThread::spawn(move || match listener.accept() {
            Ok((stream, _)) => {
                let _ = answer(stream);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        });
        Ok(Self { addr, _thread: thread })
    }
}

fn answer(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut request = Vec::new();
    stream.read_to_end(&mut request)?;
    stream.write_all(&[TCP_REPLY_PREFIX, &request].concat())?;
    stream.shutdown(Shutdown::Both)
}

/// A TCP server for long-lived connections: every connection gets its own thread that echoes
/// what it reads, prefixed with [`TCP_REPLY_PREFIX`] once, and closes after the client's FIN
/// (or after a minute of silence, a bound for tests that forget to close).
#[derive(Debug)]
pub struct TcpHoldServer {
    /// Where it listens.
    pub addr: SocketAddr,
    _thread: ServerThread,
}

/// Longest silence a held connection survives.
pub const HOLD_LIMIT: Duration = Duration::from_secs(60);

impl TcpHoldServer {
    /// Binds `addr` inside `netns` and serves until dropped.
    pub fn start(netns: &Netns, addr: SocketAddr) -> io::Result<Self> {
        let listener = netns.run_in(|| TcpListener::bind(addr))??;
        listener.set_nonblocking(true)?;
        let thread = ServerThread::spawn(move || match listener.accept() {
            Ok((stream, _)) => {
                std::thread::spawn(move || {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(HOLD_LIMIT));
                    let mut stream = stream;
                    let mut request = Vec::new();
                    if stream.read_to_end(&mut request).is_ok() {
                        let _ = stream.write_all(&[TCP_REPLY_PREFIX, &request].concat());
                    }
                    let _ = stream.shutdown(Shutdown::Both);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        });
        Ok(Self { addr, _thread: thread })
    }
}

/// A TCP connection made from inside `netns` to `to`, from the address `source` when given
/// (a client with several addresses), within `timeout` when no source is given.
pub fn connect_in(
    netns: &Netns,
    source: Option<IpAddr>,
    to: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    netns.run_in(|| -> io::Result<TcpStream> {
        let Some(source) = source else {
            return TcpStream::connect_timeout(&to, timeout);
        };
        let family = if to.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        let fd: OwnedFd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
            .map_err(io::Error::from)?;
        match (SocketAddr::new(source, 0), to) {
            (SocketAddr::V4(s), SocketAddr::V4(t)) => {
                bind(fd.as_raw_fd(), &SockaddrIn::from(s)).map_err(io::Error::from)?;
                connect(fd.as_raw_fd(), &SockaddrIn::from(t)).map_err(io::Error::from)?;
            }
            (SocketAddr::V6(s), SocketAddr::V6(t)) => {
                bind(fd.as_raw_fd(), &SockaddrIn6::from(s)).map_err(io::Error::from)?;
                connect(fd.as_raw_fd(), &SockaddrIn6::from(t)).map_err(io::Error::from)?;
            }
            _ => return Err(io::Error::other("source and destination families differ")),
        }
        Ok(TcpStream::from(fd))
    })?
}

/// What a TCP exchange did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpExchange {
    /// The client's address and port: the source of the original tuple.
    pub local: SocketAddr,
    /// What the server answered.
    pub reply: Vec<u8>,
}

/// From inside `netns`: connects to `to`, sends `request`, closes its side, reads the answer.
pub fn tcp_exchange(netns: &Netns, to: SocketAddr, request: &[u8]) -> io::Result<TcpExchange> {
    netns.run_in(|| {
        let mut stream = TcpStream::connect_timeout(&to, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        let local = stream.local_addr()?;
        stream.write_all(request)?;
        stream.shutdown(Shutdown::Write)?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok(TcpExchange { local, reply })
    })?
}

/// A UDP server that echoes every datagram to its sender.
#[derive(Debug)]
pub struct UdpEchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    _thread: ServerThread,
}

impl UdpEchoServer {
    /// Binds `addr` inside `netns` and echoes until dropped.
    pub fn start(netns: &Netns, addr: SocketAddr) -> io::Result<Self> {
        let socket = netns.run_in(|| UdpSocket::bind(addr))??;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let thread = ServerThread::spawn(move || {
            let mut buf = [0; 2048];
            if let Ok((length, peer)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..length], peer);
            }
        });
        Ok(Self { addr, _thread: thread })
    }
}

/// From inside `netns`: sends `datagrams` datagrams to `to`, `interval` apart, each waiting for
/// its echo; returns the client's address. Seven datagrams 0.5 s apart are three seconds of
/// two-way traffic: enough for the kernel to mark the entry ASSURED.
pub fn udp_exchange(
    netns: &Netns,
    to: SocketAddr,
    datagrams: usize,
    interval: Duration,
) -> io::Result<SocketAddr> {
    netns.run_in(|| {
        let any: SocketAddr = if to.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }
            .map_err(io::Error::other)?;
        let socket = UdpSocket::bind(any)?;
        socket.set_read_timeout(Some(IO_TIMEOUT))?;
        socket.connect(to)?;
        let mut buf = [0; 2048];
        for i in 0..datagrams {
            let payload = format!("ping {i}");
            socket.send(payload.as_bytes())?;
            let length = socket.recv(&mut buf)?;
            if buf.get(..length) != Some(payload.as_bytes()) {
                return Err(io::Error::other("the echo differs from the datagram"));
            }
            if i + 1 < datagrams {
                std::thread::sleep(interval);
            }
        }
        socket.local_addr()
    })?
}

/// Calls `probe` every `every` until it returns `Some`, or until `timeout` has passed.
pub fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
