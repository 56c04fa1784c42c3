//! SQL shared by both backends.
//!
//! SQLite accepts PostgreSQL's numbered placeholders (`$1`, and a repeated
//! `$1` is the same parameter), so one text serves both wherever the SQL
//! itself is the same; only the queue claim differs (see `sqlite.rs` and
//! `postgres.rs`). Two rules keep the texts portable: no `::` casts (SQLite
//! has none; `CAST(x AS TEXT)` works in both) and no backend-only functions.
//!
//! Status guards come from the state machine ([`guard_sql`]) rather than
//! being spelled here, and status values are inlined as literals (they are
//! our constants, never user input) so partial indexes match at plan time.
//!
//! Each text documents its parameters. "scope" is `$n`: the user id of a
//! user-scoped call, or NULL for an admin call, which drops the filter
//! (`CAST($n AS TEXT) IS NULL OR user_id = $n`). On PostgreSQL row-level
//! security applies underneath as well.

use std::sync::LazyLock;

use super::lifecycle::{guard_sql, status_list};
use super::row::COLUMNS;
use super::Status;

/// The user filter of a by-id query, on parameter `$n` (NULL = admin).
fn scope_filter(n: u8) -> String {
    format!("(CAST(${n} AS TEXT) IS NULL OR user_id = ${n})")
}

/// The statuses a record may be deleted in: everything that is not active.
pub(crate) fn deletable() -> Vec<Status> {
    Status::ALL
        .into_iter()
        .filter(|status| !status.is_active())
        .collect()
}

/// $1 id, $2 user_id, $3 loader, $4 format, $5 selector, $6 options,
/// $7 file_name, $8 request_hash, $9 now, $10 expires_at, $11 metadata,
/// $12 callback_url.
pub(crate) static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO exports (id, user_id, loader, format, status, selector, options, \
             file_name, request_hash, attempts, download_count, created_at, updated_at, expires_at, \
             metadata, callback_url) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, 0, 0, $9, $9, $10, $11, $12) \
         RETURNING {COLUMNS}"
    )
});

/// $1 id, $2 scope.
pub(crate) static GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM exports WHERE id = $1 AND {}",
        scope_filter(2)
    )
});

/// The row's status and lease, read when a conditional UPDATE matched
/// nothing, to say why. $1 id, $2 scope.
pub(crate) static STATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT status, lease_owner FROM exports WHERE id = $1 AND {}",
        scope_filter(2)
    )
});

/// $1 user_id, $2 request_hash, $3 since (created at or after), $4 now.
pub(crate) static FIND_REUSABLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM exports \
         WHERE user_id = $1 AND request_hash = $2 AND status = 'completed' \
           AND created_at >= $3 AND (expires_at IS NULL OR expires_at > $4) \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    )
});

/// $1 user_id.
pub(crate) static COUNT_ACTIVE: LazyLock<String> = LazyLock::new(|| {
    let active: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_active()).collect();
    format!(
        "SELECT count(*) FROM exports WHERE user_id = $1 AND status IN ({})",
        status_list(&active)
    )
});

/// The claim's SET list, shared by both backends' claim queries.
/// $1 worker, $2 lease_expires_at, $3 now.
pub(crate) const CLAIM_SET: &str = "status = 'processing', attempts = attempts + 1, \
     lease_owner = $1, lease_expires_at = $2, started_at = $3, updated_at = $3, in_plugin = NULL";

/// Claims one named export if it is still pending (the CLI runs the export
/// it just created). $1 worker, $2 lease_expires_at, $3 now, $4 id.
pub(crate) static CLAIM_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET {CLAIM_SET} WHERE id = $4 AND status = 'pending' \
         RETURNING {COLUMNS}"
    )
});

/// $1 id, $2 worker, $3 lease_expires_at, $4 now.
pub(crate) const HEARTBEAT: &str = "UPDATE exports SET lease_expires_at = $3, updated_at = $4 \
     WHERE id = $1 AND status = 'processing' AND lease_owner = $2";

/// $1 id, $2 worker, $3 progress, $4 now: only the worker's running export.
pub(crate) const PUBLISH_PROGRESS: &str = "UPDATE exports SET progress = $3, updated_at = $4 \
     WHERE id = $1 AND status = 'processing' AND lease_owner = $2";

/// $1 id, $2 worker, $3 storage_key, $4 mime_type, $5 size_bytes,
/// $6 row_count, $7 sha256, $8 metadata, $9 expires_at (NULL keeps the
/// current one), $10 now, $11 progress (the final figures).
pub(crate) static COMPLETE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET status = 'completed', storage_key = $3, mime_type = $4, \
             size_bytes = $5, row_count = $6, sha256 = $7, metadata = $8, \
             expires_at = COALESCE($9, expires_at), completed_at = $10, updated_at = $10, \
             error = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = $11 \
         WHERE id = $1 AND {} AND lease_owner = $2 \
         RETURNING {COLUMNS}",
        guard_sql(Status::Completed)
    )
});

/// $1 id, $2 worker (NULL: the service or an admin, any active export;
/// otherwise only the processing export this worker holds), $3 error, $4 now.
pub(crate) static FAIL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET status = 'failed', error = $3, updated_at = $4, \
             lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND {} \
           AND (CAST($2 AS TEXT) IS NULL OR (status = 'processing' AND lease_owner = $2)) \
         RETURNING {COLUMNS}",
        guard_sql(Status::Failed)
    )
});

/// $1 id, $2 scope, $3 now.
pub(crate) static CANCEL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET status = 'cancelled', updated_at = $3, \
             lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND {} AND {} \
         RETURNING {COLUMNS}",
        guard_sql(Status::Cancelled),
        scope_filter(2)
    )
});

/// A worker hands its export back to the queue (graceful shutdown). The
/// attempt it spent is given back: stopping the daemon is not the export's
/// fault, and a crash (no release) still counts. $1 id, $2 worker, $3 now.
pub(crate) static RELEASE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET status = 'pending', updated_at = $3, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
             lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND {} AND lease_owner = $2 \
         RETURNING {COLUMNS}",
        guard_sql(Status::Pending)
    )
});

/// Lost leases with attempts left go back to the queue, noting in `died_in`
/// the plugins the daemon died inside, if any (a second death there fails
/// the export, see `quarantine.rs`). $1 now, $2 max_attempts.
pub(crate) static REQUEUE_EXPIRED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET status = 'pending', updated_at = $1, \
             lease_owner = NULL, lease_expires_at = NULL, \
             died_in = COALESCE(in_plugin, died_in), in_plugin = NULL \
         WHERE {} AND lease_expires_at < $1 AND attempts < $2 \
         RETURNING id",
        guard_sql(Status::Pending)
    )
});

/// Lost leases with no attempts left fail.
/// $1 now, $2 max_attempts, $3 error.
pub(crate) const FAIL_EXPIRED: &str = "UPDATE exports SET status = 'failed', error = $3, \
         updated_at = $1, lease_owner = NULL, lease_expires_at = NULL \
     WHERE status = 'processing' AND lease_expires_at < $1 AND attempts >= $2 \
     RETURNING id";

/// Completed exports past expires_at. The storage key stays on the row: the
/// caller deletes the file after this commits, and a key whose record is no
/// longer `completed` is not live, so the orphan sweep removes the file if
/// that deletion is interrupted. $1 now.
pub(crate) static EXPIRE_DUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET status = 'expired', updated_at = $1 \
         WHERE {} AND expires_at <= $1 \
         RETURNING id, storage_key",
        guard_sql(Status::Expired)
    )
});

/// Finished records (expired, failed, cancelled) untouched since $1.
pub(crate) static PURGE: LazyLock<String> = LazyLock::new(|| {
    let finished: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_final()).collect();
    format!(
        "DELETE FROM exports WHERE status IN ({}) AND updated_at < $1",
        status_list(&finished)
    )
});

/// $1 id, $2 scope.
pub(crate) static DELETE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "DELETE FROM exports WHERE id = $1 AND {} AND status IN ({}) RETURNING storage_key",
        scope_filter(2),
        status_list(&deletable())
    )
});

/// $1 id, $2 scope, $3 now.
pub(crate) static RECORD_DOWNLOAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET download_count = download_count + 1, \
             last_downloaded_at = $3, updated_at = $3 \
         WHERE id = $1 AND {} AND status = 'completed' \
           AND (expires_at IS NULL OR expires_at > $3) \
         RETURNING {COLUMNS}",
        scope_filter(2)
    )
});

/// Only a completed record's file is live; see [`EXPIRE_DUE`].
pub(crate) const LIVE_KEYS: &str = "SELECT storage_key FROM exports \
     WHERE status = 'completed' AND storage_key IS NOT NULL ORDER BY storage_key";

/// $1 storage_key.
pub(crate) const IS_KEY_LIVE: &str =
    "SELECT count(*) FROM exports WHERE storage_key = $1 AND status = 'completed'";

/// Deliberately without any filter: what row-level security lets through.
pub(crate) const COUNT_ALL: &str = "SELECT count(*) FROM exports";

/// How many records each status has.
pub(crate) const COUNT_BY_STATUS: &str = "SELECT status, count(*) FROM exports GROUP BY status";

/// A page of the list: `SELECT ... WHERE <filters> ORDER BY created_at DESC,
/// id DESC LIMIT n`. Filters are appended in this order, numbering their
/// parameters from `$1`: user, loader, format, cursor (created_at, id). The
/// status is inlined as a literal from the enum.
pub(crate) struct ListSql {
    pub user: bool,
    pub status: Option<Status>,
    pub loader: bool,
    pub format: bool,
    pub cursor: bool,
    pub limit: u32,
}

impl ListSql {
    pub fn build(&self) -> String {
        let mut conditions = Vec::new();
        let mut next = 0u8;
        let mut param = || {
            next += 1;
            format!("${next}")
        };
        if self.user {
            conditions.push(format!("user_id = {}", param()));
        }
        if let Some(status) = self.status {
            conditions.push(format!("status = '{}'", status.as_str()));
        }
        if self.loader {
            conditions.push(format!("loader = {}", param()));
        }
        if self.format {
            conditions.push(format!("format = {}", param()));
        }
        if self.cursor {
            let (created_at, id) = (param(), param());
            // A row-value comparison is the keyset condition both engines
            // turn into one index range.
            conditions.push(format!("(created_at, id) < ({created_at}, {id})"));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        format!(
            "SELECT {COLUMNS} FROM exports{filter} ORDER BY created_at DESC, id DESC LIMIT {}",
            self.limit
        )
    }
}

/// The user's active and stored records, for the quota of
/// `Records::insert_within`. $1 user_id.
pub(crate) static COUNT_QUOTA: LazyLock<String> = LazyLock::new(|| {
    let active: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_active()).collect();
    format!(
        "SELECT count(*) FILTER (WHERE status IN ({})), count(*) FROM exports WHERE user_id = $1",
        status_list(&active)
    )
});

/// PostgreSQL: serialises one user's quota checks until the transaction
/// ends. The two-key form keeps these locks apart from the cleanup lock's
/// single 64-bit key (PostgreSQL keeps the two key spaces separate); the
/// first key spells `exph`. $1 user_id.
pub(crate) const LOCK_USER_QUOTA: &str = "SELECT pg_advisory_xact_lock(1702392936, hashtext($1))";

/// One daemon's heartbeat: the write probe. $1 id, $2 hostname, $3 pid,
/// $4 version, $5 started_at, $6 now.
pub(crate) const DAEMON_BEAT: &str =
    "INSERT INTO daemons (id, hostname, pid, version, started_at, last_seen_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at";

/// Daemons seen at or after $1, newest first.
pub(crate) const DAEMONS_SEEN: &str =
    "SELECT id, hostname, pid, version, started_at, last_seen_at FROM daemons \
     WHERE last_seen_at >= $1 ORDER BY last_seen_at DESC, id";

/// Heartbeat rows of daemons not seen since $1.
pub(crate) const FORGET_DAEMONS: &str = "DELETE FROM daemons WHERE last_seen_at < $1";
