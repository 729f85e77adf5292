//! The daemon under test: the real `cmmd` entry point run as a process inside a namespace,
//! driven and observed through its own interfaces (`cmmd ctl`, `cmmd sim ctl`, `/metrics`,
//! its log), stopped with signals.
//!
//! The binary is the tests crate's `cmmd-test` target, which calls `cmmd::cmd::cmdline::main` like
//! the shipped `cmmd`; integration tests pass its path (`env!("CARGO_BIN_EXE_cmmd-test")`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::netns::{Netns, run};
use crate::traffic::wait_for;

/// A running daemon.
pub struct Daemon {
    binary: PathBuf,
    netns: String,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

/// Counters as `show counters` prints them.
pub type Counters = BTreeMap<String, String>;

impl Daemon {
    /// Start `binary ARGS…` in `netns` and wait until it answers on its CLI and reports ready.
    pub fn start(binary: &Path, netns: &Netns, args: &[&str]) -> io::Result<Daemon> {
        Daemon::start_under(&[], binary, netns, args)
    }

    /// [`Daemon::start`], run under `wrapper` (a command that runs the rest of its command
    /// line, such as `strace -f -o FILE`); stop it with `ctl stop` so the wrapper ends too.
    pub fn start_under(
        wrapper: &[&str],
        binary: &Path,
        netns: &Netns,
        args: &[&str],
    ) -> io::Result<Daemon> {
        let log = tempfile::NamedTempFile::new()?;
        let out = log.reopen()?;
        let err = log.reopen()?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns.name()])
            .args(wrapper)
            .arg(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        let mut daemon = Daemon {
            binary: binary.to_path_buf(),
            netns: netns.name().to_string(),
            child: Some(child),
            log,
        };
        let ready = wait_for(Duration::from_secs(15), Duration::from_millis(50), || {
            daemon.ctl("show status").ok().filter(|s| s.contains("ready: yes"))
        });
        if ready.is_none() {
            let status = daemon.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            return Err(io::Error::other(format!(
                "cmmd did not become ready (exit status {status:?}); log:\n{}",
                daemon.log()
            )));
        }
        Ok(daemon)
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Run one CLI command through `cmmd ctl` (the scripting client); `Err` carries its error
    /// output when the command failed.
    pub fn ctl(&self, command: &str) -> io::Result<String> {
        let binary = self.binary.to_string_lossy().into_owned();
        let mut args =
            vec!["netns", "exec", &self.netns, binary.as_str(), "ctl", "--timeout", "20"];
        args.extend(command.split_whitespace());
        run("ip", &args, None)
    }

    /// `show counters` as a map.
    pub fn counters(&self) -> io::Result<Counters> {
        Ok(self
            .ctl("show counters")?
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.to_string(), v.to_string())))
            .collect())
    }

    /// One numeric counter (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters().ok().and_then(|c| c.get(name).and_then(|v| v.parse().ok())).unwrap_or(0)
    }

    /// `show connections detail` lines (cmmd's view, with the offload state and reason;
    /// without the trailer).
    pub fn connections(&self) -> io::Result<Vec<String>> {
        Ok(self
            .ctl("show connections detail")?
            .lines()
            .filter(|l| !l.ends_with("connections printed"))
            .map(String::from)
            .collect())
    }

    /// The `show connections` line of the connection whose original source port is `sport`.
    pub fn connection(&self, sport: u16) -> Option<String> {
        let needle = format!("sport={sport} ");
        self.connections().ok()?.into_iter().find(|l| l.contains(&needle))
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log.path()) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// SIGTERM, then wait (at most `limit`) for the exit status.
    pub fn stop(mut self, limit: Duration) -> io::Result<ExitStatus> {
        self.signal(Signal::SIGTERM);
        self.wait(limit)
    }

    /// Send a signal.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// Wait for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().ok_or_else(|| io::Error::other("not running"))?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("cmmd still running after {limit:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.wait(Duration::from_secs(5));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One route object of the software cdx, as `show sim` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRoute {
    /// Route id.
    pub id: u32,
    /// Egress interface.
    pub output: String,
    /// Ingress interface.
    pub input: String,
    /// Next-hop MAC.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// Connections using it.
    pub refs: u32,
}

/// What one direction of a connection forwards with in the software cdx's hardware: the
/// ports, MAC and MTU its route had when it was inserted (an UPDATE changes only the MTU).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimHw {
    /// Input interface.
    pub input: String,
    /// Output interface.
    pub output: String,
    /// Next-hop MAC, `aa:bb:…`.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
}

impl SimHw {
    /// `input>output,mac,mtu`, or `-` for a direction not in hardware.
    fn parse(text: &str) -> Option<SimHw> {
        let mut parts = text.split(',');
        let (ports, mac, mtu) = (parts.next()?, parts.next()?, parts.next()?);
        let (input, output) = ports.split_once('>')?;
        Some(SimHw {
            input: input.into(),
            output: output.into(),
            mac: mac.into(),
            mtu: mtu.parse().ok()?,
        })
    }

    /// `input>output`.
    pub fn ports(&self) -> String {
        format!("{}>{}", self.input, self.output)
    }
}

/// One connection of the software cdx, as `show sim` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConnection {
    /// IP protocol.
    pub protocol: u8,
    /// `(src, dst, sport, dport)` of the original direction.
    pub orig: (String, String, u16, u16),
    /// Same for the reply direction.
    pub reply: (String, String, u16, u16),
    /// Route ids `(orig, reply)`.
    pub routes: (u32, u32),
    /// Each direction is in hardware.
    pub in_hw: (bool, bool),
    /// What each direction forwards with.
    pub hw: (Option<SimHw>, Option<SimHw>),
}

/// A VLAN interface or a PPPoE session the software cdx holds, as `show sim` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimInterface {
    /// The interface.
    pub name: String,
    /// The VLAN id, or the PPPoE session id.
    pub id: u16,
    /// The PPPoE peer's MAC (empty for a VLAN).
    pub peer: String,
    /// The interface it sits on.
    pub parent: String,
}

impl SimConnection {
    /// Each direction's hardware ports, `input>output` (`-`: not in hardware).
    pub fn hw_ports(&self) -> (String, String) {
        let ports = |h: &Option<SimHw>| h.as_ref().map_or_else(|| "-".to_string(), SimHw::ports);
        (ports(&self.hw.0), ports(&self.hw.1))
    }
}

/// The software cdx's tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimTable {
    /// Route objects.
    pub routes: Vec<SimRoute>,
    /// Connections.
    pub connections: Vec<SimConnection>,
    /// Registered VLAN interfaces.
    pub vlans: Vec<SimInterface>,
    /// Registered PPPoE sessions.
    pub pppoe: Vec<SimInterface>,
}

impl SimTable {
    /// Parse `show sim` (or `cmmd sim ctl show`) output.
    pub fn parse(text: &str) -> SimTable {
        let mut table = SimTable::default();
        for line in text.lines() {
            let field = |key: &str| {
                line.split([',', ' '])
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_string)
                    .unwrap_or_default()
            };
            if line.starts_with("Id: ") {
                let v: Vec<&str> =
                    line.split(", ").map(|kv| kv.split_once(": ").map_or("", |(_, v)| v)).collect();
                if v.len() == 6 {
                    table.routes.push(SimRoute {
                        id: v[0].parse().unwrap_or(0),
                        output: v[1].into(),
                        input: v[2].into(),
                        mac: v[3].into(),
                        mtu: v[4].parse().unwrap_or(0),
                        refs: v[5].parse().unwrap_or(0),
                    });
                }
            } else if line.starts_with("protocol=") {
                let (orig, reply) = line.split_once(" reply: ").unwrap_or((line, ""));
                let tuple = |part: &str| {
                    let f = |key: &str| {
                        part.split(' ').find_map(|w| w.strip_prefix(key)).unwrap_or("").to_string()
                    };
                    (
                        f("src="),
                        f("dst="),
                        f("sport=").parse().unwrap_or(0),
                        f("dport=").parse().unwrap_or(0),
                    )
                };
                let pair = |text: String| {
                    let (a, b) = text.split_once('/').unwrap_or(("0", "0"));
                    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
                };
                let routes = pair(field("routes="));
                let in_hw: (u32, u32) = pair(field("in_hw="));
                let hw = line.split(' ').find_map(|w| w.strip_prefix("hw=")).unwrap_or("-/-");
                let (hw_orig, hw_reply) = hw.split_once('/').unwrap_or(("-", "-"));
                table.connections.push(SimConnection {
                    protocol: field("protocol=").parse().unwrap_or(0),
                    orig: tuple(orig.split_once("orig: ").map_or("", |(_, o)| o)),
                    reply: tuple(reply),
                    routes,
                    in_hw: (in_hw.0 == 1, in_hw.1 == 1),
                    hw: (SimHw::parse(hw_orig), SimHw::parse(hw_reply)),
                });
            } else if line.starts_with("Interface: ") {
                let value = |key: &str| {
                    line.split(", ")
                        .find_map(|kv| kv.strip_prefix(key))
                        .map(str::to_string)
                        .unwrap_or_default()
                };
                let itf = SimInterface {
                    name: value("Interface: "),
                    id: value("VLAN Id: ")
                        .parse()
                        .or_else(|_| value("Session: ").parse())
                        .unwrap_or(0),
                    peer: value("Peer: "),
                    parent: value("Parent: "),
                };
                if line.contains("VLAN Id: ") {
                    table.vlans.push(itf);
                } else {
                    table.pppoe.push(itf);
                }
            }
        }
        table
    }

    /// The connection whose original tuple has this source port.
    pub fn by_sport(&self, sport: u16) -> Option<&SimConnection> {
        self.connections.iter().find(|c| c.orig.2 == sport)
    }

    /// A route by id.
    pub fn route(&self, id: u32) -> Option<&SimRoute> {
        self.routes.iter().find(|r| r.id == id)
    }
}

impl Daemon {
    /// The software cdx's tables (`show sim`; in-process sim only).
    pub fn sim(&self) -> io::Result<SimTable> {
        Ok(SimTable::parse(&self.ctl("show sim")?))
    }
}

/// A software cdx in its own process (`cmmd sim serve`), which outlives daemon restarts.
pub struct SimServer {
    binary: PathBuf,
    netns: String,
    socket: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SimServer {
    /// Start it in `netns`, knowing `ports`.
    pub fn start(binary: &Path, netns: &Netns, ports: &str) -> io::Result<SimServer> {
        SimServer::start_with(binary, netns, ports, &[])
    }

    /// Start it in `netns`, knowing `ports`, with more `cmmd sim serve` flags (`--sim-abi ask`).
    pub fn start_with(
        binary: &Path,
        netns: &Netns,
        ports: &str,
        flags: &[&str],
    ) -> io::Result<SimServer> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("sim.sock");
        let socket_text = socket.to_string_lossy().into_owned();
        let child = Command::new("ip")
            .args(["netns", "exec", netns.name()])
            .arg(binary)
            .args(["sim", "serve", "--socket", &socket_text, "--ports", ports])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = SimServer {
            binary: binary.to_path_buf(),
            netns: netns.name().to_string(),
            socket,
            child,
            _dir: dir,
        };
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            server.socket.exists().then_some(())
        })
        .ok_or_else(|| io::Error::other("the sim server did not create its socket"))?;
        Ok(server)
    }

    /// The socket path to give `cmmd --sim-socket`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `cmmd sim ctl WORDS`.
    pub fn ctl(&self, command: &str) -> io::Result<String> {
        let binary = self.binary.to_string_lossy().into_owned();
        let socket = self.socket.to_string_lossy().into_owned();
        let mut args =
            vec!["netns", "exec", &self.netns, binary.as_str(), "sim", "ctl", "--socket", &socket];
        args.extend(command.split_whitespace());
        run("ip", &args, None)
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
