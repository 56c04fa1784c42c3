//! Plugins: reading plugins.toml, vetting library files, loading them, and
//! finding the loader or formatter a request names (docs/architecture.md,
//! "Plugins: checked, loaded, run").

pub mod config;
pub mod registry;
pub mod reload;
pub mod schema;

pub use crate::library::{trust, FailureCause};
pub use config::{Isolation, PluginEntry, PluginsConfig};
pub use registry::{
    Component, LoadFailure, LoadedPlugin, LoadingPlugin, PendingLoad, Registry, ResolveError,
};
pub use reload::{LiveRegistry, ReloadReport};
