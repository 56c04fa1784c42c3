//! The plugin's `[plugins.<name>.config]` table.

use export_plugin_api::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rows a PDF may hold unless the operator says otherwise.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;

/// Configuration of the `pdf` plugin (its table in `plugins.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct PdfConfig {
    /// The most rows one PDF may hold (default 1,000,000: about 100,000
    /// pages; bench/README.md shows the file size). Memory does not
    /// grow with rows, as pages are written out as they are drawn; this
    /// bounds how long an export runs and how large a file readers are
    /// handed. An export past it fails with `limit_exceeded` and leaves no
    /// file.
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 1))]
    pub max_rows: u64,
}

fn default_max_rows() -> u64 {
    DEFAULT_MAX_ROWS
}

impl Default for PdfConfig {
    fn default() -> Self {
        PdfConfig {
            max_rows: DEFAULT_MAX_ROWS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn max_rows_defaults_and_unknown_keys_are_refused() {
        let config: PdfConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.max_rows, DEFAULT_MAX_ROWS);
        let config: PdfConfig = serde_json::from_str(r#"{"max_rows":10}"#).unwrap();
        assert_eq!(config.max_rows, 10);
        assert!(serde_json::from_str::<PdfConfig>(r#"{"max_row":10}"#).is_err());
        let schema = export_plugin_api::schemars::schema_for!(PdfConfig).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["properties"]["max_rows"]["minimum"], json!(1));
    }
}
