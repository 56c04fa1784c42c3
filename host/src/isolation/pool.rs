//! The worker processes of one isolated plugin: reused across exports,
//! started on demand up to `max_workers`, ended when idle. A worker that
//! fails is ended and its fault kept as the plugin's last one; whether the
//! plugin is quarantined is decided from the faults recorded in the
//! database (`records::quarantine`), which every daemon shares, not here.

use super::fault::Fault;
use super::process::{Deadline, WorkerProcess};
use super::protocol::{Refusal, Reply, Request, PROTOCOL_VERSION};
use super::settings::WorkerSettings;
use crate::library::FailureCause;
use export_plugin_api::Manifest;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

/// Whether a plugin takes work. A loaded plugin's handle is always
/// `Loaded`; `Quarantined` is what a listing reports from the faults in
/// the database (`Records::plugin_quarantine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginState {
    /// Loaded and serving.
    Loaded,
    /// Its calls failed too often: refused until `until`.
    Quarantined {
        /// When the quarantine lifts (unless it faults again first).
        until: SystemTime,
        /// Faults within the window.
        crashes: usize,
    },
}

impl PluginState {
    /// `loaded` or `quarantined`: the `status` column of `plugins list`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PluginState::Loaded => "loaded",
            PluginState::Quarantined { .. } => "quarantined",
        }
    }
}

/// The most recent worker fault of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFault {
    /// When it happened.
    pub at: SystemTime,
    /// Its short label (`signal`, `timeout`, `memory_limit`, ...).
    pub kind: &'static str,
    /// What happened, for people.
    pub message: String,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<(WorkerProcess, Instant)>,
    /// Workers alive: idle, busy, or being started.
    live: usize,
    /// Pids of the live workers that have started.
    pids: Vec<u32>,
    last_fault: Option<LastFault>,
}

/// The worker processes of one plugin with `isolation = "process"`.
pub struct WorkerPool {
    plugin: String,
    library: PathBuf,
    /// The SHA-256 the first worker loaded: every later worker must load the
    /// same bytes, so a replaced file is refused until a reload.
    sha256: String,
    manifest: Manifest,
    settings: WorkerSettings,
    /// How long a new worker may take to load the library.
    load_timeout: Duration,
    state: Mutex<PoolState>,
    freed: Condvar,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("plugin", &self.plugin)
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// Starts the plugin's first worker, which runs the trust checks on
    /// `library` (and `sha256` when pinned), loads it and reads its manifest
    /// within `load_timeout`; the host itself never opens the library. The
    /// worker stays, idle, for the first export.
    pub fn start(
        plugin: &str,
        library: &Path,
        sha256: Option<&str>,
        settings: &WorkerSettings,
        load_timeout: Duration,
    ) -> Result<Arc<WorkerPool>, (FailureCause, String)> {
        let mut worker = WorkerProcess::spawn(plugin, settings)
            .map_err(|fault| (FailureCause::Load, fault.to_string()))?;
        let (manifest, sha256) = hello(&mut worker, library, sha256, load_timeout)?;
        let pool = Arc::new(WorkerPool {
            plugin: plugin.to_owned(),
            library: library.to_owned(),
            sha256,
            manifest,
            settings: settings.clone(),
            load_timeout,
            state: Mutex::new(PoolState {
                live: 1,
                pids: vec![worker.pid()],
                idle: vec![(worker, Instant::now())],
                ..PoolState::default()
            }),
            freed: Condvar::new(),
        });
        reap_idle_workers(Arc::downgrade(&pool), settings.idle_timeout);
        Ok(pool)
    }

    /// What the plugin declares (read by its first worker).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the library its workers load.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The most recent worker fault, if any.
    pub fn last_fault(&self) -> Option<LastFault> {
        self.lock().last_fault.clone()
    }

    /// Process ids of the live workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.lock().pids.clone()
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker for one conversation: an idle one, or a new one while fewer
    /// than `max_workers` live; otherwise waits for one to come back.
    pub(crate) fn checkout(&self, deadline: Option<&Deadline>) -> Result<WorkerProcess, Fault> {
        let mut state = self.lock();
        loop {
            while let Some((mut worker, _)) = state.idle.pop() {
                if worker.is_usable() {
                    return Ok(worker);
                }
                forget(&mut state, worker.pid());
                drop(worker);
            }
            if state.live < self.settings.max_workers {
                state.live += 1;
                drop(state);
                return self.start_worker();
            }
            state = match deadline {
                None => self
                    .freed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Fault::Timeout {
                            timeout: deadline.timeout,
                        });
                    }
                    self.freed
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    fn start_worker(&self) -> Result<WorkerProcess, Fault> {
        let started = WorkerProcess::spawn(&self.plugin, &self.settings).and_then(|mut worker| {
            match hello(
                &mut worker,
                &self.library,
                Some(&self.sha256),
                self.load_timeout,
            ) {
                Ok(_) => Ok(worker),
                Err((_, message)) => Err(Fault::Start(message)),
            }
        });
        let mut state = self.lock();
        match started {
            Ok(worker) => {
                state.pids.push(worker.pid());
                Ok(worker)
            }
            Err(fault) => {
                state.live -= 1;
                self.record(&mut state, &fault);
                self.freed.notify_one();
                Err(fault)
            }
        }
    }

    /// Takes back a worker whose conversation ended cleanly.
    pub(crate) fn checkin(&self, mut worker: WorkerProcess) {
        if !worker.is_usable() {
            return self.discard(worker, None);
        }
        let mut state = self.lock();
        state.idle.push((worker, Instant::now()));
        self.freed.notify_one();
    }

    /// Ends a worker that failed (keeping `fault` as the last one) or whose
    /// conversation could not end cleanly.
    pub(crate) fn discard(&self, worker: WorkerProcess, fault: Option<&Fault>) {
        let pid = worker.pid();
        drop(worker);
        let mut state = self.lock();
        state.live -= 1;
        forget(&mut state, pid);
        if let Some(fault) = fault {
            self.record(&mut state, fault);
        }
        self.freed.notify_one();
    }

    fn record(&self, state: &mut PoolState, fault: &Fault) {
        if !fault.is_crash() {
            return;
        }
        state.last_fault = Some(LastFault {
            at: SystemTime::now(),
            kind: fault.label(),
            message: fault.to_string(),
        });
        tracing::warn!(plugin = %self.plugin, fault = fault.label(), "plugin worker failed: {fault}");
    }

    /// Ends the workers idle for longer than `idle_timeout`.
    fn end_idle(&self) {
        let timeout = self.settings.idle_timeout;
        let ended: Vec<WorkerProcess> = {
            let mut state = self.lock();
            let (old, fresh): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition(|(_, since)| since.elapsed() >= timeout);
            state.idle = fresh;
            state.live -= old.len();
            for (worker, _) in &old {
                forget(&mut state, worker.pid());
            }
            old.into_iter().map(|(worker, _)| worker).collect()
        };
        if !ended.is_empty() {
            tracing::debug!(plugin = %self.plugin, count = ended.len(), "ending idle plugin workers");
        }
    }
}

fn forget(state: &mut PoolState, pid: u32) {
    state.pids.retain(|p| *p != pid);
}

/// The handshake: the worker verifies and loads the library.
fn hello(
    worker: &mut WorkerProcess,
    library: &Path,
    sha256: Option<&str>,
    load_timeout: Duration,
) -> Result<(Manifest, String), (FailureCause, String)> {
    let request = Request::Hello {
        protocol: PROTOCOL_VERSION,
        library: library.to_owned(),
        sha256: sha256.map(str::to_owned),
    };
    // Loading runs the plugin's initialisers: a library that hangs there
    // must not hang the host, and its worker is killed at the limit.
    let deadline = Deadline::after(Instant::now(), load_timeout);
    let reply = worker
        .call(&request, &[], Some(&deadline))
        .map_err(|fault| (FailureCause::Load, format!("its worker process {fault}")))?;
    match reply.0 {
        Reply::Ready {
            protocol,
            manifest,
            sha256,
        } if protocol == PROTOCOL_VERSION => Ok((manifest, sha256)),
        Reply::Refused { refusal, message } => Err((
            match refusal {
                Refusal::Trust => FailureCause::Trust,
                Refusal::Load | Refusal::Protocol => FailureCause::Load,
            },
            message,
        )),
        other => Err((
            FailureCause::Load,
            format!("its worker answered the handshake with {other:?}"),
        )),
    }
}

/// A thread that ends idle workers until the pool is gone.
fn reap_idle_workers(pool: Weak<WorkerPool>, idle_timeout: Duration) {
    let period = (idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let started = std::thread::Builder::new()
        .name("worker-reaper".to_owned())
        .spawn(move || loop {
            std::thread::sleep(period);
            match pool.upgrade() {
                Some(pool) => pool.end_idle(),
                None => break,
            }
        });
    if let Err(err) = started {
        tracing::warn!(error = %err, "cannot start the idle worker reaper; idle workers stay until the plugin is reloaded");
    }
}
