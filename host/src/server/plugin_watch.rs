//! Hot reload: watches plugins.toml and the plugin folders, and applies
//! what changed to the running registry ([`LiveRegistry::reload`]).
//!
//! File events are debounced (a copy or a build writes a library in many
//! steps): a reload runs once the events have been quiet for
//! [`QUIET`], and at the latest [`MOST_DELAY`] after the first one. Events
//! that arrive while a reload runs wait in the channel and cause the next
//! reload, so no change is ever missed. SIGHUP ([`Reloader::reload_now`])
//! reloads at once, between `RELOADING=1` and `READY=1` for systemd.
//!
//! A reload that cannot load a library (broken, half-copied, wrong
//! `sha256`) keeps the instance already serving and reports the failure
//! beside it (see [`crate::plugins::reload`]).
//!
//! Watched, non-recursively: the folder of plugins.toml (editors replace
//! the file rather than write it), the plugin `dir`, and the folder of each
//! library named by an absolute path elsewhere. Only events on plugins.toml
//! and on `.so` files count; reads (our own hashing opens the libraries)
//! never do. After every reload the watched folders follow the new file.

use crate::plugins::{LiveRegistry, PluginsConfig};
use crate::server::systemd;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long file events must be quiet before a reload. A library is then
/// taken only once it has not been written for as long (the trust checks
/// wait for that, [`crate::library::trust::SETTLE`]), so a copy in progress
/// is never loaded half-way.
pub const QUIET: Duration = crate::library::trust::SETTLE;
/// The longest a reload waits behind a stream of events.
pub const MOST_DELAY: Duration = Duration::from_secs(2);

/// Why a reload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// plugins.toml or a library changed on disk.
    Files,
    /// SIGHUP.
    Signal,
}

/// Handle to the reload task.
#[derive(Debug)]
pub struct Reloader {
    triggers: mpsc::UnboundedSender<Trigger>,
    task: tokio::task::JoinHandle<()>,
}

impl Reloader {
    /// Starts watching and reloading `plugins` from the plugins.toml at
    /// `path`. When the operating system refuses to watch, hot reload
    /// of files is off (logged) and SIGHUP still works.
    pub fn start(plugins: Arc<LiveRegistry>, path: &Path) -> Reloader {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let (triggers, received) = mpsc::unbounded_channel();
        let watcher = watcher(&path, triggers.clone());
        let task = tokio::spawn(reload_on_triggers(plugins, path, watcher, received));
        Reloader { triggers, task }
    }

    /// Reloads now (SIGHUP).
    pub fn reload_now(&self) {
        let _ = self.triggers.send(Trigger::Signal);
    }

    /// Stops watching.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// A watcher that sends [`Trigger::Files`] for every event that matters.
fn watcher(path: &Path, triggers: mpsc::UnboundedSender<Trigger>) -> Option<RecommendedWatcher> {
    let toml = path.to_owned();
    let handler = move |event: notify::Result<Event>| match event {
        Ok(event) if matters(&event, &toml) => {
            let _ = triggers.send(Trigger::Files);
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "plugin watcher error"),
    };
    match notify::recommended_watcher(handler) {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch the plugin files; hot reload is off (SIGHUP still reloads)");
            None
        }
    }
}

/// A change to plugins.toml or to a library; never a mere read.
fn matters(event: &Event, toml: &Path) -> bool {
    let kind_matters = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    };
    kind_matters
        && event
            .paths
            .iter()
            .any(|p| p == toml || p.extension().is_some_and(|x| x == "so"))
}

/// Reloads `plugins` on each trigger (debounced file events, or SIGHUP),
/// keeping the watched folders in step, until the channel closes.
async fn reload_on_triggers(
    plugins: Arc<LiveRegistry>,
    path: PathBuf,
    mut watcher: Option<RecommendedWatcher>,
    mut received: mpsc::UnboundedReceiver<Trigger>,
) {
    let mut watched = BTreeSet::new();
    if let Some(watcher) = watcher.as_mut() {
        follow(watcher, &mut watched, &path);
    }
    while let Some(first) = received.recv().await {
        let Some(signal) = settle(first, &mut received).await else {
            return;
        };
        if signal {
            tracing::info!("SIGHUP: reloading plugins");
            systemd::reloading();
        }
        let why = if signal { "SIGHUP" } else { "files changed" };
        let reload = {
            let plugins = plugins.clone();
            let path = path.clone();
            tokio::task::spawn_blocking(move || plugins.reload(&path)).await
        };
        match reload {
            Ok(Ok(report)) => report.log(why),
            Ok(Err(err)) => {
                tracing::error!(error = %err, "plugins not reloaded; the loaded plugins stay as they were")
            }
            Err(join) => tracing::error!(error = %join, "the plugin reload failed"),
        }
        if let Some(watcher) = watcher.as_mut() {
            follow(watcher, &mut watched, &path);
        }
        if signal {
            systemd::ready();
        }
    }
}

/// Waits until the events after `first` are quiet (a signal does not wait)
/// and drains them. Whether a signal was among them; `None` when the
/// channel closed.
async fn settle(first: Trigger, received: &mut mpsc::UnboundedReceiver<Trigger>) -> Option<bool> {
    let mut signal = first == Trigger::Signal;
    let latest = Instant::now() + MOST_DELAY;
    while !signal {
        let wait = QUIET.min(latest.saturating_duration_since(Instant::now()));
        if wait.is_zero() {
            break;
        }
        match tokio::time::timeout(wait, received.recv()).await {
            Ok(Some(trigger)) => signal |= trigger == Trigger::Signal,
            Ok(None) => return None,
            Err(_quiet) => break,
        }
    }
    while let Ok(trigger) = received.try_recv() {
        signal |= trigger == Trigger::Signal;
    }
    Some(signal)
}

/// Makes the watched folders those plugins.toml now asks for.
fn follow(watcher: &mut RecommendedWatcher, watched: &mut BTreeSet<PathBuf>, toml: &Path) {
    let wanted = folders(toml);
    for gone in watched.difference(&wanted).cloned().collect::<Vec<_>>() {
        let _ = watcher.unwatch(&gone);
        watched.remove(&gone);
    }
    for folder in wanted {
        if watched.contains(&folder) {
            continue;
        }
        match watcher.watch(&folder, RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::debug!(folder = %folder.display(), "watching for plugin changes");
                watched.insert(folder);
            }
            Err(err) => {
                tracing::warn!(folder = %folder.display(), error = %err, "cannot watch this folder for plugin changes; it is retried after the next reload")
            }
        }
    }
}

/// The folders to watch for `toml`: its own, and (when it parses) the
/// plugin dir and each library's folder.
fn folders(toml: &Path) -> BTreeSet<PathBuf> {
    let mut folders = BTreeSet::new();
    if let Some(parent) = toml.parent() {
        folders.insert(parent.to_owned());
    }
    if let Ok(config) = PluginsConfig::load(toml) {
        folders.insert(config.dir.clone());
        for entry in &config.entries {
            if let Some(parent) = entry.library.parent() {
                folders.insert(parent.to_owned());
            }
        }
    }
    folders
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_changes_to_the_registry_or_a_library_matter() {
        let toml = Path::new("/etc/export-host/plugins.toml");
        let create = EventKind::Create(CreateKind::File);
        let write = EventKind::Modify(ModifyKind::Any);
        assert!(matters(&event(create, "/srv/plugins/libx.so"), toml));
        assert!(matters(
            &event(write, "/etc/export-host/plugins.toml"),
            toml
        ));
        assert!(matters(
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/srv/plugins/libx.so"
            ),
            toml
        ));
        assert!(!matters(&event(write, "/srv/plugins/notes.txt"), toml));
        assert!(!matters(
            &event(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/srv/plugins/libx.so"
            ),
            toml
        ));
        assert!(!matters(
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                "/srv/plugins/libx.so"
            ),
            toml
        ));
    }

    #[tokio::test]
    async fn a_burst_of_events_settles_into_one_reload_and_a_signal_does_not_wait() {
        let (send, mut received) = mpsc::unbounded_channel();
        for _ in 0..5 {
            send.send(Trigger::Files).expect("open channel");
        }
        let first = received.recv().await.expect("an event");
        let started = std::time::Instant::now();
        assert_eq!(settle(first, &mut received).await, Some(false));
        assert!(received.try_recv().is_err(), "the burst is drained");
        assert!(started.elapsed() >= QUIET);

        send.send(Trigger::Files).expect("open channel");
        send.send(Trigger::Signal).expect("open channel");
        let first = received.recv().await.expect("an event");
        assert_eq!(settle(first, &mut received).await, Some(true));
    }
}
