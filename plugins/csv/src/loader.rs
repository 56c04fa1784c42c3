//! The `csv` loader: streams a CSV file under the configured root as `Utf8`
//! columns, every value exactly as written in the file, unless the selector
//! asks for types.
//!
//! Records come from [`records::RecordReader`] (csv-core's parse, with a
//! memchr fast path); their fields are copied straight into each column's
//! Arrow offsets and values buffers, and each buffer is checked to be UTF-8
//! once per batch, not once per field.

mod records;

use crate::config::{default_delimiter, delimiter_byte, show_bytes, CsvConfig, DELIMITER_PATTERN};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::column_types::{resolve_types, ColumnType, Converter, Inference, OnError};
use export_plugin_api::files::resolve_for_caller;
use export_plugin_api::{
    BatchReader, Caller, ErrorKind, JsonSchema, Limits, Loader, PluginError, Result,
};
use records::{ReadError, RecordReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

/// A batch ends early once its rows hold this many bytes, so a file of huge
/// cells keeps memory flat and never overflows Arrow's 32-bit string offsets.
const MAX_BATCH_BYTES: usize = 256 * 1024 * 1024;
/// Bytes per cell reserved for the first batch, before real sizes are known.
const FIRST_BATCH_BYTES_PER_CELL: usize = 16;
/// The UTF-8 byte order mark: an encoding marker, not data, so it is skipped.
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
/// Header names listed at most in an "unknown column" message.
const MAX_LISTED_COLUMNS: usize = 50;
/// What a request passes to the `csv` loader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct CsvSelector {
    /// The file to read, relative to the plugin's configured `root` (the
    /// caller's own folder when the root is per user). It must stay inside
    /// the root: `..` that climbs out, absolute paths and symbolic links
    /// that lead outside are refused.
    pub path: String,

    /// The field delimiter: one ASCII character such as `","`, `";"`, `"|"`
    /// or a tab (`"\t"`).
    #[serde(default = "default_delimiter")]
    #[schemars(pattern(DELIMITER_PATTERN))]
    pub delimiter: String,

    /// Whether the first row names the columns. Without a header the
    /// columns are called `column_1` .. `column_n`, unless `columns` names them.
    #[serde(default = "default_has_header")]
    pub has_header: bool,

    /// With a header: the columns to export, by name, in this order.
    /// Without a header: a name for every column, in file order (as many
    /// names as the rows have fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub columns: Option<Vec<String>>,

    /// Export at most this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,

    /// Types for columns, by exported column name: `int64`, `float64`,
    /// `bool`, `date` (`YYYY-MM-DD`), `timestamp` (RFC 3339 with an offset
    /// such as `Z` or `+02:00`, kept as a UTC instant), `decimal(P,S)`
    /// (1 <= P <= 38, 0 <= S <= P) or `text`, e.g.
    /// `{"price": "decimal(10,2)", "day": "date"}`. Other columns stay text
    /// (unless `infer` types them). Values are read strictly: no trimming,
    /// `12,5` is not a float64, `1.234` is not a decimal(10,2). An empty cell
    /// is a null in a typed column. A value that does not fit fails the
    /// export naming its row, column and value (see `on_error`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, ColumnType>,

    /// What a value that does not fit its column's type does: `"fail"`
    /// (the default) fails the export naming the row, column and value;
    /// `"null"` exports a null instead and counts it per column in the
    /// export's notes (`{"nulled_values": {"price": 3}}`).
    #[serde(default, skip_serializing_if = "OnError::is_fail")]
    pub on_error: OnError,

    /// Guess column types by reading every row to be exported once before
    /// the export, so that no value is ever lost: a column is typed only if
    /// each of its non-empty values is written exactly as that type writes
    /// it back; `types` overrides the guess for the columns it names.
    /// `int64`: every value matches `-?(0|[1-9][0-9]*)` and fits 64 bits
    /// (`007`, `-0`, `+1` and `12345678901234567890` keep the column text).
    /// `float64`: every value is a finite number written exactly as Rust
    /// prints that f64 back (shortest round trip, no exponent, no negative
    /// zero): `1.5`, `0.25`, `2` fit; `1.50`, `-0.0`, `1e5`, `1e400`, `NaN`
    /// keep the column text; a column of only integers is `int64`.
    /// `bool`: only `true` / `false`. `date`: only valid `YYYY-MM-DD`.
    /// `timestamp`: only `YYYY-MM-DDTHH:MM:SS` with at most 6 fraction
    /// digits and the offset `Z` or `+00:00`; any other offset (mixed
    /// offsets) keeps the column text, since a UTC timestamp would lose it.
    /// Decimals are never guessed. Everything else, and a column whose
    /// cells are all empty, stays text; empty cells are nulls in typed
    /// columns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub infer: bool,
}

fn default_has_header() -> bool {
    true
}

/// The `csv` loader. By default every column is `Utf8` and every value
/// comes back byte for byte as in the file: no type inference, no trimming,
/// no rewriting of quotes or line breaks inside quoted fields. The
/// selector's `types` and `infer` turn chosen columns into typed ones
/// ([`export_plugin_api::column_types`]).
///
/// A root containing `{user}` is read per caller
/// ([`export_plugin_api::files::resolve_for_caller`]). A file that ends
/// inside a quoted field, and a field over
/// [`CsvConfig::max_field_bytes`], fail the export naming where.
pub struct CsvLoader;

/// What `open` and `validate` both check, before any data is read.
struct Checked {
    file: PathBuf,
    delimiter: u8,
    max_field: usize,
}

fn check(config: &CsvConfig, selector: &CsvSelector, caller: Option<&Caller>) -> Result<Checked> {
    let delimiter = delimiter_byte(&selector.delimiter)?;
    let max_field = config.max_field_bytes()?;
    if selector.columns.as_ref().is_some_and(Vec::is_empty) {
        return Err(PluginError::invalid_input(
            "columns is empty: name at least one column, or leave it out to export them all",
        ));
    }
    let file = resolve_for_caller(&config.root, caller, &selector.path)?;
    Ok(Checked {
        file,
        delimiter,
        max_field,
    })
}

impl Loader for CsvLoader {
    type Config = CsvConfig;
    type Selector = CsvSelector;
    const NAME: &'static str = "csv";
    const DESCRIPTION: &'static str =
        "Reads a CSV file under the configured root; text exactly as written, or typed columns on request";

    fn open(
        &self,
        config: CsvConfig,
        selector: CsvSelector,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>> {
        self.open_for(config, selector, limits, None)
    }

    fn validate(
        &self,
        config: CsvConfig,
        selector: CsvSelector,
        caller: Option<&Caller>,
    ) -> Result<()> {
        check(&config, &selector, caller).map(|_| ())
    }

    fn open_for(
        &self,
        config: CsvConfig,
        selector: CsvSelector,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>> {
        let Checked {
            file: file_path,
            delimiter,
            max_field,
        } = check(&config, &selector, caller)?;
        let path = selector.path;
        let mut file = File::open(&file_path)
            .map_err(|err| PluginError::from(err).context(format!("cannot open {path:?}")))?;
        skip_bom(&mut file)
            .map_err(|err| PluginError::from(err).context(format!("cannot read {path:?}")))?;
        // Only a regular file has a size to measure the read against.
        let size = file
            .metadata()
            .ok()
            .filter(|metadata| metadata.is_file())
            .map(|metadata| metadata.len());

        let mut reader = RecordReader::new(file, delimiter, max_field);
        let has_header = selector.has_header;
        let header_place = |reader: &RecordReader<File>| {
            if has_header {
                format!("line {} (the header)", reader.record_line())
            } else {
                place(reader.record_line(), 1)
            }
        };
        let first = reader.read_record().map_err(|err| {
            let at = header_place(&reader);
            read_error(&path, &at, None, max_field, err)
        })?;
        if !first {
            return Err(empty_file(&path));
        }
        let width = reader.len();

        // The output names, the field each output column comes from, and
        // whether the reader already holds the first row.
        let mut header_names_all = None;
        let (names, indices, pending) = if has_header {
            let header = header_names(&path, &reader)?;
            header_names_all = Some(header.clone());
            match &selector.columns {
                None => (header, (0..width).collect::<Vec<_>>(), false),
                Some(wanted) => (wanted.clone(), select(&path, &header, wanted)?, false),
            }
        } else {
            let names = match &selector.columns {
                None => (1..=width).map(|n| format!("column_{n}")).collect(),
                Some(wanted) if wanted.len() == width => wanted.clone(),
                Some(wanted) => {
                    return Err(PluginError::invalid_input(format!(
                    "columns names {} column(s) but the rows of {path:?} have {width} field(s); \
                         without a header, name every column in file order",
                    wanted.len()
                )))
                }
            };
            (names, (0..width).collect(), true)
        };

        // Every field's name, for messages: the header's, or without one
        // the output's, which are then the file's fields in order.
        let field_names = header_names_all.unwrap_or_else(|| names.clone());
        let batch_size = limits.batch_size.max(1);
        let remaining = selector
            .limit
            .unwrap_or(u64::MAX)
            .min(limits.max_rows.saturating_add(1));
        // Unknown names in `types` are refused before any data is read.
        let explicit = resolve_types(&names, &selector.types, None)?;
        let inferred = if selector.infer {
            let source = TypeSource {
                file: &file_path,
                path: &path,
                delimiter,
                max_field,
                has_header,
                width,
                indices: &indices,
                rows: remaining,
            };
            Some(source.infer(&names, &selector.types)?)
        } else {
            None
        };
        let types = match &inferred {
            Some(inferred) => resolve_types(&names, &selector.types, Some(inferred))?,
            None => explicit,
        };
        let text_schema: SchemaRef = Arc::new(Schema::new(
            names
                .into_iter()
                .map(|name| Field::new(name, DataType::Utf8, false))
                .collect::<Vec<_>>(),
        ));
        // All text (the default) needs no converter, and costs nothing.
        let converter = if types.iter().all(|t| *t == ColumnType::Text) {
            None
        } else {
            Some(Converter::new(&text_schema, types, selector.on_error)?)
        };
        let schema = converter
            .as_ref()
            .map_or_else(|| text_schema.clone(), Converter::schema);
        Ok(Box::new(CsvBatchReader {
            text_schema,
            converter,
            path,
            has_header,
            reader,
            pending,
            exhausted: false,
            schema,
            byte_capacity: vec![
                batch_size.saturating_mul(FIRST_BATCH_BYTES_PER_CELL);
                indices.len()
            ],
            indices,
            width,
            field_names,
            max_field,
            rows_done: 0,
            remaining,
            batch_size,
            size,
        }))
    }
}

/// Streams the rows of one file, `batch_size` rows at a time.
struct CsvBatchReader {
    /// The selector's path, for messages.
    path: String,
    has_header: bool,
    reader: RecordReader<File>,
    /// Whether the reader holds a row read by `open` and not yet exported.
    pending: bool,
    exhausted: bool,
    /// The exported schema.
    schema: SchemaRef,
    /// Every column as `Utf8`: how batches are built before conversion.
    text_schema: SchemaRef,
    /// Turns text columns into typed ones; `None` when all stay text.
    converter: Option<Converter>,
    /// For every output column, the field it comes from.
    indices: Vec<usize>,
    /// Fields in every row: the header's (or the first row's) count.
    width: usize,
    /// The name of every field, for messages.
    field_names: Vec<String>,
    /// The longest field read, in bytes.
    max_field: usize,
    /// Rows exported by earlier batches.
    rows_done: u64,
    /// Rows still to export: the selector's limit, capped at `max_rows + 1`.
    remaining: u64,
    batch_size: usize,
    /// Value bytes to reserve per column, from the previous batch.
    byte_capacity: Vec<usize>,
    /// The file's size when it was opened; `None` when it is not a regular file.
    size: Option<u64>,
}

/// One column of a batch being built: Arrow's offsets and values buffers.
struct ColumnBuffers {
    offsets: Vec<i32>,
    values: Vec<u8>,
}

impl ColumnBuffers {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            values: Vec::with_capacity(bytes),
        }
    }
}

impl BatchReader for CsvBatchReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn notes(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.converter.as_ref().and_then(Converter::notes)
    }

    /// The bytes parsed so far over the file's size.
    fn fraction(&self) -> Option<f64> {
        if self.exhausted {
            return Some(1.0);
        }
        let size = self.size.filter(|&size| size > 0)?;
        let mut file: &File = self.reader.source();
        let position = file.stream_position().ok()?;
        let parsed = position.saturating_sub(self.reader.unparsed() as u64);
        Some((parsed as f64 / size as f64).min(1.0))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let rows = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.batch_size);
        if self.exhausted || rows == 0 {
            return Ok(None);
        }
        let mut columns: Vec<ColumnBuffers> = self
            .byte_capacity
            .iter()
            .map(|&bytes| ColumnBuffers::with_capacity(rows, bytes))
            .collect();
        // The line each row was reported at, for messages.
        let mut lines: Vec<u64> = Vec::with_capacity(rows);
        let mut count = 0;
        let mut batch_bytes = 0;
        while count < rows && batch_bytes < MAX_BATCH_BYTES {
            if self.pending {
                self.pending = false;
            } else {
                match self.reader.read_record() {
                    Ok(true) => {}
                    Ok(false) => {
                        self.exhausted = true;
                        break;
                    }
                    Err(err) => {
                        // A bad value in an earlier row is reported first.
                        self.check_earlier(columns, &lines)?;
                        let at =
                            place(self.reader.record_line(), self.rows_done + count as u64 + 1);
                        return Err(read_error(
                            &self.path,
                            &at,
                            Some(&self.field_names),
                            self.max_field,
                            err,
                        ));
                    }
                }
            }
            if self.reader.len() != self.width {
                // A bad value in an earlier row is reported first, as it
                // comes first in the file.
                self.check_earlier(columns, &lines)?;
                return Err(self.ragged_row(count));
            }
            for (column, &index) in columns.iter_mut().zip(&self.indices) {
                column.values.extend_from_slice(self.reader.field(index));
                let end = i32::try_from(column.values.len()).map_err(|_| self.too_big(count))?;
                column.offsets.push(end);
            }
            lines.push(self.reader.record_line());
            batch_bytes += self.reader.record_bytes();
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        self.remaining = self.remaining.saturating_sub(count as u64);
        let batch = self.finish(columns, &lines)?;
        self.rows_done += count as u64;
        Ok(Some(batch))
    }
}

impl CsvBatchReader {
    /// The batch of the rows in `columns`, once every value is checked to be UTF-8.
    fn finish(&mut self, columns: Vec<ColumnBuffers>, lines: &[u64]) -> Result<RecordBatch> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
        // The first (row, field) that is not UTF-8.
        let mut invalid: Option<(usize, usize)> = None;
        for ((column, capacity), &field) in columns
            .into_iter()
            .zip(&mut self.byte_capacity)
            .zip(&self.indices)
        {
            let bytes = column.values.len();
            // Reserve a little more than last time: the next batch rarely
            // needs to grow its buffer.
            *capacity = bytes.saturating_add(bytes / 8);
            let offsets = OffsetBuffer::new(ScalarBuffer::from(column.offsets));
            let values = Buffer::from_vec(column.values);
            // Arrow checks the whole values buffer and the offsets in one
            // pass; the clones share the buffers, kept to locate a bad value.
            match StringArray::try_new(offsets.clone(), values.clone(), None) {
                Ok(array) => arrays.push(Arc::new(array)),
                Err(_) => {
                    let row = first_invalid_row(&offsets, &values).unwrap_or(0);
                    invalid = Some(invalid.map_or((row, field), |seen| seen.min((row, field))));
                }
            }
        }
        if let Some((row, field)) = invalid {
            return Err(self.invalid_utf8(lines, row, field));
        }
        let batch = RecordBatch::try_new(self.text_schema.clone(), arrays)?;
        let Some(converter) = &mut self.converter else {
            return Ok(batch);
        };
        match converter.convert_or_locate(&batch, self.rows_done + 1) {
            Ok(converted) => converted,
            Err(err) => {
                let line = lines.get(err.index).copied().unwrap_or_default();
                Err(err.at(format_args!("{:?}, {}", self.path, place(line, err.row))))
            }
        }
    }

    /// An error for the first bad value in the rows read so far (not UTF-8,
    /// or not of its column's type), if there is one.
    fn check_earlier(&mut self, columns: Vec<ColumnBuffers>, lines: &[u64]) -> Result<()> {
        if self.converter.is_none() {
            return self.check_utf8(&columns, lines);
        }
        self.finish(columns, lines).map(|_| ())
    }

    /// An error naming the first row and field of `columns` that is not
    /// UTF-8, if there is one.
    fn check_utf8(&self, columns: &[ColumnBuffers], lines: &[u64]) -> Result<()> {
        let first = columns
            .iter()
            .zip(&self.indices)
            .filter_map(|(column, &field)| {
                Some((first_invalid_row(&column.offsets, &column.values)?, field))
            })
            .min();
        match first {
            None => Ok(()),
            Some((row, field)) => Err(self.invalid_utf8(lines, row, field)),
        }
    }

    /// The error for field `field` of row `row` of this batch.
    fn invalid_utf8(&self, lines: &[u64], row: usize, field: usize) -> PluginError {
        PluginError::invalid_input(format!(
            "{:?}, {}: field {} is not valid UTF-8; only UTF-8 text files can be read",
            self.path,
            place(lines[row], self.rows_done + row as u64 + 1),
            field + 1
        ))
    }

    /// The error for the reader's current row, `count` rows into the batch,
    /// whose field count is not `width`.
    fn ragged_row(&self, count: usize) -> PluginError {
        let against = if self.has_header {
            "the header"
        } else {
            "the first row"
        };
        PluginError::invalid_input(format!(
            "{:?}, {}: the row has {} field(s) but {against} has {}; \
             every row must have as many fields as {against}",
            self.path,
            place(self.reader.record_line(), self.rows_done + count as u64 + 1),
            self.reader.len(),
            self.width,
        ))
    }

    fn too_big(&self, count: usize) -> PluginError {
        PluginError::invalid_input(format!(
            "{:?}, {}: the row is too large: a column of one batch would hold over 2 GiB of text",
            self.path,
            place(self.reader.record_line(), self.rows_done + count as u64 + 1),
        ))
    }
}

/// What the inference pass reads: the same file, fields and rows as the export.
struct TypeSource<'a> {
    file: &'a std::path::Path,
    path: &'a str,
    delimiter: u8,
    max_field: usize,
    has_header: bool,
    width: usize,
    indices: &'a [usize],
    /// Data rows to read at most: as many as the export reads.
    rows: u64,
}

impl TypeSource<'_> {
    /// The type [`Inference`] guesses for every output column, from every
    /// row the export will read. Columns `types` names are not guessed.
    ///
    /// A row the export cannot read (a ragged row, a quote never closed, a
    /// field over the cap) ends the guess there: the export fails on that
    /// row anyway, with the usual message, after the rows before it, which
    /// were all guessed from.
    fn infer(
        &self,
        names: &[String],
        types: &BTreeMap<String, ColumnType>,
    ) -> Result<Vec<ColumnType>> {
        let path = self.path;
        let mut file = File::open(self.file)
            .map_err(|err| PluginError::from(err).context(format!("cannot open {path:?}")))?;
        skip_bom(&mut file)
            .map_err(|err| PluginError::from(err).context(format!("cannot read {path:?}")))?;
        let mut reader = RecordReader::new(file, self.delimiter, self.max_field);
        let mut inference = Inference::new(names.len());
        for (column, name) in names.iter().enumerate() {
            if types.contains_key(name) {
                inference.rule_out(column);
            }
        }
        let mut skip_header = self.has_header;
        let mut rows = 0;
        while rows < self.rows && !inference.is_settled() {
            match reader.read_record() {
                Ok(true) if reader.len() == self.width => {}
                Ok(_)
                | Err(ReadError::FieldTooLarge { .. } | ReadError::UnterminatedQuote { .. }) => {
                    break
                }
                Err(ReadError::Io(err)) => return Err(io_error(path, err)),
            }
            if skip_header {
                skip_header = false;
                continue;
            }
            for (column, &index) in self.indices.iter().enumerate() {
                match std::str::from_utf8(reader.field(index)) {
                    Ok(value) => inference.feed(column, value),
                    // The export refuses it; until then it is no type's.
                    Err(_) => inference.rule_out(column),
                }
            }
            rows += 1;
        }
        Ok(inference.finish())
    }
}

/// Where a row is, for messages: `line 5 (row 3)`; `row` counts data rows from 1.
fn place(line: u64, row: u64) -> String {
    format!("line {line} (row {row})")
}

/// The first row (0-based) of a column whose value is not valid UTF-8.
fn first_invalid_row(offsets: &[i32], values: &[u8]) -> Option<usize> {
    offsets.windows(2).position(|pair| {
        let (start, end) = (pair[0] as usize, pair[1] as usize);
        std::str::from_utf8(&values[start..end]).is_err()
    })
}

/// The header's names: the reader's current record, which must be UTF-8.
fn header_names(path: &str, reader: &RecordReader<File>) -> Result<Vec<String>> {
    (0..reader.len())
        .map(|index| {
            std::str::from_utf8(reader.field(index))
                .map(str::to_owned)
                .map_err(|_| {
                    PluginError::invalid_input(format!(
                        "{path:?}, line {} (the header): field {} is not valid UTF-8; \
                         only UTF-8 text files can be read",
                        reader.record_line(),
                        index + 1
                    ))
                })
        })
        .collect()
}

/// Positions `file` after a UTF-8 byte order mark, or at its start.
fn skip_bom(file: &mut File) -> io::Result<()> {
    let mut head = [0u8; 3];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let start = if filled == head.len() && head == UTF8_BOM {
        3
    } else {
        0
    };
    file.seek(SeekFrom::Start(start))?;
    Ok(())
}

/// The header positions of the `wanted` column names.
fn select(path: &str, header: &[String], wanted: &[String]) -> Result<Vec<usize>> {
    wanted
        .iter()
        .map(|name| {
            let mut found = header
                .iter()
                .enumerate()
                .filter(|(_, column)| *column == name)
                .map(|(index, _)| index);
            match (found.next(), found.next()) {
                (Some(index), None) => Ok(index),
                (Some(_), Some(_)) => Err(PluginError::invalid_input(format!(
                    "column {name:?} appears more than once in the header of {path:?}, \
                     so it cannot be selected by name"
                ))),
                (None, _) => Err(PluginError::invalid_input(format!(
                    "column {name:?} not found in {path:?}; the file has: {}",
                    list_columns(header)
                ))),
            }
        })
        .collect()
}

fn list_columns(header: &[String]) -> String {
    let mut listed: Vec<String> = header
        .iter()
        .take(MAX_LISTED_COLUMNS)
        .map(|name| format!("{name:?}"))
        .collect();
    if header.len() > MAX_LISTED_COLUMNS {
        listed.push(format!("and {} more", header.len() - MAX_LISTED_COLUMNS));
    }
    listed.join(", ")
}

fn empty_file(path: &str) -> PluginError {
    PluginError::invalid_input(format!("file {path:?} is empty"))
}

/// A record of `path` that could not be read; `at` places the record
/// (`line 3 (row 2)`), `names` names its fields when known.
fn read_error(
    path: &str,
    at: &str,
    names: Option<&[String]>,
    max_field: usize,
    err: ReadError,
) -> PluginError {
    let field = |index: usize| match names.and_then(|names| names.get(index)) {
        Some(name) => format!("field {} ({name:?})", index + 1),
        None => format!("field {}", index + 1),
    };
    match err {
        ReadError::Io(err) => io_error(path, err),
        ReadError::UnterminatedQuote { line, field: index } => PluginError::invalid_input(format!(
            "{path:?}, {at}: the quoted {} opened on line {line} is never closed: the file \
                 ends inside it, so it may be truncated; close the quote, and write a quote \
                 inside a quoted field as two (\"\")",
            field(index)
        )),
        ReadError::FieldTooLarge { field: index } => PluginError::limit_exceeded(format!(
            "{path:?}, {at}: {} is larger than {}, the most one field may hold; raise \
             max_field_bytes in the csv plugin's config, or split the value",
            field(index),
            show_bytes(max_field)
        )),
    }
}

/// A failed read of the file.
fn io_error(path: &str, err: io::Error) -> PluginError {
    let text = err.to_string();
    let kind = PluginError::from(err).kind;
    PluginError::new(
        if kind == ErrorKind::InvalidInput {
            kind
        } else {
            ErrorKind::Io
        },
        format!("reading {path:?} failed: {text}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::cast::AsArray;
    use serde_json::{json, Value};
    use std::fs;
    use std::path::{Path, PathBuf};
    use tempfile::TempDir;

    /// A temp folder holding `root/`, with `files` written under the root.
    fn root_with(files: &[(&str, &[u8])]) -> (TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        for (name, bytes) in files {
            fs::write(root.join(name), bytes).unwrap();
        }
        (dir, root)
    }

    fn open(root: &Path, selector: Value, limits: &Limits) -> Result<Box<dyn BatchReader>> {
        let config = json!({ "root": root }).to_string();
        plugin().open_loader("csv", &config, &selector.to_string(), limits)
    }

    fn load_with(
        root: &Path,
        selector: Value,
        limits: &Limits,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let mut reader = open(root, selector, limits)?;
        let schema = reader.schema();
        let mut batches = Vec::new();
        while let Some(batch) = reader.next_batch()? {
            assert_eq!(batch.schema(), schema);
            batches.push(batch);
        }
        Ok((schema, batches))
    }

    fn load(root: &Path, selector: Value) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        load_with(root, selector, &Limits::default())
    }

    fn names(schema: &SchemaRef) -> Vec<&str> {
        schema.fields().iter().map(|f| f.name().as_str()).collect()
    }

    /// Row-major values of every batch.
    fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for batch in batches {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|column| {
                            assert_eq!(column.data_type(), &DataType::Utf8);
                            assert_eq!(column.null_count(), 0);
                            column.as_string::<i32>().value(row).to_owned()
                        })
                        .collect(),
                );
            }
        }
        rows
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    fn big_cell() -> String {
        // ~70 KB of mixed ASCII and multi-byte text, with a comma and a quote
        // far from the start of the field.
        let mut cell = "ab€ç日🌍 ".repeat(5_000);
        cell.push_str("end, \"quoted\" end");
        assert!(cell.len() > 70_000);
        cell
    }

    /// The hard cases as they are written in the file, and as they must come back.
    fn hard_file() -> (Vec<u8>, Vec<Vec<String>>) {
        let big = big_cell();
        let mut file = Vec::new();
        file.extend_from_slice(b"id,amount,text,note\r\n");
        file.extend_from_slice(b"007,1.50,NaN,=cmd()\r\n");
        file.extend_from_slice(b",\"\",  padded  ,\"multi\nline\"\n");
        file.extend_from_slice(b"0001,-0,\"crlf\r\ninside\",\"say \"\"hi\"\"\"\n");
        file.extend_from_slice("x,1e5,tab\there,héllo 🌍 日本 \n".as_bytes());
        file.extend_from_slice(
            format!("big,\"{}\",\"a, b\",'single'\n", big.replace('"', "\"\"")).as_bytes(),
        );
        file.extend_from_slice(b"cr,\"lone\ronly\",\"  \",null\n");
        file.extend_from_slice(b"last,TRUE,NULL,\"no final newline\"");
        let expected = vec![
            strings(&["007", "1.50", "NaN", "=cmd()"]),
            strings(&["", "", "  padded  ", "multi\nline"]),
            strings(&["0001", "-0", "crlf\r\ninside", "say \"hi\""]),
            strings(&["x", "1e5", "tab\there", "héllo 🌍 日本 "]),
            vec![
                "big".to_owned(),
                big,
                "a, b".to_owned(),
                "'single'".to_owned(),
            ],
            strings(&["cr", "lone\ronly", "  ", "null"]),
            strings(&["last", "TRUE", "NULL", "no final newline"]),
        ];
        (file, expected)
    }

    #[test]
    fn hard_cases_come_back_byte_for_byte() {
        let (file, expected) = hard_file();
        let (_dir, root) = root_with(&[("hard.csv", &file)]);
        let (schema, batches) = load(&root, json!({ "path": "hard.csv" })).unwrap();
        assert_eq!(names(&schema), ["id", "amount", "text", "note"]);
        for field in schema.fields() {
            assert_eq!(field.data_type(), &DataType::Utf8);
        }
        let got = rows(&batches);
        assert_eq!(got.len(), expected.len());
        for (line, (got, want)) in got.iter().zip(&expected).enumerate() {
            for (column, (got, want)) in got.iter().zip(want).enumerate() {
                assert_eq!(got, want, "row {line}, column {column}");
            }
        }
    }

    #[test]
    fn hard_cases_in_small_batches() {
        let (file, expected) = hard_file();
        let (_dir, root) = root_with(&[("hard.csv", &file)]);
        let limits = Limits {
            batch_size: 3,
            ..Limits::default()
        };
        let (_, batches) = load_with(&root, json!({ "path": "hard.csv" }), &limits).unwrap();
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(rows(&batches), expected);
    }

    #[test]
    fn utf8_bom_is_not_part_of_the_first_column_name() {
        let (_dir, root) = root_with(&[("bom.csv", b"\xEF\xBB\xBFid,name\n1,ada\n")]);
        let (schema, batches) =
            load(&root, json!({ "path": "bom.csv", "columns": ["id"] })).unwrap();
        assert_eq!(names(&schema), ["id"]);
        assert_eq!(rows(&batches), [strings(&["1"])]);
    }

    #[test]
    fn batches_of_batch_size_rows() {
        let (_dir, root) = root_with(&[("five.csv", b"n\n1\n2\n3\n4\n5\n")]);
        let limits = Limits {
            batch_size: 2,
            ..Limits::default()
        };
        let (_, batches) = load_with(&root, json!({ "path": "five.csv" }), &limits).unwrap();
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let values: Vec<String> = rows(&batches).into_iter().flatten().collect();
        assert_eq!(values, ["1", "2", "3", "4", "5"]);
    }

    #[test]
    fn limit_caps_rows() {
        let (_dir, root) = root_with(&[("five.csv", b"n\n1\n2\n3\n4\n5\n")]);
        let limits = Limits {
            batch_size: 2,
            ..Limits::default()
        };
        let (_, batches) =
            load_with(&root, json!({ "path": "five.csv", "limit": 3 }), &limits).unwrap();
        let values: Vec<String> = rows(&batches).into_iter().flatten().collect();
        assert_eq!(values, ["1", "2", "3"]);

        let (schema, batches) = load(&root, json!({ "path": "five.csv", "limit": 0 })).unwrap();
        assert_eq!(names(&schema), ["n"]);
        assert!(batches.is_empty());

        let (_, batches) = load(&root, json!({ "path": "five.csv", "limit": 99 })).unwrap();
        assert_eq!(rows(&batches).len(), 5);
    }

    #[test]
    fn stops_one_row_past_max_rows() {
        let (_dir, root) = root_with(&[("five.csv", b"n\n1\n2\n3\n4\n5\n")]);
        let limits = Limits {
            max_rows: 2,
            batch_size: 8192,
        };
        let (_, batches) = load_with(&root, json!({ "path": "five.csv" }), &limits).unwrap();
        assert_eq!(rows(&batches).len(), 3);
        let (_, batches) =
            load_with(&root, json!({ "path": "five.csv", "limit": 1 }), &limits).unwrap();
        assert_eq!(rows(&batches).len(), 1);
    }

    #[test]
    fn semicolon_and_tab_delimiters() {
        let (_dir, root) = root_with(&[
            ("semi.csv", b"a;b\n1,5;\"x;y\"\n"),
            ("tab.tsv", b"a\tb\n1,5\t\"x\ty\"\n, \t;\n"),
        ]);
        let (schema, batches) =
            load(&root, json!({ "path": "semi.csv", "delimiter": ";" })).unwrap();
        assert_eq!(names(&schema), ["a", "b"]);
        assert_eq!(rows(&batches), [strings(&["1,5", "x;y"])]);

        let (schema, batches) =
            load(&root, json!({ "path": "tab.tsv", "delimiter": "\t" })).unwrap();
        assert_eq!(names(&schema), ["a", "b"]);
        assert_eq!(
            rows(&batches),
            [strings(&["1,5", "x\ty"]), strings(&[", ", ";"])]
        );
    }

    #[test]
    fn bad_delimiter_is_refused() {
        let (_dir, root) = root_with(&[("a.csv", b"a\n1\n")]);
        for delimiter in ["", ";;", "\"", "\n", "é"] {
            let err = load(&root, json!({ "path": "a.csv", "delimiter": delimiter }))
                .err()
                .unwrap();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{delimiter:?}");
            assert!(err.message.contains("delimiter"), "{}", err.message);
        }
    }

    #[test]
    fn unknown_selector_fields_are_refused() {
        let (_dir, root) = root_with(&[("a.csv", b"a\n1\n")]);
        let err = load(&root, json!({ "path": "a.csv", "header": false }))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("header"), "{}", err.message);
    }

    #[test]
    fn without_header_columns_are_numbered() {
        let (_dir, root) = root_with(&[("raw.csv", b"id,name\n1,ada\n")]);
        let (schema, batches) =
            load(&root, json!({ "path": "raw.csv", "has_header": false })).unwrap();
        assert_eq!(names(&schema), ["column_1", "column_2"]);
        assert_eq!(
            rows(&batches),
            [strings(&["id", "name"]), strings(&["1", "ada"])]
        );
    }

    #[test]
    fn without_header_columns_name_every_field() {
        let (_dir, root) = root_with(&[("raw.csv", b"1,ada\n2,bob\n")]);
        let limits = Limits {
            batch_size: 1,
            ..Limits::default()
        };
        let (schema, batches) = load_with(
            &root,
            json!({ "path": "raw.csv", "has_header": false, "columns": ["id", "name"] }),
            &limits,
        )
        .unwrap();
        assert_eq!(names(&schema), ["id", "name"]);
        assert_eq!(batches.len(), 2);
        assert_eq!(
            rows(&batches),
            [strings(&["1", "ada"]), strings(&["2", "bob"])]
        );

        let err = load(
            &root,
            json!({ "path": "raw.csv", "has_header": false, "columns": ["id"] }),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("1 column(s)"), "{}", err.message);
        assert!(err.message.contains("2 field(s)"), "{}", err.message);
    }

    #[test]
    fn columns_select_and_order_by_name() {
        let (_dir, root) = root_with(&[("people.csv", b"id,name,age\n1,ada,36\n2,bob,7\n")]);
        let (schema, batches) = load(
            &root,
            json!({ "path": "people.csv", "columns": ["age", "id"] }),
        )
        .unwrap();
        assert_eq!(names(&schema), ["age", "id"]);
        assert_eq!(
            rows(&batches),
            [strings(&["36", "1"]), strings(&["7", "2"])]
        );
    }

    #[test]
    fn unknown_column_lists_the_available_ones() {
        let (_dir, root) = root_with(&[("people.csv", b"id,name\n1,ada\n")]);
        let err = load(
            &root,
            json!({ "path": "people.csv", "columns": ["id", "price"] }),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("\"price\""), "{}", err.message);
        assert!(err.message.contains("\"id\", \"name\""), "{}", err.message);
    }

    #[test]
    fn ambiguous_or_empty_column_selection_is_refused() {
        let (_dir, root) = root_with(&[("dup.csv", b"a,a,b\n1,2,3\n")]);
        let err = load(&root, json!({ "path": "dup.csv", "columns": ["a"] }))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("more than once"), "{}", err.message);
        let (_, batches) = load(&root, json!({ "path": "dup.csv", "columns": ["b"] })).unwrap();
        assert_eq!(rows(&batches), [strings(&["3"])]);
        let err = load(&root, json!({ "path": "dup.csv", "columns": [] }))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn ragged_row_names_its_line() {
        let (_dir, root) = root_with(&[("ragged.csv", b"a,b\n1,2\n\"x\ny\",2\n3\n")]);
        let err = load(&root, json!({ "path": "ragged.csv" })).err().unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        // The short row starts on line 5 (the quoted field spans lines 3-4).
        assert!(err.message.contains("line 5 (row 3)"), "{}", err.message);
        assert!(err.message.contains("1 field(s)"), "{}", err.message);
        assert!(err.message.contains("the header has 2"), "{}", err.message);

        let err = load(&root, json!({ "path": "ragged.csv", "has_header": false }))
            .err()
            .unwrap();
        assert!(err.message.contains("line 5 (row 4)"), "{}", err.message);
        assert!(err.message.contains("the first row"), "{}", err.message);
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let (_dir, root) = root_with(&[
            ("latin1.csv", b"a,b\n1,2\n3,caf\xE9\n"),
            ("header.csv", b"a,\xFF\n1,2\n"),
        ]);
        let err = load(&root, json!({ "path": "latin1.csv" })).err().unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("line 3"), "{}", err.message);
        assert!(err.message.contains("field 2"), "{}", err.message);
        assert!(err.message.contains("UTF-8"), "{}", err.message);

        let err = load(&root, json!({ "path": "header.csv" })).err().unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("line 1"), "{}", err.message);
    }

    #[test]
    fn empty_file_is_refused_and_header_only_has_no_rows() {
        let (_dir, root) = root_with(&[
            ("empty.csv", b""),
            ("blank.csv", b"\n\n"),
            ("bom.csv", b"\xEF\xBB\xBF"),
            ("header.csv", b"id,name\n"),
        ]);
        for path in ["empty.csv", "blank.csv", "bom.csv"] {
            for has_header in [true, false] {
                let err = load(&root, json!({ "path": path, "has_header": has_header }))
                    .err()
                    .unwrap();
                assert_eq!(err.kind, ErrorKind::InvalidInput);
                assert!(err.message.contains("is empty"), "{}", err.message);
            }
        }
        let (schema, batches) = load(&root, json!({ "path": "header.csv" })).unwrap();
        assert_eq!(names(&schema), ["id", "name"]);
        assert!(batches.is_empty());
    }

    #[test]
    fn missing_file_is_not_found() {
        let (_dir, root) = root_with(&[]);
        let err = load(&root, json!({ "path": "nope/missing.csv" }))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(err.message.contains("nope/missing.csv"), "{}", err.message);
    }

    #[test]
    fn folder_or_empty_path_is_refused() {
        let (_dir, root) = root_with(&[]);
        fs::create_dir(root.join("sub")).unwrap();
        for path in ["sub", "", "."] {
            let err = load(&root, json!({ "path": path })).err().unwrap();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{path:?}");
        }
    }

    #[test]
    fn paths_inside_the_root_are_fine() {
        let (_dir, root) = root_with(&[("a.csv", b"n\n1\n")]);
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/b.csv"), b"n\n2\n").unwrap();
        std::os::unix::fs::symlink("a.csv", root.join("alias.csv")).unwrap();
        for (path, value) in [
            ("./a.csv", "1"),
            ("sub/../a.csv", "1"),
            ("sub/b.csv", "2"),
            ("sub/./b.csv", "2"),
            ("alias.csv", "1"),
        ] {
            let (_, batches) = load(&root, json!({ "path": path })).unwrap();
            assert_eq!(rows(&batches), [strings(&[value])], "{path}");
        }
    }

    fn assert_outside(err: PluginError, path: &str) {
        assert_eq!(
            err.kind,
            ErrorKind::PermissionDenied,
            "{path}: {}",
            err.message
        );
        assert!(err.message.contains(path), "{}", err.message);
        assert!(
            err.message.contains("must be inside the configured root"),
            "{}",
            err.message
        );
    }

    #[test]
    fn escape_by_parent_dir_or_absolute_path_is_refused() {
        let (dir, root) = root_with(&[("a.csv", b"n\n1\n")]);
        fs::write(dir.path().join("secret.csv"), b"s\nsecret\n").unwrap();
        let absolute = dir.path().join("secret.csv");
        let inside_absolute = root.join("a.csv");
        for path in [
            "../secret.csv",
            "sub/../../secret.csv",
            "./../secret.csv",
            "../missing.csv",
            absolute.to_str().unwrap(),
            inside_absolute.to_str().unwrap(),
        ] {
            let err = load(&root, json!({ "path": path })).err().unwrap();
            assert_outside(err, path);
        }
    }

    #[test]
    fn escape_by_symlink_is_refused() {
        let (dir, root) = root_with(&[]);
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret.csv"), b"s\nsecret\n").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.csv"), root.join("link.csv")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("dirlink")).unwrap();
        for path in ["link.csv", "dirlink/secret.csv"] {
            let err = load(&root, json!({ "path": path })).err().unwrap();
            assert_outside(err, path);
        }
    }

    #[test]
    fn root_may_itself_be_a_symlink() {
        let (dir, root) = root_with(&[("a.csv", b"n\n1\n")]);
        let alias = dir.path().join("alias");
        std::os::unix::fs::symlink(&root, &alias).unwrap();
        let (_, batches) = load(&alias, json!({ "path": "a.csv" })).unwrap();
        assert_eq!(rows(&batches), [strings(&["1"])]);
    }

    #[test]
    fn missing_root_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("gone"), json!({ "path": "a.csv" }))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::Io);
        assert!(err.message.contains("configured root"), "{}", err.message);
    }

    #[test]
    fn fraction_follows_the_bytes_read_up_to_one() {
        let mut file = b"id,text\n".to_vec();
        for n in 0..50_000 {
            file.extend_from_slice(format!("{n:06},\"row {n}, quoted\"\n").as_bytes());
        }
        let (_dir, root) = root_with(&[("big.csv", &file)]);
        let limits = Limits {
            batch_size: 1000,
            ..Limits::default()
        };
        let mut reader = open(&root, json!({ "path": "big.csv" }), &limits).unwrap();
        let mut fractions = Vec::new();
        while reader.next_batch().unwrap().is_some() {
            fractions.push(reader.fraction().expect("a regular file has a size"));
        }
        assert_eq!(fractions.len(), 50);
        assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
        assert!(fractions[0] > 0.0 && fractions[0] < 0.1, "{fractions:?}");
        // Rows of even length: the share read tracks the rows read.
        assert!((fractions[24] - 0.5).abs() < 0.05, "{fractions:?}");
        assert_eq!(fractions.last(), Some(&1.0));
        assert_eq!(reader.fraction(), Some(1.0));
    }

    #[test]
    fn many_rows_stream_in_full_batches() {
        let mut file = b"id,text\n".to_vec();
        for n in 0..10_000 {
            file.extend_from_slice(format!("{n:05},\"row {n}\nline two\"\n").as_bytes());
        }
        let (_dir, root) = root_with(&[("many.csv", &file)]);
        let limits = Limits {
            batch_size: 4096,
            ..Limits::default()
        };
        let (_, batches) = load_with(&root, json!({ "path": "many.csv" }), &limits).unwrap();
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
        let all = rows(&batches);
        assert_eq!(all[0], strings(&["00000", "row 0\nline two"]));
        assert_eq!(all[9_999], strings(&["09999", "row 9999\nline two"]));
    }

    #[test]
    fn invalid_utf8_is_found_per_value_and_in_later_batches() {
        let mut file = b"id,text\n".to_vec();
        for n in 0..10 {
            file.extend_from_slice(format!("{n},\"ok\nok\"\n").as_bytes());
        }
        // Row 11: alone, neither half of `\xC3\xA9` is UTF-8, though the two
        // together in one buffer would be.
        file.extend_from_slice(b"x,\xC3\ny,\xA9\n");
        let (_dir, root) = root_with(&[("split.csv", &file)]);
        let limits = Limits {
            batch_size: 4,
            ..Limits::default()
        };
        let err = load_with(&root, json!({ "path": "split.csv" }), &limits)
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("line 22 (row 11)"), "{}", err.message);
        assert!(err.message.contains("field 2"), "{}", err.message);
    }

    #[test]
    fn invalid_utf8_before_a_ragged_row_is_reported_first() {
        let (_dir, root) = root_with(&[("both.csv", b"a,b\n1,\xFF\n2\n")]);
        let err = load(&root, json!({ "path": "both.csv" })).err().unwrap();
        assert!(err.message.contains("line 2 (row 1)"), "{}", err.message);
        assert!(err.message.contains("UTF-8"), "{}", err.message);
    }

    #[test]
    fn only_exported_columns_must_be_utf8() {
        let (_dir, root) = root_with(&[("mixed.csv", b"id,blob\n1,\xFF\xFE\n2,ok\n")]);
        let (_, batches) = load(&root, json!({ "path": "mixed.csv", "columns": ["id"] })).unwrap();
        assert_eq!(rows(&batches), [strings(&["1"]), strings(&["2"])]);
        let err = load(&root, json!({ "path": "mixed.csv" })).err().unwrap();
        assert!(err.message.contains("line 2 (row 1)"), "{}", err.message);
        assert!(err.message.contains("field 2"), "{}", err.message);
    }

    #[test]
    fn crlf_rows_and_quoted_fields_through_the_loader() {
        let (_dir, root) = root_with(&[(
            "crlf.csv",
            b"a,b\r\n\"x\r\ny\",\"\"\"\"\r\n\r\n3,\r\n\"\",\"end\"",
        )]);
        let (_, batches) = load(&root, json!({ "path": "crlf.csv" })).unwrap();
        assert_eq!(
            rows(&batches),
            [
                strings(&["x\r\ny", "\""]),
                strings(&["3", ""]),
                strings(&["", "end"])
            ]
        );
    }
}

#[cfg(test)]
mod type_tests {
    use crate::plugin;
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::arrow_array::types::{
        Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
    };
    use export_plugin_api::arrow_array::{Array, RecordBatch};
    use export_plugin_api::arrow_schema::{DataType, SchemaRef, TimeUnit};
    use export_plugin_api::{BatchReader, ErrorKind, Limits, PluginError};
    use serde_json::{json, Value};
    use std::fs;
    use tempfile::TempDir;

    fn dir_with(name: &str, bytes: &[u8]) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(name), bytes).unwrap();
        dir
    }

    fn open(
        dir: &TempDir,
        selector: Value,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>, PluginError> {
        let config = json!({ "root": dir.path() }).to_string();
        plugin().open_loader("csv", &config, &selector.to_string(), limits)
    }

    /// The schema, every batch and the notes.
    fn load_with(
        dir: &TempDir,
        selector: Value,
        limits: &Limits,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Option<Value>), PluginError> {
        let mut reader = open(dir, selector, limits)?;
        let schema = reader.schema();
        let mut batches = Vec::new();
        while let Some(batch) = reader.next_batch()? {
            assert_eq!(batch.schema(), schema);
            batches.push(batch);
        }
        Ok((schema, batches, reader.notes().map(Value::Object)))
    }

    fn load(
        dir: &TempDir,
        selector: Value,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Option<Value>), PluginError> {
        load_with(dir, selector, &Limits::default())
    }

    fn data_types(schema: &SchemaRef) -> Vec<DataType> {
        schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    const PRICES: &[u8] = b"id,price,day,at,ok,amount,name\n\
        1,1.5,2024-05-01,2024-05-01T10:00:00+02:00,true,12.50,ada\n\
        2,,,,,,\n\
        3,-2e3,1999-12-31,1999-12-31T23:59:59.5Z,FALSE,-0.01,\" b \"\n";

    #[test]
    fn types_turn_columns_into_typed_ones() {
        let dir = dir_with("prices.csv", PRICES);
        let selector = json!({
            "path": "prices.csv",
            "types": {
                "id": "int64", "price": "float64", "day": "date", "at": "timestamp",
                "ok": "bool", "amount": "decimal(10,2)", "name": "text"
            }
        });
        let (schema, batches, notes) = load(&dir, selector).unwrap();
        assert_eq!(
            data_types(&schema),
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Date32,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                DataType::Boolean,
                DataType::Decimal128(10, 2),
                DataType::Utf8,
            ]
        );
        assert!(notes.is_none());
        let batch = &batches[0];
        let ids = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.values().to_vec(), [1, 2, 3]);
        let price = batch.column(1).as_primitive::<Float64Type>();
        assert_eq!((price.value(0), price.value(2)), (1.5, -2000.0));
        // Empty cells are nulls in typed columns, and stay empty text in text ones.
        for column in 1..6 {
            assert!(batch.column(column).is_null(1), "column {column}");
            assert_eq!(batch.column(column).null_count(), 1);
        }
        let day = batch.column(2).as_primitive::<Date32Type>();
        assert_eq!(day.value(0), 19_844);
        let at = batch.column(3).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(0), 1_714_550_400_000_000);
        let ok = batch.column(4).as_boolean();
        assert!(ok.value(0) && !ok.value(2));
        let amount = batch.column(5).as_primitive::<Decimal128Type>();
        assert_eq!((amount.value(0), amount.value(2)), (1250, -1));
        let name = batch.column(6).as_string::<i32>();
        assert_eq!(
            (name.value(0), name.value(1), name.value(2)),
            ("ada", "", " b ")
        );
        assert_eq!(name.null_count(), 0);
    }

    #[test]
    fn a_value_that_does_not_fit_names_line_row_column_and_value() {
        let dir = dir_with("p.csv", b"id,price\n1,1.5\n2,\"x\ny\"\n3,12,5\n");
        let err = load(
            &dir,
            json!({ "path": "p.csv", "types": { "price": "float64" } }),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.starts_with(
                r#""p.csv", line 3 (row 2), column "price": "x\ny" is not a float64; "#
            ),
            "{}",
            err.message
        );
        // In a later batch, the row counts on.
        let mut file = b"n\n".to_vec();
        for n in 0..10 {
            file.extend_from_slice(format!("{n}\n").as_bytes());
        }
        file.extend_from_slice(b"1.0\n");
        let dir = dir_with("n.csv", &file);
        let limits = Limits {
            batch_size: 4,
            ..Limits::default()
        };
        let err = load_with(
            &dir,
            json!({ "path": "n.csv", "types": { "n": "int64" } }),
            &limits,
        )
        .err()
        .unwrap();
        assert!(
            err.message
                .starts_with(r#""n.csv", line 12 (row 11), column "n": "1.0" is not an int64"#),
            "{}",
            err.message
        );
    }

    #[test]
    fn on_error_null_counts_in_the_notes() {
        let dir = dir_with(
            "p.csv",
            b"id,price,when\n1,1.5,x\n2,\"12,5\",\n3,n/a,2024-01-01\n",
        );
        let limits = Limits {
            batch_size: 2,
            ..Limits::default()
        };
        let selector = json!({
            "path": "p.csv",
            "types": { "price": "float64", "when": "date" },
            "on_error": "null"
        });
        let (_, batches, notes) = load_with(&dir, selector, &limits).unwrap();
        assert_eq!(
            notes,
            Some(json!({ "nulled_values": { "price": 2, "when": 1 } }))
        );
        let prices: Vec<Option<f64>> = batches
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(prices, [Some(1.5), None, None]);
        // Nothing nulled: no notes.
        let (_, _, notes) = load(
            &dir,
            json!({ "path": "p.csv", "types": { "id": "int64" }, "on_error": "null" }),
        )
        .unwrap();
        assert!(notes.is_none());
    }

    #[test]
    fn unknown_columns_and_bad_type_names_are_refused() {
        let dir = dir_with("p.csv", b"id,price\n1,2\n");
        let err = load(
            &dir,
            json!({ "path": "p.csv", "types": { "pricee": "int64" } }),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("\"pricee\""), "{}", err.message);
        assert!(err.message.contains("\"id\", \"price\""), "{}", err.message);
        // A column left out by `columns` is not a column of the export.
        let err = load(
            &dir,
            json!({ "path": "p.csv", "columns": ["id"], "types": { "price": "int64" } }),
        )
        .err()
        .unwrap();
        assert!(err.message.contains("\"price\""), "{}", err.message);

        for (bad, needle) in [
            ("floatt", "unknown column type \"floatt\""),
            ("decimal(40,2)", "between 1 and 38"),
            ("decimal(4,5)", "between 0 and 4"),
        ] {
            let err = load(&dir, json!({ "path": "p.csv", "types": { "price": bad } }))
                .err()
                .unwrap();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains(needle), "{}", err.message);
            assert!(
                err.message.contains("int64") || err.message.contains("decimal"),
                "{}",
                err.message
            );
        }
        let err = load(&dir, json!({ "path": "p.csv", "on_error": "skip" }))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("skip"), "{}", err.message);
    }

    /// Every cell of every batch as the type writes it back; `None` for nulls.
    fn cells(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
        let mut rows = Vec::new();
        for batch in batches {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|column| {
                            if column.is_null(row) {
                                return None;
                            }
                            Some(match column.data_type() {
                                DataType::Utf8 => column.as_string::<i32>().value(row).to_owned(),
                                DataType::Int64 => {
                                    column.as_primitive::<Int64Type>().value(row).to_string()
                                }
                                DataType::Float64 => {
                                    column.as_primitive::<Float64Type>().value(row).to_string()
                                }
                                DataType::Boolean => column.as_boolean().value(row).to_string(),
                                DataType::Date32 => column
                                    .as_primitive::<Date32Type>()
                                    .value_as_date(row)
                                    .unwrap()
                                    .to_string(),
                                DataType::Timestamp(..) => column
                                    .as_primitive::<TimestampMicrosecondType>()
                                    .value_as_datetime(row)
                                    .unwrap()
                                    .format("%Y-%m-%dT%H:%M:%S%.fZ")
                                    .to_string(),
                                other => panic!("{other}"),
                            })
                        })
                        .collect(),
                );
            }
        }
        rows
    }

    #[test]
    fn infer_guesses_only_what_comes_back_unchanged() {
        let file = "ints,zeros,big,floats,money,nan,negzero,huge,when,offsets,day,flag,empty,text\n\
            1,00123,12345678901234567890,1.5,1.50,NaN,-0.0,1e400,2024-05-01T10:00:00Z,2024-05-01T10:00:00Z,2024-05-01,true,,a\n\
            -2,007,1,2,2.25,1.5,1.5,1.5,,2024-05-01T12:00:00+02:00,,false,,\n\
            ,1,2,0.25,3,1,1,1,2024-05-01T10:00:00.123456+00:00,2024-05-01T10:00:00Z,2024-02-29,,,1\n";
        let dir = dir_with("hard.csv", file.as_bytes());
        let limits = Limits {
            batch_size: 2,
            ..Limits::default()
        };
        let (schema, batches, notes) =
            load_with(&dir, json!({ "path": "hard.csv", "infer": true }), &limits).unwrap();
        assert!(notes.is_none());
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(
            data_types(&schema),
            [
                DataType::Int64,
                DataType::Utf8,
                DataType::Utf8,
                DataType::Float64,
                DataType::Utf8,
                DataType::Utf8,
                DataType::Utf8,
                DataType::Utf8,
                utc,
                DataType::Utf8,
                DataType::Date32,
                DataType::Boolean,
                DataType::Utf8,
                DataType::Utf8,
            ]
        );
        // Every value survives: typed ones are written back as in the file
        // (UTC as `Z`), empty cells are nulls only in typed columns.
        let mut lines = file.lines();
        lines.next();
        let got = cells(&batches);
        assert_eq!(got.len(), 3);
        for (row, line) in got.iter().zip(lines) {
            for ((cell, written), field) in row.iter().zip(line.split(',')).zip(schema.fields()) {
                match cell {
                    None => assert!(written.is_empty() && field.data_type() != &DataType::Utf8),
                    Some(cell) => {
                        assert_eq!(*cell, written.replace("+00:00", "Z"), "{}", field.name())
                    }
                }
            }
        }

        // `types` overrides the guess; the rest is still guessed.
        let (schema, _, _) = load(
            &dir,
            json!({ "path": "hard.csv", "infer": true, "types": { "ints": "text", "zeros": "int64" } }),
        )
        .unwrap();
        assert_eq!(
            data_types(&schema)[..4],
            [
                DataType::Utf8,
                DataType::Int64,
                DataType::Utf8,
                DataType::Float64
            ]
        );

        // Only the rows exported are read for the guess: the second row's
        // `+02:00` is not among them.
        let (schema, _, _) = load(
            &dir,
            json!({ "path": "hard.csv", "infer": true, "limit": 1 }),
        )
        .unwrap();
        assert_eq!(
            data_types(&schema)[9],
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
    }

    #[test]
    fn infer_without_header_and_with_columns() {
        let dir = dir_with("raw.csv", b"1,x,2024-01-01\n2,y,\n");
        let (schema, batches, _) = load(
            &dir,
            json!({ "path": "raw.csv", "has_header": false, "infer": true }),
        )
        .unwrap();
        assert_eq!(
            data_types(&schema),
            [DataType::Int64, DataType::Utf8, DataType::Date32]
        );
        assert_eq!(batches[0].num_rows(), 2);
        let dir = dir_with("h.csv", b"a,b,c\n1,x,2\n2,y,3.5\n");
        let (schema, _, _) = load(
            &dir,
            json!({ "path": "h.csv", "columns": ["c", "a"], "infer": true }),
        )
        .unwrap();
        assert_eq!(data_types(&schema), [DataType::Float64, DataType::Int64]);
    }

    #[test]
    fn infer_stops_at_a_bad_row_and_the_export_fails_there() {
        let dir = dir_with("ragged.csv", b"a,b\n1,2\n3\n");
        let err = load(&dir, json!({ "path": "ragged.csv", "infer": true }))
            .err()
            .unwrap();
        assert!(err.message.contains("line 3 (row 2)"), "{}", err.message);
        assert!(err.message.contains("1 field(s)"), "{}", err.message);
    }

    #[test]
    fn the_default_is_unchanged_and_validate_reads_no_data() {
        let dir = dir_with("p.csv", b"id\n007\n");
        let (schema, _, notes) = load(&dir, json!({ "path": "p.csv" })).unwrap();
        assert_eq!(data_types(&schema), [DataType::Utf8]);
        assert!(!schema.field(0).is_nullable());
        assert!(notes.is_none());
        let config = json!({ "root": dir.path() }).to_string();
        let selector = json!({ "path": "p.csv", "types": { "nope": "int64" }, "infer": true });
        plugin()
            .validate_loader("csv", &config, &selector.to_string(), None)
            .unwrap();
        let selector = json!({ "path": "p.csv", "types": { "id": "int" } });
        let err = plugin()
            .validate_loader("csv", &config, &selector.to_string(), None)
            .unwrap_err();
        assert!(err.message.contains("\"int\""), "{}", err.message);
    }
}

#[cfg(test)]
mod caller_and_limit_tests {
    use crate::plugin;
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::{Caller, Credential, ErrorKind, Limits, PluginError, Result};
    use serde_json::{json, Value};
    use std::fs;
    use std::path::Path;

    /// Every value of every row, read as `caller` with `config`.
    fn load_as(config: &Value, selector: Value, caller: Option<&Caller>) -> Result<Vec<String>> {
        let mut reader = plugin().open_loader_for(
            "csv",
            &config.to_string(),
            &selector.to_string(),
            &Limits::default(),
            caller,
        )?;
        let mut values = Vec::new();
        while let Some(batch) = reader.next_batch()? {
            for row in 0..batch.num_rows() {
                for column in batch.columns() {
                    values.push(column.as_string::<i32>().value(row).to_owned());
                }
            }
        }
        Ok(values)
    }

    fn validate(config: &Value, selector: Value, caller: Option<&Caller>) -> Result<()> {
        plugin().validate_loader("csv", &config.to_string(), &selector.to_string(), caller)
    }

    fn api_caller(user: &str, admin: bool) -> Caller {
        Caller {
            user: user.to_owned(),
            admin,
            credential: Credential::Token {
                id: "tok_test".to_owned(),
            },
        }
    }

    /// `users/ada/x.csv` and `users/bob/x.csv` under a temp folder, and a
    /// config whose root is `users/{user}`.
    fn per_user() -> (tempfile::TempDir, Value) {
        let dir = tempfile::tempdir().unwrap();
        for user in ["ada", "bob"] {
            let folder = dir.path().join("users").join(user);
            fs::create_dir_all(&folder).unwrap();
            fs::write(folder.join("x.csv"), format!("owner\n{user}\n")).unwrap();
        }
        let config = json!({ "root": dir.path().join("users/{user}") });
        (dir, config)
    }

    /// Asserts that open and validate both refuse with `kind` and every needle.
    fn assert_refused(
        config: &Value,
        selector: Value,
        caller: Option<&Caller>,
        kind: ErrorKind,
        needles: &[&str],
    ) {
        let check = |err: PluginError, what: &str| {
            assert_eq!(err.kind, kind, "{what}: {}", err.message);
            for needle in needles {
                assert!(err.message.contains(needle), "{what}: {}", err.message);
            }
        };
        check(
            load_as(config, selector.clone(), caller).unwrap_err(),
            "open",
        );
        check(validate(config, selector, caller).unwrap_err(), "validate");
    }

    #[test]
    fn each_caller_reads_their_own_folder() {
        let (_dir, config) = per_user();
        for user in ["ada", "bob"] {
            let caller = Caller::user(user);
            let got = load_as(&config, json!({ "path": "x.csv" }), Some(&caller)).unwrap();
            assert_eq!(got, [user]);
            validate(&config, json!({ "path": "x.csv" }), Some(&caller)).unwrap();
        }
        // An admin through the API reads their own folder.
        let admin = api_caller("bob", true);
        let got = load_as(&config, json!({ "path": "x.csv" }), Some(&admin)).unwrap();
        assert_eq!(got, ["bob"]);
    }

    #[test]
    fn other_folders_are_out_of_reach() {
        let (dir, config) = per_user();
        let bob = dir.path().join("users/bob/x.csv");
        std::os::unix::fs::symlink(&bob, dir.path().join("users/ada/link.csv")).unwrap();
        let ada = Caller::user("ada");
        for path in ["../bob/x.csv", bob.to_str().unwrap(), "link.csv"] {
            assert_refused(
                &config,
                json!({ "path": path }),
                Some(&ada),
                ErrorKind::PermissionDenied,
                &["must be inside the configured root"],
            );
        }
    }

    #[test]
    fn per_user_roots_need_a_usable_caller() {
        let (dir, config) = per_user();
        let selector = json!({ "path": "x.csv" });
        assert_refused(
            &config,
            selector.clone(),
            None,
            ErrorKind::PermissionDenied,
            &["needs the caller", "older than plugin-api 1.2"],
        );
        assert_refused(
            &config,
            selector.clone(),
            Some(&Caller::operator()),
            ErrorKind::InvalidInput,
            &["--user"],
        );
        for user in ["", "..", "a/b"] {
            assert_refused(
                &config,
                selector.clone(),
                Some(&api_caller(user, false)),
                ErrorKind::PermissionDenied,
                &["one path component"],
            );
        }
        // A user with no folder yet: not found, and no server path.
        let server = dir.path().to_str().unwrap();
        assert_refused(
            &config,
            selector,
            Some(&Caller::user("cy")),
            ErrorKind::NotFound,
            &["x.csv", "\"cy\""],
        );
        let err = load_as(
            &config,
            json!({ "path": "x.csv" }),
            Some(&Caller::user("cy")),
        );
        assert!(!err.unwrap_err().message.contains(server));
    }

    #[test]
    fn shared_roots_work_with_and_without_a_caller() {
        let (dir, _) = per_user();
        let config = json!({ "root": dir.path().join("users") });
        for caller in [None, Some(Caller::operator()), Some(Caller::user("bob"))] {
            let got = load_as(&config, json!({ "path": "ada/x.csv" }), caller.as_ref()).unwrap();
            assert_eq!(got, ["ada"]);
        }
    }

    #[test]
    fn validate_refuses_what_open_would_without_reading_the_data() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("open.csv"), "a,b\n1,\"open\n").unwrap();
        let config = json!({ "root": dir.path() });
        // The data is not read: a malformed file passes validation.
        validate(&config, json!({ "path": "open.csv" }), None).unwrap();
        let cases = [
            (
                json!({ "path": "missing.csv" }),
                ErrorKind::NotFound,
                "missing.csv",
            ),
            (
                json!({ "path": "../x.csv" }),
                ErrorKind::PermissionDenied,
                "inside",
            ),
            (
                json!({ "path": "" }),
                ErrorKind::InvalidInput,
                "path is empty",
            ),
            (
                json!({ "path": "." }),
                ErrorKind::InvalidInput,
                "regular file",
            ),
            (
                json!({ "path": "open.csv", "delimiter": ";;" }),
                ErrorKind::InvalidInput,
                "delimiter",
            ),
            (
                json!({ "path": "open.csv", "columns": [] }),
                ErrorKind::InvalidInput,
                "columns is empty",
            ),
            (
                json!({ "path": "open.csv", "header": true }),
                ErrorKind::InvalidInput,
                "header",
            ),
        ];
        for (selector, kind, needle) in cases {
            assert_refused(&config, selector, None, kind, &[needle]);
        }
        let config = json!({ "root": dir.path(), "max_field_bytes": 0 });
        assert_refused(
            &config,
            json!({ "path": "open.csv" }),
            None,
            ErrorKind::InvalidInput,
            &["max_field_bytes"],
        );
    }

    fn root_with(name: &str, bytes: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(name), bytes).unwrap();
        dir
    }

    fn config_for(root: &Path, max_field_bytes: Option<u64>) -> Value {
        match max_field_bytes {
            None => json!({ "root": root }),
            Some(bytes) => json!({ "root": root, "max_field_bytes": bytes }),
        }
    }

    #[test]
    fn a_file_ending_inside_quotes_names_the_line_where_the_quote_opened() {
        let dir = root_with("cut.csv", b"a,b\n1,\"unterminated\n2,3\n");
        let err = load_as(
            &config_for(dir.path(), None),
            json!({ "path": "cut.csv" }),
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err.message);
        for needle in [
            "\"cut.csv\"",
            "row 1",
            "field 2 (\"b\")",
            "opened on line 2",
            "never closed",
        ] {
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }

        // In a later batch, and in the header.
        let mut file = b"a,b\n".to_vec();
        for n in 0..100 {
            file.extend_from_slice(format!("{n},\"x\ny\"\n").as_bytes());
        }
        file.extend_from_slice(b"\"cut");
        let dir = root_with("late.csv", &file);
        let err = load_as(
            &config_for(dir.path(), None),
            json!({ "path": "late.csv" }),
            None,
        )
        .unwrap_err();
        assert!(
            err.message.contains("opened on line 202"),
            "{}",
            err.message
        );
        assert!(err.message.contains("row 101"), "{}", err.message);
        assert!(err.message.contains("field 1 (\"a\")"), "{}", err.message);

        let dir = root_with("head.csv", b"a,\"b\n");
        let err = load_as(
            &config_for(dir.path(), None),
            json!({ "path": "head.csv" }),
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("(the header)"), "{}", err.message);
        assert!(err.message.contains("opened on line 1"), "{}", err.message);
    }

    #[test]
    fn a_field_over_max_field_bytes_names_row_and_column() {
        let dir = root_with("big.csv", b"id,text\n1,short\n2,\"0123456789\"\n");
        let config = config_for(dir.path(), Some(9));
        let err = load_as(&config, json!({ "path": "big.csv" }), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::LimitExceeded, "{}", err.message);
        for needle in [
            "line 3 (row 2)",
            "field 2 (\"text\")",
            "9 bytes",
            "max_field_bytes",
        ] {
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
        // Even when the column is not exported: the field is still read.
        let err = load_as(
            &config,
            json!({ "path": "big.csv", "columns": ["id"] }),
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::LimitExceeded);
        // Exactly at the cap is fine.
        let got = load_as(
            &json!({ "root": dir.path(), "max_field_bytes": 10 }),
            json!({ "path": "big.csv" }),
            None,
        )
        .unwrap();
        assert_eq!(got, ["1", "short", "2", "0123456789"]);
        // Without a header the column is named as exported.
        let err = load_as(
            &config,
            json!({ "path": "big.csv", "has_header": false, "columns": ["n", "t"] }),
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("line 3 (row 3)"), "{}", err.message);
        assert!(err.message.contains("field 2 (\"t\")"), "{}", err.message);
        // In the header.
        let dir = root_with("head.csv", b"id,0123456789\n1,2\n");
        let err = load_as(
            &config_for(dir.path(), Some(9)),
            json!({ "path": "head.csv" }),
            None,
        )
        .unwrap_err();
        assert!(
            err.message.contains("line 1 (the header)"),
            "{}",
            err.message
        );
        assert!(err.message.contains("field 2"), "{}", err.message);
    }
}
