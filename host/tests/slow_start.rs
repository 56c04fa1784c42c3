//! Start-up never waits on a plugin: the daemon answers `/readyz` 200 while
//! two plugins with a slow initialiser (the redteam fixture sleeping while
//! it is built, one in-process, one isolated) are still loading; they are
//! listed `loading`; a request naming one answers 503 with `Retry-After`;
//! exports queued for them wait in their workers instead of failing and
//! complete once the plugins have loaded; a reload meanwhile does not load
//! them again. A plugin slower than its `load_timeout` ends `failed`, naming
//! the timeout, while the daemon serves the others.

mod common;
mod server_common;

use common::{library, Entry, Sandbox};
use export_host::config::Setting;
use serde_json::{json, Value};
use server_common::{Answer, Daemon};
use std::time::{Duration, Instant};

const REDTEAM_LIB: &str = "libexport_test_redteam.so";
const GATE_LIB: &str = "libexport_test_gate.so";
/// Milliseconds the redteam fixture sleeps while it is built.
const SLEEP_ENV: &str = "EXPORT_TEST_REDTEAM_LOAD_SLEEP_MS";

/// The redteam fixture as plugin `name`, isolated or not, its workers
/// handed the sleep switch; from a copy in the sandbox, so a rebuild in the
/// target folder never reloads it mid-test.
fn slow(sandbox: &Sandbox, name: &str, isolation: &str, load_timeout: &str) -> Entry {
    use std::os::unix::fs::PermissionsExt;
    let dir = sandbox.path().join("plugins");
    let copy = dir.join(REDTEAM_LIB);
    if !copy.exists() {
        std::fs::create_dir_all(&dir).expect("the plugin folder");
        let aside = dir.join("redteam.partial");
        std::fs::copy(library(REDTEAM_LIB), &aside).expect("copying the library");
        std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o644))
            .expect("setting the mode");
        std::fs::rename(&aside, &copy).expect("renaming the library into place");
    }
    Entry::new(name, &copy)
        .set("isolation", isolation)
        .set("load_timeout", load_timeout)
        .set("env", toml::Value::Array(vec![SLEEP_ENV.into()]))
}

fn listing(daemon: &Daemon, token: &str) -> Value {
    let answer = daemon.get("/v1/plugins", Some(token));
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

fn names(listing: &Value, key: &str) -> Vec<String> {
    let mut names: Vec<String> = listing[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {listing}"))
        .iter()
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect();
    names.sort();
    names
}

fn find<'a>(listing: &'a Value, key: &str, name: &str) -> &'a Value {
    listing[key]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{name} is not in {key}: {listing:#}"))
}

/// Polls `/v1/plugins` until no plugin is loading; the listing.
fn wait_until_loaded(daemon: &Daemon, token: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let listing = listing(daemon, token);
        if names(&listing, "loading").is_empty() {
            return listing;
        }
        assert!(
            start.elapsed() < within,
            "plugins still loading after {within:?}: {listing:#}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn post_export(daemon: &Daemon, token: &str, request: &Value) -> Answer {
    daemon.post("/v1/exports", Some(token), request)
}

/// Records `request` and returns the export id (202).
fn queue(daemon: &Daemon, token: &str, request: &Value) -> String {
    let answer = post_export(daemon, token, request);
    assert_eq!(
        answer.status,
        202,
        "{request}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["id"].as_str().expect("an id").to_owned()
}

fn status(daemon: &Daemon, token: &str, id: &str) -> String {
    let answer = daemon.get(&format!("/v1/exports/{id}"), Some(token));
    assert_eq!(answer.status, 200);
    answer.json()["status"]
        .as_str()
        .expect("a status")
        .to_owned()
}

fn csv_export(daemon: &Daemon) -> Value {
    std::fs::write(
        daemon.sandbox.data().join("a.csv"),
        "id,name\n1,ada\n2,bob\n",
    )
    .expect("writing a.csv");
    json!({"loader": "csv/csv", "format": "csv/csv", "selector": {"path": "a.csv"}})
}

#[test]
fn the_daemon_is_ready_at_once_and_serves_slow_plugins_once_they_have_loaded() {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("gate", library(GATE_LIB)),
        slow(&sandbox, "slow_a", "in-process", "30s"),
        slow(&sandbox, "slow_b", "process", "30s"),
    ]);
    let workers = Setting::Workers.env_var();
    // First run, plugins quick: one worker held by a gated export, so two
    // exports for the slow plugins stay queued when the daemon is killed.
    let mut daemon = Daemon::start(sandbox, &[(workers.as_str(), "1")]);
    let token = daemon.token("ada", false);
    let gate_open = daemon.sandbox.path().join("gate-open");
    queue(
        &daemon,
        &token,
        &json!({"loader": "gate/gate", "format": "csv/csv", "selector": {"until": gate_open}}),
    );
    let both = json!({
        "loader": "slow_a/redteam", "format": "slow_b/redteam",
        "selector": {"mode": "normal"}, "options": {"mode": "normal"},
    });
    let isolated_only = json!({
        "loader": "slow_b/redteam", "format": "csv/csv", "selector": {"mode": "normal"},
    });
    let queued = [
        queue(&daemon, &token, &both),
        queue(&daemon, &token, &isolated_only),
    ];
    for id in &queued {
        assert_eq!(status(&daemon, &token, id), "pending");
    }
    daemon.stop_with("KILL", Duration::from_secs(5));
    std::fs::write(&gate_open, b"").expect("opening the gate");

    // Second run: each slow plugin takes 20 s to build (twice for the
    // in-process one: in its probe, then in the daemon).
    daemon.set_env(SLEEP_ENV, Some("20000"));
    daemon.set_env(&workers, Some("3"));
    daemon.wait_for_plugins = false;
    let first_run = daemon.log().len();
    let started = Instant::now();
    daemon.restart();
    let ready = loop {
        let answer = daemon.get("/readyz", None);
        if answer.status == 200 {
            break answer.json();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ready within 10 s: {}\n{}",
            String::from_utf8_lossy(&answer.body),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ready after {:?}",
        started.elapsed()
    );
    assert!(
        ready["plugins_loading"].as_u64().unwrap_or(0) >= 2,
        "{ready}"
    );

    let plugins = listing(&daemon, &token);
    let loading = names(&plugins, "loading");
    assert!(
        loading.contains(&"slow_a".to_owned()) && loading.contains(&"slow_b".to_owned()),
        "{plugins:#}"
    );
    for name in ["slow_a", "slow_b"] {
        assert_eq!(find(&plugins, "loading", name)["status"], "loading");
    }
    assert!(!names(&plugins, "plugins").contains(&"slow_a".to_owned()));

    // A request naming a plugin still loading: 503, try again shortly.
    let refused = post_export(&daemon, &token, &both);
    assert_eq!(
        refused.status,
        503,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let retry_after: u64 = refused
        .header("Retry-After")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=30).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(refused.error_code(), "plugin_loading");
    let message = refused.json()["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned();
    assert!(message.contains("loading"), "{message}");
    assert!(message.contains("slow_a"), "{message}");

    // A reload while they load keeps waiting for the loads under way.
    daemon.signal("HUP");
    let hup = Instant::now();
    while !daemon.log().contains("plugins reloaded") {
        assert!(
            hup.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload within 10 s\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The others serve meanwhile.
    let csv = csv_export(&daemon);
    let csv_id = loop {
        let answer = post_export(&daemon, &token, &csv);
        if answer.status != 503 {
            assert_eq!(
                answer.status,
                202,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            break answer.json()["id"].as_str().expect("an id").to_owned();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        daemon.wait_until_done(&csv_id, &token)["status"],
        "completed"
    );

    // The queued exports wait for their plugins rather than fail.
    for id in &queued {
        let now = status(&daemon, &token, id);
        assert!(
            now == "pending" || now == "processing",
            "export {id} is {now} while its plugins load\n{}",
            daemon.log()
        );
    }

    let plugins = wait_until_loaded(&daemon, &token, Duration::from_secs(90));
    for name in ["slow_a", "slow_b"] {
        assert_eq!(
            find(&plugins, "plugins", name)["status"],
            "loaded",
            "{plugins:#}"
        );
    }
    assert!(names(&plugins, "failed").is_empty(), "{plugins:#}");
    for id in &queued {
        let record = daemon.wait_until_done(id, &token);
        assert_eq!(record["status"], "completed", "{record:#}");
        assert_eq!(record["row_count"], 3, "{record:#}");
    }
    let again = queue(&daemon, &token, &both);
    assert_eq!(
        daemon.wait_until_done(&again, &token)["status"],
        "completed"
    );

    // Loaded once each, the reload notwithstanding.
    let log = daemon.log()[first_run..].to_owned();
    for name in ["slow_a", "slow_b"] {
        let loads = log
            .lines()
            .filter(|line| {
                line.contains("plugin loaded") && line.contains(&format!("plugin={name} "))
            })
            .count();
        assert_eq!(loads, 1, "{name} loaded {loads} times\n{log}");
    }
}

#[test]
fn a_plugin_slower_than_its_load_timeout_fails_naming_it_and_the_others_serve() {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        slow(&sandbox, "late_in", "in-process", "2s"),
        slow(&sandbox, "late_iso", "process", "2s"),
    ]);
    let started = Instant::now();
    let daemon = Daemon::start_while_loading(sandbox, &[(SLEEP_ENV, "30000")]);
    let token = daemon.token("ada", false);
    let plugins = wait_until_loaded(&daemon, &token, Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeouts took {:?}",
        started.elapsed()
    );
    assert_eq!(
        names(&plugins, "failed"),
        ["late_in", "late_iso"],
        "{plugins:#}"
    );
    for name in ["late_in", "late_iso"] {
        let failed = find(&plugins, "failed", name);
        assert_eq!(failed["cause"], "load", "{failed}");
        let reason = failed["reason"].as_str().expect("a reason");
        assert!(reason.contains("did not load within 2s"), "{reason}");
        assert!(reason.contains("load_timeout"), "{reason}");
    }
    assert_eq!(names(&plugins, "plugins"), ["csv"], "{plugins:#}");

    let id = queue(&daemon, &token, &csv_export(&daemon));
    assert_eq!(daemon.wait_until_done(&id, &token)["status"], "completed");
    // A plugin that failed is unknown, not loading: no point retrying.
    let answer = post_export(
        &daemon,
        &token,
        &json!({"loader": "late_in/redteam", "format": "csv/csv", "selector": {}}),
    );
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.header("Retry-After").is_none());
}

/// Runs `export-host export` over `sandbox` with the fixture sleeping `ms`
/// while it is built; its output and how long it took.
fn one_shot(sandbox: &Sandbox, ms: &str, loader: &str) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_export-host"))
        .arg("--plugins")
        .arg(sandbox.plugins_toml())
        .args(["export", "--loader", loader, "--format", "csv/csv"])
        .args(["--selector", r#"{"mode": "normal"}"#])
        .current_dir(sandbox.path())
        .env_remove("EXPORT_HOST_LOG")
        .env_remove("EXPORT_HOST_PLUGINS")
        .env(SLEEP_ENV, ms)
        .output()
        .expect("running export-host");
    (output, started.elapsed())
}

#[test]
fn the_one_shot_export_loads_its_plugins_first_within_their_load_timeout() {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        slow(&sandbox, "patient", "in-process", "30s"),
        slow(&sandbox, "late", "in-process", "2s"),
    ]);
    // Slow but within its limit: loaded before the export runs.
    let (output, _) = one_shot(&sandbox, "1500", "patient/redteam");
    let stdout = common::succeeded(&output);
    assert_eq!(
        String::from_utf8_lossy(&stdout).lines().count(),
        4,
        "a header and three rows"
    );
    // Past it: refused with the limit named, without waiting the 30 s out.
    let (output, took) = one_shot(&sandbox, "30000", "late/redteam");
    let stderr = common::refused(&output, common::Exit::Refused, &["did not load within 2s"]);
    assert!(stderr.contains("load_timeout"), "{stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}\n{stderr}");
}
