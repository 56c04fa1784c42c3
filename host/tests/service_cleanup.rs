//! Cleanup on a clock the test controls, on SQLite and PostgreSQL: expired
//! files gone, records purged after retention, live files untouched, orphan
//! files removed (but not young ones), stale uploads removed; lost leases
//! requeued and retried under a key of their own.

mod common;
#[macro_use]
mod records_common;
mod service_common;

use chrono::TimeDelta;
use export_host::records::{RecordError, Records, Scope, Status};
use export_host::service::{CleanupReport, ServiceError, ServiceSettings};
use export_host::storage::keys;
use serde_json::json;
use service_common::{test_settings, Harness};
use std::io::Write;
use std::time::{Duration, SystemTime};

both_backends!(
    cleanup_expires_purges_and_removes_orphans,
    lost_leases_are_requeued_then_failed,
);

const ORPHAN_ID: &str = "exp_0123456789abcdef0123456789abcdef";

async fn cleanup_expires_purges_and_removes_orphans(records: Records) {
    // Expiration 1 h, retention 1 day, lease 60 s.
    let h = Harness::new(
        records,
        ServiceSettings {
            stale_upload_age: Duration::from_secs(600),
            ..test_settings()
        },
    );
    h.put_rows("a.csv", 5);
    let t0 = h.clock.now();

    // A completes at t0 (expires t0+1h); a run that fails at t0.
    let a = h.create_and_run("alice", "a.csv", json!({})).await;
    assert_eq!(a.status, Status::Completed);
    let failed = h.create_and_run_failing("alice", "missing.csv").await;
    assert_eq!(failed.status, Status::Failed);
    // B completes at t0+30m (expires t0+1h30m).
    h.clock.set(t0 + TimeDelta::minutes(30));
    let b = h.create_and_run("bob", "a.csv", json!({})).await;
    assert_eq!(b.status, Status::Completed);
    let key_a = a.storage_key.clone().unwrap();
    let key_b = b.storage_key.clone().unwrap();

    // An orphan: a file under the users prefix no record points to.
    let orphan = keys::export_key("mallory", ORPHAN_ID, "csv").unwrap();
    let mut upload = h.service.storage().begin(&orphan).unwrap();
    upload.write_all(b"nobody's\n").unwrap();
    upload.commit().unwrap();
    // A stale upload left by a killed host, and a fresh one in progress.
    let incoming = h.files.join(".incoming");
    let stale = incoming.join("upload-stale.part");
    std::fs::write(&stale, b"half").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let fresh = h
        .service
        .storage()
        .begin(&keys::export_key("carol", ORPHAN_ID, "csv").unwrap())
        .unwrap();

    let mut files = h.stored_files();
    files.retain(|f| !f.starts_with(".incoming"));
    let mut expected = vec![key_a.clone(), key_b.clone(), orphan.to_string()];
    expected.sort();
    assert_eq!(files, expected);

    // Just after: nothing is due, and the orphan is younger than the lease
    // (a worker may be about to record it), so everything stays.
    // (File times are real and the clock started at the real now: t0+5s.)
    let report = h
        .service
        .cleanup_pass(t0 + TimeDelta::seconds(5))
        .await
        .unwrap();
    assert_eq!(
        report,
        CleanupReport {
            stale_uploads: 1,
            ..CleanupReport::default()
        },
        "only the stale upload goes"
    );
    assert!(!stale.exists());
    assert!(
        fresh.temp_path().unwrap().exists(),
        "an upload in progress stays"
    );
    drop(fresh);
    assert!(h.stored_files().contains(&orphan.to_string()));

    // Past A's expiry: A expires and loses its file; B is live and
    // untouched; the orphan is now old enough to go.
    let at = t0 + TimeDelta::hours(1) + TimeDelta::minutes(1);
    h.clock.set(at);
    let report = h.service.cleanup_pass(at).await.unwrap();
    assert_eq!(
        report,
        CleanupReport {
            expired: 1,
            files_deleted: 1,
            orphans_removed: 1,
            ..CleanupReport::default()
        }
    );
    assert_eq!(
        h.stored_files(),
        vec![key_b.clone()],
        "only B's file is left"
    );
    let a_now = h.service.get(&Scope::Admin, &a.id).await.unwrap();
    assert_eq!(a_now.status, Status::Expired);
    let err = h
        .service
        .record_download(&Scope::user("alice"), &a.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let b_download = h
        .service
        .record_download(&Scope::user("bob"), &b.id)
        .await
        .expect("B is still downloadable");
    assert_eq!(b_download.download.size, b.size_bytes.unwrap() as u64);
    drop(b_download);

    // A second pass at the same time changes nothing.
    assert_eq!(
        h.service.cleanup_pass(at).await.unwrap(),
        CleanupReport::default()
    );

    // A day later: B has expired too; A (expired a day ago) and the failed
    // record are past RETENTION_DAYS and purged; B was just expired and stays.
    let at = at + TimeDelta::days(1) + TimeDelta::minutes(1);
    let report = h.service.cleanup_pass(at).await.unwrap();
    assert_eq!(
        report,
        CleanupReport {
            expired: 1,
            files_deleted: 1,
            purged: 2,
            ..CleanupReport::default()
        }
    );
    assert_eq!(h.stored_files(), Vec::<String>::new());
    for id in [&a.id, &failed.id] {
        let err = h.service.get(&Scope::Admin, id).await.unwrap_err();
        assert!(
            matches!(err, ServiceError::Records(RecordError::NotFound { .. })),
            "{err}"
        );
    }
    let b_now = h.service.get(&Scope::Admin, &b.id).await.unwrap();
    assert_eq!(b_now.status, Status::Expired);
}

async fn lost_leases_are_requeued_then_failed(records: Records) {
    let h = Harness::new(
        records,
        ServiceSettings {
            max_attempts: 2,
            ..test_settings()
        },
    );
    let source = h.put_rows("a.csv", 4);
    let t0 = h.clock.now();
    let created = h.create("alice", "a.csv", json!({})).await;

    // A worker claims it and dies (no heartbeat, no outcome).
    let lease = h.service.settings().lease;
    let claimed = h
        .records
        .claim_next("dead-worker", lease, t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, created.id);

    // Within the lease, nothing happens.
    let report = h
        .service
        .cleanup_pass(t0 + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert_eq!(report.requeued, 0);

    // Past it, the export goes back to the queue and a live worker runs it,
    // under a key of the second attempt's own.
    let at = t0 + TimeDelta::seconds(61);
    h.clock.set(at);
    let report = h.service.cleanup_pass(at).await.unwrap();
    assert_eq!((report.requeued, report.lease_failed), (1, 0));
    let done = h.service.run_next("worker-2").await.unwrap().unwrap();
    assert_eq!(done.id, created.id);
    assert_eq!(done.status, Status::Completed, "{:?}", done.error);
    assert_eq!(done.attempts, 2);
    let key = done.storage_key.clone().unwrap();
    assert!(key.ends_with(&format!("{}.r2.csv", done.id)), "{key}");
    assert_eq!(h.stored_bytes(&key).await, source);
    // The download name does not show the attempt.
    let download = h
        .service
        .record_download(&Scope::user("alice"), &done.id)
        .await
        .unwrap();
    assert_eq!(download.file_name, format!("{}.csv", done.id));

    // Out of attempts: a second lost lease fails the export.
    let other = h.create("alice", "a.csv", json!({})).await;
    for n in 0..2 {
        let now = at + TimeDelta::minutes(10 * (n + 1));
        let claimed = h
            .records
            .claim_next("dead-worker", lease, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, other.id);
        let (requeued, failed) = h
            .service
            .requeue_expired_leases(now + TimeDelta::minutes(2))
            .await
            .unwrap();
        assert_eq!((requeued, failed), if n == 0 { (1, 0) } else { (0, 1) });
    }
    let failed = h.service.get(&Scope::Admin, &other.id).await.unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert!(failed.error.unwrap().contains("lease"));
}
