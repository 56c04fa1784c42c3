//! The daemon as a real process, driven over HTTP on 127.0.0.1.
//!
//! [`Daemon::start`] runs `export-host serve` with a private DATA_DIR (SQLite
//! and local files) and the sandbox's plugins.toml on a free port, and waits
//! for `/healthz`. [`Daemon::token`] creates tokens with the CLI against the
//! same database.

#![allow(dead_code)]

use crate::common::{succeeded, Sandbox};
use export_host::config::{Setting, CONFIG_ENV, STATE_DIRECTORY_ENV};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (invalid UTF-8 replaced), for failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// The error code of a JSON error answer.
    pub fn error_code(&self) -> String {
        let json = self.json();
        assert!(
            json["error"]["message"].is_string(),
            "an error answer has a message: {json}"
        );
        json["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error answer: {json}"))
            .to_owned()
    }

    /// Asserts the answer has `status` (showing the body if not) and returns
    /// the body as JSON.
    pub fn json_with_status(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        self.json()
    }
}

/// A running `export-host serve`.
pub struct Daemon {
    pub sandbox: Sandbox,
    pub data_dir: PathBuf,
    pub base: String,
    child: Option<Child>,
    agent: ureq::Agent,
    env: Vec<(String, String)>,
    /// Whether a start waits until no plugin is loading any more (the
    /// daemon serves before its plugins have loaded).
    pub wait_for_plugins: bool,
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("the bound address").port()
}

impl Daemon {
    /// Starts the daemon over `sandbox` with `extra` environment variables,
    /// and waits until its plugins have loaded (or failed).
    pub fn start(sandbox: Sandbox, extra: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(sandbox, extra, true)
    }

    /// Starts the daemon and returns once it answers, its plugins perhaps
    /// still loading.
    pub fn start_while_loading(sandbox: Sandbox, extra: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(sandbox, extra, false)
    }

    fn start_with(sandbox: Sandbox, extra: &[(&str, &str)], wait_for_plugins: bool) -> Daemon {
        let data_dir = sandbox.path().join("state");
        let port = free_port();
        let mut env = vec![
            (
                Setting::DataDir.env_var(),
                data_dir.to_str().expect("UTF-8 paths").to_owned(),
            ),
            (
                Setting::Plugins.env_var(),
                sandbox
                    .plugins_toml()
                    .to_str()
                    .expect("UTF-8 paths")
                    .to_owned(),
            ),
            (Setting::Listen.env_var(), format!("127.0.0.1:{port}")),
            (Setting::Workers.env_var(), "2".to_owned()),
            ("EXPORT_HOST_LOG".to_owned(), "info".to_owned()),
        ];
        for (key, value) in extra {
            env.push(((*key).to_owned(), (*value).to_owned()));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut daemon = Daemon {
            sandbox,
            data_dir,
            base: format!("http://127.0.0.1:{port}"),
            child: None,
            agent,
            env,
            wait_for_plugins,
        };
        daemon.spawn();
        daemon
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_export-host"));
        for setting in Setting::ALL {
            command.env_remove(setting.env_var());
        }
        command
            .env_remove(CONFIG_ENV)
            .env_remove(STATE_DIRECTORY_ENV)
            .env_remove("EXPORT_HOST_SHUTDOWN_GRACE")
            .current_dir(self.sandbox.path());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.sandbox.path().join("daemon.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.sandbox.path().join("daemon.log"))
            .expect("opening the daemon log");
        let child = self
            .command()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting export-host serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(answer) = self.try_get("/healthz") {
                if answer.status == 200 {
                    if self.wait_for_plugins {
                        self.wait_until_plugins_loaded(deadline);
                    }
                    return;
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("the daemon exited with {status}\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not answer /healthz within 30 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `/readyz` until no plugin is loading any more. A 503 for
    /// another cause than starting up ends the wait (the test wants it).
    fn wait_until_plugins_loaded(&self, deadline: Instant) {
        loop {
            let Ok(answer) = self.try_get("/readyz") else {
                return;
            };
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            let loading = body["plugins_loading"].as_u64().unwrap_or(0);
            let starting = answer.status == 503
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("starting up"));
            if (answer.status == 200 && loading == 0) || (answer.status != 200 && !starting) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon's plugins were still loading after 30 s: {body}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sets (or with `None` removes) an environment variable of the next
    /// start, e.g. between a stop and [`Daemon::restart`].
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.to_owned(), value.to_owned()));
        }
    }

    /// Sends `body` with exactly `headers`: no token and no Content-Type
    /// are added.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (key, value) in headers {
            builder = builder.header(*key, *value);
        }
        let request = builder.body(body.to_vec()).expect("a valid request");
        self.exchange(request)
            .unwrap_or_else(|err| panic!("{method} {path}: {err}\n{}", self.log()))
    }

    /// Sends `request` and reads the whole answer (bodies up to 1 GiB).
    fn exchange(&self, request: ureq::http::Request<Vec<u8>>) -> Result<Answer, ureq::Error> {
        let mut response = self.agent.run(request)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Starts the daemon again (after a stop) on the same data and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the daemon is still running");
        self.spawn();
    }

    /// Runs the CLI with the daemon's settings.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("running export-host")
    }

    /// A new token for `user` (printed once by `token create`).
    pub fn token(&self, user: &str, admin: bool) -> String {
        let mut args = vec!["token", "create", "--user", user];
        if admin {
            args.push("--admin");
        }
        let out = succeeded(&self.cli(&args));
        String::from_utf8(out).expect("UTF-8").trim().to_owned()
    }

    /// A GET of `path` without a token; an error (e.g. nobody listening
    /// yet) is returned, not a failure.
    fn try_get(&self, path: &str) -> Result<Answer, ureq::Error> {
        let request = ureq::http::Request::get(format!("{}{path}", self.base))
            .body(Vec::new())
            .expect("a valid request");
        self.exchange(request)
    }

    /// Sends a request; `path` is under the daemon's base URL (or a full URL).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        if let Some(token) = token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        for (key, value) in headers {
            builder = builder.header(*key, *value);
        }
        let request = match body {
            Some(body) => builder
                .header("Content-Type", "application/json")
                .body(body.as_bytes().to_vec()),
            None => builder.body(Vec::new()),
        }
        .expect("a valid request");
        self.exchange(request)
            .unwrap_or_else(|err| panic!("{method} {path}: {err}\n{}", self.log()))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request("GET", path, token, &[], None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.request("POST", path, token, &[], Some(&body.to_string()))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.request("DELETE", path, token, &[], None)
    }

    /// Starts a `gate` export (one row every few ms until `until` exists;
    /// see `faults_common::gate_sandbox`); returns its id.
    pub fn start_gate_export(&self, token: &str, until: &std::path::Path) -> String {
        let request =
            serde_json::json!({"loader": "gate", "format": "csv", "selector": {"until": until}});
        let answer = self.post("/v1/exports", Some(token), &request);
        assert_eq!(answer.status, 202, "{}", self.log());
        answer.json()["id"].as_str().expect("an id").to_owned()
    }

    /// Creates an export with `?wait=30` as the holder of `token`: asserts
    /// the answer is a 200 with a completed record, and returns the record.
    pub fn create_and_wait(&self, token: &str, request: &Value) -> Value {
        let record = self
            .post("/v1/exports?wait=30", Some(token), request)
            .json_with_status(200);
        assert_eq!(record["status"], "completed", "{record}");
        record
    }

    /// Deletes the export as the holder of `token`: asserts a 204, and a 404
    /// for the export afterwards.
    pub fn delete_and_check_gone(&self, id: &str, token: &str) {
        let path = format!("/v1/exports/{id}");
        assert_eq!(self.delete(&path, Some(token)).status, 204);
        assert_eq!(self.get(&path, Some(token)).status, 404);
    }

    /// The export's record, as `GET /v1/exports/{id}` answers it.
    pub fn record(&self, token: &str, id: &str) -> Value {
        let answer = self.get(&format!("/v1/exports/{id}"), Some(token));
        assert_eq!(answer.status, 200, "{}", self.log());
        answer.json()
    }

    /// Polls the export until it is no longer pending or processing.
    pub fn wait_until_done(&self, id: &str, token: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let record = self
                .get(&format!("/v1/exports/{id}"), Some(token))
                .json_with_status(200);
            let status = record["status"].as_str().unwrap_or_default().to_owned();
            if status != "pending" && status != "processing" {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "export {id} still {status} after 60 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running daemon's process id (its workers are named
    /// `<hostname>-<pid>-<n>`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon is running").id()
    }

    /// Sends `signal` (e.g. `HUP`) to the running daemon without waiting.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the daemon is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `within` for the daemon to exit by itself: its status,
    /// or `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("the daemon is running");
            if let Some(status) = child.try_wait().expect("waiting for the daemon") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the daemon and waits up to `within` for it to exit.
    /// A daemon still running then is killed, and the test fails.
    pub fn stop_with(&mut self, signal: &str, within: Duration) -> ExitStatus {
        self.signal(signal);
        if let Some(status) = self.wait_exit(within) {
            return status;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "the daemon did not exit within {within:?} of SIG{signal}\n{}",
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
