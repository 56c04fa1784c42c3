//! How a plugin runs and what its worker processes may do: the values
//! plugins.toml's `[plugins.NAME]` tables set (parsed in `plugins::config`)
//! and the worker pool, the sandbox and the protocol read.

use super::sandbox::SandboxLevel;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Loaded into the host process: fastest; a crash takes the host down,
    /// and the plugin reaches everything the host can. An explicit choice.
    InProcess,
    /// In sandboxed child worker processes (the default: a plugin is
    /// untrusted code until its table says otherwise).
    #[default]
    Process,
}

impl Isolation {
    /// The spelling used in plugins.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::InProcess => "in-process",
            Isolation::Process => "process",
        }
    }
}

/// The keys of a `[plugins.NAME]` table that shape its worker processes
/// (they apply with `isolation = "process"` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// `memory_limit`: the address-space cap (RLIMIT_AS) of each worker, in bytes.
    pub memory_limit: u64,
    /// `max_workers`: the most workers of the plugin alive at once.
    pub max_workers: usize,
    /// `idle_timeout`: a worker unused this long is ended.
    pub idle_timeout: Duration,
    /// `quarantine_after`: this many faults of one user's exports within
    /// `quarantine_window` quarantine the plugin for that user (in-process
    /// plugins too: a daemon that died inside it counts).
    pub quarantine_after: u32,
    /// `quarantine_window`: how far back faults count, and so how long a
    /// quarantine lasts after the last of them.
    pub quarantine_window: Duration,
    /// `quarantine_users`: faults from this many different users within
    /// `quarantine_window` quarantine the plugin for everyone.
    pub quarantine_users: u32,
    /// `max_frame`: the largest message a worker may send (or be sent), in
    /// bytes; a bigger one is a protocol fault, refused before any allocation.
    pub max_frame: u64,
    /// What the worker's sandbox lets it reach.
    pub sandbox: SandboxGrants,
}

/// What an isolated plugin's table grants its workers beyond the sandbox's
/// defaults (README, "Process isolation").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxGrants {
    /// `network`: `host:port` addresses it may connect to over TCP (the
    /// sandbox enforces the ports); empty means no network at all.
    pub network: Vec<String>,
    /// `env`: names of the host's environment variables passed on.
    pub env: Vec<String>,
    /// Paths its `[config]` names (`root`, `templates_dir`, `fonts_dir`, a
    /// `sqlite://` database): readable, nothing else of the host's files is.
    pub read: Vec<PathBuf>,
    /// plugins.toml's `sandbox_minimum`: refuse to start a worker whose
    /// sandbox would be weaker.
    pub minimum: SandboxLevel,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            memory_limit: 2 << 30,
            max_workers: 4,
            idle_timeout: Duration::from_secs(60),
            quarantine_after: 3,
            quarantine_window: Duration::from_secs(600),
            quarantine_users: 3,
            max_frame: DEFAULT_MAX_FRAME,
            sandbox: SandboxGrants::default(),
        }
    }
}

/// `max_frame` unless a table sets it.
pub const DEFAULT_MAX_FRAME: u64 = 256 << 20;
