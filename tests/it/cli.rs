//! The operator CLI of the running daemon, over real TCP: every command through `cmmd --backend
//! sim` checked against the output format `cmmd::control` documents, the real `telnet` client
//! under `expect` (login, `?`, TAB, history), `cmmd ctl`, and the abuse and security bounds
//! (issue 5 item 6, issue 8 item 4). What is byte for byte the vendor's (libcli framing, errors,
//! filters, the vendor's command line) is in `cli_vendor`.
//!
//! Each test starts its own daemon in its own namespace, so each has 127.0.0.1:2103 to itself.
//! Test accounts use cheap argon2id hashes (m=8, t=1, p=1) so that logins cost microseconds.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHasher as _;
use cmmd_tests::daemon::Daemon;
use cmmd_tests::scenario::service_server;
use cmmd_tests::telnet::{CliClient, ENABLED_PROMPT, PROMPT, TELNET_LOGIN, run_expect};
use cmmd_tests::topology::{self, Topology};
use cmmd_tests::traffic::{IO_TIMEOUT, TcpHoldServer, wait_for};
use cmmd_tests::{Netns, require_root};

pub(crate) const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");
pub(crate) const WAIT: Duration = Duration::from_secs(15);
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Where every daemon of these tests listens (each in its own namespace).
pub(crate) fn cli_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 2103))
}

pub(crate) fn binary() -> &'static Path {
    Path::new(CMMD)
}

/// An argon2id PHC string of `password` with the smallest cost (tests only).
pub(crate) fn cheap_hash(password: &str) -> String {
    let params = argon2::Params::new(8, 1, 1, None).expect("valid argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .expect("hashing")
        .to_string()
}

/// Password of the `admin` account in these tests (what `cmmd ctl` sends by default).
pub(crate) const ADMIN_PASSWORD: &str = "admin";
/// A second account.
const OPERATOR: (&str, &str) = ("operator", "Op3rator-pass!");

/// Configuration text: `[cli]` with the `admin` and `operator` accounts (cheap hashes) and
/// `cli_keys`, then the other `tables`.
pub(crate) fn config_text(cli_keys: &str, tables: &str) -> String {
    format!(
        "[cli]\nusers = [\n  {{ name = \"admin\", password_hash = \"{}\" }},\n  \
         {{ name = \"{}\", password_hash = \"{}\" }},\n]\n{cli_keys}\n{tables}\n",
        cheap_hash(ADMIN_PASSWORD),
        OPERATOR.0,
        cheap_hash(OPERATOR.1),
    )
}

/// A configuration file with [`config_text`].
pub(crate) fn config_file(cli_keys: &str, tables: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), config_text(cli_keys, tables)).expect("write the configuration");
    file
}

/// A daemon alone in a new namespace with the sim backend and `config`.
pub(crate) fn lone_daemon(
    prefix: &str,
    config: &tempfile::NamedTempFile,
    extra: &[&str],
) -> (Netns, Daemon) {
    let netns = Netns::new(prefix).expect("namespace");
    let path = config.path().to_string_lossy().into_owned();
    let mut args = vec!["--backend", "sim", "--config", path.as_str()];
    args.extend_from_slice(extra);
    let daemon = Daemon::start(binary(), &netns, &args).expect("cmmd starts");
    (netns, daemon)
}

/// A logged-in raw client.
pub(crate) fn admin_session(netns: &Netns) -> CliClient {
    let mut client = CliClient::connect(netns, cli_addr()).expect("connect to the CLI");
    client.login("admin", ADMIN_PASSWORD).expect("admin logs in");
    client
}

/// A TCP connection from the client namespace to `to`, held open.
pub(crate) fn hold_tcp(topo: &Topology, to: SocketAddr) -> TcpStream {
    let stream = topo
        .client
        .run_in(|| TcpStream::connect_timeout(&to, IO_TIMEOUT))
        .expect("run in the client namespace")
        .expect("connect through the router");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

fn lines(reply: &str) -> Vec<&str> {
    reply.lines().collect()
}

/// The MAC address of `device` in `netns`.
pub(crate) fn mac(netns: &Netns, device: &str) -> String {
    let out = netns.ip(&["link", "show", device]).expect("ip link");
    out.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).expect("a MAC").to_string()
}

/// The field after `key=` in a `show connections` line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split([' ', ',']).find_map(|w| w.strip_prefix(key)).unwrap_or("")
}

/// The router daemon of `topo` with both ports fast-path ports, one offloaded IPv4 and one
/// IPv6 TCP connection through it; returns the daemon, the held streams and their ports.
pub(crate) struct Flows {
    pub(crate) daemon: Daemon,
    _config: tempfile::NamedTempFile,
    _servers: (TcpHoldServer, TcpHoldServer),
    held: Vec<TcpStream>,
    pub(crate) v4_port: u16,
    pub(crate) v6_port: u16,
}

pub(crate) fn router_with_two_flows(topo: &Topology, extra: &[&str]) -> Flows {
    let servers = (service_server(topo, false).unwrap(), service_server(topo, true).unwrap());
    let config = config_file("", "");
    let config_path = config.path().to_string_lossy().into_owned();
    let mut args = vec!["--backend", "sim", "--ports", "r0,r1", "--config", &config_path];
    args.extend_from_slice(extra);
    let daemon = Daemon::start(binary(), &topo.router, &args).unwrap();
    let v4 = hold_tcp(topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let v6 = hold_tcp(topo, Topology::server_addr(true, topology::SERVICE_PORT));
    let (v4_port, v6_port) = (v4.local_addr().unwrap().port(), v6.local_addr().unwrap().port());
    let flows =
        Flows { daemon, _config: config, _servers: servers, held: vec![v4, v6], v4_port, v6_port };
    flows.wait_offloaded();
    flows
}

impl Flows {
    fn wait_offloaded(&self) {
        let ports = [self.v4_port, self.v6_port];
        wait_for(WAIT, POLL, || {
            let t = self.daemon.sim().ok()?;
            ports
                .iter()
                .all(|p| t.by_sport(*p).is_some_and(|c| c.in_hw == (true, true)))
                .then_some(())
        })
        .unwrap_or_else(|| {
            panic!("both flows offloaded: {:#?}\n{}", self.daemon.sim(), self.daemon.log())
        });
    }

    /// The conntrack part of a `show connections` line of the flow from `sport`, through the
    /// `[ASSURED] ` flag, with `timeout` in the timeout field.
    fn conntrack_text(&self, v6: bool, timeout: u64) -> String {
        let sport = if v6 { self.v6_port } else { self.v4_port };
        let (l3, client, server, masquerade) = if v6 {
            ("ipv6     10", "fd01::2", "fd02::2", "fd02::100")
        } else {
            ("ipv4     2", "10.1.0.2", "10.2.0.2", "10.2.0.100")
        };
        format!(
            "{l3} tcp      6 {timeout} ESTABLISHED src={client} dst={server} sport={sport} dport=80 \
             src={server} dst={masquerade} sport=80 dport={sport} [ASSURED] "
        )
    }

    /// cdx's remaining time of the flow as the software cdx shows it, checked against what
    /// `line` printed (a second may pass between the two readings).
    fn checked_remaining(&self, line: &str, printed: u64, v6: bool) -> u64 {
        let sport = if v6 { self.v6_port } else { self.v4_port };
        let remaining = hw_remaining(&self.daemon, sport).expect("in the software cdx");
        assert!(printed.abs_diff(remaining) <= 2, "cdx's remaining {remaining}s: {line}");
        printed
    }

    /// The vendor's `show connections` line for the flow: its timeout field is cdx's
    /// remaining time.
    pub(crate) fn expected_line(&self, line: &str, v6: bool) -> String {
        let printed = line.split_whitespace().nth(4).and_then(|t| t.parse().ok()).unwrap_or(0);
        let timeout = self.checked_remaining(line, printed, v6);
        format!(
            "{}mark=0 use=1, Flags: 1, n_id: 1, local-conn: no",
            self.conntrack_text(v6, timeout)
        )
    }

    /// The `show connections detail` line of the flow (cmmd's view): the kernel's timeout,
    /// zone, id, offload state, route ids and cdx's remaining time.
    fn expected_detail(&self, line: &str, v6: bool) -> String {
        let sport = if v6 { self.v6_port } else { self.v4_port };
        let routes = self.daemon.sim().unwrap().by_sport(sport).expect("offloaded").routes;
        let timeout = line.split_whitespace().nth(4).and_then(|t| t.parse().ok()).unwrap_or(0);
        assert!((431_000..=432_000).contains(&timeout), "ESTABLISHED timeout: {line}");
        let hw = line
            .rsplit_once("hw-timeout: ")
            .and_then(|(_, t)| t.split(',').next()?.parse().ok())
            .unwrap_or(0);
        let hw = self.checked_remaining(line, hw, v6);
        format!(
            "{}mark=0 zone=0 id={}, offload: offloaded, routes: {}/{}, hw-timeout: {hw}, \
             in: r0/r1 (inferred), ports: r0>r1 r1>r0",
            self.conntrack_text(v6, timeout),
            field(line, "id="),
            routes.0,
            routes.1
        )
    }
}

/// `show connections` and its filters, `detail`, and the reply shapes of cmmd's own `show`
/// commands (the vendor's are byte for byte in `cli_vendor`).
#[test]
fn every_show_command_answers_in_its_documented_format() {
    require_root();
    let topo = Topology::new().unwrap();
    let flows = router_with_two_flows(&topo, &[]);
    let (p4, p6) = (flows.v4_port, flows.v6_port);
    let mut cli = admin_session(&topo.router);

    // show connections: one conntrack -L style line per connection, then the count.
    let table = cli.command("show connections").unwrap();
    let rows = lines(&table);
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(rows[2..], ["2 connections printed", "0 connections with > 1 ids"]);
    let v4_line = rows.iter().find(|l| l.contains(&format!("sport={p4} "))).expect("IPv4 row");
    let v6_line = rows.iter().find(|l| l.contains(&format!("sport={p6} "))).expect("IPv6 row");
    assert_eq!(*v4_line, flows.expected_line(v4_line, false));
    assert_eq!(*v6_line, flows.expected_line(v6_line, true));
    let only = |reply: &str, rows: &[&str]| {
        let mut expected: String = rows.iter().map(|r| format!("{r}\n")).collect();
        expected.push_str(&format!("{} connections printed\n", rows.len()));
        expected.push_str("0 connections with > 1 ids\n");
        assert_eq!(reply, expected);
    };
    only(&cli.command("show connections proto udp").unwrap(), &[]);
    only(
        &cli.command("show connections proto tcp state established offloaded").unwrap(),
        &rows[..2],
    );
    only(&cli.command("show connections state syn_sent").unwrap(), &[]);
    only(&cli.command("show connections addr fd02::2").unwrap(), &[v6_line]);
    only(&cli.command(&format!("show connections port {p4}")).unwrap(), &[v4_line]);
    only(&cli.command("show connections addr 10.2.0.100 proto 6").unwrap(), &[v4_line]);
    only(&cli.command("show connections pending").unwrap(), &[]);
    only(&cli.command("show connections refused").unwrap(), &[]);
    only(&cli.command("sh conn pend ref").unwrap(), &[]);
    assert_eq!(cli.command("show connections | include ipv6").unwrap(), format!("{v6_line}\n"));
    assert_eq!(cli.command("show connections | exclude ipv | count").unwrap(), "2\n");
    assert_eq!(cli.command("show connections | begin ipv6 | count").unwrap(), "3\n");
    // The scripting client prints the same table.
    assert_eq!(flows.daemon.ctl("show connections").unwrap(), table);
    // What the vendor does not print: `detail`, with the same filters.
    let detail = cli.command("show connections detail proto tcp").unwrap();
    let rows = lines(&detail);
    assert_eq!(rows.len(), 3, "{detail}");
    assert_eq!(rows[2], "2 connections printed");
    for row in &rows[..2] {
        assert_eq!(*row, flows.expected_detail(row, row.starts_with("ipv6")));
    }

    // show counters: `name: value`, one per line.
    let counters = cli.command("show counters").unwrap();
    for line in lines(&counters) {
        let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert!(!value.is_empty() && !value.contains(' ') || value.starts_with("<= "), "{line}");
    }
    for expected in [
        "table_entries: 2",
        "table_capacity: 131072",
        "hw_route_objects: 2",
        "admitted: 2",
        "offloaded: 2",
        "withdrawn: 0",
        "hw_failed: 0",
        "excluded_by_rule: 0",
        "deactivated: 0",
        "cli_sessions: 1",
        "cli_login_failures: 0",
        "cli_refused: 0",
    ] {
        assert!(counters.lines().any(|l| l == expected), "{expected:?} in\n{counters}");
    }

    assert_eq!(cli.command("show activate").unwrap(), "1\n");
    // The route cache with what the vendor does not print (lookups in flight, MTU, type):
    // per connection, where the client comes in (the host's own route to it, no source and
    // no input interface) and each direction as the kernel routes it (source, input).
    let routes = cli.command("show route detail").unwrap();
    for row in [
        "IIf: (null), Mark: 00000000, Src: 0.0.0.0, Dst: 10.1.0.2 --> Gateway: -, OIf: r0, Mtu: 1500, Type: Unicast, Count: 1",
        "IIf: r1, Mark: 00000000, Src: 10.2.0.2, Dst: 10.1.0.2 --> Gateway: -, OIf: r0, Mtu: 1500, Type: Unicast, Count: 1",
        "IIf: r0, Mark: 00000000, Src: 10.1.0.2, Dst: 10.2.0.2 --> Gateway: -, OIf: r1, Mtu: 1500, Type: Unicast, Count: 1",
        "IIf: r0, Mark: 00000000, Src: fd01::2, Dst: fd02::2 --> Gateway: -, OIf: r1, Mtu: 1500, Type: Unicast, Count: 1",
        "3 IPv4 Routes printed",
        "3 IPv6 Routes printed",
    ] {
        assert!(routes.lines().any(|l| l == row), "{row:?} in\n{routes}");
    }
    let objects = cli.command("show fpp_route detail").unwrap();
    assert!(objects.contains(", IIf: r0, Mtu: 1500, Mac: "), "{objects}");
    assert!(objects.ends_with(", State: Registered\n2 FPP Routes printed\n"), "{objects}");

    // show config: exactly what `cmmd check-config` prints for the same flags and file.
    let config_path = flows._config.path().to_string_lossy().into_owned();
    let check = topo
        .router
        .exec(
            CMMD,
            &["check-config", "--backend", "sim", "--ports", "r0,r1", "--config", &config_path],
        )
        .unwrap();
    assert_eq!(cli.command("show config").unwrap(), check);
    let version = Command::new(CMMD).arg("--version").output().unwrap();
    assert_eq!(cli.command("show version").unwrap(), String::from_utf8_lossy(&version.stdout));
    let status = cli.command("show status").unwrap();
    let rows = lines(&status);
    assert_eq!(rows.len(), 9, "{status}");
    assert_eq!(
        &rows[..4],
        [
            format!("version: {}", env!("CARGO_PKG_VERSION")).as_str(),
            "backend: sim",
            "ready: yes",
            "active: yes"
        ]
    );
    assert!(
        rows[4]
            .strip_prefix("uptime: ")
            .and_then(|u| u.strip_suffix('s'))
            .is_some_and(|u| u.parse::<u64>().is_ok()),
        "{status}"
    );
    assert_eq!(rows[5], "connections: 2 tracked, 2 offloaded, capacity 131072");
    assert!(
        rows[6].starts_with("conntrack dialect: stock (auto, no ASK attributes in "),
        "{status}"
    );
    assert_eq!(rows[7], "ips_permanent bit: none (the kernel reads as stock)");

    // The cdx ABI, as detected: the software cdx is the harness's (CMM_SIM_ABI).
    let abi = std::env::var("CMM_SIM_ABI").unwrap_or_else(|_| "lsdk".into());
    assert!(
        rows[8].starts_with(&format!("cdx: {abi} (detected: IPv4 GET_TIMEOUT of 44 B → ")),
        "{status}"
    );
    drop(flows.held);
}

/// The `show sim` line of the flow from `sport`: its remaining hardware lifetime in seconds.
pub(crate) fn hw_remaining(daemon: &Daemon, sport: u16) -> Option<u64> {
    let text = daemon.ctl("show sim").ok()?;
    let line = text.lines().find(|l| l.contains(&format!("sport={sport} ")))?;
    field(line, "remaining=").strip_suffix('s')?.parse().ok()
}

/// `set …` and `stop` are refused at `cmm>`, then change exactly what they name after `enable`;
/// `help` lists only what the level may run; `stop` ends the daemon with exit code 0.
#[test]
fn set_commands_and_stop_need_enable_then_take_effect() {
    require_root();
    let topo = Topology::new().unwrap();
    let mut flows = router_with_two_flows(&topo, &[]);
    let p4 = flows.v4_port;
    let mut cli = admin_session(&topo.router);

    // As on the vendor (libcli), privileged commands do not exist at `cmm>`.
    let help = cli.command("help").unwrap();
    assert!(!help.contains("  set activate ") && !help.contains("  stop "), "{help}");
    for (command, refused) in [
        ("set activate 0", "set activate"),
        ("set debug info 0", "set debug"),
        ("set timeout tcp 100", "set timeout"),
        ("stop", "stop"),
        ("sim fault clear", "sim"),
        ("disable", "disable"),
    ] {
        assert_eq!(
            cli.command(command).unwrap(),
            format!("Invalid command \"{refused}\"\n"),
            "{command}"
        );
    }
    assert_eq!(cli.command("show activate").unwrap(), "1\n", "nothing changed");
    assert!(cli.transcript().ends_with(PROMPT));

    assert_eq!(cli.command("enable").unwrap(), "", "no enable password configured");
    assert!(cli.transcript().ends_with(ENABLED_PROMPT), "{}", cli.transcript());
    let help = cli.command("help").unwrap();
    for usage in [
        "  set activate         Activate or desactivate fast forwarding\n",
        "  set debug            Debug level\n",
        "  set timeout          Set UDP/TCP/IPIP timeout value in FPP\n",
        "  stop                 Kill cmm\n",
        "  disable              Turn off privileged commands\n",
    ] {
        assert!(help.contains(usage), "{usage:?} in\n{help}");
    }

    // set timeout: the hardware ages the TCP flow with the new timeout.
    assert!(hw_remaining(&flows.daemon, p4).is_some_and(|r| r > 400_000), "the default 5 days");
    assert_eq!(cli.command("set timeout tcp 100").unwrap(), "");
    wait_for(WAIT, POLL, || hw_remaining(&flows.daemon, p4).filter(|r| *r <= 100))
        .unwrap_or_else(|| panic!("aging follows set timeout: {:?}", flows.daemon.ctl("show sim")));
    assert_eq!(cli.command("set timeout udp 60 20").unwrap(), "");
    assert_eq!(cli.command("set timeout other 30").unwrap(), "");
    assert_eq!(cli.command("set timeout tcp 0").unwrap(), "", "the vendor ignores a zero");
    assert_eq!(
        cli.command("set timeout tcp").unwrap(),
        "Usage: set timeout <udp tcp other> value [value2] [4rd]\n",
        "the vendor's usage text"
    );

    // set debug: the categories follow (from the vendor's default), and the log filter
    // with them.
    assert_eq!(cli.command("set debug command 1").unwrap(), "");
    assert_eq!(cli.command("set debug info 0").unwrap(), "");
    assert_eq!(
        cli.command("show debug_level").unwrap(),
        "command:\tprinted\nerror:  \tprinted\nwarning:\tnot printed\ninfo:   \tnot printed\n"
    );
    assert_eq!(cli.command("set debug info 1").unwrap(), "");
    wait_for(WAIT, POLL, || {
        let log = flows.daemon.log();
        log.contains("log filter changed from the CLI filter=info,cmmd::offload=debug")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the filter change is logged:\n{}", flows.daemon.log()));

    // set activate 0 withdraws everything from the hardware; 1 learns the table again.
    assert_eq!(cli.command("set activate 0").unwrap(), "");
    assert_eq!(cli.command("show activate").unwrap(), "0\n");
    wait_for(WAIT, POLL, || flows.daemon.sim().ok().filter(|t| t.connections.is_empty()))
        .expect("deactivation empties the hardware tables");
    assert!(cli.command("show status").unwrap().contains("\nactive: no (set activate 0)\n"));
    assert_eq!(
        cli.command("query connections").unwrap(),
        "ERROR: FPP IPV4 CONNTRACK table empty\n"
    );
    assert_eq!(
        cli.command("query v6connections").unwrap(),
        "ERROR: FPP IPV6 CONNTRACK table empty\n"
    );
    assert_eq!(cli.command("set activate 1").unwrap(), "");
    flows.wait_offloaded();

    assert_eq!(cli.command("disable").unwrap(), "");
    assert!(cli.transcript().ends_with(PROMPT));
    assert_eq!(
        cli.command("set activate 0").unwrap(),
        "Invalid command \"set activate\"\n",
        "disable drops the privilege"
    );
    cli.send_line("quit").unwrap();
    assert_eq!(cli.expect_closed(WAIT).unwrap(), "quit\n", "quit closes the session at once");

    // `cmmd ctl` enables by itself for a privileged command.
    assert_eq!(flows.daemon.ctl("set timeout tcp 200").unwrap(), "");
    wait_for(WAIT, POLL, || hw_remaining(&flows.daemon, p4).filter(|r| (101..=200).contains(r)))
        .expect("the ctl command took effect");
    let err = flows.daemon.ctl("show nonsense").unwrap_err().to_string();
    assert!(err.ends_with("cmmd ctl: Invalid command \"show nonsense\""), "{err}");

    // stop: the reply, then an orderly exit with code 0.
    let mut cli = admin_session(&topo.router);
    cli.command("enable").unwrap();
    cli.send_line("stop").unwrap();
    assert_eq!(cli.expect("\n").unwrap(), "stop\n");
    assert_eq!(cli.expect("\n").unwrap(), "Killing cmm ...\n");
    let status = flows.daemon.wait(WAIT).unwrap();
    assert_eq!(status.code(), Some(0), "{}", flows.daemon.log());
    assert!(flows.daemon.log().contains("stop requested from the CLI"));
}

/// The real `telnet` client on a pseudo-terminal: login, `show connections` with a real
/// offloaded flow, `?` help, TAB completion, history with the up arrow, `enable`, `quit`.
#[test]
fn telnet_client_logs_in_and_uses_help_completion_and_history() {
    require_root();
    let topo = Topology::new().unwrap();
    let flows = router_with_two_flows(&topo, &[]);
    let table = flows.daemon.ctl("show connections").unwrap();
    let transcript = run_expect(
        &topo.router,
        &format!(
            "{TELNET_LOGIN}{}",
            r#"
send "show connections\r"
want "2 connections printed"
want "cmm> "
send "show co?"
want "counters"
want "cmm> show co"
send "\025"
send "sh\tcou\t\r"
want "table_entries: 2"
want "cmm> "
send "\033\[A"
want "show counters"
send "\r"
want "table_entries: 2"
want "cmm> "
send "enable\r"
want "cmm# "
send "quit\r"
want "Connection closed by foreign host."
expect eof
"#
        ),
    )
    .unwrap();
    // The server echoes the user name, never the password.
    assert!(
        transcript.contains("CLI\r\n\r\nUsername: admin\r\nPassword:  \r\n\r\ncmm> "),
        "{transcript}"
    );
    // show connections: the table, as `cmmd ctl` prints it.
    let (_, after) =
        transcript.split_once("cmm> show connections\r\n").expect("the command echoed");
    let (rows, _) = after.split_once("2 connections printed\r\n").expect("the table's count");
    let rows: Vec<&str> = rows.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), 2, "{transcript}");
    for row in rows {
        let v6 = row.starts_with("ipv6");
        assert_eq!(row, flows.expected_line(row, v6));
        assert!(table.lines().any(|l| l.contains(&row[row.find(" ESTABLISHED").unwrap()..])));
    }
    // `?` lists the choices and gives the line back; ^U erases it in place; TAB completes
    // `sh` to `show ` and `cou` to `counters `, rewriting the typed part as libcli does.
    let erase = format!("{0}{1}{0}", "\u{8}".repeat(7), " ".repeat(7));
    let help_and_tab = format!(
        "cmm> show co\r\n  connections          Show the table of fast forwarded connections\r\n  \
         counters             Show counters by reason\r\n  config               Show the \
         effective configuration\r\n\r\ncmm> show co{erase}sh\u{8}\u{8}show cou\u{8}\u{8}\u{8}\
         counters \r\ntable_entries: 2\r\n"
    );
    assert!(transcript.contains(&help_and_tab), "{help_and_tab:?} in {transcript:?}");
    // The up arrow recalls the last line as typed (libcli keeps the trailing blank).
    assert!(
        transcript
            .contains("log_lines_dropped: 0\r\n\r\ncmm> show counters \r\ntable_entries: 2\r\n"),
        "{transcript}"
    );
    assert!(
        transcript.contains("cmm> enable\r\n\r\ncmm# quit\r\nConnection closed by foreign host."),
        "{transcript}"
    );
}

/// Resident memory of the daemon, bytes.
fn rss(daemon: &Daemon) -> u64 {
    cmmd_tests::measure::rss_bytes(daemon.pid().expect("running")).expect("VmRSS")
}

/// `count` pseudo-random bytes (xorshift64: reproducible, no dependency).
fn noise(seed: u64, count: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Run `f(i)` for `0..n` on `n` threads and collect the results in order.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| scope.spawn(move || f(i))).collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    })
}

/// 50 concurrent clients, then stalled readers, 1 MiB lines, random bytes, IAC floods and wrong
/// passwords all at once: a session opened before keeps answering within a second, the daemon
/// stays up, every abusive session ends, and resident memory stays within a bound.
#[test]
fn abusive_clients_leave_the_daemon_up_other_sessions_working_and_memory_bounded() {
    require_root();
    let config = config_file("max_sessions = 128\nlockout_failures = 100000", "");
    let (netns, daemon) = lone_daemon("cla", &config, &[]);
    let mut watcher = admin_session(&netns);
    let before = rss(&daemon);

    // 50 sessions at once, each logging in and running commands.
    let started = Instant::now();
    let results = parallel(50, |_| -> std::io::Result<()> {
        let mut cli = admin_session(&netns);
        assert!(cli.command("show status")?.contains("\nready: yes\n"));
        assert_eq!(
            cli.command("show connections")?,
            "0 connections printed\n0 connections with > 1 ids\n"
        );
        assert!(cli.command("help")?.starts_with("Commands available:\n"));
        cli.send_line("quit")?;
        cli.expect_closed(WAIT).map(drop)
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let concurrent = started.elapsed();

    let (slowest, abusers) = abuse_round(&netns, &mut watcher);
    let after_abuse = rss(&daemon);
    let (slowest_again, _) = abuse_round(&netns, &mut watcher);
    let after_second = rss(&daemon);

    // Everything the abusers opened is gone; the watcher still works.
    wait_for(WAIT, POLL, || (daemon.counter("cli_sessions") == 2).then_some(()))
        .unwrap_or_else(|| panic!("sessions left: {:?}", daemon.counters()));
    assert_eq!(watcher.command("show activate").unwrap(), "1\n");
    let failures = daemon.counter("cli_login_failures");
    assert!(failures >= 15, "5 clients x 3 wrong passwords, and random lines: {failures}");
    let after = rss(&daemon);
    eprintln!(
        "CLI abuse: 50 concurrent logins+3 commands in {concurrent:?}; watcher slowest reply \
         {slowest:?}/{slowest_again:?}; RSS before {} KiB, after a round of abuse {} KiB, after a \
         second {} KiB, at rest {} KiB; abusers {abusers:?}",
        before / 1024,
        after_abuse / 1024,
        after_second / 1024,
        after / 1024
    );
    assert!(slowest.max(slowest_again) < Duration::from_secs(2), "the watcher waited");
    // The first round allocates what the daemon keeps (argon2's 19 MiB working memory for the
    // unknown users of the random lines, session buffers); a second round adds nothing more.
    assert!(after_abuse < before + 64 * 1024 * 1024, "RSS grew from {before} to {after_abuse}");
    assert!(after_second < after_abuse + 8 * 1024 * 1024, "RSS grew again to {after_second}");
}

/// One round of abuse by 30 clients (six kinds) while `watcher` keeps asking `show status`;
/// returns the watcher's slowest answer and what each abuser saw.
fn abuse_round(netns: &Netns, watcher: &mut CliClient) -> (Duration, Vec<&'static str>) {
    let abuse_done = std::sync::atomic::AtomicBool::new(false);
    let (slowest, abusers) = std::thread::scope(|scope| {
        let watch = scope.spawn(|| {
            // The session opened before the abuse answers throughout it.
            let mut slowest = Duration::ZERO;
            while !abuse_done.load(std::sync::atomic::Ordering::Relaxed) {
                let asked = Instant::now();
                assert!(watcher.command("show status").unwrap().contains("\nready: yes\n"));
                slowest = slowest.max(asked.elapsed());
            }
            slowest
        });
        let abusers = parallel(30, |i| -> std::io::Result<&'static str> {
            match i % 6 {
                0 => {
                    // Stalled reader: 16 KiB of commands with long replies, never read.
                    let mut cli = admin_session(netns);
                    cli.stream().set_write_timeout(Some(WAIT))?;
                    cli.send(&b"show config\n".repeat(1365))?;
                    cli.expect_closed(Duration::from_secs(3)).map(|_| "closed").or(Ok("open"))
                }
                1 => {
                    // A 1 MiB line: refused with one line, the session goes on.
                    let mut cli = admin_session(netns);
                    cli.send(&vec![b'x'; 1 << 20])?;
                    cli.send_line("")?;
                    let echo_and_error =
                        format!("{}\u{7}\n% Line too long (limit 4096 bytes)\n", "x".repeat(4096));
                    assert_eq!(cli.reply()?, echo_and_error);
                    assert_eq!(cli.command("show activate")?, "1\n");
                    Ok("long line refused")
                }
                2 => {
                    // Random bytes before and after logging in.
                    let mut cli = CliClient::connect(netns, cli_addr())?;
                    cli.send(&noise(i as u64, 256 * 1024))?;
                    let mut cli2 = admin_session(netns);
                    cli2.send(&noise(i as u64 + 1, 256 * 1024))?;
                    Ok("noise sent")
                }
                3 => {
                    // IAC floods: option requests and an endless subnegotiation, then a login.
                    let mut cli = CliClient::connect(netns, cli_addr())?;
                    let flood: Vec<u8> = noise(i as u64, 60_000)
                        .iter()
                        .flat_map(|x| [0xFF, 0xFD + (x & 1), *x])
                        .collect();
                    cli.send(&flood)?;
                    let mut sb = vec![0xFF, 0xFA, 0x18];
                    sb.extend(noise(i as u64 + 7, 64 * 1024).iter().map(|b| b & 0x7F));
                    sb.extend_from_slice(&[0xFF, 0xF0]);
                    cli.send(&sb)?;
                    cli.login("admin", ADMIN_PASSWORD)?;
                    assert_eq!(cli.command("show activate")?, "1\n");
                    Ok("usable after the flood")
                }
                4 => {
                    // Wrong passwords until the session closes.
                    let mut cli = CliClient::connect(netns, cli_addr())?;
                    for _ in 0..3 {
                        cli.expect("Username: ")?;
                        cli.send_line("admin")?;
                        cli.expect("Password: ")?;
                        cli.send_line("not-the-password")?;
                        cli.expect("Access denied\n")?;
                    }
                    cli.expect_closed(WAIT)?;
                    Ok("denied three times")
                }
                _ => {
                    // Connect and vanish, with and without a half-typed line.
                    let mut cli = CliClient::connect(netns, cli_addr())?;
                    cli.send(b"adm")?;
                    drop(cli);
                    let _ = CliClient::connect(netns, cli_addr())?;
                    Ok("gone")
                }
            }
        });
        abuse_done.store(true, std::sync::atomic::Ordering::Relaxed);
        (watch.join().expect("watcher"), abusers)
    });
    (slowest, abusers.into_iter().map(|r| r.expect("abusive client")).collect())
}

/// Give the namespace's loopback the addresses `127.0.<net>.1..=count` (sources of "other hosts").
fn loopback_sources(netns: &Netns, net: u8, count: u8) -> Vec<std::net::IpAddr> {
    (1..=count)
        .map(|host| {
            let addr = std::net::Ipv4Addr::new(127, 0, net, host);
            netns.ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"]).expect("ip addr add");
            std::net::IpAddr::V4(addr)
        })
        .collect()
}

const LOCKED_OUT: &str = "% Too many failed logins from your address; try again later\n";

/// One wrong password on a fresh `Username:` prompt; returns how long the server took to offer
/// the next `Username:` (`None` when it closed the session instead).
fn fail_once(cli: &mut CliClient, password: &str) -> Option<Duration> {
    cli.send_line("admin").unwrap();
    cli.expect("Password: ").unwrap();
    cli.send_line(password).unwrap();
    cli.expect("Access denied\n").unwrap();
    let denied = Instant::now();
    cli.expect("Username: ").ok().map(|_| denied.elapsed())
}

/// Brute force from one address: each failure delays the next prompt (1 s, 2 s), the session
/// closes after three, and at the fifth failure the address is locked out, even for the right
/// password, while another address logs in at once; the lock ends after `lockout_duration`.
#[test]
fn brute_force_from_one_source_is_slowed_then_locked_out_while_others_log_in() {
    require_root();
    let config =
        config_file("lockout_failures = 5\nlockout_window = \"5m\"\nlockout_duration = \"4s\"", "");
    let (netns, daemon) = lone_daemon("clb", &config, &[]);
    let sources = loopback_sources(&netns, 1, 2);
    let (attacker, other) = (sources[0], sources[1]);

    let mut first = CliClient::connect_from(&netns, attacker, cli_addr()).unwrap();
    first.expect("Username: ").unwrap();
    let delay1 = fail_once(&mut first, "guess-1").expect("a second try");
    // During the attacker's delays another address logs in without waiting.
    let other_login = Instant::now();
    let mut bystander = CliClient::connect_from(&netns, other, cli_addr()).unwrap();
    bystander.login("admin", ADMIN_PASSWORD).unwrap();
    let other_login = other_login.elapsed();
    let delay2 = fail_once(&mut first, "guess-2").expect("a third try");
    assert_eq!(fail_once(&mut first, "guess-3"), None, "three failures close the session");
    assert!(first.expect_closed(WAIT).is_ok());

    let mut second = CliClient::connect_from(&netns, attacker, cli_addr()).unwrap();
    second.expect("Username: ").unwrap();
    assert!(fail_once(&mut second, "guess-4").is_some());
    let locked_at = Instant::now();
    assert!(fail_once(&mut second, "guess-5").is_some(), "the fifth failure locks the address");
    // Locked: even the right password is refused, without being checked.
    assert_eq!(fail_once(&mut second, ADMIN_PASSWORD), None);
    let mut third = CliClient::connect_from(&netns, attacker, cli_addr()).unwrap();
    assert_eq!(third.expect_closed(WAIT).unwrap(), LOCKED_OUT, "refused before any prompt");
    assert_eq!(bystander.command("show activate").unwrap(), "1\n", "others are not affected");

    // The lock ends.
    let unlocked = wait_for(WAIT, Duration::from_millis(250), || {
        let mut cli = CliClient::connect_from(&netns, attacker, cli_addr()).ok()?;
        cli.login("admin", ADMIN_PASSWORD).ok().map(|_| locked_at.elapsed())
    })
    .expect("the address can log in again");
    eprintln!(
        "CLI brute force: delays {delay1:?} then {delay2:?}; another address logged in in \
         {other_login:?}; locked out for {unlocked:?} (lockout_duration 4s)"
    );
    assert!(
        delay1 >= Duration::from_millis(950) && delay1 < Duration::from_millis(1900),
        "{delay1:?}"
    );
    assert!(delay2 >= Duration::from_millis(1950) && delay2 < Duration::from_secs(3), "{delay2:?}");
    assert!(other_login < Duration::from_millis(900), "{other_login:?}");
    assert!(unlocked >= Duration::from_millis(3500), "{unlocked:?}");
    assert_eq!(daemon.counter("cli_login_failures"), 5, "the locked-out try is not even checked");
    // Refused: the locked-out try in the open session and the third connection.
    assert!(daemon.counter("cli_refused") >= 2, "{:?}", daemon.counters());
    let log = daemon.log();
    assert!(log.contains("CLI login failed; source locked out"), "{log}");
    assert!(log.contains("CLI login refused: source locked out"), "{log}");
}

/// Brute force from 16 addresses at once: every address is slowed and then locked out on its
/// own, and an address that does not fail logs in promptly all along.
#[test]
fn brute_force_from_many_sources_locks_each_out_and_never_blocks_a_good_source() {
    require_root();
    let config =
        config_file("max_sessions = 64\nlockout_failures = 3\nlockout_duration = \"5m\"", "");
    let (netns, daemon) = lone_daemon("clm", &config, &[]);
    let attackers = loopback_sources(&netns, 2, 16);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (per_source, logins) = std::thread::scope(|scope| {
        let good = scope.spawn(|| {
            let mut slowest = Duration::ZERO;
            let mut logins = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let mut cli = admin_session(&netns);
                assert!(cli.command("show status").unwrap().contains("\nready: yes\n"));
                slowest = slowest.max(started.elapsed());
                logins += 1;
                // Pacing, not waiting: an operator, not a second flood.
                std::thread::sleep(Duration::from_millis(50));
            }
            (logins, slowest)
        });
        let per_source = parallel(attackers.len(), |i| {
            let started = Instant::now();
            let mut cli = CliClient::connect_from(&netns, attackers[i], cli_addr()).unwrap();
            cli.expect("Username: ").unwrap();
            while fail_once(&mut cli, &format!("guess-{i}")).is_some() {}
            let session = started.elapsed();
            let mut again = CliClient::connect_from(&netns, attackers[i], cli_addr()).unwrap();
            assert_eq!(again.expect_closed(WAIT).unwrap(), LOCKED_OUT);
            session
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (per_source, good.join().expect("good client"))
    });
    let (logins, slowest) = logins;
    eprintln!(
        "CLI brute force from 16 addresses: each session of 3 failures lasted {:?}..{:?}; a good \
         address logged in {logins} times meanwhile, slowest {slowest:?}",
        per_source.iter().min(),
        per_source.iter().max()
    );
    assert!(per_source.iter().all(|d| *d >= Duration::from_millis(2900)), "slowed: {per_source:?}");
    assert!(slowest < Duration::from_secs(1), "the good address waited {slowest:?}");
    assert!(logins >= 3);
    assert_eq!(daemon.counter("cli_login_failures"), 48);
    assert_eq!(daemon.counter("cli_refused"), 16);
}

/// Before a login only `Username:` and `Password:` are reachable: command words are taken as
/// names and passwords (the names echoed, as libcli does), `?` and TAB are text, Ctrl-C rings
/// the bell, and nothing runs.
#[test]
fn unauthenticated_clients_reach_only_username_and_password() {
    require_root();
    let config = config_file("", "");
    let (netns, daemon) = lone_daemon("clu", &config, &[]);
    let mut cli = CliClient::connect(&netns, cli_addr()).unwrap();
    cli.expect("Username: ").unwrap();
    for (user, password) in [("show version", "stop"), ("help", "show ?")] {
        cli.send_line(user).unwrap();
        cli.expect("Password: ").unwrap();
        cli.send_line(password).unwrap();
        cli.expect("Access denied\n").unwrap();
        cli.expect("Username: ").unwrap();
    }
    cli.send(b"?\t\x03enable\n").unwrap();
    cli.expect("Password: ").unwrap();
    cli.send_line("admin").unwrap();
    assert_eq!(cli.expect_closed(WAIT).unwrap(), "Access denied\n", "the third failure closes");
    assert_eq!(
        cli.transcript(),
        "Welcome to the CMM (Conntrack Monitor Module) CLI\n\nUsername: show version\nPassword: \
         Access denied\n\nUsername: help\nPassword: Access denied\n\nUsername: ? \u{7}enable\n\
         Password: Access denied\n",
        "only the login prompts"
    );
    assert_eq!(daemon.ctl("show status").unwrap().lines().nth(2), Some("ready: yes"), "still up");
    assert!(!daemon.log().contains("stop requested"));
}

/// `enable` asks for the configured enable password; a wrong one keeps `cmm>`. Neither the
/// login nor the enable passwords, right or wrong, ever reach the log, even at trace level.
#[test]
fn the_enable_password_is_enforced_and_passwords_never_reach_the_log() {
    require_root();
    const ENABLE: &str = "En4ble-Secret-7";
    const WRONG_LOGIN: &str = "Wr0ng-Login-Pass-1";
    const WRONG_ENABLE: &str = "Wr0ng-Enable-Pass-2";
    let config = config_file(&format!("enable_password_hash = \"{}\"", cheap_hash(ENABLE)), "");
    let (netns, daemon) = lone_daemon("clp", &config, &["--log", "trace"]);

    let mut cli = CliClient::connect(&netns, cli_addr()).unwrap();
    cli.expect("Username: ").unwrap();
    cli.send_line(OPERATOR.0).unwrap();
    cli.expect("Password: ").unwrap();
    cli.send_line(WRONG_LOGIN).unwrap();
    cli.expect("Access denied\n").unwrap();
    cli.login(OPERATOR.0, OPERATOR.1).unwrap();
    cli.send_line("enable").unwrap();
    cli.expect("Password: ").unwrap();
    cli.send_line(WRONG_ENABLE).unwrap();
    assert_eq!(cli.reply().unwrap(), "Access denied\n");
    assert!(cli.transcript().ends_with(PROMPT));
    assert_eq!(cli.command("set activate 0").unwrap(), "Invalid command \"set activate\"\n");
    cli.send_line("enable").unwrap();
    cli.expect("Password: ").unwrap();
    cli.send_line(ENABLE).unwrap();
    assert_eq!(cli.reply().unwrap(), "");
    assert!(cli.transcript().ends_with(ENABLED_PROMPT));
    assert_eq!(cli.command("set activate 0").unwrap(), "");
    assert_eq!(cli.command("show activate").unwrap(), "0\n");
    let shown = cli.command("show config").unwrap();
    assert!(shown.contains("enable_password_hash = \"<redacted>\""), "{shown}");

    // `cmmd ctl` sends the enable password from CMM_CLI_ENABLE_PASSWORD, else the login one.
    let ctl = |enable: Option<&str>| {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns.name(), CMMD, "ctl", "set", "activate", "1"]);
        match enable {
            Some(password) => command.env("CMM_CLI_ENABLE_PASSWORD", password),
            None => command.env_remove("CMM_CLI_ENABLE_PASSWORD"),
        };
        command.env_remove("CMM_CLI_USER").env_remove("CMM_CLI_PASSWORD").output().unwrap()
    };
    let refused = ctl(None);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&refused.stderr), "cmmd ctl: Access denied\n");
    assert!(ctl(Some(ENABLE)).status.success());
    assert_eq!(daemon.ctl("show activate").unwrap(), "1\n");

    let log = wait_for(WAIT, POLL, || {
        let log = daemon.log();
        log.contains("CLI enable password refused").then_some(log)
    })
    .expect("the refusal is logged");
    assert!(log.contains("CLI login failed") && log.contains("user=operator"), "{log}");
    for secret in [ENABLE, WRONG_LOGIN, WRONG_ENABLE, OPERATOR.1] {
        assert!(!log.contains(secret), "{secret:?} in the log");
    }
}

/// With no configuration the CLI and the metrics listen on 127.0.0.1 only.
#[test]
fn the_cli_and_metrics_listen_on_loopback_by_default() {
    require_root();
    let netns = Netns::new("cll").unwrap();
    netns.ip(&["link", "add", "ext0", "type", "veth", "peer", "name", "ext1"]).unwrap();
    netns.ip(&["addr", "add", "192.0.2.1/24", "dev", "ext0"]).unwrap();
    netns.ip(&["link", "set", "ext0", "up"]).unwrap();
    let _daemon = Daemon::start(binary(), &netns, &["--backend", "sim"]).unwrap();
    let listening = netns.exec("ss", &["-Hltn"]).unwrap();
    let mut listeners: Vec<&str> =
        listening.lines().filter_map(|l| l.split_whitespace().nth(3)).collect();
    listeners.sort_unstable();
    assert_eq!(listeners, ["127.0.0.1:2103", "127.0.0.1:9103"], "{listening}");
    let refused = CliClient::connect(&netns, "192.0.2.1:2103".parse().unwrap()).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// At most `max_sessions` (8) sessions, whatever the number of attempts: of 200 simultaneous
/// connections 8 get a login prompt and 192 one line and a close; the 8 keep working.
#[test]
fn the_session_limit_holds_under_200_connection_attempts() {
    require_root();
    let config = config_file("", "");
    let (netns, daemon) = lone_daemon("cls", &config, &[]);
    wait_for(WAIT, POLL, || (daemon.counter("cli_sessions") == 1).then_some(()))
        .expect("only the counting session open");
    let clients: Vec<CliClient> = (0..200)
        .map(|_| CliClient::connect(&netns, cli_addr()).expect("accepted by the kernel"))
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for mut client in clients {
        let first = client.expect_within("\n", WAIT).unwrap();
        if first == "Welcome to the CMM (Conntrack Monitor Module) CLI\n" {
            client.expect("Username: ").unwrap();
            admitted.push(client);
        } else {
            assert_eq!(first, "% Too many sessions (8 open, the limit); try again later\n");
            assert_eq!(client.expect_closed(WAIT).unwrap(), "");
            refused += 1;
        }
    }
    assert_eq!((admitted.len(), refused), (8, 192));
    for client in &mut admitted {
        client.send_line("admin").unwrap();
        client.expect("Password: ").unwrap();
        client.send_line(ADMIN_PASSWORD).unwrap();
        client.expect(PROMPT).unwrap();
        assert_eq!(client.command("show activate").unwrap(), "1\n");
    }
    drop(admitted);
    wait_for(WAIT, POLL, || (daemon.counter("cli_sessions") == 1).then_some(()))
        .expect("the slots are free again");
    assert_eq!(daemon.counter("cli_refused"), 192);
}

/// Slow clients cannot hold sessions: one that trickles a user name never finishes logging in
/// and is closed at the login timeout, so is one that sends nothing; a logged-in session that
/// goes quiet is closed at the idle timeout.
#[test]
fn slowloris_clients_time_out() {
    require_root();
    let config = config_file("login_timeout = \"2s\"\nidle_timeout = \"2s\"", "");
    let (netns, _daemon) = lone_daemon("clt", &config, &[]);
    let timings = parallel(3, |i| {
        let started = Instant::now();
        let mut cli = CliClient::connect(&netns, cli_addr()).unwrap();
        cli.expect("Username: ").unwrap();
        let rest = match i {
            0 => {
                // One byte every 200 ms, never a whole line.
                while !cli.is_closed() && started.elapsed() < WAIT {
                    if cli.send(b"a").is_err() {
                        break;
                    }
                    let _ = cli.expect_within("timed out", Duration::from_millis(200));
                }
                cli.expect_closed(WAIT).unwrap_or_default()
            }
            1 => cli.expect_closed(WAIT).unwrap(),
            _ => {
                cli.send_line("admin").unwrap();
                cli.expect("Password: ").unwrap();
                cli.send_line(ADMIN_PASSWORD).unwrap();
                cli.expect(PROMPT).unwrap();
                let logged_in = started.elapsed();
                let rest = cli.expect_closed(WAIT).unwrap();
                return (started.elapsed() - logged_in, rest, cli.transcript());
            }
        };
        (started.elapsed(), rest, cli.transcript())
    });
    for (i, (elapsed, _rest, transcript)) in timings.iter().enumerate() {
        eprintln!("slow client {i}: closed after {elapsed:?}");
        assert!(
            *elapsed >= Duration::from_millis(1900) && *elapsed < Duration::from_secs(4),
            "{i}: {elapsed:?}"
        );
        let expected = if i == 2 {
            "\n% Idle timeout, closing the session\n"
        } else {
            "\n% Login timed out\n"
        };
        assert!(transcript.ends_with(expected), "{i}: {transcript:?}");
    }
}

/// Each login verifies an argon2 hash with 19 MiB of working memory (the default cost): the
/// daemon keeps one such buffer, it does not grow by one per login.
#[test]
fn logins_with_the_default_cost_do_not_grow_memory() {
    require_root();
    let netns = Netns::new("clg").unwrap();
    let daemon = Daemon::start(binary(), &netns, &["--backend", "sim"]).unwrap();
    let first = rss(&daemon);
    for _ in 0..10 {
        daemon.ctl("show version").unwrap();
    }
    let after = rss(&daemon);
    eprintln!("RSS after one login {} KiB, after eleven {} KiB", first / 1024, after / 1024);
    assert!(after < first + 8 * 1024 * 1024, "{first} -> {after} bytes");
}
