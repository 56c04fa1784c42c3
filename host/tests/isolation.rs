//! `isolation = "process"` through the real `export-host` binary: the same
//! bytes as in-process, and every way a plugin can misbehave (panic, error,
//! abort, segfault, exit, hang, memory, printing) fails only its export, with
//! the plugin and the fault named, no file left behind, and the next export
//! fine. The daemon keeps serving, and quarantines a plugin that keeps crashing.

mod common;
mod server_common;

use common::*;
use serde_json::{json, Value};
use server_common::Daemon;
use std::process::Output;

const FAULTY_LIB: &str = "libexport_test_faulty.so";

/// The faulty plugin, isolated with a 2 s timeout and a 256 MiB memory cap.
fn faulty_isolated() -> Entry {
    Entry::new("faulty", FAULTY_LIB)
        .set("isolation", "process")
        .set("timeout", "2s")
        .set("memory_limit", "256MiB")
}

/// csv (in-process) and the isolated faulty plugin.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.register(&[sandbox.csv(), faulty_isolated()]);
    sandbox.put("small.csv", "id\n007\n");
    sandbox
}

/// Exports with the faulty loader (misbehaving per `selector`) as csv into `out.csv`.
fn faulty_loader(sandbox: &Sandbox, selector: Value) -> Output {
    sandbox.export(
        "faulty/faulty",
        "csv/csv",
        &selector,
        &json!({}),
        &["-o", "out.csv"],
    )
}

/// Exports small.csv with the faulty formatter (misbehaving per `options`) into `out.txt`.
fn faulty_formatter(sandbox: &Sandbox, options: Value) -> Output {
    sandbox.export(
        "csv/csv",
        "faulty/faulty",
        &json!({"path": "small.csv"}),
        &options,
        &["-o", "out.txt"],
    )
}

/// Nothing but the sandbox's own files: no output, no temporary file.
fn assert_no_output(sandbox: &Sandbox) {
    assert_eq!(
        sandbox.listing(),
        ["data", "plugins.toml"],
        "a failed export leaves nothing behind"
    );
}

/// After a fault: the same plugin, behaving, and another plugin both work.
fn assert_healthy_after(sandbox: &Sandbox) {
    let output = sandbox.export(
        "faulty/faulty",
        "faulty/faulty",
        &json!({}),
        &json!({}),
        &["-o", "-"],
    );
    assert_eq!(succeeded(&output), b"1\n2\n3\nend\n");
    sandbox.assert_csv_works();
}

fn assert_loader_fault(selector: Value, needles: &[&str]) {
    let sandbox = sandbox();
    let output = faulty_loader(&sandbox, selector);
    refused(&output, Exit::Failure, needles);
    assert_no_output(&sandbox);
    assert_healthy_after(&sandbox);
}

fn assert_formatter_fault(options: Value, needles: &[&str]) {
    let sandbox = sandbox();
    let output = faulty_formatter(&sandbox, options);
    refused(&output, Exit::Failure, needles);
    assert_no_output(&sandbox);
    assert_healthy_after(&sandbox);
}

#[test]
fn isolated_output_is_byte_for_byte_the_in_process_output() {
    let table = hard_table();
    let csv_bytes = write_csv(&table);
    let outputs = |isolation: &str| -> Vec<Vec<u8>> {
        let sandbox = Sandbox::empty();
        sandbox.register(&[
            sandbox.csv().set("isolation", isolation),
            sandbox.json().set("isolation", isolation),
        ]);
        sandbox.put("hard.csv", &csv_bytes);
        let mut outputs = Vec::new();
        for format in ["csv", "jsonl", "json"] {
            outputs.push(sandbox.convert("csv", "hard.csv", format));
        }
        // And back: JSON Lines in, through the isolated jsonl loader.
        let jsonl = outputs[1].clone();
        sandbox.put("hard.jsonl", &jsonl);
        outputs.push(sandbox.convert("jsonl", "hard.jsonl", "csv"));
        // Compressed, to a file.
        let output = sandbox.export(
            "csv",
            "json",
            &json!({"path": "hard.csv"}),
            &json!({"compression": "zstd", "pretty": true}),
            &["-o", "out.json.zst"],
        );
        succeeded(&output);
        outputs.push(std::fs::read(sandbox.path().join("out.json.zst")).expect("the output file"));
        outputs
    };
    let in_process = outputs("in-process");
    let isolated = outputs("process");
    assert_eq!(in_process[0], csv_bytes, "csv -> csv is the input");
    assert_json_rows_match_csv(&read_jsonl(&in_process[1]), &table);
    for (n, (a, b)) in in_process.iter().zip(&isolated).enumerate() {
        assert!(a == b, "output {n} differs between in-process and isolated");
    }
}

#[test]
fn a_plugin_that_segfaults_fails_its_export_with_the_signal_named() {
    assert_loader_fault(
        json!({"fault": "segfault"}),
        &[
            "loader faulty/faulty failed: plugin \"faulty\"",
            "crashed",
            "SIGSEGV",
        ],
    );
    assert_formatter_fault(
        json!({"fault": "segfault"}),
        &[
            "formatter faulty/faulty failed: plugin \"faulty\"",
            "crashed",
            "SIGSEGV",
        ],
    );
}

#[test]
fn a_plugin_that_aborts_fails_its_export_with_the_signal_named() {
    assert_loader_fault(
        json!({"fault": "abort", "at": "open"}),
        &["loader faulty/faulty failed: plugin \"faulty\"", "SIGABRT"],
    );
    assert_formatter_fault(
        json!({"fault": "abort", "at": "finish"}),
        &[
            "formatter faulty/faulty failed: plugin \"faulty\"",
            "SIGABRT",
        ],
    );
}

#[test]
fn a_plugin_that_exits_fails_its_export_with_the_exit_code() {
    assert_loader_fault(
        json!({"fault": "exit", "at": "finish"}),
        &[
            "loader faulty/faulty failed: plugin \"faulty\"",
            "exited with code 7",
        ],
    );
}

#[test]
fn a_plugin_that_hangs_is_killed_at_its_timeout() {
    let started = std::time::Instant::now();
    assert_loader_fault(
        json!({"fault": "hang"}),
        &["plugin \"faulty\" ran past its timeout of 2s"],
    );
    assert_formatter_fault(
        json!({"fault": "hang"}),
        &["plugin \"faulty\" ran past its timeout of 2s"],
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "each hang ends at its 2 s timeout"
    );
}

#[test]
fn a_plugin_that_exhausts_memory_stops_at_its_memory_limit() {
    assert_loader_fault(
        json!({"fault": "oom"}),
        &[
            "loader faulty/faulty failed: plugin \"faulty\" ran out of memory",
            "memory_limit of 256.0 MiB",
        ],
    );
    assert_formatter_fault(
        json!({"fault": "oom", "at": "open"}),
        &[
            "formatter faulty/faulty failed: plugin \"faulty\"",
            "memory_limit",
        ],
    );
}

#[test]
fn a_plugin_that_panics_or_fails_in_a_worker_reports_it_like_in_process() {
    assert_loader_fault(
        json!({"fault": "panic"}),
        &[
            "loader faulty/faulty failed",
            "faulty plugin panics at next, as asked",
        ],
    );
    assert_loader_fault(
        json!({"fault": "error"}),
        &[
            "loader faulty/faulty failed",
            "faulty plugin fails at next, as asked",
        ],
    );
    assert_formatter_fault(
        json!({"fault": "panic", "at": "finish"}),
        &[
            "formatter faulty/faulty failed",
            "faulty plugin panics at finish, as asked",
        ],
    );
}

#[test]
fn in_process_panics_and_errors_are_contained_by_the_sdk() {
    let sandbox = Sandbox::empty();
    sandbox.register(&[sandbox.csv(), Entry::new("faulty", FAULTY_LIB)]);
    sandbox.put("small.csv", "id\n007\n");
    for (fault, message) in [
        ("panic", "faulty plugin panics at next, as asked"),
        ("error", "faulty plugin fails at next, as asked"),
    ] {
        let output = faulty_loader(&sandbox, json!({"fault": fault}));
        refused(
            &output,
            Exit::Failure,
            &["loader faulty/faulty failed", message],
        );
        let output = faulty_formatter(&sandbox, json!({"fault": fault}));
        refused(
            &output,
            Exit::Failure,
            &[
                "formatter faulty/faulty failed",
                message.replace("next", "write").as_str(),
            ],
        );
        assert_no_output(&sandbox);
    }
    assert_healthy_after(&sandbox);
}

#[test]
fn what_an_isolated_plugin_prints_goes_to_the_log_never_into_the_output() {
    let sandbox = sandbox();
    for (loader, format, selector, options) in [
        (
            "faulty/faulty",
            "csv/csv",
            json!({"fault": "stdout"}),
            json!({}),
        ),
        (
            "faulty/faulty",
            "faulty/faulty",
            json!({}),
            json!({"fault": "stdout"}),
        ),
    ] {
        let output = sandbox.export(loader, format, &selector, &options, &["-o", "-"]);
        let stdout = succeeded(&output);
        let expected: &[u8] = if format == "csv/csv" {
            b"n\n1\n2\n3\n"
        } else {
            b"1\n2\n3\nend\n"
        };
        assert_eq!(stdout, expected, "the output is only the export");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("faulty plugin noise on stdout 199")
                && stderr.contains("faulty plugin noise on stderr"),
            "the plugin's output is in the host log:\n{stderr}"
        );
    }
}

#[test]
fn the_worker_runs_the_trust_checks_before_loading() {
    let sandbox = Sandbox::empty();
    let copy = sandbox.copy_in(&library(FAULTY_LIB), "libfaulty.so");
    let writable = sandbox.copy_in(&library(FAULTY_LIB), "libwritable.so");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    sandbox.register(&[
        Entry::new("pinned", &copy)
            .set("isolation", "process")
            .set("sha256", "0".repeat(64)),
        Entry::new("writable", &writable).set("isolation", "process"),
        Entry::new("missing", sandbox.path().join("nothing.so")).set("isolation", "process"),
        Entry::new("good", &copy).set("isolation", "process"),
    ]);
    let listed = sandbox.listed();
    let find = |name: &str| -> Value {
        listed
            .iter()
            .find(|p| p["plugin"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not listed: {listed:?}"))
    };
    let text = |name: &str| find(name).to_string();
    assert!(text("pinned").contains("SHA-256"), "{}", text("pinned"));
    assert!(
        text("writable").contains("chmod go-w"),
        "{}",
        text("writable")
    );
    assert!(
        text("missing").contains("does not exist"),
        "{}",
        text("missing")
    );
    assert_eq!(find("good")["status"], "loaded", "{}", text("good"));
    assert_eq!(find("good")["isolation"], "process");
}

#[test]
fn the_isolated_plugin_runs_in_another_process() {
    let sandbox = sandbox();
    let output = sandbox.export(
        "faulty/whoami",
        "csv/csv",
        &json!({}),
        &json!({}),
        &["-o", "-"],
    );
    let table = read_csv(&succeeded(&output));
    let pid: u32 = table.rows[0][0].parse().expect("a pid");
    assert_ne!(pid, 0);
    // The export-host process that ran the export has exited; its worker
    // was a different process, so it died with it.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| !c.contains("__plugin-worker"))
                .unwrap_or(true),
        "worker {pid} outlived its host"
    );
}

// ---------------------------------------------------------------------------
// The daemon

fn daemon_sandbox(extra: &[(&str, toml::Value)]) -> Sandbox {
    let sandbox = Sandbox::empty();
    let mut faulty = faulty_isolated();
    for (key, value) in extra {
        faulty = faulty.set(key, value.clone());
    }
    sandbox.register(&[sandbox.csv(), faulty]);
    sandbox.put("small.csv", "id\n007\n");
    sandbox
}

fn export(daemon: &Daemon, token: &str, request: Value) -> Value {
    let answer = daemon.post("/v1/exports?wait=30", Some(token), &request);
    assert!(
        answer.status == 200 || answer.status == 202,
        "{} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let record = answer.json();
    let id = record["id"].as_str().expect("an id").to_owned();
    daemon.wait_until_done(&id, token)
}

fn segfault_request() -> Value {
    json!({"loader": "faulty/faulty", "format": "csv/csv", "selector": {"fault": "segfault"}})
}

fn healthy_requests() -> [Value; 2] {
    [
        json!({"loader": "faulty/faulty", "format": "faulty/faulty", "selector": {}}),
        json!({"loader": "csv", "format": "csv", "selector": {"path": "small.csv"}}),
    ]
}

fn faulty_listing(daemon: &Daemon, token: &str) -> Value {
    let plugins = daemon.get("/v1/plugins", Some(token)).json();
    plugins["plugins"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "faulty"))
        .cloned()
        .unwrap_or_else(|| panic!("faulty is not listed: {plugins}"))
}

#[test]
fn the_daemon_survives_crashing_plugins_and_keeps_serving() {
    let daemon = Daemon::start(daemon_sandbox(&[]), &[]);
    let token = daemon.token("ada", false);
    for selector in [
        json!({"fault": "segfault"}),
        json!({"fault": "abort", "at": "open"}),
    ] {
        let request = json!({"loader": "faulty/faulty", "format": "csv/csv", "selector": selector});
        let record = export(&daemon, &token, request);
        assert_eq!(record["status"], "failed", "{record}");
        let error = record["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("plugin \"faulty\"") && error.contains("SIG"),
            "{record}"
        );
        for request in healthy_requests() {
            let record = export(&daemon, &token, request);
            assert_eq!(record["status"], "completed", "{record}");
        }
    }
    let listed = faulty_listing(&daemon, &token);
    assert_eq!(listed["status"], "loaded", "{listed}");
    assert_eq!(listed["isolation"], "process");
    assert_eq!(listed["last_fault"]["kind"], "signal", "{listed}");
    assert!(
        listed["last_fault"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("SIGABRT")),
        "{listed}"
    );
    // The storage holds only the completed exports' files.
    let files = walk(&daemon.data_dir.join("files"));
    assert_eq!(files.len(), 4, "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_plugin_that_keeps_crashing_is_quarantined() {
    let daemon = Daemon::start(
        daemon_sandbox(&[
            ("quarantine_after", toml::Value::Integer(2)),
            ("quarantine_window", toml::Value::String("10m".into())),
        ]),
        &[],
    );
    let token = daemon.token("ada", false);
    for _ in 0..2 {
        let record = export(&daemon, &token, segfault_request());
        assert_eq!(record["status"], "failed", "{record}");
    }
    // Even a request that would behave is refused now, with the reason.
    let [faulty_request, csv_request] = healthy_requests();
    let record = export(&daemon, &token, faulty_request);
    assert_eq!(record["status"], "failed", "{record}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("plugin \"faulty\" is quarantined")
            && error.contains("2 times within 10m")
            && error.contains("SIGSEGV"),
        "{record}"
    );
    let listed = faulty_listing(&daemon, &token);
    assert_eq!(listed["status"], "quarantined", "{listed}");
    assert!(listed["quarantined_until"].is_string(), "{listed}");
    assert_eq!(listed["last_fault"]["kind"], "signal", "{listed}");
    // Other plugins are not affected.
    let record = export(&daemon, &token, csv_request);
    assert_eq!(record["status"], "completed", "{record}");
}
