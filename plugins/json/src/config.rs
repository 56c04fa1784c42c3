//! The plugin's `[plugins.<name>.config]` table.

use export_plugin_api::{JsonSchema, PluginError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Configuration of the `json` plugin (its table in `plugins.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct JsonConfig {
    /// The folder the `jsonl` loader reads under. A selector's `path` is
    /// relative to it and may never resolve outside it (not by `..`, not by an
    /// absolute path, not through a symbolic link). A root containing
    /// `{user}` (`/srv/exports/{user}`) gives every caller a folder of their
    /// own: `{user}` is replaced by the caller's user id. The formatters
    /// need no root, so a plugin used only for writing JSON may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,

    /// The longest line the `jsonl` loader reads, in bytes (64 MiB by
    /// default). A longer line fails the export naming it instead of being
    /// held in memory whole.
    #[serde(default = "default_max_line_bytes")]
    #[schemars(range(min = 1, max = MAX_LINE_BYTES_CEILING))]
    pub max_line_bytes: u64,
}

impl Default for JsonConfig {
    fn default() -> Self {
        JsonConfig {
            root: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// The default of [`JsonConfig::max_line_bytes`]: 64 MiB.
pub(crate) const DEFAULT_MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;
/// The highest [`JsonConfig::max_line_bytes`]: 1 GiB, well inside Arrow's
/// 2 GiB of text per column and batch.
pub(crate) const MAX_LINE_BYTES_CEILING: u64 = 1024 * 1024 * 1024;

fn default_max_line_bytes() -> u64 {
    DEFAULT_MAX_LINE_BYTES
}

impl JsonConfig {
    /// [`JsonConfig::max_line_bytes`], checked to be in range.
    pub(crate) fn max_line_bytes(&self) -> Result<usize> {
        match self.max_line_bytes {
            bytes @ 1..=MAX_LINE_BYTES_CEILING => Ok(usize::try_from(bytes).unwrap_or(usize::MAX)),
            bytes => Err(PluginError::invalid_input(format!(
                "max_line_bytes = {bytes} is out of range: set [plugins.json.config] \
                 max_line_bytes between 1 and {MAX_LINE_BYTES_CEILING} (1 GiB)"
            ))),
        }
    }

    /// The configured root, or an error telling the operator how to set it.
    pub(crate) fn root(&self) -> Result<&Path> {
        self.root.as_deref().ok_or_else(|| {
            PluginError::invalid_input(
                "the json plugin has no `root` configured; set [plugins.json.config] root = ...",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::ErrorKind;

    #[test]
    fn root_is_optional_and_unknown_keys_are_refused() {
        let config: JsonConfig = serde_json::from_str(r#"{"root":"data"}"#).unwrap();
        assert_eq!(config.root(), Ok(Path::new("data")));
        let config: JsonConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, JsonConfig::default());
        assert_eq!(config.root, None);
        assert_eq!(config.max_line_bytes().unwrap(), 64 * 1024 * 1024);
        for bad in [0, MAX_LINE_BYTES_CEILING + 1] {
            let config = JsonConfig {
                max_line_bytes: bad,
                ..JsonConfig::default()
            };
            let err = config.max_line_bytes().unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains("max_line_bytes"), "{}", err.message);
        }
        let err = config.root().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "the json plugin has no `root` configured; set [plugins.json.config] root = ..."
        );
        assert!(serde_json::from_str::<JsonConfig>(r#"{"root":"data","rooot":"x"}"#).is_err());
    }

    #[test]
    fn schema_has_optional_root_and_line_cap_and_nothing_else() {
        let schema = export_plugin_api::schemars::schema_for!(JsonConfig).to_value();
        assert!(schema.get("required").is_none(), "{schema}");
        assert!(schema["properties"]["root"].is_object(), "{schema}");
        assert_eq!(
            schema["properties"]["max_line_bytes"]["minimum"],
            serde_json::json!(1),
            "{schema}"
        );
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    }
}
