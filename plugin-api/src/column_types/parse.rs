//! [`ColumnType`] and the strict parsers behind it: one per type, each
//! reading a whole value or refusing it, never a prefix, never a guess.

use arrow_schema::DataType;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The type names a request may use, for messages.
pub const TYPE_NAMES: &str = "int64, float64, bool, date, timestamp, decimal(P,S), text";

/// The JSON Schema pattern every type name matches.
pub const TYPE_PATTERN: &str =
    r"^(int64|float64|bool|date|timestamp|text|decimal\([0-9]{1,2}, ?[0-9]{1,2}\))$";

/// The time zone of every `timestamp` column: instants are kept in UTC.
pub const TIMESTAMP_ZONE: &str = "UTC";

/// The largest precision of a `decimal(P,S)`: what `Decimal128` holds.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// The type a text column is converted to, as a request names it.
///
/// | name | Arrow type | accepts |
/// | --- | --- | --- |
/// | `int64` | `Int64` | an optional sign and decimal digits (`42`, `-7`, `+007`) that fit an `i64` |
/// | `float64` | `Float64` | a decimal number with optional sign, fraction and exponent (`1.5`, `-2`, `1e-3`), or `NaN`, `inf`, `infinity` in any case; a number beyond the `f64` range (`1e400`) is refused |
/// | `bool` | `Boolean` | `true` or `false`, in any case |
/// | `date` | `Date32` | `YYYY-MM-DD`, a real calendar date |
/// | `timestamp` | `Timestamp(Microsecond, "UTC")` | RFC 3339 / ISO 8601 with an offset: `2024-05-01T10:00:00Z`, `2024-05-01 12:00:00.25+02:00`, `...+0200`; the instant is kept, in UTC. A value without an offset, or with digits below the microsecond that are not zero, is refused |
/// | `decimal(P,S)` | `Decimal128(P, S)` | an optional sign, digits and an optional fraction (no exponent) with at most `P - S` digits before the point and `S` after it (more trailing zeros are fine); `1 <= P <= 38`, `0 <= S <= P` |
/// | `text` | `Utf8` | anything, unchanged |
///
/// No parser trims spaces or reads a prefix: `" 42"`, `"12,5"` and `"1.5kg"`
/// are refused. An empty value is a null in every type but `text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// `int64`: Arrow `Int64`.
    Int64,
    /// `float64`: Arrow `Float64`.
    Float64,
    /// `bool`: Arrow `Boolean`.
    Bool,
    /// `date`: Arrow `Date32`.
    Date,
    /// `timestamp`: Arrow `Timestamp(Microsecond, Some("UTC"))`.
    Timestamp,
    /// `decimal(P,S)`: Arrow `Decimal128(P, S)`.
    Decimal {
        /// Digits in all, 1 to 38.
        precision: u8,
        /// Digits after the point, 0 to `precision`.
        scale: u8,
    },
    /// `text`: Arrow `Utf8`, the value unchanged.
    Text,
}

impl ColumnType {
    /// The Arrow type of a column of this type.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(
                arrow_schema::TimeUnit::Microsecond,
                Some(TIMESTAMP_ZONE.into()),
            ),
            ColumnType::Decimal { precision, scale } => {
                // Precision and scale were checked when the type was made;
                // `Decimal128`'s scale is signed but never negative here.
                DataType::Decimal128(precision, i8::try_from(scale).unwrap_or(i8::MAX))
            }
            ColumnType::Text => DataType::Utf8,
        }
    }

    /// A `decimal(precision, scale)`, or why it is not one.
    pub fn decimal(precision: u8, scale: u8) -> Result<Self, String> {
        if precision == 0 || precision > MAX_DECIMAL_PRECISION {
            return Err(format!(
                "decimal({precision},{scale}) has precision {precision}: the precision (digits \
                 in all) must be between 1 and {MAX_DECIMAL_PRECISION}"
            ));
        }
        if scale > precision {
            return Err(format!(
                "decimal({precision},{scale}) has scale {scale} above its precision: the scale \
                 (digits after the point) must be between 0 and {precision}"
            ));
        }
        Ok(ColumnType::Decimal { precision, scale })
    }

    /// The type's name with its article, for messages: `an int64`.
    pub(crate) fn with_article(self) -> String {
        match self {
            ColumnType::Int64 => "an int64".to_owned(),
            other => format!("a {other}"),
        }
    }
}

impl fmt::Display for ColumnType {
    /// The name a request uses: `int64`, `decimal(10,2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Int64 => f.write_str("int64"),
            ColumnType::Float64 => f.write_str("float64"),
            ColumnType::Bool => f.write_str("bool"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColumnType::Text => f.write_str("text"),
        }
    }
}

impl FromStr for ColumnType {
    type Err = String;

    /// Reads a type name; the error names it and lists the valid names.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "int64" => return Ok(ColumnType::Int64),
            "float64" => return Ok(ColumnType::Float64),
            "bool" => return Ok(ColumnType::Bool),
            "date" => return Ok(ColumnType::Date),
            "timestamp" => return Ok(ColumnType::Timestamp),
            "text" => return Ok(ColumnType::Text),
            _ => {}
        }
        let unknown = || format!("unknown column type {name:?}: use one of {TYPE_NAMES}");
        let Some(args) = name
            .strip_prefix("decimal(")
            .and_then(|rest| rest.strip_suffix(')'))
        else {
            return Err(unknown());
        };
        let Some((precision, scale)) = args.split_once(',') else {
            return Err(unknown());
        };
        let scale = scale.strip_prefix(' ').unwrap_or(scale);
        let number = |text: &str| -> Option<u8> {
            if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()
        };
        match (number(precision), number(scale)) {
            (Some(precision), Some(scale)) => ColumnType::decimal(precision, scale),
            _ => Err(format!(
                "column type {name:?} is not a valid decimal: write decimal(P,S) with whole \
                 numbers, such as decimal(10,2)"
            )),
        }
    }
}

impl Serialize for ColumnType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ColumnType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name: Cow<'de, str> = Deserialize::deserialize(deserializer)?;
        name.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for ColumnType {
    fn schema_name() -> Cow<'static, str> {
        "ColumnType".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": TYPE_PATTERN,
            "description": "A column type: int64, float64, bool, date (YYYY-MM-DD), timestamp \
                (RFC 3339 with an offset, kept as a UTC instant), decimal(P,S) (1 <= P <= 38, \
                0 <= S <= P) or text. An empty value is a null in every type but text.",
        })
    }
}

/// Why a value does not fit its type, beyond "it is not one".
pub(crate) type Detail = Option<&'static str>;

/// An `int64`: Rust's own integer grammar (sign, digits).
pub(crate) fn parse_int64(text: &str) -> Result<i64, Detail> {
    text.parse::<i64>().map_err(|err| match err.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            Some("it is out of the int64 range")
        }
        _ => None,
    })
}

/// A `float64`: Rust's float grammar; an overflow to infinity is refused.
pub(crate) fn parse_float64(text: &str) -> Result<f64, Detail> {
    let value = text.parse::<f64>().map_err(|_| None)?;
    if value.is_infinite() {
        let unsigned = text.trim_start_matches(['+', '-']);
        let spelled_infinite =
            unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
        if !spelled_infinite {
            return Err(Some("it is out of the float64 range"));
        }
    }
    Ok(value)
}

/// A `bool`: `true` or `false`, in any case.
pub(crate) fn parse_bool(text: &str) -> Result<bool, Detail> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(None)
    }
}

/// Two ASCII digits as a number.
fn two_digits(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY-MM-DD` as days since the epoch, for a real calendar date.
pub(crate) fn date_days(bytes: &[u8]) -> Option<i64> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *bytes else {
        return None;
    };
    let year = i64::from(two_digits(&[y0, y1])? * 100 + two_digits(&[y2, y3])?);
    let month = two_digits(&[m0, m1])?;
    let day = two_digits(&[d0, d1])?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// A `date`: exactly `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Result<i32, Detail> {
    date_days(text.as_bytes())
        .and_then(|days| i32::try_from(days).ok())
        .ok_or(None)
}

/// A timestamp read by [`read_timestamp`].
pub(crate) struct Instant {
    /// Microseconds since the epoch, in UTC.
    pub micros: i64,
    /// Whether it is written the one way a UTC instant is: a `T`, at most
    /// six digits of fraction, and `Z` or `+00:00`.
    pub plain_utc: bool,
}

/// RFC 3339 / ISO 8601 with an offset: `YYYY-MM-DD`, `T` (or `t`, or a
/// space), `HH:MM:SS`, an optional fraction, then `Z`, `+HH:MM` or `+HHMM`.
pub(crate) fn read_timestamp(text: &str) -> Result<Instant, Detail> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return Err(None);
    }
    let days = date_days(&bytes[..10]).ok_or(None)?;
    let separator = bytes[10];
    if !matches!(separator, b'T' | b't' | b' ') || bytes[13] != b':' || bytes[16] != b':' {
        return Err(None);
    }
    let hour = two_digits(&bytes[11..13]).ok_or(None)?;
    let minute = two_digits(&bytes[14..16]).ok_or(None)?;
    let second = two_digits(&bytes[17..19]).ok_or(None)?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(None);
    }
    let mut rest = &bytes[19..];
    let mut micros = 0i64;
    let mut fraction_digits = 0;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(None);
        }
        for (index, &digit) in tail[..digits].iter().enumerate() {
            if index < 6 {
                micros = micros * 10 + i64::from(digit - b'0');
            } else if digit != b'0' {
                return Err(Some(
                    "it has digits below the microsecond, which a timestamp cannot keep",
                ));
            }
        }
        micros *= 10i64.pow(6u32.saturating_sub(digits as u32));
        fraction_digits = digits;
        rest = &tail[digits..];
    }
    let (offset_seconds, plain_utc_offset) = match rest {
        [b'Z'] => (0, true),
        [b'z'] => (0, false),
        [sign @ (b'+' | b'-'), h0, h1, b':', m0, m1] | [sign @ (b'+' | b'-'), h0, h1, m0, m1] => {
            let hours = two_digits(&[*h0, *h1]).ok_or(None)?;
            let minutes = two_digits(&[*m0, *m1]).ok_or(None)?;
            if hours > 23 || minutes > 59 {
                return Err(None);
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            let plain = *sign == b'+' && seconds == 0 && rest.len() == 6;
            (if *sign == b'-' { -seconds } else { seconds }, plain)
        }
        [] => {
            return Err(Some(
                "it has no UTC offset; write the offset, such as Z or +02:00",
            ))
        }
        _ => return Err(None),
    };
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
    Ok(Instant {
        micros: seconds * 1_000_000 + micros,
        plain_utc: plain_utc_offset && separator == b'T' && fraction_digits <= 6,
    })
}

/// A `timestamp`, as microseconds since the epoch in UTC.
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, Detail> {
    read_timestamp(text).map(|instant| instant.micros)
}

/// A `decimal(precision, scale)`, as its unscaled `i128`.
pub(crate) fn parse_decimal(text: &str, precision: u8, scale: u8) -> Result<i128, Detail> {
    let bytes = text.as_bytes();
    let (negative, unsigned) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    let (int, fraction) = match unsigned.iter().position(|&b| b == b'.') {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, &[][..]),
    };
    let digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    if (int.is_empty() && fraction.is_empty()) || !digits(int) || !digits(fraction) {
        return Err(None);
    }
    let int = &int[int.iter().take_while(|&&b| b == b'0').count()..];
    let scale = usize::from(scale);
    if int.len() > usize::from(precision) - scale {
        return Err(Some(
            "it has more digits before the point than the type holds",
        ));
    }
    let (kept, dropped) = fraction.split_at(fraction.len().min(scale));
    if dropped.iter().any(|&b| b != b'0') {
        return Err(Some(
            "it has more digits after the point than the scale keeps",
        ));
    }
    let mut value: i128 = 0;
    for &digit in int.iter().chain(kept) {
        value = value * 10 + i128::from(digit - b'0');
    }
    for _ in kept.len()..scale {
        value *= 10;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_read_and_print() {
        for name in [
            "int64",
            "float64",
            "bool",
            "date",
            "timestamp",
            "text",
            "decimal(10,2)",
            "decimal(38,0)",
            "decimal(1,1)",
        ] {
            let parsed: ColumnType = name.parse().unwrap();
            assert_eq!(parsed.to_string(), name);
            let json: ColumnType = serde_json::from_str(&format!("{name:?}")).unwrap();
            assert_eq!(json, parsed);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), format!("{name:?}"));
        }
        assert_eq!(
            "decimal(10, 2)".parse::<ColumnType>().unwrap(),
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(
            ColumnType::Timestamp.data_type(),
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            "decimal(12,3)".parse::<ColumnType>().unwrap().data_type(),
            DataType::Decimal128(12, 3)
        );
    }

    #[test]
    fn bad_type_names_are_named_with_the_valid_ones() {
        for bad in [
            "float",
            "Int64",
            "",
            "decimal",
            "decimal()",
            "decimal(10)",
            "string",
        ] {
            let err = bad.parse::<ColumnType>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("int64, float64, bool"), "{err}");
        }
        for (bad, needle) in [
            ("decimal(0,0)", "between 1 and 38"),
            ("decimal(39,2)", "between 1 and 38"),
            ("decimal(5,6)", "between 0 and 5"),
            ("decimal(a,2)", "whole numbers"),
            ("decimal(-1,2)", "whole numbers"),
        ] {
            let err = bad.parse::<ColumnType>().unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let err = serde_json::from_str::<ColumnType>("\"floatt\"").unwrap_err();
        assert!(err.to_string().contains("\"floatt\""), "{err}");
    }

    #[test]
    fn the_schema_pattern_matches_the_parser() {
        let schema = schemars::schema_for!(ColumnType).to_value();
        assert_eq!(schema["pattern"], TYPE_PATTERN);
        assert_eq!(schema["type"], "string");
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int64("42"), Ok(42));
        assert_eq!(parse_int64("-7"), Ok(-7));
        assert_eq!(parse_int64("+007"), Ok(7));
        assert_eq!(parse_int64("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_int64("9223372036854775808").unwrap_err().is_some());
        for bad in ["", " 1", "1 ", "1.0", "1e3", "12,5", "0x10", "-", "1_000"] {
            assert_eq!(parse_int64(bad), Err(None), "{bad:?}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float64("1.5"), Ok(1.5));
        assert_eq!(parse_float64("-2"), Ok(-2.0));
        assert_eq!(parse_float64("1e-3"), Ok(0.001));
        assert_eq!(parse_float64("-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_float64("Infinity"), Ok(f64::INFINITY));
        assert!(parse_float64("NaN").unwrap().is_nan());
        assert!(parse_float64("1e400").unwrap_err().is_some());
        assert!(parse_float64("-1e400").unwrap_err().is_some());
        for bad in ["", "12,5", " 1.5", "1.5kg", "0x1p3", "--1"] {
            assert_eq!(parse_float64(bad), Err(None), "{bad:?}");
        }
    }

    #[test]
    fn bools() {
        for (text, value) in [("true", true), ("FALSE", false), ("True", true)] {
            assert_eq!(parse_bool(text), Ok(value));
        }
        for bad in ["1", "0", "yes", "t", " true", ""] {
            assert_eq!(parse_bool(bad), Err(None), "{bad:?}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2024-03-01"), Ok(19_783));
        assert_eq!(parse_date("1969-12-31"), Ok(-1));
        assert_eq!(parse_date("2000-02-29"), Ok(11_016));
        assert_eq!(parse_date("0000-01-01"), Ok(-719_528));
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-4-1",
            "2024/04/01",
            "20240401",
            "2024-04-01T00:00:00Z",
            " 2024-04-01",
        ] {
            assert_eq!(parse_date(bad), Err(None), "{bad:?}");
        }
    }

    #[test]
    fn timestamps() {
        let at = |text: &str| parse_timestamp(text).unwrap();
        assert_eq!(at("1970-01-01T00:00:00Z"), 0);
        assert_eq!(at("1970-01-01T01:00:00+01:00"), 0);
        assert_eq!(at("1970-01-01 01:00:00+0100"), 0);
        assert_eq!(at("1969-12-31t23:00:00-01:00"), 0);
        assert_eq!(at("1970-01-01T00:00:00.5Z"), 500_000);
        assert_eq!(at("1970-01-01T00:00:00.000001z"), 1);
        assert_eq!(at("1970-01-01T00:00:00.123456000Z"), 123_456);
        assert_eq!(at("2024-05-01T10:00:00+02:00"), 1_714_550_400_000_000);
        assert_eq!(at("1969-12-31T23:59:59.5Z"), -500_000);
        let err = parse_timestamp("2024-05-01T10:00:00").unwrap_err().unwrap();
        assert!(err.contains("offset"), "{err}");
        let err = parse_timestamp("2024-05-01T10:00:00.1234567Z")
            .unwrap_err()
            .unwrap();
        assert!(err.contains("microsecond"), "{err}");
        for bad in [
            "2024-05-01",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:60:00Z",
            "2024-05-01T10:00:60Z",
            "2024-05-01T10:00Z",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00+2:00",
            "2024-05-01T10:00:00+24:00",
            "2024-05-01T10:00:00 Z",
            "2024-05-01T10:00:00Z ",
            "2024-02-30T10:00:00Z",
        ] {
            assert_eq!(parse_timestamp(bad).map_err(|_| ()), Err(()), "{bad:?}");
        }
        let plain = |text: &str| read_timestamp(text).unwrap().plain_utc;
        assert!(plain("2024-05-01T10:00:00Z"));
        assert!(plain("2024-05-01T10:00:00.123456+00:00"));
        assert!(!plain("2024-05-01T10:00:00+02:00"));
        assert!(!plain("2024-05-01T10:00:00-00:00"));
        assert!(!plain("2024-05-01T10:00:00+0000"));
        assert!(!plain("2024-05-01 10:00:00Z"));
        assert!(!plain("2024-05-01T10:00:00z"));
        assert!(!plain("2024-05-01T10:00:00.1234560Z"));
    }

    #[test]
    fn decimals() {
        let d = |text: &str, p, s| parse_decimal(text, p, s);
        assert_eq!(d("12.34", 10, 2), Ok(1234));
        assert_eq!(d("-12.3", 10, 2), Ok(-1230));
        assert_eq!(d("+5", 3, 2), Ok(500));
        assert_eq!(d(".5", 3, 2), Ok(50));
        assert_eq!(d("5.", 3, 2), Ok(500));
        assert_eq!(d("0012.340", 4, 2), Ok(1234));
        assert_eq!(d("9.99", 3, 2), Ok(999));
        assert_eq!(
            d("99999999999999999999999999999999999999", 38, 0),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert!(d("123.4", 4, 2)
            .unwrap_err()
            .unwrap()
            .contains("before the point"));
        assert!(d("1.234", 10, 2)
            .unwrap_err()
            .unwrap()
            .contains("after the point"));
        for bad in ["", ".", "-", "1e3", "1,5", " 1", "1.2.3", "NaN"] {
            assert_eq!(d(bad, 10, 2), Err(None), "{bad:?}");
        }
    }
}
