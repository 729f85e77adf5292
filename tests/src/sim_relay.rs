//! A software cdx that lives in the test process and is served to the daemon on a socket path
//! (`cmmd --sim-socket PATH`), so the test holds the model's [`SimHandle`]: it injects every
//! fault the model has (duplicate REMOVED events included, which the CLI does not expose),
//! moves the model's clock to age flows, and reads the model's exact tables and statistics.
//!
//! The wire protocol is the one `cmmd sim serve` speaks: a client connects to the Unix
//! `SOCK_SEQPACKET` socket and sends one message, `C` (command channel) or `E` (event
//! channel); after that, messages are FCI frames relayed unchanged (a message from the
//! daemon may hold several requests, `cdx_sys::fci::PackedSocket`: they go to the model one
//! by one). A newer channel of a kind replaces the older one (a restarted daemon takes
//! over). Events the daemon has no room for wait in the relay, as the model's own event
//! socket would keep them.
//!
//! The relay runs on its own thread until dropped; the socket path is removed then.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cdx_sys::fci::{DatagramSocket, PairSocket, unpack, wait_readable};
use cdx_sys::sim::{self, SimConfig, SimHandle};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, listen, socket,
};

const MAX_MESSAGE: usize = 64 * 1024;
/// Events kept for a daemon that does not read them, at most (then the oldest are dropped).
const MAX_PENDING_EVENTS: usize = 65_536;

/// The software cdx of a test, served on a socket path.
pub struct SimRelay {
    handle: SimHandle,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

struct Relay {
    listener: OwnedFd,
    sim_commands: PairSocket,
    sim_events: PairSocket,
    commands: Option<PairSocket>,
    events: Option<PairSocket>,
    pending_events: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
}

impl SimRelay {
    /// Start the harness's model ([`harness_sim`]) knowing `ports` (interface names) with
    /// `capacity` hardware pairs.
    pub fn start(ports: &[&str], capacity: usize) -> io::Result<SimRelay> {
        let config = harness_sim(ports, capacity)?;
        let (handle, sim_commands, sim_events) =
            sim::spawn(config).map_err(|e| io::Error::other(e.to_string()))?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cdx.sock");
        let listener =
            socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
        bind(listener.as_raw_fd(), &UnixAddr::new(&path)?)?;
        listen(&listener, Backlog::new(8).unwrap_or(Backlog::MAXCONN))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let mut relay = Relay {
            listener,
            sim_commands,
            sim_events,
            commands: None,
            events: None,
            pending_events: VecDeque::new(),
            buf: vec![0; MAX_MESSAGE],
        };
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                relay.turn();
            }
        });
        Ok(SimRelay { handle, path, stop, thread: Some(thread), _dir: dir })
    }

    /// The path to give `cmmd --sim-socket`.
    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// The model: faults, clock, tables, statistics.
    pub fn sim(&self) -> &SimHandle {
        &self.handle
    }
}

/// The software cdx the tests run against: the `[sim]` settings of the environment
/// (`CMM_SIM_ABI`, `CMM_SIM_UNWRITTEN`, …, as `tests/run.sh` sets them for each of its runs;
/// the daemon under test and `cmmd sim serve` read the same variables), knowing `ports` and
/// holding `capacity` pairs.
pub fn harness_sim(ports: &[&str], capacity: usize) -> io::Result<SimConfig> {
    let options = config::LoadOptions {
        env: &config::process_env,
        overrides: config::Overrides::default(),
        default_config_path: PathBuf::from("/nonexistent/cmmd.toml"),
    };
    let loaded = config::Config::load(&options).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(SimConfig {
        interfaces: ports.iter().map(|p| (*p).to_string()).collect(),
        capacity,
        ..cmmd::edge::backend::sim_config(&loaded.config)
    })
}

impl Drop for SimRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.handle.shutdown();
    }
}

impl Relay {
    /// One poll and whatever became ready (at most 50 ms when idle).
    fn turn(&mut self) {
        let (accept, from_client, from_sim, sim_event) = {
            let mut fds = vec![
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.sim_commands.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.sim_events.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(c) = &self.commands {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
            }
            if poll(&mut fds, PollTimeout::from(50u8)).is_err() {
                return;
            }
            let ready =
                |i: usize| fds.get(i).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
            (ready(0), ready(3), ready(1), ready(2))
        };
        if accept {
            self.accept();
        }
        if from_client && let Some(client) = &self.commands {
            match DatagramSocket::recv(client, &mut self.buf) {
                Ok(0) | Err(_) => self.commands = None,
                Ok(n) => {
                    // The daemon sends its requests in packs; the model takes one per message.
                    for request in unpack(self.buf.get(..n).unwrap_or_default()) {
                        let _ = self.sim_commands.send(request);
                    }
                }
            }
        }
        if from_sim {
            while let Ok(Some(n)) = self.sim_commands.try_recv(&mut self.buf) {
                if let Some(client) = &self.commands {
                    let _ = client.try_send(self.buf.get(..n).unwrap_or_default());
                }
            }
        }
        if sim_event {
            while let Ok(Some(n)) = self.sim_events.try_recv(&mut self.buf) {
                if self.pending_events.len() == MAX_PENDING_EVENTS {
                    self.pending_events.pop_front();
                }
                self.pending_events.push_back(self.buf.get(..n).unwrap_or_default().to_vec());
            }
        }
        self.deliver_events();
    }

    fn accept(&mut self) {
        let Ok(fd) = accept4(&self.listener, SockFlag::SOCK_CLOEXEC) else { return };
        let conn = PairSocket::from_connected(fd);
        if !wait_readable(conn.as_fd(), Some(Duration::from_secs(1))).unwrap_or(false) {
            return;
        }
        let mut kind = [0u8; 1];
        match DatagramSocket::recv(&conn, &mut kind) {
            Ok(1) if kind == *b"C" => self.commands = Some(conn),
            Ok(1) if kind == *b"E" => self.events = Some(conn),
            _ => {}
        }
    }

    fn deliver_events(&mut self) {
        let Some(client) = &self.events else { return };
        while let Some(event) = self.pending_events.front() {
            match client.try_send(event) {
                Ok(()) => {
                    self.pending_events.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.events = None;
                    return;
                }
            }
        }
    }
}
