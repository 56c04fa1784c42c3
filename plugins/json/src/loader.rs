//! The `jsonl` loader: streams a newline-delimited JSON file under the
//! configured root, one object per line, every value exactly as written.

use crate::config::JsonConfig;
use crate::encode::EXACT_TEXT_KEY;
use export_plugin_api::arrow_array::builder::StringBuilder;
use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::column_types::{
    resolve_types, Candidates, ColumnType, Converter, Inference, OnError,
};
use export_plugin_api::files::resolve_for_caller;
use export_plugin_api::json::json_field;
use export_plugin_api::{BatchReader, Caller, JsonSchema, Limits, Loader, PluginError, Result};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes read from the file at a time.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// A batch ends early once its lines hold this many bytes, so a file of huge
/// values keeps memory flat and never overflows Arrow's 32-bit string offsets.
const MAX_BATCH_BYTES: usize = 256 * 1024 * 1024;
/// Bytes per cell reserved for the first batch, before real sizes are known.
const FIRST_BATCH_BYTES_PER_CELL: usize = 16;
/// The UTF-8 byte order mark: an encoding marker, not data, so it is skipped.
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
/// Key names listed at most in an "unknown column" message.
const MAX_LISTED_COLUMNS: usize = 50;

/// What a request passes to the `jsonl` loader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct JsonlSelector {
    /// The file to read, relative to the plugin's configured `root` (the
    /// caller's own folder when the root is per user). It must stay inside
    /// the root: `..` that climbs out, absolute paths and symbolic links
    /// that lead outside are refused.
    pub path: String,

    /// The keys to export as columns, in this order. Without it every key of
    /// the first batch of lines is a column, in first-seen order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub columns: Option<Vec<String>>,

    /// Export at most this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,

    /// Types for columns, by column name: `int64`, `float64`, `bool`,
    /// `date` (`YYYY-MM-DD`), `timestamp` (RFC 3339 with an offset such as
    /// `Z` or `+02:00`, kept as a UTC instant), `decimal(P,S)`
    /// (1 <= P <= 38, 0 <= S <= P) or `text`, e.g.
    /// `{"price": "decimal(10,2)", "day": "date"}`. A typed column reads a
    /// JSON number or boolean from its JSON spelling and a JSON string from
    /// its text, by the same strict rules (`1.50` and `"1.50"` are both the
    /// float64 1.5; `1.0` and `"12,5"` are not int64s); JSON `null` and an
    /// empty string are nulls. `text` keeps strings as text and writes
    /// other values as their JSON text (`1.50` stays `1.50`). A value that
    /// does not fit (an array or object always) fails the export naming its
    /// line, row, column and value (see `on_error`). Other columns keep the
    /// default: text for string-only columns, raw JSON for the rest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, ColumnType>,

    /// What a value that does not fit its column's type does: `"fail"`
    /// (the default) fails the export naming the line, column and value;
    /// `"null"` exports a null instead and counts it per column in the
    /// export's notes (`{"nulled_values": {"price": 3}}`).
    #[serde(default, skip_serializing_if = "OnError::is_fail")]
    pub on_error: OnError,

    /// Guess column types by reading every line to be exported once before
    /// the export, so that no value is ever lost: a column is typed only if
    /// each of its values (nulls aside) is written exactly as that type
    /// writes it back; `types` overrides the guess for the columns it names.
    /// JSON numbers can become `int64` (every one matches
    /// `-?(0|[1-9][0-9]*)` and fits 64 bits) or `float64` (every one is a
    /// finite number written exactly as Rust prints that f64 back: shortest
    /// round trip, no exponent, no negative zero, so `1.5` and `2` fit and
    /// `1.50`, `1.0`, `1e5`, `-0.0` do not; a column of only integers is
    /// `int64`). JSON booleans can become `bool`. JSON strings can become
    /// `date` (valid `YYYY-MM-DD`) or `timestamp` (`YYYY-MM-DDTHH:MM:SS`, at
    /// most 6 fraction digits, offset `Z` or `+00:00`; other or mixed
    /// offsets keep the column as it is), never numbers: `"12"` stays text.
    /// A column mixing kinds (numbers and strings), holding arrays, objects
    /// or empty strings, or only nulls keeps its default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub infer: bool,
}

/// The `jsonl` loader. Every line holds one JSON object; blank lines are
/// skipped. The columns are the keys of the first batch of lines. A column
/// whose values there are all strings (or null) is `Utf8` holding the
/// decoded text; any other column is `arrow.json`
/// ([`json_field`]) holding each value's JSON text verbatim, so `1.50`,
/// `12345678901234567890123` and `{"a": 1}` come back exactly as written.
/// A key missing from a line is a null. The selector's `types` and `infer`
/// turn chosen columns into typed ones
/// ([`export_plugin_api::column_types`]).
///
/// A root containing `{user}` is read per caller
/// ([`export_plugin_api::files::resolve_for_caller`]); a line longer than
/// [`JsonConfig::max_line_bytes`] fails the export naming the line.
pub struct JsonlLoader;

/// What `open` and `validate` both check, before any data is read.
struct Checked {
    file: PathBuf,
    max_line: usize,
}

fn check(
    config: &JsonConfig,
    selector: &JsonlSelector,
    caller: Option<&Caller>,
) -> Result<Checked> {
    let root = config.root()?;
    let max_line = config.max_line_bytes()?;
    if let Some(wanted) = &selector.columns {
        if wanted.is_empty() {
            return Err(PluginError::invalid_input(
                "columns is empty: name at least one column, or leave it out to export them all",
            ));
        }
        let mut unique = HashSet::new();
        if let Some(twice) = wanted.iter().find(|name| !unique.insert(name.as_str())) {
            return Err(PluginError::invalid_input(format!(
                "column {twice:?} is named more than once in columns; name each column once"
            )));
        }
    }
    let file = resolve_for_caller(root, caller, &selector.path)?;
    Ok(Checked { file, max_line })
}

impl Loader for JsonlLoader {
    type Config = JsonConfig;
    type Selector = JsonlSelector;
    const NAME: &'static str = "jsonl";
    const DESCRIPTION: &'static str =
        "Reads a newline-delimited JSON file under the configured root; values come back as written";

    fn open(
        &self,
        config: JsonConfig,
        selector: JsonlSelector,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>> {
        self.open_for(config, selector, limits, None)
    }

    fn validate(
        &self,
        config: JsonConfig,
        selector: JsonlSelector,
        caller: Option<&Caller>,
    ) -> Result<()> {
        check(&config, &selector, caller).map(|_| ())
    }

    fn open_for(
        &self,
        config: JsonConfig,
        selector: JsonlSelector,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>> {
        let Checked {
            file: file_path,
            max_line,
        } = check(&config, &selector, caller)?;
        let path = selector.path;
        let file = File::open(&file_path)
            .map_err(|err| PluginError::from(err).context(format!("cannot open {path:?}")))?;
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let starts_with_bom = reader
            .fill_buf()
            .map_err(|err| PluginError::from(err).context(format!("cannot read {path:?}")))?
            .starts_with(&UTF8_BOM);
        if starts_with_bom {
            reader.consume(UTF8_BOM.len());
        }
        let skipped = if starts_with_bom { UTF8_BOM.len() } else { 0 };
        let mut lines = Lines::new(reader, skipped, path.clone(), max_line);

        let batch_size = limits.batch_size.max(1);
        let remaining = selector
            .limit
            .unwrap_or(u64::MAX)
            .min(limits.max_rows.saturating_add(1));
        let first_rows = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(batch_size);
        // With nothing to export the columns are still wanted, so a full
        // batch is read to learn them.
        let sample_rows = if first_rows == 0 {
            batch_size
        } else {
            first_rows
        };

        // The first batch decides the columns, so its lines are kept until
        // they have all been seen, then turned into the first batch.
        let mut sample = String::new();
        let mut sample_lines: Vec<(u64, usize)> = Vec::new();
        let mut scan = Scan::default();
        let mut exhausted = false;
        // With types, a bad line among the first is reported after the
        // values of the lines before it are checked, as the file orders them.
        let typed = selector.infer || !selector.types.is_empty();
        let mut pending = None;
        while sample_lines.len() < sample_rows && sample.len() < MAX_BATCH_BYTES {
            let line = match lines.next() {
                Err(err) if typed => {
                    pending = Some(err);
                    break;
                }
                line => line?,
            };
            let Some((number, text)) = line else {
                exhausted = true;
                break;
            };
            if let Err(err) = parse_line(text, &mut scan) {
                let err = json_error(&path, number, &err);
                if !typed {
                    return Err(err);
                }
                pending = Some(err);
                break;
            }
            sample.push_str(text);
            sample_lines.push((number, sample.len()));
        }
        if sample_lines.is_empty() {
            if let Some(err) = pending {
                return Err(err);
            }
            return Err(PluginError::invalid_input(format!(
                "file {path:?} is empty: it has no JSON lines to take the columns from"
            )));
        }

        let mut layout = Layout::new(path, scan, selector.columns, sample_lines.len())?;
        // Unknown names in `types` are refused before more data is read.
        let explicit = resolve_types(&layout.names, &selector.types, None)?;
        let types = if selector.infer {
            let inferred = infer_types(&file_path, &layout, max_line, remaining, &selector.types)?;
            resolve_types(&layout.names, &selector.types, Some(&inferred))?
        } else {
            explicit
        };
        for ((kind, column_type), name) in layout.kinds.iter_mut().zip(&types).zip(&layout.names) {
            // An inferred `text` keeps the default; a typed column, or one
            // the request calls `text`, reads every value's spelling.
            if *column_type != ColumnType::Text || selector.types.contains_key(name) {
                *kind = Kind::Spelling;
            }
        }
        let text_schema = layout.schema();
        // All text (the default) needs no converter, and costs nothing.
        let converter = if types.iter().all(|t| *t == ColumnType::Text) {
            None
        } else {
            Some(Converter::new(&text_schema, types, selector.on_error)?)
        };
        let schema = converter
            .as_ref()
            .map_or_else(|| text_schema.clone(), Converter::schema);
        let mut typing = Typing {
            converter,
            text_schema,
            rows_done: 0,
        };
        let mut byte_capacity =
            vec![batch_size.saturating_mul(FIRST_BATCH_BYTES_PER_CELL); layout.kinds.len()];
        let first = if first_rows == 0 {
            None
        } else {
            let mut builders = Builders::new(&byte_capacity, sample_lines.len());
            let mut start = 0;
            for &(number, end) in &sample_lines {
                if let Err(err) = builders.append(&layout, number, &sample[start..end]) {
                    return Err(typing.earlier_first(builders, &layout, err));
                }
                start = end;
            }
            Some(typing.finish(builders, &layout, &mut byte_capacity)?)
        };
        if let Some(err) = pending {
            return Err(err);
        }
        let emitted = first.as_ref().map_or(0, RecordBatch::num_rows) as u64;
        Ok(Box::new(JsonlBatchReader {
            lines,
            layout,
            schema,
            typing,
            first,
            exhausted: exhausted || first_rows == 0,
            remaining: remaining.saturating_sub(emitted),
            batch_size,
            byte_capacity,
        }))
    }
}

/// Streams the rows of one file, `batch_size` rows at a time.
struct JsonlBatchReader {
    lines: Lines,
    layout: Layout,
    /// The exported schema.
    schema: SchemaRef,
    typing: Typing,
    /// The batch `open` built while learning the columns, not yet exported.
    first: Option<RecordBatch>,
    exhausted: bool,
    /// Rows still to export after `first`: the selector's limit, capped at `max_rows + 1`.
    remaining: u64,
    batch_size: usize,
    /// Value bytes to reserve per column, from the previous batch.
    byte_capacity: Vec<usize>,
}

impl BatchReader for JsonlBatchReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(batch) = self.first.take() {
            return Ok(Some(batch));
        }
        let rows = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.batch_size);
        if self.exhausted || rows == 0 {
            return Ok(None);
        }
        let mut builders = Builders::new(&self.byte_capacity, rows);
        while builders.rows < rows && builders.bytes < MAX_BATCH_BYTES {
            let appended = match self.lines.next() {
                Ok(Some((number, text))) => builders.append(&self.layout, number, text),
                Ok(None) => {
                    self.exhausted = true;
                    break;
                }
                Err(err) => Err(err),
            };
            if let Err(err) = appended {
                return Err(self.typing.earlier_first(builders, &self.layout, err));
            }
        }
        let count = builders.rows;
        self.remaining = self.remaining.saturating_sub(count as u64);
        if count == 0 {
            return Ok(None);
        }
        Ok(Some(self.typing.finish(
            builders,
            &self.layout,
            &mut self.byte_capacity,
        )?))
    }

    fn notes(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.typing.converter.as_ref().and_then(Converter::notes)
    }

    /// The bytes read so far over the file's size.
    fn fraction(&self) -> Option<f64> {
        if self.exhausted && self.first.is_none() {
            return Some(1.0);
        }
        self.lines.fraction()
    }
}

/// Turns built text batches into exported ones.
struct Typing {
    /// Turns text columns into typed ones; `None` when all stay as read.
    converter: Option<Converter>,
    /// The columns as built: text and raw JSON.
    text_schema: SchemaRef,
    /// Rows exported by earlier batches.
    rows_done: u64,
}

impl Typing {
    fn finish(
        &mut self,
        mut builders: Builders,
        layout: &Layout,
        byte_capacity: &mut [usize],
    ) -> Result<RecordBatch> {
        let lines = std::mem::take(&mut builders.lines);
        let batch = builders.finish(&self.text_schema, byte_capacity)?;
        let first_row = self.rows_done + 1;
        self.rows_done += batch.num_rows() as u64;
        let Some(converter) = &mut self.converter else {
            return Ok(batch);
        };
        match converter.convert_or_locate(&batch, first_row) {
            Ok(converted) => converted,
            Err(err) => {
                let line = lines.get(err.index).copied().unwrap_or_default();
                Err(err.at(format_args!(
                    "{:?}, line {line} (row {})",
                    layout.path, err.row
                )))
            }
        }
    }
}

impl Typing {
    /// `err`, or the error of a value that does not fit in the rows of
    /// `builders` before it, which comes first in the file.
    fn earlier_first(
        &mut self,
        builders: Builders,
        layout: &Layout,
        err: PluginError,
    ) -> PluginError {
        let Some(converter) = &mut self.converter else {
            return err;
        };
        // The failed line may have set some columns: keep whole rows only.
        let rows = builders.rows;
        let columns: Vec<ArrayRef> = builders
            .columns
            .into_iter()
            .map(|mut builder| Arc::new(builder.finish().slice(0, rows)) as ArrayRef)
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let Ok(batch) =
            RecordBatch::try_new_with_options(self.text_schema.clone(), columns, &options)
        else {
            return err;
        };
        match converter.convert_or_locate(&batch, self.rows_done + 1) {
            Err(bad) => {
                let line = builders.lines.get(bad.index).copied().unwrap_or_default();
                bad.at(format_args!(
                    "{:?}, line {line} (row {})",
                    layout.path, bad.row
                ))
            }
            Ok(_) => err,
        }
    }
}

/// The type [`Inference`] guesses for every column of `layout`, from every
/// line the export will read (at most `rows`). Columns `types` names are
/// not guessed. A line the export cannot read ends the guess there: the
/// export fails on that line anyway, after the lines before it.
fn infer_types(
    file: &std::path::Path,
    layout: &Layout,
    max_line: usize,
    rows: u64,
    types: &BTreeMap<String, ColumnType>,
) -> Result<Vec<ColumnType>> {
    let path = &layout.path;
    let file = File::open(file)
        .map_err(|err| PluginError::from(err).context(format!("cannot open {path:?}")))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let starts_with_bom = reader
        .fill_buf()
        .map_err(|err| PluginError::from(err).context(format!("cannot read {path:?}")))?
        .starts_with(&UTF8_BOM);
    if starts_with_bom {
        reader.consume(UTF8_BOM.len());
    }
    let skipped = if starts_with_bom { UTF8_BOM.len() } else { 0 };
    let mut lines = Lines::new(reader, skipped, path.clone(), max_line);
    let mut inference = Inference::new(layout.names.len());
    for (column, name) in layout.names.iter().enumerate() {
        if types.contains_key(name) {
            inference.rule_out(column);
        }
    }
    let mut read = 0;
    while read < rows && !inference.is_settled() {
        let Ok(Some((_, text))) = lines.next() else {
            break;
        };
        let seed = InferSeed {
            layout,
            inference: &mut inference,
        };
        if parse_line(text, seed).is_err() {
            break;
        }
        read += 1;
    }
    Ok(inference.finish())
}

/// Feeds one line's values to the inference, each as its JSON kind allows.
struct InferSeed<'r> {
    layout: &'r Layout,
    inference: &'r mut Inference,
}

impl<'de> DeserializeSeed<'de> for InferSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InferSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let layout = self.layout;
        let mut position = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let slot = layout.find(&key, position);
            position += 1;
            let Some(column) = slot.and_then(|slot| layout.targets[slot]) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let raw: &RawValue = map.next_value()?;
            let raw = raw.get();
            match raw.as_bytes().first() {
                Some(b'n') => {}
                Some(b't' | b'f') => self.inference.feed_as(column, raw, Candidates::BOOL),
                Some(b'-' | b'0'..=b'9') => {
                    self.inference
                        .feed_as(column, raw, Candidates::INT64 | Candidates::FLOAT64)
                }
                Some(b'"') => match json_string(raw) {
                    Some(text) if !text.is_empty() => self.inference.feed_as(
                        column,
                        &text,
                        Candidates::DATE | Candidates::TIMESTAMP,
                    ),
                    // An empty string is not a null: the column keeps it.
                    _ => self.inference.rule_out(column),
                },
                _ => self.inference.rule_out(column),
            }
        }
        Ok(())
    }
}

/// The text of a raw JSON string; borrowed unless it has escapes.
fn json_string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The lines of the file, read one at a time into one reused buffer.
struct Lines {
    reader: BufReader<File>,
    buffer: Vec<u8>,
    /// The number of the line in `buffer`, counting from 1.
    number: u64,
    /// The selector's path, for messages.
    path: String,
    /// The longest line read, in bytes (its `\n` not counted).
    max_line: usize,
    /// Bytes of the file read so far, up to the end of the last line.
    consumed: u64,
    /// The file's size when it was opened; `None` when it is not a regular file.
    size: Option<u64>,
}

impl Lines {
    /// The lines of `reader`, which has already taken the first `skipped` bytes.
    fn new(reader: BufReader<File>, skipped: usize, path: String, max_line: usize) -> Self {
        let size = reader
            .get_ref()
            .metadata()
            .ok()
            .filter(|metadata| metadata.is_file())
            .map(|metadata| metadata.len());
        Lines {
            reader,
            buffer: Vec::new(),
            number: 0,
            path,
            max_line,
            consumed: skipped as u64,
            size,
        }
    }

    /// The bytes read so far over the file's size; `None` without a size.
    fn fraction(&self) -> Option<f64> {
        let size = self.size.filter(|&size| size > 0)?;
        Some((self.consumed as f64 / size as f64).min(1.0))
    }

    /// The next line that is not blank, with its number.
    fn next(&mut self) -> Result<Option<(u64, &str)>> {
        loop {
            self.buffer.clear();
            // At most the cap, its `\n` and one byte to tell a longer line:
            // a longer line is never held whole.
            let limit = (self.max_line as u64).saturating_add(2);
            let read = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buffer)
                .map_err(|err| PluginError::io(format!("reading {:?} failed: {err}", self.path)))?;
            if read == 0 {
                return Ok(None);
            }
            self.consumed += read as u64;
            self.number += 1;
            let text = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.len() > self.max_line {
                return Err(PluginError::limit_exceeded(format!(
                    "{:?}, line {}: the line is longer than {}, the most one line may hold; \
                     raise max_line_bytes in the json plugin's config, or split the data into \
                     smaller objects",
                    self.path,
                    self.number,
                    show_bytes(self.max_line)
                )));
            }
            if self.buffer.trim_ascii().is_empty() {
                continue;
            }
            return match std::str::from_utf8(&self.buffer) {
                Ok(text) => Ok(Some((self.number, text))),
                Err(err) => Err(PluginError::invalid_input(format!(
                    "{:?}, line {}: byte {} is not valid UTF-8; only UTF-8 text files can be read",
                    self.path,
                    self.number,
                    err.valid_up_to() + 1
                ))),
            };
        }
    }
}

/// `bytes` for people: `64 MiB` when a whole number of MiB, else `N bytes`.
fn show_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Parses one line as a JSON object, handing its entries to `seed`.
fn parse_line<'de, S>(text: &'de str, seed: S) -> serde_json::Result<()>
where
    S: DeserializeSeed<'de, Value = ()>,
{
    let mut deserializer = serde_json::Deserializer::from_str(text);
    seed.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// A line that is not one JSON object, as a message naming the line.
fn json_error(path: &str, line: u64, err: &serde_json::Error) -> PluginError {
    if err.classify() == Category::Data {
        return PluginError::invalid_input(format!(
            "{path:?}, line {line}: not a JSON object; every line must hold one object, \
             such as {{\"id\": 1}}"
        ));
    }
    // The parser only ever sees one line, so its "at line 1" would mislead.
    let text = err.to_string();
    let reason = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(r, _)| r);
    PluginError::invalid_input(format!(
        "{path:?}, line {line}: not valid JSON: {reason} at column {}",
        err.column()
    ))
}

/// What the first batch showed about one key.
#[derive(Default, Clone, Copy)]
struct Seen {
    text: bool,
    other: bool,
}

/// The keys of the first batch, in first-seen order, and what their values were.
#[derive(Default)]
struct Scan {
    names: Vec<String>,
    index: HashMap<String, usize>,
    seen: Vec<Seen>,
}

impl<'de> DeserializeSeed<'de> for &mut Scan {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut Scan {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut position = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let slot = match self.names.get(position) {
                Some(name) if *name == key => position,
                _ => match self.index.get(key.as_ref()) {
                    Some(&slot) => slot,
                    None => {
                        let key = key.into_owned();
                        self.index.insert(key.clone(), self.names.len());
                        self.names.push(key);
                        self.seen.push(Seen::default());
                        self.names.len() - 1
                    }
                },
            };
            position += 1;
            let raw: &RawValue = map.next_value()?;
            match raw.get().as_bytes().first() {
                Some(b'"') => self.seen[slot].text = true,
                Some(b'n') => {}
                _ => self.seen[slot].other = true,
            }
        }
        Ok(())
    }
}

/// How a column keeps its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only strings (or nulls) in the first batch: the decoded text.
    Text,
    /// Anything else: each value's JSON text, verbatim.
    Json,
    /// A column with a type (or declared `text`): a string's decoded text,
    /// any other value's JSON text, to be converted to the type.
    Spelling,
}

/// What the first batch fixed: the columns, their kinds and where each key goes.
struct Layout {
    /// The selector's path, for messages.
    path: String,
    /// Every key of the first batch, in first-seen order.
    keys: Vec<String>,
    index: HashMap<String, usize>,
    /// For every key, its output column; `None` when it is not exported.
    targets: Vec<Option<usize>>,
    /// The output columns' names and kinds.
    names: Vec<String>,
    kinds: Vec<Kind>,
    /// Whether a key the first batch did not have is an error. With chosen
    /// columns such keys are simply not exported.
    strict: bool,
    /// How many rows the columns were learnt from.
    sample_rows: usize,
}

impl Layout {
    fn new(
        path: String,
        scan: Scan,
        columns: Option<Vec<String>>,
        sample_rows: usize,
    ) -> Result<Self> {
        let kind = |seen: Seen| {
            // A column that was only ever null could hold anything later:
            // raw JSON keeps whatever comes.
            if seen.text && !seen.other {
                Kind::Text
            } else {
                Kind::Json
            }
        };
        let strict = columns.is_none();
        let (names, kinds, targets) = match columns {
            None => (
                scan.names.clone(),
                scan.seen.iter().map(|&seen| kind(seen)).collect(),
                (0..scan.names.len()).map(Some).collect(),
            ),
            Some(wanted) => {
                let mut targets = vec![None; scan.names.len()];
                let mut kinds = Vec::with_capacity(wanted.len());
                for (column, name) in wanted.iter().enumerate() {
                    let Some(&slot) = scan.index.get(name) else {
                        return Err(PluginError::invalid_input(format!(
                            "column {name:?} not found in the first {sample_rows} row(s) of \
                             {path:?}; they have: {}",
                            list_columns(&scan.names)
                        )));
                    };
                    targets[slot] = Some(column);
                    kinds.push(kind(scan.seen[slot]));
                }
                (wanted, kinds, targets)
            }
        };
        Ok(Layout {
            path,
            keys: scan.names,
            index: scan.index,
            targets,
            names,
            kinds,
            strict,
            sample_rows,
        })
    }

    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .names
            .iter()
            .zip(&self.kinds)
            .map(|(name, kind)| match kind {
                Kind::Json => json_field(name),
                // Strings from JSON are strings: a JSON formatter must not
                // turn "42" into 42.
                Kind::Text | Kind::Spelling => Field::new(name, DataType::Utf8, true)
                    .with_metadata(HashMap::from([(
                        EXACT_TEXT_KEY.to_owned(),
                        "true".to_owned(),
                    )])),
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The key's position in `keys`; `position` is where it sits in its object.
    fn find(&self, key: &str, position: usize) -> Option<usize> {
        // Lines usually repeat the first line's key order: try that before hashing.
        match self.keys.get(position) {
            Some(name) if name == key => Some(position),
            _ => self.index.get(key).copied(),
        }
    }

    /// A failed line as a message naming the line and, where known, the column.
    fn error(&self, line: u64, err: &serde_json::Error, failure: Option<Failure>) -> PluginError {
        let path = &self.path;
        let rows = self.sample_rows;
        match failure {
            None => json_error(path, line, err),
            Some(Failure::NotText { column, found }) => {
                let name = &self.names[column];
                PluginError::invalid_input(format!(
                    "{path:?}, line {line}: column {name:?} holds {found}, but the first {rows} \
                     row(s) had only strings in column {name:?}, so it was read as text; write \
                     the value as a string, or put a row with a non-string {name:?} among the \
                     first {rows} so the column keeps raw JSON values"
                ))
            }
            Some(Failure::UnknownKey(key)) => PluginError::invalid_input(format!(
                "{path:?}, line {line}: key {key:?} is not among the keys of the first {rows} \
                 row(s), which fix the columns ({}); add the key to one of those rows, or \
                 choose the columns to export with `columns`",
                list_columns(&self.keys)
            )),
            Some(Failure::DuplicateKey(key)) => PluginError::invalid_input(format!(
                "{path:?}, line {line}: key {key:?} appears more than once in the object; \
                 each key may appear once per line"
            )),
        }
    }
}

fn list_columns(names: &[String]) -> String {
    if names.is_empty() {
        return "no keys".to_owned();
    }
    let mut listed: Vec<String> = names
        .iter()
        .take(MAX_LISTED_COLUMNS)
        .map(|name| format!("{name:?}"))
        .collect();
    if names.len() > MAX_LISTED_COLUMNS {
        listed.push(format!("and {} more", names.len() - MAX_LISTED_COLUMNS));
    }
    listed.join(", ")
}

/// Why a line that is valid JSON was refused; the parser's own error cannot
/// carry this, so the visitor leaves it here.
enum Failure {
    NotText { column: usize, found: &'static str },
    UnknownKey(String),
    DuplicateKey(String),
}

/// One batch under construction.
struct Builders {
    columns: Vec<StringBuilder>,
    /// The line of every row, for messages.
    lines: Vec<u64>,
    /// For every column, the last row that set it; the others get a null.
    set_in_row: Vec<usize>,
    rows: usize,
    /// Bytes of the lines appended so far.
    bytes: usize,
}

impl Builders {
    fn new(byte_capacity: &[usize], rows: usize) -> Self {
        Builders {
            columns: byte_capacity
                .iter()
                .map(|&bytes| StringBuilder::with_capacity(rows, bytes))
                .collect(),
            set_in_row: vec![0; byte_capacity.len()],
            lines: Vec::with_capacity(rows),
            rows: 0,
            bytes: 0,
        }
    }

    /// Appends the row on line `line`.
    fn append(&mut self, layout: &Layout, line: u64, text: &str) -> Result<()> {
        // Rows count from 1 here so the zeroed `set_in_row` means "not yet".
        let row = self.rows + 1;
        let mut failure = None;
        let seed = RowSeed {
            layout,
            columns: &mut self.columns,
            set_in_row: &mut self.set_in_row,
            row,
            failure: &mut failure,
        };
        if let Err(err) = parse_line(text, seed) {
            return Err(layout.error(line, &err, failure));
        }
        for (column, set_in_row) in self.columns.iter_mut().zip(&self.set_in_row) {
            if *set_in_row != row {
                column.append_null();
            }
        }
        self.rows = row;
        self.lines.push(line);
        self.bytes += text.len();
        Ok(())
    }

    fn finish(mut self, schema: &SchemaRef, byte_capacity: &mut [usize]) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (builder, capacity) in self.columns.iter_mut().zip(byte_capacity) {
            let array = builder.finish();
            let bytes = array.values().len();
            // Reserve a little more than last time: the next batch rarely
            // needs to grow its buffer.
            *capacity = bytes.saturating_add(bytes / 8);
            columns.push(Arc::new(array));
        }
        // The row count is explicit so lines of `{}` still count as rows.
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &options,
        )?)
    }
}

/// Appends one line's object to the batch, straight from the parser.
struct RowSeed<'r> {
    layout: &'r Layout,
    columns: &'r mut [StringBuilder],
    set_in_row: &'r mut [usize],
    row: usize,
    failure: &'r mut Option<Failure>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let layout = self.layout;
        let mut position = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let slot = layout.find(&key, position);
            position += 1;
            let Some(column) = slot.and_then(|slot| layout.targets[slot]) else {
                if slot.is_none() && layout.strict {
                    *self.failure = Some(Failure::UnknownKey(key.into_owned()));
                    return Err(de::Error::custom("unknown key"));
                }
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if self.set_in_row[column] == self.row {
                *self.failure = Some(Failure::DuplicateKey(key.into_owned()));
                return Err(de::Error::custom("duplicate key"));
            }
            self.set_in_row[column] = self.row;
            let builder = &mut self.columns[column];
            match layout.kinds[column] {
                Kind::Text => map.next_value_seed(TextSeed {
                    builder,
                    column,
                    failure: &mut *self.failure,
                })?,
                Kind::Json => {
                    let raw: &RawValue = map.next_value()?;
                    match raw.get() {
                        "null" => builder.append_null(),
                        raw => builder.append_value(raw),
                    }
                }
                Kind::Spelling => {
                    let raw: &RawValue = map.next_value()?;
                    match raw.get() {
                        "null" => builder.append_null(),
                        raw => match json_string(raw) {
                            Some(text) => builder.append_value(text),
                            None => builder.append_value(raw),
                        },
                    }
                }
            }
        }
        Ok(())
    }
}

/// An object key, borrowed from the line unless it had escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

/// Appends a value of a text column: a string, decoded, or a null.
struct TextSeed<'r> {
    builder: &'r mut StringBuilder,
    column: usize,
    failure: &'r mut Option<Failure>,
}

impl TextSeed<'_> {
    fn refuse<E: de::Error>(self, found: &'static str) -> Result<(), E> {
        *self.failure = Some(Failure::NotText {
            column: self.column,
            found,
        });
        Err(E::custom("not a string"))
    }
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.builder.append_value(text);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.builder.append_null();
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.refuse("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.refuse("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.refuse("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.refuse("a number")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.refuse("an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.refuse("an object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::arrow_array::Array;
    use export_plugin_api::json::is_json_field;
    use export_plugin_api::ErrorKind;
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
        plugin().open_loader("jsonl", &config, &selector.to_string(), limits)
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

    fn load_err(root: &Path, selector: Value, limits: &Limits) -> PluginError {
        load_with(root, selector, limits).err().unwrap()
    }

    fn small_batches(batch_size: usize) -> Limits {
        Limits {
            batch_size,
            ..Limits::default()
        }
    }

    fn names(schema: &SchemaRef) -> Vec<&str> {
        schema.fields().iter().map(|f| f.name().as_str()).collect()
    }

    /// Per column: `true` for raw JSON, `false` for text.
    fn json_columns(schema: &SchemaRef) -> Vec<bool> {
        schema
            .fields()
            .iter()
            .map(|field| {
                assert_eq!(field.data_type(), &DataType::Utf8);
                assert!(field.is_nullable());
                let json = is_json_field(field);
                assert_eq!(field.metadata().contains_key(EXACT_TEXT_KEY), !json);
                json
            })
            .collect()
    }

    /// Row-major values of every batch; `None` for nulls.
    fn rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
        let mut rows = Vec::new();
        for batch in batches {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|column| {
                            let column = column.as_string::<i32>();
                            (!column.is_null(row)).then(|| column.value(row).to_owned())
                        })
                        .collect(),
                );
            }
        }
        rows
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some((*v).to_owned())).collect()
    }

    fn big_text() -> String {
        let mut text = "ab€ç日🌍 \"q\" \\ \n".repeat(4_000);
        text.push_str("end");
        assert!(text.len() > 70_000);
        text
    }

    #[test]
    fn fraction_follows_the_bytes_read_up_to_one() {
        let mut file = Vec::new();
        for n in 0..20_000 {
            file.extend_from_slice(format!("{{\"id\":\"{n:06}\"}}\n").as_bytes());
        }
        let (_dir, root) = root_with(&[("big.jsonl", &file)]);
        let limits = Limits {
            batch_size: 1000,
            ..Limits::default()
        };
        let mut reader = open(&root, json!({ "path": "big.jsonl" }), &limits).unwrap();
        let mut fractions = Vec::new();
        while reader.next_batch().unwrap().is_some() {
            fractions.push(reader.fraction().expect("a regular file has a size"));
        }
        assert_eq!(fractions.len(), 20);
        assert!((fractions[0] - 0.05).abs() < 0.01, "{fractions:?}");
        assert!((fractions[9] - 0.5).abs() < 0.01, "{fractions:?}");
        assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
        assert_eq!(fractions.last(), Some(&1.0));
    }

    #[test]
    fn raw_values_come_back_verbatim_and_strings_decoded() {
        let big = big_text();
        let mut file = String::new();
        file.push_str(
            r#"{"id":"007","amount":1.50,"big":12345678901234567890123,"obj":{"a": [1, 2.0]},"flag":true,"text":"multi\nline"}"#,
        );
        file.push('\n');
        file.push_str(r#"{"id":"","amount":-0,"big":1e5,"obj":[],"flag":null,"text":"crlf\r\ninside, tab\there, \"quoted\", caf\u00e9 🌍"}"#);
        file.push('\n');
        file.push_str(&json!({ "id": "=SUM(A1)", "amount": "1.50", "big": false, "obj": "x", "flag": false, "text": big }).to_string());
        file.push('\n');
        file.push_str(r#"{"id":"NaN","amount":null,"big":"2024-05-01T10:00:00+02:00","obj":null,"flag":1,"text":null}"#);
        let (_dir, root) = root_with(&[("hard.jsonl", file.as_bytes())]);
        let (schema, batches) = load(&root, json!({ "path": "hard.jsonl" })).unwrap();
        assert_eq!(
            names(&schema),
            ["id", "amount", "big", "obj", "flag", "text"]
        );
        assert_eq!(
            json_columns(&schema),
            [false, true, true, true, true, false]
        );
        let expected = vec![
            some(&[
                "007",
                "1.50",
                "12345678901234567890123",
                r#"{"a": [1, 2.0]}"#,
                "true",
                "multi\nline",
            ]),
            some(&[
                "",
                "-0",
                "1e5",
                "[]",
                "",
                "crlf\r\ninside, tab\there, \"quoted\", café 🌍",
            ]),
            some(&["=SUM(A1)", "\"1.50\"", "false", "\"x\"", "false", &big]),
            some(&["NaN", "", "\"2024-05-01T10:00:00+02:00\"", "", "1", ""]),
        ];
        let mut expected = expected;
        // JSON nulls are nulls, in text and raw columns alike.
        expected[1][4] = None;
        expected[3][1] = None;
        expected[3][3] = None;
        expected[3][5] = None;
        assert_eq!(rows(&batches), expected);
    }

    #[test]
    fn missing_keys_are_null_and_order_is_first_seen() {
        let file = b"{\"b\":\"1\"}\n{\"a\":2,\"b\":\"x\"}\n{\"c\":null,\"a\":3}\n{}\n";
        let (_dir, root) = root_with(&[("sparse.jsonl", file)]);
        let (schema, batches) = load(&root, json!({ "path": "sparse.jsonl" })).unwrap();
        assert_eq!(names(&schema), ["b", "a", "c"]);
        // `c` was only ever null: raw JSON keeps whatever comes later.
        assert_eq!(json_columns(&schema), [false, true, true]);
        assert_eq!(
            rows(&batches),
            [
                vec![Some("1".to_owned()), None, None],
                vec![Some("x".to_owned()), Some("2".to_owned()), None],
                vec![None, Some("3".to_owned()), None],
                vec![None, None, None],
            ]
        );
    }

    #[test]
    fn keys_with_escapes_and_reordered_keys() {
        let file = "{\"a\\\"b\":1,\"\\u00e9\":\"x\"}\n{\"é\":\"y\",\"a\\\"b\":2}\n";
        let (_dir, root) = root_with(&[("keys.jsonl", file.as_bytes())]);
        let (schema, batches) = load(&root, json!({ "path": "keys.jsonl" })).unwrap();
        assert_eq!(names(&schema), ["a\"b", "é"]);
        assert_eq!(rows(&batches), [some(&["1", "x"]), some(&["2", "y"])]);
    }

    #[test]
    fn a_later_non_string_in_a_text_column_names_line_and_column() {
        let file = b"{\"id\":\"1\",\"n\":1}\n{\"id\":\"2\",\"n\":2}\n\n{\"id\":3,\"n\":3}\n";
        let (_dir, root) = root_with(&[("drift.jsonl", file)]);
        let err = load_err(&root, json!({ "path": "drift.jsonl" }), &small_batches(2));
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        for part in [
            "\"drift.jsonl\", line 4",
            "column \"id\" holds a number",
            "the first 2 row(s) had only strings in column \"id\"",
            "write the value as a string",
        ] {
            assert!(err.message.contains(part), "{part}: {}", err.message);
        }
        // Learnt from all three rows, the column is raw JSON and all is well.
        let (schema, batches) = load(&root, json!({ "path": "drift.jsonl" })).unwrap();
        assert_eq!(json_columns(&schema), [true, true]);
        assert_eq!(rows(&batches)[2], some(&["3", "3"]));
        assert_eq!(rows(&batches)[0], some(&["\"1\"", "1"]));

        for (value, found) in [
            ("true", "a boolean"),
            ("[1]", "an array"),
            ("{}", "an object"),
        ] {
            let file = format!("{{\"id\":\"1\"}}\n{{\"id\":{value}}}\n");
            let (_dir, root) = root_with(&[("drift.jsonl", file.as_bytes())]);
            let err = load_err(&root, json!({ "path": "drift.jsonl" }), &small_batches(1));
            assert!(
                err.message.contains(&format!("holds {found}")),
                "{}",
                err.message
            );
            assert!(err.message.contains("line 2"), "{}", err.message);
        }
    }

    #[test]
    fn a_key_the_first_batch_did_not_have_names_key_and_line() {
        let file = b"{\"id\":1}\n{\"id\":2}\n{\"id\":3,\"extra\":true}\n";
        let (_dir, root) = root_with(&[("new.jsonl", file)]);
        let err = load_err(&root, json!({ "path": "new.jsonl" }), &small_batches(2));
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        for part in [
            "line 3",
            "key \"extra\"",
            "first 2 row(s)",
            "(\"id\")",
            "`columns`",
        ] {
            assert!(err.message.contains(part), "{part}: {}", err.message);
        }
        // Chosen columns make other keys irrelevant.
        let (_, batches) = load_with(
            &root,
            json!({ "path": "new.jsonl", "columns": ["id"] }),
            &small_batches(2),
        )
        .unwrap();
        assert_eq!(rows(&batches), [some(&["1"]), some(&["2"]), some(&["3"])]);
        // In one batch the key is simply a column.
        let (schema, _) = load(&root, json!({ "path": "new.jsonl" })).unwrap();
        assert_eq!(names(&schema), ["id", "extra"]);
    }

    #[test]
    fn duplicate_key_names_key_and_line() {
        let (_dir, root) = root_with(&[("dup.jsonl", b"{\"a\":1}\n{\"a\":1,\"a\":2}\n")]);
        let err = load_err(&root, json!({ "path": "dup.jsonl" }), &Limits::default());
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("line 2"), "{}", err.message);
        assert!(
            err.message.contains("key \"a\" appears more than once"),
            "{}",
            err.message
        );
    }

    #[test]
    fn lines_that_are_not_objects_name_their_line() {
        for (line, reason) in [
            ("[1,2]", "not a JSON object"),
            ("42", "not a JSON object"),
            ("\"text\"", "not a JSON object"),
            ("null", "not a JSON object"),
            ("{\"a\":}", "not valid JSON"),
            (
                "{\"a\":1} {\"a\":2}",
                "not valid JSON: trailing characters at column",
            ),
            ("{\"a\":1", "not valid JSON"),
            ("{'a':1}", "not valid JSON"),
            ("{\"a\":NaN}", "not valid JSON"),
        ] {
            for batch_size in [1, 8192] {
                let file = format!("{{\"a\":1}}\n\n{line}\n");
                let (_dir, root) = root_with(&[("bad.jsonl", file.as_bytes())]);
                let err = load_err(
                    &root,
                    json!({ "path": "bad.jsonl" }),
                    &small_batches(batch_size),
                );
                assert_eq!(err.kind, ErrorKind::InvalidInput, "{line}");
                assert!(
                    err.message.starts_with("\"bad.jsonl\", line 3: "),
                    "{}",
                    err.message
                );
                assert!(err.message.contains(reason), "{line}: {}", err.message);
                assert!(!err.message.contains("line 1 column"), "{}", err.message);
            }
        }
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let (_dir, root) = root_with(&[("latin1.jsonl", b"{\"a\":\"x\"}\n{\"a\":\"caf\xE9\"}\n")]);
        for batch_size in [1, 8192] {
            let err = load_err(
                &root,
                json!({ "path": "latin1.jsonl" }),
                &small_batches(batch_size),
            );
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains("line 2"), "{}", err.message);
            assert!(err.message.contains("byte 10"), "{}", err.message);
            assert!(err.message.contains("UTF-8"), "{}", err.message);
        }
    }

    #[test]
    fn blank_lines_crlf_and_bom_are_fine() {
        let file = b"\xEF\xBB\xBF{\"id\":\"a\"}\r\n\r\n  \t\n{\"id\":\"b\"}\r\n{\"id\":\"c\"}";
        let (_dir, root) = root_with(&[("crlf.jsonl", file)]);
        let (schema, batches) = load(&root, json!({ "path": "crlf.jsonl" })).unwrap();
        assert_eq!(names(&schema), ["id"]);
        assert_eq!(rows(&batches), [some(&["a"]), some(&["b"]), some(&["c"])]);
    }

    #[test]
    fn empty_file_is_refused_and_empty_objects_are_rows() {
        let (_dir, root) = root_with(&[
            ("empty.jsonl", b""),
            ("blank.jsonl", b"\n \r\n\n"),
            ("bom.jsonl", b"\xEF\xBB\xBF"),
            ("objects.jsonl", b"{}\n{ }\n"),
        ]);
        for path in ["empty.jsonl", "blank.jsonl", "bom.jsonl"] {
            let err = load_err(&root, json!({ "path": path }), &Limits::default());
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains("is empty"), "{}", err.message);
        }
        let (schema, batches) = load(&root, json!({ "path": "objects.jsonl" })).unwrap();
        assert!(schema.fields().is_empty());
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].num_rows(), 2);
    }

    #[test]
    fn columns_select_and_order_by_name() {
        let file =
            b"{\"id\":1,\"name\":\"ada\",\"age\":36}\n{\"id\":2,\"name\":\"bob\",\"age\":7}\n";
        let (_dir, root) = root_with(&[("people.jsonl", file)]);
        let (schema, batches) = load(
            &root,
            json!({ "path": "people.jsonl", "columns": ["age", "name"] }),
        )
        .unwrap();
        assert_eq!(names(&schema), ["age", "name"]);
        assert_eq!(json_columns(&schema), [true, false]);
        assert_eq!(rows(&batches), [some(&["36", "ada"]), some(&["7", "bob"])]);
    }

    #[test]
    fn bad_column_selections_are_refused() {
        let (_dir, root) = root_with(&[("people.jsonl", b"{\"id\":1,\"name\":\"ada\"}\n")]);
        let err = load_err(
            &root,
            json!({ "path": "people.jsonl", "columns": ["id", "price"] }),
            &Limits::default(),
        );
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.contains("\"price\" not found"),
            "{}",
            err.message
        );
        assert!(err.message.contains("\"id\", \"name\""), "{}", err.message);

        let err = load_err(
            &root,
            json!({ "path": "people.jsonl", "columns": ["id", "id"] }),
            &Limits::default(),
        );
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("more than once"), "{}", err.message);

        let err = load_err(
            &root,
            json!({ "path": "people.jsonl", "columns": [] }),
            &Limits::default(),
        );
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("columns is empty"), "{}", err.message);

        let err = load_err(
            &root,
            json!({ "path": "people.jsonl", "colums": ["id"] }),
            &Limits::default(),
        );
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("colums"), "{}", err.message);
    }

    fn numbers(n: usize) -> Vec<u8> {
        (1..=n)
            .map(|i| format!("{{\"n\":{i}}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn values(batches: &[RecordBatch]) -> Vec<String> {
        rows(batches).into_iter().flatten().flatten().collect()
    }

    #[test]
    fn batches_of_batch_size_rows() {
        let (_dir, root) = root_with(&[("five.jsonl", &numbers(5))]);
        let (_, batches) =
            load_with(&root, json!({ "path": "five.jsonl" }), &small_batches(2)).unwrap();
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(values(&batches), ["1", "2", "3", "4", "5"]);
    }

    #[test]
    fn limit_caps_rows() {
        let (_dir, root) = root_with(&[("five.jsonl", &numbers(5))]);
        let limits = small_batches(2);
        let (_, batches) =
            load_with(&root, json!({ "path": "five.jsonl", "limit": 3 }), &limits).unwrap();
        assert_eq!(values(&batches), ["1", "2", "3"]);

        let (schema, batches) =
            load_with(&root, json!({ "path": "five.jsonl", "limit": 0 }), &limits).unwrap();
        assert_eq!(names(&schema), ["n"]);
        assert!(batches.is_empty());

        let (_, batches) = load(&root, json!({ "path": "five.jsonl", "limit": 99 })).unwrap();
        assert_eq!(values(&batches).len(), 5);
    }

    #[test]
    fn stops_one_row_past_max_rows() {
        // Line 4 is broken: reading stops before it.
        let (_dir, root) =
            root_with(&[("five.jsonl", b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\nbroken\n")]);
        let limits = Limits {
            max_rows: 2,
            batch_size: 8192,
        };
        let (_, batches) = load_with(&root, json!({ "path": "five.jsonl" }), &limits).unwrap();
        assert_eq!(values(&batches), ["1", "2", "3"]);
        let limits = Limits {
            max_rows: 2,
            batch_size: 1,
        };
        let (_, batches) = load_with(&root, json!({ "path": "five.jsonl" }), &limits).unwrap();
        assert_eq!(values(&batches), ["1", "2", "3"]);
        let (_, batches) =
            load_with(&root, json!({ "path": "five.jsonl", "limit": 1 }), &limits).unwrap();
        assert_eq!(values(&batches), ["1"]);
    }

    #[test]
    fn without_root_the_loader_says_how_to_configure_it() {
        let err = plugin()
            .open_loader("jsonl", "{}", r#"{"path":"a.jsonl"}"#, &Limits::default())
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "the json plugin has no `root` configured; set [plugins.json.config] root = ..."
        );
    }

    #[test]
    fn missing_file_is_not_found() {
        let (_dir, root) = root_with(&[]);
        let err = load_err(
            &root,
            json!({ "path": "nope/missing.jsonl" }),
            &Limits::default(),
        );
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(
            err.message.contains("nope/missing.jsonl"),
            "{}",
            err.message
        );
    }

    #[test]
    fn folder_or_empty_path_is_refused() {
        let (_dir, root) = root_with(&[]);
        fs::create_dir(root.join("sub")).unwrap();
        for path in ["sub", "", "."] {
            let err = load_err(&root, json!({ "path": path }), &Limits::default());
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{path:?}");
        }
    }

    #[test]
    fn paths_inside_the_root_are_fine() {
        let (_dir, root) = root_with(&[("a.jsonl", b"{\"n\":1}\n")]);
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/b.jsonl"), b"{\"n\":2}\n").unwrap();
        std::os::unix::fs::symlink("a.jsonl", root.join("alias.jsonl")).unwrap();
        for (path, value) in [
            ("./a.jsonl", "1"),
            ("sub/../a.jsonl", "1"),
            ("sub/b.jsonl", "2"),
            ("alias.jsonl", "1"),
        ] {
            let (_, batches) = load(&root, json!({ "path": path })).unwrap();
            assert_eq!(values(&batches), [value], "{path}");
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
    fn escape_by_parent_dir_absolute_path_or_symlink_is_refused() {
        let (dir, root) = root_with(&[("a.jsonl", b"{\"n\":1}\n")]);
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret.jsonl"), b"{\"s\":1}\n").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.jsonl"), root.join("link.jsonl")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("dirlink")).unwrap();
        let absolute = outside.join("secret.jsonl");
        let inside_absolute = root.join("a.jsonl");
        for path in [
            "../outside/secret.jsonl",
            "sub/../../outside/secret.jsonl",
            "../missing.jsonl",
            absolute.to_str().unwrap(),
            inside_absolute.to_str().unwrap(),
            "link.jsonl",
            "dirlink/secret.jsonl",
        ] {
            let err = load_err(&root, json!({ "path": path }), &Limits::default());
            assert_outside(err, path);
        }
    }

    #[test]
    fn many_rows_stream_in_full_batches() {
        let mut file = String::new();
        for n in 0..10_000 {
            file.push_str(&format!(
                "{{\"id\":\"{n:05}\",\"v\":{n}.50,\"t\":\"row {n}\\nline two\"}}\n"
            ));
        }
        let (_dir, root) = root_with(&[("many.jsonl", file.as_bytes())]);
        let (_, batches) =
            load_with(&root, json!({ "path": "many.jsonl" }), &small_batches(4096)).unwrap();
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
        let all = rows(&batches);
        assert_eq!(all[0], some(&["00000", "0.50", "row 0\nline two"]));
        assert_eq!(
            all[9_999],
            some(&["09999", "9999.50", "row 9999\nline two"])
        );
    }
}

#[cfg(test)]
mod type_tests {
    use crate::encode::EXACT_TEXT_KEY;
    use crate::plugin;
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::arrow_array::types::{
        Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
    };
    use export_plugin_api::arrow_array::{Array, RecordBatch};
    use export_plugin_api::arrow_schema::{DataType, SchemaRef, TimeUnit};
    use export_plugin_api::json::is_json_field;
    use export_plugin_api::{ErrorKind, Limits, PluginError};
    use serde_json::{json, Value};
    use std::fs;
    use tempfile::TempDir;

    fn dir_with(name: &str, text: &str) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(name), text).unwrap();
        dir
    }

    /// The schema, every batch and the notes.
    fn load_with(
        dir: &TempDir,
        selector: Value,
        limits: &Limits,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Option<Value>), PluginError> {
        let config = json!({ "root": dir.path() }).to_string();
        let mut reader = plugin().open_loader("jsonl", &config, &selector.to_string(), limits)?;
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

    fn utc() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    const TYPED: &str = concat!(
        r#"{"id":1,"price":1.50,"day":"2024-05-01","at":"2024-05-01T10:00:00+02:00","ok":true,"amount":"12.50","n":"7","raw":1.50}"#,
        "\n\n",
        r#"{"id":null,"price":"","day":null,"at":"","ok":null,"amount":null,"n":null,"raw":{"a": [1]}}"#,
        "\n",
        r#"{"id":"3","price":-2e3,"day":"1999-12-31","ok":"FALSE","amount":-0.01,"n":8,"raw":"x"}"#,
        "\n",
    );

    #[test]
    fn types_read_json_numbers_booleans_and_strings() {
        let dir = dir_with("t.jsonl", TYPED);
        let selector = json!({
            "path": "t.jsonl",
            "types": {
                "id": "int64", "price": "float64", "day": "date", "at": "timestamp",
                "ok": "bool", "amount": "decimal(10,2)", "n": "int64", "raw": "text"
            }
        });
        let (schema, batches, notes) = load(&dir, selector).unwrap();
        assert!(notes.is_none());
        assert_eq!(
            data_types(&schema),
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Date32,
                utc(),
                DataType::Boolean,
                DataType::Decimal128(10, 2),
                DataType::Int64,
                DataType::Utf8,
            ]
        );
        // `text` is text, not raw JSON: strings stay strings for JSON formatters.
        let raw_field = schema.field(7);
        assert!(!is_json_field(raw_field));
        assert!(raw_field.metadata().contains_key(EXACT_TEXT_KEY));
        let batch = &batches[0];
        let id = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!((id.value(0), id.is_null(1), id.value(2)), (1, true, 3));
        let price = batch.column(1).as_primitive::<Float64Type>();
        assert_eq!(
            (price.value(0), price.is_null(1), price.value(2)),
            (1.5, true, -2000.0)
        );
        let day = batch.column(2).as_primitive::<Date32Type>();
        assert_eq!((day.value(0), day.is_null(1)), (19_844, true));
        let at = batch.column(3).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(0), 1_714_550_400_000_000);
        // An empty string and a missing key are nulls.
        assert!(at.is_null(1) && at.is_null(2));
        let ok = batch.column(4).as_boolean();
        assert!(ok.value(0) && ok.is_null(1) && !ok.value(2));
        let amount = batch.column(5).as_primitive::<Decimal128Type>();
        assert_eq!((amount.value(0), amount.value(2)), (1250, -1));
        let n = batch.column(6).as_primitive::<Int64Type>();
        assert_eq!((n.value(0), n.value(2)), (7, 8));
        let raw = batch.column(7).as_string::<i32>();
        assert_eq!(
            (raw.value(0), raw.value(1), raw.value(2)),
            ("1.50", r#"{"a": [1]}"#, "x")
        );
    }

    #[test]
    fn a_value_that_does_not_fit_names_line_row_column_and_value() {
        let file = "{\"price\":1.5}\n\n{\"price\":\"12,5\"}\n";
        let dir = dir_with("p.jsonl", file);
        let err = load(
            &dir,
            json!({ "path": "p.jsonl", "types": { "price": "float64" } }),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.starts_with(
                r#""p.jsonl", line 3 (row 2), column "price": "12,5" is not a float64; "#
            ),
            "{}",
            err.message
        );
        for (value, ty, needle) in [
            ("1.0", "int64", r#""1.0" is not an int64"#),
            ("[1, 2]", "int64", r#""[1, 2]" is not an int64"#),
            ("1", "bool", r#""1" is not a bool"#),
            ("\"2024-05-01T10:00:00\"", "timestamp", "no UTC offset"),
        ] {
            let dir = dir_with("v.jsonl", &format!("{{\"v\":null}}\n{{\"v\":{value}}}\n"));
            let err = load(&dir, json!({ "path": "v.jsonl", "types": { "v": ty } }))
                .err()
                .unwrap();
            assert!(err.message.contains("line 2 (row 2)"), "{}", err.message);
            assert!(err.message.contains(needle), "{}", err.message);
        }
        // In a later batch, rows count on; a bad value comes before a later bad line.
        let mut file = String::new();
        for n in 0..5 {
            file.push_str(&format!("{{\"n\":{n}}}\n"));
        }
        file.push_str("{\"n\":\"x\"}\n{not json\n");
        let dir = dir_with("n.jsonl", &file);
        for batch_size in [2, 100] {
            let limits = Limits {
                batch_size,
                ..Limits::default()
            };
            let err = load_with(
                &dir,
                json!({ "path": "n.jsonl", "types": { "n": "int64" } }),
                &limits,
            )
            .err()
            .unwrap();
            assert!(
                err.message
                    .starts_with(r#""n.jsonl", line 6 (row 6), column "n": "x" is not an int64"#),
                "{batch_size}: {}",
                err.message
            );
        }
    }

    #[test]
    fn on_error_null_counts_in_the_notes() {
        let file = "{\"price\":1.5,\"day\":\"x\"}\n{\"price\":\"n/a\",\"day\":\"2024-01-01\"}\n{\"price\":[1],\"day\":null}\n";
        let dir = dir_with("p.jsonl", file);
        let limits = Limits {
            batch_size: 2,
            ..Limits::default()
        };
        let selector = json!({
            "path": "p.jsonl",
            "types": { "price": "float64", "day": "date" },
            "on_error": "null"
        });
        let (_, batches, notes) = load_with(&dir, selector, &limits).unwrap();
        assert_eq!(
            notes,
            Some(json!({ "nulled_values": { "price": 2, "day": 1 } }))
        );
        let prices: Vec<Option<f64>> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(prices, [Some(1.5), None, None]);
        let (_, _, notes) = load(
            &dir,
            json!({ "path": "p.jsonl", "types": { "price": "text" }, "on_error": "null" }),
        )
        .unwrap();
        assert!(notes.is_none());
    }

    #[test]
    fn unknown_columns_and_bad_type_names_are_refused() {
        let dir = dir_with("p.jsonl", "{\"id\":1,\"price\":2}\n");
        let err = load(
            &dir,
            json!({ "path": "p.jsonl", "types": { "pricee": "int64" } }),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("\"pricee\""), "{}", err.message);
        assert!(err.message.contains("\"id\", \"price\""), "{}", err.message);
        for (bad, needle) in [
            ("floatt", "unknown column type \"floatt\""),
            ("decimal(39,2)", "between 1 and 38"),
        ] {
            let err = load(
                &dir,
                json!({ "path": "p.jsonl", "types": { "price": bad } }),
            )
            .err()
            .unwrap();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains(needle), "{}", err.message);
        }
    }

    #[test]
    fn infer_guesses_only_what_comes_back_unchanged() {
        let lines = [
            json!({"ints": 1, "floats": 1.5, "money": 1.50, "strnum": "12", "day": "2024-05-01", "at": "2024-05-01T10:00:00Z", "offsets": "2024-05-01T10:00:00Z", "flag": true, "mixed": 1, "blank": "x", "nulls": null, "nested": [1], "big": 1}),
            json!({"ints": -2, "floats": 2, "money": 2.25, "strnum": "13", "day": null, "at": "2024-05-01T10:00:00.5+00:00", "offsets": "2024-05-01T12:00:00+02:00", "flag": false, "mixed": "1", "blank": "", "nulls": null, "nested": 1, "big": 12345678901234567890u64}),
        ];
        // `json!` would respell 1.50 and 12345678901234567890: write them by hand.
        let mut file = lines[0]
            .to_string()
            .replace("\"money\":1.5", "\"money\":1.50");
        file.push('\n');
        file.push_str(&lines[1].to_string());
        file.push('\n');
        let dir = dir_with("hard.jsonl", &file);
        let (schema, batches, _) =
            load(&dir, json!({ "path": "hard.jsonl", "infer": true })).unwrap();
        let by_name = |name: &str| schema.field_with_name(name).unwrap().clone();
        assert_eq!(by_name("ints").data_type(), &DataType::Int64);
        assert_eq!(by_name("floats").data_type(), &DataType::Float64);
        assert_eq!(by_name("day").data_type(), &DataType::Date32);
        assert_eq!(by_name("at").data_type(), &utc());
        assert_eq!(by_name("flag").data_type(), &DataType::Boolean);
        // The rest keep their defaults: raw JSON, or text for string columns.
        for name in ["money", "mixed", "nulls", "nested", "big"] {
            assert!(is_json_field(&by_name(name)), "{name}");
        }
        for name in ["strnum", "offsets", "blank"] {
            let field = by_name(name);
            assert!(field.metadata().contains_key(EXACT_TEXT_KEY), "{name}");
        }
        let batch = &batches[0];
        let money = batch
            .column(schema.index_of("money").unwrap())
            .as_string::<i32>();
        assert_eq!(money.value(0), "1.50");
        let floats = batch
            .column(schema.index_of("floats").unwrap())
            .as_primitive::<Float64Type>();
        assert_eq!((floats.value(0), floats.value(1)), (1.5, 2.0));
        let at = batch
            .column(schema.index_of("at").unwrap())
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(1) - at.value(0), 500_000);

        // `types` overrides the guess.
        let (schema, _, _) = load(
            &dir,
            json!({ "path": "hard.jsonl", "infer": true, "types": { "ints": "text", "strnum": "int64" } }),
        )
        .unwrap();
        assert_eq!(
            schema.field_with_name("ints").unwrap().data_type(),
            &DataType::Utf8
        );
        assert_eq!(
            schema.field_with_name("strnum").unwrap().data_type(),
            &DataType::Int64
        );
        // Only the lines exported are read for the guess.
        let (schema, _, _) = load(
            &dir,
            json!({ "path": "hard.jsonl", "infer": true, "limit": 1 }),
        )
        .unwrap();
        assert_eq!(
            schema.field_with_name("offsets").unwrap().data_type(),
            &utc()
        );
        assert_eq!(
            schema.field_with_name("big").unwrap().data_type(),
            &DataType::Int64
        );
    }

    #[test]
    fn the_default_is_unchanged() {
        let dir = dir_with("p.jsonl", "{\"n\":1,\"s\":\"x\"}\n");
        let (schema, _, notes) = load(&dir, json!({ "path": "p.jsonl" })).unwrap();
        assert!(is_json_field(schema.field(0)));
        assert!(schema.field(1).metadata().contains_key(EXACT_TEXT_KEY));
        assert!(notes.is_none());
    }
}

#[cfg(test)]
mod caller_and_limit_tests {
    use crate::plugin;
    use export_plugin_api::{Caller, Credential, ErrorKind, Limits, PluginError, Result};
    use serde_json::{json, Value};
    use std::fs;

    /// Every row as JSON text, read as `caller` with `config`.
    fn load_as(config: &Value, selector: Value, caller: Option<&Caller>) -> Result<Vec<String>> {
        let plugin = plugin();
        let mut reader = plugin.open_loader_for(
            "jsonl",
            &config.to_string(),
            &selector.to_string(),
            &Limits::default(),
            caller,
        )?;
        let mut writer = plugin.start_formatter("jsonl", "{}", "{}", reader.schema())?;
        let mut out = Vec::new();
        while let Some(batch) = reader.next_batch()? {
            writer.write(&batch, &mut out)?;
        }
        writer.finish(&mut out)?;
        Ok(String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect())
    }

    fn validate(config: &Value, selector: Value, caller: Option<&Caller>) -> Result<()> {
        plugin().validate_loader("jsonl", &config.to_string(), &selector.to_string(), caller)
    }

    fn api_caller(user: &str) -> Caller {
        Caller {
            user: user.to_owned(),
            admin: false,
            credential: Credential::Jwt {
                issuer: None,
                subject: Some(user.to_owned()),
                claims: serde_json::Map::new(),
            },
        }
    }

    /// `users/ada/x.jsonl` and `users/bob/x.jsonl` under a temp folder, and a
    /// config whose root is `users/{user}`.
    fn per_user() -> (tempfile::TempDir, Value) {
        let dir = tempfile::tempdir().unwrap();
        for user in ["ada", "bob"] {
            let folder = dir.path().join("users").join(user);
            fs::create_dir_all(&folder).unwrap();
            fs::write(
                folder.join("x.jsonl"),
                format!("{{\"owner\":\"{user}\"}}\n"),
            )
            .unwrap();
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
            let caller = api_caller(user);
            let got = load_as(&config, json!({ "path": "x.jsonl" }), Some(&caller)).unwrap();
            assert_eq!(got, [format!("{{\"owner\":\"{user}\"}}")]);
            validate(&config, json!({ "path": "x.jsonl" }), Some(&caller)).unwrap();
        }
    }

    #[test]
    fn other_folders_and_missing_callers_are_refused() {
        let (dir, config) = per_user();
        let bob = dir.path().join("users/bob/x.jsonl");
        std::os::unix::fs::symlink(&bob, dir.path().join("users/ada/link.jsonl")).unwrap();
        let ada = Caller::user("ada");
        for path in ["../bob/x.jsonl", bob.to_str().unwrap(), "link.jsonl"] {
            assert_refused(
                &config,
                json!({ "path": path }),
                Some(&ada),
                ErrorKind::PermissionDenied,
                &["must be inside the configured root"],
            );
        }
        let selector = json!({ "path": "x.jsonl" });
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
        assert_refused(
            &config,
            selector.clone(),
            Some(&api_caller("..")),
            ErrorKind::PermissionDenied,
            &["one path component"],
        );
        assert_refused(
            &config,
            selector,
            Some(&api_caller("cy")),
            ErrorKind::NotFound,
            &["x.jsonl", "\"cy\""],
        );
    }

    #[test]
    fn validate_refuses_what_open_would_without_reading_the_data() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("bad.jsonl"), "not json\n").unwrap();
        let config = json!({ "root": dir.path() });
        // The data is not read: a malformed file passes validation.
        validate(&config, json!({ "path": "bad.jsonl" }), None).unwrap();
        let cases = [
            (
                json!({ "path": "missing.jsonl" }),
                ErrorKind::NotFound,
                "missing.jsonl",
            ),
            (
                json!({ "path": "../x.jsonl" }),
                ErrorKind::PermissionDenied,
                "inside",
            ),
            (
                json!({ "path": "bad.jsonl", "columns": [] }),
                ErrorKind::InvalidInput,
                "columns is empty",
            ),
            (
                json!({ "path": "bad.jsonl", "columns": ["a", "a"] }),
                ErrorKind::InvalidInput,
                "more than once",
            ),
            (
                json!({ "path": "bad.jsonl", "colums": ["a"] }),
                ErrorKind::InvalidInput,
                "colums",
            ),
        ];
        for (selector, kind, needle) in cases {
            assert_refused(&config, selector, None, kind, &[needle]);
        }
        assert_refused(
            &json!({}),
            json!({ "path": "bad.jsonl" }),
            None,
            ErrorKind::InvalidInput,
            &["no `root` configured"],
        );
        assert_refused(
            &json!({ "root": dir.path(), "max_line_bytes": 0 }),
            json!({ "path": "bad.jsonl" }),
            None,
            ErrorKind::InvalidInput,
            &["max_line_bytes"],
        );
    }

    #[test]
    fn a_line_over_max_line_bytes_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        // Line 3 holds 11 bytes; the others at most 10, one with `\r\n`.
        let file = "{\"a\":\"1\"}\r\n\n{\"a\":\"123\"}\n{\"a\":\"12\"}\n";
        fs::write(dir.path().join("long.jsonl"), file).unwrap();
        let selector = json!({ "path": "long.jsonl" });
        for cap in [9, 10] {
            let config = json!({ "root": dir.path(), "max_line_bytes": cap });
            let err = load_as(&config, selector.clone(), None).unwrap_err();
            assert_eq!(err.kind, ErrorKind::LimitExceeded, "{}", err.message);
            for needle in [
                "\"long.jsonl\", line 3",
                &format!("{cap} bytes"),
                "max_line_bytes",
            ] {
                assert!(err.message.contains(needle), "{needle}: {}", err.message);
            }
        }
        let config = json!({ "root": dir.path(), "max_line_bytes": 11 });
        assert_eq!(load_as(&config, selector.clone(), None).unwrap().len(), 3);

        // Past the first batch, and with no final newline.
        let mut file = "{\"a\":\"1\"}\n".repeat(20_000);
        file.push_str("{\"a\":\"12345\"}");
        fs::write(dir.path().join("late.jsonl"), &file).unwrap();
        let config = json!({ "root": dir.path(), "max_line_bytes": 12 });
        let err = load_as(&config, json!({ "path": "late.jsonl" }), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::LimitExceeded);
        assert!(err.message.contains("line 20001"), "{}", err.message);
    }
}
