//! Read-only views of the plugins for the daemon: the listing
//! (`GET /v1/plugins`), the load failures `/metrics` counts, and address
//! resolution for scoped tokens. Each view is one snapshot of the live
//! registry, so a reload in the middle of a request never mixes two sets
//! of plugins in one answer.

use super::ExportService;
use crate::plugins::{LoadFailure, LoadedPlugin, LoadingPlugin, PluginEntry, Registry};
use std::fmt;
use std::sync::Arc;

/// The plugins as they are now, for listings.
#[derive(Clone)]
pub struct PluginsOverview {
    registry: Arc<Registry>,
}

impl fmt::Debug for PluginsOverview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginsOverview")
            .field("loaded", &self.registry.plugins().len())
            .field("loading", &self.registry.loading().len())
            .field("failed", &self.registry.failures().len())
            .finish_non_exhaustive()
    }
}

impl PluginsOverview {
    /// The plugins that loaded.
    pub fn loaded(&self) -> &[Arc<LoadedPlugin>] {
        self.registry.plugins()
    }

    /// The plugins whose start-up load has not ended yet.
    pub fn loading(&self) -> &[LoadingPlugin] {
        self.registry.loading()
    }

    /// The entries with `enabled = false`.
    pub fn disabled(&self) -> &[PluginEntry] {
        self.registry.disabled()
    }

    /// The plugins that did not load.
    pub fn failed(&self) -> &[LoadFailure] {
        self.registry.failures()
    }

    /// Why the latest reload of loaded plugin `name` failed, when it did
    /// (the listed instance is the one loaded before).
    pub fn reload_failure(&self, name: &str) -> Option<&LoadFailure> {
        self.registry.reload_failure(name)
    }
}

/// Resolves loader and format names (`csv` or `csv/csv`) to their
/// `plugin/name` addresses against one snapshot of the plugins.
#[derive(Clone)]
pub struct PluginAddresses {
    registry: Arc<Registry>,
}

impl fmt::Debug for PluginAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginAddresses")
            .field("plugins", &self.registry.plugins().len())
            .finish_non_exhaustive()
    }
}

impl PluginAddresses {
    /// The address of the loader `name`; `None` when no loaded plugin
    /// offers it.
    pub fn loader(&self, name: &str) -> Option<String> {
        self.registry
            .loader(name)
            .ok()
            .map(|c| c.address(&c.manifest.name))
    }

    /// The address of the formatter `name`; `None` when no loaded plugin
    /// offers it.
    pub fn formatter(&self, name: &str) -> Option<String> {
        self.registry
            .formatter(name)
            .ok()
            .map(|c| c.address(&c.manifest.name))
    }
}

impl ExportService {
    /// The plugins loaded, loading, disabled and failed, for a listing.
    pub fn plugins_overview(&self) -> PluginsOverview {
        PluginsOverview {
            registry: self.registry(),
        }
    }

    /// Every failed plugin load, at start-up or at a reload that kept the
    /// previous instance serving, for counting by cause.
    pub fn plugin_load_failures(&self) -> Vec<LoadFailure> {
        let registry = self.registry();
        registry
            .failures()
            .iter()
            .chain(registry.reload_failures())
            .cloned()
            .collect()
    }

    /// Loader and format address resolution, for checking a request
    /// against a token's scope.
    pub fn plugin_addresses(&self) -> PluginAddresses {
        PluginAddresses {
            registry: self.registry(),
        }
    }
}
