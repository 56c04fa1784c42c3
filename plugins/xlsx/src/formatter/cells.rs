//! From Arrow values to Excel cells: which kind of cell each column gets,
//! and the value of each cell (numbers, booleans, date serials, text).

use arrow_array::cast::AsArray;
use arrow_array::timezone::Tz;
use arrow_array::types::{
    Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{new_empty_array, Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, Offset, TimeZone as _};
use export_plugin_api::arrow_schema::{DataType, Field, TimeUnit};
use export_plugin_api::json::{is_json_field, json_value_text};
use export_plugin_api::time_zone::TimeZone;
use export_plugin_api::{PluginError, Result};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

/// Excel's serial for 1970-01-01 (days since its epoch of 1899-12-30).
const UNIX_EPOCH_SERIAL: f64 = 25_569.0;
/// 1900-03-01: earlier serials are shifted by Excel's 1900 leap-year bug.
const FIRST_SERIAL: f64 = 61.0;
/// The day after 9999-12-31, the last day Excel shows.
const END_SERIAL: f64 = 2_958_466.0;
const SECONDS_PER_DAY: f64 = 86_400.0;
/// Integers up to this magnitude are exact in a double, as Excel stores numbers.
const MAX_EXACT_INTEGER: u64 = 1 << 53;
/// Decimals with up to this many digits are exact enough as doubles (Excel shows 15).
const MAX_NUMERIC_DECIMAL_DIGITS: u8 = 15;

const DISPLAY: FormatOptions<'static> = FormatOptions::new().with_display_error(false);

/// Which number format a date-like cell is shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateStyle {
    /// `yyyy-mm-dd`
    Date,
    /// `yyyy-mm-dd hh:mm:ss`
    DateTime,
    /// `yyyy-mm-dd hh:mm:ss.000`
    DateTimeFraction,
    /// `hh:mm:ss`
    Time,
}

/// The kind of cell a column's values become, fixed by its Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Number,
    Bool,
    Date(DateStyle),
    Text,
    Json,
    Binary,
    /// Arrow's display text (decimals too wide for a double, lists, ...).
    Other,
    /// A decimal narrow enough to be a number.
    Decimal,
}

impl Kind {
    /// The kind for `field`; refuses a type Arrow cannot show as text.
    pub(crate) fn of(field: &Field) -> Result<Kind> {
        let kind = match field.data_type() {
            DataType::Null => Kind::Null,
            DataType::Boolean => Kind::Bool,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64 => Kind::Number,
            DataType::Date32 | DataType::Date64 => Kind::Date(DateStyle::Date),
            DataType::Timestamp(TimeUnit::Second, _) => Kind::Date(DateStyle::DateTime),
            DataType::Timestamp(_, _) => Kind::Date(DateStyle::DateTimeFraction),
            DataType::Time32(_) | DataType::Time64(_) => Kind::Date(DateStyle::Time),
            DataType::Utf8 if is_json_field(field) => Kind::Json,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Kind::Binary,
            DataType::Decimal32(precision, _)
            | DataType::Decimal64(precision, _)
            | DataType::Decimal128(precision, _)
                if *precision <= MAX_NUMERIC_DECIMAL_DIGITS =>
            {
                Kind::Decimal
            }
            _ => Kind::Other,
        };
        // Every kind falls back to Arrow's text for values Excel cannot hold.
        let empty = new_empty_array(field.data_type());
        display(empty.as_ref(), field)?;
        Ok(kind)
    }

    /// About how many characters wide a column of this kind needs to be, if fixed.
    pub(crate) fn fixed_width(self) -> Option<usize> {
        match self {
            Kind::Bool => Some(5),
            Kind::Date(DateStyle::Date) => Some(10),
            Kind::Date(DateStyle::DateTime) => Some(19),
            Kind::Date(DateStyle::DateTimeFraction) => Some(23),
            Kind::Date(DateStyle::Time) => Some(8),
            _ => None,
        }
    }
}

fn display<'a>(array: &'a dyn Array, field: &Field) -> Result<ArrayFormatter<'a>> {
    ArrayFormatter::try_new(array, &DISPLAY).map_err(|err| {
        PluginError::unsupported(format!(
            "column {:?} has type {} which cannot be written to a spreadsheet: {err}",
            field.name(),
            array.data_type()
        ))
    })
}

/// One cell's value.
#[derive(Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Blank,
    Number(f64),
    Bool(bool),
    /// An Excel serial (days since 1899-12-30) shown in a date style.
    Date(f64, DateStyle),
    Text(Cow<'a, str>),
}

/// A column of one batch, ready to give its cells.
pub(crate) struct Column<'a> {
    array: &'a dyn Array,
    kind: Kind,
    /// The zone a timestamp's wall-clock time is shown in: the `time_zone`
    /// option, else the column's own; `None` for naive timestamps.
    zone: Option<Tz>,
    /// Arrow's text, for `Other` and for values Excel cannot hold.
    text: ArrayFormatter<'a>,
}

impl<'a> Column<'a> {
    pub(crate) fn new(
        array: &'a dyn Array,
        field: &Field,
        kind: Kind,
        time_zone: Option<Tz>,
    ) -> Result<Self> {
        let zone = match array.data_type() {
            DataType::Timestamp(_, Some(own)) => Some(match time_zone {
                Some(zone) => zone,
                None => TimeZone::named_or_offset(own)?.tz(),
            }),
            _ => None,
        };
        Ok(Column {
            array,
            kind,
            zone,
            text: display(array, field)?,
        })
    }

    /// Arrow's text for the value at `row`.
    fn display(&self, row: usize) -> Value<'a> {
        let mut text = String::new();
        // Writing into a String cannot fail; an unformattable value stays empty.
        let _ = write!(text, "{}", self.text.value(row));
        Value::Text(Cow::Owned(text))
    }

    /// The value at `row`.
    pub(crate) fn value(&self, row: usize) -> Value<'a> {
        if self.array.is_null(row) {
            return Value::Blank;
        }
        let array = self.array;
        match self.kind {
            Kind::Null => Value::Blank,
            Kind::Bool => Value::Bool(array.as_boolean().value(row)),
            Kind::Number => self.number(row),
            Kind::Decimal => {
                // The display text is the exact decimal; a double of at most
                // 15 digits shows it back unchanged.
                match self.display(row) {
                    Value::Text(text) => match text.parse::<f64>() {
                        Ok(number) if number.is_finite() => Value::Number(number),
                        _ => Value::Text(text),
                    },
                    other => other,
                }
            }
            Kind::Date(style) => match self.serial(row) {
                Some(serial) if style == DateStyle::Time => Value::Date(serial, style),
                Some(serial) if (FIRST_SERIAL..END_SERIAL).contains(&serial) => {
                    Value::Date(serial, style)
                }
                _ => self.display(row),
            },
            Kind::Text => Value::Text(Cow::Borrowed(match array.data_type() {
                DataType::LargeUtf8 => array.as_string::<i64>().value(row),
                DataType::Utf8View => array.as_string_view().value(row),
                _ => array.as_string::<i32>().value(row),
            })),
            Kind::Json => Value::Text(json_value_text(array.as_string::<i32>().value(row))),
            Kind::Binary => {
                let bytes = match array.data_type() {
                    DataType::LargeBinary => array.as_binary::<i64>().value(row),
                    DataType::BinaryView => array.as_binary_view().value(row),
                    _ => array.as_binary::<i32>().value(row),
                };
                let mut text = String::with_capacity(bytes.len() * 2);
                for byte in bytes {
                    let _ = write!(text, "{byte:02x}");
                }
                Value::Text(Cow::Owned(text))
            }
            Kind::Other => self.display(row),
        }
    }

    fn number(&self, row: usize) -> Value<'a> {
        let array = self.array;
        let signed = |value: i64| {
            if value.unsigned_abs() <= MAX_EXACT_INTEGER {
                Value::Number(value as f64)
            } else {
                Value::Text(Cow::Owned(value.to_string()))
            }
        };
        let unsigned = |value: u64| {
            if value <= MAX_EXACT_INTEGER {
                Value::Number(value as f64)
            } else {
                Value::Text(Cow::Owned(value.to_string()))
            }
        };
        let float = |value: f64| {
            if value.is_finite() {
                Value::Number(value)
            } else if value.is_nan() {
                Value::Text(Cow::Borrowed("NaN"))
            } else if value > 0.0 {
                Value::Text(Cow::Borrowed("inf"))
            } else {
                Value::Text(Cow::Borrowed("-inf"))
            }
        };
        match array.data_type() {
            DataType::Int8 => signed(value::<Int8Type>(array, row).into()),
            DataType::Int16 => signed(value::<Int16Type>(array, row).into()),
            DataType::Int32 => signed(value::<Int32Type>(array, row).into()),
            DataType::Int64 => signed(value::<Int64Type>(array, row)),
            DataType::UInt8 => unsigned(value::<UInt8Type>(array, row).into()),
            DataType::UInt16 => unsigned(value::<UInt16Type>(array, row).into()),
            DataType::UInt32 => unsigned(value::<UInt32Type>(array, row).into()),
            DataType::UInt64 => unsigned(value::<UInt64Type>(array, row)),
            DataType::Float16 => float(value::<Float16Type>(array, row).to_f64()),
            DataType::Float32 => float(value::<Float32Type>(array, row).into()),
            DataType::Float64 => float(value::<Float64Type>(array, row)),
            _ => self.display(row),
        }
    }

    /// The Excel serial of a date, timestamp or time of day at `row`.
    fn serial(&self, row: usize) -> Option<f64> {
        let array = self.array;
        let serial = match array.data_type() {
            DataType::Date32 => f64::from(value::<Date32Type>(array, row)) + UNIX_EPOCH_SERIAL,
            DataType::Date64 => {
                value::<Date64Type>(array, row) as f64 / 1_000.0 / SECONDS_PER_DAY
                    + UNIX_EPOCH_SERIAL
            }
            DataType::Timestamp(unit, _) => {
                let value = match unit {
                    TimeUnit::Second => value::<TimestampSecondType>(array, row),
                    TimeUnit::Millisecond => value::<TimestampMillisecondType>(array, row),
                    TimeUnit::Microsecond => value::<TimestampMicrosecondType>(array, row),
                    TimeUnit::Nanosecond => value::<TimestampNanosecondType>(array, row),
                };
                let per_second = units_per_second(*unit);
                let seconds = value.div_euclid(per_second);
                let fraction = value.rem_euclid(per_second) as f64 / per_second as f64;
                let offset = match &self.zone {
                    Some(zone) => {
                        let utc = DateTime::from_timestamp(seconds, 0)?.naive_utc();
                        i64::from(zone.offset_from_utc_datetime(&utc).fix().local_minus_utc())
                    }
                    None => 0,
                };
                // Whole days and the time of day apart, so the day stays exact.
                let local = seconds + offset;
                let days = local.div_euclid(86_400) as f64;
                let time = (local.rem_euclid(86_400) as f64 + fraction) / SECONDS_PER_DAY;
                days + UNIX_EPOCH_SERIAL + time
            }
            DataType::Time32(TimeUnit::Second) => {
                f64::from(value::<Time32SecondType>(array, row)) / SECONDS_PER_DAY
            }
            DataType::Time32(_) => {
                f64::from(value::<Time32MillisecondType>(array, row)) / 1e3 / SECONDS_PER_DAY
            }
            DataType::Time64(TimeUnit::Microsecond) => {
                value::<Time64MicrosecondType>(array, row) as f64 / 1e6 / SECONDS_PER_DAY
            }
            DataType::Time64(_) => {
                value::<Time64NanosecondType>(array, row) as f64 / 1e9 / SECONDS_PER_DAY
            }
            _ => return None,
        };
        Some(serial)
    }
}

/// `array` spelt in `zone` when it is a timestamp column with a zone of its
/// own, else `array` itself. The instants stay the same; only the zone Arrow's
/// display shows them in changes. Timestamps without a zone keep their
/// wall-clock spelling, as their date cells do.
pub(crate) fn in_zone(array: &ArrayRef, zone: &Arc<str>) -> ArrayRef {
    let DataType::Timestamp(unit, Some(_)) = array.data_type() else {
        return array.clone();
    };
    let zone = zone.clone();
    match unit {
        TimeUnit::Second => Arc::new(
            array
                .as_primitive::<TimestampSecondType>()
                .clone()
                .with_timezone(zone),
        ),
        TimeUnit::Millisecond => Arc::new(
            array
                .as_primitive::<TimestampMillisecondType>()
                .clone()
                .with_timezone(zone),
        ),
        TimeUnit::Microsecond => Arc::new(
            array
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
                .with_timezone(zone),
        ),
        TimeUnit::Nanosecond => Arc::new(
            array
                .as_primitive::<TimestampNanosecondType>()
                .clone()
                .with_timezone(zone),
        ),
    }
}

fn units_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

fn value<T: ArrowPrimitiveType>(array: &dyn Array, row: usize) -> T::Native {
    let array: &PrimitiveArray<T> = array.as_primitive();
    array.value(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, Date32Array, Decimal128Array, Int64Array, TimestampSecondArray, UInt64Array,
    };
    use std::sync::Arc;

    fn values(field: Field, array: ArrayRef, zone: Option<&str>) -> Vec<Value<'static>> {
        let kind = Kind::of(&field).unwrap();
        let zone = zone.map(|z| TimeZone::named_or_offset(z).unwrap().tz());
        let column = Column::new(array.as_ref(), &field, kind, zone).unwrap();
        (0..array.len())
            .map(|row| match column.value(row) {
                Value::Blank => Value::Blank,
                Value::Number(n) => Value::Number(n),
                Value::Bool(b) => Value::Bool(b),
                Value::Date(serial, style) => Value::Date(serial, style),
                Value::Text(text) => Value::Text(Cow::Owned(text.into_owned())),
            })
            .collect()
    }

    #[test]
    fn integers_beyond_a_double_stay_exact_as_text() {
        let got = values(
            Field::new("n", DataType::Int64, true),
            Arc::new(Int64Array::from(vec![
                Some(1 << 53),
                Some((1 << 53) + 1),
                Some(i64::MIN),
                None,
            ])),
            None,
        );
        assert_eq!(
            got,
            [
                Value::Number(9_007_199_254_740_992.0),
                Value::Text("9007199254740993".into()),
                Value::Text("-9223372036854775808".into()),
                Value::Blank,
            ]
        );
        let got = values(
            Field::new("u", DataType::UInt64, false),
            Arc::new(UInt64Array::from(vec![u64::MAX, 7])),
            None,
        );
        assert_eq!(
            got,
            [
                Value::Text("18446744073709551615".into()),
                Value::Number(7.0)
            ]
        );
    }

    #[test]
    fn dates_become_serials_and_out_of_range_dates_text() {
        let got = values(
            Field::new("d", DataType::Date32, true),
            // 1970-01-01, 2024-05-01, 1900-01-01, 1900-03-01
            Arc::new(Date32Array::from(vec![0, 19_844, -25_567, -25_508])),
            None,
        );
        assert_eq!(
            got,
            [
                Value::Date(25_569.0, DateStyle::Date),
                Value::Date(45_413.0, DateStyle::Date),
                Value::Text("1900-01-01".into()),
                Value::Date(61.0, DateStyle::Date),
            ]
        );
    }

    #[test]
    fn timestamps_show_the_wall_clock_of_their_zone() {
        let field = Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Second, Some("Europe/Paris".into())),
            true,
        );
        // 2024-05-01T08:00:00Z is 10:00 in Paris (summer time), 2024-01-01T00:00:00Z is 01:00.
        let array: ArrayRef = Arc::new(
            TimestampSecondArray::from(vec![1_714_550_400, 1_704_067_200])
                .with_timezone("Europe/Paris"),
        );
        let serials = |values: Vec<Value<'static>>| -> Vec<f64> {
            values
                .into_iter()
                .map(|value| match value {
                    Value::Date(serial, DateStyle::DateTime) => serial,
                    other => panic!("not a date and time: {other:?}"),
                })
                .collect()
        };
        let close = |got: Vec<f64>, want: [f64; 2]| {
            for (got, want) in got.iter().zip(want) {
                assert!((got - want).abs() < 1e-9, "{got} != {want}");
            }
        };
        let paris = serials(values(field.clone(), array.clone(), None));
        close(paris, [45_413.0 + 10.0 / 24.0, 45_292.0 + 1.0 / 24.0]);
        let utc = serials(values(field, array, Some("UTC")));
        close(utc, [45_413.0 + 8.0 / 24.0, 45_292.0]);
        assert!(TimeZone::named_or_offset("Mars/Olympus").is_err());
    }

    #[test]
    fn decimals_are_numbers_when_a_double_holds_them() {
        let narrow = values(
            Field::new("d", DataType::Decimal128(10, 2), true),
            Arc::new(
                Decimal128Array::from(vec![150, -5])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            None,
        );
        assert_eq!(narrow, [Value::Number(1.5), Value::Number(-0.05)]);
        let wide = values(
            Field::new("d", DataType::Decimal128(38, 2), true),
            Arc::new(
                Decimal128Array::from(vec![1_234_567_890_123_456_789_012])
                    .with_precision_and_scale(38, 2)
                    .unwrap(),
            ),
            None,
        );
        assert_eq!(wide, [Value::Text("12345678901234567890.12".into())]);
    }
}
