//! `export-host exports download`: the file the API serves, copied by the
//! CLI; an interrupted copy resumes from its `.part` file, and a file takes
//! its name only once its size and SHA-256 match the record.

mod common;
mod server_common;

use common::Sandbox;
use serde_json::json;
use server_common::Daemon;
use std::fmt::Write as _;

fn daemon_with_an_export() -> (Daemon, String, Vec<u8>) {
    let sandbox = Sandbox::with_csv();
    let mut csv = String::from("id,name\n");
    for i in 0..20_000 {
        writeln!(csv, "{i},name {i}").expect("writing to a String");
    }
    sandbox.put("people.csv", csv);
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let record = daemon
        .post("/v1/exports?wait=30", Some(&token), &request)
        .json();
    assert_eq!(record["status"], "completed", "{record}");
    let id = record["id"].as_str().expect("an id").to_owned();
    let served = daemon.get(&format!("/v1/exports/{id}/download"), Some(&token));
    assert_eq!(served.status, 200);
    (daemon, id, served.body)
}

#[test]
fn download_copies_the_served_bytes_and_resumes_a_partial_file() {
    let (daemon, id, served) = daemon_with_an_export();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let target = dir.path().join("people.csv");
    let target_arg = target.to_str().expect("UTF-8");

    // Whole.
    let out = daemon.cli(&["exports", "download", &id, "-o", target_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).expect("the file"), served);
    std::fs::remove_file(&target).expect("removing it");

    // Interrupted after a third: only the rest is copied.
    let part = dir.path().join("people.csv.part");
    std::fs::write(&part, &served[..served.len() / 3]).expect("a partial file");
    let out = daemon.cli(&["exports", "download", &id, "-o", target_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).expect("the file"), served);
    assert!(!part.exists());
    std::fs::remove_file(&target).expect("removing it");

    // A partial file whose bytes are not this export's: refused, removed,
    // and never named like the export.
    let mut wrong = served[..served.len() / 2].to_vec();
    wrong[10] ^= 0xff;
    std::fs::write(&part, &wrong).expect("a wrong partial file");
    let out = daemon.cli(&["exports", "download", &id, "-o", target_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("do not match its SHA-256"), "{stderr}");
    assert!(!target.exists() && !part.exists());

    // Longer than the export: not a part of it.
    let mut longer = served.clone();
    longer.extend_from_slice(b"more");
    std::fs::write(&part, &longer).expect("a longer file");
    let out = daemon.cli(&["exports", "download", &id, "-o", target_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a part of this export"), "{stderr}");
    std::fs::remove_file(&part).expect("removing it");

    // Standard output.
    let out = daemon.cli(&["exports", "download", &id, "-o", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, served);
}

#[test]
fn another_users_export_is_not_found() {
    let (daemon, id, _) = daemon_with_an_export();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let target = dir.path().join("x.csv");
    let out = daemon.cli(&[
        "exports",
        "download",
        &id,
        "--user",
        "bob",
        "-o",
        target.to_str().expect("UTF-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not found"), "{stderr}");
    assert!(!target.exists());
}
