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
//! The PDF is written with [krilla](https://docs.rs/krilla), which keeps the
//! finished pages (compressed) until `finish`; the rows themselves are held
//! for one page at most. That is why a PDF holds at most `max_rows` rows
//! ([`PdfConfig`], default 100,000): past it the export fails with
//! `limit_exceeded` rather than growing without bound.
//!
//! ```toml
//! [plugins.pdf]
//! library = "libexport_pdf.so"
//!
//! [plugins.pdf.config]
//! max_rows = 100000
//! ```

mod config;
mod draw;
mod fonts;
mod formatter;
mod layout;

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
