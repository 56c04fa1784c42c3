//! Test fixture: loader `gate` yields one row every few milliseconds until
//! the file named by the selector exists, then ends. A test holds an export
//! in `processing` for exactly as long as it needs (to replace a library
//! under it, or to stop the daemon during it) without guessing at timings.
//!
//! Formatter `paced` writes each row's first cell on a line and sleeps a
//! set time per batch, so an export from any loader runs for as long as a
//! test needs to watch it.

use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::rows::Rows;
use export_plugin_api::{
    export_plugin, BatchReader, FormatWriter, Formatter, JsonSchema, Limits, Loader, NoConfig,
    Plugin, PluginBuilder, Result,
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

/// How slowly to write.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Pace {
    /// Milliseconds to sleep per batch.
    ms_per_batch: u64,
}

struct Paced;

impl Formatter for Paced {
    type Config = NoConfig;
    type Options = Pace;
    const NAME: &'static str = "paced";
    const DESCRIPTION: &'static str = "Each row's first cell on a line, slowly";
    const MIME_TYPE: &'static str = "text/plain; charset=utf-8";
    const EXTENSION: &'static str = "txt";

    fn start(&self, _: NoConfig, pace: Pace, _: SchemaRef) -> Result<Box<dyn FormatWriter>> {
        Ok(Box::new(PacedWriter {
            pause: Duration::from_millis(pace.ms_per_batch),
        }))
    }
}

struct PacedWriter {
    pause: Duration,
}

impl FormatWriter for PacedWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        std::thread::sleep(self.pause);
        for row in Rows::new(batch)?.iter() {
            if let Some(cell) = row.cells().next() {
                out.extend_from_slice(cell.to_string().as_bytes());
            }
            out.push(b'\n');
        }
        Ok(())
    }

    fn finish(&mut self, _: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
}

fn plugin() -> Plugin {
    PluginBuilder::new("gate", env!("CARGO_PKG_VERSION"))
        .description("Test fixture that runs until a file exists")
        .loader(Gate)
        .formatter(Paced)
        .build()
}

export_plugin!(plugin());
