//! Export records: the `exports` table and the lifecycle ([`lifecycle`];
//! docs/architecture.md, "Records").
//!
//! [`Records`] is the only way in. It wraps either an SQLite pool (the
//! embedded default) or a PostgreSQL pool (several daemons), and every
//! operation is written once against both: the SQL text is shared where it is
//! the same (see `queries.rs`), the connection setup and the queue claim
//! live in `sqlite.rs` and `postgres.rs`.
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
pub mod health;
pub mod lifecycle;
mod postgres;
mod queries;
mod row;
mod sqlite;
mod sqlite_reads;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::types::Json;
use sqlx::{Database, Transaction};

pub use health::WriteHealth;
pub use lifecycle::{Status, UnknownStatus};
pub use postgres::{CleanupLock, SCOPED_ROLE};
pub use progress::Progress;

use cursor::Cursor;
use lifecycle::{refusal, CurrentState};
use queries as q;
use row::{RawRecord, Ts};
use rusqlite::OptionalExtension;
use sqlite_reads::Readers;
use std::sync::Arc;

/// An export's id: `exp_` and 32 lowercase hex digits (128 random bits from
/// a CSPRNG), so ids cannot be guessed or enumerated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExportId(String);

impl ExportId {
    const PREFIX: &'static str = "exp_";

    /// A new random id.
    pub fn generate() -> ExportId {
        ExportId(format!("{}{:032x}", Self::PREFIX, rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the database, which only ever stores valid ids
    /// (the schema checks their shape).
    fn from_db(id: String) -> ExportId {
        ExportId(id)
    }

    fn is_well_formed(text: &str) -> bool {
        text.strip_prefix(Self::PREFIX).is_some_and(|hex| {
            hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }
}

impl FromStr for ExportId {
    type Err = RecordError;

    /// A malformed id is reported as [`RecordError::NotFound`]: to a caller
    /// it is exactly an id that does not exist (the API answers both with
    /// 404), and it saves a query.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if Self::is_well_formed(text) {
            Ok(ExportId(text.to_owned()))
        } else {
            Err(RecordError::NotFound {
                id: text.chars().take(80).collect(),
            })
        }
    }
}

impl fmt::Display for ExportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ExportId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whose eyes a call runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One user: only that user's records exist. On PostgreSQL this is also
    /// enforced by row-level security under the `export_host_user` role.
    User(String),
    /// Every record: admin tokens, workers and cleanup. On PostgreSQL this
    /// is the explicit maintenance bypass of row-level security.
    Admin,
}

impl Scope {
    pub fn user(user_id: impl Into<String>) -> Scope {
        Scope::User(user_id.into())
    }

    /// The user filter to bind: `None` means no filter (admin).
    fn user_id(&self) -> Option<&str> {
        match self {
            Scope::User(user) => Some(user),
            Scope::Admin => None,
        }
    }
}

/// One export record: every column of `exports`, as the API returns it
/// (times are RFC 3339 UTC).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExportRecord {
    #[schema(value_type = String, example = "exp_0123456789abcdef0123456789abcdef")]
    pub id: ExportId,
    pub user_id: String,
    pub loader: String,
    pub format: String,
    pub status: Status,
    #[schema(value_type = HashMap<String, Value>)]
    pub selector: Value,
    #[schema(value_type = HashMap<String, Value>)]
    pub options: Value,
    /// Plugin names and versions, schema, timings; `{}` until completion.
    #[schema(value_type = HashMap<String, Value>)]
    pub metadata: Value,
    /// The user's file name, for `Content-Disposition` only.
    pub file_name: Option<String>,
    pub storage_key: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub row_count: Option<i64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
    /// Claims so far (a release gives one back).
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub download_count: i64,
    pub last_downloaded_at: Option<DateTime<Utc>>,
    pub request_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the latest attempt was claimed.
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// How far the export has come (`rows`, `bytes`, `rows_per_s`,
    /// `elapsed_s`): published while it runs, the final figures once it
    /// has ended; `null` before the first figures.
    pub progress: Option<Progress>,
    /// Where the daemon POSTs the final record when the export ends (the
    /// request's `callback_url`); `null` when none was given.
    pub callback_url: Option<String>,
    /// How that delivery has gone; `null` without a `callback_url`.
    pub webhook: Option<WebhookState>,
}

/// A request to record: it starts `pending`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExport {
    pub user_id: String,
    pub loader: String,
    pub format: String,
    pub selector: Value,
    pub options: Value,
    pub file_name: Option<String>,
    /// Hash of the normalised request, for [`Records::find_reusable`].
    pub request_hash: Option<String>,
    /// Usually set at completion instead ([`Completion::expires_at`]).
    pub expires_at: Option<DateTime<Utc>>,
    /// What is known at submission (who asked); the completion adds to it.
    pub metadata: Value,
    /// Where to announce the export's end (checked by the caller).
    pub callback_url: Option<String>,
}

/// The limits [`Records::insert_within`] keeps a user under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `MAX_PER_USER`: pending and processing exports.
    pub max_active: u32,
    /// Records of any status (failed ones included) kept for the user.
    pub max_stored: u64,
}

/// What [`Records::insert_within`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Recorded as `pending`.
    Recorded(Box<ExportRecord>),
    /// Not recorded: the user has this many active exports already.
    TooManyActive { active: u64 },
    /// Not recorded: the user has this many records stored already.
    TooManyStored { stored: u64 },
}

/// One daemon's heartbeat row (the write probe of `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonBeat {
    /// `<hostname>-<pid>`, as in its worker names.
    pub id: String,
    pub hostname: String,
    pub pid: u32,
    /// The host's version.
    pub version: String,
    pub started_at: DateTime<Utc>,
}

/// A daemon's heartbeat row as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonSeen {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// What a worker records when its export is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub storage_key: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub row_count: i64,
    pub sha256: String,
    pub metadata: Value,
    /// `None` keeps the expiry given at insert, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// The final figures.
    pub progress: Progress,
}

/// Which records [`Records::list`] returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// `Some(user)`: that user's records (user scope); `None`: everyone's
    /// (admin scope).
    pub user: Option<String>,
    pub status: Option<Status>,
    pub loader: Option<String>,
    pub format: Option<String>,
    /// Page size, clamped to `1..=ListFilter::MAX_LIMIT`.
    pub limit: u32,
    /// `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl ListFilter {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    /// The first page of one user's records.
    pub fn for_user(user: impl Into<String>) -> ListFilter {
        ListFilter {
            user: Some(user.into()),
            ..ListFilter::default()
        }
    }

    /// The first page of everyone's records (admin).
    pub fn all() -> ListFilter {
        ListFilter::default()
    }
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter {
            user: None,
            status: None,
            loader: None,
            format: None,
            limit: Self::DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub items: Vec<ExportRecord>,
    /// Pass back in [`ListFilter::cursor`] for the next page; `None` on the
    /// last page.
    pub next_cursor: Option<String>,
}

/// What one lease sweep did ([`Records::requeue_expired_leases`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseSweep {
    /// Back to `pending`, to be claimed again.
    pub requeued: Vec<ExportId>,
    /// Out of attempts: now `failed`.
    pub failed: Vec<ExportId>,
}

/// Which database a [`Records`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

/// Everything that can go wrong with records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No such export, or not the caller's (the two are indistinguishable on
    /// purpose).
    #[error("export {id} not found")]
    NotFound { id: String },
    /// The lifecycle has no such edge (see [`lifecycle`]).
    #[error("export {id} is {from} and cannot become {to}: {}", lifecycle::transition_hint(*.from, *.to))]
    IllegalTransition {
        id: String,
        from: Status,
        to: Status,
    },
    /// The worker's lease ended (it expired and the export was requeued,
    /// claimed by another worker, cancelled or failed): its work is void.
    #[error(
        "worker `{worker}` no longer holds the lease on export {id} (it is {status} now); \
         stop working on it and discard its output"
    )]
    LeaseLost {
        id: String,
        worker: String,
        status: Status,
    },
    /// The record is not in a state this operation accepts, or changed under
    /// a concurrent caller.
    #[error("export {id}: {reason}")]
    Conflict { id: String, reason: String },
    #[error(
        "invalid page cursor `{cursor}`: pass the next_cursor of the previous page unchanged, \
         or none for the first page"
    )]
    InvalidCursor { cursor: String },
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error(
        "unsupported DATABASE_URL scheme `{scheme}`: use sqlite://PATH (created if missing) \
         or postgres://USER@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl { scheme: String },
    #[error("cannot create the database directory {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The SQLite file, or the folder it lives in, cannot be written.
    #[error(
        "cannot open the database {} for writing: {source}; SQLite writes the file and its \
         -wal and -shm files beside it: make that folder writable (check the mount and the \
         permissions) or point DATABASE_URL elsewhere",
        .path.display()
    )]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed: {0}; fix the database or restore a backup, then run `export-host migrate`")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored value the host cannot read (edited by hand?).
    #[error("export {id} has an unreadable record: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite file the daemon opened is no longer at its path.
    #[error(
        "the database file {} {problem}; restore it, or restart the daemon to open (or create) \
         the database at that path",
        .path.display()
    )]
    FileGone {
        path: PathBuf,
        problem: &'static str,
    },
    /// A read on the direct SQLite path ([`sqlite_reads`]) failed.
    #[error("cannot read the database {}: {source}", .file.display())]
    DirectRead {
        file: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

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

mod tokens;
pub use tokens::{token_hash, NewToken, Principal, TokenInfo, TokenScope, TOKEN_PREFIX};
pub mod progress;
pub mod quarantine;
pub use quarantine::{NewPluginFault, PluginFault, QuarantinePolicy, QuarantineState};
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
            let raw = sqlx::query_as::<_, RawRecord>(&q::INSERT)
                .bind(id.as_str())
                .bind(&new.user_id)
                .bind(&new.loader)
                .bind(&new.format)
                .bind(Json(&new.selector))
                .bind(Json(&new.options))
                .bind(new.file_name.as_deref())
                .bind(new.request_hash.as_deref())
                .bind(Ts::new(now))
                .bind(new.expires_at.map(Ts::new))
                .bind(Json(&new.metadata))
                .bind(new.callback_url.as_deref())
                .fetch_one(&mut *tx)
                .await?;
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
            let raw = sqlx::query_as::<_, RawRecord>(&q::INSERT)
                .bind(id.as_str())
                .bind(&new.user_id)
                .bind(&new.loader)
                .bind(&new.format)
                .bind(Json(&new.selector))
                .bind(Json(&new.options))
                .bind(new.file_name.as_deref())
                .bind(new.request_hash.as_deref())
                .bind(Ts::new(now))
                .bind(new.expires_at.map(Ts::new))
                .bind(Json(&new.metadata))
                .bind(new.callback_url.as_deref())
                .fetch_one(&mut *tx)
                .await?;
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

    /// Claims the oldest pending export for `worker`: it becomes
    /// `processing` with a lease until `now + lease`, and one more attempt.
    /// `None` when the queue is empty (or every pending row is being claimed
    /// by someone else right now, on PostgreSQL).
    pub async fn claim_next(
        &self,
        worker: &str,
        lease: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ExportRecord>, RecordError> {
        let until = lease_deadline(now, lease)?;
        let claimed = match &self.backend {
            Backend::Sqlite(_) => self.claim_with(&sqlite::CLAIM, worker, until, now).await?,
            Backend::Postgres(_) => {
                self.claim_with(&postgres::CLAIM, worker, until, now)
                    .await?
            }
        };
        if let Some(record) = &claimed {
            tracing::info!(
                export_id = %record.id, status = %Status::Processing, worker, attempt = record.attempts,
                "export transition"
            );
        }
        Ok(claimed)
    }

    /// Claims the pending export `id` for `worker`, like
    /// [`Records::claim_next`] but for one named export (the CLI runs the
    /// export it just created). `None` when `id` is not pending (another
    /// worker claimed it first, it was cancelled, or it does not exist).
    pub async fn claim(
        &self,
        id: &ExportId,
        worker: &str,
        lease: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ExportRecord>, RecordError> {
        let until = lease_deadline(now, lease)?;
        let claimed = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::CLAIM_ONE)
                .bind(worker)
                .bind(Ts::new(until))
                .bind(Ts::new(now))
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            raw.map(ExportRecord::try_from).transpose()
        })?;
        if let Some(record) = &claimed {
            tracing::info!(
                export_id = %record.id, status = %Status::Processing, worker, attempt = record.attempts,
                "export transition"
            );
        }
        Ok(claimed)
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

    async fn claim_with(
        &self,
        sql: &str,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ExportRecord>, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(sql)
                .bind(worker)
                .bind(Ts::new(until))
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            raw.map(ExportRecord::try_from).transpose()
        })
    }

    /// Extends `worker`'s lease on `id` to `until`. [`RecordError::LeaseLost`]
    /// tells the worker to stop: its export was requeued, taken over,
    /// cancelled or failed.
    pub async fn heartbeat(
        &self,
        id: &ExportId,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let done = sqlx::query(q::HEARTBEAT)
                .bind(id.as_str())
                .bind(worker)
                .bind(Ts::new(until))
                .bind(Ts::new(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 1 {
                return Ok(());
            }
            let state = current_state!(tx, id, None::<&str>);
            Err(match state {
                None => RecordError::NotFound { id: id.to_string() },
                Some(state) => {
                    let status =
                        state
                            .status
                            .parse::<Status>()
                            .map_err(|err| RecordError::Corrupt {
                                id: id.to_string(),
                                reason: err.to_string(),
                            })?;
                    RecordError::LeaseLost {
                        id: id.to_string(),
                        worker: worker.to_owned(),
                        status,
                    }
                }
            })
        })
    }

    /// `processing -> completed` by the worker holding the lease.
    pub async fn complete(
        &self,
        id: &ExportId,
        worker: &str,
        completion: &Completion,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        let record = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::COMPLETE)
                .bind(id.as_str())
                .bind(worker)
                .bind(&completion.storage_key)
                .bind(&completion.mime_type)
                .bind(completion.size_bytes)
                .bind(completion.row_count)
                .bind(&completion.sha256)
                .bind(Json(&completion.metadata))
                .bind(completion.expires_at.map(Ts::new))
                .bind(Ts::new(now))
                .bind(Json(&completion.progress))
                .fetch_optional(&mut *tx)
                .await?;
            match raw {
                Some(raw) => ExportRecord::try_from(raw),
                None => {
                    let state = current_state!(tx, id, None::<&str>);
                    Err(refusal(id, state, Status::Completed, Some(worker)))
                }
            }
        })?;
        log_transition(&record.id, Status::Completed);
        Ok(record)
    }

    /// `pending|processing -> failed` with `error`. With `worker`, only the
    /// processing export that worker holds; without, any active export (the
    /// service refusing a request, an admin).
    pub async fn fail(
        &self,
        id: &ExportId,
        worker: Option<&str>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        let record = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::FAIL)
                .bind(id.as_str())
                .bind(worker)
                .bind(error)
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            match raw {
                Some(raw) => ExportRecord::try_from(raw),
                None => {
                    let state = current_state!(tx, id, None::<&str>);
                    Err(refusal(id, state, Status::Failed, worker))
                }
            }
        })?;
        log_transition(&record.id, Status::Failed);
        Ok(record)
    }

    /// `pending|processing -> cancelled`. A worker running it finds out at
    /// its next heartbeat or at completion.
    pub async fn cancel(
        &self,
        scope: &Scope,
        id: &ExportId,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        let record = in_tx!(self, scope, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::CANCEL)
                .bind(id.as_str())
                .bind(scope.user_id())
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            match raw {
                Some(raw) => ExportRecord::try_from(raw),
                None => {
                    let state = current_state!(tx, id, scope.user_id());
                    Err(refusal(id, state, Status::Cancelled, None))
                }
            }
        })?;
        log_transition(&record.id, Status::Cancelled);
        Ok(record)
    }

    /// `processing -> pending` by the worker holding the lease, giving its
    /// attempt back: a daemon shutting down returns unfinished work to the
    /// queue rather than leaving it to a lease sweep.
    pub async fn release(
        &self,
        id: &ExportId,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        let record = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::RELEASE)
                .bind(id.as_str())
                .bind(worker)
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            match raw {
                Some(raw) => ExportRecord::try_from(raw),
                None => {
                    let state = current_state!(tx, id, None::<&str>);
                    Err(refusal(id, state, Status::Pending, Some(worker)))
                }
            }
        })?;
        log_transition(&record.id, Status::Pending);
        Ok(record)
    }

    /// The lease sweep: every `processing` export whose lease ended before
    /// `now` goes back to `pending` if it has had fewer than `max_attempts`
    /// claims, and otherwise fails, so no export stays in `processing`
    /// forever.
    pub async fn requeue_expired_leases(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<LeaseSweep, RecordError> {
        let max = i32::try_from(max_attempts).map_err(|_| RecordError::InvalidInput {
            field: "max_attempts",
            reason: format!("{max_attempts} is more than {}", i32::MAX),
        })?;
        let error = format!(
            "its worker stopped renewing the lease on each of {max} attempts (the daemon was \
             killed, crashed or hung while running it); it will not be retried, create it again \
             to retry"
        );
        // Deaths inside a plugin first: those fail naming the plugin.
        let died = self.fail_deaths_in_plugins(now, max).await?;
        let mut sweep = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let failed: Vec<String> = sqlx::query_scalar(q::FAIL_EXPIRED)
                .bind(Ts::new(now))
                .bind(max)
                .bind(&error)
                .fetch_all(&mut *tx)
                .await?;
            let requeued: Vec<String> = sqlx::query_scalar(&q::REQUEUE_EXPIRED)
                .bind(Ts::new(now))
                .bind(max)
                .fetch_all(&mut *tx)
                .await?;
            Ok(LeaseSweep {
                requeued: requeued.into_iter().map(ExportId::from_db).collect(),
                failed: failed.into_iter().map(ExportId::from_db).collect(),
            })
        })?;
        for id in &sweep.requeued {
            tracing::info!(export_id = %id, status = %Status::Pending, "export transition: lease expired, requeued");
        }
        for id in &sweep.failed {
            tracing::info!(export_id = %id, status = %Status::Failed, "export transition: lease expired, out of attempts");
        }
        sweep.failed.extend(died);
        Ok(sweep)
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

/// About how many bytes `record` takes as JSON: its documents and strings
/// plus a fixed allowance for the other fields.
fn approx_json_size(record: &ExportRecord) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    for value in [&record.selector, &record.options, &record.metadata] {
        if serde_json::to_writer(&mut count, value).is_err() {
            count.0 = count.0.saturating_add(value.to_string().len());
        }
    }
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
    count.0 + strings.iter().flatten().map(|s| s.len()).sum::<usize>() + 600
}

/// `now + lease`, refusing leases too long to represent.
fn lease_deadline(
    now: DateTime<Utc>,
    lease: std::time::Duration,
) -> Result<DateTime<Utc>, RecordError> {
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .ok_or_else(|| RecordError::InvalidInput {
            field: "lease duration",
            reason: format!("{lease:?} is too long"),
        })
}
