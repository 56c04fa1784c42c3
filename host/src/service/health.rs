//! What the daemon's health endpoints, the systemd watchdog and `/metrics`
//! ask of the service: cheap checks, write probes, the database's write
//! health and the numbers behind the gauges. The daemon decides how often
//! to run them and how to answer; the service only says how things are.

use super::ExportService;
use crate::records::{DaemonBeat, ExportId, RecordError, WriteHealth};
use crate::storage::{keys, StorageError};
use std::io::Write;
use std::sync::Arc;

/// What `/readyz` reports besides its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessSummary {
    /// Plugins loaded.
    pub plugins: usize,
    /// Plugins whose start-up load has not ended yet.
    pub plugins_loading: usize,
    /// Where export files live, for humans (`file:///...`, `s3://...`).
    pub storage: String,
}

impl ExportService {
    /// The cheap storage check: local directories exist and are writable,
    /// a remote store answers a listing.
    pub async fn check_storage(&self) -> Result<(), StorageError> {
        self.storage.check().await
    }

    /// The cheap database check: (SQLite) the database path still names
    /// the file this service opened; always fine for PostgreSQL.
    pub fn check_records_file(&self) -> Result<(), RecordError> {
        self.records.check_file()
    }

    /// Proves the database takes writes by upserting `daemon`'s heartbeat
    /// row as of the service's clock.
    pub async fn probe_write(&self, daemon: &DaemonBeat) -> Result<(), RecordError> {
        self.records.probe_write(daemon, self.now()).await
    }

    /// Proves the storage takes files: writes a few bytes to a new upload
    /// and discards it, so a full disk, a read-only mount or a lack of
    /// descriptors fails here.
    pub async fn probe_storage(&self) -> Result<(), StorageError> {
        let storage = self.storage.clone();
        let id = ExportId::generate();
        let key = keys::export_key("export-host-readiness", id.as_str(), "probe")?;
        tokio::task::spawn_blocking(move || {
            let mut upload = storage.begin(&key)?;
            upload
                .write_all(b"probe")
                .and_then(|()| upload.flush())
                .map_err(|e| StorageError::io("writing a probe file", e))?;
            upload.abort()
        })
        .await
        .map_err(|err| StorageError::Task {
            what: "probing the storage".to_owned(),
            reason: err.to_string(),
        })?
    }

    /// How the database's writes have been going (failure count and the
    /// current failing spell), for the watchdog and `/metrics`.
    pub fn database_write_health(&self) -> &Arc<WriteHealth> {
        self.records.write_health()
    }

    /// How many exports there are in each status, as `(status, count)`;
    /// statuses without exports may be missing.
    pub async fn export_counts_by_status(&self) -> Result<Vec<(String, i64)>, RecordError> {
        self.records.count_by_status().await
    }

    /// The plugin and storage facts `/readyz` shows, from one snapshot of
    /// the plugins.
    pub fn readiness_summary(&self) -> ReadinessSummary {
        let registry = self.registry();
        ReadinessSummary {
            plugins: registry.plugins().len(),
            plugins_loading: registry.loading().len(),
            storage: self.storage.describe(),
        }
    }
}
