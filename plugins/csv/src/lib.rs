//! # export-csv
//!
//! The first-party `csv` plugin for export-host:
//!
//! - loader `csv` ([`CsvLoader`]): streams a CSV file under the configured
//!   [`CsvConfig::root`] as `Utf8` columns. Nothing is inferred or trimmed:
//!   every value comes back exactly as written (`007`, `1.50`, `NaN`, empty
//!   strings, line breaks inside quoted fields). Selector: [`CsvSelector`].
//! - formatter `csv` ([`CsvFormatter`]): writes RFC 4180 CSV, quoting only
//!   where needed. Options: [`CsvOptions`].
//!
//! ```toml
//! [plugins.csv]
//! library = "libexport_csv.so"
//!
//! [plugins.csv.config]
//! root = "examples/data"
//! ```

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
