//! Helpers of the fault-injection tests (faults_*.rs): a real tmpfs, a
//! fresh PostgreSQL database, raw HTTP over one TCP connection, waiting.

#![allow(dead_code)]

mod gate;
#[allow(unused_imports)]
pub use gate::*;

use crate::common::{library, Entry, Sandbox};
use sqlx::{Connection, Executor, PgConnection};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const GATE_LIB: &str = "libexport_test_gate.so";
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// A sandbox with the `gate` loader (holds an export in `processing` until
/// a file exists) and `csv` rooted at `data/`.
pub fn gate_sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.register(&[Entry::new("gate", library(GATE_LIB)), sandbox.csv()]);
    sandbox
}

/// Polls `check` every 20 ms until it is true; panics naming `what` after
/// `within`.
pub fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tmpfs of `size_mb` MiB mounted on a fresh directory, unmounted when
/// dropped. The tests run as root (the CI container's user).
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size_mb: u32) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("export-host-tmpfs-")
            .tempdir()
            .expect("a mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mount -t tmpfs failed ({status}): these tests need root"
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, read_only: bool) {
        let option = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        let status = Command::new("mount")
            .args(["-o", option])
            .arg(self.dir.path())
            .status()
            .expect("running mount");
        assert!(status.success(), "mount -o {option} failed ({status})");
    }

    /// Writes `filler` until the filesystem is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("creating the filler");
        let chunk = vec![0x5au8; 1 << 20];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.raw_os_error() == Some(28) => break,
                Err(err) => panic!("filling the tmpfs: {err}"),
            }
        }
        // The last partial page as well.
        while file.write(&[0u8; 512]).map(|n| n > 0).unwrap_or(false) {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon still holding files cannot keep the mount busy.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A fresh PostgreSQL database, dropped (even if the test panics) when this
/// guard goes.
pub struct FreshPg {
    pub url: String,
    name: String,
}

fn pg_base() -> String {
    std::env::var("EXPORT_HOST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// Runs `sql` on the server's maintenance database.
pub fn pg_admin(sql: &str) {
    let url = format!("{}/postgres", pg_base());
    block_on(async {
        let mut admin = PgConnection::connect(&url).await.unwrap_or_else(|err| {
            panic!("PostgreSQL is not reachable at {url}: {err}; start it (pg_ctlcluster <version> main start)")
        });
        admin
            .execute(sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    });
}

/// Runs `sql` on database `url`.
pub fn pg_run(url: &str, sql: &str) {
    block_on(async {
        let mut conn = PgConnection::connect(url).await.expect("connecting");
        conn.execute(sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    });
}

impl FreshPg {
    pub fn new() -> FreshPg {
        let name = format!("eh_{:032x}", rand::random::<u128>());
        pg_admin(&format!("CREATE DATABASE {name}"));
        FreshPg {
            url: format!("{}/{name}", pg_base()),
            name,
        }
    }
}

impl Drop for FreshPg {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let url = format!("{}/postgres", pg_base());
        block_on(async {
            if let Ok(mut admin) = PgConnection::connect(&url).await {
                let _ = admin.execute(sql.as_str()).await;
            }
        });
    }
}

/// An HTTP/1.1 client on one kept-alive TCP connection: requests go over a
/// connection opened before a fault (descriptors run out, say).
pub struct Conn {
    stream: TcpStream,
    host: String,
}

impl Conn {
    pub fn open(base: &str) -> Conn {
        let host = base.trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(&host).expect("connecting to the daemon");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        Conn { stream, host }
    }

    /// The connection itself.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Sends a request and reads the answer: (status, body).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || method == "POST" {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        self.stream
            .write_all(head.as_bytes())
            .and_then(|()| self.stream.write_all(body.as_bytes()))
            .expect("sending a request");
        read_answer(&mut self.stream)
    }
}

fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("reading an answer head");
        assert!(n > 0, "the daemon closed the connection mid-answer");
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream
        .read_exact(&mut body)
        .expect("reading an answer body");
    (status, String::from_utf8_lossy(&body).to_string())
}

/// The files in `<data_dir>/files/.incoming` (partial uploads).
pub fn partial_uploads(data_dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data_dir.join("files").join(".incoming")) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// How many descriptors process `pid` has open.
pub fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Sets process `pid`'s open-file limit (soft and hard) with prlimit(1).
pub fn limit_descriptors(pid: u32, limit: u32) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("running prlimit");
    assert!(status.success(), "prlimit failed ({status})");
}

/// The value of metric `name` (with `labels`, e.g. `reason="limit"`) in an
/// OpenMetrics text, or 0.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            let wanted = if labels.is_empty() {
                key == name || key == format!("{name}_total")
            } else {
                key == format!("{name}{{{labels}}}") || key == format!("{name}_total{{{labels}}}")
            };
            wanted.then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}
