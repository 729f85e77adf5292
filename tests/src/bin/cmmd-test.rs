//! The daemon under test: the same entry point as the shipped `cmmd` binary, built as a target
//! of this package so that its integration tests can name it (`CARGO_BIN_EXE_cmmd-test`).

fn main() -> std::process::ExitCode {
    cmmd::cmd::cmdline::main()
}
