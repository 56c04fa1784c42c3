//! `export-host serve` as a real process on 127.0.0.1 (SQLite and local
//! files in a temporary DATA_DIR), driven over HTTP: create -> wait/poll ->
//! download equal to the one-shot CLI, per-user scoping, tokens, signed
//! links, Range, If-None-Match, download counting, errors, SIGTERM.

mod common;
mod server_common;

use common::Sandbox;
use serde_json::{json, Value};
use server_common::Daemon;
use std::time::Duration;

/// A sandbox with csv and json plugins and a people.csv of `rows` rows.
fn sandbox(rows: usize) -> Sandbox {
    let sandbox = Sandbox::with_csv_and_json();
    let mut text = String::from("id,name,note\n");
    for n in 0..rows {
        text.push_str(&format!(
            "{n},person {n},\"note, with \"\"quotes\"\" {n}\"\n"
        ));
    }
    sandbox.put("people.csv", text);
    sandbox
}

fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("a record id").to_owned()
}

/// The export `id` as `export-host exports show --json` prints it (read
/// from the database, so it works with the daemon stopped).
fn shown_by_the_cli(daemon: &Daemon, id: &str) -> Value {
    let shown = common::succeeded(&daemon.cli(&["exports", "show", id, "--json"]));
    serde_json::from_slice(&shown).expect("exports show --json")
}

/// The rows of the big.csv of [`big_export_in_processing`]: enough that its
/// export to JSON takes a while.
const BIG_ROWS: usize = 600_000;

/// Starts a daemon with `extra` settings over a big.csv of [`BIG_ROWS`]
/// rows, has alice submit a csv -> json export of it, and waits until a
/// worker is processing it. Returns the daemon, alice's token and the id.
fn big_export_in_processing(extra: &[(&str, &str)]) -> (Daemon, String, String) {
    let sandbox = sandbox(0);
    let mut text = String::from("id,name,note\n");
    for n in 0..BIG_ROWS {
        text.push_str(&format!("{n},person {n},a note that takes some room {n}\n"));
    }
    sandbox.put("big.csv", text);
    let daemon = Daemon::start(sandbox, extra);
    let alice = daemon.token("alice", false);
    let request = json!({"loader": "csv", "format": "json", "selector": {"path": "big.csv"}});
    let id = id_of(&daemon.post("/v1/exports", Some(&alice), &request).json());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let record = daemon
            .get(&format!("/v1/exports/{id}"), Some(&alice))
            .json();
        match record["status"].as_str() {
            Some("processing") => break,
            Some("pending") => {}
            other => panic!("{id} became {other:?} before it was processing: {record}"),
        }
        assert!(std::time::Instant::now() < deadline, "never processing");
        std::thread::sleep(Duration::from_millis(10));
    }
    (daemon, alice, id)
}

#[test]
fn create_wait_poll_and_download_match_the_one_shot_cli() {
    let daemon = Daemon::start(sandbox(3000), &[]);
    let alice = daemon.token("alice", false);

    // ?wait holds the answer until the export ends.
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let record = daemon.create_and_wait(&alice, &request);
    assert_eq!(record["user_id"], "alice");
    assert_eq!(record["row_count"], 3000);
    assert_eq!(record["download_count"], 0);
    let id = id_of(&record);

    // The same bytes as `export-host export ... -o -`.
    let expected = daemon.sandbox.export(
        "csv",
        "csv",
        &json!({"path": "people.csv"}),
        &json!({}),
        &["-o", "-"],
    );
    let expected = common::succeeded(&expected);
    let download = daemon.get(&format!("/v1/exports/{id}/download"), Some(&alice));
    assert_eq!(download.status, 200);
    assert_eq!(download.body, expected, "downloaded bytes equal the CLI's");
    assert_eq!(
        download.header("content-type"),
        record["mime_type"].as_str()
    );
    assert_eq!(
        download.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    let etag = format!("\"{}\"", record["sha256"].as_str().expect("a sha256"));
    assert_eq!(download.header("etag"), Some(etag.as_str()));
    let disposition = download
        .header("content-disposition")
        .expect("a disposition");
    assert!(
        disposition.starts_with("attachment;") && disposition.contains(&format!("{id}.csv")),
        "{disposition}"
    );

    // Without ?wait: 202 pending/processing, then polled to completion.
    let request = json!({"loader": "csv", "format": "json", "selector": {"path": "people.csv"}});
    let answer = daemon.post("/v1/exports", Some(&alice), &request);
    assert!(
        answer.status == 202 || answer.status == 200,
        "{}",
        answer.status
    );
    let json_id = id_of(&answer.json());
    let done = daemon.wait_until_done(&json_id, &alice);
    assert_eq!(done["status"], "completed", "{done}");
    let expected = common::succeeded(&daemon.sandbox.export(
        "csv",
        "json",
        &json!({"path": "people.csv"}),
        &json!({}),
        &["-o", "-"],
    ));
    let download = daemon.get(&format!("/v1/exports/{json_id}/download"), Some(&alice));
    assert_eq!(download.status, 200);
    assert_eq!(download.body, expected);

    // Range: one range answers 206 with exactly those bytes.
    let path = format!("/v1/exports/{id}/download");
    let whole = daemon.get(&path, Some(&alice)).body;
    // A download by alice with one header more.
    let download_with = |header: &str, value: &str| {
        daemon.request("GET", &path, Some(&alice), &[(header, value)], None)
    };
    let part = download_with("Range", "bytes=100-1099");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole[100..1100]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-1099/{}", whole.len()).as_str())
    );
    let tail = download_with("Range", "bytes=-10");
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, whole[whole.len() - 10..]);
    let open = download_with("Range", "bytes=2000-");
    assert_eq!(open.status, 206);
    assert_eq!(open.body, whole[2000..]);
    let past = download_with("Range", &format!("bytes={}-", whole.len()));
    assert_eq!(past.status, 416);
    assert_eq!(past.error_code(), "range_not_satisfiable");

    // If-None-Match: 304 with no body, and not counted.
    let cached = download_with("If-None-Match", &etag);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    let other = download_with("If-None-Match", "\"something-else\"");
    assert_eq!(other.status, 200);

    // Counted: 1 + 1 (whole) + 3 ranges + 1 (If-None-Match mismatch) = 6.
    let record = daemon
        .get(&format!("/v1/exports/{id}"), Some(&alice))
        .json();
    assert_eq!(record["download_count"], 6, "{record}");
    assert!(record["last_downloaded_at"].is_string(), "{record}");
}

#[test]
fn users_see_only_their_own_exports_and_tokens_are_required() {
    let daemon = Daemon::start(sandbox(10), &[]);
    let alice = daemon.token("alice", false);
    let bob = daemon.token("bob", false);
    let admin = daemon.token("root", true);

    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let record = daemon
        .post("/v1/exports?wait=30", Some(&alice), &request)
        .json();
    assert_eq!(record["status"], "completed", "{record}");
    let id = id_of(&record);
    let bob_record = daemon
        .post("/v1/exports?wait=30", Some(&bob), &request)
        .json();
    let bob_id = id_of(&bob_record);

    // Bob: 404 for Alice's export everywhere, exactly like a missing id.
    let missing = "exp_00000000000000000000000000000000";
    for target in [id.as_str(), missing] {
        let get = daemon.get(&format!("/v1/exports/{target}"), Some(&bob));
        assert_eq!(get.status, 404, "get {target}");
        assert_eq!(get.error_code(), "not_found");
        let download = daemon.get(&format!("/v1/exports/{target}/download"), Some(&bob));
        assert_eq!(download.status, 404, "download {target}");
        let link = daemon.post(
            &format!("/v1/exports/{target}/link"),
            Some(&bob),
            &json!({"ttl": 60}),
        );
        assert_eq!(link.status, 404, "link {target}");
        let delete = daemon.delete(&format!("/v1/exports/{target}"), Some(&bob));
        assert_eq!(delete.status, 404, "delete {target}");
        assert_eq!(delete.error_code(), "not_found");
    }
    assert_eq!(daemon.get("/v1/exports/not-an-id", Some(&bob)).status, 404);

    // Lists are scoped; an admin sees both.
    let ids = |token: &str| -> Vec<String> {
        let page = daemon.get("/v1/exports", Some(token)).json();
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(id_of)
            .collect()
    };
    assert_eq!(ids(&bob), vec![bob_id.clone()]);
    assert_eq!(ids(&alice), vec![id.clone()]);
    let all = ids(&admin);
    assert!(all.contains(&id) && all.contains(&bob_id), "{all:?}");
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{id}"), Some(&admin))
            .status,
        200
    );

    // Filters and pagination.
    let page = daemon
        .get("/v1/exports?limit=1&status=completed", Some(&admin))
        .json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let cursor = page["next_cursor"].as_str().expect("a next cursor");
    let next = daemon
        .get(
            &format!("/v1/exports?limit=1&status=completed&cursor={cursor}"),
            Some(&admin),
        )
        .json();
    assert_eq!(next["items"].as_array().map(Vec::len), Some(1));
    assert_ne!(next["items"][0]["id"], page["items"][0]["id"]);
    let none = daemon.get("/v1/exports?status=failed", Some(&admin)).json();
    assert_eq!(none["items"], json!([]));
    let bad = daemon.get("/v1/exports?status=nope", Some(&admin));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_code(), "invalid_request");

    // No token, a malformed or unknown token: 401 everywhere.
    let unknown = format!("eht_{}", "0".repeat(64));
    for token in [None, Some("garbage"), Some(unknown.as_str())] {
        for (method, path) in [
            ("GET", "/v1/exports".to_owned()),
            ("POST", "/v1/exports".to_owned()),
            ("GET", format!("/v1/exports/{id}")),
            ("GET", format!("/v1/exports/{id}/download")),
            ("GET", format!("/v1/exports/{id}/events")),
            ("POST", format!("/v1/exports/{id}/link")),
            ("DELETE", format!("/v1/exports/{id}")),
            ("GET", "/v1/plugins".to_owned()),
        ] {
            let body = (method == "POST").then(|| request.to_string());
            let answer = daemon.request(method, &path, token, &[], body.as_deref());
            assert_eq!(answer.status, 401, "{method} {path} with {token:?}");
            assert_eq!(answer.error_code(), "unauthorized");
        }
    }

    // A revoked token stops working.
    let listed = common::succeeded(&daemon.cli(&["token", "list", "--user", "bob", "--json"]));
    let listed: Value = serde_json::from_slice(&listed).expect("token list --json");
    let token_id = listed[0]["id"].as_str().expect("a token id").to_owned();
    assert!(
        !String::from_utf8_lossy(&common::succeeded(&daemon.cli(&["token", "list"])))
            .contains(&bob)
    );
    common::succeeded(&daemon.cli(&["token", "revoke", &token_id]));
    assert_eq!(daemon.get("/v1/exports", Some(&bob)).status, 401);
    assert_eq!(daemon.get("/v1/exports", Some(&alice)).status, 200);

    // Alice deletes her finished export: 204, then 404.
    daemon.delete_and_check_gone(&id, &alice);
}

#[test]
fn signed_links_work_without_a_token_until_they_expire() {
    let daemon = Daemon::start(sandbox(50), &[]);
    let alice = daemon.token("alice", false);
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let record = daemon
        .post("/v1/exports?wait=30", Some(&alice), &request)
        .json();
    let id = id_of(&record);
    let expected = daemon
        .get(&format!("/v1/exports/{id}/download"), Some(&alice))
        .body;

    let link = daemon.post(
        &format!("/v1/exports/{id}/link"),
        Some(&alice),
        &json!({"ttl": 600}),
    );
    assert_eq!(link.status, 200);
    let link = link.json();
    let url = link["url"].as_str().expect("a url").to_owned();
    assert!(link["expires_at"].is_string(), "{link}");
    assert!(url.contains("expires=") && url.contains("sig="), "{url}");

    // Valid: no token needed.
    let answer = daemon.get(&url, None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, expected);

    // Forged: a changed signature, a changed expiry, another export's id.
    let (head, sig) = url.rsplit_once("sig=").expect("sig=");
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    let forged = format!("{head}sig={flipped}{}", &sig[1..]);
    let refused = daemon.get(&forged, None);
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error_code(), "link_invalid");
    let later = url.replace("expires=", "expires=9");
    assert_eq!(daemon.get(&later, None).status, 403);
    let other = url.replace(&id, "exp_00000000000000000000000000000000");
    assert_eq!(daemon.get(&other, None).status, 403);
    let no_sig = url.split("&sig=").next().expect("a url");
    assert_eq!(daemon.get(no_sig, None).status, 403);

    // Expired.
    let short = daemon
        .post(
            &format!("/v1/exports/{id}/link"),
            Some(&alice),
            &json!({"ttl": 1}),
        )
        .json();
    std::thread::sleep(Duration::from_millis(2100));
    let expired = daemon.get(short["url"].as_str().expect("a url"), None);
    assert_eq!(expired.status, 403);
    assert_eq!(expired.error_code(), "link_expired");

    // A bad ttl is a 400.
    let bad = daemon.post(
        &format!("/v1/exports/{id}/link"),
        Some(&alice),
        &json!({"ttl": 0}),
    );
    assert_eq!(bad.status, 400);

    // The signing key was generated once, private to the daemon's user.
    let key = daemon.data_dir.join("signing.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key)
            .expect("DATA_DIR/signing.key")
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "signing.key is mode {mode:o}");
}

#[test]
fn bad_requests_get_json_errors_and_plugins_are_listed() {
    let daemon = Daemon::start(sandbox(5), &[]);
    let alice = daemon.token("alice", false);

    let unknown = daemon.post(
        "/v1/exports",
        Some(&alice),
        &json!({"loader": "nope", "format": "csv", "selector": {}}),
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.error_code(), "invalid_request");
    assert!(
        unknown.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{}",
        unknown.json()
    );
    let schema = daemon.post(
        "/v1/exports",
        Some(&alice),
        &json!({"loader": "csv", "format": "csv", "selector": {"pth": "x"}}),
    );
    assert_eq!(schema.status, 400);
    let not_json = daemon.request("POST", "/v1/exports", Some(&alice), &[], Some("{not json"));
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.error_code(), "invalid_request");
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let negative = daemon.post("/v1/exports?wait=-1", Some(&alice), &request);
    assert_eq!(negative.status, 400);
    assert_eq!(negative.error_code(), "invalid_request");
    // A huge wait is capped (and never overflows): the export ends first.
    let huge_wait = daemon.post("/v1/exports?wait=1e300", Some(&alice), &request);
    assert_eq!(huge_wait.json_with_status(200)["status"], "completed");
    let wrong = daemon.request("PUT", "/v1/exports", Some(&alice), &[], None);
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.error_code(), "method_not_allowed");
    let nowhere = daemon.get("/v2/whatever", Some(&alice));
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.error_code(), "not_found");

    let plugins = daemon.get("/v1/plugins", Some(&alice));
    assert_eq!(plugins.status, 200);
    let plugins = plugins.json();
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"csv") && names.contains(&"json"),
        "{plugins}"
    );
    assert!(plugins["plugins"][0]["loaders"].is_array(), "{plugins}");

    assert_eq!(daemon.get("/healthz", None).status, 200);
    assert_eq!(daemon.get("/readyz", None).status, 200);

    // A body one byte over the limit (1 MiB) is refused with 413. Sent by
    // hand: the daemon reads it all before refusing, so the exchange ends
    // cleanly instead of racing a client still writing into a closed socket.
    let addr = daemon.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let prefix = "{\"loader\":\"csv\",\"format\":\"csv\",\"selector\":{\"path\":\"";
    let suffix = "\"}}";
    let size = export_host::server::MAX_BODY + 1;
    let body = format!(
        "{prefix}{}{suffix}",
        "x".repeat(size - prefix.len() - suffix.len())
    );
    assert_eq!(body.len(), size);
    let head = format!(
        "POST /v1/exports HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    std::io::Write::write_all(&mut stream, head.as_bytes()).expect("sending the head");
    std::io::Write::write_all(&mut stream, body.as_bytes()).expect("sending the body");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"too_large\""), "{answer}");
}

#[test]
fn sigterm_stops_cleanly_with_exit_zero() {
    let mut daemon = Daemon::start(sandbox(20_000), &[]);
    let alice = daemon.token("alice", false);
    let request = json!({"loader": "csv", "format": "json", "selector": {"path": "people.csv"}});
    let record = daemon.post("/v1/exports", Some(&alice), &request).json();
    let id = id_of(&record);
    let status = daemon.stop_with("TERM", Duration::from_secs(40));
    assert_eq!(status.code(), Some(0), "exit status\n{}", daemon.log());
    assert!(daemon.log().contains("SIGTERM"), "{}", daemon.log());

    // The export finished or went back to the queue: never left processing.
    let shown = shown_by_the_cli(&daemon, &id);
    let status = shown["status"].as_str().unwrap_or_default();
    assert!(
        status == "completed" || status == "pending",
        "{id} is {status} after the stop\n{}",
        daemon.log()
    );
}

#[test]
fn sigterm_past_the_grace_period_returns_running_exports_to_the_queue() {
    let (mut daemon, alice, id) = big_export_in_processing(&[("EXPORT_HOST_SHUTDOWN_GRACE", "0")]);
    // Stop while it runs.
    let status = daemon.stop_with("TERM", Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status\n{}", daemon.log());
    let shown = shown_by_the_cli(&daemon, &id);
    eprintln!("after the stop: {}", shown["status"]);
    match shown["status"].as_str() {
        Some("pending") => {
            assert!(daemon.log().contains("released"), "{}", daemon.log());
            assert_eq!(
                shown["attempts"], 0,
                "a release gives the attempt back: {shown}"
            );
        }
        // Finished in the instant between the poll and the signal.
        Some("completed") => {}
        other => panic!("{id} is {other:?} after the stop\n{}", daemon.log()),
    }

    // The next start runs it to completion.
    daemon.restart();
    let done = daemon.wait_until_done(&id, &alice);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["row_count"], BIG_ROWS);
}

#[test]
fn the_openapi_document_matches_the_routes() {
    let daemon = Daemon::start(sandbox(5), &[]);
    let alice = daemon.token("alice", false);
    let request = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let id = id_of(
        &daemon
            .post("/v1/exports?wait=30", Some(&alice), &request)
            .json(),
    );

    let doc = daemon.get("/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut expected = vec![
        "POST /v1/exports",
        "GET /v1/exports",
        "GET /v1/exports/{id}",
        "DELETE /v1/exports/{id}",
        "GET /v1/exports/{id}/download",
        "GET /v1/exports/{id}/events",
        "POST /v1/exports/{id}/link",
        "GET /v1/plugins",
        "GET /v1/openapi.json",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
    ];
    expected.sort();
    assert_eq!(documented, expected);

    // Every documented operation is served (DELETE last: it removes the export).
    documented.sort_by_key(|op| op.starts_with("DELETE"));
    for op in &documented {
        let (method, path) = op.split_once(' ').expect("METHOD path");
        let path = path.replace("{id}", &id);
        let body = match (method, path.ends_with("/link")) {
            ("POST", true) => Some(json!({"ttl": 60}).to_string()),
            ("POST", false) => Some(request.to_string()),
            _ => None,
        };
        let answer = daemon.request(method, &path, Some(&alice), &[], body.as_deref());
        assert!(
            (200..300).contains(&answer.status),
            "{op}: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
}

#[test]
fn a_daemon_killed_mid_export_leaves_nothing_stuck_in_processing() {
    let (mut daemon, alice, id) = big_export_in_processing(&[("EXPORT_HOST_LEASE_SECONDS", "2")]);
    let status = daemon.stop_with("KILL", Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");

    // Restarted: the lost lease runs out, the export is requeued and done.
    daemon.restart();
    let done = daemon.wait_until_done(&id, &alice);
    assert_eq!(done["status"], "completed", "{done}\n{}", daemon.log());
    assert_eq!(done["row_count"], BIG_ROWS);
    // Unless it finished in the instant before the kill, this was a retry.
    let attempts = done["attempts"].as_i64().unwrap_or_default();
    eprintln!("attempts after the kill and restart: {attempts}");
    assert!((1..=2).contains(&attempts), "{done}");
}
