//! Conversion and inference through the public API, as loaders use them.

use super::*;
use crate::ErrorKind;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use std::collections::BTreeMap;
use std::sync::Arc;

fn batch(columns: &[(&str, Vec<Option<&str>>)]) -> RecordBatch {
    RecordBatch::try_from_iter(columns.iter().map(|(name, values)| {
        let array: ArrayRef = Arc::new(StringArray::from(values.clone()));
        (*name, array)
    }))
    .unwrap()
}

fn text_batch(columns: &[(&str, &[&str])]) -> RecordBatch {
    let columns: Vec<(&str, Vec<Option<&str>>)> = columns
        .iter()
        .map(|(name, values)| (*name, values.iter().map(|v| Some(*v)).collect()))
        .collect();
    batch(&columns)
}

fn types(pairs: &[(&str, &str)]) -> BTreeMap<String, ColumnType> {
    pairs
        .iter()
        .map(|(name, ty)| ((*name).to_owned(), ty.parse().unwrap()))
        .collect()
}

fn convert(
    batch: &RecordBatch,
    asked: &[(&str, &str)],
    on_error: OnError,
) -> crate::Result<(RecordBatch, Converter)> {
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let resolved = resolve_types(&names, &types(asked), None)?;
    let mut converter = Converter::new(&batch.schema(), resolved, on_error)?;
    let typed = converter.convert(batch, 1)?;
    Ok((typed, converter))
}

#[test]
fn every_type_converts() {
    let input = batch(&[
        ("i", vec![Some("42"), Some("-7"), Some(""), None]),
        ("f", vec![Some("1.5"), Some("-2e3"), Some(""), Some("NaN")]),
        ("b", vec![Some("true"), Some("FALSE"), None, Some("")]),
        (
            "d",
            vec![Some("2024-05-01"), Some("1970-01-01"), Some(""), None],
        ),
        (
            "t",
            vec![
                Some("2024-05-01T10:00:00+02:00"),
                Some("1970-01-01T00:00:00.5Z"),
                Some(""),
                None,
            ],
        ),
        ("m", vec![Some("12.5"), Some("-0.01"), Some(""), Some("7")]),
        ("s", vec![Some(" as is "), Some(""), None, Some("x")]),
    ]);
    let (typed, converter) = convert(
        &input,
        &[
            ("i", "int64"),
            ("f", "float64"),
            ("b", "bool"),
            ("d", "date"),
            ("t", "timestamp"),
            ("m", "decimal(6,2)"),
            ("s", "text"),
        ],
        OnError::Fail,
    )
    .unwrap();
    assert!(converter.notes().is_none());
    let schema = typed.schema();
    let data_types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
    assert_eq!(
        data_types,
        [
            &DataType::Int64,
            &DataType::Float64,
            &DataType::Boolean,
            &DataType::Date32,
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            &DataType::Decimal128(6, 2),
            &DataType::Utf8,
        ]
    );
    assert!(schema.fields()[..6].iter().all(|f| f.is_nullable()));

    let i = typed.column(0).as_primitive::<Int64Type>();
    assert_eq!((i.value(0), i.value(1), i.null_count()), (42, -7, 2));
    let f = typed.column(1).as_primitive::<Float64Type>();
    assert_eq!((f.value(0), f.value(1), f.null_count()), (1.5, -2000.0, 1));
    assert!(f.value(3).is_nan());
    let b = typed.column(2).as_boolean();
    assert_eq!((b.value(0), b.value(1), b.null_count()), (true, false, 2));
    let d = typed.column(3).as_primitive::<Date32Type>();
    assert_eq!((d.value(0), d.value(1), d.null_count()), (19_844, 0, 2));
    let t = typed.column(4).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        (t.value(0), t.value(1), t.null_count()),
        (1_714_550_400_000_000, 500_000, 2)
    );
    let m = typed.column(5).as_primitive::<Decimal128Type>();
    assert_eq!(
        (m.value(0), m.value(1), m.value(3), m.null_count()),
        (1250, -1, 700, 1)
    );
    assert_eq!(m.value_as_string(0), "12.50");
    // Text passes through: the same array, empty strings and nulls as they were.
    assert_eq!(typed.column(6).as_ref(), input.column(6).as_ref());
}

#[test]
fn a_bad_value_names_row_column_and_value() {
    let input = text_batch(&[("id", &["1", "2", "3"]), ("price", &["1.5", "2", "12,5"])]);
    let names = ["id", "price"];
    let resolved = resolve_types(&names, &types(&[("price", "float64")]), None).unwrap();
    let mut converter = Converter::new(&input.schema(), resolved, OnError::Fail).unwrap();
    let err = converter.convert(&input, 15).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message
            .starts_with(r#"row 17, column "price": "12,5" is not a float64; "#),
        "{}",
        err.message
    );
    assert!(err.message.contains("on_error"), "{}", err.message);

    let located = converter.convert_or_locate(&input, 15).unwrap_err();
    assert_eq!((located.index, located.row), (2, 17));
    let err = located.at("\"prices.csv\", line 20 (row 17)");
    assert!(
        err.message.starts_with(
            r#""prices.csv", line 20 (row 17), column "price": "12,5" is not a float64; "#
        ),
        "{}",
        err.message
    );

    // Long values are cut; details say why a number-like value is refused.
    let long = "x".repeat(500);
    let cases: Vec<(&str, &str, &str)> = vec![
        ("int64", "99999999999999999999", "out of the int64 range"),
        ("int64", "007x", "\"007x\" is not an int64"),
        ("float64", "1e400", "out of the float64 range"),
        ("bool", "yes", "\"yes\" is not a bool"),
        ("date", "2023-02-29", "\"2023-02-29\" is not a date"),
        ("timestamp", "2024-05-01T10:00:00", "no UTC offset"),
        (
            "timestamp",
            "2024-05-01T10:00:00.0000001Z",
            "below the microsecond",
        ),
        ("decimal(4,2)", "123.4", "before the point"),
        ("decimal(4,2)", "1.234", "after the point"),
        ("decimal(4,2)", "1e2", "is not a decimal(4,2)"),
        (
            "int64",
            &long,
            "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\" is not",
        ),
    ];
    for (ty, value, needle) in cases {
        let input = text_batch(&[("c", &[value])]);
        let err = convert(&input, &[("c", ty)], OnError::Fail).err().unwrap();
        assert!(
            err.message.starts_with("row 1, column \"c\": "),
            "{}",
            err.message
        );
        assert!(
            err.message.contains(needle),
            "{ty} {value}: {}",
            err.message
        );
        assert!(err.message.len() < 400, "{}", err.message);
    }
}

#[test]
fn on_error_null_counts_per_column() {
    let input = text_batch(&[
        ("price", &["1.5", "x", "", "y", "2"]),
        ("n", &["1", "2", "3.0", "4", "5"]),
        ("ok", &["true", "false", "", "true", "true"]),
    ]);
    let asked = [("price", "float64"), ("n", "int64"), ("ok", "bool")];
    let (typed, mut converter) = convert(&input, &asked, OnError::Null).unwrap();
    let price = typed.column(0).as_primitive::<Float64Type>();
    assert_eq!(price.null_count(), 3);
    assert!(price.is_null(1) && price.is_null(3));
    assert_eq!(price.value(4), 2.0);
    assert_eq!(converter.nulled_values(), [("price", 2), ("n", 1)]);
    // Counts add up over batches.
    converter.convert(&input, 6).unwrap();
    let notes = converter.notes().unwrap();
    assert_eq!(
        serde_json::Value::Object(notes),
        serde_json::json!({ "nulled_values": { "price": 4, "n": 2 } })
    );
}

#[test]
fn unknown_columns_in_types_are_named() {
    let err = resolve_types(&["id", "price"], &types(&[("pricee", "int64")]), None).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("\"pricee\""), "{}", err.message);
    assert!(err.message.contains("\"id\", \"price\""), "{}", err.message);
    // Explicit types override inferred ones; the rest is text.
    let resolved = resolve_types(
        &["a", "b", "c"],
        &types(&[("b", "text")]),
        Some(&[ColumnType::Int64, ColumnType::Int64]),
    )
    .unwrap();
    assert_eq!(
        resolved,
        [ColumnType::Int64, ColumnType::Text, ColumnType::Text]
    );
}

#[test]
fn a_non_text_column_cannot_be_converted() {
    let ints: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![1]));
    let input = RecordBatch::try_from_iter([("n", ints)]).unwrap();
    let mut converter =
        Converter::new(&input.schema(), vec![ColumnType::Int64], OnError::Fail).unwrap();
    let err = converter.convert(&input, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(Converter::new(&input.schema(), vec![], OnError::Fail).is_err());
}

/// Every value of a typed column written back as the type writes it.
fn written_back(column: &dyn Array, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(row).to_owned(),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(row).to_string(),
        DataType::Boolean => column.as_boolean().value(row).to_string(),
        DataType::Date32 => column
            .as_primitive::<Date32Type>()
            .value_as_date(row)
            .unwrap()
            .to_string(),
        DataType::Timestamp(..) => {
            let at = column
                .as_primitive::<TimestampMicrosecondType>()
                .value_as_datetime(row)
                .unwrap();
            at.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
        }
        other => panic!("{other}"),
    })
}

#[test]
fn inference_never_loses_a_value() {
    let columns: &[(&str, &[&str], ColumnType)] = &[
        ("zeros", &["00123", "1", "2"], ColumnType::Text),
        ("seven", &["007", ""], ColumnType::Text),
        ("minus_zero", &["-0", "1"], ColumnType::Text),
        (
            "twenty_digits",
            &["12345678901234567890", "1"],
            ColumnType::Text,
        ),
        (
            "ints",
            &["1", "-2", "", "9223372036854775807"],
            ColumnType::Int64,
        ),
        ("price", &["1.50", "2.25"], ColumnType::Text),
        ("nan", &["NaN", "1.5"], ColumnType::Text),
        ("neg_zero", &["-0.0", "1.5"], ColumnType::Text),
        ("huge", &["1e400", "1.5"], ColumnType::Text),
        ("pi", &["3.14159265358979323846", "1.5"], ColumnType::Text),
        (
            "floats",
            &["1.5", "0.25", "", "2", "-3"],
            ColumnType::Float64,
        ),
        ("exponent", &["1e5", "2"], ColumnType::Text),
        (
            "utc",
            &[
                "2024-05-01T10:00:00Z",
                "",
                "2024-05-01T10:00:00.123456+00:00",
            ],
            ColumnType::Timestamp,
        ),
        (
            "offsets",
            &["2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00"],
            ColumnType::Text,
        ),
        ("nanos", &["2024-05-01T10:00:00.1234567Z"], ColumnType::Text),
        ("dates", &["2024-05-01", "2024-02-29", ""], ColumnType::Date),
        ("bad_date", &["2024-05-01", "2023-02-29"], ColumnType::Text),
        ("flags", &["true", "", "false"], ColumnType::Bool),
        ("shouty", &["TRUE", "false"], ColumnType::Text),
        ("empty", &["", "", ""], ColumnType::Text),
        ("words", &["a", "1"], ColumnType::Text),
    ];
    let rows = columns
        .iter()
        .map(|(_, values, _)| values.len())
        .max()
        .unwrap();
    let mut inference = Inference::new(columns.len());
    let mut table: Vec<(&str, Vec<Option<&str>>)> = Vec::new();
    for (index, (name, values, _)) in columns.iter().enumerate() {
        let mut cells: Vec<Option<&str>> = values.iter().map(|v| Some(*v)).collect();
        cells.resize(rows, Some(""));
        for value in cells.iter().flatten() {
            inference.feed(index, value);
        }
        table.push((name, cells));
    }
    let guessed = inference.finish();
    for ((name, _, want), got) in columns.iter().zip(&guessed) {
        assert_eq!(got, want, "{name}");
    }

    let input = batch(&table);
    let mut converter = Converter::new(&input.schema(), guessed, OnError::Fail).unwrap();
    let typed = converter.convert(&input, 1).unwrap();
    for (index, (name, cells)) in table.iter().enumerate() {
        for (row, cell) in cells.iter().enumerate() {
            let cell = cell.unwrap();
            let back = written_back(typed.column(index).as_ref(), row);
            let typed_column = typed.column(index).data_type() != &DataType::Utf8;
            match back {
                // Empty cells are nulls in typed columns, and only there.
                None => assert!(typed_column && cell.is_empty(), "{name} row {row}"),
                Some(back)
                    if matches!(typed.column(index).data_type(), DataType::Timestamp(..)) =>
                {
                    // The instant is kept; `+00:00` and `Z` both say UTC.
                    assert_eq!(back, cell.replace("+00:00", "Z"), "{name} row {row}");
                }
                Some(back) => assert_eq!(back, cell, "{name} row {row}"),
            }
        }
    }
}
