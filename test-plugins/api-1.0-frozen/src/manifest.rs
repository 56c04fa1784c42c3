//! What a plugin declares about itself. The host reads it before anything else.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A plugin's self-description: identity, the plugin-api it was built
/// against, and its components with the JSON Schemas of their inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Plugin name, unique among the plugins a host loads (e.g. `csv`).
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// The plugin-api version the plugin was compiled against.
    pub api_version: String,
    /// One line for people listing plugins.
    pub description: String,
    /// JSON Schema of the plugin's `[plugins.NAME.config]` table.
    pub config_schema: Value,
    /// Data sources this plugin offers.
    #[serde(default)]
    pub loaders: Vec<LoaderManifest>,
    /// Output formats this plugin offers.
    #[serde(default)]
    pub formatters: Vec<FormatterManifest>,
}

/// A loader as declared in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoaderManifest {
    /// Component name (e.g. `csv`); addressed as `plugin/name` or the bare name.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// JSON Schema of the selector a request passes to this loader.
    pub selector_schema: Value,
}

/// A formatter as declared in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatterManifest {
    /// Component name (e.g. `jsonl`).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// MIME type of the output, e.g. `text/csv; charset=utf-8`.
    pub mime_type: String,
    /// File extension without the dot, e.g. `csv`.
    pub extension: String,
    /// JSON Schema of the formatter's own options.
    pub options_schema: Value,
}
