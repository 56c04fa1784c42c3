//! The storage contract, as cases that run against every backend:
//! `storage_local.rs` runs them on a local directory, `storage_s3.rs` on a
//! fresh bucket of a local S3-compatible server. Each case takes a
//! [`Fixture`]: the storage under test, where it keeps uploads in progress,
//! and a way to put an object there that the host did not make.
//!
//! [`storage_cases!`] turns every case into a `#[tokio::test]` given an
//! expression that makes a fresh fixture.

#![allow(dead_code)] // each test binary uses its own subset of helpers

use export_host::storage::keys::{export_key, user_prefix, USERS_PREFIX};
use export_host::storage::{self, Storage, StorageError, StorageKey};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Stores bytes under a raw name, bypassing the host.
pub type PutForeign = Box<dyn Fn(&str, &[u8]) + Send + Sync>;

/// One backend, fresh for one test.
pub struct Fixture {
    /// The storage under test.
    pub store: Arc<dyn Storage>,
    /// Where this storage keeps uploads in progress (local files).
    pub staging: PathBuf,
    /// Stores `bytes` under the raw `name` (relative to the storage root or
    /// prefix), bypassing the host, as an operator or another program might.
    pub put_foreign: PutForeign,
    /// Keeps temporary directories (and the like) alive.
    pub _keep: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

/// Runs each named case of this module as a test, on fixtures made by
/// `$fixture` (an async expression evaluating to a [`Fixture`]).
macro_rules! storage_cases {
    ($fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $fixture.await;
                crate::storage_suite::$case(&fixture).await;
            }
        )*
    };
}

pub fn id(n: u8) -> String {
    format!("exp_{}", hex::encode([n; 16]))
}

pub fn key(user: &str, n: u8) -> StorageKey {
    export_key(user, &id(n), "csv").unwrap()
}

/// Every file (not directory) under `dir`, recursively; none if it is missing.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub async fn listed(store: &dyn Storage, prefix: Option<&StorageKey>) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list_keys(prefix)
        .map_ok(|o| o.key.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

pub async fn read_all(store: &dyn Storage, key: &StorageKey) -> Vec<u8> {
    let download = store.open(key).await.unwrap();
    let size = download.size;
    let chunks: Vec<bytes::Bytes> = download.stream.try_collect().await.unwrap();
    let bytes = chunks.concat();
    assert_eq!(bytes.len() as u64, size, "the stream yields `size` bytes");
    bytes
}

pub async fn write(store: &dyn Storage, key: &StorageKey, bytes: &[u8]) {
    let mut upload = store.begin(key).unwrap();
    upload.write_all(bytes).unwrap();
    let committed = upload.commit_async().await.unwrap();
    assert_eq!(committed.size, bytes.len() as u64);
}

/// `len` bytes of a pattern that makes misplaced ranges visible.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub async fn nothing_is_visible_before_commit_and_everything_after(fx: &Fixture) {
    let store = fx.store.as_ref();
    let key = key("alice", 1);

    let mut upload = store.begin(&key).unwrap();
    upload.write_all(b"a,b\n").unwrap();
    upload.flush().unwrap();
    upload.write_all(b"1,2\n").unwrap();
    assert_eq!(upload.bytes_written(), 8);
    let temp = upload.temp_path().unwrap().to_path_buf();
    assert!(temp.starts_with(&fx.staging), "{temp:?}");

    // Before commit: not readable, no size, not listed.
    assert!(matches!(
        store.open(&key).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(store.size(&key).await.unwrap_err().is_not_found());
    assert!(listed(store, None).await.is_empty());

    // The blocking commit, as the export's blocking thread does it.
    let committed = tokio::task::spawn_blocking(move || upload.commit())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(committed.key, key);
    assert_eq!(committed.size, 8);
    assert!(!temp.exists(), "the temporary file is gone after commit");
    assert_eq!(read_all(store, &key).await, b"a,b\n1,2\n");
    assert_eq!(store.size(&key).await.unwrap(), 8);
    assert_eq!(listed(store, None).await, vec![key.to_string()]);
    assert!(files_under(&fx.staging).is_empty());
}

pub async fn abort_and_drop_leave_nothing(fx: &Fixture) {
    let store = fx.store.as_ref();
    let mut aborted = store.begin(&key("alice", 1)).unwrap();
    aborted.write_all(&[7; 300_000]).unwrap();
    let mut dropped = store.begin(&key("alice", 2)).unwrap();
    dropped.write_all(&[7; 10]).unwrap(); // still buffered
    assert_eq!(files_under(&fx.staging).len(), 2, "two uploads in progress");

    aborted.abort().unwrap();
    drop(dropped);
    assert!(
        files_under(&fx.staging).is_empty(),
        "{:?}",
        files_under(&fx.staging)
    );
    assert!(listed(store, None).await.is_empty());
    assert!(store
        .open(&key("alice", 1))
        .await
        .unwrap_err()
        .is_not_found());

    // A panic on the writing thread drops the upload too.
    let upload = store.begin(&key("alice", 3)).unwrap();
    let result = std::thread::spawn(move || {
        let mut upload = upload;
        upload.write_all(b"partial").unwrap();
        panic!("formatter crashed");
    })
    .join();
    assert!(result.is_err());
    assert!(files_under(&fx.staging).is_empty());
    assert!(listed(store, None).await.is_empty());
}

pub async fn commit_replaces_and_readers_keep_their_version(fx: &Fixture) {
    let store = fx.store.as_ref();
    let key = key("alice", 1);
    write(store, &key, &vec![1; 1_000_000]).await;

    let reader = store.open(&key).await.unwrap();
    let mut second = store.begin(&key).unwrap();
    second.write_all(&[2; 10]).unwrap();
    // While the second upload is in progress the first is still served whole.
    assert_eq!(store.size(&key).await.unwrap(), 1_000_000);
    second.commit_async().await.unwrap();

    // The reader opened before the replace still sees the old bytes in full.
    let old: Vec<bytes::Bytes> = reader.stream.try_collect().await.unwrap();
    assert_eq!(old.concat(), vec![1; 1_000_000]);
    assert_eq!(read_all(store, &key).await, vec![2; 10]);
    assert_eq!(listed(store, None).await, vec![key.to_string()]);
}

pub async fn reads_stream_in_bounded_chunks(fx: &Fixture) {
    let store = fx.store.as_ref();
    let key = key("bob", 9);
    let data = pattern(5 * 1024 * 1024 + 17);
    let mut upload = store.begin(&key).unwrap();
    for piece in data.chunks(100_000) {
        upload.write_all(piece).unwrap();
    }
    let committed = upload.commit_async().await.unwrap();
    assert_eq!(committed.size, data.len() as u64);

    let download = store.open(&key).await.unwrap();
    assert_eq!(download.size, data.len() as u64);
    let mut stream = download.stream;
    let mut chunks = 0;
    let mut hasher = Sha256::new();
    let mut total = 0;
    while let Some(chunk) = stream.try_next().await.unwrap() {
        assert!(!chunk.is_empty());
        assert!(chunk.len() <= storage::READ_CHUNK, "{}", chunk.len());
        chunks += 1;
        total += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(total, data.len());
    assert!(chunks >= 20, "streamed in {chunks} chunks");
    assert_eq!(hasher.finalize().to_vec(), Sha256::digest(&data).to_vec());
}

pub async fn ranges_read_exactly_the_bytes_asked_for(fx: &Fixture) {
    let store = fx.store.as_ref();
    let key = key("dora", 4);
    let data = pattern(700_000);
    write(store, &key, &data).await;

    for (offset, len) in [
        (0u64, 1u64),
        (0, 700_000),
        (1, 10),
        (262_143, 3),
        (300_000, 400_000),
        (699_999, 1),
    ] {
        let part = store.open_range(&key, offset, len).await.unwrap();
        assert_eq!(part.size, len);
        let chunks: Vec<bytes::Bytes> = part.stream.try_collect().await.unwrap();
        let got = chunks.concat();
        let (start, end) = (offset as usize, (offset + len) as usize);
        assert!(got == data[start..end], "bytes {offset}+{len}");
    }
    // An empty range is a check that the object is there.
    let empty = store.open_range(&key, 700_000, 0).await.unwrap();
    assert_eq!(empty.size, 0);
    let chunks: Vec<bytes::Bytes> = empty.stream.try_collect().await.unwrap();
    assert!(chunks.concat().is_empty());
    // Past the end: InvalidInput, not a short read.
    for (offset, len) in [(700_000u64, 1u64), (699_999, 2), (u64::MAX, 2)] {
        match store.open_range(&key, offset, len).await {
            Err(StorageError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput)
            }
            other => panic!("bytes {offset}+{len}: {other:?}"),
        }
    }
    assert!(store
        .open_range(&self::key("nobody", 1), 0, 1)
        .await
        .unwrap_err()
        .is_not_found());
}

pub async fn delete_and_size(fx: &Fixture) {
    let store = fx.store.as_ref();
    let k1 = key("carol", 1);
    let k2 = key("carol", 2);
    write(store, &k1, &[b'x'; 123]).await;
    write(store, &k2, b"").await;
    assert_eq!(store.size(&k1).await.unwrap(), 123);
    assert_eq!(store.size(&k2).await.unwrap(), 0);
    assert_eq!(read_all(store, &k2).await, b"");

    store.delete(&k1).await.unwrap();
    assert!(store.size(&k1).await.unwrap_err().is_not_found());
    assert!(store.open(&k1).await.unwrap_err().is_not_found());
    // Deleting a missing key is fine, twice.
    store.delete(&k1).await.unwrap();
    store.delete(&key("nobody", 3)).await.unwrap();
    assert_eq!(listed(store, None).await, vec![k2.to_string()]);

    // After a user's last file is deleted a new upload for them commits.
    store.delete(&k2).await.unwrap();
    write(store, &k2, b"again").await;
    assert_eq!(store.size(&k2).await.unwrap(), 5);
}

pub async fn list_keys_by_prefix_skips_uploads_and_foreign_objects(fx: &Fixture) {
    let store = fx.store.as_ref();
    let alice = [key("alice", 1), key("alice", 2)];
    let bob = key("bob", 3);
    for k in alice.iter().chain([&bob]) {
        write(store, k, b"done").await;
    }
    let mut in_progress = store.begin(&key("alice", 4)).unwrap();
    in_progress.write_all(&[0; 200_000]).unwrap();
    in_progress.flush().unwrap();
    // Objects the host did not make: only those named like keys are listed
    // without a prefix, and nothing outside `u/` is listed with it.
    (fx.put_foreign)("README", b"not an export");
    (fx.put_foreign)("u/a b.txt", b"not a key");

    let mut all: Vec<String> = alice.iter().chain([&bob]).map(|k| k.to_string()).collect();
    all.sort();
    let users = StorageKey::parse(USERS_PREFIX).unwrap();
    assert_eq!(listed(store, Some(&users)).await, all);
    let mut everything = all.clone();
    everything.push("README".into());
    everything.sort();
    assert_eq!(listed(store, None).await, everything);

    let alice_prefix = user_prefix("alice").unwrap();
    let mut alice_keys: Vec<String> = alice.iter().map(|k| k.to_string()).collect();
    alice_keys.sort();
    assert_eq!(listed(store, Some(&alice_prefix)).await, alice_keys);
    // A prefix nobody has written under lists nothing.
    assert!(listed(store, Some(&user_prefix("nobody").unwrap()))
        .await
        .is_empty());

    let objects: Vec<_> = store.list_keys(Some(&users)).try_collect().await.unwrap();
    for object in objects {
        assert_eq!(object.size, 4);
        assert!(object.last_modified.elapsed().unwrap_or_default() < Duration::from_secs(600));
    }

    // The stale-upload purge spares the live upload, then takes it once idle
    // long enough; its commit then fails and nothing appears.
    assert_eq!(
        store
            .purge_stale_uploads(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert!(in_progress.temp_path().unwrap().exists());
    assert_eq!(store.purge_stale_uploads(Duration::ZERO).await.unwrap(), 1);
    let commit = tokio::task::spawn_blocking(move || in_progress.commit())
        .await
        .unwrap();
    assert!(commit.is_err(), "its file is gone");
    assert_eq!(listed(store, Some(&alice_prefix)).await, alice_keys);
}

pub async fn hostile_user_ids_stay_under_their_hashed_prefix(fx: &Fixture) {
    let store = fx.store.as_ref();
    let hostile = [
        "../../etc",
        "a/b",
        "/etc/passwd",
        "..",
        ".",
        "\u{e9}l\u{e8}ve \u{1F600}",
        "a\0b",
        "C:\\Windows",
        "u/../../x",
        &"long".repeat(1000),
    ];
    let mut seen = std::collections::HashSet::new();
    for user in hostile {
        let k = export_key(user, &id(1), "csv").unwrap();
        let parts: Vec<&str> = k.as_str().split('/').collect();
        assert_eq!(parts.len(), 3, "{k}");
        assert_eq!(parts[0], "u");
        assert_eq!(parts[1].len(), 16);
        assert!(parts[1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            parts[1],
            &hex::encode(Sha256::digest(user.as_bytes()))[..16]
        );
        assert_eq!(parts[2], format!("{}.csv", id(1)));
        assert!(
            seen.insert(parts[1].to_owned()),
            "distinct users, distinct prefixes"
        );
        write(store, &k, user.as_bytes()).await;
        assert_eq!(read_all(store, &k).await, user.as_bytes());
    }
    // Everything written is under u/.
    let listed = listed(store, None).await;
    assert_eq!(listed.len(), hostile.len());
    assert!(listed.iter().all(|k| k.starts_with("u/")), "{listed:?}");
    // User text is never accepted as an export id or extension.
    assert!(export_key("alice", "../../etc/passwd", "csv").is_err());
    assert!(export_key("alice", &id(1), "../x").is_err());
    assert!(StorageKey::parse("u/../../etc/passwd").is_err());
}

pub async fn check_passes_on_a_working_store(fx: &Fixture) {
    fx.store.check().await.unwrap();
    assert!(!fx.store.describe().is_empty());
}
