//! The web console, end to end: its files answer with the security headers
//! and cache validators, and a real headless Chromium (driven by
//! `tests/browser/console.py` through selenium) signs in, starts exports
//! from the generated form, follows them live, downloads one natively,
//! copies a link, cancels and deletes, and reads the plugins, at desktop
//! and phone sizes, saving a screenshot of each state into
//! `target/console-screenshots/`.

mod common;
mod server_common;

use common::{library, target_dir, Entry, Sandbox};
use server_common::Daemon;
use std::path::{Path, PathBuf};
use std::process::Command;

const GATE_LIB: &str = "libexport_test_gate.so";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// csv and json rooted at `data/` (with a small CSV in it), the `gate`
/// loader (an export that runs until a file exists, so there is one to
/// cancel) and a plugin whose library is missing (a failure to show).
fn console_daemon() -> Daemon {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        sandbox.json(),
        Entry::new("gate", library(GATE_LIB)),
        Entry::new("missing", sandbox.path().join("libexport_missing.so")),
    ]);
    sandbox.put(
        "people.csv",
        "id,name,city,note\n1,Ada,London,\"said \"\"hi\"\"\"\n2,Grace,\"New York, NY\",007\n3,Linus,Helsinki,\u{00e9}t\u{00e9}\n",
    );
    Daemon::start(sandbox, &[])
}

#[test]
fn console_files_carry_the_security_headers_and_validators() {
    let daemon = console_daemon();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/schema-form.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/icon.svg", "image/svg+xml"),
    ] {
        // No token: the files are public, the data behind them is not.
        let answer = daemon.get(path, None);
        assert_eq!(answer.status, 200, "GET {path}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{path}");
        assert_eq!(
            answer.header("content-security-policy"),
            Some(CSP),
            "{path}"
        );
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(answer.header("cache-control"), Some("no-cache"));
        let etag = answer.header("etag").expect("an ETag").to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(!answer.body.is_empty());

        let again = daemon.request("GET", path, None, &[("If-None-Match", &etag)], None);
        assert_eq!(
            again.status, 304,
            "a current copy is not sent again: {path}"
        );
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert!(again.body.is_empty());
        let stale = daemon.request("GET", path, None, &[("If-None-Match", "\"old\"")], None);
        assert_eq!(stale.status, 200, "a stale copy is replaced: {path}");
    }
    let page = String::from_utf8(daemon.get("/", None).body).expect("UTF-8");
    assert!(
        !page.contains("<style") && !page.contains(" style=") && !page.contains("<script>"),
        "the page has no inline style or script (the CSP forbids them)"
    );
    assert!(!page.contains("http://") && !page.contains("https://"));

    let missing = daemon.get("/console/nothing.js", None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-security-policy"), Some(CSP));
    // The API keeps its own 404 and its token check.
    let nowhere = daemon.get("/v2/whatever", None);
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.error_code(), "not_found");
    assert_eq!(daemon.get("/v1/exports", None).status, 401);
    // The console is not part of the API document.
    let doc = daemon.get("/v1/openapi.json", None).json();
    assert!(doc["paths"].get("/").is_none());
}

/// Where the screenshots go: `target/console-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = target_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .to_owned();
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("creating target/console-screenshots");
    dir
}

#[test]
fn the_console_works_in_a_real_browser() {
    let daemon = console_daemon();
    let token = daemon.token("ada", false);
    let admin = daemon.token("root", true);
    let gate_until = daemon.sandbox.path().join("gate-never-opens");
    let out = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.py");
    let downloads = daemon.sandbox.path().join("downloads");
    let run = Command::new("python3")
        .arg(&script)
        .args(["--base", &daemon.base])
        .args(["--token", &token])
        .args(["--admin-token", &admin])
        .arg("--out")
        .arg(&out)
        .arg("--downloads")
        .arg(&downloads)
        .arg("--gate-until")
        .arg(&gate_until)
        .output()
        .unwrap_or_else(|err| panic!("cannot run python3 {}: {err}", script.display()));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the browser test failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- daemon log\n{}",
        run.status,
        daemon.log()
    );
    // Every state was photographed, at both sizes.
    for state in [
        "desktop-01-signin",
        "-exports-completed",
        "-plugins-admin",
        "phone-01-signin",
        "-new-export",
    ] {
        let found = std::fs::read_dir(&out)
            .expect("reading the screenshot folder")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.contains(state) && name.ends_with(".png"))
            })
            .collect::<Vec<_>>();
        assert!(
            !found.is_empty(),
            "no screenshot of {state} in {}\n{stdout}",
            out.display()
        );
        for path in found {
            let png = std::fs::read(&path).expect("reading a screenshot");
            assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
        }
    }
}
