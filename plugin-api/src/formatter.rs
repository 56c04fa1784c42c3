//! Formatters: how export data is written out.

use crate::error::Result;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// One running export's writer: the host calls `write` for every batch, then
/// `finish` once, then `finish_more` until it answers `false`. Append output
/// bytes to `out`; the host owns the file, its size cap, compression and
/// checksum.
pub trait FormatWriter: Send {
    /// Formats one batch. Its schema is the one given to [`Formatter::start`].
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()>;
    /// Writes whatever closes the document (a closing bracket, a footer).
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()>;
    /// Hands over closing output too large to hold whole (an archive that
    /// can only be built at the end) in pieces of a few MiB: append the next piece and answer `true`, or `false` once there is
    /// nothing left. Most formatters need no more than `finish`; this default
    /// says so. Since 1.1: a 1.0 host calls `finish` alone, and the plugin
    /// side then gathers every piece into `finish`'s answer itself.
    fn finish_more(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let _ = out;
        Ok(false)
    }
}

/// An output format.
///
/// `Options` is the request's `options` object minus the host's own keys
/// (`compression`, `file_name`), validated against `schema_for!(Options)`
/// first. Use `#[serde(deny_unknown_fields)]` so typos are refused.
pub trait Formatter: Send + Sync + 'static {
    /// The plugin configuration this formatter reads.
    type Config: DeserializeOwned;
    /// The request options this formatter accepts.
    type Options: DeserializeOwned + JsonSchema;
    /// Component name, unique within the plugin.
    const NAME: &'static str;
    /// One line for people.
    const DESCRIPTION: &'static str;
    /// MIME type of the output, e.g. `application/json`.
    const MIME_TYPE: &'static str;
    /// File extension without the dot.
    const EXTENSION: &'static str;

    /// Prepares a writer for batches of `schema`. Refuse column types you
    /// cannot write here, before any output exists.
    fn start(
        &self,
        config: Self::Config,
        options: Self::Options,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>>;
}
