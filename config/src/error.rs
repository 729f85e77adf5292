//! Configuration errors.
//!
//! Contract: every error is exactly one line; its `Display` is the whole message and names where the
//! bad value came from (file and line, environment variable or flag), the offending key or option, the
//! value and the rule it broke. The daemon prints `cmmd: <error>` and exits with code 2. Values taken
//! from user input are shown with Rust string escaping, so a newline or control character in a value can
//! never split the line. Secrets (password hashes) are never echoed.

use std::path::PathBuf;

/// Everything that can be wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable holds a value its key does not accept.
    #[error("{var}={value:?}: {rule}")]
    Env {
        /// The variable, e.g. `CMM_MAX_CONNECTIONS`.
        var: &'static str,
        /// The value as found.
        value: String,
        /// The rule the value broke, e.g. `expected a positive integer in 1..=16777216`.
        rule: String,
    },
    /// A command-line flag holds a value its key does not accept.
    #[error("{flag} {value:?}: {rule}")]
    Flag {
        /// The flag, e.g. `--backend`.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// The rule the value broke.
        rule: String,
    },
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML file is not valid TOML, or a key holds the wrong kind of value (a table where a number
    /// belongs, for example).
    #[error("{}:{line}: {message}", path.display())]
    FileLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The TOML file holds a key this version does not know.
    #[error("{}:{line}: unknown key {key:?} in {table}", path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// Where it stands: `[cli]`, `[[offload.exclude]]` or `the top level`.
        table: String,
    },
    /// A TOML key holds a value its rule does not accept.
    #[error("{}:{line}: key {key:?} value {value}: {rule}", path.display())]
    FileValue {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// Dotted key path, e.g. `cli.idle_timeout`.
        key: String,
        /// The value in TOML notation (strings quoted, secrets replaced by `"…"`).
        value: String,
        /// The rule the value broke.
        rule: String,
    },
    /// The vendor `fastforward` file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Fastforward {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong, e.g. `option "port" value "99999": expected 1..=65535`.
        message: String,
    },
    /// The CLI password file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong (never the line's content: it holds a password hash).
        message: String,
    },
    /// Two values that are valid alone cannot be used together.
    #[error("{message}")]
    Conflict {
        /// Names both keys and their sources.
        message: String,
    },
}

/// Replaces line breaks and other control characters so that a message from a library (the TOML
/// parser) cannot break the one-line contract.
pub(crate) fn one_line(message: &str) -> String {
    message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
