//! `Config::load` end to end: files on disk, a fake environment, flags; precedence, provenance,
//! exact error lines, the example configuration, `check-config` rendering and reload differences.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{
    Applies, Backend, CdxAbi, CdxAbiSetting, Change, Config, ExcludeRule, KeepaliveMode,
    L4Protocol, LoadOptions, Loaded, LogFormat, Overrides, SimIpv6Activity, SimUnwritten, Source,
    UdpPolicy, defaults,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
const OTHER_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNo";

/// Writes `contents` to `name` inside `dir`.
fn write_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// Loads with the given environment and flags; the default file path points nowhere.
fn load_with(env: &[(&str, &str)], overrides: Overrides) -> Result<Loaded, String> {
    let env: HashMap<String, String> =
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let lookup = move |name: &str| env.get(name).cloned();
    let mut options = LoadOptions::new(&lookup, overrides);
    options.default_config_path = PathBuf::from("/nonexistent/cmmd.toml");
    Config::load(&options).map_err(|error| error.to_string())
}

fn load_file(path: &Path) -> Result<Loaded, String> {
    let overrides = Overrides { config: Some(path.display().to_string()), ..Overrides::default() };
    load_with(&[], overrides)
}

fn load_toml(text: &str) -> (tempfile::TempDir, Result<Loaded, String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_file(&dir, "cmmd.toml", text);
    let loaded = load_file(&path);
    (dir, loaded)
}

fn toml_error(text: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_file(&dir, "cmmd.toml", text);
    let error = load_file(&path).expect_err("must be rejected");
    let prefix = format!("{}:", path.display());
    assert!(error.starts_with(&prefix), "{error}");
    assert!(!error.contains('\n'), "one line: {error}");
    error.replacen(&prefix, "cmmd.toml:", 1)
}

#[test]
fn no_source_gives_the_defaults() {
    let loaded = load_with(&[], Overrides::default()).expect("defaults are valid");
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.config_file, None);
    assert!(loaded.provenance.values().all(|source| *source == Source::Default));
    assert_eq!(loaded.provenance.len(), 57, "55 scalar keys, offload.exclude and cli.users");
    let config = &loaded.config;
    assert_eq!(config.max_connections.get(), 131_072);
    assert_eq!(config.backend, Backend::Cdx);
    assert_eq!(config.offload.protocols, [L4Protocol::Tcp, L4Protocol::Udp]);
    assert_eq!(config.offload.exclude, defaults::exclude_rules());
    assert_eq!(config.cli.listen, Some("127.0.0.1:2103".parse().expect("addr")));
    assert_eq!(config.metrics.listen, Some("127.0.0.1:9103".parse().expect("addr")));
    assert_eq!(config.netlink.event_buffer, 33_554_432);
    assert_eq!(config.netlink.rtnl_buffer, 4_194_304);
    assert_eq!(config.netlink.sweep_interval, Some(Duration::from_secs(60)));
    assert_eq!(config.netlink.batch_interval, Some(Duration::from_millis(1)));
    assert_eq!(config.timeouts.tcp.get(), 432_000);
    assert_eq!(
        loaded.warnings,
        [
            "ports is empty: no interface is a fast-path port, nothing will be offloaded",
            "no CLI users configured (cli.users, cli.password_file): the vendor account admin/admin is active",
        ]
    );
}

#[test]
fn the_example_file_sets_every_key_to_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/cmmd.toml");
    let loaded = load_file(&path).expect("the example configuration loads");
    assert_eq!(loaded.config, Config::default());
    let not_from_file: Vec<&&str> = loaded
        .provenance
        .iter()
        .filter(|(_, source)| !matches!(source, Source::File { .. }))
        .map(|(key, _)| key)
        .collect();
    assert!(not_from_file.is_empty(), "keys missing from packaging/cmmd.toml: {not_from_file:?}");
}

#[test]
fn the_default_file_is_read_only_when_present() {
    let dir = tempfile::tempdir().expect("temp dir");
    let default_path = dir.path().join("cmmd.toml");
    let lookup = |_: &str| None;
    let mut options = LoadOptions::new(&lookup, Overrides::default());
    options.default_config_path = default_path.clone();
    assert_eq!(Config::load(&options).expect("absent is fine").config_file, None);
    std::fs::write(&default_path, "backend = \"sim\"\n").expect("write");
    let loaded = Config::load(&options).expect("present is read");
    assert_eq!(loaded.config.backend, Backend::Sim);
    assert_eq!(loaded.config_file.as_deref(), Some(default_path.as_path()));
    assert_eq!(loaded.source("backend"), &Source::File { path: default_path, line: 1 });
}

#[test]
fn a_named_file_must_exist() {
    let flag = Overrides { config: Some("/nonexistent/x.toml".into()), ..Overrides::default() };
    assert_eq!(
        load_with(&[], flag).expect_err("missing"),
        "--config \"/nonexistent/x.toml\": no such file"
    );
    assert_eq!(
        load_with(&[("CMM_CONFIG", "/nonexistent/y.toml")], Overrides::default())
            .expect_err("missing"),
        "CMM_CONFIG=\"/nonexistent/y.toml\": no such file"
    );
}

#[test]
fn precedence_is_defaults_file_env_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_file(
        &dir,
        "cmmd.toml",
        "max_connections = 1000\nbackend = \"sim\"\n\n[log]\nlevel = \"debug\"\nformat = \"json\"\n",
    );
    let env_file = write_file(&dir, "env.toml", "max_connections = 7\n");
    let env = [
        ("CMM_CONFIG", env_file.to_str().expect("utf-8")),
        ("CMM_BACKEND", "cdx"),
        ("CMM_LOG", "warn"),
    ];
    // --config wins over CMM_CONFIG; env wins over the file; flags win over env.
    let overrides = Overrides {
        config: Some(file.display().to_string()),
        log: Some("trace".into()),
        ..Overrides::default()
    };
    let loaded = load_with(&env, overrides).expect("valid");
    assert_eq!(loaded.config.max_connections.get(), 1000);
    assert_eq!(loaded.config.backend, Backend::Cdx);
    assert_eq!(loaded.config.log.level, "trace");
    assert_eq!(loaded.config.log.format, LogFormat::Json);
    assert_eq!(loaded.source("max_connections"), &Source::File { path: file.clone(), line: 1 });
    assert_eq!(loaded.source("backend"), &Source::Env("CMM_BACKEND"));
    assert_eq!(loaded.source("log.level"), &Source::Flag("--log"));
    assert_eq!(loaded.source("log.format"), &Source::File { path: file, line: 6 });
    assert_eq!(loaded.source("sim.capacity"), &Source::Default);
    // Without --config, CMM_CONFIG names the file.
    let loaded = load_with(&env, Overrides::default()).expect("valid");
    assert_eq!(loaded.config.max_connections.get(), 7);
}

#[test]
fn every_environment_variable_sets_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = write_file(&dir, "cli-users", &format!("ops:{HASH}\n"));
    let fastforward = write_file(
        &dir,
        "fastforward",
        "config fastforward dns\noption proto udp\noption orig_dst_port 53\n",
    );
    let env = [
        ("CMM_MAX_CONNECTIONS", "4096"),
        ("CMM_BACKEND", "sim"),
        ("CMM_PORTS", "eth0, eth1"),
        ("CMM_CLI_LISTEN", "[::1]:2300"),
        ("CMM_CLI_PASSWORD_FILE", users.to_str().expect("utf-8")),
        ("CMM_METRICS_LISTEN", "off"),
        ("CMM_LOG", "info,cmmd::engine=debug"),
        ("CMM_LOG_FORMAT", "json"),
        ("CMM_FASTFORWARD_FILE", fastforward.to_str().expect("utf-8")),
        ("CMM_CDX_ABI", "ask"),
        ("CMM_SIM_CAPACITY", "70000"),
        ("CMM_SIM_ABI", "ask"),
        ("CMM_SIM_UNWRITTEN", "zeros"),
        ("CMM_SIM_INTERFACES", "eth0"),
        ("CMM_SIM_IPV6_ACTIVITY", "refreshed"),
        ("CMM_SIM_HZ", "250"),
        ("CMM_SIM_HW_LATENCY", "2ms"),
    ];
    let loaded = load_with(&env, Overrides::default()).expect("valid");
    let config = &loaded.config;
    assert_eq!(config.max_connections.get(), 4096);
    assert_eq!(config.backend, Backend::Sim);
    let ports: Vec<&str> = config.ports.iter().map(|port| port.as_str()).collect();
    assert_eq!(ports, ["eth0", "eth1"]);
    assert_eq!(config.cli.listen, Some("[::1]:2300".parse().expect("addr")));
    assert_eq!(config.cli.password_file.as_deref(), Some(users.as_path()));
    let names: Vec<&str> = config.cli.all_users().map(|user| user.name.as_str()).collect();
    assert_eq!(names, ["ops"]);
    assert!(!config.cli.uses_default_admin());
    assert_eq!(config.metrics.listen, None);
    assert_eq!(config.log.level, "info,cmmd::engine=debug");
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.cdx.abi, CdxAbiSetting::Ask);
    let sim = &config.sim;
    assert_eq!(
        (sim.capacity.get(), sim.abi, sim.unwritten, sim.ipv6_activity, sim.hz.get()),
        (70_000, CdxAbi::Ask, SimUnwritten::Zeros, SimIpv6Activity::Refreshed, 250)
    );
    assert_eq!(sim.interfaces.iter().map(|i| i.as_str()).collect::<Vec<_>>(), ["eth0"]);
    assert_eq!(sim.hw_latency, std::time::Duration::from_millis(2));
    let rules: Vec<&ExcludeRule> = config.offload.deny_rules().collect();
    assert_eq!(rules.len(), 4, "three defaults then the fastforward rule");
    assert_eq!(
        rules.last().map(|rule| (rule.name.as_str(), rule.orig_dst_port)),
        Some(("dns", Some(53)))
    );
    for (var, _) in env {
        assert!(loaded.provenance.values().any(|source| *source == Source::Env(var)), "{var}");
    }
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn every_flag_sets_its_key() {
    let fastforward = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(fastforward.path(), "config fastforward tftp\n\toption proto udp\n")
        .expect("write the fastforward file");
    let overrides = Overrides {
        config: None,
        backend: Some("sim".into()),
        max_connections: Some("65536".into()),
        ports: Some("eth3".into()),
        cli_listen: Some("off".into()),
        metrics_listen: Some("0.0.0.0:9200".into()),
        log: Some("debug".into()),
        log_format: Some("json".into()),
        flush_on_exit: Some("true".into()),
        fastforward_file: Some(fastforward.path().to_string_lossy().into_owned()),
        cdx_abi: Some("lsdk".into()),
        sim_capacity: Some("8".into()),
        sim_abi: Some("ask".into()),
        sim_unwritten: Some("zeros".into()),
        sim_interfaces: Some("eth3,eth4".into()),
        sim_ipv6_activity: Some("aging-timer".into()),
        sim_hz: Some("100".into()),
        sim_hw_latency: Some("1ms".into()),
    };
    let loaded = load_with(&[("CMM_BACKEND", "cdx")], overrides).expect("valid");
    let config = &loaded.config;
    assert_eq!(
        (config.backend, config.max_connections.get(), config.cli.listen),
        (Backend::Sim, 65_536, None)
    );
    assert_eq!(config.ports.first().map(|port| port.as_str()), Some("eth3"));
    assert_eq!(config.metrics.listen, Some(SocketAddr::from(([0, 0, 0, 0], 9200))));
    assert_eq!((config.log.level.as_str(), config.log.format), ("debug", LogFormat::Json));
    assert!(config.shutdown.flush_on_exit);
    for (key, flag) in [
        ("backend", "--backend"),
        ("max_connections", "--max-connections"),
        ("ports", "--ports"),
        ("cli.listen", "--cli-listen"),
        ("metrics.listen", "--metrics-listen"),
        ("log.level", "--log"),
        ("log.format", "--log-format"),
        ("shutdown.flush_on_exit", "--flush-on-exit"),
        ("offload.fastforward_file", "--fastforward-file"),
        ("cdx.abi", "--cdx-abi"),
        ("sim.capacity", "--sim-capacity"),
        ("sim.abi", "--sim-abi"),
        ("sim.unwritten", "--sim-unwritten"),
        ("sim.interfaces", "--sim-interfaces"),
        ("sim.ipv6_activity", "--sim-ipv6-activity"),
        ("sim.hz", "--sim-hz"),
        ("sim.hw_latency", "--sim-hw-latency"),
    ] {
        assert_eq!(loaded.source(key), &Source::Flag(flag), "{key}");
    }
    assert_eq!(config.cdx.abi, CdxAbiSetting::Lsdk);
    assert_eq!((config.sim.abi, config.sim.hz.get()), (CdxAbi::Ask, 100));
    let fastforward = config.offload.fastforward.as_ref().expect("the file is read");
    assert!(fastforward.rules.iter().any(|rule| rule.name == "tftp"), "{:?}", fastforward.rules);
}

#[test]
fn bad_max_connections_is_one_line_naming_variable_value_and_rule() {
    for value in ["abc", "0", "-1", "99999999999", "", "1e6"] {
        assert_eq!(
            load_with(&[("CMM_MAX_CONNECTIONS", value)], Overrides::default()).expect_err(value),
            format!("CMM_MAX_CONNECTIONS={value:?}: expected a positive integer in 1..=16777216")
        );
    }
    assert_eq!(
        load_with(&[("CMM_MAX_CONNECTIONS", "16777216")], Overrides::default())
            .map(|l| l.config.max_connections.get()),
        Ok(16_777_216)
    );
}

#[test]
fn every_environment_and_flag_error_is_one_precise_line() {
    let cases: [(&str, &str, &str); 8] = [
        ("CMM_BACKEND", "x", "CMM_BACKEND=\"x\": expected \"cdx\" or \"sim\""),
        ("CMM_PORTS", "eth0,eth0", "CMM_PORTS=\"eth0,eth0\": element \"eth0\" is listed twice"),
        (
            "CMM_PORTS",
            "this-name-is-too-long",
            "CMM_PORTS=\"this-name-is-too-long\": element \"this-name-is-too-long\": expected an interface name \
             of 1..=15 bytes without '/', ':' or whitespace",
        ),
        (
            "CMM_CLI_LISTEN",
            "2103",
            "CMM_CLI_LISTEN=\"2103\": expected \"<IPv4>:<port>\", \"[<IPv6>]:<port>\" or \"off\"",
        ),
        (
            "CMM_METRICS_LISTEN",
            "localhost:1",
            "CMM_METRICS_LISTEN=\"localhost:1\": expected \"<IPv4>:<port>\", \"[<IPv6>]:<port>\" or \"off\"",
        ),
        (
            "CMM_LOG",
            "cmmd=loud",
            "CMM_LOG=\"cmmd=loud\": expected a log filter such as \"info\" or \"info,cmmd::engine=debug\"",
        ),
        ("CMM_LOG_FORMAT", "xml", "CMM_LOG_FORMAT=\"xml\": expected \"text\" or \"json\""),
        (
            "CMM_LOG",
            "a\nb",
            "CMM_LOG=\"a\\nb\": expected a log filter such as \"info\" or \"info,cmmd::engine=debug\"",
        ),
    ];
    for (var, value, expected) in cases {
        assert_eq!(load_with(&[(var, value)], Overrides::default()).expect_err(value), expected);
    }
    let flag = Overrides { backend: Some("x".into()), ..Overrides::default() };
    assert_eq!(
        load_with(&[], flag).expect_err("bad flag"),
        "--backend \"x\": expected \"cdx\" or \"sim\""
    );
    let flag = Overrides { flush_on_exit: Some("maybe".into()), ..Overrides::default() };
    assert_eq!(
        load_with(&[], flag).expect_err("bad flag"),
        "--flush-on-exit \"maybe\": expected true or false"
    );
    assert_eq!(
        load_with(&[("CMM_CLI_PASSWORD_FILE", "/nonexistent/users")], Overrides::default())
            .expect_err("missing"),
        "CMM_CLI_PASSWORD_FILE=\"/nonexistent/users\": cannot read the file: No such file or directory (os error 2)"
    );
}

#[test]
fn unknown_keys_name_file_line_key_and_table() {
    let text = "max_connections = 10\n\n[offload]\nipv4 = true\n\n[timeouts]\ntcp = 10\n\n[cli]\nlisten = \"off\"\n\nfoo = 1\n";
    assert_eq!(toml_error(text), "cmmd.toml:12: unknown key \"foo\" in [cli]");
    assert_eq!(
        toml_error("colour = \"red\"\n"),
        "cmmd.toml:1: unknown key \"colour\" in the top level"
    );
    assert_eq!(
        toml_error("[metrics]\nlisten = \"off\"\n[bogus]\nx = 1\n"),
        "cmmd.toml:3: unknown key \"bogus\" in the top level"
    );
    assert_eq!(
        toml_error(
            "[[offload.exclude]]\nproto = \"tcp\"\n\n[[offload.exclude]]\nport = 22\nprot = \"udp\"\n"
        ),
        "cmmd.toml:6: unknown key \"prot\" in [[offload.exclude]]"
    );
    assert_eq!(
        toml_error("cli = { lisen = \"off\" }\n"),
        "cmmd.toml:1: unknown key \"lisen\" in [cli]"
    );
    assert_eq!(
        toml_error("[[cli.users]]\nname = \"a\"\npassword_hash = \"x\"\nrole = \"admin\"\n"),
        "cmmd.toml:4: unknown key \"role\" in [[cli.users]]"
    );
}

#[test]
fn bad_values_name_file_line_key_value_and_rule() {
    let cases = [
        (
            "\n\nmax_connections = 0\n",
            "cmmd.toml:3: key \"max_connections\" value 0: expected a positive integer in 1..=16777216",
        ),
        (
            "max_connections = \"many\"\n",
            "cmmd.toml:1: key \"max_connections\" value \"many\": expected a positive integer in 1..=16777216",
        ),
        (
            "backend = \"x\"\n",
            "cmmd.toml:1: key \"backend\" value \"x\": expected \"cdx\" or \"sim\"",
        ),
        (
            "[offload]\nprotocols = [\"tcp\", \"icmp\"]\n",
            "cmmd.toml:2: key \"offload.protocols\" value [\"tcp\", \"icmp\"]: element \"icmp\": expected \"tcp\" or \"udp\"",
        ),
        (
            "[offload]\nzones = [1, 1]\n",
            "cmmd.toml:2: key \"offload.zones\" value [1, 1]: element 1 is listed twice",
        ),
        (
            "[offload]\nudp = \"always\"\n",
            "cmmd.toml:2: key \"offload.udp\" value \"always\": expected \"assured\" or \"confirmed\"",
        ),
        (
            "[offload]\nipv6 = \"yes\"\n",
            "cmmd.toml:2: key \"offload.ipv6\" value \"yes\": expected true or false",
        ),
        (
            "[timeouts]\nudp = 4294967295\n",
            "cmmd.toml:2: key \"timeouts.udp\" value 4294967295: expected a positive integer in 1..=2147483: cdx keeps seconds × HZ (1000) in a signed 32-bit timer, which longer timeouts overflow",
        ),
        (
            "[timeouts]\ntcp = 2147484\n",
            "cmmd.toml:2: key \"timeouts.tcp\" value 2147484: expected a positive integer in 1..=2147483: cdx keeps seconds × HZ (1000) in a signed 32-bit timer, which longer timeouts overflow",
        ),
        (
            "[cdx]\nabi = \"v3\"\n",
            "cmmd.toml:2: key \"cdx.abi\" value \"v3\": expected \"auto\", \"lsdk\" or \"ask\"",
        ),
        (
            "[sim]\nunwritten = \"ones\"\n",
            "cmmd.toml:2: key \"sim.unwritten\" value \"ones\": expected \"garbage\" or \"zeros\"",
        ),
        (
            "[keepalive]\ninterval = \"10\"\nmargin = \"2d\"\n",
            "cmmd.toml:3: key \"keepalive.margin\" value \"2d\": expected \"0s\" (off) or a duration such as \"30s\" or \"5m\" in 1s..=24h",
        ),
        (
            "[netlink]\nbatch_interval = \"500us\"\n",
            "cmmd.toml:2: key \"netlink.batch_interval\" value \"500us\": expected \"0s\" (off) or a duration such as \"30s\" or \"5m\" in 1ms..=100ms",
        ),
        (
            "[keepalive]\npermanent_bit = 32\n",
            "cmmd.toml:2: key \"keepalive.permanent_bit\" value 32: expected \"auto\" or an integer in 0..=30",
        ),
        (
            "[netlink]\nconntrack_dialect = \"\"\n",
            "cmmd.toml:2: key \"netlink.conntrack_dialect\" value \"\": expected a non-empty word of printable characters",
        ),
        (
            "[netlink]\nevent_buffer = \"2GiB\"\n",
            "cmmd.toml:2: key \"netlink.event_buffer\" value \"2GiB\": expected a size in bytes or \"KiB\"/\"MiB\"/\"GiB\" in 4KiB..=1GiB",
        ),
        (
            "[netlink]\nrtnl_buffer = 100\n",
            "cmmd.toml:2: key \"netlink.rtnl_buffer\" value 100: expected a size in bytes or \"KiB\"/\"MiB\"/\"GiB\" in 4KiB..=1GiB",
        ),
        (
            "[cli]\nmax_sessions = 0\n",
            "cmmd.toml:2: key \"cli.max_sessions\" value 0: expected a positive integer in 1..=1024",
        ),
        (
            "[cli]\nenable_password_hash = \"secret\"\n",
            "cmmd.toml:2: key \"cli.enable_password_hash\" value \"<redacted>\": expected an argon2id PHC string \"$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>\" (make one with `cmmd hash-password`)",
        ),
        (
            "[sim]\ncapacity = 1.5\n",
            "cmmd.toml:2: key \"sim.capacity\" value 1.5: expected a positive integer in 1..=16777216",
        ),
        (
            "[offload]\nexclude = [{ port = 70000 }]\n",
            "cmmd.toml:2: key \"offload.exclude.port\" value 70000: expected a positive integer in 1..=65535",
        ),
        (
            "[[offload.exclude]]\nname = \"lan\"\nsrc = \"10.0.0.1/8\"\n",
            "cmmd.toml:3: key \"offload.exclude.src\" value \"10.0.0.1/8\": expected an address or prefix such as 10.0.0.0/8 or 2001:db8::/32, without host bits",
        ),
        (
            "[[offload.exclude]]\nmark_mask = 255\n",
            "cmmd.toml:2: key \"offload.exclude.mark_mask\" value 255: needs \"mark\" in the same rule",
        ),
        (
            "[[offload.exclude]]\nname = \"all\"\n",
            "cmmd.toml:1: [[offload.exclude]] \"all\": a deny rule needs at least one match field (it would exclude everything)",
        ),
        (
            "[[offload.exclude]]\nfamily = \"ipv6\"\naddr = \"10.0.0.0/8\"\n",
            "cmmd.toml:1: [[offload.exclude]] \"rule1\": a deny rule cannot mix IPv4 and IPv6 (it could never match)",
        ),
        (
            "[[cli.users]]\nname = \"admin\"\n",
            "cmmd.toml:1: [[cli.users]] \"admin\": key \"password_hash\" is missing",
        ),
        ("cli = 3\n", "cmmd.toml:1: key \"cli\": expected a table"),
        (
            "[offload]\nexclude = 5\n",
            "cmmd.toml:2: key \"offload.exclude\": expected an array of tables",
        ),
        ("max_connections = 1\nmax_connections = 2\n", "cmmd.toml:2: duplicate key"),
        ("ports = [\"eth0\"\n", "cmmd.toml:1: unclosed array, expected `]`"),
    ];
    for (text, expected) in cases {
        assert_eq!(toml_error(text), expected, "{text}");
    }
    let users = format!(
        "[[cli.users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\n[[cli.users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\n"
    );
    assert_eq!(toml_error(&users), "cmmd.toml:1: [[cli.users]]: user \"a\" is defined twice");
}

#[test]
fn conflicts_are_reported_with_their_sources() {
    let (_dir, loaded) = load_toml("[metrics]\nlisten = \"127.0.0.1:2103\"\n");
    let error = loaded.expect_err("same address twice");
    assert!(error.starts_with("cli.listen (default) and metrics.listen ("), "{error}");
    assert!(error.ends_with("cmmd.toml:2) are both 127.0.0.1:2103"), "{error}");
    let dir = tempfile::tempdir().expect("temp dir");
    let users = write_file(&dir, "cli-users", &format!("admin:{HASH}\n"));
    let file = write_file(
        &dir,
        "cmmd.toml",
        &format!(
            "[cli]\npassword_file = {:?}\nusers = [{{ name = \"admin\", password_hash = \"{HASH}\" }}]\n",
            users.display()
        ),
    );
    let empty = write_file(&dir, "no-users", "# nobody yet\n");
    let loaded = load_with(
        &[("CMM_CLI_PASSWORD_FILE", empty.to_str().expect("utf-8"))],
        Overrides::default(),
    );
    assert!(loaded.expect("valid").warnings.contains(&format!(
        "{} lists no user and cli.users is empty: nobody can log in to the CLI",
        empty.display()
    )));
    let error = load_file(&file).expect_err("user in both");
    assert_eq!(
        error,
        format!(
            "CLI user \"admin\" is defined both in cli.users ({}:3) and in {}",
            file.display(),
            users.display()
        )
    );
}

#[test]
fn file_values_are_typed() {
    let text = format!(
        "ports = [\"eth0\", \"eth2\"]\n[offload]\nprotocols = [\"udp\"]\nudp = \"confirmed\"\nfwmark_from_ctmark = true\n\
         fwmark_mask = 0xff00\nzones = [0, 7]\nexclude = []\n[keepalive]\nmode = \"permanent\"\ninterval = \"250ms\"\n\
         [netlink]\nevent_buffer = 8192\nrtnl_buffer = \"16MiB\"\nsweep_interval = \"0s\"\nbatch_interval = \"5ms\"\n[cli]\nidle_timeout = 120\nenable_password_hash = \"{HASH}\"\n\
         [[cli.users]]\nname = \"admin\"\npassword_hash = \"{HASH}\"\n"
    );
    let (_dir, loaded) = load_toml(&text);
    let config = loaded.expect("valid").config;
    assert_eq!(config.ports.len(), 2);
    assert_eq!(config.offload.protocols, [L4Protocol::Udp]);
    assert!(!config.offload.offloads(L4Protocol::Tcp));
    assert_eq!(config.offload.udp_policy, UdpPolicy::Confirmed);
    assert_eq!((config.offload.fwmark_from_ctmark, config.offload.fwmark_mask), (true, 0xff00));
    assert_eq!(config.offload.zones, [0, 7]);
    assert!(config.offload.exclude.is_empty(), "exclude = [] means no exclusions");
    assert_eq!(config.keepalive.mode, KeepaliveMode::Permanent);
    assert_eq!(config.keepalive.interval, Duration::from_millis(250));
    assert_eq!((config.netlink.event_buffer, config.netlink.sweep_interval), (8192, None));
    assert_eq!(config.netlink.rtnl_buffer, 16 << 20);
    assert_eq!(config.netlink.batch_interval, Some(Duration::from_millis(5)));
    assert_eq!(config.cli.idle_timeout, Duration::from_secs(120));
    assert_eq!(config.cli.enable_password_hash.as_deref(), Some(HASH));
    assert_eq!(config.cli.users.first().map(|user| user.name.as_str()), Some("admin"));
}

#[test]
fn fastforward_cli_listenaddr_applies_only_below_every_explicit_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ff = write_file(&dir, "fastforward", "config cli_listenaddr\n\toption ip4addr 192.0.2.1\n");
    let env = [("CMM_FASTFORWARD_FILE", ff.to_str().expect("utf-8"))];
    let loaded = load_with(&env, Overrides::default()).expect("valid");
    assert_eq!(loaded.config.cli.listen, Some("192.0.2.1:2103".parse().expect("addr")));
    assert_eq!(loaded.source("cli.listen"), &Source::File { path: ff.clone(), line: 2 });
    let env = [env[0], ("CMM_CLI_LISTEN", "127.0.0.1:2104")];
    let loaded = load_with(&env, Overrides::default()).expect("valid");
    assert_eq!(loaded.config.cli.listen, Some("127.0.0.1:2104".parse().expect("addr")));
    assert!(loaded.warnings.contains(&format!(
        "{}:2: cli_listenaddr 192.0.2.1 not applied: cli.listen is set by env CMM_CLI_LISTEN",
        ff.display()
    )));
    let bad = write_file(&dir, "bad", "config fastforward x\n\toption port 99999\n");
    assert_eq!(
        load_with(&[("CMM_FASTFORWARD_FILE", bad.to_str().expect("utf-8"))], Overrides::default())
            .expect_err("bad"),
        format!("{}:2: option \"port\" value \"99999\": expected 1..=65535", bad.display())
    );
}

#[test]
fn fastforward_vlan_policy_applies_only_below_the_toml_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ff = write_file(&dir, "fastforward", "config vlan\n\toption policy manual\n");
    let env = [("CMM_FASTFORWARD_FILE", ff.to_str().expect("utf-8"))];
    let loaded = load_with(&env, Overrides::default()).expect("valid");
    assert_eq!(loaded.config.offload.vlan, config::VlanPolicy::Manual);
    assert_eq!(loaded.source("offload.vlan"), &Source::File { path: ff.clone(), line: 2 });
    let toml = write_file(&dir, "cmmd.toml", "[offload]\nvlan = \"prohibit\"\n");
    let env = [env[0], ("CMM_CONFIG", toml.to_str().expect("utf-8"))];
    let loaded = load_with(&env, Overrides::default()).expect("valid");
    assert_eq!(loaded.config.offload.vlan, config::VlanPolicy::Prohibit);
    assert!(
        loaded.warnings.contains(&format!(
            "{}:2: vlan policy manual not applied: offload.vlan is set by {}:2",
            ff.display(),
            toml.display()
        )),
        "{:?}",
        loaded.warnings
    );
    let bad = write_file(&dir, "bad.toml", "[offload]\nvlan = \"auto\"\n");
    let error = load_with(&[("CMM_CONFIG", bad.to_str().expect("utf-8"))], Overrides::default())
        .expect_err("bad");
    assert!(error.contains("offload.vlan") && error.contains("\"allow\""), "{error}");
}

#[test]
fn check_config_renders_every_key_with_its_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ff = write_file(
        &dir,
        "fastforward",
        "config fastforward ftp\noption proto tcp\noption orig_dst_port 21\n",
    );
    let users = write_file(&dir, "cli-users", &format!("ops:{HASH}\n"));
    let file = write_file(
        &dir,
        "cmmd.toml",
        &format!(
            "backend = \"sim\"\n[offload]\nfastforward_file = {:?}\nexclude = [{{ name = \"ssh\", proto = \"tcp\", port = 22 }}]\n\
             [cli]\npassword_file = {:?}\nenable_password_hash = \"{HASH}\"\nusers = [{{ name = \"admin\", password_hash = \"{HASH}\" }}]\n",
            ff.display(),
            users.display()
        ),
    );
    let overrides = Overrides {
        config: Some(file.display().to_string()),
        log: Some("debug".into()),
        ..Overrides::default()
    };
    let loaded = load_with(&[("CMM_MAX_CONNECTIONS", "1000")], overrides).expect("valid");
    let text = loaded.render_effective();
    let f = file.display();
    for line in [
        format!("# configuration file: {f}"),
        "max_connections = 1000  # env CMM_MAX_CONNECTIONS".to_owned(),
        format!("backend = \"sim\"  # {f}:1"),
        "ports = []  # default".to_owned(),
        "[offload]".to_owned(),
        "fwmark_mask = 0xffffffff  # default".to_owned(),
        format!("exclude = [  # {f}:4"),
        "  { name = \"ssh\", proto = \"tcp\", port = 22 },".to_owned(),
        format!("# 1 deny rules added from {} (offload.fastforward_file):", ff.display()),
        "#   { name = \"ftp\", proto = \"tcp\", orig_dst_port = 21 }".to_owned(),
        "event_buffer = \"32MiB\"  # default".to_owned(),
        "sweep_interval = \"1m\"  # default".to_owned(),
        "idle_timeout = \"15m\"  # default".to_owned(),
        format!("enable_password_hash = \"<redacted>\"  # {f}:7"),
        "  { name = \"admin\", password_hash = \"<redacted>\" },".to_owned(),
        format!("# users from {}: [\"ops\"]", users.display()),
        "level = \"debug\"  # flag --log".to_owned(),
        "capacity = 32768  # default".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing line {line:?} in:\n{text}");
    }
    assert!(!text.contains(HASH), "hashes are never printed");
    let reparsed: toml::Table = toml::from_str(&text).expect("the rendering is TOML");
    assert_eq!(reparsed.len(), 13, "three top-level keys and ten tables");
    // The rendering of the defaults loads back to the defaults.
    let defaults = load_with(&[], Overrides::default()).expect("valid").render_effective();
    let (_dir, reloaded) = load_toml(&defaults);
    assert_eq!(reloaded.expect("round trip").config, Config::default());
}

#[test]
fn reload_diff_separates_live_changes_from_restart_ones() {
    let old = Config::default();
    let text = format!(
        "backend = \"sim\"\n[offload]\nexclude = []\n[timeouts]\ntcp = 3600\n[keepalive]\nmargin = \"5m\"\n[log]\nlevel = \"debug\"\n\
         [cli]\nenable_password_hash = \"{HASH}\"\nusers = [{{ name = \"a\", password_hash = \"{HASH}\" }}]\n"
    );
    let (_dir, loaded) = load_toml(&text);
    let new = loaded.expect("valid").config;
    let changes = old.reload_diff(&new);
    let change = |key: &'static str, old: &str, new: &str, applies| Change {
        key,
        old: old.into(),
        new: new.into(),
        applies,
    };
    assert_eq!(
        changes,
        [
            change("backend", "\"cdx\"", "\"sim\"", Applies::NeedsRestart),
            change("timeouts.tcp", "432000", "3600", Applies::Live),
            change("keepalive.margin", "\"0s\"", "\"5m\"", Applies::Live),
            change("cli.enable_password_hash", "\"\"", "\"<redacted>\"", Applies::Live),
            change("log.level", "\"info\"", "\"debug\"", Applies::Live),
            change(
                "offload.exclude",
                "[{ name = \"ftp\", proto = \"tcp\", port = 21 }, { name = \"sip\", proto = \"udp\", port = 5060 }, \
                 { name = \"pptp\", proto = \"tcp\", port = 1723 }]",
                "[]",
                Applies::Live
            ),
            change("cli.users", "[]", "[\"a\"]", Applies::Live),
        ]
    );
    assert_eq!(
        changes.first().map(ToString::to_string).as_deref(),
        Some("backend: \"cdx\" -> \"sim\" (NOT applied: needs a restart)")
    );
    assert!(new.reload_diff(&new).is_empty());
    let mut rehashed = new.clone();
    if let Some(user) = rehashed.cli.users.first_mut() {
        user.password_hash = OTHER_HASH.into();
    }
    assert_eq!(
        new.reload_diff(&rehashed),
        [change("cli.users", "[\"a\"]", "[\"a\"] (password hashes changed)", Applies::Live)]
    );
}

#[test]
fn after_a_reload_restart_keys_keep_their_running_value_and_source() {
    let running = load_with(&[], Overrides::default()).expect("defaults");
    let (_dir, read) = load_toml("max_connections = 1000\n[log]\nlevel = \"debug\"\n");
    let mut read = read.expect("valid");
    let pending = read.keep_restart_keys(&running);
    assert_eq!(
        pending.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["max_connections: 131072 -> 1000 (NOT applied: needs a restart)"]
    );
    assert_eq!(read.config.max_connections, running.config.max_connections);
    assert_eq!(read.config.log.level, "debug", "a live key takes the new value");
    let text = read.render_effective();
    assert!(text.lines().any(|l| l == "max_connections = 131072  # default"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("level = \"debug\"  # ")), "{text}");
    // Reading the same file again reports the same pending change, not none.
    let (_dir, again) = load_toml("max_connections = 1000\n");
    assert_eq!(again.expect("valid").keep_restart_keys(&read).len(), 1);
}
