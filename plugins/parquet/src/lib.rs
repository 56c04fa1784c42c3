//! # export-parquet
//!
//! The first-party `parquet` plugin for export-host: formatter `parquet`
//! ([`ParquetFormatter`]) writes an Apache Parquet file with the `parquet`
//! crate's Arrow column writers, a batch's columns encoded on up to four
//! threads (as many as the machine has cores). Columns keep the Arrow schema's types (text stays
//! text, so `007` and `1.50` come back as written; integers, floats,
//! booleans, dates and timestamps are typed), and the Arrow schema itself is
//! stored in the file's metadata, so Arrow readers get the same types back.
//!
//! Memory stays flat for any input: rows are buffered only until a row group
//! is full (`row_group_size` rows, or about 32 MiB of encoded data, whichever
//! comes first), and the bytes of every finished row group are handed to the
//! host straight away. Options: [`ParquetOptions`] (`codec`: `snappy` by
//! default, or `none`, `zstd`, `gzip`, `lz4`; `codec_level`;
//! `row_group_size`).
//!
//! The page codec is called `codec` because the request option
//! `compression` belongs to the host, which compresses the whole file
//! (`gzip`, `zstd`). That still works on Parquet but gains little: the
//! pages are compressed already.
//!
//! ```toml
//! [plugins.parquet]
//! library = "libexport_parquet.so"
//! ```

mod formatter;

pub use formatter::{Codec, ParquetFormatter, ParquetOptions};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: formatter `parquet`; it reads no configuration.
pub fn plugin() -> Plugin {
    PluginBuilder::new("parquet", env!("CARGO_PKG_VERSION"))
        .description("Writes Apache Parquet files with typed columns")
        .formatter(ParquetFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());
