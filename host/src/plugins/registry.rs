//! The loaded plugins, and how requests find components in them.

use super::config::{Isolation, PluginEntry, PluginsConfig};
use super::schema::DocumentSchema;
use super::trust::{self, TrustError};
use crate::isolation::probe::{self, ProbeError};
use crate::isolation::{LastFault, PluginHandle, PluginState, WorkerPool};
use export_plugin_api::host::{LoadError, PluginLibrary};
use export_plugin_api::{FormatterManifest, LoaderManifest, Manifest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A plugin that loaded and whose config passed its schema.
pub struct LoadedPlugin {
    /// Its name in plugins.toml.
    pub name: String,
    /// The library file named in plugins.toml.
    pub path: PathBuf,
    /// SHA-256 of the loaded bytes.
    pub sha256: String,
    /// How it runs.
    pub isolation: Isolation,
    /// Wall-clock cap on one export's work in it.
    pub timeout: Option<Duration>,
    /// The validated `[config]` table as JSON text.
    pub config_json: String,
    /// The plugins.toml entry it was loaded from: a reload keeps this
    /// instance while the entry and the file's bytes stay the same.
    entry: PluginEntry,
    handle: PluginHandle,
    selector_schemas: HashMap<String, DocumentSchema>,
    options_schemas: HashMap<String, DocumentSchema>,
}

impl LoadedPlugin {
    /// The plugins.toml entry it was loaded from.
    pub fn entry(&self) -> &PluginEntry {
        &self.entry
    }
    /// What the plugin declares.
    pub fn manifest(&self) -> &Manifest {
        self.handle.manifest()
    }
    /// How to call it: in-process or through its worker processes.
    pub fn handle(&self) -> &PluginHandle {
        &self.handle
    }
    /// `loaded`, or `quarantined` while its workers keep crashing.
    pub fn status(&self) -> PluginState {
        self.handle.state()
    }
    /// Its most recent worker fault (isolated plugins only).
    pub fn last_fault(&self) -> Option<LastFault> {
        self.handle.last_fault()
    }
    /// The compiled selector schema of loader `name`.
    pub fn selector_schema(&self, name: &str) -> Option<&DocumentSchema> {
        self.selector_schemas.get(name)
    }
    /// The compiled options schema of formatter `name`.
    pub fn options_schema(&self, name: &str) -> Option<&DocumentSchema> {
        self.options_schemas.get(name)
    }
}

/// What went wrong loading a plugin, by cause (for reports and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The file is missing, not a shared object, writable by others, or its checksum differs.
    Trust,
    /// dlopen, the ABI check or the plugin's own start failed.
    Load,
    /// The plugin's `[config]` failed its schema, or it declares invalid schemas.
    Config,
    /// Something plugins.toml asks for that this host cannot do.
    Unsupported,
}

/// Plugin loads refused since the process started, by [`FailureCause`]
/// (a failed reload that kept the serving instance counts too).
static REFUSALS: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

impl FailureCause {
    /// Every cause, in a fixed order.
    pub const ALL: [FailureCause; 4] = [
        FailureCause::Trust,
        FailureCause::Load,
        FailureCause::Config,
        FailureCause::Unsupported,
    ];

    /// How many loads this process refused for this cause since it started
    /// (for `/metrics`).
    pub fn refusals(self) -> u64 {
        REFUSALS[self as usize].load(Ordering::Relaxed)
    }

    fn count_refusal(self) {
        REFUSALS[self as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A short lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Trust => "trust",
            FailureCause::Load => "load",
            FailureCause::Config => "config",
            FailureCause::Unsupported => "unsupported",
        }
    }
}

/// A plugin that did not load, and why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// Its name in plugins.toml (or the file name, for discovered files).
    pub name: String,
    /// The library file.
    pub path: PathBuf,
    /// The cause.
    pub cause: FailureCause,
    /// What was wrong and what to do.
    pub reason: String,
    /// When it failed.
    pub at: SystemTime,
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin {:?} ({}) was not loaded: {}",
            self.name,
            self.path.display(),
            self.reason
        )
    }
}

/// A component found by address.
pub struct Component<'r, M> {
    /// The plugin that offers it.
    pub plugin: &'r Arc<LoadedPlugin>,
    /// Its manifest entry.
    pub manifest: &'r M,
}

impl<M> Component<'_, M> {
    /// `plugin/name`, the address that is never ambiguous.
    pub fn address(&self, name: &str) -> String {
        format!("{}/{}", self.plugin.name, name)
    }
}

/// A loader or formatter address that does not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Nothing has that name.
    #[error("unknown {kind} {address:?}; available {kind}s: {available}")]
    Unknown {
        /// "loader" or "format".
        kind: &'static str,
        /// What was asked for.
        address: String,
        /// What exists.
        available: String,
    },
    /// Several plugins offer the bare name.
    #[error("{kind} {address:?} is offered by several plugins; name one of: {candidates}")]
    Ambiguous {
        /// "loader" or "format".
        kind: &'static str,
        /// What was asked for.
        address: String,
        /// `plugin/name` for each.
        candidates: String,
    },
}

/// Every plugin named by plugins.toml (and discovered, when asked), loaded or not.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Arc<LoadedPlugin>>,
    failures: Vec<LoadFailure>,
    /// Loaded plugins whose latest reload failed: the instance already
    /// serving was kept, and this says why the new one was refused.
    reload_failures: Vec<LoadFailure>,
    disabled: Vec<PluginEntry>,
}

/// What a reload falls back on for a plugin whose new load fails: the
/// instance that serves now, if any.
pub type Fallback<'a> = &'a dyn Fn(&str) -> Option<Arc<LoadedPlugin>>;

impl Registry {
    /// Loads every enabled plugin. Never fails as a whole: a plugin that
    /// cannot load is recorded in [`Registry::failures`] and logged, and the
    /// rest load.
    pub fn load(config: &PluginsConfig) -> Registry {
        Registry::load_reusing(config, |_| None)
    }

    /// Like [`Registry::load`], but an entry for which `reuse` answers an
    /// already loaded plugin keeps that instance instead of loading the file
    /// again (see [`super::reload`]).
    pub fn load_reusing(
        config: &PluginsConfig,
        reuse: impl Fn(&PluginEntry) -> Option<Arc<LoadedPlugin>>,
    ) -> Registry {
        Registry::reload_from(config, &reuse, &|_| None)
    }

    /// Like [`Registry::load_reusing`], and a plugin whose load fails keeps
    /// the instance `fallback` answers for its name (the one serving now),
    /// with the failure in [`Registry::reload_failure`].
    pub fn reload_from(
        config: &PluginsConfig,
        reuse: &dyn Fn(&PluginEntry) -> Option<Arc<LoadedPlugin>>,
        fallback: Fallback<'_>,
    ) -> Registry {
        let mut registry = Registry::default();
        let (enabled, disabled): (Vec<&PluginEntry>, Vec<&PluginEntry>) =
            config.entries.iter().partition(|entry| entry.enabled);
        registry.disabled = disabled.into_iter().cloned().collect();
        registry.add_all(&enabled, reuse, fallback);
        if config.discover {
            registry.discover(config, reuse, fallback);
        }
        registry
    }

    /// Adds `entries` in their order, loading those `reuse` does not
    /// answer side by side.
    fn add_all(
        &mut self,
        entries: &[&PluginEntry],
        reuse: &dyn Fn(&PluginEntry) -> Option<Arc<LoadedPlugin>>,
        fallback: Fallback<'_>,
    ) {
        let kept: Vec<Option<Arc<LoadedPlugin>>> =
            entries.iter().map(|entry| reuse(entry)).collect();
        let fresh: Vec<&PluginEntry> = entries
            .iter()
            .zip(&kept)
            .filter(|(_, kept)| kept.is_none())
            .map(|(entry, _)| *entry)
            .collect();
        let mut loaded = load_side_by_side(&fresh).into_iter();
        for kept in kept {
            match kept {
                Some(kept) => self.plugins.push(kept),
                None => {
                    if let Some(result) = loaded.next() {
                        self.record(result, fallback);
                    }
                }
            }
        }
    }

    fn record(&mut self, result: Result<LoadedPlugin, LoadFailure>, fallback: Fallback<'_>) {
        match result {
            Ok(plugin) => {
                tracing::info!(
                    plugin = %plugin.name,
                    version = %plugin.manifest().version,
                    api = %plugin.manifest().api_version,
                    path = %plugin.path.display(),
                    "plugin loaded"
                );
                self.plugins.push(Arc::new(plugin));
            }
            Err(failure) => {
                failure.cause.count_refusal();
                match fallback(&failure.name) {
                    Some(serving) => {
                        tracing::error!(
                            plugin = %failure.name,
                            cause = failure.cause.as_str(),
                            "{failure}; the instance already loaded keeps serving"
                        );
                        self.plugins.push(serving);
                        self.reload_failures.push(failure);
                    }
                    None => {
                        tracing::error!(plugin = %failure.name, cause = failure.cause.as_str(), "{failure}");
                        self.failures.push(failure);
                    }
                }
            }
        }
    }

    fn discover(
        &mut self,
        config: &PluginsConfig,
        reuse: &dyn Fn(&PluginEntry) -> Option<Arc<LoadedPlugin>>,
        fallback: Fallback<'_>,
    ) {
        let named: Vec<&Path> = config.entries.iter().map(|e| e.library.as_path()).collect();
        let Ok(read_dir) = std::fs::read_dir(&config.dir) else {
            tracing::warn!(dir = %config.dir.display(), "discover = true but the plugin folder cannot be read");
            return;
        };
        let mut files: Vec<PathBuf> = read_dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "so") && !named.contains(&p.as_path()))
            .collect();
        files.sort();
        let mut entries: Vec<PluginEntry> = Vec::new();
        for library in files {
            let stem = library
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = stem
                .trim_start_matches("lib")
                .trim_start_matches("export_")
                .replace(
                    |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "_",
                )
                .to_ascii_lowercase();
            if self.plugins.iter().any(|p| p.name == name) || entries.iter().any(|e| e.name == name)
            {
                continue;
            }
            entries.push(PluginEntry {
                name,
                library,
                enabled: true,
                sha256: None,
                isolation: Isolation::InProcess,
                timeout: None,
                load_timeout: super::config::DEFAULT_LOAD_TIMEOUT,
                worker: Default::default(),
                config: serde_json::json!({}),
            });
        }
        let entries: Vec<&PluginEntry> = entries.iter().collect();
        self.add_all(&entries, reuse, fallback);
    }

    /// The plugins that loaded.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// The plugins that did not load.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }

    /// Why the latest reload of loaded plugin `name` failed, when it did
    /// (the instance in [`Registry::plugins`] is the one loaded before).
    pub fn reload_failure(&self, name: &str) -> Option<&LoadFailure> {
        self.reload_failures.iter().find(|f| f.name == name)
    }

    /// Every failed reload that kept the instance serving.
    pub fn reload_failures(&self) -> &[LoadFailure] {
        &self.reload_failures
    }

    /// The entries with `enabled = false`.
    pub fn disabled(&self) -> &[PluginEntry] {
        &self.disabled
    }

    /// Finds a loader by `name` or `plugin/name`.
    pub fn loader(&self, address: &str) -> Result<Component<'_, LoaderManifest>, ResolveError> {
        self.resolve("loader", address, |m| &m.loaders, |l| &l.name)
    }

    /// Finds a formatter by `name` or `plugin/name`.
    pub fn formatter(
        &self,
        address: &str,
    ) -> Result<Component<'_, FormatterManifest>, ResolveError> {
        self.resolve("format", address, |m| &m.formatters, |f| &f.name)
    }

    fn resolve<'r, M>(
        &'r self,
        kind: &'static str,
        address: &str,
        components: impl Fn(&Manifest) -> &Vec<M>,
        name_of: impl Fn(&M) -> &String,
    ) -> Result<Component<'r, M>, ResolveError> {
        let all: Vec<Component<'r, M>> = self
            .plugins
            .iter()
            .flat_map(|plugin| {
                components(plugin.manifest())
                    .iter()
                    .map(move |manifest| Component { plugin, manifest })
            })
            .collect();
        let matches: Vec<Component<'r, M>> = match address.split_once('/') {
            Some((plugin, name)) => all
                .into_iter()
                .filter(|c| c.plugin.name == plugin && name_of(c.manifest) == name)
                .collect(),
            None => {
                let found: Vec<_> = all
                    .into_iter()
                    .filter(|c| name_of(c.manifest) == address)
                    .collect();
                if found.len() > 1 {
                    let candidates = found
                        .iter()
                        .map(|c| c.address(name_of(c.manifest)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(ResolveError::Ambiguous {
                        kind,
                        address: address.to_owned(),
                        candidates,
                    });
                }
                found
            }
        };
        matches.into_iter().next().ok_or_else(|| {
            let available: Vec<String> = self
                .plugins
                .iter()
                .flat_map(|p| {
                    components(p.manifest())
                        .iter()
                        .map(|c| format!("{}/{}", p.name, name_of(c)))
                        .collect::<Vec<_>>()
                })
                .collect();
            ResolveError::Unknown {
                kind,
                address: address.to_owned(),
                available: if available.is_empty() {
                    "none (no plugin is loaded; see `export-host plugins list`)".to_owned()
                } else {
                    available.join(", ")
                },
            }
        })
    }
}

/// Loads `entries` on up to one thread per core, results in their order.
/// Reading, hashing and copying each library is most of a start-up (about
/// 140 ms for the nine first-party plugins on this machine's two cores),
/// and the libraries are independent of each other.
fn load_side_by_side(entries: &[&PluginEntry]) -> Vec<Result<LoadedPlugin, LoadFailure>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entries.len());
    if threads <= 1 {
        return entries.iter().map(|entry| load_plugin(entry)).collect();
    }
    let mut results: Vec<Option<Result<LoadedPlugin, LoadFailure>>> =
        entries.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|first| {
                scope.spawn(move || {
                    entries
                        .iter()
                        .enumerate()
                        .skip(first)
                        .step_by(threads)
                        .map(|(at, entry)| (at, load_plugin(entry)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            // A panic here is the host's own bug (plugin panics are caught
            // at the boundary); its entries are reported below.
            for (at, result) in worker.join().unwrap_or_default() {
                results[at] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .zip(entries)
        .map(|(result, entry)| {
            result.unwrap_or_else(|| {
                Err(LoadFailure {
                    name: entry.name.clone(),
                    path: entry.library.clone(),
                    cause: FailureCause::Load,
                    reason: "loading it panicked in the host; see the log".to_owned(),
                    at: SystemTime::now(),
                })
            })
        })
        .collect()
}

fn load_plugin(entry: &PluginEntry) -> Result<LoadedPlugin, LoadFailure> {
    let fail = |cause, reason: String| LoadFailure {
        name: entry.name.clone(),
        path: entry.library.clone(),
        cause,
        reason,
        at: SystemTime::now(),
    };
    // An isolated plugin is verified and loaded by its first worker: the
    // host never opens its library.
    let (handle, sha256) = match entry.isolation {
        Isolation::InProcess => {
            let probe = Probe {
                plugin: &entry.name,
                memory_limit: entry.worker.memory_limit,
                timeout: entry.load_timeout,
            };
            let (library, sha256) =
                open_verified(&entry.library, entry.sha256.as_deref(), Some(probe))
                    .map_err(|(cause, reason)| fail(cause, reason))?;
            (PluginHandle::InProcess(library), sha256)
        }
        Isolation::Process => {
            let pool = WorkerPool::start(
                &entry.name,
                &entry.library,
                entry.sha256.as_deref(),
                &entry.worker,
            )
            .map_err(|(cause, reason)| fail(cause, reason))?;
            let sha256 = pool.sha256().to_owned();
            (PluginHandle::Process(pool), sha256)
        }
    };
    let manifest = handle.manifest();
    let config_schema = DocumentSchema::compile(&manifest.config_schema).map_err(|err| {
        fail(
            FailureCause::Config,
            format!("it declares an invalid config schema: {err}; this is a bug in the plugin"),
        )
    })?;
    config_schema
        .check("config", &entry.config)
        .map_err(|violation| {
            fail(
                FailureCause::Config,
                format!(
                    "[plugins.{}.config] {}",
                    entry.name,
                    violation.to_string().trim_start_matches("config ")
                ),
            )
        })?;
    let mut selector_schemas = HashMap::new();
    for loader in &manifest.loaders {
        let schema = DocumentSchema::compile(&loader.selector_schema).map_err(|err| {
            fail(
                FailureCause::Config,
                format!(
                    "loader {:?} declares an invalid selector schema: {err}",
                    loader.name
                ),
            )
        })?;
        selector_schemas.insert(loader.name.clone(), schema);
    }
    let mut options_schemas = HashMap::new();
    for formatter in &manifest.formatters {
        let schema = DocumentSchema::compile(&formatter.options_schema).map_err(|err| {
            fail(
                FailureCause::Config,
                format!(
                    "formatter {:?} declares an invalid options schema: {err}",
                    formatter.name
                ),
            )
        })?;
        options_schemas.insert(formatter.name.clone(), schema);
    }
    Ok(LoadedPlugin {
        name: entry.name.clone(),
        path: entry.library.clone(),
        sha256,
        isolation: entry.isolation,
        timeout: entry.timeout,
        config_json: entry.config.to_string(),
        entry: entry.clone(),
        handle,
        selector_schemas,
        options_schemas,
    })
}

/// How a library is probe-loaded in a child process before the host maps it.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    /// The plugin's name (for the child's logs).
    pub plugin: &'a str,
    /// The child's address-space cap, in bytes.
    pub memory_limit: u64,
    /// How long the child may take to load it.
    pub timeout: Duration,
}

impl Probe<'_> {
    /// The probe `plugins check` runs: the defaults of a plugins.toml table.
    pub fn defaults(plugin: &str) -> Probe<'_> {
        Probe {
            plugin,
            memory_limit: super::config::WorkerSettings::default().memory_limit,
            timeout: super::config::DEFAULT_LOAD_TIMEOUT,
        }
    }
}

/// Verifies and loads one library file: the trust and structure checks on
/// a private copy, then (with `probe`) a load of that copy in a child
/// process, and only then dlopen of the copy here, the version and ABI
/// checks, and the manifest. Without `probe` (a worker process, which is
/// itself disposable) the copy is loaded at once.
pub fn open_verified(
    path: &Path,
    sha256: Option<&str>,
    probe: Option<Probe<'_>>,
) -> Result<(PluginLibrary, String), (FailureCause, String)> {
    let verified = trust::verify(path, sha256)
        .map_err(|err: TrustError| (FailureCause::Trust, err.to_string()))?;
    if let Some(limits) = probe {
        probe::probe(
            limits.plugin,
            &verified.copy,
            limits.memory_limit,
            limits.timeout,
        )
        .map_err(|err: ProbeError| (FailureCause::Load, err.to_string()))?;
    }
    // SAFETY: the bytes passed the trust checks (regular ELF shared object
    // whose segments fit the file, not writable by others, checksum when
    // pinned), loaded cleanly in a probe process when asked, and are loaded
    // from a private copy that nobody else can change.
    let library = unsafe { PluginLibrary::load(&verified.copy) }
        .map_err(|err: LoadError| (FailureCause::Load, err.to_string()))?;
    Ok((library, verified.sha256))
}
