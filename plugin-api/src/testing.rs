//! Helpers for unit-testing a plugin in-process, without the host.
//!
//! Enable them for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! export-plugin-api = { version = "1", features = ["testing"] }
//! ```
//!
//! The helpers call a [`Plugin`] the way the host does (JSON documents in,
//! batches or bytes out), so a test exercises the same parsing of config,
//! selector and options that a real export does:
//!
//! - [`text_batch`] and [`nullable_text_batch`] build batches from rows of strings;
//! - [`text_columns`] builds one from columns of strings;
//! - [`run_formatter`] runs a formatter over batches and collects the bytes
//!   ([`run_formatter_text`] as a `String`, [`run_formatter_parts`] call by call);
//! - [`run_loader`] runs a loader and collects its batches (checking that each
//!   batch has the declared schema, as the host does), and [`text_rows`] turns
//!   them back into rows of strings for easy assertions;
//! - [`contain_panic`] and [`assert_panic_contained`] run code the way every
//!   entry point of an exported plugin runs: a panic becomes a
//!   [`PluginError`] of kind [`ErrorKind::Panic`];
//! - [`promised_types_batch`] and [`unicode_batch`] are the data
//!   `export-host plugins check` feeds formatters, so a formatter can be
//!   tested against every type this crate promises before it ships.
//!
//! Before shipping, also run the conformance battery on the built library:
//! `export-host plugins check target/release/libNAME.so`.
//!
//! ```
//! use export_plugin_api::testing::{run_formatter, text_batch};
//! use export_plugin_api::PluginBuilder;
//! # use export_plugin_api::{FormatWriter, Formatter, NoConfig, Result};
//! # use export_plugin_api::arrow_array::RecordBatch;
//! # use export_plugin_api::arrow_schema::SchemaRef;
//! # struct Count;
//! # impl Formatter for Count {
//! #     type Config = NoConfig;
//! #     type Options = std::collections::BTreeMap<String, String>;
//! #     const NAME: &'static str = "count";
//! #     const DESCRIPTION: &'static str = "Counts rows";
//! #     const MIME_TYPE: &'static str = "text/plain";
//! #     const EXTENSION: &'static str = "txt";
//! #     fn start(&self, _: NoConfig, _: Self::Options, _: SchemaRef) -> Result<Box<dyn FormatWriter>> {
//! #         Ok(Box::new(Counter(0)))
//! #     }
//! # }
//! # struct Counter(usize);
//! # impl FormatWriter for Counter {
//! #     fn write(&mut self, batch: &RecordBatch, _: &mut Vec<u8>) -> Result<()> { self.0 += batch.num_rows(); Ok(()) }
//! #     fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> { out.extend(format!("{} rows\n", self.0).bytes()); Ok(()) }
//! # }
//! let plugin = PluginBuilder::new("demo", "0.1.0").formatter(Count).build();
//! let batch = text_batch(&["id", "name"], &[&["1", "ada"], &["2", "grace"]]);
//! let bytes = run_formatter(&plugin, "count", "{}", "{}", batch.schema(), &[batch]).unwrap();
//! assert_eq!(bytes, b"2 rows\n");
//! ```

use crate::error::{ErrorKind, PluginError, Result};
use crate::json::json_field;
use crate::loader::Limits;
use crate::plugin::Plugin;
use crate::rows::{Cell, Rows};
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Time64MicrosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Decimal128Array, LargeBinaryArray, LargeStringArray,
    NullArray, PrimitiveArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A batch of nullable `Utf8` columns named `header`, one row per entry of
/// `rows`. Panics when a row is not as wide as the header.
///
/// ```
/// use export_plugin_api::testing::text_batch;
/// let batch = text_batch(&["id", "name"], &[&["1", "ada"]]);
/// assert_eq!((batch.num_rows(), batch.num_columns()), (1, 2));
/// ```
pub fn text_batch(header: &[&str], rows: &[&[&str]]) -> RecordBatch {
    let rows: Vec<Vec<Option<&str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| Some(*cell)).collect())
        .collect();
    let rows: Vec<&[Option<&str>]> = rows.iter().map(Vec::as_slice).collect();
    nullable_text_batch(header, &rows)
}

/// Like [`text_batch`], with `None` for a null cell.
pub fn nullable_text_batch(header: &[&str], rows: &[&[Option<&str>]]) -> RecordBatch {
    for (index, row) in rows.iter().enumerate() {
        assert_eq!(
            row.len(),
            header.len(),
            "row {index} has {} cells but the header names {} columns",
            row.len(),
            header.len()
        );
    }
    let fields: Vec<Field> = header
        .iter()
        .map(|name| Field::new(*name, DataType::Utf8, true))
        .collect();
    let columns: Vec<ArrayRef> = (0..header.len())
        .map(|column| {
            let values: StringArray = rows.iter().map(|row| row[column]).collect();
            Arc::new(values) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .unwrap_or_else(|err| panic!("building a text batch: {err}"))
}

/// A batch of `Utf8` columns given column by column, `None` for a null. As
/// with `RecordBatch::try_from_iter`, a column is nullable when it holds a
/// null. Panics when the columns differ in length.
///
/// ```
/// use export_plugin_api::testing::text_columns;
/// let batch = text_columns(&[("id", vec![Some("1"), Some("2")]), ("name", vec![Some("ada"), None])]);
/// assert_eq!((batch.num_rows(), batch.num_columns()), (2, 2));
/// assert!(!batch.schema().field(0).is_nullable());
/// ```
pub fn text_columns(columns: &[(&str, Vec<Option<&str>>)]) -> RecordBatch {
    RecordBatch::try_from_iter(columns.iter().map(|(name, values)| {
        (
            *name,
            Arc::new(StringArray::from(values.clone())) as ArrayRef,
        )
    }))
    .unwrap_or_else(|err| panic!("building a batch of text columns: {err}"))
}

/// Runs formatter `name` of `plugin` over `batches` (all of `schema`), with
/// `config` and `options` as JSON text, and returns every byte it wrote:
/// what `start`, each `write`, `finish` and `finish_more` produced, in order.
pub fn run_formatter(
    plugin: &Plugin,
    name: &str,
    config: &str,
    options: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>> {
    let mut writer = plugin.start_formatter(name, config, options, schema)?;
    let mut out = Vec::new();
    for batch in batches {
        writer.write(batch, &mut out)?;
    }
    writer.finish(&mut out)?;
    while writer.finish_more(&mut out)? {}
    Ok(out)
}

/// Like [`run_formatter`], with what each call wrote kept apart: one entry
/// per `write` (one per batch), then one for `finish`, then one per
/// `finish_more` that answered `true`. For tests of when bytes are handed
/// over (a streaming format writes as it goes, a zip only at the end).
pub fn run_formatter_parts(
    plugin: &Plugin,
    name: &str,
    config: &str,
    options: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<Vec<u8>>> {
    let mut writer = plugin.start_formatter(name, config, options, schema)?;
    let mut parts = Vec::with_capacity(batches.len() + 1);
    for batch in batches {
        let mut out = Vec::new();
        writer.write(batch, &mut out)?;
        parts.push(out);
    }
    let mut out = Vec::new();
    writer.finish(&mut out)?;
    parts.push(out);
    loop {
        let mut out = Vec::new();
        if !writer.finish_more(&mut out)? {
            break;
        }
        parts.push(out);
    }
    Ok(parts)
}

/// [`run_formatter`] for text formats: the output as a `String`. Panics
/// when the output is not UTF-8.
pub fn run_formatter_text(
    plugin: &Plugin,
    name: &str,
    config: &str,
    options: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<String> {
    let out = run_formatter(plugin, name, config, options, schema, batches)?;
    Ok(String::from_utf8(out)
        .unwrap_or_else(|err| panic!("formatter {name:?} wrote invalid UTF-8: {err}")))
}

/// Runs loader `name` of `plugin` with `config` and `selector` as JSON text
/// and returns its schema and every batch. Like the host, it fails when a
/// batch's schema differs from the one the reader declared.
pub fn run_loader(
    plugin: &Plugin,
    name: &str,
    config: &str,
    selector: &str,
    limits: &Limits,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut reader = plugin.open_loader(name, config, selector, limits)?;
    let schema = reader.schema();
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        if batch.schema_ref() != &schema {
            return Err(PluginError::internal(format!(
                "loader yielded a batch whose schema differs from the one it declared: {} vs {}",
                batch.schema(),
                schema
            )));
        }
        batches.push(batch);
    }
    Ok((schema, batches))
}

/// Every row of `batches` as text, as [`Cell`]'s `Display` shows it, with
/// `None` for a null.
pub fn text_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>> {
    let mut out = Vec::new();
    for batch in batches {
        let rows = Rows::new(batch)?;
        for row in rows.iter() {
            out.push(
                row.cells()
                    .map(|cell| match cell {
                        Cell::Null => None,
                        other => Some(other.to_string()),
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Runs `f` as every entry point of an exported plugin runs: a panic comes
/// back as a [`PluginError`] of kind [`ErrorKind::Panic`] whose message
/// carries the panic's text, instead of unwinding into the caller.
pub fn contain_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(PluginError::new(
            ErrorKind::Panic,
            format!("plugin panicked: {}", panic_text(payload.as_ref())),
        )),
    }
}

/// Asserts that `f` panics and that the panic is contained as an error of
/// kind [`ErrorKind::Panic`]; returns that error so the test can check its
/// message.
///
/// ```
/// use export_plugin_api::testing::assert_panic_contained;
/// let err = assert_panic_contained(|| -> export_plugin_api::Result<()> { panic!("boom") });
/// assert!(err.message.contains("boom"));
/// ```
pub fn assert_panic_contained<T>(f: impl FnOnce() -> Result<T>) -> PluginError {
    match contain_panic(f) {
        Err(err) if err.kind == ErrorKind::Panic => err,
        Err(err) => panic!(
            "expected a panic, got a {} error: {}",
            err.kind, err.message
        ),
        Ok(_) => panic!("expected a panic, but the call succeeded"),
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".to_owned())
}

/// The Arrow types every formatter must write, one `(column name, type)` per
/// entry; see the crate documentation, "Data types". A loader may yield any
/// of them.
pub fn promised_types() -> Vec<(&'static str, DataType)> {
    let utc = Some(Arc::from("+00:00"));
    vec![
        ("null", DataType::Null),
        ("boolean", DataType::Boolean),
        ("int8", DataType::Int8),
        ("int16", DataType::Int16),
        ("int32", DataType::Int32),
        ("int64", DataType::Int64),
        ("uint8", DataType::UInt8),
        ("uint16", DataType::UInt16),
        ("uint32", DataType::UInt32),
        ("uint64", DataType::UInt64),
        ("float32", DataType::Float32),
        ("float64", DataType::Float64),
        ("utf8", DataType::Utf8),
        ("json", DataType::Utf8),
        ("large_utf8", DataType::LargeUtf8),
        ("utf8_view", DataType::Utf8View),
        ("binary", DataType::Binary),
        ("large_binary", DataType::LargeBinary),
        ("date32", DataType::Date32),
        ("date64", DataType::Date64),
        ("time64_us", DataType::Time64(TimeUnit::Microsecond)),
        ("timestamp_s", DataType::Timestamp(TimeUnit::Second, None)),
        (
            "timestamp_ms",
            DataType::Timestamp(TimeUnit::Millisecond, None),
        ),
        (
            "timestamp_us_offset",
            DataType::Timestamp(TimeUnit::Microsecond, utc),
        ),
        (
            "timestamp_ns",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
        ),
        // What the sql loader emits for `timestamp` and `timestamptz`.
        (
            "timestamp_us",
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        (
            "timestamp_us_utc",
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
        ),
        (
            "timestamp_us_zone",
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("Europe/Paris"))),
        ),
        ("decimal128", DataType::Decimal128(20, 4)),
        // PostgreSQL `numeric`, as the sql loader emits it: exact decimal text.
        ("decimal_text", DataType::Utf8),
        // PostgreSQL arrays, as the sql loader emits them: JSON text.
        ("json_list", DataType::Utf8),
    ]
}

/// One column of every promised type ([`promised_types`]): row 0 holds
/// ordinary values, row 1 awkward ones (extremes, NaN, empty text), and row
/// 2 is null in every column. The `json` and `json_list` columns are tagged
/// `arrow.json`.
pub fn promised_types_batch() -> RecordBatch {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (name, data_type) in promised_types() {
        let column = sample_column(name, &data_type);
        fields.push(if name == "json" || name == "json_list" {
            json_field(name)
        } else {
            Field::new(name, data_type, true)
        });
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .unwrap_or_else(|err| panic!("building the promised-types batch: {err}"))
}

fn sample_column(name: &str, data_type: &DataType) -> ArrayRef {
    fn prim<T: arrow_array::ArrowPrimitiveType>(a: T::Native, b: T::Native) -> ArrayRef {
        Arc::new(
            [Some(a), Some(b), None]
                .into_iter()
                .collect::<PrimitiveArray<T>>(),
        )
    }
    match data_type {
        DataType::Null => Arc::new(NullArray::new(3)),
        DataType::Boolean => Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        DataType::Int8 => prim::<Int8Type>(7, i8::MIN),
        DataType::Int16 => prim::<Int16Type>(-7, i16::MAX),
        DataType::Int32 => prim::<Int32Type>(42, i32::MIN),
        DataType::Int64 => prim::<Int64Type>(-42, i64::MAX),
        DataType::UInt8 => prim::<UInt8Type>(0, u8::MAX),
        DataType::UInt16 => prim::<UInt16Type>(1, u16::MAX),
        DataType::UInt32 => prim::<UInt32Type>(2, u32::MAX),
        DataType::UInt64 => prim::<UInt64Type>(3, u64::MAX),
        DataType::Float32 => prim::<Float32Type>(1.5, f32::NAN),
        DataType::Float64 => prim::<Float64Type>(-0.25, f64::INFINITY),
        DataType::Utf8 if name == "json" => Arc::new(StringArray::from(vec![
            Some(r#"{"a":[1,2.50,null]}"#),
            Some(r#""quoted \"text\"""#),
            None,
        ])),
        DataType::Utf8 if name == "json_list" => Arc::new(StringArray::from(vec![
            Some(r#"[1,2,3]"#),
            Some(r#"["a",null,"c,d"]"#),
            None,
        ])),
        DataType::Utf8 if name == "decimal_text" => Arc::new(StringArray::from(vec![
            Some("12345678901234567890.000100"),
            Some("-0.00"),
            None,
        ])),
        DataType::Utf8 => Arc::new(StringArray::from(vec![Some("plain"), Some(""), None])),
        DataType::LargeUtf8 => Arc::new(LargeStringArray::from(vec![
            Some("large"),
            Some("a,b\n\"c\""),
            None,
        ])),
        DataType::Utf8View => Arc::new(StringViewArray::from(vec![
            Some("view"),
            Some("a longer view value that is not inlined"),
            None,
        ])),
        DataType::Binary => Arc::new(BinaryArray::from(vec![
            Some(&b"\x00\x01\xff"[..]),
            Some(&b""[..]),
            None,
        ])),
        DataType::LargeBinary => Arc::new(LargeBinaryArray::from(vec![
            Some(&b"large"[..]),
            Some(&b"\xfe"[..]),
            None,
        ])),
        DataType::Date32 => prim::<Date32Type>(19_844, 0),
        DataType::Date64 => prim::<Date64Type>(1_714_550_400_000, -86_400_000),
        DataType::Time64(_) => prim::<Time64MicrosecondType>(36_000_000_000, 86_399_999_999),
        DataType::Timestamp(TimeUnit::Second, _) => prim::<TimestampSecondType>(1_714_557_600, 0),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            prim::<TimestampMillisecondType>(1_714_557_600_123, -1)
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
            PrimitiveArray::<TimestampMicrosecondType>::from(vec![
                Some(1_714_557_600_123_456),
                Some(0),
                None,
            ])
            .with_timezone_opt(tz.clone()),
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            prim::<TimestampNanosecondType>(1_714_557_600_123_456_789, 1)
        }
        DataType::Decimal128(precision, scale) => Arc::new(
            Decimal128Array::from(vec![Some(12_345_678), Some(-1), None])
                .with_precision_and_scale(*precision, *scale)
                .unwrap_or_else(|err| panic!("decimal sample: {err}")),
        ),
        other => panic!("no sample for promised type {other}"),
    }
}

/// Text every formatter must carry through unchanged, one value per row of a
/// `Utf8` column `text`: scripts, emoji with modifiers, combining marks,
/// right-to-left text, quotes, separators and line breaks.
pub const UNICODE_SAMPLES: &[&str] = &[
    "héllo wörld",
    "你好，世界",
    "👋🏽 👩‍👩‍👧 🇺🇦",
    "e\u{301} (combining acute)",
    "مرحبا بالعالم",
    "Ελληνικά Кириллица",
    "tab\tcomma, \"quote\" pipe| semicolon;",
    "line\nbreak and\r\nCRLF",
];

/// [`UNICODE_SAMPLES`] as a one-column batch (`text`, `Utf8`).
pub fn unicode_batch() -> RecordBatch {
    text_batch(
        &["text"],
        &UNICODE_SAMPLES
            .iter()
            .map(std::slice::from_ref)
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FormatWriter, Formatter, IterReader, Loader, NoConfig, PluginBuilder};
    use serde::Deserialize;

    struct Echo;

    #[derive(Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct EchoSelector {
        words: Vec<String>,
    }

    impl Loader for Echo {
        type Config = NoConfig;
        type Selector = EchoSelector;
        const NAME: &'static str = "echo";
        const DESCRIPTION: &'static str = "The selector's words";
        fn open(
            &self,
            _: NoConfig,
            selector: EchoSelector,
            _: &Limits,
        ) -> Result<Box<dyn crate::BatchReader>> {
            let words: Vec<&str> = selector.words.iter().map(String::as_str).collect();
            let rows: Vec<&[&str]> = words.iter().map(std::slice::from_ref).collect();
            let batch = text_batch(&["word"], &rows);
            Ok(Box::new(IterReader::new(
                batch.schema(),
                std::iter::once(Ok(batch)),
            )))
        }
    }

    struct Lines;

    #[derive(Deserialize, schemars::JsonSchema, Default)]
    #[serde(deny_unknown_fields, default)]
    struct LinesOptions {
        panic: bool,
    }

    impl Formatter for Lines {
        type Config = NoConfig;
        type Options = LinesOptions;
        const NAME: &'static str = "lines";
        const DESCRIPTION: &'static str = "One line per row";
        const MIME_TYPE: &'static str = "text/plain";
        const EXTENSION: &'static str = "txt";
        fn start(
            &self,
            _: NoConfig,
            options: LinesOptions,
            _: SchemaRef,
        ) -> Result<Box<dyn FormatWriter>> {
            Ok(Box::new(LinesWriter(options.panic)))
        }
    }

    struct LinesWriter(bool);

    impl FormatWriter for LinesWriter {
        fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
            assert!(!self.0, "asked to panic");
            for row in Rows::new(batch)?.iter() {
                let cells: Vec<String> = row.cells().map(|c| c.to_string()).collect();
                out.extend_from_slice(cells.join(",").as_bytes());
                out.push(b'\n');
            }
            Ok(())
        }
        fn finish(&mut self, _: &mut Vec<u8>) -> Result<()> {
            Ok(())
        }
    }

    fn plugin() -> Plugin {
        PluginBuilder::new("t", "0.1.0")
            .loader(Echo)
            .formatter(Lines)
            .build()
    }

    #[test]
    fn batches_from_rows_of_strings_keep_nulls() {
        let batch = nullable_text_batch(&["a", "b"], &[&[Some("x"), None]]);
        assert_eq!(
            text_rows(&[batch]).unwrap(),
            vec![vec![Some("x".to_owned()), None]]
        );
    }

    #[test]
    #[should_panic(expected = "row 0 has 1 cells but the header names 2 columns")]
    fn a_short_row_is_a_clear_panic() {
        text_batch(&["a", "b"], &[&["x"]]);
    }

    #[test]
    fn loader_then_formatter() {
        let (schema, batches) = run_loader(
            &plugin(),
            "echo",
            "{}",
            r#"{"words":["a","b"]}"#,
            &Limits::default(),
        )
        .unwrap();
        let out = run_formatter(&plugin(), "lines", "{}", "{}", schema, &batches).unwrap();
        assert_eq!(out, b"a\nb\n");
    }

    #[test]
    fn options_are_parsed_as_the_host_passes_them() {
        let err = run_formatter(
            &plugin(),
            "lines",
            "{}",
            r#"{"pnic":true}"#,
            unicode_batch().schema(),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("pnic"), "{}", err.message);
    }

    #[test]
    fn parts_come_call_by_call() {
        let batch = text_columns(&[("word", vec![Some("a"), Some("b")])]);
        let parts = run_formatter_parts(
            &plugin(),
            "lines",
            "{}",
            "{}",
            batch.schema(),
            &[batch.clone(), batch.clone()],
        )
        .unwrap();
        assert_eq!(parts, [b"a\nb\n".to_vec(), b"a\nb\n".to_vec(), Vec::new()]);
        let text =
            run_formatter_text(&plugin(), "lines", "{}", "{}", batch.schema(), &[batch]).unwrap();
        assert_eq!(text, "a\nb\n");
    }

    #[test]
    fn a_panic_is_contained() {
        let batch = unicode_batch();
        let err = assert_panic_contained(|| {
            run_formatter(
                &plugin(),
                "lines",
                "{}",
                r#"{"panic":true}"#,
                batch.schema(),
                std::slice::from_ref(&batch),
            )
        });
        assert!(err.message.contains("asked to panic"), "{}", err.message);
    }

    #[test]
    fn promised_types_render_as_rows() {
        let batch = promised_types_batch();
        assert_eq!(batch.num_columns(), promised_types().len());
        let rows = text_rows(std::slice::from_ref(&batch)).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[2].iter().all(Option::is_none), "{:?}", rows[2]);
        let unicode = text_rows(&[unicode_batch()]).unwrap();
        assert_eq!(unicode.len(), UNICODE_SAMPLES.len());
    }
}
