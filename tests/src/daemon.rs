//! The daemon under test: the real `cmmd` entry point run as a process inside a namespace,
//! driven and observed through its own interfaces (`cmmd ctl`, `cmmd sim ctl`, `/metrics`,
//! its log), stopped with signals.
//!
//! The binary is the tests crate's `cmmd-test` target, which calls `cmmd::cmdline::main` like
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
        let log = tempfile::NamedTempFile::new()?;
        let out = log.reopen()?;
        let err = log.reopen()?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns.name()])
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

    /// `show connections` lines (without the trailer).
    pub fn connections(&self) -> io::Result<Vec<String>> {
        Ok(self
            .ctl("show connections")?
            .lines()
            .filter(|l| !l.ends_with("connections printed"))
            .map(String::from)
            .collect())
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
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("sim.sock");
        let socket_text = socket.to_string_lossy().into_owned();
        let child = Command::new("ip")
            .args(["netns", "exec", netns.name()])
            .arg(binary)
            .args(["sim", "serve", "--socket", &socket_text, "--ports", ports])
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
