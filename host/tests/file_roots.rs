//! Per-user file roots (`root = ".../{user}"`) and broken CSV files, through
//! the real `export-host export` and the real csv and json libraries: each
//! user reads only their own folder, the operator must say whose, and a
//! truncated file or an oversized field fails with its place named. The
//! daemon does the same over HTTP, refusing escapes at submission (400).

mod common;
mod server_common;

use common::*;
use serde_json::{json, Value};
use server_common::Daemon;
use std::path::{Path, PathBuf};

/// The field cap the sandbox's csv plugin is configured with.
const SMALL_CAP: i64 = 1024;

/// A sandbox whose csv and json plugins read `data/{user}`, with
/// `data/alice/x.csv` and `data/bob/x.csv` (and `x.jsonl`) each naming
/// their owner, and fields of at most [`SMALL_CAP`] bytes.
fn per_user_sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    let root = sandbox.data().join("{user}");
    let mut csv_config = toml::Table::new();
    csv_config.insert("root".into(), path_text(&root).into());
    csv_config.insert("max_field_bytes".into(), SMALL_CAP.into());
    let mut json_config = toml::Table::new();
    json_config.insert("root".into(), path_text(&root).into());
    sandbox.register(&[
        Entry::new("csv", CSV_LIB).set("config", csv_config),
        Entry::new("json", JSON_LIB).set("config", json_config),
    ]);
    for user in ["alice", "bob"] {
        std::fs::create_dir(sandbox.data().join(user)).unwrap();
        sandbox.put(
            &format!("{user}/x.csv"),
            format!("owner,secret\n{user},{user}-secret\n"),
        );
        sandbox.put(
            &format!("{user}/x.jsonl"),
            format!("{{\"owner\":\"{user}\"}}\n"),
        );
    }
    sandbox
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("test paths are UTF-8").to_owned()
}

/// `export --loader csv --format jsonl --selector {"path": PATH}`, plus `extra`.
fn export_csv(sandbox: &Sandbox, path: &str, extra: &[&str]) -> std::process::Output {
    sandbox.export("csv", "jsonl", &json!({ "path": path }), &json!({}), extra)
}

/// The rows of a JSON Lines export.
fn rows(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .expect("UTF-8 output")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn each_user_gets_their_own_file_for_the_same_path() {
    let sandbox = per_user_sandbox();
    for user in ["alice", "bob"] {
        let out = succeeded(&export_csv(&sandbox, "x.csv", &["--user", user]));
        assert_eq!(
            rows(&out),
            [json!({ "owner": user, "secret": format!("{user}-secret") })]
        );
        let out = succeeded(&sandbox.export(
            "jsonl",
            "jsonl",
            &json!({ "path": "x.jsonl" }),
            &json!({}),
            &["--user", user],
        ));
        assert_eq!(rows(&out), [json!({ "owner": user })]);
    }
}

#[test]
fn alice_cannot_reach_bobs_file() {
    let sandbox = per_user_sandbox();
    let bobs: PathBuf = sandbox.data().join("bob/x.csv");
    std::os::unix::fs::symlink(&bobs, sandbox.data().join("alice/link.csv")).unwrap();
    std::os::unix::fs::symlink("../bob", sandbox.data().join("alice/bobdir")).unwrap();
    for path in [
        "../bob/x.csv",
        "./sub/../../bob/x.csv",
        &path_text(&bobs),
        "link.csv",
        "bobdir/x.csv",
    ] {
        let output = export_csv(&sandbox, path, &["--user", "alice"]);
        refused(
            &output,
            Exit::Input,
            &["must be inside the configured root"],
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("bob-secret"),
            "{path}: bob's data leaked"
        );
    }
}

#[test]
fn without_user_the_operator_is_told_to_pass_it() {
    let sandbox = per_user_sandbox();
    let output = export_csv(&sandbox, "x.csv", &[]);
    refused(&output, Exit::Input, &["--user", "{user}"]);
    assert!(output.stdout.is_empty());
}

#[test]
fn a_user_without_a_folder_gets_not_found_and_no_server_path() {
    let sandbox = per_user_sandbox();
    let output = export_csv(&sandbox, "x.csv", &["--user", "carol"]);
    let stderr = refused(&output, Exit::Input, &["\"x.csv\"", "\"carol\""]);
    assert!(
        !stderr.contains(&path_text(sandbox.path())),
        "the message shows a server path: {stderr}"
    );
    // A user id that cannot be a folder name is refused, not resolved.
    let output = export_csv(&sandbox, "x.csv", &["--user", ".."]);
    refused(&output, Exit::Input, &["one path component"]);
}

#[test]
fn a_truncated_csv_fails_naming_the_line_where_the_quote_opened() {
    let sandbox = per_user_sandbox();
    sandbox.put("alice/cut.csv", "a,b\n1,\"unterminated\n2,3\n");
    let output = export_csv(&sandbox, "cut.csv", &["--user", "alice"]);
    refused(
        &output,
        Exit::Input,
        &[
            "\"cut.csv\"",
            "opened on line 2",
            "never closed",
            "field 2 (\"b\")",
        ],
    );
}

#[test]
fn an_oversized_field_fails_naming_row_and_column() {
    let sandbox = per_user_sandbox();
    let big = "x".repeat(SMALL_CAP as usize + 1);
    sandbox.put(
        "alice/big.csv",
        format!("id,text\n1,small\n2,\"{big}\"\n3,small\n"),
    );
    let output = export_csv(&sandbox, "big.csv", &["--user", "alice"]);
    refused(
        &output,
        Exit::Failure,
        &[
            "\"big.csv\"",
            "row 2",
            "field 2 (\"text\")",
            "1024 bytes",
            "max_field_bytes",
        ],
    );
    // At the cap it is read.
    sandbox.put("alice/fits.csv", format!("id,text\n1,\"{}\"\n", &big[1..]));
    let out = succeeded(&export_csv(&sandbox, "fits.csv", &["--user", "alice"]));
    assert_eq!(rows(&out).len(), 1);
}

#[test]
fn the_daemon_serves_each_user_their_own_file_and_refuses_the_others() {
    let sandbox = per_user_sandbox();
    std::fs::create_dir(sandbox.data().join("ops")).unwrap();
    sandbox.put("ops/x.csv", "owner,secret\nops,ops-secret\n");
    let bobs = sandbox.data().join("bob/x.csv");
    std::os::unix::fs::symlink(&bobs, sandbox.data().join("alice/link.csv")).unwrap();
    let daemon = Daemon::start(sandbox, &[]);
    let export = |token: &str, path: &str| {
        let request = json!({
            "loader": "csv", "format": "jsonl", "selector": { "path": path }
        });
        daemon.post("/v1/exports?wait=30", Some(token), &request)
    };

    // The same path, each user's own file; an admin through the API reads
    // their own folder too.
    for (user, admin) in [("alice", false), ("bob", false), ("ops", true)] {
        let token = daemon.token(user, admin);
        let answer = export(&token, "x.csv");
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, 200, "{user}: {body}");
        let record = answer.json();
        assert_eq!(record["status"], "completed", "{user}: {record}");
        let id = record["id"].as_str().expect("a record id");
        let download = daemon.get(&format!("/v1/exports/{id}/download"), Some(&token));
        assert_eq!(download.status, 200);
        assert_eq!(
            rows(&download.body),
            [json!({ "owner": user, "secret": format!("{user}-secret") })]
        );
    }

    // Alice's ways out of her folder are refused at submission.
    let alice = daemon.token("alice", false);
    for path in ["../bob/x.csv", &path_text(&bobs), "link.csv"] {
        let answer = export(&alice, path);
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, 400, "{path}: {body}");
        assert!(
            body.contains("must be inside the configured root"),
            "{body}"
        );
        assert!(!body.contains("bob-secret"), "{body}");
    }
    // A user with no folder yet: refused, without the server's paths.
    let carol = daemon.token("carol", false);
    let answer = export(&carol, "x.csv");
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, 400, "{body}");
    let message = answer.json()["error"]["message"].to_string();
    assert!(message.contains("has no files here yet"), "{body}");
    assert!(!body.contains(&path_text(daemon.sandbox.path())), "{body}");
}
