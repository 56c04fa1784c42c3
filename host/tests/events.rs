//! An export's changes as Server-Sent Events (`GET /v1/exports/{id}/events`)
//! and `exports watch`, through the real daemon: progress events while a
//! `gate` export runs, a last `end` with the completed record, resumption
//! with `Last-Event-ID` (204 once the end was seen), scoping.

mod common;
mod faults_common;
mod server_common;

use faults_common::{gate_sandbox, progress_rows, wait_until, GatePair, GateRun};
use serde_json::Value;
use server_common::Daemon;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// One event of the stream.
#[derive(Debug)]
struct Event {
    name: String,
    id: i64,
    data: Value,
}

/// A chunked body, decoded (the stream has no length).
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                self.done = true;
                return Ok(0);
            }
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16).map_err(std::io::Error::other)?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let want = out.len().min(self.left);
        let read = self.inner.read(&mut out[..want])?;
        if read == 0 {
            self.done = true;
            return Ok(0);
        }
        self.left -= read;
        if self.left == 0 {
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(read)
    }
}

/// An open `GET /v1/exports/{id}/events`, read over a plain socket.
struct Stream {
    status: u16,
    headers: Vec<(String, String)>,
    body: BufReader<Chunked<BufReader<TcpStream>>>,
}

impl Stream {
    fn open(daemon: &Daemon, token: &str, id: &str, last: Option<i64>) -> Stream {
        let address = daemon.base.trim_start_matches("http://");
        let mut socket = TcpStream::connect(address).expect("connecting to the daemon");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        let mut head = format!(
            "GET /v1/exports/{id}/events HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {token}\r\nAccept: text/event-stream\r\nConnection: close\r\n"
        );
        if let Some(last) = last {
            head.push_str(&format!("Last-Event-ID: {last}\r\n"));
        }
        head.push_str("\r\n");
        socket
            .write_all(head.as_bytes())
            .expect("sending the request");
        let mut reader = BufReader::new(socket);
        let mut line = String::new();
        reader.read_line(&mut line).expect("the status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("a header");
            let text = line.trim_end();
            if text.is_empty() {
                break;
            }
            if let Some((key, value)) = text.split_once(':') {
                headers.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        Stream {
            status,
            headers,
            body: BufReader::new(Chunked {
                inner: reader,
                left: 0,
                // A 204 or a sized error answer: not read as events.
                done: !chunked,
            }),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event, `None` once the server closed the stream. Comments
    /// (the keep-alives) are skipped.
    fn next(&mut self) -> Option<Event> {
        let (mut name, mut id, mut data) = (None, None, String::new());
        loop {
            let mut line = String::new();
            let read = self.body.read_line(&mut line).expect("reading the stream");
            if read == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if let (Some(name), Some(id)) = (name.take(), id.take()) {
                    let data: Value = serde_json::from_str(&data)
                        .unwrap_or_else(|err| panic!("data is not JSON ({err}): {data}"));
                    return Some(Event { name, id, data });
                }
                data.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => name = Some(value.to_owned()),
                "id" => id = Some(value.parse::<i64>().expect("a numeric event id")),
                "data" => data.push_str(value),
                _ => {}
            }
        }
    }
}

/// Reads events until one satisfies `stop`, checking that ids strictly
/// grow; returns the events read (the last one satisfied `stop`).
fn read_until(
    stream: &mut Stream,
    daemon: &Daemon,
    after: Option<i64>,
    mut stop: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let started = Instant::now();
    let mut events: Vec<Event> = Vec::new();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "no expected event within 25 s: {events:?}\n{}",
            daemon.log()
        );
        let event = stream
            .next()
            .unwrap_or_else(|| panic!("the stream closed early: {events:?}\n{}", daemon.log()));
        let previous = events.last().map(|e| e.id).or(after);
        if let Some(previous) = previous {
            assert!(event.id > previous, "ids grow: {previous} then {event:?}");
        }
        let done = stop(&event);
        events.push(event);
        if done {
            return events;
        }
    }
}

/// Progress events with growing rows, then the end once the gate opens.
#[test]
fn the_events_show_progress_then_the_end_and_a_resumed_end_answers_204() {
    let GateRun {
        daemon,
        token,
        id,
        gate,
    } = GateRun::start(&[]);

    let mut stream = Stream::open(&daemon, &token, &id, None);
    assert_eq!(stream.status, 200, "{}", daemon.log());
    assert!(
        stream
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        stream.headers
    );
    let first = stream.next().expect("a first event");
    assert_eq!(first.name, "status", "{first:?}");
    assert_eq!(first.data["id"], id.as_str(), "{first:?}");
    assert!(
        matches!(
            first.data["status"].as_str(),
            Some("pending" | "processing")
        ),
        "{first:?}"
    );

    let mut rows_seen = Vec::new();
    let events = read_until(&mut stream, &daemon, Some(first.id), |event| {
        assert!(
            matches!(event.name.as_str(), "status" | "progress"),
            "{event:?}"
        );
        assert_eq!(event.data["status"], "processing", "{event:?}");
        if event.name == "progress" {
            rows_seen.push(progress_rows(&event.data));
        }
        rows_seen.len() >= 2
    });
    assert!(
        rows_seen.windows(2).all(|w| w[0] < w[1]) && rows_seen[0] > 0,
        "rows grow from one progress event to the next: {rows_seen:?}"
    );
    let last_seen = events.last().map(|e| e.id);

    std::fs::write(&gate, b"").expect("opening the gate");
    let events = read_until(&mut stream, &daemon, last_seen, |event| event.name == "end");
    let end = events.last().expect("the end");
    assert_eq!(end.data["status"], "completed", "{end:?}");
    assert_eq!(
        end.data["progress"]["rows"], end.data["row_count"],
        "{end:?}"
    );
    assert!(
        progress_rows(&end.data) > *rows_seen.last().unwrap_or(&0),
        "{end:?}"
    );
    assert!(stream.next().is_none(), "the stream closes after the end");
    assert_eq!(
        end.data,
        daemon.record(&token, &id),
        "the end is the record"
    );

    let again = Stream::open(&daemon, &token, &id, Some(end.id));
    assert_eq!(again.status, 204, "the end was seen: nothing more comes");
    // An earlier id gets the end again, and only it.
    let mut earlier = Stream::open(&daemon, &token, &id, Some(first.id));
    assert_eq!(earlier.status, 200);
    let only = earlier.next().expect("the end again");
    assert_eq!(only.name, "end", "{only:?}");
    assert_eq!(only.id, end.id, "{only:?}");
    assert!(earlier.next().is_none());
}

/// A reconnection with an id seen mid-run gets only newer states.
#[test]
fn a_resumed_stream_sends_only_newer_states() {
    let GateRun {
        daemon,
        token,
        id,
        gate,
    } = GateRun::start(&[]);

    let mut stream = Stream::open(&daemon, &token, &id, None);
    assert_eq!(stream.status, 200, "{}", daemon.log());
    let events = read_until(&mut stream, &daemon, None, |event| event.name == "progress");
    let seen = events.last().expect("a progress event");
    let seen_id = seen.id;
    let seen_rows = progress_rows(&seen.data);
    drop(stream);
    // Let the export move on while nobody listens.
    wait_until(
        Duration::from_secs(20),
        "progress past the seen rows",
        || progress_rows(&daemon.record(&token, &id)) > seen_rows,
    );

    let mut resumed = Stream::open(&daemon, &token, &id, Some(seen_id));
    assert_eq!(resumed.status, 200, "{}", daemon.log());
    let next = resumed.next().expect("the current state");
    assert!(
        next.id > seen_id,
        "only newer states: {seen_id} then {next:?}"
    );
    assert_eq!(
        next.name, "status",
        "a connection starts with the status: {next:?}"
    );
    assert!(progress_rows(&next.data) > seen_rows, "{next:?}");

    std::fs::write(&gate, b"").expect("opening the gate");
    let events = read_until(&mut resumed, &daemon, Some(next.id), |event| {
        event.name == "end"
    });
    let end = events.last().expect("the end");
    assert_eq!(end.data["status"], "completed", "{end:?}");
    assert!(resumed.next().is_none(), "the stream closes after the end");
}

/// The stream follows an export that another daemon on the database runs:
/// the record, not this daemon's workers, is what it reads.
#[test]
fn the_events_follow_an_export_another_daemon_runs() {
    let GatePair {
        run:
            GateRun {
                daemon: a,
                token,
                id,
                gate,
            },
        other: b,
        pg: _pg,
    } = GatePair::start();
    wait_until(
        Duration::from_secs(20),
        "a daemon to claim the export",
        || a.record(&token, &id)["lease_owner"].is_string(),
    );
    // Workers are named `<host>-<pid>-<n>`: read from the other daemon.
    let owner = a.record(&token, &id)["lease_owner"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (reader, runner) = if owner.contains(&format!("-{}-", a.pid())) {
        (&b, &a)
    } else {
        (&a, &b)
    };
    assert!(
        owner.contains(&format!("-{}-", runner.pid())),
        "{owner} runs on neither daemon"
    );

    let mut stream = Stream::open(reader, &token, &id, None);
    assert_eq!(stream.status, 200, "{}", reader.log());
    let events = read_until(&mut stream, reader, None, |event| event.name == "progress");
    let last = events.last().map(|e| e.id);
    std::fs::write(&gate, b"").expect("opening the gate");
    let events = read_until(&mut stream, reader, last, |event| event.name == "end");
    let end = events.last().expect("the end");
    assert_eq!(end.data["status"], "completed", "{end:?}");
    assert_eq!(end.data, runner.record(&token, &id), "{end:?}");
    assert!(stream.next().is_none(), "the stream closes after the end");
}

/// A stopping daemon closes its streams (the client reconnects elsewhere).
#[test]
fn a_stopping_daemon_closes_its_streams() {
    let GateRun {
        mut daemon,
        token,
        id,
        gate,
    } = GateRun::start(&[("EXPORT_HOST_SHUTDOWN_GRACE", "1")]);
    let mut stream = Stream::open(&daemon, &token, &id, None);
    assert_eq!(stream.status, 200, "{}", daemon.log());
    assert!(stream.next().is_some(), "the current state");
    let started = Instant::now();
    daemon.signal("TERM");
    // What was on its way may still come; then the stream ends.
    while stream.next().is_some() {}
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stream closed {:?} after the stop",
        started.elapsed()
    );
    assert!(daemon.wait_exit(Duration::from_secs(20)).is_some());
    std::fs::write(&gate, b"").expect("opening the gate");
}

/// Another user's export is not there, as with `GET /v1/exports/{id}`.
#[test]
fn another_users_export_has_no_events() {
    let GateRun {
        daemon,
        token: ada,
        id,
        gate,
    } = GateRun::start(&[]);
    let bob = daemon.token("bob", false);
    let stream = Stream::open(&daemon, &bob, &id, None);
    assert_eq!(stream.status, 404, "{}", daemon.log());
    let missing = Stream::open(&daemon, &ada, "exp_0123456789abcdef0123456789abcdef", None);
    assert_eq!(missing.status, 404);
    let answer = daemon.get(&format!("/v1/exports/{id}/events"), None);
    assert_eq!(answer.status, 401);
    std::fs::write(&gate, b"").expect("opening the gate");
}

/// Runs `exports watch ID` (not on a terminal) while `during` acts, and
/// returns its output once it exits (within 30 s).
fn watch(daemon: &Daemon, id: &str, during: impl FnOnce()) -> Output {
    let mut child = daemon
        .command()
        .args(["exports", "watch", id])
        .env("EXPORT_HOST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running export-host exports watch");
    during();
    let started = Instant::now();
    while child.try_wait().expect("waiting for watch").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().ok();
            let output = child.wait_with_output().expect("its output");
            panic!(
                "exports watch still running after 30 s: {}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("its output")
}

#[test]
fn exports_watch_prints_progress_lines_then_the_summary() {
    let GateRun {
        daemon,
        token,
        id,
        gate,
    } = GateRun::start(&[]);
    let output = watch(&daemon, &id, || {
        wait_until(Duration::from_secs(20), "progress", || {
            progress_rows(&daemon.record(&token, &id)) > 0
        });
        // Long enough for a line or two of progress.
        std::thread::sleep(Duration::from_millis(2500));
        std::fs::write(&gate, b"").expect("opening the gate");
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("processing: "))
        .collect();
    assert!(!lines.is_empty(), "progress lines: {stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" rows, ") && l.contains(" rows/s, ")),
        "{stderr}"
    );
    let done = daemon.record(&token, &id);
    assert!(stdout.contains("status: completed"), "{stdout}");
    assert!(
        stdout.contains(&format!("rows: {}", done["row_count"])),
        "{stdout}\n{done}"
    );
    assert!(
        stdout.contains(&format!("size: {} ", done["size_bytes"])),
        "{stdout}\n{done}"
    );
}

#[test]
fn exports_watch_fails_for_a_cancelled_export() {
    let GateRun {
        daemon,
        token,
        id,
        gate,
    } = GateRun::start(&[]);
    let output = watch(&daemon, &id, || {
        wait_until(Duration::from_secs(20), "the export to run", || {
            daemon.record(&token, &id)["status"] == "processing"
        });
        let answer = daemon.delete(&format!("/v1/exports/{id}"), Some(&token));
        assert_eq!(answer.status, 200, "{}", daemon.log());
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("status: cancelled"), "{stdout}");
    assert!(
        stderr.contains(&format!("export {id} was cancelled")),
        "{stderr}"
    );
    std::fs::write(&gate, b"").expect("opening the gate");
}

/// Cancelling an export whose loader is stuck frees its worker: with one
/// worker, the next export runs while the cancelled one's gate stays shut
/// (its rows trickle in far too slowly to reach the output soon).
#[test]
fn a_cancelled_export_frees_its_worker_while_its_loader_is_stuck() {
    let sandbox = gate_sandbox();
    let never = sandbox.path().join("never-opens");
    let open = sandbox.path().join("already-open");
    std::fs::write(&open, b"").expect("the open gate");
    let daemon = Daemon::start(
        sandbox,
        &[
            ("EXPORT_HOST_WORKERS", "1"),
            ("EXPORT_HOST_LEASE_SECONDS", "2"),
        ],
    );
    let token = daemon.token("ada", false);
    let stuck = daemon.start_gate_export(&token, &never);
    wait_until(Duration::from_secs(20), "the export to run", || {
        daemon.record(&token, &stuck)["status"] == "processing"
    });
    let answer = daemon.delete(&format!("/v1/exports/{stuck}"), Some(&token));
    assert_eq!(answer.status, 200, "{}", daemon.log());

    let next = daemon.start_gate_export(&token, &open);
    wait_until(
        Duration::from_secs(20),
        "the next export to complete",
        || daemon.record(&token, &next)["status"] == "completed",
    );
    assert_eq!(daemon.record(&token, &stuck)["status"], "cancelled");
    assert!(
        daemon.log().contains("its plugins are still busy"),
        "{}",
        daemon.log()
    );
}
