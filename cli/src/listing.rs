//! The session's own listings in libcli's layouts: `help`, `history`, the `?` help, the TAB
//! choices, and the line that answers a vendor command cmmd does not implement.

use crate::command::{COMMANDS, CommandSpec};
use crate::complete::{CR_LABEL, Candidate, help_lines};

/// `help`: `Commands available:`, then every command the session may run, `  %-20s %s` with
/// its full name and help, in table order (libcli's `cli_show_help`).
pub(crate) fn commands(visible: impl Fn(&CommandSpec) -> bool) -> Vec<String> {
    let mut lines = vec!["Commands available:".to_owned()];
    for spec in COMMANDS.iter().filter(|spec| visible(spec)) {
        lines.push(format!("  {:<20} {}", spec.words.join(" "), spec.help));
    }
    lines
}

/// `history`: `Command history:`, then `%3d. %s` numbered from 0 (libcli's `cli_history`).
pub(crate) fn history<'a>(entries: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut lines = vec!["Command history:".to_owned()];
    lines.extend(entries.enumerate().map(|(index, line)| format!("{index:3}. {line}")));
    lines
}

/// The `?` listing: each candidate as libcli lays out a help line, then `  <cr>` when every
/// candidate is optional.
pub(crate) fn candidates(candidates: &[Candidate]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cr = false;
    for candidate in candidates {
        if candidate.label == CR_LABEL {
            cr = true;
            continue;
        }
        lines.extend(help_lines(&format!("  {}", candidate.label), &candidate.help));
    }
    let all_optional =
        candidates.iter().filter(|c| c.label != CR_LABEL).all(Candidate::is_optional);
    if cr && all_optional {
        lines.push(format!("  {CR_LABEL}"));
    }
    lines
}

/// TAB's listing: four choices a row, separated by one blank (libcli's double TAB).
pub(crate) fn rows(labels: &[String]) -> Vec<String> {
    labels.chunks(4).map(|row| row.join(" ")).collect()
}

/// The answer to a vendor command cmmd knows but does not implement.
pub(crate) fn not_supported(spec: &CommandSpec) -> String {
    format!("% \"{}\" is not supported by cmmd", spec.words.join(" "))
}
