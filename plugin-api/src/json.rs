//! JSON conventions shared by loaders and formatters so values survive a round trip.
//!
//! Two rules keep text exports lossless:
//! - A text value is written as a JSON number only when the text is exactly how
//!   that number is spelled ([`is_number_spelling`]): `42` and `1.5` become
//!   numbers; `007`, `1.50`, `1e5`, `NaN` and `12345678901234567890123` stay strings.
//! - A column holding raw JSON values (numbers, booleans, objects, arrays,
//!   strings with their quotes) is a `Utf8` column tagged with the canonical
//!   Arrow extension type `arrow.json` ([`json_field`]). JSON formatters copy
//!   such values verbatim; text formatters show strings unquoted
//!   ([`json_value_text`]) and every other value as its JSON text.
//!
//! Nested Arrow values (lists, structs, maps) are written as JSON by one
//! encoder, [`NestedEncoder`] (or [`NestedValues`] for a whole column's
//! text): [`crate::rows::Rows`] shows them as [`crate::rows::Cell::Json`],
//! and a JSON formatter can copy them as real JSON values.

mod nested;
use arrow_schema::{DataType, Field};
pub use nested::{is_nested, NestedEncoder, NestedValues};
use std::borrow::Cow;
use std::collections::HashMap;

/// The metadata key Arrow uses to name an extension type.
pub const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";
/// The canonical Arrow extension type for JSON text.
pub const JSON_EXTENSION: &str = "arrow.json";

/// A nullable `Utf8` field tagged as holding raw JSON values.
pub fn json_field(name: impl Into<String>) -> Field {
    Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
        EXTENSION_NAME_KEY.to_owned(),
        JSON_EXTENSION.to_owned(),
    )]))
}

/// Whether `field` holds raw JSON values (the `arrow.json` extension type).
pub fn is_json_field(field: &Field) -> bool {
    field
        .metadata()
        .get(EXTENSION_NAME_KEY)
        .is_some_and(|name| name == JSON_EXTENSION)
}

/// Whether `text` is exactly the canonical JSON spelling of a number that
/// every reader gets back unchanged: an `i64` without leading zeros or plus
/// sign, or a finite `f64` in its shortest round-trip form (`1.5`, `0.25`).
///
/// ```
/// use export_plugin_api::json::is_number_spelling;
/// assert!(is_number_spelling("42"));
/// assert!(is_number_spelling("-1.5"));
/// assert!(!is_number_spelling("007"));
/// assert!(!is_number_spelling("1.50"));
/// assert!(!is_number_spelling("NaN"));
/// assert!(!is_number_spelling("123456789012345678901234567890"));
/// ```
pub fn is_number_spelling(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Cheap rejections first: this runs on every text cell of a JSON export.
    match bytes.first() {
        Some(b'-' | b'0'..=b'9') if bytes.len() <= 24 => {}
        _ => return false,
    }
    match read_plain_decimal(bytes) {
        Spelling::Canonical => true,
        Spelling::NotANumber => false,
        Spelling::Undecided => spelled_by_round_trip(text),
    }
}

/// The definition: the text is what formatting its parsed value gives back.
fn spelled_by_round_trip(text: &str) -> bool {
    if let Ok(int) = text.parse::<i64>() {
        return itoa::Buffer::new().format(int) == text;
    }
    match text.parse::<f64>() {
        Ok(float) if float.is_finite() => ryu::Buffer::new().format_finite(float) == text,
        _ => false,
    }
}

/// What [`read_plain_decimal`] could tell without parsing.
#[derive(Debug, PartialEq, Eq)]
enum Spelling {
    Canonical,
    NotANumber,
    /// An exponent, or too many digits to be sure: parse and format it.
    Undecided,
}

/// Decides the common cases of [`is_number_spelling`] from the digits alone,
/// which is much cheaper than parsing and formatting the value.
///
/// Integers: `itoa` writes an `i64` without a plus sign or leading zeros.
/// Decimals without an exponent: a decimal of at most 15 significant digits
/// (`f64::DIGITS`) is the only one of at most 15 digits that parses to its
/// `f64`, so ryu's shortest form has exactly those digits, and ryu lays them
/// out as `I.F` when the value is below 1e16 and, under 1, has at most four
/// zeros after the point; integral values end in `.0`.
fn read_plain_decimal(bytes: &[u8]) -> Spelling {
    let digits = match bytes.first() {
        Some(b'-') => &bytes[1..],
        _ => bytes,
    };
    let point = digits.iter().position(|&b| b == b'.');
    let (int, frac) = match point {
        Some(at) => (&digits[..at], Some(&digits[at + 1..])),
        None => (digits, None),
    };
    let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        // Rust's float parser also takes an exponent; nothing else can be a number here.
        return if digits.iter().any(|&b| b == b'e' || b == b'E') {
            Spelling::Undecided
        } else {
            Spelling::NotANumber
        };
    }
    let canonical_int = match int {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0',
    };
    if !canonical_int {
        return Spelling::NotANumber;
    }
    let Some(frac) = frac else {
        return integer_fits_i64(bytes.len() != digits.len(), int);
    };
    match frac {
        [] => Spelling::NotANumber,
        // Integral: ryu writes its digits (kk <= 16) and `.0`.
        [b'0'] => {
            let significant = int.len() - int.iter().rev().take_while(|&&b| b == b'0').count();
            if int.len() > 16 {
                Spelling::NotANumber
            } else if significant <= 15 {
                Spelling::Canonical
            } else {
                Spelling::Undecided
            }
        }
        [.., b'0'] => Spelling::NotANumber,
        _ if int == b"0" => {
            let zeros = frac.iter().take_while(|&&b| b == b'0').count();
            if zeros > 4 {
                // Below 1e-5 ryu writes an exponent.
                Spelling::NotANumber
            } else if frac.len() - zeros <= 15 {
                Spelling::Canonical
            } else {
                Spelling::Undecided
            }
        }
        _ if int.len() > 16 => Spelling::NotANumber,
        _ if int.len() + frac.len() <= 15 => Spelling::Canonical,
        _ => Spelling::Undecided,
    }
}

/// A canonical run of digits (with a minus sign if `negative`) as an `i64`.
fn integer_fits_i64(negative: bool, int: &[u8]) -> Spelling {
    if negative && int == b"0" {
        return Spelling::NotANumber;
    }
    let limit: &[u8] = if negative {
        b"9223372036854775808"
    } else {
        b"9223372036854775807"
    };
    let fits = int.len() < limit.len() || (int.len() == limit.len() && int <= limit);
    if fits {
        Spelling::Canonical
    } else {
        // Too large for an i64: ryu would write such an f64 with an exponent.
        Spelling::NotANumber
    }
}

/// The text a person expects for a raw JSON value: a JSON string without its
/// quotes and escapes, anything else as written.
///
/// ```
/// use export_plugin_api::json::json_value_text;
/// assert_eq!(json_value_text(r#""a \"b\"""#), r#"a "b""#);
/// assert_eq!(json_value_text("1.50"), "1.50");
/// ```
pub fn json_value_text(raw: &str) -> Cow<'_, str> {
    if raw.starts_with('"') {
        if let Ok(text) = serde_json::from_str::<String>(raw) {
            return Cow::Owned(text);
        }
    }
    Cow::Borrowed(raw)
}

/// Appends `text` as a JSON string literal, quoted and escaped.
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so failures reproduce.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn assert_same(text: &str) {
        let definition = text.len() <= 24
            && matches!(text.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
            && spelled_by_round_trip(text);
        assert_eq!(is_number_spelling(text), definition, "{text:?}");
    }

    #[test]
    fn common_values_are_decided_without_parsing() {
        for canonical in ["0", "42", "-7", "1.5", "123.4", "0.001234", "-0.5", "10.0"] {
            assert_eq!(
                read_plain_decimal(canonical.as_bytes()),
                Spelling::Canonical
            );
        }
        for text in [
            "007",
            "1.50",
            "123.40",
            "-0",
            "2024-05-01",
            "conv_1",
            "0.0000001",
        ] {
            assert_eq!(
                read_plain_decimal(text.as_bytes()),
                Spelling::NotANumber,
                "{text}"
            );
        }
        for text in ["1e5", "0.30000000000000004", "1234567890123456.7"] {
            assert_eq!(
                read_plain_decimal(text.as_bytes()),
                Spelling::Undecided,
                "{text}"
            );
        }
    }

    #[test]
    fn the_fast_path_agrees_with_parse_and_format() {
        for text in [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "00",
            "0.",
            ".5",
            "-.5",
            "5.",
            "1.0",
            "1.00",
            "10.0",
            "1.5",
            "1.50",
            "0.00001",
            "0.000001",
            "0.0001234",
            "1e5",
            "1e16",
            "1E16",
            "1e-7",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "1234567890123456.0",
            "12345678901234567.0",
            "1000000000000000.0",
            "10000000000000000.0",
            "123456789012345.6",
            "1234567890123456.7",
            "0.123456789012345",
            "0.1234567890123456",
            "0.30000000000000004",
            "2024-05-01",
            "--1",
            "1-2",
            "1.2.3",
            "-",
            "",
            "inf",
            "-inf",
            "NaN",
            "+1",
            "1_000",
            "0x10",
            "123.40",
            "0.001230",
        ] {
            assert_same(text);
        }
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"-0123456789.e";
        for _ in 0..300_000 {
            let len = 1 + random.below(20);
            let text: String = (0..len)
                .map(|_| char::from(alphabet[random.below(alphabet.len())]))
                .collect();
            assert_same(&text);
            // Digits with a point somewhere, as decimals in exports look.
            let digits: String = (0..len)
                .map(|_| char::from(b'0' + random.below(10) as u8))
                .collect();
            let at = random.below(len + 1);
            assert_same(&format!("{}.{}", &digits[..at], &digits[at..]));
            assert_same(&format!("-{}.{}", &digits[..at], &digits[at..]));
            // Values as programs print them.
            let value = f64::from_bits(random.next());
            if value.is_finite() {
                assert_same(ryu::Buffer::new().format_finite(value));
                assert_same(&format!("{:.2}", value / 1e300));
            }
            let scaled = (random.next() % 10_000_000) as f64 / 10f64.powi(random.below(12) as i32);
            assert_same(&scaled.to_string());
            assert_same(ryu::Buffer::new().format_finite(scaled));
            assert_same(&format!("{scaled:.6}"));
            assert_same(&(random.next() as i64).to_string());
        }
    }
}
