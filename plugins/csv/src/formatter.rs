//! The `csv` formatter: RFC 4180 CSV, quoting only where needed unless the
//! request asks for another quote style, with an optional UTF-8 byte order
//! mark, an optional guard against formula injection and an optional time
//! zone for timestamps.

use crate::config::{default_delimiter, delimiter_byte, DELIMITER_PATTERN};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::rows::{Cell, Rows};
use export_plugin_api::time_zone::Rezone;
use export_plugin_api::{FormatWriter, Formatter, JsonSchema, NoConfig, PluginError, Result};
use records::{Quoting, RecordWriter};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Write as _;

mod records;

/// The UTF-8 byte order mark, which makes Excel read the file as UTF-8.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// When fields are put in double quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum QuoteStyle {
    /// Only fields holding the delimiter, a quote or a line break (the default).
    #[default]
    Necessary,
    /// Every field, the header included; nulls too are written as `""`.
    Always,
    /// Every field except the values of numeric columns (integers, floats,
    /// decimals) and nulls: text is always quoted, even `42`, so readers that
    /// take unquoted fields as numbers (Python's `QUOTE_NONNUMERIC`) get
    /// text back as text, and an empty text (`""`) differs from a null
    /// (nothing).
    NonNumeric,
    /// No field is quoted. A value that would need quotes (one holding the
    /// delimiter, a double quote or a line break) fails the export rather
    /// than produce a file that reads back wrong.
    Never,
}

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

    /// When fields are quoted: `"necessary"` (default), `"always"`,
    /// `"non_numeric"` or `"never"` (refuses values that need quotes).
    #[serde(default)]
    pub quote_style: QuoteStyle,

    /// Start the file with a UTF-8 byte order mark, so Excel opens it as
    /// UTF-8 (default false).
    #[serde(default)]
    pub bom: bool,

    /// Guard against formula injection when the file is opened in a
    /// spreadsheet: a field that starts with `=`, `+`, `-`, `@`, a tab or a
    /// carriage return gets a `'` in front, except plain signed numbers such
    /// as `-1.5` or `+3`. Off by default, because it changes the values: a
    /// guarded file no longer reads back byte for byte.
    #[serde(default)]
    pub formula_guard: bool,

    /// Write timestamp columns in this time zone, always with their UTC
    /// offset (RFC 3339: `2024-05-01T10:00:00+02:00`, `Z` for UTC): an IANA name such as
    /// `"Europe/Paris"`, or `"UTC"`. Timestamps without a zone are taken as
    /// UTC. Without it, timestamps keep their column's zone. Text columns
    /// are never touched.
    #[serde(default)]
    pub time_zone: Option<String>,
}

fn default_header() -> bool {
    true
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: default_delimiter(),
            header: default_header(),
            quote_style: QuoteStyle::default(),
            bom: false,
            formula_guard: false,
            time_zone: None,
        }
    }
}

/// The `csv` formatter. Values are written as their text; by default a
/// field is quoted only when it holds the delimiter, a quote or a line
/// break, and line breaks (including CRLF) inside values are kept as they
/// are. Nulls are empty fields.
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
        let rezone = Rezone::for_option(&schema, options.time_zone.as_deref())?;
        let schema = rezone
            .as_ref()
            .map_or_else(|| schema.clone(), |rezone| rezone.schema().clone());
        // Refuse column types that cannot be shown as text before any output exists.
        Rows::new(&RecordBatch::new_empty(schema.clone()))?;
        // Non-numeric quoting is done field by field in `FieldRules`; the
        // record writer then copies the prepared fields as they are.
        let quoting = match options.quote_style {
            QuoteStyle::Necessary => Quoting::Necessary,
            QuoteStyle::Always => Quoting::Always,
            QuoteStyle::NonNumeric | QuoteStyle::Never => Quoting::AsIs,
        };
        let numeric = (0..schema.fields().len())
            .map(|column| is_numeric_column(&schema, column))
            .collect();
        Ok(Box::new(CsvWriter {
            records: RecordWriter::new(delimiter, quoting),
            numeric,
            schema,
            rezone,
            fields: FieldRules {
                delimiter,
                quote_style: options.quote_style,
                formula_guard: options.formula_guard,
            },
            bom_pending: options.bom,
            header_pending: options.header,
            rows_written: 0,
            text: String::new(),
            quoted: Vec::new(),
        }))
    }
}

/// How each field is prepared before the record writer copies it.
struct FieldRules {
    delimiter: u8,
    quote_style: QuoteStyle,
    formula_guard: bool,
}

impl FieldRules {
    /// The bytes to hand the record writer for `value`; `numeric` for values of
    /// numeric columns. `quoted` is scratch space.
    fn prepare<'v>(
        &self,
        value: &'v str,
        numeric: bool,
        quoted: &'v mut Vec<u8>,
        at: impl FnOnce() -> String,
    ) -> Result<&'v [u8]> {
        let value: Cow<'v, str> = if self.formula_guard && needs_formula_guard(value) {
            Cow::Owned(format!("'{value}"))
        } else {
            Cow::Borrowed(value)
        };
        match self.quote_style {
            QuoteStyle::Necessary | QuoteStyle::Always => Ok(cow_bytes(value, quoted)),
            QuoteStyle::NonNumeric if numeric => Ok(cow_bytes(value, quoted)),
            QuoteStyle::NonNumeric => {
                quoted.clear();
                quoted.push(b'"');
                for byte in value.bytes() {
                    if byte == b'"' {
                        quoted.push(b'"');
                    }
                    quoted.push(byte);
                }
                quoted.push(b'"');
                Ok(quoted.as_slice())
            }
            QuoteStyle::Never => {
                if value
                    .bytes()
                    .any(|b| matches!(b, b'"' | b'\r' | b'\n') || b == self.delimiter)
                {
                    return Err(PluginError::invalid_input(format!(
                        "{}: the value holds the delimiter, a double quote or a line break, \
                         which quote_style \"never\" cannot write without changing the data: \
                         use quote_style \"necessary\"",
                        at()
                    )));
                }
                Ok(cow_bytes(value, quoted))
            }
        }
    }
}

/// The bytes of `value`, copied into `scratch` when it is owned.
fn cow_bytes<'v>(value: Cow<'v, str>, scratch: &'v mut Vec<u8>) -> &'v [u8] {
    match value {
        Cow::Borrowed(text) => text.as_bytes(),
        Cow::Owned(text) => {
            *scratch = text.into_bytes();
            scratch.as_slice()
        }
    }
}

/// Whether a spreadsheet could take `value` for a formula: it starts with
/// `=`, `+`, `-`, `@`, a tab or a carriage return, and is not a plain
/// signed number (`-1.5`, `+3`, `-2e5`).
pub fn needs_formula_guard(value: &str) -> bool {
    match value.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_plain_number(&value[1..]),
        _ => false,
    }
}

/// Digits with at most one decimal point and an optional exponent: `1.5`, `3`, `.5`, `2e5`.
fn is_plain_number(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// One running CSV export.
struct CsvWriter {
    /// Writes the prepared fields into the host's output.
    records: RecordWriter,
    /// Per column, whether it holds numbers that Arrow shows as text (decimals).
    numeric: Vec<bool>,
    /// The schema batches are written with (timestamps moved to `time_zone`).
    schema: SchemaRef,
    /// Moves timestamp columns to the requested zone, when one was asked for.
    rezone: Option<Rezone>,
    fields: FieldRules,
    /// Whether the byte order mark is still to be written.
    bom_pending: bool,
    /// Whether the header is still to be written.
    header_pending: bool,
    /// Rows written so far, for messages.
    rows_written: u64,
    /// Reused for cells that are not text already (numbers, dates, ...).
    text: String,
    /// Reused for fields that are quoted or guarded here.
    quoted: Vec<u8>,
}

impl CsvWriter {
    /// Writes the byte order mark unless written already or not wanted.
    fn write_bom(&mut self, out: &mut Vec<u8>) {
        if self.bom_pending {
            self.bom_pending = false;
            out.extend_from_slice(UTF8_BOM);
        }
    }

    /// Writes the header unless written already or not wanted.
    fn write_start(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if !self.header_pending {
            return Ok(());
        }
        self.header_pending = false;
        if self.schema.fields().is_empty() {
            return Ok(());
        }
        for field in self.schema.fields() {
            let bytes = self
                .fields
                .prepare(field.name(), false, &mut self.quoted, || {
                    format!("the header, column {:?}", field.name())
                })?;
            self.records.field(out, bytes);
        }
        self.records.end_record(out);
        Ok(())
    }
}

impl FormatWriter for CsvWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.write_bom(out);
        self.write_start(out)?;
        let batch = Rezone::apply(self.rezone.as_ref(), batch)?;
        let rows = Rows::new(&batch)?;
        let columns = rows.num_columns();
        if columns > 0 {
            let schema = &self.schema;
            let text = &mut self.text;
            let records = &mut self.records;
            for row in 0..rows.len() {
                self.rows_written += 1;
                let row_number = self.rows_written;
                for column in 0..columns {
                    let at = || {
                        format!(
                            "row {row_number}, column {:?}",
                            schema
                                .fields()
                                .get(column)
                                .map_or("", |f| f.name().as_str())
                        )
                    };
                    let cell = rows.cell(row, column);
                    let numeric = matches!(cell, Cell::Int(_) | Cell::UInt(_) | Cell::Float(_))
                        || self.numeric[column];
                    let value: &str = match cell {
                        Cell::Text(value) => value,
                        Cell::Null => {
                            records.field(out, b"");
                            continue;
                        }
                        other => {
                            text.clear();
                            // Writing into a String cannot fail.
                            let _ = write!(text, "{other}");
                            text.as_str()
                        }
                    };
                    let bytes = self.fields.prepare(value, numeric, &mut self.quoted, at)?;
                    records.field(out, bytes);
                }
                records.end_record(out);
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.write_bom(out);
        self.write_start(out)
    }
}

/// Whether `column` holds numbers that Arrow shows as text (decimals).
fn is_numeric_column(schema: &SchemaRef, column: usize) -> bool {
    use export_plugin_api::arrow_schema::DataType;
    schema.fields().get(column).is_some_and(|field| {
        matches!(
            field.data_type(),
            DataType::Float16
                | DataType::Float32
                | DataType::Decimal32(..)
                | DataType::Decimal64(..)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::{
        ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
        TimestampSecondArray,
    };
    use export_plugin_api::arrow_schema::{DataType, Field, Schema, TimeUnit};
    use export_plugin_api::testing::run_formatter_text;
    use export_plugin_api::ErrorKind;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn format_all(options: Value, schema: SchemaRef, batches: &[RecordBatch]) -> Result<String> {
        run_formatter_text(
            &plugin(),
            "csv",
            "{}",
            &options.to_string(),
            schema,
            batches,
        )
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn text(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn mixed() -> RecordBatch {
        batch(vec![
            (
                "id",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)])),
            ),
            (
                "amount",
                Arc::new(Float64Array::from(vec![1.5, f64::NAN, -0.25])),
            ),
            ("text", text(&[Some("007"), Some(""), None])),
            (
                "note",
                text(&[Some("a,b"), Some("say \"hi\""), Some("x\r\ny")]),
            ),
        ])
    }

    #[test]
    fn default_quotes_only_where_needed_and_keeps_values() {
        let batch = mixed();
        let out = format_all(json!({}), batch.schema(), &[batch]).unwrap();
        assert_eq!(
            out,
            "id,amount,text,note\n1,1.5,007,\"a,b\"\n,NaN,,\"say \"\"hi\"\"\"\n-3,-0.25,,\"x\r\ny\"\n"
        );
    }

    #[test]
    fn quote_style_always_quotes_every_field() {
        let batch = mixed();
        let out = format_all(json!({ "quote_style": "always" }), batch.schema(), &[batch]).unwrap();
        assert_eq!(
            out,
            "\"id\",\"amount\",\"text\",\"note\"\n\"1\",\"1.5\",\"007\",\"a,b\"\n\"\",\"NaN\",\"\",\"say \"\"hi\"\"\"\n\"-3\",\"-0.25\",\"\",\"x\r\ny\"\n"
        );
    }

    #[test]
    fn quote_style_non_numeric_quotes_text_but_not_numbers_or_nulls() {
        let batch = mixed();
        let out = format_all(
            json!({ "quote_style": "non_numeric" }),
            batch.schema(),
            &[batch],
        )
        .unwrap();
        assert_eq!(
            out,
            "\"id\",\"amount\",\"text\",\"note\"\n1,1.5,\"007\",\"a,b\"\n,NaN,\"\",\"say \"\"hi\"\"\"\n-3,-0.25,,\"x\r\ny\"\n"
        );
        // Text that looks like a number is still quoted: it is text.
        let numbers = batch_of_text(&["42"]);
        let out = format_all(
            json!({ "quote_style": "non_numeric", "header": false }),
            numbers.schema(),
            &[numbers],
        )
        .unwrap();
        assert_eq!(out, "\"42\"\n");
    }

    #[test]
    fn list_columns_are_quoted_json_cells() {
        use export_plugin_api::arrow_array::builder::{ListBuilder, StringBuilder};
        let mut lists = ListBuilder::new(StringBuilder::new());
        lists.values().append_value("");
        lists.values().append_null();
        lists.values().append_value("a\"b");
        lists.append(true);
        lists.append(false);
        lists.append(true);
        let lists: ArrayRef = Arc::new(lists.finish());
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let batch = batch(vec![("id", ids), ("tags", lists)]);
        let out = format_all(json!({}), batch.schema(), &[batch]).unwrap();
        // A null cell is empty; an empty list is `[]`, which needs no quotes.
        assert_eq!(
            out,
            "id,tags\n1,\"[\"\"\"\",null,\"\"a\\\"\"b\"\"]\"\n2,\n3,[]\n"
        );
    }

    fn batch_of_text(values: &[&str]) -> RecordBatch {
        let values: Vec<Option<&str>> = values.iter().copied().map(Some).collect();
        batch(vec![("v", text(&values))])
    }

    #[test]
    fn quote_style_never_writes_safe_values_and_refuses_the_rest() {
        let safe = batch(vec![
            ("a", text(&[Some("007"), Some("x y")])),
            ("b", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ]);
        let out = format_all(json!({ "quote_style": "never" }), safe.schema(), &[safe]).unwrap();
        assert_eq!(out, "a,b\n007,1\nx y,2\n");
        for bad in ["a,b", "q\"", "line\nbreak", "cr\r"] {
            let batch = batch_of_text(&["fine", bad]);
            let err = format_all(json!({ "quote_style": "never" }), batch.schema(), &[batch])
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad:?}");
            assert!(
                err.message.contains("row 2, column \"v\""),
                "{}",
                err.message
            );
            assert!(err.message.contains("necessary"), "{}", err.message);
        }
        // With another delimiter, a comma is safe.
        let batch = batch_of_text(&["a,b"]);
        let out = format_all(
            json!({ "quote_style": "never", "delimiter": ";" }),
            batch.schema(),
            &[batch],
        )
        .unwrap();
        assert_eq!(out, "v\na,b\n");
    }

    #[test]
    fn bom_starts_the_file_once() {
        let first = batch_of_text(&["é"]);
        let second = batch_of_text(&["ü"]);
        let out = format_all(json!({ "bom": true }), first.schema(), &[first, second]).unwrap();
        assert_eq!(out, "\u{feff}v\né\nü\n");
        let schema = batch_of_text(&[]).schema();
        assert_eq!(
            format_all(json!({ "bom": true }), schema.clone(), &[]).unwrap(),
            "\u{feff}v\n"
        );
        assert_eq!(
            format_all(json!({ "bom": true, "header": false }), schema.clone(), &[]).unwrap(),
            "\u{feff}"
        );
        assert_eq!(format_all(json!({}), schema, &[]).unwrap(), "v\n");
    }

    #[test]
    fn formula_guard_prefixes_formulas_but_not_signed_numbers() {
        let cases = [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+1", "+1"),
            ("-1.5", "-1.5"),
            ("+3", "+3"),
            ("-2e5", "-2e5"),
            ("-.5", "-.5"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("-", "'-"),
            ("+", "'+"),
            ("-1-1", "'-1-1"),
            ("+A1", "'+A1"),
            ("-1.5e", "'-1.5e"),
            ("--1", "'--1"),
            ("007", "007"),
            ("a=b", "a=b"),
            ("", ""),
        ];
        let values: Vec<&str> = cases.iter().map(|(value, _)| *value).collect();
        let values_batch = batch_of_text(&values);
        let out = format_all(
            json!({ "formula_guard": true, "quote_style": "always", "header": false }),
            values_batch.schema(),
            std::slice::from_ref(&values_batch),
        )
        .unwrap();
        let want: String = cases
            .iter()
            .map(|(_, guarded)| format!("\"{guarded}\"\n"))
            .collect();
        assert_eq!(out, want);
        // Off by default: the values go out unchanged.
        let out = format_all(
            json!({ "header": false, "quote_style": "always" }),
            values_batch.schema(),
            &[values_batch],
        )
        .unwrap();
        let want: String = values
            .iter()
            .map(|value| format!("\"{value}\"\n"))
            .collect();
        assert_eq!(out, want);
        // The header is guarded too, and negative numbers of numeric columns are left alone.
        let named = batch(vec![(
            "=name",
            Arc::new(Int64Array::from(vec![-5])) as ArrayRef,
        )]);
        let out = format_all(json!({ "formula_guard": true }), named.schema(), &[named]).unwrap();
        assert_eq!(out, "'=name\n-5\n");
    }

    fn timestamps() -> RecordBatch {
        // 2024-05-01T08:00:00Z and 2024-01-01T00:00:00Z.
        batch(vec![
            (
                "utc",
                Arc::new(
                    TimestampSecondArray::from(vec![1_714_550_400, 1_704_067_200])
                        .with_timezone("UTC"),
                ) as ArrayRef,
            ),
            (
                "naive",
                Arc::new(TimestampMillisecondArray::from(vec![
                    1_714_550_400_250,
                    1_704_067_200_000,
                ])),
            ),
            (
                "text",
                text(&[Some("2024-05-01T08:00:00Z"), Some("2024-01-01 00:00")]),
            ),
        ])
    }

    #[test]
    fn time_zone_renders_timestamps_with_their_offset_and_leaves_text_alone() {
        let batch = timestamps();
        let out = format_all(
            json!({ "time_zone": "Europe/Paris" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert_eq!(
            out,
            "utc,naive,text\n\
             2024-05-01T10:00:00+02:00,2024-05-01T10:00:00.250+02:00,2024-05-01T08:00:00Z\n\
             2024-01-01T01:00:00+01:00,2024-01-01T01:00:00+01:00,2024-01-01 00:00\n"
        );
        let out = format_all(
            json!({ "time_zone": "UTC" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert!(
            out.contains("2024-05-01T08:00:00Z,2024-05-01T08:00:00.250Z,"),
            "{out}"
        );
        // Without the option, timestamps keep their own zone.
        let out = format_all(json!({}), batch.schema(), &[batch]).unwrap();
        assert!(
            out.contains("2024-05-01T08:00:00Z,2024-05-01T08:00:00.250,"),
            "{out}"
        );
    }

    #[test]
    fn options_are_checked() {
        let schema = timestamps().schema();
        for options in [
            json!({ "quote_style": "sometimes" }),
            json!({ "time_zone": "Mars/Olympus" }),
            json!({ "time_zone": "" }),
            json!({ "bom": "yes" }),
            json!({ "formula_guard": 1 }),
            json!({ "guard": true }),
        ] {
            let err = plugin()
                .start_formatter("csv", "{}", &options.to_string(), schema.clone())
                .err()
                .unwrap_or_else(|| panic!("{options} was accepted"));
            assert_eq!(
                err.kind,
                ErrorKind::InvalidInput,
                "{options}: {}",
                err.message
            );
        }
        let defaults = CsvOptions::default();
        assert_eq!(serde_json::from_str::<CsvOptions>("{}").unwrap(), defaults);
        assert_eq!(defaults.quote_style, QuoteStyle::Necessary);
        assert!(!defaults.bom && !defaults.formula_guard && defaults.header);
        assert_eq!(defaults.time_zone, None);
        let schema = export_plugin_api::schemars::schema_for!(CsvOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema.get("required").is_none(), "{schema}");
        let _ = Schema::empty();
        let _ = Field::new("unused", DataType::Timestamp(TimeUnit::Second, None), true);
    }
}
