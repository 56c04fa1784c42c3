//! The data the battery feeds formatters.
//!
//! The promised types and the Unicode samples are the same as those of
//! `export_plugin_api::testing` (behind plugin-api's `testing` feature), so an
//! author's unit tests and this battery agree on what a formatter must write.

use export_plugin_api::arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Time64MicrosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use export_plugin_api::arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Decimal128Array, Float64Array, Int64Array,
    LargeBinaryArray, LargeStringArray, NullArray, PrimitiveArray, RecordBatch, StringArray,
    StringViewArray,
};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use export_plugin_api::json::json_field;
use std::sync::Arc;

/// A one-row batch of everyday columns.
pub fn one_row() -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1])),
        Arc::new(StringArray::from(vec!["ada"])),
        Arc::new(Float64Array::from(vec![1.5])),
        Arc::new(BooleanArray::from(vec![true])),
    ];
    RecordBatch::try_new(everyday_schema(), columns)
        .unwrap_or_else(|err| panic!("building the one-row batch: {err}"))
}

/// `id` Int64, `name` Utf8, `amount` Float64, `flag` Boolean.
pub fn everyday_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
    ]))
}

/// The schema of [`stream_batch`].
pub fn stream_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// Rows `first..first + rows` of the flat-memory stream: about 90 bytes of
/// text per row, so a formatter that keeps every row is caught.
pub fn stream_batch(first: usize, rows: usize) -> RecordBatch {
    let ids: Int64Array = (first..first + rows).map(|n| n as i64).collect();
    let names: StringArray = (first..first + rows)
        .map(|n| Some(format!("customer {n:08}")))
        .collect();
    let amounts: Float64Array = (first..first + rows)
        .map(|n| Some(n as f64 * 0.25))
        .collect();
    let notes: StringArray = (first..first + rows)
        .map(|n| {
            (!n.is_multiple_of(10))
                .then(|| format!("order {n} shipped, \"fragile\" ✓ — {}", n % 997))
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(names),
        Arc::new(amounts),
        Arc::new(notes),
    ];
    RecordBatch::try_new(stream_schema(), columns)
        .unwrap_or_else(|err| panic!("building a stream batch: {err}"))
}

/// A batch of `schema` whose every value is null, `rows` long.
pub fn all_nulls(schema: &SchemaRef, rows: usize) -> RecordBatch {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| export_plugin_api::arrow_array::new_null_array(field.data_type(), rows))
        .collect();
    RecordBatch::try_new(schema.clone(), columns)
        .unwrap_or_else(|err| panic!("building an all-null batch: {err}"))
}

/// The Arrow types every formatter must write, one `(column name, type)` per
/// entry; the same list as `export_plugin_api::testing::promised_types` and the "Data types" table of plugin-api's documentation. A loader may yield any
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
        ("decimal128", DataType::Decimal128(20, 4)),
    ]
}

/// One column of every promised type ([`promised_types`]): row 0 holds
/// ordinary values, row 1 awkward ones (extremes, NaN, empty text), and row
/// 2 is null in every column. The `json` column is tagged `arrow.json`.
pub fn promised_types_batch() -> RecordBatch {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (name, data_type) in promised_types() {
        let column = sample_column(name, &data_type);
        fields.push(if name == "json" {
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
    fn prim<T: export_plugin_api::arrow_array::ArrowPrimitiveType>(
        a: T::Native,
        b: T::Native,
    ) -> ArrayRef {
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
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let column: ArrayRef = Arc::new(StringArray::from(UNICODE_SAMPLES.to_vec()));
    RecordBatch::try_new(schema, vec![column])
        .unwrap_or_else(|err| panic!("building the Unicode batch: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_build() {
        let batch = promised_types_batch();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.num_columns(), promised_types().len());
        assert_eq!(unicode_batch().num_rows(), UNICODE_SAMPLES.len());
        assert_eq!(stream_batch(10, 5).num_rows(), 5);
        let nulls = all_nulls(&batch.schema(), 2);
        assert!(nulls.columns().iter().all(|c| c.logical_null_count() == 2));
    }
}
