//! Output filters after `|`, with libcli 1.10's names, arguments and matching.
//!
//! Contract:
//! - `include TEXT` / `exclude TEXT`: lines that contain / do not contain TEXT (a plain,
//!   case-sensitive substring, as libcli's `strstr`; `| include [ASSURED]` means the brackets).
//! - `begin TEXT`: from the first line containing TEXT on. `between START END`: from a line
//!   containing START through the next line containing END (inclusive), then again at the next
//!   START.
//! - `grep [-ive] REGEX` / `egrep [-ive] REGEX`: POSIX basic / extended regular expressions,
//!   searched anywhere in the line; `-i` ignores case, `-v` inverts; the last flag word wins, as
//!   in libcli. The patterns are translated to the `regex` crate (`posix`), with size limits.
//! - `count`: nothing but the number of non-blank lines that reach it, printed after the reply.
//! - TEXT and REGEX are the rest of the line's words joined by one blank (quotes keep blanks).
//! - Filter names resolve like command words (unique prefixes: `inc`, `beg`, `bet`, `eg`, …).
//!   Stages apply in order; a line a stage drops is not seen by the stages after it.
//!
//! Filters travel with the invocation; the session applies them to every reply line through a
//! `FilterRun`, so the daemon never sees them.

use regex::{Regex, RegexBuilder};

use crate::grammar::{Choice, ParseError, resolve};
use crate::posix;

/// Compiled-program size limit for one filter regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The filters, their libcli help texts, in libcli's order.
pub(crate) const FILTERS: &[(&str, &str)] = &[
    ("begin", "Begin with lines that match"),
    ("between", "Between lines that match"),
    ("count", "Count of lines"),
    ("exclude", "Exclude lines that match"),
    ("include", "Include lines that match"),
    ("grep", "Include lines that match regex (options: -v, -i, -e)"),
    ("egrep", "Include lines that match extended regex"),
];

/// The filter names as choices for word resolution.
pub(crate) fn filter_choices() -> Vec<Choice> {
    FILTERS.iter().map(|(word, _)| Choice { word, vendor: true }).collect()
}

/// One stage of an output filter.
#[derive(Debug, Clone)]
pub enum FilterStage {
    /// Keep lines that contain the text.
    Include(String),
    /// Drop lines that contain the text.
    Exclude(String),
    /// Drop lines before the first one that contains the text.
    Begin(String),
    /// Keep the lines from one containing `start` through the next one containing `end`.
    Between {
        /// Where printing starts.
        start: String,
        /// Where it stops (the line is printed).
        end: String,
    },
    /// Keep lines that match the regular expression (drop them if `invert`).
    Grep {
        /// The pattern as typed.
        pattern: String,
        /// The compiled translation.
        regex: Regex,
        /// `-v`.
        invert: bool,
    },
    /// Print only the number of non-blank lines that reach this stage.
    Count,
}

/// The filters of one command line, in order.
#[derive(Debug, Clone)]
pub struct OutputFilter {
    stages: Vec<FilterStage>,
}

/// A filter stage whose words were checked but not built yet.
struct Validated<'a> {
    name: &'static str,
    flags: Option<&'a str>,
    rest: &'a [String],
}

impl OutputFilter {
    /// The stages in the order they apply.
    pub fn stages(&self) -> &[FilterStage] {
        &self.stages
    }

    /// Parse the word lists after each `|` (`None` when there is none). Like libcli, every
    /// stage is checked (name, arguments) before any is built (count's arguments, patterns).
    pub(crate) fn parse(segments: &[&[String]]) -> Result<Option<Self>, ParseError> {
        if segments.is_empty() {
            return Ok(None);
        }
        let choices = filter_choices();
        let mut checked = Vec::with_capacity(segments.len());
        for segment in segments {
            let Some((typed, rest)) = segment.split_first() else {
                return Err(ParseError::EmptyCommand);
            };
            let name = resolve(typed, &choices)
                .ok_or_else(|| ParseError::InvalidCommand(typed.clone()))?;
            checked.push(validate(name, rest)?);
        }
        let stages = checked.into_iter().map(build).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self { stages }))
    }
}

fn missing(argument: &'static str, command: &'static str) -> ParseError {
    ParseError::MissingFilterArgument { argument, command }
}

/// libcli's argument checks of one filter stage.
fn validate<'a>(name: &'static str, words: &'a [String]) -> Result<Validated<'a>, ParseError> {
    let mut flags = None;
    let mut rest = words;
    match name {
        "grep" | "egrep" => {
            while let Some((word, tail)) = rest.split_first() {
                if !word.starts_with('-') {
                    break;
                }
                let valid =
                    word.len() > 1 && word.bytes().skip(1).all(|b| matches!(b, b'i' | b'v' | b'e'));
                if !valid {
                    return Err(ParseError::SearchFlags(word.clone()));
                }
                flags = Some(word.as_str());
                rest = tail;
            }
            if rest.is_empty() {
                return Err(missing("search_pattern", name));
            }
        }
        "include" | "exclude" if rest.is_empty() => return Err(missing("search_pattern", name)),
        "begin" | "between" if rest.is_empty() => return Err(missing("range_start", name)),
        "between" if rest.len() == 1 => return Err(missing("range_end", name)),
        _ => {}
    }
    Ok(Validated { name, flags, rest })
}

/// Build a checked stage (libcli's filter initialisation).
fn build(stage: Validated<'_>) -> Result<FilterStage, ParseError> {
    let text = stage.rest.join(" ");
    Ok(match stage.name {
        "count" if !stage.rest.is_empty() => return Err(ParseError::CountTakesNoArguments),
        "count" => FilterStage::Count,
        "include" => FilterStage::Include(text),
        "exclude" => FilterStage::Exclude(text),
        "begin" => FilterStage::Begin(text),
        "between" => {
            let (start, end) = stage.rest.split_first().unwrap_or((&text, &[]));
            FilterStage::Between { start: start.clone(), end: end.join(" ") }
        }
        name => {
            let flags = stage.flags.unwrap_or_default();
            let invalid = || ParseError::InvalidPattern(text.clone());
            let translated = posix::translate(&text, name == "egrep").ok_or_else(invalid)?;
            let regex = RegexBuilder::new(&translated)
                .case_insensitive(flags.contains('i'))
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|_| invalid())?;
            FilterStage::Grep { pattern: text, regex, invert: flags.contains('v') }
        }
    })
}

/// Where one stage of a running filter is.
#[derive(Debug, Clone, Copy, Default)]
struct StageState {
    /// `begin`/`between`: printing.
    open: bool,
    /// `count`: lines counted.
    counted: u64,
}

/// A filter applied to the reply of one invocation.
#[derive(Debug, Clone)]
pub(crate) struct FilterRun {
    filter: OutputFilter,
    states: Vec<StageState>,
}

impl FilterRun {
    pub(crate) fn new(filter: OutputFilter) -> Self {
        let states = vec![StageState::default(); filter.stages.len()];
        Self { filter, states }
    }

    /// True if `line` is printed.
    pub(crate) fn pass(&mut self, line: &str) -> bool {
        for (stage, state) in self.filter.stages.iter().zip(self.states.iter_mut()) {
            let keep = match stage {
                FilterStage::Include(text) => line.contains(text.as_str()),
                FilterStage::Exclude(text) => !line.contains(text.as_str()),
                FilterStage::Begin(text) => {
                    state.open = state.open || line.contains(text.as_str());
                    state.open
                }
                FilterStage::Between { start, end } => {
                    state.open = state.open || line.contains(start.as_str());
                    let keep = state.open;
                    if keep && line.contains(end.as_str()) {
                        state.open = false;
                    }
                    keep
                }
                FilterStage::Grep { regex, invert, .. } => regex.is_match(line) != *invert,
                FilterStage::Count => {
                    if !line.trim_start_matches(|ch: char| ch.is_ascii_whitespace()).is_empty() {
                        state.counted += 1;
                    }
                    false
                }
            };
            if !keep {
                return false;
            }
        }
        true
    }

    /// The counts to print after the reply, one per `count` stage, in order.
    pub(crate) fn counts(&self) -> Vec<u64> {
        self.filter
            .stages
            .iter()
            .zip(&self.states)
            .filter(|(stage, _)| matches!(stage, FilterStage::Count))
            .map(|(_, state)| state.counted)
            .collect()
    }
}
