//! Database and disk faults against the real daemon: a full disk (a real
//! tmpfs), descriptor exhaustion (a real RLIMIT_NOFILE), a deleted or
//! read-only database file, and a PostgreSQL database that lost its tables. Each asserts the
//! fault is reported (an error answer, a failed export, `/readyz`), and that the daemon recovers by itself once the
//! fault is gone (same process, no restart) where that is possible.

mod common;
mod faults_common;
mod server_common;

use common::Sandbox;
use faults_common::{
    limit_descriptors, metric, open_descriptors, wait_until, Conn, FreshPg, Tmpfs,
};
use serde_json::{json, Value};
use server_common::Daemon;
use std::net::TcpStream;
use std::time::Duration;

fn csv_daemon(extra: &[(&str, &str)]) -> Daemon {
    let sandbox = Sandbox::with_csv();
    sandbox.put("people.csv", "id,name\n1,ann\n2,bo\n");
    Daemon::start(sandbox, extra)
}

fn request() -> Value {
    json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}})
}

/// POSTs and waits for the end: (HTTP status, the record or error body).
fn export(daemon: &Daemon, token: &str) -> (u16, Value) {
    let answer = daemon.post("/v1/exports?wait=30", Some(token), &request());
    (answer.status, answer.json())
}

fn assert_completes(daemon: &Daemon, token: &str) {
    let (status, record) = export(daemon, token);
    assert_eq!(status, 200, "{record}\n{}", daemon.log());
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());
}

fn readyz(daemon: &Daemon) -> (u16, String) {
    let answer = daemon.get("/readyz", None);
    let text = String::from_utf8_lossy(&answer.body).to_string();
    (answer.status, text)
}

#[test]
fn a_full_disk_fails_writes_and_the_next_export_after_freeing_space_completes() {
    let tmpfs = Tmpfs::mount(30);
    let data = tmpfs.path().join("state");
    let daemon = csv_daemon(&[("EXPORT_HOST_DATA_DIR", data.to_str().expect("UTF-8"))]);
    let token = daemon.token("ada", false);
    let pid = daemon.pid();
    assert_completes(&daemon, &token);

    let filler = tmpfs.fill();
    // Readiness tells the truth within its probe cache.
    wait_until(Duration::from_secs(5), "/readyz answers 503", || {
        readyz(&daemon).0 == 503
    });
    let (_, message) = readyz(&daemon);
    assert!(
        message.contains("No space left") || message.contains("full"),
        "{message}"
    );
    // Every attempt fails visibly: refused with 503, or recorded and then
    // failed with a reason; none completes.
    let mut refused = 0;
    for _ in 0..5 {
        let (status, body) = export(&daemon, &token);
        match status {
            503 => {
                refused += 1;
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("database"), "{body}");
            }
            200 => {
                assert_eq!(body["status"], "failed", "{body}");
                assert!(
                    body["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{body}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let metrics = String::from_utf8_lossy(&daemon.get("/metrics", None).body).to_string();
    if refused > 0 {
        assert!(
            metric(&metrics, "export_host_database_write_failures", "") >= 1.0,
            "{metrics}"
        );
    }

    std::fs::remove_file(&filler).expect("freeing the space");
    wait_until(Duration::from_secs(10), "/readyz answers 200 again", || {
        readyz(&daemon).0 == 200
    });
    // No restart: the same process completes exports, lists and reads.
    assert_completes(&daemon, &token);
    assert_completes(&daemon, &token);
    assert_eq!(daemon.get("/v1/exports", Some(&token)).status, 200);
    assert_eq!(daemon.pid(), pid);
    let log = daemon.log();
    assert!(!log.contains("non-zero transaction depth"), "{log}");
}

#[test]
fn running_out_of_descriptors_fails_visibly_and_recovers_when_they_are_back() {
    let daemon = csv_daemon(&[
        // Idle connections stay until the test closes them.
        ("EXPORT_HOST_HEADER_READ_TIMEOUT", "300"),
        ("EXPORT_HOST_MAX_CONNECTIONS", "5000"),
    ]);
    let token = daemon.token("ada", false);
    let pid = daemon.pid();
    assert_completes(&daemon, &token);
    // A connection opened before the fault, to talk through it.
    let mut conn = Conn::open(&daemon.base);
    assert_eq!(conn.request("GET", "/readyz", None, None).0, 200);

    let limit = open_descriptors(pid) + 40;
    limit_descriptors(pid, u32::try_from(limit).expect("a small number"));
    // Idle connections until the daemon has no descriptor left (then the
    // next ones wait in the listen backlog).
    let addr: std::net::SocketAddr = daemon
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let mut hogs = Vec::new();
    while open_descriptors(pid) < limit && hogs.len() < 200 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(stream) => hogs.push(stream),
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_until(
        Duration::from_secs(10),
        "the daemon's descriptors run out",
        || open_descriptors(pid) >= limit - 1,
    );

    let (status, body) = conn.request("GET", "/readyz", None, None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Too many open files"), "{body}");
    let (status, body) = conn.request(
        "POST",
        "/v1/exports?wait=20",
        Some(&token),
        Some(&request().to_string()),
    );
    match status {
        503 => {}
        200 => {
            let record: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(record["status"], "failed", "{record}");
        }
        other => panic!("unexpected {other}: {body}"),
    }
    // A few more wait in the listen backlog: accepting them fails.
    for _ in 0..5 {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            hogs.push(stream);
        }
    }
    wait_until(Duration::from_secs(10), "shed connections counted", || {
        let (_, metrics) = conn.request("GET", "/metrics", None, None);
        metric(
            &metrics,
            "export_host_connections_shed",
            "reason=\"descriptors\"",
        ) >= 1.0
    });

    drop(hogs);
    wait_until(Duration::from_secs(15), "/readyz answers 200 again", || {
        readyz(&daemon).0 == 200
    });
    assert_completes(&daemon, &token);
    assert_eq!(daemon.pid(), pid);
}

#[test]
fn a_deleted_database_file_turns_readyz_to_503_naming_it() {
    let mut daemon = csv_daemon(&[]);
    let token = daemon.token("ada", false);
    assert_completes(&daemon, &token);
    assert_eq!(readyz(&daemon).0, 200);
    for name in ["exports.db", "exports.db-wal", "exports.db-shm"] {
        let _ = std::fs::remove_file(daemon.data_dir.join(name));
    }
    let (status, message) = readyz(&daemon);
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("deleted"), "{message}");
    // A restart (what the watchdog leads systemd to) opens a new database.
    daemon.stop_with("KILL", Duration::from_secs(10));
    daemon.restart();
    assert_eq!(readyz(&daemon).0, 200, "{}", daemon.log());
    let token = daemon.token("ada", false);
    assert_completes(&daemon, &token);
}

#[test]
fn a_postgres_database_that_lost_its_tables_is_named_and_migrate_recovers_it() {
    let pg = FreshPg::new();
    let daemon = csv_daemon(&[("EXPORT_HOST_DATABASE_URL", pg.url.as_str())]);
    let token = daemon.token("ada", false);
    let pid = daemon.pid();
    assert_completes(&daemon, &token);

    // What re-creating the database empty looks like to the daemon.
    faults_common::pg_run(&pg.url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    wait_until(Duration::from_secs(5), "/readyz answers 503", || {
        readyz(&daemon).0 == 503
    });
    let (_, message) = readyz(&daemon);
    assert!(message.contains("export-host migrate"), "{message}");

    let migrated = daemon.cli(&["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    wait_until(Duration::from_secs(10), "/readyz answers 200 again", || {
        readyz(&daemon).0 == 200
    });
    let token = daemon.token("ada", false);
    assert_completes(&daemon, &token);
    assert_eq!(daemon.pid(), pid);
}

#[test]
fn a_read_only_database_stops_start_up_naming_it_and_a_writable_one_starts() {
    let tmpfs = Tmpfs::mount(30);
    let database = format!("sqlite://{}", tmpfs.path().join("exports.db").display());
    let mut daemon = csv_daemon(&[("EXPORT_HOST_DATABASE_URL", &database)]);
    let token = daemon.token("ada", false);
    assert_completes(&daemon, &token);
    daemon.stop_with("TERM", Duration::from_secs(30));

    // A daemon that cannot write its records must not look ready: it stops
    // at once (systemd restarts it) with a line naming the file and the fix.
    tmpfs.set_read_only(true);
    let mut serve = daemon
        .command()
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting export-host serve");
    let mut status = None;
    wait_until(Duration::from_secs(20), "serve exits", || {
        status = serve.try_wait().expect("waiting for serve");
        status.is_some()
    });
    let output = serve.wait_with_output().expect("reading serve's output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("exports.db"), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(stderr.contains("make that folder writable"), "{stderr}");

    // Writable again: the next start serves and the records are all there.
    tmpfs.set_read_only(false);
    daemon.restart();
    assert_eq!(readyz(&daemon).0, 200, "{}", daemon.log());
    assert_completes(&daemon, &token);
}
