//! The `jsonl` loader: streams a newline-delimited JSON file under the
//! configured root, one object per line, every value exactly as written.

use crate::config::JsonConfig;
use crate::encode::EXACT_TEXT_KEY;
use export_plugin_api::arrow_array::builder::StringBuilder;
use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::files::resolve_for_caller;
use export_plugin_api::json::json_field;
use export_plugin_api::{BatchReader, Caller, JsonSchema, Limits, Loader, PluginError, Result};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
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
}

/// The `jsonl` loader. Every line holds one JSON object; blank lines are
/// skipped. The columns are the keys of the first batch of lines. A column
/// whose values there are all strings (or null) is `Utf8` holding the
/// decoded text; any other column is `arrow.json`
/// ([`json_field`]) holding each value's JSON text verbatim, so `1.50`,
/// `12345678901234567890123` and `{"a": 1}` come back exactly as written.
/// A key missing from a line is a null.
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
        let mut lines = Lines {
            reader,
            buffer: Vec::new(),
            number: 0,
            path: path.clone(),
            max_line,
        };

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
        while sample_lines.len() < sample_rows && sample.len() < MAX_BATCH_BYTES {
            let Some((number, text)) = lines.next()? else {
                exhausted = true;
                break;
            };
            parse_line(text, &mut scan).map_err(|err| json_error(&path, number, &err))?;
            sample.push_str(text);
            sample_lines.push((number, sample.len()));
        }
        if sample_lines.is_empty() {
            return Err(PluginError::invalid_input(format!(
                "file {path:?} is empty: it has no JSON lines to take the columns from"
            )));
        }

        let layout = Layout::new(path, scan, selector.columns, sample_lines.len())?;
        let schema = layout.schema();
        let mut byte_capacity =
            vec![batch_size.saturating_mul(FIRST_BATCH_BYTES_PER_CELL); layout.kinds.len()];
        let first = if first_rows == 0 {
            None
        } else {
            let mut builders = Builders::new(&byte_capacity, sample_lines.len());
            let mut start = 0;
            for &(number, end) in &sample_lines {
                builders.append(&layout, number, &sample[start..end])?;
                start = end;
            }
            Some(builders.finish(&schema, &mut byte_capacity)?)
        };
        let emitted = first.as_ref().map_or(0, RecordBatch::num_rows) as u64;
        Ok(Box::new(JsonlBatchReader {
            lines,
            layout,
            schema,
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
    schema: SchemaRef,
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
            let Some((number, text)) = self.lines.next()? else {
                self.exhausted = true;
                break;
            };
            builders.append(&self.layout, number, text)?;
        }
        let count = builders.rows;
        self.remaining = self.remaining.saturating_sub(count as u64);
        if count == 0 {
            return Ok(None);
        }
        Ok(Some(
            builders.finish(&self.schema, &mut self.byte_capacity)?,
        ))
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
}

impl Lines {
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
                Kind::Text => Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from(
                    [(EXACT_TEXT_KEY.to_owned(), "true".to_owned())],
                )),
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
