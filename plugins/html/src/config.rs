//! The plugin's `[plugins.<name>.config]` table.

use export_plugin_api::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Configuration of the `html` plugin (its table in `plugins.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct HtmlConfig {
    /// A folder of user templates (default: none, only the built-in ones).
    /// A request's `template` option names a file directly in it, such as
    /// `"invoice.html"`; names never reach outside it (no `/`, no `..`, and
    /// a symbolic link that leads out is refused). The host resolves a
    /// relative folder against the folder of plugins.toml.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_dir_is_optional_and_unknown_keys_are_refused() {
        let config: HtmlConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.templates_dir, None);
        let config: HtmlConfig = serde_json::from_str(r#"{"templates_dir":"t"}"#).unwrap();
        assert_eq!(config.templates_dir, Some(PathBuf::from("t")));
        assert!(serde_json::from_str::<HtmlConfig>(r#"{"template_dir":"t"}"#).is_err());
        assert!(serde_json::from_str::<HtmlConfig>(r#"{"templates_dir":7}"#).is_err());
    }

    #[test]
    fn schema_refuses_unknown_keys() {
        let schema = export_plugin_api::schemars::schema_for!(HtmlConfig).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema["properties"]["templates_dir"].is_object());
        assert!(schema.get("required").is_none_or(|r| r == &json!([])));
    }
}
