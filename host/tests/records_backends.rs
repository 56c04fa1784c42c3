//! What each backend adds: PostgreSQL row-level security, the updated_at
//! trigger and the maintenance bypass; SQLite's WAL, busy timeout and
//! sortable timestamps; connecting and migrating on both.

#[macro_use]
mod records_common;

use chrono::{DateTime, TimeDelta, Utc};
use export_host::records::{BackendKind, RecordError, Records, Scope, Status, SCOPED_ROLE};
use records_common::*;
use sqlx::{Connection, Executor, PgPool, Row};

both_backends!(migrating_again_is_a_no_op);

async fn migrating_again_is_a_no_op(records: Records) {
    let record = records.insert(new_export("alice"), t0()).await.unwrap();
    records.migrate().await.unwrap();
    records.migrate().await.unwrap();
    assert_eq!(
        records.get(&Scope::Admin, &record.id).await.unwrap(),
        record
    );
    records.ping().await.unwrap();
}

#[tokio::test]
async fn unknown_database_schemes_are_refused_without_echoing_secrets() {
    let err = Records::connect("mysql://root:hunter2@db/exports")
        .await
        .unwrap_err();
    assert!(matches!(err, RecordError::UnsupportedUrl { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("`mysql`")
            && message.contains("sqlite://")
            && message.contains("postgres://"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

// ---- SQLite ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_is_wal_with_a_busy_timeout_and_sortable_timestamps() {
    with_sqlite(|records: Records| async move {
        assert_eq!(records.kind(), BackendKind::Sqlite);
        let pool = records.sqlite_pool().unwrap().clone();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(timeout, 5000);
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);

        // Timestamps are stored in one fixed width so text order is time order.
        let whole = records.insert(new_export("alice"), t0()).await.unwrap();
        let fraction = records
            .insert(new_export("alice"), t0() + TimeDelta::milliseconds(500))
            .await
            .unwrap();
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT created_at FROM exports ORDER BY created_at")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            stored,
            ["2024-05-01T10:00:00.000000Z", "2024-05-01T10:00:00.500000Z"]
        );
        let newest = records
            .list(&export_host::records::ListFilter::for_user("alice"))
            .await
            .unwrap();
        assert_eq!(newest.items[0].id, fraction.id);
        assert_eq!(newest.items[1].id, whole.id);

        // The schema refuses any other shape and any unknown status.
        let bad_time =
            sqlx::query("UPDATE exports SET updated_at = '2024-05-01 10:00:00' WHERE id = $1")
                .bind(whole.id.as_str())
                .execute(&pool)
                .await;
        assert!(
            bad_time.is_err(),
            "a differently shaped timestamp was stored"
        );
        let bad_status = sqlx::query("UPDATE exports SET status = 'done' WHERE id = $1")
            .bind(whole.id.as_str())
            .execute(&pool)
            .await;
        assert!(bad_status.is_err(), "an unknown status was stored");
    })
    .await;
}

#[tokio::test]
async fn sqlite_creates_the_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/exports.db");
    let records = Records::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.is_file());
    records.insert(new_export("alice"), t0()).await.unwrap();
    records.close().await;
    // Reopening keeps the data and does not migrate twice.
    let records = Records::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(records.count_active("alice").await.unwrap(), 1);
    records.close().await;
}

// ---- PostgreSQL --------------------------------------------------------------

/// Runs `sql` in a transaction scoped like the host scopes user calls
/// (SET LOCAL ROLE + the user setting), with no user filter in `sql`.
async fn count_as_user(pool: &PgPool, user: Option<&str>, sql: &str) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    tx.execute(format!("SET LOCAL ROLE {SCOPED_ROLE}").as_str())
        .await?;
    if let Some(user) = user {
        sqlx::query("SELECT set_config('export_host.user_id', $1, true)")
            .bind(user)
            .execute(&mut *tx)
            .await?;
    }
    let count: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await?;
    tx.rollback().await?;
    Ok(count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_row_level_security_hides_other_users_rows() {
    with_postgres(|records: Records| async move {
        assert_eq!(records.kind(), BackendKind::Postgres);
        for _ in 0..3 {
            records.insert(new_export("alice"), t0()).await.unwrap();
        }
        let bobs = records.insert(new_export("bob"), t0()).await.unwrap();
        records.insert(new_export("bob"), t0()).await.unwrap();

        // The host's own scoped transactions: a query with no user filter
        // at all sees only the scope's rows.
        assert_eq!(
            records
                .count_visible_unfiltered(&Scope::user("alice"))
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            records
                .count_visible_unfiltered(&Scope::user("bob"))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            records
                .count_visible_unfiltered(&Scope::user("mallory"))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            records
                .count_visible_unfiltered(&Scope::Admin)
                .await
                .unwrap(),
            5
        );

        let pool = records.pg_pool().unwrap().clone();
        // Even as a superuser connection, the scoped role obeys the policy.
        assert_eq!(
            count_as_user(&pool, Some("alice"), "SELECT count(*) FROM exports")
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            count_as_user(
                &pool,
                Some("alice"),
                "SELECT count(*) FROM exports WHERE user_id = 'bob'"
            )
            .await
            .unwrap(),
            0
        );
        // A transaction that forgot to say who it is sees nothing.
        assert_eq!(
            count_as_user(&pool, None, "SELECT count(*) FROM exports")
                .await
                .unwrap(),
            0
        );
        // The scoped role cannot switch the maintenance bypass on for itself.
        let mut tx = pool.begin().await.unwrap();
        tx.execute(format!("SET LOCAL ROLE {SCOPED_ROLE}").as_str())
            .await
            .unwrap();
        tx.execute("SELECT set_config('export_host.maintenance', 'on', true)")
            .await
            .unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM exports")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, 0);
        tx.rollback().await.unwrap();

        // Writes are held to the same rule: Alice's scope cannot touch or create Bob's rows.
        let mut tx = pool.begin().await.unwrap();
        tx.execute(format!("SET LOCAL ROLE {SCOPED_ROLE}").as_str())
            .await
            .unwrap();
        tx.execute("SELECT set_config('export_host.user_id', 'alice', true)")
            .await
            .unwrap();
        let touched = tx
            .execute("UPDATE exports SET error = 'x'")
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(touched, 3, "only Alice's rows are updated");
        let deleted = sqlx::query("DELETE FROM exports WHERE id = $1")
            .bind(bobs.id.as_str())
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(deleted, 0);
        let forged = sqlx::query(
            "INSERT INTO exports (id, user_id, loader, format, created_at, updated_at) \
             VALUES ('exp_00000000000000000000000000000001', 'bob', 'csv', 'csv', now(), now())",
        )
        .execute(&mut *tx)
        .await;
        let err = forged.unwrap_err();
        assert!(err.to_string().contains("row-level security"), "{err}");
        tx.rollback().await.unwrap();

        // And through the API: Bob's export does not exist for Alice.
        assert!(matches!(
            records.get(&Scope::user("alice"), &bobs.id).await,
            Err(RecordError::NotFound { .. })
        ));
        assert!(matches!(
            records.cancel(&Scope::user("alice"), &bobs.id, t0()).await,
            Err(RecordError::NotFound { .. })
        ));
        assert_eq!(
            records
                .get(&Scope::user("bob"), &bobs.id)
                .await
                .unwrap()
                .status,
            Status::Pending
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_owner_needs_the_explicit_maintenance_bypass() {
    with_postgres(|records: Records| async move {
        records.insert(new_export("alice"), t0()).await.unwrap();
        records.insert(new_export("bob"), t0()).await.unwrap();
        let pool = records.pg_pool().unwrap().clone();
        // A non-superuser owner, as in a production deployment. Roles are
        // cluster-wide, so tolerate one left by an earlier run.
        let mut admin = admin_connection().await;
        admin
            .execute(
                "DO $$ BEGIN CREATE ROLE export_host_test_owner NOLOGIN; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
            )
            .await
            .unwrap();
        admin.close().await.unwrap();
        pool.execute("ALTER TABLE exports OWNER TO export_host_test_owner")
            .await
            .unwrap();

        let count = |maintenance: bool| {
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await.unwrap();
                tx.execute("SET LOCAL ROLE export_host_test_owner")
                    .await
                    .unwrap();
                if maintenance {
                    tx.execute("SELECT set_config('export_host.maintenance', 'on', true)")
                        .await
                        .unwrap();
                }
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM exports")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.rollback().await.unwrap();
                n
            }
        };
        // FORCE ROW LEVEL SECURITY: the owner sees nothing by default...
        assert_eq!(count(false).await, 0);
        // ...and everything with the explicit bypass that admin paths set.
        assert_eq!(count(true).await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_trigger_bumps_updated_at() {
    with_postgres(|records: Records| async move {
        // Written with a clock in 2024; the trigger uses the server's now().
        let record = records.insert(new_export("alice"), t0()).await.unwrap();
        assert_eq!(record.updated_at, t0());
        let pool = records.pg_pool().unwrap().clone();
        let before_update = Utc::now() - TimeDelta::seconds(5);
        sqlx::query("UPDATE exports SET error = 'touched by hand' WHERE id = $1")
            .bind(record.id.as_str())
            .execute(&pool)
            .await
            .unwrap();
        let row = sqlx::query("SELECT updated_at FROM exports WHERE id = $1")
            .bind(record.id.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
        let bumped: DateTime<Utc> = row.get("updated_at");
        assert!(
            bumped > before_update,
            "updated_at was not bumped: {bumped}"
        );

        // A write that sets updated_at itself keeps its value (the host's
        // clock), even when it equals the old one.
        let same = records.insert(new_export("alice"), t0()).await.unwrap();
        let cancelled = records
            .cancel(&Scope::user("alice"), &same.id, t0())
            .await
            .unwrap();
        assert_eq!(cancelled.updated_at, t0());
        let cancelled = records
            .cancel(&Scope::Admin, &record.id, t0() + TimeDelta::hours(1))
            .await
            .unwrap();
        assert_eq!(cancelled.updated_at, t0() + TimeDelta::hours(1));

        // The "given" note is per row: an explicit write followed by a bare
        // one in the same transaction still stamps the second.
        let mut tx = pool.begin().await.unwrap();
        let explicit = sqlx::query("UPDATE exports SET updated_at = $2 WHERE id = $1")
            .bind(same.id.as_str())
            .bind(t0())
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(explicit.rows_affected(), 1);
        sqlx::query("UPDATE exports SET error = 'bare' WHERE id = $1")
            .bind(same.id.as_str())
            .execute(&mut *tx)
            .await
            .unwrap();
        let stamped: DateTime<Utc> =
            sqlx::query_scalar("SELECT updated_at FROM exports WHERE id = $1")
                .bind(same.id.as_str())
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert!(
            stamped > before_update,
            "second update not stamped: {stamped}"
        );
        tx.rollback().await.unwrap();

        // Schema checks hold on PostgreSQL too.
        let bad = sqlx::query("UPDATE exports SET status = 'done' WHERE id = $1")
            .bind(record.id.as_str())
            .execute(&pool)
            .await;
        assert!(bad.is_err());
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'exports' ORDER BY indexname",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for expected in [
            "exports_queue",
            "exports_selector",
            "exports_user_status_created",
            "exports_status_expires",
            "exports_dedupe",
        ] {
            assert!(
                indexes.iter().any(|i| i == expected),
                "missing index {expected}: {indexes:?}"
            );
        }
    })
    .await;
}
