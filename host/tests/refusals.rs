//! Bad plugin files and bad requests are refused with a clear message and a
//! clean exit code (1 or 2), never a crash; a bad plugin never stops the
//! others from loading.

mod common;

use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Checks that library `file` is refused with every needle in the message:
/// by `plugins check FILE` (unless `check` is false), and as a plugins.toml
/// entry `bad` next to csv, where the csv export still works and
/// `plugins list` reports `bad` as failed.
fn assert_library_refused(
    sandbox: &Sandbox,
    bad: Entry,
    file: &Path,
    check: bool,
    needles: &[&str],
) {
    if check {
        let output = sandbox.run(&["plugins", "check", file.to_str().unwrap()]);
        refused(&output, Exit::Refused, needles);
    }
    sandbox.register(&[sandbox.csv(), bad]);
    let log = sandbox.assert_csv_works();
    for needle in needles.iter().chain(&["\"bad\""]) {
        assert!(
            log.contains(needle),
            "the load failure is logged with {needle:?}:\n{log}"
        );
    }
    assert_eq!(sandbox.status("csv"), "loaded");
    let bad = sandbox.status("bad");
    assert!(bad.starts_with("failed"), "{bad}");
    for needle in needles {
        assert!(bad.contains(needle), "status {bad:?} lacks {needle:?}");
    }
}

/// A copy of a system shared library that is no plugin.
fn system_library() -> PathBuf {
    let folders = [
        "/usr/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/lib64",
        "/usr/lib",
        "/lib",
    ];
    folders
        .iter()
        .flat_map(|dir| ["libz.so.1", "libm.so.6"].map(|name| Path::new(dir).join(name)))
        .find(|path| path.is_file())
        .expect("a system shared library (libz.so.1 or libm.so.6)")
}

#[test]
fn missing_library_is_refused() {
    let sandbox = Sandbox::empty();
    let file = sandbox.path().join("libexport_missing.so");
    assert_library_refused(
        &sandbox,
        Entry::new("bad", &file),
        &file,
        true,
        &["does not exist"],
    );
}

#[test]
fn text_file_named_so_is_refused() {
    let sandbox = Sandbox::empty();
    let file = sandbox.path().join("x.so");
    std::fs::write(&file, "not a library\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_library_refused(
        &sandbox,
        Entry::new("bad", &file),
        &file,
        true,
        &["not a shared library"],
    );
}

#[test]
fn shared_object_that_is_not_a_plugin_is_refused() {
    let sandbox = Sandbox::empty();
    let file = sandbox.copy_in(&system_library(), "libnot_a_plugin.so");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_library_refused(
        &sandbox,
        Entry::new("bad", &file),
        &file,
        true,
        &["not an export-host plugin"],
    );
}

#[test]
fn plugin_built_against_api_v2_is_refused_naming_both_versions() {
    let sandbox = Sandbox::empty();
    let file = library(API_V2_LIB);
    assert_library_refused(
        &sandbox,
        Entry::new("bad", &file),
        &file,
        true,
        &["2.0.0", "1.3.0"],
    );
}

#[test]
fn checksum_mismatch_shows_expected_and_actual() {
    let sandbox = Sandbox::empty();
    let file = library(CSV_LIB);
    let actual = hex::encode(Sha256::digest(std::fs::read(&file).unwrap()));
    let expected = "0".repeat(64);
    let bad = Entry::new("bad", &file)
        .root(&sandbox.data())
        .set("sha256", expected.as_str());
    assert_library_refused(&sandbox, bad, &file, false, &[&expected, &actual]);

    // The right checksum loads.
    let good = Entry::new("pinned", &file)
        .root(&sandbox.data())
        .set("sha256", actual.as_str());
    sandbox.register(&[good]);
    sandbox.assert_csv_works();
    assert_eq!(sandbox.status("pinned"), "loaded");
}

#[test]
fn world_writable_library_is_refused_with_chmod_advice() {
    let sandbox = Sandbox::empty();
    let file = sandbox.copy_in(&library(CSV_LIB), "libexport_loose.so");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let bad = Entry::new("bad", &file).root(&sandbox.data());
    assert_library_refused(&sandbox, bad, &file, true, &["world-writable", "chmod"]);
}

#[test]
fn load_failure_log_has_no_terminal_colours_when_piped() {
    let sandbox = Sandbox::empty();
    let missing = sandbox.path().join("libexport_missing.so");
    sandbox.register(&[sandbox.csv(), Entry::new("bad", &missing)]);
    let log = sandbox.assert_csv_works();
    assert!(log.contains("does not exist"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "standard error is a pipe, not a terminal, yet the log has ANSI escape codes:\n{log:?}"
    );
}

#[test]
fn unknown_loader_lists_the_available_ones() {
    let sandbox = Sandbox::with_csv();
    let output = sandbox.export("parquet", "csv", &json!({"path": "a.csv"}), &json!({}), &[]);
    refused(
        &output,
        Exit::Input,
        &["unknown loader \"parquet\"", "csv/csv"],
    );
}

#[test]
fn unknown_format_lists_the_available_ones() {
    let sandbox = Sandbox::with_csv();
    let output = sandbox.export("csv", "pdf", &json!({"path": "a.csv"}), &json!({}), &[]);
    refused(&output, Exit::Input, &["unknown format \"pdf\"", "csv/csv"]);
}

#[test]
fn selector_path_outside_the_root_is_refused() {
    let sandbox = Sandbox::with_csv();
    let secret = sandbox.path().join("x.csv");
    std::fs::write(&secret, "secret\nleaked\n").unwrap();
    std::os::unix::fs::symlink(&secret, sandbox.data().join("link.csv")).unwrap();
    std::fs::create_dir(sandbox.data().join("sub")).unwrap();
    for path in [
        "../x.csv",
        "sub/../../x.csv",
        secret.to_str().unwrap(),
        "link.csv",
    ] {
        let output = sandbox.export("csv", "csv", &json!({ "path": path }), &json!({}), &[]);
        refused(&output, Exit::Input, &[path, "inside the configured root"]);
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("leaked"),
            "{path}"
        );
    }
}

#[test]
fn invalid_selector_json_is_refused() {
    let sandbox = Sandbox::with_csv();
    for (selector, needle) in [
        ("{path: a.csv}", "not valid JSON"),
        ("[\"a.csv\"]", "JSON object"),
    ] {
        let output = sandbox.run(&[
            "export",
            "--loader",
            "csv",
            "--format",
            "csv",
            "--selector",
            selector,
        ]);
        refused(&output, Exit::Input, &["--selector", needle]);
    }
}

#[test]
fn selector_and_options_that_fail_the_schema_name_the_field() {
    let sandbox = Sandbox::with_csv();
    sandbox.put("a.csv", "id\n1\n");
    let cases = [
        (json!({"path": 5}), json!({}), "/path"),
        (json!({}), json!({}), "path"),
        (json!({"path": "a.csv", "pth": 1}), json!({}), "pth"),
        (
            json!({"path": "a.csv"}),
            json!({"delimiter": 5}),
            "/delimiter",
        ),
        (json!({"path": "a.csv"}), json!({"heder": false}), "heder"),
    ];
    for (selector, options, field) in cases {
        let output = sandbox.export("csv", "csv", &selector, &options, &[]);
        refused(&output, Exit::Input, &["invalid", field]);
    }
}
