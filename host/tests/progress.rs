//! A running export's progress, through the real daemon: it grows while the
//! export runs (published at most once a second by whichever daemon runs
//! it, read by any daemon on the same database) and ends at the final
//! figures.

mod common;
mod faults_common;
mod server_common;

use faults_common::{gate_sandbox, wait_until, FreshPg};
use serde_json::Value;
use server_common::Daemon;
use std::path::Path;
use std::time::Duration;

fn rows(record: &Value) -> u64 {
    record["progress"]["rows"].as_u64().unwrap_or(0)
}

/// Waits until every daemon in `readers` shows the export processing with
/// more rows than `above`; returns the lowest count seen.
fn grows_past(readers: &[&Daemon], token: &str, id: &str, above: u64) -> u64 {
    let mut seen = u64::MAX;
    for daemon in readers {
        wait_until(Duration::from_secs(20), "progress to grow", || {
            let record = daemon.record(token, id);
            // Until a worker claims it, the export is still pending.
            let status = record["status"].as_str().unwrap_or_default();
            assert!(matches!(status, "pending" | "processing"), "{record}");
            status == "processing" && rows(&record) > above
        });
        let record = daemon.record(token, id);
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
    let id = daemon.start_gate_export(&token, &gate);
    assert!(
        daemon.record(&token, &id)["progress"].is_null()
            || rows(&daemon.record(&token, &id)) < 1000,
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
    let id = a.start_gate_export(&token, &gate);
    let seen = grows_past(&[&a, &b], &token, &id, 0);
    grows_past(&[&b, &a], &token, &id, seen);
    let runner = a.record(&token, &id)["lease_owner"].clone();
    assert!(runner.is_string(), "a daemon holds the export");
    finish(&a, &token, &id, &gate);
    assert_eq!(
        b.record(&token, &id)["progress"],
        a.record(&token, &id)["progress"]
    );
}
