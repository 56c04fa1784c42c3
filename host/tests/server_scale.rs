//! Scale-out (README.md, "Several daemons"): several `export-host serve` processes on one
//! PostgreSQL database and one S3 bucket.
//!
//! - 200 exports submitted across three daemons each complete exactly once:
//!   one completion, one file, the right bytes; every daemon does some;
//! - a download is served by a daemon other than the one that wrote it
//!   (whole, ranged, and through a signed link made by a third);
//! - `kill -9` of a daemon holding leases: the others reap them and finish
//!   its exports;
//! - `DOWNLOAD_REDIRECT=on` answers a download with a presigned URL;
//! - in process, on both backends: a worker whose lease was taken over can
//!   never overwrite the result, whichever of the two finishes first.
//!
//! Needs PostgreSQL (`EXPORT_HOST_TEST_POSTGRES`) and an S3-compatible
//! server (`EXPORT_HOST_TEST_S3`, default `http://127.0.0.1:5000`, started
//! by `.ci/s3-server`); either missing fails the tests.

mod common;
#[macro_use]
mod records_common;
mod server_common;
mod service_common;

use common::Sandbox;
use export_host::records::{ExportRecord, RecordError, Records, Scope, Status};
use export_host::service::ServiceSettings;
use export_host::storage::{S3Options, S3Storage, Storage};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use serde_json::{json, Value};
use server_common::Daemon;
use service_common::{sha256_hex, test_settings, Harness};
use sqlx::{Connection, Executor, PgConnection};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Shared by every daemon of a cluster, so a link one signs another accepts.
const SIGNING_KEY: &str = "scale-test-signing-key-0123456789abcdef0123456789";
const PREFIX: &str = "exports";

fn s3_endpoint() -> String {
    std::env::var("EXPORT_HOST_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned())
}

/// A fresh bucket on the S3 test server, or a failure saying how to start it.
fn new_bucket() -> String {
    let bucket = format!("eh-scale-{:016x}", rand::random::<u64>());
    let url = format!("{}/{bucket}", s3_endpoint());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let answer = agent.put(&url).send_empty().unwrap_or_else(|err| {
        panic!(
            "the S3 test server is not reachable at {}: {err}; start one with \
             `.ci/s3-server` (moto) or point EXPORT_HOST_TEST_S3 at one",
            s3_endpoint()
        )
    });
    assert!(
        answer.status().is_success(),
        "creating {bucket}: {}",
        answer.status()
    );
    bucket
}

/// A fresh PostgreSQL database, dropped with the value.
struct Database {
    name: String,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl Database {
    fn create() -> Database {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let name = format!("eh_{:032x}", rand::random::<u128>());
        runtime.block_on(async {
            let mut admin = records_common::admin_connection().await;
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the test database");
        });
        let base = std::env::var("EXPORT_HOST_TEST_POSTGRES")
            .unwrap_or_else(|_| records_common::DEFAULT_POSTGRES.to_owned());
        Database {
            url: format!("{base}/{name}"),
            name,
            runtime,
        }
    }

    /// Rows of `sql` as text columns.
    fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.runtime.block_on(async {
            let mut conn = PgConnection::connect(&self.url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            use sqlx::Row;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i).unwrap())
                        .collect()
                })
                .collect()
        })
    }

    fn count(&self, condition: &str) -> usize {
        self.rows(&format!(
            "SELECT CAST(count(*) AS TEXT) FROM exports WHERE {condition}"
        ))[0][0]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits until no export is pending or processing.
    fn wait_until_idle(&self, within: Duration, daemons: &[&Daemon]) {
        let deadline = Instant::now() + within;
        loop {
            let active = self.count("status IN ('pending', 'processing')");
            if active == 0 {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = daemons.iter().map(|d| d.log()).collect();
                panic!(
                    "{active} exports still active after {within:?}\n{}",
                    logs.join("\n----\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        self.runtime.block_on(async {
            let mut admin = records_common::admin_connection().await;
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        });
    }
}

/// Daemons on one database and one bucket, each with its own DATA_DIR,
/// temporary directory and log, and the same input files.
struct Cluster {
    daemons: Vec<Daemon>,
    bucket: String,
    db: Database,
}

impl Cluster {
    fn start(n: usize, files: &[(String, Vec<u8>)], extra: &[(&str, &str)]) -> Cluster {
        let db = Database::create();
        let bucket = new_bucket();
        let storage = format!("s3://{bucket}/{PREFIX}");
        let endpoint = s3_endpoint();
        let mut daemons = Vec::new();
        for _ in 0..n {
            let sandbox = Sandbox::with_csv();
            for (name, bytes) in files {
                sandbox.put(name, bytes);
            }
            let tmp = sandbox.path().join("tmp");
            std::fs::create_dir_all(&tmp).unwrap();
            let tmp = tmp.to_str().unwrap().to_owned();
            let mut env: Vec<(&str, &str)> = vec![
                ("EXPORT_HOST_DATABASE_URL", &db.url),
                ("EXPORT_HOST_STORAGE", &storage),
                ("EXPORT_HOST_SIGNING_KEY", SIGNING_KEY),
                ("EXPORT_HOST_MAX_PER_USER", "1000"),
                ("AWS_ENDPOINT_URL", &endpoint),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                // Staged uploads of this daemon stay in its sandbox.
                ("TMPDIR", &tmp),
            ];
            env.extend_from_slice(extra);
            daemons.push(Daemon::start(sandbox, &env));
        }
        Cluster {
            daemons,
            bucket,
            db,
        }
    }

    /// The keys under the prefix of the bucket, as the host sees them.
    fn stored_keys(&self) -> BTreeSet<String> {
        let builder = AmazonS3Builder::new()
            .with_endpoint(s3_endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing");
        let store =
            S3Storage::from_builder(builder, &self.bucket, PREFIX, S3Options::default()).unwrap();
        self.db.runtime.block_on(async {
            store
                .list_keys(None)
                .map_ok(|object| object.key.to_string())
                .try_collect()
                .await
                .unwrap()
        })
    }

    fn logs(&self) -> String {
        let logs: Vec<String> = self.daemons.iter().map(|d| d.log()).collect();
        logs.join("\n----\n")
    }
}

/// The export ids whose transition to `status` a daemon's log records, with
/// how many times each.
fn transitions(log: &str, status: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let marker = format!("status={status}");
    for line in log.lines() {
        if !line.contains("export transition") || !line.split_whitespace().any(|w| w == marker) {
            continue;
        }
        if let Some(at) = line.find("export_id=") {
            let id: String = line[at + "export_id=".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            *out.entry(id).or_insert(0) += 1;
        }
    }
    out
}

fn id_of(record: &Value) -> String {
    record["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {record}"))
        .to_owned()
}

/// Ten small CSV files with different contents (csv to csv is the identity).
fn small_files() -> Vec<(String, Vec<u8>)> {
    (0..10)
        .map(|n| {
            let mut text = String::from("id,name,file\n");
            for row in 0..(20 + n * 7) {
                text.push_str(&format!("{row},person {row},{n}\n"));
            }
            (format!("f{n}.csv"), text.into_bytes())
        })
        .collect()
}

#[test]
fn two_hundred_exports_on_three_daemons_complete_exactly_once() {
    let files = small_files();
    let cluster = Cluster::start(3, &files, &[]);
    let daemons = &cluster.daemons;
    let alice = daemons[0].token("alice", false);

    // Submitted round-robin, from three threads at once.
    let submitted: Vec<(String, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|thread| {
                let alice = &alice;
                let files = &files;
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    for n in (thread..200).step_by(3) {
                        let daemon = &daemons[n % 3];
                        let file = n % files.len();
                        let request = json!({"loader": "csv", "format": "csv",
                            "selector": {"path": format!("f{file}.csv")}});
                        let answer = daemon.post("/v1/exports", Some(alice), &request);
                        assert!(
                            answer.status == 202 || answer.status == 200,
                            "{}: {}",
                            answer.status,
                            answer.text()
                        );
                        ids.push((id_of(&answer.json()), file));
                    }
                    ids
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(submitted.len(), 200);
    let expected: HashMap<String, usize> = submitted.iter().cloned().collect();
    assert_eq!(expected.len(), 200, "200 distinct ids");

    let refs: Vec<&Daemon> = daemons.iter().collect();
    cluster.db.wait_until_idle(Duration::from_secs(180), &refs);

    // Every export completed, with the hash of its own input.
    let rows = cluster.db.rows(
        "SELECT id, status, storage_key, sha256, CAST(attempts AS TEXT) FROM exports ORDER BY id",
    );
    assert_eq!(rows.len(), 200);
    let mut keys = BTreeSet::new();
    let mut retried = 0;
    for row in &rows {
        let id = row[0].clone().unwrap();
        assert_eq!(row[1].as_deref(), Some("completed"), "{row:?}");
        let file = expected[&id];
        assert_eq!(
            row[3].as_deref(),
            Some(sha256_hex(&files[file].1).as_str()),
            "{id} holds the bytes of f{file}.csv"
        );
        keys.insert(row[2].clone().unwrap());
        if row[4].as_deref() != Some("1") {
            retried += 1;
        }
    }
    eprintln!("exports that needed more than one attempt: {retried}");

    // One completion each, across all daemons; every daemon did some.
    let mut completions: BTreeMap<String, usize> = BTreeMap::new();
    let mut completed_by: HashMap<String, usize> = HashMap::new();
    for (n, daemon) in daemons.iter().enumerate() {
        let done = transitions(&daemon.log(), "completed");
        eprintln!("daemon {n} completed {} exports", done.len());
        assert!(
            !done.is_empty(),
            "daemon {n} completed nothing\n{}",
            cluster.logs()
        );
        for (id, times) in done {
            *completions.entry(id.clone()).or_insert(0) += times;
            completed_by.insert(id, n);
        }
    }
    assert_eq!(
        completions.len(),
        200,
        "every export's completion is logged"
    );
    assert!(
        completions.values().all(|&times| times == 1),
        "completed more than once: {:?}",
        completions
            .iter()
            .filter(|(_, &t)| t != 1)
            .collect::<Vec<_>>()
    );

    // One file each: the bucket holds exactly the recorded keys.
    assert_eq!(keys.len(), 200, "200 distinct storage keys");
    assert_eq!(cluster.stored_keys(), keys, "no file lost, none extra");

    // Downloads served by daemons that did not write the file.
    for (id, file) in submitted.iter().take(12) {
        let writer = completed_by[id];
        let reader = &daemons[(writer + 1) % 3];
        let whole = reader.get(&format!("/v1/exports/{id}/download"), Some(&alice));
        assert_eq!(whole.status, 200, "{}", whole.text());
        assert_eq!(
            whole.body,
            files[*file].1,
            "{id} through daemon {}",
            (writer + 1) % 3
        );
        let ranged = reader.request(
            "GET",
            &format!("/v1/exports/{id}/download"),
            Some(&alice),
            &[("Range", "bytes=5-24")],
            None,
        );
        assert_eq!(ranged.status, 206);
        assert_eq!(ranged.body, &files[*file].1[5..25]);

        // A link signed by one daemon works on another (shared SIGNING_KEY).
        let signer = &daemons[(writer + 2) % 3];
        let link = signer.post(
            &format!("/v1/exports/{id}/link"),
            Some(&alice),
            &json!({"ttl": 60}),
        );
        assert_eq!(link.status, 200);
        let url = link.json()["url"].as_str().unwrap().to_owned();
        let path = &url[url.find("/v1/").unwrap()..];
        let linked = reader.get(path, None);
        assert_eq!(linked.status, 200);
        assert_eq!(linked.body, files[*file].1);
    }
    let counted = cluster.db.rows(&format!(
        "SELECT CAST(download_count AS TEXT) FROM exports WHERE id = '{}'",
        submitted[0].0
    ));
    assert_eq!(
        counted[0][0].as_deref(),
        Some("3"),
        "each download counted once"
    );
}

#[test]
fn kill_dash_nine_of_a_daemon_holding_leases_loses_nothing() {
    let mut text = String::from("id,name,note\n");
    for n in 0..300_000 {
        text.push_str(&format!("{n},person {n},a note that takes some room {n}\n"));
    }
    let big = text.into_bytes();
    let files = vec![("big.csv".to_owned(), big.clone())];
    let mut cluster = Cluster::start(3, &files, &[("EXPORT_HOST_LEASE_SECONDS", "3")]);
    let alice = cluster.daemons[0].token("alice", false);
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "big.csv"}});
    let ids: Vec<String> = (0..8)
        .map(|_| {
            id_of(
                &cluster.daemons[0]
                    .post("/v1/exports", Some(&alice), &request)
                    .json(),
            )
        })
        .collect();

    // Kill daemon 0 while it holds at least one lease.
    let owner = format!("%-{}-%", cluster.daemons[0].pid());
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.db.count(&format!(
        "status = 'processing' AND lease_owner LIKE '{owner}'"
    )) == 0
    {
        assert!(
            Instant::now() < deadline,
            "daemon 0 never held a lease\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = cluster.daemons[0].stop_with("KILL", Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");
    // What it held when it died (a dead process changes nothing).
    let held: BTreeSet<String> = cluster
        .db
        .rows(&format!(
            "SELECT id FROM exports WHERE status = 'processing' AND lease_owner LIKE '{owner}'"
        ))
        .into_iter()
        .map(|row| row[0].clone().unwrap())
        .collect();
    assert!(!held.is_empty());
    eprintln!("daemon 0 died holding {} leases", held.len());

    let survivors: Vec<&Daemon> = cluster.daemons[1..].iter().collect();
    cluster
        .db
        .wait_until_idle(Duration::from_secs(240), &survivors);
    let rows = cluster
        .db
        .rows("SELECT id, status, storage_key, CAST(attempts AS TEXT), CAST(row_count AS TEXT) FROM exports");
    assert_eq!(rows.len(), ids.len());
    let mut keys = BTreeSet::new();
    for row in &rows {
        let id = row[0].clone().unwrap();
        assert_eq!(
            row[1].as_deref(),
            Some("completed"),
            "{row:?}\n{}",
            cluster.logs()
        );
        keys.insert(row[2].clone().unwrap());
        assert_eq!(row[4].as_deref(), Some("300000"), "{row:?}");
        if held.contains(&id) {
            let attempts: u32 = row[3].as_deref().unwrap().parse().unwrap();
            assert!(attempts >= 2, "{id} was retried after the kill: {row:?}");
        }
    }
    // The exports daemon 0 held were finished by the others.
    let mut finished_by_survivors = BTreeSet::new();
    for daemon in &survivors {
        finished_by_survivors.extend(transitions(&daemon.log(), "completed").into_keys());
    }
    for id in &held {
        assert!(
            finished_by_survivors.contains(id),
            "{id} finished by a survivor"
        );
    }
    // Every recorded file is in the bucket; anything else is the first
    // attempt of an export daemon 0 held (sent just before the kill, never
    // recorded; the orphan sweep removes it once older than the lease).
    let stored = cluster.stored_keys();
    assert!(keys.is_subset(&stored), "{keys:?} in {stored:?}");
    for extra in stored.difference(&keys) {
        assert!(
            held.iter().any(|id| extra.ends_with(&format!("/{id}.csv"))),
            "unexpected object {extra}"
        );
    }
    // A retried export's file is whole, served by a survivor.
    let retried = held.iter().next().unwrap();
    let download = cluster.daemons[1].get(&format!("/v1/exports/{retried}/download"), Some(&alice));
    assert_eq!(download.status, 200);
    assert!(
        download.body == big,
        "the retried export holds the whole input"
    );
}

#[test]
fn downloads_redirect_to_a_presigned_url_when_asked() {
    let files = vec![("people.csv".to_owned(), b"id,name\n1,ann\n2,bo\n".to_vec())];
    let cluster = Cluster::start(1, &files, &[("EXPORT_HOST_DOWNLOAD_REDIRECT", "on")]);
    let daemon = &cluster.daemons[0];
    let alice = daemon.token("alice", false);
    let bob = daemon.token("bob", false);
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"},
        "options": {"file_name": "people.csv"}});
    let answer = daemon.post("/v1/exports?wait=60", Some(&alice), &request);
    let id = id_of(&answer.json_with_status(200));

    let redirect = daemon.get(&format!("/v1/exports/{id}/download"), Some(&alice));
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    assert!(redirect.body.is_empty(), "the daemon serves no bytes");
    let location = redirect.header("location").expect("a Location").to_owned();
    assert!(location.starts_with(&s3_endpoint()), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    // The bucket serves the file, with its name and type.
    let fetched = daemon.get(&location, None);
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, b"id,name\n1,ann\n2,bo\n");
    // Its name and type are in the signed query for the bucket to answer with.
    assert!(
        location
            .contains("response-content-disposition=attachment%3B%20filename%3D%22people.csv%22"),
        "{location}"
    );
    assert!(
        location.contains("response-content-type=text%2Fcsv"),
        "{location}"
    );
    let ranged = daemon.request("GET", &location, None, &[("Range", "bytes=3-6")], None);
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, b"name");

    // Still per user, and counted.
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{id}/download"), Some(&bob))
            .status,
        404
    );
    let record = daemon
        .get(&format!("/v1/exports/{id}"), Some(&alice))
        .json();
    assert_eq!(record["download_count"], 1, "{record}");
}

both_backends!(
    a_late_worker_cannot_overwrite_a_taken_over_export,
    a_taken_over_worker_finishing_first_changes_nothing,
);

/// Worker A claims; its lease runs out and the export is requeued and
/// claimed by B (attempt 2); A's run finishes, then B's. A's completion is
/// refused, its file discarded; B's result stands.
async fn a_taken_over_worker_finishing_first_changes_nothing(records: Records) {
    let h = Harness::new(records, takeover_settings());
    let bytes = h.put_rows("rows.csv", 2000);
    let (first, second) = claimed_by_a_then_taken_over_by_b(&h, "rows.csv").await;
    let id = first.id.clone();

    // A heartbeat of the first worker is refused: its lease is gone.
    let until = h.clock.now() + chrono::TimeDelta::seconds(60);
    let beat = h
        .records
        .heartbeat(&id, "daemon-a-1", until, h.clock.now())
        .await;
    assert!(
        matches!(beat, Err(RecordError::LeaseLost { .. })),
        "{beat:?}"
    );

    let late = h.service.run_claimed(first, "daemon-a-1").await.unwrap();
    assert_eq!(late.status, Status::Processing, "B still holds it");
    assert_eq!(late.lease_owner.as_deref(), Some("daemon-b-1"));
    assert!(late.storage_key.is_none(), "A recorded nothing");
    assert_eq!(
        h.stored_files(),
        Vec::<String>::new(),
        "A's file is discarded"
    );

    let done = h.service.run_claimed(second, "daemon-b-1").await.unwrap();
    assert_eq!(done.status, Status::Completed, "{:?}", done.error);
    assert_eq!(done.attempts, 2);
    assert_eq!(done.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
    let key = done.storage_key.clone().unwrap();
    assert_eq!(h.stored_files(), vec![key.clone()], "one file: B's");
    assert_eq!(h.stored_bytes(&key).await, bytes);
}

/// As above, but B finishes first and A reports late: A's completion is
/// refused and B's file and record are untouched.
async fn a_late_worker_cannot_overwrite_a_taken_over_export(records: Records) {
    let h = Harness::new(records, takeover_settings());
    let bytes = h.put_rows("rows.csv", 2000);
    let (first, second) = claimed_by_a_then_taken_over_by_b(&h, "rows.csv").await;
    let id = first.id.clone();

    let done = h.service.run_claimed(second, "daemon-b-1").await.unwrap();
    assert_eq!(done.status, Status::Completed, "{:?}", done.error);
    let key = done.storage_key.clone().unwrap();

    let late = h.service.run_claimed(first, "daemon-a-1").await.unwrap();
    assert_eq!(late.status, Status::Completed);
    assert_eq!(
        late.storage_key.as_deref(),
        Some(key.as_str()),
        "B's file stands"
    );
    assert_eq!(
        late.completed_at, done.completed_at,
        "B's completion stands"
    );
    assert_eq!(late.sha256, done.sha256);
    assert_eq!(h.stored_files(), vec![key.clone()], "A's file is discarded");
    assert_eq!(h.stored_bytes(&key).await, bytes);
    // And a late failure report of A changes nothing either.
    let fail = h
        .records
        .fail(&id, Some("daemon-a-1"), "late", h.clock.now())
        .await;
    assert!(fail.is_err(), "{fail:?}");
    let record = h.records.get(&Scope::Admin, &id).await.unwrap();
    assert_eq!(record.status, Status::Completed);
}

fn takeover_settings() -> ServiceSettings {
    ServiceSettings {
        max_rows: 1_000_000,
        max_file_size_mb: 100,
        ..test_settings()
    }
}

/// Creates alice's export of `path`; worker A (`daemon-a-1`) claims it,
/// its lease runs out, the export is requeued as any daemon's sweep would,
/// and worker B (`daemon-b-1`) claims it (attempt 2). Returns A's claim and
/// B's; neither has run.
async fn claimed_by_a_then_taken_over_by_b(
    h: &Harness,
    path: &str,
) -> (ExportRecord, ExportRecord) {
    let created = h.create("alice", path, json!({})).await;
    let lease = h.service.settings().lease;
    let first = h
        .records
        .claim(&created.id, "daemon-a-1", lease, h.clock.now())
        .await
        .unwrap()
        .expect("pending");
    h.clock
        .advance(chrono::TimeDelta::from_std(lease).unwrap() + chrono::TimeDelta::seconds(1));
    let (requeued, failed) = h
        .service
        .requeue_expired_leases(h.clock.now())
        .await
        .unwrap();
    assert_eq!((requeued, failed), (1, 0));
    let second = h
        .records
        .claim(&created.id, "daemon-b-1", lease, h.clock.now())
        .await
        .unwrap()
        .expect("requeued");
    assert_eq!(second.attempts, 2);
    (first, second)
}
