//! Splitting a command line into words the way libcli does (`cli_parse_line`, libcli 1.10).
//!
//! Contract:
//! - Leading blanks are skipped; words end at a blank, at an unquoted `|` and at a quote.
//! - `"` and `'` open a quoted part that ends at the same quote; blanks and `|` inside it are
//!   text. A quote in the middle of a word ends that word (`ab"c d"` is two words, `ab` and
//!   `c d`), and `""` is an empty word. A quote left open runs to the end of the line (no error).
//! - A backslash escapes the next character anywhere (quoted or not) and is removed, so `a\ b`
//!   is one word `a b` and `\|` is the text `|`.
//! - An unquoted `|` is a word of its own; the pipeline splits at every word that starts with
//!   `|` (libcli's test), see [`split_pipeline`].
//! - A line whose first non-blank is `|` starts with an empty word (libcli's lexer does so).
//! - At most [`MAX_WORDS`] words; the rest of the line is ignored, as libcli does.
//!
//! One deliberate difference: libcli loses the character after a backslash that starts a word
//! other than the first; here it is kept.

/// Most words of one line (libcli: `CLI_MAX_LINE_WORDS - 1`).
pub(crate) const MAX_WORDS: usize = 127;

/// A line split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lexed {
    /// The words, quotes and escapes removed.
    pub(crate) words: Vec<String>,
    /// The line ends inside a quote.
    pub(crate) open_quote: bool,
    /// The line ends inside a word (the last word may be a partial one).
    pub(crate) ends_in_word: bool,
}

/// Split `line` into words (see the module docs).
pub(crate) fn lex(line: &str) -> Lexed {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    // libcli starts a word at the first non-blank even when it is a `|`: an empty word.
    if line.trim_start_matches(|ch: char| ch.is_ascii_whitespace()).starts_with('|') {
        words.push(String::new());
    }
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        if words.len() >= MAX_WORDS {
            in_word = false;
            break;
        }
        if ch == '\\' {
            if let Some(next) = chars.next() {
                word.push(next);
                in_word = true;
            }
            continue;
        }
        if let Some(open) = quote {
            if ch == open {
                // The closing quote ends the word, even an empty one.
                words.push(std::mem::take(&mut word));
                in_word = false;
                quote = None;
            } else {
                word.push(ch);
            }
            continue;
        }
        match ch {
            '"' | '\'' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                quote = Some(ch);
                in_word = true;
            }
            '|' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                words.push("|".to_owned());
            }
            _ if ch.is_ascii_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            _ => {
                word.push(ch);
                in_word = true;
            }
        }
    }
    let open_quote = quote.is_some();
    if in_word && words.len() < MAX_WORDS {
        words.push(word);
    }
    Lexed { words, open_quote, ends_in_word: in_word }
}

/// True if `text` ends inside a quoted string (then `?` is an ordinary character).
pub(crate) fn ends_inside_quote(text: &str) -> bool {
    lex(text).open_quote
}

/// The stages of a pipeline: the words before the first word starting with `|`, then the
/// words after each such word. Always at least one stage (possibly empty).
pub(crate) fn split_pipeline(words: &[String]) -> Vec<&[String]> {
    words.split(|word| word.starts_with('|')).collect()
}
