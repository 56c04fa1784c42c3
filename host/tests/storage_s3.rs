//! S3 storage: the shared storage contract (`storage_suite`) on a fresh
//! bucket of a local S3-compatible server, plus what only S3 has: multipart
//! uploads, the key prefix, presigned download URLs, and clear failures when
//! the server or bucket is missing.
//!
//! The server is `EXPORT_HOST_TEST_S3` (default `http://127.0.0.1:5000`;
//! `.ci/s3-server` starts moto there). It being unreachable fails the tests.
//! Each test makes its own bucket, so tests run in parallel.

#[macro_use]
mod storage_suite;

use export_host::storage::{
    DownloadHeaders, S3Options, S3Storage, Storage, StorageError, StorageKey, PART_SIZE,
    SINGLE_PUT_MAX,
};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, RetryConfig};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use storage_suite::{key, listed, pattern, read_all, write, Fixture};

/// The S3-compatible server the tests use.
fn endpoint() -> String {
    std::env::var("EXPORT_HOST_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Makes a bucket with a unique name, or fails saying how to start the server.
fn new_bucket() -> String {
    let bucket = format!("eh-test-{:016x}", rand::random::<u64>());
    let url = format!("{}/{bucket}", endpoint());
    let answer = agent().put(&url).send_empty().unwrap_or_else(|err| {
        panic!(
            "the S3 test server is not reachable at {}: {err}; start one with \
             `.ci/s3-server` (moto) or point EXPORT_HOST_TEST_S3 at one",
            endpoint()
        )
    });
    assert!(
        answer.status().is_success(),
        "creating bucket {bucket}: HTTP {}",
        answer.status()
    );
    bucket
}

/// A client configured explicitly (tests run in parallel, so not through
/// the process environment).
fn builder() -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(endpoint())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
}

/// Storage on a fresh bucket under `prefix`, staging uploads in a
/// temporary directory.
fn s3(bucket: &str, prefix: &str, options: S3Options) -> (S3Storage, tempfile::TempDir) {
    let staging = tempfile::tempdir().unwrap();
    let store = S3Storage::from_builder(builder(), bucket, prefix, options)
        .unwrap()
        .with_staging_dir(staging.path().join("uploads"));
    (store, staging)
}

/// Puts an object directly, bypassing the host (moto takes unsigned writes).
fn put_raw(bucket: &str, path: &str, bytes: &[u8]) {
    let encoded: Vec<String> = path
        .split('/')
        .map(|part| part.replace('%', "%25").replace(' ', "%20"))
        .collect();
    let url = format!("{}/{bucket}/{}", endpoint(), encoded.join("/"));
    let answer = agent().put(&url).send(bytes).unwrap();
    assert!(
        answer.status().is_success(),
        "PUT {url}: {}",
        answer.status()
    );
}

async fn s3_fixture() -> Fixture {
    let bucket = new_bucket();
    let prefix = "exports/daemon";
    let (store, staging) = s3(&bucket, prefix, S3Options::default());
    Fixture {
        staging: store.staging_dir().to_path_buf(),
        store: Arc::new(store),
        put_foreign: Box::new(move |name, bytes| {
            put_raw(&bucket, &format!("{prefix}/{name}"), bytes)
        }),
        _keep: vec![Box::new(staging)],
    }
}

storage_cases!(s3_fixture();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_go_up_in_parts_and_come_back_whole() {
    let bucket = new_bucket();
    let (store, _staging) = s3(&bucket, "", S3Options::default());
    let key = key("erin", 7);
    let size = SINGLE_PUT_MAX as usize + 3 * PART_SIZE / 2 + 5;
    let data = pattern(size);
    let mut upload = store.begin(&key).unwrap();
    for piece in data.chunks(1 << 20) {
        upload.write_all(piece).unwrap();
    }
    let committed = upload.commit_async().await.unwrap();
    assert_eq!(committed.size, size as u64);

    // A multipart object's ETag ends in -<number of parts>.
    let raw = builder().with_bucket_name(&bucket).build().unwrap();
    let meta = raw.head(&ObjectPath::from(key.as_str())).await.unwrap();
    let parts = size.div_ceil(PART_SIZE);
    let etag = meta.e_tag.unwrap_or_default();
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{etag}"
    );
    assert_eq!(meta.size, size as u64);

    let back = read_all(&store, &key).await;
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
    // A range across a part boundary.
    let offset = PART_SIZE as u64 - 10;
    let part = store.open_range(&key, offset, 20).await.unwrap();
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(part.stream)
        .await
        .unwrap();
    assert_eq!(
        chunks.concat(),
        &data[offset as usize..offset as usize + 20]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_prefix_and_prefixes_do_not_mix() {
    let bucket = new_bucket();
    let (one, _a) = s3(&bucket, "team-one/", S3Options::default());
    let (two, _b) = s3(&bucket, "team-two", S3Options::default());
    let (whole, _c) = s3(&bucket, "", S3Options::default());
    let k = key("frank", 1);
    write(&one, &k, b"one").await;
    write(&two, &k, b"two").await;
    assert_eq!(read_all(&one, &k).await, b"one");
    assert_eq!(read_all(&two, &k).await, b"two");
    assert_eq!(listed(&one, None).await, vec![k.to_string()]);

    // The bucket holds them at <prefix>/<key>; prefixes are not host keys.
    let raw = builder().with_bucket_name(&bucket).build().unwrap();
    let stored = raw
        .get(&ObjectPath::from(format!("team-one/{k}")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), b"one");
    // Without a prefix the whole bucket is the store: the prefixed keys
    // show up under their prefixes.
    assert_eq!(
        listed(&whole, None).await,
        vec![format!("team-one/{k}"), format!("team-two/{k}")]
    );

    one.delete(&k).await.unwrap();
    assert!(one.size(&k).await.unwrap_err().is_not_found());
    assert_eq!(two.size(&k).await.unwrap(), 3);
    assert!(one
        .describe()
        .starts_with(&format!("s3://{bucket}/team-one")));
    assert!(one.describe().contains(&endpoint()), "{}", one.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_download_urls_serve_the_file_with_its_headers() {
    let bucket = new_bucket();
    let (direct, _a) = s3(&bucket, "p", S3Options::default());
    let (redirecting, _b) = s3(
        &bucket,
        "p",
        S3Options {
            redirect_downloads: true,
        },
    );
    let k = key("gina", 2);
    write(&redirecting, &k, b"id,name\n1,ann\n").await;
    let headers = DownloadHeaders {
        content_disposition: "attachment; filename=\"people.csv\"; filename*=UTF-8''people.csv"
            .to_owned(),
        content_type: "text/csv".to_owned(),
    };
    assert!(!direct.redirects_downloads());
    assert_eq!(
        direct
            .download_url(&k, Duration::from_secs(60), &headers)
            .await
            .unwrap(),
        None,
        "off unless configured"
    );
    assert!(redirecting.redirects_downloads());
    let url = redirecting
        .download_url(&k, Duration::from_secs(60), &headers)
        .await
        .unwrap()
        .expect("a presigned URL");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    // The file's name and type ride in the signed query, for the server to
    // answer with (S3, MinIO and R2 do; moto ignores them).
    assert!(
        url.contains("response-content-disposition=attachment%3B%20filename%3D%22people.csv%22"),
        "{url}"
    );
    assert!(url.contains("response-content-type=text%2Fcsv"), "{url}");
    let url_for_get = url.clone();
    let (status, disposition, content_type, body) = tokio::task::spawn_blocking(move || {
        let mut answer = agent().get(&url_for_get).call().unwrap();
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (disposition, content_type) = (header("content-disposition"), header("content-type"));
        let status = answer.status().as_u16();
        let body = answer.body_mut().read_to_vec().unwrap();
        (status, disposition, content_type, body)
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"id,name\n1,ann\n");
    if !disposition.is_empty() {
        assert_eq!(disposition, headers.content_disposition);
        assert!(content_type.starts_with("text/csv"), "{content_type}");
    }

    // Valid for the time asked, no longer.
    assert!(url.contains("X-Amz-Expires=60"), "{url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_server_is_a_clear_error() {
    let (store, _staging) = s3(
        &format!("eh-missing-{:016x}", rand::random::<u64>()),
        "",
        S3Options::default(),
    );
    let err = store.check().await.unwrap_err();
    assert!(matches!(err, StorageError::Backend { .. }), "{err}");
    let k = key("hana", 1);
    let mut upload = store.begin(&k).unwrap();
    upload.write_all(b"lost").unwrap();
    let err = upload.commit_async().await.unwrap_err();
    assert!(err.to_string().contains(k.as_str()), "{err}");
    assert!(
        storage_suite::files_under(store.staging_dir()).is_empty(),
        "a failed commit leaves no staged file"
    );

    // Nobody listens on port 9 of localhost: fail fast, no retries.
    let nowhere = AmazonS3Builder::new()
        .with_endpoint("http://127.0.0.1:9")
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        });
    let store = S3Storage::from_builder(nowhere, "some-bucket", "", S3Options::default()).unwrap();
    let err = store.check().await.unwrap_err().to_string();
    assert!(err.contains("storage failed while listing"), "{err}");
    assert!(store
        .size(&StorageKey::parse("u/x").unwrap())
        .await
        .is_err());
}
