//! Network namespaces for tests: created with `ip netns add`, removed on drop (also when the
//! test panics), with helpers to run commands and Rust code inside them.
//!
//! Names are unique per process and call (`{prefix}{pid}-{n}`), so tests can run in parallel.
//! Code runs inside a namespace on a thread of its own that entered it with `setns` (a network
//! namespace is a property of the thread); sockets created there stay in that namespace when
//! they are moved to other threads.

use std::fs::File;
use std::io::{self, Write};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sched::{CloneFlags, setns};

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Fails the calling test unless it runs as root: namespaces, nftables and ctnetlink need it.
/// (Tests that need the kernel do not skip: an unprivileged run is a failed run.)
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces, nftables, ctnetlink): run the integration tests as root"
    );
}

/// A network namespace that exists as long as this value.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

/// Runs `program args…` and returns its stdout; an error carries the command and its stderr.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> io::Result<String> {
    let mut command = Command::new(program);
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child =
        command.spawn().map_err(|error| io::Error::other(format!("{program}: {error}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    let Output { status, stdout, stderr } = child.wait_with_output()?;
    if status.success() {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&stderr);
        Err(io::Error::other(format!(
            "`{program} {}` failed ({status}): {}",
            args.join(" "),
            stderr.trim()
        )))
    }
}

impl Netns {
    /// Creates a namespace named `{prefix}{pid}-{n}` with its loopback up.
    pub fn new(prefix: &str) -> io::Result<Self> {
        let name =
            format!("{prefix}{}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
        run("ip", &["netns", "add", &name], None)?;
        let netns = Self { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace (`ip netns exec NAME program args…`).
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        run("ip", &full, None)
    }

    /// Runs a command inside the namespace with `input` on its standard input.
    pub fn exec_with_input(&self, program: &str, args: &[&str], input: &str) -> io::Result<String> {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        run("ip", &full, Some(input))
    }

    /// `ip ARGS…` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        run("ip", &full, None)
    }

    /// Creates a veth pair: `device` here, `peer_device` in `peer`.
    pub fn veth(&self, device: &str, peer: &Netns, peer_device: &str) -> io::Result<()> {
        let args = ["link", "add", device, "type", "veth", "peer", "name", peer_device, "netns"];
        let mut full = args.to_vec();
        full.push(peer.name());
        self.ip(&full).map(drop)
    }

    /// Sets sysctls (`key=value`) inside the namespace.
    pub fn sysctl(&self, settings: &[&str]) -> io::Result<()> {
        let mut args = vec!["-q", "-w"];
        args.extend_from_slice(settings);
        self.exec("sysctl", &args).map(drop)
    }

    /// Loads an nftables ruleset (`nft -f -`) into the namespace.
    pub fn nft(&self, ruleset: &str) -> io::Result<()> {
        self.exec_with_input("nft", &["-f", "-"], ruleset).map(drop)
    }

    /// Runs `f` on a new thread that has entered the namespace, and returns its result. Sockets
    /// `f` creates belong to the namespace.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let file = File::open(format!("/run/netns/{}", self.name))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                    Ok(f())
                })
                .join()
                .map_err(|_| {
                    io::Error::other(format!("code run in namespace {} panicked", self.name))
                })?
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Nothing to do if it fails (already gone): the drop must not panic during a panic.
        let _ = run("ip", &["netns", "del", &self.name], None);
    }
}
