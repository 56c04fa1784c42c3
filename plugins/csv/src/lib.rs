//! # export-csv
//!
//! The first-party `csv` plugin for export-host:
//!
//! - loader `csv` ([`CsvLoader`]): streams a CSV file under the configured
//!   [`CsvConfig::root`] as `Utf8` columns. By default nothing is inferred
//!   or trimmed: every value comes back exactly as written (`007`, `1.50`,
//!   `NaN`, empty strings, line breaks inside quoted fields); `types` and
//!   `infer` ask for typed columns ([`export_plugin_api::column_types`]).
//!   Selector: [`CsvSelector`].
//! - formatter `csv` ([`CsvFormatter`]): writes RFC 4180 CSV, quoting only
//!   where needed. Options: [`CsvOptions`].
//!
//! ```toml
//! [plugins.csv]
//! library = "libexport_csv.so"
//!
//! [plugins.csv.config]
//! root = "examples/data"          # or "/srv/exports/{user}": a folder per caller
//! max_field_bytes = 67108864      # the default: a longer field fails the export
//! ```
//!
//! A file that ends inside a quoted field (a truncated file) fails naming
//! the line where the quote opened, rather than exporting a last value that
//! swallowed the rest of the file.

mod config;
mod formatter;
mod loader;

pub use config::CsvConfig;
pub use formatter::{CsvFormatter, CsvOptions};
pub use loader::{CsvLoader, CsvSelector};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: loader `csv`, formatter `csv`, configured by [`CsvConfig`].
pub fn plugin() -> Plugin {
    PluginBuilder::new("csv", env!("CARGO_PKG_VERSION"))
        .description("Reads CSV files under a configured folder and writes CSV exports")
        .config::<CsvConfig>()
        .loader(CsvLoader)
        .formatter(CsvFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());
