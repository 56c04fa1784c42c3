//! Everything that can go wrong with records.

use std::path::PathBuf;

use super::{lifecycle, Status};

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
