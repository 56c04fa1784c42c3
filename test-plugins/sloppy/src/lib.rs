//! Test fixture: a plugin that loads, answers and exports, but breaks rules
//! that `export-host plugins check` must catch:
//!
//! - formatter `sloppy` accepts any options (its schema is `true`, it
//!   ignores unknown keys), fails an export that has no rows, and keeps every
//!   byte until `finish` instead of handing output over per batch, so its
//!   memory grows with the export;
//! - loader `sloppy` accepts any selector and ignores it.

use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::rows::Rows;
use export_plugin_api::{
    export_plugin, BatchReader, FormatWriter, Formatter, IterReader, Limits, Loader, NoConfig,
    Plugin, PluginBuilder, PluginError, Result,
};
use serde_json::Value;
use std::sync::Arc;

struct SloppyLoader;

impl Loader for SloppyLoader {
    type Config = NoConfig;
    // Any JSON at all: nothing is refused.
    type Selector = Value;
    const NAME: &'static str = "sloppy";
    const DESCRIPTION: &'static str = "Ignores its selector";

    fn open(&self, _: NoConfig, _: Value, _: &Limits) -> Result<Box<dyn BatchReader>> {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("word", DataType::Utf8, false)]));
        let column: ArrayRef = Arc::new(StringArray::from(vec!["sloppy"]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column])?;
        Ok(Box::new(IterReader::new(
            schema,
            std::iter::once(Ok(batch)),
        )))
    }
}

struct SloppyFormatter;

impl Formatter for SloppyFormatter {
    type Config = NoConfig;
    type Options = Value;
    const NAME: &'static str = "sloppy";
    const DESCRIPTION: &'static str = "Buffers everything and refuses empty exports";
    const MIME_TYPE: &'static str = "text/plain; charset=utf-8";
    const EXTENSION: &'static str = "txt";

    fn start(&self, _: NoConfig, _: Value, _: SchemaRef) -> Result<Box<dyn FormatWriter>> {
        Ok(Box::new(Hoarder {
            text: Vec::new(),
            rows: 0,
        }))
    }
}

/// Keeps the whole document in memory until the end.
struct Hoarder {
    text: Vec<u8>,
    rows: usize,
}

impl FormatWriter for Hoarder {
    fn write(&mut self, batch: &RecordBatch, _out: &mut Vec<u8>) -> Result<()> {
        for row in Rows::new(batch)?.iter() {
            let cells: Vec<String> = row.cells().map(|c| c.to_string()).collect();
            self.text.extend_from_slice(cells.join(" ").as_bytes());
            self.text.push(b'\n');
            self.rows += 1;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.rows == 0 {
            return Err(PluginError::internal("nothing to write"));
        }
        out.append(&mut self.text);
        Ok(())
    }
}

fn plugin() -> Plugin {
    PluginBuilder::new("sloppy", env!("CARGO_PKG_VERSION"))
        .description("Test fixture that breaks the conformance rules")
        .loader(SloppyLoader)
        .formatter(SloppyFormatter)
        .build()
}

export_plugin!(plugin());
