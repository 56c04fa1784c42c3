//! Test fixture: panics (or fails) in whichever entry point the request names,
//! so tests can prove the SDK contains it and the host lives on.

use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::{
    export_plugin, BatchReader, FormatWriter, Formatter, JsonSchema, Limits, Loader, NoConfig,
    Plugin, PluginBuilder, PluginError, Result,
};
use serde::Deserialize;
use std::sync::Arc;

/// Where the loader misbehaves.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Selector {
    /// "open", "next", "drop", "error" or "none".
    at: String,
}

struct Boom;

impl Loader for Boom {
    type Config = NoConfig;
    type Selector = Selector;
    const NAME: &'static str = "boom";
    const DESCRIPTION: &'static str = "Panics where told";

    fn open(&self, _: NoConfig, selector: Selector, _: &Limits) -> Result<Box<dyn BatchReader>> {
        match selector.at.as_str() {
            "open" => panic!("boom at open"),
            "error" => Err(PluginError::invalid_input("refused at open, as asked")),
            _ => Ok(Box::new(BoomReader {
                at: selector.at,
                sent: false,
            })),
        }
    }
}

struct BoomReader {
    at: String,
    sent: bool,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("word", DataType::Utf8, false)]))
}

impl BatchReader for BoomReader {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.at == "next" {
            panic!("boom at next");
        }
        if self.sent {
            return Ok(None);
        }
        self.sent = true;
        let column: ArrayRef = Arc::new(StringArray::from(vec!["a\0b", "c"]));
        Ok(Some(RecordBatch::try_new(schema(), vec![column])?))
    }
}

impl Drop for BoomReader {
    fn drop(&mut self) {
        if self.at == "drop" {
            panic!("boom at drop");
        }
    }
}

/// Where the formatter misbehaves.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Options {
    /// "start", "write", "finish" or "none".
    at: Option<String>,
}

struct BoomFormat;

impl Formatter for BoomFormat {
    type Config = NoConfig;
    type Options = Options;
    const NAME: &'static str = "boom";
    const DESCRIPTION: &'static str = "Panics where told";
    const MIME_TYPE: &'static str = "text/plain";
    const EXTENSION: &'static str = "txt";

    fn start(&self, _: NoConfig, options: Options, _: SchemaRef) -> Result<Box<dyn FormatWriter>> {
        let at = options.at.unwrap_or_default();
        if at == "start" {
            panic!("boom at start");
        }
        Ok(Box::new(BoomWriter { at }))
    }
}

struct BoomWriter {
    at: String,
}

impl FormatWriter for BoomWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        if self.at == "write" {
            panic!("boom at write");
        }
        out.extend_from_slice(format!("{} rows\n", batch.num_rows()).as_bytes());
        Ok(())
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.at == "finish" {
            panic!("boom at finish");
        }
        out.extend_from_slice(b"end\n");
        Ok(())
    }
}

fn plugin() -> Plugin {
    PluginBuilder::new("panicky", env!("CARGO_PKG_VERSION"))
        .description("Test fixture that panics on request")
        .loader(Boom)
        .formatter(BoomFormat)
        .build()
}

export_plugin!(plugin());
