//! Output filters applied line by line, with libcli's semantics (checked against libcli 1.10.7).

use crate::filter::{FilterRun, OutputFilter};
use crate::grammar::ParseError;
use crate::lexer::{lex, split_pipeline};
use crate::posix::translate;

/// The filter of `line` (text after the first `|`).
fn parse(line: &str) -> Result<OutputFilter, ParseError> {
    let words = lex(line).words;
    let stages = split_pipeline(&words);
    OutputFilter::parse(stages.get(1..).unwrap_or_default()).map(|filter| filter.unwrap())
}

const LINES: &[&str] = &[
    "IPv4 Connections:",
    "tcp 6 ESTABLISHED src=10.0.0.1 [ASSURED]",
    "udp 17 src=10.0.0.2",
    "",
    "  tcp 6 TIME_WAIT src=10.0.0.3",
    "Total: 3",
];

fn run(line: &str) -> (Vec<&'static str>, Vec<u64>) {
    let mut run = FilterRun::new(parse(line).unwrap());
    let kept = LINES.iter().copied().filter(|line| run.pass(line)).collect();
    (kept, run.counts())
}

fn kept(line: &str) -> Vec<&'static str> {
    run(line).0
}

#[test]
fn include_and_exclude_match_plain_case_sensitive_substrings() {
    assert_eq!(kept("x | include [ASSURED]"), ["tcp 6 ESTABLISHED src=10.0.0.1 [ASSURED]"]);
    assert_eq!(kept("x | include ^tcp"), Vec::<&str>::new(), "no regex: ^ is text");
    assert_eq!(kept("x | include established"), Vec::<&str>::new(), "case counts");
    assert_eq!(
        kept("x | exclude tcp"),
        ["IPv4 Connections:", "udp 17 src=10.0.0.2", "", "Total: 3"]
    );
    // The rest of the line is the text, words joined by one blank; quotes keep blanks.
    assert_eq!(kept("x | include 6   ESTABLISHED"), ["tcp 6 ESTABLISHED src=10.0.0.1 [ASSURED]"]);
    assert_eq!(kept(r#"x | include "  tcp""#), ["  tcp 6 TIME_WAIT src=10.0.0.3"]);
}

#[test]
fn begin_and_between_open_at_a_substring() {
    assert_eq!(
        kept("x | begin udp"),
        ["udp 17 src=10.0.0.2", "", "  tcp 6 TIME_WAIT src=10.0.0.3", "Total: 3"]
    );
    assert_eq!(kept("x | begin nothing"), Vec::<&str>::new());
    assert_eq!(
        kept("x | between udp TIME_WAIT"),
        ["udp 17 src=10.0.0.2", "", "  tcp 6 TIME_WAIT src=10.0.0.3"]
    );
    // A line with both opens and closes at once; the next start opens again.
    assert_eq!(
        kept("x | between tcp src"),
        ["tcp 6 ESTABLISHED src=10.0.0.1 [ASSURED]", "  tcp 6 TIME_WAIT src=10.0.0.3"]
    );
    assert_eq!(kept("x | between Total nothing"), ["Total: 3"]);
}

#[test]
fn grep_and_egrep_are_posix_regexes_with_flags() {
    assert_eq!(kept("x | grep ^tcp"), ["tcp 6 ESTABLISHED src=10.0.0.1 [ASSURED]"]);
    assert_eq!(kept("x | grep -i established"), ["tcp 6 ESTABLISHED src=10.0.0.1 [ASSURED]"]);
    assert_eq!(kept("x | grep -v src"), ["IPv4 Connections:", "", "Total: 3"]);
    assert_eq!(
        kept("x | grep -iv TCP"),
        ["IPv4 Connections:", "udp 17 src=10.0.0.2", "", "Total: 3"]
    );
    // libcli keeps the last flag word only.
    assert_eq!(kept("x | grep -v -i TOTAL"), ["Total: 3"]);
    // Basic syntax: `|` and `+` are text, `\|` alternates; extended syntax: the reverse.
    assert_eq!(kept(r#"x | grep "tcp|udp""#), Vec::<&str>::new());
    assert_eq!(kept(r#"x | grep "udp\\|Total""#), ["udp 17 src=10.0.0.2", "Total: 3"]);
    assert_eq!(kept(r#"x | egrep "^(udp|Total)""#), ["udp 17 src=10.0.0.2", "Total: 3"]);
    assert_eq!(
        kept("x | egrep 10\\\\.0\\\\.0\\\\.[23]$"),
        ["udp 17 src=10.0.0.2", "  tcp 6 TIME_WAIT src=10.0.0.3"]
    );
    assert_eq!(kept("x | grep [[:digit:]]:"), Vec::<&str>::new());
    assert_eq!(
        kept(r"x | grep [[:upper:]]\\{4\\}"),
        ["tcp 6 ESTABLISHED src=10.0.0.1 [ASSURED]", "  tcp 6 TIME_WAIT src=10.0.0.3"]
    );
}

#[test]
fn count_counts_non_blank_lines_that_reach_it() {
    assert_eq!(run("x | count"), (vec![], vec![5]), "the blank line is not counted");
    assert_eq!(run("x | include src= | exclude TIME_WAIT | count"), (vec![], vec![2]));
    assert_eq!(run("x | include nothing | count"), (vec![], vec![0]));
    // After count nothing reaches the later stages; each count prints its own number.
    assert_eq!(run("x | count | include tcp"), (vec![], vec![5]));
    assert_eq!(run("x | count | count"), (vec![], vec![5, 0]));
}

#[test]
fn filter_names_resolve_like_libcli_words() {
    assert_eq!(kept("x | inc udp"), ["udp 17 src=10.0.0.2"]);
    assert_eq!(kept("x | INCLUDE udp"), ["udp 17 src=10.0.0.2"]);
    assert_eq!(kept("x | eg ^udp"), ["udp 17 src=10.0.0.2"]);
    assert_eq!(kept("x | beg udp").len(), 4);
    assert_eq!(kept("x | bet udp 17"), ["udp 17 src=10.0.0.2"]);
    assert_eq!(run("x | c").1, vec![5]);
}

#[test]
fn filter_errors_are_libcli_texts() {
    let error = |line: &str| parse(line).unwrap_err().to_string();
    assert_eq!(error("x | be udp"), "Invalid command \"be\"");
    assert_eq!(error("x | e udp"), "Invalid command \"e\"");
    assert_eq!(error("x | foo"), "Invalid command \"foo\"");
    assert_eq!(error("x |"), "Empty command given");
    assert_eq!(error("x | | count"), "Empty command given");
    assert_eq!(error("x | count x"), "Count filter does not take arguments");
    assert_eq!(
        error("x | include"),
        "Incomplete command, missing required argument 'search_pattern' for command 'include'"
    );
    assert_eq!(
        error("x | exc"),
        "Incomplete command, missing required argument 'search_pattern' for command 'exclude'"
    );
    assert_eq!(
        error("x | begin"),
        "Incomplete command, missing required argument 'range_start' for command 'begin'"
    );
    assert_eq!(
        error("x | between a"),
        "Incomplete command, missing required argument 'range_end' for command 'between'"
    );
    assert_eq!(
        error("x | grep -v"),
        "Incomplete command, missing required argument 'search_pattern' for command 'grep'"
    );
    assert_eq!(
        error("x | grep -x y"),
        "Problem parsing command setting search_flags with value -x"
    );
    assert_eq!(error("x | egrep ("), "Invalid pattern \"(\"");
    assert_eq!(error(r"x | grep \\(a\\)\\1"), "Invalid pattern \"\\(a\\)\\1\"");
    // Checks of every stage come before the build of any (libcli validates, then initialises).
    assert_eq!(error("x | egrep ( | foo"), "Invalid command \"foo\"");
    assert_eq!(
        error("x | count 1 | include"),
        "Incomplete command, missing required argument 'search_pattern' for command 'include'"
    );
    // In basic syntax a lone `(` is text.
    assert!(parse("x | grep (").is_ok());
}

#[test]
fn posix_patterns_translate_to_equivalent_regexes() {
    let t = |pattern: &str, extended: bool| translate(pattern, extended);
    assert_eq!(t("a.b*", false).as_deref(), Some("a.b*"));
    assert_eq!(t("*a", false).as_deref(), Some(r"\*a"));
    assert_eq!(t(r"\(ab\)\{2\}", false).as_deref(), Some("(ab){2}"));
    assert_eq!(t("(a|b)+?", false).as_deref(), Some(r"\(a\|b\)\+\?"));
    assert_eq!(t("(a|b)+", true).as_deref(), Some("(a|b)+"));
    assert_eq!(t("a^b$c$", false).as_deref(), Some(r"a\^b\$c$"));
    assert_eq!(t(r"[]a\-]", false).as_deref(), Some(r"[\]a\\\-]"));
    assert_eq!(t("[^[:space:]x-z]", true).as_deref(), Some("[^[:space:]x-z]"));
    assert_eq!(t(r"\<word\>\d", true).as_deref(), Some(r"\b{start}word\b{end}d"));
    assert_eq!(t("[[=a=]]", true), None);
    assert_eq!(t("[abc", true), None);
    assert_eq!(t(r"a\", true), None);
}
