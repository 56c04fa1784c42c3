//! Test fixture: a plugin written and built against export-plugin-api 1.0.0
//! (the frozen copy in `test-plugins/api-1.0-frozen`). The current host must
//! load it and run exports through it: that is the compatibility promise.
//!
//! - loader `count`: selector `{"rows": N}`, yields columns `n` (Int64) and
//!   `word` (Utf8), in batches of the host's batch size;
//! - formatter `lines`: one line per row, cells joined by `|`.

use export_plugin_api::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::rows::Rows;
use export_plugin_api::{
    export_plugin, BatchReader, FormatWriter, Formatter, JsonSchema, Limits, Loader, NoConfig,
    Plugin, PluginBuilder, Result,
};
use serde::Deserialize;
use std::sync::Arc;

/// What a request passes to `count`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
struct CountSelector {
    /// How many rows to yield.
    rows: u64,
}

struct Count;

impl Loader for Count {
    type Config = NoConfig;
    type Selector = CountSelector;
    const NAME: &'static str = "count";
    const DESCRIPTION: &'static str = "Counts from 1 to `rows`";

    fn open(
        &self,
        _: NoConfig,
        selector: CountSelector,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>> {
        Ok(Box::new(CountReader {
            schema: Arc::new(Schema::new(vec![
                Field::new("n", DataType::Int64, false),
                Field::new("word", DataType::Utf8, false),
            ])),
            next: 1,
            last: selector.rows.min(limits.max_rows.saturating_add(1)),
            batch_size: limits.batch_size.max(1) as u64,
        }))
    }
}

struct CountReader {
    schema: SchemaRef,
    next: u64,
    last: u64,
    batch_size: u64,
}

impl BatchReader for CountReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.next > self.last {
            return Ok(None);
        }
        let end = self.last.min(self.next + self.batch_size - 1);
        let numbers: Vec<i64> = (self.next..=end).map(|n| n as i64).collect();
        let words: Vec<String> = numbers.iter().map(|n| format!("word {n}")).collect();
        self.next = end + 1;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(numbers)),
            Arc::new(StringArray::from(words)),
        ];
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

/// Options of `lines`: none.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
struct LinesOptions {}

struct Lines;

impl Formatter for Lines {
    type Config = NoConfig;
    type Options = LinesOptions;
    const NAME: &'static str = "lines";
    const DESCRIPTION: &'static str = "One line per row, cells joined by |";
    const MIME_TYPE: &'static str = "text/plain; charset=utf-8";
    const EXTENSION: &'static str = "txt";

    fn start(
        &self,
        _: NoConfig,
        _: LinesOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        Rows::new(&RecordBatch::new_empty(schema))?;
        Ok(Box::new(LinesWriter))
    }
}

struct LinesWriter;

impl FormatWriter for LinesWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let rows = Rows::new(batch)?;
        for row in rows.iter() {
            let cells: Vec<String> = row.cells().map(|cell| cell.to_string()).collect();
            out.extend_from_slice(cells.join("|").as_bytes());
            out.push(b'\n');
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
}

fn plugin() -> Plugin {
    PluginBuilder::new("compat", env!("CARGO_PKG_VERSION"))
        .description("Built against the frozen export-plugin-api 1.0.0")
        .loader(Count)
        .formatter(Lines)
        .build()
}

export_plugin!(plugin());
