//! Local storage: the shared storage contract (`storage_suite`) on a local
//! directory, plus what only the local backend has: files under a root,
//! `.incoming/` for uploads, rename commits, and STORAGE URL parsing.

#[macro_use]
mod storage_suite;

use export_host::storage::keys::{content_disposition, export_key, sanitize_file_name};
use export_host::storage::{self, LocalStorage, S3Options, Storage, StorageError, StorageUrl};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use storage_suite::{files_under, key, listed, read_all, Fixture};

fn local(dir: &Path) -> LocalStorage {
    LocalStorage::open(&dir.join("files")).unwrap()
}

/// A fresh local storage in a temporary directory.
async fn local_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let staging = store.incoming_dir().to_path_buf();
    let root = store.root().to_path_buf();
    Fixture {
        store: Arc::new(store),
        staging,
        put_foreign: Box::new(move |name, bytes| {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }),
        _keep: vec![Box::new(dir)],
    }
}

storage_cases!(local_fixture();
    nothing_is_visible_before_commit_and_everything_after,
    abort_and_drop_leave_nothing,
    commit_replaces_and_readers_keep_their_version,
    reads_stream_in_bounded_chunks,
    ranges_read_exactly_the_bytes_asked_for,
    delete_and_size,
    list_keys_by_prefix_skips_uploads_and_foreign_objects,
    hostile_user_ids_stay_under_their_hashed_prefix,
    check_passes_on_a_working_store,
);

#[tokio::test]
async fn files_live_under_the_root_and_uploads_under_incoming() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let key = key("alice", 1);

    let mut upload = store.begin(&key).unwrap();
    upload.write_all(b"a,b\n1,2\n").unwrap();
    let temp = upload.temp_path().unwrap().to_path_buf();
    assert!(temp.starts_with(store.incoming_dir()), "{temp:?}");
    assert!(!store.path_of(&key).unwrap().exists());
    upload.commit_async().await.unwrap();
    // Only the committed file exists under the root, at the key's path.
    assert_eq!(
        files_under(store.root()),
        vec![store.path_of(&key).unwrap()]
    );

    // Deleting a user's last file removes their directory; a new upload
    // for them still commits (the rename makes the directory again).
    store.delete(&key).await.unwrap();
    assert!(!store.path_of(&key).unwrap().parent().unwrap().exists());
    let mut upload = store.begin(&key).unwrap();
    upload.write_all(b"again").unwrap();
    upload.commit_async().await.unwrap();
    assert_eq!(read_all(&store, &key).await, b"again");

    // A blocking commit outside any runtime works too.
    let other = storage_suite::key("alice", 2);
    let mut upload = store.begin(&other).unwrap();
    upload.write_all(b"x").unwrap();
    std::thread::spawn(move || upload.commit().unwrap())
        .join()
        .unwrap();
    assert_eq!(listed(&store, None).await.len(), 2);
}

#[tokio::test]
async fn hostile_user_ids_never_leave_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    for user in ["../../etc", "/etc/passwd", "..", "u/../../x", "a\0b"] {
        let k = export_key(user, &storage_suite::id(1), "csv").unwrap();
        let parts: Vec<&str> = k.as_str().split('/').collect();
        let path = store.path_of(&k).unwrap();
        assert!(
            path.starts_with(store.root().join("u").join(parts[1])),
            "{path:?}"
        );
        storage_suite::write(&store, &k, user.as_bytes()).await;
    }
    for file in files_under(dir.path()) {
        assert!(file.starts_with(store.root().join("u")), "{file:?}");
    }
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
            prefix: "some/prefix".into(),
            options: S3Options::default(),
        }
    );
    assert_eq!(
        parse("s3://my-bucket.v2").unwrap().to_string(),
        "s3://my-bucket.v2"
    );
    for bad in [
        "",
        "file://host/x",
        "file:relative",
        "file:///a%zz",
        "s3://",
        "s3://Upper/x",
        "s3://ab/x",
        "s3://bucket_name/x",
        "s3://bucket/a//b",
        "s3://bucket/a/../b",
        "gs://b/x",
        "http://x/y",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse("file:///var/x").unwrap().to_string(), "file:///var/x");
}

#[test]
fn from_url_opens_local_directories_and_configures_s3_without_contacting_it() {
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
    assert!(!store.redirects_downloads());
    let store = <dyn Storage>::from_url(nested.to_str().unwrap()).unwrap();
    drop(store);

    // S3 is configured from AWS_* but not contacted until used.
    let store = storage::from_url("s3://some-bucket/exports").unwrap();
    assert!(
        store.describe().starts_with("s3://some-bucket/exports"),
        "{}",
        store.describe()
    );
    assert!(
        !store.redirects_downloads(),
        "off unless DOWNLOAD_REDIRECT=on"
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
