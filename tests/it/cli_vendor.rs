//! The CLI as a `cmm` operator or script knows it (issue 18): a real `telnet` session and a raw
//! client compared byte for byte with what libcli 1.10.7 and cmm's command table print (the
//! expected texts were recorded from libcli itself), libcli's error texts and filters, the
//! vendor commands cmmd does not implement, and the vendor's command line (`-f -n -c -v`).

use std::process::Command;

use cmmd_tests::daemon::Daemon;
use cmmd_tests::require_root;
use cmmd_tests::scenario::service_server;
use cmmd_tests::telnet::{CliClient, NEGOTIATION, TELNET_LOGIN, run_expect};
use cmmd_tests::topology::{self, Topology};
use cmmd_tests::traffic::wait_for;

use crate::cli::{
    ADMIN_PASSWORD, CMMD, POLL, WAIT, admin_session, binary, cli_addr, config_file, hold_tcp,
    lone_daemon, router_with_two_flows,
};

/// The real `telnet` client, byte for byte what libcli 1.10.7 with cmm's command table prints
/// for the same session (the expected texts were recorded from libcli itself): the echoed
/// command line, CR LF before each prompt, libcli's error texts, filters and `history`; a vendor
/// command cmmd does not implement answers one line; Ctrl-C rings and keeps the line.
#[test]
fn a_telnet_session_frames_errors_and_filters_as_libcli() {
    require_root();
    let topo = Topology::new().unwrap();
    let flows = router_with_two_flows(&topo, &[]);
    let transcript = run_expect(
        &topo.router,
        &format!(
            "{TELNET_LOGIN}{}",
            r#"
send "show activate\r"
want "cmm> "
send "\r"
want "cmm> "
send "show foo\r"
want "cmm> "
send "sh\r"
want "cmm> "
send "show macvlan\r"
want "cmm> "
send "set ff enable\r"
want "cmm> "
send "show connections | include \[ASSURED\]\r"
want "cmm> "
send "show connections | egrep \"ipv4|ipv6\" | count\r"
want "cmm> "
send "show connections | grep -vi established\r"
want "cmm> "
send "show connections | between ipv6 printed\r"
want "cmm> "
send "show connections | count 1\r"
want "cmm> "
send "show act\003ivate\r"
want "cmm> "
send "history\r"
want "cmm> "
send "quit\r"
expect eof
"#
        ),
    )
    .unwrap();
    let table = flows.daemon.ctl("show connections").unwrap();
    let rows: Vec<&str> = table.lines().collect();
    let trailers = format!("{}\r\n{}", rows[2], rows[3]);
    let from_v6: String = rows[..3]
        .iter()
        .skip_while(|row| !row.starts_with("ipv6"))
        .map(|row| format!("{row}\r\n"))
        .collect();
    let session = transcript.split_once("Welcome").map(|(_, s)| s).unwrap_or_default();
    let expected = [
        " to the CMM (Conntrack Monitor Module) CLI\r\n\r\nUsername: admin\r\nPassword:  \r\n\r\n",
        "cmm> show activate\r\n1\r\n\r\n",
        "cmm> \r\n\r\n",
        "cmm> show foo\r\nInvalid command \"show foo\"\r\n\r\n",
        "cmm> sh\r\nIncomplete command\r\n\r\n",
        "cmm> show macvlan\r\n% \"show macvlan\" is not supported by cmmd\r\n\r\n",
        "cmm> set ff enable\r\nFast-forward is already enabled\r\n\r\n",
        &format!("cmm> show connections | include [ASSURED]\r\n{}\r\n{}\r\n\r\n", rows[0], rows[1]),
        "cmm> show connections | egrep \"ipv4|ipv6\" | count\r\n2\r\n\r\n",
        &format!("cmm> show connections | grep -vi established\r\n{trailers}\r\n\r\n"),
        &format!("cmm> show connections | between ipv6 printed\r\n{from_v6}\r\n"),
        "cmm> show connections | count 1\r\nCount filter does not take arguments\r\n\r\n",
        "cmm> show act\u{7}ivate\r\n1\r\n\r\n",
        "cmm> history\r\nCommand history:\r\n  0. show activate\r\n  1. show foo\r\n  2. sh\r\n  \
         3. show macvlan\r\n  4. set ff enable\r\n  5. show connections | include [ASSURED]\r\n  \
         6. show connections | egrep \"ipv4|ipv6\" | count\r\n  7. show connections | grep -vi \
         established\r\n  8. show connections | between ipv6 printed\r\n  9. show connections | \
         count 1\r\n 10. show activate\r\n\r\n",
        "cmm> quit\r\n",
    ]
    .concat();
    assert!(session.starts_with(&expected), "{session:?}\nexpected:\n{expected:?}");
}

/// A client that never negotiates (line mode), as libcli treats it: after the 12 negotiation
/// bytes it sees its command lines echoed (libcli echoes whether or not the client agreed),
/// never its password, a blank line before each prompt; lines may end in LF alone (libcli
/// needs CR); `show ?` + Enter lists choices and a TAB is a blank. `ncat` fed by a pipe (its
/// input ends before the password is verified) gets every reply before the server closes.
#[test]
fn raw_clients_that_never_negotiate_get_libcli_text() {
    require_root();
    let config = config_file("", "");
    let (netns, _daemon) = lone_daemon("clr", &config, &[]);

    let mut cli = CliClient::connect(&netns, cli_addr()).unwrap();
    cli.login("admin", ADMIN_PASSWORD).unwrap();
    cli.send_line("show\tactivate").unwrap();
    assert_eq!(cli.reply().unwrap(), "show activate\n1\n", "TAB is a blank");
    let choices = cli.command("show ?").unwrap();
    assert!(
        choices
            .starts_with("  connections          Show the table of fast forwarded connections\n"),
        "{choices}"
    );
    assert!(choices.contains("\n  version              Show the version\n"), "{choices}");
    assert_eq!(
        cli.command("show connections").unwrap(),
        "0 connections printed\n0 connections with > 1 ids\n"
    );
    cli.send_line("quit").unwrap();
    cli.expect_closed(WAIT).unwrap();
    let raw = cli.raw();
    assert_eq!(raw[..12], NEGOTIATION, "the only bytes such a client cannot use");
    let rest = &raw[12..];
    for (byte, what) in [(0xFF, "IAC"), (0x1B, "escape"), (0x08, "backspace"), (0x07, "bell")] {
        assert!(!rest.contains(&byte), "{what} after the negotiation: {:?}", cli.transcript());
    }
    let text = String::from_utf8(rest.to_vec()).expect("plain text");
    assert!(
        text.starts_with(
            "Welcome to the CMM (Conntrack Monitor Module) CLI\r\n\r\nUsername: admin\r\n\
             Password:  \r\n\r\ncmm> show activate\r\n1\r\n\r\ncmm> show ?\r\n  connections"
        ),
        "echo of the user name and the commands, never of the password: {text:?}"
    );

    let ncat = |input: &str| {
        let out = Command::new("ip")
            .args(["netns", "exec", netns.name(), "ncat", "127.0.0.1", "2103"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child.stdin.take().expect("stdin").write_all(input.as_bytes())?;
                child.wait_with_output()
            })
            .expect("ncat runs");
        assert!(out.status.success(), "ncat: {out:?}");
        out.stdout
    };
    let version = Command::new(CMMD).arg("--version").output().unwrap().stdout;
    let version = String::from_utf8_lossy(&version).trim_end().to_string();
    let expected = |tail: &str| {
        let mut bytes = NEGOTIATION.to_vec();
        bytes.extend_from_slice(
            format!(
                "Welcome to the CMM (Conntrack Monitor Module) CLI\r\n\r\nUsername: admin\r\n\
                 Password:  \r\n\r\ncmm> show version\r\n{version}\r\n\r\ncmm> show activate\r\n\
                 1\r\n\r\ncmm> {tail}"
            )
            .as_bytes(),
        );
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let piped = ncat("admin\nadmin\nshow version\nshow activate\n");
    assert_eq!(
        String::from_utf8_lossy(&piped),
        expected(""),
        "answered, then closed at end of input"
    );
    let with_quit = ncat("admin\nadmin\nshow version\nshow activate\nquit\n");
    assert_eq!(String::from_utf8_lossy(&with_quit), expected("quit\r\n"));
    let wrong = ncat("admin\nwrong\nshow version\n");
    assert!(
        String::from_utf8_lossy(&wrong).ends_with("Username: admin\r\nPassword: Access denied\r\n")
    );
}

/// Every error is one line and the session goes on: libcli's texts for what libcli checks,
/// the vendor's usage texts, one line for a vendor command cmmd does not implement, cmmd's
/// `% …` messages for its own additions; a 1 MiB line.
#[test]
fn errors_are_one_line_and_never_disconnect() {
    require_root();
    let config = config_file("", "");
    let (netns, daemon) = lone_daemon("cle", &config, &[]);
    let mut cli = admin_session(&netns);
    for (line, error) in [
        ("show foo", "Invalid command \"show foo\""),
        ("frobnicate", "Invalid command \"frobnicate\""),
        ("s", "Invalid command \"s\""),
        ("qu", "Invalid command \"qu\""),
        ("show", "Incomplete command"),
        ("set timeout tcp abc", "Invalid command \"set timeout\""),
        (
            "show connections port 70000",
            "% Invalid value for port: \"70000\" (expected an integer in 0..=65535)",
        ),
        (
            "show connections addr 10.1",
            "% Invalid value for addr: \"10.1\" (expected an IPv4 or IPv6 address)",
        ),
        (
            "show connections state open",
            "% Invalid value for state: \"open\" (expected one of syn_sent, syn_recv, established, fin_wait, close_wait, last_ack, time_wait, close, syn_sent2)",
        ),
        ("| include x", "Invalid command \"\""),
        ("show version |", "Empty command given"),
        ("show version | bogus x", "Invalid command \"bogus\""),
        ("show version | count x", "Count filter does not take arguments"),
        (
            "show version | include",
            "Incomplete command, missing required argument 'search_pattern' for command 'include'",
        ),
        ("show version | grep -x y", "Problem parsing command setting search_flags with value -x"),
        ("show version | egrep (", "Invalid pattern \"(\""),
        ("set activate 0", "Invalid command \"set activate\""),
        ("show macvlan", "% \"show macvlan\" is not supported by cmmd"),
        ("query ipr4stats", "% \"query ipr4stats\" is not supported by cmmd"),
        ("vlan add eth0", "% eth0 is not a VLAN interface"),
        (
            "prf busycpu",
            "% \"prf busycpu\" is not supported by cmmd\nUsage: prf busycpu {start|stop} [weight_factor]",
        ),
        ("set ff", "Usage: set ff <enable disable>"),
        ("show stat bridge query", "% \"show stat bridge\" is not supported by cmmd"),
    ] {
        let reply = cli.command(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(reply, format!("{error}\n"), "{line}");
        assert_eq!(cli.command("show activate").unwrap(), "1\n", "the session goes on");
    }
    // The vendor ignores words its commands do not read.
    assert_eq!(cli.command("show activate please").unwrap(), "1\n");
    let long_line = "a".repeat(1 << 20);
    cli.send_line(&long_line).unwrap();
    assert_eq!(
        cli.reply().unwrap(),
        format!("{}\u{7}\n% Line too long (limit 4096 bytes)\n", "a".repeat(4096)),
        "the echo stops at the limit with one bell"
    );
    assert_eq!(cli.command("show activate").unwrap(), "1\n");
    assert!(!cli.is_closed());
    assert_eq!(daemon.counter("cli_sessions"), 2, "this session and ctl's");
}

/// The vendor's command line as a drop-in: `cmmd -f FASTFORWARD -n N` starts the daemon with
/// the file's deny rules and N as the connection bound; `cmmd -c COMMAND…` runs one command like
/// `cmmd ctl`, and `cmmd ctl "show connections"` prints what `cmmd ctl show connections` does.
#[test]
fn the_vendor_command_line_starts_the_daemon_and_runs_commands() {
    require_root();
    let topo = Topology::new().unwrap();
    let fastforward = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        fastforward.path(),
        "config fastforward tftp\n\toption proto udp\n\toption port 69\n",
    )
    .unwrap();
    let config = config_file("", "");
    let (ff, cfg) = (
        fastforward.path().to_string_lossy().into_owned(),
        config.path().to_string_lossy().into_owned(),
    );
    let args = ["-f", &ff, "-n", "4096", "--backend", "sim", "--ports", "r0,r1", "--config", &cfg];
    let daemon = Daemon::start(binary(), &topo.router, &args).unwrap();
    let rules = daemon.ctl("show rules").unwrap();
    assert!(
        rules.starts_with("tftp:\n") && rules.contains("\tproto: udp (17)  mask ff\n"),
        "{rules}"
    );
    assert!(daemon.counters().unwrap().get("table_capacity").is_some_and(|c| c == "4096"));

    let _server = service_server(&topo, false).unwrap();
    let _held = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    wait_for(WAIT, POLL, || (daemon.counter("offloaded") == 1).then_some(()))
        .unwrap_or_else(|| panic!("offloaded: {}", daemon.log()));
    let run = |args: &[&str]| {
        let out = topo.router.exec(CMMD, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(
            out.ends_with("1 connections printed\n0 connections with > 1 ids\n"),
            "{args:?}: {out}"
        );
        out
    };
    let words = run(&["ctl", "show", "connections"]);
    assert_eq!(run(&["ctl", "show connections"]), words);
    assert_eq!(run(&["-c", "show", "connections"]), words);
    let count = topo.router.exec(CMMD, &["-c", "sh conn | include ESTABLISHED | count"]).unwrap();
    assert_eq!(count, "1\n");
    let refused = Command::new("ip")
        .args(["netns", "exec", topo.router.name(), CMMD, "-c", "show", "macvlan"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        "cmmd ctl: % \"show macvlan\" is not supported by cmmd\n"
    );
    // Bad vendor flags: one line, exit code 2.
    for (args, error) in [
        (&["-n", "many"][..], "cmmd: -n \"many\": expected a positive number of connections\n"),
        (&["-c"][..], "cmmd: option -c needs a command, e.g. `cmmd -c show connections`\n"),
        (&["-q"][..], "cmmd: unknown option \"-q\" (see cmmd --help)\n"),
    ] {
        let out = Command::new(CMMD).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), error, "{args:?}");
    }
    let version = Command::new(CMMD).arg("-v").output().unwrap();
    assert_eq!(version.stdout, Command::new(CMMD).arg("--version").output().unwrap().stdout);
}

/// The reply to `command` in a telnet transcript: what follows its echo up to the blank line
/// before the next prompt.
fn reply_in<'a>(transcript: &'a str, command: &str) -> &'a str {
    let echo = format!("cmm> {command}\r\n");
    let (_, after) =
        transcript.split_once(&echo).unwrap_or_else(|| panic!("{echo:?} in {transcript:?}"));
    after.split_once("\r\n\r\ncmm> ").map_or(after, |(reply, _)| reply)
}

/// Lines as the telnet client shows them.
fn crlf(lines: &[String]) -> String {
    lines.join("\r\n")
}

/// Fast-path ports of the router in the order of their interface index (the vendor's order).
fn ports_by_index(topo: &Topology) -> String {
    let links = topo.router.ip(&["-o", "link", "show"]).unwrap();
    let mut ports: Vec<(u32, &str)> = Vec::new();
    for line in links.lines() {
        let Some((index, rest)) = line.split_once(": ") else { continue };
        let name = rest.split([':', '@']).next().unwrap_or_default();
        if let (Ok(index), true) = (index.parse(), ["r0", "r1"].contains(&name)) {
            ports.push((index, name));
        }
    }
    ports.sort_unstable();
    ports.iter().map(|(_, name)| *name).collect::<Vec<_>>().join("|")
}

/// Every vendor command cmmd implements, through the real `telnet` client, byte for byte what
/// the vendor prints for the same data: `show connections` (cdx's remaining time, `use=`,
/// `Flags`, `n_id`, `local-conn`, a connection to the router itself, both trailers),
/// `show route`, `show neighbor`, `show fpp_route`, `show rules`, the `query` walks,
/// `show stat`, `set ff`, `show debug_level`. The values only the kernel and the hardware know
/// (timeouts, route ids, MACs, NUD states) are read from them.
#[test]
fn vendor_commands_print_the_vendor_s_lines_through_telnet() {
    require_root();
    let topo = Topology::new().unwrap();
    let flows = router_with_two_flows(&topo, &[]);
    let listener =
        topo.router.run_in(|| std::net::TcpListener::bind("10.1.0.1:7000")).unwrap().unwrap();
    let local = hold_tcp(&topo, "10.1.0.1:7000".parse().unwrap());
    let _accepted = listener.accept().unwrap();
    let local_port = local.local_addr().unwrap().port();
    wait_for(WAIT, POLL, || {
        flows.daemon.ctl("show connections").ok().filter(|t| t.contains(" dport=7000 "))
    })
    .unwrap_or_else(|| panic!("the local connection is listed: {}", flows.daemon.log()));
    let commands = [
        "show connections",
        "show route",
        "show neighbor",
        "show fpp_route",
        "show rules",
        "query connections",
        "query v6connections",
        "query route",
        "show stat",
        "show stat connection query",
        "set ff disable",
        "set ff enable",
        "show debug_level",
    ];
    let script: String =
        commands.iter().map(|c| format!("send \"{c}\\r\"\nwant \"cmm> \"\n")).collect();
    let transcript =
        run_expect(&topo.router, &format!("{TELNET_LOGIN}{script}send \"quit\\r\"\nexpect eof\n"))
            .unwrap();
    let sim = flows.daemon.sim().unwrap();
    let (p4, p6) = (flows.v4_port, flows.v6_port);
    let (client_mac, server_mac) =
        (crate::cli::mac(&topo.client, "c0"), crate::cli::mac(&topo.server, "s0"));

    // show connections: the offloaded ones with cdx's remaining time, the router's own with 0.
    let table: Vec<String> =
        reply_in(&transcript, "show connections").split("\r\n").map(str::to_owned).collect();
    assert_eq!(table.len(), 5, "{table:#?}");
    let row = |needle: &str| table.iter().find(|r| r.contains(needle)).expect(needle).clone();
    let (v4, v6) = (row(&format!("sport={p4} ")), row(&format!("sport={p6} ")));
    let expected = [
        flows.expected_line(&v4, false),
        flows.expected_line(&v6, true),
        format!(
            "ipv4     2 tcp      6 0 ESTABLISHED src=10.1.0.2 dst=10.1.0.1 sport={local_port} \
             dport=7000 src=10.1.0.1 dst=10.1.0.2 sport=7000 dport={local_port} [ASSURED] mark=0 \
             use=1, Flags: 200, n_id: 1, local-conn: yes"
        ),
        "3 connections printed".to_owned(),
        "0 connections with > 1 ids".to_owned(),
    ];
    let mut rows = table.clone();
    rows[..3].sort();
    let mut sorted = expected.to_vec();
    sorted[..3].sort();
    assert_eq!(rows, sorted);

    // The vendor's cache identity: each direction as the kernel routes it (source, input
    // interface). The host's own route towards the client is in `detail` only.
    let route = |iif: &str, src: &str, dst: &str, oif: &str, label: &str| {
        format!(
            "IIf: {iif}, Mark: 00000000, Src: {src}, Dst: {dst} --> Gateway: {dst}, {label}: {oif}, \
             PhysOif: {oif}, Count: 1"
        )
    };
    assert_eq!(
        reply_in(&transcript, "show route"),
        crlf(&[
            "IPv4 Route:".to_owned(),
            route("r1", "10.2.0.2", "10.1.0.2", "r0", "OIf"),
            route("r0", "10.1.0.2", "10.2.0.2", "r1", "OIf"),
            "2 IPv4 Routes printed".to_owned(),
            "IPv6 Route:".to_owned(),
            route("r1", "fd02::2", "fd01::2", "r0", "Oif"),
            route("r0", "fd01::2", "fd02::2", "r1", "Oif"),
            "2 IPv6 Routes printed".to_owned(),
        ])
    );

    // show neighbor: every neighbour of the router's kernel; the NUD state is the kernel's.
    let neighbours: Vec<&str> = reply_in(&transcript, "show neighbor").split("\r\n").collect();
    let v6_title = neighbours.iter().position(|l| *l == "IPv6 Neighbor:").expect("IPv6 part");
    assert_eq!(neighbours[0], "IPv4 ARP:");
    assert_eq!(neighbours[v6_title - 1], format!("Total ARP Entries: {}", v6_title - 2));
    assert_eq!(
        neighbours[neighbours.len() - 1],
        format!("Total Neighbor Entries: {}", neighbours.len() - v6_title - 2)
    );
    for (addr, mac, device, port) in [
        ("10.1.0.2", &client_mac, "r0", "Port:-1"),
        ("10.2.0.2", &server_mac, "r1", "Port:-1"),
        ("fd01::2", &client_mac, "r0", "Port: -1"),
        ("fd02::2", &server_mac, "r1", "Port: -1"),
    ] {
        let prefix = format!("IP addr: {addr} --> MAC addr: {mac} If: {device}, {port}, state: ");
        let line = neighbours.iter().find(|l| l.starts_with(&prefix)).expect(&prefix);
        let (state, count) = line[prefix.len()..].split_once(", Count: ").unwrap();
        let state = u16::from_str_radix(state, 16).unwrap();
        assert!([0x02, 0x04, 0x08, 0x10, 0x80].contains(&state), "a valid NUD state: {line}");
        assert_eq!(count, "1", "one route sends to it: {line}");
    }

    let (orig, reply) = sim.by_sport(p4).unwrap().routes;
    assert_eq!(
        reply_in(&transcript, "show fpp_route"),
        crlf(&[
            "FPP Route:".to_owned(),
            format!("OIf: r1, Mtu: 1500, Mac: {server_mac}, Id: {orig}, Count: 2, Flags: 1"),
            format!("OIf: r0, Mtu: 1500, Mac: {client_mac}, Id: {reply}, Count: 2, Flags: 1"),
            "2 FPP Routes printed".to_owned(),
        ])
    );

    let mut rules = Vec::new();
    for (name, proto, port) in
        [("pptp", "tcp (6)", 1723), ("sip", "udp (17)", 5060), ("ftp", "tcp (6)", 21)]
    {
        for at in ["repl_dst", "repl_src", "orig_dst", "orig_src"] {
            rules.push(format!("{name}:"));
            rules.push(format!("\t{at}_port: {port} mask ffff"));
            rules.push(format!("\tproto: {proto}  mask ff"));
        }
    }
    assert_eq!(reply_in(&transcript, "show rules"), crlf(&rules));

    for (command, title, client, server, masquerade, sport) in [
        ("query connections", "IPv4 Connections:", "10.1.0.2", "10.2.0.2", "10.2.0.100", p4),
        ("query v6connections", "IPv6 Connections:", "fd01::2", "fd02::2", "fd02::100", p6),
    ] {
        assert_eq!(
            reply_in(&transcript, command),
            crlf(&[
                title.to_owned(),
                "0000: protocol=6, fwmark=0x0".to_owned(),
                format!("  Init:  Saddr={client}, Daddr={server}, Sport={sport}, Dport=80"),
                format!("  Reply: Saddr={server}, Daddr={masquerade}, Sport=80, Dport={sport}"),
                "Total Connection Entries: 1".to_owned(),
            ]),
            "{command}"
        );
    }
    let mut objects = sim.routes.clone();
    objects.sort_by_key(|r| r.id);
    let mut walked = vec!["IP ROUTE:".to_owned()];
    for (i, r) in objects.iter().enumerate() {
        walked.push(format!(
            "{i:04}: Id: {:x}, Output Iface: {}, Input Iface: {}, DST Mac: {}, Mtu: {} Daddr: NULL",
            r.id, r.output, r.input, r.mac, r.mtu
        ));
    }
    walked.push("Total FPP Route Entries: 2".to_owned());
    assert_eq!(reply_in(&transcript, "query route"), crlf(&walked));

    let ports = ports_by_index(&topo);
    assert_eq!(
        reply_in(&transcript, "show stat"),
        crlf(&[
            format!("Usage:        show stat interface {{{ports}}} query|query_reset"),
            "       show stat vlan query|query_reset".to_owned(),
            "       show stat connection query".to_owned(),
            "       show stat pppoe query|query_reset".to_owned(),
            "       show stat bridge query|query_reset".to_owned(),
            "       show stat tunnel [name {tnl-name}] query|query_reset".to_owned(),
            "       show stat ipsec query|query_reset".to_owned(),
        ])
    );
    assert_eq!(
        reply_in(&transcript, "show stat connection query"),
        "Maximum Active Connections: 131072 \r\nNumber of Active Connections: 2 "
    );
    assert_eq!(reply_in(&transcript, "set ff disable"), "Fast-forward is disabled");
    assert_eq!(reply_in(&transcript, "set ff enable"), "Fast-forward is enabled");
    assert_eq!(
        reply_in(&transcript, "show debug_level"),
        "command:\tnot printed\r\nerror:  \tprinted\r\nwarning:\tnot printed\r\ninfo:   \tnot printed"
    );
    drop(local);
}
