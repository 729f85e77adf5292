//! Typed configuration of cmmd.
//!
//! One model ([`Config`]) with every default in one place (`defaults.rs`), loaded from, in increasing
//! precedence: defaults, the TOML file, `CMM_*` environment variables and flags ([`Config::load`]).
//! The vendor `fastforward` file is read too ([`read_fastforward`]), so existing exclusion lists keep
//! working. Every bad value ends in one [`ConfigError`] line naming its source (file and line,
//! variable or flag), the key, the value and the rule; the daemon prints it and exits with code 2.
//! [`Loaded::render_effective`] is `cmmd check-config`; [`Config::reload_diff`] tells a SIGHUP
//! reload what changed and whether it applies live.
//!
//! Layers: `units` (durations, sizes) → `keys` (one value rule per key, shared by every source) →
//! `file` (TOML schema and error locations) / `fastforward` (vendor format) / `users` (password file)
//! → `load` (precedence, provenance, rendering) → `reload` (differences). No I/O happens outside
//! `Config::load`, `read_fastforward` and `read_password_file`, and nothing here evaluates rules:
//! the daemon does.
//!
//! ```
//! use config::{Config, LoadOptions, Overrides, Source};
//! let env = |name: &str| (name == "CMM_BACKEND").then(|| "sim".to_owned());
//! let overrides = Overrides { max_connections: Some("4096".into()), ..Overrides::default() };
//! let mut options = LoadOptions::new(&env, overrides);
//! options.default_config_path = "/nonexistent/cmmd.toml".into();
//! let loaded = Config::load(&options).expect("valid");
//! assert_eq!(loaded.config.max_connections.get(), 4096);
//! assert_eq!(loaded.source("backend"), &Source::Env("CMM_BACKEND"));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]

pub mod defaults;
mod error;
mod fastforward;
mod file;
mod keys;
mod load;
mod model;
mod reload;
mod rules;
mod units;
mod users;

pub use error::ConfigError;
pub use fastforward::{Fastforward, Notice, parse_fastforward, read_fastforward};
pub use load::{CONFIG_ENV, LoadOptions, Loaded, Overrides, Source, process_env};
pub use model::{
    Backend, CdxAbi, CdxAbiSetting, CdxConfig, CliConfig, Config, InterfaceName, KeepaliveConfig,
    KeepaliveMode, L4Protocol, LogConfig, LogFormat, MetricsConfig, NetlinkConfig, OffloadConfig,
    OnRemoved, ShutdownConfig, SimConfig, SimIpv6Activity, SimUnwritten, Timeouts, UdpPolicy,
    VlanPolicy,
};
pub use reload::{Applies, Change};
pub use rules::{Cidr, ExcludeRule, Family, MarkMatch};
pub use users::{User, read_password_file};
