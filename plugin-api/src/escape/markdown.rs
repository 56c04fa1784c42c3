//! Markdown: escaping text so that a GitHub-flavoured Markdown reader gives back
//! exactly that text, inside a table cell or anywhere inline.
//!
//! A cell is one line between two pipes, and everything in it is parsed as
//! inline Markdown. So, for a value to stay in its row and column and read
//! back as written:
//!
//! - `|` becomes `\|` and `\` becomes `\\` (a pipe is always escaped, even
//!   after a backslash, because GFM splits cells before it resolves escapes);
//! - a line feed becomes `<br>` (how GitHub shows a line break in a cell), a
//!   carriage return the character reference `&#13;`, so CRLF is
//!   `&#13;<br>` and a lone CR is `&#13;`: no value ever ends the row;
//! - characters that would start inline markup get a backslash: `` ` `` `*`
//!   `~` `[` `]` `<` `&`, and `_` unless it sits between two letters or
//!   digits (`message_id` stays readable: there it cannot be emphasis);
//! - the `:` of `://` and the `.` of `www.` get a backslash, so the GFM
//!   autolink extension cannot swallow the escapes that follow into a URL;
//! - whitespace at either end, which a reader trims from a cell, becomes a
//!   character reference (`&#32;`, `&#9;`, ...).
//!
//! Everything else, including any Unicode, is written as it is. The one
//! value no Markdown can carry is U+0000: CommonMark readers turn it into
//! U+FFFD.

/// Appends `text`, escaped, to `out`.
// Inlinable across crates: formatters call it once per cell.
#[inline]
pub fn escape_inline(text: &str, out: &mut String) {
    // Byte range outside which there is only whitespace a reader would trim.
    let kept_start = text.find(|c| !is_edge_space(c)).unwrap_or(text.len());
    let kept_end = text.rfind(|c| !is_edge_space(c)).map_or(kept_start, |i| {
        i + text[i..].chars().next().map_or(0, char::len_utf8)
    });
    let mut prev: Option<char> = None;
    let mut after_cr = false;
    for (index, c) in text.char_indices() {
        let rest = &text[index + c.len_utf8()..];
        if index < kept_start || index >= kept_end {
            push_reference(c, out);
        } else if c == '\n' && after_cr {
            // The LF of a CRLF: written with its CR.
        } else {
            match c {
                '\r' if rest.starts_with('\n') => out.push_str("&#13;<br>"),
                '\r' => out.push_str("&#13;"),
                '\n' => out.push_str("<br>"),
                '\\' | '|' | '`' | '*' | '~' | '[' | ']' | '<' | '&' => {
                    out.push('\\');
                    out.push(c);
                }
                '_' if !(prev.is_some_and(char::is_alphanumeric)
                    && rest.chars().next().is_some_and(char::is_alphanumeric)) =>
                {
                    out.push_str("\\_");
                }
                ':' if rest.starts_with("//") => out.push_str("\\:"),
                '.' if index >= 3
                    && text.as_bytes()[index - 3..index].eq_ignore_ascii_case(b"www") =>
                {
                    out.push_str("\\.")
                }
                _ => out.push(c),
            }
        }
        after_cr = c == '\r';
        prev = Some(c);
    }
}

/// The text, escaped; see [`escape_inline`].
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_inline(text, &mut out);
    out
}

/// Whitespace a reader trims from the ends of a cell (line breaks are
/// written as `<br>` and `&#13;`, so they are not trimmed and do not count).
fn is_edge_space(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\n' | '\r')
}

fn push_reference(c: char, out: &mut String) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = write!(out, "&#{};", u32::from(c));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        for text in [
            "hello",
            "2024-05-01T10:00:00+02:00",
            "1.50",
            "message_id",
            "你好，世界！",
            "Thanks 👋🏽 👨‍👩‍👧‍👦 🎉",
            "Café näive Z̵a̶l̷g̸o",
            "مرحبا بالعالم — שלום עולם",
            "a > b # c ! d = e + f - g ( h ) i ' j \" k",
            "tab\tinside",
            "",
        ] {
            assert_eq!(escaped(text), text);
        }
    }

    #[test]
    fn pipes_and_backslashes_are_escaped() {
        assert_eq!(escaped("a|b"), r"a\|b");
        assert_eq!(escaped(r"a\b"), r"a\\b");
        assert_eq!(escaped(r"\|"), r"\\\|");
        assert_eq!(escaped(r"ends with \"), r"ends with \\");
        assert_eq!(escaped("||"), r"\|\|");
    }

    #[test]
    fn line_breaks_keep_the_cell_on_one_line() {
        assert_eq!(escaped("a\nb"), "a<br>b");
        assert_eq!(escaped("a\r\nb"), "a&#13;<br>b");
        assert_eq!(escaped("a\rb"), "a&#13;b");
        assert_eq!(escaped("a\n\nb"), "a<br><br>b");
        assert_eq!(escaped("\r\n\n\r"), "&#13;<br><br>&#13;");
        assert_eq!(escaped("\n"), "<br>");
        for text in ["x\ny", "\r", "a\r\n", "\n\r\n\r"] {
            let out = escaped(text);
            assert!(!out.contains(['\n', '\r']), "{out:?}");
        }
    }

    #[test]
    fn inline_markup_is_neutralised() {
        assert_eq!(escaped("*bold* `code`"), r"\*bold\* \`code\`");
        assert_eq!(escaped("~~gone~~"), r"\~\~gone\~\~");
        assert_eq!(escaped("[link](x) ![img](y)"), r"\[link\](x) !\[img\](y)");
        assert_eq!(escaped("<b>not html</b>"), r"\<b>not html\</b>");
        assert_eq!(escaped("&amp; &#42;"), r"\&amp; \&#42;");
        assert_eq!(escaped("<br>"), r"\<br>");
    }

    #[test]
    fn underscores_are_escaped_only_where_they_could_be_emphasis() {
        assert_eq!(escaped("message_id"), "message_id");
        assert_eq!(escaped("日_本"), "日_本");
        assert_eq!(escaped("_x_"), r"\_x\_");
        assert_eq!(escaped("a__b"), r"a\_\_b");
        assert_eq!(escaped("a _b_ c"), r"a \_b\_ c");
        assert_eq!(escaped("_"), r"\_");
    }

    #[test]
    fn autolinks_cannot_capture_escapes() {
        assert_eq!(
            escaped("https://x.com/?a=1&b=2"),
            r"https\://x.com/?a=1\&b=2"
        );
        assert_eq!(escaped("see www.x.com/*y*"), r"see www\.x.com/\*y\*");
        assert_eq!(escaped("WWW.X.COM"), r"WWW\.X.COM");
        assert_eq!(escaped("10:00 a.b"), "10:00 a.b");
    }

    #[test]
    fn edge_whitespace_survives_trimming() {
        assert_eq!(escaped("  x "), "&#32;&#32;x&#32;");
        assert_eq!(escaped("\tx\t"), "&#9;x&#9;");
        assert_eq!(escaped("   "), "&#32;&#32;&#32;");
        assert_eq!(escaped("\u{a0}x"), "&#160;x");
        assert_eq!(escaped("a  b"), "a  b");
        // Line breaks at the ends are not trimmed: they are <br> already.
        assert_eq!(escaped("\nx\n"), "<br>x<br>");
        assert_eq!(escaped(" \n "), "&#32;<br>&#32;");
    }
}
