//! Line editor for one session, without I/O.
//!
//! Contract:
//! - [`LineEditor::key`] takes one decoded data byte (after the telnet layer) and either edits
//!   the line, writing the echo to the output buffer, or returns an [`EditorEvent`] for the
//!   session (a submitted line, end of input, a completion or help request). As in libcli,
//!   Ctrl-C and a backspace with nothing to erase ring the bell and keep the line.
//! - Echo uses only backspace (0x08), spaces and the characters themselves, so it works on any
//!   terminal; ANSI sequences are understood on input (arrows, Home, End, Delete) but never sent.
//! - Nothing is echoed when [`EditMode::echo`] is false: passwords, and clients that echo
//!   locally (a raw TCP client that never agreed to our `WILL ECHO`).
//! - Bounded: the line holds at most `max_bytes` bytes of UTF-8; further characters are dropped
//!   (one bell) and the line is refused at Enter ([`EditorEvent::TooLong`]). History keeps at most
//!   `history_limit` lines. An escape sequence is at most [`ESCAPE_LIMIT`] bytes.

use std::collections::VecDeque;

use crate::lexer;
use crate::output::OutputBuffer;

/// Longest escape sequence parameter list accepted before the sequence is dropped.
pub(crate) const ESCAPE_LIMIT: usize = 8;

const BACKSPACE: u8 = 0x08;
const BELL: u8 = 0x07;

/// How the current line is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EditMode {
    /// Echo typed characters and cursor movement back to the client.
    pub(crate) echo: bool,
    /// TAB, `?` and history navigation are commands (at the command prompt in character mode);
    /// otherwise TAB is a blank, `?` an ordinary character and the arrows do nothing.
    pub(crate) command_keys: bool,
}

/// What the session must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EditorEvent {
    /// Enter: the finished line (the editor is empty again).
    Submit(String),
    /// Enter on a line that exceeded the limit: the line was discarded.
    TooLong,
    /// Ctrl-D on an empty line.
    EndOfInput,
    /// TAB: complete the word before the cursor.
    Complete,
    /// `?` outside quotes: list what may follow the text before the cursor.
    Help,
}

/// Escape sequence decoder state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// After `ESC [`: collecting parameter bytes.
    Csi {
        param: [u8; ESCAPE_LIMIT],
        len: usize,
    },
    /// After `ESC O`.
    Ss3,
}

/// Cursor and editing keys decoded from control bytes and escape sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Motion {
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    Delete,
}

/// Incremental UTF-8 assembly of multi-byte characters.
#[derive(Debug, Clone, Copy, Default)]
struct Utf8Assembler {
    bytes: [u8; 4],
    have: usize,
    need: usize,
}

impl Utf8Assembler {
    /// Feed one byte >= 0x80; returns a character when one is complete and valid.
    fn push(&mut self, byte: u8) -> Option<char> {
        let need = match byte {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 0,
        };
        if need > 0 {
            self.bytes = [byte, 0, 0, 0];
            self.have = 1;
            self.need = need;
            return None;
        }
        if !(0x80..=0xBF).contains(&byte) || self.need == 0 {
            *self = Self::default();
            return None;
        }
        if let Some(slot) = self.bytes.get_mut(self.have) {
            *slot = byte;
            self.have += 1;
        }
        if self.have < self.need {
            return None;
        }
        let decoded = self
            .bytes
            .get(..self.need)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|text| text.chars().next());
        *self = Self::default();
        decoded
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// The line being typed, its cursor, and the session's history.
#[derive(Debug, Clone)]
pub(crate) struct LineEditor {
    chars: Vec<char>,
    cursor: usize,
    /// UTF-8 length of `chars`.
    bytes: usize,
    max_bytes: usize,
    /// A character was refused because the line was full: the line is refused at Enter.
    overflow: bool,
    utf8: Utf8Assembler,
    escape: Escape,
    history: VecDeque<String>,
    history_limit: usize,
    /// Index into `history` while browsing with up/down.
    browsing: Option<usize>,
    /// The line that was being typed when browsing started.
    stash: Vec<char>,
}

impl LineEditor {
    /// An empty editor for lines of at most `max_bytes` bytes and `history_limit` history lines.
    pub(crate) fn new(max_bytes: usize, history_limit: usize) -> Self {
        Self {
            chars: Vec::new(),
            cursor: 0,
            bytes: 0,
            max_bytes,
            overflow: false,
            utf8: Utf8Assembler::default(),
            escape: Escape::None,
            history: VecDeque::new(),
            history_limit,
            browsing: None,
            stash: Vec::new(),
        }
    }

    /// The whole line.
    pub(crate) fn line(&self) -> String {
        self.chars.iter().collect()
    }

    /// The text before the cursor.
    pub(crate) fn before_cursor(&self) -> String {
        self.chars.iter().take(self.cursor).collect()
    }

    /// Cursor position in characters.
    #[cfg(test)]
    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    /// The cursor is at the end of the line.
    pub(crate) fn cursor_at_end(&self) -> bool {
        self.cursor == self.chars.len()
    }

    /// History, oldest first.
    pub(crate) fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Remember a submitted command line as typed (libcli: empty lines and a repeat of the
    /// last line, ignoring case, are skipped).
    pub(crate) fn remember(&mut self, line: &str) {
        if self.history_limit == 0
            || line.is_empty()
            || self.history.back().is_some_and(|last| last.eq_ignore_ascii_case(line))
        {
            return;
        }
        while self.history.len() >= self.history_limit {
            self.history.pop_front();
        }
        self.history.push_back(line.to_owned());
    }

    /// Discard the line without echo (used when the session changes phase).
    pub(crate) fn clear(&mut self) {
        self.chars.clear();
        self.cursor = 0;
        self.bytes = 0;
        self.overflow = false;
        self.utf8.reset();
        self.escape = Escape::None;
        self.browsing = None;
        self.stash.clear();
    }

    /// Write the line and put the terminal cursor where the editing cursor is (after a prompt).
    pub(crate) fn redraw(&self, out: &mut OutputBuffer) {
        for &ch in &self.chars {
            out.push_char(ch);
        }
        out.push_repeated(BACKSPACE, self.chars.len() - self.cursor);
    }

    /// TAB's completion as libcli writes it: back over the `typed` characters before the cursor
    /// (at the end of the line) and write `text` in their place. Refused (bell) when the line
    /// would pass its limit.
    pub(crate) fn complete_word(
        &mut self,
        typed: usize,
        text: &str,
        echo: bool,
        out: &mut OutputBuffer,
    ) {
        let keep = self.chars.len().saturating_sub(typed);
        let kept: usize = self.chars.iter().take(keep).map(|ch| ch.len_utf8()).sum();
        if kept + text.len() > self.max_bytes {
            out.push_byte(BELL);
            return;
        }
        if echo {
            out.push_repeated(BACKSPACE, self.chars.len() - keep);
            out.push_text(text);
        }
        self.chars.truncate(keep);
        self.chars.extend(text.chars());
        self.bytes = kept + text.len();
        self.cursor = self.chars.len();
    }

    /// Process one data byte.
    pub(crate) fn key(
        &mut self,
        byte: u8,
        mode: EditMode,
        out: &mut OutputBuffer,
    ) -> Option<EditorEvent> {
        if self.escape != Escape::None {
            if let Some(motion) = self.escape_byte(byte) {
                self.motion(motion, mode, out);
            }
            return None;
        }
        if byte >= 0x80 {
            if let Some(ch) = self.utf8.push(byte) {
                self.insert(ch, mode.echo, out);
            }
            return None;
        }
        self.utf8.reset();
        match byte {
            b'\r' | b'\n' => Some(self.finish()),
            // libcli: Ctrl-C rings the bell and keeps the line.
            0x03 => {
                out.push_byte(BELL);
                None
            }
            0x04 if self.chars.is_empty() => Some(EditorEvent::EndOfInput),
            0x04 => {
                self.motion(Motion::Delete, mode, out);
                None
            }
            0x01 => self.motion_none(Motion::Home, mode, out),
            0x05 => self.motion_none(Motion::End, mode, out),
            0x02 => self.motion_none(Motion::Left, mode, out),
            0x06 => self.motion_none(Motion::Right, mode, out),
            0x10 => self.motion_none(Motion::Up, mode, out),
            0x0E => self.motion_none(Motion::Down, mode, out),
            BACKSPACE | 0x7F => {
                if self.cursor > 0 {
                    self.delete_range(self.cursor - 1, self.cursor, mode.echo, out);
                } else {
                    // libcli: nothing to erase rings the bell.
                    out.push_byte(BELL);
                }
                None
            }
            0x0B => {
                self.delete_range(self.cursor, self.chars.len(), mode.echo, out);
                None
            }
            0x15 => {
                self.overflow = false;
                self.replace_line(Vec::new(), mode.echo, out);
                None
            }
            0x17 => {
                let start = self.word_start();
                self.delete_range(start, self.cursor, mode.echo, out);
                None
            }
            0x1B => {
                self.escape = Escape::Start;
                None
            }
            b'\t' if mode.command_keys => Some(EditorEvent::Complete),
            b'\t' => {
                self.insert(' ', mode.echo, out);
                None
            }
            b'?' if mode.command_keys && !lexer::ends_inside_quote(&self.before_cursor()) => {
                Some(EditorEvent::Help)
            }
            0x20..=0x7E => {
                self.insert(char::from(byte), mode.echo, out);
                None
            }
            // Other control characters (NUL, bell, ^L, …) do nothing.
            _ => None,
        }
    }

    fn motion_none(
        &mut self,
        motion: Motion,
        mode: EditMode,
        out: &mut OutputBuffer,
    ) -> Option<EditorEvent> {
        self.motion(motion, mode, out);
        None
    }

    fn finish(&mut self) -> EditorEvent {
        let event =
            if self.overflow { EditorEvent::TooLong } else { EditorEvent::Submit(self.line()) };
        self.clear();
        event
    }

    /// Advance the escape decoder; returns a motion when a known sequence completes.
    fn escape_byte(&mut self, byte: u8) -> Option<Motion> {
        match self.escape {
            Escape::None => None,
            Escape::Start => {
                self.escape = match byte {
                    b'[' => Escape::Csi { param: [0; ESCAPE_LIMIT], len: 0 },
                    b'O' => Escape::Ss3,
                    _ => Escape::None,
                };
                None
            }
            Escape::Ss3 => {
                self.escape = Escape::None;
                final_motion(byte)
            }
            Escape::Csi { mut param, len } => {
                if (0x40..=0x7E).contains(&byte) {
                    self.escape = Escape::None;
                    return match byte {
                        b'~' => match param.get(..len) {
                            Some(b"1" | b"7") => Some(Motion::Home),
                            Some(b"4" | b"8") => Some(Motion::End),
                            Some(b"3") => Some(Motion::Delete),
                            _ => None,
                        },
                        _ => final_motion(byte),
                    };
                }
                match param.get_mut(len) {
                    Some(slot) if (0x20..=0x3F).contains(&byte) => {
                        *slot = byte;
                        self.escape = Escape::Csi { param, len: len + 1 };
                    }
                    // Too long or not a CSI byte: drop the sequence.
                    _ => self.escape = Escape::None,
                }
                None
            }
        }
    }

    fn motion(&mut self, motion: Motion, mode: EditMode, out: &mut OutputBuffer) {
        let echo = mode.echo;
        match motion {
            Motion::Left if self.cursor > 0 => {
                self.cursor -= 1;
                if echo {
                    out.push_byte(BACKSPACE);
                }
            }
            Motion::Right => {
                if let Some(&ch) = self.chars.get(self.cursor) {
                    self.cursor += 1;
                    if echo {
                        out.push_char(ch);
                    }
                }
            }
            Motion::Home => {
                if echo {
                    out.push_repeated(BACKSPACE, self.cursor);
                }
                self.cursor = 0;
            }
            Motion::End => {
                if echo {
                    for &ch in self.chars.get(self.cursor..).unwrap_or_default() {
                        out.push_char(ch);
                    }
                }
                self.cursor = self.chars.len();
            }
            Motion::Delete if self.cursor < self.chars.len() => {
                self.delete_range(self.cursor, self.cursor + 1, echo, out);
            }
            Motion::Up if mode.command_keys => self.history_up(echo, out),
            Motion::Down if mode.command_keys => self.history_down(echo, out),
            _ => {}
        }
    }

    fn history_up(&mut self, echo: bool, out: &mut OutputBuffer) {
        let index = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.stash = self.chars.clone();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(index) => index - 1,
        };
        self.browsing = Some(index);
        if let Some(line) = self.history.get(index) {
            let chars = line.chars().collect();
            self.replace_line(chars, echo, out);
        }
    }

    fn history_down(&mut self, echo: bool, out: &mut OutputBuffer) {
        let Some(index) = self.browsing else { return };
        let next = index + 1;
        let chars = match self.history.get(next) {
            Some(line) => {
                self.browsing = Some(next);
                line.chars().collect()
            }
            None => {
                self.browsing = None;
                std::mem::take(&mut self.stash)
            }
        };
        self.replace_line(chars, echo, out);
    }

    fn insert(&mut self, ch: char, echo: bool, out: &mut OutputBuffer) {
        if self.bytes + ch.len_utf8() > self.max_bytes {
            if !self.overflow && echo {
                out.push_byte(BELL);
            }
            self.overflow = true;
            return;
        }
        self.chars.insert(self.cursor, ch);
        self.cursor += 1;
        self.bytes += ch.len_utf8();
        if echo {
            out.push_char(ch);
            self.echo_tail(0, out);
        }
    }

    /// Write the characters after the cursor, `blanks` spaces, then move back to the cursor.
    fn echo_tail(&self, blanks: usize, out: &mut OutputBuffer) {
        let tail = self.chars.get(self.cursor..).unwrap_or_default();
        for &ch in tail {
            out.push_char(ch);
        }
        out.push_repeated(b' ', blanks);
        out.push_repeated(BACKSPACE, tail.len() + blanks);
    }

    /// Delete `chars[from..to]` and leave the cursor at `from`.
    fn delete_range(&mut self, from: usize, to: usize, echo: bool, out: &mut OutputBuffer) {
        let to = to.min(self.chars.len());
        if from >= to {
            return;
        }
        if echo {
            if self.cursor > from {
                out.push_repeated(BACKSPACE, self.cursor - from);
            } else {
                for &ch in self.chars.get(self.cursor..from).unwrap_or_default() {
                    out.push_char(ch);
                }
            }
        }
        let removed: usize = self.chars.drain(from..to).map(char::len_utf8).sum();
        self.bytes -= removed;
        self.cursor = from;
        if echo {
            self.echo_tail(to - from, out);
        }
    }

    /// Replace the whole line, leaving the cursor at its end.
    fn replace_line(&mut self, chars: Vec<char>, echo: bool, out: &mut OutputBuffer) {
        let old_len = self.chars.len();
        if echo {
            out.push_repeated(BACKSPACE, self.cursor);
            for &ch in &chars {
                out.push_char(ch);
            }
            let blanks = old_len.saturating_sub(chars.len());
            out.push_repeated(b' ', blanks);
            out.push_repeated(BACKSPACE, blanks);
        }
        self.bytes = chars.iter().map(|ch| ch.len_utf8()).sum();
        self.cursor = chars.len();
        self.chars = chars;
    }

    /// Start of the word before the cursor (blanks before it included), for Ctrl-W.
    fn word_start(&self) -> usize {
        let before = self.chars.get(..self.cursor).unwrap_or_default();
        let blanks = before.iter().rev().take_while(|ch| ch.is_whitespace()).count();
        let word = before.iter().rev().skip(blanks).take_while(|ch| !ch.is_whitespace()).count();
        self.cursor - blanks - word
    }
}

fn final_motion(byte: u8) -> Option<Motion> {
    match byte {
        b'A' => Some(Motion::Up),
        b'B' => Some(Motion::Down),
        b'C' => Some(Motion::Right),
        b'D' => Some(Motion::Left),
        b'H' => Some(Motion::Home),
        b'F' => Some(Motion::End),
        _ => None,
    }
}
