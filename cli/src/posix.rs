//! POSIX regular expressions (what libcli's `grep` and `egrep` filters hand to glibc's
//! `regcomp`) translated to the syntax of the `regex` crate.
//!
//! Contract: [`translate`] returns an equivalent `regex` pattern for a basic (`grep`) or
//! extended (`egrep`) POSIX expression with glibc's GNU extensions (`\w \W \s \S \b \B \< \>`
//! and, in basic syntax, `\+ \? \|`), or `None` for what the `regex` crate cannot express
//! (back-references, collating elements, equivalence classes) and for malformed brackets.
//! Everything that is literal in POSIX is escaped, so a pattern never means more than it does
//! for glibc. Matching is a search anywhere in the line, as `regexec` does.

/// Translate `pattern` (basic syntax, or extended if `extended`).
pub(crate) fn translate(pattern: &str, extended: bool) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut index = 0;
    // True where a `*` is literal in basic syntax: at the start of an expression.
    let mut at_start = true;
    while let Some(&ch) = chars.get(index) {
        index += 1;
        let starts = at_start;
        at_start = false;
        match ch {
            '\\' => {
                let next = *chars.get(index)?;
                index += 1;
                match next {
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => {
                        out.push(next);
                        at_start = matches!(next, '(' | '|');
                    }
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(next);
                    }
                    '<' => out.push_str(r"\b{start}"),
                    '>' => out.push_str(r"\b{end}"),
                    '`' => out.push_str(r"\A"),
                    '\'' => out.push_str(r"\z"),
                    '1'..='9' => return None,
                    other => push_literal(&mut out, other),
                }
            }
            '[' => index = bracket(&chars, index, &mut out)?,
            '*' if !extended && starts => push_literal(&mut out, '*'),
            '^' if extended || starts => out.push('^'),
            '$' if extended || is_end(&chars, index, extended) => out.push('$'),
            '.' => out.push('.'),
            '*' => out.push('*'),
            '(' | ')' | '{' | '}' | '|' | '+' | '?' if extended => {
                out.push(ch);
                at_start = matches!(ch, '(' | '|');
            }
            other => push_literal(&mut out, other),
        }
        if ch == '^' && (extended || starts) {
            at_start = true;
        }
    }
    Some(out)
}

/// True if a `$` before `index` ends an expression in basic syntax.
fn is_end(chars: &[char], index: usize, extended: bool) -> bool {
    match (chars.get(index), chars.get(index + 1)) {
        (None, _) => true,
        (Some('\\'), Some(')' | '|')) => !extended,
        _ => false,
    }
}

fn push_literal(out: &mut String, ch: char) {
    if ch.is_ascii_alphanumeric() || ch == ' ' || !ch.is_ascii() {
        out.push(ch);
    } else {
        out.push('\\');
        out.push(ch);
    }
}

/// Translate the bracket expression starting after `[` at `index`; returns the index after
/// its `]`.
fn bracket(chars: &[char], mut index: usize, out: &mut String) -> Option<usize> {
    out.push('[');
    if chars.get(index) == Some(&'^') {
        out.push('^');
        index += 1;
    }
    let mut first = true;
    loop {
        let ch = *chars.get(index)?;
        index += 1;
        match ch {
            ']' if !first => break,
            '[' if matches!(chars.get(index), Some(':')) => {
                let close = (index + 1..chars.len().saturating_sub(1))
                    .find(|&at| chars.get(at) == Some(&':') && chars.get(at + 1) == Some(&']'))?;
                let name: String = chars.get(index + 1..close)?.iter().collect();
                if !name.chars().all(|c| c.is_ascii_lowercase()) {
                    return None;
                }
                out.push_str(&format!("[:{name}:]"));
                index = close + 2;
            }
            '[' if matches!(chars.get(index), Some('.' | '=')) => return None,
            '-' if !first && chars.get(index).is_some_and(|next| *next != ']') => out.push('-'),
            other => {
                // Inside a class every non-alphanumeric character is escaped; a backslash is
                // a literal backslash in POSIX.
                if other.is_ascii_alphanumeric() || !other.is_ascii() {
                    out.push(other);
                } else {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        first = false;
    }
    out.push(']');
    Some(index)
}
