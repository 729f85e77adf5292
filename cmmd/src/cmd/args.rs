//! Command-line arguments: subcommands and flags, parsed without a framework so that every
//! error is one precise line (exit code 2, like every configuration error).
//!
//! The vendor's command line works unchanged (`cmm -f FILE -n N`, `cmm -c COMMAND…`, `-v`,
//! `-h`): `-f` names the vendor `fastforward` file (`--fastforward-file`), `-n` the connection
//! bound (`--max-connections`, `CMM_MAX_CONNECTIONS`), `-c` runs one CLI command like
//! `cmmd ctl`. Unlike the vendor, an unknown option is an error.

use std::fmt;
use std::path::PathBuf;

/// Options shared by `run` and `check-config`: the flag layer of the configuration
/// (`config::Overrides`, highest precedence) plus what only the process needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigFlags {
    /// Values of the configuration flags.
    pub overrides: config::Overrides,
    /// `--sim-socket PATH`: the software cdx of another process (`cmmd sim serve`), which
    /// outlives this one (restart and reconcile tests).
    pub sim_socket: Option<PathBuf>,
}

/// `cmmd ctl` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CtlArgs {
    /// `--addr HOST:PORT` (default: the configured CLI address).
    pub addr: Option<String>,
    /// `--user U`.
    pub user: Option<String>,
    /// `--password-file F` (default: `CMM_CLI_PASSWORD` or admin).
    pub password_file: Option<PathBuf>,
    /// `--timeout SECONDS`.
    pub timeout: Option<u64>,
    /// The command words.
    pub command: Vec<String>,
}

/// `cmmd manifests` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestArgs {
    /// `--namespace NS`.
    pub namespace: Option<String>,
    /// `--image IMAGE`.
    pub image: Option<String>,
    /// `--profile PROFILE`.
    pub profile: Option<String>,
    /// `--max-connections N`: `CMM_MAX_CONNECTIONS` and the memory sized for it.
    pub max_connections: Option<String>,
}

/// `cmmd sim …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimCommand {
    /// `cmmd sim serve --socket PATH [--config PATH] [--sim-… VALUE]…`: the software cdx the
    /// `[sim]` table describes (file < `CMM_SIM_*` < flags).
    Serve {
        /// Socket path.
        socket: PathBuf,
        /// The configuration flags (`--config`, `--ports`, the `--sim-…` keys).
        flags: Box<ConfigFlags>,
    },
    /// `cmmd sim ctl --socket PATH WORDS...`.
    Ctl {
        /// Socket path.
        socket: PathBuf,
        /// The control command.
        words: Vec<String>,
    },
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the daemon (the default).
    Run(ConfigFlags),
    /// Validate and print the effective configuration.
    CheckConfig(ConfigFlags),
    /// Run one CLI command against a running daemon.
    Ctl(CtlArgs),
    /// Hash a password read from stdin (for `cli.users`).
    HashPassword,
    /// Print the Kubernetes manifests.
    Manifests(ManifestArgs),
    /// A standalone software cdx.
    Sim(SimCommand),
    /// Print the version.
    Version,
    /// Print usage.
    Help,
}

/// A command-line error (printed as one line, exit code 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Usage text.
pub const USAGE: &str = "\
usage: cmmd [run] [--config PATH] [--backend cdx|sim] [--max-connections N] [--ports IF,IF]
            [--cli-listen ADDR] [--metrics-listen ADDR] [--log FILTER] [--log-format text|json]
            [--fastforward-file PATH] [--flush-on-exit] [--cdx-abi auto|lsdk|ask]
            [--sim-socket PATH] [--sim-… VALUE (as sim serve)]
       cmmd check-config [same options]
       cmmd ctl [--addr HOST:PORT] [--user USER] [--password-file FILE] [--timeout S] COMMAND...
       cmmd -f FASTFORWARD_FILE -n MAX_CONNECTIONS  (the vendor's cmm command line)
       cmmd -c COMMAND...            (as cmmd ctl COMMAND...)
       cmmd hash-password            (reads the password from stdin)
       cmmd manifests [--namespace NS] [--image IMAGE] [--profile PROFILE] [--max-connections N]
       cmmd sim serve --socket PATH [--config PATH] [--sim-interfaces IF,IF] [--sim-capacity N]
                      [--sim-abi lsdk|ask] [--sim-unwritten garbage|zeros] [--sim-hz N]
                      [--sim-ipv6-activity build|aging-timer|refreshed] [--sim-hw-latency D]
       cmmd sim ctl --socket PATH show | activate all | activate SRC DST SPORT DPORT | fault ...
       cmmd --version | -v | --help | -h

Every option can also be set in the configuration file or with CMM_* variables (README).";

struct Words {
    words: Vec<String>,
    pos: usize,
}

impl Words {
    fn next(&mut self) -> Option<String> {
        let w = self.words.get(self.pos).cloned();
        self.pos += 1;
        w
    }

    fn value(&mut self, flag: &str) -> Result<String, ArgError> {
        self.next().ok_or_else(|| ArgError(format!("option {flag} needs a value")))
    }
}

/// Split `--flag=value` into two words.
fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for a in args {
        if rest {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a);
        } else if a.starts_with("--") && a.contains('=') {
            let (f, v) = a.split_once('=').unwrap_or((&a, ""));
            out.push(f.to_string());
            out.push(v.to_string());
        } else {
            out.push(a);
        }
    }
    out
}

fn config_flag(flags: &mut ConfigFlags, flag: &str, w: &mut Words) -> Result<bool, ArgError> {
    let o = &mut flags.overrides;
    let slot = match flag {
        "--config" => &mut o.config,
        "--fastforward-file" | "-f" => &mut o.fastforward_file,
        "-n" => {
            let value = w.value(flag)?;
            if !value.parse::<u64>().is_ok_and(|n| n > 0) {
                return Err(ArgError(format!(
                    "-n {value:?}: expected a positive number of connections"
                )));
            }
            o.max_connections = Some(value);
            return Ok(true);
        }
        "--backend" => &mut o.backend,
        "--max-connections" => &mut o.max_connections,
        "--ports" => &mut o.ports,
        "--cli-listen" => &mut o.cli_listen,
        "--metrics-listen" => &mut o.metrics_listen,
        "--log" => &mut o.log,
        "--log-format" => &mut o.log_format,
        "--cdx-abi" => &mut o.cdx_abi,
        "--sim-capacity" => &mut o.sim_capacity,
        "--sim-abi" => &mut o.sim_abi,
        "--sim-unwritten" => &mut o.sim_unwritten,
        "--sim-interfaces" => &mut o.sim_interfaces,
        "--sim-ipv6-activity" => &mut o.sim_ipv6_activity,
        "--sim-hz" => &mut o.sim_hz,
        "--sim-hw-latency" => &mut o.sim_hw_latency,
        "--sim-socket" => {
            flags.sim_socket = Some(w.value(flag)?.into());
            return Ok(true);
        }
        "--flush-on-exit" => {
            o.flush_on_exit = Some("true".into());
            return Ok(true);
        }
        _ => return Ok(false),
    };
    *slot = Some(w.value(flag)?);
    Ok(true)
}

fn config_flags(w: &mut Words) -> Result<ConfigFlags, ArgError> {
    let mut flags = ConfigFlags::default();
    while let Some(word) = w.next() {
        if !config_flag(&mut flags, &word, w)? {
            return Err(ArgError(format!("unknown option {word:?} (see cmmd --help)")));
        }
    }
    Ok(flags)
}

/// The daemon's flags, or the vendor's `-c COMMAND…` (what follows `-c` is the command).
fn run_or_client(w: &mut Words) -> Result<Command, ArgError> {
    let mut flags = ConfigFlags::default();
    while let Some(word) = w.next() {
        if word == "-c" {
            let command: Vec<String> = w.words.get(w.pos..).unwrap_or_default().to_vec();
            if command.is_empty() {
                return Err(ArgError(
                    "option -c needs a command, e.g. `cmmd -c show connections`".into(),
                ));
            }
            return Ok(Command::Ctl(CtlArgs { command, ..CtlArgs::default() }));
        }
        if !config_flag(&mut flags, &word, w)? {
            return Err(ArgError(format!("unknown option {word:?} (see cmmd --help)")));
        }
    }
    Ok(Command::Run(flags))
}

/// Parse `argv` without the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, ArgError> {
    let mut w = Words { words: normalize(args), pos: 0 };
    let Some(first) = w.words.first().cloned() else {
        return Ok(Command::Run(ConfigFlags::default()));
    };
    match first.as_str() {
        "--version" | "-V" | "-v" | "version" => Ok(Command::Version),
        "--help" | "-h" | "help" => Ok(Command::Help),
        "run" => {
            w.pos = 1;
            config_flags(&mut w).map(Command::Run)
        }
        "check-config" => {
            w.pos = 1;
            config_flags(&mut w).map(Command::CheckConfig)
        }
        "hash-password" => {
            if w.words.len() > 1 {
                return Err(ArgError(
                    "hash-password takes no arguments: it reads the password from stdin".into(),
                ));
            }
            Ok(Command::HashPassword)
        }
        "ctl" => {
            w.pos = 1;
            let mut ctl = CtlArgs::default();
            while let Some(word) = w.next() {
                match word.as_str() {
                    "--addr" => ctl.addr = Some(w.value("--addr")?),
                    "--user" => ctl.user = Some(w.value("--user")?),
                    "--password-file" => {
                        ctl.password_file = Some(w.value("--password-file")?.into())
                    }
                    "--timeout" => {
                        let v = w.value("--timeout")?;
                        ctl.timeout = Some(v.parse().map_err(|_| {
                            ArgError(format!("--timeout {v:?}: expected a number of seconds"))
                        })?);
                    }
                    "--" => {
                        ctl.command.extend(w.words[w.pos..].iter().cloned());
                        break;
                    }
                    _ => {
                        ctl.command.push(word);
                        ctl.command.extend(w.words[w.pos..].iter().cloned());
                        break;
                    }
                }
            }
            if ctl.command.is_empty() {
                return Err(ArgError(
                    "ctl needs a command, e.g. `cmmd ctl show connections`".into(),
                ));
            }
            Ok(Command::Ctl(ctl))
        }
        "manifests" => {
            w.pos = 1;
            let mut m = ManifestArgs::default();
            while let Some(word) = w.next() {
                match word.as_str() {
                    "--namespace" | "-n" => m.namespace = Some(w.value(&word)?),
                    "--image" => m.image = Some(w.value(&word)?),
                    "--profile" => m.profile = Some(w.value(&word)?),
                    "--max-connections" => m.max_connections = Some(w.value(&word)?),
                    _ => return Err(ArgError(format!("unknown option {word:?} for manifests"))),
                }
            }
            Ok(Command::Manifests(m))
        }
        "sim" => {
            w.pos = 1;
            let verb = w.next().unwrap_or_default();
            let mut socket = None;
            let mut flags = ConfigFlags::default();
            let mut words = Vec::new();
            while let Some(word) = w.next() {
                // The older names of two `[sim]` flags.
                let word = match word.as_str() {
                    "--ports" if verb == "serve" => "--sim-interfaces".to_string(),
                    "--capacity" if verb == "serve" => "--sim-capacity".to_string(),
                    _ => word,
                };
                match word.as_str() {
                    "--socket" => socket = Some(PathBuf::from(w.value("--socket")?)),
                    "--config" | "--cdx-abi" if verb == "serve" => {
                        config_flag(&mut flags, &word, &mut w)?;
                    }
                    flag if verb == "serve"
                        && flag.starts_with("--sim-")
                        && flag != "--sim-socket" =>
                    {
                        if !config_flag(&mut flags, flag, &mut w)? {
                            return Err(ArgError(format!("unknown option {word:?} for sim serve")));
                        }
                    }
                    _ if verb == "ctl" => words.push(word),
                    _ => return Err(ArgError(format!("unknown option {word:?} for sim {verb}"))),
                }
            }
            let socket = socket.ok_or_else(|| ArgError("sim needs --socket PATH".into()))?;
            match verb.as_str() {
                "serve" => Ok(Command::Sim(SimCommand::Serve { socket, flags: Box::new(flags) })),
                "ctl" if !words.is_empty() => Ok(Command::Sim(SimCommand::Ctl { socket, words })),
                "ctl" => Err(ArgError("sim ctl needs a command (show, activate, fault)".into())),
                other => Err(ArgError(format!("unknown sim command {other:?}: serve or ctl"))),
            }
        }
        _ if first.starts_with('-') => run_or_client(&mut w),
        other => Err(ArgError(format!("unknown command {other:?} (see cmmd --help)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ArgError> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn run_is_the_default() {
        assert_eq!(p(""), Ok(Command::Run(ConfigFlags::default())));
        let Ok(Command::Run(f)) = p("--backend sim --ports=eth0,eth1 --flush-on-exit") else {
            panic!()
        };
        assert_eq!(f.overrides.backend.as_deref(), Some("sim"));
        assert_eq!(f.overrides.ports.as_deref(), Some("eth0,eth1"));
        assert_eq!(f.overrides.flush_on_exit.as_deref(), Some("true"));
    }

    #[test]
    fn ctl_takes_the_rest_as_the_command() {
        let Ok(Command::Ctl(c)) = p("ctl --addr 127.0.0.1:2103 show connections | include tcp")
        else {
            panic!()
        };
        assert_eq!(c.addr.as_deref(), Some("127.0.0.1:2103"));
        assert_eq!(c.command, ["show", "connections", "|", "include", "tcp"]);
        assert!(p("ctl").is_err());
    }

    #[test]
    fn the_vendor_command_line_works() {
        let Ok(Command::Run(f)) = p("-f /etc/config/fastforward -n 131072") else { panic!() };
        assert_eq!(f.overrides.fastforward_file.as_deref(), Some("/etc/config/fastforward"));
        assert_eq!(f.overrides.max_connections.as_deref(), Some("131072"));
        assert_eq!(f.overrides.config, None, "-f is the vendor file, not the TOML one");
        let Ok(Command::Ctl(c)) = p("-c show connections") else { panic!() };
        assert_eq!(c.command, ["show", "connections"]);
        let Ok(Command::Ctl(c)) = parse(["-c".to_owned(), "show connections".to_owned()]) else {
            panic!()
        };
        assert_eq!(c.command, ["show connections"]);
        let Ok(Command::Ctl(c)) = p("-f /x -c set timeout tcp 100") else { panic!() };
        assert_eq!(c.command, ["set", "timeout", "tcp", "100"]);
        assert_eq!(p("-v"), Ok(Command::Version));
        assert_eq!(p("-h"), Ok(Command::Help));
        assert_eq!(
            p("-n lots"),
            Err(ArgError("-n \"lots\": expected a positive number of connections".into()))
        );
        assert_eq!(p("-n 0").unwrap_err().0, "-n \"0\": expected a positive number of connections");
        assert_eq!(
            p("-c").unwrap_err().0,
            "option -c needs a command, e.g. `cmmd -c show connections`"
        );
        assert_eq!(p("-x").unwrap_err().0, "unknown option \"-x\" (see cmmd --help)");
        assert_eq!(p("-f").unwrap_err().0, "option -f needs a value");
    }

    #[test]
    fn sim_serve_takes_the_sim_keys_as_flags() {
        let Ok(Command::Sim(SimCommand::Serve { socket, flags })) = p(
            "sim serve --socket /s --ports r0,r1 --capacity 9 --sim-abi ask --sim-unwritten zeros",
        ) else {
            panic!()
        };
        assert_eq!(socket, PathBuf::from("/s"));
        let o = &flags.overrides;
        assert_eq!(o.sim_interfaces.as_deref(), Some("r0,r1"), "--ports: the FMan ports");
        assert_eq!(o.sim_capacity.as_deref(), Some("9"));
        assert_eq!(
            (o.sim_abi.as_deref(), o.sim_unwritten.as_deref()),
            (Some("ask"), Some("zeros"))
        );
        assert_eq!(
            p("sim serve --socket /s --backend sim").unwrap_err().0,
            "unknown option \"--backend\" for sim serve"
        );
        let Ok(Command::Run(run)) = p("--cdx-abi ask --sim-hz 250") else { panic!() };
        assert_eq!(run.overrides.cdx_abi.as_deref(), Some("ask"));
        assert_eq!(run.overrides.sim_hz.as_deref(), Some("250"));
    }

    #[test]
    fn errors_are_one_line() {
        for bad in [
            "--bogus",
            "frobnicate",
            "--config",
            "ctl --timeout x show",
            "sim serve",
            "sim ctl --socket /x",
        ] {
            let e = p(bad).unwrap_err();
            assert!(!e.0.contains('\n'), "{e}");
        }
    }
}
