//! The plugin's `[plugins.<name>.config]` table.

use export_plugin_api::{JsonSchema, PluginError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Configuration of the `json` plugin (its table in `plugins.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct JsonConfig {
    /// The folder the `jsonl` loader reads under. A selector's `path` is
    /// relative to it and may never resolve outside it (not by `..`, not by an
    /// absolute path, not through a symbolic link). The formatters need no
    /// root, so a plugin used only for writing JSON may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
}

impl JsonConfig {
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
        assert_eq!(config.root, None);
        let err = config.root().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "the json plugin has no `root` configured; set [plugins.json.config] root = ..."
        );
        assert!(serde_json::from_str::<JsonConfig>(r#"{"root":"data","rooot":"x"}"#).is_err());
    }

    #[test]
    fn schema_has_optional_root_and_nothing_else() {
        let schema = export_plugin_api::schemars::schema_for!(JsonConfig).to_value();
        assert!(schema.get("required").is_none(), "{schema}");
        assert!(schema["properties"]["root"].is_object(), "{schema}");
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    }
}
