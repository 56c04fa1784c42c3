//! Applying an edited plugins.toml, or changed library files, to a running
//! registry without a restart.
//!
//! [`LiveRegistry`] holds the current [`Registry`] behind an atomic pointer:
//! a request takes a snapshot ([`LiveRegistry::current`]) and keeps it for
//! its whole run, so an export that started on a library keeps that instance
//! however often the registry changes under it. A reload builds a complete
//! new registry and swaps it in at once:
//!
//! - an entry whose table is unchanged and whose file still has the bytes
//!   that were loaded keeps its instance (nothing is loaded twice);
//! - a new or changed entry, or a replaced file, is loaded anew from a
//!   fresh private copy (libraries are never unloaded: dlclose is unsafe
//!   with Rust thread-locals, and running exports may still hold the old one);
//! - a removed or disabled entry is simply absent from the new registry, so
//!   it takes no new work.
//!
//! A plugin that fails to load is reported; the others are not disturbed.
//! When an instance of it was serving, that instance keeps serving and the
//! failure is reported beside it ([`Registry::reload_failure`]: a wrong
//! `sha256`, a library replaced by a broken or half-copied file); otherwise
//! it is left out. A plugins.toml that cannot be read or parsed changes
//! nothing.

use super::config::{ConfigError, PluginEntry, PluginsConfig};
use super::registry::{LoadFailure, LoadedPlugin, Registry};
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// The registry a running daemon serves from, replaceable while it runs.
pub struct LiveRegistry {
    current: ArcSwap<Registry>,
    /// Reloads run one at a time, so two never race to swap.
    reloading: Mutex<()>,
}

impl fmt::Debug for LiveRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveRegistry")
            .field("plugins", &self.current().plugins().len())
            .finish()
    }
}

impl LiveRegistry {
    /// Serves `registry` until the first reload.
    pub fn new(registry: Arc<Registry>) -> LiveRegistry {
        LiveRegistry {
            current: ArcSwap::new(registry),
            reloading: Mutex::new(()),
        }
    }

    /// The registry as it is now. Hold on to it for the length of one
    /// piece of work: it never changes under the holder.
    pub fn current(&self) -> Arc<Registry> {
        self.current.load_full()
    }

    /// Reads the plugins.toml at `path` and applies it. Blocking (it hashes
    /// and loads libraries): call it off the async runtime.
    pub fn reload(&self, path: &Path) -> Result<ReloadReport, ConfigError> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let config = PluginsConfig::load(path)?;
        let before = self.current();
        let after = Registry::reload_from(&config, &|entry| unchanged(&before, entry), &|name| {
            before.plugins().iter().find(|p| p.name == name).cloned()
        });
        let report = ReloadReport::between(&before, &after);
        self.current.store(Arc::new(after));
        Ok(report)
    }
}

/// The loaded plugin of `before` that `entry` may keep: same table, and the
/// file still holds the bytes that were loaded.
fn unchanged(before: &Registry, entry: &PluginEntry) -> Option<Arc<LoadedPlugin>> {
    let loaded = before.plugins().iter().find(|p| p.name == entry.name)?;
    if loaded.entry() != entry {
        return None;
    }
    match file_sha256(&entry.library) {
        Ok(sha256) if sha256 == loaded.sha256 => Some(loaded.clone()),
        _ => None,
    }
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// What one reload changed.
#[derive(Debug, Clone, Default)]
pub struct ReloadReport {
    /// Plugins loaded that were not loaded before.
    pub added: Vec<String>,
    /// Plugins loaded anew over an earlier instance (new file or new table).
    pub replaced: Vec<String>,
    /// Plugins that were loaded and no longer are (removed, disabled, or now failing).
    pub removed: Vec<String>,
    /// Plugins kept as they were.
    pub kept: Vec<String>,
    /// Plugins that did not load, each with the reason.
    pub failed: Vec<LoadFailure>,
    /// Plugins whose new load failed while the instance loaded before
    /// keeps serving, each with the reason.
    pub reload_failed: Vec<LoadFailure>,
}

impl ReloadReport {
    fn between(before: &Registry, after: &Registry) -> ReloadReport {
        let mut report = ReloadReport::default();
        for plugin in after.plugins() {
            match before.plugins().iter().find(|p| p.name == plugin.name) {
                None => report.added.push(plugin.name.clone()),
                Some(old) if Arc::ptr_eq(old, plugin) => {
                    if after.reload_failure(&plugin.name).is_none() {
                        report.kept.push(plugin.name.clone())
                    }
                }
                Some(_) => report.replaced.push(plugin.name.clone()),
            }
        }
        for plugin in before.plugins() {
            if !after.plugins().iter().any(|p| p.name == plugin.name) {
                report.removed.push(plugin.name.clone());
            }
        }
        report.failed = after.failures().to_vec();
        report.reload_failed = after.reload_failures().to_vec();
        report
    }

    /// Whether anything was loaded or unloaded.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty())
    }

    /// One log event for the reload (each failure was logged, with its
    /// reason, as it happened).
    pub fn log(&self, why: &str) {
        if self.changed() || !self.failed.is_empty() || !self.reload_failed.is_empty() {
            let failed: Vec<&str> = self.failed.iter().map(|f| f.name.as_str()).collect();
            let kept_serving: Vec<&str> =
                self.reload_failed.iter().map(|f| f.name.as_str()).collect();
            tracing::info!(
                why,
                added = ?self.added,
                replaced = ?self.replaced,
                removed = ?self.removed,
                kept = self.kept.len(),
                failed = ?failed,
                reload_failed_kept_serving = ?kept_serving,
                "plugins reloaded"
            );
        } else {
            tracing::debug!(why, kept = self.kept.len(), "plugins reloaded: no change");
        }
    }
}
