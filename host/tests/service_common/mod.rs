//! Shared helpers of the `service_*` tests: an [`ExportService`] over a
//! fresh database (both backends, through `records_common`'s
//! `both_backends!`), a local storage directory, the real csv plugin and a
//! clock the test moves.

#![allow(dead_code)] // each test binary uses a different subset

use crate::common::Sandbox;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use export_host::pipeline::ExportRequest;
use export_host::plugins::{PluginsConfig, Registry};
use export_host::records::{ExportRecord, Records};
use export_host::service::{Clock, ExportService, ServiceSettings};
use export_host::storage::LocalStorage;
use futures::TryStreamExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A clock the test sets.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    /// Starts at the wall clock's now, so that file times (which are real)
    /// and the service's times agree; in microseconds, as the records keep.
    pub fn new() -> TestClock {
        TestClock(Arc::new(Mutex::new(Utc::now().trunc_subsecs(6))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap() = to;
    }

    pub fn advance(&self, by: TimeDelta) {
        let now = self.now();
        self.set(now + by);
    }

    pub fn clock(&self) -> Clock {
        let inner = self.0.clone();
        Arc::new(move || *inner.lock().unwrap())
    }
}

/// Everything one service test needs.
pub struct Harness {
    pub service: ExportService,
    pub records: Records,
    /// `data/` holds the csv loader's files; plugins.toml names the csv plugin.
    pub sandbox: Sandbox,
    /// The storage root.
    pub files: PathBuf,
    pub clock: TestClock,
    _files_dir: tempfile::TempDir,
}

/// Small limits that tests reach quickly, and no cache.
pub fn test_settings() -> ServiceSettings {
    ServiceSettings {
        max_rows: 1000,
        max_file_size_mb: 1,
        max_per_user: 3,
        expiration: std::time::Duration::from_secs(3600),
        retention: std::time::Duration::from_secs(86_400),
        ..ServiceSettings::default()
    }
}

impl Harness {
    pub fn new(records: Records, settings: ServiceSettings) -> Harness {
        // Libraries are probe-loaded in a child (the host binary) first.
        export_host::isolation::set_worker_executable(std::path::PathBuf::from(env!(
            "CARGO_BIN_EXE_export-host"
        )));
        let sandbox = Sandbox::with_csv();
        let config = PluginsConfig::load(&sandbox.plugins_toml()).expect("plugins.toml");
        let registry = Registry::load(&config);
        assert!(
            registry.failures().is_empty(),
            "the csv plugin loads: {:?}",
            registry
                .failures()
                .iter()
                .map(|f| &f.reason)
                .collect::<Vec<_>>()
        );
        let files_dir = tempfile::tempdir().expect("storage directory");
        let files = files_dir.path().join("files");
        let storage = LocalStorage::open(&files).expect("local storage");
        let files = storage.root().to_owned();
        let clock = TestClock::new();
        let service = ExportService::new(
            records.clone(),
            Arc::new(storage),
            Arc::new(registry),
            settings,
        )
        .with_clock(clock.clock());
        Harness {
            service,
            records,
            sandbox,
            files,
            clock,
            _files_dir: files_dir,
        }
    }

    /// Writes a CSV of `rows` rows (`id,name,note`) to `data/<name>` and
    /// returns its bytes.
    pub fn put_rows(&self, name: &str, rows: usize) -> Vec<u8> {
        let mut text = String::from("id,name,note\n");
        for n in 0..rows {
            text.push_str(&format!("{n},name {n},some words for row {n}\n"));
        }
        self.sandbox.put(name, &text);
        text.into_bytes()
    }

    /// Every file under the storage root (uploads in progress included),
    /// relative to it, sorted.
    pub fn stored_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.files, &self.files, &mut out);
        out.sort();
        out
    }

    /// The bytes of a stored file, through the storage's streaming read.
    pub async fn stored_bytes(&self, key: &str) -> Vec<u8> {
        let key = export_host::storage::StorageKey::parse(key).expect("a valid key");
        let download = self.service.storage().open(&key).await.expect("open");
        let chunks: Vec<bytes::Bytes> = download.stream.try_collect().await.expect("read");
        chunks.concat()
    }

    /// Creates a csv -> csv export of `data/<path>` for `user`.
    pub async fn create(&self, user: &str, path: &str, options: Value) -> ExportRecord {
        self.service
            .create(user, &csv_request(path, options))
            .await
            .expect("create")
    }

    /// Creates an export of `data/<path>` that passes every check at
    /// submission, then removes the file, so the run fails; returns the
    /// final record.
    pub async fn create_and_run_failing(&self, user: &str, path: &str) -> ExportRecord {
        let file = self.sandbox.put(path, "id\n1\n");
        let created = self.create(user, path, json!({})).await;
        std::fs::remove_file(file).expect("removing the file");
        self.service
            .run_export(&created.id, "worker-1")
            .await
            .expect("run")
            .expect("the export was pending")
    }

    /// Creates and runs an export; returns the final record.
    pub async fn create_and_run(&self, user: &str, path: &str, options: Value) -> ExportRecord {
        let created = self.create(user, path, options).await;
        self.service
            .run_export(&created.id, "worker-1")
            .await
            .expect("run")
            .expect("the export was pending")
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("listing storage") {
        let entry = entry.expect("an entry");
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

pub fn csv_request(path: &str, options: Value) -> ExportRequest {
    ExportRequest {
        loader: "csv".to_owned(),
        format: "csv".to_owned(),
        selector: json!({ "path": path }),
        options,
        callback_url: None,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
