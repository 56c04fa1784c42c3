//! The worker sandbox, attacked from inside: the redteam plugin's escape
//! modes run in a worker of the real daemon (`isolation = "process"`) and
//! must reach no secret, file, socket or process outside the sandbox, while
//! the same attempts in-process (no sandbox) succeed, so the walls, not a
//! broken attempt, are what stops them. The first-party plugins keep
//! working isolated with the grants their config implies.

mod common;
mod server_common;

use common::*;
use serde_json::{json, Value};
use server_common::Daemon;
use sqlx::{Connection, Executor, PgConnection};
use std::path::{Path, PathBuf};
use std::process::Command;

const REDTEAM_LIB: &str = "libexport_test_redteam.so";
const SQL_LIB: &str = "libexport_sql.so";
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// A secret in the daemon's environment, which no worker may see.
const SECRET_VAR: &str = "EXPORT_HOST_TEST_SANDBOX_SECRET";
const SECRET: &str = "hunter2-do-not-leak";
/// A variable the redteam table passes on with `env`.
const GRANTED_VAR: &str = "EXPORT_HOST_TEST_SANDBOX_GRANTED";

/// redteam isolated (`redteam`), isolated with the PostgreSQL port granted
/// (`redteam_net`), and in-process (`redteam_host`, the control); csv
/// in-process for the output.
fn daemon() -> Daemon {
    let sandbox = Sandbox::empty();
    let isolated = Entry::new("redteam", REDTEAM_LIB)
        .set("isolation", "process")
        .set("timeout", "20s")
        .set("env", vec![GRANTED_VAR]);
    let networked = Entry::new("redteam_net", REDTEAM_LIB)
        .set("isolation", "process")
        .set("network", vec![postgres_address()]);
    let host = Entry::new("redteam_host", REDTEAM_LIB);
    sandbox.register(&[sandbox.csv(), isolated, networked, host]);
    sandbox.put("small.csv", "id\n1\n2\n");
    Daemon::start(
        sandbox,
        &[(SECRET_VAR, SECRET), (GRANTED_VAR, "granted-value")],
    )
}

fn postgres_base() -> String {
    std::env::var("EXPORT_HOST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// `host:port` of the test PostgreSQL server.
fn postgres_address() -> String {
    let base = postgres_base();
    let rest = base
        .rsplit_once('@')
        .map_or(base.as_str(), |(_, rest)| rest);
    let rest = rest.trim_start_matches("postgres://");
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Runs `mode` (with `arg`) in plugin `plugin`'s loader through the daemon;
/// the finished record.
fn attempt(daemon: &Daemon, token: &str, plugin: &str, mode: &str, arg: Option<&str>) -> Value {
    let mut selector = json!({"mode": mode});
    if let Some(arg) = arg {
        selector["arg"] = json!(arg);
    }
    let request =
        json!({"loader": format!("{plugin}/redteam"), "format": "csv/csv", "selector": selector});
    let answer = daemon.post("/v1/exports?wait=30", Some(token), &request);
    assert!(
        answer.status == 200 || answer.status == 202,
        "{} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let id = answer.json()["id"]
        .as_str()
        .expect("an export id")
        .to_owned();
    daemon.wait_until_done(&id, token)
}

/// The export's file, for a completed record.
fn download(daemon: &Daemon, token: &str, record: &Value) -> String {
    let id = record["id"].as_str().expect("an export id");
    let answer = daemon.get(&format!("/v1/exports/{id}/download"), Some(token));
    assert_eq!(answer.status, 200, "{record}");
    String::from_utf8_lossy(&answer.body).into_owned()
}

/// The attempt failed with the OS's refusal, naming the plugin, and the
/// record carries nothing of `secret`.
fn assert_denied(record: &Value, secret: &str) {
    assert_eq!(record["status"], "failed", "{record}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("redteam")
            && (error.contains("Permission denied") || error.contains("Operation not permitted")),
        "{record}"
    );
    assert!(
        !secret.is_empty() && !record.to_string().contains(secret),
        "{record}"
    );
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if path.is_file() {
            found.push(path);
        }
    }
    found
}

fn healthy(daemon: &Daemon, token: &str) {
    assert_eq!(daemon.get("/healthz", None).status, 200);
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "small.csv"}});
    let answer = daemon.post("/v1/exports?wait=30", Some(token), &request);
    let id = answer.json()["id"].as_str().expect("an id").to_owned();
    assert_eq!(daemon.wait_until_done(&id, token)["status"], "completed");
}

#[test]
fn a_sandboxed_worker_reads_no_secret_file() {
    let daemon = daemon();
    let alice = daemon.token("alice", false);
    let bob = daemon.token("bob", false);
    // Bob's stored export: another user's file in DATA_DIR/files.
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "small.csv"}});
    let answer = daemon.post("/v1/exports?wait=30", Some(&bob), &request);
    let id = answer.json()["id"].as_str().expect("an id").to_owned();
    assert_eq!(daemon.wait_until_done(&id, &bob)["status"], "completed");
    let stored = files_under(&daemon.data_dir.join("files"));
    assert!(
        !stored.is_empty(),
        "bob's export is stored under DATA_DIR/files"
    );

    let signing_key = daemon.data_dir.join("signing.key");
    let database = daemon.data_dir.join("exports.db");
    assert!(signing_key.is_file() && database.is_file());
    let key_text = std::fs::read_to_string(&signing_key).expect("the signing key");
    let mut targets: Vec<(PathBuf, String)> = vec![
        (signing_key.clone(), key_text.trim().to_owned()),
        (database, "SQLite format 3".to_owned()),
        (stored[0].clone(), "id\n1\n2".to_owned()),
        (PathBuf::from("/etc/shadow"), "root:".to_owned()),
    ];
    // Other plugins' libraries are off limits too.
    targets.push((library(CSV_LIB), "\u{7f}ELF".to_owned()));
    for (path, secret) in &targets {
        let path_text = path.to_str().expect("UTF-8 paths");
        let record = attempt(&daemon, &alice, "redteam", "read_file", Some(path_text));
        assert_denied(&record, secret);
    }

    // The control: with no sandbox, the same request reads the key.
    let record = attempt(
        &daemon,
        &alice,
        "redteam_host",
        "read_file",
        Some(signing_key.to_str().expect("UTF-8")),
    );
    assert_eq!(record["status"], "completed", "{record}");
    assert!(download(&daemon, &alice, &record).contains(key_text.trim()));
    // And the sandbox still lets it read what every program needs.
    let record = attempt(
        &daemon,
        &alice,
        "redteam",
        "read_file",
        Some("/etc/ld.so.cache"),
    );
    assert_eq!(record["status"], "completed", "{record}");
}

#[test]
fn a_sandboxed_worker_sees_neither_the_daemons_environment_nor_its_own_copy_of_it() {
    let daemon = daemon();
    let alice = daemon.token("alice", false);
    let record = attempt(&daemon, &alice, "redteam", "read_parent_environ", None);
    assert_denied(&record, SECRET);

    // Its own environment holds what the table grants, and not the secret.
    let record = attempt(&daemon, &alice, "redteam", "environ", None);
    assert_eq!(record["status"], "completed", "{record}");
    let environ = download(&daemon, &alice, &record);
    assert!(!environ.contains(SECRET), "{environ}");
    assert!(
        environ.contains(&format!("{GRANTED_VAR}=granted-value")),
        "{environ}"
    );

    // The control: a plugin in the host has the daemon's environment.
    let record = attempt(&daemon, &alice, "redteam_host", "environ", None);
    assert_eq!(record["status"], "completed", "{record}");
    assert!(download(&daemon, &alice, &record).contains(SECRET));
}

#[test]
fn a_sandboxed_worker_connects_only_to_granted_ports() {
    let daemon = daemon();
    let alice = daemon.token("alice", false);
    let postgres = postgres_address();
    let record = attempt(&daemon, &alice, "redteam", "connect", Some(&postgres));
    assert_denied(&record, "connected");

    // Granted: the PostgreSQL port answers.
    let record = attempt(&daemon, &alice, "redteam_net", "connect", Some(&postgres));
    assert_eq!(record["status"], "completed", "{record}");
    // Any other port stays shut, though something listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let other = listener.local_addr().expect("its address").to_string();
    let record = attempt(&daemon, &alice, "redteam_net", "connect", Some(&other));
    assert_denied(&record, "connected");
    // The control: from the host, the same port answers.
    let record = attempt(&daemon, &alice, "redteam_host", "connect", Some(&other));
    assert_eq!(record["status"], "completed", "{record}");
}

#[test]
fn a_sandboxed_worker_reaches_no_unix_socket_file() {
    let daemon = daemon();
    let alice = daemon.token("alice", false);
    // A socket file the worker could otherwise open: one the test listens on
    // (world-accessible, like a local PostgreSQL's).
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("listening.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).expect("a unix listener");
    std::fs::set_permissions(
        folder.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let path_text = path.to_str().expect("UTF-8");
    for plugin in ["redteam", "redteam_net"] {
        let record = attempt(&daemon, &alice, plugin, "connect_unix", Some(path_text));
        assert_denied(&record, "connected");
    }
    let record = attempt(
        &daemon,
        &alice,
        "redteam_host",
        "connect_unix",
        Some(path_text),
    );
    assert_eq!(record["status"], "completed", "{record}");
}

#[test]
fn a_sandboxed_worker_cannot_signal_the_daemon() {
    let daemon = daemon();
    let alice = daemon.token("alice", false);
    let record = attempt(&daemon, &alice, "redteam", "signal_parent", None);
    assert_denied(&record, "sent SIGTERM");
    std::thread::sleep(std::time::Duration::from_millis(300));
    healthy(&daemon, &alice);
    assert!(
        !daemon.log().contains("SIGTERM: stopping"),
        "the daemon did not start stopping"
    );
}

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("a VmRSS line")
}

#[test]
fn a_forged_4_gib_frame_is_a_protocol_fault_and_costs_the_daemon_nothing() {
    let daemon = daemon();
    let alice = daemon.token("alice", false);
    healthy(&daemon, &alice);
    let before = rss_kib(daemon.pid());
    let record = attempt(&daemon, &alice, "redteam", "forge_frame", None);
    let after = rss_kib(daemon.pid());
    assert_eq!(record["status"], "failed", "{record}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("redteam")
            && error.contains("protocol")
            && error.contains("4294967296-byte payload"),
        "{record}"
    );
    // The worker streams 512 MiB after the header: a daemon that trusted
    // the length would hold them.
    assert!(
        after < before + 64 * 1024,
        "VmRSS grew from {before} KiB to {after} KiB"
    );
    healthy(&daemon, &alice);
}

#[test]
fn plugins_list_and_the_api_report_the_sandbox() {
    let daemon = daemon();
    let alice = daemon.token("alice", false);
    let listed = daemon.get("/v1/plugins", Some(&alice)).json();
    let find = |name: &str| {
        listed["plugins"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not listed: {listed}"))
    };
    // This machine kind has Landlock ABI 7 and unprivileged namespaces.
    let sandbox = &find("redteam")["sandbox"];
    assert_eq!(sandbox["level"], "full", "{sandbox}");
    assert!(
        sandbox["landlock"]
            .as_str()
            .is_some_and(|l| l.starts_with("full (ABI ")),
        "{sandbox}"
    );
    assert_eq!(sandbox["namespaces"], true, "{sandbox}");
    assert_eq!(find("redteam_host")["sandbox"], Value::Null);

    let output = daemon.cli(&["plugins", "list", "--json"]);
    let rows: Value = serde_json::from_slice(&succeeded(&output)).expect("JSON");
    let row = rows
        .as_array()
        .and_then(|all| all.iter().find(|r| r["plugin"] == "redteam"))
        .cloned()
        .unwrap_or_else(|| panic!("redteam is not listed: {rows}"));
    assert!(
        row["sandbox"]
            .as_str()
            .is_some_and(|s| s.starts_with("full: landlock full (ABI ")),
        "{row}"
    );
}

#[test]
fn sandbox_minimum_full_starts_here_and_an_unknown_level_is_refused() {
    // "full" is what this machine gives: the plugin starts.
    let sandbox = Sandbox::empty();
    let redteam = Entry::new("redteam", REDTEAM_LIB).set("isolation", "process");
    sandbox.register(&[redteam]);
    let text = std::fs::read_to_string(sandbox.plugins_toml()).expect("plugins.toml");
    std::fs::write(
        sandbox.plugins_toml(),
        format!("sandbox_minimum = \"full\"\n{text}"),
    )
    .expect("plugins.toml");
    let output = sandbox.export("redteam", "redteam", &json!({}), &json!({}), &["-o", "-"]);
    succeeded(&output);
    // A level no machine reaches is refused with the setting named.
    std::fs::write(
        sandbox.plugins_toml(),
        format!("sandbox_minimum = \"strongest\"\n{text}"),
    )
    .expect("plugins.toml");
    let output = sandbox.run(&["plugins", "list"]);
    refused(&output, Exit::Refused, &["sandbox_minimum"]);
}

#[test]
fn a_table_without_isolation_runs_sandboxed() {
    let sandbox = Sandbox::empty();
    let library = library(REDTEAM_LIB);
    std::fs::write(
        sandbox.plugins_toml(),
        format!(
            "[plugins.redteam]\nlibrary = {:?}\n",
            library.to_str().expect("UTF-8")
        ),
    )
    .expect("plugins.toml");
    let listed =
        String::from_utf8(succeeded(&sandbox.run(&["plugins", "list", "--json"]))).expect("UTF-8");
    let rows: Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(rows[0]["isolation"], "process", "{rows}");
    let output = sandbox.export(
        "redteam",
        "redteam",
        &json!({"mode": "read_file", "arg": sandbox.plugins_toml()}),
        &json!({}),
        &["-o", "-"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Permission denied"), "{stderr}");
}

// ---------------------------------------------------------------------------
// First-party plugins, isolated, with the grants their config implies.

/// `name` from `library`, isolated.
fn isolated(name: &str, library: &str) -> Entry {
    Entry::new(name, library).set("isolation", "process")
}

#[test]
fn csv_json_html_and_pdf_work_isolated() {
    let sandbox = Sandbox::empty();
    let templates =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/html/examples/templates");
    let mut html_config = toml::Table::new();
    html_config.insert(
        "templates_dir".into(),
        templates.to_str().expect("UTF-8").into(),
    );
    sandbox.register(&[
        isolated("csv", CSV_LIB).root(&sandbox.data()),
        isolated("json", JSON_LIB).root(&sandbox.data()),
        isolated("html", "libexport_html.so").set("config", html_config),
        isolated("pdf", "libexport_pdf.so"),
    ]);
    sandbox.put("small.csv", "id,name\n1,ada\n2,grace\n");
    sandbox.put("small.jsonl", "{\"id\":1,\"name\":\"ada\"}\n");
    let csv = succeeded(&sandbox.export(
        "csv",
        "csv",
        &json!({"path": "small.csv"}),
        &json!({}),
        &["-o", "-"],
    ));
    assert_eq!(csv, b"id,name\n1,ada\n2,grace\n");
    let jsonl = succeeded(&sandbox.export(
        "jsonl",
        "jsonl",
        &json!({"path": "small.jsonl"}),
        &json!({}),
        &["-o", "-"],
    ));
    assert_eq!(jsonl, b"{\"id\":1,\"name\":\"ada\"}\n");
    let html = succeeded(&sandbox.export(
        "csv",
        "html",
        &json!({"path": "small.csv"}),
        &json!({"template": "compact.html"}),
        &["-o", "-"],
    ));
    let html = String::from_utf8(html).expect("UTF-8");
    assert!(html.contains("grace"), "{html}");
    let pdf = succeeded(&sandbox.export(
        "csv",
        "pdf",
        &json!({"path": "small.csv"}),
        &json!({}),
        &["-o", "-"],
    ));
    assert!(pdf.starts_with(b"%PDF-"));
    // The root is all csv reads: the folder beside it is off limits.
    std::fs::write(sandbox.path().join("outside.csv"), "secret\n1\n").expect("a file");
    let output = sandbox.export(
        "csv",
        "csv",
        &json!({"path": "../outside.csv"}),
        &json!({}),
        &["-o", "-"],
    );
    assert!(!output.status.success());
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// A fresh PostgreSQL database with the example data, dropped with the value.
struct PostgresDatabase {
    name: String,
}

impl PostgresDatabase {
    fn new() -> PostgresDatabase {
        let name = format!("eh_sandbox_{:016x}", rand::random::<u64>());
        block_on(async {
            let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_base()))
                .await
                .expect(
                    "PostgreSQL at EXPORT_HOST_TEST_POSTGRES or 127.0.0.1:5432 (.ci/run starts it)",
                );
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the test database");
        });
        let database = PostgresDatabase { name };
        make_example_db(&database.url());
        database
    }

    fn url(&self) -> String {
        format!("{}/{}", postgres_base(), self.name)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on(async move {
            if let Ok(mut admin) =
                PgConnection::connect(&format!("{}/postgres", postgres_base())).await
            {
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        });
    }
}

fn make_example_db(target: &str) {
    let tool = target_dir().join("make-example-db");
    let output = Command::new(&tool)
        .arg(target)
        .output()
        .expect("running make-example-db (cargo build --release --workspace)");
    assert!(
        output.status.success(),
        "make-example-db {target}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The sql plugin isolated on `database` with one query, granted `network`.
fn sql_sandbox(database: &str, network: &[String]) -> Sandbox {
    let sandbox = Sandbox::empty();
    let config: toml::Table = toml::from_str(&format!(
        "database = {database:?}\n[queries.users]\nsql = \"SELECT id, email FROM users ORDER BY id\"\n"
    ))
    .expect("TOML");
    let mut sql = isolated("sql", SQL_LIB).set("config", config);
    if !network.is_empty() {
        sql = sql.set("network", network.to_vec());
    }
    sandbox.register(&[sql, sandbox.csv()]);
    sandbox
}

fn export_users(sandbox: &Sandbox) -> std::process::Output {
    sandbox.export(
        "sql",
        "csv/csv",
        &json!({"query": "users"}),
        &json!({}),
        &["-o", "-"],
    )
}

#[test]
fn sql_works_isolated_on_sqlite_and_on_postgres_with_the_port_granted() {
    let sqlite_dir = tempfile::tempdir().expect("a folder");
    let path = sqlite_dir.path().join("example.db");
    make_example_db(path.to_str().expect("UTF-8"));
    let sandbox = sql_sandbox(&format!("sqlite://{}", path.display()), &[]);
    let from_sqlite = succeeded(&export_users(&sandbox));
    assert!(from_sqlite.starts_with(b"id,email\n"), "{from_sqlite:?}");

    let database = PostgresDatabase::new();
    let granted = sql_sandbox(&database.url(), &[postgres_address()]);
    let from_postgres = succeeded(&export_users(&granted));
    assert_eq!(from_postgres, from_sqlite, "same rows on both databases");

    // Without the grant, the worker has no network at all.
    let denied = sql_sandbox(&database.url(), &[]);
    let output = export_users(&denied);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sql"), "{stderr}");
}

/// Runs `export-host --plugins <plugins.toml> ARGS` in a user namespace
/// where no further user namespace may be made (`user.max_user_namespaces`
/// is 0 there): a machine whose workers get Landlock but no namespaces.
fn run_without_namespaces(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_export-host"))
        .arg("--plugins")
        .arg(sandbox.plugins_toml())
        .args(args)
        .current_dir(sandbox.path())
        .env_remove("EXPORT_HOST_LOG")
        .env_remove("EXPORT_HOST_PLUGINS")
        .output()
        .expect("running unshare (util-linux)")
}

#[test]
fn without_namespaces_the_sandbox_is_partial_and_sandbox_minimum_full_refuses_it() {
    let sandbox = Sandbox::empty();
    sandbox.register(&[Entry::new("redteam", REDTEAM_LIB).set("isolation", "process")]);
    let text = std::fs::read_to_string(sandbox.plugins_toml()).expect("plugins.toml");
    let list = ["plugins", "list", "--json"];
    let rows: Value =
        serde_json::from_slice(&succeeded(&run_without_namespaces(&sandbox, &list))).expect("JSON");
    assert!(
        rows[0]["sandbox"]
            .as_str()
            .is_some_and(|s| s.starts_with("partial: ") && s.ends_with("namespaces no")),
        "{rows}"
    );
    // Partial still holds the files: Landlock alone denies the read.
    let secret = sandbox.plugins_toml();
    let selector = json!({"mode": "read_file", "arg": secret}).to_string();
    let export = [
        "export",
        "--loader",
        "redteam",
        "--format",
        "redteam",
        "--selector",
        &selector,
        "-o",
        "-",
    ];
    let output = run_without_namespaces(&sandbox, &export);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Permission denied"), "{stderr}");

    // sandbox_minimum = "full" refuses to start it there, saying why.
    std::fs::write(
        sandbox.plugins_toml(),
        format!("sandbox_minimum = \"full\"\n{text}"),
    )
    .expect("plugins.toml");
    let output = run_without_namespaces(&sandbox, &export);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("redteam")
            && stderr.contains("sandbox_minimum = \"full\"")
            && stderr.contains("partial"),
        "{stderr}"
    );
    // The same file on this machine as it is: full, so it starts.
    succeeded(&sandbox.export("redteam", "redteam", &json!({}), &json!({}), &["-o", "-"]));
}
