//! `show debug_level`, `set debug` and `set timeout`.
//!
//! The vendor keeps two things apart: `debug_level`, the categories it prints into the CLI
//! (`set debug`, default `error` only), and the log file's level (its configuration file).
//! cmmd has one output, its log, with a configured filter (`--log`, `CMM_LOG`): `set debug`
//! turns categories on over that filter (`info` raises its level to `info`, `command` adds
//! `cmmd::offload=debug`) and off again, never below it; `show debug_level` prints the
//! categories as the vendor does, from the vendor's default.
//!
//! `set timeout` reads its words as the vendor's `timeoutSet` does, with its messages.

use cli::{DebugCategory, Session, TimeoutClass};

use super::Ctx;
use crate::core::hw::HwTimeouts;
use crate::edge::telemetry::DebugLevels;

/// The vendor's `debug_level` at start: errors only.
pub const VENDOR_DEBUG_LEVEL: DebugLevels =
    DebugLevels { command: false, error: true, warning: false, info: false };

/// `show debug_level`.
pub(super) fn show_debug_level(levels: DebugLevels, out: &mut Session) {
    for (name, on) in [
        ("command:", levels.command),
        ("error:  ", levels.error),
        ("warning:", levels.warning),
        ("info:   ", levels.info),
    ] {
        out.reply_line(&format!("{name}\t{}", if on { "printed" } else { "not printed" }));
    }
}

/// The rank of a base level word of a filter directive (`off` … `trace`), `None` for a word
/// that is a per-target directive.
fn rank(level: &str) -> Option<u8> {
    match level.trim().to_ascii_lowercase().as_str() {
        "off" => Some(0),
        "error" => Some(1),
        "warn" | "warning" => Some(2),
        "info" => Some(3),
        "debug" => Some(4),
        "trace" => Some(5),
        _ => None,
    }
}

const COMMAND_DIRECTIVE: &str = "cmmd::offload=debug";

/// The log filter for `configured` with `categories` turned on over it.
pub fn effective_filter(configured: &str, categories: DebugLevels) -> String {
    let (base, rest) = match configured.split_once(',') {
        Some((base, rest)) => (base, Some(rest)),
        None => (configured, None),
    };
    let wanted = if categories.info {
        3
    } else if categories.warning {
        2
    } else {
        u8::from(categories.error)
    };
    let mut parts: Vec<String> = Vec::new();
    match rank(base) {
        Some(have) if have >= wanted => parts.push(base.to_owned()),
        Some(_) => parts.push(["off", "error", "warn", "info"][usize::from(wanted)].to_owned()),
        None => {
            // No base level: `tracing` prints errors only outside the named targets.
            if wanted > 1 {
                parts.push(["off", "error", "warn", "info"][usize::from(wanted)].to_owned());
            }
            parts.push(base.to_owned());
        }
    }
    parts.extend(rest.map(str::to_owned));
    if categories.command && !configured.contains(COMMAND_DIRECTIVE) {
        parts.push(COMMAND_DIRECTIVE.to_owned());
    }
    parts.retain(|part| !part.trim().is_empty());
    parts.join(",")
}

/// `set debug <category> 0|1`.
pub(super) fn set_debug(ctx: &mut Ctx<'_>, category: DebugCategory, enabled: bool) {
    let levels = &mut ctx.state.debug;
    match category {
        DebugCategory::Command => levels.command = enabled,
        DebugCategory::Error => levels.error = enabled,
        DebugCategory::Warning => levels.warning = enabled,
        DebugCategory::Info => levels.info = enabled,
    }
    let filter = effective_filter(ctx.log_level, *levels);
    if let Some(t) = ctx.telemetry.as_deref_mut()
        && t.filter() != filter
    {
        match t.set_filter(&filter) {
            Ok(()) => tracing::info!(%filter, "log filter changed from the CLI"),
            Err(e) => tracing::warn!(error = %e, "log filter not changed"),
        }
    }
}

const TIMEOUT_USAGE: &str = "Usage: set timeout <udp tcp other> value [value2] [4rd]";

/// The vendor's `cmm_convert_to_numeric`: the value, or the message it prints (and 0, which
/// ends the command without more, also for the value 0).
fn numeric(word: &str) -> Result<u64, Option<&'static str>> {
    if word.len() > 10 {
        return Err(Some("Too big string for timeout value"));
    }
    if !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Some("timeout value should be numeric string "));
    }
    match word.parse::<u64>() {
        Ok(0) | Err(_) => Err(None),
        Ok(value) => Ok(value),
    }
}

/// What `set timeout` asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TimeoutRequest {
    pub(super) class: TimeoutClass,
    pub(super) value1: u32,
    pub(super) value2: u32,
    pub(super) four_rd: bool,
}

/// Read `set timeout`'s words as the vendor's `timeoutSet`: the request, or the line it
/// prints instead (`None`: nothing).
pub(super) fn read_timeout(words: &[String]) -> Result<TimeoutRequest, Option<&'static str>> {
    if !(2..=4).contains(&words.len()) {
        return Err(Some(TIMEOUT_USAGE));
    }
    let (Some(class_word), Some(value_word)) = (words.first(), words.get(1)) else {
        return Err(Some(TIMEOUT_USAGE));
    };
    // `strncmp(argv[0], name, strlen(argv[0]))`: the word is a prefix of the name.
    let prefix_of = |name: &str| name.starts_with(class_word.as_str());
    let class = if prefix_of("udp") {
        TimeoutClass::Udp
    } else if prefix_of("tcp") {
        TimeoutClass::Tcp
    } else if prefix_of("other") {
        TimeoutClass::Other
    } else {
        return Err(Some(TIMEOUT_USAGE));
    };
    let value1 = numeric(value_word)?;
    let mut value2 = 0;
    let mut four_rd = false;
    for word in words.iter().skip(2) {
        if "4rd".starts_with(word.as_str()) {
            four_rd = true;
        } else {
            value2 = numeric(word)?;
        }
    }
    let (Ok(value1), Ok(value2)) = (u32::try_from(value1), u32::try_from(value2)) else {
        return Err(Some(TIMEOUT_USAGE));
    };
    if value1 == u32::MAX || value2 == u32::MAX {
        return Err(Some(TIMEOUT_USAGE));
    }
    Ok(TimeoutRequest { class, value1, value2, four_rd })
}

/// `set timeout …`: cdx's aging timeouts (and cmmd's keepalive's view of them).
pub(super) fn set_timeout(ctx: &mut Ctx<'_>, words: &[String], out: &mut Session) {
    let request = match read_timeout(words) {
        Ok(request) => request,
        Err(Some(line)) => return out.reply_line(line),
        Err(None) => return,
    };
    if request.four_rd {
        out.reply_error(
            "\"set timeout … 4rd\" is not supported by cmmd (it offloads no 4rd tunnel)",
        );
        return;
    }
    let limit = config::defaults::TIMEOUT_LIMIT;
    if request.value1 > limit || request.value2 > limit {
        out.reply_error(&format!(
            "timeout above {limit} s: {}",
            config::defaults::TIMEOUT_LIMIT_REASON
        ));
        return;
    }
    let mut t: HwTimeouts = ctx.engine.config().hw_timeouts;
    match request.class {
        TimeoutClass::Tcp => t.tcp = request.value1,
        TimeoutClass::Udp => {
            t.udp = request.value1;
            t.udp_unidir = if request.value2 > 0 { request.value2 } else { request.value1 };
        }
        TimeoutClass::Other => t.other = request.value1,
    }
    ctx.engine.set_hw_timeouts(t);
}
