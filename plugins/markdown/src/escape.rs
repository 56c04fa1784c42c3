//! Escaping text so that a GitHub-flavoured Markdown reader gives back
//! exactly that text, inside a table cell or anywhere inline. The SDK's
//! [`export_plugin_api::escape::markdown`] does it; this module names the rules.
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

pub use export_plugin_api::escape::markdown::{escape_inline, escaped};
