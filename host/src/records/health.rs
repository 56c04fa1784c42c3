//! How the database's writes are going, for `/readyz`, the systemd watchdog
//! and `/metrics` (see docs/operations.md).
//!
//! Every write transaction reports its outcome here: a failure is counted
//! and starts (or continues) a failing spell, a success ends it. A
//! connection whose operation failed at the database level is closed by the
//! caller rather than returned to the pool (records/mod.rs, `settle`), so
//! one failed transaction cannot leave a connection stuck mid-transaction
//! for the next caller.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::RecordError;

/// Outcomes of the daemon's database writes.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failures: AtomicU64,
    spell: Mutex<Spell>,
}

#[derive(Debug, Default)]
struct Spell {
    /// When the current run of failures began; `None` while writes succeed.
    failing_since: Option<Instant>,
    /// The cause of the latest failure.
    last_cause: Option<String>,
}

impl WriteHealth {
    /// Write failures since the daemon started.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// How long writes have been failing without a success in between
    /// (`None` while the latest write succeeded).
    pub fn failing_for(&self) -> Option<Duration> {
        self.spell
            .lock()
            .ok()
            .and_then(|spell| spell.failing_since)
            .map(|since| since.elapsed())
    }

    /// The cause of the latest failure, if writes are failing now.
    pub fn current_cause(&self) -> Option<String> {
        let spell = self.spell.lock().ok()?;
        spell.failing_since?;
        spell.last_cause.clone()
    }

    pub(crate) fn succeeded(&self) {
        if let Ok(mut spell) = self.spell.lock() {
            if let Some(since) = spell.failing_since.take() {
                tracing::info!(
                    after = ?since.elapsed(),
                    "database writes succeed again"
                );
            }
            spell.last_cause = None;
        }
    }

    pub(crate) fn failed(&self, err: &RecordError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let cause = fault_cause(err);
        if let Ok(mut spell) = self.spell.lock() {
            spell.failing_since.get_or_insert_with(Instant::now);
            spell.last_cause = Some(cause);
        }
    }
}

/// Whether `err` says the database itself failed (disk, descriptors, file,
/// schema, connection), as opposed to an answer about the data (not found,
/// a refused transition, a constraint the request broke).
pub fn is_database_fault(err: &RecordError) -> bool {
    match err {
        RecordError::Database(err) => sqlx_fault(err),
        RecordError::DirectRead { .. }
        | RecordError::Io { .. }
        | RecordError::Migrate(_)
        | RecordError::FileGone { .. } => true,
        _ => false,
    }
}

fn sqlx_fault(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::RowNotFound => false,
        sqlx::Error::Database(db) => !matches!(
            db.kind(),
            sqlx::error::ErrorKind::UniqueViolation
                | sqlx::error::ErrorKind::ForeignKeyViolation
                | sqlx::error::ErrorKind::NotNullViolation
                | sqlx::error::ErrorKind::CheckViolation
        ),
        _ => true,
    }
}

/// SQLite primary result codes (the low byte of an extended code).
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// One line naming what went wrong with the database and what to do, for
/// `/readyz` and the log.
pub fn fault_cause(err: &RecordError) -> String {
    format!("{err} ({})", fault_hint(err))
}

/// What a database fault most likely is and what to do, without the
/// error's own text (file paths, SQL): safe to show API clients.
pub fn fault_hint(err: &RecordError) -> &'static str {
    if let RecordError::FileGone { .. } = err {
        return "the database file was deleted or replaced under the daemon: restore it or restart the daemon";
    }
    let text = err.to_string();
    let lower = text.to_ascii_lowercase();
    let code = match err {
        RecordError::Database(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
        RecordError::DirectRead {
            source: rusqlite::Error::SqliteFailure(failure, _),
            ..
        } => Some(failure.extended_code.to_string()),
        _ => None,
    };
    let sqlite_primary = code
        .as_deref()
        .and_then(|code| code.parse::<i64>().ok())
        .map(|code| code & 0xff);
    let hint = if lower.contains("too many open files") || lower.contains("emfile") {
        "the daemon ran out of file descriptors: raise LimitNOFILE or close what holds them"
    } else if sqlite_primary == Some(SQLITE_FULL)
        || lower.contains("no space left")
        || lower.contains("disk is full")
    {
        "the disk holding the database is full: free space"
    } else if sqlite_primary == Some(SQLITE_READONLY)
        || lower.contains("read-only")
        || lower.contains("readonly")
        || code.as_deref() == Some("25006")
    {
        "the database is read-only: make the file and its directory writable by the daemon"
    } else if lower.contains("no such table")
        || code.as_deref() == Some("42P01")
        || lower.contains("does not exist")
    {
        "the database lacks export-host's tables (re-created or never migrated): run `export-host migrate`, or restore a backup"
    } else if sqlite_primary == Some(SQLITE_CANTOPEN) {
        "the database file cannot be opened (deleted directory, permissions, or out of file descriptors)"
    } else if matches!(sqlite_primary, Some(SQLITE_CORRUPT | SQLITE_NOTADB)) {
        "the database file is damaged: restore a backup"
    } else if sqlite_primary == Some(SQLITE_IOERR) {
        "the disk failed a read or write (full, read-only or failing): check the filesystem"
    } else if matches!(
        err,
        RecordError::Database(
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
        )
    ) {
        "the database server does not answer: check that it runs and is reachable"
    } else {
        "see the daemon's log"
    };
    hint
}
