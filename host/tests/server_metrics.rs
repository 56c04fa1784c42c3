//! `GET /metrics` on a running daemon: Prometheus text with exports by
//! status, queue depth, rows/bytes written, downloads.

mod common;
mod server_common;

use common::Sandbox;
use serde_json::json;
use server_common::Daemon;
use std::time::{Duration, Instant};

/// The value of the sample named exactly `name` (with its labels).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
}

#[test]
fn metrics_count_exports_rows_bytes_and_downloads() {
    let sandbox = Sandbox::with_csv_and_json();
    let mut text = String::from("id,name\n");
    for n in 0..500 {
        text.push_str(&format!("{n},person {n}\n"));
    }
    sandbox.put("people.csv", text);
    let daemon = Daemon::start(sandbox, &[]);
    let alice = daemon.token("alice", false);

    // No token needed, like /healthz.
    let empty = daemon.get("/metrics", None);
    assert_eq!(empty.status, 200);
    let empty = String::from_utf8(empty.body).expect("UTF-8");
    assert_eq!(
        sample(&empty, "export_host_exports{status=\"completed\"}"),
        Some(0.0),
        "{empty}"
    );

    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let record = daemon.create_and_wait(&alice, &request);
    let id = record["id"].as_str().expect("an id").to_owned();
    let rows = record["row_count"].as_f64().expect("row_count");
    let bytes = record["size_bytes"].as_f64().expect("size_bytes");
    assert!(rows > 0.0 && bytes > 0.0, "{record}");

    let download = daemon.get(&format!("/v1/exports/{id}/download"), Some(&alice));
    assert_eq!(download.status, 200);

    // The worker counts the export right as it ends; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (answer, text) = loop {
        let answer = daemon.get("/metrics", None);
        assert_eq!(answer.status, 200);
        let text = String::from_utf8(answer.body.clone()).expect("UTF-8");
        if sample(&text, "export_host_rows_written_total").unwrap_or(0.0) > 0.0
            || Instant::now() > deadline
        {
            break (answer, text);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let content_type = answer.header("content-type").expect("a content type");
    assert!(
        content_type.starts_with("application/openmetrics-text")
            || content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(
        text.contains("export_host_exports{status=\"completed\"} 1\n"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "export_host_exports{status=\"pending\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "export_host_queue_depth"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "export_host_exports_finished_total{status=\"completed\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "export_host_rows_written_total"),
        Some(rows),
        "{text}"
    );
    assert_eq!(
        sample(&text, "export_host_bytes_written_total"),
        Some(bytes),
        "{text}"
    );
    assert_eq!(
        sample(&text, "export_host_downloads_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "export_host_export_duration_seconds_count"),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("export_host_export_duration_seconds_bucket{le=\"600.0\"} 1\n"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "export_host_plugin_load_failures{cause=\"load\"}"),
        Some(0.0),
        "{text}"
    );
}
