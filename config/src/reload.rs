//! What a SIGHUP reload changes.
//!
//! Contract: [`Config::reload_diff`] lists every key whose effective value differs between the running
//! configuration and a freshly loaded one, each marked [`Applies::Live`] (the daemon applies it now:
//! deny rules, log filter, CLI credentials, cdx timeouts, keepalive numbers) or
//! [`Applies::NeedsRestart`] (the daemon keeps the old value and reports it). Nothing is silently
//! ignored. Secret values are shown as `"<redacted>"`.

use std::fmt;

use crate::keys::KEYS;
use crate::load::Loaded;
use crate::model::Config;
use crate::rules::ExcludeRule;
use crate::users::User;

/// Whether a changed key takes effect on reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Applied by the running daemon.
    Live,
    /// Kept at its old value until the daemon restarts.
    NeedsRestart,
}

/// One changed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Dotted key path, or `offload.fastforward_file (rules)` / `cli.password_file (users)` for the
    /// contents of those files.
    pub key: &'static str,
    /// The running value in TOML notation.
    pub old: String,
    /// The new value in TOML notation.
    pub new: String,
    /// Whether it takes effect now.
    pub applies: Applies,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let effect = match self.applies {
            Applies::Live => "applied",
            Applies::NeedsRestart => "NOT applied: needs a restart",
        };
        write!(f, "{}: {} -> {} ({effect})", self.key, self.old, self.new)
    }
}

/// Placeholder shown instead of a secret value.
pub(crate) const REDACTED: &str = "\"<redacted>\"";

/// Renders deny rules on one line.
pub(crate) fn render_rules(rules: &[ExcludeRule]) -> String {
    let items: Vec<String> = rules.iter().map(ExcludeRule::to_toml).collect();
    format!("[{}]", items.join(", "))
}

/// Renders user names (never hashes) on one line.
pub(crate) fn render_user_names(users: &[User]) -> String {
    let names: Vec<String> =
        users.iter().map(|user| crate::rules::toml_string(&user.name)).collect();
    format!("[{}]", names.join(", "))
}

fn users_change(key: &'static str, old: &[User], new: &[User]) -> Option<Change> {
    if old == new {
        return None;
    }
    let (old_names, mut new_names) = (render_user_names(old), render_user_names(new));
    if old_names == new_names {
        new_names.push_str(" (password hashes changed)");
    }
    Some(Change { key, old: old_names, new: new_names, applies: Applies::Live })
}

impl Loaded {
    /// Makes `self`, just read on SIGHUP, what is in force afterwards: keys that apply live keep
    /// their new value; keys that need a restart take the value and source of `running`. Returns
    /// the changes that wait for a restart, from the running value to the file's.
    pub fn keep_restart_keys(&mut self, running: &Loaded) -> Vec<Change> {
        let pending: Vec<Change> = running
            .config
            .reload_diff(&self.config)
            .into_iter()
            .filter(|change| change.applies == Applies::NeedsRestart)
            .collect();
        for spec in KEYS.iter().filter(|spec| spec.applies == Applies::NeedsRestart) {
            (spec.copy)(&mut self.config, &running.config);
            match running.provenance.get(spec.path) {
                Some(source) => self.provenance.insert(spec.path, source.clone()),
                None => self.provenance.remove(spec.path),
            };
        }
        pending
    }
}

impl Config {
    /// Every difference between `self` (running) and `new` (just loaded), in file order.
    pub fn reload_diff(&self, new: &Config) -> Vec<Change> {
        let mut changes = Vec::new();
        for spec in KEYS {
            let (old_value, new_value) = ((spec.render)(self), (spec.render)(new));
            if old_value == new_value {
                continue;
            }
            let shown = |value: String| {
                if spec.secret && value != "\"\"" { REDACTED.to_owned() } else { value }
            };
            changes.push(Change {
                key: spec.path,
                old: shown(old_value),
                new: shown(new_value),
                applies: spec.applies,
            });
        }
        if self.offload.exclude != new.offload.exclude {
            changes.push(Change {
                key: "offload.exclude",
                old: render_rules(&self.offload.exclude),
                new: render_rules(&new.offload.exclude),
                applies: Applies::Live,
            });
        }
        let fastforward_rules = |config: &Config| {
            config.offload.fastforward.as_ref().map(|file| file.rules.clone()).unwrap_or_default()
        };
        let (old_rules, new_rules) = (fastforward_rules(self), fastforward_rules(new));
        if old_rules != new_rules {
            changes.push(Change {
                key: "offload.fastforward_file (rules)",
                old: render_rules(&old_rules),
                new: render_rules(&new_rules),
                applies: Applies::Live,
            });
        }
        changes.extend(users_change("cli.users", &self.cli.users, &new.cli.users));
        changes.extend(users_change(
            "cli.password_file (users)",
            &self.cli.password_file_users,
            &new.cli.password_file_users,
        ));
        changes
    }
}
