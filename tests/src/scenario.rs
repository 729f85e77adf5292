//! Building blocks of the fault and soak tests: a router ready to offload entries made
//! without traffic, bulk entries between the client and server subnets, the kernel's table
//! as `conntrack -L` lists it, and waits that fail with the daemon's state and log.
//!
//! Injected entries are ESTABLISHED TCP `10.1.0.2:PORT → DST:DPORT` without NAT. For the
//! daemon to offload them, the router must know both next hops without traffic:
//! [`pin_neighbours`] makes the client's and server's MACs permanent neighbours of the router.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::conntrack_cli;
use crate::ct_load::{InjectStats, Injector, established_tcp};
use crate::daemon::{Daemon, SimTable};
use crate::netns::Netns;
use crate::topology::{CLIENT_V4, SERVICE_PORT, Topology};
use crate::traffic::{IO_TIMEOUT, TcpHoldServer, wait_for};

/// How long a wait for the daemon or the software cdx may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);
/// How often waits poll.
pub const POLL: Duration = Duration::from_millis(100);
/// Requests per datagram of the injector.
const BATCH: usize = 64;
/// Kernel timeout of injected entries: longer than any test.
pub const ENTRY_TIMEOUT: u32 = 600;

/// A server in the server namespace that accepts on the service port (IPv6 when `v6`) and
/// holds its connections open: what a test offloads.
pub fn service_server(topo: &Topology, v6: bool) -> io::Result<TcpHoldServer> {
    TcpHoldServer::start(&topo.server, Topology::server_addr(v6, SERVICE_PORT))
}

/// The MAC address of `device` in `netns`.
pub fn mac(netns: &Netns, device: &str) -> io::Result<String> {
    let out = netns.ip(&["link", "show", device])?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| io::Error::other(format!("no MAC address for {device}")))
}

/// Make the client (on `r0`) and the server (on `r1`) permanent neighbours of the router,
/// with their real MACs, so entries between them offload without traffic.
pub fn pin_neighbours(topo: &Topology) -> io::Result<()> {
    let client = mac(&topo.client, "c0")?;
    let server = mac(&topo.server, "s0")?;
    for (addr, lladdr, dev) in [("10.1.0.2", &client, "r0"), ("10.2.0.2", &server, "r1")] {
        topo.router.ip(&[
            "neigh",
            "replace",
            addr,
            "lladdr",
            lladdr,
            "dev",
            dev,
            "nud",
            "permanent",
        ])?;
    }
    Ok(())
}

/// A configuration file for `--config`, kept as long as the returned directory.
pub fn config_file(text: &str) -> io::Result<(tempfile::TempDir, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cmmd.toml");
    std::fs::write(&path, text)?;
    let arg = path.to_string_lossy().into_owned();
    Ok((dir, arg))
}

/// The daemon in the router, both router ports fast-path ports, `extra` flags appended.
pub fn start_daemon(binary: &Path, topo: &Topology, extra: &[&str]) -> io::Result<Daemon> {
    let mut args = vec!["--backend", "sim", "--ports", "r0,r1", "--log", "info,cmmd=debug"];
    args.extend_from_slice(extra);
    Daemon::start(binary, &topo.router, &args)
}

/// What [`entries`] does to each entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create it ESTABLISHED, expiring after [`ENTRY_TIMEOUT`].
    Create,
    /// Delete it.
    Delete,
}

/// Create or delete the entries `10.1.0.2:PORT → dst:dport` of every port, in batches; returns
/// what the kernel acknowledged.
pub fn entries(
    router: &Netns,
    op: Op,
    dst: IpAddr,
    dport: u16,
    ports: impl IntoIterator<Item = u16> + Send,
) -> io::Result<InjectStats> {
    router.run_in(move || {
        let mut injector = Injector::new(BATCH)?;
        for port in ports {
            match op {
                Op::Create => injector.create(&established_tcp(
                    CLIENT_V4.into(),
                    dst,
                    port,
                    dport,
                    ENTRY_TIMEOUT,
                ))?,
                Op::Delete => injector.delete(&conntrack::Tuple::new(
                    CLIENT_V4.into(),
                    dst,
                    6,
                    port,
                    dport,
                ))?,
            }
        }
        injector.finish()
    })?
}

/// A TCP connection from `netns` to `to`, held open (read timeout [`IO_TIMEOUT`]).
pub fn hold_tcp(netns: &Netns, to: SocketAddr) -> io::Result<TcpStream> {
    let stream = netns.run_in(|| TcpStream::connect_timeout(&to, IO_TIMEOUT))??;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// A TCP connection by its original tuple: `(source, source port, destination, port)`.
pub type TcpKey = (String, u16, String, u16);

/// ESTABLISHED TCP entries of the kernel (`conntrack -L`), by original tuple.
pub fn kernel_established(router: &Netns) -> io::Result<BTreeSet<TcpKey>> {
    Ok(conntrack_cli::list(router)?
        .iter()
        .filter(|e| e.proto == "tcp" && e.state.as_deref() == Some("ESTABLISHED"))
        .filter_map(|e| {
            Some((
                e.value("src", 0)?.to_string(),
                e.value("sport", 0)?.parse().ok()?,
                e.value("dst", 0)?.to_string(),
                e.value("dport", 0)?.parse().ok()?,
            ))
        })
        .collect())
}

/// TCP connections the software cdx holds, by original tuple.
pub fn hw_tcp(table: &SimTable) -> BTreeSet<TcpKey> {
    table
        .connections
        .iter()
        .filter(|c| c.protocol == 6)
        .map(|c| (c.orig.0.clone(), c.orig.2, c.orig.1.clone(), c.orig.3))
        .collect()
}

/// Wait until the daemon's software cdx satisfies `check`; fail with its table, counters
/// and log.
pub fn wait_sim(daemon: &Daemon, what: &str, check: impl Fn(&SimTable) -> bool) -> SimTable {
    wait_for(WAIT, POLL, || daemon.sim().ok().filter(|t| check(t))).unwrap_or_else(|| {
        panic!(
            "{what}: sim = {:#?}\ncounters = {:#?}\nlog:\n{}",
            daemon.sim(),
            daemon.counters(),
            daemon.log()
        )
    })
}

/// Wait until counter `name` reaches `at_least`; returns its value.
pub fn wait_counter(daemon: &Daemon, name: &str, at_least: u64) -> u64 {
    wait_for(WAIT, POLL, || Some(daemon.counter(name)).filter(|v| *v >= at_least)).unwrap_or_else(
        || {
            panic!(
                "counter {name} stayed below {at_least}: {:#?}\nlog:\n{}",
                daemon.counters(),
                daemon.log()
            )
        },
    )
}
