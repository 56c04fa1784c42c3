//! The sql plugin's analytics presets (`analytics_usage`, `analytics_models`,
//! `analytics_costs`, `analytics_latency`, `analytics_errors`,
//! `analytics_engagement`, `analytics_feedback`), the `conversations`
//! widget-session filter and per-query `max_rows`, through the real binary
//! and the built `libexport_sql.so` against a real SQLite file and a real
//! PostgreSQL (a fresh database per test, dropped afterwards).
//!
//! Each test fills its database with `make-example-db` and runs the presets
//! of `examples/sql/presets.toml` as shipped, with only `database` pointed
//! at the test's database. The expected rows are computed here, in Rust,
//! from the raw seeded rows (read with plain `SELECT`s, no aggregation), and
//! a few are written out by hand.

mod common;
#[macro_use]
mod example_db;

use common::*;
use example_db::sql_plugin::{as_user, jsonl_rows, presets_config, queries_of, Row, SQL_LIB};
use example_db::{Backend, Database};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

/// The shipped presets on `database`, plus raw-row queries the expected
/// values are computed from, and two copies of `conversations` with a low
/// `max_rows` (`capped` fails past it, `capped_stop` stops there).
fn config(database: &str) -> toml::Table {
    let mut config = presets_config(
        database,
        r#"
        [raw_messages]
        sql.sqlite = """
        SELECT m.id, m.conversation_id, c.user_id, c.widget_session_id, m.input_tokens,
               m.output_tokens, m.cost_micros, m.created_at
        FROM messages m JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id
        """
        sql.postgres = """
        SELECT m.id, m.conversation_id, c.user_id, c.widget_session_id,
               m.input_tokens::bigint AS input_tokens, m.output_tokens::bigint AS output_tokens,
               m.cost_micros::bigint AS cost_micros, m.created_at
        FROM messages m JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id
        """
        columns.widget_session_id = "text"
        columns.input_tokens = "integer"
        columns.output_tokens = "integer"
        columns.cost_micros = "integer"
        columns.created_at = "timestamp"

        [raw_calls]
        sql.sqlite = """
        SELECT user_id, model, event_type, error_type, input_tokens, output_tokens, latency_ms,
               cost_micros, created_at
        FROM analytics_events WHERE event_type IN ('llm.completion', 'llm.error') ORDER BY id
        """
        sql.postgres = """
        SELECT user_id, model, event_type, error_type, input_tokens::bigint AS input_tokens,
               output_tokens::bigint AS output_tokens, latency_ms::bigint AS latency_ms,
               cost_micros::bigint AS cost_micros, created_at
        FROM analytics_events WHERE event_type IN ('llm.completion', 'llm.error') ORDER BY id
        """
        columns.error_type = "text"
        columns.input_tokens = "integer"
        columns.output_tokens = "integer"
        columns.latency_ms = "integer"
        columns.cost_micros = "integer"
        columns.created_at = "timestamp"

        [raw_feedback]
        sql.sqlite = """
        SELECT f.user_id, f.rating, m.model, f.created_at
        FROM message_feedback f JOIN messages m ON m.id = f.message_id ORDER BY f.id
        """
        sql.postgres = """
        SELECT f.user_id, f.rating::bigint AS rating, m.model, f.created_at
        FROM message_feedback f JOIN messages m ON m.id = f.message_id ORDER BY f.id
        """
        columns.rating = "integer"
        columns.created_at = "timestamp"

        [raw_users]
        sql = "SELECT id, email FROM users ORDER BY id"
        "#,
    );
    let queries = queries_of(&mut config);
    let mut capped = queries["conversations"].clone();
    let table = capped.as_table_mut().expect("a query is a table");
    table.insert("max_rows".into(), 10.into());
    queries.insert("capped".into(), capped.clone());
    let table = capped.as_table_mut().expect("a query is a table");
    table.insert("on_max_rows".into(), "stop".into());
    queries.insert("capped_stop".into(), capped);
    config
}

struct SqlSandbox {
    sandbox: Sandbox,
    _database: Database,
}

impl SqlSandbox {
    fn new(backend: Backend) -> SqlSandbox {
        let sandbox = Sandbox::empty();
        let database = Database::example(backend, sandbox.path());
        let sql = Entry::new("sql", SQL_LIB).set("config", config(&database.url()));
        sandbox.register(&[sql, sandbox.json()]);
        SqlSandbox {
            sandbox,
            _database: database,
        }
    }

    /// `export --loader sql --format jsonl` of `selector`, as `user` if given.
    fn export(&self, selector: Value, user: Option<&str>) -> Output {
        self.sandbox
            .export("sql", "jsonl", &selector, &json!({}), &as_user(user))
    }

    /// The rows of a successful export of `query` (as the operator, an
    /// admin, or as `user`).
    fn rows(&self, query: &str, params: Value, user: Option<&str>) -> Vec<Row> {
        let stdout = succeeded(&self.export(json!({"query": query, "params": params}), user));
        jsonl_rows(&stdout)
    }

    /// The result's column names, in order.
    fn columns(&self, query: &str) -> Vec<String> {
        let stdout = succeeded(&self.export(json!({"query": query}), None));
        let rows = read_jsonl(&stdout);
        let first = rows.first().expect("at least one row");
        first.keys().into_iter().map(str::to_owned).collect()
    }

    fn raw(&self) -> Raw {
        Raw {
            messages: self.rows("raw_messages", json!({}), None),
            calls: self.rows("raw_calls", json!({}), None),
            feedback: self.rows("raw_feedback", json!({}), None),
            users: self.rows("raw_users", json!({}), None),
        }
    }
}

/// The seeded rows, unaggregated.
struct Raw {
    messages: Vec<Row>,
    calls: Vec<Row>,
    feedback: Vec<Row>,
    users: Vec<Row>,
}

fn text<'a>(row: &'a Row, key: &str) -> &'a str {
    row[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string: {row:?}"))
}

fn int(row: &Row, key: &str) -> i64 {
    row[key].as_i64().unwrap_or(0)
}

/// The UTC day of a timestamp as the plugin writes it (`2024-05-01T...Z`).
fn day(row: &Row, key: &str) -> String {
    let at = text(row, key);
    assert!(at.ends_with('Z') && at.len() == 24, "{at}");
    at[..10].to_owned()
}

fn owned_by(row: &Row, user: Option<&str>) -> bool {
    user.is_none_or(|user| text(row, "user_id") == user)
}

fn dollars(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// Nearest rank: the smallest value with at least p% of the values at or below it.
fn percentile(sorted: &[i64], p: usize) -> i64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn object(value: Value) -> Row {
    match value {
        Value::Object(row) => row,
        other => panic!("not an object: {other}"),
    }
}

/// Numbers compared by value, whether written `1` or `1.0`.
fn normal(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|(key, value)| {
                    let value = match value.as_f64() {
                        Some(number) => json!(number),
                        None => value.clone(),
                    };
                    (key.clone(), value)
                })
                .collect()
        })
        .collect()
}

fn assert_rows(query: &str, got: &[Row], expected: &[Row]) {
    let (got, expected) = (normal(got), normal(expected));
    assert_eq!(
        got.len(),
        expected.len(),
        "{query}: {got:#?}\nexpected {expected:#?}"
    );
    for (n, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "{query}, row {n}");
    }
}

// ---------------------------------------------------------------------------
// The expected rows, from the raw ones

fn expected_usage(raw: &Raw, user: Option<&str>) -> Vec<Row> {
    #[derive(Default)]
    struct Day {
        messages: i64,
        conversations: BTreeSet<String>,
        users: BTreeSet<String>,
        input: i64,
        output: i64,
        cost: i64,
    }
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    for m in raw.messages.iter().filter(|m| owned_by(m, user)) {
        let d = days.entry(day(m, "created_at")).or_default();
        d.messages += 1;
        d.conversations
            .insert(text(m, "conversation_id").to_owned());
        d.users.insert(text(m, "user_id").to_owned());
        d.input += int(m, "input_tokens");
        d.output += int(m, "output_tokens");
        d.cost += int(m, "cost_micros");
    }
    days.into_iter()
        .map(|(day, d)| {
            object(json!({"day": day, "messages": d.messages,
                "conversations": d.conversations.len(), "active_users": d.users.len(),
                "input_tokens": d.input, "output_tokens": d.output,
                "total_tokens": d.input + d.output, "cost": dollars(d.cost)}))
        })
        .collect()
}

fn completed(call: &Row) -> bool {
    text(call, "event_type") == "llm.completion"
}

fn expected_models(raw: &Raw, user: Option<&str>) -> Vec<Row> {
    let mut models: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for call in raw.calls.iter().filter(|c| owned_by(c, user)) {
        models
            .entry(text(call, "model").to_owned())
            .or_default()
            .push(call);
    }
    models
        .into_iter()
        .map(|(model, calls)| {
            let done: Vec<&Row> = calls.iter().copied().filter(|c| completed(c)).collect();
            let failed = calls.len() - done.len();
            let sum = |key: &str| done.iter().map(|c| int(c, key)).sum::<i64>();
            let mut latencies: Vec<i64> = done.iter().map(|c| int(c, "latency_ms")).collect();
            latencies.sort_unstable();
            let cost: i64 = calls.iter().map(|c| int(c, "cost_micros")).sum();
            object(
                json!({"model": model, "calls": calls.len(), "failed_calls": failed,
                "input_tokens": sum("input_tokens"), "output_tokens": sum("output_tokens"),
                "total_tokens": sum("input_tokens") + sum("output_tokens"),
                "latency_p50_ms": percentile(&latencies, 50),
                "latency_p95_ms": percentile(&latencies, 95),
                "latency_p99_ms": percentile(&latencies, 99),
                "cost": dollars(cost), "error_rate": failed as f64 / calls.len() as f64}),
            )
        })
        .collect()
}

fn expected_costs(raw: &Raw, user: Option<&str>) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String, String), [i64; 4]> = BTreeMap::new();
    for call in raw
        .calls
        .iter()
        .filter(|c| owned_by(c, user) && completed(c))
    {
        let key = (
            day(call, "created_at"),
            text(call, "user_id").to_owned(),
            text(call, "model").to_owned(),
        );
        let sums = groups.entry(key).or_default();
        sums[0] += 1;
        sums[1] += int(call, "input_tokens");
        sums[2] += int(call, "output_tokens");
        sums[3] += int(call, "cost_micros");
    }
    groups
        .into_iter()
        .map(|((day, user_id, model), [calls, input, output, cost])| {
            object(
                json!({"day": day, "user_id": user_id, "model": model, "calls": calls,
                "input_tokens": input, "output_tokens": output, "total_tokens": input + output,
                "cost": dollars(cost)}),
            )
        })
        .collect()
}

const BUCKETS: [(i64, Option<i64>); 6] = [
    (0, Some(1000)),
    (1000, Some(2000)),
    (2000, Some(3000)),
    (3000, Some(4000)),
    (4000, Some(5000)),
    (5000, None),
];

fn expected_latency(raw: &Raw, user: Option<&str>) -> Vec<Row> {
    let mut models: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for call in raw
        .calls
        .iter()
        .filter(|c| owned_by(c, user) && completed(c))
    {
        models
            .entry(text(call, "model").to_owned())
            .or_default()
            .push(int(call, "latency_ms"));
    }
    let mut rows = Vec::new();
    for (model, latencies) in models {
        for (lower, upper) in BUCKETS {
            let calls = latencies
                .iter()
                .filter(|&&ms| ms >= lower && upper.is_none_or(|upper| ms < upper))
                .count();
            rows.push(object(
                json!({"model": model, "lower_ms": lower, "upper_ms": upper,
                "calls": calls, "share": calls as f64 / latencies.len() as f64}),
            ));
        }
    }
    rows
}

fn expected_errors(raw: &Raw, user: Option<&str>) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String, String), (i64, BTreeSet<String>)> = BTreeMap::new();
    for call in raw
        .calls
        .iter()
        .filter(|c| owned_by(c, user) && !completed(c))
    {
        let key = (
            day(call, "created_at"),
            text(call, "model").to_owned(),
            text(call, "error_type").to_owned(),
        );
        let group = groups.entry(key).or_default();
        group.0 += 1;
        group.1.insert(text(call, "user_id").to_owned());
    }
    groups
        .into_iter()
        .map(|((day, model, error_type), (failed, users))| {
            object(json!({"day": day, "model": model, "error_type": error_type,
                "failed_calls": failed, "users": users.len()}))
        })
        .collect()
}

fn expected_engagement(raw: &Raw, user: Option<&str>) -> Vec<Row> {
    #[derive(Default)]
    struct Person {
        conversations: BTreeSet<String>,
        widget: BTreeSet<String>,
        messages: i64,
        days: BTreeSet<String>,
        times: BTreeSet<String>,
    }
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    for m in raw.messages.iter().filter(|m| owned_by(m, user)) {
        let p = people.entry(text(m, "user_id").to_owned()).or_default();
        let conversation = text(m, "conversation_id").to_owned();
        if !m["widget_session_id"].is_null() {
            p.widget.insert(conversation.clone());
        }
        p.conversations.insert(conversation);
        p.messages += 1;
        p.days.insert(day(m, "created_at"));
        // Fixed-width UTC text sorts in time order.
        p.times.insert(text(m, "created_at").to_owned());
    }
    people
        .into_iter()
        .map(|(id, p)| {
            let email = raw
                .users
                .iter()
                .find(|u| text(u, "id") == id)
                .map(|u| text(u, "email").to_owned());
            object(json!({"user_id": id, "email": email,
                "conversations": p.conversations.len(), "widget_conversations": p.widget.len(),
                "messages": p.messages, "active_days": p.days.len(),
                "first_seen": p.times.first(), "last_seen": p.times.last()}))
        })
        .collect()
}

fn expected_feedback(raw: &Raw, user: Option<&str>) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for f in raw.feedback.iter().filter(|f| owned_by(f, user)) {
        let group = groups
            .entry((day(f, "created_at"), text(f, "model").to_owned()))
            .or_default();
        match int(f, "rating") {
            1 => group.0 += 1,
            -1 => group.1 += 1,
            other => panic!("a rating of {other}"),
        }
    }
    groups
        .into_iter()
        .map(|((day, model), (positive, negative))| {
            object(
                json!({"day": day, "model": model, "ratings": positive + negative,
                "positive": positive, "negative": negative,
                "positive_share": positive as f64 / (positive + negative) as f64}),
            )
        })
        .collect()
}

type Expected = fn(&Raw, Option<&str>) -> Vec<Row>;

/// Each preset, its columns, and how its rows are computed.
const PRESETS: [(&str, &[&str], Expected); 7] = [
    (
        "analytics_usage",
        &[
            "day",
            "messages",
            "conversations",
            "active_users",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cost",
        ],
        expected_usage,
    ),
    (
        "analytics_models",
        &[
            "model",
            "calls",
            "failed_calls",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "cost",
            "error_rate",
        ],
        expected_models,
    ),
    (
        "analytics_costs",
        &[
            "day",
            "user_id",
            "model",
            "calls",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cost",
        ],
        expected_costs,
    ),
    (
        "analytics_latency",
        &["model", "lower_ms", "upper_ms", "calls", "share"],
        expected_latency,
    ),
    (
        "analytics_errors",
        &["day", "model", "error_type", "failed_calls", "users"],
        expected_errors,
    ),
    (
        "analytics_engagement",
        &[
            "user_id",
            "email",
            "conversations",
            "widget_conversations",
            "messages",
            "active_days",
            "first_seen",
            "last_seen",
        ],
        expected_engagement,
    ),
    (
        "analytics_feedback",
        &[
            "day",
            "model",
            "ratings",
            "positive",
            "negative",
            "positive_share",
        ],
        expected_feedback,
    ),
];

// ---------------------------------------------------------------------------
// The tests

both_backends!(
    analytics_presets_match_the_seeded_rows,
    conversations_filter_by_widget_session,
    max_rows_caps_and_cannot_be_raised,
);

/// Every analytics preset, for everyone (admin), for one user acting as
/// themselves, and over a time range, against rows computed from the raw
/// data; plus a few rows written out by hand.
fn analytics_presets_match_the_seeded_rows(backend: Backend) {
    let db = SqlSandbox::new(backend);
    let raw = db.raw();
    assert!(
        raw.calls.iter().any(|c| !completed(c)) && !raw.feedback.is_empty(),
        "the seeded data has failed calls and feedback"
    );
    for (query, columns, expected) in PRESETS {
        assert_eq!(db.columns(query), columns, "{query}");
        let everyone = db.rows(query, json!({}), None);
        assert!(!everyone.is_empty(), "{query}");
        assert_rows(query, &everyone, &expected(&raw, None));
        let ada = db.rows(query, json!({}), Some("u_ada"));
        assert_rows(query, &ada, &expected(&raw, Some("u_ada")));
        assert_ne!(normal(&ada), normal(&everyone), "{query}");
        // An admin acting for one user gets what that user gets.
        let for_ada = db.rows(query, json!({"user_id": "u_ada"}), None);
        assert_rows(query, &for_ada, &ada);
        // A user cannot ask for anyone else's figures.
        refused(
            &db.export(
                json!({"query": query, "params": {"user_id": "u_grace"}}),
                Some("u_ada"),
            ),
            Exit::Refused,
            &["\"user_id\"", "bound to the caller"],
        );
    }

    // Hand-computed rows of the seeded data.
    let usage = db.rows("analytics_usage", json!({}), None);
    assert_rows(
        "analytics_usage",
        &usage[..1],
        &[object(
            json!({"day": "2024-05-01", "messages": 8, "conversations": 1,
            "active_users": 1, "input_tokens": 2805, "output_tokens": 1536,
            "total_tokens": 4341, "cost": 0.023775}),
        )],
    );
    let models = db.rows("analytics_models", json!({}), None);
    assert_rows(
        "analytics_models",
        &models,
        &[
            object(
                json!({"model": "claude-3-5-sonnet", "calls": 34, "failed_calls": 2,
                "input_tokens": 32559, "output_tokens": 11267, "total_tokens": 43826,
                "latency_p50_ms": 2251, "latency_p95_ms": 4542, "latency_p99_ms": 4745,
                "cost": 0.266682, "error_rate": 2.0 / 34.0}),
            ),
            object(json!({"model": "gpt-4o", "calls": 26, "failed_calls": 3,
                "input_tokens": 22729, "output_tokens": 8635, "total_tokens": 31364,
                "latency_p50_ms": 2160, "latency_p95_ms": 3955, "latency_p99_ms": 4067,
                "cost": 0.154537, "error_rate": 3.0 / 26.0})),
            object(
                json!({"model": "llama-3-70b", "calls": 28, "failed_calls": 4,
                "input_tokens": 20403, "output_tokens": 9556, "total_tokens": 29959,
                "latency_p50_ms": 2605, "latency_p95_ms": 3852, "latency_p99_ms": 3941,
                "cost": 0.029959, "error_rate": 4.0 / 28.0}),
            ),
        ],
    );
    let latency = db.rows("analytics_latency", json!({}), None);
    assert_rows(
        "analytics_latency",
        &latency[..2],
        &[
            object(
                json!({"model": "claude-3-5-sonnet", "lower_ms": 0, "upper_ms": 1000,
                "calls": 2, "share": 0.0625}),
            ),
            object(
                json!({"model": "claude-3-5-sonnet", "lower_ms": 1000, "upper_ms": 2000,
                "calls": 9, "share": 0.28125}),
            ),
        ],
    );
    assert!(latency[5]["upper_ms"].is_null(), "{:?}", latency[5]);
    let engagement = db.rows("analytics_engagement", json!({}), Some("u_ada"));
    assert_rows(
        "analytics_engagement",
        &engagement,
        &[object(
            json!({"user_id": "u_ada", "email": "ada@example.com",
            "conversations": 6, "widget_conversations": 2, "messages": 58, "active_days": 5,
            "first_seen": "2024-05-02T05:57:42.601Z",
            "last_seen": "2024-05-12T16:21:59.063Z"}),
        )],
    );
    let errors = db.rows("analytics_errors", json!({}), None);
    assert_rows(
        "analytics_errors",
        &errors[..1],
        &[object(json!({"day": "2024-05-01", "model": "gpt-4o",
            "error_type": "server_error", "failed_calls": 1, "users": 1}))],
    );
    let feedback = db.rows("analytics_feedback", json!({}), None);
    assert_rows(
        "analytics_feedback",
        &feedback[..1],
        &[object(
            json!({"day": "2024-05-01", "model": "gpt-4o", "ratings": 3,
            "positive": 3, "negative": 0, "positive_share": 1.0}),
        )],
    );

    // A time range: the same figures over the rows inside it.
    let (from, to) = ("2024-05-03T00:00:00Z", "2024-05-08T00:00:00Z");
    let inside = |rows: &[Row], key: &str| -> Vec<Row> {
        rows.iter()
            .filter(|r| (from..to).contains(&text(r, key)))
            .cloned()
            .collect()
    };
    let ranged = Raw {
        messages: inside(&raw.messages, "created_at"),
        calls: inside(&raw.calls, "created_at"),
        feedback: inside(&raw.feedback, "created_at"),
        users: raw.users.clone(),
    };
    for (query, _, expected) in PRESETS {
        let got = db.rows(query, json!({"from": from, "to": to}), None);
        assert_rows(query, &got, &expected(&ranged, None));
    }
}

/// `conversations` takes `widget_session_ids`: only the messages of
/// conversations that came from those widget sessions, still only the
/// caller's own.
fn conversations_filter_by_widget_session(backend: Backend) {
    let db = SqlSandbox::new(backend);
    let raw = db.raw();
    let ada_sessions: BTreeSet<&str> = raw
        .messages
        .iter()
        .filter(|m| text(m, "user_id") == "u_ada")
        .filter_map(|m| m["widget_session_id"].as_str())
        .collect();
    assert_eq!(ada_sessions.len(), 2, "{ada_sessions:?}");
    let first = *ada_sessions.iter().next().expect("a session");
    let expected: Vec<&str> = raw
        .messages
        .iter()
        .filter(|m| m["widget_session_id"].as_str() == Some(first))
        .map(|m| text(m, "id"))
        .collect();
    assert!(!expected.is_empty());
    let got = db.rows(
        "conversations",
        json!({"widget_session_ids": [first]}),
        Some("u_ada"),
    );
    let mut ids: Vec<&str> = got.iter().map(|r| text(r, "message_id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, expected);
    // Both of Ada's sessions: every message of her widget conversations.
    let both: Vec<&str> = ada_sessions.iter().copied().collect();
    let got = db.rows(
        "conversations",
        json!({"widget_session_ids": both}),
        Some("u_ada"),
    );
    let widget_messages = raw
        .messages
        .iter()
        .filter(|m| text(m, "user_id") == "u_ada" && !m["widget_session_id"].is_null())
        .count();
    assert_eq!(got.len(), widget_messages);
    // Another user naming Ada's session gets nothing of hers.
    let grace = db.rows(
        "conversations",
        json!({"widget_session_ids": [first]}),
        Some("u_grace"),
    );
    assert!(grace.is_empty(), "{grace:?}");
    // The columns are those of `conversations` without the filter.
    assert_eq!(
        db.rows("conversations", json!({}), Some("u_ada"))[0]
            .keys()
            .count(),
        16
    );
}

/// `max_rows` in a query's config caps it: a request's `limit` may lower
/// the cap, never raise it; past it the export fails (`capped`; the plugin
/// reports `limit_exceeded`, which its unit tests check) or stops at the cap
/// (`capped_stop`).
fn max_rows_caps_and_cannot_be_raised(backend: Backend) {
    let db = SqlSandbox::new(backend);
    let ada = Some("u_ada");
    // Ada has 58 messages; the cap is 10.
    assert_eq!(db.rows("conversations", json!({}), ada).len(), 58);
    let over = refused(
        &db.export(json!({"query": "capped"}), ada),
        Exit::Refused,
        &["max_rows of 10"],
    );
    assert!(!over.contains("panicked"), "{over}");
    assert_eq!(db.rows("capped_stop", json!({}), ada).len(), 10);

    // Lowering works: the query's own `limit` parameter, or the selector's.
    assert_eq!(db.rows("capped", json!({"limit": 4}), ada).len(), 4);
    let stdout = succeeded(&db.export(json!({"query": "capped", "limit": 3}), ada));
    assert_eq!(jsonl_rows(&stdout).len(), 3);
    let stdout = succeeded(&db.export(json!({"query": "capped", "limit": 10}), ada));
    assert_eq!(jsonl_rows(&stdout).len(), 10);

    // Raising does not, as a user or as an admin, by either route.
    for user in [ada, None] {
        let mut params = json!({"limit": 11});
        if user.is_none() {
            params["user_id"] = json!("u_ada");
        }
        refused(
            &db.export(json!({"query": "capped", "params": params}), user),
            Exit::Refused,
            &["\"limit\"", "max_rows of 10"],
        );
        refused(
            &db.export(json!({"query": "capped_stop", "limit": 1000}), user),
            Exit::Refused,
            &["max_rows of 10"],
        );
    }
    // The shipped conversations preset caps at 10,000 messages.
    refused(
        &db.export(
            json!({"query": "conversations", "params": {"limit": 10001}}),
            ada,
        ),
        Exit::Refused,
        &["max_rows of 10000"],
    );
}

/// Every analytics preset returns the same rows from SQLite and PostgreSQL.
#[test]
fn analytics_presets_agree_across_backends() {
    let sqlite = SqlSandbox::new(Backend::Sqlite);
    let postgres = SqlSandbox::new(Backend::Postgres);
    for (query, _, _) in PRESETS {
        for user in [None, Some("u_grace")] {
            let a = sqlite.rows(query, json!({}), user);
            let b = postgres.rows(query, json!({}), user);
            assert_rows(query, &a, &b);
        }
    }
}

/// `plugins list --json` lists the sql plugin's queries with their
/// parameters and caps.
#[test]
fn plugins_list_shows_queries_parameters_and_caps() {
    let db = SqlSandbox::new(Backend::Sqlite);
    let listed = db.sandbox.listed();
    let sql = listed
        .iter()
        .find(|p| p["plugin"] == "sql")
        .unwrap_or_else(|| panic!("sql is not listed: {listed:?}"));
    let queries = sql["queries"]
        .as_array()
        .unwrap_or_else(|| panic!("no queries: {sql}"));
    let find = |name: &str| {
        queries
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed: {queries:?}"))
    };
    let conversations = find("conversations");
    assert_eq!(conversations["max_rows"], 10000);
    assert_eq!(conversations["on_max_rows"], "fail");
    assert_eq!(
        conversations["params"]["widget_session_ids"]["type"],
        "text[]"
    );
    assert_eq!(conversations["params"]["user_id"]["from"], "caller");
    assert_eq!(find("capped_stop")["on_max_rows"], "stop");
    for (query, _, _) in PRESETS {
        let listed = find(query);
        assert_eq!(listed["params"]["user_id"]["from"], "caller", "{query}");
        assert_eq!(listed["max_rows"], 100000, "{query}");
        assert!(listed["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
}
