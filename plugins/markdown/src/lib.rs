//! # export-markdown
//!
//! The first-party `markdown` plugin for export-host: formatter `markdown`
//! ([`MarkdownFormatter`]) writes a GitHub-flavoured Markdown (GFM) table,
//! on its own or inside a report. Options: [`MarkdownOptions`].
//!
//! ```text
//! | message_id | text |
//! | --- | --- |
//! | 1 | Hi! Can you sum column A for me? |
//! | 9 | Windows line&#13;<br>break, then a comma |
//! | 17 | 'single quotes', semicolons; and \| pipes |
//! ```
//!
//! - Every value stays in its row and column and reads back as written: pipes
//!   and backslashes are escaped (`\|`, `\\`), line breaks become `<br>` (a
//!   CR is `&#13;`, so LF, CRLF and CR stay distinct), inline markup
//!   characters get a backslash, and edge whitespace a reader would trim
//!   becomes a character reference. The rules are those of
//!   [`export_plugin_api::escape::markdown`].
//! - Nulls are empty cells; an empty column name is an empty header cell;
//!   an export without rows is the header and delimiter rows, still a table.
//!   Numeric columns are right-aligned (`---:`).
//! - `{"template": "report"}` writes a document instead: `# title`, the
//!   columns, the table, then the row count. `{"template": {"before": ...,
//!   "after": ...}}` uses minijinja templates of your own; see [`report`].
//!
//! Memory stays flat for any number of rows: rows are written as each batch
//! arrives, and a report's templates render only before the first row
//! (title, columns) and after the last (which adds `row_count`), so nothing
//! ever holds more than one row.
//!
//! ```toml
//! [plugins.markdown]
//! library = "libexport_markdown.so"
//! ```

mod formatter;
pub use formatter::report;

pub use formatter::{MarkdownFormatter, MarkdownOptions};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: formatter `markdown`; it reads no configuration.
pub fn plugin() -> Plugin {
    PluginBuilder::new("markdown", env!("CARGO_PKG_VERSION"))
        .description("Writes exports as GitHub-flavoured Markdown tables and reports")
        .formatter(MarkdownFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());
