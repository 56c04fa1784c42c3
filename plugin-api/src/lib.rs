//! # export-plugin-api
//!
//! The one crate an [export-host] plugin author needs. A plugin is a `cdylib`
//! that offers **loaders** (where data comes from) and **formatters** (how it
//! is written out). The host owns everything else: storage, records, limits,
//! compression, checksums, access control and the HTTP API.
//!
//! Data moves as Apache Arrow record batches ([`arrow_array`] is re-exported,
//! so you build against the same version the SDK uses). A loader returns a
//! [`BatchReader`]; a formatter turns each batch into bytes. Formatter authors
//! who prefer rows use [`rows::Rows`], and [`rows::RowWriter`] makes a
//! text formatter out of header, row and footer hooks. Plain-Rust helpers
//! (outside the ABI) cover what formats share: [`escape`] (XML/HTML,
//! Markdown), [`json`], [`time_zone`] (the `time_zone` option) and
//! [`NoOptions`] for components that take none.
//!
//! Every entry point is wrapped in `catch_unwind`: a panic in your code fails
//! the export with the panic message instead of aborting the host. Build
//! with the default `panic = "unwind"`.
//!
//! ## A complete plugin
//!
//! ```
//! use std::sync::Arc;
//! use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray};
//! use export_plugin_api::arrow_schema::{DataType, Field, Schema};
//! use export_plugin_api::rows::Rows;
//! use export_plugin_api::{
//!     export_plugin, BatchReader, FormatWriter, Formatter, IterReader, JsonSchema, Limits,
//!     Loader, NoConfig, PluginBuilder, Result,
//! };
//! use serde::Deserialize;
//!
//! /// What a request passes to the `greetings` loader.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! #[schemars(crate = "export_plugin_api::schemars")] // no direct schemars dependency needed
//! struct Selector {
//!     /// Who to greet.
//!     names: Vec<String>,
//! }
//!
//! struct Greetings;
//!
//! impl Loader for Greetings {
//!     type Config = NoConfig;
//!     type Selector = Selector;
//!     const NAME: &'static str = "greetings";
//!     const DESCRIPTION: &'static str = "One greeting per name";
//!
//!     fn open(&self, _: NoConfig, selector: Selector, _: &Limits) -> Result<Box<dyn BatchReader>> {
//!         let schema = Arc::new(Schema::new(vec![Field::new("greeting", DataType::Utf8, false)]));
//!         let greetings: Vec<String> = selector.names.iter().map(|n| format!("hello, {n}")).collect();
//!         let column: ArrayRef = Arc::new(StringArray::from(greetings));
//!         let batch = RecordBatch::try_new(schema.clone(), vec![column])?;
//!         Ok(Box::new(IterReader::new(schema, std::iter::once(Ok(batch)))))
//!     }
//! }
//!
//! /// Options of the `lines` formatter.
//! #[derive(Deserialize, JsonSchema, Default)]
//! #[serde(deny_unknown_fields, default)]
//! #[schemars(crate = "export_plugin_api::schemars")]
//! struct LineOptions {
//!     /// Put this between cells.
//!     separator: Option<String>,
//! }
//!
//! struct Lines;
//!
//! impl Formatter for Lines {
//!     type Config = NoConfig;
//!     type Options = LineOptions;
//!     const NAME: &'static str = "lines";
//!     const DESCRIPTION: &'static str = "One line per row";
//!     const MIME_TYPE: &'static str = "text/plain; charset=utf-8";
//!     const EXTENSION: &'static str = "txt";
//!
//!     fn start(&self, _: NoConfig, options: LineOptions, _schema: export_plugin_api::arrow_schema::SchemaRef)
//!         -> Result<Box<dyn FormatWriter>> {
//!         Ok(Box::new(LineWriter { separator: options.separator.unwrap_or_else(|| " ".into()) }))
//!     }
//! }
//!
//! struct LineWriter { separator: String }
//!
//! impl FormatWriter for LineWriter {
//!     fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
//!         let rows = Rows::new(batch)?;
//!         for row in rows.iter() {
//!             let cells: Vec<String> = row.cells().map(|c| c.to_string()).collect();
//!             out.extend_from_slice(cells.join(&self.separator).as_bytes());
//!             out.push(b'\n');
//!         }
//!         Ok(())
//!     }
//!     fn finish(&mut self, _out: &mut Vec<u8>) -> Result<()> { Ok(()) }
//! }
//!
//! fn plugin() -> export_plugin_api::Plugin {
//!     PluginBuilder::new("hello", "0.1.0")
//!         .description("Greetings, one per line")
//!         .loader(Greetings)
//!         .formatter(Lines)
//!         .build()
//! }
//!
//! // In the plugin crate (crate-type = ["cdylib"]) this one line exports it:
//! export_plugin!(plugin());
//!
//! // The same plugin can be driven in-process, e.g. from unit tests:
//! let plugin = plugin();
//! let mut reader = plugin.open_loader("greetings", "{}", r#"{"names":["ada"]}"#, &Limits::default()).unwrap();
//! let batch = reader.next_batch().unwrap().unwrap();
//! let mut writer = plugin.start_formatter("lines", "{}", "{}", batch.schema()).unwrap();
//! let mut out = Vec::new();
//! writer.write(&batch, &mut out).unwrap();
//! assert_eq!(out, b"hello, ada\n");
//! ```
//!
//! ## The model
//!
//! A plugin library exports one [`Plugin`] (built with [`PluginBuilder`] and
//! exported with [`export_plugin!`]). The host loads the library, reads the
//! [`Manifest`] (names, versions, descriptions, JSON Schemas) and from then on
//! calls two kinds of component:
//!
//! - a [`Loader`] turns `(config, selector, limits)` into a [`BatchReader`]:
//!   a pull-based stream of record batches that all share one schema;
//! - a [`Formatter`] turns `(config, options, schema)` into a [`FormatWriter`],
//!   whose `write` is called once per batch and `finish` once at the end,
//!   each appending bytes to the host's buffer (closing output too large to
//!   hold whole can follow in pieces, through `finish_more`, since 1.1).
//!
//! Loaders and formatters never meet: the host streams batches from one to
//! the other across the Arrow C stream interface, and owns files, sizes,
//! compression, checksums and records. Keep memory flat: hold a batch or a
//! few, never the whole data set, and hand bytes over in every `write`.
//!
//! ## Data types
//!
//! Every formatter must write every type in this list, and a loader may yield
//! any of them (`export-host plugins check` feeds each one, with nulls, to every
//! formatter; `testing::promised_types` is the same list as code, behind
//! the `testing` feature):
//!
//! | Arrow type | [`rows::Cell`] | shown as text |
//! | --- | --- | --- |
//! | `Null` | `Null` | empty |
//! | `Boolean` | `Bool` | `true` / `false` |
//! | `Int8`, `Int16`, `Int32`, `Int64` | `Int` | decimal |
//! | `UInt8`, `UInt16`, `UInt32`, `UInt64` | `UInt` | decimal |
//! | `Float64` | `Float` | shortest round trip; `NaN`, `inf`, `-inf` |
//! | `Float32` | `Formatted` | Arrow's display |
//! | `Utf8`, `LargeUtf8`, `Utf8View` | `Text` | the text |
//! | `Utf8` tagged `arrow.json` ([`json::json_field`]) | `Json` | the JSON text, strings unquoted |
//! | `Binary`, `LargeBinary` | `Binary` | lowercase hex |
//! | `Date32`, `Date64` | `Formatted` | `2024-05-01` (`Date64`: with the time) |
//! | `Time64(Microsecond)` | `Formatted` | `10:00:00` |
//! | `Timestamp(Second \| Millisecond \| Microsecond \| Nanosecond, None)` | `Formatted` | `2024-05-01T10:00:00.123` |
//! | `Timestamp(_, Some("+02:00"))`: a zone given as an offset | `Formatted` | with the offset: `...+02:00` |
//! | `Timestamp(_, Some("UTC"))`, `Some("Europe/Paris")`: an IANA zone name | `Formatted` | in that zone, with its offset: `...+02:00` |
//! | `Decimal128(p, s)` | `Formatted` | `1234.5678` |
//!
//! What the first-party loaders emit is all in this list: the `sql` loader
//! gives `timestamptz` as `Timestamp(Microsecond, Some("UTC"))` and
//! `timestamp` as `Timestamp(Microsecond, None)`, PostgreSQL `numeric` as
//! exact decimal text (`Utf8`), and arrays and `json` as `Utf8` tagged
//! `arrow.json` (`[1,2,3]`); the `csv` loader gives `Utf8`, the `json`
//! loader `Utf8` and `arrow.json` text, and both give `Int64`, `Float64`,
//! `Boolean`, `Date32`, `Timestamp(Microsecond, Some("UTC"))` and
//! `Decimal128` for the columns a selector's `types` or `infer` asks for
//! ([`column_types`]).
//!
//! Named time zones need a time-zone database: the default `time-zones`
//! feature brings chrono-tz's. Without
//! it, [`rows::Rows::new`] refuses a column with a named zone with
//! [`ErrorKind::Unsupported`], and only offsets work.
//!
//! Nested values (lists, structs, maps, at any depth) are
//! [`rows::Cell::Json`]: compact JSON text, where a null inside stays `null`
//! and an empty string `""` (rules in [`json::NestedValues`]).
//!
//! Every other type (dictionaries, durations, intervals) is still shown by
//! [`rows::Rows`] through Arrow's display rules when Arrow can display it,
//! but is not promised: a formatter may refuse it in [`Formatter::start`]
//! with [`ErrorKind::Unsupported`].
//!
//! ## Config, selectors and options
//!
//! Each input is a serde type whose JSON Schema (derived with [`JsonSchema`])
//! goes into the manifest; the host validates every document against it
//! before the plugin sees it and names the failing field. Add
//! `#[serde(deny_unknown_fields)]` so a typo is refused, and document every
//! field with a `///` comment: it becomes the schema's description, which
//! `GET /v1/plugins` shows.
//!
//! - `Config`: the plugin's `[plugins.NAME.config]` table in `plugins.toml`,
//!   declared with [`PluginBuilder::config`]; one per plugin, shared by its
//!   components. [`NoConfig`] reads none.
//! - `Selector` (loaders): what a request's `selector` passes.
//! - `Options` (formatters): the request's `options` minus the host's own
//!   keys `compression` and `file_name`.
//!
//! ## Errors
//!
//! Return a [`PluginError`]: an [`ErrorKind`] that says whose fault it was
//! (`InvalidInput`, `NotFound` and `PermissionDenied` are the requester's
//! fault and are reported as bad input) and a message for
//! the person who asked, saying what was wrong and what to do. A panic is
//! caught at the boundary and fails the export with kind `Panic` and the
//! panic's message and location; it never takes the host down, but it is a
//! bug: `plugins check` fails a plugin that panics on valid input.
//!
//! ## Testing
//!
//! With the `testing` feature, the `testing` module drives a [`Plugin`] in-process
//! exactly as the host passes documents: build batches from rows of strings,
//! run a formatter and collect bytes, run a loader and collect batches,
//! assert that a panic is contained. Then run the conformance battery on the
//! built library: `export-host plugins check target/release/libNAME.so`.
//!
//! ## Packaging
//!
//! A plugin is a crate with `crate-type = ["cdylib"]`, built with
//! `cargo build --release` and the default `panic = "unwind"`. Ship the
//! `.so`; operators drop it into the plugin directory and name it in
//! `plugins.toml` (optionally pinned by `sha256`). `export-host plugins new`
//! writes a ready crate.
//!
//! ## Versioning
//!
//! This crate follows semver, and its ABI with it: a plugin built against
//! `1.x` loads in every later `1.y` host, and a `1.y` plugin in a `1.x`
//! host. The binary layouts are frozen for all of 1.x (abi_stable refuses a
//! library whose types have fewer fields than the host's); a minor version
//! adds only optional fields to the JSON documents, sent only to plugins
//! that know them, and never removes, reorders or changes what exists. A plugin built for another major version is refused at load
//! time with a message naming both versions. The repository keeps a plugin
//! built against a frozen copy of 1.0.0 and loads it in its tests.
//!
//! [export-host]: https://example.invalid/export-host

#![warn(missing_docs)]

mod abi;
mod caller;
pub mod column_types;
mod error;
pub mod escape;
pub mod files;
mod formatter;
pub mod json;
mod loader;
mod manifest;
mod no_options;
mod plugin;
pub mod report;
pub mod rows;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time_zone;

pub use arrow_array;
pub use arrow_schema;
pub use caller::{Caller, Credential};
pub use error::{ErrorKind, PluginError, Result};
pub use formatter::{FormatWriter, Formatter};
pub use loader::{BatchReader, IterReader, Limits, Loader};
pub use manifest::{FormatterManifest, LoaderManifest, Manifest};
pub use no_options::NoOptions;
pub use plugin::{Plugin, PluginBuilder, API_VERSION};
pub use schemars::{self, JsonSchema};

/// For hosts: load plugin libraries and call them. Plugin authors do not need this.
pub mod host {
    pub use crate::abi::host::{
        decode_notes, host_api_version, FormatterSession, LoadError, LoaderStream, PluginBytes,
        PluginLibrary, MAX_NOTES_BYTES,
    };
}

/// Config type for components that read no plugin configuration. It
/// accepts any table and ignores it: the config is the plugin's, shared by
/// all its components, so the keys another component reads must not fail
/// this one. For request inputs that take nothing, see [`NoOptions`].
pub type NoConfig = serde::de::IgnoredAny;

#[doc(hidden)]
pub mod __private {
    pub use crate::abi::__private::*;
}

/// Exports a plugin from a `cdylib` crate: `export_plugin!(build_plugin())`,
/// where the expression evaluates to a [`Plugin`]. It is evaluated once, on
/// first use, and a panic there is reported as a load error.
///
/// Use it once per library.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:expr) => {
        #[doc(hidden)]
        fn __export_host_build_plugin() -> $crate::Plugin {
            $plugin
        }

        #[doc(hidden)]
        fn __export_host_root_module() -> $crate::__private::PluginModRef {
            $crate::__private::root_module(__export_host_build_plugin)
        }

        #[doc(hidden)]
        extern "C" fn __export_host_erased_root_module() -> $crate::__private::RootModuleResult {
            $crate::__private::__call_root_module_loader(__export_host_root_module)
        }

        /// The abi_stable library header through which the host finds this plugin.
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __EXPORT_HOST_LIB_HEADER: $crate::__private::LibHeader = unsafe {
            $crate::__private::LibHeader::from_constructor::<$crate::__private::PluginModRef>(
                __export_host_erased_root_module,
                $crate::__private::CheckTypeLayout::Yes,
            )
        };
    };
}
