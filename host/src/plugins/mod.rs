//! Plugins: reading plugins.toml, vetting library files, loading them, and
//! finding the loader or formatter a request names.

pub mod config;
pub mod registry;
pub mod reload;
pub mod schema;
pub mod trust;

pub use config::{Isolation, PluginEntry, PluginsConfig};
pub use registry::{Component, FailureCause, LoadFailure, LoadedPlugin, Registry, ResolveError};
pub use reload::{LiveRegistry, ReloadReport};
