//! Local storage: atomic commits, streaming reads, delete, size, listing,
//! host-made keys and download names.

use export_host::storage::keys::{
    content_disposition, export_key, sanitize_file_name, user_prefix, USERS_PREFIX,
};
use export_host::storage::{self, LocalStorage, Storage, StorageError, StorageKey, StorageUrl};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn id(n: u8) -> String {
    format!("exp_{}", hex::encode([n; 16]))
}

fn key(user: &str, n: u8) -> StorageKey {
    export_key(user, &id(n), "csv").unwrap()
}

/// Every file (not directory) under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
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

fn local(dir: &Path) -> LocalStorage {
    LocalStorage::open(&dir.join("files")).unwrap()
}

async fn listed(store: &dyn Storage, prefix: Option<&StorageKey>) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list_keys(prefix)
        .map_ok(|o| o.key.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

async fn read_all(store: &dyn Storage, key: &StorageKey) -> Vec<u8> {
    let download = store.open(key).await.unwrap();
    let chunks: Vec<bytes::Bytes> = download.stream.try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test]
async fn nothing_is_visible_before_commit_and_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let key = key("alice", 1);

    let mut upload = store.begin(&key).unwrap();
    upload.write_all(b"a,b\n").unwrap();
    upload.flush().unwrap();
    upload.write_all(b"1,2\n").unwrap();
    assert_eq!(upload.bytes_written(), 8);
    let temp = upload.temp_path().unwrap().to_path_buf();
    assert!(temp.starts_with(store.incoming_dir()), "{temp:?}");

    // Before commit: not readable, no size, not listed, no file at the key's path.
    assert!(matches!(
        store.open(&key).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(store.size(&key).await.unwrap_err().is_not_found());
    assert!(listed(&store, None).await.is_empty());
    assert!(!store.path_of(&key).unwrap().exists());

    // The blocking commit, as the export's blocking thread does it.
    let committed = tokio::task::spawn_blocking(move || upload.commit())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(committed.key, key);
    assert_eq!(committed.size, 8);
    assert!(!temp.exists(), "the temporary file was renamed away");
    assert_eq!(read_all(&store, &key).await, b"a,b\n1,2\n");
    assert_eq!(store.size(&key).await.unwrap(), 8);
    assert_eq!(listed(&store, None).await, vec![key.to_string()]);
    // Only the committed file exists under the root.
    assert_eq!(
        files_under(store.root()),
        vec![store.path_of(&key).unwrap()]
    );
}

#[tokio::test]
async fn abort_and_drop_leave_no_file_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());

    let mut aborted = store.begin(&key("alice", 1)).unwrap();
    aborted.write_all(&[7; 300_000]).unwrap();
    let mut dropped = store.begin(&key("alice", 2)).unwrap();
    dropped.write_all(&[7; 10]).unwrap(); // still buffered
    assert_eq!(files_under(store.root()).len(), 2, "two temporary files");

    aborted.abort().unwrap();
    drop(dropped);
    assert!(
        files_under(store.root()).is_empty(),
        "{:?}",
        files_under(store.root())
    );
    assert!(listed(&store, None).await.is_empty());
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
    assert!(files_under(store.root()).is_empty());
}

#[tokio::test]
async fn commit_replaces_atomically_and_readers_keep_their_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let key = key("alice", 1);
    let mut first = store.begin(&key).unwrap();
    first.write_all(&vec![1; 1_000_000]).unwrap();
    first.commit_async().await.unwrap();

    let reader = store.open(&key).await.unwrap();
    let mut second = store.begin(&key).unwrap();
    second.write_all(&[2; 10]).unwrap();
    // While the second upload is in progress the first is still served whole.
    assert_eq!(store.size(&key).await.unwrap(), 1_000_000);
    second.commit_async().await.unwrap();

    // The reader opened before the replace still sees the old bytes in full.
    let old: Vec<bytes::Bytes> = reader.stream.try_collect().await.unwrap();
    assert_eq!(old.concat(), vec![1; 1_000_000]);
    assert_eq!(read_all(&store, &key).await, vec![2; 10]);
}

#[tokio::test]
async fn reads_stream_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let key = key("bob", 9);
    let data: Vec<u8> = (0..5 * 1024 * 1024 + 17)
        .map(|i: usize| (i % 251) as u8)
        .collect();
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

#[tokio::test]
async fn delete_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Storage> =
        storage::from_url(dir.path().join("files").to_str().unwrap()).unwrap();
    let k1 = key("carol", 1);
    let k2 = key("carol", 2);
    for (k, len) in [(&k1, 123), (&k2, 0)] {
        let mut upload = store.begin(k).unwrap();
        upload.write_all(&vec![b'x'; len]).unwrap();
        upload.commit_async().await.unwrap();
    }
    assert_eq!(store.size(&k1).await.unwrap(), 123);
    assert_eq!(store.size(&k2).await.unwrap(), 0);
    assert_eq!(read_all(store.as_ref(), &k2).await, b"");

    store.delete(&k1).await.unwrap();
    assert!(store.size(&k1).await.unwrap_err().is_not_found());
    assert!(store.open(&k1).await.unwrap_err().is_not_found());
    // Deleting a missing key is fine, twice.
    store.delete(&k1).await.unwrap();
    store.delete(&key("nobody", 3)).await.unwrap();
    assert_eq!(listed(store.as_ref(), None).await, vec![k2.to_string()]);

    // Deleting a user's last file removes their directory; a new upload
    // for them still commits.
    store.delete(&k2).await.unwrap();
    let mut upload = store.begin(&k2).unwrap();
    upload.write_all(b"again").unwrap();
    upload.commit_async().await.unwrap();
    assert_eq!(store.size(&k2).await.unwrap(), 5);
}

#[tokio::test]
async fn list_keys_skips_uploads_in_progress_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let alice = [key("alice", 1), key("alice", 2)];
    let bob = key("bob", 3);
    for k in alice.iter().chain([&bob]) {
        let mut upload = store.begin(k).unwrap();
        upload.write_all(b"done").unwrap();
        upload.commit_async().await.unwrap();
    }
    let mut in_progress = store.begin(&key("alice", 4)).unwrap();
    in_progress.write_all(&[0; 200_000]).unwrap();
    in_progress.flush().unwrap();
    // Files the host did not make (e.g. an operator's notes) are not listed.
    std::fs::write(store.root().join("README"), b"not a key").unwrap();
    std::fs::write(store.root().join("u").join("a b.txt"), b"not a key").unwrap();

    let mut all: Vec<String> = alice.iter().chain([&bob]).map(|k| k.to_string()).collect();
    all.sort();
    let users = StorageKey::parse(USERS_PREFIX).unwrap();
    assert_eq!(listed(&store, Some(&users)).await, all);
    let mut everything = all.clone();
    everything.push("README".into());
    everything.sort();
    assert_eq!(listed(&store, None).await, everything);

    let alice_prefix = user_prefix("alice").unwrap();
    let mut alice_keys: Vec<String> = alice.iter().map(|k| k.to_string()).collect();
    alice_keys.sort();
    assert_eq!(listed(&store, Some(&alice_prefix)).await, alice_keys);
    // A prefix nobody has written under lists nothing.
    assert!(listed(&store, Some(&user_prefix("nobody").unwrap()))
        .await
        .is_empty());

    let objects: Vec<_> = store.list_keys(Some(&users)).try_collect().await.unwrap();
    for object in objects {
        assert_eq!(object.size, 4);
        assert!(object.last_modified.elapsed().unwrap() < Duration::from_secs(600));
    }

    // Stale-upload purge spares the live upload, then takes it once idle long enough.
    assert_eq!(
        store
            .purge_stale_uploads(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert!(in_progress.temp_path().unwrap().exists());
    assert_eq!(store.purge_stale_uploads(Duration::ZERO).await.unwrap(), 1);
    assert!(in_progress.commit().is_err(), "its file is gone");
}

#[tokio::test]
async fn hostile_user_ids_stay_under_their_hashed_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
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

        let path = store.path_of(&k).unwrap();
        assert!(
            path.starts_with(store.root().join("u").join(parts[1])),
            "{path:?}"
        );
        let mut upload = store.begin(&k).unwrap();
        upload.write_all(user.as_bytes()).unwrap();
        upload.commit_async().await.unwrap();
        assert_eq!(read_all(&store, &k).await, user.as_bytes());
    }
    // Everything written is under <root>/u/.
    for file in files_under(dir.path()) {
        assert!(file.starts_with(store.root().join("u")), "{file:?}");
    }
    // User text is never accepted as an export id or extension.
    assert!(export_key("alice", "../../etc/passwd", "csv").is_err());
    assert!(export_key("alice", &id(1), "../x").is_err());
    assert!(StorageKey::parse("u/../../etc/passwd").is_err());
}

#[test]
fn sanitize_file_name_cases() {
    let cases: &[(&str, &str)] = &[
        ("report.csv", "report.csv"),
        ("Q3 report (final).csv", "Q3 report (final).csv"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a/b\\c.csv", "a_b_c.csv"),
        (".hidden", "hidden"),
        ("...", "fallback.csv"),
        ("", "fallback.csv"),
        ("   ", "fallback.csv"),
        ("say \"hi\".csv", "say hi.csv"),
        ("line\nbreak\r\n.csv", "linebreak.csv"),
        ("tab\there.csv", "tabhere.csv"),
        ("nul\0.csv", "nul.csv"),
        ("evil\u{202E}vsc.exe", "evilvsc.exe"),
        ("zero\u{200B}width.csv", "zerowidth.csv"),
        (
            "r\u{e9}sum\u{e9} \u{1F4C4}.csv",
            "r\u{e9}sum\u{e9} \u{1F4C4}.csv",
        ),
        ("c:\\x<y>|z?*.csv", "c__x_y__z__.csv"),
        ("trailing. . ", "trailing"),
        ("\u{a0}nbsp\u{a0}", "nbsp"),
    ];
    for (input, want) in cases {
        assert_eq!(
            sanitize_file_name(input, "fallback.csv"),
            *want,
            "{input:?}"
        );
    }
    // The fallback is sanitised too, and never empty.
    assert_eq!(sanitize_file_name("", "../x"), "_x");
    assert_eq!(sanitize_file_name("", ""), "export");

    // 128 bytes at most, cut on a character boundary.
    let long = "\u{e9}".repeat(100); // 200 bytes
    let name = sanitize_file_name(&long, "f");
    assert_eq!(name.len(), 128);
    assert_eq!(name, "\u{e9}".repeat(64));
    let name = sanitize_file_name(&format!("a{}", "\u{1F600}".repeat(40)), "f");
    assert!(name.len() <= 128 && name.len() > 120, "{}", name.len());
    assert!(name.starts_with('a'));
    assert_eq!(sanitize_file_name(&"x".repeat(500), "f").len(), 128);
}

#[test]
fn content_disposition_encoding() {
    assert_eq!(
        content_disposition("report.csv"),
        "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"
    );
    assert_eq!(
        content_disposition("Q3 report (v2).csv"),
        "attachment; filename=\"Q3 report (v2).csv\"; filename*=UTF-8''Q3%20report%20%28v2%29.csv"
    );
    assert_eq!(
        content_disposition("r\u{e9}sum\u{e9}.csv"),
        "attachment; filename=\"r_sum_.csv\"; filename*=UTF-8''r%C3%A9sum%C3%A9.csv"
    );
    assert_eq!(
        content_disposition("\u{1F600}.txt"),
        "attachment; filename=\"_.txt\"; filename*=UTF-8''%F0%9F%98%80.txt"
    );
    assert_eq!(
        content_disposition("100% \"a\\b\".csv"),
        "attachment; filename=\"100_ _a_b_.csv\"; filename*=UTF-8''100%25%20%22a%5Cb%22.csv"
    );
    // Header-safe whatever the input: no CR, LF or other controls get through.
    let value = content_disposition("a\r\nSet-Cookie: x=1;\u{7f}.csv");
    assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)), "{value}");
    assert!(!value.contains("\r\n"));
    assert_eq!(
        content_disposition(""),
        "attachment; filename=\"export\"; filename*=UTF-8''export"
    );
}

#[test]
fn storage_urls() {
    let parse = |s: &str| StorageUrl::parse(s);
    assert_eq!(
        parse("file:///var/x").unwrap(),
        StorageUrl::Local("/var/x".into())
    );
    assert_eq!(
        parse("FILE:///var/x").unwrap(),
        StorageUrl::Local("/var/x".into())
    );
    assert_eq!(
        parse("file://localhost/var/x").unwrap(),
        StorageUrl::Local("/var/x".into())
    );
    assert_eq!(
        parse("file:///var/a%20b").unwrap(),
        StorageUrl::Local("/var/a b".into())
    );
    assert_eq!(
        parse("file:/var/x").unwrap(),
        StorageUrl::Local("/var/x".into())
    );
    assert_eq!(
        parse("file://./data/files").unwrap(),
        StorageUrl::Local("./data/files".into())
    );
    assert_eq!(parse("/var/x").unwrap(), StorageUrl::Local("/var/x".into()));
    assert_eq!(
        parse("data/files").unwrap(),
        StorageUrl::Local("data/files".into())
    );
    assert_eq!(
        parse("s3://bucket/some/prefix/").unwrap(),
        StorageUrl::S3 {
            bucket: "bucket".into(),
            prefix: "some/prefix".into()
        }
    );
    for bad in [
        "",
        "file://host/x",
        "file:relative",
        "file:///a%zz",
        "s3://",
        "gs://b/x",
        "http://x/y",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse("file:///var/x").unwrap().to_string(), "file:///var/x");
}

#[test]
fn from_url_opens_local_directories_and_refuses_s3_for_now() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    let url = format!("file://{}", nested.display());
    let store = storage::from_url(&url).unwrap();
    assert!(
        nested.join(".incoming").is_dir(),
        "the directory is created"
    );
    assert!(
        store.describe().starts_with("file:///"),
        "{}",
        store.describe()
    );
    let store = <dyn Storage>::from_url(nested.to_str().unwrap()).unwrap();
    drop(store);

    let err = storage::from_url("s3://bucket/exports").unwrap_err();
    assert!(matches!(err, StorageError::UnsupportedS3 { .. }));
    assert!(
        err.to_string()
            .starts_with("S3 storage is not supported yet"),
        "{err}"
    );

    let err = storage::from_url("ftp://x/y").unwrap_err().to_string();
    assert!(
        err.contains("not supported") && err.contains("file:///"),
        "{err}"
    );

    // A file where the directory should be is a clear error.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = storage::from_url(file.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, StorageError::Root { .. }), "{err}");
}
