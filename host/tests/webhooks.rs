//! Webhooks end to end: `export-host serve` as a real process on 127.0.0.1
//! (SQLite in a temporary DATA_DIR) and a receiver in this test on a
//! loopback port, which the allow list names literally. The signature is
//! recomputed here with its own HMAC; retries, refusals at submission, a
//! delivery owed across a SIGKILL and two daemons on one database.

mod common;
mod faults_common;
#[allow(unused_macros)] // both_backends! is for the records tests
mod records_common;
mod server_common;

use common::Sandbox;
use faults_common::{gate_sandbox, wait_until};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use server_common::Daemon;
use sha2::Sha256;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-test-0123456789abcdef";

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on 127.0.0.1 answering each POST with the next
/// status of its script (200 once the script is used up).
struct Receiver {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn start(script: &[u16]) -> Receiver {
        Receiver::on(
            TcpListener::bind("127.0.0.1:0").expect("a free port"),
            script,
        )
    }

    fn start_on(port: u16, script: &[u16]) -> Receiver {
        Receiver::on(
            TcpListener::bind(("127.0.0.1", port)).expect("the reserved port"),
            script,
        )
    }

    fn on(listener: TcpListener, script: &[u16]) -> Receiver {
        let port = listener.local_addr().expect("an address").port();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<u16>>> =
            Arc::new(Mutex::new(script.iter().copied().collect()));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                if let Some(hit) = serve_one(stream, status) {
                    seen.lock().unwrap().push(hit);
                }
            }
        });
        Receiver { port, hits }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn wait_for(&self, count: usize, within: Duration) -> Vec<Hit> {
        wait_until(within, &format!("{count} webhook POSTs"), || {
            self.hits().len() >= count
        });
        self.hits()
    }
}

/// Reads one HTTP/1.1 request and answers `status`, closing the connection.
fn serve_one(stream: TcpStream, status: u16) -> Option<Hit> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (key, value) = header.split_once(':')?;
        headers.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let at = Instant::now();
    let mut stream = stream;
    let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    let _ = stream.write_all(answer.as_bytes());
    Some(Hit {
        at,
        path,
        headers,
        body,
    })
}

/// Checks `Export-Host-Signature` with an HMAC computed here.
fn assert_signed(hit: &Hit) {
    let header = hit.header("export-host-signature").expect("a signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("t=...,v1=...: {header}"));
    let sent: i64 = t.parse().expect("unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - sent).abs() < 300,
        "a fresh timestamp: {sent} vs {now}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&hit.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, expected, "the signature of t.body under the secret");
    assert_eq!(hit.header("content-type"), Some("application/json"));
}

fn webhook_env(allow: &str) -> Vec<(String, String)> {
    vec![
        ("EXPORT_HOST_WEBHOOK_SECRET".to_owned(), SECRET.to_owned()),
        ("EXPORT_HOST_WEBHOOK_ALLOW".to_owned(), allow.to_owned()),
        ("EXPORT_HOST_WEBHOOK_BACKOFF".to_owned(), "200ms".to_owned()),
    ]
}

fn start(sandbox: Sandbox, env: &[(String, String)]) -> Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Daemon::start(sandbox, &env)
}

fn people() -> Sandbox {
    let sandbox = Sandbox::with_csv();
    sandbox.put("people.csv", "id,name\n1,ada\n2,grace\n");
    sandbox
}

fn csv_request(callback: &str) -> Value {
    json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"},
           "callback_url": callback})
}

/// Submits a csv export announcing its end to `callback`, waits for it to
/// end and returns the record the daemon answered with.
fn export_ended(daemon: &Daemon, token: &str, callback: &str) -> Value {
    let answer = daemon.post("/v1/exports?wait=30", Some(token), &csv_request(callback));
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

/// The record without its `webhook`, which changes as delivery goes on.
fn without_webhook(record: &Value) -> Value {
    let mut record = record.clone();
    record.as_object_mut().unwrap().remove("webhook");
    record
}

/// Polls the record until `check` holds.
fn wait_for_record(
    daemon: &Daemon,
    token: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    wait_until(Duration::from_secs(30), what, || {
        last = daemon.record(token, id);
        check(&last)
    });
    last
}

#[test]
fn a_completed_export_is_announced_once_correctly_signed() {
    let receiver = Receiver::start(&[]);
    let daemon = start(people(), &webhook_env(&receiver.base()));
    let alice = daemon.token("alice", false);

    let created = export_ended(&daemon, &alice, &receiver.url("/hooks/exports?tag=1"));
    assert_eq!(created["status"], "completed");
    assert_eq!(
        created["callback_url"],
        receiver.url("/hooks/exports?tag=1")
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let hits = receiver.wait_for(1, Duration::from_secs(15));
    let hit = &hits[0];
    assert_eq!(hit.path, "/hooks/exports?tag=1");
    assert_signed(hit);
    let record = wait_for_record(&daemon, &alice, &id, "delivery recorded", |r| {
        !r["webhook"]["delivered_at"].is_null()
    });
    let body = hit.json();
    assert_eq!(
        without_webhook(&body),
        without_webhook(&record),
        "the body is the final record"
    );
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["webhook"]["attempts"], 0,
        "the attempts before this one"
    );
    assert_eq!(record["webhook"]["attempts"], 1, "{record}");
    assert_eq!(record["webhook"]["last_status"], 200);
    assert!(record["webhook"]["gave_up_at"].is_null());
    assert!(record["webhook"]["next_attempt_at"].is_null());

    // Lists show the delivery state too.
    let list = daemon.get("/v1/exports", Some(&alice)).json();
    assert_eq!(list["items"][0]["webhook"], record["webhook"]);

    // Exactly once: nothing more arrives.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.hits().len(), 1, "one delivery only");

    // The API document describes the field, the state and the signature.
    let document = daemon.get("/v1/openapi.json", None).json();
    let schemas = &document["components"]["schemas"];
    assert!(schemas["ExportRequest"]["properties"]["callback_url"].is_object());
    assert!(schemas["ExportRecord"]["properties"]["webhook"].is_object());
    assert!(schemas["WebhookState"]["properties"]["delivered_at"].is_object());
    let create = document["paths"]["/v1/exports"]["post"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(create.contains("Export-Host-Signature"), "{create}");

    // Without a callback_url there is no webhook.
    let plain = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});
    let record = daemon
        .post("/v1/exports?wait=30", Some(&alice), &plain)
        .json();
    assert!(record["webhook"].is_null() && record["callback_url"].is_null());
}

#[test]
fn a_cancelled_export_is_announced_too() {
    let receiver = Receiver::start(&[]);
    let sandbox = gate_sandbox();
    let gate = sandbox.path().join("open-gate");
    let daemon = start(sandbox, &webhook_env(&receiver.base()));
    let alice = daemon.token("alice", false);
    let request = json!({"loader": "gate", "format": "csv", "selector": {"until": gate},
                         "callback_url": receiver.url("/cancelled")});
    let answer = daemon.post("/v1/exports", Some(&alice), &request);
    assert_eq!(
        answer.status,
        202,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    assert!(receiver.hits().is_empty(), "nothing before the end");
    let cancelled = daemon.delete(&format!("/v1/exports/{id}"), Some(&alice));
    assert_eq!(cancelled.status, 200);
    let hits = receiver.wait_for(1, Duration::from_secs(15));
    assert_signed(&hits[0]);
    assert_eq!(hits[0].json()["status"], "cancelled");
    assert_eq!(hits[0].json()["id"], id.as_str());
}

#[test]
fn a_failed_export_is_announced_too() {
    let receiver = Receiver::start(&[]);
    let mut env = webhook_env(&receiver.base());
    // people.csv has two rows: the export fails at the limit.
    env.push(("EXPORT_HOST_MAX_ROWS".to_owned(), "1".to_owned()));
    let daemon = start(people(), &env);
    let alice = daemon.token("alice", false);
    let record = export_ended(&daemon, &alice, &receiver.url("/failed"));
    assert_eq!(record["status"], "failed", "{record}");
    let hits = receiver.wait_for(1, Duration::from_secs(15));
    assert_signed(&hits[0]);
    let body = hits[0].json();
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"], record["error"]);
}

#[test]
fn a_failing_receiver_gets_retries_with_growing_waits() {
    let receiver = Receiver::start(&[500, 500, 200]);
    let daemon = start(people(), &webhook_env(&receiver.base()));
    let alice = daemon.token("alice", false);
    let id = export_ended(&daemon, &alice, &receiver.url("/flaky"))["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let hits = receiver.wait_for(3, Duration::from_secs(20));
    for hit in &hits {
        assert_signed(hit);
    }
    let first = hits[1].at - hits[0].at;
    let second = hits[2].at - hits[1].at;
    assert!(
        first >= Duration::from_millis(140),
        "the first retry waits about the 200ms base: {first:?}"
    );
    assert!(second > first, "waits grow: {first:?} then {second:?}");
    assert_eq!(hits[1].json()["webhook"]["last_status"], 500);

    let record = wait_for_record(&daemon, &alice, &id, "delivered", |r| {
        !r["webhook"]["delivered_at"].is_null()
    });
    assert_eq!(record["webhook"]["attempts"], 3, "{record}");
    assert_eq!(record["webhook"]["last_status"], 200);
    assert!(record["webhook"]["next_attempt_at"].is_null());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.hits().len(), 3, "no attempt after the 2xx");
}

#[test]
fn disallowed_callbacks_are_refused_and_nothing_is_recorded() {
    let receiver = Receiver::start(&[]);
    // `http://` admits public http hosts, never internal ones.
    let allow = format!("{},http://", receiver.base());
    let mut daemon = start(people(), &webhook_env(&allow));
    let alice = daemon.token("alice", false);
    for (callback, needle) in [
        (
            "https://hooks.elsewhere.example/in",
            "EXPORT_HOST_WEBHOOK_ALLOW",
        ),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://10.0.0.1/hook", "private"),
        ("http://192.168.7.7:8080/hook", "private"),
        ("http://[::1]:9000/hook", "loopback"),
        ("http://127.0.0.1:1/other-port", "loopback"),
        ("http://metadata.google.internal/", "internal"),
        ("ftp://files.example.com/drop", "only http:// and https://"),
        ("http://user:pw@hooks.example.com/", "user name or password"),
        ("not a url", "not a valid absolute URL"),
    ] {
        let answer = daemon.post("/v1/exports", Some(&alice), &csv_request(callback));
        assert_eq!(
            answer.status,
            400,
            "{callback}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.error_code(), "callback_url_refused", "{callback}");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(needle), "{callback}: {message}");
    }
    let list = daemon.get("/v1/exports", Some(&alice)).json();
    assert_eq!(list["items"], json!([]), "no export was created");

    // Without a secret every callback is refused, saying who must act.
    daemon.stop_with("TERM", Duration::from_secs(30));
    daemon.set_env("EXPORT_HOST_WEBHOOK_SECRET", None);
    daemon.restart();
    let answer = daemon.post(
        "/v1/exports",
        Some(&alice),
        &csv_request(&receiver.url("/x")),
    );
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error_code(), "callback_url_refused");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("EXPORT_HOST_WEBHOOK_SECRET"), "{message}");
    let list = daemon.get("/v1/exports", Some(&alice)).json();
    assert_eq!(list["items"], json!([]), "no export was created");
    assert!(receiver.hits().is_empty());
}

#[test]
fn a_delivery_owed_when_the_daemon_is_killed_is_made_after_a_restart() {
    // A port with nobody listening yet: the first attempts get no answer.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/");
    let mut daemon = start(people(), &webhook_env(&base));
    let alice = daemon.token("alice", false);
    let id = export_ended(&daemon, &alice, &format!("{base}after-restart"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = wait_for_record(&daemon, &alice, &id, "a failed attempt", |r| {
        r["webhook"]["attempts"].as_i64().unwrap_or(0) >= 1
    });
    assert!(
        record["webhook"]["last_status"].is_null(),
        "no answer: {record}"
    );
    assert!(record["webhook"]["delivered_at"].is_null());
    assert!(!record["webhook"]["next_attempt_at"].is_null());

    daemon.stop_with("KILL", Duration::from_secs(10));
    let receiver = Receiver::start_on(port, &[]);
    daemon.restart();
    let hits = receiver.wait_for(1, Duration::from_secs(20));
    assert_signed(&hits[0]);
    assert_eq!(hits[0].json()["id"], id.as_str());
    let record = wait_for_record(&daemon, &alice, &id, "delivered after restart", |r| {
        !r["webhook"]["delivered_at"].is_null()
    });
    assert_eq!(record["webhook"]["last_status"], 200);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.hits().len(), 1);
}

/// Two daemons sharing `database` (and one file store) each take exports
/// and webhook deliveries; every export is announced exactly once.
fn two_daemons_deliver_each_webhook_once(database: String) {
    let receiver = Receiver::start(&[]);
    let first_sandbox = people();
    let files = first_sandbox.path().join("shared-files");
    let mut env = webhook_env(&receiver.base());
    env.push(("EXPORT_HOST_DATABASE_URL".to_owned(), database));
    env.push((
        "EXPORT_HOST_STORAGE".to_owned(),
        files.to_str().unwrap().to_owned(),
    ));
    let first = start(first_sandbox, &env);
    let second = start(people(), &env);
    let alice = first.token("alice", false);

    let exports = 8;
    let mut ids = Vec::new();
    for n in 0..exports {
        let daemon = if n % 2 == 0 { &first } else { &second };
        let answer = daemon.post(
            "/v1/exports",
            Some(&alice),
            &csv_request(&receiver.url(&format!("/both/{n}"))),
        );
        assert_eq!(
            answer.status,
            202,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        ids.push(answer.json()["id"].as_str().unwrap().to_owned());
    }
    receiver.wait_for(exports, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(2500));
    let hits = receiver.hits();
    assert_eq!(hits.len(), exports, "one POST per export: {hits:?}");
    for id in &ids {
        let count = hits
            .iter()
            .filter(|hit| hit.json()["id"] == id.as_str())
            .count();
        assert_eq!(count, 1, "{id} announced once");
        let record = second.record(&alice, id);
        assert_eq!(record["webhook"]["attempts"], 1, "{record}");
        assert_eq!(record["webhook"]["last_status"], 200, "{record}");
    }
}

#[test]
fn two_daemons_on_one_sqlite_file_deliver_each_webhook_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    two_daemons_deliver_each_webhook_once(url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_postgres_deliver_each_webhook_once() {
    records_common::with_scratch_postgres_url(two_daemons_deliver_each_webhook_once).await;
}
