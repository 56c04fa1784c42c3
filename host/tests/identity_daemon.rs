//! The caller's identity reaches the data, through the real daemon: every
//! sql preset, a `{user}` file root and a loader that reports the caller it
//! was handed, with records and data on SQLite and on PostgreSQL.
//!
//! Tried as an attacker with a user's token: another user's rows must never
//! come back, whether asked for by parameter, by leaving the parameter out
//! or by a crafted selector; an admin can act for one user.

mod common;
#[macro_use]
mod example_db;
mod server_common;

use common::*;
use example_db::sql_plugin::{shipped_sql_config, SQL_LIB};
use example_db::{Backend, Database};
use serde_json::{json, Value};
use server_common::Daemon;

const WHOAMI_LIB: &str = "libexport_test_whoami.so";

/// The daemon over the example data, with sql (the shipped presets), csv
/// rooted at `roots/{user}` and whoami; its databases live as long as it.
struct World {
    daemon: Daemon,
    _data: Database,
    _records: Option<Database>,
}

impl World {
    fn start(backend: Backend) -> World {
        let sandbox = Sandbox::empty();
        let data = Database::example(backend, sandbox.path());
        let roots = sandbox.path().join("roots");
        for (user, body) in [("u_ada", "who\nada\n"), ("u_grace", "who\ngrace\n")] {
            std::fs::create_dir_all(roots.join(user)).expect("a user folder");
            std::fs::write(roots.join(user).join("mine.csv"), body).expect("a user file");
        }
        let mut csv_config = toml::Table::new();
        csv_config.insert(
            "root".into(),
            format!("{}/{{user}}", roots.display()).into(),
        );
        sandbox.register(&[
            Entry::new("sql", SQL_LIB)
                .set("isolation", "in-process")
                .set("config", shipped_sql_config("plugins.toml", &data.url())),
            Entry::new("csv", CSV_LIB)
                .set("isolation", "in-process")
                .set("config", csv_config),
            Entry::new("json", JSON_LIB).set("isolation", "in-process"),
            Entry::new("whoami", WHOAMI_LIB).set("isolation", "in-process"),
            // The same loader in a worker process: the caller crosses the
            // worker protocol too.
            Entry::new("whoami-isolated", WHOAMI_LIB).set("isolation", "process"),
        ]);
        let records = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Database::new_postgres()),
        };
        let records_url = records.as_ref().map(Database::url);
        let extra: Vec<(&str, &str)> = records_url
            .as_deref()
            .map(|url| vec![("EXPORT_HOST_DATABASE_URL", url)])
            .unwrap_or_default();
        let daemon = Daemon::start(sandbox, &extra);
        World {
            daemon,
            _data: data,
            _records: records,
        }
    }

    /// POSTs an export and waits for its end: the record, or the refusal.
    fn export(&self, token: &str, loader: &str, selector: Value) -> Result<Value, (u16, String)> {
        let answer = self.daemon.post(
            "/v1/exports",
            Some(token),
            &json!({"loader": loader, "format": "jsonl", "selector": selector}),
        );
        if answer.status >= 400 {
            let body = answer.json();
            return Err((
                answer.status,
                body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
        let id = answer.json()["id"].as_str().expect("an id").to_owned();
        Ok(self.daemon.wait_until_done(&id, token))
    }

    /// The rows of a completed export, downloaded with `token`.
    fn rows(&self, token: &str, loader: &str, selector: Value) -> Vec<Value> {
        let record = self
            .export(token, loader, selector.clone())
            .unwrap_or_else(|err| panic!("{loader} {selector} refused: {err:?}"));
        assert_eq!(record["status"], "completed", "{record}");
        let id = record["id"].as_str().expect("an id");
        let answer = self
            .daemon
            .get(&format!("/v1/exports/{id}/download"), Some(token));
        assert_eq!(answer.status, 200);
        String::from_utf8(answer.body)
            .expect("JSON Lines are UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    /// A refusal at submission: the status and message.
    fn refused(&self, token: &str, loader: &str, selector: Value) -> (u16, String) {
        match self.export(token, loader, selector.clone()) {
            Err(refusal) => refusal,
            Ok(record) => panic!("{loader} {selector} was accepted: {record}"),
        }
    }
}

/// The `user_id` of every row.
fn owners(rows: &[Value]) -> Vec<String> {
    let mut owners: Vec<String> = rows
        .iter()
        .map(|row| row["user_id"].as_str().unwrap_or("<none>").to_owned())
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

fn sql(query: &str, params: Value) -> Value {
    json!({"query": query, "params": params})
}

fn users_see_only_their_own_rows(backend: Backend) {
    let world = World::start(backend);
    let ada = world.daemon.token("u_ada", false);
    let grace = world.daemon.token("u_grace", false);
    let admin = world.daemon.token("root", true);

    // With no parameters each user gets exactly their own rows.
    for query in ["conversations", "traces"] {
        let rows = world.rows(&ada, "sql", sql(query, json!({})));
        assert!(!rows.is_empty(), "{query}: ada has rows");
        assert_eq!(owners(&rows), ["u_ada"], "{query}");
        let rows = world.rows(&grace, "sql", sql(query, json!({})));
        assert_eq!(owners(&rows), ["u_grace"], "{query}");
    }
    // Analytics has no user column: a user's own equals what an admin
    // computes for that user, and differs from everyone's.
    let own = world.rows(&ada, "sql", sql("analytics", json!({})));
    let for_ada = world.rows(&admin, "sql", sql("analytics", json!({"user_id": "u_ada"})));
    let everyone = world.rows(&admin, "sql", sql("analytics", json!({})));
    assert!(!own.is_empty());
    assert_eq!(own, for_ada, "a user's analytics are their own");
    assert_ne!(own, everyone, "and not everyone's");

    // Asking for another user's rows, however it is dressed up, is refused
    // at submission (400) naming the parameter, and records nothing.
    for query in ["conversations", "analytics", "traces"] {
        for params in [
            json!({"user_id": "u_grace"}),
            json!({"user_id": "U_GRACE"}),
            json!({"user_id": null, "user": "u_grace"}),
            json!({"user_id": ["u_grace"]}),
            json!({"user_id": "u_ada' OR '1'='1"}),
        ] {
            let (status, message) = world.refused(&ada, "sql", sql(query, params.clone()));
            assert_eq!(status, 400, "{query} {params}: {message}");
            assert!(
                message.contains("user"),
                "{query} {params}: the message names the parameter: {message}"
            );
        }
        // A caller smuggled in the selector is refused by its schema.
        let crafted =
            json!({"query": query, "params": {}, "caller": {"user": "u_grace", "admin": true}});
        assert_eq!(world.refused(&ada, "sql", crafted).0, 400);
    }
    // Setting it to one's own id is the same as leaving it out.
    let rows = world.rows(
        &ada,
        "sql",
        sql("conversations", json!({"user_id": "u_ada"})),
    );
    assert_eq!(owners(&rows), ["u_ada"]);
    let listed = world.daemon.get("/v1/exports?limit=500", Some(&ada)).json();
    for record in listed["items"].as_array().expect("items") {
        assert_eq!(
            record["status"], "completed",
            "refusals left no record: {record}"
        );
    }

    // An admin acts for one user.
    let rows = world.rows(
        &admin,
        "sql",
        sql("conversations", json!({"user_id": "u_grace"})),
    );
    assert_eq!(owners(&rows), ["u_grace"]);
    let rows = world.rows(&admin, "sql", sql("traces", json!({})));
    assert!(owners(&rows).len() > 1, "an admin sees everyone's spans");
}

fn user_roots_serve_each_user_their_own_file(backend: Backend) {
    let world = World::start(backend);
    let ada = world.daemon.token("u_ada", false);
    let grace = world.daemon.token("u_grace", false);
    let mine = json!({"path": "mine.csv"});
    assert_eq!(
        world.rows(&ada, "csv", mine.clone()),
        [json!({"who": "ada"})]
    );
    assert_eq!(world.rows(&grace, "csv", mine), [json!({"who": "grace"})]);
    for path in [
        "../u_grace/mine.csv",
        "/etc/passwd",
        "u_grace/../../u_grace/mine.csv",
    ] {
        let (status, message) = world.refused(&ada, "csv", json!({ "path": path }));
        assert_eq!(status, 400, "{path}: {message}");
        assert!(!message.contains("grace\n"), "{message}");
    }
}

fn the_loader_sees_the_verified_caller(backend: Backend) {
    let world = World::start(backend);
    let ada = world.daemon.token("u_ada", false);
    let admin = world.daemon.token("root", true);
    for loader in ["whoami/whoami", "whoami-isolated/whoami"] {
        let rows = world.rows(&ada, loader, json!({}));
        assert_eq!(rows.len(), 1, "{loader}");
        assert_eq!(rows[0]["user"], "u_ada", "{loader}");
        assert_eq!(rows[0]["admin"], false, "{loader}");
        let credential = rows[0]["credential"].as_str().expect("credential");
        assert!(
            credential.starts_with("token tok_"),
            "{loader}: {credential}"
        );
        let rows = world.rows(&admin, loader, json!({}));
        assert_eq!(
            (&rows[0]["user"], &rows[0]["admin"]),
            (&json!("root"), &json!(true))
        );

        // The loader's validate check answers at submission.
        let (status, message) = world.refused(&ada, loader, json!({"refuse": true}));
        assert_eq!(status, 400);
        assert!(message.contains("refused as asked"), "{message}");
        let mallory = world.daemon.token("mallory", false);
        let (status, message) = world.refused(&mallory, loader, json!({}));
        assert_eq!(status, 400);
        assert!(message.contains("mallory may not"), "{message}");
    }

    // The record keeps who asked, and the log names the credential.
    let record = world
        .export(&ada, "whoami/whoami", json!({}))
        .expect("accepted");
    let credential = &record["metadata"]["caller"]["credential"];
    assert_eq!(credential["kind"], "token", "{record}");
    let token_id = credential["id"].as_str().expect("a token id");
    assert!(token_id.starts_with("tok_"));
    let log = world.daemon.log();
    assert!(
        log.contains(&format!("token {token_id}")),
        "the log names the credential: {log}"
    );
}

both_backends!(
    users_see_only_their_own_rows,
    user_roots_serve_each_user_their_own_file,
    the_loader_sees_the_verified_caller,
);
