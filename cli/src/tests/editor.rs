//! Byte-exact tests of the line editor: every key and its echo.

use crate::editor::{EditMode, EditorEvent, LineEditor};
use crate::output::OutputBuffer;
use crate::tests::visible;

const ECHO: EditMode = EditMode { echo: true, command_keys: true };
const SILENT: EditMode = EditMode { echo: false, command_keys: false };

/// Feed keys; returns the events and the echo (made visible).
fn keys(editor: &mut LineEditor, mode: EditMode, bytes: &[u8]) -> (Vec<EditorEvent>, String) {
    let mut out = OutputBuffer::default();
    let events = bytes.iter().filter_map(|&byte| editor.key(byte, mode, &mut out)).collect();
    (events, visible(out.pending()))
}

fn editor_with(text: &str) -> LineEditor {
    let mut editor = LineEditor::new(4096, 16);
    keys(&mut editor, ECHO, text.as_bytes());
    editor
}

#[test]
fn typing_echoes_and_enter_submits() {
    let mut editor = LineEditor::new(4096, 16);
    assert_eq!(keys(&mut editor, ECHO, b"show"), (vec![], "show".to_owned()));
    assert_eq!(
        keys(&mut editor, ECHO, b"\r"),
        (vec![EditorEvent::Submit("show".to_owned())], String::new())
    );
    assert_eq!(editor.line(), "");
    keys(&mut editor, ECHO, b"x");
    assert_eq!(keys(&mut editor, ECHO, b"\n").0, [EditorEvent::Submit("x".to_owned())]);
}

#[test]
fn backspace_and_del_erase_before_the_cursor() {
    let mut editor = editor_with("abc");
    assert_eq!(keys(&mut editor, ECHO, b"\x7f").1, "\\b \\b");
    assert_eq!(editor.line(), "ab");
    assert_eq!(keys(&mut editor, ECHO, b"\x08").1, "\\b \\b");
    assert_eq!(editor.line(), "a");
    // In the middle: the tail is redrawn and the cursor put back.
    let mut editor = editor_with("abc");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[D").1, "\\b");
    assert_eq!(keys(&mut editor, ECHO, b"\x7f").1, "\\bc \\b\\b");
    assert_eq!((editor.line().as_str(), editor.cursor()), ("ac", 1));
    // At the start: the bell (libcli).
    keys(&mut editor, ECHO, b"\x01");
    assert_eq!(keys(&mut editor, ECHO, b"\x7f").1, "\\a");
    assert_eq!(editor.line(), "ac");
}

#[test]
fn insert_in_the_middle_redraws_the_tail() {
    let mut editor = editor_with("ac");
    keys(&mut editor, ECHO, b"\x02");
    assert_eq!(keys(&mut editor, ECHO, b"b").1, "bc\\b");
    assert_eq!((editor.line().as_str(), editor.cursor()), ("abc", 2));
}

#[test]
fn ctrl_u_erases_the_line() {
    let mut editor = editor_with("abc");
    assert_eq!(keys(&mut editor, ECHO, b"\x15").1, "\\b\\b\\b   \\b\\b\\b");
    assert_eq!(editor.line(), "");
}

#[test]
fn ctrl_w_erases_the_word_before_the_cursor() {
    let mut editor = editor_with("show conn");
    assert_eq!(keys(&mut editor, ECHO, b"\x17").1, "\\b\\b\\b\\b    \\b\\b\\b\\b");
    assert_eq!(editor.line(), "show ");
    assert_eq!(keys(&mut editor, ECHO, b"\x17").1, "\\b\\b\\b\\b\\b     \\b\\b\\b\\b\\b");
    assert_eq!(editor.line(), "");
}

#[test]
fn ctrl_c_rings_and_keeps_the_line_and_ctrl_d_quits_only_on_an_empty_line() {
    let mut editor = editor_with("abc");
    assert_eq!(keys(&mut editor, ECHO, b"\x03"), (vec![], "\\a".to_owned()));
    assert_eq!(editor.line(), "abc", "libcli keeps the line");
    assert_eq!(keys(&mut editor, SILENT, b"\x03").1, "\\a", "also while a password is typed");
    keys(&mut editor, ECHO, b"\x15");
    assert_eq!(keys(&mut editor, ECHO, b"\x04").0, [EditorEvent::EndOfInput]);
    // On a non-empty line ^D deletes the character under the cursor.
    let mut editor = editor_with("abc");
    keys(&mut editor, ECHO, b"\x01");
    assert_eq!(keys(&mut editor, ECHO, b"\x04"), (vec![], "bc \\b\\b\\b".to_owned()));
    assert_eq!(editor.line(), "bc");
}

#[test]
fn cursor_keys_move_and_echo() {
    let mut editor = editor_with("abcd");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[D\x1bOD\x02").1, "\\b\\b\\b");
    assert_eq!(editor.cursor(), 1);
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[C").1, "b");
    assert_eq!(keys(&mut editor, ECHO, b"\x06").1, "c");
    assert_eq!(keys(&mut editor, ECHO, b"\x01").1, "\\b\\b\\b");
    assert_eq!(editor.cursor(), 0);
    assert_eq!(keys(&mut editor, ECHO, b"\x05").1, "abcd");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[H").1, "\\b\\b\\b\\b");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[4~").1, "abcd");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[1~\x1b[F").1, "\\b\\b\\b\\babcd");
    // Right at the end and left at the start do nothing.
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[C").1, "");
    keys(&mut editor, ECHO, b"\x01");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[D").1, "");
    // Delete key.
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[3~").1, "bcd \\b\\b\\b\\b");
    assert_eq!(editor.line(), "bcd");
    // ^K kills to the end.
    keys(&mut editor, ECHO, b"\x06");
    assert_eq!(keys(&mut editor, ECHO, b"\x0b").1, "  \\b\\b");
    assert_eq!(editor.line(), "b");
}

#[test]
fn unknown_and_overlong_escape_sequences_are_dropped() {
    let mut editor = editor_with("a");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[99Z\x1bxb").1, "b");
    // The ninth parameter byte ends the sequence; what follows is typed text.
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[123456789012c").1, "012c");
    assert_eq!(editor.line(), "ab012c");
}

#[test]
fn history_up_and_down() {
    let mut editor = LineEditor::new(4096, 16);
    editor.remember("show version");
    editor.remember("show route");
    keys(&mut editor, ECHO, b"sh");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[A").1, "\\b\\bshow route");
    assert_eq!(keys(&mut editor, ECHO, b"\x10").1, format!("{}show version", "\\b".repeat(10)));
    // Past the oldest: nothing.
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[A").1, "");
    assert_eq!(
        keys(&mut editor, ECHO, b"\x1b[B").1,
        format!("{}show route  \\b\\b", "\\b".repeat(12))
    );
    // Past the newest: the line typed before browsing comes back.
    assert_eq!(
        keys(&mut editor, ECHO, b"\x0e").1,
        format!("{}sh        \\b\\b\\b\\b\\b\\b\\b\\b", "\\b".repeat(10))
    );
    assert_eq!(editor.line(), "sh");
    assert_eq!(keys(&mut editor, ECHO, b"\x1b[B").1, "");
}

#[test]
fn history_is_bounded_and_skips_empty_and_repeated_lines_as_libcli() {
    let mut editor = LineEditor::new(4096, 2);
    for line in ["one", "two", "TWO", "", "three"] {
        editor.remember(line);
    }
    assert_eq!(editor.history().collect::<Vec<_>>(), ["two", "three"]);
    // Lines are kept as typed, blanks included.
    editor.remember(" show  x ");
    assert_eq!(editor.history().last(), Some(" show  x "));
    let mut none = LineEditor::new(4096, 0);
    none.remember("one");
    assert_eq!(none.history().count(), 0);
}

#[test]
fn history_keys_do_nothing_outside_the_command_prompt() {
    let mut editor = LineEditor::new(4096, 4);
    editor.remember("show version");
    let login = EditMode { echo: true, command_keys: false };
    assert_eq!(keys(&mut editor, login, b"\x1b[A\x10"), (vec![], String::new()));
    assert_eq!(editor.line(), "");
}

#[test]
fn tab_and_question_mark_are_commands_only_at_the_prompt() {
    let mut editor = editor_with("sh");
    assert_eq!(
        keys(&mut editor, ECHO, b"\t?"),
        (vec![EditorEvent::Complete, EditorEvent::Help], String::new())
    );
    // Inside quotes `?` is text.
    let mut editor = editor_with("show \"a");
    assert_eq!(keys(&mut editor, ECHO, b"?"), (vec![], "?".to_owned()));
    // At login TAB is a blank and `?` a character.
    let mut editor = LineEditor::new(4096, 4);
    let login = EditMode { echo: true, command_keys: false };
    assert_eq!(keys(&mut editor, login, b"a\tb?"), (vec![], "a b?".to_owned()));
}

#[test]
fn without_echo_nothing_is_written() {
    let mut editor = LineEditor::new(4096, 4);
    let (events, echo) = keys(&mut editor, SILENT, b"secret\x7fT\x1b[D\x15pw\r");
    assert_eq!(events, [EditorEvent::Submit("pw".to_owned())]);
    assert_eq!(echo, "");
}

#[test]
fn an_overlong_line_rings_once_and_is_refused_at_enter() {
    let mut editor = LineEditor::new(4, 4);
    assert_eq!(keys(&mut editor, ECHO, b"abcdefgh").1, "abcd\\a");
    assert_eq!(editor.line(), "abcd");
    assert_eq!(keys(&mut editor, ECHO, b"\r").0, [EditorEvent::TooLong]);
    assert_eq!(keys(&mut editor, ECHO, b"ok\r").0, [EditorEvent::Submit("ok".to_owned())]);
    // ^U forgives an overflow.
    keys(&mut editor, ECHO, b"abcdef\x15");
    assert_eq!(keys(&mut editor, ECHO, b"x\r").0, [EditorEvent::Submit("x".to_owned())]);
}

#[test]
fn utf8_characters_are_edited_as_one() {
    let mut editor = LineEditor::new(4096, 4);
    assert_eq!(keys(&mut editor, ECHO, "é€".as_bytes()).1, "é€");
    assert_eq!(keys(&mut editor, ECHO, b"\x7f").1, "\\b \\b");
    assert_eq!(editor.line(), "é");
    // Invalid sequences are dropped.
    assert_eq!(keys(&mut editor, ECHO, b"\xff\xc3x\x80").1, "x");
    assert_eq!(editor.line(), "éx");
    // The byte limit counts UTF-8 bytes.
    let mut small = LineEditor::new(3, 4);
    assert_eq!(keys(&mut small, ECHO, "éé".as_bytes()).1, "é\\a");
}

#[test]
fn control_characters_are_ignored() {
    let mut editor = LineEditor::new(4096, 4);
    assert_eq!(keys(&mut editor, ECHO, b"\0\x07\x0c\x1a\x1fa"), (vec![], "a".to_owned()));
}

#[test]
fn redraw_and_complete_word() {
    let mut editor = editor_with("show co");
    keys(&mut editor, ECHO, b"\x1b[D\x1b[D");
    let mut out = OutputBuffer::default();
    editor.redraw(&mut out);
    assert_eq!(visible(out.pending()), "show co\\b\\b");
    let mut out = OutputBuffer::default();
    keys(&mut editor, ECHO, b"\x05");
    assert!(editor.cursor_at_end());
    // libcli backs over the typed part and writes the whole word.
    editor.complete_word(2, "connections ", true, &mut out);
    assert_eq!(visible(out.pending()), "\\b\\bconnections ");
    assert_eq!(editor.line(), "show connections ");
    assert_eq!(editor.before_cursor(), "show connections ");
    // Past the line limit: the bell, nothing changes.
    let mut short = LineEditor::new(8, 4);
    keys(&mut short, ECHO, b"show co");
    let mut out = OutputBuffer::default();
    short.complete_word(2, "connections ", true, &mut out);
    assert_eq!((visible(out.pending()).as_str(), short.line().as_str()), ("\\a", "show co"));
}
