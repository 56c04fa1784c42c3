//! [`Inference`]: guessing column types from every value, never losing one.

use super::parse::{date_days, read_timestamp};
use super::ColumnType;
use std::fmt::{self, Write as _};
use std::ops::BitOr;

/// A set of the types inference may pick: what a value's source allows.
///
/// A CSV cell may be anything ([`Candidates::ALL`]); a JSON number may only
/// become a number, a JSON string only a date or a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidates(u8);

impl Candidates {
    /// No type: the column keeps its text.
    pub const NONE: Candidates = Candidates(0);
    /// `int64`.
    pub const INT64: Candidates = Candidates(1);
    /// `float64`.
    pub const FLOAT64: Candidates = Candidates(2);
    /// `bool`.
    pub const BOOL: Candidates = Candidates(4);
    /// `date`.
    pub const DATE: Candidates = Candidates(8);
    /// `timestamp`.
    pub const TIMESTAMP: Candidates = Candidates(16);
    /// Every type inference picks.
    pub const ALL: Candidates = Candidates(31);

    /// Whether every type in `other` is in `self`.
    pub fn contains(self, other: Candidates) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Candidates {
    type Output = Candidates;
    fn bitor(self, other: Candidates) -> Candidates {
        Candidates(self.0 | other.0)
    }
}

/// Picked in this order when several still fit (every canonical integer
/// that fits an `f64` exactly is also a float spelling).
const PREFERENCE: [(Candidates, ColumnType); 5] = [
    (Candidates::INT64, ColumnType::Int64),
    (Candidates::FLOAT64, ColumnType::Float64),
    (Candidates::BOOL, ColumnType::Bool),
    (Candidates::DATE, ColumnType::Date),
    (Candidates::TIMESTAMP, ColumnType::Timestamp),
];

#[derive(Debug, Clone, Copy)]
struct Guess {
    left: Candidates,
    seen_value: bool,
}

/// Guesses the type of each column from all its values, so that no value is
/// lost: a column gets a type only if every value it holds is written
/// exactly the way that type writes it back.
///
/// Feed every value of every column ([`Inference::feed`]), then
/// [`Inference::finish`]. An empty value is an empty cell (a null in a typed
/// column) and decides nothing; a column of only empty cells stays `text`.
///
/// | type | every non-empty value is |
/// | --- | --- |
/// | `int64` | `-?(0\|[1-9][0-9]*)` and fits an `i64`, but not `-0`: no plus sign, no leading zeros (`007`, `00123` keep the column text), no spaces |
/// | `float64` | a finite `f64` written exactly as Rust's `Display` writes that `f64` back (the shortest round trip, never an exponent), but not a negative zero: `1.5`, `0.25`, `-3`, `100` fit; `1.50`, `-0.0`, `1e5`, `1e400`, `NaN`, `inf`, `.5`, `+1.5`, `3.14159265358979323846` do not |
/// | `bool` | `true` or `false` (lowercase) |
/// | `date` | `YYYY-MM-DD`, a real calendar date |
/// | `timestamp` | `YYYY-MM-DDTHH:MM:SS` with an optional fraction of 1 to 6 digits and the offset `Z` or `+00:00`; any other offset (`+02:00`, `-00:00`), a space or lowercase `t`, or a finer fraction keeps the column text, since a UTC timestamp would not keep them |
///
/// When several fit, the first in this order wins: `int64`, `float64`
/// (a column mixing `2` and `1.5` is `float64`: `2` reads back as `2`),
/// `bool`, `date`, `timestamp`. Anything else keeps the column `text`.
/// `decimal(P,S)` is never guessed.
#[derive(Debug, Clone)]
pub struct Inference {
    columns: Vec<Guess>,
}

impl Inference {
    /// An inference over `columns` columns, numbered from 0.
    pub fn new(columns: usize) -> Self {
        Inference {
            columns: vec![
                Guess {
                    left: Candidates::ALL,
                    seen_value: false,
                };
                columns
            ],
        }
    }

    /// Feeds a text value of `column` that may become any type.
    pub fn feed(&mut self, column: usize, value: &str) {
        self.feed_as(column, value, Candidates::ALL);
    }

    /// Feeds a value of `column` whose source allows only `allowed`.
    /// An empty value decides nothing. A column out of range is ignored.
    pub fn feed_as(&mut self, column: usize, value: &str, allowed: Candidates) {
        if value.is_empty() {
            return;
        }
        let Some(guess) = self.columns.get_mut(column) else {
            return;
        };
        guess.seen_value = true;
        let mut left = guess.left.0 & allowed.0;
        if left == 0 {
            guess.left = Candidates::NONE;
            return;
        }
        let bytes = value.as_bytes();
        let numeric_start = matches!(bytes[0], b'-' | b'0'..=b'9');
        if left & Candidates::INT64.0 != 0 && !(numeric_start && is_canonical_int(value)) {
            left &= !Candidates::INT64.0;
        }
        if left & Candidates::FLOAT64.0 != 0 && !(numeric_start && is_round_trip_float(value)) {
            left &= !Candidates::FLOAT64.0;
        }
        if left & Candidates::BOOL.0 != 0 && value != "true" && value != "false" {
            left &= !Candidates::BOOL.0;
        }
        if left & Candidates::DATE.0 != 0 && date_days(bytes).is_none() {
            left &= !Candidates::DATE.0;
        }
        if left & Candidates::TIMESTAMP.0 != 0
            && !read_timestamp(value).is_ok_and(|instant| instant.plain_utc)
        {
            left &= !Candidates::TIMESTAMP.0;
        }
        guess.left = Candidates(left);
    }

    /// Records a value of `column` that fits no type (a nested JSON value, an
    /// empty JSON string): the column keeps its text.
    pub fn rule_out(&mut self, column: usize) {
        if let Some(guess) = self.columns.get_mut(column) {
            guess.seen_value = true;
            guess.left = Candidates::NONE;
        }
    }

    /// Whether every column already keeps its text, so reading on cannot
    /// change the result.
    pub fn is_settled(&self) -> bool {
        self.columns
            .iter()
            .all(|guess| guess.left == Candidates::NONE)
    }

    /// The type of every column, in column order; [`ColumnType::Text`]
    /// where no type fits every value or the column had no values.
    pub fn finish(&self) -> Vec<ColumnType> {
        self.columns
            .iter()
            .map(|guess| {
                if !guess.seen_value {
                    return ColumnType::Text;
                }
                PREFERENCE
                    .iter()
                    .find(|(candidate, _)| guess.left.contains(*candidate))
                    .map_or(ColumnType::Text, |&(_, column_type)| column_type)
            })
            .collect()
    }
}

/// `-?(0|[1-9][0-9]*)` that fits an `i64`, and not `-0`.
pub(crate) fn is_canonical_int(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == text.len(),
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    canonical && text.parse::<i64>().is_ok()
}

/// A finite `f64`, not a negative zero, spelled as `Display` writes it.
pub(crate) fn is_round_trip_float(text: &str) -> bool {
    // Display never writes more than a sign, digits and one point; this
    // also refuses `inf`, `NaN` and exponents before parsing.
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return false;
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && !(value == 0.0 && value.is_sign_negative()) => {
            let mut matcher = Matcher {
                expected: text.as_bytes(),
            };
            write!(matcher, "{value}").is_ok() && matcher.expected.is_empty()
        }
        _ => false,
    }
}

/// A writer that checks what is written against the expected text, so a
/// spelling is compared without allocating.
struct Matcher<'a> {
    expected: &'a [u8],
}

impl fmt::Write for Matcher<'_> {
    fn write_str(&mut self, written: &str) -> fmt::Result {
        match self.expected.strip_prefix(written.as_bytes()) {
            Some(rest) => {
                self.expected = rest;
                Ok(())
            }
            None => Err(fmt::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ints() {
        for good in [
            "0",
            "7",
            "-7",
            "123",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert!(is_canonical_int(good), "{good}");
        }
        for bad in [
            "",
            "-",
            "-0",
            "00",
            "007",
            "00123",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "9223372036854775808",
            "12345678901234567890",
            "--1",
            "0x1",
        ] {
            assert!(!is_canonical_int(bad), "{bad}");
        }
    }

    #[test]
    fn round_trip_floats() {
        for good in [
            "1.5", "0.25", "-3", "100", "0", "0.1", "0.00001", "2", "-1.5",
        ] {
            assert!(is_round_trip_float(good), "{good}");
        }
        for bad in [
            "",
            "1.50",
            "-0.0",
            "-0",
            "1e5",
            "1e400",
            "NaN",
            "inf",
            "-inf",
            ".5",
            "5.",
            "+1.5",
            "3.14159265358979323846",
            "007",
            "1.0",
            "12345678901234567890",
            "9007199254740993",
        ] {
            assert!(!is_round_trip_float(bad), "{bad}");
        }
    }

    #[test]
    fn one_column_per_rule() {
        let columns: [&[&str]; 9] = [
            &["1", "-2", "", "30"],
            &["1.5", "2", "", "0.25"],
            &["true", "false", ""],
            &["2024-05-01", "", "1999-12-31"],
            &[
                "2024-05-01T10:00:00Z",
                "2024-05-01T10:00:00.123456+00:00",
                "",
            ],
            &["", ""],
            &["1", "x"],
            &["True", "false"],
            &["2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00"],
        ];
        let mut inference = Inference::new(columns.len());
        for (column, values) in columns.iter().enumerate() {
            for value in *values {
                inference.feed(column, value);
            }
        }
        assert_eq!(
            inference.finish(),
            [
                ColumnType::Int64,
                ColumnType::Float64,
                ColumnType::Bool,
                ColumnType::Date,
                ColumnType::Timestamp,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
            ]
        );
        assert!(!inference.is_settled());
    }

    #[test]
    fn sources_restrict_the_candidates() {
        let mut inference = Inference::new(4);
        // A JSON string "12" is text, a JSON number 12 an int.
        inference.feed_as(0, "12", Candidates::DATE | Candidates::TIMESTAMP);
        inference.feed_as(1, "12", Candidates::INT64 | Candidates::FLOAT64);
        inference.feed_as(2, "2024-05-01", Candidates::DATE | Candidates::TIMESTAMP);
        inference.feed_as(3, "1", Candidates::INT64 | Candidates::FLOAT64);
        inference.rule_out(3);
        inference.feed_as(3, "2", Candidates::INT64 | Candidates::FLOAT64);
        assert_eq!(
            inference.finish(),
            [
                ColumnType::Text,
                ColumnType::Int64,
                ColumnType::Date,
                ColumnType::Text
            ]
        );
        let mut settled = Inference::new(2);
        assert!(!settled.is_settled());
        settled.feed(0, "x");
        settled.rule_out(1);
        assert!(settled.is_settled());
        // Out of range is ignored, not a panic.
        settled.feed(9, "1");
        settled.rule_out(9);
    }
}
