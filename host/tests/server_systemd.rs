//! `export-host serve` under a fake systemd: `NOTIFY_SOCKET` points at a
//! datagram socket the test listens on. `READY=1` arrives once the daemon
//! serves (and `/readyz` is 200 by then), `WATCHDOG=1` heartbeats come at
//! half of `WATCHDOG_USEC`, SIGTERM sends `STOPPING=1` and exits 0; SIGHUP
//! reloads between `RELOADING=1` and `READY=1` and does not kill the daemon; `/readyz` names unreachable storage.

mod common;
mod server_common;

use common::Sandbox;
use server_common::Daemon;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// A bound notification socket in its own temporary directory.
struct Notify {
    _dir: tempfile::TempDir,
    path: String,
    socket: UnixDatagram,
}

impl Notify {
    fn new() -> Notify {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("binding the notify socket");
        Notify {
            path: path.to_str().expect("UTF-8 paths").to_owned(),
            _dir: dir,
            socket,
        }
    }

    /// The next notification, or `None` after `timeout`.
    fn recv(&self, timeout: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("setting the read timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(err) => panic!("receiving a notification: {err}"),
        }
    }

    /// Waits up to `within` for a notification containing `line`; returns
    /// the notifications seen before it.
    fn wait_for(&self, line: &str, within: Duration, daemon: &Daemon) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {line} within {within:?}; saw {seen:?}\n{}",
                daemon.log()
            );
            match self.recv(left) {
                Some(message) if message.lines().any(|l| l == line) => return seen,
                Some(message) => seen.push(message),
                None => {}
            }
        }
    }
}

#[test]
fn ready_watchdog_and_stopping_reach_the_notify_socket() {
    let notify = Notify::new();
    let mut daemon = Daemon::start(
        Sandbox::with_csv(),
        &[
            ("NOTIFY_SOCKET", &notify.path),
            ("WATCHDOG_USEC", "200000"),
            // sd-notify honours WATCHDOG_USEC only when WATCHDOG_PID is
            // unset or this process; an unparsable (empty) one counts as unset.
            ("WATCHDOG_PID", ""),
        ],
    );
    notify.wait_for("READY=1", Duration::from_secs(30), &daemon);
    let ready = daemon.get("/readyz", None);
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );

    // A heartbeat every 100 ms: at least two within a second.
    let start = Instant::now();
    let mut beats = 0;
    while start.elapsed() < Duration::from_secs(1) {
        let left = Duration::from_secs(1).saturating_sub(start.elapsed());
        match notify.recv(left.max(Duration::from_millis(1))) {
            Some(message) if message.lines().any(|l| l == "WATCHDOG=1") => beats += 1,
            _ => {}
        }
    }
    assert!(
        beats >= 2,
        "{beats} WATCHDOG=1 within 1 s\n{}",
        daemon.log()
    );

    let status = daemon.stop_with("TERM", Duration::from_secs(40));
    assert!(status.success(), "exit status {status}\n{}", daemon.log());
    notify.wait_for("STOPPING=1", Duration::from_secs(5), &daemon);
}

#[test]
fn sighup_reloads_between_reloading_and_ready_and_does_not_stop_the_daemon() {
    let notify = Notify::new();
    let mut daemon = Daemon::start(Sandbox::with_csv(), &[("NOTIFY_SOCKET", &notify.path)]);
    notify.wait_for("READY=1", Duration::from_secs(30), &daemon);
    daemon.signal("HUP");
    notify.wait_for("RELOADING=1", Duration::from_secs(10), &daemon);
    notify.wait_for("READY=1", Duration::from_secs(10), &daemon);
    let ready = daemon.get("/readyz", None);
    assert_eq!(ready.status, 200, "{}", daemon.log());
    assert!(
        daemon.log().contains("SIGHUP: reloading plugins"),
        "{}",
        daemon.log()
    );
    let status = daemon.stop_with("TERM", Duration::from_secs(40));
    assert!(status.success(), "exit status {status}\n{}", daemon.log());
}

#[test]
fn readyz_names_unreachable_storage() {
    let mut daemon = Daemon::start(Sandbox::with_csv(), &[]);
    assert_eq!(daemon.get("/readyz", None).status, 200);
    let files = daemon.data_dir.join("files");
    let moved = daemon.data_dir.join("files-away");
    std::fs::rename(&files, &moved).expect("moving the storage away");
    let answer = daemon.get("/readyz", None);
    assert_eq!(
        answer.status,
        503,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("storage"), "{message}");
    std::fs::rename(&moved, &files).expect("moving the storage back");
    assert_eq!(daemon.get("/readyz", None).status, 200);
    let status = daemon.stop_with("TERM", Duration::from_secs(40));
    assert!(status.success(), "exit status {status}\n{}", daemon.log());
}
