//! `cmmd`: see `cmmd::cmdline` (usage: `cmmd --help`).

fn main() -> std::process::ExitCode {
    cmmd::cmdline::main()
}
