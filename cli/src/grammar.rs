//! Parsing of command lines against the command table, the way libcli 1.10 resolves them.
//!
//! Contract:
//! - [`parse_line`] splits the line with libcli's lexer (`lexer`), splits the pipeline at `|`,
//!   resolves the command words, validates the filters after each `|`, builds them, then
//!   validates the arguments by their [`ValueKind`] and builds the action. Every failure is one
//!   [`ParseError`] whose `Display` is the whole error line as printed.
//! - Words resolve as in libcli: a typed word names a command if it is a case-insensitive
//!   prefix of it at least as long as the command's unique length (one more than the longest
//!   prefix it shares with a sibling), or the whole command; the first such command in table
//!   order wins. Commands the session may not run (privilege) are invisible, as in libcli.
//!   A vendor word's unique length is computed against its vendor siblings only, so an
//!   abbreviation the vendor accepts means the same here whatever cmmd adds.
//! - Error texts: libcli's for what libcli checks (`Invalid command "…"`, `Incomplete command`,
//!   `Empty command given`, the filters' texts); the vendor's usage text for a bad argument of
//!   a vendor command; cmmd's own messages, prefixed `% `, for cmmd's commands.
//! - Vendor commands ignore words after their parameters, as the vendor's handlers do; so does
//!   any command without parameters.

use std::net::IpAddr;

use thiserror::Error;

use crate::command::{
    Action, Args, COMMANDS, CommandSpec, Param, Shape, Value, ValueKind, positional_label,
    value_label,
};
use crate::filter::OutputFilter;
use crate::lexer::{lex, split_pipeline};

/// Why a line was refused. `Display` is the error line (several lines for a usage text).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// A word matches no command (libcli).
    #[error("Invalid command \"{0}\"")]
    InvalidCommand(String),
    /// The words stop before a command (libcli).
    #[error("Incomplete command")]
    IncompleteCommand,
    /// A stage of the pipeline is empty (libcli).
    #[error("Empty command given")]
    EmptyCommand,
    /// A filter without its argument (libcli).
    #[error("Incomplete command, missing required argument '{argument}' for command '{command}'")]
    MissingFilterArgument {
        /// libcli's name of the argument (`search_pattern`, `range_start`, `range_end`).
        argument: &'static str,
        /// The filter.
        command: &'static str,
    },
    /// `count` followed by words (libcli).
    #[error("Count filter does not take arguments")]
    CountTakesNoArguments,
    /// A `grep`/`egrep` flag word other than `-` followed by `i`, `v` or `e` (libcli).
    #[error("Problem parsing command setting search_flags with value {0}")]
    SearchFlags(String),
    /// A `grep`/`egrep` pattern that does not compile, or is too large (libcli's text).
    #[error("Invalid pattern \"{0}\"")]
    InvalidPattern(String),
    /// A missing or invalid argument of a vendor command: the vendor's usage text.
    #[error("{0}")]
    Usage(&'static str),
    /// A required argument of a cmmd command is missing.
    #[error("% Incomplete command: missing {0}")]
    MissingArgument(String),
    /// An argument of a cmmd command does not validate.
    #[error("% Invalid value for {param}: \"{value}\" (expected {expected})")]
    InvalidValue {
        /// The parameter (`<seconds>`, `proto`).
        param: String,
        /// What was typed.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// More arguments than a cmmd command with parameters takes.
    #[error("% Unexpected argument: \"{0}\"")]
    UnexpectedArgument(String),
    /// The table and its build function disagree (a bug, reported instead of a panic).
    #[error("% Internal error: command table entry \"{0}\" is inconsistent")]
    Table(String),
}

/// A word that may stand at one position, and whether the vendor has it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) word: &'static str,
    pub(crate) vendor: bool,
}

/// Length of the common prefix of two words (case-sensitive, as libcli builds it).
fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// libcli's unique length of `choice` among `choices`: one more than the longest prefix it
/// shares with another word (vendor words only against vendor words).
fn unique_len(choice: &Choice, choices: &[Choice]) -> usize {
    1 + choices
        .iter()
        .filter(|other| other.word != choice.word && (other.vendor || !choice.vendor))
        .map(|other| common_prefix(choice.word, other.word))
        .max()
        .unwrap_or(0)
}

/// True if `typed` is a case-insensitive prefix of `word`.
pub(crate) fn starts_with_ignore_case(word: &str, typed: &str) -> bool {
    word.as_bytes()
        .get(..typed.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(typed.as_bytes()))
}

/// The word `typed` names among `choices` (see the module docs), if any.
pub(crate) fn resolve(typed: &str, choices: &[Choice]) -> Option<&'static str> {
    choices
        .iter()
        .find(|choice| {
            starts_with_ignore_case(choice.word, typed)
                && (typed.len() == choice.word.len() || typed.len() >= unique_len(choice, choices))
        })
        .map(|choice| choice.word)
}

/// The distinct words at `position` of `specs`, in table order.
pub(crate) fn choices_at(specs: &[&'static CommandSpec], position: usize) -> Vec<Choice> {
    let mut choices: Vec<Choice> = Vec::new();
    for spec in specs {
        let Some(word) = spec.words.get(position) else { continue };
        match choices.iter_mut().find(|choice| choice.word == *word) {
            Some(choice) => choice.vendor |= spec.is_vendor(),
            None => choices.push(Choice { word, vendor: spec.is_vendor() }),
        }
    }
    choices
}

/// The spec whose words end exactly at `position`.
pub(crate) fn spec_ending_at(
    specs: &[&'static CommandSpec],
    position: usize,
) -> Option<&'static CommandSpec> {
    specs.iter().copied().find(|spec| spec.words.len() == position)
}

/// Outcome of walking the command words of a line.
pub(crate) struct WordWalk {
    /// Specs still matching after the consumed words.
    pub(crate) specs: Vec<&'static CommandSpec>,
    /// How many words were consumed as command words.
    pub(crate) consumed: usize,
    /// A word that named nothing stopped the walk at `consumed`.
    pub(crate) stopped: bool,
}

/// Resolve the leading command words of `words` among `specs`.
pub(crate) fn walk_words(words: &[String], mut specs: Vec<&'static CommandSpec>) -> WordWalk {
    let mut consumed = 0;
    for typed in words {
        match resolve(typed, &choices_at(&specs, consumed)) {
            Some(word) => {
                specs.retain(|spec| spec.words.get(consumed) == Some(&word));
                consumed += 1;
            }
            None => return WordWalk { specs, consumed, stopped: true },
        }
    }
    WordWalk { specs, consumed, stopped: false }
}

/// The canonical name of the first `count` words of the remaining specs.
fn canonical(specs: &[&'static CommandSpec], count: usize) -> String {
    specs
        .first()
        .map(|spec| spec.words.get(..count).unwrap_or_default().join(" "))
        .unwrap_or_default()
}

/// A parsed, valid line.
#[derive(Debug, Clone)]
pub(crate) struct ParsedLine {
    pub(crate) spec: &'static CommandSpec,
    pub(crate) action: Action,
    pub(crate) filter: Option<OutputFilter>,
}

/// Parse one command line with the commands `visible` admits; `Ok(None)` for a blank line.
pub(crate) fn parse_line(
    line: &str,
    visible: &dyn Fn(&CommandSpec) -> bool,
) -> Result<Option<ParsedLine>, ParseError> {
    let lexed = lex(line);
    if lexed.words.is_empty() {
        return Ok(None);
    }
    let stages = split_pipeline(&lexed.words);
    let words = stages.first().copied().unwrap_or_default();
    if words.is_empty() {
        return Err(ParseError::EmptyCommand);
    }
    let walk = walk_words(words, COMMANDS.iter().filter(|spec| visible(spec)).collect());
    let spec = spec_ending_at(&walk.specs, walk.consumed).ok_or_else(|| {
        if walk.stopped {
            let typed = words.get(walk.consumed).map(String::as_str).unwrap_or_default();
            let known = canonical(&walk.specs, walk.consumed);
            let sep = if known.is_empty() { "" } else { " " };
            ParseError::InvalidCommand(format!("{known}{sep}{typed}"))
        } else {
            ParseError::IncompleteCommand
        }
    })?;
    let filter = OutputFilter::parse(stages.get(1..).unwrap_or_default())?;
    let args = parse_args(spec, words.get(walk.consumed..).unwrap_or_default()).map_err(
        |error| match spec.usage {
            Some(usage) if spec.is_vendor() => ParseError::Usage(usage),
            _ => error,
        },
    )?;
    let action = (spec.build)(&args).ok_or_else(|| ParseError::Table(spec.words.join(" ")))?;
    Ok(Some(ParsedLine { spec, action, filter }))
}

/// Result of matching a typed word against the words allowed at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WordMatch {
    /// Exactly this word, or the only word it abbreviates.
    Found(&'static str),
    /// The prefix of several words.
    Ambiguous(Vec<&'static str>),
    /// Nothing.
    NotFound,
}

/// Match an argument keyword `typed` against `candidates`: an exact word wins, else a unique
/// prefix (cmmd's rule for keywords inside arguments).
pub(crate) fn match_word(typed: &str, candidates: &[&'static str]) -> WordMatch {
    if let Some(exact) = candidates.iter().find(|word| word.eq_ignore_ascii_case(typed)) {
        return WordMatch::Found(exact);
    }
    let mut found: Vec<&'static str> = Vec::new();
    for word in candidates {
        if starts_with_ignore_case(word, typed) && !found.contains(word) {
            found.push(word);
        }
    }
    match found.as_slice() {
        [] => WordMatch::NotFound,
        [only] => WordMatch::Found(only),
        _ => WordMatch::Ambiguous(found),
    }
}

pub(crate) fn positionals(spec: &CommandSpec) -> impl Iterator<Item = &'static Param> {
    spec.params
        .iter()
        .filter(|param| matches!(param.shape, Shape::Required(_) | Shape::Optional(_)))
}

pub(crate) fn required_count(spec: &CommandSpec) -> usize {
    spec.params.iter().filter(|param| matches!(param.shape, Shape::Required(_))).count()
}

/// Named options and flags of `spec` not yet given.
pub(crate) fn unused_options(spec: &CommandSpec, used: &[&str]) -> Vec<&'static str> {
    spec.params
        .iter()
        .filter(|param| matches!(param.shape, Shape::Named(_) | Shape::Flag))
        .map(|param| param.name)
        .filter(|name| !used.contains(name))
        .collect()
}

pub(crate) fn param_named(spec: &CommandSpec, name: &str) -> Option<&'static Param> {
    spec.params.iter().find(|param| param.name == name)
}

fn parse_args(spec: &'static CommandSpec, tokens: &[String]) -> Result<Args, ParseError> {
    let positionals: Vec<&'static Param> = positionals(spec).collect();
    let required = required_count(spec);
    let mut args = Args::new();
    if let Some(words) = spec.params.iter().find(|param| param.shape == Shape::Words) {
        args.set(words.name, Value::Words(tokens.to_vec()));
        return Ok(args);
    }
    let mut used: Vec<&str> = Vec::new();
    let mut position = 0;
    let mut tokens = tokens.iter();
    while let Some(token) = tokens.next() {
        if position >= required {
            let option = match match_word(token, &unused_options(spec, &used)) {
                WordMatch::Found(name) => param_named(spec, name),
                _ => None,
            };
            if let Some(param) = option {
                used.push(param.name);
                match param.shape {
                    Shape::Named(kind) => {
                        let value = tokens.next().ok_or_else(|| {
                            ParseError::MissingArgument(format!(
                                "{} {}",
                                param.name,
                                value_label(kind)
                            ))
                        })?;
                        args.set(param.name, parse_value(param.name.to_owned(), kind, value)?);
                    }
                    _ => args.set(param.name, Value::Present),
                }
                continue;
            }
        }
        let Some(param) = positionals.get(position) else {
            if spec.is_vendor() || spec.params.is_empty() {
                // The vendor's handlers ignore what they do not read.
                break;
            }
            return Err(ParseError::UnexpectedArgument(token.clone()));
        };
        let kind = match param.shape {
            Shape::Required(kind) | Shape::Optional(kind) => kind,
            Shape::Named(_) | Shape::Flag | Shape::Words => {
                return Err(ParseError::Table(spec.words.join(" ")));
            }
        };
        args.set(param.name, parse_value(format!("<{}>", param.name), kind, token)?);
        position += 1;
    }
    if let Some(missing) = positionals.get(position..required).and_then(|rest| rest.first()) {
        let label = match missing.shape {
            Shape::Required(kind) => positional_label(missing.name, kind),
            _ => missing.name.to_owned(),
        };
        return Err(ParseError::MissingArgument(label));
    }
    Ok(args)
}

/// Protocol names accepted where a protocol is expected.
pub(crate) const PROTOCOL_NAMES: &[(&str, u8)] =
    &[("tcp", 6), ("udp", 17), ("icmp", 1), ("icmpv6", 58)];

fn parse_value(param: String, kind: ValueKind, token: &str) -> Result<Value, ParseError> {
    let invalid = |expected: String| ParseError::InvalidValue {
        param: param.clone(),
        value: token.to_owned(),
        expected,
    };
    match kind {
        ValueKind::Keyword(words) => match match_word(token, words) {
            WordMatch::Found(word) => Ok(Value::Keyword(word)),
            WordMatch::Ambiguous(found) => Err(invalid(format!("one of {}", found.join(", ")))),
            WordMatch::NotFound => Err(invalid(format!("one of {}", words.join(", ")))),
        },
        ValueKind::Switch => match token {
            "0" => Ok(Value::Switch(false)),
            "1" => Ok(Value::Switch(true)),
            _ => Err(invalid("0 or 1".to_owned())),
        },
        ValueKind::Integer { min, max } => parse_integer(token)
            .filter(|value| (min..=max).contains(value))
            .map(Value::Integer)
            .ok_or_else(|| invalid(format!("an integer in {min}..={max}"))),
        ValueKind::Protocol => PROTOCOL_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map(|(_, number)| *number)
            .or_else(|| parse_integer(token).and_then(|number| u8::try_from(number).ok()))
            .map(Value::Protocol)
            .ok_or_else(|| invalid("tcp, udp, icmp, icmpv6 or a number in 0..=255".to_owned())),
        ValueKind::Address => token
            .parse::<IpAddr>()
            .map(Value::Address)
            .map_err(|_| invalid("an IPv4 or IPv6 address".to_owned())),
        ValueKind::Interface => Some(token)
            .filter(|t| (1..=15).contains(&t.len()))
            .filter(|t| !t.bytes().any(|b| b.is_ascii_whitespace() || b == b'/' || b == b':'))
            .map(|t| Value::Interface(t.to_owned()))
            .ok_or_else(|| invalid("an interface name of 1 to 15 bytes".to_owned())),
    }
}

/// A decimal or `0x` hexadecimal unsigned integer.
fn parse_integer(token: &str) -> Option<u64> {
    match token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|byte| byte.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !token.is_empty() && token.bytes().all(|byte| byte.is_ascii_digit()) => {
            token.parse().ok()
        }
        None => None,
    }
}
