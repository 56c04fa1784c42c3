//! Expiry and cleanup: one pass, run by `export-host
//! cleanup` and periodically by the daemon.
//!
//! In order:
//!
//! 1. lost leases: `processing` exports whose lease ended go back to
//!    `pending`, or fail once out of attempts;
//! 2. expiry: completed exports past `expires_at` become `expired`, then
//!    their files are deleted (the record change commits first, so the key is
//!    dead before its file goes);
//! 3. purge: expired, failed and cancelled records unchanged for
//!    `RETENTION_DAYS` are deleted;
//! 4. orphans: files under the users prefix that no completed record points
//!    to and that are older than the lease (a worker may be about to record a
//!    younger one) are deleted, each re-checked against the records just
//!    before;
//! 5. partial uploads: temporary files no live process holds (their writer
//!    died: removed whatever their age; each upload holds an advisory lock
//!    on its file while it writes), and held ones idle past the stale-upload
//!    age (a hung writer).
//!
//! A file a completed record points to is never deleted: every deletion is
//! preceded by a check that no completed record holds the key.
//!
//! Several daemons on one PostgreSQL database run passes concurrently and
//! still delete each file once, and never one being downloaded:
//!
//! - steps 1 to 3 are single conditional statements: of two daemons
//!   expiring the same export, one gets its row (and its key) back, the
//!   other nothing, so each expired file has one deleter;
//! - steps 4 and 5 run under the cleanup lock, a PostgreSQL advisory lock
//!   ([`Records::try_lock_cleanup`](crate::records::Records::try_lock_cleanup)):
//!   a daemon that finds it taken skips them this pass (the holder is
//!   doing the same work);
//! - a download opens a file only while its record is `completed`, and
//!   every deletion first makes the key dead, so a file is never deleted
//!   before a download could open it; one already open is read to the end
//!   (local files are pinned by the open handle, an S3 `GET` in flight
//!   completes).

use super::{earlier, ExportService, Removal, ServiceError};
use crate::storage::{keys, StorageKey};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashSet;
use std::fmt;
use std::time::SystemTime;

/// What one cleanup pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Processing exports whose lease ran out, back in the queue.
    pub requeued: u64,
    /// Processing exports whose lease ran out on their last attempt: failed.
    pub lease_failed: u64,
    /// Completed exports that expired in this pass.
    pub expired: u64,
    /// Files of expired exports deleted.
    pub files_deleted: u64,
    /// Records purged after `RETENTION_DAYS`.
    pub purged: u64,
    /// Files without a record deleted.
    pub orphans_removed: u64,
    /// Temporary files of abandoned uploads removed.
    pub stale_uploads: u64,
    /// Files that should have gone but could not be deleted (logged; the
    /// next pass retries them as orphans).
    pub delete_failures: u64,
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expired {} exports ({} files deleted), purged {} records, removed {} orphan files \
             and {} stale uploads, requeued {} and failed {} exports with lost leases",
            self.expired,
            self.files_deleted,
            self.purged,
            self.orphans_removed,
            self.stale_uploads,
            self.requeued,
            self.lease_failed
        )?;
        if self.delete_failures > 0 {
            write!(
                f,
                "; {} files could not be deleted (see the log)",
                self.delete_failures
            )?;
        }
        Ok(())
    }
}

/// How long the heartbeat row of a daemon no longer seen is kept.
const DAEMON_MEMORY: std::time::Duration = std::time::Duration::from_secs(86_400);

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl ExportService {
    /// One cleanup pass as of `now` (see the module docs). Database errors
    /// stop the pass; file deletions that fail are logged, counted in
    /// [`CleanupReport::delete_failures`] and retried by the next pass.
    pub async fn cleanup_pass(&self, now: DateTime<Utc>) -> Result<CleanupReport, ServiceError> {
        let mut report = CleanupReport::default();

        let sweep = self
            .records
            .requeue_expired_leases(now, self.settings.max_attempts)
            .await?;
        report.requeued = count(sweep.requeued.len());
        report.lease_failed = count(sweep.failed.len());

        let expired = self.records.expire_due(now).await?;
        report.expired = count(expired.len());
        for (_, key) in &expired {
            match self.delete_dead_file(key).await {
                Removal::Deleted => report.files_deleted += 1,
                Removal::Live => {}
                Removal::Failed => report.delete_failures += 1,
            }
        }

        report.purged = self
            .records
            .purge(earlier(now, self.settings.retention))
            .await?;
        // Heartbeat rows of daemons gone for a day (a live daemon rewrites
        // its row at every readiness probe).
        let forgotten = self
            .records
            .forget_daemons(earlier(now, DAEMON_MEMORY))
            .await?;
        if forgotten > 0 {
            tracing::info!(forgotten, "forgot daemons not seen for a day");
        }

        match self.records.try_lock_cleanup().await? {
            Some(lock) => {
                let swept = self.sweep_files(now, &mut report).await;
                lock.release().await;
                swept?;
            }
            None => {
                tracing::debug!("another daemon holds the cleanup lock; leaving orphan files and stale uploads to it");
            }
        }

        tracing::info!(
            requeued = report.requeued,
            lease_failed = report.lease_failed,
            expired = report.expired,
            files_deleted = report.files_deleted,
            purged = report.purged,
            orphans_removed = report.orphans_removed,
            stale_uploads = report.stale_uploads,
            delete_failures = report.delete_failures,
            "cleanup pass done"
        );
        Ok(report)
    }

    /// Removes partial uploads not written to for
    /// [`ServiceSettings::stale_upload_age`](super::ServiceSettings::stale_upload_age)
    /// (left by a daemon killed mid-export); returns how many went.
    pub async fn purge_stale_uploads(&self) -> Result<u64, ServiceError> {
        Ok(self
            .storage
            .purge_stale_uploads(self.settings.stale_upload_age)
            .await?)
    }

    /// Returns lost leases to the queue (or fails them after
    /// [`ServiceSettings::max_attempts`](super::ServiceSettings::max_attempts)
    /// claims): how many were requeued and how many failed.
    pub async fn requeue_expired_leases(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), ServiceError> {
        let sweep = self
            .records
            .requeue_expired_leases(now, self.settings.max_attempts)
            .await?;
        Ok((count(sweep.requeued.len()), count(sweep.failed.len())))
    }

    /// Steps 4 and 5, run under the cleanup lock.
    async fn sweep_files(
        &self,
        now: DateTime<Utc>,
        report: &mut CleanupReport,
    ) -> Result<(), ServiceError> {
        let (removed, failed) = self.sweep_orphans(now).await?;
        report.orphans_removed = removed;
        report.delete_failures += failed;
        report.stale_uploads = self
            .storage
            .purge_stale_uploads(self.settings.stale_upload_age)
            .await?;
        Ok(())
    }

    /// Deletes files under the users prefix that no completed record points
    /// to and that were last written before `now - lease`. Returns (removed,
    /// failed).
    async fn sweep_orphans(&self, now: DateTime<Utc>) -> Result<(u64, u64), ServiceError> {
        let live: HashSet<String> = self
            .records
            .live_storage_keys()
            .await?
            .into_iter()
            .collect();
        let cutoff = SystemTime::from(earlier(now, self.settings.lease));
        let prefix =
            StorageKey::parse(keys::USERS_PREFIX).map_err(crate::storage::StorageError::from)?;
        let mut candidates = Vec::new();
        let mut listing = self.storage.list_keys(Some(&prefix));
        while let Some(object) = listing.next().await {
            let object = object?;
            if live.contains(object.key.as_str()) || object.last_modified > cutoff {
                continue;
            }
            candidates.push(object.key);
        }
        let (mut removed, mut failed) = (0, 0);
        for key in candidates {
            // Re-checked one by one: delete_dead_file refuses a key that
            // became live since the listing.
            match self.delete_dead_file(key.as_str()).await {
                Removal::Deleted => {
                    tracing::info!(key = %key, "removed an orphan file");
                    removed += 1;
                }
                Removal::Live => {}
                Removal::Failed => failed += 1,
            }
        }
        Ok((removed, failed))
    }
}
