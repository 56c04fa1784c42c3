//! # export-txt
//!
//! The first-party `txt` plugin for export-host: formatter `txt`
//! ([`TxtFormatter`]) writes plain text for people. Options: [`TxtOptions`].
//!
//! ## Layouts
//!
//! `"layout": "table"` (the default) aligns the columns in a box of ASCII
//! rules; numeric columns are right-aligned, nulls are empty (or the `null`
//! option's text):
//!
//! ```text
//! +------------+----------------------------------+
//! | message_id | text                             |
//! +------------+----------------------------------+
//! | 1          | Hi! Can you sum column A for me? |
//! | 8          | Line one                         |
//! :            : line two                         :
//! :            : line three                       :
//! | 12         | 你好，世界！这是一个测试。       |
//! +------------+----------------------------------+
//! ```
//!
//! A value's line breaks (LF, CRLF, CR, NEL, U+2028, U+2029) and a value
//! wider than its column (with `"overflow": "wrap"`) continue the row on
//! lines ruled with `:` instead of `|`, so a continuation is never taken for
//! a row of empty values. With `"overflow": "truncate"` every row is one
//! line: line breaks show as `↵` and a value too wide is cut and ends in `…`.
//!
//! `"layout": "lines"` writes one line per row, the cells joined by
//! `separator` (a tab by default), line breaks shown as `↵`; values are
//! whole unless `"overflow": "truncate"` cuts them to `max_width`.
//!
//! Widths are display widths (`unicode-width`, per grapheme cluster): CJK
//! and emoji count two columns, combining marks none, and wrapping or
//! truncating never splits a cluster. Tabs become spaces and other control
//! characters their visible pictures (`␛`), so no value can move the
//! cursor or send a terminal an escape sequence. See [`text`].
//!
//! ## Column widths with flat memory
//!
//! The table is written as batches arrive, so it cannot look at every row
//! before choosing the widths. Each column is as wide as the widest of its
//! name and its values **in the first batch that has rows**, capped at
//! `max_width` (and at least 2, so any character fits). Later values that are
//! wider are wrapped or truncated to that width; narrower ones are padded.
//! The host's batches are large (8192 rows by default), so the first one
//! usually shows every column's shape. Memory holds one batch and one row's
//! lines, for any number of rows.
//!
//! ```toml
//! [plugins.txt]
//! library = "libexport_txt.so"
//! ```

mod formatter;
pub use formatter::text;

pub use formatter::{Layout, Overflow, TxtFormatter, TxtOptions};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: formatter `txt`; it reads no configuration.
pub fn plugin() -> Plugin {
    PluginBuilder::new("txt", env!("CARGO_PKG_VERSION"))
        .description("Writes exports as plain text: aligned tables or one line per row")
        .formatter(TxtFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());
