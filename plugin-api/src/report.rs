//! Report summaries and charts, computed while an export streams: the
//! shared part of the `html`, `pdf` and `markdown` formatters' `audience`
//! and `chart` options, for any formatter that wants the same.
//!
//! A [`ReportBuilder`] sees every batch once ([`ReportBuilder::add`]) and
//! keeps only bounded state, so memory stays flat at any row count:
//!
//! - the [`Summary`]: the row count; per column its nulls; per numeric
//!   column min, max, sum and mean (integers exactly, in 128 bits; floats
//!   and decimals as `f64`, NaN counted apart); per text column the number
//!   of distinct values, **exact up to [`DISTINCT_EXACT_LIMIT`] (10,000)
//!   distinct values, then a HyperLogLog estimate** (4,096 registers,
//!   about 1.6% standard error) shown as `≈N`; a text column whose every
//!   non-empty value is a number (CSV without types) also gets the numeric
//!   statistics; date and timestamp columns get their earliest and latest;
//! - each [`Chart`]: at most `points` points (default [`DEFAULT_POINTS`]).
//!   When `x` is a date or timestamp column (or a text column whose first
//!   value reads as an ISO date or timestamp), points are time buckets whose
//!   width grows as the data's span does (second, minute, 5 and 15 minutes,
//!   hour, 6 hours, day, month, quarter, year, then powers of ten years),
//!   in the wall-clock time the values carry. Otherwise points are the
//!   values of `x`: the first [`CATEGORY_LIMIT`] (10,000) distinct values
//!   are tracked exactly, later new ones count as `(other)`, and the chart
//!   keeps the `points - 1` with the most rows plus `(other)` for the rest.
//!   Each point holds, per `y` column, the aggregate `agg` (default `sum`)
//!   of its non-null values. Rows whose `x` is null (or not a date in a time
//!   chart) are left out and counted in [`Chart::left_out`].
//!
//! [`Chart::plot`] lays a chart out on a canvas (bars, line points, axis
//! ticks, labels), in one place for every drawing formatter.

use crate::error::{PluginError, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Schema, TimeUnit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

/// Distinct text values counted exactly before the count becomes an estimate.
pub const DISTINCT_EXACT_LIMIT: usize = 10_000;
/// Distinct `x` values a category chart tracks; later new values are `(other)`.
pub const CATEGORY_LIMIT: usize = 10_000;
/// Points a chart has at most unless its `points` says otherwise.
pub const DEFAULT_POINTS: u32 = 100;
/// The range `points` may ask for.
pub const POINTS_RANGE: std::ops::RangeInclusive<u32> = 2..=200;
/// The label of the point that gathers the categories not shown.
pub const OTHER_LABEL: &str = "(other)";

/// Who a report is for: what it shows besides (or instead of) the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The title, the summary and the charts; no table.
    Executive,
    /// The summary, the charts and the table.
    Analyst,
    /// The table alone, as without this option.
    #[default]
    Table,
}

impl Audience {
    /// Whether the rows are written.
    pub fn shows_table(self) -> bool {
        self != Audience::Executive
    }
    /// Whether the summary and the charts are written.
    pub fn shows_report(self) -> bool {
        self != Audience::Table
    }
}

/// How a chart draws its points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// A line through the points, one per `y` column, each point marked.
    Line,
    /// A bar per point (grouped side by side for several `y` columns).
    #[default]
    Bar,
}

/// What a point shows of the `y` values that fall into it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Their sum.
    #[default]
    Sum,
    /// Their mean.
    Mean,
    /// The smallest.
    Min,
    /// The largest.
    Max,
    /// How many are not null.
    Count,
}

impl Aggregate {
    fn name(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Mean => "mean",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Count => "count",
        }
    }
}

/// One column name or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ColumnList {
    /// One column.
    One(String),
    /// Several columns, each its own series (line or bar colour).
    Many(Vec<String>),
}

impl ColumnList {
    /// The names, in order.
    pub fn names(&self) -> Vec<String> {
        match self {
            ColumnList::One(name) => vec![name.clone()],
            ColumnList::Many(names) => names.clone(),
        }
    }
}

/// One chart of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// The column along the horizontal axis. A date or timestamp column (or
    /// text holding ISO dates) gives time buckets; any other column gives a
    /// point per value, the most frequent first, the rest as `(other)`.
    pub x: String,
    /// The numeric column, or list of columns, whose values are drawn; a
    /// text column must hold numbers (empty cells are nulls).
    pub y: ColumnList,
    /// `"bar"` (default) or `"line"`.
    #[serde(default)]
    pub kind: ChartKind,
    /// What each point shows of its rows' `y` values: `"sum"` (default),
    /// `"mean"`, `"min"`, `"max"` or `"count"` (of non-null values).
    #[serde(default)]
    pub agg: Aggregate,
    /// The chart's heading (default: `"<agg> of <y> by <x>"`).
    #[serde(default)]
    pub title: Option<String>,
    /// The most points the chart has, 2 to 200 (default 100).
    #[serde(default)]
    #[schemars(range(min = 2, max = 200))]
    pub points: Option<u32>,
}

/// The `chart` option: one chart or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ChartOption {
    /// One chart.
    One(ChartSpec),
    /// Several charts, drawn in order.
    Many(Vec<ChartSpec>),
}

impl ChartOption {
    /// The charts, in order.
    pub fn specs(&self) -> &[ChartSpec] {
        match self {
            ChartOption::One(spec) => std::slice::from_ref(spec),
            ChartOption::Many(specs) => specs,
        }
    }
}

/// Checks a formatter's `audience` and `chart` options together: charts
/// need an audience that shows them. Returns the charts to draw.
pub fn check_options(audience: Audience, chart: Option<&ChartOption>) -> Result<Vec<ChartSpec>> {
    let specs = chart.map(|c| c.specs().to_vec()).unwrap_or_default();
    if !specs.is_empty() && !audience.shows_report() {
        return Err(PluginError::invalid_input(
            "option \"chart\" needs a report: add \"audience\": \"analyst\" (summary, charts \
             and the table) or \"executive\" (summary and charts only)",
        ));
    }
    Ok(specs)
}

// ---------------------------------------------------------------------------
// Numbers

/// A statistic's value: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An exact integer.
    Int(i128),
    /// Anything else.
    Float(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(value) => write!(f, "{value}"),
            Number::Float(value) => f.write_str(&format_number(*value)),
        }
    }
}

/// `value` for people: integers in full below 10^15, else six
/// significant digits (scientific notation outside 10^-4 to 10^15).
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".into()
        } else if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // Adding zero turns -0 into 0.
    let value = value + 0.0;
    let magnitude = value.abs();
    if value.fract() == 0.0 && magnitude < 1e15 {
        return format!("{value:.0}");
    }
    if !(1e-4..1e15).contains(&magnitude) {
        return format!("{value:.5e}");
    }
    let digits = (5 - magnitude.log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".into()
    } else {
        text.to_owned()
    }
}

/// `value` short, for axis ticks: `1.2k`, `3M`, `45G`.
pub fn format_compact(value: f64) -> String {
    let magnitude = value.abs();
    for (scale, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if magnitude >= scale {
            return format!("{}{suffix}", format_number(value / scale));
        }
    }
    format_number(value)
}

/// Count, min, max and sum of numbers, integers exactly.
#[derive(Debug, Clone)]
struct Numbers {
    count: u64,
    nan: u64,
    all_int: bool,
    int_min: i128,
    int_max: i128,
    int_sum: i128,
    min: f64,
    max: f64,
    sum: f64,
}

impl Numbers {
    fn new() -> Numbers {
        Numbers {
            count: 0,
            nan: 0,
            all_int: true,
            int_min: i128::MAX,
            int_max: i128::MIN,
            int_sum: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }

    fn add_int(&mut self, value: i128) {
        self.count += 1;
        self.int_min = self.int_min.min(value);
        self.int_max = self.int_max.max(value);
        self.int_sum = self.int_sum.saturating_add(value);
        self.add_float_only(value as f64);
    }

    fn add_float(&mut self, value: f64) {
        if value.is_nan() {
            self.nan += 1;
            return;
        }
        self.count += 1;
        self.all_int = false;
        self.add_float_only(value);
    }

    fn add_float_only(&mut self, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
    }

    fn stats(&self) -> Option<NumberStats> {
        if self.count == 0 {
            return None;
        }
        let (min, max, sum) = if self.all_int {
            (
                Number::Int(self.int_min),
                Number::Int(self.int_max),
                Number::Int(self.int_sum),
            )
        } else {
            (
                Number::Float(self.min),
                Number::Float(self.max),
                Number::Float(self.sum),
            )
        };
        let mean = if self.all_int {
            self.int_sum as f64 / self.count as f64
        } else {
            self.sum / self.count as f64
        };
        Some(NumberStats {
            count: self.count,
            nan: self.nan,
            min,
            max,
            sum,
            mean: Number::Float(mean),
        })
    }
}

/// The statistics of a column's numbers (NaN left out and counted).
#[derive(Debug, Clone, PartialEq)]
pub struct NumberStats {
    /// Values counted (not null, not NaN).
    pub count: u64,
    /// NaN values.
    pub nan: u64,
    /// The smallest.
    pub min: Number,
    /// The largest.
    pub max: Number,
    /// The sum.
    pub sum: Number,
    /// The mean.
    pub mean: Number,
}

// ---------------------------------------------------------------------------
// Distinct counts

/// A count of distinct values: exact, or estimated past [`DISTINCT_EXACT_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distinct {
    /// Exactly this many.
    Exact(u64),
    /// About this many (HyperLogLog, about 1.6% standard error).
    Estimate(u64),
}

impl fmt::Display for Distinct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distinct::Exact(n) => write!(f, "{n}"),
            Distinct::Estimate(n) => write!(f, "≈{n}"),
        }
    }
}

const HLL_BITS: u32 = 12;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// Counts distinct values in bounded memory: the hashes of the first
/// [`DISTINCT_EXACT_LIMIT`] values, then HyperLogLog registers.
#[derive(Debug, Clone)]
struct DistinctCounter {
    exact: Option<HashSet<u64>>,
    registers: Vec<u8>,
}

fn hash_text(text: &str) -> u64 {
    // SipHash with fixed keys: the same text hashes the same in every run.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

impl DistinctCounter {
    fn new() -> DistinctCounter {
        DistinctCounter {
            exact: Some(HashSet::new()),
            registers: Vec::new(),
        }
    }

    fn add(&mut self, text: &str) {
        let hash = hash_text(text);
        if let Some(exact) = &mut self.exact {
            exact.insert(hash);
            if exact.len() <= DISTINCT_EXACT_LIMIT {
                return;
            }
            self.registers = vec![0; HLL_REGISTERS];
            let hashes = std::mem::take(exact);
            self.exact = None;
            for hash in hashes {
                self.add_hash(hash);
            }
            return;
        }
        self.add_hash(hash);
    }

    fn add_hash(&mut self, hash: u64) {
        let index = (hash >> (64 - HLL_BITS)) as usize;
        let rest = (hash << HLL_BITS) | (1 << (HLL_BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(register) = self.registers.get_mut(index) {
            *register = (*register).max(rank);
        }
    }

    fn count(&self) -> Distinct {
        if let Some(exact) = &self.exact {
            return Distinct::Exact(exact.len() as u64);
        }
        let m = HLL_REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        // Never below what was counted exactly before the switch.
        Distinct::Estimate((estimate.round() as u64).max(DISTINCT_EXACT_LIMIT as u64 + 1))
    }
}

// ---------------------------------------------------------------------------
// Reading columns

/// How the values of a column are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    UInt,
    Float,
    Text,
    Time,
    Bool,
    Other,
}

fn kind_of(data_type: &DataType) -> Kind {
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Kind::Int,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Kind::UInt,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            Kind::Float
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => Kind::Time,
        DataType::Boolean => Kind::Bool,
        _ => Kind::Other,
    }
}

/// Text values of a string column (None for a null); `None` if not text.
fn texts(array: &dyn Array) -> Option<Vec<Option<&str>>> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        DataType::Utf8View => array.as_string_view().iter().collect(),
        _ => return None,
    })
}

/// Integer values of a signed or unsigned integer column, widened.
fn ints(array: &dyn Array) -> Result<Vec<Option<i128>>> {
    let cast = |to: &DataType| {
        arrow_cast::cast(array, to).map_err(|err| {
            PluginError::internal(format!("reading an integer column failed: {err}"))
        })
    };
    Ok(match array.data_type() {
        DataType::UInt64 => array
            .as_primitive::<arrow_array::types::UInt64Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        _ => cast(&DataType::Int64)?
            .as_primitive::<arrow_array::types::Int64Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
    })
}

/// Values of a float or decimal column as `f64`.
fn floats(array: &dyn Array) -> Result<Vec<Option<f64>>> {
    let cast = arrow_cast::cast(array, &DataType::Float64)
        .map_err(|err| PluginError::internal(format!("reading a number column failed: {err}")))?;
    Ok(cast
        .as_primitive::<arrow_array::types::Float64Type>()
        .iter()
        .collect())
}

/// Seconds since 1970-01-01T00:00:00 in the values' own wall-clock time.
fn times(array: &dyn Array) -> Vec<Option<i64>> {
    let offset = match array.data_type() {
        DataType::Timestamp(_, Some(zone)) => parse_offset(zone).unwrap_or(0),
        _ => 0,
    };
    let shift = |v: Option<i64>, per_second: i64| {
        v.map(|v| v.div_euclid(per_second).saturating_add(offset))
    };
    match array.data_type() {
        DataType::Date32 => array
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map(|d| i64::from(d) * 86_400))
            .collect(),
        DataType::Date64 => array
            .as_primitive::<Date64Type>()
            .iter()
            .map(|v| shift(v, 1000))
            .collect(),
        DataType::Timestamp(TimeUnit::Second, _) => array
            .as_primitive::<TimestampSecondType>()
            .iter()
            .map(|v| shift(v, 1))
            .collect(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => array
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .map(|v| shift(v, 1000))
            .collect(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| shift(v, 1_000_000))
            .collect(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .map(|v| shift(v, 1_000_000_000))
            .collect(),
        _ => vec![None; array.len()],
    }
}

/// `+02:00`, `-0530` or `Z` as seconds east of UTC.
fn parse_offset(zone: &str) -> Option<i64> {
    if zone == "Z" || zone == "z" {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if month <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        month,
        day,
    )
}

/// Reads text as an ISO date or timestamp (`2024-05-01`,
/// `2024-05-01T10:00[:00[.123]][Z|+02:00]`, a space for the `T`), as
/// seconds of its wall-clock time.
fn parse_iso_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if b.len() == 10 {
        return Some(seconds);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (hour, minute) = (number(11..13)?, number(14..16)?);
    if hour > 23 || minute > 59 {
        return None;
    }
    seconds += hour * 3600 + minute * 60;
    let mut rest = &text[16..];
    if let Some(after) = rest.strip_prefix(':') {
        let second: i64 = after.get(..2)?.parse().ok()?;
        if second > 60 {
            return None;
        }
        seconds += second;
        rest = &after[2..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            rest = &fraction[digits..];
        }
    }
    if rest.is_empty() || parse_offset(rest).is_some() {
        Some(seconds)
    } else {
        None
    }
}

/// Seconds of wall-clock time as `2024-05-01T10:00:00` (or the date alone
/// when it is midnight and `date_only`).
fn format_time(seconds: i64, date_only: bool) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    let mut text = format!("{year:04}-{month:02}-{day:02}");
    if !date_only {
        let _ = write!(
            text,
            "T{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        );
    }
    text
}

/// A text cell read as a number: an integer when it is one.
fn parse_number(text: &str) -> Option<ParsedNumber> {
    let text = text.trim();
    if let Ok(int) = text.parse::<i64>() {
        return Some(ParsedNumber::Int(i128::from(int)));
    }
    // `f64::from_str` takes "NaN" and "inf": those are words, not data.
    if !text.bytes().any(|b| b.is_ascii_digit())
        || text
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return None;
    }
    text.parse::<f64>().ok().map(ParsedNumber::Float)
}

enum ParsedNumber {
    Int(i128),
    Float(f64),
}

// ---------------------------------------------------------------------------
// The summary

#[derive(Debug, Clone)]
enum ColumnAcc {
    Numbers(Numbers),
    Text {
        distinct: DistinctCounter,
        /// While every non-empty value is a number.
        numbers: Option<Numbers>,
    },
    Time {
        date_only: bool,
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool {
        trues: u64,
        falses: u64,
    },
    Other,
}

/// What the summary says of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnStats {
    /// A numeric column (`None`: every value null).
    Numbers(Option<NumberStats>),
    /// A text column: its distinct values, and numbers when every
    /// non-empty value is one.
    Text {
        /// Distinct values (nulls not counted).
        distinct: Distinct,
        /// The numbers, when every non-empty value is one.
        numbers: Option<NumberStats>,
    },
    /// A date or timestamp column: the earliest and latest values.
    Time {
        /// The earliest, as ISO text (`None`: every value null).
        min: Option<String>,
        /// The latest.
        max: Option<String>,
    },
    /// A boolean column.
    Bool {
        /// `true` values.
        trues: u64,
        /// `false` values.
        falses: u64,
    },
    /// Any other type: nulls only.
    Other,
}

/// One column of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSummary {
    /// The column's name.
    pub name: String,
    /// Its null values.
    pub nulls: u64,
    /// The rest.
    pub stats: ColumnStats,
}

/// The headers of [`ColumnSummary::cells`], in order.
pub const SUMMARY_HEADERS: [&str; 7] = ["column", "nulls", "min", "max", "sum", "mean", "distinct"];

impl ColumnSummary {
    /// The row of the summary table for this column, under
    /// [`SUMMARY_HEADERS`]; a statistic that does not apply is empty.
    pub fn cells(&self) -> [String; 7] {
        let mut cells: [String; 7] = Default::default();
        cells[0] = self.name.clone();
        cells[1] = self.nulls.to_string();
        let numbers = |cells: &mut [String; 7], stats: &NumberStats| {
            cells[2] = stats.min.to_string();
            cells[3] = stats.max.to_string();
            cells[4] = stats.sum.to_string();
            cells[5] = stats.mean.to_string();
        };
        match &self.stats {
            ColumnStats::Numbers(Some(stats)) => numbers(&mut cells, stats),
            ColumnStats::Text {
                distinct,
                numbers: n,
            } => {
                if let Some(stats) = n {
                    numbers(&mut cells, stats);
                }
                cells[6] = distinct.to_string();
            }
            ColumnStats::Time { min, max } => {
                cells[2] = min.clone().unwrap_or_default();
                cells[3] = max.clone().unwrap_or_default();
            }
            ColumnStats::Bool { trues, falses } => {
                cells[6] = format!("{trues} true, {falses} false");
            }
            ColumnStats::Numbers(None) | ColumnStats::Other => {}
        }
        cells
    }
}

/// The summary of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Rows in the export.
    pub row_count: u64,
    /// One per column, in order.
    pub columns: Vec<ColumnSummary>,
}

// ---------------------------------------------------------------------------
// Charts

/// Time bucket widths, finest first; each nests in the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Seconds(i64),
    Months(i64),
    Years(i64),
}

const LEVELS: [Level; 23] = [
    Level::Seconds(1),
    Level::Seconds(60),
    Level::Seconds(300),
    Level::Seconds(900),
    Level::Seconds(3600),
    Level::Seconds(21_600),
    Level::Seconds(86_400),
    Level::Months(1),
    Level::Months(3),
    Level::Years(1),
    Level::Years(10),
    Level::Years(100),
    Level::Years(1000),
    Level::Years(10_000),
    Level::Years(100_000),
    Level::Years(1_000_000),
    Level::Years(10_000_000),
    Level::Years(100_000_000),
    Level::Years(1_000_000_000),
    Level::Years(10_000_000_000),
    Level::Years(100_000_000_000),
    Level::Years(1_000_000_000_000),
    Level::Years(10_000_000_000_000),
];

impl Level {
    /// The start of the bucket holding `seconds`.
    fn key(self, seconds: i64) -> i64 {
        match self {
            Level::Seconds(width) => seconds.div_euclid(width).saturating_mul(width),
            Level::Months(width) => {
                let (year, month, _) = civil_from_days(seconds.div_euclid(86_400));
                let index = year * 12 + (month - 1);
                let start = index.div_euclid(width) * width;
                days_from_civil(start.div_euclid(12), start.rem_euclid(12) + 1, 1)
                    .saturating_mul(86_400)
            }
            Level::Years(width) => {
                let (year, _, _) = civil_from_days(seconds.div_euclid(86_400));
                let start = year.div_euclid(width).saturating_mul(width);
                days_from_civil(start, 1, 1).saturating_mul(86_400)
            }
        }
    }

    fn name(self) -> String {
        match self {
            Level::Seconds(1) => "second".into(),
            Level::Seconds(60) => "minute".into(),
            Level::Seconds(3600) => "hour".into(),
            Level::Seconds(86_400) => "day".into(),
            Level::Seconds(w) if w % 3600 == 0 => format!("{} hours", w / 3600),
            Level::Seconds(w) => format!("{} minutes", w / 60),
            Level::Months(1) => "month".into(),
            Level::Months(_) => "quarter".into(),
            Level::Years(1) => "year".into(),
            Level::Years(w) => format!("{w} years"),
        }
    }

    fn label(self, key: i64) -> String {
        let (year, month, _) = civil_from_days(key.div_euclid(86_400));
        match self {
            Level::Seconds(1) => format_time(key, false).replace('T', " "),
            Level::Seconds(w) if w < 86_400 => {
                let mut text = format_time(key, false).replace('T', " ");
                text.truncate(text.len() - 3);
                text
            }
            Level::Seconds(_) => format_time(key, true),
            Level::Months(1) => format!("{year:04}-{month:02}"),
            Level::Months(_) => format!("{year:04}-Q{}", (month - 1) / 3 + 1),
            Level::Years(1) => format!("{year:04}"),
            Level::Years(_) => format!("{year}s"),
        }
    }
}

/// Aggregates of one series in one point.
#[derive(Debug, Clone, Copy)]
struct SeriesAcc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl SeriesAcc {
    const EMPTY: SeriesAcc = SeriesAcc {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn merge(&mut self, other: &SeriesAcc) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn value(&self, agg: Aggregate) -> Option<f64> {
        if agg == Aggregate::Count {
            return Some(self.count as f64);
        }
        if self.count == 0 {
            return None;
        }
        Some(match agg {
            Aggregate::Sum => self.sum,
            Aggregate::Mean => self.sum / self.count as f64,
            Aggregate::Min => self.min,
            Aggregate::Max => self.max,
            Aggregate::Count => self.count as f64,
        })
    }
}

#[derive(Debug, Clone)]
struct PointAcc {
    rows: u64,
    series: Vec<SeriesAcc>,
}

impl PointAcc {
    fn new(series: usize) -> PointAcc {
        PointAcc {
            rows: 0,
            series: vec![SeriesAcc::EMPTY; series],
        }
    }

    fn merge(&mut self, other: &PointAcc) {
        self.rows += other.rows;
        for (mine, theirs) in self.series.iter_mut().zip(&other.series) {
            mine.merge(theirs);
        }
    }
}

#[derive(Debug)]
enum XMode {
    /// A text column whose first value decides.
    Undecided,
    Time {
        level: usize,
        buckets: BTreeMap<i64, PointAcc>,
    },
    Category {
        numeric: bool,
        index: HashMap<String, PointAcc>,
        other: PointAcc,
    },
}

#[derive(Debug)]
struct ChartAcc {
    spec: ChartSpec,
    series: Vec<String>,
    x: usize,
    ys: Vec<usize>,
    points: usize,
    mode: XMode,
    left_out: u64,
}

/// One point of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The x value or bucket, as text (`2024-05`, a category, `(other)`).
    pub label: String,
    /// Rows that fell into it.
    pub rows: u64,
    /// Per series, the aggregate (`None`: no non-null value).
    pub values: Vec<Option<f64>>,
}

/// A chart, aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The heading.
    pub title: String,
    /// Bars or a line.
    pub kind: ChartKind,
    /// What each point shows.
    pub agg: Aggregate,
    /// The x column.
    pub x: String,
    /// The y columns, one series each.
    pub series: Vec<String>,
    /// The points, in axis order.
    pub points: Vec<Point>,
    /// For a time chart, the bucket width (`day`, `month`, ...).
    pub bucket: Option<String>,
    /// Rows left out: x null, or not a date in a time chart.
    pub left_out: u64,
}

impl Chart {
    /// A line under the chart's heading saying what a point is
    /// (`one point per day; 3 rows without x left out`).
    pub fn caption(&self) -> String {
        let mut text = match &self.bucket {
            Some(bucket) => format!(
                "{} of {} per {bucket}",
                self.agg.name(),
                self.series.join(", ")
            ),
            None => format!(
                "{} of {} per {} value",
                self.agg.name(),
                self.series.join(", "),
                self.x
            ),
        };
        if self.left_out > 0 {
            let _ = write!(
                text,
                "; {} row{} without a usable {} left out",
                self.left_out,
                if self.left_out == 1 { "" } else { "s" },
                self.x
            );
        }
        text
    }
}

impl ChartAcc {
    fn new(spec: &ChartSpec, schema: &Schema) -> Result<ChartAcc> {
        let column = |name: &str, role: &str| {
            schema.index_of(name).map_err(|_| {
                PluginError::invalid_input(format!(
                    "chart {role} names the column {name:?}, which the data does not have; it \
                     has: {}",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        };
        let x = column(&spec.x, "x")?;
        let series = spec.y.names();
        if series.is_empty() {
            return Err(PluginError::invalid_input(
                "chart y is an empty list: name at least one numeric column",
            ));
        }
        let mut ys = Vec::with_capacity(series.len());
        for name in &series {
            let index = column(name, "y")?;
            let data_type = schema.field(index).data_type();
            if !matches!(
                kind_of(data_type),
                Kind::Int | Kind::UInt | Kind::Float | Kind::Text
            ) {
                return Err(PluginError::invalid_input(format!(
                    "chart y column {name:?} has type {data_type}, which is not a number: \
                     name a numeric column"
                )));
            }
            ys.push(index);
        }
        let points = spec.points.unwrap_or(DEFAULT_POINTS);
        if !POINTS_RANGE.contains(&points) {
            return Err(PluginError::invalid_input(format!(
                "chart points {points} is out of range: use {} to {}",
                POINTS_RANGE.start(),
                POINTS_RANGE.end()
            )));
        }
        let x_type = schema.field(x).data_type();
        let mode = match kind_of(x_type) {
            Kind::Time => XMode::Time {
                level: 0,
                buckets: BTreeMap::new(),
            },
            Kind::Text => XMode::Undecided,
            kind => XMode::Category {
                numeric: matches!(kind, Kind::Int | Kind::UInt | Kind::Float),
                index: HashMap::new(),
                other: PointAcc::new(series.len()),
            },
        };
        Ok(ChartAcc {
            spec: spec.clone(),
            series,
            x,
            ys,
            points: points as usize,
            mode,
            left_out: 0,
        })
    }

    fn add(&mut self, batch: &RecordBatch, first_row: u64) -> Result<()> {
        let rows = batch.num_rows();
        let mut y_values: Vec<Vec<Option<f64>>> = Vec::with_capacity(self.ys.len());
        for (name, index) in self.series.iter().zip(&self.ys) {
            y_values.push(y_column(batch.column(*index).as_ref(), name, first_row)?);
        }
        let x_array = batch.column(self.x).as_ref();
        let x_texts = texts(x_array);
        if matches!(self.mode, XMode::Undecided) {
            let first = x_texts
                .as_ref()
                .and_then(|t| t.iter().flatten().find(|s| !s.trim().is_empty()).copied());
            if let Some(first) = first {
                self.mode = if parse_iso_time(first).is_some() {
                    XMode::Time {
                        level: 0,
                        buckets: BTreeMap::new(),
                    }
                } else {
                    XMode::Category {
                        numeric: false,
                        index: HashMap::new(),
                        other: PointAcc::new(self.series.len()),
                    }
                };
            }
        }
        let series = self.series.len();
        let add_values = |point: &mut PointAcc, row: usize| {
            point.rows += 1;
            for (acc, values) in point.series.iter_mut().zip(&y_values) {
                if let Some(value) = values[row] {
                    acc.add(value);
                }
            }
        };
        match &mut self.mode {
            XMode::Undecided => self.left_out += rows as u64,
            XMode::Time { level, buckets } => {
                let seconds: Vec<Option<i64>> = match &x_texts {
                    Some(texts) => texts.iter().map(|t| t.and_then(parse_iso_time)).collect(),
                    None => times(x_array),
                };
                for (row, value) in seconds.iter().enumerate() {
                    let Some(value) = value else {
                        self.left_out += 1;
                        continue;
                    };
                    let key = LEVELS[*level].key(*value);
                    add_values(
                        buckets.entry(key).or_insert_with(|| PointAcc::new(series)),
                        row,
                    );
                    while buckets.len() > self.points && *level + 1 < LEVELS.len() {
                        *level += 1;
                        let next = LEVELS[*level];
                        let mut merged: BTreeMap<i64, PointAcc> = BTreeMap::new();
                        for (key, point) in std::mem::take(buckets) {
                            match merged.entry(next.key(key)) {
                                std::collections::btree_map::Entry::Vacant(slot) => {
                                    slot.insert(point);
                                }
                                std::collections::btree_map::Entry::Occupied(mut slot) => {
                                    slot.get_mut().merge(&point)
                                }
                            }
                        }
                        *buckets = merged;
                    }
                }
            }
            XMode::Category { index, other, .. } => {
                let formatter = match &x_texts {
                    Some(_) => None,
                    None => Some(ArrayFormatter::try_new(x_array, &DISPLAY).map_err(|err| {
                        PluginError::unsupported(format!(
                            "chart x column {:?} cannot be shown as text: {err}",
                            self.spec.x
                        ))
                    })?),
                };
                let mut buffer = String::new();
                for row in 0..rows {
                    let label: &str = match (&x_texts, &formatter) {
                        (Some(texts), _) => match texts[row] {
                            Some(text) => text,
                            None => {
                                self.left_out += 1;
                                continue;
                            }
                        },
                        (None, Some(formatter)) => {
                            if x_array.is_null(row) {
                                self.left_out += 1;
                                continue;
                            }
                            buffer.clear();
                            let _ = write!(buffer, "{}", formatter.value(row));
                            &buffer
                        }
                        (None, None) => continue,
                    };
                    if let Some(point) = index.get_mut(label) {
                        add_values(point, row);
                    } else if index.len() < CATEGORY_LIMIT {
                        let mut point = PointAcc::new(series);
                        add_values(&mut point, row);
                        index.insert(label.to_owned(), point);
                    } else {
                        add_values(other, row);
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Chart {
        let agg = self.spec.agg;
        let values = |point: &PointAcc| -> Vec<Option<f64>> {
            point.series.iter().map(|s| s.value(agg)).collect()
        };
        let mut bucket = None;
        let points: Vec<Point> = match self.mode {
            XMode::Undecided => Vec::new(),
            XMode::Time {
                mut level,
                mut buckets,
            } => {
                // The coarsest width that merges no two points (a single
                // point stays at a day at most): dates read as days, not
                // as midnights to the second.
                while level + 1 < LEVELS.len() {
                    let next = LEVELS[level + 1];
                    if buckets.len() <= 1 && matches!(next, Level::Months(_) | Level::Years(_)) {
                        break;
                    }
                    let merged: BTreeMap<i64, PointAcc> = buckets
                        .iter()
                        .map(|(key, point)| (next.key(*key), point.clone()))
                        .collect();
                    if merged.len() != buckets.len() {
                        break;
                    }
                    buckets = merged;
                    level += 1;
                }
                let level = LEVELS[level];
                bucket = Some(level.name());
                buckets
                    .iter()
                    .map(|(key, point)| Point {
                        label: level.label(*key),
                        rows: point.rows,
                        values: values(point),
                    })
                    .collect()
            }
            XMode::Category {
                numeric,
                index,
                mut other,
            } => {
                let mut all: Vec<(String, PointAcc)> = index.into_iter().collect();
                // The most rows first; ties by label, so the order is stable.
                all.sort_by(|a, b| b.1.rows.cmp(&a.1.rows).then_with(|| a.0.cmp(&b.0)));
                let keep = if all.len() + usize::from(other.rows > 0) > self.points {
                    self.points - 1
                } else {
                    all.len()
                };
                for (_, point) in all.drain(keep..) {
                    other.merge(&point);
                }
                if numeric {
                    all.sort_by(|a, b| {
                        let a = a.0.parse::<f64>().unwrap_or(f64::NAN);
                        let b = b.0.parse::<f64>().unwrap_or(f64::NAN);
                        a.total_cmp(&b)
                    });
                }
                let mut points: Vec<Point> = all
                    .iter()
                    .map(|(label, point)| Point {
                        label: label.clone(),
                        rows: point.rows,
                        values: values(point),
                    })
                    .collect();
                if other.rows > 0 {
                    points.push(Point {
                        label: OTHER_LABEL.to_owned(),
                        rows: other.rows,
                        values: values(&other),
                    });
                }
                points
            }
        };
        let title = self.spec.title.clone().unwrap_or_else(|| {
            format!(
                "{} of {} by {}",
                agg.name(),
                self.series.join(", "),
                self.spec.x
            )
        });
        Chart {
            title,
            kind: self.spec.kind,
            agg,
            x: self.spec.x,
            series: self.series,
            points,
            bucket,
            left_out: self.left_out,
        }
    }
}

const DISPLAY: FormatOptions<'static> = FormatOptions::new().with_display_error(false);

/// The values of a y column as numbers; a text value that is not a number
/// is refused, naming its row.
fn y_column(array: &dyn Array, name: &str, first_row: u64) -> Result<Vec<Option<f64>>> {
    if let Some(texts) = texts(array) {
        return texts
            .iter()
            .enumerate()
            .map(|(row, text)| match text {
                None => Ok(None),
                Some(text) if text.trim().is_empty() => Ok(None),
                Some(text) => match parse_number(text) {
                    Some(ParsedNumber::Int(v)) => Ok(Some(v as f64)),
                    Some(ParsedNumber::Float(v)) => Ok(Some(v)),
                    None => Err(PluginError::invalid_input(format!(
                        "chart y column {name:?} holds {text:?} in row {}, which is not a \
                         number: chart a numeric column, or filter such rows out",
                        first_row + row as u64 + 1
                    ))),
                },
            })
            .collect();
    }
    match kind_of(array.data_type()) {
        Kind::Int | Kind::UInt => Ok(ints(array)?
            .into_iter()
            .map(|v| v.map(|v| v as f64))
            .collect()),
        _ => floats(array),
    }
}

// ---------------------------------------------------------------------------
// The builder

/// Computes a [`Summary`] and [`Chart`]s from the batches of an export.
pub struct ReportBuilder {
    names: Vec<String>,
    columns: Vec<ColumnAcc>,
    nulls: Vec<u64>,
    rows: u64,
    charts: Vec<ChartAcc>,
}

/// What a [`ReportBuilder`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The summary.
    pub summary: Summary,
    /// The charts, in the order asked.
    pub charts: Vec<Chart>,
}

impl ReportBuilder {
    /// Checks the charts against `schema` (columns exist, y columns are
    /// numbers or text) before any output exists.
    pub fn new(schema: &Schema, charts: &[ChartSpec]) -> Result<ReportBuilder> {
        let columns = schema
            .fields()
            .iter()
            .map(|field| match kind_of(field.data_type()) {
                Kind::Int | Kind::UInt | Kind::Float => ColumnAcc::Numbers(Numbers::new()),
                Kind::Text => ColumnAcc::Text {
                    distinct: DistinctCounter::new(),
                    numbers: Some(Numbers::new()),
                },
                Kind::Time => ColumnAcc::Time {
                    date_only: matches!(field.data_type(), DataType::Date32),
                    min: None,
                    max: None,
                },
                Kind::Bool => ColumnAcc::Bool {
                    trues: 0,
                    falses: 0,
                },
                Kind::Other => ColumnAcc::Other,
            })
            .collect();
        let charts = charts
            .iter()
            .map(|spec| ChartAcc::new(spec, schema))
            .collect::<Result<Vec<_>>>()?;
        Ok(ReportBuilder {
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            columns,
            nulls: vec![0; schema.fields().len()],
            rows: 0,
            charts,
        })
    }

    /// Adds one batch (of the schema given to [`ReportBuilder::new`]).
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_columns() != self.columns.len() {
            return Err(PluginError::internal(
                "a batch has other columns than the report's schema",
            ));
        }
        for (index, acc) in self.columns.iter_mut().enumerate() {
            let array = batch.column(index).as_ref();
            self.nulls[index] += array.logical_null_count() as u64;
            match acc {
                ColumnAcc::Numbers(numbers) => match kind_of(array.data_type()) {
                    Kind::Int | Kind::UInt => {
                        for value in ints(array)?.into_iter().flatten() {
                            numbers.add_int(value);
                        }
                    }
                    _ => {
                        for value in floats(array)?.into_iter().flatten() {
                            numbers.add_float(value);
                        }
                    }
                },
                ColumnAcc::Text { distinct, numbers } => {
                    for text in texts(array).unwrap_or_default().into_iter().flatten() {
                        distinct.add(text);
                        if let Some(acc) = numbers {
                            if text.trim().is_empty() {
                                continue;
                            }
                            match parse_number(text) {
                                Some(ParsedNumber::Int(v)) => acc.add_int(v),
                                Some(ParsedNumber::Float(v)) => acc.add_float(v),
                                None => *numbers = None,
                            }
                        }
                    }
                }
                ColumnAcc::Time { min, max, .. } => {
                    for value in times(array).into_iter().flatten() {
                        *min = Some(min.map_or(value, |m| m.min(value)));
                        *max = Some(max.map_or(value, |m| m.max(value)));
                    }
                }
                ColumnAcc::Bool { trues, falses } => {
                    for value in array.as_boolean().iter().flatten() {
                        if value {
                            *trues += 1;
                        } else {
                            *falses += 1;
                        }
                    }
                }
                ColumnAcc::Other => {}
            }
        }
        for chart in &mut self.charts {
            chart.add(batch, self.rows)?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The summary and the charts.
    pub fn finish(self) -> Report {
        let columns = self
            .names
            .into_iter()
            .zip(self.columns)
            .zip(self.nulls)
            .map(|((name, acc), nulls)| ColumnSummary {
                name,
                nulls,
                stats: match acc {
                    ColumnAcc::Numbers(numbers) => ColumnStats::Numbers(numbers.stats()),
                    ColumnAcc::Text { distinct, numbers } => ColumnStats::Text {
                        distinct: distinct.count(),
                        numbers: numbers.and_then(|n| n.stats()),
                    },
                    ColumnAcc::Time {
                        date_only,
                        min,
                        max,
                    } => ColumnStats::Time {
                        min: min.map(|v| format_time(v, date_only)),
                        max: max.map(|v| format_time(v, date_only)),
                    },
                    ColumnAcc::Bool { trues, falses } => ColumnStats::Bool { trues, falses },
                    ColumnAcc::Other => ColumnStats::Other,
                },
            })
            .collect();
        Report {
            summary: Summary {
                row_count: self.rows,
                columns,
            },
            charts: self.charts.into_iter().map(ChartAcc::finish).collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// Plotting

/// A rectangle, y downwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// A bar of a bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Where it is drawn.
    pub rect: Rect,
    /// Its series (index into [`Chart::series`]).
    pub series: usize,
    /// Its point (index into [`Chart::points`]).
    pub point: usize,
}

/// A marked point of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Centre, x.
    pub x: f32,
    /// Centre, y.
    pub y: f32,
    /// Its series.
    pub series: usize,
    /// Its point.
    pub point: usize,
}

/// A label along an axis.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisLabel {
    /// Where: x for the x axis (centre of the text), y for the y axis
    /// (the tick's height).
    pub at: f32,
    /// The text.
    pub text: String,
}

/// An axis title.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisTitle {
    /// Where, across.
    pub x: f32,
    /// The text's baseline.
    pub baseline: f32,
    /// The text.
    pub text: String,
}

/// A chart laid out on a canvas of given size, y downwards: everything a
/// drawing formatter needs, in canvas units.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// The plot area, inside the axes.
    pub area: Rect,
    /// Y ticks: gridlines and labels (right-aligned left of the area).
    pub y_ticks: Vec<AxisLabel>,
    /// X labels, thinned out so they do not overlap (centred under the area).
    pub x_labels: Vec<AxisLabel>,
    /// The y of the zero line (the bars' base).
    pub baseline: f32,
    /// Bar charts: one bar per point and series with a value.
    pub bars: Vec<Bar>,
    /// Line charts: per series, its marked points in order (a line joins
    /// consecutive marks).
    pub lines: Vec<Vec<Mark>>,
    /// Where the legend starts (a row of swatches above the area, each a
    /// square of the font size and its series name), when there are
    /// several series.
    pub legend: Option<(f32, f32)>,
    /// The baseline of the x labels.
    pub x_label_baseline: f32,
    /// The x axis title (centred on `x`): the x column, and the bucket.
    pub x_title: AxisTitle,
    /// The y axis title (left-aligned at `x`), above the area: what is drawn.
    pub y_title: AxisTitle,
}

/// Ticks at 1, 2 or 5 times a power of ten covering `low..=high`.
pub fn nice_ticks(low: f64, high: f64, target: usize) -> Vec<f64> {
    let (low, high) = if low == high {
        (low - 1.0, high + 1.0)
    } else {
        (low, high)
    };
    let raw = (high - low) / target.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let start = (low / step).floor() as i64;
    let end = (high / step).ceil() as i64;
    (start..=end.max(start + 1))
        .take(100)
        .map(|i| {
            let v = i as f64 * step;
            // Keep 0.30000000000000004 from showing as such.
            (v / step).round() * step
        })
        .collect()
}

/// Palette for series, readable on white and in greyscale print (a line
/// series also differs by dash pattern; see [`DASHES`]).
pub const COLORS: [(u8, u8, u8); 6] = [
    (31, 119, 180),
    (214, 96, 39),
    (44, 160, 44),
    (148, 103, 189),
    (140, 86, 75),
    (23, 190, 207),
];

/// Dash patterns for line series, in canvas units (empty: solid).
pub const DASHES: [&[f32]; 6] = [
    &[],
    &[6.0, 3.0],
    &[2.0, 2.0],
    &[8.0, 3.0, 2.0, 3.0],
    &[4.0, 4.0],
    &[1.0, 3.0],
];

impl Chart {
    /// Lays the chart out on a `width` × `height` canvas whose labels are
    /// `font_size` units high (label widths are estimated at 0.6 em a character).
    pub fn plot(&self, width: f32, height: f32, font_size: f32) -> Plot {
        let values: Vec<f64> = self
            .points
            .iter()
            .flat_map(|p| p.values.iter().flatten().copied())
            .filter(|v| v.is_finite())
            .collect();
        let low = values.iter().copied().fold(0.0f64, f64::min);
        let high = values.iter().copied().fold(0.0f64, f64::max);
        let ticks = nice_ticks(low, high, 5);
        let (axis_low, axis_high) = (
            ticks.first().copied().unwrap_or(0.0),
            ticks.last().copied().unwrap_or(1.0),
        );
        let tick_labels: Vec<String> = ticks.iter().map(|t| format_compact(*t)).collect();
        let char_width = font_size * 0.6;
        let widest = tick_labels
            .iter()
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(1) as f32;
        let legend_height = if self.series.len() > 1 {
            font_size * 1.8
        } else {
            0.0
        };
        // From the top: the legend, the y axis title, the plot area, the
        // x labels, the x axis title.
        let area = Rect {
            x: widest * char_width + font_size,
            y: legend_height + font_size * 1.8,
            width: (width - widest * char_width - font_size * 2.0).max(1.0),
            height: (height - legend_height - font_size * 5.2).max(1.0),
        };
        let bottom = area.y + area.height;
        let y_title = AxisTitle {
            x: 0.0,
            baseline: legend_height + font_size * 1.0,
            text: if self.series.len() == 1 {
                format!("{} of {}", self.agg.name(), self.series[0])
            } else {
                self.agg.name().to_owned()
            },
        };
        let x_title = AxisTitle {
            x: area.x + area.width / 2.0,
            baseline: bottom + font_size * 2.9,
            text: match &self.bucket {
                Some(bucket) => format!("{} (per {bucket})", self.x),
                None => self.x.clone(),
            },
        };
        let y_of = |v: f64| -> f32 {
            let span = (axis_high - axis_low).max(f64::MIN_POSITIVE);
            area.y + area.height - ((v - axis_low) / span) as f32 * area.height
        };
        let y_ticks = ticks
            .iter()
            .zip(tick_labels)
            .map(|(v, text)| AxisLabel { at: y_of(*v), text })
            .collect();
        let n = self.points.len().max(1);
        let slot = area.width / n as f32;
        let centre = |i: usize| area.x + slot * (i as f32 + 0.5);
        // Show every k-th label so that none overlaps the next.
        let widest_label = self
            .points
            .iter()
            .map(|p| p.label.chars().count().min(24))
            .max()
            .unwrap_or(1) as f32;
        let stride = (((widest_label * char_width + font_size) / slot).ceil() as usize).max(1);
        let x_labels = self
            .points
            .iter()
            .enumerate()
            .filter(|(i, _)| i % stride == 0)
            .map(|(i, p)| AxisLabel {
                at: centre(i),
                text: shorten(&p.label, 24),
            })
            .collect();
        let baseline = y_of(0.0);
        let series = self.series.len().max(1);
        let mut bars = Vec::new();
        let mut lines = vec![Vec::new(); self.series.len()];
        for (i, point) in self.points.iter().enumerate() {
            for (s, value) in point.values.iter().enumerate() {
                let Some(value) = value.filter(|v| v.is_finite()) else {
                    continue;
                };
                match self.kind {
                    ChartKind::Bar => {
                        let group = slot * 0.8;
                        let w = group / series as f32;
                        let x = centre(i) - group / 2.0 + w * s as f32;
                        let y = y_of(value);
                        bars.push(Bar {
                            rect: Rect {
                                x,
                                y: y.min(baseline),
                                width: w,
                                height: (y - baseline).abs(),
                            },
                            series: s,
                            point: i,
                        });
                    }
                    ChartKind::Line => lines[s].push(Mark {
                        x: centre(i),
                        y: y_of(value),
                        series: s,
                        point: i,
                    }),
                }
            }
        }
        Plot {
            area,
            y_ticks,
            x_labels,
            baseline,
            bars,
            lines,
            legend: (self.series.len() > 1).then_some((area.x, font_size * 0.2)),
            x_label_baseline: bottom + font_size * 1.3,
            x_title,
            y_title,
        }
    }
}

/// `text` cut to `max` characters with `…`.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn spec(json: serde_json::Value) -> ChartSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn summary_counts_numbers_text_and_nulls() {
        let b = batch(vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(3), None, Some(-1), Some(10)])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![1.5, f64::NAN, 2.5, 0.0])) as ArrayRef,
            ),
            (
                "t",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    None,
                ])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec!["1", "2", "", "4"])) as ArrayRef,
            ),
            (
                "d",
                Arc::new(Date32Array::from(vec![
                    Some(19_844),
                    None,
                    Some(0),
                    Some(1),
                ])) as ArrayRef,
            ),
        ]);
        let mut builder = ReportBuilder::new(&b.schema(), &[]).unwrap();
        builder.add(&b).unwrap();
        builder.add(&b).unwrap();
        let report = builder.finish();
        assert_eq!(report.summary.row_count, 8);
        let cells: Vec<[String; 7]> = report.summary.columns.iter().map(|c| c.cells()).collect();
        assert_eq!(
            cells[0],
            ["n", "2", "-1", "10", "24", "4", ""].map(String::from)
        );
        assert_eq!(
            cells[1],
            ["f", "0", "0", "2.5", "8", "1.33333", ""].map(String::from)
        );
        assert_eq!(cells[2], ["t", "2", "", "", "", "", "2"].map(String::from));
        assert_eq!(
            cells[3],
            ["s", "0", "1", "4", "14", "2.33333", "4"].map(String::from)
        );
        assert_eq!(cells[4][2], "1970-01-01");
        assert_eq!(cells[4][3], "2024-05-01");
    }

    #[test]
    fn distinct_counts_are_exact_then_estimated() {
        let mut counter = DistinctCounter::new();
        for i in 0..DISTINCT_EXACT_LIMIT {
            counter.add(&format!("v{i}"));
            counter.add(&format!("v{i}"));
        }
        assert_eq!(
            counter.count(),
            Distinct::Exact(DISTINCT_EXACT_LIMIT as u64)
        );
        for i in 0..200_000 {
            counter.add(&format!("v{i}"));
        }
        let Distinct::Estimate(estimate) = counter.count() else {
            panic!("still exact")
        };
        let error = (estimate as f64 - 200_000.0).abs() / 200_000.0;
        assert!(error < 0.06, "estimate {estimate}");
        assert_eq!(counter.registers.len(), HLL_REGISTERS, "memory is bounded");
        assert!(counter.count().to_string().starts_with('≈'));
    }

    #[test]
    fn time_charts_coarsen_into_bounded_buckets() {
        // Three years of days: more than 100 points of days, so months.
        let days: Vec<i32> = (0..365 * 3).collect();
        let ones = vec![1i64; days.len()];
        let b = batch(vec![
            ("day", Arc::new(Date32Array::from(days)) as ArrayRef),
            ("n", Arc::new(Int64Array::from(ones)) as ArrayRef),
        ]);
        let mut builder = ReportBuilder::new(
            &b.schema(),
            &[spec(serde_json::json!({"x": "day", "y": "n"}))],
        )
        .unwrap();
        builder.add(&b).unwrap();
        let chart = &builder.finish().charts[0];
        assert_eq!(chart.bucket.as_deref(), Some("month"));
        assert_eq!(chart.points.len(), 36);
        assert_eq!(chart.points[0].label, "1970-01");
        assert_eq!(chart.points[0].values, vec![Some(31.0)]);
        assert_eq!(chart.points[1].values, vec![Some(28.0)]);
        let total: f64 = chart.points.iter().map(|p| p.values[0].unwrap()).sum();
        assert_eq!(total, 1095.0);
    }

    #[test]
    fn text_dates_and_categories() {
        let b = batch(vec![
            (
                "day",
                Arc::new(StringArray::from(vec![
                    "2024-05-01",
                    "2024-05-01",
                    "2024-05-02",
                    "oops",
                ])) as ArrayRef,
            ),
            (
                "who",
                Arc::new(StringArray::from(vec!["a", "b", "a", "c"])) as ArrayRef,
            ),
            (
                "n",
                Arc::new(StringArray::from(vec!["1", "2", "3.5", ""])) as ArrayRef,
            ),
        ]);
        let specs = [
            spec(serde_json::json!({"x": "day", "y": "n", "kind": "line"})),
            spec(serde_json::json!({"x": "who", "y": ["n"], "points": 2, "agg": "count"})),
        ];
        let mut builder = ReportBuilder::new(&b.schema(), &specs).unwrap();
        builder.add(&b).unwrap();
        let report = builder.finish();
        let time = &report.charts[0];
        assert_eq!(time.bucket.as_deref(), Some("day"));
        let got: Vec<(&str, Option<f64>)> = time
            .points
            .iter()
            .map(|p| (p.label.as_str(), p.values[0]))
            .collect();
        assert_eq!(got, [("2024-05-01", Some(3.0)), ("2024-05-02", Some(3.5))]);
        assert_eq!(time.left_out, 1);
        let cats = &report.charts[1];
        let got: Vec<(&str, u64)> = cats
            .points
            .iter()
            .map(|p| (p.label.as_str(), p.rows))
            .collect();
        assert_eq!(got, [("a", 2), (OTHER_LABEL, 2)]);
        assert_eq!(
            cats.points[1].values,
            vec![Some(1.0)],
            "count of non-null y"
        );
    }

    #[test]
    fn bad_charts_are_refused() {
        let b = batch(vec![
            ("n", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("d", Arc::new(Date32Array::from(vec![1])) as ArrayRef),
        ]);
        for (json, needle) in [
            (serde_json::json!({"x": "nope", "y": "n"}), "nope"),
            (serde_json::json!({"x": "n", "y": "d"}), "not a number"),
            (serde_json::json!({"x": "n", "y": []}), "empty"),
            (
                serde_json::json!({"x": "n", "y": "n", "points": 1}),
                "points",
            ),
        ] {
            let err = ReportBuilder::new(&b.schema(), &[spec(json.clone())])
                .err()
                .unwrap();
            assert!(err.message.contains(needle), "{json}: {}", err.message);
        }
        let text = batch(vec![(
            "t",
            Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
        )]);
        let mut builder = ReportBuilder::new(
            &text.schema(),
            &[spec(serde_json::json!({"x": "t", "y": "t"}))],
        )
        .unwrap();
        let err = builder.add(&text).unwrap_err();
        assert!(err.message.contains("row 1"), "{}", err.message);
        assert!(serde_json::from_value::<ChartSpec>(
            serde_json::json!({"x": "a", "y": "b", "z": 1})
        )
        .is_err());
        assert!(check_options(
            Audience::Table,
            Some(&ChartOption::One(spec(
                serde_json::json!({"x": "a", "y": "b"})
            )))
        )
        .is_err());
    }

    #[test]
    fn numbers_and_ticks_read_well() {
        assert_eq!(format_number(1.0 / 3.0), "0.333333");
        assert_eq!(format_number(1234.5678), "1234.57");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(1e20), "1.00000e20");
        assert_eq!(format_compact(1_500_000.0), "1.5M");
        assert_eq!(
            nice_ticks(0.0, 97.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(nice_ticks(-3.0, 0.0, 5).first(), Some(&-3.0));
        assert_eq!(
            parse_iso_time("2024-05-01T10:00:00+02:00"),
            Some(days_from_civil(2024, 5, 1) * 86_400 + 36_000)
        );
        assert_eq!(parse_iso_time("2024-13-01"), None);
        assert_eq!(
            civil_from_days(days_from_civil(1999, 12, 31)),
            (1999, 12, 31)
        );
    }

    #[test]
    fn plots_put_one_bar_per_point_inside_the_area() {
        let chart = Chart {
            title: "t".into(),
            kind: ChartKind::Bar,
            agg: Aggregate::Sum,
            x: "x".into(),
            series: vec!["a".into(), "b".into()],
            points: (0..10)
                .map(|i| Point {
                    label: format!("p{i}"),
                    rows: 1,
                    values: vec![Some(i as f64), Some(-(i as f64))],
                })
                .collect(),
            bucket: None,
            left_out: 0,
        };
        let plot = chart.plot(600.0, 300.0, 10.0);
        assert_eq!(plot.bars.len(), 20);
        for bar in &plot.bars {
            assert!(
                bar.rect.x >= plot.area.x
                    && bar.rect.x + bar.rect.width <= plot.area.x + plot.area.width + 0.01
            );
            assert!(
                bar.rect.y >= plot.area.y - 0.01
                    && bar.rect.y + bar.rect.height <= plot.area.y + plot.area.height + 0.01
            );
        }
        assert!(plot.legend.is_some());
    }
}
