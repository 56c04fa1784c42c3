//! Loaders: where export data comes from.

use crate::caller::Caller;
use crate::error::{PluginError, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Limits the host passes to every [`Loader::open`].
///
/// The host enforces `max_rows` itself; a loader may use it to stop reading
/// early (reading `max_rows + 1` rows is enough for the host to see the overflow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// The most rows one export may have.
    pub max_rows: u64,
    /// How many rows a batch should hold. Keep batches near this size so
    /// memory stays flat whatever the input size.
    pub batch_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: 10_000_000,
            batch_size: 8192,
        }
    }
}

/// A stream of record batches that all share one schema.
///
/// The host pulls batches one at a time from its own thread; return
/// `Ok(None)` at the end. Memory should stay bounded by a few batches.
pub trait BatchReader: Send {
    /// The schema of every batch this reader yields; known before the first batch.
    fn schema(&self) -> SchemaRef;
    /// The next batch, or `None` at the end of the data.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>>;
    /// What the export record should note about the read, asked once after
    /// the last batch: a JSON object the host stores under `loader.notes` in the
    /// record's metadata (for example how many values were turned into nulls).
    /// Keep it small; the default notes nothing.
    fn notes(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        None
    }
    /// How far through its input the read is, from 0 to 1 (since 1.3),
    /// asked after every batch: for example the bytes read so far over the
    /// file's size. The host shows it as the export's progress `fraction`.
    /// Answer `None` when the share is unknown (a query, a stream of
    /// unknown length), which is the default. Keep it cheap; values outside
    /// 0..1 are clamped and a non-number counts as `None`.
    fn fraction(&self) -> Option<f64> {
        None
    }
}

/// A [`BatchReader`] over any iterator of batches: handy for small loaders and tests.
pub struct IterReader<I> {
    schema: SchemaRef,
    batches: I,
}

impl<I> IterReader<I>
where
    I: Iterator<Item = Result<RecordBatch>> + Send,
{
    /// Wraps `batches`, which must all have `schema`.
    pub fn new(schema: SchemaRef, batches: I) -> Self {
        IterReader { schema, batches }
    }
}

impl<I> BatchReader for IterReader<I>
where
    I: Iterator<Item = Result<RecordBatch>> + Send,
{
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.batches.next().transpose()
    }
}

/// A data source.
///
/// `Config` is deserialised from the plugin's table in `plugins.toml` (already
/// validated by the host against the plugin's config schema); `Selector` from
/// the request, validated against `schema_for!(Selector)` first. Use
/// `#[serde(deny_unknown_fields)]` on the selector so typos are refused.
///
/// `open` runs on a host worker thread, never on an async runtime: blocking
/// I/O is fine.
pub trait Loader: Send + Sync + 'static {
    /// The plugin configuration this loader reads.
    type Config: DeserializeOwned;
    /// What a request passes to choose the data.
    type Selector: DeserializeOwned + JsonSchema;
    /// Component name, unique within the plugin.
    const NAME: &'static str;
    /// One line for people.
    const DESCRIPTION: &'static str;

    /// Starts reading. Validate everything you can here, before the first batch.
    ///
    /// A loader that serves per-user data implements [`Loader::open_for`]
    /// and makes this `self.open_for(config, selector, limits, None)`.
    fn open(
        &self,
        config: Self::Config,
        selector: Self::Selector,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>>;

    /// Starts reading for `caller` (since 1.2): the identity the host
    /// verified, never anything a selector says. `None` when the host did
    /// not pass one (a host older than 1.2): refuse what needs an identity.
    ///
    /// The host always calls this; the default ignores the caller and calls
    /// [`Loader::open`], so loaders written for 1.0 and 1.1 are unchanged.
    fn open_for(
        &self,
        config: Self::Config,
        selector: Self::Selector,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>> {
        let _ = caller;
        self.open(config, selector, limits)
    }

    /// Checks a request before the host records it (since 1.2): answer the
    /// error `open_for` would certainly give (an unknown query, a missing
    /// parameter, a path outside the root, a parameter the caller may not
    /// set), without touching the data. The host refuses the request with
    /// this message (400) instead of failing the export later. Keep it
    /// cheap: it runs on every submission. The default accepts everything.
    fn validate(
        &self,
        config: Self::Config,
        selector: Self::Selector,
        caller: Option<&Caller>,
    ) -> Result<()> {
        let _ = (config, selector, caller);
        Ok(())
    }
}

pub(crate) fn parse_document<T: DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|err| PluginError::invalid_input(format!("{what}: {err}")))
}
