//! The export service end to end with the real csv plugin, on SQLite and
//! PostgreSQL: create -> run -> completed with a file whose size, rows and
//! hash match; the limits; the quota; the cache; compression; cancel,
//! delete and download.

mod common;
#[macro_use]
mod records_common;
mod service_common;

use chrono::TimeDelta;
use export_host::records::{ExportRecord, RecordError, Records, Scope, Status};
use export_host::service::{ServiceError, ServiceSettings};
use futures::TryStreamExt;
use serde_json::json;
use service_common::{csv_request, sha256_hex, test_settings, Harness};
use std::io::Read;

both_backends!(
    lifecycle_completes_with_a_matching_file,
    max_rows_fails_and_leaves_no_file,
    max_file_size_fails_and_leaves_no_file,
    the_quota_refuses_one_more_active_export,
    an_identical_request_within_the_ttl_returns_the_existing_export,
    gzip_and_zstd_round_trip,
    cancel_delete_and_download,
    bad_requests_are_refused_before_anything_is_recorded,
    a_run_called_off_midway_leaves_no_file,
);

fn assert_failed_naming(record: &ExportRecord, needle: &str) {
    assert_eq!(record.status, Status::Failed, "{record:?}");
    let error = record.error.as_deref().unwrap_or_default();
    assert!(error.contains(needle), "{error:?} should name {needle}");
    assert!(record.storage_key.is_none(), "{record:?}");
}

async fn lifecycle_completes_with_a_matching_file(records: Records) {
    let h = Harness::new(records, test_settings());
    let source = h.put_rows("people.csv", 25);
    let created = h
        .create(
            "alice",
            "people.csv",
            json!({"file_name": "../People report.csv"}),
        )
        .await;
    assert_eq!(created.status, Status::Pending);
    assert_eq!(created.loader, "csv/csv", "the address is resolved");
    assert_eq!(created.format, "csv/csv");
    assert!(created
        .request_hash
        .as_deref()
        .is_some_and(|h| h.len() == 64));

    h.clock.advance(TimeDelta::seconds(2));
    let done = h
        .service
        .run_next("worker-1")
        .await
        .expect("run")
        .expect("a pending export");
    assert_eq!(done.id, created.id);
    assert_eq!(done.status, Status::Completed, "{:?}", done.error);
    assert_eq!(done.row_count, Some(25));
    let key = done.storage_key.clone().expect("a storage key");
    assert!(
        key.starts_with("u/") && key.ends_with(&format!("{}.csv", done.id)),
        "{key}"
    );
    let bytes = h.stored_bytes(&key).await;
    assert_eq!(bytes, source, "csv -> csv gives the file back");
    assert_eq!(done.size_bytes, Some(bytes.len() as i64));
    assert_eq!(done.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
    assert!(
        done.mime_type
            .as_deref()
            .is_some_and(|m| m.starts_with("text/csv")),
        "{:?}",
        done.mime_type
    );
    assert_eq!(
        done.expires_at,
        Some(h.clock.now() + TimeDelta::hours(1)),
        "EXPIRATION_HOURS after completion"
    );
    let meta = &done.metadata;
    assert_eq!(meta["loader"]["plugin"], "csv");
    assert_eq!(meta["loader"]["name"], "csv");
    assert!(meta["loader"]["version"].is_string(), "{meta}");
    assert_eq!(meta["format"]["name"], "csv");
    assert_eq!(meta["schema"]["fields"][0]["name"], "id", "{meta}");
    assert_eq!(meta["schema"]["fields"].as_array().map(Vec::len), Some(3));
    assert_eq!(meta["timings"]["queued_ms"], 2000, "{meta}");
    assert!(meta["timings"]["run_ms"].is_i64(), "{meta}");
    assert_eq!(
        h.stored_files(),
        vec![key.clone()],
        "one file, no upload left"
    );

    // Nothing else to do.
    assert!(h.service.run_next("worker-1").await.expect("run").is_none());

    // Download: the same bytes, a safe name, counted.
    let download = h
        .service
        .record_download(&Scope::user("alice"), &done.id)
        .await
        .expect("download");
    assert_eq!(
        download.file_name,
        ".._People report.csv".trim_start_matches('.')
    );
    assert!(download.mime_type.starts_with("text/csv"));
    assert!(download.content_disposition.starts_with("attachment;"));
    let chunks: Vec<bytes::Bytes> = download.download.stream.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), source);
    assert_eq!(download.record.download_count, 1);

    // Another user sees nothing.
    let err = h
        .service
        .get(&Scope::user("bob"), &done.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Records(RecordError::NotFound { .. })),
        "{err}"
    );
    assert!(err.is_input_error());
}

async fn max_rows_fails_and_leaves_no_file(records: Records) {
    let h = Harness::new(
        records,
        ServiceSettings {
            max_rows: 10,
            ..test_settings()
        },
    );
    h.put_rows("eleven.csv", 11);
    h.put_rows("ten.csv", 10);
    let failed = h.create_and_run("alice", "eleven.csv", json!({})).await;
    assert_failed_naming(&failed, "MAX_ROWS");
    assert_eq!(h.stored_files(), Vec::<String>::new(), "no file, no upload");
    let ok = h.create_and_run("alice", "ten.csv", json!({})).await;
    assert_eq!(ok.status, Status::Completed, "exactly MAX_ROWS is allowed");
    assert_eq!(ok.row_count, Some(10));
}

async fn max_file_size_fails_and_leaves_no_file(records: Records) {
    let h = Harness::new(
        records,
        ServiceSettings {
            max_rows: 1_000_000,
            max_file_size_mb: 1,
            ..test_settings()
        },
    );
    let source = h.put_rows("big.csv", 40_000);
    assert!(source.len() > 1024 * 1024, "the input is over 1 MB");
    let failed = h.create_and_run("alice", "big.csv", json!({})).await;
    assert_failed_naming(&failed, "MAX_FILE_SIZE_MB");
    assert_eq!(h.stored_files(), Vec::<String>::new(), "no file, no upload");
    // Compressed, the same data fits: the cap is on the stored bytes.
    let ok = h
        .create_and_run("alice", "big.csv", json!({"compression": "zstd"}))
        .await;
    assert_eq!(ok.status, Status::Completed, "{:?}", ok.error);
    assert!(ok.size_bytes.unwrap() < 1024 * 1024);
}

async fn the_quota_refuses_one_more_active_export(records: Records) {
    let h = Harness::new(records, test_settings()); // MAX_PER_USER = 3
    h.put_rows("a.csv", 3);
    let mut ids = Vec::new();
    for _ in 0..3 {
        // Identical requests are separate exports while the cache is off.
        ids.push(h.create("alice", "a.csv", json!({})).await.id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let err = h
        .service
        .create("alice", &csv_request("a.csv", json!({})))
        .await
        .unwrap_err();
    match &err {
        ServiceError::QuotaExceeded { limit, active, .. } => assert_eq!((*limit, *active), (3, 3)),
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    assert!(err.to_string().contains("MAX_PER_USER = 3"), "{err}");
    // Another user has their own quota.
    h.create("bob", "a.csv", json!({})).await;
    // A finished export no longer counts.
    let done = h
        .service
        .run_export(&ids[0], "worker-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, Status::Completed);
    h.create("alice", "a.csv", json!({})).await;
    // So does a cancelled one.
    h.service
        .cancel(&Scope::user("alice"), &ids[1])
        .await
        .expect("cancel");
    h.create("alice", "a.csv", json!({})).await;
}

async fn an_identical_request_within_the_ttl_returns_the_existing_export(records: Records) {
    let h = Harness::new(
        records,
        ServiceSettings {
            cache_ttl: Some(std::time::Duration::from_secs(600)),
            ..test_settings()
        },
    );
    h.put_rows("a.csv", 3);
    let selector_options = json!({"compression": "gzip", "delimiter": ";"});
    let first = h
        .create_and_run("alice", "a.csv", selector_options.clone())
        .await;
    assert_eq!(first.status, Status::Completed, "{:?}", first.error);

    h.clock.advance(TimeDelta::minutes(5));
    // Same request, keys in another order, address spelt differently.
    let again = h
        .service
        .create(
            "alice",
            &export_host::pipeline::ExportRequest {
                loader: "csv/csv".to_owned(),
                format: "csv".to_owned(),
                selector: serde_json::from_str(r#"{"path": "a.csv"}"#).unwrap(),
                options: serde_json::from_str(r#"{"delimiter": ";", "compression": "gzip"}"#)
                    .unwrap(),
                callback_url: None,
            },
        )
        .await
        .expect("create");
    assert_eq!(again.id, first.id, "the existing export is returned");
    assert_eq!(again.status, Status::Completed);

    // A different request, or another user, is a new export.
    let other = h
        .create("alice", "a.csv", json!({"compression": "zstd"}))
        .await;
    assert_ne!(other.id, first.id);
    let bob = h.create("bob", "a.csv", selector_options.clone()).await;
    assert_ne!(bob.id, first.id);

    // Past the TTL, a new one.
    h.clock.advance(TimeDelta::minutes(6));
    let later = h.create("alice", "a.csv", selector_options).await;
    assert_ne!(later.id, first.id);
    assert_eq!(later.status, Status::Pending);
}

async fn gzip_and_zstd_round_trip(records: Records) {
    let h = Harness::new(records, test_settings());
    let source = h.put_rows("a.csv", 200);
    for (compression, mime, ext) in [
        ("gzip", "application/gzip", ".csv.gz"),
        ("zstd", "application/zstd", ".csv.zst"),
    ] {
        let done = h
            .create_and_run("alice", "a.csv", json!({"compression": compression}))
            .await;
        assert_eq!(done.status, Status::Completed, "{:?}", done.error);
        assert_eq!(done.mime_type.as_deref(), Some(mime));
        let key = done.storage_key.clone().unwrap();
        assert!(key.ends_with(ext), "{key}");
        let stored = h.stored_bytes(&key).await;
        assert_eq!(done.size_bytes, Some(stored.len() as i64));
        assert_eq!(done.sha256.as_deref(), Some(sha256_hex(&stored).as_str()));
        let mut plain = Vec::new();
        match compression {
            "gzip" => {
                flate2::read::GzDecoder::new(&stored[..])
                    .read_to_end(&mut plain)
                    .unwrap();
            }
            _ => plain = zstd::decode_all(&stored[..]).unwrap(),
        }
        assert_eq!(plain, source, "{compression} decompresses to the export");
        assert_eq!(done.metadata["compression"], compression);

        let download = h
            .service
            .record_download(&Scope::user("alice"), &done.id)
            .await
            .unwrap();
        assert_eq!(download.file_name, format!("{}{ext}", done.id));
        assert_eq!(download.mime_type, mime);
    }
}

async fn cancel_delete_and_download(records: Records) {
    let h = Harness::new(records, test_settings());
    h.put_rows("a.csv", 3);
    let alice = export_host::records::Scope::user("alice");

    // A pending export: not downloadable, cancellable, then never run.
    let pending = h.create("alice", "a.csv", json!({})).await;
    let err = h
        .service
        .record_download(&alice, &pending.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pending"), "{err}");
    let err = h.service.delete(&alice, &pending.id).await.unwrap_err();
    assert!(err.to_string().contains("cancel it first"), "{err}");
    let cancelled = h.service.cancel(&alice, &pending.id).await.unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    assert!(h.service.run_next("worker-1").await.unwrap().is_none());
    h.service.delete(&alice, &pending.id).await.unwrap();
    assert!(h.service.get(&alice, &pending.id).await.is_err());

    // A completed export: delete takes the record, then the file.
    let done = h.create_and_run("alice", "a.csv", json!({})).await;
    assert_eq!(h.stored_files().len(), 1);
    let bob = Scope::user("bob");
    assert!(
        h.service.delete(&bob, &done.id).await.is_err(),
        "bob cannot delete alice's export"
    );
    assert_eq!(h.stored_files().len(), 1);
    h.service.delete(&alice, &done.id).await.unwrap();
    assert_eq!(h.stored_files(), Vec::<String>::new(), "the file went too");
    let err = h.service.get(&alice, &done.id).await.unwrap_err();
    assert!(matches!(
        err,
        ServiceError::Records(RecordError::NotFound { .. })
    ));
    let err = h
        .service
        .record_download(&alice, &done.id)
        .await
        .unwrap_err();
    assert!(err.is_input_error(), "{err}");

    // The list shows what is left, filtered by user.
    h.create("bob", "a.csv", json!({})).await;
    let page = h
        .service
        .list(&export_host::records::ListFilter::for_user("alice"))
        .await
        .unwrap();
    assert!(page.items.is_empty(), "{:?}", page.items);
    let page = h
        .service
        .list(&export_host::records::ListFilter::all())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

async fn bad_requests_are_refused_before_anything_is_recorded(records: Records) {
    let h = Harness::new(records, test_settings());
    let cases = [
        (
            csv_request("a.csv", json!({})),
            "nosuch",
            "csv",
            "unknown loader",
        ),
        (
            csv_request("a.csv", json!({})),
            "csv",
            "nosuch",
            "unknown format",
        ),
        (
            csv_request("a.csv", json!({"compression": "brotli"})),
            "csv",
            "csv",
            "compression",
        ),
    ];
    for (mut request, loader, format, needle) in cases {
        request.loader = loader.to_owned();
        request.format = format.to_owned();
        let err = h.service.create("alice", &request).await.unwrap_err();
        assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
        assert!(err.is_input_error());
        assert!(
            err.to_string().contains(needle),
            "{err} should contain {needle}"
        );
    }
    let mut bad_selector = csv_request("a.csv", json!({}));
    bad_selector.selector = json!({"path": 5});
    let err = h.service.create("alice", &bad_selector).await.unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("path"), "{err}");
    let err = h
        .service
        .create(" ", &csv_request("a.csv", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    let page = h
        .service
        .list(&export_host::records::ListFilter::all())
        .await
        .unwrap();
    assert!(page.items.is_empty(), "nothing recorded");

    // A missing file is one the loader's check refuses at submission.
    let err = h
        .service
        .create("alice", &csv_request("missing.csv", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("missing.csv"), "{err}");
    assert!(
        h.service
            .list(&export_host::records::ListFilter::all())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing recorded"
    );

    // A request that passes every check but fails at run time (its file is
    // gone by then) ends failed with the loader's reason, and leaves no file.
    let failed = h.create_and_run_failing("alice", "missing.csv").await;
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("missing.csv"),
        "{:?}",
        failed.error
    );
    assert_eq!(h.stored_files(), Vec::<String>::new());
}

async fn a_run_called_off_midway_leaves_no_file(records: Records) {
    // A heartbeat every millisecond: the run notices the cancellation at
    // once (or, if it finishes first, completion is refused); either way
    // the export stays cancelled and its output is discarded.
    let h = Harness::new(
        records,
        ServiceSettings {
            heartbeat: std::time::Duration::from_millis(1),
            max_rows: 1_000_000,
            max_file_size_mb: 100,
            ..test_settings()
        },
    );
    h.put_rows("big.csv", 100_000);
    let created = h.create("alice", "big.csv", json!({})).await;
    let lease = h.service.settings().lease;
    let claimed = h
        .records
        .claim(&created.id, "worker-1", lease, h.clock.now())
        .await
        .unwrap()
        .expect("pending");
    h.service
        .cancel(&Scope::user("alice"), &created.id)
        .await
        .unwrap();
    let after = h
        .service
        .run_claimed(claimed, "worker-1")
        .await
        .expect("run");
    assert_eq!(after.status, Status::Cancelled, "{:?}", after.error);
    assert!(after.storage_key.is_none());
    assert_eq!(h.stored_files(), Vec::<String>::new(), "no file, no upload");
    // Claiming it again is refused: it is not pending.
    assert!(h
        .records
        .claim(&created.id, "worker-2", lease, h.clock.now())
        .await
        .unwrap()
        .is_none());
}
