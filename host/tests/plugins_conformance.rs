//! `export-host plugins check`: the conformance battery passes on the
//! first-party plugins, fails (exit 1, the failing rows named) on a plugin
//! that breaks the rules, checks panics only when told how to cause one, and
//! the current host loads and runs a plugin built against the frozen
//! export-plugin-api 1.0.0.

mod common;

use common::*;
use serde_json::{json, Value};

const SLOPPY_LIB: &str = "libexport_test_sloppy.so";
const COMPAT_LIB: &str = "libexport_test_compat_1_0.so";

fn text(output: &std::process::Output) -> String {
    String::from_utf8(succeeded(output)).expect("UTF-8 output")
}

/// `plugins check FILE ARGS --json`, parsed, with the exit status.
fn check_json(sandbox: &Sandbox, file: &str, args: &[&str]) -> (Value, std::process::Output) {
    let library = library(file);
    let mut all = vec!["plugins", "check", library.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let output = sandbox.run(&all);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "--json prints one JSON document: {err}\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (report, output)
}

/// The status of the check named `name` in a `--json` report.
fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {report:#}"))["status"]
        .as_str()
        .unwrap()
}

/// Asserts every check passed, except the `panics contained` rows, which are
/// not applicable without a way to trigger a panic, and the `callers` rows
/// of a plugin older than plugin-api 1.2, which is never handed a caller.
fn assert_all_pass(report: &Value) {
    assert_eq!(report["passed"], true, "{report:#}");
    let knows_callers = !["1.0.", "1.1."]
        .iter()
        .any(|old| report["api_version"].as_str().unwrap().starts_with(old));
    for check in report["checks"].as_array().unwrap() {
        let name = check["check"].as_str().unwrap();
        let expected = if name.ends_with("panics contained")
            || (name.ends_with("callers") && !knows_callers)
        {
            "n/a"
        } else {
            "pass"
        };
        assert_eq!(check["status"], expected, "{check}");
    }
}

const FORMATTER_ROWS: [&str; 8] = [
    "empty stream",
    "one row",
    "nulls in every column type",
    "every promised type",
    "Unicode",
    "1,000,000 rows in flat memory",
    "invalid options refused",
    "panics contained",
];

#[test]
fn the_csv_plugin_passes_the_battery() {
    let sandbox = Sandbox::empty();
    sandbox.put("small.csv", "id,name\n1,ada\n2,grace\n");
    let config = json!({ "root": sandbox.data() }).to_string();
    let args = [
        "--config",
        &config,
        "--selector",
        r#"csv={"path":"small.csv"}"#,
    ];
    let (report, output) = check_json(&sandbox, CSV_LIB, &args);
    succeeded(&output);
    assert_all_pass(&report);
    assert_eq!(report["plugin"], "csv");
    assert_eq!(report["host_api_version"], "1.3.0");
    for row in FORMATTER_ROWS {
        status(&report, &format!("formatter \"csv\": {row}"));
    }
    for row in [
        "invalid selectors refused",
        "streams a selector",
        "panics contained",
    ] {
        status(&report, &format!("loader \"csv\": {row}"));
    }
    for row in [
        "config",
        "entry points answer",
        "config schema",
        "version \"0.1.0\"",
    ] {
        assert_eq!(status(&report, row), "pass", "{row}");
    }

    // The text table says the same.
    let library = library(CSV_LIB);
    let mut all = vec!["plugins", "check", library.to_str().unwrap()];
    all.extend_from_slice(&args);
    let table = text(&sandbox.run(&all));
    assert!(
        table.contains("ok    formatter \"csv\": 1,000,000 rows in flat memory"),
        "{table}"
    );
    assert!(
        table.contains("ok    loader \"csv\": streams a selector"),
        "{table}"
    );
    assert!(table.contains("2 rows in 1 batches"), "{table}");
    assert!(
        table.contains("n/a   formatter \"csv\": panics contained"),
        "{table}"
    );
    assert!(table.contains("checks passed, 2 not applicable"), "{table}");
}

#[test]
fn the_json_plugin_passes_the_battery() {
    let sandbox = Sandbox::empty();
    sandbox.put("small.jsonl", "{\"a\":1}\n{\"a\":\"x\"}\n");
    let config = json!({ "root": sandbox.data() }).to_string();
    let (report, output) = check_json(
        &sandbox,
        JSON_LIB,
        &[
            "--config",
            &config,
            "--selector",
            r#"jsonl={"path":"small.jsonl"}"#,
        ],
    );
    succeeded(&output);
    assert_all_pass(&report);
    for formatter in ["json", "jsonl"] {
        for row in FORMATTER_ROWS {
            status(&report, &format!("formatter \"{formatter}\": {row}"));
        }
    }
}

#[test]
fn loaders_without_a_config_are_not_applicable_not_passed() {
    let sandbox = Sandbox::empty();
    let (report, output) = check_json(&sandbox, CSV_LIB, &[]);
    succeeded(&output);
    assert_eq!(
        status(&report, "loader \"csv\": invalid selectors refused"),
        "n/a"
    );
    assert_eq!(status(&report, "formatter \"csv\": empty stream"), "pass");
    let detail = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "loader \"csv\": invalid selectors refused")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("--config"), "{detail}");
}

#[test]
fn a_plugin_that_breaks_the_rules_fails_with_the_rows_named() {
    let sandbox = Sandbox::empty();
    let library = library(SLOPPY_LIB);
    let output = sandbox.run(&["plugins", "check", library.to_str().unwrap()]);
    let failing = [
        "formatter \"sloppy\": empty stream",
        "formatter \"sloppy\": 1,000,000 rows in flat memory",
        "formatter \"sloppy\": invalid options refused",
        "loader \"sloppy\": invalid selectors refused",
    ];
    let stderr = refused(&output, Exit::Failure, &["4 of", "checks failed"]);
    let table = String::from_utf8_lossy(&output.stdout);
    for row in failing {
        assert!(
            table.contains(&format!("FAIL  {row}")),
            "{row} fails:\n{table}"
        );
        assert!(stderr.contains(row), "stderr names {row}:\n{stderr}");
    }
    // What it does right still passes.
    for row in ["one row", "every promised type", "Unicode"] {
        assert!(
            table.contains(&format!("ok    formatter \"sloppy\": {row}")),
            "{table}"
        );
    }
    assert!(table.contains("bound 64.0 MiB"), "{table}");
    assert!(table.contains("deny_unknown_fields"), "{table}");

    let (report, output) = check_json(&sandbox, SLOPPY_LIB, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["passed"], false);
    for row in failing {
        assert_eq!(status(&report, row), "fail", "{row}");
    }
}

#[test]
fn panics_are_checked_when_the_author_says_how_to_cause_one() {
    let sandbox = Sandbox::empty();
    let (report, _) = check_json(&sandbox, PANICKY_LIB, &[]);
    assert_eq!(
        status(&report, "formatter \"boom\": panics contained"),
        "n/a"
    );
    assert_eq!(status(&report, "loader \"boom\": panics contained"), "n/a");

    let (report, _) = check_json(
        &sandbox,
        PANICKY_LIB,
        &[
            "--panic-options",
            r#"boom={"at":"write"}"#,
            "--panic-selector",
            r#"boom={"at":"next"}"#,
        ],
    );
    assert_eq!(
        status(&report, "formatter \"boom\": panics contained"),
        "pass"
    );
    assert_eq!(status(&report, "loader \"boom\": panics contained"), "pass");
    let details: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().ends_with("panics contained"))
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert!(
        details.iter().any(|d| d.contains("boom at write")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("boom at next")),
        "{details:?}"
    );
    // The fixture writes "N rows" instead of its values: the battery sees it.
    assert_eq!(status(&report, "formatter \"boom\": Unicode"), "fail");

    // A trigger that does not panic is a failure, not a pass.
    let (report, output) = check_json(
        &sandbox,
        PANICKY_LIB,
        &["--panic-options", r#"boom={"at":"none"}"#],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        status(&report, "formatter \"boom\": panics contained"),
        "fail"
    );
}

#[test]
fn bad_check_arguments_are_usage_errors() {
    let sandbox = Sandbox::empty();
    let csv = library(CSV_LIB);
    for (args, needle) in [
        (vec!["--options", "csv"], "NAME=JSON"),
        (
            vec!["--selector", "csv={"],
            "--selector csv is not valid JSON",
        ),
        (vec!["--config", "nope"], "--config is not valid JSON"),
    ] {
        let mut all = vec!["plugins", "check", csv.to_str().unwrap()];
        all.extend(args);
        refused(&sandbox.run(&all), Exit::Input, &[needle]);
    }
}

#[test]
fn a_plugin_built_against_the_frozen_1_0_api_loads_and_exports() {
    let sandbox = Sandbox::empty();
    let (report, output) = check_json(
        &sandbox,
        COMPAT_LIB,
        &["--selector", r#"count={"rows":20000}"#],
    );
    succeeded(&output);
    assert_all_pass(&report);
    assert_eq!(report["api_version"], "1.0.0");

    sandbox.register(&[sandbox.csv(), Entry::new("compat", COMPAT_LIB)]);
    let listed = sandbox.status("compat");
    assert_eq!(listed, "loaded");
    // Its loader feeds a current formatter...
    let output = sandbox.export("count", "csv", &json!({"rows": 3}), &json!({}), &[]);
    assert_eq!(text(&output), "n,word\n1,word 1\n2,word 2\n3,word 3\n");
    // ...and a current loader feeds its formatter.
    sandbox.put("people.csv", "id,name\n1,ada\n2,grace\n");
    let output = sandbox.export(
        "csv",
        "lines",
        &json!({"path": "people.csv"}),
        &json!({}),
        &[],
    );
    assert_eq!(text(&output), "1|ada\n2|grace\n");
}

#[test]
fn another_major_version_is_refused_naming_both() {
    let sandbox = Sandbox::empty();
    let file = library(API_V2_LIB);
    let output = sandbox.run(&["plugins", "check", file.to_str().unwrap()]);
    refused(
        &output,
        Exit::Failure,
        &[
            "built against export-plugin-api 2.0.0",
            "this host speaks export-plugin-api 1.3.0",
            "rebuild the plugin against export-plugin-api 1.x",
        ],
    );
}
