//! Property tests: no input, however broken, panics a parser, and every error stays one line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Config, LoadOptions, Overrides, parse_fastforward};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "max_connections",
    "backend",
    "ports",
    "[offload]",
    "protocols",
    "exclude",
    "zones",
    "fwmark_mask",
    "[[offload.exclude]]",
    "proto",
    "port",
    "addr",
    "src",
    "mark",
    "mark_mask",
    "family",
    "[timeouts]",
    "tcp",
    "[keepalive]",
    "interval",
    "margin",
    "permanent_bit",
    "[netlink]",
    "event_buffer",
    "rtnl_buffer",
    "sweep_interval",
    "batch_interval",
    "[cli]",
    "listen",
    "users",
    "[[cli.users]]",
    "name",
    "password_hash",
    "[log]",
    "level",
    "format",
    "[sim]",
    "capacity",
    "foo",
];
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "65536",
    "99999999999999999999",
    "\"\"",
    "\"sim\"",
    "\"10s\"",
    "\"32MiB\"",
    "[]",
    "[\"eth0\"]",
    "[1, 1]",
    "true",
    "1.5",
    "{ port = 21 }",
    "[{ proto = \"tcp\" }]",
    "\"10.0.0.0/8\"",
    "\"::1\"",
    "\"off\"",
    "\"[::1]:1\"",
    "0xffffffff",
    "\"info,a=b\"",
    "1979-05-27",
    "\"\\u0000\"",
];

fn load_text(text: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(file.path(), text).map_err(|e| e.to_string())?;
    let lookup = |_: &str| None;
    let overrides =
        Overrides { config: Some(file.path().display().to_string()), ..Overrides::default() };
    Config::load(&LoadOptions::new(&lookup, overrides)).map(drop).map_err(|e| e.to_string())
}

fn assert_one_line(result: Result<(), String>) {
    if let Err(message) = result {
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "multi-line error: {message:?}"
        );
        assert!(!message.is_empty());
    }
}

fn key_value_lines() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (prop::sample::select(KEYS), prop::sample::select(VALUES)).prop_map(|(key, value)| {
            if key.starts_with('[') { key.to_owned() } else { format!("{key} = {value}") }
        }),
        0..16,
    )
    .prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_toml_text_never_panics(text in "(?s).{0,300}") {
        assert_one_line(load_text(&text));
    }

    #[test]
    fn plausible_toml_never_panics(text in key_value_lines()) {
        assert_one_line(load_text(&text));
    }

    #[test]
    fn arbitrary_fastforward_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        assert_one_line(parse_fastforward(Path::new("ff"), &bytes).map(drop).map_err(|e| e.to_string()));
    }

    #[test]
    fn plausible_fastforward_never_panics(lines in prop::collection::vec(
        prop::collection::vec(prop::sample::select(&[
            "config", "option", "fastforward", "logging", "vlan", "cli_listenaddr", "asym_fastforward", "proto",
            "tcp", "ipv6", "port", "21", "99999", "mark", "mask", "0x10", "ip_v4_addr", "10.0.0.0/8",
            "orig_src_ipv6", "::1", "ip4addr", "'x", "#", "policy", "manual", "repl_dst_port",
        ][..]), 0..7).prop_map(|words| words.join(" ")),
        0..12,
    )) {
        let text = lines.join("\n");
        assert_one_line(parse_fastforward(Path::new("ff"), text.as_bytes()).map(drop).map_err(|e| e.to_string()));
    }

    #[test]
    fn arbitrary_environment_values_never_panic(var in prop::sample::select(&[
        "CMM_MAX_CONNECTIONS", "CMM_BACKEND", "CMM_PORTS", "CMM_CLI_LISTEN", "CMM_METRICS_LISTEN", "CMM_LOG",
        "CMM_LOG_FORMAT",
    ][..]), value in "(?s).{0,40}") {
        let env: HashMap<&str, String> = [(var, value)].into_iter().collect();
        let lookup = |name: &str| env.get(name).cloned();
        let mut options = LoadOptions::new(&lookup, Overrides::default());
        options.default_config_path = PathBuf::from("/nonexistent/cmmd.toml");
        assert_one_line(Config::load(&options).map(drop).map_err(|e| e.to_string()));
    }
}
