//! Values as text a terminal shows the way it was measured: display widths,
//! line breaks, control characters, wrapping and truncation.
//!
//! Widths are counted per grapheme cluster with `unicode-width`, so CJK
//! ideographs and emoji take two columns, a combining mark none, and an emoji
//! sequence (`👋🏽`, `👨‍👩‍👧‍👦`) the two of the one picture it shows. Wrapping and
//! truncation cut only between clusters, never inside one.
//!
//! What would move the cursor is made visible instead: a tab becomes spaces
//! up to the next multiple of [`TAB_STOP`] columns, any other control
//! character its Unicode "control picture" (`␛` for ESC, so no escape
//! sequence in the data reaches the terminal), C1 controls `�`. Line breaks
//! (LF, CRLF, CR, NEL, U+2028, U+2029) split a value into lines, or are shown
//! as [`LINE_BREAK_MARK`] where a value must stay on one line.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Tabs expand to the next multiple of this many columns.
pub const TAB_STOP: usize = 4;

/// Stands for a line break in a value shown on one line.
pub const LINE_BREAK_MARK: char = '↵';

/// Ends a truncated value.
pub const ELLIPSIS: char = '…';

/// The columns `text` takes on a terminal.
pub fn display_width(text: &str) -> usize {
    if text.is_ascii() {
        return text.len();
    }
    text.graphemes(true).map(UnicodeWidthStr::width).sum()
}

/// Splits a value at its line breaks (LF, CRLF, CR, NEL, U+2028, U+2029).
/// A value without any is one line; an empty value is one empty line.
pub fn split_lines(value: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = value.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if !is_line_break(c) {
            continue;
        }
        lines.push(&value[start..index]);
        start = index + c.len_utf8();
        if c == '\r' && chars.peek().is_some_and(|&(_, next)| next == '\n') {
            chars.next();
            start += 1;
        }
    }
    lines.push(&value[start..]);
    lines
}

fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Appends one line of a value (no line breaks in it) with tabs expanded and
/// control characters made visible.
pub fn push_visible(line: &str, out: &mut String) {
    let mut column = 0;
    for c in line.chars() {
        match c {
            '\t' => {
                let spaces = TAB_STOP - column % TAB_STOP;
                out.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
                continue;
            }
            '\u{0}'..='\u{1f}' => {
                out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}'))
            }
            '\u{7f}' => out.push('\u{2421}'),
            '\u{80}'..='\u{9f}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
        column += c.width().unwrap_or(1);
    }
}

/// A whole value on one line: its lines made visible and joined by
/// [`LINE_BREAK_MARK`].
pub fn single_line(value: &str, out: &mut String) {
    for (n, line) in split_lines(value).into_iter().enumerate() {
        if n > 0 {
            out.push(LINE_BREAK_MARK);
        }
        push_visible(line, out);
    }
}

/// The widest of a value's lines, made visible.
pub fn widest_line(value: &str) -> usize {
    let mut line = String::new();
    split_lines(value)
        .into_iter()
        .map(|raw| {
            line.clear();
            push_visible(raw, &mut line);
            display_width(&line)
        })
        .max()
        .unwrap_or(0)
}

/// Cuts a visible line to at most `width` columns (`width` >= 2), ending it
/// with [`ELLIPSIS`] when anything was cut.
pub fn truncate(line: &str, width: usize) -> String {
    if display_width(line) <= width {
        return line.to_owned();
    }
    let room = width.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for grapheme in line.graphemes(true) {
        let w = grapheme.width();
        if used + w > room {
            break;
        }
        out.push_str(grapheme);
        used += w;
    }
    out.push(ELLIPSIS);
    out
}

/// Wraps a visible line into lines of at most `width` columns (`width` >=
/// 2), appending them to `out`: breaks go between words where they can, and
/// a word longer than a line is cut between grapheme clusters. Spaces at a
/// break are dropped; leading spaces of the value are kept.
///
/// Not `textwrap`: it measures and cuts per `char`, not per cluster. Given
/// `"👨‍👩‍👧‍👦👋🏽🎉"` at width 4 (6 columns as shown) it counts 14 columns and
/// cuts the family emoji in two (`["👨‍👩‍", "👧‍👦", "👋🏽", "🎉"]`, where
/// this gives `["👨‍👩‍👧‍👦👋🏽", "🎉"]`), and it drops leading spaces
/// (`"   lead"` at 5 gives `["", "lead"]`).
pub fn wrap(line: &str, width: usize, out: &mut Vec<String>) {
    if display_width(line) <= width {
        out.push(line.to_owned());
        return;
    }
    let first = out.len();
    let mut current = String::new();
    let mut used = 0;
    for token in words_and_spaces(line) {
        let w = display_width(token);
        if token.starts_with(' ') {
            if used + w <= width && !(current.is_empty() && out.len() > first) {
                current.push_str(token);
                used += w;
            } else if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                used = 0;
            }
            continue;
        }
        if used + w <= width {
            current.push_str(token);
            used += w;
            continue;
        }
        if w <= width {
            if !current.is_empty() {
                push_trimmed(out, std::mem::take(&mut current));
            }
            current.push_str(token);
            used = w;
            continue;
        }
        // Longer than a line: fill this line, then cut between clusters.
        for grapheme in token.graphemes(true) {
            let w = grapheme.width();
            if used + w > width && used > 0 {
                out.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push_str(grapheme);
            used += w;
        }
    }
    if !current.is_empty() || out.len() == first {
        push_trimmed(out, current);
    }
}

fn push_trimmed(out: &mut Vec<String>, mut line: String) {
    let kept = line.trim_end_matches(' ').len();
    if kept > 0 {
        line.truncate(kept);
    }
    out.push(line);
}

/// Runs of spaces and runs of anything else, in order.
fn words_and_spaces(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let space = first == ' ';
        let end = rest
            .find(|c: char| (c == ' ') != space)
            .unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        rest = tail;
        Some(token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(line: &str) -> String {
        let mut out = String::new();
        push_visible(line, &mut out);
        out
    }

    fn wrapped(line: &str, width: usize) -> Vec<String> {
        let mut out = Vec::new();
        wrap(line, width, &mut out);
        for piece in &out {
            assert!(
                display_width(piece) <= width,
                "{piece:?} wider than {width}"
            );
        }
        out
    }

    #[test]
    fn wide_and_zero_width_characters_are_measured_as_shown() {
        assert_eq!(display_width("abc"), 3);
        assert_eq!(display_width("你好"), 4);
        assert_eq!(display_width("日本語もOK"), 10);
        assert_eq!(display_width("🎉"), 2);
        assert_eq!(display_width("👋🏽"), 2);
        assert_eq!(display_width("👨‍👩‍👧‍👦"), 2);
        assert_eq!(display_width("e\u{301}"), 1);
        assert_eq!(display_width("Z̵a̶l̷g̸o"), 5);
        assert_eq!(display_width("✅"), 2);
        assert_eq!(display_width(""), 0);
    }

    #[test]
    fn line_breaks_of_every_kind_split_a_value() {
        assert_eq!(split_lines("a\nb\r\nc\rd"), ["a", "b", "c", "d"]);
        assert_eq!(
            split_lines("a\u{85}b\u{2028}c\u{2029}d"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(split_lines("\r\n"), ["", ""]);
        assert_eq!(split_lines("a\n\nb"), ["a", "", "b"]);
        assert_eq!(split_lines("\r\r\n"), ["", "", ""]);
        assert_eq!(split_lines(""), [""]);
        let mut one = String::new();
        single_line("Windows line\r\nbreak\nand\rmore", &mut one);
        assert_eq!(one, "Windows line↵break↵and↵more");
    }

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(visible("a\u{1b}[31mred"), "a␛[31mred");
        assert_eq!(
            visible("nul\u{0}bell\u{7}del\u{7f}c1\u{9b}"),
            "nul␀bell␇del␡c1\u{fffd}"
        );
        assert_eq!(visible("\u{b}\u{c}"), "␋␌");
        assert_eq!(visible("a\tb"), "a   b");
        assert_eq!(visible("\tx"), "    x");
        assert_eq!(visible("abcd\te"), "abcd    e");
        assert_eq!(visible("你\tx"), "你  x");
        assert_eq!(widest_line("ab\nabc\tx\n"), 5);
    }

    #[test]
    fn truncation_cuts_between_clusters_and_marks_the_cut() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(truncate("你好世界", 5), "你好…");
        assert_eq!(truncate("你好世界", 6), "你好…");
        assert_eq!(truncate("你好世界", 7), "你好世…");
        assert_eq!(truncate("👨‍👩‍👧‍👦👨‍👩‍👧‍👦", 3), "👨‍👩‍👧‍👦…");
        assert_eq!(truncate("e\u{301}e\u{301}e\u{301}", 2), "e\u{301}…");
        assert_eq!(truncate("abc", 2), "a…");
        for width in 2..12 {
            assert!(display_width(&truncate("Thanks 👋🏽 日本語 done", width)) <= width);
        }
    }

    #[test]
    fn wrapping_prefers_spaces() {
        assert_eq!(wrapped("short", 10), ["short"]);
        assert_eq!(
            wrapped("Hi! Can you sum column A for me?", 12),
            ["Hi! Can you", "sum column A", "for me?"]
        );
        assert_eq!(wrapped("a    b", 3), ["a", "b"]);
        assert_eq!(wrapped("   lead", 5), ["   ", "lead"]);
        assert_eq!(wrapped("", 4), [""]);
    }

    #[test]
    fn long_words_are_cut_between_clusters() {
        assert_eq!(wrapped("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrapped("to abcdefgh", 5), ["to ab", "cdefg", "h"]);
        assert_eq!(wrapped("你好世界", 3), ["你", "好", "世", "界"]);
        assert_eq!(wrapped("你好世界", 5), ["你好", "世界"]);
        assert_eq!(wrapped("👨‍👩‍👧‍👦👋🏽🎉", 4), ["👨‍👩‍👧‍👦👋🏽", "🎉"]);
        assert_eq!(
            wrapped("e\u{301}e\u{301}e\u{301}", 2),
            ["e\u{301}e\u{301}", "e\u{301}"]
        );
        let long = "Lorem, ipsum 你好 👋🏽 مرحبا e\u{301} =SUM(A1) ".repeat(50);
        for width in 2..30 {
            let lines = wrapped(&long, width);
            let joined: String = lines.concat();
            assert_eq!(
                joined.replace(' ', ""),
                long.replace(' ', ""),
                "nothing but spaces is lost at width {width}"
            );
        }
    }
}
