//! A plugin that panics fails the export with the panic's message and exit
//! code 1; it never takes the host down (no abort, no signal).

mod common;

use common::*;
use serde_json::{json, Value};

/// A sandbox whose only plugin is panicky: loader `boom`, formatter `boom`.
fn panicky() -> Sandbox {
    Sandbox::new(&[Entry::new("panicky", PANICKY_LIB)])
}

fn boom(sandbox: &Sandbox, loader_at: &str, format_at: Value) -> std::process::Output {
    sandbox.export(
        "boom",
        "boom",
        &json!({ "at": loader_at }),
        &json!({ "at": format_at }),
        &[],
    )
}

/// The loader panics at `at`: the export fails with exit code 1.
fn assert_loader_panic(at: &str) {
    let output = boom(&panicky(), at, Value::Null);
    refused(
        &output,
        Exit::Failure,
        &[&format!("boom at {at}"), "panicky/boom"],
    );
}

/// The formatter panics at `at`: the export fails with exit code 1.
fn assert_formatter_panic(at: &str) {
    let output = boom(&panicky(), "none", json!(at));
    refused(
        &output,
        Exit::Failure,
        &[&format!("boom at {at}"), "panicky/boom"],
    );
}

#[test]
fn loader_panic_at_open() {
    assert_loader_panic("open");
}

#[test]
fn loader_panic_at_next() {
    assert_loader_panic("next");
}

#[test]
fn loader_panic_at_drop() {
    assert_loader_panic("drop");
}

#[test]
fn formatter_panic_at_start() {
    assert_formatter_panic("start");
}

#[test]
fn formatter_panic_at_write() {
    assert_formatter_panic("write");
}

#[test]
fn formatter_panic_at_finish() {
    assert_formatter_panic("finish");
}

#[test]
fn loader_error_is_an_input_error() {
    let output = boom(&panicky(), "error", Value::Null);
    refused(&output, Exit::Input, &["refused at open, as asked"]);
}

#[test]
fn without_a_panic_the_export_succeeds() {
    let output = boom(&panicky(), "none", json!("none"));
    assert_eq!(succeeded(&output), b"2 rows\nend\n");
}

#[test]
fn panic_while_loading_is_a_load_failure_and_the_others_work() {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("exploding", PANIC_ON_LOAD_LIB),
        Entry::new("panicky", PANICKY_LIB),
    ]);
    let exploding = sandbox.status("exploding");
    assert!(
        exploding.starts_with("failed") && exploding.contains("boom while building the plugin"),
        "{exploding}"
    );
    assert_eq!(sandbox.status("csv"), "loaded");
    assert_eq!(sandbox.status("panicky"), "loaded");

    let log = sandbox.assert_csv_works();
    assert!(
        log.contains("\"exploding\"") && log.contains("boom while building the plugin"),
        "{log}"
    );
    assert_eq!(
        succeeded(&boom(&sandbox, "none", Value::Null)),
        b"2 rows\nend\n"
    );
}
