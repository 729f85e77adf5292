//! Loading: defaults < TOML file < environment < flags, with the source of every value.
//!
//! Contract: [`Config::load`] is the only way the daemon builds a configuration, at start-up, for
//! `check-config` and on SIGHUP. It reads the environment only through the function it is given (tests
//! pass a map), never touches anything but the files it names, and returns either a complete, valid
//! [`Loaded`] or the first error as one line. Order of precedence:
//! 1. defaults (`defaults.rs`);
//! 2. the vendor `fastforward` file's `cli_listenaddr` and `vlan` policy (only for `cli.listen` and
//!    `offload.vlan`; see below);
//! 3. the TOML file: `--config`, else `CMM_CONFIG`, else `/etc/cmm/cmmd.toml` if it exists (a named
//!    file that is missing is an error; the default one is optional);
//! 4. environment variables `CMM_*`;
//! 5. flags.
//!
//! After these, the files named by the result are read: `offload.fastforward_file` (its deny rules are
//! added to `offload.exclude`; its `cli_listenaddr` applies when `cli.listen` still has its default,
//! its `vlan` policy when `offload.vlan` does)
//! and `cli.password_file` (its users are added to `cli.users`; a name in both is an error).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::defaults;
use crate::error::ConfigError;
use crate::fastforward::read_fastforward;
use crate::keys::{ENV_KEYS, Input, KEYS, key};
use crate::model::Config;
use crate::reload::{REDACTED, render_user_names};
use crate::rules::toml_string;
use crate::users::read_password_file;

/// Flag values as the daemon's argument parser found them (`None` = flag not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--config PATH`.
    pub config: Option<String>,
    /// `--backend cdx|sim`.
    pub backend: Option<String>,
    /// `--max-connections N`.
    pub max_connections: Option<String>,
    /// `--ports eth0,eth1`.
    pub ports: Option<String>,
    /// `--cli-listen ADDR|off`.
    pub cli_listen: Option<String>,
    /// `--metrics-listen ADDR|off`.
    pub metrics_listen: Option<String>,
    /// `--log FILTER`.
    pub log: Option<String>,
    /// `--log-format text|json`.
    pub log_format: Option<String>,
    /// `--flush-on-exit [true|false]` (pass `"true"` for the bare flag).
    pub flush_on_exit: Option<String>,
    /// `--fastforward-file PATH` (the vendor's `-f`).
    pub fastforward_file: Option<String>,
    /// `--cdx-abi auto|lsdk|ask`.
    pub cdx_abi: Option<String>,
    /// `--sim-capacity N` (`cmmd sim serve --capacity`).
    pub sim_capacity: Option<String>,
    /// `--sim-abi lsdk|ask`.
    pub sim_abi: Option<String>,
    /// `--sim-unwritten garbage|zeros`.
    pub sim_unwritten: Option<String>,
    /// `--sim-interfaces IF,IF` (`cmmd sim serve --ports`).
    pub sim_interfaces: Option<String>,
    /// `--sim-ipv6-activity build|aging-timer|refreshed`.
    pub sim_ipv6_activity: Option<String>,
    /// `--sim-hz N`.
    pub sim_hz: Option<String>,
    /// `--sim-hw-latency DURATION`.
    pub sim_hw_latency: Option<String>,
}

/// Each flag, the key it sets and where its value is.
/// Reads one flag's value out of [`Overrides`].
type FlagValue = fn(&Overrides) -> Option<&String>;

const FLAGS: [(&str, &str, FlagValue); 17] = [
    ("--backend", "backend", |o| o.backend.as_ref()),
    ("--max-connections", "max_connections", |o| o.max_connections.as_ref()),
    ("--ports", "ports", |o| o.ports.as_ref()),
    ("--cli-listen", "cli.listen", |o| o.cli_listen.as_ref()),
    ("--metrics-listen", "metrics.listen", |o| o.metrics_listen.as_ref()),
    ("--log", "log.level", |o| o.log.as_ref()),
    ("--log-format", "log.format", |o| o.log_format.as_ref()),
    ("--flush-on-exit", "shutdown.flush_on_exit", |o| o.flush_on_exit.as_ref()),
    ("--fastforward-file", "offload.fastforward_file", |o| o.fastforward_file.as_ref()),
    ("--cdx-abi", "cdx.abi", |o| o.cdx_abi.as_ref()),
    ("--sim-capacity", "sim.capacity", |o| o.sim_capacity.as_ref()),
    ("--sim-abi", "sim.abi", |o| o.sim_abi.as_ref()),
    ("--sim-unwritten", "sim.unwritten", |o| o.sim_unwritten.as_ref()),
    ("--sim-interfaces", "sim.interfaces", |o| o.sim_interfaces.as_ref()),
    ("--sim-ipv6-activity", "sim.ipv6_activity", |o| o.sim_ipv6_activity.as_ref()),
    ("--sim-hz", "sim.hz", |o| o.sim_hz.as_ref()),
    ("--sim-hw-latency", "sim.hw_latency", |o| o.sim_hw_latency.as_ref()),
];

/// The environment variable naming the TOML file.
pub const CONFIG_ENV: &str = "CMM_CONFIG";

/// What [`Config::load`] reads.
pub struct LoadOptions<'a> {
    /// Looks up an environment variable (`process_env` in the daemon, a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Flag values.
    pub overrides: Overrides,
    /// The file read when neither `--config` nor `CMM_CONFIG` names one, if it exists.
    pub default_config_path: PathBuf,
}

impl<'a> LoadOptions<'a> {
    /// Options with the default file `/etc/cmm/cmmd.toml`.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, overrides: Overrides) -> Self {
        Self { env, overrides, default_config_path: PathBuf::from(defaults::CONFIG_PATH) }
    }
}

/// Reads a variable of this process; a value that is not UTF-8 is passed on lossily, so that it fails
/// validation with a message instead of being ignored.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `defaults.rs`.
    Default,
    /// A line of a file (the TOML file, or the fastforward file for `cli.listen`).
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env(var) => write!(f, "env {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A loaded configuration with the source of every key.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Source of each key, by dotted path (every scalar key, `offload.exclude` and `cli.users`).
    pub provenance: BTreeMap<&'static str, Source>,
    /// The TOML file read, if any.
    pub config_file: Option<PathBuf>,
    /// Things the daemon should log as warnings at start-up (empty `ports`, default CLI account,
    /// ignored sections of the fastforward file, ...).
    pub warnings: Vec<String>,
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    String::from_utf8(bytes).map_err(|error| {
        let line = crate::file::line_of(
            &String::from_utf8_lossy(error.as_bytes()),
            error.utf8_error().valid_up_to(),
        );
        ConfigError::FileLine { path: path.to_owned(), line, message: "not valid UTF-8".into() }
    })
}

impl Config {
    /// Loads the configuration from every source (see the module documentation).
    pub fn load(options: &LoadOptions<'_>) -> Result<Loaded, ConfigError> {
        let mut config = Config::default();
        let mut provenance: BTreeMap<&'static str, Source> =
            KEYS.iter().map(|spec| (spec.path, Source::Default)).collect();
        provenance.insert("offload.exclude", Source::Default);
        provenance.insert("cli.users", Source::Default);

        let config_file = match (&options.overrides.config, (options.env)(CONFIG_ENV)) {
            (Some(path), _) => Some(named_file(path, |rule| ConfigError::Flag {
                flag: "--config",
                value: path.clone(),
                rule,
            })?),
            (None, Some(path)) => Some(named_file(&path, |rule| ConfigError::Env {
                var: CONFIG_ENV,
                value: path.clone(),
                rule,
            })?),
            (None, None) => {
                options.default_config_path.is_file().then(|| options.default_config_path.clone())
            }
        };
        if let Some(path) = &config_file {
            crate::file::apply(path, &read_text(path)?, &mut config, &mut provenance)?;
        }

        for (var, path) in ENV_KEYS {
            if let Some(value) = (options.env)(var) {
                set_key(&mut config, path, &value, |rule| ConfigError::Env {
                    var,
                    value: value.clone(),
                    rule,
                })?;
                provenance.insert(path_of(path), Source::Env(var));
            }
        }
        for (flag, path, value) in FLAGS {
            if let Some(value) = value(&options.overrides) {
                set_key(&mut config, path, value, |rule| ConfigError::Flag {
                    flag,
                    value: value.clone(),
                    rule,
                })?;
                provenance.insert(path_of(path), Source::Flag(flag));
            }
        }

        let mut warnings = Vec::new();
        if let Some(path) = config.offload.fastforward_file.clone() {
            let fastforward = read_fastforward(&path)
                .map_err(|e| unreadable(e, "offload.fastforward_file", &provenance))?;
            warnings.extend(fastforward.notice_lines());
            if let Some((addr, line)) = fastforward.cli_listen {
                match provenance.get("cli.listen") {
                    Some(Source::Default) => {
                        config.cli.listen =
                            Some(SocketAddr::new(IpAddr::V4(addr), defaults::CLI_PORT));
                        provenance.insert("cli.listen", Source::File { path: path.clone(), line });
                    }
                    other => warnings.push(format!(
                        "{}:{line}: cli_listenaddr {addr} not applied: cli.listen is set by {}",
                        path.display(),
                        other.map_or_else(|| "another source".to_owned(), ToString::to_string)
                    )),
                }
            }
            if let Some((policy, line)) = fastforward.vlan_policy {
                match provenance.get("offload.vlan") {
                    Some(Source::Default) => {
                        config.offload.vlan = policy;
                        provenance
                            .insert("offload.vlan", Source::File { path: path.clone(), line });
                    }
                    other => warnings.push(format!(
                        "{}:{line}: vlan policy {policy} not applied: offload.vlan is set by {}",
                        path.display(),
                        other.map_or_else(|| "another source".to_owned(), ToString::to_string)
                    )),
                }
            }
            config.offload.fastforward = Some(fastforward);
        }
        if let Some(path) = config.cli.password_file.clone() {
            config.cli.password_file_users = read_password_file(&path)
                .map_err(|e| unreadable(e, "cli.password_file", &provenance))?;
            if let Some(user) = config
                .cli
                .password_file_users
                .iter()
                .find(|user| config.cli.users.iter().any(|known| known.name == user.name))
            {
                return Err(ConfigError::Conflict {
                    message: format!(
                        "CLI user {:?} is defined both in cli.users ({}) and in {}",
                        user.name,
                        provenance.get("cli.users").unwrap_or(&Source::Default),
                        path.display()
                    ),
                });
            }
        }

        if let (Some(cli), Some(metrics)) = (config.cli.listen, config.metrics.listen)
            && cli == metrics
        {
            let source = |path| provenance.get(path).unwrap_or(&Source::Default).to_string();
            return Err(ConfigError::Conflict {
                message: format!(
                    "cli.listen ({}) and metrics.listen ({}) are both {cli}",
                    source("cli.listen"),
                    source("metrics.listen")
                ),
            });
        }
        warnings.extend(config.warnings());
        Ok(Loaded { config, provenance, config_file, warnings })
    }

    /// Valid settings that probably are not what the operator wants.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.ports.is_empty() {
            warnings.push(
                "ports is empty: no interface is a fast-path port, nothing will be offloaded"
                    .to_owned(),
            );
        }
        if self.offload.protocols.is_empty() || !(self.offload.ipv4 || self.offload.ipv6) {
            warnings.push("offload.protocols is empty or both offload.ipv4 and offload.ipv6 are off: nothing will be offloaded".to_owned());
        }
        if let Some(path) = &self.cli.password_file
            && self.cli.password_file_users.is_empty()
            && self.cli.users.is_empty()
        {
            warnings.push(format!(
                "{} lists no user and cli.users is empty: nobody can log in to the CLI",
                path.display()
            ));
        }
        if self.cli.uses_default_admin() && self.cli.listen.is_some() {
            warnings.push(format!(
                "no CLI users configured (cli.users, cli.password_file): the vendor account {}/{} is active",
                defaults::CLI_DEFAULT_ADMIN.0,
                defaults::CLI_DEFAULT_ADMIN.1
            ));
        }
        warnings
    }
}

/// A file named by a flag or a variable must exist.
fn named_file(
    path: &str,
    error: impl FnOnce(String) -> ConfigError,
) -> Result<PathBuf, ConfigError> {
    if path.is_empty() {
        return Err(error("expected the path of a TOML file".to_owned()));
    }
    let path = PathBuf::from(path);
    if path.is_file() { Ok(path) } else { Err(error("no such file".to_owned())) }
}

/// A file named by `key` cannot be read: report it where the key was set, as a bad value.
fn unreadable(
    error: ConfigError,
    key: &'static str,
    provenance: &BTreeMap<&'static str, Source>,
) -> ConfigError {
    let ConfigError::Read { path, source } = error else { return error };
    let value = path.display().to_string();
    let rule = format!("cannot read the file: {source}");
    match provenance.get(key) {
        Some(Source::File { path: file, line }) => ConfigError::FileValue {
            path: file.clone(),
            line: *line,
            key: key.to_owned(),
            value: format!("{value:?}"),
            rule,
        },
        Some(Source::Env(var)) => ConfigError::Env { var, value, rule },
        Some(Source::Flag(flag)) => ConfigError::Flag { flag, value, rule },
        Some(Source::Default) | None => ConfigError::Read { path, source },
    }
}

fn path_of(path: &str) -> &'static str {
    key(path).map_or("", |spec| spec.path)
}

fn set_key(
    config: &mut Config,
    path: &str,
    value: &str,
    error: impl FnOnce(String) -> ConfigError,
) -> Result<(), ConfigError> {
    match key(path) {
        Some(spec) => (spec.set)(config, Input::Text(value)).map_err(error),
        None => Err(error(format!("sets the unknown key {path:?} (internal error)"))),
    }
}

impl Loaded {
    /// The source of a key (`Source::Default` for unknown paths).
    pub fn source(&self, path: &str) -> &Source {
        self.provenance.get(path).unwrap_or(&Source::Default)
    }

    /// Reads the text value of the key `path` with `parse`, a grammar the configuration does not
    /// own (that of the library the value is for, e.g. the conntrack dialect). A value `parse`
    /// refuses is a configuration error like any other: one line naming where the value came
    /// from (file and line, variable or flag), the key, the value and `parse`'s rule.
    pub fn check_text<T>(
        &self,
        path: &'static str,
        value: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        parse(value).map_err(|rule| {
            let rule = crate::error::one_line(&rule);
            match self.source(path) {
                Source::Env(var) => ConfigError::Env { var, value: value.to_owned(), rule },
                Source::Flag(flag) => ConfigError::Flag { flag, value: value.to_owned(), rule },
                Source::File { path: file, line } => ConfigError::FileValue {
                    path: file.clone(),
                    line: *line,
                    key: path.to_owned(),
                    value: toml_string(value),
                    rule,
                },
                Source::Default => ConfigError::Conflict {
                    message: format!("the default {path} {value:?}: {rule}"),
                },
            }
        })
    }

    /// The effective configuration for `cmmd check-config`: every key in TOML notation with its source
    /// as a comment; deny rules of the fastforward file and users of the password file as comments.
    /// Password hashes are shown as `"<redacted>"`.
    pub fn render_effective(&self) -> String {
        let mut out =
            String::from("# cmmd effective configuration: every key, its value and its source\n");
        out.push_str(&match &self.config_file {
            Some(path) => format!("# configuration file: {}\n", path.display()),
            None => {
                "# configuration file: none (defaults, environment and flags only)\n".to_owned()
            }
        });
        let mut table = "";
        for spec in KEYS {
            let (section, name) = spec.path.rsplit_once('.').unwrap_or(("", spec.path));
            if section != table {
                out.push_str(&format!("\n[{section}]\n"));
                table = section;
            }
            let mut value = (spec.render)(&self.config);
            if spec.secret && value != "\"\"" {
                value = REDACTED.to_owned();
            }
            out.push_str(&format!("{name} = {value}  # {}\n", self.source(spec.path)));
            match spec.path {
                "offload.fastforward_file" => self.render_rules(&mut out),
                "cli.enable_password_hash" => self.render_users(&mut out),
                _ => {}
            }
        }
        out
    }

    fn render_rules(&self, out: &mut String) {
        let rules = &self.config.offload.exclude;
        let source = self.source("offload.exclude");
        if rules.is_empty() {
            out.push_str(&format!("exclude = []  # {source}\n"));
        } else {
            out.push_str(&format!("exclude = [  # {source}\n"));
            for rule in rules {
                out.push_str(&format!("  {},\n", rule.to_toml()));
            }
            out.push_str("]\n");
        }
        if let Some(fastforward) = &self.config.offload.fastforward {
            out.push_str(&format!(
                "# {} deny rules added from {} (offload.fastforward_file):\n",
                fastforward.rules.len(),
                fastforward.path.display()
            ));
            for rule in &fastforward.rules {
                out.push_str(&format!("#   {}\n", rule.to_toml()));
            }
        }
    }

    fn render_users(&self, out: &mut String) {
        let cli = &self.config.cli;
        let source = self.source("cli.users");
        if cli.users.is_empty() {
            let note = if cli.uses_default_admin() {
                ", the vendor account admin/admin is active"
            } else {
                ""
            };
            out.push_str(&format!("users = []  # {source}{note}\n"));
        } else {
            out.push_str(&format!("users = [  # {source}\n"));
            for user in &cli.users {
                out.push_str(&format!(
                    "  {{ name = {}, password_hash = {REDACTED} }},\n",
                    crate::rules::toml_string(&user.name)
                ));
            }
            out.push_str("]\n");
        }
        if let Some(path) = &cli.password_file {
            out.push_str(&format!(
                "# users from {}: {}\n",
                path.display(),
                render_user_names(&cli.password_file_users)
            ));
        }
    }
}
