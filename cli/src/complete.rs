//! What may follow the text before the cursor: the candidates behind `?` and TAB, and libcli's
//! layout of a help line.
//!
//! Contract:
//! - [`complete`] walks the text like the parser (libcli's lexer and word resolution, only the
//!   commands `visible` admits) and returns what may come next, in table order: the command
//!   words that start with the partial word (with their help), else the parameters of the
//!   command the words name, else, after `|`, the filters and their arguments.
//! - Labels follow libcli: a word as is, a required argument `<name>`, an optional one
//!   `[name]`; `<cr>` is offered when everything that may follow is optional.
//! - [`help_lines`] lays one candidate out as libcli's `cli_int_wrap_help_line` does: the
//!   label padded to 22 columns (alone on its line when longer), a blank, and the help wrapped
//!   at 80 columns on blanks.

use crate::command::{self, COMMANDS, CommandSpec, Param, Shape, ValueKind};
use crate::filter::{FILTERS, filter_choices};
use crate::grammar::{
    PROTOCOL_NAMES, choices_at, param_named, positionals, required_count, resolve, spec_ending_at,
    starts_with_ignore_case, unused_options, walk_words,
};
use crate::lexer::{lex, split_pipeline};

/// One thing that may come next, for `?` and TAB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The literal word TAB may insert (`None` for placeholders and `<cr>`).
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

    fn placeholder(label: String, help: &str) -> Self {
        Self { word: None, label, help: help.to_owned() }
    }

    /// libcli's "optional" marking: the label starts with `[`.
    pub(crate) fn is_optional(&self) -> bool {
        self.label.starts_with('[')
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

/// The label of the end of a command.
pub(crate) const CR_LABEL: &str = "<cr>";

/// Candidates for the text before the cursor; `visible` says which specs may be offered.
pub(crate) fn complete(before_cursor: &str, visible: &dyn Fn(&CommandSpec) -> bool) -> Completion {
    let lexed = lex(before_cursor);
    let mut words = lexed.words;
    let partial = if lexed.ends_in_word { words.pop().unwrap_or_default() } else { String::new() };
    let mut candidates = Vec::new();
    if !lexed.open_quote {
        let stages = split_pipeline(&words);
        match stages.split_last() {
            Some((last, before)) if !before.is_empty() => filter_candidates(last, &mut candidates),
            _ => command_candidates(&words, visible, &mut candidates),
        }
    }
    candidates.retain(|candidate| match candidate.word {
        Some(word) => starts_with_ignore_case(word, &partial),
        None => partial.is_empty() || candidate.label != CR_LABEL,
    });
    Completion { partial, candidates }
}

fn filter_candidates(segment: &[String], out: &mut Vec<Candidate>) {
    let Some((first, rest)) = segment.split_first() else {
        out.extend(FILTERS.iter().map(|(name, help)| Candidate::word(name, help)));
        return;
    };
    let argument = |name: &str, help: &str| Candidate::placeholder(format!("<{name}>"), help);
    match (resolve(first, &filter_choices()), rest.len()) {
        (Some("count"), 0) => out.push(Candidate::placeholder(CR_LABEL.to_owned(), "")),
        (Some("grep" | "egrep"), n) if rest.iter().take(n).all(|w| w.starts_with('-')) => {
            out.push(Candidate::placeholder("[search_flags]".to_owned(), "Search flags (-[ivx]"));
            out.push(argument("search_pattern", "Search pattern"));
        }
        (Some("include" | "exclude" | "grep" | "egrep"), _) => {
            out.push(argument("search_pattern", "Search pattern"));
        }
        (Some("begin"), _) | (Some("between"), 0) => {
            out.push(argument("range_start", "Begin showing lines that match"));
        }
        (Some("between"), _) => out.push(argument("range_end", "Stop showing lines that match")),
        _ => {}
    }
}

fn command_candidates(
    words: &[String],
    visible: &dyn Fn(&CommandSpec) -> bool,
    out: &mut Vec<Candidate>,
) {
    let specs: Vec<&'static CommandSpec> = COMMANDS.iter().filter(|spec| visible(spec)).collect();
    let walk = walk_words(words, specs);
    let ending = spec_ending_at(&walk.specs, walk.consumed);
    if !walk.stopped {
        let path: Vec<&str> = walk
            .specs
            .first()
            .map(|spec| spec.words)
            .unwrap_or_default()
            .iter()
            .take(walk.consumed)
            .copied()
            .collect();
        for choice in choices_at(&walk.specs, walk.consumed) {
            let mut full = path.clone();
            full.push(choice.word);
            out.push(Candidate::word(choice.word, command::word_help(&full)));
        }
        if let Some(spec) = ending {
            argument_candidates(spec, &[], out);
        }
    } else if let Some(spec) = ending {
        argument_candidates(spec, words.get(walk.consumed..).unwrap_or_default(), out);
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
            && let crate::grammar::WordMatch::Found(name) =
                crate::grammar::match_word(token, &unused_options(spec, &used))
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
            value_candidates(param, kind, format!("<{}>", param.name), out);
        }
        return;
    }
    if let Some(param) = positionals.get(position) {
        match param.shape {
            Shape::Required(kind) => {
                value_candidates(param, kind, format!("<{}>", param.name), out)
            }
            Shape::Optional(_) => {
                out.push(Candidate::placeholder(format!("[{}]", param.name), param.help))
            }
            _ => {}
        }
    }
    if position >= required {
        for name in unused_options(spec, &used) {
            if let Some(param) = param_named(spec, name) {
                out.push(Candidate::placeholder(format!("[{}]", param.name), param.help));
            }
        }
        out.push(Candidate::placeholder(CR_LABEL.to_owned(), ""));
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
            out.push(Candidate::placeholder("<0-255>".to_owned(), param.help));
        }
        ValueKind::Integer { min, max } => {
            out.push(Candidate::placeholder(label, &format!("{} ({min}-{max})", param.help)))
        }
        ValueKind::Address => out.push(Candidate::placeholder(label, param.help)),
    }
}

/// Width of the first column of libcli's help lines.
const NAME_COLUMN: usize = 22;
/// libcli's assumed terminal width.
const LINE_WIDTH: usize = 80;

/// One help entry laid out as libcli does (see the module docs); `name` is already indented.
pub(crate) fn help_lines(name: &str, help: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut name = name.to_owned();
    let mut help = help;
    loop {
        if name.len() > NAME_COLUMN {
            lines.push(std::mem::take(&mut name));
        }
        let width = NAME_COLUMN.max(name.len());
        let room = LINE_WIDTH - width - 1;
        let bytes = help.as_bytes();
        let mut take = bytes.len();
        if take > room {
            take = (0..=room)
                .rev()
                .find(|&at| bytes.get(at).is_some_and(u8::is_ascii_whitespace))
                .unwrap_or(room);
        }
        if let Some(newline) = bytes.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            take = take.min(newline);
        }
        while !help.is_char_boundary(take) {
            take -= 1;
        }
        let (head, tail) = help.split_at(take);
        lines.push(format!("{name:<width$} {head}"));
        name.clear();
        help = tail.trim_start_matches(|ch: char| ch.is_ascii_whitespace());
        if help.is_empty() {
            return lines;
        }
    }
}

/// What TAB does with a completion (libcli's `cli_loop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TabAction {
    /// Replace the word being typed with this text (the whole word, then a blank if complete).
    Replace(String),
    /// Show these entries (on a second TAB).
    List(Vec<String>),
    /// Ring the bell; a second TAB lists.
    Bell,
    /// Write nothing (one argument name); a second TAB lists.
    Wait,
    /// Nothing can follow: ring the bell.
    Nothing,
}

/// libcli's TAB: the entries are the words and argument names that may follow (`<cr>` is not
/// one). No entry: the bell. A second TAB in a row lists them. One word: it replaces the typed
/// part, followed by a blank; one argument name: nothing is written. Several: the typed part is replaced by their common prefix (case
/// ignored), unless an argument name is among them; else the bell.
pub(crate) fn tab(completion: &Completion, second: bool) -> TabAction {
    let entries: Vec<&str> = completion
        .candidates
        .iter()
        .filter(|candidate| candidate.label != CR_LABEL)
        .map(|candidate| candidate.word.unwrap_or(candidate.label.as_str()))
        .collect();
    match entries.as_slice() {
        [] => TabAction::Nothing,
        _ if second => TabAction::List(entries.iter().map(|entry| (*entry).to_owned()).collect()),
        [only] if !only.starts_with(['[', '<']) => TabAction::Replace(format!("{only} ")),
        [_] => TabAction::Wait,
        [first, rest @ ..] => {
            let first = first.strip_prefix('[').unwrap_or(first);
            let placeholder = |entry: &str| entry.starts_with('<');
            let mut common = if placeholder(first) { 0 } else { first.len() };
            for entry in rest {
                if placeholder(entry) {
                    common = 0;
                }
                let entry = entry.strip_prefix('[').unwrap_or(entry);
                common = first
                    .bytes()
                    .zip(entry.bytes())
                    .take(common)
                    .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                    .count();
            }
            let last_optional = rest.last().is_some_and(|entry| entry.starts_with('['));
            match first.get(..common) {
                Some(prefix) if common > 0 && !last_optional => {
                    TabAction::Replace(prefix.to_owned())
                }
                _ => TabAction::Bell,
            }
        }
    }
}
