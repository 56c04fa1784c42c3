//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writers are serialised by SQLite itself. Every write transaction starts
//! with `BEGIN IMMEDIATE`, which takes the write lock up front: a deferred
//! `BEGIN` that reads and then writes can hit `SQLITE_BUSY` on the upgrade
//! with no waiting (busy_timeout does not apply once another writer has
//! committed in between), whereas an immediate one simply queues behind the
//! current writer for up to [`BUSY_TIMEOUT`]. Together with the single
//! conditional UPDATE per transition this is what makes racing workers
//! safe here: exactly one of them sees the row in the old status.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::queries::CLAIM_SET;
use super::row::COLUMNS;
use super::{Mode, RecordError};

/// The migrations in `migrations/sqlite`, embedded at build time.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a writer waits for another writer's transaction before failing.
/// Transitions are single statements, so waiting this long means something
/// is badly wrong rather than merely busy.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Enough connections for a worker pool plus API readers; SQLite still
/// admits one writer at a time.
const MAX_CONNECTIONS: u32 = 10;

/// Opens (creating it and its directory if needed) the database at `url`;
/// also returns its file, unless the database lives in memory.
pub(crate) async fn connect(url: &str) -> Result<(SqlitePool, Option<PathBuf>), RecordError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        // WAL: readers never block the writer nor the writer the readers.
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL is durable against a killed process in WAL mode (only a
        // power loss can drop the last commits, never corrupt the file).
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let file = (!is_in_memory(url)).then(|| options.get_filename().to_path_buf());
    if let Some(file) = &file {
        create_parent_dir(file)?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        // The pool's liveness ping is a round trip to the connection's
        // thread before every statement; an embedded database cannot drop
        // a connection, so it would only slow every request down.
        .test_before_acquire(false)
        // A connection that comes back still inside a transaction (its
        // COMMIT failed and SQLite had already rolled back, say on a full
        // disk) would refuse every later BEGIN: close it instead.
        .after_release(|conn, _| {
            let clean = !sqlx::Connection::is_in_transaction(conn);
            if !clean {
                tracing::warn!("closing a database connection left inside a transaction");
            }
            Box::pin(async move { Ok(clean) })
        })
        .connect_with(options)
        .await;
    match pool {
        Ok(pool) => Ok((pool, file)),
        // SQLite says only "unable to open database file"; say why.
        Err(err) => Err(file
            .as_deref()
            .and_then(not_writable)
            .unwrap_or(RecordError::Database(err))),
    }
}

/// Why the database file, or its folder, cannot be written, if it cannot:
/// a read-only mount or missing permissions (which `access` reports for
/// root as well, for a read-only mount).
fn not_writable(file: &Path) -> Option<RecordError> {
    use nix::unistd::{access, AccessFlags};
    let folder = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let check = |path: &Path| {
        access(path, AccessFlags::W_OK)
            .err()
            .map(|errno| RecordError::NotWritable {
                path: file.to_path_buf(),
                source: std::io::Error::from(errno),
            })
    };
    if file.exists() {
        check(file).or_else(|| check(folder))
    } else {
        check(folder)
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// `sqlite://data/exports.db` on a first start: SQLite creates the file but
/// not the directory it lives in.
fn create_parent_dir(file: &Path) -> Result<(), RecordError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| RecordError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Starts a transaction on a connection the caller took from the pool (and
/// closes when the operation fails, see `Records::settle`): `BEGIN
/// IMMEDIATE` for anything that writes, a plain (deferred) `BEGIN` for
/// reads so they run alongside the writer.
pub(crate) async fn begin_on(
    conn: &mut PoolConnection<Sqlite>,
    mode: Mode,
) -> Result<Transaction<'_, Sqlite>, RecordError> {
    let tx = match mode {
        Mode::Read => sqlx::Connection::begin(&mut **conn).await?,
        Mode::Write => sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?,
    };
    Ok(tx)
}

/// The database file as opened: deleting it (or moving another file over
/// it) under a running daemon leaves the daemon writing to a file nobody
/// will ever open again, which only the path's identity can tell.
#[derive(Debug)]
pub(crate) struct FileIdentity {
    path: PathBuf,
    /// (device, inode) when the daemon connected; `None` if unreadable.
    opened: Option<(u64, u64)>,
}

impl FileIdentity {
    pub(crate) fn of(path: PathBuf) -> FileIdentity {
        let opened = identity(&path).ok();
        FileIdentity { path, opened }
    }

    /// An error when the path no longer names the file opened.
    pub(crate) fn check(&self) -> Result<(), RecordError> {
        let Some(opened) = self.opened else {
            return Ok(());
        };
        match identity(&self.path) {
            Ok(now) if now == opened => Ok(()),
            Ok(_) => Err(RecordError::FileGone {
                path: self.path.clone(),
                problem: "was replaced by another file while the daemon had it open",
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(RecordError::FileGone {
                path: self.path.clone(),
                problem: "was deleted or moved while the daemon had it open",
            }),
            Err(source) => Err(RecordError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// Claims the oldest pending export. The write lock taken by BEGIN IMMEDIATE
/// already excludes every other claimer, so the subquery needs no row lock;
/// the repeated `status = 'pending'` keeps the UPDATE conditional on its own.
/// $1 worker, $2 lease_expires_at, $3 now.
pub(crate) static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET {CLAIM_SET} \
         WHERE id = (SELECT id FROM exports WHERE status = 'pending' \
                     ORDER BY created_at, id LIMIT 1) \
           AND status = 'pending' \
         RETURNING {COLUMNS}"
    )
});
