//! The loaded plugins, and how requests find components in them.

use super::config::{Isolation, PluginEntry, PluginsConfig};
use super::schema::DocumentSchema;
use crate::isolation::probe::{self, ProbeError};
use crate::isolation::{LastFault, PluginHandle, PluginState, WorkerPool};
use crate::library::{self, FailureCause};
use export_plugin_api::host::PluginLibrary;
use export_plugin_api::{FormatterManifest, LoaderManifest, Manifest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

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

/// Tells the loads apart: a reload that replaces or drops an entry whose
/// load is still running makes that load's outcome stale.
static TICKETS: AtomicU64 = AtomicU64::new(1);

/// A plugin whose load runs in the background (the daemon's start): the
/// requests that need it are answered "loading" until it is loaded or has
/// failed, which takes at most its `load_timeout` per step.
#[derive(Debug, Clone)]
pub struct LoadingPlugin {
    /// Its name in plugins.toml (or the file name, for discovered files).
    pub name: String,
    /// The library file.
    pub path: PathBuf,
    /// How it will run.
    pub isolation: Isolation,
    /// Its `load_timeout`.
    pub load_timeout: Duration,
    /// When its load began.
    pub since: SystemTime,
    entry: PluginEntry,
    /// The file's size and modification time when the load began: a
    /// reload that finds them changed loads the file again.
    stamp: Option<(u64, SystemTime)>,
    ticket: u64,
}

impl LoadingPlugin {
    fn new(entry: &PluginEntry) -> LoadingPlugin {
        LoadingPlugin {
            name: entry.name.clone(),
            path: entry.library.clone(),
            isolation: entry.isolation,
            load_timeout: entry.load_timeout,
            since: SystemTime::now(),
            entry: entry.clone(),
            stamp: file_stamp(&entry.library),
            ticket: TICKETS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The plugins.toml entry being loaded.
    pub fn entry(&self) -> &PluginEntry {
        &self.entry
    }

    /// Which load this is (see [`Registry::settle`]).
    pub fn ticket(&self) -> u64 {
        self.ticket
    }

    /// Whether this load still stands for `entry`: the same table, and the
    /// file not changed since the load began.
    pub fn still_for(&self, entry: &PluginEntry) -> bool {
        self.entry == *entry && file_stamp(&entry.library) == self.stamp
    }
}

fn file_stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// One plugin to load off the caller's thread ([`Registry::start_loading`]).
#[derive(Debug, Clone)]
pub struct PendingLoad {
    /// The ticket of its [`LoadingPlugin`].
    pub ticket: u64,
    /// What to load.
    pub entry: PluginEntry,
}

impl PendingLoad {
    /// Loads it, bounded by its `load_timeout` (blocking: run it on a
    /// blocking thread).
    pub fn load(&self) -> Result<LoadedPlugin, LoadFailure> {
        load_bounded(&self.entry)
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
    /// The plugin it names, or (for a bare name no loaded plugin offers)
    /// some plugin, is still loading: worth asking again shortly.
    #[error("{kind} {address:?} is not available yet: {} still loading; try again in a few seconds", loading_list(.plugins))]
    Loading {
        /// "loader" or "format".
        kind: &'static str,
        /// What was asked for.
        address: String,
        /// The plugins still loading that may offer it.
        plugins: Vec<String>,
    },
}

fn loading_list(plugins: &[String]) -> String {
    let quoted: Vec<String> = plugins.iter().map(|p| format!("{p:?}")).collect();
    match quoted.as_slice() {
        [one] => format!("plugin {one} is"),
        _ => format!("plugins {} are", quoted.join(", ")),
    }
}

/// Every plugin named by plugins.toml (and discovered, when asked), loaded or not.
#[derive(Default, Clone)]
pub struct Registry {
    plugins: Vec<Arc<LoadedPlugin>>,
    /// Plugins whose background load has not ended yet.
    loading: Vec<LoadingPlugin>,
    /// The enabled entries' names in plugins.toml's order (then the
    /// discovered ones): loads that end in any order are listed in it.
    order: Vec<String>,
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
    /// Loads every enabled plugin, each bounded by its `load_timeout`.
    /// Never fails as a whole: a plugin that cannot load is recorded in
    /// [`Registry::failures`] and logged, and the rest load.
    pub fn load(config: &PluginsConfig) -> Registry {
        Registry::load_reusing(config, |_| None)
    }

    /// Every enabled plugin (and, with `discover`, every other library in
    /// the plugin folder) as [`Registry::loading`], and the loads to run,
    /// off this thread, whose outcomes go in with [`Registry::settle`]. The
    /// daemon starts this way: it serves at once, and the requests that
    /// need a plugin still loading are answered "loading".
    pub fn start_loading(config: &PluginsConfig) -> (Registry, Vec<PendingLoad>) {
        let mut registry = Registry::default();
        let (enabled, disabled): (Vec<&PluginEntry>, Vec<&PluginEntry>) =
            config.entries.iter().partition(|entry| entry.enabled);
        registry.disabled = disabled.into_iter().cloned().collect();
        let mut entries: Vec<PluginEntry> = enabled.into_iter().cloned().collect();
        if config.discover {
            let taken: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
            entries.extend(discovered(config, &|name| taken.iter().any(|t| t == name)));
        }
        registry.order = entries.iter().map(|e| e.name.clone()).collect();
        let mut loads = Vec::with_capacity(entries.len());
        for entry in entries {
            let marker = LoadingPlugin::new(&entry);
            loads.push(PendingLoad {
                ticket: marker.ticket,
                entry,
            });
            registry.loading.push(marker);
        }
        (registry, loads)
    }

    /// Like [`Registry::load`], but an entry for which `reuse` answers an
    /// already loaded plugin keeps that instance instead of loading the file
    /// again (see [`super::reload`]).
    pub fn load_reusing(
        config: &PluginsConfig,
        reuse: impl Fn(&PluginEntry) -> Option<Arc<LoadedPlugin>>,
    ) -> Registry {
        Registry::reload_from(config, &reuse, &|_| None, &|_| None)
    }

    /// Like [`Registry::load_reusing`], and a plugin whose load fails keeps
    /// the instance `fallback` answers for its name (the one serving now),
    /// with the failure in [`Registry::reload_failure`]. An entry for which
    /// `pending` answers a load still running keeps waiting for that load
    /// (a plugin is never loaded twice at once).
    pub fn reload_from(
        config: &PluginsConfig,
        reuse: &dyn Fn(&PluginEntry) -> Option<Arc<LoadedPlugin>>,
        fallback: Fallback<'_>,
        pending: &dyn Fn(&PluginEntry) -> Option<LoadingPlugin>,
    ) -> Registry {
        let mut registry = Registry::default();
        let (enabled, disabled): (Vec<&PluginEntry>, Vec<&PluginEntry>) =
            config.entries.iter().partition(|entry| entry.enabled);
        registry.disabled = disabled.into_iter().cloned().collect();
        registry.add_all(&enabled, reuse, fallback, pending);
        if config.discover {
            let entries = discovered(config, &|name| {
                registry.plugins.iter().any(|p| p.name == name)
                    || registry.loading.iter().any(|p| p.name == name)
            });
            let entries: Vec<&PluginEntry> = entries.iter().collect();
            registry.add_all(&entries, reuse, fallback, pending);
        }
        registry
    }

    /// Adds `entries` in their order, loading those neither `reuse` nor
    /// `pending` answers side by side.
    fn add_all(
        &mut self,
        entries: &[&PluginEntry],
        reuse: &dyn Fn(&PluginEntry) -> Option<Arc<LoadedPlugin>>,
        fallback: Fallback<'_>,
        pending: &dyn Fn(&PluginEntry) -> Option<LoadingPlugin>,
    ) {
        self.order.extend(entries.iter().map(|e| e.name.clone()));
        enum Source {
            Kept(Arc<LoadedPlugin>),
            Loading(Box<LoadingPlugin>),
            Fresh,
        }
        let sources: Vec<Source> = entries
            .iter()
            .map(|entry| match reuse(entry) {
                Some(kept) => Source::Kept(kept),
                None => pending(entry).map_or(Source::Fresh, |p| Source::Loading(Box::new(p))),
            })
            .collect();
        let fresh: Vec<&PluginEntry> = entries
            .iter()
            .zip(&sources)
            .filter(|(_, source)| matches!(source, Source::Fresh))
            .map(|(entry, _)| *entry)
            .collect();
        let mut loaded = load_side_by_side(&fresh).into_iter();
        for source in sources {
            match source {
                Source::Kept(kept) => self.plugins.push(kept),
                Source::Loading(marker) => self.loading.push(*marker),
                Source::Fresh => {
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
                log_loaded(&plugin);
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

    /// Puts the outcome of the background load `ticket` in place of its
    /// [`LoadingPlugin`]. False when none has that ticket (a reload
    /// replaced or dropped the entry meanwhile): the outcome is stale and
    /// left out. Logging and counting the outcome is the caller's
    /// ([`log_outcome`]), once, however many registries it settles.
    pub fn settle(
        &mut self,
        ticket: u64,
        outcome: &Result<Arc<LoadedPlugin>, LoadFailure>,
    ) -> bool {
        let Some(at) = self.loading.iter().position(|p| p.ticket == ticket) else {
            return false;
        };
        self.loading.remove(at);
        let rank = |name: &str| {
            self.order
                .iter()
                .position(|n| n == name)
                .unwrap_or(usize::MAX)
        };
        match outcome {
            Ok(plugin) => {
                let at = self
                    .plugins
                    .partition_point(|p| rank(&p.name) <= rank(&plugin.name));
                self.plugins.insert(at, plugin.clone());
            }
            Err(failure) => {
                let at = self
                    .failures
                    .partition_point(|f| rank(&f.name) <= rank(&failure.name));
                self.failures.insert(at, failure.clone());
            }
        }
        true
    }

    /// The plugins that loaded.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// The plugins that did not load.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }

    /// The plugins whose background load has not ended yet.
    pub fn loading(&self) -> &[LoadingPlugin] {
        &self.loading
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
            // A plugin still loading may offer it: the same request is
            // worth sending again shortly, unlike an unknown name.
            let loading: Vec<String> = match address.split_once('/') {
                Some((plugin, _)) => self
                    .loading
                    .iter()
                    .filter(|p| p.name == plugin)
                    .map(|p| p.name.clone())
                    .collect(),
                None => self.loading.iter().map(|p| p.name.clone()).collect(),
            };
            if !loading.is_empty() {
                return ResolveError::Loading {
                    kind,
                    address: address.to_owned(),
                    plugins: loading,
                };
            }
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

/// The entries for the libraries in the plugin folder that plugins.toml
/// does not name, named after their files; a name `taken` answers true for
/// (or met before) is skipped.
fn discovered(config: &PluginsConfig, taken: &dyn Fn(&str) -> bool) -> Vec<PluginEntry> {
    let named: Vec<&Path> = config.entries.iter().map(|e| e.library.as_path()).collect();
    let Ok(read_dir) = std::fs::read_dir(&config.dir) else {
        tracing::warn!(dir = %config.dir.display(), "discover = true but the plugin folder cannot be read");
        return Vec::new();
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
        if taken(&name) || entries.iter().any(|e| e.name == name) {
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
    entries
}

fn log_loaded(plugin: &LoadedPlugin) {
    tracing::info!(
        plugin = %plugin.name,
        version = %plugin.manifest().version,
        api = %plugin.manifest().api_version,
        path = %plugin.path.display(),
        "plugin loaded"
    );
}

/// Logs the outcome of a background load and counts a failure (once per
/// load, however many registries [`Registry::settle`] puts it in).
pub fn log_outcome(outcome: &Result<Arc<LoadedPlugin>, LoadFailure>) {
    match outcome {
        Ok(plugin) => log_loaded(plugin),
        Err(failure) => {
            failure.cause.count_refusal();
            tracing::error!(plugin = %failure.name, cause = failure.cause.as_str(), "{failure}");
        }
    }
}

/// Loads `entries` on up to one thread per core, results in their order.
/// Reading, hashing and copying each library is most of a start-up, and the
/// libraries are independent of each other.
fn load_side_by_side(entries: &[&PluginEntry]) -> Vec<Result<LoadedPlugin, LoadFailure>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entries.len());
    if threads <= 1 {
        return entries.iter().map(|entry| load_bounded(entry)).collect();
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
                        .map(|(at, entry)| (at, load_bounded(entry)))
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

/// How far a load has got, as [`load_bounded`] hears it.
enum Step {
    /// The probe passed: the library is being loaded into this process.
    Mapping,
    /// The load ended.
    Done(Box<Result<LoadedPlugin, LoadFailure>>),
}

/// How much longer than `load_timeout` the first step of an in-process
/// load is waited for: the probe enforces the limit itself (and kills its
/// process), so its own, more precise reason arrives first.
const PROBE_GRACE: Duration = Duration::from_secs(2);

/// Loads `entry` on a thread of its own and waits at most `load_timeout`
/// for each step that runs the library's code: the probe process and then
/// the load into this process (in-process), or the first worker
/// (isolated). Past it the plugin is reported failed. A probe or a worker
/// is killed; a load stuck in this process cannot be, so its thread is
/// left behind and whatever it loads is never used.
fn load_bounded(entry: &PluginEntry) -> Result<LoadedPlugin, LoadFailure> {
    let (send, receive) = mpsc::channel();
    let owned = entry.clone();
    let spawned = std::thread::Builder::new()
        .name("plugin-load".to_owned())
        .spawn(move || {
            let progress = send.clone();
            let result = load_plugin(&owned, &move || {
                let _ = progress.send(Step::Mapping);
            });
            let _ = send.send(Step::Done(Box::new(result)));
        });
    if let Err(err) = spawned {
        tracing::warn!(plugin = %entry.name, error = %err, "cannot start a thread to load the plugin; loading it without a time limit");
        return load_plugin(entry, &|| {});
    }
    let limit = entry.load_timeout;
    let mut step = match entry.isolation {
        Isolation::InProcess => "being checked and probe-loaded in a child process",
        Isolation::Process => "being loaded by its first worker process",
    };
    let mut until = Instant::now()
        + match entry.isolation {
            Isolation::InProcess => limit + PROBE_GRACE,
            Isolation::Process => limit,
        };
    loop {
        match receive.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Step::Done(result)) => return *result,
            Ok(Step::Mapping) => {
                step = "being loaded into the daemon after its probe passed (that thread cannot be stopped; restart the daemon to reclaim it)";
                until = Instant::now() + limit;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(LoadFailure {
                    name: entry.name.clone(),
                    path: entry.library.clone(),
                    cause: FailureCause::Load,
                    reason: format!(
                        "it did not load within {} (load_timeout): it was still {step}; \
                         raise load_timeout in [plugins.{}] if it is only slow",
                        humantime::format_duration(limit),
                        entry.name
                    ),
                    at: SystemTime::now(),
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(LoadFailure {
                    name: entry.name.clone(),
                    path: entry.library.clone(),
                    cause: FailureCause::Load,
                    reason: "loading it panicked in the host; see the log".to_owned(),
                    at: SystemTime::now(),
                });
            }
        }
    }
}

/// Loads `entry`; `mapping` is called when an in-process library passed its
/// probe and is about to be loaded into this process.
fn load_plugin(entry: &PluginEntry, mapping: &dyn Fn()) -> Result<LoadedPlugin, LoadFailure> {
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
            let (library, sha256) = open_verified_then(
                &entry.library,
                entry.sha256.as_deref(),
                Some(probe),
                mapping,
            )
            .map_err(|(cause, reason)| fail(cause, reason))?;
            (PluginHandle::InProcess(library), sha256)
        }
        Isolation::Process => {
            let pool = WorkerPool::start(
                &entry.name,
                &entry.library,
                entry.sha256.as_deref(),
                &entry.worker,
                entry.load_timeout,
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

/// Verifies and loads one library file ([`library::open_verified`]), with
/// (`probe`) a load of the checked copy in a child process first, which
/// only the child survives if the library's initialisers crash. Without
/// `probe` (a worker process, which is itself disposable) the copy is
/// loaded at once.
pub fn open_verified(
    path: &Path,
    sha256: Option<&str>,
    probe: Option<Probe<'_>>,
) -> Result<(PluginLibrary, String), (FailureCause, String)> {
    open_verified_then(path, sha256, probe, &|| {})
}

/// [`open_verified`], calling `mapping` once the checks and the probe have
/// passed, just before the library is loaded into this process.
fn open_verified_then(
    path: &Path,
    sha256: Option<&str>,
    probe: Option<Probe<'_>>,
    mapping: &dyn Fn(),
) -> Result<(PluginLibrary, String), (FailureCause, String)> {
    library::open_verified(path, sha256, &|copy: &Path| {
        if let Some(limits) = probe {
            probe::probe(limits.plugin, copy, limits.memory_limit, limits.timeout).map_err(
                |err: ProbeError| {
                    let reason = match err {
                        ProbeError::TimedOut(limit) => format!(
                            "it did not load within {} (load_timeout): its initialisers were \
                             still running in a probe process, which was killed, so the host \
                             did not load it; raise load_timeout in [plugins.{}] if it is only \
                             slow",
                            humantime::format_duration(limit),
                            limits.plugin
                        ),
                        other => other.to_string(),
                    };
                    (FailureCause::Load, reason)
                },
            )?;
        }
        mapping();
        Ok(())
    })
}
