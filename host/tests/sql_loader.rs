//! The `sql` loader through the real binary and the built `libexport_sql.so`,
//! against a real SQLite file and a real PostgreSQL (a fresh database per
//! test, dropped afterwards; unreachable PostgreSQL fails the test).
//!
//! Each test builds the example schema with the `make-example-db` binary and
//! runs the presets from `examples/sql/presets.toml` as shipped, with only
//! `database` pointed at the test's database.

mod common;
#[macro_use]
mod example_db;

use common::*;
use example_db::sql_plugin::{jsonl_rows, presets_config, Row, SQL_LIB};
use example_db::{Backend, Database};
use serde_json::{json, Value};
use std::process::Output;

/// Rows the example database holds (see `make-example-db`).
const ADA_MESSAGES: usize = 58;
const SPANS: usize = 188;

/// A sandbox with the sql plugin (the shipped presets plus two test
/// queries) over a fresh example database, and the json and csv plugins.
struct SqlSandbox {
    sandbox: Sandbox,
    database: Database,
}

/// The `[plugins.sql.config]` table of the shipped presets, on `database`,
/// plus the test queries `calls` (raw model calls, to recompute the
/// analytics) and `generated` (a large result from a recursive CTE).
fn config(database: &str) -> toml::Table {
    presets_config(
        database,
        r#"
        [calls]
        sql = """
        SELECT day, model, input_tokens, output_tokens, latency_ms, cost_micros
        FROM (SELECT substr(created_at, 1, 10) AS day, model, input_tokens, output_tokens,
                     latency_ms, cost_micros
              FROM analytics_events WHERE event_type = 'llm.completion') calls
        """
        columns.day = "text"

        [calls_pg]
        sql = """
        SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, model,
               input_tokens::bigint AS input_tokens, output_tokens::bigint AS output_tokens,
               latency_ms::bigint AS latency_ms, cost_micros::bigint AS cost_micros
        FROM analytics_events WHERE event_type = 'llm.completion'
        """

        [writes]
        sql = "DELETE FROM users"

        [pg_types]
        sql.postgres = """
        SELECT 12345678901234567890.123450::numeric AS exact, 1.50::numeric AS scaled,
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, ARRAY[1, NULL, 3]::int4[] AS list,
               '{"b": 1, "a": [true]}'::jsonb AS doc, DATE '2024-05-01' AS day,
               TIMESTAMPTZ '2024-05-01 12:00:00.5+02' AS at, 2::int2 AS small, 1.5::float4 AS single
        """

        [pg_interval]
        sql.postgres = "SELECT interval '1 day' AS span"

        [generated]
        sql = """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
        SELECT i, 'row ' || i AS label FROM n
        """
        params.count = { type = "integer", required = true }
        columns.i = "integer"
        "#,
    )
}

impl SqlSandbox {
    fn new(backend: Backend) -> SqlSandbox {
        let sandbox = Sandbox::empty();
        let database = Database::example(backend, sandbox.path());
        let sql = Entry::new("sql", SQL_LIB).set("config", config(&database.url()));
        sandbox.register(&[sql, sandbox.json(), sandbox.csv()]);
        SqlSandbox { sandbox, database }
    }

    fn is_postgres(&self) -> bool {
        self.database.is_postgres()
    }

    /// `export-host export --loader sql --format jsonl` of `query` with `params`.
    fn export(&self, query: &str, params: Value, extra: &[&str]) -> Output {
        self.sandbox.export(
            "sql",
            "jsonl",
            &json!({"query": query, "params": params}),
            &json!({}),
            extra,
        )
    }

    /// The rows of a successful export, as JSON objects.
    fn rows(&self, query: &str, params: Value) -> Vec<Row> {
        jsonl_rows(&succeeded(&self.export(query, params, &[])))
    }

    /// The result's column names, in order (from the first row).
    fn columns(&self, query: &str, params: Value) -> Vec<String> {
        let stdout = succeeded(&self.export(query, params, &[]));
        let rows = read_jsonl(&stdout);
        let first = rows.first().expect("at least one row");
        first.keys().into_iter().map(str::to_owned).collect()
    }

    /// The rows of the `calls` test query on this backend.
    fn calls(&self) -> Vec<Row> {
        self.rows(
            if self.is_postgres() {
                "calls_pg"
            } else {
                "calls"
            },
            json!({}),
        )
    }
}

both_backends!(
    conversations_preset,
    analytics_preset,
    traces_preset,
    injection_in_parameters_is_inert,
    bad_requests_are_refused_naming_what_is_wrong,
    large_results_stream_to_the_end_and_stop_at_the_row_cap,
    queries_only_read,
);

fn queries_only_read(backend: Backend) {
    let db = SqlSandbox::new(backend);
    refused(
        &db.export("writes", json!({}), &[]),
        Exit::Input,
        &["only reads"],
    );
    assert_eq!(
        db.rows("conversations", json!({"user_id": "u_ada"})).len(),
        ADA_MESSAGES
    );
}

/// PostgreSQL types: exact numerics, uuids, arrays and jsonb as JSON, and a
/// type without an Arrow mapping refused with the cast that fixes it.
#[test]
fn postgres_types_map_without_loss() {
    let db = SqlSandbox::new(Backend::Postgres);
    let rows = db.rows("pg_types", json!({}));
    assert_eq!(
        Value::Object(rows[0].clone()),
        json!({"exact": "12345678901234567890.123450", "scaled": "1.50",
               "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "list": [1, null, 3],
               "doc": {"a": [true], "b": 1}, "day": "2024-05-01",
               "at": "2024-05-01T10:00:00.500Z", "small": 2, "single": 1.5})
    );
    refused(
        &db.export("pg_interval", json!({}), &[]),
        Exit::Refused,
        &["INTERVAL", "::text"],
    );
    // A query without SQL for the database says how to add it.
    let sqlite = SqlSandbox::new(Backend::Sqlite);
    refused(
        &sqlite.export("pg_types", json!({}), &[]),
        Exit::Refused,
        &["no SQL for sqlite", "sql.sqlite"],
    );
}

fn text<'a>(row: &'a Row, key: &str) -> &'a str {
    row[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string: {row:?}"))
}

fn conversations_preset(backend: Backend) {
    let db = SqlSandbox::new(backend);
    let rows = db.rows("conversations", json!({"user_id": "u_ada"}));
    assert_eq!(rows.len(), ADA_MESSAGES);
    assert!(rows.iter().all(|row| row["user_id"] == "u_ada"));
    let first = &rows[0];
    assert_eq!(
        db.columns("conversations", json!({"user_id": "u_ada", "limit": 1})),
        [
            "conversation_id",
            "conversation_title",
            "conversation_model",
            "conversation_created_at",
            "conversation_metadata",
            "user_id",
            "user_email",
            "message_id",
            "role",
            "content",
            "model",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "cost",
            "created_at",
        ]
    );
    // Oldest conversation first; timestamps are UTC, JSON stays JSON.
    assert_eq!(first["conversation_id"], "c_002");
    assert_eq!(first["conversation_title"], "Quarterly report, draft 2");
    assert_eq!(first["conversation_created_at"], "2024-05-02T05:51:20.602Z");
    assert_eq!(
        first["conversation_metadata"],
        json!({"client": "ios", "pinned": false})
    );
    assert_eq!(first["user_email"], "ada@example.com");
    assert_eq!(
        first["content"],
        "What's the difference between \"let\" and \"const\"?"
    );
    assert_eq!(first["cost"], Value::Null);
    let reply = &rows[1];
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["model"], "llama-3-70b");
    assert_eq!(reply["input_tokens"], 611);
    assert_eq!(reply["output_tokens"], 480);
    assert_eq!(reply["latency_ms"], 3568);
    assert_eq!(reply["cost"], json!(0.001091));
    assert_eq!(reply["created_at"], "2024-05-02T05:57:46.202Z");

    // Filtered by conversation ids, a time range, and limited.
    let picked = db.rows(
        "conversations",
        json!({"user_id": "u_ada", "conversation_ids": ["c_002", "c_004"]}),
    );
    assert!(!picked.is_empty() && picked.len() < ADA_MESSAGES);
    assert!(picked
        .iter()
        .all(|row| ["c_002", "c_004"].contains(&text(row, "conversation_id"))));
    let window = db.rows(
        "conversations",
        json!({"user_id": "u_ada", "from": "2024-05-05", "to": "2024-05-08T00:00:00+00:00"}),
    );
    assert!(!window.is_empty() && window.len() < ADA_MESSAGES);
    for row in &window {
        let at = text(row, "created_at");
        assert!(("2024-05-05".."2024-05-08").contains(&at), "{at}");
    }
    let expected_in_window = rows
        .iter()
        .filter(|row| ("2024-05-05".."2024-05-08").contains(&text(row, "created_at")))
        .count();
    assert_eq!(window.len(), expected_in_window);
    assert_eq!(
        db.rows("conversations", json!({"user_id": "u_ada", "limit": 5})),
        rows[..5]
    );
    assert!(db
        .rows("conversations", json!({"user_id": "u_nobody"}))
        .is_empty());
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> i64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn analytics_preset(backend: Backend) {
    let db = SqlSandbox::new(backend);
    let rows = db.rows("analytics", json!({}));
    assert_eq!(
        db.columns("analytics", json!({})),
        [
            "day",
            "model",
            "messages",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "cost"
        ]
    );
    assert_eq!(
        rows[0],
        json!({"day": "2024-05-01", "model": "gpt-4o", "messages": 4, "input_tokens": 2805,
               "output_tokens": 1536, "total_tokens": 4341, "latency_p50_ms": 2048,
               "latency_p95_ms": 3955, "latency_p99_ms": 3955, "cost": 0.023775})
        .as_object()
        .expect("an object")
        .clone()
    );

    // Every aggregate, recomputed from the raw calls.
    let mut groups: std::collections::BTreeMap<(String, String), Vec<[i64; 4]>> =
        Default::default();
    for call in db.calls() {
        let number = |key: &str| call[key].as_i64().expect("an integer");
        groups
            .entry((
                text(&call, "day").to_owned(),
                text(&call, "model").to_owned(),
            ))
            .or_default()
            .push([
                number("input_tokens"),
                number("output_tokens"),
                number("latency_ms"),
                number("cost_micros"),
            ]);
    }
    assert_eq!(rows.len(), groups.len());
    for (row, ((day, model), calls)) in rows.iter().zip(&groups) {
        assert_eq!(
            (text(row, "day"), text(row, "model")),
            (day.as_str(), model.as_str())
        );
        let sum = |n: usize| calls.iter().map(|call| call[n]).sum::<i64>();
        let mut latencies: Vec<i64> = calls.iter().map(|call| call[2]).collect();
        latencies.sort_unstable();
        assert_eq!(row["messages"], calls.len(), "{row:?}");
        assert_eq!(row["input_tokens"], sum(0), "{row:?}");
        assert_eq!(row["output_tokens"], sum(1), "{row:?}");
        assert_eq!(row["total_tokens"], sum(0) + sum(1), "{row:?}");
        assert_eq!(row["latency_p50_ms"], percentile(&latencies, 50), "{row:?}");
        assert_eq!(row["latency_p95_ms"], percentile(&latencies, 95), "{row:?}");
        assert_eq!(row["latency_p99_ms"], percentile(&latencies, 99), "{row:?}");
        assert_eq!(row["cost"], json!(sum(3) as f64 / 1e6), "{row:?}");
    }

    // One user, one time range.
    let ada = db.rows(
        "analytics",
        json!({"user_id": "u_ada", "from": "2024-05-01", "to": "2024-05-08"}),
    );
    assert!(!ada.is_empty());
    let all_messages: i64 = rows
        .iter()
        .map(|row| row["messages"].as_i64().unwrap_or(0))
        .sum();
    let ada_messages: i64 = ada
        .iter()
        .map(|row| row["messages"].as_i64().unwrap_or(0))
        .sum();
    assert!(ada_messages < all_messages);
    assert!(ada
        .iter()
        .all(|row| ("2024-05-01".."2024-05-08").contains(&text(row, "day"))));
}

fn traces_preset(backend: Backend) {
    let db = SqlSandbox::new(backend);
    let spans = db.rows("traces", json!({}));
    assert_eq!(spans.len(), SPANS);
    let columns = db.columns("traces", json!({}));
    assert_eq!(
        columns,
        [
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "kind",
            "start_time",
            "end_time",
            "duration_ms",
            "status",
            "status_message",
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cost",
            "input",
            "output",
            "error",
            "user_id",
            "session_id",
            "conversation_id",
            "tags",
            "metadata",
            "service_name",
            "environment",
            "version",
            "level",
            "event_count"
        ]
    );
    assert_eq!(columns.len(), 29);

    let trace = db.rows(
        "traces",
        json!({"trace_ids": ["d5d48a62525303d293cf975e082872e1"]}),
    );
    assert_eq!(trace.len(), 3);
    let root = &trace[0];
    assert_eq!(root["name"], "chat.completion");
    assert_eq!(root["parent_span_id"], Value::Null);
    assert_eq!(root["start_time"], "2024-05-02T11:42:57.313Z");
    assert_eq!(root["duration_ms"], 3993);
    assert_eq!(root["tags"], json!(["chat", "claude-3-5-sonnet", "api"]));
    assert_eq!(
        root["metadata"],
        json!({"attempt": 1, "client": "api", "region": "eu-west-1"})
    );
    let llm = &trace[2];
    assert_eq!(llm["name"], "llm.generate");
    assert_eq!(llm["parent_span_id"], root["span_id"]);
    assert_eq!(llm["model"], "claude-3-5-sonnet");
    assert_eq!(llm["total_tokens"], 2592);
    assert_eq!(llm["cost"], json!(0.015636));
    assert_eq!(llm["duration_ms"], 3761);
    assert_eq!(llm["event_count"], 1);
    assert_eq!(llm["input"], "=SUM(A1:A10) — why does Excel run this?");

    // Failed model calls carry their error and a retry event.
    let failed: Vec<_> = spans
        .iter()
        .filter(|span| span["status"] == "error")
        .collect();
    assert!(!failed.is_empty());
    for span in failed {
        assert_eq!(span["error"], "429 Too Many Requests");
        assert_eq!(span["level"], "ERROR");
        assert_eq!(span["event_count"], 2);
    }

    // A time range and a user.
    let window = db.rows(
        "traces",
        json!({"from": "2024-05-03T00:00:00Z", "to": "2024-05-04T00:00:00Z", "user_id": "u_grace"}),
    );
    let expected = spans
        .iter()
        .filter(|span| {
            span["user_id"] == "u_grace"
                && ("2024-05-03".."2024-05-04").contains(&text(span, "start_time"))
        })
        .count();
    assert_eq!(window.len(), expected);
}

fn injection_in_parameters_is_inert(backend: Backend) {
    let db = SqlSandbox::new(backend);
    for attack in [
        "x' OR '1'='1",
        "1; DROP TABLE users; --",
        "u_ada' --",
        "u_ada'); DELETE FROM messages; --",
    ] {
        assert!(
            db.rows("conversations", json!({"user_id": attack}))
                .is_empty(),
            "{attack}"
        );
        assert!(db
            .rows(
                "conversations",
                json!({"user_id": "u_ada", "conversation_ids": [attack, "c_002') OR ('1'='1"]})
            )
            .is_empty());
        assert!(db.rows("analytics", json!({"user_id": attack})).is_empty());
    }
    // The tables are still there and whole.
    assert_eq!(
        db.rows("conversations", json!({"user_id": "u_ada"})).len(),
        ADA_MESSAGES
    );
    assert_eq!(db.rows("traces", json!({})).len(), SPANS);
    // A message whose text is an attack comes back as plain text.
    let rows = db.rows("conversations", json!({"user_id": "u_ada"}));
    assert!(rows.iter().any(|row| row["content"] == "x' OR '1'='1"));
}

fn bad_requests_are_refused_naming_what_is_wrong(backend: Backend) {
    let db = SqlSandbox::new(backend);
    refused(
        &db.export("conversation", json!({"user_id": "u_ada"}), &[]),
        Exit::Input,
        &[
            "no query \"conversation\"",
            "analytics, analytics_costs, analytics_engagement, analytics_errors, \
             analytics_feedback, analytics_latency, analytics_models, analytics_usage, calls, \
             calls_pg, conversations, generated, pg_interval, pg_types, traces, writes",
        ],
    );
    // user_id is bound to the caller: the operator (an admin) who leaves
    // out the required parameter gets their own id, which has no rows; a
    // user who names someone else is refused.
    assert!(db.rows("conversations", json!({})).is_empty());
    refused(
        &db.export(
            "conversations",
            json!({"user_id": "u_ada"}),
            &["--user", "u_grace"],
        ),
        Exit::Input,
        &["\"user_id\"", "bound to the caller"],
    );
    refused(
        &db.export("conversations", json!({"user_id": 42}), &[]),
        Exit::Input,
        &["\"user_id\"", "JSON string", "got 42"],
    );
    refused(
        &db.export(
            "conversations",
            json!({"user_id": "u_ada", "limit": "ten"}),
            &[],
        ),
        Exit::Input,
        &["\"limit\"", "whole JSON number"],
    );
    refused(
        &db.export(
            "conversations",
            json!({"user_id": "u_ada", "from": "last week"}),
            &[],
        ),
        Exit::Input,
        &["\"from\"", "RFC 3339"],
    );
    refused(
        &db.export(
            "conversations",
            json!({"user_id": "u_ada", "conversation_ids": "c_002"}),
            &[],
        ),
        Exit::Input,
        &["\"conversation_ids\"", "array of strings"],
    );
    refused(
        &db.export(
            "conversations",
            json!({"user_id": "u_ada", "userid": "x"}),
            &[],
        ),
        Exit::Input,
        &[
            "no parameter \"userid\"",
            "user_id (text, required, from the caller)",
        ],
    );
    // The selector itself is checked against the loader's schema.
    refused(
        &db.sandbox.export(
            "sql",
            "jsonl",
            &json!({"query": "traces", "sql": "SELECT 1"}),
            &json!({}),
            &[],
        ),
        Exit::Input,
        &["sql"],
    );
}

fn large_results_stream_to_the_end_and_stop_at_the_row_cap(backend: Backend) {
    let db = SqlSandbox::new(backend);
    let count = 200_000;
    let output = db.sandbox.export(
        "sql",
        "csv",
        &json!({"query": "generated", "params": {"count": count}}),
        &json!({}),
        &["--batch-size", "7000"],
    );
    let stdout = succeeded(&output);
    let text = std::str::from_utf8(&stdout).expect("CSV is UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), count + 1, "a header and every row");
    assert_eq!(lines[0], "i,label");
    assert_eq!(lines[1], "1,row 1");
    assert_eq!(lines[count], format!("{count},row {count}"));

    // Past the row cap the export fails instead of writing a partial file.
    let out = db.sandbox.path().join("capped.csv");
    let output = db.sandbox.export(
        "sql",
        "csv",
        &json!({"query": "generated", "params": {"count": count}}),
        &json!({}),
        &[
            "--batch-size",
            "7000",
            "--max-rows",
            "150000",
            "-o",
            out.to_str().expect("UTF-8 path"),
        ],
    );
    refused(&output, Exit::Failure, &["150000"]);
    assert!(!out.exists());
}

/// Every preset returns the same rows from SQLite and PostgreSQL.
#[test]
fn presets_agree_across_backends() {
    let sqlite = SqlSandbox::new(Backend::Sqlite);
    let postgres = SqlSandbox::new(Backend::Postgres);
    for (query, params) in [
        ("conversations", json!({"user_id": "u_grace"})),
        (
            "conversations",
            json!({"user_id": "u_ada", "conversation_ids": ["c_001", "c_003"], "limit": 7}),
        ),
        ("analytics", json!({})),
        (
            "analytics",
            json!({"user_id": "u_alan", "from": "2024-05-03"}),
        ),
        ("traces", json!({})),
    ] {
        let from_sqlite = sqlite.rows(query, params.clone());
        let from_postgres = postgres.rows(query, params.clone());
        assert!(!from_sqlite.is_empty(), "{query} {params}");
        assert_eq!(from_sqlite, from_postgres, "{query} {params}");
    }
}
