//! `export-host serve` on a fresh PostgreSQL database (the records tests
//! cover the backend in depth; this checks the daemon's paths on it: tokens,
//! create with ?wait, per-user scope, download, cancel-or-delete).

mod common;
#[allow(unused_macros)] // both_backends! is for the records tests
mod records_common;
mod server_common;

use common::Sandbox;
use serde_json::json;
use server_common::Daemon;

fn the_daemon_works_on(url: String) {
    let sandbox = Sandbox::with_csv();
    sandbox.put("people.csv", "id,name\n1,ann\n2,bo\n");
    let daemon = Daemon::start(sandbox, &[("EXPORT_HOST_DATABASE_URL", url.as_str())]);
    let alice = daemon.token("alice", false);
    let bob = daemon.token("bob", false);
    let admin = daemon.token("root", true);

    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let record = daemon.create_and_wait(&alice, &request);
    let id = record["id"].as_str().expect("an id").to_owned();

    let download = daemon.get(&format!("/v1/exports/{id}/download"), Some(&alice));
    assert_eq!(download.status, 200);
    assert_eq!(download.body, b"id,name\n1,ann\n2,bo\n");

    // Row-level security and the explicit filters agree: Bob sees nothing.
    assert_eq!(
        daemon.get(&format!("/v1/exports/{id}"), Some(&bob)).status,
        404
    );
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{id}/download"), Some(&bob))
            .status,
        404
    );
    assert_eq!(
        daemon.get("/v1/exports", Some(&bob)).json()["items"],
        json!([])
    );
    let all = daemon.get("/v1/exports", Some(&admin)).json();
    assert_eq!(all["items"][0]["id"], json!(id));
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{id}"), Some(&alice))
            .json()["download_count"],
        1
    );

    daemon.delete_and_check_gone(&id, &alice);
    assert!(
        !daemon.data_dir.join("exports.db").exists(),
        "no SQLite file when DATABASE_URL is PostgreSQL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_on_postgres() {
    records_common::with_scratch_postgres_url(the_daemon_works_on).await;
}
