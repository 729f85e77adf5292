//! The key table: one entry per scalar configuration key, shared by every source.
//!
//! Contract: a key's value rule is written once, here, and applies identically to the TOML file
//! (`Input::Toml`), environment variables and flags (`Input::Text`). A rule is a sentence fragment such
//! as `expected a positive integer in 1..=16777216`; the caller adds where the value came from. The
//! same table renders each key's effective value in TOML notation (for `check-config`) and says whether
//! a change applies live on SIGHUP. The structured keys (`offload.exclude`, `cli.users`) are parsed by
//! `file.rs` and rendered by `load.rs`; they have no environment variable or flag.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::defaults;
use crate::model::{Config, InterfaceName, Named};
use crate::reload::Applies;
use crate::rules::toml_string;
use crate::units::{parse_duration, parse_size, render_duration, render_size};

/// A value to check: text from the environment or a flag, or a value of the TOML file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// An environment variable or flag value.
    Text(&'a str),
    /// A TOML value.
    Toml(&'a toml::Value),
}

impl Input<'_> {
    /// The text of a string value.
    fn as_text(&self) -> Option<&str> {
        match self {
            Input::Text(text) => Some(text),
            Input::Toml(toml::Value::String(text)) => Some(text),
            Input::Toml(_) => None,
        }
    }

    /// The value as it should appear in an error about one element of a list.
    fn describe(&self) -> String {
        match self {
            Input::Text(text) => format!("{text:?}"),
            Input::Toml(value) => value.to_string(),
        }
    }
}

/// The result of checking a value: the typed value or the rule it broke.
pub(crate) type Checked<T> = Result<T, String>;

/// An integer in `min..=max`: a TOML integer, or decimal (or `0x` hexadecimal) text.
pub(crate) fn integer(input: Input<'_>, min: u64, max: u64) -> Checked<u64> {
    let rule = || {
        let kind = if min >= 1 { "a positive integer" } else { "an integer" };
        format!("expected {kind} in {min}..={max}")
    };
    let value = match input {
        Input::Toml(toml::Value::Integer(value)) => u64::try_from(*value).ok(),
        Input::Toml(_) => None,
        Input::Text(text) => parse_unsigned(text.trim()),
    };
    value.filter(|value| (min..=max).contains(value)).ok_or_else(rule)
}

/// Parses decimal digits or `0x` followed by hexadecimal digits; nothing else (no sign, no spaces).
pub(crate) fn parse_unsigned(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A positive `u32` up to `max`.
fn positive(input: Input<'_>, max: u32) -> Checked<NonZeroU32> {
    let value = integer(input, 1, u64::from(max))?;
    u32::try_from(value)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| format!("expected a positive integer in 1..={max}"))
}

/// A `u32` (any value, e.g. a mask).
pub(crate) fn any_u32(input: Input<'_>) -> Checked<u32> {
    let value = integer(input, 0, u64::from(u32::MAX))?;
    u32::try_from(value).map_err(|_| format!("expected an integer in 0..={}", u32::MAX))
}

/// A `u16` in `min..=max`.
pub(crate) fn small(input: Input<'_>, min: u16, max: u16) -> Checked<u16> {
    let value = integer(input, u64::from(min), u64::from(max))?;
    u16::try_from(value).map_err(|_| format!("expected an integer in {min}..={max}"))
}

/// `true` or `false` (text also accepts `1`/`0`, `yes`/`no`, `on`/`off`).
pub(crate) fn boolean(input: Input<'_>) -> Checked<bool> {
    let value = match input {
        Input::Toml(toml::Value::Boolean(value)) => Some(*value),
        Input::Toml(_) => None,
        Input::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
    };
    value.ok_or_else(|| "expected true or false".to_owned())
}

/// A duration in `min..=max`: `"250ms"`, `"10s"`, `"15m"`, `"1h"`, or an integer of seconds.
fn duration(input: Input<'_>, min: Duration, max: Duration) -> Checked<Duration> {
    let value = match input {
        Input::Toml(toml::Value::Integer(seconds)) => {
            u64::try_from(*seconds).ok().map(Duration::from_secs)
        }
        other => other.as_text().and_then(parse_duration),
    };
    value.filter(|value| (min..=max).contains(value)).ok_or_else(|| {
        format!(
            "expected a duration such as \"10s\", \"15m\" or \"1h\" in {}..={}",
            render_duration(min),
            render_duration(max)
        )
    })
}

/// A duration in `min..=max`, or `"0s"` for off.
fn duration_or_off(input: Input<'_>, min: Duration, max: Duration) -> Checked<Option<Duration>> {
    match duration(input, Duration::ZERO, max) {
        Ok(Duration::ZERO) => Ok(None),
        Ok(value) if value >= min => Ok(Some(value)),
        _ => Err(format!(
            "expected \"0s\" (off) or a duration such as \"30s\" or \"5m\" in {}..={}",
            render_duration(min),
            render_duration(max)
        )),
    }
}

/// A size in bytes in `min..=max`: an integer or `"512KiB"`, `"32MiB"`, `"1GiB"`.
fn size(input: Input<'_>, min: u32, max: u32) -> Checked<u32> {
    let value = match input {
        Input::Toml(toml::Value::Integer(bytes)) => u64::try_from(*bytes).ok(),
        other => other.as_text().and_then(parse_size),
    };
    value
        .filter(|value| (u64::from(min)..=u64::from(max)).contains(value))
        .and_then(|value| u32::try_from(value).ok())
        .ok_or_else(|| {
            format!(
                "expected a size in bytes or \"KiB\"/\"MiB\"/\"GiB\" in {}..={}",
                render_size(u64::from(min)),
                render_size(u64::from(max))
            )
        })
}

/// One of the words of a [`Named`] enum.
pub(crate) fn choice<T: Named>(input: Input<'_>) -> Checked<T> {
    input.as_text().and_then(|text| T::from_name(text.trim())).ok_or_else(|| {
        let words: Vec<String> = T::ALL.iter().map(|(word, _)| format!("{word:?}")).collect();
        match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => {
                format!("expected {} or {last}", rest.join(", "))
            }
            _ => format!("expected {}", words.join("")),
        }
    })
}

/// A listening address, or `"off"`. An IPv4 address may also be bracketed (`[10.0.0.5]:9103`),
/// so that one template such as `[$(HOST_IP)]:9103` serves nodes of either family.
fn listen(input: Input<'_>) -> Checked<Option<SocketAddr>> {
    match input.as_text().map(str::trim) {
        Some("off") => Ok(None),
        Some(text) => text.parse().or_else(|_| bracketed_v4(text)).map(Some),
        None => Err(listen_rule()),
    }
}

fn bracketed_v4(text: &str) -> Checked<SocketAddr> {
    let (host, port) =
        text.strip_prefix('[').and_then(|t| t.split_once("]:")).ok_or_else(listen_rule)?;
    let ip: std::net::Ipv4Addr = host.parse().map_err(|_| listen_rule())?;
    let port: u16 = port.parse().map_err(|_| listen_rule())?;
    Ok(SocketAddr::from((ip, port)))
}

fn listen_rule() -> String {
    "expected \"<IPv4>:<port>\", \"[<IPv6>]:<port>\" or \"off\"".to_owned()
}

/// A file path; the empty string means none.
fn optional_path(input: Input<'_>) -> Checked<Option<PathBuf>> {
    match input.as_text() {
        Some("") => Ok(None),
        Some(text) if !text.contains('\0') => Ok(Some(PathBuf::from(text))),
        _ => Err("expected a file path (\"\" for none)".to_owned()),
    }
}

/// The `enable` password: `""` (none) or an argon2id PHC string.
fn optional_hash(input: Input<'_>) -> Checked<Option<String>> {
    match input.as_text() {
        Some("") => Ok(None),
        Some(text) => crate::users::check_password_hash(text).map(|()| Some(text.to_owned())),
        None => Err("expected \"\" or an argon2id PHC string".to_owned()),
    }
}

const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// A `tracing` `EnvFilter` directive string, checked roughly: comma-separated `level`, `target` or
/// `target[span{field}]=level`, targets made of `[A-Za-z0-9_:.-]`.
fn log_filter(input: Input<'_>) -> Checked<String> {
    let rule =
        || "expected a log filter such as \"info\" or \"info,cmmd::engine=debug\"".to_owned();
    let text = input.as_text().map(str::trim).ok_or_else(rule)?;
    let is_level = |word: &str| LOG_LEVELS.iter().any(|level| level.eq_ignore_ascii_case(word));
    let is_target = |word: &str| {
        let (target, span) = match word.split_once('[') {
            Some((target, span)) => (target, Some(span)),
            None => (word, None),
        };
        let target_ok =
            target.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'));
        let span_ok = span.is_none_or(|span| span.ends_with(']'));
        !word.is_empty() && target_ok && span_ok
    };
    let valid = !text.is_empty()
        && text.split(',').map(str::trim).all(|directive| match directive.rsplit_once('=') {
            Some((target, level)) if !target.contains('[') || target.ends_with(']') => {
                is_target(target) && is_level(level)
            }
            Some(_) => false,
            None => is_level(directive) || is_target(directive),
        });
    if valid { Ok(text.to_owned()) } else { Err(rule()) }
}

/// A list: a TOML array, or comma-separated text (empty text is an empty list). Elements are checked
/// by `element`; duplicates are refused.
fn list<T: PartialEq>(input: Input<'_>, element: fn(Input<'_>) -> Checked<T>) -> Checked<Vec<T>> {
    let inputs: Vec<Input<'_>> = match input {
        Input::Toml(toml::Value::Array(values)) => values.iter().map(Input::Toml).collect(),
        Input::Toml(_) => return Err("expected an array".to_owned()),
        Input::Text(text) if text.trim().is_empty() => Vec::new(),
        Input::Text(text) => text.split(',').map(|part| Input::Text(part.trim())).collect(),
    };
    let mut values: Vec<T> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let value =
            element(input).map_err(|rule| format!("element {}: {rule}", input.describe()))?;
        if values.contains(&value) {
            return Err(format!("element {} is listed twice", input.describe()));
        }
        values.push(value);
    }
    Ok(values)
}

fn interface(input: Input<'_>) -> Checked<InterfaceName> {
    input.as_text().ok_or_else(|| "expected a string".to_owned()).and_then(InterfaceName::new)
}

fn zone(input: Input<'_>) -> Checked<u16> {
    small(input, 0, u16::MAX)
}

fn timeout(input: Input<'_>) -> Checked<NonZeroU32> {
    positive(input, defaults::TIMEOUT_LIMIT)
        .map_err(|rule| format!("{rule}: {}", defaults::TIMEOUT_LIMIT_REASON))
}

/// Renders a value in TOML notation.
trait Render {
    fn render(&self) -> String;
}

macro_rules! render_display {
    ($($ty:ty),*) => { $(impl Render for $ty { fn render(&self) -> String { self.to_string() } })* };
}
render_display!(bool, u8, u16, NonZeroU32);

impl Render for Duration {
    fn render(&self) -> String {
        toml_string(&render_duration(*self))
    }
}

impl Render for Option<Duration> {
    fn render(&self) -> String {
        self.unwrap_or(Duration::ZERO).render()
    }
}

impl Render for Option<SocketAddr> {
    fn render(&self) -> String {
        toml_string(&self.map_or_else(|| "off".to_owned(), |addr| addr.to_string()))
    }
}

impl Render for Option<PathBuf> {
    fn render(&self) -> String {
        toml_string(&self.as_ref().map_or_else(String::new, |path| path.display().to_string()))
    }
}

impl Render for Option<String> {
    fn render(&self) -> String {
        toml_string(self.as_deref().unwrap_or(""))
    }
}

impl Render for String {
    fn render(&self) -> String {
        toml_string(self)
    }
}

impl<T: Render> Render for Vec<T> {
    fn render(&self) -> String {
        let items: Vec<String> = self.iter().map(Render::render).collect();
        format!("[{}]", items.join(", "))
    }
}

impl Render for InterfaceName {
    fn render(&self) -> String {
        toml_string(self.as_str())
    }
}

/// Named enums render as their word.
macro_rules! render_named {
    ($($ty:ty),*) => { $(impl Render for $ty { fn render(&self) -> String { toml_string(self.as_str()) } })* };
}
render_named!(
    crate::model::CdxAbiSetting,
    crate::model::CdxAbi,
    crate::model::SimUnwritten,
    crate::model::SimIpv6Activity,
    crate::model::Backend,
    crate::model::UdpPolicy,
    crate::model::VlanPolicy,
    crate::model::KeepaliveMode,
    crate::model::OnRemoved,
    crate::model::LogFormat,
    crate::model::L4Protocol
);

/// One scalar key.
pub(crate) struct KeySpec {
    /// Dotted path, e.g. `cli.idle_timeout`.
    pub(crate) path: &'static str,
    /// Whether a change applies on SIGHUP.
    pub(crate) applies: Applies,
    /// The value is a secret: rendered as `"<redacted>"` when set.
    pub(crate) secret: bool,
    /// Checks a value and stores it.
    pub(crate) set: fn(&mut Config, Input<'_>) -> Checked<()>,
    /// The current value in TOML notation.
    pub(crate) render: fn(&Config) -> String,
    /// Copies the value from the second configuration into the first.
    pub(crate) copy: fn(&mut Config, &Config),
}

macro_rules! key {
    ($path:literal, $applies:ident, $($field:ident).+, $check:expr) => {
        key!(@ $path, $applies, false, $($field).+, $check, Render::render)
    };
    ($path:literal, $applies:ident, $($field:ident).+, $check:expr, render = $render:expr) => {
        key!(@ $path, $applies, false, $($field).+, $check, $render)
    };
    (secret $path:literal, $applies:ident, $($field:ident).+, $check:expr) => {
        key!(@ $path, $applies, true, $($field).+, $check, Render::render)
    };
    (@ $path:literal, $applies:ident, $secret:expr, $($field:ident).+, $check:expr, $render:expr) => {
        KeySpec {
            path: $path,
            applies: Applies::$applies,
            secret: $secret,
            set: |config, input| {
                config.$($field).+ = ($check)(input)?;
                Ok(())
            },
            render: |config| ($render)(&config.$($field).+),
            copy: |config, from| config.$($field).+ = from.$($field).+.clone(),
        }
    };
}

/// A mask in hexadecimal.
fn render_mask(mask: &u32) -> String {
    format!("{mask:#010x}")
}

/// `"auto"` (`None`) or a status bit number in 0..=30 (`IPS_DPI_ALLOWED` is the next bit).
fn permanent_bit(input: Input<'_>) -> Checked<Option<u8>> {
    let rule = || "expected \"auto\" or an integer in 0..=30".to_owned();
    if input.as_text().is_some_and(|text| text.trim().eq_ignore_ascii_case("auto")) {
        return Ok(None);
    }
    let bit = small(input, 0, 30).map_err(|_| rule())?;
    u8::try_from(bit).map(Some).map_err(|_| rule())
}

fn render_permanent_bit(bit: &Option<u8>) -> String {
    bit.map_or_else(|| toml_string("auto"), |bit| bit.to_string())
}

/// A non-empty word of printable ASCII without blanks, whose grammar is checked elsewhere
/// (by the daemon, against the library that reads it: see `Loaded::check_text`).
fn word(input: Input<'_>) -> Checked<String> {
    let rule = || "expected a non-empty word of printable characters".to_owned();
    let text = input.as_text().ok_or_else(rule)?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(rule());
    }
    Ok(text.to_owned())
}

/// A size in its largest exact unit (a string), or in bytes (an integer).
/// A netlink socket receive buffer: 4 KiB..=1 GiB.
fn socket_buffer(input: Input<'_>) -> Checked<u32> {
    size(input, defaults::NETLINK_EVENT_BUFFER_MIN, defaults::NETLINK_EVENT_BUFFER_MAX)
}

fn render_buffer_size(bytes: &u32) -> String {
    let rendered = render_size(u64::from(*bytes));
    if rendered.bytes().all(|b| b.is_ascii_digit()) { rendered } else { toml_string(&rendered) }
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

/// Every scalar key, in the order of the file.
pub(crate) static KEYS: &[KeySpec] = &[
    key!("max_connections", NeedsRestart, max_connections, |i| positive(
        i,
        defaults::MAX_CONNECTIONS_LIMIT
    )),
    key!("backend", NeedsRestart, backend, choice),
    key!("ports", NeedsRestart, ports, |i| list(i, interface)),
    key!("cdx.abi", NeedsRestart, cdx.abi, choice),
    key!("offload.protocols", NeedsRestart, offload.protocols, |i| list(i, choice)),
    key!("offload.ipv4", NeedsRestart, offload.ipv4, boolean),
    key!("offload.ipv6", NeedsRestart, offload.ipv6, boolean),
    key!("offload.udp", NeedsRestart, offload.udp_policy, choice),
    key!("offload.vlan", NeedsRestart, offload.vlan, choice),
    key!("offload.exclude_helpers", NeedsRestart, offload.exclude_helpers, boolean),
    key!("offload.fwmark_from_ctmark", NeedsRestart, offload.fwmark_from_ctmark, boolean),
    key!("offload.fwmark_mask", NeedsRestart, offload.fwmark_mask, any_u32, render = render_mask),
    key!("offload.wan_ports", NeedsRestart, offload.wan_ports, |i| list(i, interface)),
    key!("offload.zones", NeedsRestart, offload.zones, |i| list(i, zone)),
    key!("offload.fastforward_file", Live, offload.fastforward_file, optional_path),
    key!("timeouts.tcp", Live, timeouts.tcp, timeout),
    key!("timeouts.udp", Live, timeouts.udp, timeout),
    key!("timeouts.udp_unidirectional", Live, timeouts.udp_unidirectional, timeout),
    key!("timeouts.other", Live, timeouts.other, timeout),
    key!("keepalive.mode", NeedsRestart, keepalive.mode, choice),
    key!("keepalive.interval", Live, keepalive.interval, |i| duration(
        i,
        Duration::from_millis(100),
        HOUR
    )),
    key!("keepalive.margin", Live, keepalive.margin, |i| duration_or_off(i, SECOND, DAY)),
    key!("keepalive.max_refresh_per_second", Live, keepalive.max_refresh_per_second, |i| positive(
        i, 10_000_000
    )),
    key!(
        "keepalive.permanent_bit",
        NeedsRestart,
        keepalive.permanent_bit,
        permanent_bit,
        render = render_permanent_bit
    ),
    key!("keepalive.on_removed", NeedsRestart, keepalive.on_removed, choice),
    key!(
        "netlink.event_buffer",
        NeedsRestart,
        netlink.event_buffer,
        socket_buffer,
        render = render_buffer_size
    ),
    key!(
        "netlink.rtnl_buffer",
        NeedsRestart,
        netlink.rtnl_buffer,
        socket_buffer,
        render = render_buffer_size
    ),
    key!("netlink.reliable_destroy", NeedsRestart, netlink.reliable_destroy, boolean),
    key!("netlink.enable_events_sysctl", NeedsRestart, netlink.enable_events_sysctl, boolean),
    key!("netlink.sweep_interval", NeedsRestart, netlink.sweep_interval, |i| duration_or_off(
        i, SECOND, DAY
    )),
    key!("netlink.resync_min_interval", NeedsRestart, netlink.resync_min_interval, |i| duration(
        i,
        Duration::ZERO,
        HOUR
    )),
    key!("netlink.batch_interval", NeedsRestart, netlink.batch_interval, |i| duration_or_off(
        i,
        Duration::from_millis(1),
        Duration::from_millis(100)
    )),
    key!("netlink.conntrack_dialect", NeedsRestart, netlink.conntrack_dialect, word),
    key!(
        "netlink.route_mark_mask",
        NeedsRestart,
        netlink.route_mark_mask,
        any_u32,
        render = render_mask
    ),
    key!("cli.listen", NeedsRestart, cli.listen, listen),
    key!("cli.max_sessions", NeedsRestart, cli.max_sessions, |i| positive(i, 1_024)),
    key!("cli.idle_timeout", NeedsRestart, cli.idle_timeout, |i| duration(i, SECOND, DAY)),
    key!("cli.login_timeout", NeedsRestart, cli.login_timeout, |i| duration(i, SECOND, HOUR)),
    key!("cli.max_login_failures", NeedsRestart, cli.max_login_failures, |i| positive(i, 100)),
    key!("cli.lockout_failures", NeedsRestart, cli.lockout_failures, |i| positive(i, 100_000)),
    key!("cli.lockout_window", NeedsRestart, cli.lockout_window, |i| duration(i, SECOND, DAY)),
    key!("cli.lockout_duration", NeedsRestart, cli.lockout_duration, |i| duration(i, SECOND, DAY)),
    key!("cli.password_file", Live, cli.password_file, optional_path),
    key!(secret "cli.enable_password_hash", Live, cli.enable_password_hash, optional_hash),
    key!("metrics.listen", NeedsRestart, metrics.listen, listen),
    key!("log.level", Live, log.level, log_filter),
    key!("log.format", NeedsRestart, log.format, choice),
    key!("shutdown.flush_on_exit", NeedsRestart, shutdown.flush_on_exit, boolean),
    key!("sim.capacity", NeedsRestart, sim.capacity, |i| positive(
        i,
        defaults::MAX_CONNECTIONS_LIMIT
    )),
    key!("sim.abi", NeedsRestart, sim.abi, choice),
    key!("sim.unwritten", NeedsRestart, sim.unwritten, choice),
    key!("sim.interfaces", NeedsRestart, sim.interfaces, |i| list(i, interface)),
    key!("sim.ipv6_activity", NeedsRestart, sim.ipv6_activity, choice),
    key!("sim.hz", NeedsRestart, sim.hz, |i| positive(i, defaults::SIM_HZ_LIMIT)),
    key!("sim.hw_latency", NeedsRestart, sim.hw_latency, |i| duration(
        i,
        Duration::ZERO,
        defaults::SIM_HW_LATENCY_LIMIT
    )),
];

/// The key spec of a dotted path.
pub(crate) fn key(path: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|spec| spec.path == path)
}

/// Environment variables that set a key (`CMM_CONFIG` names the file and is handled by the loader).
pub(crate) const ENV_KEYS: [(&str, &str); 18] = [
    ("CMM_MAX_CONNECTIONS", "max_connections"),
    ("CMM_BACKEND", "backend"),
    ("CMM_PORTS", "ports"),
    ("CMM_CLI_LISTEN", "cli.listen"),
    ("CMM_CLI_PASSWORD_FILE", "cli.password_file"),
    ("CMM_METRICS_LISTEN", "metrics.listen"),
    ("CMM_LOG", "log.level"),
    ("CMM_LOG_FORMAT", "log.format"),
    ("CMM_FASTFORWARD_FILE", "offload.fastforward_file"),
    ("CMM_CDX_ABI", "cdx.abi"),
    ("CMM_SIM_CAPACITY", "sim.capacity"),
    ("CMM_SIM_ABI", "sim.abi"),
    ("CMM_SIM_UNWRITTEN", "sim.unwritten"),
    ("CMM_SIM_INTERFACES", "sim.interfaces"),
    ("CMM_SIM_IPV6_ACTIVITY", "sim.ipv6_activity"),
    ("CMM_SIM_HZ", "sim.hz"),
    ("CMM_SIM_HW_LATENCY", "sim.hw_latency"),
    ("CMM_CONNTRACK_DIALECT", "netlink.conntrack_dialect"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn text<T>(check: fn(Input<'_>) -> Checked<T>, value: &str) -> Checked<T> {
        check(Input::Text(value))
    }

    #[test]
    fn every_env_key_exists() {
        for (var, path) in ENV_KEYS {
            assert!(key(path).is_some(), "{var} → {path}");
        }
    }

    #[test]
    fn integers_reject_sign_garbage_and_overflow() {
        let max = |i: Input<'_>| positive(i, defaults::MAX_CONNECTIONS_LIMIT);
        for bad in ["abc", "0", "-1", "99999999999", "", "+5", "1 2", "16777217"] {
            assert_eq!(
                text(max, bad),
                Err("expected a positive integer in 1..=16777216".into()),
                "{bad}"
            );
        }
        assert_eq!(text(max, " 42 ").map(NonZeroU32::get), Ok(42));
        assert_eq!(text(any_u32, "0xff00"), Ok(0xff00));
        assert_eq!(
            any_u32(Input::Toml(&toml::Value::Integer(-1))),
            Err("expected an integer in 0..=4294967295".into())
        );
    }

    #[test]
    fn choices_list_every_word() {
        use crate::model::{Backend, KeepaliveMode};
        assert_eq!(text(choice::<Backend>, "x"), Err("expected \"cdx\" or \"sim\"".into()));
        assert_eq!(text(choice::<Backend>, "sim"), Ok(Backend::Sim));
        assert_eq!(
            text(choice::<KeepaliveMode>, "forever"),
            Err("expected \"refresh\", \"permanent\" or \"off\"".into())
        );
    }

    #[test]
    fn listen_accepts_v4_v6_and_off() {
        assert_eq!(text(listen, "off"), Ok(None));
        assert_eq!(text(listen, "[::1]:2103"), Ok(Some("[::1]:2103".parse().expect("addr"))));
        assert_eq!(text(listen, "0.0.0.0:9103"), Ok(Some("0.0.0.0:9103".parse().expect("addr"))));
        assert_eq!(text(listen, "localhost:2103"), Err(listen_rule()));
        assert_eq!(text(listen, "::1:2103"), Err(listen_rule()));
        assert_eq!(
            text(listen, "[10.0.0.5]:9103"),
            Ok(Some("10.0.0.5:9103".parse().expect("addr"))),
            "the DaemonSet's [$(HOST_IP)]:9103 on an IPv4 node"
        );
        assert_eq!(text(listen, "[10.0.0.5]"), Err(listen_rule()));
        assert_eq!(text(listen, "[10.0.0.5]:x"), Err(listen_rule()));
        assert_eq!(text(listen, "[host]:1"), Err(listen_rule()));
    }

    #[test]
    fn lists_split_text_and_refuse_duplicates() {
        let ports = |i: Input<'_>| list(i, interface);
        let names = |v: Checked<Vec<InterfaceName>>| {
            v.map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        assert_eq!(names(text(ports, "eth0, eth1")), Ok(vec!["eth0".into(), "eth1".into()]));
        assert_eq!(names(text(ports, "")), Ok(vec![]));
        assert_eq!(names(text(ports, "eth0,eth0")), Err("element \"eth0\" is listed twice".into()));
        assert_eq!(
            names(text(ports, "eth0,a-very-long-ifname")),
            Err("element \"a-very-long-ifname\": expected an interface name of 1..=15 bytes without '/', ':' or whitespace".into())
        );
        assert!(text(ports, "eth0,,eth1").is_err());
        assert!(text(ports, "br/0").is_err());
        assert!(text(ports, "..").is_err());
    }

    #[test]
    fn log_filters_are_checked_roughly() {
        for good in [
            "info",
            "WARN",
            "info,cmmd::engine=debug",
            "cmmd=trace",
            "cmmd[flow{id=1}]=debug",
            "netlink_sys",
        ] {
            assert_eq!(text(log_filter, good).as_deref(), Ok(good), "{good}");
        }
        for bad in ["", "info,,debug", "cmmd=loud", "=info", "a b", "cmmd[x=info"] {
            assert!(text(log_filter, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_sizes_have_ranges() {
        let interval = |i: Input<'_>| duration(i, Duration::from_millis(100), HOUR);
        assert_eq!(text(interval, "250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(
            text(interval, "2h"),
            Err("expected a duration such as \"10s\", \"15m\" or \"1h\" in 100ms..=1h".into())
        );
        let sweep = |i: Input<'_>| duration_or_off(i, SECOND, DAY);
        assert_eq!(text(sweep, "0s"), Ok(None));
        assert_eq!(
            text(sweep, "500ms"),
            Err("expected \"0s\" (off) or a duration such as \"30s\" or \"5m\" in 1s..=24h".into())
        );
        let buffer = |i: Input<'_>| size(i, 4_096, 1 << 30);
        assert_eq!(text(buffer, "32MiB"), Ok(32 << 20));
        assert_eq!(
            text(buffer, "2GiB"),
            Err("expected a size in bytes or \"KiB\"/\"MiB\"/\"GiB\" in 4KiB..=1GiB".into())
        );
    }
}
