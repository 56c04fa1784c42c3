//! The shared backend: PostgreSQL, for several daemons on one database.
//!
//! Every operation runs in a transaction whose first statement sets its
//! scope (see the migration for the policies):
//!
//! - [`Scope::User`]: `SET LOCAL ROLE export_host_user` plus
//!   `export_host.user_id`. Row-level security then limits every statement
//!   of the transaction to that user's rows, on top of the explicit
//!   `user_id` filters in the SQL. The role switch is what makes this hold
//!   even when the host connects as a superuser or the table owner (both of
//!   which RLS would otherwise not restrict).
//! - [`Scope::Admin`]: the explicit bypass for admin and maintenance paths
//!   (queue claim, lease sweep, cleanup, admin list): the connecting role is
//!   kept and `export_host.maintenance` is switched on for the transaction.
//!
//! Both settings are transaction-local (`SET LOCAL` semantics), so they end
//! with the transaction and never leak to the next user of the pooled
//! connection, whether it committed or rolled back.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::queries::CLAIM_SET;
use super::row::COLUMNS;
use super::{Mode, RecordError, Scope};

/// The migrations in `migrations/postgres`, embedded at build time.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// The NOLOGIN role user-scoped transactions switch to; created by the
/// migration.
pub const SCOPED_ROLE: &str = "export_host_user";

/// Enough connections for a worker pool plus API requests; several daemons
/// share the server's `max_connections`.
const MAX_CONNECTIONS: u32 = 10;

/// How long to wait for a free connection before reporting an error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn connect(url: &str) -> Result<PgPool, RecordError> {
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await?;
    Ok(pool)
}

/// Starts a transaction in `scope` on a connection the caller took from
/// the pool (and closes when the operation fails, see `Records::settle`).
/// Reads run `READ ONLY` so a read path that accidentally writes fails
/// loudly instead of changing data.
pub(crate) async fn begin_on<'c>(
    conn: &'c mut PoolConnection<Postgres>,
    scope: &Scope,
    mode: Mode,
) -> Result<Transaction<'c, Postgres>, RecordError> {
    let mut tx = match mode {
        Mode::Read => sqlx::Connection::begin_with(&mut **conn, "BEGIN READ ONLY").await?,
        Mode::Write => sqlx::Connection::begin(&mut **conn).await?,
    };
    set_scope(&mut tx, scope).await?;
    Ok(tx)
}

async fn set_scope(tx: &mut Transaction<'_, Postgres>, scope: &Scope) -> Result<(), RecordError> {
    match scope {
        Scope::User(user) => {
            // set_config('role', ..., true) is SET LOCAL ROLE, in a form that
            // takes the user id as a bound parameter in the same round trip.
            sqlx::query(
                "SELECT set_config('role', $1, true), set_config('export_host.user_id', $2, true)",
            )
            .bind(SCOPED_ROLE)
            .bind(user)
            .execute(&mut **tx)
            .await?;
        }
        Scope::Admin => {
            sqlx::query("SELECT set_config('export_host.maintenance', 'on', true)")
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Claims the oldest pending export. `FOR UPDATE SKIP LOCKED` lets daemons
/// claiming at the same moment each take a different row instead of queueing
/// on the first one; the repeated `status = 'pending'` keeps the UPDATE
/// conditional even if the row changed after the subquery saw it.
/// $1 worker, $2 lease_expires_at, $3 now.
pub(crate) static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET {CLAIM_SET} \
         WHERE id = (SELECT id FROM exports WHERE status = 'pending' \
                     ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
           AND status = 'pending' \
         RETURNING {COLUMNS}"
    )
});

/// The advisory lock that lets one daemon at a time sweep orphan files
/// (any constant works; every daemon must use the same one). The bytes spell
/// `exphost1`.
pub(crate) const CLEANUP_LOCK_KEY: i64 = 0x6578_7068_6f73_7431;

/// Proof that this process holds the cleanup lock; see
/// [`Records::try_lock_cleanup`](super::Records::try_lock_cleanup).
///
/// On PostgreSQL it is a session-level advisory lock on one connection taken
/// out of the pool for as long as the guard lives: if the daemon dies, the
/// connection closes and the server drops the lock, so a crash never leaves
/// it held. [`CleanupLock::release`] unlocks and returns the connection;
/// dropping the guard instead closes the connection, which also unlocks.
#[derive(Debug)]
pub struct CleanupLock {
    conn: Option<sqlx::pool::PoolConnection<Postgres>>,
}

impl CleanupLock {
    /// A guard that holds nothing (the single-daemon SQLite backend needs no
    /// lock).
    pub(crate) fn unneeded() -> CleanupLock {
        CleanupLock { conn: None }
    }

    /// Unlocks. If the unlock cannot be confirmed the connection is closed
    /// rather than returned to the pool, so the lock cannot outlive the pass.
    pub async fn release(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
            .bind(CLEANUP_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await;
        match unlocked {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                tracing::warn!(
                    "cannot confirm the cleanup lock was released; closing its connection"
                );
                drop(conn.detach());
            }
        }
    }
}

impl Drop for CleanupLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closing the session releases its advisory locks.
            drop(conn.detach());
        }
    }
}

/// Tries to take the cleanup lock without waiting: `None` when another
/// session (another daemon, or `export-host cleanup`) holds it.
pub(crate) async fn try_lock_cleanup(pool: &PgPool) -> Result<Option<CleanupLock>, RecordError> {
    let mut conn = pool.acquire().await?;
    let locked = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(CLEANUP_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    Ok(locked.then_some(CleanupLock { conn: Some(conn) }))
}
