//! Export records: the `exports` table and the lifecycle ([`lifecycle`];
//! docs/architecture.md, "Records").
//!
//! [`Records`] is the only way in. It wraps either an SQLite pool (the
//! embedded default) or a PostgreSQL pool (several daemons), and every
//! operation is written once against both: the SQL text is shared where it is
//! the same (see `queries.rs`), the connection setup and the queue claim
//! live in `sqlite.rs` and `postgres.rs`.
//!
//! The files, by job: `types.rs` (the id, the scope, the record and what
//! callers hand in), `error.rs`, this file (connecting, the transaction
//! helpers, creating and reading records), `queue.rs` (claims, leases and the
//! worker's transitions), `maintenance.rs` (expiry, purge, live keys, daemon
//! heartbeats, counts), `lifecycle.rs` (which status may follow which),
//! `tokens.rs`, `quarantine.rs`, `progress.rs`, `webhooks.rs`.
//!
//! Rules every operation follows:
//!
//! - One transaction per call. SQLite writes start with `BEGIN IMMEDIATE`;
//!   PostgreSQL transactions start by setting their [`Scope`] (row-level
//!   security for users, an explicit bypass for admin/maintenance).
//! - Each lifecycle transition is a single conditional UPDATE guarded by the
//!   statuses [`Status::can_become`] allows (plus the lease owner for worker
//!   transitions), so of two racing callers exactly one matches the row. The
//!   loser gets a typed error read from the row in the same transaction:
//!   [`RecordError::NotFound`], [`RecordError::IllegalTransition`] or
//!   [`RecordError::LeaseLost`].
//! - Time is an argument (`now`), never read from a clock here, so callers
//!   and tests decide what time it is. Timestamps keep microseconds.
//!
//! Files and records: a storage key is live while its record is `completed`
//! ([`Records::is_key_live`]). Every path that gives up a file first commits
//! the record change that makes the key dead (expire, delete) and hands the
//! key back to the caller, who deletes the file afterwards, so nothing a
//! live record points to is ever deleted. A file whose deletion was
//! interrupted is dead and the orphan sweep removes it. An in-flight export's
//! file is recorded only by [`Records::complete`]; an orphan sweep must
//! therefore leave files younger than the lease duration alone.

mod cursor;
mod error;
pub mod health;
pub mod lifecycle;
mod postgres;
mod queries;
mod row;
mod sqlite;
mod sqlite_reads;
mod types;

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::types::Json;
use sqlx::{Database, Transaction};

pub use error::RecordError;
pub use health::WriteHealth;
pub use lifecycle::{Status, UnknownStatus};
pub use postgres::{CleanupLock, SCOPED_ROLE};
pub use progress::Progress;
pub use types::{
    Admission, BackendKind, Completion, DaemonBeat, DaemonSeen, ExportId, ExportRecord, LeaseSweep,
    ListFilter, NewExport, Page, Quota, Scope,
};

use cursor::Cursor;
use lifecycle::CurrentState;
use queries as q;
use row::{RawRecord, Ts};
use rusqlite::OptionalExtension;
use sqlite_reads::Readers;
use std::sync::Arc;

/// Whether a transaction writes; SQLite takes its write lock up front for
/// writes (BEGIN IMMEDIATE), PostgreSQL makes reads READ ONLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The records facade. Cheap to clone (pools are shared handles).
#[derive(Clone)]
pub struct Records {
    backend: Backend,
    /// The direct read path of a SQLite file (none for PostgreSQL, nor for
    /// an in-memory database, which other connections cannot see).
    readers: Option<Arc<Readers>>,
    /// The SQLite file and its identity when opened: the write probe checks
    /// the path still names that file (none for PostgreSQL or in memory).
    file: Option<Arc<sqlite::FileIdentity>>,
    /// Outcomes of writes, for readiness, the watchdog and metrics.
    health: Arc<WriteHealth>,
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("backend", &self.kind())
            .finish()
    }
}

/// Pins an async block's output type so `?` inside it knows its error type.
fn typed<T, F>(future: F) -> F
where
    F: Future<Output = Result<T, RecordError>>,
{
    future
}

/// Commits on success; rolls back on error and returns the original error
/// (a failed rollback is logged; the caller then closes the connection, see
/// [`Records::settle`]).
async fn finish<DB: Database, T>(
    tx: Transaction<'_, DB>,
    result: Result<T, RecordError>,
) -> Result<T, RecordError> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback after a failed records operation failed");
            }
            Err(err)
        }
    }
}

/// Runs `$body` in one transaction on whichever backend `$records` wraps.
/// The body is compiled once per backend (`$tx` is a `Transaction` of that
/// backend), which is how each operation is written only once. It commits
/// when the body returns `Ok` and rolls back when it returns `Err`.
///
/// The connection is taken from the pool first and handed to
/// [`Records::settle`] afterwards, which closes it when the operation failed
/// at the database level: a connection whose transaction failed (a full
/// disk, a lost file, a broken session) is never handed out again.
macro_rules! in_tx {
    ($records:expr, $scope:expr, $mode:expr, |$tx:ident| $body:expr) => {
        match &$records.backend {
            // A read is one statement, which SQLite runs as its own
            // transaction: BEGIN and COMMIT would only add round trips.
            Backend::Sqlite(pool) if matches!($mode, Mode::Read) => {
                #[allow(unused_mut)]
                let mut $tx = $records.acquire(pool, $mode).await?;
                let result = typed(async { $body }).await;
                $records.settle($tx, $mode, result)
            }
            Backend::Sqlite(pool) => {
                let mut conn = $records.acquire(pool, $mode).await?;
                let result = match sqlite::begin_on(&mut conn, $mode).await {
                    #[allow(unused_mut)]
                    Ok(mut $tx) => {
                        let result = typed(async { $body }).await;
                        finish($tx, result).await
                    }
                    Err(err) => Err(err),
                };
                $records.settle(conn, $mode, result)
            }
            Backend::Postgres(pool) => {
                let mut conn = $records.acquire(pool, $mode).await?;
                let result = match postgres::begin_on(&mut conn, $scope, $mode).await {
                    #[allow(unused_mut)]
                    Ok(mut $tx) => {
                        let result = typed(async { $body }).await;
                        finish($tx, result).await
                    }
                    Err(err) => Err(err),
                };
                $records.settle(conn, $mode, result)
            }
        }
    };
}

/// Inserts `$new` as export `$id`, `pending` since `$now`, within `$tx`;
/// evaluates to the new row. A macro, as [`in_tx!`] is, because `$tx` has
/// a different type on each backend.
macro_rules! insert_row {
    ($tx:ident, $id:expr, $new:expr, $now:expr) => {
        sqlx::query_as::<_, RawRecord>(&q::INSERT)
            .bind($id.as_str())
            .bind(&$new.user_id)
            .bind(&$new.loader)
            .bind(&$new.format)
            .bind(Json(&$new.selector))
            .bind(Json(&$new.options))
            .bind($new.file_name.as_deref())
            .bind($new.request_hash.as_deref())
            .bind(Ts::new($now))
            .bind($new.expires_at.map(Ts::new))
            .bind(Json(&$new.metadata))
            .bind($new.callback_url.as_deref())
            .fetch_one(&mut *$tx)
            .await?
    };
}

/// Reads the row a conditional UPDATE just failed to match (see
/// [`lifecycle::refusal`]).
macro_rules! current_state {
    ($tx:ident, $id:expr, $user:expr) => {
        sqlx::query_as::<_, CurrentState>(&q::STATE)
            .bind($id.as_str())
            .bind($user)
            .fetch_optional(&mut *$tx)
            .await?
    };
}

/// Every status change: in one write transaction, the conditional UPDATE
/// `$update` (a `query_as::<_, RawRecord>` with its binds, guarded by the
/// statuses the lifecycle allows) returns the changed row; when it matched
/// nothing, the row as it stands says why ([`refusal`]: not found, an
/// illegal edge, or a lease another worker holds). `$visible_to` is the
/// user whose rows the refusal may read (`None` for any), `$worker` the
/// lease holder the change required, if any.
macro_rules! transition {
    ($records:expr, $scope:expr, $id:expr, to: $to:expr, worker: $worker:expr, visible_to: $visible_to:expr, |$tx:ident| $update:expr) => {{
        let record = in_tx!($records, $scope, Mode::Write, |$tx| {
            let raw: Option<RawRecord> = $update.fetch_optional(&mut *$tx).await?;
            match raw {
                Some(raw) => ExportRecord::try_from(raw),
                None => {
                    let state = current_state!($tx, $id, $visible_to);
                    Err(refusal($id, state, $to, $worker))
                }
            }
        })?;
        log_transition(&record.id, $to);
        Ok(record)
    }};
}

mod tokens;
pub use tokens::{token_hash, NewToken, Principal, TokenInfo, TokenScope, TOKEN_PREFIX};
pub mod progress;
pub mod quarantine;
pub use quarantine::{NewPluginFault, PluginFault, QuarantinePolicy, QuarantineState};
mod maintenance;
mod queue;
pub mod webhooks;
pub use webhooks::{AttemptOutcome, WebhookAttempt, WebhookDelivery, WebhookState};

fn log_transition(id: &ExportId, to: Status) {
    tracing::info!(export_id = %id, status = %to, "export transition");
}

impl Records {
    /// Connects to `url` (`sqlite://PATH`, creating the file and its
    /// directory, or `postgres://...`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Records, RecordError> {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        let mut readers = None;
        let mut identity = None;
        let backend = match scheme {
            "sqlite" => {
                let (pool, file) = sqlite::connect(url).await?;
                readers = file.as_ref().map(|file| Arc::new(Readers::new(file)));
                identity = file.map(|file| Arc::new(sqlite::FileIdentity::of(file)));
                Backend::Sqlite(pool)
            }
            "postgres" | "postgresql" => Backend::Postgres(postgres::connect(url).await?),
            // Only the scheme is echoed: the rest may hold a password.
            other => {
                return Err(RecordError::UnsupportedUrl {
                    scheme: other.to_owned(),
                })
            }
        };
        let records = Records {
            backend,
            readers,
            file: identity,
            health: Arc::new(WriteHealth::default()),
        };
        records.migrate().await?;
        Ok(records)
    }

    /// Applies the migrations this build embeds that the database lacks.
    pub async fn migrate(&self) -> Result<(), RecordError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::MIGRATOR.run(pool).await,
            Backend::Postgres(pool) => postgres::MIGRATOR.run(pool).await,
        }
        .map_err(RecordError::Migrate)
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Closes every pooled connection (waits for borrowed ones to return).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), RecordError> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Backend::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Outcomes of this handle's writes (shared by its clones).
    pub fn write_health(&self) -> &Arc<WriteHealth> {
        &self.health
    }

    /// Takes a connection from the pool, counting a failure to get one as a
    /// failed write when the operation writes.
    async fn acquire<DB: Database>(
        &self,
        pool: &sqlx::Pool<DB>,
        mode: Mode,
    ) -> Result<sqlx::pool::PoolConnection<DB>, RecordError> {
        pool.acquire().await.map_err(|err| {
            let err = RecordError::from(err);
            if mode == Mode::Write {
                self.health.failed(&err);
            }
            err
        })
    }

    /// Ends an operation on `conn`: a connection whose operation failed at
    /// the database level is closed instead of going back to the pool (it
    /// may be stuck in a transaction SQLite already rolled back, or its
    /// session may be broken), and the outcome of a write is reported to
    /// [`WriteHealth`].
    fn settle<DB: Database, T>(
        &self,
        mut conn: sqlx::pool::PoolConnection<DB>,
        mode: Mode,
        result: Result<T, RecordError>,
    ) -> Result<T, RecordError> {
        match &result {
            Err(err) if health::is_database_fault(err) => {
                conn.close_on_drop();
                if mode == Mode::Write {
                    self.health.failed(err);
                }
                tracing::warn!(
                    error = %err,
                    write = mode == Mode::Write,
                    "a database operation failed; its connection is closed and the next one opens afresh"
                );
            }
            Ok(_) if mode == Mode::Write => self.health.succeeded(),
            _ => {}
        }
        result
    }

    /// On SQLite, whether the database path still names the file the
    /// daemon opened (a deleted or replaced file leaves the daemon writing
    /// to one nobody will open again). A stat, cheap enough for every
    /// readiness check; always `Ok` on PostgreSQL.
    pub fn check_file(&self) -> Result<(), RecordError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        file.check().inspect_err(|err| {
            self.health.failed(err);
            if let Some(readers) = &self.readers {
                readers.clear();
            }
        })
    }

    /// Records a new `pending` export unless its user is at a limit, in one
    /// transaction: the count and the insert cannot interleave with another
    /// request's (SQLite: `BEGIN IMMEDIATE` holds the write lock from the
    /// count on; PostgreSQL: a per-user advisory lock taken first), so of
    /// any number of racing requests exactly as many as the quota allows
    /// are recorded.
    pub async fn insert_within(
        &self,
        new: NewExport,
        quota: &Quota,
        now: DateTime<Utc>,
    ) -> Result<Admission, RecordError> {
        let scope = Scope::User(new.user_id.clone());
        let id = ExportId::generate();
        let admission = in_tx!(self, &scope, Mode::Write, |tx| {
            if matches!(self.backend, Backend::Postgres(_)) {
                sqlx::query(q::LOCK_USER_QUOTA)
                    .bind(&new.user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let (active, stored): (i64, i64) = sqlx::query_as(&q::COUNT_QUOTA)
                .bind(&new.user_id)
                .fetch_one(&mut *tx)
                .await?;
            let active = u64::try_from(active).unwrap_or(0);
            let stored = u64::try_from(stored).unwrap_or(0);
            if active >= u64::from(quota.max_active) {
                return Ok(Admission::TooManyActive { active });
            }
            if stored >= quota.max_stored {
                return Ok(Admission::TooManyStored { stored });
            }
            let raw = insert_row!(tx, id, new, now);
            Ok(Admission::Recorded(Box::new(ExportRecord::try_from(raw)?)))
        })?;
        if let Admission::Recorded(record) = &admission {
            log_transition(&record.id, Status::Pending);
        }
        Ok(admission)
    }

    /// Records a new `pending` export for `new.user_id`, created at `now`.
    pub async fn insert(
        &self,
        new: NewExport,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        let scope = Scope::User(new.user_id.clone());
        let id = ExportId::generate();
        let record = in_tx!(self, &scope, Mode::Write, |tx| {
            let raw = insert_row!(tx, id, new, now);
            ExportRecord::try_from(raw)
        })?;
        log_transition(&record.id, Status::Pending);
        Ok(record)
    }

    /// The record `id` as `scope` sees it: another user's record is
    /// [`RecordError::NotFound`], like a missing one.
    pub async fn get(&self, scope: &Scope, id: &ExportId) -> Result<ExportRecord, RecordError> {
        if let Some(readers) = &self.readers {
            let raw = readers.read(|db| {
                db.prepare_cached(&q::GET)?
                    .query_row((id.as_str(), scope.user_id()), RawRecord::from_sqlite_row)
                    .optional()
            })?;
            return match raw {
                Some(raw) => ExportRecord::try_from(raw),
                None => Err(RecordError::NotFound { id: id.to_string() }),
            };
        }
        in_tx!(self, scope, Mode::Read, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::GET)
                .bind(id.as_str())
                .bind(scope.user_id())
                .fetch_optional(&mut *tx)
                .await?;
            match raw {
                Some(raw) => ExportRecord::try_from(raw),
                None => Err(RecordError::NotFound { id: id.to_string() }),
            }
        })
    }

    /// One page of records, newest first (`created_at DESC, id DESC`).
    pub async fn list(&self, filter: &ListFilter) -> Result<Page, RecordError> {
        let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
        let limit = filter.limit.clamp(1, ListFilter::MAX_LIMIT);
        let sql = q::ListSql {
            user: filter.user.is_some(),
            status: filter.status,
            loader: filter.loader.is_some(),
            format: filter.format.is_some(),
            cursor: cursor.is_some(),
            // One row more than the page tells whether another page follows.
            limit: limit + 1,
        }
        .build();
        let scope = match &filter.user {
            Some(user) => Scope::User(user.clone()),
            None => Scope::Admin,
        };
        let mut items = in_tx!(self, &scope, Mode::Read, |tx| {
            // Bind in the order ListSql numbers its parameters.
            let mut query = sqlx::query_as::<_, RawRecord>(&sql);
            if let Some(user) = &filter.user {
                query = query.bind(user);
            }
            if let Some(loader) = &filter.loader {
                query = query.bind(loader);
            }
            if let Some(format) = &filter.format {
                query = query.bind(format);
            }
            if let Some(cursor) = &cursor {
                query = query
                    .bind(Ts::new(cursor.created_at))
                    .bind(cursor.id.as_str());
            }
            row::records(query.fetch_all(&mut *tx).await?)
        })?;
        // A page also stops at MAX_PAGE_BYTES of records (always holding at
        // least one), so a list's answer stays small whatever the records hold.
        let mut bytes = 0usize;
        let fits = items
            .iter()
            .position(|record| {
                bytes = bytes.saturating_add(approx_json_size(record));
                bytes > MAX_PAGE_BYTES
            })
            .map_or(items.len(), |over| over.max(1));
        let limit = if fits < (limit as usize).min(items.len()) {
            // Truncating to `fits` (one short of the item that overflowed)
            // and asking for a cursor below.
            items.truncate(fits + 1);
            u32::try_from(fits).unwrap_or(limit)
        } else {
            limit
        };
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|last| {
                Cursor {
                    created_at: last.created_at,
                    id: last.id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// The newest completed, unexpired export of `user` with `request_hash`
    /// created at or after `since`: an identical request within the cache
    /// TTL returns it instead of running again.
    pub async fn find_reusable(
        &self,
        user: &str,
        request_hash: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ExportRecord>, RecordError> {
        in_tx!(self, &Scope::user(user), Mode::Read, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::FIND_REUSABLE)
                .bind(user)
                .bind(request_hash)
                .bind(Ts::new(since))
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            raw.map(ExportRecord::try_from).transpose()
        })
    }

    /// How many exports of `user` are pending or processing (the
    /// `MAX_PER_USER` quota).
    pub async fn count_active(&self, user: &str) -> Result<u64, RecordError> {
        let count = in_tx!(self, &Scope::user(user), Mode::Read, |tx| {
            let count: i64 = sqlx::query_scalar(&q::COUNT_ACTIVE)
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
            Ok(count)
        })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Deletes a finished record (completed, expired, failed, cancelled) and
    /// returns its storage key for the caller to delete after this returns.
    /// An active export must be cancelled first ([`RecordError::Conflict`]).
    pub async fn delete(
        &self,
        scope: &Scope,
        id: &ExportId,
    ) -> Result<Option<String>, RecordError> {
        let key = in_tx!(self, scope, Mode::Write, |tx| {
            let deleted: Option<(Option<String>,)> = sqlx::query_as(&q::DELETE)
                .bind(id.as_str())
                .bind(scope.user_id())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((key,)) = deleted {
                return Ok(key);
            }
            match current_state!(tx, id, scope.user_id()) {
                None => Err(RecordError::NotFound { id: id.to_string() }),
                Some(state) => Err(RecordError::Conflict {
                    id: id.to_string(),
                    reason: format!("it is {}; cancel it first, then delete it", state.status),
                }),
            }
        })?;
        tracing::info!(export_id = %id, "export deleted");
        Ok(key)
    }

    /// Counts one download of a completed, unexpired export.
    pub async fn record_download(
        &self,
        scope: &Scope,
        id: &ExportId,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        in_tx!(self, scope, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::RECORD_DOWNLOAD)
                .bind(id.as_str())
                .bind(scope.user_id())
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(raw) = raw {
                return ExportRecord::try_from(raw);
            }
            match current_state!(tx, id, scope.user_id()) {
                None => Err(RecordError::NotFound { id: id.to_string() }),
                Some(state) if state.status == Status::Completed.as_str() => {
                    Err(RecordError::Conflict {
                        id: id.to_string(),
                        reason: "it has expired and its file is gone; create it again".to_owned(),
                    })
                }
                Some(state) => Err(RecordError::Conflict {
                    id: id.to_string(),
                    reason: format!(
                        "it is {}; only a completed export can be downloaded",
                        state.status
                    ),
                }),
            }
        })
    }

    /// `SELECT count(*) FROM exports` with no filter at all, run in `scope`:
    /// on PostgreSQL, what row-level security alone lets a scope see. Exists
    /// for tests of that defence.
    #[doc(hidden)]
    pub async fn count_visible_unfiltered(&self, scope: &Scope) -> Result<i64, RecordError> {
        in_tx!(self, scope, Mode::Read, |tx| {
            let count: i64 = sqlx::query_scalar(q::COUNT_ALL).fetch_one(&mut *tx).await?;
            Ok(count)
        })
    }

    /// The SQLite pool, for tests that inspect the database directly.
    #[doc(hidden)]
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.backend {
            Backend::Sqlite(pool) => Some(pool),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for tests that inspect the database directly.
    #[doc(hidden)]
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres(pool) => Some(pool),
            Backend::Sqlite(_) => None,
        }
    }
}

/// Most bytes of records one list page holds (roughly, as JSON).
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Bytes of `value` as compact JSON, as a record stores its documents,
/// counted without building the text; `None` if it cannot be written.
pub fn json_size(value: &serde_json::Value) -> Option<usize> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).ok()?;
    Some(count.0)
}

/// About how many bytes `record` takes as JSON: its documents and strings
/// plus a fixed allowance for the other fields.
fn approx_json_size(record: &ExportRecord) -> usize {
    let documents = [&record.selector, &record.options, &record.metadata]
        .into_iter()
        .map(|value| json_size(value).unwrap_or_else(|| value.to_string().len()))
        .fold(0usize, usize::saturating_add);
    let strings = [
        Some(&record.user_id),
        Some(&record.loader),
        Some(&record.format),
        record.file_name.as_ref(),
        record.storage_key.as_ref(),
        record.error.as_ref(),
        record.lease_owner.as_ref(),
        record.callback_url.as_ref(),
    ];
    documents + strings.iter().flatten().map(|s| s.len()).sum::<usize>() + 600
}
