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
//! - an entry whose background load (the daemon's start) is still running
//!   keeps waiting for that load, unless its table or file changed.
//!
//! A plugin that fails to load is reported; the others are not disturbed.
//! When an instance of it was serving, that instance keeps serving and the
//! failure is reported beside it ([`Registry::reload_failure`]: a wrong
//! `sha256`, a library replaced by a broken or half-copied file); otherwise
//! it is left out. A plugins.toml that cannot be read or parsed changes
//! nothing.

use super::config::{ConfigError, PluginEntry, PluginsConfig};
use super::registry::{
    log_outcome, LoadFailure, LoadedPlugin, LoadingPlugin, PendingLoad, Registry,
};
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

/// How a background load ended.
type Outcome = Result<Arc<LoadedPlugin>, LoadFailure>;

/// The registry a running daemon serves from, replaceable while it runs.
pub struct LiveRegistry {
    current: ArcSwap<Registry>,
    /// Reloads run one at a time, so two never race to swap.
    reloading: Mutex<()>,
    /// Swaps run one at a time. Holds the outcomes of background loads that
    /// ended while a reload ran, for the registry that reload swaps in.
    swapping: Mutex<HashMap<u64, Outcome>>,
    /// Bumped at every swap, for those waiting on a plugin still loading.
    changed: tokio::sync::watch::Sender<u64>,
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
            swapping: Mutex::new(HashMap::new()),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    /// Notified at every change of the registry (a reload, a background
    /// load that ended). Subscribe before reading [`LiveRegistry::current`]
    /// so no change is missed.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Runs `loads` (from [`Registry::start_loading`]) on blocking threads,
    /// all at once, each bounded by its plugin's `load_timeout`, and puts
    /// each outcome in place of its loading entry as it ends. Returns at
    /// once; needs a tokio runtime.
    pub fn load_in_background(self: &Arc<Self>, loads: Vec<PendingLoad>) {
        for load in loads {
            let live = Arc::clone(self);
            tokio::task::spawn_blocking(move || {
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load.load()))
                        .unwrap_or_else(|_| {
                            Err(LoadFailure {
                                name: load.entry.name.clone(),
                                path: load.entry.library.clone(),
                                cause: super::FailureCause::Load,
                                reason: "loading it panicked in the host; see the log".to_owned(),
                                at: std::time::SystemTime::now(),
                            })
                        });
                live.finish(load.ticket, outcome.map(Arc::new));
            });
        }
    }

    /// Puts the outcome of background load `ticket` in the registry. An
    /// outcome a reload made stale (it replaced or dropped the entry) is
    /// dropped.
    fn finish(&self, ticket: u64, outcome: Outcome) {
        // Holding `reloading` (when free) keeps a reload from starting on
        // the registry before this swap; when a reload runs, the outcome is
        // kept for the registry it is building.
        let no_reload = match self.reloading.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let mut settled = self.lock_swapping();
        let mut next = Registry::clone(&*self.current());
        let applied = next.settle(ticket, &outcome);
        if applied {
            self.store(next);
            if no_reload.is_none() {
                settled.insert(ticket, outcome.clone());
            }
        }
        drop(settled);
        drop(no_reload);
        if applied {
            log_outcome(&outcome);
        } else {
            tracing::debug!(
                ticket,
                "a plugin load ended after a reload replaced its entry; its outcome is not used"
            );
        }
    }

    fn lock_swapping(&self) -> MutexGuard<'_, HashMap<u64, Outcome>> {
        self.swapping.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, registry: Registry) {
        self.current.store(Arc::new(registry));
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
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
        let mut after = Registry::reload_from(
            &config,
            &|entry| unchanged(&before, entry),
            &|name| before.plugins().iter().find(|p| p.name == name).cloned(),
            &|entry| still_loading(&before, entry),
        );
        let mut settled = self.lock_swapping();
        // Background loads that ended while this reload ran.
        let waiting: Vec<u64> = after.loading().iter().map(|p| p.ticket()).collect();
        for ticket in waiting {
            if let Some(outcome) = settled.get(&ticket) {
                after.settle(ticket, outcome);
            }
        }
        settled.clear();
        let report = ReloadReport::between(&self.current(), &after);
        self.store(after);
        Ok(report)
    }
}

/// The load of `before` still running for `entry`, when it still stands
/// for it (same table, file not changed since): waited for, not repeated.
fn still_loading(before: &Registry, entry: &PluginEntry) -> Option<LoadingPlugin> {
    before
        .loading()
        .iter()
        .find(|p| p.name == entry.name && p.still_for(entry))
        .cloned()
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
    /// Plugins whose background load is still running (not started again).
    pub loading: Vec<String>,
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
        report.loading = after.loading().iter().map(|p| p.name.clone()).collect();
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
        if self.changed()
            || !self.failed.is_empty()
            || !self.reload_failed.is_empty()
            || !self.loading.is_empty()
        {
            let failed: Vec<&str> = self.failed.iter().map(|f| f.name.as_str()).collect();
            let kept_serving: Vec<&str> =
                self.reload_failed.iter().map(|f| f.name.as_str()).collect();
            tracing::info!(
                why,
                added = ?self.added,
                replaced = ?self.replaced,
                removed = ?self.removed,
                kept = self.kept.len(),
                loading = ?self.loading,
                failed = ?failed,
                reload_failed_kept_serving = ?kept_serving,
                "plugins reloaded"
            );
        } else {
            tracing::debug!(why, kept = self.kept.len(), "plugins reloaded: no change");
        }
    }
}
