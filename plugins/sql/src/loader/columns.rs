//! Result columns: the Arrow type of each, and builders that turn database
//! values into Arrow arrays.
//!
//! Both backends decode a cell into a [`Value`]; a [`ColumnBuilder`] appends
//! it to its column, converting where the conversion loses nothing (an
//! integer into a double column, ISO text into a timestamp) and refusing
//! with a reason otherwise.

use crate::config::ColumnKind;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use export_plugin_api::arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use export_plugin_api::arrow_array::ArrayRef;
use export_plugin_api::arrow_schema::{DataType, Field, TimeUnit};
use export_plugin_api::json::json_field;
use std::borrow::Cow;
use std::sync::Arc;

/// The time zone of every zoned timestamp column.
pub const UTC: &str = "UTC";

impl From<ColumnKind> for ColumnType {
    fn from(kind: ColumnKind) -> ColumnType {
        match kind {
            ColumnKind::Text => ColumnType::Text,
            ColumnKind::Integer => ColumnType::Int64,
            ColumnKind::Number => ColumnType::Float64,
            ColumnKind::Boolean => ColumnType::Boolean,
            ColumnKind::Timestamp => ColumnType::Timestamp,
            ColumnKind::Date => ColumnType::Date,
            ColumnKind::Json => ColumnType::Json,
        }
    }
}

/// The Arrow type of one result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `Boolean`.
    Boolean,
    /// `Int16`.
    Int16,
    /// `Int32`.
    Int32,
    /// `Int64`.
    Int64,
    /// `Float32`.
    Float32,
    /// `Float64`.
    Float64,
    /// `Utf8`.
    Text,
    /// `Utf8` tagged `arrow.json`.
    Json,
    /// `Timestamp(Microsecond, "UTC")`.
    Timestamp,
    /// `Timestamp(Microsecond, None)`: a wall-clock time without a zone.
    LocalTimestamp,
    /// `Date32`.
    Date,
    /// `Time64(Microsecond)`.
    Time,
    /// `Binary`.
    Binary,
}

impl ColumnType {
    /// The Arrow field of a column `name` of this type (always nullable:
    /// databases rarely promise otherwise for a query's result).
    pub fn field(self, name: &str) -> Field {
        let data_type = match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Int16 => DataType::Int16,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Text => DataType::Utf8,
            ColumnType::Json => return json_field(name),
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::LocalTimestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::Date => DataType::Date32,
            ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
            ColumnType::Binary => DataType::Binary,
        };
        Field::new(name, data_type, true)
    }
}

/// One decoded database cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text (also exact decimals and UUIDs, as text).
    Text(Cow<'a, str>),
    /// Raw JSON text.
    Json(Cow<'a, str>),
    /// Bytes.
    Bytes(&'a [u8]),
    /// A boolean.
    Boolean(bool),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Microseconds since the Unix epoch of a wall-clock time without zone.
    LocalTimestamp(i64),
    /// Days since the Unix epoch.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
}

impl Value<'_> {
    /// The column type a value of this kind maps to when the database names none.
    pub fn natural_type(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Null => return None,
            Value::Integer(_) => ColumnType::Int64,
            Value::Real(_) => ColumnType::Float64,
            Value::Text(_) => ColumnType::Text,
            Value::Json(_) => ColumnType::Json,
            Value::Bytes(_) => ColumnType::Binary,
            Value::Boolean(_) => ColumnType::Boolean,
            Value::Timestamp(_) => ColumnType::Timestamp,
            Value::LocalTimestamp(_) => ColumnType::LocalTimestamp,
            Value::Date(_) => ColumnType::Date,
            Value::Time(_) => ColumnType::Time,
        })
    }

    /// The value for a message, cut to a readable length.
    fn describe(&self) -> String {
        let text = match self {
            Value::Null => "NULL".to_owned(),
            Value::Integer(v) => v.to_string(),
            Value::Real(v) => v.to_string(),
            Value::Text(v) | Value::Json(v) => format!("{v:?}"),
            Value::Bytes(v) => format!("{} bytes", v.len()),
            Value::Boolean(v) => v.to_string(),
            Value::Timestamp(v) | Value::LocalTimestamp(v) => format!("timestamp {v} µs"),
            Value::Date(v) => format!("date {v}"),
            Value::Time(v) => format!("time {v} µs"),
        };
        match text.char_indices().nth(80) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        }
    }
}

/// The type a column takes when the database does not say: the one every
/// seen value fits (integers and reals make a number column; any text makes
/// a text column), or text when every value is NULL.
pub fn infer<'v>(values: impl Iterator<Item = &'v Value<'v>>) -> ColumnType {
    let mut inferred: Option<ColumnType> = None;
    for value in values {
        let Some(natural) = value.natural_type() else {
            continue;
        };
        inferred = Some(match (inferred, natural) {
            (None, natural) => natural,
            (Some(seen), natural) if seen == natural => seen,
            (Some(ColumnType::Int64), ColumnType::Float64)
            | (Some(ColumnType::Float64), ColumnType::Int64) => ColumnType::Float64,
            _ => ColumnType::Text,
        });
    }
    inferred.unwrap_or(ColumnType::Text)
}

/// Appends values of one column to an Arrow array of its type.
pub enum ColumnBuilder {
    /// `Boolean`.
    Boolean(BooleanBuilder),
    /// `Int16`.
    Int16(Int16Builder),
    /// `Int32`.
    Int32(Int32Builder),
    /// `Int64`.
    Int64(Int64Builder),
    /// `Float32`.
    Float32(Float32Builder),
    /// `Float64`.
    Float64(Float64Builder),
    /// `Utf8`, plain or JSON.
    Text(StringBuilder, bool),
    /// `Timestamp(µs)`, with or without the UTC zone.
    Timestamp(TimestampMicrosecondBuilder, bool),
    /// `Date32`.
    Date(Date32Builder),
    /// `Time64(µs)`.
    Time(Time64MicrosecondBuilder),
    /// `Binary`.
    Binary(BinaryBuilder),
}

impl ColumnBuilder {
    /// A builder for `rows` values of `column_type`.
    pub fn new(column_type: ColumnType, rows: usize) -> ColumnBuilder {
        match column_type {
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Int16 => ColumnBuilder::Int16(Int16Builder::with_capacity(rows)),
            ColumnType::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(rows)),
            ColumnType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::Text => {
                ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 16), false)
            }
            ColumnType::Json => {
                ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 16), true)
            }
            ColumnType::Timestamp => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC),
                true,
            ),
            ColumnType::LocalTimestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), false)
            }
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(rows)),
            ColumnType::Time => ColumnBuilder::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            ColumnType::Binary => {
                ColumnBuilder::Binary(BinaryBuilder::with_capacity(rows, rows * 16))
            }
        }
    }

    /// Appends `value`, or says why it does not fit this column.
    pub fn append(&mut self, value: &Value<'_>) -> Result<(), String> {
        if matches!(value, Value::Null) {
            self.append_null();
            return Ok(());
        }
        let type_name = self.type_name();
        let misfit = || format!("{} cannot be read as {type_name}", value.describe());
        match self {
            ColumnBuilder::Boolean(b) => b.append_value(to_bool(value).ok_or_else(misfit)?),
            ColumnBuilder::Int16(b) => b.append_value(
                to_i64(value)
                    .and_then(|v| i16::try_from(v).ok())
                    .ok_or_else(misfit)?,
            ),
            ColumnBuilder::Int32(b) => b.append_value(
                to_i64(value)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(misfit)?,
            ),
            ColumnBuilder::Int64(b) => b.append_value(to_i64(value).ok_or_else(misfit)?),
            // A double column that receives a double keeps every bit; a
            // float4 column only ever receives float4 values.
            ColumnBuilder::Float32(b) => b.append_value(to_f64(value).ok_or_else(misfit)? as f32),
            ColumnBuilder::Float64(b) => b.append_value(to_f64(value).ok_or_else(misfit)?),
            ColumnBuilder::Text(b, json) => {
                let text = if *json {
                    to_json(value)
                } else {
                    to_text(value)
                };
                b.append_value(text.ok_or_else(misfit)?)
            }
            ColumnBuilder::Timestamp(b, zoned) => {
                b.append_value(to_timestamp(value, *zoned).ok_or_else(misfit)?)
            }
            ColumnBuilder::Date(b) => b.append_value(to_date(value).ok_or_else(misfit)?),
            ColumnBuilder::Time(b) => b.append_value(to_time(value).ok_or_else(misfit)?),
            ColumnBuilder::Binary(b) => match value {
                Value::Bytes(bytes) => b.append_value(bytes),
                Value::Text(text) | Value::Json(text) => b.append_value(text.as_bytes()),
                _ => return Err(misfit()),
            },
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Text(b, _) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            ColumnBuilder::Boolean(_) => "a boolean",
            ColumnBuilder::Int16(_) => "a 16-bit integer",
            ColumnBuilder::Int32(_) => "a 32-bit integer",
            ColumnBuilder::Int64(_) => "an integer",
            ColumnBuilder::Float32(_) | ColumnBuilder::Float64(_) => "a number",
            ColumnBuilder::Text(_, false) => "text",
            ColumnBuilder::Text(_, true) => "JSON",
            ColumnBuilder::Timestamp(_, true) => "a timestamp",
            ColumnBuilder::Timestamp(_, false) => "a timestamp without time zone",
            ColumnBuilder::Date(_) => "a date",
            ColumnBuilder::Time(_) => "a time",
            ColumnBuilder::Binary(_) => "bytes",
        }
    }

    /// The finished array.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b, _) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, _) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish()),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
        }
    }
}

fn to_bool(value: &Value<'_>) -> Option<bool> {
    match value {
        Value::Boolean(v) => Some(*v),
        Value::Integer(0) => Some(false),
        Value::Integer(1) => Some(true),
        Value::Text(text) => match text.as_ref() {
            "true" | "t" | "1" => Some(true),
            "false" | "f" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Largest magnitude below which every integer is exact in a double.
const EXACT_IN_F64: f64 = 9_007_199_254_740_992.0;

fn to_i64(value: &Value<'_>) -> Option<i64> {
    match value {
        Value::Integer(v) => Some(*v),
        Value::Real(v) if v.fract() == 0.0 && v.abs() <= EXACT_IN_F64 => Some(*v as i64),
        Value::Boolean(v) => Some(i64::from(*v)),
        Value::Text(text) => text.parse().ok(),
        _ => None,
    }
}

fn to_f64(value: &Value<'_>) -> Option<f64> {
    match value {
        Value::Real(v) => Some(*v),
        Value::Integer(v) if (*v as f64).abs() <= EXACT_IN_F64 => Some(*v as f64),
        Value::Text(text) => text.parse().ok(),
        _ => None,
    }
}

fn to_text<'v>(value: &'v Value<'v>) -> Option<Cow<'v, str>> {
    Some(match value {
        Value::Text(text) | Value::Json(text) => Cow::Borrowed(text.as_ref()),
        Value::Integer(v) => Cow::Owned(itoa::Buffer::new().format(*v).to_owned()),
        Value::Real(v) => Cow::Owned(format_real(*v)),
        Value::Boolean(v) => Cow::Borrowed(if *v { "true" } else { "false" }),
        Value::Bytes(bytes) => Cow::Borrowed(std::str::from_utf8(bytes).ok()?),
        Value::Timestamp(us) => Cow::Owned(
            DateTime::from_timestamp_micros(*us)?
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ),
        Value::LocalTimestamp(us) => Cow::Owned(
            DateTime::from_timestamp_micros(*us)?
                .naive_utc()
                .format("%Y-%m-%dT%H:%M:%S%.f")
                .to_string(),
        ),
        Value::Date(days) => Cow::Owned(date_from_days(*days)?.format("%Y-%m-%d").to_string()),
        Value::Time(us) => Cow::Owned(time_from_micros(*us)?.format("%H:%M:%S%.f").to_string()),
        Value::Null => return None,
    })
}

fn to_json<'v>(value: &'v Value<'v>) -> Option<Cow<'v, str>> {
    match value {
        Value::Json(text) | Value::Text(text) => Some(Cow::Borrowed(text.as_ref())),
        Value::Integer(_) | Value::Boolean(_) => to_text(value),
        Value::Real(v) if v.is_finite() => to_text(value),
        _ => None,
    }
}

/// The shortest text that reads back as the same double.
fn format_real(value: f64) -> String {
    if value.is_finite() {
        ryu::Buffer::new().format_finite(value).to_owned()
    } else if value.is_nan() {
        "NaN".to_owned()
    } else if value > 0.0 {
        "Infinity".to_owned()
    } else {
        "-Infinity".to_owned()
    }
}

fn to_timestamp(value: &Value<'_>, zoned: bool) -> Option<i64> {
    match value {
        Value::Timestamp(us) | Value::LocalTimestamp(us) => Some(*us),
        Value::Date(days) => i64::from(*days).checked_mul(86_400_000_000),
        Value::Integer(seconds) => seconds.checked_mul(1_000_000),
        Value::Text(text) => parse_timestamp(text, zoned),
        _ => None,
    }
}

/// Microseconds since the epoch of an ISO 8601 / RFC 3339 text: with an
/// offset (converted to UTC), or without one (read as UTC, or as wall-clock
/// time for a column without a zone). A `T` or a space may separate the date
/// and the time; a bare date is midnight.
pub fn parse_timestamp(text: &str, zoned: bool) -> Option<i64> {
    let text = text.trim();
    if zoned {
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f%:z",
            "%Y-%m-%d %H:%M:%S%.f%:z",
            "%Y-%m-%dT%H:%M:%S%.f%#z",
            "%Y-%m-%d %H:%M:%S%.f%#z",
        ] {
            if let Ok(time) = DateTime::parse_from_str(text, format) {
                return Some(time.timestamp_micros());
            }
        }
        if let Some(naive) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
            return parse_naive(naive);
        }
    }
    parse_naive(text)
}

fn parse_naive(text: &str) -> Option<i64> {
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|date| date.and_time(NaiveTime::MIN).and_utc().timestamp_micros())
}

fn to_date(value: &Value<'_>) -> Option<i32> {
    match value {
        Value::Date(days) => Some(*days),
        Value::Text(text) => {
            let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
            days_from_date(date)
        }
        _ => None,
    }
}

fn to_time(value: &Value<'_>) -> Option<i64> {
    match value {
        Value::Time(us) => Some(*us),
        Value::Text(text) => {
            let time = NaiveTime::parse_from_str(text.trim(), "%H:%M:%S%.f")
                .or_else(|_| NaiveTime::parse_from_str(text.trim(), "%H:%M"))
                .ok()?;
            Some(micros_of_day(time))
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of `date`.
pub fn days_from_date(date: NaiveDate) -> Option<i32> {
    i32::try_from((date - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days()).ok()
}

fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
}

/// Microseconds since midnight of `time`.
pub fn micros_of_day(time: NaiveTime) -> i64 {
    i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1_000)
}

fn time_from_micros(us: i64) -> Option<NaiveTime> {
    let seconds = u32::try_from(us.div_euclid(1_000_000)).ok()?;
    let nanos = u32::try_from(us.rem_euclid(1_000_000) * 1_000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::arrow_array::types::{
        Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    };
    use export_plugin_api::arrow_array::Array;
    use export_plugin_api::json::is_json_field;

    fn text(s: &str) -> Value<'_> {
        Value::Text(Cow::Borrowed(s))
    }

    #[test]
    fn fields_have_the_mapped_arrow_types() {
        assert_eq!(
            ColumnType::Timestamp.field("t").data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(ColumnType::Date.field("d").data_type(), &DataType::Date32);
        assert_eq!(ColumnType::Int16.field("i").data_type(), &DataType::Int16);
        let json = ColumnType::Json.field("j");
        assert_eq!(json.data_type(), &DataType::Utf8);
        assert!(is_json_field(&json));
        assert!(!is_json_field(&ColumnType::Text.field("t")));
        assert!(ColumnType::Text.field("t").is_nullable());
    }

    #[test]
    fn declared_kinds_map_to_types() {
        let kinds: std::collections::BTreeMap<String, ColumnKind> = serde_json::from_value(
            serde_json::json!({"a": "text", "b": "integer", "c": "number", "d": "boolean",
                               "e": "timestamp", "f": "date", "g": "json"}),
        )
        .unwrap();
        let types: Vec<ColumnType> = kinds.values().map(|&k| k.into()).collect();
        assert_eq!(
            types,
            [
                ColumnType::Text,
                ColumnType::Int64,
                ColumnType::Float64,
                ColumnType::Boolean,
                ColumnType::Timestamp,
                ColumnType::Date,
                ColumnType::Json
            ]
        );
        assert!(serde_json::from_str::<ColumnKind>("\"varchar\"").is_err());
    }

    #[test]
    fn inference_widens_to_what_every_value_fits() {
        let i = Value::Integer(1);
        let r = Value::Real(0.5);
        let t = text("x");
        assert_eq!(infer([&Value::Null, &i].into_iter()), ColumnType::Int64);
        assert_eq!(
            infer([&i, &r, &Value::Null].into_iter()),
            ColumnType::Float64
        );
        assert_eq!(infer([&i, &t].into_iter()), ColumnType::Text);
        assert_eq!(infer([&Value::Null].into_iter()), ColumnType::Text);
        assert_eq!(infer(std::iter::empty()), ColumnType::Text);
    }

    #[test]
    fn integers_convert_only_without_loss() {
        let mut b = ColumnBuilder::new(ColumnType::Int64, 4);
        b.append(&Value::Integer(i64::MAX)).unwrap();
        b.append(&Value::Real(3.0)).unwrap();
        b.append(&text("-7")).unwrap();
        b.append(&Value::Null).unwrap();
        let err = b.append(&Value::Real(2.5)).unwrap_err();
        assert_eq!(err, "2.5 cannot be read as an integer");
        assert!(b.append(&text("12x")).is_err());
        let array = b.finish();
        let ints = array.as_primitive::<Int64Type>();
        assert_eq!(ints.values(), &[i64::MAX, 3, -7, 0]);
        assert!(ints.is_null(3));

        let mut b = ColumnBuilder::new(ColumnType::Int32, 1);
        assert!(b.append(&Value::Integer(i64::from(i32::MAX) + 1)).is_err());
        b.append(&Value::Integer(-5)).unwrap();
        assert_eq!(b.finish().as_primitive::<Int32Type>().value(0), -5);
    }

    #[test]
    fn numbers_take_integers_and_reals() {
        let mut b = ColumnBuilder::new(ColumnType::Float64, 3);
        b.append(&Value::Integer(2)).unwrap();
        b.append(&Value::Real(0.1)).unwrap();
        assert!(b.append(&Value::Boolean(true)).is_err());
        let array = b.finish();
        assert_eq!(array.as_primitive::<Float64Type>().values(), &[2.0, 0.1]);
    }

    #[test]
    fn text_keeps_every_digit_and_spells_numbers_shortest() {
        let mut b = ColumnBuilder::new(ColumnType::Text, 4);
        b.append(&text("12345678901234567890.000100")).unwrap();
        b.append(&Value::Real(0.1)).unwrap();
        b.append(&Value::Integer(-3)).unwrap();
        b.append(&Value::Timestamp(1_714_557_600_123_000)).unwrap();
        b.append(&Value::Date(19_844)).unwrap();
        let array = b.finish();
        let strings = array.as_string::<i32>();
        assert_eq!(strings.value(0), "12345678901234567890.000100");
        assert_eq!(strings.value(1), "0.1");
        assert_eq!(strings.value(2), "-3");
        assert_eq!(strings.value(3), "2024-05-01T10:00:00.123Z");
        assert_eq!(strings.value(4), "2024-05-01");
    }

    #[test]
    fn json_columns_hold_json_text() {
        let mut b = ColumnBuilder::new(ColumnType::Json, 3);
        b.append(&Value::Json(Cow::Borrowed(r#"{"a": [1, 2]}"#)))
            .unwrap();
        b.append(&Value::Integer(5)).unwrap();
        assert!(b.append(&Value::Real(f64::NAN)).is_err());
        let array = b.finish();
        assert_eq!(array.as_string::<i32>().value(0), r#"{"a": [1, 2]}"#);
        assert_eq!(array.as_string::<i32>().value(1), "5");
    }

    #[test]
    fn timestamps_read_iso_text_in_every_common_shape() {
        let want = 1_714_557_600_000_000; // 2024-05-01T10:00:00Z
        for shape in [
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.000Z",
            "2024-05-01 10:00:00",
            "2024-05-01T12:00:00+02:00",
            "2024-05-01 10:00:00+00:00",
            "2024-05-01T10:00",
        ] {
            assert_eq!(parse_timestamp(shape, true), Some(want), "{shape}");
        }
        assert_eq!(
            parse_timestamp("2024-05-01T10:00:00.123456Z", true),
            Some(want + 123_456)
        );
        assert_eq!(
            parse_timestamp("2024-05-01", true),
            Some(want - 36_000_000_000)
        );
        assert_eq!(parse_timestamp("May 1st", true), None);

        let mut b = ColumnBuilder::new(ColumnType::Timestamp, 3);
        b.append(&text("2024-05-01T10:00:00.000Z")).unwrap();
        b.append(&Value::Integer(1_714_557_600)).unwrap();
        let err = b.append(&text("soon")).unwrap_err();
        assert_eq!(err, "\"soon\" cannot be read as a timestamp");
        assert!(b.append(&Value::Real(1.5)).is_err());
        let array = b.finish();
        assert_eq!(
            array.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            array.as_primitive::<TimestampMicrosecondType>().values(),
            &[want, want]
        );
    }

    #[test]
    fn dates_and_times() {
        let mut b = ColumnBuilder::new(ColumnType::Date, 2);
        b.append(&text("2024-05-01")).unwrap();
        b.append(&Value::Date(0)).unwrap();
        assert!(b.append(&text("2024-13-01")).is_err());
        assert_eq!(
            b.finish().as_primitive::<Date32Type>().values(),
            &[19_844, 0]
        );

        let mut b = ColumnBuilder::new(ColumnType::Time, 1);
        b.append(&text("10:30:00.5")).unwrap();
        let array = b.finish();
        assert_eq!(
            array
                .as_primitive::<export_plugin_api::arrow_array::types::Time64MicrosecondType>()
                .value(0),
            37_800_500_000
        );
    }

    #[test]
    fn booleans_take_sqlite_integers() {
        let mut b = ColumnBuilder::new(ColumnType::Boolean, 3);
        b.append(&Value::Integer(1)).unwrap();
        b.append(&Value::Integer(0)).unwrap();
        b.append(&Value::Boolean(true)).unwrap();
        assert!(b.append(&Value::Integer(2)).is_err());
        let array = b.finish();
        let bools = array.as_boolean();
        assert!(bools.value(0) && !bools.value(1) && bools.value(2));
    }
}
