//! Faults are attributed: a worker fault, or a daemon that dies inside a
//! plugin call, fails the export naming the plugin and counts against the
//! plugin for the export's user; quarantine holds off one user first and
//! everyone only when faults come from several users; the state lives in
//! the database, so the API, the CLI and every daemon agree. On SQLite and
//! PostgreSQL.

#[macro_use]
mod records_common;
mod common;
mod faults_common;
mod server_common;

use std::time::Duration;

use chrono::TimeDelta;
use common::*;
use export_host::records::quarantine::DAEMON_DIED;
use export_host::records::{NewPluginFault, QuarantinePolicy, Records, Scope, Status};
use faults_common::FreshPg;
use records_common::*;
use serde_json::{json, Value};
use server_common::Daemon;

const FAULTY_LIB: &str = "libexport_test_faulty.so";

// ---------------------------------------------------------------------------
// The records: both backends

const POLICY: QuarantinePolicy = QuarantinePolicy {
    after: 2,
    window: Duration::from_secs(600),
    users: 2,
};

async fn fault(
    records: &Records,
    user: &str,
    sha256: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) {
    records
        .record_plugin_fault(
            &NewPluginFault {
                plugin: "faulty",
                sha256,
                user_id: user,
                cause: "signal",
                message: "crashed: SIGSEGV",
                export_id: None,
            },
            POLICY.window,
            at,
        )
        .await
        .expect("record a fault");
}

async fn one_user_first_then_everyone(records: Records) {
    let now = t0();
    fault(&records, "ada", Some("aaa"), now).await;
    let state = records
        .quarantine_for("faulty", Some("aaa"), "ada", &POLICY, now)
        .await
        .expect("ask");
    assert!(
        !state.holds("ada"),
        "one fault is below quarantine_after: {state:?}"
    );

    fault(&records, "ada", Some("aaa"), now + secs(10)).await;
    let at = now + secs(20);
    let ada = records
        .quarantine_for("faulty", Some("aaa"), "ada", &POLICY, at)
        .await
        .expect("ask");
    assert!(ada.holds("ada") && ada.global.is_none(), "{ada:?}");
    // Held until the first of the two ages out of the window.
    assert_eq!(ada.held_until("ada"), Some(now + secs(600)));
    let refusal = ada.refusal("faulty", "ada", &POLICY).expect("refused");
    assert!(
        refusal.contains("plugin \"faulty\" is quarantined for user \"ada\"")
            && refusal.contains("2 times within 10m")
            && refusal.contains("SIGSEGV"),
        "{refusal}"
    );
    let bob = records
        .quarantine_for("faulty", Some("aaa"), "bob", &POLICY, at)
        .await
        .expect("ask");
    assert!(!bob.holds("bob"), "another user is not held: {bob:?}");
    // A new library starts afresh; faults of an unknown library still count.
    let replaced = records
        .quarantine_for("faulty", Some("bbb"), "ada", &POLICY, at)
        .await
        .expect("ask");
    assert!(!replaced.holds("ada"), "{replaced:?}");

    // A second user's fault: faults from 2 users, 3 in all.
    fault(&records, "bob", None, now + secs(30)).await;
    let at = now + secs(40);
    let everyone = records
        .plugin_quarantine("faulty", Some("aaa"), &POLICY, at)
        .await
        .expect("ask");
    let global = everyone.global.as_ref().expect("held for everyone");
    assert_eq!((global.users, global.faults), (2, 3), "{everyone:?}");
    assert_eq!(everyone.users_held.len(), 1, "only ada has 2 faults");
    assert!(everyone.holds("carol"));
    let refusal = everyone
        .refusal("faulty", "carol", &POLICY)
        .expect("refused");
    assert!(
        refusal.contains("quarantined for every user") && refusal.contains("2 different users"),
        "{refusal}"
    );
    assert_eq!(
        everyone.last.as_ref().map(|f| f.user_id.as_str()),
        Some("bob")
    );

    // Everything lifts once the faults age out of the window.
    let later = now + secs(700);
    let state = records
        .plugin_quarantine("faulty", Some("aaa"), &POLICY, later)
        .await
        .expect("ask");
    assert!(
        state.global.is_none() && state.users_held.is_empty(),
        "{state:?}"
    );
    // Another plugin was never affected.
    let other = records
        .plugin_quarantine("csv", None, &POLICY, at)
        .await
        .expect("ask");
    assert_eq!(other, Default::default());
}

async fn a_second_death_inside_the_same_plugin_fails_naming_it(records: Records) {
    let now = t0();
    let lease = TimeDelta::seconds(LEASE.as_secs() as i64);
    let record = records
        .insert(new_export("ada"), now)
        .await
        .expect("insert");
    claim(&records, &record.id, now).await;
    assert!(records
        .mark_in_plugins(&record.id, WORKER, Some(&["faulty"]), now)
        .await
        .expect("mark"));

    // The first death inside it: retried (a daemon may be killed for
    // reasons that are not the plugin's).
    let sweep = records
        .requeue_expired_leases(now + lease + secs(1), 3)
        .await
        .expect("sweep");
    assert_eq!(sweep.requeued, vec![record.id.clone()]);

    // The second: failed naming the plugin, and a fault for ada.
    let again = now + lease + secs(2);
    claim(&records, &record.id, again).await;
    records
        .mark_in_plugins(&record.id, WORKER, Some(&["faulty"]), again)
        .await
        .expect("mark");
    let sweep = records
        .requeue_expired_leases(again + lease + secs(1), 3)
        .await
        .expect("sweep");
    assert_eq!(sweep.failed, vec![record.id.clone()]);
    assert!(sweep.requeued.is_empty());
    let failed = records.get(&Scope::Admin, &record.id).await.expect("get");
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.attempts, 2);
    let error = failed.error.unwrap_or_default();
    assert!(
        error.contains("died twice") && error.contains("plugin \"faulty\""),
        "{error}"
    );
    let state = records
        .plugin_quarantine(
            "faulty",
            Some("any library"),
            &POLICY,
            again + lease + secs(2),
        )
        .await
        .expect("ask");
    assert_eq!(state.faults, 1, "{state:?}");
    let last = state.last.expect("the death is recorded");
    assert_eq!(
        (last.user_id.as_str(), last.cause.as_str()),
        ("ada", DAEMON_DIED)
    );
    assert_eq!(last.export_id.as_deref(), Some(record.id.as_str()));
}

async fn deaths_outside_plugins_are_retried_as_before(records: Records) {
    let now = t0();
    let lease = TimeDelta::seconds(LEASE.as_secs() as i64);
    let record = records
        .insert(new_export("ada"), now)
        .await
        .expect("insert");
    let mut at = now;
    for attempt in 1..=2 {
        claim(&records, &record.id, at).await;
        // Inside the plugin, then out of it (writing the file) when it died.
        records
            .mark_in_plugins(&record.id, WORKER, Some(&["faulty"]), at)
            .await
            .expect("mark");
        records
            .mark_in_plugins(&record.id, WORKER, None, at)
            .await
            .expect("mark");
        at = at + lease + secs(1);
        let sweep = records.requeue_expired_leases(at, 3).await.expect("sweep");
        assert_eq!(sweep.requeued, vec![record.id.clone()], "attempt {attempt}");
    }
    let state = records
        .plugin_quarantine("faulty", None, &POLICY, at)
        .await
        .expect("ask");
    assert_eq!(state.faults, 0);
}

both_backends!(
    one_user_first_then_everyone,
    a_second_death_inside_the_same_plugin_fails_naming_it,
    deaths_outside_plugins_are_retried_as_before,
);

// ---------------------------------------------------------------------------
// The daemon

/// The faulty plugin, isolated, quarantined after `after` faults of one
/// user, or of `users` different users.
fn sandbox(after: i64, users: i64) -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("faulty", library(FAULTY_LIB))
            .set("isolation", "process")
            .set("timeout", "20s")
            .set("memory_limit", "256MiB")
            .set("quarantine_after", after)
            .set("quarantine_users", users)
            .set("quarantine_window", "10m"),
    ]);
    sandbox.put("small.csv", "id\n007\n");
    sandbox
}

fn create(daemon: &Daemon, token: &str, request: &Value) -> String {
    let answer = daemon.post("/v1/exports", Some(token), request);
    assert!(
        answer.status == 200 || answer.status == 201 || answer.status == 202,
        "{} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["id"].as_str().expect("an id").to_owned()
}

fn export(daemon: &Daemon, token: &str, request: &Value) -> Value {
    let id = create(daemon, token, request);
    daemon.wait_until_done(&id, token)
}

fn segfault() -> Value {
    json!({"loader": "faulty/faulty", "format": "csv/csv", "selector": {"fault": "segfault"}})
}

fn healthy() -> Value {
    json!({"loader": "faulty/faulty", "format": "faulty/faulty", "selector": {}})
}

fn faulty_listing(daemon: &Daemon, token: &str) -> Value {
    let plugins = daemon.get("/v1/plugins", Some(token)).json();
    plugins["plugins"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "faulty"))
        .cloned()
        .unwrap_or_else(|| panic!("faulty is not listed: {plugins}"))
}

fn assert_failed_with(record: &Value, needles: &[&str]) {
    assert_eq!(record["status"], "failed", "{record}");
    let error = record["error"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} not in {record}");
    }
}

/// Ada's crashing selectors hold Ada off the plugin, on `first`; `second`
/// (the same daemon, or another on the same database) agrees, and Bob
/// still exports with it there.
fn one_user_is_held_and_another_is_not(first: &Daemon, second: &Daemon) {
    let ada = first.token("ada", false);
    let bob = first.token("bob", false);
    for _ in 0..2 {
        let record = export(first, &ada, &segfault());
        assert_failed_with(&record, &["plugin \"faulty\"", "SIGSEGV"]);
    }
    let record = export(second, &ada, &healthy());
    assert_failed_with(
        &record,
        &[
            "plugin \"faulty\" is quarantined for user \"ada\"",
            "2 times within 10m",
            "SIGSEGV",
            "other users are not affected",
        ],
    );
    let record = export(second, &bob, &healthy());
    assert_eq!(record["status"], "completed", "{record}");

    let for_ada = faulty_listing(second, &ada);
    assert_eq!(for_ada["status"], "quarantined", "{for_ada}");
    assert!(for_ada["quarantined_until"].is_string(), "{for_ada}");
    assert_eq!(for_ada["quarantine"]["caller_held"], true, "{for_ada}");
    let for_bob = faulty_listing(second, &bob);
    assert_eq!(for_bob["status"], "loaded", "{for_bob}");
    assert_eq!(for_bob["quarantine"]["users_held"], 1, "{for_bob}");
    assert!(for_bob["quarantine"]["global"].is_null(), "{for_bob}");
    assert!(
        for_bob["quarantine"].get("users").is_none(),
        "only admins see who: {for_bob}"
    );
    assert_eq!(for_bob["last_fault"]["kind"], "signal", "{for_bob}");
}

#[test]
fn one_users_crashing_selectors_quarantine_that_user_only() {
    let daemon = Daemon::start(sandbox(2, 3), &[]);
    one_user_is_held_and_another_is_not(&daemon, &daemon);
    let listed = succeeded(&daemon.cli(&["plugins", "list"]));
    let text = String::from_utf8_lossy(&listed);
    assert!(text.contains("quarantined for 1 user: ada until"), "{text}");
}

#[test]
fn daemons_sharing_postgres_agree_on_a_users_quarantine() {
    let pg = FreshPg::new();
    let env = [("EXPORT_HOST_DATABASE_URL", pg.url.as_str())];
    let first = Daemon::start(sandbox(2, 3), &env);
    let second = Daemon::start(sandbox(2, 3), &env);
    one_user_is_held_and_another_is_not(&first, &second);
}

#[test]
fn faults_from_several_users_quarantine_it_for_everyone() {
    let daemon = Daemon::start(sandbox(2, 2), &[]);
    for user in ["ada", "bob"] {
        let token = daemon.token(user, false);
        let record = export(&daemon, &token, &segfault());
        assert_failed_with(&record, &["plugin \"faulty\"", "SIGSEGV"]);
    }
    // Neither has two faults, but together they hold everyone off.
    let carol = daemon.token("carol", false);
    let record = export(&daemon, &carol, &healthy());
    assert_failed_with(
        &record,
        &[
            "plugin \"faulty\" is quarantined for every user",
            "2 different users",
        ],
    );
    // Other plugins are not affected.
    let csv = json!({"loader": "csv", "format": "csv", "selector": {"path": "small.csv"}});
    assert_eq!(export(&daemon, &carol, &csv)["status"], "completed");

    let listed = faulty_listing(&daemon, &carol);
    assert_eq!(listed["status"], "quarantined", "{listed}");
    assert_eq!(listed["quarantine"]["global"]["users"], 2, "{listed}");
    assert!(
        listed["quarantine"]["global"]["until"].is_string(),
        "{listed}"
    );
    let admin = daemon.token("root", true);
    let listed = faulty_listing(&daemon, &admin);
    assert_eq!(listed["quarantine"]["users_held"], 0, "{listed}");

    let text = String::from_utf8_lossy(&succeeded(&daemon.cli(&["plugins", "list"]))).into_owned();
    let line = text
        .lines()
        .find(|line| line.starts_with("faulty"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("quarantined for every user until") && line.contains("2 users"),
        "{text}"
    );
    let json: Value =
        serde_json::from_slice(&succeeded(&daemon.cli(&["plugins", "list", "--json"])))
            .expect("JSON");
    let faulty = json
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["plugin"] == "faulty"))
        .cloned()
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(faulty["quarantine"]["global"]["users"], 2, "{faulty}");
    assert_eq!(faulty["quarantine"]["faults"], 2, "{faulty}");
}

/// Waits until `id` is processing its attempt `attempt` (claimed, so about
/// to call its plugin).
fn wait_processing(daemon: &Daemon, token: &str, id: &str, attempt: i64) {
    faults_common::wait_until(Duration::from_secs(30), "the export is processing", || {
        let record = daemon.get(&format!("/v1/exports/{id}"), Some(token)).json();
        match record["status"].as_str() {
            Some("processing") => record["attempts"].as_i64() == Some(attempt),
            Some("pending") => false,
            other => panic!("{id} became {other:?}: {record}\n{}", daemon.log()),
        }
    });
    // The claim is visible before the run notes the plugin on the row.
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn a_daemon_killed_inside_a_plugin_call_fails_the_export_naming_it() {
    let mut daemon = Daemon::start(sandbox(3, 3), &[("EXPORT_HOST_LEASE_SECONDS", "2")]);
    let ada = daemon.token("ada", false);
    // The loader hangs when opened: the daemon is inside the plugin call.
    let request = json!({
        "loader": "faulty/faulty", "format": "faulty/faulty",
        "selector": {"fault": "hang", "at": "open"},
    });
    let id = create(&daemon, &ada, &request);
    wait_processing(&daemon, &ada, &id, 1);
    daemon.stop_with("KILL", Duration::from_secs(10));

    // Restarted: a daemon can be killed for other reasons, so the export is
    // retried once; it is inside the same plugin when the daemon dies again.
    daemon.restart();
    wait_processing(&daemon, &ada, &id, 2);
    daemon.stop_with("KILL", Duration::from_secs(10));

    daemon.restart();
    let record = daemon.wait_until_done(&id, &ada);
    assert_failed_with(&record, &["plugin \"faulty\"", "died twice"]);
    assert_eq!(record["attempts"], 2, "not retried again: {record}");
    // It stays failed: no third claim.
    std::thread::sleep(Duration::from_secs(3));
    let record = daemon.get(&format!("/v1/exports/{id}"), Some(&ada)).json();
    assert_eq!(
        (record["status"].as_str(), record["attempts"].as_i64()),
        (Some("failed"), Some(2))
    );

    // The death counts against the plugin for Ada.
    let listed = faulty_listing(&daemon, &ada);
    assert_eq!(listed["last_fault"]["kind"], "daemon_died", "{listed}");
    assert_eq!(listed["quarantine"]["faults"], 1, "{listed}");
    // The daemon serves on.
    let record = export(&daemon, &ada, &healthy());
    assert_eq!(record["status"], "completed", "{record}");
}
