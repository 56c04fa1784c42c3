//! Shared helpers of the `records_*` tests: a fresh database per test on
//! both backends, and builders that put an export into any status.
//!
//! Every record test runs twice, on a real SQLite file in a temporary
//! directory and on a fresh PostgreSQL database (`eh_<random hex>`, dropped
//! afterwards). PostgreSQL being unreachable is a test failure, never a
//! skip: CI (`.ci/run`) starts it when it is down.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use export_host::records::{
    Completion, ExportId, ExportRecord, NewExport, RecordError, Records, Scope, Status,
};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

/// Where the test server is; `EXPORT_HOST_TEST_POSTGRES` overrides it.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

pub const WORKER: &str = "worker-1";
pub const LEASE: Duration = Duration::from_secs(30);

/// Runs the same test body on both backends, as `NAME::sqlite` and
/// `NAME::postgres`. Each body is an `async fn NAME(records: Records)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    crate::records_common::with_sqlite(super::$name).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    crate::records_common::with_postgres(super::$name).await
                }
            }
        )*
    };
}

fn postgres_base() -> String {
    std::env::var("EXPORT_HOST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// A fixed clock origin: tests pass time explicitly, so they never race the
/// wall clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
        .single()
        .expect("valid date")
}

pub fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// Runs `body` on a fresh SQLite file (in a directory that does not exist
/// yet, to cover its creation).
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Records) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}/data/exports.db", dir.path().display());
    let records = Records::connect(&url)
        .await
        .expect("open the SQLite database");
    run(records, body).await;
    drop(dir);
}

/// Opens the server's maintenance database, or fails the test saying how
/// to start PostgreSQL.
pub async fn admin_connection() -> PgConnection {
    let url = format!("{}/postgres", postgres_base());
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => panic!(
            "PostgreSQL is not reachable at {url}: {err}; start it with \
             `pg_ctlcluster <version> main start` (see `pg_lsclusters`; .ci/run does this) \
             or point EXPORT_HOST_TEST_POSTGRES at a server"
        ),
        Err(_) => panic!(
            "PostgreSQL is not reachable at {url}: no answer within 10 s; start it with \
             `pg_ctlcluster <version> main start` (see `pg_lsclusters`; .ci/run does this)"
        ),
    }
}

/// Runs the blocking `body` (a daemon or CLI driven as a process) with the
/// URL of a fresh PostgreSQL database, dropped afterwards even when the body
/// panics.
pub async fn with_scratch_postgres_url<F>(body: F)
where
    F: FnOnce(String) + Send + 'static,
{
    let mut admin = admin_connection().await;
    let name = create_database(&mut admin).await;
    let url = format!("{}/{name}", postgres_base());
    let outcome = tokio::task::spawn_blocking(move || body(url)).await;
    drop_database(&mut admin, &name).await;
    if let Err(err) = outcome {
        resume(err);
    }
}

/// Runs `body` on a fresh PostgreSQL database, dropped afterwards even when
/// the body panics.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(Records) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut admin = admin_connection().await;
    let name = create_database(&mut admin).await;
    let url = format!("{}/{name}", postgres_base());
    let connected = Records::connect(&url).await;
    let outcome = match connected {
        Ok(records) => {
            let records_for_close = records.clone();
            let outcome = tokio::spawn(body(records)).await;
            records_for_close.close().await;
            Some(outcome)
        }
        Err(err) => {
            drop_database(&mut admin, &name).await;
            panic!("connect to and migrate {url}: {err}");
        }
    };
    drop_database(&mut admin, &name).await;
    if let Some(Err(err)) = outcome {
        resume(err);
    }
}

/// Creates a database with a fresh name on the server and returns the name.
async fn create_database(admin: &mut PgConnection) -> String {
    let name = format!("eh_{:032x}", rand::random::<u128>());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    name
}

async fn drop_database(admin: &mut PgConnection, name: &str) {
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop the test database");
}

/// Runs the body as its own task (so a panic is caught and cleanup still
/// happens), then closes the pool.
async fn run<F, Fut>(records: Records, body: F)
where
    F: FnOnce(Records) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body(records.clone())).await;
    records.close().await;
    if let Err(err) = outcome {
        resume(err);
    }
}

fn resume(err: tokio::task::JoinError) -> ! {
    match err.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(err) => panic!("test task did not finish: {err}"),
    }
}

pub fn new_export(user: &str) -> NewExport {
    NewExport {
        user_id: user.to_owned(),
        loader: "csv".to_owned(),
        format: "jsonl".to_owned(),
        selector: json!({"path": "conversations.csv"}),
        options: json!({"compression": "gzip"}),
        file_name: Some("conversations.jsonl.gz".to_owned()),
        request_hash: None,
        expires_at: None,
        metadata: json!({}),
        callback_url: None,
    }
}

pub fn completion(id: &ExportId, now: DateTime<Utc>) -> Completion {
    Completion {
        storage_key: format!("files/{id}"),
        mime_type: "application/jsonl".to_owned(),
        size_bytes: 1234,
        row_count: 42,
        sha256: "ab".repeat(32),
        metadata: json!({"loader": {"name": "csv", "version": "1.0.0"}}),
        expires_at: Some(now + TimeDelta::hours(1)),
        progress: export_host::records::Progress::new(42, 1234, 0.5),
    }
}

/// Inserts an export for `user` at `now` and drives it into `status` the
/// way the host would. Assumes no other export is pending (the claim takes
/// the oldest pending one).
pub async fn in_state(
    records: &Records,
    user: &str,
    status: Status,
    now: DateTime<Utc>,
) -> ExportRecord {
    let record = records.insert(new_export(user), now).await.expect("insert");
    let record = match status {
        Status::Pending => record,
        Status::Processing => claim(records, &record.id, now).await,
        Status::Completed => {
            claim(records, &record.id, now).await;
            records
                .complete(&record.id, WORKER, &completion(&record.id, now), now)
                .await
                .expect("complete")
        }
        Status::Expired => {
            claim(records, &record.id, now).await;
            records
                .complete(&record.id, WORKER, &completion(&record.id, now), now)
                .await
                .expect("complete");
            let expired = records
                .expire_due(now + TimeDelta::hours(2))
                .await
                .expect("expire");
            assert!(
                expired.iter().any(|(id, _)| *id == record.id),
                "{expired:?}"
            );
            records.get(&Scope::Admin, &record.id).await.expect("get")
        }
        Status::Failed => records
            .fail(&record.id, None, "it broke", now)
            .await
            .expect("fail"),
        Status::Cancelled => records
            .cancel(&Scope::Admin, &record.id, now)
            .await
            .expect("cancel"),
    };
    assert_eq!(record.status, status);
    record
}

/// Claims as [`WORKER`] and checks the claim got `id`.
pub async fn claim(records: &Records, id: &ExportId, now: DateTime<Utc>) -> ExportRecord {
    let claimed = records
        .claim_next(WORKER, LEASE, now)
        .await
        .expect("claim")
        .expect("a pending export to claim");
    assert_eq!(&claimed.id, id, "claimed a different export");
    claimed
}

/// Asserts `result` is the IllegalTransition `from -> to` of `id`.
pub fn assert_illegal<T: std::fmt::Debug>(
    result: Result<T, RecordError>,
    id: &ExportId,
    from: Status,
    to: Status,
) {
    match result {
        Err(RecordError::IllegalTransition {
            id: got,
            from: f,
            to: t,
        }) => {
            assert_eq!((got.as_str(), f, t), (id.as_str(), from, to));
        }
        other => panic!("expected IllegalTransition {from} -> {to} for {id}, got {other:?}"),
    }
}
