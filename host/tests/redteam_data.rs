//! The data plane against a plugin that lies: the redteam plugin (written
//! against plugin-api alone) hands over malformed batches, panics, prints,
//! spins and exits, in the CLI and in the daemon, in-process and isolated.
//! Every case fails its export with the plugin named, leaves nothing beside
//! `-o`, exits non-zero, keeps plugin noise out of an export on standard
//! output, and leaves the daemon serving.

mod common;
mod server_common;

use common::*;
use serde_json::{json, Value};
use server_common::Daemon;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const REDTEAM_LIB: &str = "libexport_test_redteam.so";
const ISOLATIONS: [&str; 2] = ["in-process", "process"];
/// Every plugin's timeout here: spinning cases must fail within it.
const TIMEOUT: &str = "2s";

fn redteam(isolation: &str) -> Entry {
    Entry::new("redteam", REDTEAM_LIB)
        .set("isolation", isolation)
        .set("timeout", TIMEOUT)
}

fn sandbox(isolation: &str) -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv().set("isolation", "in-process"),
        redteam(isolation),
    ]);
    sandbox
}

/// Nothing but the sandbox's own files: no output, no temporary file.
fn assert_nothing_left(sandbox: &Sandbox, case: &str) {
    assert_eq!(
        sandbox.listing(),
        ["data", "plugins.toml"],
        "{case}: a failed export leaves nothing beside -o"
    );
}

/// `export-host export` from the redteam loader with selector `loader` into
/// the redteam formatter with options `format`, to `out` (`-`: standard
/// output).
fn redteam_export(sandbox: &Sandbox, loader: &Value, format: &Value, out: &str) -> Output {
    sandbox.export(
        "redteam/redteam",
        "redteam/redteam",
        loader,
        format,
        &["-o", out],
    )
}

/// The redteam loader in `mode` (at `at`) into the redteam formatter in
/// `format_mode`, to `out.txt`; then to standard output.
fn cli_case(isolation: &str, loader: Value, format: Value, needles: &[&str]) {
    let case = format!("{isolation}: loader {loader}, formatter {format}");
    let sandbox = sandbox(isolation);
    let started = Instant::now();
    let output = redteam_export(&sandbox, &loader, &format, "out.txt");
    let stderr = refused(&output, Exit::Failure, needles);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{case}: took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("\"redteam\"") || stderr.contains("redteam/redteam"),
        "{case}: the plugin is named\n{stderr}"
    );
    assert_nothing_left(&sandbox, &case);

    let output = redteam_export(&sandbox, &loader, &format, "-");
    refused(&output, Exit::Failure, needles);
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("redteam noise"),
        "{case}: plugin noise on standard output"
    );
    assert_nothing_left(&sandbox, &case);
}

/// The redteam plugin in `mode` on one side of the export, then on the
/// other: as the loader, then as the formatter of a normal loader.
fn loader_and_formatter_case(isolation: &str, mode: &str, needles: &[&str]) {
    cli_case(isolation, json!({"mode": mode}), json!({}), needles);
    cli_case(
        isolation,
        json!({"mode": "normal"}),
        json!({"mode": mode}),
        needles,
    );
}

fn loader_case(mode: &str, needles: &[&str]) {
    for isolation in ISOLATIONS {
        cli_case(isolation, json!({"mode": mode}), json!({}), needles);
    }
}

#[test]
fn a_batch_lying_about_its_length_fails_naming_plugin_and_column() {
    loader_case(
        "lying_length",
        &[
            "loader redteam/redteam failed",
            "column \"n\"",
            "1000000 rows",
        ],
    );
}

#[test]
fn string_offsets_past_their_buffer_fail_naming_the_column() {
    loader_case(
        "offsets_past_buffer",
        &[
            "loader redteam/redteam failed",
            "malformed batch",
            "column \"s\"",
        ],
    );
}

#[test]
fn invalid_utf8_fails_naming_the_column() {
    loader_case(
        "invalid_utf8",
        &["loader redteam/redteam failed", "column \"s\"", "UTF8"],
    );
}

#[test]
fn a_panicking_plugin_fails_its_export() {
    loader_case("panic", &["loader redteam/redteam failed", "panicked"]);
    for isolation in ISOLATIONS {
        cli_case(
            isolation,
            json!({"mode": "normal"}),
            json!({"mode": "panic"}),
            &["formatter redteam/redteam failed", "panicked"],
        );
    }
}

#[test]
fn a_plugin_calling_exit_mid_stream_makes_the_export_fail_naming_it() {
    for isolation in ISOLATIONS {
        let needle = match isolation {
            "in-process" => "plugin \"redteam\" ended the process (it called exit)",
            _ => "plugin \"redteam\" crashed",
        };
        loader_and_formatter_case(isolation, "exit0_midstream", &[needle]);
    }
}

#[test]
fn a_spinning_plugin_fails_on_time() {
    for isolation in ISOLATIONS {
        let needle = "plugin \"redteam\" ran past its timeout of 2s";
        loader_and_formatter_case(isolation, "spin", &[needle]);
        cli_case(
            isolation,
            json!({"mode": "spin", "at": "open"}),
            json!({}),
            &[needle],
        );
    }
}

#[test]
fn plugin_prints_never_reach_an_export_on_standard_output() {
    for isolation in ISOLATIONS {
        let sandbox = sandbox(isolation);
        for (loader, format) in [
            (json!({"mode": "print_stdout"}), json!({})),
            (json!({"mode": "print_stdout", "at": "open"}), json!({})),
            (json!({"mode": "normal"}), json!({"mode": "print_stdout"})),
            (
                json!({"mode": "normal"}),
                json!({"mode": "print_stdout", "at": "open"}),
            ),
        ] {
            let output = redteam_export(&sandbox, &loader, &format, "-");
            assert_eq!(
                String::from_utf8_lossy(&succeeded(&output)),
                "1,one\n2,two\n3,three\n",
                "{isolation}: the export is the data alone ({loader}, {format})"
            );
            assert!(
                String::from_utf8_lossy(&output.stderr).contains("redteam noise"),
                "{isolation}: the noise went to standard error"
            );
        }
    }
}

#[test]
fn a_killed_export_leaves_nothing_behind() {
    for isolation in ISOLATIONS {
        let sandbox = Sandbox::empty();
        // No timeout: the export spins until killed.
        sandbox.register(&[Entry::new("redteam", REDTEAM_LIB).set("isolation", isolation)]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_export-host"))
            .arg("--plugins")
            .arg(sandbox.plugins_toml())
            .args([
                "export",
                "--loader",
                "redteam/redteam",
                "--format",
                "redteam/redteam",
                "--selector",
                r#"{"mode": "spin"}"#,
                "-o",
                "out.txt",
            ])
            .current_dir(sandbox.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting export-host");
        // Past the first batch, which the formatter has already written.
        std::thread::sleep(Duration::from_millis(1500));
        child.kill().expect("killing the export");
        let status = child.wait().expect("waiting for the export");
        assert_eq!(status.signal(), Some(9));
        // An isolated worker may take a moment to notice its parent is gone.
        std::thread::sleep(Duration::from_millis(200));
        assert_nothing_left(&sandbox, isolation);
    }
}

#[test]
fn a_complete_export_replaces_the_file_at_its_path() {
    let sandbox = sandbox("in-process");
    std::fs::write(sandbox.path().join("out.txt"), "old contents\n").expect("writing");
    let output = redteam_export(&sandbox, &json!({"mode": "normal"}), &json!({}), "out.txt");
    succeeded(&output);
    assert_eq!(
        std::fs::read_to_string(sandbox.path().join("out.txt")).expect("the output"),
        "1,one\n2,two\n3,three\n"
    );
    assert_eq!(sandbox.listing(), ["data", "out.txt", "plugins.toml"]);
}

// ---------------------------------------------------------------------------
// The daemon

fn daemon(isolation: &str) -> Daemon {
    let sandbox = sandbox(isolation);
    sandbox.put("small.csv", "id\n1\n2\n");
    Daemon::start(sandbox, &[])
}

/// Posts the export `request`, which the daemon must accept; returns its id.
fn post_export(daemon: &Daemon, token: &str, request: &Value) -> String {
    let answer = daemon.post("/v1/exports", Some(token), request);
    assert!(
        answer.status == 201 || answer.status == 202,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["id"].as_str().expect("an id").to_owned()
}

/// Posts a redteam export and waits for its end; returns the record.
fn daemon_export(daemon: &Daemon, token: &str, loader: Value, format: Value) -> Value {
    let request = json!({
        "loader": "redteam/redteam",
        "format": "redteam/redteam",
        "selector": loader,
        "options": format,
    });
    let id = post_export(daemon, token, &request);
    daemon.wait_until_done(&id, token)
}

/// Ready, and an export with another plugin completes (an isolated redteam
/// may be quarantined by now, as it should be after its faults).
fn assert_serving(daemon: &Daemon, token: &str) {
    assert_eq!(daemon.get("/readyz", None).status, 200, "{}", daemon.log());
    let request =
        json!({"loader": "csv/csv", "format": "csv/csv", "selector": {"path": "small.csv"}});
    let id = post_export(daemon, token, &request);
    let record = daemon.wait_until_done(&id, token);
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());
    assert_eq!(record["row_count"], 2, "{record}");
}

#[test]
fn the_daemon_fails_each_bad_export_naming_the_plugin_and_keeps_serving() {
    for isolation in ISOLATIONS {
        let daemon = daemon(isolation);
        let token = daemon.token("alice", false);
        let cases = [
            (json!({"mode": "lying_length"}), json!({}), "column \"n\""),
            (
                json!({"mode": "offsets_past_buffer"}),
                json!({}),
                "column \"s\"",
            ),
            (json!({"mode": "invalid_utf8"}), json!({}), "column \"s\""),
            (json!({"mode": "panic"}), json!({}), "panicked"),
            (
                json!({"mode": "normal"}),
                json!({"mode": "panic"}),
                "panicked",
            ),
            (json!({"mode": "spin"}), json!({}), "ran past its timeout"),
            (
                json!({"mode": "normal"}),
                json!({"mode": "spin"}),
                "ran past its timeout",
            ),
            (
                json!({"mode": "spin", "at": "open"}),
                json!({}),
                "ran past its timeout",
            ),
        ];
        for (loader, format, needle) in cases {
            let started = Instant::now();
            let record = daemon_export(&daemon, &token, loader.clone(), format.clone());
            let case = format!("{isolation}: {loader} {format}");
            assert_eq!(record["status"], "failed", "{case}: {record}");
            let error = record["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("redteam"),
                "{case}: the plugin is named: {error}"
            );
            assert!(error.contains(needle), "{case}: {needle:?} in {error}");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{case}: failed on time ({:?})",
                started.elapsed()
            );
            assert!(
                record["row_count"].is_null()
                    || record["row_count"] == 0
                    || record["status"] == "failed"
            );
        }
        // Three spinning exports on two worker slots: each freed its slot.
        assert_serving(&daemon, &token);
        let metrics = String::from_utf8_lossy(&daemon.get("/metrics", None).body).to_string();
        let runaway = metrics
            .lines()
            .find(|line| line.starts_with("export_host_runaway_threads "))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no runaway gauge in\n{metrics}"));
        let ready = daemon.get("/readyz", None).json();
        match isolation {
            "in-process" => {
                assert!(
                    runaway >= 3,
                    "three spinning threads are counted: {runaway}"
                );
                assert_eq!(ready["status"], "degraded", "{ready}");
            }
            _ => {
                assert_eq!(runaway, 0, "isolated workers are killed, not left behind");
                assert_eq!(ready["status"], "ready", "{ready}");
            }
        }
    }
}

#[test]
fn an_in_process_plugin_calling_exit_stops_the_daemon_non_zero_naming_it() {
    let mut daemon = daemon("in-process");
    let token = daemon.token("alice", false);
    let request = json!({
        "loader": "redteam/redteam",
        "format": "redteam/redteam",
        "selector": {"mode": "exit0_midstream"},
    });
    post_export(&daemon, &token, &request);
    let status = daemon
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the daemon kept running\n{}", daemon.log()));
    assert_eq!(
        status.code(),
        Some(1),
        "systemd restarts a non-zero exit\n{}",
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .contains("plugin \"redteam\" ended the process"),
        "{}",
        daemon.log()
    );
}

#[test]
fn an_isolated_plugin_calling_exit_fails_only_its_export() {
    let daemon = daemon("process");
    let token = daemon.token("alice", false);
    for (loader, format) in [
        (json!({"mode": "exit0_midstream"}), json!({})),
        (
            json!({"mode": "normal"}),
            json!({"mode": "exit0_midstream"}),
        ),
    ] {
        let record = daemon_export(&daemon, &token, loader, format);
        assert_eq!(record["status"], "failed", "{record}");
        let error = record["error"].as_str().unwrap_or_default();
        assert!(error.contains("plugin \"redteam\" crashed"), "{error}");
    }
    assert_serving(&daemon, &token);
}

/// A loader's notes reach the record's metadata (and the CLI's standard
/// error) from either side of the process boundary; notes larger than a
/// record keeps fail the export naming the plugin.
#[test]
fn loader_notes_reach_the_record_and_oversized_ones_fail_the_export() {
    for isolation in ISOLATIONS {
        let daemon = daemon(isolation);
        let token = daemon.token("alice", false);
        let record = daemon_export(&daemon, &token, json!({"mode": "notes"}), json!({}));
        assert_eq!(record["status"], "completed", "{isolation}: {record}");
        assert_eq!(
            record["metadata"]["loader"]["notes"],
            json!({"redteam": "noted"}),
            "{isolation}: {record}"
        );
        let record = daemon_export(&daemon, &token, json!({"mode": "huge_notes"}), json!({}));
        assert_eq!(record["status"], "failed", "{isolation}: {record}");
        let error = record["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("redteam") && error.contains("notes") && error.contains("16384"),
            "{isolation}: {error}"
        );
        assert_serving(&daemon, &token);

        let sandbox = sandbox(isolation);
        let output = redteam_export(&sandbox, &json!({"mode": "notes"}), &json!({}), "out.txt");
        succeeded(&output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(r#"the loader notes: {"redteam":"noted"}"#),
            "{isolation}: {stderr}"
        );
    }
}
