//! The reads of every API request on SQLite, run on the calling thread.
//!
//! Each request verifies its token and most read a record: two primary- or
//! unique-key lookups that SQLite answers from its page cache in a few
//! microseconds. Through sqlx each one is a round trip to the connection's
//! own thread (a command in, each row and the end out), so on two cores the
//! daemon spent much of its time waking threads rather than reading
//! (measured with `bench/load.py`; README.md, "Benchmark").
//! Here they run on rusqlite connections on the caller's thread instead.
//!
//! Blocking an async worker for that long is cheaper than the hand-off it
//! replaces, and in WAL mode a reader never waits for the writer: it reads
//! the last committed snapshot, which includes every write the sqlx pool
//! has committed. The connections are opened read-write but set
//! `query_only`, so these paths can never change the database.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::sqlite::BUSY_TIMEOUT;
use super::RecordError;

/// Idle connections kept for reuse; more may be open at a moment of
/// contention, and are closed when they come back to a full shelf.
const KEEP_IDLE: usize = 8;

/// Statements each connection keeps prepared (the read paths use a few).
const STATEMENT_CACHE: usize = 16;

/// A shelf of read-only connections to one SQLite file.
pub(crate) struct Readers {
    file: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("file", &self.file).finish()
    }
}

impl Readers {
    /// Readers of the database file `file` (which the sqlx pool created and
    /// put in WAL mode).
    pub(crate) fn new(file: &Path) -> Readers {
        Readers {
            file: file.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection (opening one if none is idle).
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, RecordError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = read(&connection).map_err(|source| self.error(source));
        // A connection whose read failed (a lost file, a full disk, no
        // descriptors) is closed rather than kept: the next read opens
        // afresh once the fault is gone.
        if result.is_ok() {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < KEEP_IDLE {
                    idle.push(connection);
                }
            }
        }
        result
    }

    /// Closes every idle connection (the database file was replaced: they
    /// would go on reading the old one).
    pub(crate) fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn open(&self) -> Result<Connection, RecordError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection =
            Connection::open_with_flags(&self.file, flags).map_err(|source| self.error(source))?;
        // A reader waits for the writer only around WAL recovery after a
        // crash; the same patience as the pool's.
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| connection.pragma_update(None, "query_only", true))
            .map_err(|source| self.error(source))?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }

    fn error(&self, source: rusqlite::Error) -> RecordError {
        RecordError::DirectRead {
            file: self.file.clone(),
            source,
        }
    }
}
