//! Upkeep of the records: expiry and purge, the storage keys still live,
//! daemon heartbeats and the write probe of `/readyz`, the cleanup lock,
//! counts for the metrics, the migration version.

use super::queries as q;
use super::row::Ts;
use super::{
    finish, log_transition, postgres, sqlite, typed, Backend, CleanupLock, DaemonBeat, DaemonSeen,
    ExportId, Mode, RecordError, Records, Scope, Status,
};
use chrono::{DateTime, Utc};

impl Records {
    /// Proves the database still takes writes: upserts `daemon`'s heartbeat
    /// row in `daemons` (one row per daemon, which also shows operators the
    /// daemons sharing a database).
    pub async fn probe_write(
        &self,
        daemon: &DaemonBeat,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        self.check_file()?;
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            sqlx::query(q::DAEMON_BEAT)
                .bind(&daemon.id)
                .bind(&daemon.hostname)
                .bind(i64::from(daemon.pid))
                .bind(&daemon.version)
                .bind(Ts::new(daemon.started_at))
                .bind(Ts::new(now))
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    /// The daemons that sent a heartbeat at or after `since`, newest first.
    pub async fn daemons_seen(&self, since: DateTime<Utc>) -> Result<Vec<DaemonSeen>, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
            let rows: Vec<(String, String, i64, String, Ts, Ts)> = sqlx::query_as(q::DAEMONS_SEEN)
                .bind(Ts::new(since))
                .fetch_all(&mut *tx)
                .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(id, hostname, pid, version, started_at, last_seen_at)| DaemonSeen {
                        id,
                        hostname,
                        pid,
                        version,
                        started_at: started_at.0,
                        last_seen_at: last_seen_at.0,
                    },
                )
                .collect())
        })
    }

    /// Deletes the heartbeat rows of daemons not seen since `before`.
    pub async fn forget_daemons(&self, before: DateTime<Utc>) -> Result<u64, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let gone = sqlx::query(q::FORGET_DAEMONS)
                .bind(Ts::new(before))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(gone)
        })
    }

    /// The newest migration applied to the database, as (version,
    /// description); `None` on a database never migrated.
    pub async fn migration_version(&self) -> Result<Option<(i64, String)>, RecordError> {
        const SQL: &str = "SELECT version, description FROM _sqlx_migrations \
             WHERE success ORDER BY version DESC LIMIT 1";
        let row: Option<(i64, String)> = match &self.backend {
            Backend::Sqlite(pool) => sqlx::query_as(SQL).fetch_optional(pool).await?,
            Backend::Postgres(pool) => sqlx::query_as(SQL).fetch_optional(pool).await?,
        };
        Ok(row)
    }

    /// Cleanup, first half: completed exports whose `expires_at` is at or
    /// before `now` become `expired`. Returns their ids and storage keys;
    /// the caller deletes those files after this returns (the records are
    /// committed as expired by then, so the keys are no longer live). The
    /// key stays on the record until it is purged.
    pub async fn expire_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(ExportId, String)>, RecordError> {
        let expired = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(&q::EXPIRE_DUE)
                .bind(Ts::new(now))
                .fetch_all(&mut *tx)
                .await?;
            // A completed record always has a key (schema CHECK).
            Ok(rows
                .into_iter()
                .filter_map(|(id, key)| key.map(|key| (ExportId::from_db(id), key)))
                .collect::<Vec<_>>())
        })?;
        for (id, _) in &expired {
            log_transition(id, Status::Expired);
        }
        Ok(expired)
    }

    /// Cleanup, second half: deletes expired, failed and cancelled records
    /// last changed before `older_than` (`now - RETENTION_DAYS`). Returns how
    /// many went.
    pub async fn purge(&self, older_than: DateTime<Utc>) -> Result<u64, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let purged = sqlx::query(&q::PURGE)
                .bind(Ts::new(older_than))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(purged)
        })
    }

    /// Every live storage key (records that are `completed`), sorted: files
    /// under any other key are orphans, once older than the lease duration.
    pub async fn live_storage_keys(&self) -> Result<Vec<String>, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
            let keys: Vec<String> = sqlx::query_scalar(q::LIVE_KEYS).fetch_all(&mut *tx).await?;
            Ok(keys)
        })
    }

    /// Whether a `completed` record points at `key`.
    pub async fn is_key_live(&self, key: &str) -> Result<bool, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
            let count: i64 = sqlx::query_scalar(q::IS_KEY_LIVE)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            Ok(count > 0)
        })
    }

    /// How many records each status has, over every user (maintenance: on
    /// PostgreSQL under the admin bypass). Statuses with no record are absent.
    pub async fn count_by_status(&self) -> Result<Vec<(String, i64)>, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
            let counts: Vec<(String, i64)> = sqlx::query_as(q::COUNT_BY_STATUS)
                .fetch_all(&mut *tx)
                .await?;
            Ok(counts)
        })
    }

    /// Takes the cleanup lock without waiting, so that of several daemons
    /// on one PostgreSQL database one at a time sweeps files: `None` when
    /// another holds it. SQLite (one daemon) needs no lock and always gets
    /// a guard. Release it with [`CleanupLock::release`].
    pub async fn try_lock_cleanup(&self) -> Result<Option<CleanupLock>, RecordError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Some(CleanupLock::unneeded())),
            Backend::Postgres(pool) => postgres::try_lock_cleanup(pool).await,
        }
    }
}
