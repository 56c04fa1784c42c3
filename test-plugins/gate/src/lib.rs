//! Test fixture: loader `gate` yields one row every few milliseconds until
//! the file named by the selector exists, then ends. A test holds an export
//! in `processing` for exactly as long as it needs (to replace a library
//! under it, or to stop the daemon during it) without guessing at timings.

use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::{
    export_plugin, BatchReader, JsonSchema, Limits, Loader, NoConfig, Plugin, PluginBuilder, Result,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which file opens the gate.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Selector {
    /// The export ends once this file exists.
    until: PathBuf,
}

struct Gate;

impl Loader for Gate {
    type Config = NoConfig;
    type Selector = Selector;
    const NAME: &'static str = "gate";
    const DESCRIPTION: &'static str = "One row every 5 ms until a file exists";

    fn open(&self, _: NoConfig, selector: Selector, _: &Limits) -> Result<Box<dyn BatchReader>> {
        Ok(Box::new(GateReader {
            until: selector.until,
            rows: 0,
        }))
    }
}

struct GateReader {
    until: PathBuf,
    rows: u64,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, false)]))
}

impl BatchReader for GateReader {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.until.exists() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
        self.rows += 1;
        let column: ArrayRef = Arc::new(StringArray::from(vec![self.rows.to_string()]));
        Ok(Some(RecordBatch::try_new(schema(), vec![column])?))
    }
}

fn plugin() -> Plugin {
    PluginBuilder::new("gate", env!("CARGO_PKG_VERSION"))
        .description("Test fixture that runs until a file exists")
        .loader(Gate)
        .build()
}

export_plugin!(plugin());
