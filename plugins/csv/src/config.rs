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
    /// absolute path, not through a symbolic link). A root containing
    /// `{user}` (`/srv/exports/{user}`) gives every caller a folder of their
    /// own: `{user}` is replaced by the caller's user id.
    pub root: PathBuf,

    /// The largest field the `csv` loader reads, in bytes (64 MiB by
    /// default). A longer field fails the export naming its row and column
    /// instead of being held in memory whole.
    #[serde(default = "default_max_field_bytes")]
    #[schemars(range(min = 1, max = MAX_FIELD_BYTES_CEILING))]
    pub max_field_bytes: u64,
}

/// The default of [`CsvConfig::max_field_bytes`]: 64 MiB.
pub(crate) const DEFAULT_MAX_FIELD_BYTES: u64 = 64 * 1024 * 1024;
/// The highest [`CsvConfig::max_field_bytes`]: 1 GiB, well inside Arrow's
/// 2 GiB of text per column and batch.
pub(crate) const MAX_FIELD_BYTES_CEILING: u64 = 1024 * 1024 * 1024;

fn default_max_field_bytes() -> u64 {
    DEFAULT_MAX_FIELD_BYTES
}

impl CsvConfig {
    /// [`CsvConfig::max_field_bytes`], checked to be in range.
    pub(crate) fn max_field_bytes(&self) -> Result<usize> {
        match self.max_field_bytes {
            bytes @ 1..=MAX_FIELD_BYTES_CEILING => Ok(usize::try_from(bytes).unwrap_or(usize::MAX)),
            bytes => Err(PluginError::invalid_input(format!(
                "max_field_bytes = {bytes} is out of range: set [plugins.csv.config] \
                 max_field_bytes between 1 and {MAX_FIELD_BYTES_CEILING} (1 GiB)"
            ))),
        }
    }
}

/// `bytes` for people: `64 MiB` when a whole number of MiB, else `N bytes`.
pub(crate) fn show_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
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
        assert_eq!(config.max_field_bytes().unwrap(), 64 * 1024 * 1024);
        let config: CsvConfig =
            serde_json::from_str(r#"{"root":"data","max_field_bytes":10}"#).unwrap();
        assert_eq!(config.max_field_bytes().unwrap(), 10);
        for bad in [0, MAX_FIELD_BYTES_CEILING + 1] {
            let config = CsvConfig {
                max_field_bytes: bad,
                ..config.clone()
            };
            let err = config.max_field_bytes().unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains("max_field_bytes"), "{}", err.message);
        }
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
    fn bytes_for_people() {
        assert_eq!(show_bytes(64 * 1024 * 1024), "64 MiB");
        assert_eq!(show_bytes(100), "100 bytes");
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
