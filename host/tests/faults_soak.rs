//! Soak: twenty rounds of starting the daemon, submitting exports of a
//! generated CSV and killing it with SIGKILL at a random moment, on SQLite
//! and on PostgreSQL. Afterwards every export is `completed` with a stored
//! file whose size and SHA-256 match its record, or `failed` with a reason,
//! and no partial upload remains.

mod common;
mod faults_common;
mod server_common;

use common::Sandbox;
use faults_common::{partial_uploads, wait_until, FreshPg};
use serde_json::{json, Value};
use server_common::Daemon;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const PER_ROUND: usize = 3;

/// About 6 MB of CSV: long enough that a kill often lands mid-export.
fn generated_csv() -> String {
    let mut text = String::from("id,name,amount,note\n");
    for n in 0..120_000u32 {
        let _ = writeln!(
            text,
            "{n},name-{},{}.{:02},note {}",
            n % 977,
            n / 7,
            n % 100,
            n.wrapping_mul(2_654_435_761)
        );
    }
    text
}

fn soak(extra: &[(&str, &str)]) {
    let started = Instant::now();
    let sandbox = Sandbox::with_csv_and_json();
    sandbox.put("big.csv", generated_csv());
    let mut env = vec![
        ("EXPORT_HOST_WORKERS", "2"),
        ("EXPORT_HOST_LEASE_SECONDS", "2"),
        ("EXPORT_HOST_MAX_PER_USER", "1000"),
    ];
    env.extend_from_slice(extra);
    let mut daemon = Daemon::start(sandbox, &env);
    let token = daemon.token("soak", true);
    let requests = [
        json!({"loader": "csv", "format": "csv", "selector": {"path": "big.csv"}}),
        json!({"loader": "csv", "format": "csv", "selector": {"path": "big.csv"},
               "options": {"compression": "gzip"}}),
        json!({"loader": "csv", "format": "jsonl", "selector": {"path": "big.csv"}}),
    ];
    let mut submitted = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            daemon.restart();
        }
        for n in 0..PER_ROUND {
            let request = &requests[(round + n) % requests.len()];
            let answer = daemon.post("/v1/exports", Some(&token), request);
            assert_eq!(
                answer.status,
                202,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            submitted += 1;
        }
        std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 1500));
        daemon.stop_with("KILL", Duration::from_secs(10));
    }
    daemon.restart();

    // Every export ends: the lease sweep requeues (or, out of attempts,
    // fails) what the kills interrupted.
    let mut records: Vec<Value> = Vec::new();
    wait_until(Duration::from_secs(120), "every export ended", || {
        let listed = daemon.get("/v1/exports?limit=500", Some(&token)).json();
        records = listed["items"].as_array().cloned().unwrap_or_default();
        records.len() == submitted
            && records
                .iter()
                .all(|r| r["status"] != "pending" && r["status"] != "processing")
    });
    let mut completed = 0;
    for record in &records {
        let id = record["id"].as_str().expect("an id");
        match record["status"].as_str() {
            Some("completed") => {
                completed += 1;
                let download = daemon.get(&format!("/v1/exports/{id}/download"), Some(&token));
                assert_eq!(download.status, 200, "{record}");
                assert_eq!(
                    Some(download.body.len() as i64),
                    record["size_bytes"].as_i64(),
                    "{record}"
                );
                let digest = hex::encode(Sha256::digest(&download.body));
                assert_eq!(Some(digest.as_str()), record["sha256"].as_str(), "{record}");
            }
            Some("failed") => {
                let error = record["error"].as_str().unwrap_or_default();
                assert!(
                    !error.is_empty(),
                    "a failed export without a reason: {record}"
                );
            }
            other => panic!("export {id} ended {other:?}: {record}"),
        }
    }
    assert!(completed > 0, "nothing completed\n{}", daemon.log());
    wait_until(Duration::from_secs(10), "no partial upload left", || {
        partial_uploads(&daemon.data_dir).is_empty()
    });
    eprintln!(
        "soak: {submitted} exports, {completed} completed, {} failed, in {:?}",
        submitted - completed,
        started.elapsed()
    );
}

#[test]
fn soak_kill_9_during_exports_on_sqlite() {
    soak(&[]);
}

#[test]
fn soak_kill_9_during_exports_on_postgres() {
    let pg = FreshPg::new();
    soak(&[("EXPORT_HOST_DATABASE_URL", pg.url.as_str())]);
}
