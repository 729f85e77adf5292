//! Output filters after `|`: `include REGEX`, `exclude REGEX`, `begin REGEX`, `count`.
//!
//! Contract: filters are parsed with the command line (`OutputFilter::parse`) and travel with
//! the invocation; the session applies them to every reply line through a `FilterRun`, so the
//! daemon never sees them. Stages apply in order; `count` must be last and replaces the output
//! with the number of lines that reached it. Regular expressions are compiled with size limits
//! (a hostile pattern fails to compile instead of eating memory).

use regex::{Regex, RegexBuilder};

use crate::grammar::{FILTERS, ParseError, WordMatch, match_word};

/// Compiled-program size limit for one filter regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One stage of an output filter.
#[derive(Debug, Clone)]
pub enum FilterStage {
    /// Keep lines that match.
    Include(Regex),
    /// Drop lines that match.
    Exclude(Regex),
    /// Drop lines before the first match, keep everything from it on.
    Begin(Regex),
    /// Print only the number of lines that reach this stage.
    Count,
}

impl FilterStage {
    /// The stage as typed (canonical), e.g. `include ^tcp`.
    pub fn describe(&self) -> String {
        match self {
            Self::Include(regex) => format!("include {}", regex.as_str()),
            Self::Exclude(regex) => format!("exclude {}", regex.as_str()),
            Self::Begin(regex) => format!("begin {}", regex.as_str()),
            Self::Count => "count".to_owned(),
        }
    }
}

/// The filters of one command line, in order.
#[derive(Debug, Clone)]
pub struct OutputFilter {
    stages: Vec<FilterStage>,
}

impl OutputFilter {
    /// The stages in the order they apply.
    pub fn stages(&self) -> &[FilterStage] {
        &self.stages
    }

    /// Parse the word lists after each `|` (`None` when there is no filter).
    pub(crate) fn parse(segments: &[Vec<String>]) -> Result<Option<Self>, ParseError> {
        if segments.is_empty() {
            return Ok(None);
        }
        let names: Vec<&'static str> = FILTERS.iter().map(|(name, _)| *name).collect();
        let mut stages = Vec::with_capacity(segments.len());
        for (index, segment) in segments.iter().enumerate() {
            let Some((name, rest)) = segment.split_first() else {
                return Err(ParseError::MissingFilter);
            };
            let name = match match_word(name, &names) {
                WordMatch::Found(found) => found,
                _ => return Err(ParseError::UnknownFilter(name.clone())),
            };
            if name == "count" {
                if !rest.is_empty() || index + 1 != segments.len() {
                    return Err(ParseError::CountNotLast);
                }
                stages.push(FilterStage::Count);
                continue;
            }
            if rest.is_empty() {
                return Err(ParseError::MissingRegex(name));
            }
            let regex = compile(name, &rest.join(" "))?;
            stages.push(match name {
                "include" => FilterStage::Include(regex),
                "exclude" => FilterStage::Exclude(regex),
                _ => FilterStage::Begin(regex),
            });
        }
        Ok(Some(Self { stages }))
    }
}

fn compile(filter: &'static str, pattern: &str) -> Result<Regex, ParseError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| ParseError::InvalidRegex {
            filter,
            reason: error.to_string().lines().last().unwrap_or_default().trim().to_owned(),
        })
}

/// A filter applied to the reply of one invocation.
#[derive(Debug, Clone)]
pub(crate) struct FilterRun {
    filter: OutputFilter,
    /// Per stage: a `begin` stage has seen its first match.
    begun: Vec<bool>,
    counted: u64,
}

impl FilterRun {
    pub(crate) fn new(filter: OutputFilter) -> Self {
        let begun = vec![false; filter.stages.len()];
        Self { filter, begun, counted: 0 }
    }

    /// True if `line` is printed.
    pub(crate) fn pass(&mut self, line: &str) -> bool {
        for (stage, begun) in self.filter.stages.iter().zip(self.begun.iter_mut()) {
            let keep = match stage {
                FilterStage::Include(regex) => regex.is_match(line),
                FilterStage::Exclude(regex) => !regex.is_match(line),
                FilterStage::Begin(regex) => {
                    *begun = *begun || regex.is_match(line);
                    *begun
                }
                FilterStage::Count => {
                    self.counted += 1;
                    false
                }
            };
            if !keep {
                return false;
            }
        }
        true
    }

    /// The count to print at the end, if the filter counts.
    pub(crate) fn count(&self) -> Option<u64> {
        matches!(self.filter.stages.last(), Some(FilterStage::Count)).then_some(self.counted)
    }
}
