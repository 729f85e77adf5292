//! Output filters applied line by line.

use crate::filter::{FilterRun, OutputFilter};
use crate::grammar::Token;
use crate::grammar::lex;

/// The filter of `line` (text after the first `|`).
fn filter(line: &str) -> OutputFilter {
    let tokens = lex(line).tokens;
    let segments: Vec<Vec<String>> = tokens
        .split(|token| *token == Token::Pipe)
        .skip(1)
        .map(|segment| {
            segment
                .iter()
                .map(|token| match token {
                    Token::Word(word) => word.clone(),
                    Token::Pipe => unreachable!(),
                })
                .collect()
        })
        .collect();
    OutputFilter::parse(&segments).unwrap().unwrap()
}

const LINES: &[&str] = &[
    "IPv4 Connections:",
    "tcp 6 ESTABLISHED src=10.0.0.1",
    "udp 17 src=10.0.0.2",
    "tcp 6 TIME_WAIT src=10.0.0.3",
    "Total: 3",
];

fn run(line: &str) -> (Vec<&'static str>, Option<u64>) {
    let mut run = FilterRun::new(filter(line));
    let kept = LINES.iter().copied().filter(|line| run.pass(line)).collect();
    (kept, run.count())
}

#[test]
fn include_keeps_matching_lines() {
    assert_eq!(
        run("x | include ^tcp"),
        (vec!["tcp 6 ESTABLISHED src=10.0.0.1", "tcp 6 TIME_WAIT src=10.0.0.3"], None)
    );
}

#[test]
fn exclude_drops_matching_lines() {
    assert_eq!(
        run("x | exclude tcp"),
        (vec!["IPv4 Connections:", "udp 17 src=10.0.0.2", "Total: 3"], None)
    );
}

#[test]
fn begin_starts_at_the_first_match() {
    assert_eq!(
        run("x | begin udp"),
        (vec!["udp 17 src=10.0.0.2", "tcp 6 TIME_WAIT src=10.0.0.3", "Total: 3"], None)
    );
    assert_eq!(run("x | begin nothing"), (vec![], None));
}

#[test]
fn count_counts_what_reaches_it() {
    assert_eq!(run("x | count"), (vec![], Some(5)));
    assert_eq!(run("x | include src= | exclude TIME_WAIT | count"), (vec![], Some(2)));
    assert_eq!(run("x | include nothing | count"), (vec![], Some(0)));
}

#[test]
fn quoted_patterns_keep_their_blanks_and_case_is_significant() {
    assert_eq!(run(r#"x | include "6 E""#), (vec!["tcp 6 ESTABLISHED src=10.0.0.1"], None));
    assert_eq!(run("x | include established"), (vec![], None));
    assert_eq!(run("x | include (?i)established"), (vec!["tcp 6 ESTABLISHED src=10.0.0.1"], None));
}
