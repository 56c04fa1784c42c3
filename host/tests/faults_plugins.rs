//! Bad days for plugin files, against the real daemon and the real CLI: a
//! truncated library (at start-up, on hot reload, in `plugins check`), a
//! library whose initialiser crashes, a library overwritten in place while
//! loaded, a copy still in progress, a reload that fails while an instance
//! serves, private copies left by a crashed process, and the default
//! plugins.toml used from another working directory.

mod common;
mod server_common;

use common::{library, Entry, Sandbox, CSV_LIB, JSON_LIB};
use serde_json::{json, Value};
use server_common::Daemon;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const MARKDOWN_LIB: &str = "libexport_markdown.so";
/// A sound library whose initialiser aborts whatever process loads it.
const CRASH_ON_LOAD_LIB: &str = "libexport_test_crash_on_load.so";

/// What hot reload promises: applied within this long.
const WITHIN: Duration = Duration::from_secs(10);

/// Installs `bytes` at `to` the way an operator should: aside, then renamed.
fn install(bytes: &[u8], to: &Path) -> PathBuf {
    let aside = to.with_extension("so.partial");
    std::fs::write(&aside, bytes).expect("writing the library");
    std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o644))
        .expect("setting the mode");
    std::fs::rename(&aside, to).expect("renaming the library into place");
    to.to_owned()
}

/// The first 200,000 bytes of the markdown plugin: `head -c 200000`.
fn truncated_markdown() -> Vec<u8> {
    let mut bytes = std::fs::read(library(MARKDOWN_LIB)).expect("reading the markdown plugin");
    bytes.truncate(200_000);
    bytes
}

/// A sandbox with its own `plugins/` folder and csv copied into it.
fn sandbox_with_own_csv() -> (Sandbox, PathBuf, Entry) {
    let sandbox = Sandbox::empty();
    let dir = sandbox.path().join("plugins");
    std::fs::create_dir(&dir).expect("the plugin folder");
    let bytes = std::fs::read(library(CSV_LIB)).expect("reading the csv plugin");
    let csv_lib = install(&bytes, &dir.join(CSV_LIB));
    let csv = Entry::new("csv", &csv_lib).root(&sandbox.data());
    sandbox.register(std::slice::from_ref(&csv));
    sandbox.put("people.csv", "id,name\n1,ada\n2,grace\n");
    (sandbox, dir, csv)
}

fn names(listing: &Value, key: &str) -> Vec<String> {
    listing[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {listing}"))
        .iter()
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn find<'a>(listing: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    listing[key]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
}

fn plugins(daemon: &Daemon, token: &str) -> Value {
    let answer = daemon.get("/v1/plugins", Some(token));
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

/// Polls `/v1/plugins` until `done` holds; panics with the listing and log.
fn wait_for_plugins(daemon: &Daemon, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let listing = plugins(daemon, token);
        if done(&listing) {
            return listing;
        }
        assert!(
            start.elapsed() < WITHIN,
            "not within {WITHIN:?}: {listing:#}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs an export to its end and returns the record.
fn export(daemon: &Daemon, token: &str, request: Value) -> Value {
    let answer = daemon.post("/v1/exports?wait=30", Some(token), &request);
    assert!(
        answer.status == 200 || answer.status == 202,
        "{}\n{}",
        String::from_utf8_lossy(&answer.body),
        daemon.log()
    );
    let record = answer.json();
    let id = record["id"].as_str().expect("an export id").to_owned();
    daemon.wait_until_done(&id, token)
}

fn csv_export_completes(daemon: &Daemon, token: &str) {
    let record = export(
        daemon,
        token,
        json!({"loader": "csv/csv", "format": "csv/csv", "selector": {"path": "people.csv"}}),
    );
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());
}

/// The value of one sample of `/metrics`, e.g.
/// `export_host_plugin_refusals_total{cause="trust"}`.
fn metric(daemon: &Daemon, sample: &str) -> f64 {
    let answer = daemon.get("/metrics", None);
    assert_eq!(answer.status, 200);
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(sample).map(str::trim))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
}

/// Asserts a CLI run ended by itself, not by a signal, with status `code`.
fn exited(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.signal(),
        None,
        "killed by a signal: {}\n{stderr}",
        output.status
    );
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    stderr
}

#[test]
fn a_truncated_library_at_start_up_is_refused_and_the_others_serve() {
    let (sandbox, dir, csv) = sandbox_with_own_csv();
    let trunc = install(&truncated_markdown(), &dir.join("libtrunc.so"));
    sandbox.register(&[
        csv,
        Entry::new("json", JSON_LIB).root(&sandbox.data()),
        Entry::new("trunc", &trunc),
    ]);
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let listing = plugins(&daemon, &token);
    assert_eq!(names(&listing, "plugins"), ["csv", "json"], "{listing:#}");
    let failed = find(&listing, "failed", "trunc").expect("trunc is listed as failed");
    let reason = failed["reason"].as_str().expect("a reason");
    assert!(reason.contains("ELF structure"), "{reason}");
    assert!(reason.contains("200000 bytes"), "{reason}");
    csv_export_completes(&daemon, &token);
    assert!(
        metric(
            &daemon,
            "export_host_plugin_refusals_total{cause=\"trust\"}"
        ) >= 1.0
    );
    assert_eq!(
        metric(&daemon, "export_host_plugin_load_failures{cause=\"trust\"}"),
        1.0
    );
}

#[test]
fn a_library_that_crashes_while_loading_is_refused_by_the_probe() {
    let (sandbox, _dir, csv) = sandbox_with_own_csv();
    sandbox.register(&[csv, Entry::new("crashy", CRASH_ON_LOAD_LIB)]);
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let listing = plugins(&daemon, &token);
    assert_eq!(names(&listing, "plugins"), ["csv"], "{listing:#}");
    let failed = find(&listing, "failed", "crashy").expect("crashy is listed as failed");
    assert_eq!(failed["cause"], "load", "{failed}");
    let reason = failed["reason"].as_str().expect("a reason");
    assert!(reason.contains("probe process"), "{reason}");
    assert!(reason.contains("SIGABRT"), "{reason}");
    csv_export_completes(&daemon, &token);
    assert!(metric(&daemon, "export_host_plugin_refusals_total{cause=\"load\"}") >= 1.0);
}

#[test]
fn plugins_check_refuses_truncated_and_crashing_libraries_with_a_message() {
    let sandbox = Sandbox::empty();
    let trunc = install(&truncated_markdown(), &sandbox.path().join("libtrunc.so"));
    let stderr = exited(
        &sandbox.run(&["plugins", "check", trunc.to_str().expect("UTF-8")]),
        1,
    );
    assert!(stderr.contains("cannot be used as a plugin"), "{stderr}");
    assert!(stderr.contains("ELF structure"), "{stderr}");

    let crashy = library(CRASH_ON_LOAD_LIB);
    let stderr = exited(
        &sandbox.run(&["plugins", "check", crashy.to_str().expect("UTF-8")]),
        1,
    );
    assert!(stderr.contains("SIGABRT"), "{stderr}");

    // And `plugins list` over a registry naming both: listed, with reasons.
    sandbox.register(&[
        Entry::new("trunc", &trunc),
        Entry::new("crashy", &crashy),
        sandbox.csv(),
    ]);
    let output = sandbox.run(&["plugins", "list", "--json"]);
    exited(&output, 0);
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    let status = |name: &str| {
        rows.iter()
            .find(|row| row["plugin"] == name)
            .and_then(|row| row["status"].as_str())
            .unwrap_or_else(|| panic!("{name} missing from {rows:?}"))
            .to_owned()
    };
    assert_eq!(status("csv"), "loaded");
    assert!(status("trunc").contains("ELF structure"), "{rows:?}");
    assert!(status("crashy").contains("SIGABRT"), "{rows:?}");
}

#[test]
fn a_truncated_library_on_hot_reload_is_refused_and_the_daemon_serves() {
    let (sandbox, dir, csv) = sandbox_with_own_csv();
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let trunc = install(&truncated_markdown(), &dir.join("libtrunc.so"));
    daemon.sandbox.register(&[csv, Entry::new("trunc", &trunc)]);
    let listing = wait_for_plugins(&daemon, &token, |listing| {
        find(listing, "failed", "trunc").is_some()
    });
    let reason = find(&listing, "failed", "trunc").expect("listed")["reason"]
        .as_str()
        .expect("a reason")
        .to_owned();
    assert!(reason.contains("ELF structure"), "{reason}");
    assert_eq!(names(&listing, "plugins"), ["csv"]);
    csv_export_completes(&daemon, &token);
}

#[test]
fn a_library_overwritten_in_place_while_loaded_keeps_serving() {
    let (sandbox, dir, csv) = sandbox_with_own_csv();
    sandbox.put("people.jsonl", "{\"id\":\"1\",\"name\":\"ada\"}\n");
    let bytes = std::fs::read(library(JSON_LIB)).expect("reading the json plugin");
    let json_lib = install(&bytes, &dir.join(JSON_LIB));
    let json_entry = Entry::new("json", &json_lib).root(&sandbox.data());
    sandbox.register(&[csv, json_entry]);
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let jsonl_to_csv =
        json!({"loader": "json/jsonl", "format": "csv/csv", "selector": {"path": "people.jsonl"}});
    let loaded_sha =
        find(&plugins(&daemon, &token), "plugins", "json").expect("json")["sha256"].clone();

    // In place: the same inode, truncated, the first MiB, a pause, the rest.
    let inode = std::fs::metadata(&json_lib).expect("the library").ino();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&json_lib)
        .expect("opening the library in place");
    file.write_all(&bytes[..1 << 20]).expect("the first MiB");
    file.flush().expect("flushing");
    // The half-written file is refused; the instance loaded before serves.
    let listing = wait_for_plugins(&daemon, &token, |listing| {
        find(listing, "plugins", "json").is_some_and(|p| !p["reload_failed"].is_null())
    });
    let json = find(&listing, "plugins", "json").expect("json");
    assert_eq!(json["status"], "loaded", "{json}");
    let reason = json["reload_failed"]["reason"].as_str().expect("a reason");
    assert!(reason.contains("ELF structure"), "{reason}");
    assert!(find(&listing, "failed", "json").is_none(), "{listing:#}");
    let record = export(&daemon, &token, jsonl_to_csv.clone());
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());

    file.write_all(&bytes[1 << 20..]).expect("the rest");
    drop(file);
    assert_eq!(
        std::fs::metadata(&json_lib).expect("the library").ino(),
        inode
    );
    // Whole again: the same bytes, so the same instance, and no failure.
    let listing = wait_for_plugins(&daemon, &token, |listing| {
        find(listing, "plugins", "json").is_some_and(|p| p["reload_failed"].is_null())
    });
    assert_eq!(
        find(&listing, "plugins", "json").expect("json")["sha256"],
        loaded_sha
    );
    let record = export(&daemon, &token, jsonl_to_csv);
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());
}

#[test]
fn a_copy_in_progress_is_not_loaded_until_it_is_complete() {
    let (sandbox, dir, csv) = sandbox_with_own_csv();
    sandbox.put("people.jsonl", "{\"id\":\"1\",\"name\":\"ada\"}\n");
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let bytes = std::fs::read(library(JSON_LIB)).expect("reading the json plugin");
    let json_lib = dir.join("libslow.so");

    // Written straight into place, slowly: 40 pieces 100 ms apart (longer
    // than the watcher waits behind a stream of events).
    let mut file = std::fs::File::create(&json_lib).expect("creating the library");
    std::fs::set_permissions(&json_lib, std::fs::Permissions::from_mode(0o644))
        .expect("setting the mode");
    let piece = bytes.len().div_ceil(40);
    let mut pieces = bytes.chunks(piece);
    file.write_all(pieces.next().expect("a first piece"))
        .expect("writing");
    daemon.sandbox.register(&[
        csv,
        Entry::new("json", &json_lib).root(&daemon.sandbox.data()),
    ]);
    for next in pieces {
        std::thread::sleep(Duration::from_millis(100));
        file.write_all(next).expect("writing");
        let listing = plugins(&daemon, &token);
        assert!(
            find(&listing, "failed", "json").is_none()
                && find(&listing, "plugins", "json").is_none(),
            "the half-copied library was taken: {listing:#}\n{}",
            daemon.log()
        );
    }
    drop(file);
    let listing = wait_for_plugins(&daemon, &token, |listing| {
        find(listing, "plugins", "json").is_some() || find(listing, "failed", "json").is_some()
    });
    let json = find(&listing, "plugins", "json")
        .unwrap_or_else(|| panic!("json failed: {listing:#}\n{}", daemon.log()));
    assert!(json["reload_failed"].is_null(), "{json}");
    let record = export(
        &daemon,
        &token,
        json!({"loader": "json/jsonl", "format": "csv/csv", "selector": {"path": "people.jsonl"}}),
    );
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());
}

#[test]
fn a_failed_reload_keeps_the_instance_that_serves() {
    let (sandbox, dir, csv) = sandbox_with_own_csv();
    let daemon = Daemon::start(sandbox, &[]);
    let token = daemon.token("ada", false);
    let loaded = plugins(&daemon, &token);
    let sha = find(&loaded, "plugins", "csv").expect("csv")["sha256"].clone();
    let refused_before = metric(
        &daemon,
        "export_host_plugin_refusals_total{cause=\"trust\"}",
    );

    // A wrong sha256 pinned on the loaded plugin.
    daemon
        .sandbox
        .register(&[csv.clone().set("sha256", "0".repeat(64))]);
    let listing = wait_for_plugins(&daemon, &token, |listing| {
        find(listing, "plugins", "csv").is_some_and(|p| !p["reload_failed"].is_null())
    });
    let served = find(&listing, "plugins", "csv").expect("csv keeps serving");
    assert_eq!(served["status"], "loaded");
    assert_eq!(served["sha256"], sha);
    assert_eq!(served["reload_failed"]["cause"], "trust");
    let reason = served["reload_failed"]["reason"]
        .as_str()
        .expect("a reason");
    assert!(reason.contains("SHA-256"), "{reason}");
    assert!(
        listing["failed"].as_array().expect("failed").is_empty(),
        "{listing:#}"
    );
    csv_export_completes(&daemon, &token);
    assert!(
        metric(
            &daemon,
            "export_host_plugin_refusals_total{cause=\"trust\"}"
        ) > refused_before
    );
    assert_eq!(
        metric(&daemon, "export_host_plugin_load_failures{cause=\"trust\"}"),
        1.0
    );

    // The pin removed: the same instance, and the failure is gone.
    daemon.sandbox.register(std::slice::from_ref(&csv));
    wait_for_plugins(&daemon, &token, |listing| {
        find(listing, "plugins", "csv").is_some_and(|p| p["reload_failed"].is_null())
    });

    // A shared library that is not a plugin renamed over the loaded one.
    let not_a_plugin = proc_macro_library().unwrap_or_else(|| {
        let text = dir.join("notes.txt");
        std::fs::write(&text, "not a shared object").expect("writing");
        text
    });
    let bytes = std::fs::read(&not_a_plugin).expect("reading the stand-in");
    install(&bytes, &dir.join(CSV_LIB));
    let listing = wait_for_plugins(&daemon, &token, |listing| {
        find(listing, "plugins", "csv").is_some_and(|p| !p["reload_failed"].is_null())
    });
    let served = find(&listing, "plugins", "csv").expect("csv keeps serving");
    assert_eq!(served["sha256"], sha);
    assert!(
        served["reload_failed"]["reason"]
            .as_str()
            .is_some_and(|reason| !reason.is_empty()),
        "{served}"
    );
    csv_export_completes(&daemon, &token);
}

/// A real shared library that is no plugin: a proc-macro the build left.
fn proc_macro_library() -> Option<PathBuf> {
    let deps = common::target_dir().join("deps");
    std::fs::read_dir(deps)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libserde_derive-") && n.ends_with(".so"))
        })
}

#[test]
fn private_copies_of_a_dead_process_are_removed_at_start() {
    let (sandbox, _dir, _csv) = sandbox_with_own_csv();
    let runtime = sandbox.path().join("run");
    let uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    let copies = runtime.join(format!("export-host-plugins-{uid}"));
    std::fs::create_dir_all(&copies).expect("the copies folder");
    std::fs::set_permissions(&copies, std::fs::Permissions::from_mode(0o700)).expect("its mode");
    // A pid that just ended.
    let mut gone = Command::new("true").spawn().expect("running true");
    let dead = gone.id();
    gone.wait().expect("waiting for true");
    let stale = copies.join(format!("libexport_csv-{dead}-0.so"));
    let live = copies.join(format!("libexport_csv-{}-0.so", std::process::id()));
    let other = copies.join("notes.txt");
    for file in [&stale, &live, &other] {
        std::fs::write(file, b"copy").expect("planting a copy");
    }
    let daemon = Daemon::start(
        sandbox,
        &[("RUNTIME_DIRECTORY", runtime.to_str().expect("UTF-8"))],
    );
    assert!(
        !stale.exists(),
        "the dead process's copy is left\n{}",
        daemon.log()
    );
    assert!(live.exists(), "a live process's copy was removed");
    assert!(other.exists(), "a file that is no copy was removed");
    let token = daemon.token("ada", false);
    csv_export_completes(&daemon, &token);
}

/// The repository's own plugins.toml.
fn default_plugins_toml() -> PathBuf {
    std::path::absolute(Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins.toml"))
        .expect("an absolute path")
}

#[test]
fn the_default_plugins_toml_works_from_another_working_directory() {
    let repository = default_plugins_toml()
        .parent()
        .expect("the repository")
        .to_owned();
    let elsewhere = tempfile::tempdir().expect("another folder");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_export-host"))
            .arg("--plugins")
            .arg(default_plugins_toml())
            .args(args)
            .current_dir(elsewhere.path())
            .env_remove("EXPORT_HOST_LOG")
            .env_remove("EXPORT_HOST_PLUGINS")
            .output()
            .expect("running export-host")
    };
    let output = cli(&["plugins", "list", "--json"]);
    exited(&output, 0);
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    for row in &rows {
        assert_eq!(row["status"], "loaded", "{row}");
    }
    assert!(rows.iter().any(|row| row["plugin"] == "html"), "{rows:?}");

    // csv's root and html's templates_dir come from the folder of plugins.toml.
    let output = cli(&[
        "export",
        "--loader",
        "csv/csv",
        "--selector",
        r#"{"path": "conversations.csv"}"#,
        "--format",
        "html/html",
        "--options",
        r#"{"template": "compact.html"}"#,
    ]);
    exited(&output, 0);
    assert!(String::from_utf8_lossy(&output.stdout).contains("<html"));
    // A missing template names what is there, never the server's folder.
    let output = cli(&[
        "export",
        "--loader",
        "csv/csv",
        "--selector",
        r#"{"path": "conversations.csv"}"#,
        "--format",
        "html/html",
        "--options",
        r#"{"template": "nope.html"}"#,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("templates_dir holds compact.html"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(repository.to_str().expect("UTF-8")),
        "{stderr}"
    );

    // The daemon, started in another folder with the same file.
    let sandbox = Sandbox::empty();
    let toml = default_plugins_toml();
    let daemon = Daemon::start(
        sandbox,
        &[("EXPORT_HOST_PLUGINS", toml.to_str().expect("UTF-8"))],
    );
    let token = daemon.token("ada", false);
    let listing = plugins(&daemon, &token);
    assert!(
        listing["failed"].as_array().expect("failed").is_empty(),
        "{listing:#}"
    );
    let record = export(
        &daemon,
        &token,
        json!({"loader": "csv/csv", "format": "html/html",
               "selector": {"path": "conversations.csv"},
               "options": {"template": "compact.html"}}),
    );
    assert_eq!(record["status"], "completed", "{record}\n{}", daemon.log());
    let answer = daemon.post(
        "/v1/exports?wait=30",
        Some(&token),
        &json!({"loader": "csv/csv", "format": "html/html",
                "selector": {"path": "conversations.csv"},
                "options": {"template": "nope.html"}}),
    );
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    let message = if answer.status == 200 || answer.status == 202 {
        let id = answer.json()["id"].as_str().expect("an id").to_owned();
        daemon.wait_until_done(&id, &token).to_string()
    } else {
        body
    };
    assert!(
        message.contains("templates_dir holds compact.html"),
        "{message}"
    );
    assert!(
        !message.contains(repository.to_str().expect("UTF-8")),
        "{message}"
    );
}
