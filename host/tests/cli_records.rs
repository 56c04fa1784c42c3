//! The records commands driven as a process: `export --record`, `exports
//! list|show|delete`, `cleanup`, `migrate`, and a bad setting. On SQLite
//! (EXPORT_HOST_DATA_DIR in a temporary folder) and on a fresh PostgreSQL
//! database (EXPORT_HOST_DATABASE_URL).

mod common;
#[allow(unused_macros)] // both_backends! is for the records tests
mod records_common;

use common::{refused, succeeded, Exit, Sandbox};
use export_host::config::{Setting, CONFIG_ENV, STATE_DIRECTORY_ENV};
use serde_json::Value;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// A sandbox with the csv plugin and a private DATA_DIR.
struct Cli {
    sandbox: Sandbox,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Cli {
    fn new(database_url: Option<String>) -> Cli {
        let sandbox = Sandbox::with_csv();
        let data_dir = sandbox.path().join("state");
        let mut env = vec![(
            "EXPORT_HOST_DATA_DIR".to_owned(),
            data_dir.to_str().unwrap().to_owned(),
        )];
        if let Some(url) = database_url {
            env.push(("EXPORT_HOST_DATABASE_URL".to_owned(), url));
        }
        let mut text = String::from("id,name\n");
        for n in 0..5 {
            text.push_str(&format!("{n},person {n}\n"));
        }
        sandbox.put("people.csv", text);
        Cli {
            sandbox,
            data_dir,
            env,
        }
    }

    /// `export-host --plugins <plugins.toml> ARGS` with only this test's
    /// settings in the environment, plus `extra` variables.
    fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_export-host"));
        for setting in Setting::ALL {
            command.env_remove(setting.env_var());
        }
        command
            .env_remove(CONFIG_ENV)
            .env_remove(STATE_DIRECTORY_ENV)
            .env_remove("EXPORT_HOST_LOG")
            .arg("--plugins")
            .arg(self.sandbox.plugins_toml())
            .args(args)
            .current_dir(self.sandbox.path());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        for (key, value) in extra {
            command.env(key, value);
        }
        command.output().expect("running export-host")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn text(&self, args: &[&str]) -> String {
        String::from_utf8(succeeded(&self.run(args))).expect("UTF-8 output")
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.text(args)).expect("JSON output")
    }

    fn files(&self) -> PathBuf {
        self.data_dir.join("files")
    }
}

/// `field: value` lines.
fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    text.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn record_export(cli: &Cli, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec![
        "export",
        "--loader",
        "csv",
        "--format",
        "csv",
        "--set",
        "path=people.csv",
        "--record",
    ];
    args.extend_from_slice(extra);
    cli.run_with(&args, env)
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn the_records_commands_work(cli: &Cli) {
    // A one-shot export still needs no database and writes nothing.
    let out = succeeded(&cli.run(&[
        "export",
        "--loader",
        "csv",
        "--format",
        "csv",
        "--set",
        "path=people.csv",
    ]));
    assert!(out.starts_with(b"id,name\n"));
    assert!(
        !cli.data_dir.exists(),
        "a one-shot export touches no DATA_DIR"
    );

    // migrate: creates and migrates the database.
    let text = cli.text(&["migrate"]);
    let latest = latest_migration();
    assert!(text.contains(&latest), "{text} should say {latest}");
    let backend = if cli.env.len() > 1 {
        "postgres"
    } else {
        "sqlite"
    };
    assert!(text.starts_with(backend), "{text}");

    // export --record, as --user alice.
    let output = record_export(
        cli,
        &["--user", "alice", "--options", r#"{"compression":"gzip"}"#],
        &[],
    );
    let text = String::from_utf8(succeeded(&output)).unwrap();
    let id = field(&text, "id").to_owned();
    assert!(id.starts_with("exp_"), "{text}");
    assert_eq!(field(&text, "status"), "completed");
    assert_eq!(field(&text, "rows"), "5");
    assert_eq!(field(&text, "mime_type"), "application/gzip");
    let stored = all_files(&cli.files());
    assert_eq!(stored.len(), 1, "{stored:?}");
    let bytes = std::fs::read(&stored[0]).unwrap();
    assert_eq!(field(&text, "size"), bytes.len().to_string());
    assert_eq!(
        field(&text, "sha256"),
        hex::encode(sha2::Sha256::digest(&bytes))
    );

    // The default user is the current login.
    let output = record_export(cli, &[], &[("USER", "zed"), ("LOGNAME", "other")]);
    let text = String::from_utf8(succeeded(&output)).unwrap();
    assert_eq!(field(&text, "user"), "zed");
    let zed_id = field(&text, "id").to_owned();

    // Over MAX_ROWS: failed, named, exit 1, no new file.
    let output = record_export(cli, &["--user", "alice", "--max-rows", "2"], &[]);
    let stderr = refused(&output, Exit::Failure, &["MAX_ROWS"]);
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(field(&text, "status"), "failed", "{stderr}");
    let failed_id = field(&text, "id").to_owned();
    assert_eq!(
        all_files(&cli.files()).len(),
        2,
        "only the two completed files"
    );

    // exports list: a table, filters, JSON.
    let table = cli.text(&["exports", "list"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATUS"),
        "{table}"
    );
    for needle in [&id, &zed_id, &failed_id] {
        assert!(table.contains(needle.as_str()), "{table}");
    }
    assert!(
        table.contains("completed") && table.contains("failed"),
        "{table}"
    );
    let page = cli.json(&["exports", "list", "--user", "alice", "--json"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let page = cli.json(&["exports", "list", "--status", "failed", "--json"]);
    assert_eq!(page["items"][0]["id"], failed_id.as_str());
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let page = cli.json(&["exports", "list", "--limit", "1", "--json"]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = cli.json(&[
        "exports", "list", "--limit", "1", "--cursor", &cursor, "--json",
    ]);
    assert_ne!(next["items"][0]["id"], page["items"][0]["id"]);
    refused(
        &cli.run(&["exports", "list", "--status", "done"]),
        Exit::Input,
        &["--status", "completed"],
    );
    refused(
        &cli.run(&["exports", "list", "--cursor", "garbage"]),
        Exit::Input,
        &["cursor"],
    );

    // exports show.
    let text = cli.text(&["exports", "show", &id]);
    assert_eq!(field(&text, "status"), "completed");
    assert_eq!(field(&text, "user"), "alice");
    assert!(field(&text, "metadata").contains("\"loader\""), "{text}");
    let record = cli.json(&["exports", "show", &failed_id, "--json"]);
    assert!(record["error"].as_str().unwrap().contains("MAX_ROWS"));
    refused(
        &cli.run(&["exports", "show", &id, "--user", "bob"]),
        Exit::Input,
        &["not found"],
    );

    // exports delete: the record and its file.
    let text = cli.text(&["exports", "delete", &id]);
    assert!(text.contains(&id), "{text}");
    assert_eq!(all_files(&cli.files()).len(), 1, "alice's file went");
    refused(
        &cli.run(&["exports", "show", &id]),
        Exit::Input,
        &["not found"],
    );
    refused(
        &cli.run(&["exports", "delete", "exp_nope"]),
        Exit::Input,
        &["not found"],
    );

    // cleanup: an old orphan file goes; with RETENTION_DAYS=0 the failed
    // record is purged; zed's live file stays.
    let orphan_dir = cli.files().join("u").join("0123456789abcdef");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    let orphan = orphan_dir.join("exp_0123456789abcdef0123456789abcdef.csv");
    std::fs::write(&orphan, "orphan\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let output = cli.run_with(
        &["cleanup", "--json"],
        &[("EXPORT_HOST_RETENTION_DAYS", "0")],
    );
    let report: Value = serde_json::from_slice(&succeeded(&output)).unwrap();
    assert_eq!(report["orphans_removed"], 1, "{report}");
    assert_eq!(report["purged"], 1, "{report}");
    assert_eq!(report["expired"], 0, "{report}");
    assert!(!orphan.exists());
    assert_eq!(all_files(&cli.files()).len(), 1, "zed's file stays");
    let page = cli.json(&["exports", "list", "--json"]);
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![zed_id.as_str()]);
    let text = cli.text(&["cleanup"]);
    assert!(text.starts_with("expired 0 exports"), "{text}");
}

#[test]
fn records_commands_on_sqlite() {
    let cli = Cli::new(None);
    the_records_commands_work(&cli);
    assert!(cli.data_dir.join("exports.db").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_commands_on_postgres() {
    records_common::with_scratch_postgres_url(|url| {
        let cli = Cli::new(Some(url));
        the_records_commands_work(&cli);
        assert!(!cli.data_dir.join("exports.db").exists(), "no SQLite file");
    })
    .await;
}

#[test]
fn a_bad_setting_stops_with_one_line_and_exit_2() {
    let cli = Cli::new(None);
    for (args, env) in [
        (
            vec!["exports", "list"],
            vec![("EXPORT_HOST_MAX_ROWS", "ten")],
        ),
        (vec!["migrate"], vec![("EXPORT_HOST_MAX_ROWS", "ten")]),
        (vec!["cleanup", "--max-rows", "ten"], vec![]),
        (
            vec![
                "export",
                "--loader",
                "csv",
                "--format",
                "csv",
                "--set",
                "path=people.csv",
            ],
            vec![("EXPORT_HOST_MAX_ROWS", "ten")],
        ),
    ] {
        let output = cli.run_with(&args, &env);
        let stderr = refused(
            &output,
            Exit::Input,
            &["MAX_ROWS", "\"ten\"", "expected a whole number"],
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(output.stdout.is_empty());
    }
    assert!(!cli.data_dir.exists(), "nothing was created");
    let output = cli.run_with(&["exports", "list"], &[("EXPORT_HOST_STORAGE", "ftp://x")]);
    refused(&output, Exit::Input, &["STORAGE", "ftp://x"]);
}

/// `at migration N (description)` of the newest migration this build
/// embeds (sqlx describes `0003_token_scope.sql` as "token scope").
fn latest_migration() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    let newest = std::fs::read_dir(&dir)
        .expect("the migrations folder")
        .map(|entry| entry.expect("a migration").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".sql"))
        .max()
        .expect("at least one migration");
    let stem = newest.trim_end_matches(".sql");
    let (number, description) = stem.split_once('_').expect("NNNN_description.sql");
    let number: u32 = number.parse().expect("a numbered migration");
    format!("at migration {number} ({})", description.replace('_', " "))
}
