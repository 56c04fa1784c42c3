//! The `csv` formatter: RFC 4180 CSV, quoting only where needed.

use crate::config::{default_delimiter, delimiter_byte, DELIMITER_PATTERN};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::rows::{Cell, Rows};
use export_plugin_api::{FormatWriter, Formatter, JsonSchema, NoConfig, PluginError, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Bytes the CSV writer buffers before handing them to the output.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Options of the `csv` formatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct CsvOptions {
    /// The field delimiter: one ASCII character such as `","`, `";"`, `"|"`
    /// or a tab (`"\t"`).
    #[serde(default = "default_delimiter")]
    #[schemars(pattern(DELIMITER_PATTERN))]
    pub delimiter: String,

    /// Whether the first line names the columns.
    #[serde(default = "default_header")]
    pub header: bool,
}

fn default_header() -> bool {
    true
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: default_delimiter(),
            header: default_header(),
        }
    }
}

/// The `csv` formatter. Values are written as their text; a field is quoted
/// only when it holds the delimiter, a quote or a line break, and line breaks
/// (including CRLF) inside values are kept as they are. Nulls are empty fields.
pub struct CsvFormatter;

impl Formatter for CsvFormatter {
    type Config = NoConfig;
    type Options = CsvOptions;
    const NAME: &'static str = "csv";
    const DESCRIPTION: &'static str = "Comma-separated values (RFC 4180), one row per line";
    const MIME_TYPE: &'static str = "text/csv; charset=utf-8";
    const EXTENSION: &'static str = "csv";

    fn start(
        &self,
        _config: NoConfig,
        options: CsvOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        let delimiter = delimiter_byte(&options.delimiter)?;
        // Refuse column types that cannot be shown as text before any output exists.
        Rows::new(&RecordBatch::new_empty(schema.clone()))?;
        let mut builder = csv::WriterBuilder::new();
        builder
            .delimiter(delimiter)
            .quote_style(csv::QuoteStyle::Necessary)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(WRITE_BUFFER_BYTES);
        Ok(Box::new(CsvWriter {
            builder,
            schema,
            header_pending: options.header,
            text: String::new(),
        }))
    }
}

/// One running CSV export.
struct CsvWriter {
    /// Makes the writer each call formats with, straight into the host's output.
    builder: csv::WriterBuilder,
    schema: SchemaRef,
    /// Whether the header is still to be written.
    header_pending: bool,
    /// Reused for cells that are not text already (numbers, dates, ...).
    text: String,
}

impl CsvWriter {
    /// Writes the header unless it was written already or is not wanted.
    fn write_header(&mut self, writer: &mut csv::Writer<&mut Vec<u8>>) -> Result<()> {
        if !self.header_pending {
            return Ok(());
        }
        self.header_pending = false;
        if self.schema.fields().is_empty() {
            return Ok(());
        }
        writer
            .write_record(self.schema.fields().iter().map(|field| field.name()))
            .map_err(write_error)
    }
}

impl FormatWriter for CsvWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let mut writer = self.builder.from_writer(out);
        self.write_header(&mut writer)?;
        let rows = Rows::new(batch)?;
        let columns = rows.num_columns();
        if columns > 0 {
            let text = &mut self.text;
            for row in 0..rows.len() {
                for column in 0..columns {
                    match rows.cell(row, column) {
                        Cell::Text(value) => writer.write_field(value),
                        Cell::Null => writer.write_field(""),
                        other => {
                            text.clear();
                            // Writing into a String cannot fail.
                            let _ = write!(text, "{other}");
                            writer.write_field(text.as_bytes())
                        }
                    }
                    .map_err(write_error)?;
                }
                writer.write_record(None::<&[u8]>).map_err(write_error)?;
            }
        }
        finish_writer(writer)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let mut writer = self.builder.from_writer(out);
        self.write_header(&mut writer)?;
        finish_writer(writer)
    }
}

/// Flushes what `writer` buffered into the output.
fn finish_writer(writer: csv::Writer<&mut Vec<u8>>) -> Result<()> {
    writer
        .into_inner()
        .map(|_| ())
        .map_err(|err| PluginError::internal(format!("writing CSV failed: {}", err.error())))
}

fn write_error(err: csv::Error) -> PluginError {
    PluginError::internal(format!("writing CSV failed: {err}"))
}
