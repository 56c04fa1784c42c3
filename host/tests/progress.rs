//! A running export's progress, through the real daemon: it grows while the
//! export runs (published at most once a second by whichever daemon runs
//! it, read by any daemon on the same database) and ends at the final
//! figures. A loader that tells how far through its input it is (the csv
//! loader) adds a growing `fraction`, which ends at 1; one that cannot tell
//! (the gate fixture) never shows one.

mod common;
mod faults_common;
mod server_common;

use common::{library, Entry, Sandbox};
use faults_common::{progress_rows, wait_until, GatePair, GateRun, GATE_LIB};
use serde_json::Value;
use server_common::Daemon;
use std::path::Path;
use std::time::Duration;

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
            status == "processing" && progress_rows(&record) > above
        });
        let record = daemon.record(token, id);
        assert_eq!(record["status"], "processing", "{record}");
        let progress = &record["progress"];
        assert!(
            progress["elapsed_s"].as_f64().unwrap_or(0.0) > 0.0,
            "{record}"
        );
        assert!(progress["bytes"].as_u64().unwrap_or(0) > 0, "{record}");
        assert!(
            progress.get("fraction").is_none(),
            "the gate loader cannot tell how far it is: {record}"
        );
        seen = seen.min(progress_rows(&record));
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
    assert!(progress.get("fraction").is_none(), "{done}");
}

#[test]
fn progress_grows_while_an_export_runs_and_ends_at_the_final_figures() {
    let GateRun {
        daemon,
        token,
        id,
        gate,
    } = GateRun::start(&[]);
    assert!(
        daemon.record(&token, &id)["progress"].is_null()
            || progress_rows(&daemon.record(&token, &id)) < 1000,
        "no figures before the run has started"
    );
    let first = grows_past(&[&daemon], &token, &id, 0);
    grows_past(&[&daemon], &token, &id, first);
    finish(&daemon, &token, &id, &gate);
}

#[test]
fn every_daemon_on_the_database_sees_the_progress_of_an_export_another_runs() {
    let GatePair {
        run:
            GateRun {
                daemon: a,
                token,
                id,
                gate,
            },
        other: b,
        pg: _pg,
    } = GatePair::start();
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

fn fraction(record: &Value) -> Option<f64> {
    record["progress"]["fraction"].as_f64()
}

/// A sandbox with a csv file of `rows` rows, the csv plugin (isolated in
/// worker processes when `isolated`) and the gate fixture's `paced` formatter.
fn paced_csv_sandbox(rows: usize, isolated: bool) -> Sandbox {
    let sandbox = Sandbox::empty();
    let mut csv = sandbox.csv();
    if isolated {
        csv = csv.set("isolation", "process");
    }
    sandbox.register(&[Entry::new("gate", library(GATE_LIB)), csv]);
    let mut file = String::from("id,text\n");
    for n in 0..rows {
        file.push_str(&format!("{n:05},row number {n:05}\n"));
    }
    sandbox.put("long.csv", file);
    sandbox
}

/// Runs a csv export of one row per batch, written slowly enough (a few
/// seconds in all) that several figures are published while it runs;
/// checks the fraction grows between 0 and 1, then ends at 1.
fn fraction_grows_and_ends_at_one(isolated: bool) {
    let total = 400;
    let daemon = Daemon::start(
        paced_csv_sandbox(total, isolated),
        &[("EXPORT_HOST_BATCH_SIZE", "1")],
    );
    let token = daemon.token("ada", false);
    let request = serde_json::json!({
        "loader": "csv",
        "format": "paced",
        "selector": {"path": "long.csv"},
        "options": {"ms_per_batch": 10},
    });
    let answer = daemon.post("/v1/exports", Some(&token), &request);
    assert_eq!(answer.status, 202, "{}", daemon.log());
    let id = answer.json()["id"].as_str().expect("an id").to_owned();

    // Distinct fractions below 1 seen while the export was processing.
    let mut seen: Vec<f64> = Vec::new();
    wait_until(Duration::from_secs(30), "the fraction to grow", || {
        let record = daemon.record(&token, &id);
        let status = record["status"].as_str().unwrap_or_default();
        assert!(
            matches!(status, "pending" | "processing"),
            "the export ended before the fraction was seen to grow: {seen:?} {record}\n{}",
            daemon.log()
        );
        if let (Some(fraction), "processing") = (fraction(&record), status) {
            assert!(fraction > 0.0 && fraction <= 1.0, "{record}");
            // Published with its rows: a share of the file's bytes, close
            // to the share of its rows (all rows are the same length).
            let share = progress_rows(&record) as f64 / total as f64;
            assert!((fraction - share).abs() < 0.05, "{record}");
            if fraction < 1.0 && seen.last() != Some(&fraction) {
                assert!(
                    seen.last().is_none_or(|last| *last < fraction),
                    "the fraction went back: {seen:?} then {fraction}"
                );
                seen.push(fraction);
            }
        }
        seen.len() >= 2
    });
    let done = daemon.wait_until_done(&id, &token);
    assert_eq!(done["status"], "completed", "{done}\n{}", daemon.log());
    assert_eq!(done["row_count"], total as u64, "{done}");
    assert_eq!(fraction(&done), Some(1.0), "{done}");
}

#[test]
fn a_csv_export_shows_its_fraction_growing_then_one() {
    fraction_grows_and_ends_at_one(false);
}

#[test]
fn an_isolated_csv_loader_tells_its_fraction_through_its_worker() {
    fraction_grows_and_ends_at_one(true);
}
