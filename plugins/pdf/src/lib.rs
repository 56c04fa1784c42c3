//! # export-pdf
//!
//! The first-party `pdf` plugin for export-host: formatter `pdf`
//! ([`PdfFormatter`], options [`PdfOptions`]) writes a paginated table
//! report: the title and the header row on every page, `Page N` at the foot,
//! long cells wrapped and cut after `max_cell_lines` lines with `…`.
//!
//! Text is real text in embedded, subset TrueType fonts, so readers can
//! search and copy it and `pdftotext` gets the values back:
//!
//! - DejaVu Sans (regular, and bold for the header): Latin, Greek,
//!   Cyrillic, Armenian, Georgian, Hebrew, Arabic and many symbols;
//! - Droid Sans Fallback: Chinese and Japanese (Han ideographs, kana, CJK
//!   punctuation, full-width forms).
//!
//! Both ship in this crate's `fonts/` folder with their licences and are
//! compiled into the library. Not covered: Korean Hangul and most emoji,
//! drawn as empty boxes (their text is not reliably extracted). Right-to-left runs are
//! shaped and drawn right to left; a line that mixes directions is not
//! reordered.
//!
//! The PDF is written as a stream with
//! [pdf-writer](https://docs.rs/pdf-writer): each page's content stream
//! and page object go to the output as soon as the page is drawn (on a
//! thread of the export's own, while the next page is laid out); `finish`
//! adds the fonts, subset to the glyphs used
//! ([subsetter](https://docs.rs/subsetter)), the page tree and the
//! cross-reference table. Runs that need shaping (Arabic joining forms,
//! combining marks) are shaped with [rustybuzz](https://docs.rs/rustybuzz);
//! the rest map one character to one glyph. Memory stays flat whatever the
//! row count: one page of rows, the glyphs used, an offset per object. A
//! PDF still holds at most `max_rows` rows ([`PdfConfig`], default
//! 1,000,000); past it the export fails with `limit_exceeded`.
//!
//! ```toml
//! [plugins.pdf]
//! library = "libexport_pdf.so"
//!
//! [plugins.pdf.config]
//! max_rows = 1000000
//! ```

mod config;
mod formatter;

pub use config::PdfConfig;
pub use formatter::{Orientation, PageSize, PdfFormatter, PdfOptions};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: formatter `pdf`, configured by [`PdfConfig`].
pub fn plugin() -> Plugin {
    PluginBuilder::new("pdf", env!("CARGO_PKG_VERSION"))
        .description("Writes exports as paginated PDF table reports")
        .config::<PdfConfig>()
        .formatter(PdfFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());
