//! The `cmmd` command line: parse it, load the configuration, install logging, run.
//! Exit codes: 0 after an orderly shutdown, 1 when start-up fails, 2 for bad configuration.
//!
//! `main.rs` is one call to [`main`]; the integration tests build the same entry point as their
//! own binary, so they run exactly the daemon that ships.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use crate::cmd::args::{self, Command, ConfigFlags, SimCommand};
use crate::cmd::{ctl, manifests};
use crate::daemon;
use crate::edge::telemetry::{LogFormat, Telemetry};

fn load(flags: &ConfigFlags) -> Result<config::Loaded, ExitCode> {
    let options = config::LoadOptions::new(&config::process_env, flags.overrides.clone());
    let checked = config::Config::load(&options)
        .and_then(|loaded| daemon::setup::conntrack_dialect(&loaded).map(|_| loaded));
    checked.map_err(|e| {
        eprintln!("cmmd: {e}");
        ExitCode::from(2)
    })
}

fn run(flags: &ConfigFlags) -> ExitCode {
    // Before any thread exists, so that every thread inherits the mask and the loop alone
    // receives SIGTERM, SIGINT and SIGHUP (through a signalfd).
    let signals = match daemon::block_signals() {
        Ok(set) => set,
        Err(e) => {
            eprintln!("cmmd: cannot block signals: {e}");
            return ExitCode::from(1);
        }
    };
    let loaded = match load(flags) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let format = match loaded.config.log.format {
        config::LogFormat::Text => LogFormat::Text,
        config::LogFormat::Json => LogFormat::Json,
    };
    let telemetry = match Telemetry::init(&loaded.config.log.level, format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cmmd: log.level: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "cmmd starting");
    let options = daemon::RunOptions {
        overrides: flags.overrides.clone(),
        telemetry: Some(telemetry),
        signals,
        sim_socket: flags.sim_socket.clone(),
    };
    let result = daemon::run(loaded, options);
    match result {
        Ok(telemetry) => {
            if let Some(t) = telemetry {
                t.flush(Duration::from_secs(1));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cmmd: {e}");
            ExitCode::from(1)
        }
    }
}

/// Run the command line of this process.
pub fn main() -> ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cmmd: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Run(flags) => run(&flags),
        Command::CheckConfig(flags) => match load(&flags) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprintln!("cmmd: warning: {w}");
                }
                print!("{}", loaded.render_effective());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Ctl(a) => match ctl::run(&a) {
            Ok(output) => {
                print!("{output}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cmmd ctl: {e}");
                ExitCode::from(1)
            }
        },
        Command::HashPassword => {
            let mut input = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut input) {
                eprintln!("cmmd: cannot read the password from stdin: {e}");
                return ExitCode::from(1);
            }
            let password = input.lines().next().unwrap_or("");
            if password.is_empty() {
                eprintln!("cmmd: empty password on stdin");
                return ExitCode::from(2);
            }
            match cli::hash_password(password) {
                Ok(phc) => {
                    println!("{phc}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cmmd: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Manifests(m) => match manifests::render(&m) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cmmd: {e}");
                ExitCode::from(2)
            }
        },
        Command::Sim(SimCommand::Serve { socket, flags }) => {
            let loaded = match load(&flags) {
                Ok(loaded) => loaded,
                Err(code) => return code,
            };
            let sim = crate::edge::backend::sim_config(&loaded.config);
            let signals = match daemon::block_signals().and_then(|set| {
                nix::sys::signalfd::SignalFd::with_flags(
                    &set,
                    nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
                )
            }) {
                Ok(fd) => fd,
                Err(e) => {
                    eprintln!("cmmd sim: cannot handle signals: {e}");
                    return ExitCode::from(1);
                }
            };
            match crate::cmd::sim_server::serve(&socket, sim, std::os::fd::AsFd::as_fd(&signals)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cmmd sim: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Sim(SimCommand::Ctl { socket, words }) => {
            match crate::cmd::sim_server::control(&socket, &words) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cmmd sim ctl: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Version => {
            println!("{}", crate::edge::control::version_line());
            ExitCode::SUCCESS
        }
        Command::Help => {
            println!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
    }
}
