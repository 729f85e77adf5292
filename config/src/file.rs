//! The TOML file: schema, error locations, and application onto a [`Config`].
//!
//! Contract: the schema is a set of serde structs with `#[serde(deny_unknown_fields)]` whose leaves
//! are spanned, untyped TOML values; the rules for each value live in `keys.rs` (shared with the
//! environment and flags) or, for deny rules and users, here. Every error names the file, the 1-based
//! line and the key: the TOML parser's byte spans are turned into lines, and for unknown keys the
//! spanned document is walked to name the table the key stands in. A key present in the file records
//! `Source::File` in the provenance map; absent keys keep their earlier value.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, one_line};
use crate::keys::{self, Checked, Input};
use crate::load::Source;
use crate::model::Config;
use crate::reload::REDACTED;
use crate::rules::{Cidr, ExcludeRule, Family, MarkMatch};
use crate::users::{User, check_password_hash, check_user_name};

type Leaf = Option<Spanned<toml::Value>>;

/// Declares one table of the schema: its scalar keys (spanned TOML values) and its nested members.
macro_rules! raw_table {
    (@struct $name:ident, [$($field:ident),* $(,)?] $(, $member:ident: $ty:ty)* $(,)?) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $(pub(crate) $field: Leaf,)*
            $(#[serde(default)] pub(crate) $member: $ty,)*
        }
    };
    ($name:ident, $prefix:literal, [$($field:ident),* $(,)?] $(, $member:ident: $ty:ty)* $(,)?) => {
        raw_table!(@struct $name, [$($field),*] $(, $member: $ty)*);

        impl $name {
            /// The scalar keys present in this table, with their dotted paths.
            fn own_scalars(&self) -> Vec<(&'static str, &Spanned<toml::Value>)> {
                [$((concat!($prefix, stringify!($field)), self.$field.as_ref()),)*]
                    .into_iter()
                    .filter_map(|(path, value)| Some((path, value?)))
                    .collect()
            }
        }
    };
}

raw_table!(RawConfig, "", [max_connections, backend, ports],
    cdx: Option<RawCdx>,
    offload: Option<RawOffload>,
    timeouts: Option<RawTimeouts>,
    keepalive: Option<RawKeepalive>,
    netlink: Option<RawNetlink>,
    cli: Option<RawCli>,
    metrics: Option<RawMetrics>,
    log: Option<RawLog>,
    shutdown: Option<RawShutdown>,
    sim: Option<RawSim>,
);
raw_table!(RawOffload, "offload.",
    [protocols, ipv4, ipv6, udp, vlan, exclude_helpers, fwmark_from_ctmark, fwmark_mask, wan_ports,
     zones, fastforward_file],
    exclude: Option<Spanned<Vec<Spanned<RawExcludeRule>>>>,
);
raw_table!(RawTimeouts, "timeouts.", [tcp, udp, udp_unidirectional, other]);
raw_table!(
    RawKeepalive,
    "keepalive.",
    [mode, interval, margin, max_refresh_per_second, permanent_bit, on_removed]
);
raw_table!(
    RawNetlink,
    "netlink.",
    [
        event_buffer,
        rtnl_buffer,
        reliable_destroy,
        enable_events_sysctl,
        sweep_interval,
        resync_min_interval,
        batch_interval,
        conntrack_dialect,
        route_mark_mask
    ]
);
raw_table!(RawCli, "cli.",
    [listen, max_sessions, idle_timeout, login_timeout, max_login_failures, lockout_failures,
     lockout_window, lockout_duration, password_file, enable_password_hash],
    users: Option<Spanned<Vec<Spanned<RawUser>>>>,
);
raw_table!(RawMetrics, "metrics.", [listen]);
raw_table!(RawLog, "log.", [level, format]);
raw_table!(RawShutdown, "shutdown.", [flush_on_exit]);
raw_table!(RawCdx, "cdx.", [abi]);
raw_table!(RawSim, "sim.", [capacity, abi, unwritten, interfaces, ipv6_activity, hz, hw_latency]);
raw_table!(@struct RawExcludeRule,
    [name, proto, port, orig_src_port, orig_dst_port, reply_src_port, reply_dst_port, addr, src, dst,
     family, mark, mark_mask, zone]);
raw_table!(@struct RawUser, [name, password_hash]);

impl RawConfig {
    /// Every scalar key present in the file, in schema order.
    pub(crate) fn scalars(&self) -> Vec<(&'static str, &Spanned<toml::Value>)> {
        let tables = [
            self.cdx.as_ref().map(RawCdx::own_scalars),
            self.offload.as_ref().map(RawOffload::own_scalars),
            self.timeouts.as_ref().map(RawTimeouts::own_scalars),
            self.keepalive.as_ref().map(RawKeepalive::own_scalars),
            self.netlink.as_ref().map(RawNetlink::own_scalars),
            self.cli.as_ref().map(RawCli::own_scalars),
            self.metrics.as_ref().map(RawMetrics::own_scalars),
            self.log.as_ref().map(RawLog::own_scalars),
            self.shutdown.as_ref().map(RawShutdown::own_scalars),
            self.sim.as_ref().map(RawSim::own_scalars),
        ];
        self.own_scalars().into_iter().chain(tables.into_iter().flatten().flatten()).collect()
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source.get(..offset).unwrap_or(source).matches('\n').count() + 1
}

/// Where a span stands in the document: the key, its dotted path and the table header around it.
struct Located {
    key: String,
    path: String,
    table: String,
}

fn table_header(parent: &str, in_array: bool) -> String {
    match (parent.is_empty(), in_array) {
        (true, _) => "the top level".to_owned(),
        (false, true) => format!("[[{parent}]]"),
        (false, false) => format!("[{parent}]"),
    }
}

/// Finds the key whose name span equals `span`, or else the innermost key whose value contains it.
fn locate(
    table: &DeTable<'_>,
    span: &Range<usize>,
    parent: &str,
    in_array: bool,
) -> Option<Located> {
    for (key, value) in table.iter() {
        let path = if parent.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{parent}.{}", key.get_ref())
        };
        let here = || Located {
            key: key.get_ref().to_string(),
            path: path.clone(),
            table: table_header(parent, in_array),
        };
        if key.span() == *span {
            return Some(here());
        }
        let inner = match value.get_ref() {
            DeValue::Table(inner) => locate(inner, span, &path, false),
            DeValue::Array(items) => items.iter().find_map(|item| match item.get_ref() {
                DeValue::Table(inner) => locate(inner, span, &path, true),
                _ => None,
            }),
            _ => None,
        };
        if inner.is_some() {
            return inner;
        }
        if value.span().contains(&span.start) {
            return Some(here());
        }
    }
    None
}

/// Turns a TOML parser or schema error into one line naming file, line and key.
fn toml_error(path: &Path, source: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span().unwrap_or(0..0);
    let line = line_of(source, span.start);
    let message = one_line(error.message());
    let located =
        DeTable::parse(source).ok().and_then(|doc| locate(doc.get_ref(), &span, "", false));
    match located {
        Some(located) if message.starts_with("unknown field") => ConfigError::UnknownKey {
            path: path.to_owned(),
            line,
            key: located.key,
            table: located.table,
        },
        Some(located) => {
            let message = if message.contains("expected struct") {
                "expected a table".to_owned()
            } else if message.contains("expected a sequence") {
                "expected an array of tables".to_owned()
            } else {
                message
            };
            ConfigError::FileLine {
                path: path.to_owned(),
                line,
                message: format!("key {:?}: {message}", located.path),
            }
        }
        None => ConfigError::FileLine { path: path.to_owned(), line, message },
    }
}

/// Applies the TOML text of `path` onto `config`, recording each key's source.
pub(crate) fn apply(
    path: &Path,
    source: &str,
    config: &mut Config,
    provenance: &mut BTreeMap<&'static str, Source>,
) -> Result<(), ConfigError> {
    let raw: RawConfig =
        toml::from_str(source).map_err(|error| toml_error(path, source, &error))?;
    let file = FileContext { path, source };
    for (key_path, value) in raw.scalars() {
        let spec = keys::key(key_path).ok_or_else(|| {
            file.value_error(key_path, value, "this key is not handled (internal error)".into())
        })?;
        (spec.set)(config, Input::Toml(value.get_ref())).map_err(|rule| {
            let shown = if spec.secret { REDACTED.to_owned() } else { value.get_ref().to_string() };
            ConfigError::FileValue {
                path: path.to_owned(),
                line: file.line(value),
                key: key_path.to_owned(),
                value: shown,
                rule,
            }
        })?;
        provenance.insert(spec.path, file.source_of(value));
    }
    if let Some(exclude) = raw.offload.as_ref().and_then(|offload| offload.exclude.as_ref()) {
        config.offload.exclude = exclude
            .get_ref()
            .iter()
            .enumerate()
            .map(|(index, rule)| file.exclude_rule(index, rule))
            .collect::<Result<_, _>>()?;
        provenance.insert("offload.exclude", file.source_of(exclude));
    }
    if let Some(users) = raw.cli.as_ref().and_then(|cli| cli.users.as_ref()) {
        let mut parsed: Vec<User> = Vec::new();
        for user in users.get_ref() {
            let user = file.user(user)?;
            if parsed.iter().any(|known| known.name == user.name) {
                return Err(file.line_error(
                    users,
                    format!("[[cli.users]]: user {:?} is defined twice", user.name),
                ));
            }
            parsed.push(user);
        }
        config.cli.users = parsed;
        provenance.insert("cli.users", file.source_of(users));
    }
    Ok(())
}

struct FileContext<'a> {
    path: &'a Path,
    source: &'a str,
}

impl FileContext<'_> {
    fn line<T>(&self, value: &Spanned<T>) -> usize {
        line_of(self.source, value.span().start)
    }

    fn source_of<T>(&self, value: &Spanned<T>) -> Source {
        Source::File { path: self.path.to_owned(), line: self.line(value) }
    }

    fn line_error<T>(&self, at: &Spanned<T>, message: String) -> ConfigError {
        ConfigError::FileLine { path: self.path.to_owned(), line: self.line(at), message }
    }

    fn value_error(&self, key: &str, value: &Spanned<toml::Value>, rule: String) -> ConfigError {
        ConfigError::FileValue {
            path: self.path.to_owned(),
            line: self.line(value),
            key: key.to_owned(),
            value: value.get_ref().to_string(),
            rule,
        }
    }

    /// Checks one optional field of a table with `check`.
    fn field<T>(
        &self,
        key: &str,
        value: &Leaf,
        check: impl FnOnce(Input<'_>) -> Checked<T>,
    ) -> Result<Option<T>, ConfigError> {
        value
            .as_ref()
            .map(|value| {
                check(Input::Toml(value.get_ref()))
                    .map_err(|rule| self.value_error(key, value, rule))
            })
            .transpose()
    }

    fn exclude_rule(
        &self,
        index: usize,
        raw: &Spanned<RawExcludeRule>,
    ) -> Result<ExcludeRule, ConfigError> {
        let rule_of = raw.get_ref();
        let k = |field: &str| format!("offload.exclude.{field}");
        let port = |input: Input<'_>| keys::small(input, 1, u16::MAX);
        let cidr = |input: Input<'_>| match input {
            Input::Toml(toml::Value::String(text)) => {
                Cidr::parse(text.trim()).ok_or_else(|| Cidr::RULE.to_owned())
            }
            _ => Err(Cidr::RULE.to_owned()),
        };
        let name = self.field(&k("name"), &rule_of.name, |input| match input {
            Input::Toml(toml::Value::String(name))
                if !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control) =>
            {
                Ok(name.clone())
            }
            _ => Err("expected a name of 1..=64 characters".to_owned()),
        })?;
        let mark = self.field(&k("mark"), &rule_of.mark, keys::any_u32)?;
        let mark_mask = self.field(&k("mark_mask"), &rule_of.mark_mask, keys::any_u32)?;
        let rule = ExcludeRule {
            name: name.unwrap_or_else(|| format!("rule{}", index + 1)),
            family: self.field(&k("family"), &rule_of.family, keys::choice::<Family>)?,
            proto: self.field(&k("proto"), &rule_of.proto, |input| match input {
                Input::Toml(toml::Value::String(word)) if word == "tcp" => Ok(6),
                Input::Toml(toml::Value::String(word)) if word == "udp" => Ok(17),
                Input::Toml(toml::Value::Integer(number)) => u8::try_from(*number).map_err(|_| {
                    "expected \"tcp\", \"udp\" or a protocol number in 0..=255".to_owned()
                }),
                _ => Err("expected \"tcp\", \"udp\" or a protocol number in 0..=255".to_owned()),
            })?,
            port: self.field(&k("port"), &rule_of.port, port)?,
            orig_src_port: self.field(&k("orig_src_port"), &rule_of.orig_src_port, port)?,
            orig_dst_port: self.field(&k("orig_dst_port"), &rule_of.orig_dst_port, port)?,
            reply_src_port: self.field(&k("reply_src_port"), &rule_of.reply_src_port, port)?,
            reply_dst_port: self.field(&k("reply_dst_port"), &rule_of.reply_dst_port, port)?,
            addr: self.field(&k("addr"), &rule_of.addr, cidr)?,
            orig_src: self.field(&k("src"), &rule_of.src, cidr)?,
            orig_dst: self.field(&k("dst"), &rule_of.dst, cidr)?,
            reply_src: None,
            reply_dst: None,
            mark: match (mark, mark_mask, &rule_of.mark_mask) {
                (None, Some(_), Some(at)) => {
                    return Err(self.value_error(
                        &k("mark_mask"),
                        at,
                        "needs \"mark\" in the same rule".into(),
                    ));
                }
                (mark, mask, _) => {
                    mark.map(|value| MarkMatch { value, mask: mask.unwrap_or(u32::MAX) })
                }
            },
            zone: self.field(&k("zone"), &rule_of.zone, |input| keys::small(input, 0, u16::MAX))?,
        };
        rule.check().map_err(|why| {
            self.line_error(raw, format!("[[offload.exclude]] {:?}: {why}", rule.name))
        })?;
        Ok(rule)
    }

    fn user(&self, raw: &Spanned<RawUser>) -> Result<User, ConfigError> {
        let text = |check: fn(&str) -> Result<(), String>| {
            move |input: Input<'_>| match input {
                Input::Toml(toml::Value::String(text)) => check(text).map(|()| text.clone()),
                _ => Err("expected a string".to_owned()),
            }
        };
        let name = self.field("cli.users.name", &raw.get_ref().name, text(check_user_name))?;
        let hash = match &raw.get_ref().password_hash {
            Some(value) => match value.get_ref() {
                toml::Value::String(hash) if check_password_hash(hash).is_ok() => {
                    Some(hash.clone())
                }
                _ => {
                    let rule = check_password_hash("").err().unwrap_or_default();
                    return Err(ConfigError::FileValue {
                        path: self.path.to_owned(),
                        line: self.line(value),
                        key: "cli.users.password_hash".to_owned(),
                        value: REDACTED.to_owned(),
                        rule,
                    });
                }
            },
            None => None,
        };
        match (name, hash) {
            (Some(name), Some(password_hash)) => Ok(User { name, password_hash }),
            (None, _) => {
                Err(self.line_error(raw, "[[cli.users]]: key \"name\" is missing".to_owned()))
            }
            (Some(name), None) => Err(self.line_error(
                raw,
                format!("[[cli.users]] {name:?}: key \"password_hash\" is missing"),
            )),
        }
    }
}
