//! How a plugin's code runs: in the host, or, with `isolation = "process"`,
//! in worker processes that cannot hurt it.
//!
//! An isolated plugin is never opened by the host. Its workers are the host
//! binary re-executed as `export-host __plugin-worker` ([`worker`]): each
//! runs the trust checks, loads the library and answers a small versioned
//! protocol ([`protocol`]) over a private socket, with record batches as
//! Arrow IPC. The host keeps a [`pool::WorkerPool`] per plugin, reusing
//! workers across exports and ending idle ones; a worker that segfaults,
//! aborts, runs out of memory, hangs past the plugin's timeout or breaks the
//! protocol fails only the export it served, with a [`Fault`] saying which,
//! and a plugin whose workers keep failing is quarantined.
//!
//! The pipeline sees neither: it calls a [`PluginHandle`]. How this fits
//! with plugin checks, loading and reload: docs/architecture.md, "Plugins:
//! checked, loaded, run".

pub mod fault;
pub mod handle;
pub mod pool;
pub mod probe;
pub mod process;
pub mod protocol;
pub mod sandbox;
pub mod settings;
pub mod worker;

pub use fault::Fault;
pub use handle::{Batch, BatchSource, CallError, FormatSession, Formatted, PluginHandle};
pub use pool::{LastFault, PluginState, WorkerPool};
pub use process::{Deadline, Killer};
pub use settings::{Isolation, SandboxGrants, WorkerSettings};
pub use worker::WorkerArgs;

use std::path::PathBuf;
use std::sync::OnceLock;

static WORKER_EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

/// Runs workers (and the probes that load every library in a child before
/// the host maps it, see [`probe`]) from `path` instead of the current
/// executable: programs that embed the host library and load plugins (tests,
/// tools) and are not `export-host` themselves must call it first. Only the
/// first call counts; returns whether it did.
pub fn set_worker_executable(path: PathBuf) -> bool {
    WORKER_EXECUTABLE.set(path).is_ok()
}

/// The binary that serves `__plugin-worker`.
fn worker_executable() -> std::io::Result<PathBuf> {
    match WORKER_EXECUTABLE.get() {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe(),
    }
}
