//! The plugin's `[plugins.<name>.config]` table, and the delimiter rule shared
//! by the loader's selector and the formatter's options.

use export_plugin_api::{JsonSchema, PluginError, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Configuration of the `csv` plugin (its table in `plugins.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct CsvConfig {
    /// The folder the `csv` loader reads under. A selector's `path` is
    /// relative to it and may never resolve outside it (not by `..`, not by an
    /// absolute path, not through a symbolic link).
    pub root: PathBuf,
}

/// The JSON Schema pattern of a delimiter: one printable ASCII character or a
/// tab, never a double quote.
pub(crate) const DELIMITER_PATTERN: &str = r#"^[\t -!#-~]$"#;

/// The default delimiter, a comma.
pub(crate) fn default_delimiter() -> String {
    ",".to_owned()
}

/// The byte for a `delimiter` setting: exactly one ASCII character that is not
/// a double quote, a carriage return or a line feed.
pub(crate) fn delimiter_byte(delimiter: &str) -> Result<u8> {
    match delimiter.as_bytes() {
        [byte] if byte.is_ascii() && !matches!(byte, b'"' | b'\r' | b'\n') => Ok(*byte),
        _ => Err(PluginError::invalid_input(format!(
            "delimiter {delimiter:?} is not allowed: use exactly one ASCII character other than \
             a double quote or a line break, e.g. \",\", \";\" or \"\\t\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::ErrorKind;

    #[test]
    fn root_is_required_and_unknown_keys_are_refused() {
        let config: CsvConfig = serde_json::from_str(r#"{"root":"data"}"#).unwrap();
        assert_eq!(config.root, PathBuf::from("data"));
        assert!(serde_json::from_str::<CsvConfig>("{}").is_err());
        assert!(serde_json::from_str::<CsvConfig>(r#"{"root":"data","rooot":"x"}"#).is_err());
    }

    #[test]
    fn schema_requires_root() {
        let schema = export_plugin_api::schemars::schema_for!(CsvConfig).to_value();
        assert_eq!(schema["required"], serde_json::json!(["root"]));
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    }

    #[test]
    fn delimiters() {
        assert_eq!(delimiter_byte(",").unwrap(), b',');
        assert_eq!(delimiter_byte(";").unwrap(), b';');
        assert_eq!(delimiter_byte("\t").unwrap(), b'\t');
        assert_eq!(delimiter_byte("|").unwrap(), b'|');
        for bad in ["", ",,", "\"", "\n", "\r", "é", "→"] {
            let err = delimiter_byte(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.message.contains("delimiter"), "{}", err.message);
        }
    }
}
