//! Partial uploads of a daemon killed with SIGKILL: `export-host cleanup`
//! and a restart remove them at once, however young, while the partial
//! file of a live daemon's running export is left alone.

mod common;
mod faults_common;
mod server_common;

use faults_common::{gate_sandbox, partial_uploads, wait_until};
use serde_json::json;
use server_common::Daemon;
use std::path::PathBuf;
use std::time::Duration;

/// Starts two gate exports and waits until both write partial files.
fn two_running_exports(daemon: &Daemon, token: &str, gate: &std::path::Path) -> Vec<PathBuf> {
    let request = json!({"loader": "gate", "format": "csv", "selector": {"until": gate}});
    for _ in 0..2 {
        let answer = daemon.post("/v1/exports", Some(token), &request);
        assert_eq!(
            answer.status,
            202,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    wait_until(Duration::from_secs(30), "two partial uploads", || {
        partial_uploads(&daemon.data_dir).len() >= 2
    });
    partial_uploads(&daemon.data_dir)
}

#[test]
fn cleanup_removes_the_partial_uploads_of_a_killed_daemon_but_not_a_live_ones() {
    let sandbox = gate_sandbox();
    let gate = sandbox.path().join("gate-open");
    let mut daemon = Daemon::start(sandbox, &[("EXPORT_HOST_WORKERS", "2")]);
    let token = daemon.token("ada", false);
    let live = two_running_exports(&daemon, &token, &gate);

    // The daemon is alive and holds its files: cleanup leaves them.
    let cleaned = daemon.cli(&["cleanup"]);
    assert!(
        cleaned.status.success(),
        "{}",
        String::from_utf8_lossy(&cleaned.stderr)
    );
    for file in &live {
        assert!(
            file.exists(),
            "a live upload was removed: {}",
            file.display()
        );
    }

    daemon.stop_with("KILL", Duration::from_secs(10));
    let left = partial_uploads(&daemon.data_dir);
    assert!(
        left.len() >= 2,
        "the kill leaves partial files behind: {left:?}"
    );
    let cleaned = daemon.cli(&["cleanup"]);
    assert!(
        cleaned.status.success(),
        "{}",
        String::from_utf8_lossy(&cleaned.stderr)
    );
    let report = String::from_utf8_lossy(&cleaned.stdout).to_string()
        + &String::from_utf8_lossy(&cleaned.stderr);
    assert_eq!(
        partial_uploads(&daemon.data_dir),
        Vec::<PathBuf>::new(),
        "{report}"
    );
}

#[test]
fn a_restart_removes_the_partial_uploads_of_the_killed_daemon_at_once() {
    let sandbox = gate_sandbox();
    let gate = sandbox.path().join("gate-open");
    let mut daemon = Daemon::start(
        sandbox,
        &[
            ("EXPORT_HOST_WORKERS", "2"),
            ("EXPORT_HOST_LEASE_SECONDS", "2"),
        ],
    );
    let token = daemon.token("ada", false);
    let before = two_running_exports(&daemon, &token, &gate);
    daemon.stop_with("KILL", Duration::from_secs(10));
    daemon.restart();
    for file in &before {
        assert!(!file.exists(), "left behind: {}", file.display());
    }
    // The requeued exports run again and complete once the gate opens.
    std::fs::write(&gate, b"").expect("opening the gate");
    let listed = daemon.get("/v1/exports", Some(&token)).json();
    for item in listed["items"].as_array().expect("items") {
        let id = item["id"].as_str().expect("an id");
        let record = daemon.wait_until_done(id, &token);
        assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());
    }
    wait_until(Duration::from_secs(10), "no partial upload left", || {
        partial_uploads(&daemon.data_dir).is_empty()
    });
}
