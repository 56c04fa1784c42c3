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

use arrow_schema::{DataType, Field};
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
    if let Ok(int) = text.parse::<i64>() {
        return itoa::Buffer::new().format(int) == text;
    }
    match text.parse::<f64>() {
        Ok(float) if float.is_finite() => ryu::Buffer::new().format_finite(float) == text,
        _ => false,
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
