//! # export-xlsx
//!
//! The first-party `xlsx` plugin for export-host: formatter `xlsx`
//! ([`XlsxFormatter`]) writes an Excel workbook (Office Open XML) with
//! [`rust_xlsxwriter`] in its constant-memory mode: each row goes to a
//! temporary file as soon as it is written, so memory stays flat however many
//! rows there are. The workbook is zipped at the end, on a thread of its own,
//! and handed to the host a piece at a time through `finish_more`, so the
//! finished file is never held whole either.
//!
//! ## Cells follow the Arrow type
//!
//! | Arrow type | Excel cell |
//! | --- | --- |
//! | integers | number; beyond ±2^53 (where a double would change the value) text, spelt exactly |
//! | floats, decimals up to 15 digits | number; NaN and infinities as the text `NaN`, `inf`, `-inf`; wider decimals as text |
//! | boolean | boolean |
//! | date | date, format `yyyy-mm-dd` |
//! | timestamp | date and time, format `yyyy-mm-dd hh:mm:ss` (`.000` when the unit is finer than seconds), shown as the wall-clock time of the column's time zone, or of the `time_zone` option when it is set (Excel cells have no zone); with `timestamps` `"text"`, text spelt as the csv export writes it (`2024-05-01T08:00:00.123456Z`) |
//! | time of day | time, format `hh:mm:ss` |
//! | text (`Utf8`, `LargeUtf8`, `Utf8View`) | text, always: `007`, `1.50`, `=SUM(A1)` or `2024-05-01` are never turned into numbers, dates or formulas |
//! | raw JSON (`arrow.json`) | text: a JSON string without its quotes, any other value as its JSON text |
//! | binary | text, hexadecimal |
//! | anything else | text, by Arrow's display rules |
//! | null | blank cell |
//!
//! Dates before 1900-03-01 or after 9999-12-31, which Excel cannot show, are
//! written as ISO 8601 text. Excel keeps no difference between an empty text
//! and a blank cell: both read back as blank.
//!
//! Text longer than Excel's limit of 32,767 characters (UTF-16 units) per
//! cell fails the export with the row and column, unless `long_text` is
//! `"truncate"`, which keeps the first 32,767.
//!
//! ## Layout
//!
//! The first row names the columns, bold on a grey fill, and stays frozen
//! while scrolling. Column widths follow the header and the values of the
//! first batch (between 8 and 60 characters).
//!
//! ## More rows than a sheet holds
//!
//! An Excel sheet holds 1,048,576 rows: the header and 1,048,575 rows of
//! data. With `overflow` `"new_sheet"` (the default) the rows continue on
//! a new sheet, `Sheet1`, `Sheet1 (2)`, `Sheet1 (3)`, ..., each with its
//! own header; with `"error"` the export fails at the first row that does
//! not fit, saying how many rows fit. `rows_per_sheet` sets a smaller
//! limit. Options: [`XlsxOptions`].
//!
//! ```toml
//! [plugins.xlsx]
//! library = "libexport_xlsx.so"
//! ```

mod formatter;

pub use formatter::{
    LongText, Overflow, Timestamps, XlsxFormatter, XlsxOptions, MAX_ROWS_PER_SHEET,
};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: formatter `xlsx`; it reads no configuration.
pub fn plugin() -> Plugin {
    PluginBuilder::new("xlsx", env!("CARGO_PKG_VERSION"))
        .description("Writes Excel workbooks (.xlsx) with typed cells")
        .formatter(XlsxFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());
