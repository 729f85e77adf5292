//! Figures the reliability tests measure and report: a process's resident memory, and one
//! greppable report line per test (`RELIABILITY <test> key=value …` on standard error; run the
//! tests with `--nocapture` to see them, `docs/reliability.md` records them).

use std::fmt::Display;
use std::io;

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))?;
    Ok(kib * 1024)
}

/// Collects `key=value` figures of one test and prints them as one line.
#[derive(Debug)]
pub struct Report {
    line: String,
}

impl Report {
    /// A report for `test`.
    pub fn new(test: &str) -> Report {
        Report { line: format!("RELIABILITY {test}") }
    }

    /// Add one figure.
    pub fn add(&mut self, key: &str, value: impl Display) -> &mut Report {
        self.line.push_str(&format!(" {key}={value}"));
        self
    }

    /// The line as printed.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Print it (standard error, so the test harness shows it with `--nocapture`).
    pub fn print(&self) {
        eprintln!("{}", self.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_resident_memory() {
        let rss = rss_bytes(std::process::id()).unwrap();
        assert!(rss > 1 << 20, "a test process holds more than 1 MiB: {rss}");
        assert_eq!(rss % 1024, 0, "reported in KiB");
    }

    #[test]
    fn a_report_is_one_line_of_key_value_figures() {
        let mut report = Report::new("storm");
        report.add("events", 15_000).add("converge_ms", 812);
        assert_eq!(report.line(), "RELIABILITY storm events=15000 converge_ms=812");
    }
}
