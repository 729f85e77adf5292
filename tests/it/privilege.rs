//! Least privilege (issue 8 item 5): cmmd needs CAP_NET_ADMIN and nothing else. Without it,
//! it stops at once with exit code 1 and one line naming the capability; as an unprivileged
//! user holding only CAP_NET_ADMIN it runs completely: events, dump, route lookups, the
//! `nf_conntrack_events` sysctl, a forced socket buffer, the CLI, and real flows offloaded.
//! `docs/capabilities.md` lists what each capability is for.

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cmmd_tests::scenario::service_server;
use cmmd_tests::topology::{self, Topology};
use cmmd_tests::traffic::wait_for;
use cmmd_tests::{Netns, require_root};

use crate::cli::hold_tcp;

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");
const WAIT: Duration = Duration::from_secs(15);

/// `setpriv` options: the process keeps root's uid but loses CAP_NET_ADMIN for good.
const WITHOUT_NET_ADMIN: &[&str] = &["--inh-caps=-net_admin", "--bounding-set=-net_admin"];
/// `setpriv` options: user nobody holding CAP_NET_ADMIN and no other capability.
const NOBODY_WITH_NET_ADMIN: &[&str] = &[
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all,+net_admin",
    "--ambient-caps=+net_admin",
    "--bounding-set=-all,+net_admin",
];

/// `cmmd ARGS` under `setpriv OPTIONS` inside `netns`.
fn under_setpriv(netns: &Netns, options: &[&str], args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns.name(), "setpriv"]).args(options).arg(CMMD).args(args);
    command.stdin(Stdio::null());
    command
}

/// Wait for `child` to exit within `limit`; kill it and fail otherwise.
pub(crate) fn exits_within(child: Child, limit: Duration) -> Output {
    let mut child = child;
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cmmd kept running: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn without_cap_net_admin_cmmd_exits_1_naming_the_capability() {
    require_root();
    for (prefix, options) in [
        ("cpa", WITHOUT_NET_ADMIN),
        ("cpb", &["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"][..]),
    ] {
        let netns = Netns::new(prefix).unwrap();
        let child = under_setpriv(&netns, options, &["--backend", "sim"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("setpriv runs");
        let output = exits_within(child, WAIT);
        assert_eq!(output.status.code(), Some(1), "{options:?}: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "cmmd: conntrack netlink socket: Operation not permitted (os error 1) (cmmd needs \
             CAP_NET_ADMIN: run it as root or grant the capability)\n",
            "{options:?}: one line naming the capability"
        );
    }
}

/// A daemon started under `setpriv` (the test harness's `Daemon` runs the binary directly).
struct Confined {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Confined {
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Confined {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctl(netns: &Netns, command: &str) -> std::io::Result<String> {
    let mut args = vec!["ctl", "--timeout", "10"];
    args.extend(command.split_whitespace());
    netns.exec(CMMD, &args)
}

/// The `Name:` field of `/proc/PID/status`.
fn proc_status(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).expect(name);
    line.trim().to_string()
}

#[test]
fn as_nobody_with_only_cap_net_admin_cmmd_runs_and_offloads() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    // Events for every entry is what cmmd sets itself: start from the kernel default.
    topo.router.sysctl(&["net.netfilter.nf_conntrack_events=2"]).unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = under_setpriv(
        &topo.router,
        NOBODY_WITH_NET_ADMIN,
        &["--backend", "sim", "--ports", "r0,r1", "--log", "info"],
    )
    .stdout(log.reopen().unwrap())
    .stderr(log.reopen().unwrap())
    .spawn()
    .expect("setpriv runs");
    let daemon = Confined { child, log };
    wait_for(WAIT, Duration::from_millis(100), || {
        ctl(&topo.router, "show status").ok().filter(|s| s.contains("\nready: yes\n"))
    })
    .unwrap_or_else(|| panic!("cmmd as nobody became ready; log:\n{}", daemon.log()));

    let pid = daemon.child.id();
    assert_eq!(proc_status(pid, "Uid").split_whitespace().next(), Some("65534"));
    assert_eq!(proc_status(pid, "CapEff"), "0000000000001000", "CAP_NET_ADMIN (bit 12) alone");
    assert_eq!(proc_status(pid, "CapBnd"), "0000000000001000");
    let log = daemon.log();
    assert!(log.contains("set net.netfilter.nf_conntrack_events=1"), "{log}");
    let events = topo.router.exec("sysctl", &["-n", "net.netfilter.nf_conntrack_events"]).unwrap();
    assert_eq!(events.trim(), "1");
    let counters = ctl(&topo.router, "show counters").unwrap();
    assert!(
        counters.lines().any(|l| l == "event_buffer_bytes: 67108864"),
        "SO_RCVBUFFORCE past rmem_max (32 MiB requested, doubled by the kernel): {counters}"
    );

    // A real connection through the router ends in the software cdx: ctnetlink events and
    // dump, route and neighbour lookups all work with this one capability.
    let mut stream = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let sport = stream.local_addr().unwrap().port();
    wait_for(WAIT, Duration::from_millis(100), || {
        let sim = ctl(&topo.router, "show sim").ok()?;
        sim.lines()
            .any(|l| l.contains(&format!("sport={sport} ")) && l.contains("in_hw=1/1"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("offloaded as nobody; log:\n{}", daemon.log()));
    stream.write_all(b"bye").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"hello bye");

    // An orderly stop needs no capability either.
    let mut daemon = daemon;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "cmmd did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
}
