//! Escaping text for the formats formatters write: XML (which is also safe
//! HTML) and inline Markdown. JSON strings are in [`crate::json`].
//!
//! ```
//! use export_plugin_api::escape::{xml, Xml};
//! assert_eq!(xml("a < b & \"c\""), "a &lt; b &amp; &quot;c&quot;");
//! // Any `Display` value, such as a `rows::Cell`, escaped as it is written:
//! assert_eq!(format!("<v>{}</v>", Xml(format_args!("{}<{}", 1, 2))), "<v>1&lt;2</v>");
//! ```

use std::borrow::Cow;
use std::fmt;

pub mod markdown;

/// `text` escaped for XML and HTML, in element text and in quoted attribute
/// values alike: `&`, `<`, `>`, `"` and `'` become references, and the
/// characters XML 1.0 cannot carry (controls other than tab and line breaks,
/// U+FFFE, U+FFFF) become U+FFFD. Borrowed when nothing needed escaping.
pub fn xml(text: &str) -> Cow<'_, str> {
    match text.find(needs_xml_escape) {
        None => Cow::Borrowed(text),
        Some(first) => {
            let mut out = String::with_capacity(text.len() + 8);
            out.push_str(&text[..first]);
            push_xml(&mut out, &text[first..]);
            Cow::Owned(out)
        }
    }
}

/// Appends `text` to `out`, escaped as by [`xml`].
pub fn push_xml(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(index) = rest.find(needs_xml_escape) {
        out.push_str(&rest[..index]);
        let c = rest[index..].chars().next().unwrap_or('\u{fffd}');
        out.push_str(xml_replacement(c));
        rest = &rest[index + c.len_utf8()..];
    }
    out.push_str(rest);
}

/// A value whose text (its `Display`) is written escaped as by [`xml`],
/// without building the text first: `write!(out, "<v>{}</v>", Xml(cell))`.
pub struct Xml<T>(pub T);

impl<T: fmt::Display> fmt::Display for Xml<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        write!(XmlWriter(f), "{}", self.0)
    }
}

/// Escapes what is written through it into the formatter it wraps.
struct XmlWriter<'f, 'g>(&'f mut fmt::Formatter<'g>);

impl fmt::Write for XmlWriter<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(index) = rest.find(needs_xml_escape) {
            self.0.write_str(&rest[..index])?;
            let c = rest[index..].chars().next().unwrap_or('\u{fffd}');
            self.0.write_str(xml_replacement(c))?;
            rest = &rest[index + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn needs_xml_escape(c: char) -> bool {
    match c {
        '&' | '<' | '>' | '"' | '\'' | '\u{fffe}' | '\u{ffff}' => true,
        '\t' | '\n' | '\r' => false,
        c => (c as u32) < 0x20,
    }
}

/// What stands for `c`, one of the characters [`needs_xml_escape`] finds.
fn xml_replacement(c: char) -> &'static str {
    match c {
        '&' => "&amp;",
        '<' => "&lt;",
        '>' => "&gt;",
        '"' => "&quot;",
        '\'' => "&#39;",
        _ => "\u{fffd}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escaping as one plain loop, to check the faster paths against.
    fn reference(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                '\t' | '\n' | '\r' => out.push(c),
                c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                    out.push('\u{fffd}')
                }
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn xml_escapes_markup_and_replaces_what_xml_cannot_carry() {
        assert_eq!(
            xml("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(xml("a\u{1}b\u{ffff}"), "a\u{fffd}b\u{fffd}");
        assert_eq!(xml("tab\tline\r\n"), "tab\tline\r\n");
        assert!(matches!(xml("plain 日本 👋🏽"), Cow::Borrowed(_)));
        for text in ["", "x", "é&é", "<<", "a\u{0}\u{7f}\u{80}é'\"", "&amp;"] {
            assert_eq!(xml(text), reference(text), "{text:?}");
            assert_eq!(Xml(text).to_string(), reference(text), "{text:?}");
            let mut out = String::from("kept:");
            push_xml(&mut out, text);
            assert_eq!(out, format!("kept:{}", reference(text)));
        }
    }
}
