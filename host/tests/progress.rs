//! A running export's progress, through the real daemon: it grows while the
//! export runs (published at most once a second by whichever daemon runs
//! it, read by any daemon on the same database) and ends at the final
//! figures.

mod common;
mod faults_common;
mod server_common;

use faults_common::{gate_sandbox, wait_until, FreshPg};
use serde_json::{json, Value};
use server_common::Daemon;
use std::path::Path;
use std::time::Duration;

/// Starts a `gate` export (one row every few ms until `until` exists).
fn start_gate(daemon: &Daemon, token: &str, until: &Path) -> String {
    let request = json!({"loader": "gate", "format": "csv", "selector": {"until": until}});
    let answer = daemon.post("/v1/exports", Some(token), &request);
    assert_eq!(answer.status, 202, "{}", daemon.log());
    answer.json()["id"].as_str().expect("an id").to_owned()
}

fn record(daemon: &Daemon, token: &str, id: &str) -> Value {
    let answer = daemon.get(&format!("/v1/exports/{id}"), Some(token));
    assert_eq!(answer.status, 200, "{}", daemon.log());
    answer.json()
}

fn rows(record: &Value) -> u64 {
    record["progress"]["rows"].as_u64().unwrap_or(0)
}

/// Waits until every daemon in `readers` shows the export processing with
/// more rows than `above`; returns the lowest count seen.
fn grows_past(readers: &[&Daemon], token: &str, id: &str, above: u64) -> u64 {
    let mut seen = u64::MAX;
    for daemon in readers {
        wait_until(Duration::from_secs(20), "progress to grow", || {
            let record = record(daemon, token, id);
            // Until a worker claims it, the export is still pending.
            let status = record["status"].as_str().unwrap_or_default();
            assert!(matches!(status, "pending" | "processing"), "{record}");
            status == "processing" && rows(&record) > above
        });
        let record = record(daemon, token, id);
        assert_eq!(record["status"], "processing", "{record}");
        let progress = &record["progress"];
        assert!(
            progress["elapsed_s"].as_f64().unwrap_or(0.0) > 0.0,
            "{record}"
        );
        assert!(progress["bytes"].as_u64().unwrap_or(0) > 0, "{record}");
        seen = seen.min(rows(&record));
    }
    seen
}

/// Opens the gate and checks the final figures match the completed record.
fn finish(daemon: &Daemon, token: &str, id: &str, gate: &Path) {
    std::fs::write(gate, b"").expect("opening the gate");
    let done = daemon.wait_until_done(id, token);
    assert_eq!(done["status"], "completed", "{done}\n{}", daemon.log());
    let progress = &done["progress"];
    assert_eq!(progress["rows"], done["row_count"], "{done}");
    assert_eq!(
        progress["bytes"], done["metadata"]["formatted_bytes"],
        "{done}"
    );
    assert!(
        progress["rows_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{done}"
    );
}

#[test]
fn progress_grows_while_an_export_runs_and_ends_at_the_final_figures() {
    let sandbox = gate_sandbox();
    let gate = sandbox.path().join("gate-open");
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let id = start_gate(&daemon, &token, &gate);
    assert!(
        record(&daemon, &token, &id)["progress"].is_null()
            || rows(&record(&daemon, &token, &id)) < 1000,
        "no figures before the run has started"
    );
    let first = grows_past(&[&daemon], &token, &id, 0);
    grows_past(&[&daemon], &token, &id, first);
    finish(&daemon, &token, &id, &gate);
}

#[test]
fn every_daemon_on_the_database_sees_the_progress_of_an_export_another_runs() {
    let pg = FreshPg::new();
    let env = [("EXPORT_HOST_DATABASE_URL", pg.url.as_str())];
    let first = gate_sandbox();
    let gate = first.path().join("gate-open");
    let a = Daemon::start(first, &env);
    let b = Daemon::start(gate_sandbox(), &env);
    let token = a.token("ada", false);
    let id = start_gate(&a, &token, &gate);
    let seen = grows_past(&[&a, &b], &token, &id, 0);
    grows_past(&[&b, &a], &token, &id, seen);
    let runner = record(&a, &token, &id)["lease_owner"].clone();
    assert!(runner.is_string(), "a daemon holds the export");
    finish(&a, &token, &id, &gate);
    assert_eq!(
        record(&b, &token, &id)["progress"],
        record(&a, &token, &id)["progress"]
    );
}
