//! `export-host plugins list` and `plugins check`.

mod common;

use common::*;

/// csv (loaded), panicky (loaded), an api-v2 library (failed) and a disabled entry.
fn mixed_sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("panicky", PANICKY_LIB),
        Entry::new("future", API_V2_LIB),
        Entry::new("off", CSV_LIB).set("enabled", false),
    ]);
    sandbox
}

fn text(output: &std::process::Output) -> String {
    String::from_utf8(succeeded(output)).expect("UTF-8 output")
}

#[test]
fn list_shows_a_table_of_plugins_with_their_status() {
    let sandbox = mixed_sandbox();
    let table = text(&sandbox.run(&["plugins", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "PLUGIN",
            "VERSION",
            "API",
            "COMPONENTS",
            "ISOLATION",
            "SANDBOX",
            "STATUS"
        ]
    );
    let row = |name: &str| {
        *lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
    };
    let csv = row("csv");
    for needle in [
        "0.1.0",
        "1.3.0",
        "loaders: csv",
        "formats: csv",
        "in-process",
        "loaded",
    ] {
        assert!(csv.contains(needle), "csv row lacks {needle:?}: {csv}");
    }
    assert!(
        row("panicky").contains("loaders: boom; formats: boom"),
        "{table}"
    );
    let future = row("future");
    for needle in ["failed", "2.0.0", "1.3.0"] {
        assert!(
            future.contains(needle),
            "future row lacks {needle:?}: {future}"
        );
    }
    assert!(row("off").contains("disabled"), "{table}");
    // Columns line up: the STATUS column starts at the same offset on every row.
    let at = lines[0].find("STATUS").unwrap();
    for line in &lines[1..] {
        assert_eq!(line.get(at - 2..at), Some("  "), "{table}");
    }
}

#[test]
fn list_json_parses() {
    let sandbox = mixed_sandbox();
    let listed = sandbox.listed();
    let names: Vec<&str> = listed
        .iter()
        .map(|p| p["plugin"].as_str().unwrap())
        .collect();
    for name in ["csv", "panicky", "future", "off"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for plugin in &listed {
        for key in [
            "plugin",
            "version",
            "api_version",
            "components",
            "isolation",
            "status",
        ] {
            assert!(plugin[key].is_string(), "{key} of {plugin}");
        }
    }
    let csv = listed.iter().find(|p| p["plugin"] == "csv").unwrap();
    assert_eq!(csv["status"], "loaded");
    assert_eq!(csv["api_version"], "1.3.0");
    assert_eq!(csv["isolation"], "in-process");
    let future = listed.iter().find(|p| p["plugin"] == "future").unwrap();
    assert!(
        future["status"].as_str().unwrap().starts_with("failed"),
        "{future}"
    );
}

#[test]
fn list_with_an_empty_registry_says_so() {
    let sandbox = Sandbox::new(&[]);
    let table = text(&sandbox.run(&["plugins", "list"]));
    assert!(table.contains("no plugins"), "{table}");
}

#[test]
fn list_without_a_registry_file_is_refused() {
    let sandbox = Sandbox::empty();
    refused(
        &sandbox.run(&["plugins", "list"]),
        Exit::Refused,
        &["plugins.toml", "EXPORT_HOST_PLUGINS"],
    );
}

#[test]
fn check_accepts_the_csv_plugin() {
    let sandbox = Sandbox::empty();
    let csv = library(CSV_LIB);
    let report = text(&sandbox.run(&["plugins", "check", csv.to_str().unwrap()]));
    assert!(report.starts_with("csv "), "{report}");
    assert!(report.contains("checks passed"), "{report}");
    assert!(!report.contains("FAIL"), "{report}");

    let root = sandbox.data();
    let config = serde_json::json!({ "root": root }).to_string();
    let output = sandbox.run(&[
        "plugins",
        "check",
        csv.to_str().unwrap(),
        "--config",
        &config,
    ]);
    assert!(text(&output).contains("ok    config"));
}

#[test]
fn check_refuses_a_config_that_fails_the_schema() {
    let sandbox = Sandbox::empty();
    let csv = library(CSV_LIB);
    let output = sandbox.run(&["plugins", "check", csv.to_str().unwrap(), "--config", "{}"]);
    refused(&output, Exit::Refused, &["checks failed"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("FAIL  config"),
        "the failing check is shown"
    );
}

#[test]
fn check_refuses_api_v2_and_non_plugins() {
    let sandbox = Sandbox::empty();
    let text_so = sandbox.path().join("x.so");
    std::fs::write(&text_so, "text\n").unwrap();
    for (file, needles) in [
        (library(API_V2_LIB), &["2.0.0", "1.3.0"][..]),
        (
            library(PANIC_ON_LOAD_LIB),
            &["boom while building the plugin"][..],
        ),
        (text_so, &["not a shared library"][..]),
    ] {
        let output = sandbox.run(&["plugins", "check", file.to_str().unwrap()]);
        refused(&output, Exit::Refused, needles);
    }
}

#[test]
fn an_export_naming_its_plugins_loads_only_those() {
    let sandbox = mixed_sandbox();
    sandbox.put("people.csv", "id,name\n1,Ada\n");
    let selector = serde_json::json!({ "path": "people.csv" });
    let options = serde_json::json!({});
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();

    // Every plugin is loaded for a bare name, so the broken one is reported.
    let bare = sandbox.export("csv", "csv", &selector, &options, &[]);
    assert_eq!(succeeded(&bare), b"id,name\n1,Ada\n");
    assert!(stderr(&bare).contains("future"), "{}", stderr(&bare));

    // Named plugins only: the broken one is never opened.
    let named = sandbox.export("csv/csv", "csv/csv", &selector, &options, &[]);
    assert_eq!(succeeded(&named), b"id,name\n1,Ada\n");
    assert!(!stderr(&named).contains("future"), "{}", stderr(&named));

    // A plugin plugins.toml does not list is looked for among all of them.
    let unknown = sandbox.export("csv/csv", "nope/csv", &selector, &options, &[]);
    refused(&unknown, Exit::Refused, &["csv/csv"]);
}
