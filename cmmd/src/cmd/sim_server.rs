//! A software cdx in its own process (`cmmd sim serve`), so that it outlives the daemon the way
//! `cdx.ko` outlives `cmm`: restarts, SIGKILL and reconciliation are then tested for real.
//!
//! The server runs the `cdx-sys` sim and relays FCI bytes unchanged between it and Unix
//! `SOCK_SEQPACKET` connections on a socket path. A client opens a connection and sends one
//! byte first: `C` for the command channel, `E` for the event channel (the daemon opens both;
//! a new one replaces the old), or `K` followed by a text command for control
//! (`cmmd sim ctl`: `show`, `activate all|SRC DST SPORT DPORT`, `fault …`), answered with one
//! message and closed. The relay is a plain blocking `poll(2)` loop: this process has no other
//! work. Commands are answered in that loop ([`sim::attach`]: the model runs inside the
//! sim socket's `send`, as cdx runs inside `fci.ko`'s `sendmsg`), every request queued on the
//! command channel at each wake-up, so a client that pipelines (the daemon keeps up to a
//! window of requests in flight) pays one wake-up per batch, not a thread hand-off per
//! command. A message on the command channel may hold several requests back to back (the
//! daemon sends its window as one, [`cdx_sys::fci::PackedSocket`]); replies leave in the
//! order of the requests, packed the same way, so a window costs one message each way.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use cdx_sys::fci::{DatagramSocket, FciError, MAX_PACK, PairSocket, pack_into, unpack};
use cdx_sys::sim::{self, SimConfig, SimHandle, SimSocket};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, listen, socket,
};

use crate::edge::control::SimControl;

const MAX_MESSAGE: usize = 64 * 1024;

/// Requests answered per wake-up at most, so that the event channel and new connections are
/// served between the batches of a client that never stops sending.
const REQUESTS_PER_TURN: usize = 256;

fn seqpacket() -> io::Result<OwnedFd> {
    Ok(socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?)
}

/// Connect one channel (`C` or `E`) to a sim server.
fn connect_channel(path: &Path, kind: u8) -> io::Result<PairSocket> {
    let fd = seqpacket()?;
    nix::sys::socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    let socket = PairSocket::from_connected(fd);
    socket.send(&[kind])?;
    Ok(socket)
}

/// The daemon's side: `(commands, events)`; the event socket is non-blocking.
pub fn connect(path: &Path) -> io::Result<(PairSocket, PairSocket)> {
    let commands = connect_channel(path, b'C')?;
    let events = connect_channel(path, b'E')?;
    events.set_nonblocking(true)?;
    Ok((commands, events))
}

/// `cmmd sim ctl`: send one control command, return the answer.
pub fn control(path: &Path, words: &[String]) -> Result<String, String> {
    let socket = connect_channel(path, b'K')
        .map_err(|e| format!("cannot reach the sim at {}: {e}", path.display()))?;
    socket.send(words.join(" ").as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let ready = cdx_sys::fci::wait_readable(socket.as_fd(), Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    if !ready {
        return Err("no answer from the sim within 5s".into());
    }
    let n = DatagramSocket::recv(&socket, &mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    match text.strip_prefix("ok\n") {
        Some(rest) => Ok(rest.to_string()),
        None => Err(text.strip_prefix("error\n").unwrap_or(&text).trim_end().to_string()),
    }
}

fn parse_n(word: Option<&str>, what: &str) -> Result<Option<u32>, String> {
    word.map(|w| w.parse::<u32>().map_err(|_| format!("{what}: expected a number, got {w:?}")))
        .transpose()
}

/// Execute a control command against the sim.
fn execute(sim: &SimHandle, text: &str) -> Result<String, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["show"] => Ok(sim.show().join("\n") + "\n"),
        ["activate", "all"] => {
            Ok(format!("{} flows marked active\n", sim.activate(&cli::SimFlowMatch::All)?))
        }
        ["activate", src, dst, sport, dport] => {
            let tuple = cli::FlowTuple {
                protocol: 0,
                source: src.parse().map_err(|_| format!("bad address {src:?}"))?,
                destination: dst.parse().map_err(|_| format!("bad address {dst:?}"))?,
                source_port: sport.parse().map_err(|_| format!("bad port {sport:?}"))?,
                destination_port: dport.parse().map_err(|_| format!("bad port {dport:?}"))?,
            };
            Ok(format!("{} flows marked active\n", sim.activate(&cli::SimFlowMatch::Tuple(tuple))?))
        }
        ["fault", kind, rest @ ..] => {
            let fault = match (*kind, rest) {
                ("eio", n) => cli::SimFault::Eio { count: parse_n(n.first().copied(), "count")? },
                ("drop", n) => {
                    cli::SimFault::DropReply { count: parse_n(n.first().copied(), "count")? }
                }
                ("delay", [ms, n @ ..]) => cli::SimFault::Delay {
                    milliseconds: parse_n(Some(ms), "milliseconds")?.unwrap_or(0),
                    count: parse_n(n.first().copied(), "count")?,
                },
                ("error", [rc, n @ ..]) => cli::SimFault::ErrorCode {
                    rc: u16::try_from(parse_n(Some(rc), "rc")?.unwrap_or(0))
                        .map_err(|_| "rc: 0..=65535")?,
                    fcode: None,
                    count: parse_n(n.first().copied(), "count")?,
                },
                ("capacity", [n]) => {
                    cli::SimFault::Capacity { pairs: parse_n(Some(n), "pairs")?.unwrap_or(0) }
                }
                ("spurious", []) => cli::SimFault::SpuriousRemoved,
                ("flowtable", []) => cli::SimFault::OffloadOwnerFlowtable,
                ("clear", []) => cli::SimFault::Clear,
                _ => return Err(format!("unknown fault {text:?}")),
            };
            sim.fault(&fault).map(|s| s + "\n")
        }
        _ => Err(format!("unknown sim command {text:?} (show, activate, fault)")),
    }
}

/// Serve the software cdx `config` describes on `path` until SIGTERM/SIGINT (blocked by the
/// caller and read from `signals`).
pub fn serve(path: &Path, config: SimConfig, signals: BorrowedFd<'_>) -> io::Result<()> {
    let (abi, unwritten) = (config.abi, config.unwritten);
    let (sim, commands, events) =
        sim::attach(config).map_err(|e| io::Error::other(e.to_string()))?;
    let _ = std::fs::remove_file(path);
    let listener = seqpacket()?;
    bind(listener.as_raw_fd(), &UnixAddr::new(path)?)?;
    listen(&listener, Backlog::new(16).unwrap_or(Backlog::MAXCONN))?;
    let mut client_cmd: Option<PairSocket> = None;
    let mut client_evt: Option<PairSocket> = None;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut reply = vec![0u8; MAX_MESSAGE];
    let mut replies = Vec::with_capacity(MAX_PACK + MAX_MESSAGE);
    eprintln!(
        "cmmd sim: software cdx ({abi} ABI, unwritten fields: {unwritten:?}) serving on {}",
        path.display()
    );
    loop {
        let mut fds = vec![
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(events.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals, PollFlags::POLLIN),
        ];
        if let Some(c) = &client_cmd {
            fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| fds.get(i).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        let (new_conn, sim_event, signal, from_client) = (ready(0), ready(1), ready(2), ready(3));
        drop(fds);
        if signal {
            break;
        }
        if new_conn && let Ok(fd) = accept4(&listener, SockFlag::SOCK_CLOEXEC) {
            let conn = PairSocket::from_connected(fd);
            if cdx_sys::fci::wait_readable(conn.as_fd(), Some(Duration::from_secs(1)))
                .unwrap_or(false)
                && let Ok(n) = DatagramSocket::recv(&conn, &mut buf)
                && n > 0
            {
                match buf[0] {
                    b'C' => {
                        conn.set_nonblocking(true)?;
                        client_cmd = Some(conn);
                    }
                    b'E' => {
                        conn.set_nonblocking(true)?;
                        client_evt = Some(conn);
                    }
                    b'K' => {
                        let text = String::from_utf8_lossy(&buf[1..n]).into_owned();
                        let text = if text.is_empty() {
                            let _ = cdx_sys::fci::wait_readable(
                                conn.as_fd(),
                                Some(Duration::from_secs(1)),
                            );
                            let m = DatagramSocket::recv(&conn, &mut buf).unwrap_or(0);
                            String::from_utf8_lossy(&buf[..m]).into_owned()
                        } else {
                            text
                        };
                        let answer = match execute(&sim, &text) {
                            Ok(out) => format!("ok\n{out}"),
                            Err(e) => format!("error\n{e}"),
                        };
                        let _ = conn.send(answer.as_bytes());
                    }
                    _ => {}
                }
            }
        }
        if from_client
            && let Some(c) = &client_cmd
            && answer_queued(c, &commands, &mut buf, &mut reply, &mut replies).is_err()
        {
            client_cmd = None;
        }
        if sim_event {
            while let Ok(Some(n)) = events.try_recv(&mut buf) {
                if let Some(e) = &client_evt
                    && e.try_send(&buf[..n]).is_err()
                {
                    client_evt = None;
                }
            }
        }
    }
    sim.shutdown();
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Answers the requests queued on the client's command channel (up to
/// [`REQUESTS_PER_TURN`] messages, each a pack of one or more requests,
/// [`cdx_sys::fci::unpack`]). The replies leave in packs too, in the order of the requests,
/// a pack whenever the next reply might not fit and one at the end. A pack the client has no
/// room for is dropped, as `fci.ko` drops a unicast to a full socket.
///
/// # Errors
/// The client closed its channel, or it failed.
fn answer_queued(
    client: &PairSocket,
    sim: &SimSocket,
    request: &mut [u8],
    reply: &mut [u8],
    replies: &mut Vec<u8>,
) -> Result<(), FciError> {
    replies.clear();
    for _ in 0..REQUESTS_PER_TURN {
        let Some(n) = client.try_recv(request)? else { break };
        for message in unpack(request.get(..n).unwrap_or_default()) {
            // The in-process sim's `send` answers at once and does not fail.
            let _ = sim.send(message);
            while let Ok(len) = DatagramSocket::recv(sim, reply) {
                if replies.len() + len.next_multiple_of(4) > MAX_PACK {
                    let _ = client.try_send(replies);
                    replies.clear();
                }
                pack_into(replies, reply.get(..len).unwrap_or_default());
            }
        }
    }
    if !replies.is_empty() {
        let _ = client.try_send(replies);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_commands_parse() {
        let (sim, _c, _e) =
            sim::spawn(SimConfig { interfaces: vec!["eth0".into()], ..SimConfig::default() })
                .unwrap();
        assert!(execute(&sim, "show").unwrap().contains("0 connections"));
        assert_eq!(execute(&sim, "activate all").unwrap(), "0 flows marked active\n");
        assert!(execute(&sim, "fault eio 2").unwrap().starts_with("injected"));
        assert!(execute(&sim, "fault capacity 10").unwrap().contains("10"));
        assert_eq!(execute(&sim, "fault clear").unwrap(), "faults cleared\n");
        assert!(sim.pending_faults().is_empty());
        assert!(execute(&sim, "fault bogus").is_err());
        assert!(execute(&sim, "frobnicate").is_err());
        sim.shutdown();
    }

    /// 1000 resets through a window: every one answered once, in the order sent.
    fn pipeline<S: DatagramSocket>(mut transport: cdx_sys::fci::Transport<S>) {
        use cdx_sys::fpp::{FCode, ReturnCode};
        use std::time::Instant;

        let (mut sent, mut answered) = (Vec::new(), Vec::new());
        while answered.len() < 1000 {
            while sent.len() < 1000
                && let Ok(seq) = transport.send(FCode::Ipv4Reset, &[])
            {
                sent.push(seq);
            }
            let reply = transport.recv_until(Instant::now() + Duration::from_secs(2)).unwrap();
            assert_eq!(reply.rc, ReturnCode::Ok);
            answered.push(reply.seq);
        }
        assert_eq!(answered, sent, "every request answered once, in the order sent");
        assert_eq!(transport.stats().malformed + transport.stats().unmatched, 0);
    }

    #[test]
    fn pipelined_requests_are_all_answered_in_order_and_control_still_answers() {
        use cdx_sys::fci::Transport;
        use std::time::Instant;

        let path = std::env::temp_dir().join(format!("cmmd-sim-test-{}.sock", std::process::id()));
        let (stop, signals) = PairSocket::pair().unwrap();
        let server_path = path.clone();
        let server = std::thread::spawn(move || {
            let config = SimConfig { interfaces: vec!["eth0".into()], ..SimConfig::default() };
            serve(&server_path, config, signals.as_fd())
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // As the daemon connects (requests in packs), and one request per message.
        let (commands, _events) = connect(&path).unwrap();
        pipeline(Transport::with_window(cdx_sys::fci::PackedSocket::new(commands), 64));
        let (commands, _events) = connect(&path).unwrap();
        pipeline(Transport::with_window(commands, 64));
        let shown = control(&path, &["show".into()]).unwrap();
        assert!(shown.contains("0 connections"), "{shown}");
        stop.send(b"x").unwrap();
        server.join().unwrap().unwrap();
        assert!(!path.exists(), "the socket is removed");
    }
}
