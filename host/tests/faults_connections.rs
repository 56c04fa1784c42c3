//! Hostile connections against the real daemon: a thousand sockets that
//! send half a request head neither starve `/healthz` nor outlive the
//! header-read timeout, and an idle kept-alive connection is closed too.

mod common;
mod faults_common;
mod server_common;

use common::Sandbox;
use faults_common::{metric, open_descriptors, wait_until, Conn};
use server_common::Daemon;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const HALF_OPEN: usize = 1000;

/// Opens `n` connections that each send half a request head.
fn half_open(daemon: &Daemon, n: usize) -> Vec<TcpStream> {
    let addr = daemon.base.trim_start_matches("http://").to_owned();
    (0..n)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).expect("connecting");
            // The peer may already have shed it; that is fine.
            let _ = stream.write_all(b"GET /v1/exports HTTP/1.1\r\nHost: x\r\n");
            stream
        })
        .collect()
}

/// Whether the daemon closed `stream` (EOF or reset) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            // A 408 or 503 answer before the close: keep reading.
            Ok(_) => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn assert_healthz_answers_quickly(daemon: &Daemon) {
    for _ in 0..20 {
        let start = Instant::now();
        let answer = daemon.get("/healthz", None);
        assert_eq!(answer.status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "/healthz took {:?}",
            start.elapsed()
        );
    }
}

fn half_open_connections_are_shed(max_connections: Option<&str>) {
    let mut env = vec![("EXPORT_HOST_HEADER_READ_TIMEOUT", "3")];
    if let Some(max) = max_connections {
        env.push(("EXPORT_HOST_MAX_CONNECTIONS", max));
    }
    let daemon = Daemon::start(Sandbox::with_csv(), &env);
    let pid = daemon.pid();
    let baseline = open_descriptors(pid);
    let token = daemon.token("ada", false);

    let start = Instant::now();
    let mut sockets = half_open(&daemon, HALF_OPEN);
    assert_healthz_answers_quickly(&daemon);
    // A real client gets an answer too: served, or told to retry.
    let listed = daemon.get("/v1/exports", Some(&token));
    assert!(
        listed.status == 200 || (listed.status == 503 && listed.header("retry-after").is_some()),
        "{} {}",
        listed.status,
        String::from_utf8_lossy(&listed.body)
    );

    // None outlives the header timeout (3 s) by much.
    let mut open = 0;
    for socket in &mut sockets {
        let left = Duration::from_secs(10).saturating_sub(start.elapsed());
        if !closed_within(socket, left.max(Duration::from_millis(1))) {
            open += 1;
        }
    }
    assert_eq!(
        open, 0,
        "{open} of {HALF_OPEN} half-open connections still open after 10 s"
    );
    drop(sockets);
    wait_until(
        Duration::from_secs(10),
        "descriptors back to normal",
        || open_descriptors(pid) <= baseline + 20,
    );
    let metrics = String::from_utf8_lossy(&daemon.get("/metrics", None).body).to_string();
    assert!(
        metric(
            &metrics,
            "export_host_connections_shed",
            "reason=\"header_timeout\""
        ) >= 1.0,
        "{metrics}"
    );
    if max_connections.is_some() {
        assert!(
            metric(&metrics, "export_host_connections_shed", "reason=\"limit\"") >= 1.0,
            "{metrics}"
        );
    }
    assert_eq!(daemon.get("/readyz", None).status, 200);
}

#[test]
fn a_thousand_half_open_connections_under_the_default_cap_do_not_starve_healthz() {
    half_open_connections_are_shed(None);
}

#[test]
fn a_thousand_half_open_connections_over_a_low_cap_are_shed_and_healthz_still_answers() {
    half_open_connections_are_shed(Some("200"));
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let daemon = Daemon::start(
        Sandbox::with_csv(),
        &[("EXPORT_HOST_HEADER_READ_TIMEOUT", "2")],
    );
    let mut conn = Conn::open(&daemon.base);
    assert_eq!(conn.request("GET", "/healthz", None, None).0, 200);
    // Kept alive: a second request on the same connection is served.
    assert_eq!(conn.request("GET", "/healthz", None, None).0, 200);
    let mut stream = conn.into_stream();
    let start = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(6)));
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "closed too early: {:?}",
        start.elapsed()
    );
}
