//! The caller's identity reaches the sql loader's data: through the real
//! binary and the built `libexport_sql.so`, the shipped presets
//! (`examples/sql/presets.toml`, `user_id` bound to the caller) over a fresh
//! example database on SQLite and on PostgreSQL (a fresh database per test,
//! dropped afterwards).
//!
//! `export --user U` runs as user U (not an admin); without it the operator
//! is an admin. A user must never get a row of another user, however the
//! selector is crafted; an admin may act for any user. On PostgreSQL the
//! `[session]` block hands the caller to the database's own row-level
//! security.

mod common;
#[macro_use]
mod example_db;
mod server_common;

use common::*;
use example_db::sql_plugin::{as_user, jsonl_rows, presets_config, Row, SQL_LIB};
use example_db::{block_on, connect, make_example_db, Backend, Database};
use serde_json::{json, Value};
use server_common::Daemon;
use sqlx::Executor;
use std::collections::BTreeMap;
use std::process::Output;

/// The example database's users (see `make-example-db`).
const USERS: [&str; 5] = ["u_ada", "u_grace", "u_alan", "u_edsger", "u_barbara"];
/// Rows the example database holds, over every user.
const MESSAGES: usize = 168;
const SPANS: usize = 188;
const MODEL_CALLS: i64 = 79;

/// The shipped presets' `[plugins.sql.config]` on `database`, plus `calls`:
/// every model call with its user, to recompute a user's analytics.
fn config(database: &str) -> toml::Table {
    presets_config(
        database,
        r#"
        [calls]
        sql.sqlite = """
        SELECT user_id, substr(created_at, 1, 10) AS day, model, input_tokens
        FROM analytics_events WHERE event_type = 'llm.completion'
        """
        sql.postgres = """
        SELECT user_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, model,
               input_tokens::bigint AS input_tokens
        FROM analytics_events WHERE event_type = 'llm.completion'
        """
        columns.day = "text"
        columns.input_tokens = "integer"
        "#,
    )
}

/// A sandbox with the sql plugin (the shipped presets) over a fresh example
/// database.
struct Presets {
    sandbox: Sandbox,
    // Dropped after the sandbox: the database outlives every export.
    _database: Database,
}

impl Presets {
    /// The presets, loaded into the host as the shipped plugins.toml does.
    fn new(backend: Backend) -> Presets {
        Presets::with_isolation(backend, "in-process")
    }

    /// The presets with `isolation = ISOLATION` ("in-process" or "process").
    fn with_isolation(backend: Backend, isolation: &str) -> Presets {
        let sandbox = Sandbox::empty();
        let database = Database::example(backend, sandbox.path());
        let sql = Entry::new("sql", SQL_LIB)
            .set("isolation", isolation)
            .set("config", config(&database.url()));
        sandbox.register(&[sql, json_formatter(&sandbox)]);
        Presets {
            sandbox,
            _database: database,
        }
    }

    /// `export --loader sql --format jsonl --selector SELECTOR [--user USER]`.
    fn export(&self, selector: &Value, user: Option<&str>) -> Output {
        self.sandbox
            .export("sql", "jsonl", selector, &json!({}), &as_user(user))
    }

    /// The rows of a successful export of `query` with `params`.
    fn rows(&self, query: &str, params: Value, user: Option<&str>) -> Vec<Row> {
        rows_of(&self.export(&json!({"query": query, "params": params}), user))
    }

    /// `user`'s rows of `query`, asked for without parameters: there are
    /// some, all of them theirs, and exactly what the admin gets acting for
    /// them.
    fn own_rows(&self, query: &str, user: &str) -> Vec<Row> {
        let own = self.rows(query, json!({}), Some(user));
        assert!(!own.is_empty(), "{user} has {query} rows");
        all_belong_to(&own, user, query);
        assert_eq!(
            own,
            self.rows(query, json!({"user_id": user}), None),
            "{user}"
        );
        own
    }
}

/// The json plugin, for its `jsonl` formatter.
fn json_formatter(sandbox: &Sandbox) -> Entry {
    sandbox.json().set("isolation", "in-process")
}

/// The rows of a successful JSON Lines export.
fn rows_of(output: &Output) -> Vec<Row> {
    jsonl_rows(&succeeded(output))
}

/// Every row's `user_id`, which must be `user`; returns how many rows.
fn all_belong_to(rows: &[Row], user: &str, what: &str) -> usize {
    for row in rows {
        assert_eq!(
            row["user_id"], user,
            "{what}: a row of another user came back: {row:?}"
        );
    }
    rows.len()
}

/// Messages and input tokens per (day, model) of an analytics result.
fn analytics_totals(rows: &[Row]) -> BTreeMap<(String, String), (i64, i64)> {
    rows.iter()
        .map(|row| {
            (
                (
                    row["day"].as_str().unwrap_or_default().to_owned(),
                    row["model"].as_str().unwrap_or_default().to_owned(),
                ),
                (
                    row["messages"].as_i64().unwrap_or(-1),
                    row["input_tokens"].as_i64().unwrap_or(-1),
                ),
            )
        })
        .collect()
}

/// The same totals recomputed from the raw calls of `user` (all users when None).
fn calls_totals(calls: &[Row], user: Option<&str>) -> BTreeMap<(String, String), (i64, i64)> {
    let mut totals: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for call in calls
        .iter()
        .filter(|call| user.is_none_or(|user| call["user_id"] == user))
    {
        let key = (
            call["day"].as_str().unwrap_or_default().to_owned(),
            call["model"].as_str().unwrap_or_default().to_owned(),
        );
        let entry = totals.entry(key).or_default();
        entry.0 += 1;
        entry.1 += call["input_tokens"].as_i64().unwrap_or(0);
    }
    totals
}

both_backends!(
    a_user_without_parameters_gets_exactly_their_own_rows,
    a_user_asking_for_another_users_rows_gets_none,
    the_operator_is_an_admin_who_can_act_for_a_user,
    through_the_daemon_each_token_gets_its_own_rows,
);

fn a_user_without_parameters_gets_exactly_their_own_rows(backend: Backend) {
    let db = Presets::new(backend);
    let calls = db.rows("calls", json!({}), None);
    assert_eq!(calls.len() as i64, MODEL_CALLS);
    let (mut messages, mut spans) = (0, 0);
    for user in USERS {
        messages += db.own_rows("conversations", user).len();
        spans += db.own_rows("traces", user).len();

        // Analytics has no user column: its totals must be the user's calls alone.
        let own = db.rows("analytics", json!({}), Some(user));
        assert_eq!(
            analytics_totals(&own),
            calls_totals(&calls, Some(user)),
            "{user}'s analytics hold exactly their own calls"
        );
        assert_ne!(
            analytics_totals(&own),
            calls_totals(&calls, None),
            "{user}'s analytics are not everyone's"
        );
    }
    // Together the users' own rows are the whole database: nobody lost any.
    assert_eq!(messages, MESSAGES);
    assert_eq!(spans, SPANS);
}

fn a_user_asking_for_another_users_rows_gets_none(backend: Backend) {
    let db = Presets::new(backend);
    let (me, other) = ("u_alan", "u_grace");
    let other_conversations: Vec<String> = db
        .rows("conversations", json!({"user_id": other}), None)
        .iter()
        .filter_map(|row| row["conversation_id"].as_str().map(str::to_owned))
        .collect();
    let other_traces: Vec<String> = db
        .rows("traces", json!({"user_id": other}), None)
        .iter()
        .filter_map(|row| row["trace_id"].as_str().map(str::to_owned))
        .collect();
    assert!(!other_conversations.is_empty() && !other_traces.is_empty());

    for query in ["conversations", "analytics", "traces"] {
        // By parameter, in every shape: refused, naming the parameter.
        for value in [
            json!(other),
            json!("U_ALAN"),
            json!("u_alan "),
            json!(""),
            json!([other]),
            json!([me, other]),
            json!({"$ne": me}),
            json!(7),
            json!(true),
        ] {
            let output = db.export(
                &json!({"query": query, "params": {"user_id": value}}),
                Some(me),
            );
            refused(
                &output,
                Exit::Input,
                &["parameter \"user_id\"", "bound to the caller"],
            );
            assert!(output.stdout.is_empty(), "{query} {value}: no row written");
        }
        // Extra keys, in the params and beside them: refused.
        for selector in [
            json!({"query": query, "params": {"user_id": me, "userId": other}}),
            json!({"query": query, "params": {"user": other}}),
            json!({"query": query, "params": {}, "user": other}),
            json!({"query": query, "caller": {"user": other, "admin": true}}),
            json!({"query": query, "user_id": other}),
        ] {
            let output = db.export(&selector, Some(me));
            refused(&output, Exit::Input, &[]);
            assert!(output.stdout.is_empty(), "{selector}: no row written");
        }
        // Their own id, null, or nothing: their own rows only.
        let own = db.rows(query, json!({}), Some(me));
        assert!(!own.is_empty(), "{query}");
        for params in [json!({"user_id": me}), json!({"user_id": null})] {
            assert_eq!(
                db.rows(query, params.clone(), Some(me)),
                own,
                "{query} {params}"
            );
        }
        if query != "analytics" {
            all_belong_to(&own, me, query);
        }
    }
    // Naming another user's conversations or traces finds none of them.
    let picked = db.rows(
        "conversations",
        json!({"conversation_ids": other_conversations}),
        Some(me),
    );
    assert!(picked.is_empty(), "{picked:?}");
    let picked = db.rows("traces", json!({"trace_ids": other_traces}), Some(me));
    assert!(picked.is_empty(), "{picked:?}");
}

fn the_operator_is_an_admin_who_can_act_for_a_user(backend: Backend) {
    let db = Presets::new(backend);
    // Acting for one user.
    let grace = db.rows("conversations", json!({"user_id": "u_grace"}), None);
    assert_eq!(all_belong_to(&grace, "u_grace", "conversations"), 43);
    let grace = db.rows("traces", json!({"user_id": "u_grace"}), None);
    assert_eq!(all_belong_to(&grace, "u_grace", "traces"), 46);
    let calls = db.rows("calls", json!({}), None);
    assert_eq!(
        analytics_totals(&db.rows("analytics", json!({"user_id": "u_grace"}), None)),
        calls_totals(&calls, Some("u_grace"))
    );
    // Everyone, where the query allows it.
    assert_eq!(db.rows("traces", json!({}), None).len(), SPANS);
    assert_eq!(
        analytics_totals(&db.rows("analytics", json!({}), None)),
        calls_totals(&calls, None)
    );
    // conversations requires user_id: an admin who leaves it out gets their
    // own id ("operator" at the CLI), never everyone's messages.
    assert!(db.rows("conversations", json!({}), None).is_empty());
    // An admin's value is still type-checked.
    refused(
        &db.export(
            &json!({"query": "traces", "params": {"user_id": ["u_ada"]}}),
            None,
        ),
        Exit::Input,
        &["\"user_id\"", "JSON string"],
    );
}

/// A fresh PostgreSQL database with a table under forced row-level security
/// keyed on the `sub` claim, and the sql plugin over it with a `[session]`.
fn rls_sandbox() -> (Sandbox, Database) {
    let database = Database::new_postgres();
    block_on(async {
        let mut db = connect(&database.url()).await;
        // Roles belong to the whole server: create it once, tolerating a
        // concurrent test doing the same.
        db.execute(
            "DO $$ BEGIN CREATE ROLE authenticated NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .await
        .expect("create the role");
        db.execute(
            "CREATE TABLE notes (id integer PRIMARY KEY, owner text NOT NULL, body text);
             INSERT INTO notes VALUES (1, 'u_ada', 'ada one'), (2, 'u_bob', 'bob one'),
                                      (3, 'u_ada', 'ada two'), (4, 'u_grace', 'grace');
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
             ALTER TABLE notes FORCE ROW LEVEL SECURITY;
             CREATE POLICY own_notes ON notes FOR SELECT
                 USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');
             GRANT USAGE ON SCHEMA public TO authenticated;
             GRANT SELECT ON notes TO authenticated;",
        )
        .await
        .expect("set up the table");
    });
    let config: toml::Table = format!(
        r#"
        database = "{}"
        [session]
        role = "authenticated"
        claims_setting = "request.jwt.claims"
        [queries.notes]
        sql = "SELECT owner, body FROM notes ORDER BY id"
        "#,
        database.url()
    )
    .parse()
    .expect("the config is TOML");
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        Entry::new("sql", SQL_LIB)
            .set("isolation", "in-process")
            .set("config", config),
        json_formatter(&sandbox),
    ]);
    (sandbox, database)
}

/// The database's own row-level security decides: the query has no WHERE
/// clause, and each caller sees only their rows.
#[test]
fn postgres_row_level_security_sees_the_caller() {
    let (sandbox, _database) = rls_sandbox();
    let notes = |user: Option<&str>| {
        let rows = rows_of(&sandbox.export(
            "sql",
            "jsonl",
            &json!({"query": "notes"}),
            &json!({}),
            &as_user(user),
        ));
        rows.iter()
            .map(|row| row["owner"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(notes(Some("u_ada")), ["u_ada", "u_ada"]);
    assert_eq!(notes(Some("u_bob")), ["u_bob"]);
    assert!(notes(Some("u_nobody")).is_empty());
    // The operator's claims name "operator", whom the policy gives nothing.
    assert!(notes(None).is_empty());
}

/// SQLite has no row-level security: a `[session]` block there is refused.
#[test]
fn a_session_block_on_sqlite_is_refused() {
    let sandbox = Sandbox::empty();
    let path = sandbox.path().join("example.db");
    make_example_db(path.to_str().expect("UTF-8 temp path"));
    let config: toml::Table = format!(
        r#"
        database = "sqlite://{}"
        [session]
        role = "authenticated"
        [queries.users]
        sql = "SELECT id FROM users"
        "#,
        path.display()
    )
    .parse()
    .expect("the config is TOML");
    sandbox.register(&[
        Entry::new("sql", SQL_LIB)
            .set("isolation", "in-process")
            .set("config", config),
        json_formatter(&sandbox),
    ]);
    for user in [Some("u_ada"), None] {
        let output = sandbox.export(
            "sql",
            "jsonl",
            &json!({"query": "users"}),
            &json!({}),
            &as_user(user),
        );
        refused(
            &output,
            Exit::Input,
            &["[session]", "SQLite has no row-level security"],
        );
        assert!(output.stdout.is_empty());
    }
}

/// An isolated plugin (sandboxed worker processes) gets the caller over the
/// worker protocol: the same rows, the same refusals.
#[test]
fn an_isolated_sql_plugin_binds_the_caller_too() {
    let isolated = Presets::with_isolation(Backend::Sqlite, "process");
    let own = isolated.rows("traces", json!({}), Some("u_alan"));
    assert_eq!(all_belong_to(&own, "u_alan", "traces"), 18);
    refused(
        &isolated.export(
            &json!({"query": "traces", "params": {"user_id": "u_grace"}}),
            Some("u_alan"),
        ),
        Exit::Input,
        &["parameter \"user_id\"", "bound to the caller"],
    );
    assert_eq!(isolated.rows("traces", json!({}), None).len(), SPANS);
}

/// `POST /v1/exports?wait` of `selector` with `token`, and the downloaded
/// rows; or the refusal's status and message.
fn daemon_export(
    daemon: &Daemon,
    token: &str,
    selector: &Value,
) -> Result<Vec<Row>, (u16, String)> {
    let request = json!({"loader": "sql", "format": "jsonl", "selector": selector});
    let answer = daemon.post("/v1/exports?wait=60", Some(token), &request);
    if answer.status >= 400 {
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return Err((answer.status, message));
    }
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let record = answer.json();
    assert_eq!(record["status"], "completed", "{record}");
    let id = record["id"].as_str().expect("a record id");
    let download = daemon.get(&format!("/v1/exports/{id}/download"), Some(token));
    assert_eq!(download.status, 200);
    Ok(jsonl_rows(&download.body))
}

fn through_the_daemon_each_token_gets_its_own_rows(backend: Backend) {
    let Presets {
        sandbox,
        _database: database,
    } = Presets::new(backend);
    let daemon = Daemon::start(sandbox, &[]);
    let alan = daemon.token("u_alan", false);
    let grace = daemon.token("u_grace", false);
    let admin = daemon.token("root", true);
    let get = |token: &str, selector: Value| {
        daemon_export(&daemon, token, &selector)
            .unwrap_or_else(|(status, message)| panic!("{selector}: {status} {message}"))
    };

    for (user, token) in [("u_alan", &alan), ("u_grace", &grace)] {
        for query in ["conversations", "traces"] {
            let own = get(token, json!({"query": query}));
            assert!(!own.is_empty(), "{user} {query}");
            all_belong_to(&own, user, query);
            assert_eq!(
                own,
                get(&admin, json!({"query": query, "params": {"user_id": user}})),
                "{user} {query}: what an admin gets acting for them"
            );
        }
        assert_eq!(
            get(token, json!({"query": "analytics"})),
            get(
                &admin,
                json!({"query": "analytics", "params": {"user_id": user}})
            ),
            "{user} analytics"
        );
    }

    // Asking for someone else's rows is refused at submission: 400 naming
    // the parameter, and nothing recorded.
    for query in ["conversations", "analytics", "traces"] {
        for value in [json!("u_grace"), json!("U_ALAN"), json!(["u_grace"])] {
            let (status, message) = daemon_export(
                &daemon,
                &alan,
                &json!({"query": query, "params": {"user_id": value}}),
            )
            .expect_err("refused");
            assert_eq!(status, 400, "{query} {value}: {message}");
            assert!(
                message.contains("\"user_id\"") && message.contains("bound to the caller"),
                "{message}"
            );
        }
        let (status, _) = daemon_export(
            &daemon,
            &alan,
            &json!({"query": query, "params": {"user": "u_grace"}}),
        )
        .expect_err("refused");
        assert_eq!(status, 400);
    }
    let listed = daemon.get("/v1/exports", Some(&alan)).json();
    let records = listed["items"].as_array().map_or(0, Vec::len);
    assert_eq!(
        records, 3,
        "only alan's three completed exports are recorded: {listed}"
    );

    // An admin acts for a user, or for everyone where the query allows it.
    let rows = get(
        &admin,
        json!({"query": "conversations", "params": {"user_id": "u_grace"}}),
    );
    assert_eq!(all_belong_to(&rows, "u_grace", "conversations"), 43);
    assert_eq!(get(&admin, json!({"query": "traces"})).len(), SPANS);
    drop(daemon);
    drop(database);
}
