//! Parsing of command lines against the command table, and the candidates behind `?` and TAB.
//!
//! Contract:
//! - [`lex`] splits a line into words and unquoted `|` separators. Double quotes group blanks and
//!   understand `\"` and `\\`; single quotes are literal; quoted and unquoted parts of one word
//!   join (`ab"c d"` is `abc d`). It never fails: an open quote is reported in [`Lexed`].
//! - [`parse_line`] resolves the words of the table (exact word, else unique case-insensitive
//!   prefix; a literal word wins over an argument), validates the arguments by their
//!   [`ValueKind`], builds the action and parses the output filters after `|`. Every failure
//!   is one [`ParseError`] whose `Display` is the error line without the leading `% `.
//! - [`complete`] runs the same walk leniently on the text before the cursor and returns what may
//!   follow, for `?` (all candidates with help) and TAB (the literal words).
//!
//! Resolution ignores privilege, so an abbreviation means the same at both prompts; the caller
//! checks [`CommandSpec::privilege`] and decides what `?` shows.

use std::net::IpAddr;

use thiserror::Error;

use crate::command::{
    self, Action, Args, COMMANDS, CommandSpec, Param, Shape, Value, ValueKind, positional_label,
    value_label,
};
use crate::filter::OutputFilter;

/// Why a line was refused. `Display` is the message after `% `.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// A word matches no command.
    #[error("Unknown command: {0}")]
    UnknownCommand(String),
    /// A word is the prefix of several commands.
    #[error("Ambiguous command: {typed} (matches {})", .candidates.join(", "))]
    AmbiguousCommand {
        /// What was typed, up to the ambiguous word.
        typed: String,
        /// The words it could be.
        candidates: Vec<&'static str>,
    },
    /// The words stop before a command.
    #[error("Incomplete command")]
    IncompleteCommand,
    /// A required argument is missing.
    #[error("Incomplete command: missing {0}")]
    MissingArgument(String),
    /// An argument does not validate.
    #[error("Invalid value for {param}: \"{value}\" (expected {expected})")]
    InvalidValue {
        /// The parameter (`<seconds>`, `proto`).
        param: String,
        /// What was typed.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// More arguments than the command takes.
    #[error("Unexpected argument: \"{0}\"")]
    UnexpectedArgument(String),
    /// A quote was not closed.
    #[error("Unterminated quote")]
    UnterminatedQuote,
    /// `|` with nothing before it.
    #[error("Missing command before \"|\"")]
    MissingCommand,
    /// `|` with nothing after it.
    #[error("Missing filter after \"|\" (include, exclude, begin or count)")]
    MissingFilter,
    /// An unknown filter name.
    #[error("Unknown filter: \"{0}\" (expected include, exclude, begin or count)")]
    UnknownFilter(String),
    /// A filter without its regular expression.
    #[error("Incomplete command: missing <regex> after {0}")]
    MissingRegex(&'static str),
    /// A regular expression that does not compile (or is too large).
    #[error("Invalid regex for {filter}: {reason}")]
    InvalidRegex {
        /// The filter.
        filter: &'static str,
        /// The regex engine's message (first line).
        reason: String,
    },
    /// `count` followed by something.
    #[error("\"count\" must be the last filter and takes no argument")]
    CountNotLast,
    /// The table and its build function disagree (a bug, reported instead of a panic).
    #[error("Internal error: command table entry \"{0}\" is inconsistent")]
    Table(String),
}

/// One lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A word (quotes removed).
    Word(String),
    /// An unquoted `|`.
    Pipe,
}

/// A lexed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lexed {
    pub(crate) tokens: Vec<Token>,
    /// The line ends inside a quote.
    pub(crate) open_quote: bool,
    /// The line ends inside a word (the last token is a partial word).
    pub(crate) ends_in_word: bool,
}

/// Split a line into tokens (see the module docs).
pub(crate) fn lex(line: &str) -> Lexed {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        if let Some(open) = quote {
            if ch == open {
                quote = None;
            } else if open == '"' && ch == '\\' && matches!(chars.peek(), Some('"' | '\\')) {
                word.extend(chars.next());
            } else {
                word.push(ch);
            }
            continue;
        }
        match ch {
            '"' | '\'' => {
                quote = Some(ch);
                in_word = true;
            }
            '|' => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
                tokens.push(Token::Pipe);
            }
            _ if ch.is_whitespace() => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
            }
            _ => {
                word.push(ch);
                in_word = true;
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    Lexed { tokens, open_quote: quote.is_some(), ends_in_word: in_word }
}

/// True if `text` ends inside a quoted string (then `?` is an ordinary character).
pub(crate) fn ends_inside_quote(text: &str) -> bool {
    lex(text).open_quote
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

/// True if `word` starts with `typed`, ignoring ASCII case.
pub(crate) fn starts_with_ignore_case(word: &str, typed: &str) -> bool {
    word.as_bytes()
        .get(..typed.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(typed.as_bytes()))
}

/// Match `typed` against `candidates`: an exact word wins, else a unique prefix.
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

/// The distinct words at `position` of the specs that continue past it, in table order.
fn words_at(specs: &[&'static CommandSpec], position: usize) -> Vec<&'static str> {
    let mut words: Vec<&'static str> = Vec::new();
    for word in specs.iter().filter_map(|spec| spec.words.get(position)) {
        if !words.contains(word) {
            words.push(word);
        }
    }
    words
}

/// The spec whose words end exactly at `position`.
fn spec_ending_at(specs: &[&'static CommandSpec], position: usize) -> Option<&'static CommandSpec> {
    specs.iter().copied().find(|spec| spec.words.len() == position)
}

/// Outcome of walking the literal words of a line.
struct WordWalk {
    /// Specs still matching after the consumed words.
    specs: Vec<&'static CommandSpec>,
    /// How many tokens were consumed as literal words.
    consumed: usize,
    /// How the walk stopped at `consumed` (`None`: every token was a word).
    stop: Option<WordMatch>,
}

fn walk_words(tokens: &[String], mut specs: Vec<&'static CommandSpec>) -> WordWalk {
    let mut consumed = 0;
    for token in tokens {
        match match_word(token, &words_at(&specs, consumed)) {
            WordMatch::Found(word) => {
                specs.retain(|spec| spec.words.get(consumed) == Some(&word));
                consumed += 1;
            }
            other => return WordWalk { specs, consumed, stop: Some(other) },
        }
    }
    WordWalk { specs, consumed, stop: None }
}

/// A parsed, valid line.
#[derive(Debug, Clone)]
pub(crate) struct ParsedLine {
    pub(crate) spec: &'static CommandSpec,
    pub(crate) action: Action,
    pub(crate) filter: Option<OutputFilter>,
}

/// Parse one command line; `Ok(None)` for a blank line.
pub(crate) fn parse_line(line: &str) -> Result<Option<ParsedLine>, ParseError> {
    let lexed = lex(line);
    if lexed.open_quote {
        return Err(ParseError::UnterminatedQuote);
    }
    let mut segments = lexed.tokens.split(|token| *token == Token::Pipe);
    let words: Vec<String> = segments.next().map(words_of).unwrap_or_default();
    let filters: Vec<Vec<String>> = segments.map(words_of).collect();
    if words.is_empty() {
        return if filters.is_empty() { Ok(None) } else { Err(ParseError::MissingCommand) };
    }
    let walk = walk_words(&words, COMMANDS.iter().collect());
    let typed = |end: usize| words.get(..end).unwrap_or_default().join(" ");
    let spec = match walk.stop {
        Some(WordMatch::Ambiguous(candidates)) => {
            return Err(ParseError::AmbiguousCommand {
                typed: typed(walk.consumed + 1),
                candidates,
            });
        }
        _ => spec_ending_at(&walk.specs, walk.consumed).ok_or_else(|| match walk.stop {
            None => ParseError::IncompleteCommand,
            Some(_) => ParseError::UnknownCommand(typed(walk.consumed + 1)),
        })?,
    };
    let args = parse_args(spec, words.get(walk.consumed..).unwrap_or_default())?;
    let action = (spec.build)(&args).ok_or_else(|| ParseError::Table(spec.words.join(" ")))?;
    let filter = OutputFilter::parse(&filters)?;
    Ok(Some(ParsedLine { spec, action, filter }))
}

fn words_of(tokens: &[Token]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|token| match token {
            Token::Word(word) => Some(word.clone()),
            Token::Pipe => None,
        })
        .collect()
}

fn positionals(spec: &CommandSpec) -> impl Iterator<Item = &'static Param> {
    spec.params
        .iter()
        .filter(|param| matches!(param.shape, Shape::Required(_) | Shape::Optional(_)))
}

fn required_count(spec: &CommandSpec) -> usize {
    spec.params.iter().filter(|param| matches!(param.shape, Shape::Required(_))).count()
}

/// Named options and flags of `spec` not yet given.
fn unused_options(spec: &CommandSpec, used: &[&str]) -> Vec<&'static str> {
    spec.params
        .iter()
        .filter(|param| matches!(param.shape, Shape::Named(_) | Shape::Flag))
        .map(|param| param.name)
        .filter(|name| !used.contains(name))
        .collect()
}

fn param_named(spec: &CommandSpec, name: &str) -> Option<&'static Param> {
    spec.params.iter().find(|param| param.name == name)
}

fn parse_args(spec: &'static CommandSpec, tokens: &[String]) -> Result<Args, ParseError> {
    let positionals: Vec<&'static Param> = positionals(spec).collect();
    let required = required_count(spec);
    let mut args = Args::new();
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
            return Err(ParseError::UnexpectedArgument(token.clone()));
        };
        let kind = match param.shape {
            Shape::Required(kind) | Shape::Optional(kind) => kind,
            Shape::Named(_) | Shape::Flag => return Err(ParseError::Table(spec.words.join(" "))),
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
const PROTOCOL_NAMES: &[(&str, u8)] = &[("tcp", 6), ("udp", 17), ("icmp", 1), ("icmpv6", 58)];

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

/// One thing that may come next, for `?` and TAB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The literal word TAB may insert (`None` for placeholders, `<cr>` and `|`).
    pub(crate) word: Option<&'static str>,
    /// What `?` shows in the first column.
    pub(crate) label: String,
    /// What `?` shows in the second column.
    pub(crate) help: String,
}

impl Candidate {
    fn word(word: &'static str, help: &str) -> Self {
        Self { word: Some(word), label: word.to_owned(), help: help.to_owned() }
    }

    fn placeholder(label: String, help: String) -> Self {
        Self { word: None, label, help }
    }
}

/// What may follow the text before the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    /// The word being typed (empty after a blank).
    pub(crate) partial: String,
    /// Candidates matching `partial`.
    pub(crate) candidates: Vec<Candidate>,
}

/// The filter names after `|`, with help.
pub(crate) const FILTERS: &[(&str, &str)] = &[
    ("include", "Only lines matching a regular expression"),
    ("exclude", "Only lines not matching a regular expression"),
    ("begin", "Lines from the first one matching a regular expression"),
    ("count", "Count the lines instead of printing them"),
];

const CR_LABEL: &str = "<cr>";

/// Candidates for the text before the cursor; `visible` says which specs may be offered.
pub(crate) fn complete(before_cursor: &str, visible: impl Fn(&CommandSpec) -> bool) -> Completion {
    let lexed = lex(before_cursor);
    let mut tokens = lexed.tokens;
    let partial = match tokens.last() {
        Some(Token::Word(word)) if lexed.ends_in_word => word.clone(),
        _ => String::new(),
    };
    if lexed.ends_in_word {
        tokens.pop();
    }
    let mut candidates = Vec::new();
    if !lexed.open_quote {
        match tokens.iter().rposition(|token| *token == Token::Pipe) {
            Some(pipe) => {
                filter_candidates(
                    &words_of(tokens.get(pipe + 1..).unwrap_or_default()),
                    &mut candidates,
                );
            }
            None => command_candidates(&words_of(&tokens), visible, &mut candidates),
        }
    }
    candidates.retain(|candidate| match candidate.word {
        Some(word) => starts_with_ignore_case(word, &partial),
        None => partial.is_empty() || !matches!(candidate.label.as_str(), CR_LABEL | "|"),
    });
    Completion { partial, candidates }
}

fn end_candidates(out: &mut Vec<Candidate>) {
    out.push(Candidate::placeholder(
        "|".to_owned(),
        "Filter the output (include, exclude, begin, count)".to_owned(),
    ));
    out.push(Candidate::placeholder(CR_LABEL.to_owned(), String::new()));
}

fn filter_candidates(segment: &[String], out: &mut Vec<Candidate>) {
    let names: Vec<&'static str> = FILTERS.iter().map(|(name, _)| *name).collect();
    let Some(first) = segment.first() else {
        out.extend(FILTERS.iter().map(|(name, help)| Candidate::word(name, help)));
        return;
    };
    match match_word(first, &names) {
        WordMatch::Found("count") if segment.len() == 1 => {
            out.push(Candidate::placeholder(CR_LABEL.to_owned(), String::new()));
        }
        WordMatch::Found("count") => {}
        WordMatch::Found(_) if segment.len() == 1 => {
            out.push(Candidate::placeholder("<regex>".to_owned(), "Regular expression".to_owned()));
        }
        WordMatch::Found(_) => end_candidates(out),
        _ => {}
    }
}

fn command_candidates(
    words: &[String],
    visible: impl Fn(&CommandSpec) -> bool,
    out: &mut Vec<Candidate>,
) {
    let specs: Vec<&'static CommandSpec> = COMMANDS.iter().filter(|spec| visible(spec)).collect();
    let walk = walk_words(words, specs);
    let ending = spec_ending_at(&walk.specs, walk.consumed);
    match walk.stop {
        None => {
            let path: Vec<&str> = walk
                .specs
                .first()
                .map(|spec| spec.words)
                .unwrap_or_default()
                .iter()
                .take(walk.consumed)
                .copied()
                .collect();
            let mut next = words_at(&walk.specs, walk.consumed);
            next.sort_unstable();
            for word in next {
                let mut full = path.clone();
                full.push(word);
                out.push(Candidate::word(word, command::word_help(&full)));
            }
            if let Some(spec) = ending {
                argument_candidates(spec, &[], out);
            }
        }
        Some(WordMatch::NotFound) => {
            if let Some(spec) = ending {
                argument_candidates(spec, words.get(walk.consumed..).unwrap_or_default(), out);
            }
        }
        Some(_) => {}
    }
}

fn argument_candidates(spec: &'static CommandSpec, done: &[String], out: &mut Vec<Candidate>) {
    let positionals: Vec<&'static Param> = positionals(spec).collect();
    let required = required_count(spec);
    let mut used: Vec<&str> = Vec::new();
    let mut position = 0;
    let mut awaiting_value: Option<&'static Param> = None;
    for token in done {
        if awaiting_value.take().is_some() {
            continue;
        }
        if position >= required
            && let WordMatch::Found(name) = match_word(token, &unused_options(spec, &used))
        {
            used.push(name);
            awaiting_value =
                param_named(spec, name).filter(|param| matches!(param.shape, Shape::Named(_)));
            continue;
        }
        if position < positionals.len() {
            position += 1;
        } else {
            return;
        }
    }
    if let Some(param) = awaiting_value {
        if let Shape::Named(kind) = param.shape {
            value_candidates(param, kind, value_label(kind), out);
        }
        return;
    }
    if let Some(param) = positionals.get(position)
        && let Shape::Required(kind) | Shape::Optional(kind) = param.shape
    {
        value_candidates(param, kind, format!("<{}>", param.name), out);
    }
    if position >= required {
        for name in unused_options(spec, &used) {
            if let Some(param) = param_named(spec, name) {
                out.push(Candidate::word(param.name, param.help));
            }
        }
        end_candidates(out);
    }
}

fn value_candidates(param: &Param, kind: ValueKind, label: String, out: &mut Vec<Candidate>) {
    match kind {
        ValueKind::Keyword(words) => {
            out.extend(words.iter().map(|word| Candidate::word(word, param.help)))
        }
        ValueKind::Switch => out.extend(["0", "1"].map(|word| Candidate::word(word, param.help))),
        ValueKind::Protocol => {
            out.extend(PROTOCOL_NAMES.iter().map(|(name, _)| Candidate::word(name, param.help)));
            out.push(Candidate::placeholder("<0-255>".to_owned(), param.help.to_owned()));
        }
        ValueKind::Integer { min, max } => {
            out.push(Candidate::placeholder(label, format!("{} ({min}-{max})", param.help)));
        }
        ValueKind::Address => out.push(Candidate::placeholder(label, param.help.to_owned())),
    }
}

/// What TAB does with a completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TabAction {
    /// Insert this text at the cursor.
    Insert(String),
    /// Show these labels.
    List(Vec<String>),
    /// Nothing to offer.
    Nothing,
}

/// Decide what TAB does: complete a unique word (plus a blank), extend to the longest common
/// prefix, or list the choices.
pub(crate) fn tab(completion: &Completion) -> TabAction {
    let mut words: Vec<&'static str> = Vec::new();
    for word in completion.candidates.iter().filter_map(|candidate| candidate.word) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    let typed = completion.partial.len();
    match words.as_slice() {
        [] if completion.candidates.is_empty() => TabAction::Nothing,
        [] => TabAction::List(
            completion.candidates.iter().map(|candidate| candidate.label.clone()).collect(),
        ),
        [only] => TabAction::Insert(format!("{} ", only.get(typed..).unwrap_or_default())),
        [first, rest @ ..] => {
            let common = rest.iter().fold(first.len(), |common, word| {
                first.bytes().zip(word.bytes()).take(common).take_while(|(a, b)| a == b).count()
            });
            match first.get(typed..common) {
                Some(extension) if !extension.is_empty() => TabAction::Insert(extension.to_owned()),
                _ => TabAction::List(
                    completion.candidates.iter().map(|candidate| candidate.label.clone()).collect(),
                ),
            }
        }
    }
}
