//! Hot reload on a running daemon: a library copied into the plugin folder
//! and named in plugins.toml is served within 5 s with no restart; a broken
//! new library never disturbs the loaded ones; a removed entry stops taking
//! work; a library replaced while an export runs with it does not break
//! that export.

mod common;
mod server_common;

use common::{library, Entry, Sandbox, CSV_LIB, JSON_LIB};

/// The fixture loader that runs until a file exists.
const GATE_LIB: &str = "libexport_test_gate.so";
use serde_json::{json, Value};
use server_common::Daemon;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What hot reload promises: applied within this long.
const WITHIN: Duration = Duration::from_secs(5);

/// A sandbox whose plugins.toml names only `csv`, from a copy in its own
/// `plugins/` folder (so the test may replace the file).
fn sandbox_with_own_csv() -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::empty();
    let dir = sandbox.path().join("plugins");
    std::fs::create_dir(&dir).expect("the plugin folder");
    let csv = copy_library(&library(CSV_LIB), &dir.join(CSV_LIB));
    sandbox.register(&[Entry::new("csv", &csv).root(&sandbox.data())]);
    (sandbox, dir)
}

/// Copies a library the way an operator installs one: written aside, then
/// renamed into place, mode 0644.
fn copy_library(from: &Path, to: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let aside = to.with_extension("so.partial");
    std::fs::copy(from, &aside).expect("copying the library");
    std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o644))
        .expect("setting the mode");
    std::fs::rename(&aside, to).expect("renaming the library into place");
    to.to_owned()
}

fn plugin_names(listing: &Value, key: &str) -> Vec<String> {
    listing[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {listing}"))
        .iter()
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Polls `/v1/plugins` until `done` holds; panics with the listing and log
/// after `within`. Returns the listing and how long it took.
fn wait_for_plugins(
    daemon: &Daemon,
    token: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let answer = daemon.get("/v1/plugins", Some(token));
        assert_eq!(answer.status, 200);
        let listing = answer.json();
        if done(&listing) {
            return (listing, start.elapsed());
        }
        assert!(
            start.elapsed() < within,
            "not within {within:?}: {listing:#}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn export(daemon: &Daemon, token: &str, loader: &str, format: &str, path: &str) -> Value {
    let request = json!({"loader": loader, "format": format, "selector": {"path": path}});
    let answer = daemon.post("/v1/exports?wait=30", Some(token), &request);
    assert!(
        answer.status == 200 || answer.status == 202,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

#[test]
fn added_broken_and_removed_plugins_apply_without_a_restart() {
    let (sandbox, dir) = sandbox_with_own_csv();
    sandbox.put("people.csv", "id,name\n1,ada\n2,grace\n");
    sandbox.put("people.jsonl", "{\"id\":\"1\",\"name\":\"ada\"}\n");
    let data = sandbox.data();
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let csv = Entry::new("csv", dir.join(CSV_LIB)).root(&data);

    // Added: a library copied in, then named in plugins.toml.
    let json_lib = copy_library(&library(JSON_LIB), &dir.join(JSON_LIB));
    daemon
        .sandbox
        .register(&[csv.clone(), Entry::new("json", &json_lib).root(&data)]);
    let (_, took) = wait_for_plugins(&daemon, &token, WITHIN, |listing| {
        plugin_names(listing, "plugins").contains(&"json".to_owned())
    });
    eprintln!("json served {took:?} after plugins.toml named it");
    let record = export(&daemon, &token, "jsonl", "csv", "people.jsonl");
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());

    // A broken new library: reported, and the loaded plugins keep serving.
    let broken = dir.join("libbroken.so");
    std::fs::write(&broken, b"not a shared object").expect("writing the broken file");
    daemon.sandbox.register(&[
        csv.clone(),
        Entry::new("json", &json_lib).root(&data),
        Entry::new("broken", &broken),
    ]);
    let (listing, _) = wait_for_plugins(&daemon, &token, WITHIN, |listing| {
        plugin_names(listing, "failed").contains(&"broken".to_owned())
    });
    assert_eq!(plugin_names(&listing, "plugins"), ["csv", "json"]);
    let failure = &listing["failed"][0];
    assert!(
        failure["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ELF")),
        "{failure}"
    );
    let record = export(&daemon, &token, "csv", "jsonl", "people.csv");
    assert_eq!(record["status"], "completed", "{record}");

    // Removed: json is gone, and a request that needs it names what is left.
    daemon.sandbox.register(std::slice::from_ref(&csv));
    wait_for_plugins(&daemon, &token, WITHIN, |listing| {
        plugin_names(listing, "plugins") == ["csv"] && plugin_names(listing, "failed").is_empty()
    });
    let request = json!({"loader": "csv", "format": "jsonl", "selector": {"path": "people.csv"}});
    let answer = daemon.post("/v1/exports", Some(&token), &request);
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        String::from_utf8_lossy(&answer.body).contains("csv/csv"),
        "{}",
        String::from_utf8_lossy(&answer.body)
    );

    let log = daemon.log();
    assert!(log.contains("plugins reloaded"), "{log}");
    assert!(log.contains("broken"), "{log}");
}

#[test]
fn a_library_replaced_while_an_export_runs_does_not_break_that_export() {
    let sandbox = Sandbox::empty();
    let dir = sandbox.path().join("plugins");
    std::fs::create_dir(&dir).expect("the plugin folder");
    let gate = copy_library(&library(GATE_LIB), &dir.join(GATE_LIB));
    sandbox.register(&[
        Entry::new("gate", &gate),
        Entry::new("csv", library(CSV_LIB)).root(&sandbox.data()),
    ]);
    let open = sandbox.path().join("gate-open");
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let gate_sha = |listing: &Value| {
        listing["plugins"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == "gate"))
            .map(|p| p["sha256"].as_str().expect("a sha256").to_owned())
    };
    let before = gate_sha(&daemon.get("/v1/plugins", Some(&token)).json());

    let request = json!({"loader": "gate", "format": "csv", "selector": {"until": open}});
    let created = daemon.post("/v1/exports", Some(&token), &request);
    assert_eq!(
        created.status,
        202,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let id = created.json()["id"].as_str().expect("an id").to_owned();
    let start = Instant::now();
    while daemon
        .get(&format!("/v1/exports/{id}"), Some(&token))
        .json()["status"]
        != "processing"
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never started\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // Other bytes under the same file name (the json library): plugin
    // `gate` now offers json's components, and takes new work with them.
    copy_library(&library(JSON_LIB), &gate);
    let (listing, _) = wait_for_plugins(&daemon, &token, WITHIN, |listing| {
        gate_sha(listing).is_some() && gate_sha(listing) != before
    });
    let replaced = listing["plugins"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "gate"))
        .expect("gate is listed");
    assert_eq!(replaced["loaders"][0]["name"], "jsonl", "{listing:#}");
    let during = daemon
        .get(&format!("/v1/exports/{id}"), Some(&token))
        .json();
    assert_eq!(during["status"], "processing", "{during}");

    // The running export still has the instance it started with.
    std::fs::write(&open, b"").expect("opening the gate");
    let done = daemon.wait_until_done(&id, &token);
    assert_eq!(done["status"], "completed", "{done}\n{}", daemon.log());
    let rows = done["row_count"].as_u64().expect("a row count");
    assert!(rows > 0, "{done}");
    let download = daemon.get(&format!("/v1/exports/{id}/download"), Some(&token));
    assert_eq!(download.status, 200);
    let text = String::from_utf8(download.body).expect("UTF-8 CSV");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, rows + 1, "a header and every row");
    assert_eq!(lines[0], "n");
    assert_eq!(lines[1], "1");
    assert_eq!(lines[lines.len() - 1], rows.to_string());
    assert!(daemon.log().contains("replaced"), "{}", daemon.log());
}
