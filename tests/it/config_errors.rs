//! Bad configuration against the real binary (issue 6): every mistake ends in exit code 2 and
//! exactly one line on stderr naming the variable, the flag, or the file, line and key, both
//! for `cmmd check-config` and for the daemon itself; `check-config` prints every key with its
//! source; SIGHUP applies what it can, reports what needs a restart, and keeps the running
//! configuration when the new file is broken.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use cmmd_tests::daemon::Daemon;
use cmmd_tests::scenario::service_server;
use cmmd_tests::topology::{self, Topology};
use cmmd_tests::traffic::wait_for;
use cmmd_tests::{Netns, require_root};

use crate::cli::{binary, config_text, hold_tcp};
use crate::privilege::exits_within;

const CMMD: &str = env!("CARGO_BIN_EXE_cmmd-test");
const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// `cmmd ARGS` inside `netns` with exactly the environment `env` (plus `PATH`); returns the
/// exit code, stdout and stderr. A daemon that starts is killed and fails the test.
fn cmmd(netns: &Netns, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns.name(), CMMD]).args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(env.iter().copied());
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec runs");
    let output = exits_within(child, WAIT);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Both `check-config` and the daemon (`run`) refuse with exit code 2 and exactly `line`.
fn refused(netns: &Netns, args: &[&str], env: &[(&str, &str)], line: &str) {
    for subcommand in ["check-config", "run"] {
        let mut full = vec![subcommand];
        full.extend_from_slice(args);
        let (code, stdout, stderr) = cmmd(netns, &full, env);
        assert_eq!(code, Some(2), "{full:?} {env:?}: {stderr}");
        assert_eq!(stderr, format!("cmmd: {line}\n"), "{full:?} {env:?}: exactly one line");
        assert_eq!(stdout, "", "{full:?} {env:?}: nothing else printed");
    }
}

#[test]
fn bad_environment_values_exit_2_with_one_line_naming_the_variable() {
    require_root();
    let netns = Netns::new("cce").unwrap();
    let sim = ("CMM_BACKEND", "sim");
    for value in ["abc", "0", "-1", "99999999999"] {
        refused(
            &netns,
            &[],
            &[sim, ("CMM_MAX_CONNECTIONS", value)],
            &format!(
                "CMM_MAX_CONNECTIONS=\"{value}\": expected a positive integer in 1..=16777216"
            ),
        );
    }
    for (variable, value, expected) in [
        ("CMM_BACKEND", "fpga", "expected \"cdx\" or \"sim\""),
        (
            "CMM_LOG",
            "info,[[[",
            "expected a log filter such as \"info\" or \"info,cmmd::engine=debug\"",
        ),
        ("CMM_LOG_FORMAT", "xml", "expected \"text\" or \"json\""),
        (
            "CMM_CLI_LISTEN",
            "127.0.0.1",
            "expected \"<IPv4>:<port>\", \"[<IPv6>]:<port>\" or \"off\"",
        ),
        (
            "CMM_PORTS",
            "eth0,,eth1",
            "element \"\": expected an interface name of 1..=15 bytes without '/', ':' or whitespace",
        ),
        (
            "CMM_FASTFORWARD_FILE",
            "/nonexistent/fastforward",
            "cannot read the file: No such file or directory (os error 2)",
        ),
        (
            "CMM_CONNTRACK_DIALECT",
            "ask-6.18",
            "unknown conntrack dialect \"ask-6.18\": expected auto, stock, ask-5.4, ask-6.12 or fp_orig=N[,fp_reply=N,qosconnmark=N,pad=N]",
        ),
    ] {
        let env = [sim, (variable, value)];
        refused(&netns, &[], &env, &format!("{variable}=\"{value}\": {expected}"));
    }
}

#[test]
fn bad_files_and_flags_exit_2_with_one_line_naming_file_line_and_key() {
    require_root();
    let netns = Netns::new("ccf").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    for (text, at_line, expected) in [
        ("max_connections = 10\nbogus_key = 1\n", 2, "unknown key \"bogus_key\" in the top level"),
        ("[cli]\nmax_session = 4\n", 2, "unknown key \"max_session\" in [cli]"),
        (
            "[cli]\nmax_sessions = \"x\"\n",
            2,
            "key \"cli.max_sessions\" value \"x\": expected a positive integer in 1..=1024",
        ),
        (
            "backend = \"sim\"\n[timeouts]\ntcp = 0\n",
            3,
            "key \"timeouts.tcp\" value 0: expected a positive integer in 1..=2147483: cdx keeps seconds × HZ (1000) in a signed 32-bit timer, which longer timeouts overflow",
        ),
        ("ports = \"eth0\"\n", 1, "key \"ports\" value \"eth0\": expected an array"),
        (
            "[netlink]\nconntrack_dialect = \"fp_orig=24\"\n",
            2,
            "key \"netlink.conntrack_dialect\" value \"fp_orig=24\": fp_orig=24: ASK attributes are numbered from 25 to 16383 (upstream uses 1 to 24; the pad may also be 3)",
        ),
        (
            "[keepalive]\npermanent_bit = 31\n",
            2,
            "key \"keepalive.permanent_bit\" value 31: expected \"auto\" or an integer in 0..=30",
        ),
        (
            "[offload]\nexclude = [ { proto = \"tcp\", port = 99999 } ]\n",
            2,
            "key \"offload.exclude.port\" value 99999: expected a positive integer in 1..=65535",
        ),
        ("max_connections = \n", 1, "string values must be quoted, expected literal string"),
        (
            "[cli]\nenable_password_hash = \"$2b$10$abcdefghijklmnopqrstuv\"\n",
            2,
            "key \"cli.enable_password_hash\" value \"<redacted>\": expected an argon2id PHC string \"$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>\" (make one with `cmmd hash-password`)",
        ),
    ] {
        let path = write("cmmd.toml", text);
        refused(
            &netns,
            &["--backend", "sim", "--config", &path],
            &[],
            &format!("{path}:{at_line}: {expected}"),
        );
    }

    // Files the configuration names: the fastforward file and the password file.
    let fastforward =
        write("fastforward", "config fastforward ftp\n\toption proto tcp\n\toption port 99999\n");
    let config = write("ff.toml", &format!("[offload]\nfastforward_file = \"{fastforward}\"\n"));
    let expected = format!("{fastforward}:3: option \"port\" value \"99999\": expected 1..=65535");
    refused(&netns, &["--backend", "sim", "--config", &config], &[], &expected);
    refused(&netns, &["--backend", "sim"], &[("CMM_FASTFORWARD_FILE", &fastforward)], &expected);
    let unknown =
        write("fastforward2", "config fastforward sip\n\toption proto udp\n\toption bogus 1\n");
    refused(
        &netns,
        &["--backend", "sim"],
        &[("CMM_FASTFORWARD_FILE", &unknown)],
        &format!("{unknown}:3: unknown option \"bogus\" in section \"fastforward\""),
    );
    let passwords = write("users", "# operators\nadmin:not-a-hash\n");
    let config = write("pw.toml", &format!("[cli]\npassword_file = \"{passwords}\"\n"));
    refused(
        &netns,
        &["--backend", "sim", "--config", &config],
        &[],
        &format!(
            "{passwords}:2: password of user \"admin\": expected an argon2id PHC string \"$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>\" (make one with `cmmd hash-password`)"
        ),
    );

    // Flags.
    for (args, expected) in [
        (
            &["--config", "/nonexistent/cmmd.toml"][..],
            "--config \"/nonexistent/cmmd.toml\": no such file",
        ),
        (&["--bogus"], "unknown option \"--bogus\" (see cmmd --help)"),
        (&["--backend"], "option --backend needs a value"),
        (
            &["--max-connections", "0"],
            "--max-connections \"0\": expected a positive integer in 1..=16777216",
        ),
        (&["--log-format", "xml"], "--log-format \"xml\": expected \"text\" or \"json\""),
        (
            &["--cli-listen=localhost"],
            "--cli-listen \"localhost\": expected \"<IPv4>:<port>\", \"[<IPv6>]:<port>\" or \"off\"",
        ),
    ] {
        refused(&netns, args, &[("CMM_BACKEND", "sim")], expected);
    }
    let (code, stdout, stderr) = cmmd(&netns, &["frobnicate"], &[]);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert_eq!(stderr, "cmmd: unknown command \"frobnicate\" (see cmmd --help)\n");
}

#[test]
fn check_config_prints_every_key_with_its_source() {
    require_root();
    let netns = Netns::new("ccc").unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_string_lossy().into_owned();
    std::fs::write(
        &path,
        "max_connections = 1000\n\n[cli]\nmax_sessions = 4\n[log]\nlevel = \"debug\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = cmmd(
        &netns,
        &["check-config", "--config", &path, "--backend", "sim"],
        &[("CMM_PORTS", "eth0,eth1"), ("CMM_LOG", "warn")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr,
        "cmmd: warning: no CLI users configured (cli.users, cli.password_file): the vendor \
         account admin/admin is active\n"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "# cmmd effective configuration: every key, its value and its source",
            format!("# configuration file: {path}").as_str(),
            format!("max_connections = 1000  # {path}:1").as_str(),
            "backend = \"sim\"  # flag --backend",
            "ports = [\"eth0\", \"eth1\"]  # env CMM_PORTS",
        ]
    );
    for expected in [
        format!("max_sessions = 4  # {path}:4"),
        "level = \"warn\"  # env CMM_LOG".to_string(),
        "listen = \"127.0.0.1:2103\"  # default".to_string(),
        "tcp = 432000  # default".to_string(),
    ] {
        assert!(lines.contains(&expected.as_str()), "{expected:?} in\n{stdout}");
    }
    // Every key line names a source; the output is itself a valid configuration file.
    for line in lines.iter().filter(|l| l.contains(" = ") && !l.starts_with("  ")) {
        assert!(line.contains("  # "), "no source: {line}");
    }
    let round_trip = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(round_trip.path(), &stdout).unwrap();
    let again = round_trip.path().to_string_lossy().into_owned();
    let (code, _, stderr) = cmmd(&netns, &["check-config", "--config", &again], &[]);
    assert_eq!(code, Some(0), "check-config accepts its own output: {stderr}");
}

fn in_hw(daemon: &Daemon, sport: u16) -> bool {
    daemon.sim().is_ok_and(|t| t.by_sport(sport).is_some_and(|c| c.in_hw == (true, true)))
}

#[test]
fn sighup_applies_rules_and_log_level_and_reports_what_needs_a_restart() {
    require_root();
    let topo = Topology::new().unwrap();
    let _server = service_server(&topo, false).unwrap();
    let accounts = config_text("", "");
    let version = |max: u32, level: &str, extra_rule: &str| {
        format!(
            "max_connections = {max}\n[log]\nlevel = \"{level}\"\n[offload]\nexclude = [\n  \
             {{ name = \"ftp\", proto = \"tcp\", port = 21 }},{extra_rule}\n]\n{accounts}"
        )
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_string_lossy().into_owned();
    std::fs::write(&path, version(131_072, "info", "")).unwrap();
    let daemon = Daemon::start(
        binary(),
        &topo.router,
        &["--backend", "sim", "--ports", "r0,r1", "--config", &path],
    )
    .unwrap();
    let before = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let before_port = before.local_addr().unwrap().port();
    wait_for(WAIT, POLL, || in_hw(&daemon, before_port).then_some(()))
        .unwrap_or_else(|| panic!("offloaded before the reload: {}", daemon.log()));
    // A port is the vendor's four lists, one per tuple position, the last first.
    let lists = |name: &str, port: u16| -> String {
        ["repl_dst", "repl_src", "orig_dst", "orig_src"]
            .iter()
            .map(|at| {
                format!("{name}:\n\t{at}_port: {port} mask ffff\n\tproto: tcp (6)  mask ff\n")
            })
            .collect()
    };
    assert_eq!(daemon.ctl("show rules").unwrap(), lists("ftp", 21));

    // New deny rule for port 80, debug logging, a smaller table (needs a restart).
    let web_rule = "\n  { name = \"web\", proto = \"tcp\", port = 80 },";
    std::fs::write(&path, version(1000, "trace", web_rule)).unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let log = wait_for(WAIT, POLL, || {
        let log = daemon.log();
        log.contains("SIGHUP: max_connections").then_some(log)
    })
    .unwrap_or_else(|| panic!("the reload is reported: {}", daemon.log()));
    for expected in [
        "SIGHUP: offload.exclude: [{ name = \"ftp\", proto = \"tcp\", port = 21 }] -> [{ name = \
         \"ftp\", proto = \"tcp\", port = 21 }, { name = \"web\", proto = \"tcp\", port = 80 }] \
         (applied)",
        "SIGHUP: log.level: \"info\" -> \"trace\" (applied)",
        "SIGHUP: max_connections: 131072 -> 1000 (NOT applied: needs a restart)",
    ] {
        assert!(log.contains(expected), "{expected:?} in\n{log}");
    }
    assert!(!log.contains("SIGHUP: cli.users"), "the accounts did not change");
    assert_eq!(
        daemon.ctl("show rules").unwrap(),
        lists("web", 80) + &lists("ftp", 21),
        "the new rule first (vendor order)"
    );
    // The rule takes effect: the offloaded connection is withdrawn, a new one stays out.
    wait_for(WAIT, POLL, || (!in_hw(&daemon, before_port)).then_some(()))
        .unwrap_or_else(|| panic!("withdrawn by the new rule: {:?}", daemon.sim()));
    let after = hold_tcp(&topo, Topology::server_addr(false, topology::SERVICE_PORT));
    let after_port = after.local_addr().unwrap().port();
    wait_for(WAIT, POLL, || (daemon.counter("excluded_by_rule") >= 2).then_some(()))
        .unwrap_or_else(|| panic!("both refused by the rule: {:?}", daemon.counters()));
    assert!(!in_hw(&daemon, after_port));
    assert_eq!(daemon.counter("table_capacity"), 131_072, "max_connections needs a restart");
    // show config tells what is in force: the running table size, the new log level, and the
    // change that waits for a restart.
    let shown = daemon.ctl("show config").unwrap();
    for line in [
        "max_connections = 131072  # ",
        "level = \"trace\"  # ",
        "#   max_connections: 131072 -> 1000",
    ] {
        assert!(shown.lines().any(|l| l.starts_with(line)), "{line:?} in\n{shown}");
    }
    // Trace lines (the hardware commands of the withdrawal) appear after the reload, none before.
    let log = daemon.log();
    let (until_reload, since_reload) = log.split_at(log.find("SIGHUP:").unwrap());
    assert!(!until_reload.contains(" TRACE "), "info level before");
    assert!(since_reload.contains(" TRACE cmmd::offload: hardware command"), "{since_reload}");
    // The vendor's `debug_level` is the CLI's (`set debug`), apart from the configured level.
    assert!(daemon.ctl("show debug_level").unwrap().starts_with("command:\tnot printed\n"));

    // A broken file: reported with its line, and the running configuration stays.
    std::fs::write(&path, "max_connections = 1000\nbogus = 1\n").unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let expected = format!(
        "SIGHUP: configuration not reloaded; the running one stays in force error={path}:2: \
         unknown key \"bogus\" in the top level"
    );
    wait_for(WAIT, POLL, || daemon.log().contains(&expected).then_some(()))
        .unwrap_or_else(|| panic!("{expected:?} in\n{}", daemon.log()));
    assert!(daemon.ctl("show rules").unwrap().starts_with("web:\n"));

    // The held connections still work (the kernel forwards them).
    for mut stream in [before, after] {
        stream.write_all(b"bye").unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"hello bye");
    }
}

/// The receive buffers (`rb`, the kernel's doubled `SO_RCVBUF`) of `pid`'s rtnetlink sockets,
/// as `ss` reports them.
fn rtnl_buffers(netns: &Netns, pid: u32) -> Vec<u64> {
    let ss = netns.exec("ss", &["-f", "netlink", "-m", "-p"]).unwrap();
    let owner = format!("/{pid} ");
    ss.lines()
        .filter(|line| line.contains("rtnl:") && line.contains(&owner))
        .filter_map(|line| line.split("rb").nth(1)?.split(',').next()?.parse().ok())
        .collect()
}

#[test]
fn the_rtnetlink_buffer_comes_from_the_configuration() {
    require_root();
    let netns = Netns::new("ccr").unwrap();
    let config = crate::cli::config_file("", "[netlink]\nrtnl_buffer = \"16MiB\"\n");
    let path = config.path().to_string_lossy().into_owned();
    let daemon = Daemon::start(binary(), &netns, &["--backend", "sim", "--config", &path]).unwrap();
    let pid = daemon.pid().expect("running");
    let buffers = rtnl_buffers(&netns, pid);
    assert!(buffers.contains(&(32 << 20)), "16 MiB asked, the kernel doubles it: {buffers:?}");
    drop(daemon);
    // Without the key: the default, 4 MiB.
    let config = crate::cli::config_file("", "");
    let path = config.path().to_string_lossy().into_owned();
    let daemon = Daemon::start(binary(), &netns, &["--backend", "sim", "--config", &path]).unwrap();
    let buffers = rtnl_buffers(&netns, daemon.pid().expect("running"));
    assert!(buffers.contains(&(8 << 20)) && !buffers.contains(&(32 << 20)), "{buffers:?}");
}
