//! `export -o FILE` commits the file atomically; `-o -` writes standard output.

mod common;

use common::*;
use serde_json::{json, Value};

const PEOPLE: &str = "id,name\n007,\"Ada\r\nLovelace\"\n2,=SUM(A1)\n";

fn people() -> Table {
    read_csv(PEOPLE.as_bytes())
}

/// A sandbox with csv and panicky, `people.csv`, a CSV whose 11th row is
/// short, and one of about 1.4 MB.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.register(&[sandbox.csv(), Entry::new("panicky", PANICKY_LIB)]);
    sandbox.put("people.csv", PEOPLE);
    let mut ragged = String::from("n,text\n");
    for n in 0..10 {
        ragged.push_str(&format!("{n},row {n}\n"));
    }
    ragged.push_str("short\n");
    sandbox.put("ragged.csv", ragged);
    let big = Table {
        header: vec!["n".into(), "text".into()],
        rows: (0..20).map(|n| vec![n.to_string(), big_cell()]).collect(),
    };
    sandbox.put("big.csv", write_csv(&big));
    sandbox
}

/// An export that fails, and how.
struct Failure {
    loader: &'static str,
    selector: Value,
    format: &'static str,
    options: Value,
    flags: Vec<&'static str>,
    exit: Exit,
    message: &'static str,
}

impl Failure {
    /// Runs it with `-o result.csv` and checks the refusal.
    fn run(&self, sandbox: &Sandbox) {
        let mut flags = self.flags.clone();
        flags.extend(["-o", "result.csv"]);
        let output = sandbox.export(
            self.loader,
            self.format,
            &self.selector,
            &self.options,
            &flags,
        );
        refused(&output, self.exit, &[self.message]);
    }
}

/// Exports failing in the loader mid-stream, at the size cap, and in the
/// formatter's last call.
fn failures() -> Vec<Failure> {
    let csv = |path: &str, flags: Vec<&'static str>, exit, message| Failure {
        loader: "csv",
        selector: json!({"path": path}),
        format: "csv",
        options: json!({}),
        flags,
        exit,
        message,
    };
    vec![
        csv(
            "ragged.csv",
            vec!["--batch-size", "2"],
            Exit::Input,
            "line 12",
        ),
        csv(
            "big.csv",
            vec!["--max-file-size-mb", "1"],
            Exit::Failure,
            "MAX_FILE_SIZE_MB",
        ),
        Failure {
            format: "boom",
            options: json!({"at": "finish"}),
            ..csv("people.csv", vec![], Exit::Failure, "boom at finish")
        },
    ]
}

#[test]
fn output_file_is_written_whole() {
    let sandbox = sandbox();
    std::fs::create_dir(sandbox.path().join("out")).unwrap();
    let output = sandbox.export(
        "csv",
        "csv",
        &json!({"path": "people.csv"}),
        &json!({}),
        &["-o", "out/people.csv"],
    );
    assert!(succeeded(&output).is_empty(), "nothing on standard output");
    let written = std::fs::read(sandbox.path().join("out/people.csv")).unwrap();
    assert_eq!(read_csv(&written), people());
    let left: Vec<_> = std::fs::read_dir(sandbox.path().join("out"))
        .unwrap()
        .collect();
    assert_eq!(
        left.len(),
        1,
        "only the export in the folder, no temporary file"
    );
}

#[test]
fn failed_export_leaves_no_file_and_no_temporary() {
    let sandbox = sandbox();
    let before = sandbox.listing();
    for failure in failures() {
        failure.run(&sandbox);
        let message = failure.message;
        assert_eq!(
            sandbox.listing(),
            before,
            "{message}: no file and no temporary left behind"
        );
    }
}

#[test]
fn failed_export_keeps_the_previous_file() {
    let sandbox = sandbox();
    let previous = sandbox.path().join("result.csv");
    std::fs::write(&previous, "previous\n").unwrap();
    let before = sandbox.listing();
    for failure in failures() {
        failure.run(&sandbox);
        let message = failure.message;
        assert_eq!(
            std::fs::read_to_string(&previous).unwrap(),
            "previous\n",
            "{message}"
        );
        assert_eq!(
            sandbox.listing(),
            before,
            "{message}: no temporary left behind"
        );
    }
}

#[test]
fn dash_writes_standard_output() {
    let sandbox = sandbox();
    let before = sandbox.listing();
    for extra in [&["-o", "-"][..], &[]] {
        let output = sandbox.export(
            "csv",
            "csv",
            &json!({"path": "people.csv"}),
            &json!({}),
            extra,
        );
        assert_eq!(read_csv(&succeeded(&output)), people(), "{extra:?}");
    }
    assert_eq!(sandbox.listing(), before, "no file named '-'");
}

#[test]
fn output_into_a_missing_folder_is_refused() {
    let sandbox = sandbox();
    let output = sandbox.export(
        "csv",
        "csv",
        &json!({"path": "people.csv"}),
        &json!({}),
        &["-o", "nowhere/x.csv"],
    );
    refused(&output, Exit::Refused, &["nowhere"]);
}
