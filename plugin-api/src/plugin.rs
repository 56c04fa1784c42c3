//! Assembling a plugin from its components.

use crate::caller::Caller;
use crate::error::{PluginError, Result};
use crate::formatter::{FormatWriter, Formatter};
use crate::loader::{parse_document, BatchReader, Limits, Loader};
use crate::manifest::{FormatterManifest, LoaderManifest, Manifest};
use arrow_schema::SchemaRef;
use schemars::JsonSchema;
use serde_json::Value;

/// The plugin-api version this crate is; recorded in every manifest.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds a [`Plugin`]: give it to [`export_plugin!`](crate::export_plugin).
///
/// ```
/// use export_plugin_api::PluginBuilder;
/// let plugin = PluginBuilder::new("demo", "0.1.0")
///     .description("does nothing yet")
///     .build();
/// assert_eq!(plugin.manifest().name, "demo");
/// ```
pub struct PluginBuilder {
    manifest: Manifest,
    loaders: Vec<Box<dyn ErasedLoader>>,
    formatters: Vec<Box<dyn ErasedFormatter>>,
}

impl PluginBuilder {
    /// A plugin called `name` at `version`; pass `env!("CARGO_PKG_VERSION")`.
    pub fn new(name: &str, version: &str) -> Self {
        PluginBuilder {
            manifest: Manifest {
                name: name.to_owned(),
                version: version.to_owned(),
                api_version: API_VERSION.to_owned(),
                description: String::new(),
                config_schema: serde_json::json!({"type": "object"}),
                loaders: Vec::new(),
                formatters: Vec::new(),
            },
            loaders: Vec::new(),
            formatters: Vec::new(),
        }
    }

    /// One line for people listing plugins.
    pub fn description(mut self, description: &str) -> Self {
        self.manifest.description = description.to_owned();
        self
    }

    /// Declares the type of the plugin's `[config]` table; the host validates
    /// the table against its JSON Schema before the plugin sees it. Without
    /// this, any table is accepted.
    pub fn config<C: JsonSchema>(mut self) -> Self {
        self.manifest.config_schema = schema_value::<C>();
        self
    }

    /// Adds a loader.
    pub fn loader<L: Loader>(mut self, loader: L) -> Self {
        self.manifest.loaders.push(LoaderManifest {
            name: L::NAME.to_owned(),
            description: L::DESCRIPTION.to_owned(),
            selector_schema: schema_value::<L::Selector>(),
        });
        self.loaders.push(Box::new(loader));
        self
    }

    /// Adds a formatter.
    pub fn formatter<F: Formatter>(mut self, formatter: F) -> Self {
        self.manifest.formatters.push(FormatterManifest {
            name: F::NAME.to_owned(),
            description: F::DESCRIPTION.to_owned(),
            mime_type: F::MIME_TYPE.to_owned(),
            extension: F::EXTENSION.to_owned(),
            options_schema: schema_value::<F::Options>(),
        });
        self.formatters.push(Box::new(formatter));
        self
    }

    /// Finishes the plugin.
    pub fn build(self) -> Plugin {
        Plugin {
            manifest: self.manifest,
            loaders: self.loaders,
            formatters: self.formatters,
        }
    }
}

fn schema_value<T: JsonSchema>() -> Value {
    schemars::schema_for!(T).to_value()
}

/// A built plugin. The exported library wraps one; tests can call it directly.
pub struct Plugin {
    manifest: Manifest,
    loaders: Vec<Box<dyn ErasedLoader>>,
    formatters: Vec<Box<dyn ErasedFormatter>>,
}

impl Plugin {
    /// What the plugin declares.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Opens loader `name` with JSON documents and no caller.
    pub fn open_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>> {
        self.open_loader_for(name, config, selector, limits, None)
    }

    /// Opens loader `name` for `caller` with JSON documents, as the host does.
    pub fn open_loader_for(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>> {
        self.loader(name)?.open(config, selector, limits, caller)
    }

    /// Runs loader `name`'s [`Loader::validate`] on JSON documents, as the
    /// host does before it records a request.
    pub fn validate_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        caller: Option<&Caller>,
    ) -> Result<()> {
        self.loader(name)?.validate(config, selector, caller)
    }

    fn loader(&self, name: &str) -> Result<&dyn ErasedLoader> {
        let index = self
            .manifest
            .loaders
            .iter()
            .position(|l| l.name == name)
            .ok_or_else(|| {
                PluginError::not_found(format!(
                    "plugin {:?} has no loader {name:?}; it has: {}",
                    self.manifest.name,
                    list(self.manifest.loaders.iter().map(|l| l.name.as_str()))
                ))
            })?;
        Ok(self.loaders[index].as_ref())
    }

    /// Starts formatter `name` with JSON documents, as the host does.
    pub fn start_formatter(
        &self,
        name: &str,
        config: &str,
        options: &str,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        let index = self
            .manifest
            .formatters
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| {
                PluginError::not_found(format!(
                    "plugin {:?} has no formatter {name:?}; it has: {}",
                    self.manifest.name,
                    list(self.manifest.formatters.iter().map(|f| f.name.as_str()))
                ))
            })?;
        self.formatters[index].start(config, options, schema)
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Object-safe view of a [`Loader`], taking its inputs as JSON text.
trait ErasedLoader: Send + Sync {
    fn open(
        &self,
        config: &str,
        selector: &str,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>>;
    fn validate(&self, config: &str, selector: &str, caller: Option<&Caller>) -> Result<()>;
}

impl<L: Loader> ErasedLoader for L {
    fn open(
        &self,
        config: &str,
        selector: &str,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>> {
        let config = parse_document("plugin config", config)?;
        let selector = parse_document("selector", selector)?;
        Loader::open_for(self, config, selector, limits, caller)
    }

    fn validate(&self, config: &str, selector: &str, caller: Option<&Caller>) -> Result<()> {
        let config = parse_document("plugin config", config)?;
        let selector = parse_document("selector", selector)?;
        Loader::validate(self, config, selector, caller)
    }
}

/// Object-safe view of a [`Formatter`], taking its inputs as JSON text.
trait ErasedFormatter: Send + Sync {
    fn start(
        &self,
        config: &str,
        options: &str,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>>;
}

impl<F: Formatter> ErasedFormatter for F {
    fn start(
        &self,
        config: &str,
        options: &str,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        let config = parse_document("plugin config", config)?;
        let options = parse_document("options", options)?;
        Formatter::start(self, config, options, schema)
    }
}
