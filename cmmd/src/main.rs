//! `cmmd`: see `cmmd::cmd::cmdline` (usage: `cmmd --help`).

fn main() -> std::process::ExitCode {
    cmmd::cmd::cmdline::main()
}
