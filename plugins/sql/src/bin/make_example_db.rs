//! Creates the example database the sql plugin's presets query
//! (`examples/sql/presets.toml`): users, widget sessions, conversations,
//! messages, analytics events (model calls, failed ones among them),
//! feedback ratings and traces, from a fixed seed, so every run writes the same rows.
//!
//! ```sh
//! cargo run --release -p export-sql --bin make-example-db -- examples/data/example.db
//! cargo run --release -p export-sql --bin make-example-db -- postgres://postgres@127.0.0.1:5432/example
//! ```
//!
//! A SQLite file is written aside and renamed into place (an existing file
//! is replaced); a PostgreSQL database must exist and not hold the tables yet.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

const SQLITE_SCHEMA: &str = include_str!("../../../../examples/sql/schema.sqlite.sql");
const POSTGRES_SCHEMA: &str = include_str!("../../../../examples/sql/schema.postgres.sql");

type AnyError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target] = args.as_slice() else {
        eprintln!(
            "usage: make-example-db <FILE.db | postgres://USER@HOST:PORT/DATABASE>\n\
             e.g.   make-example-db examples/data/example.db"
        );
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("make-example-db: cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let data = generate();
    let outcome = runtime.block_on(async {
        if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            write_postgres(target, &data).await
        } else {
            write_sqlite(
                Path::new(target.strip_prefix("sqlite://").unwrap_or(target)),
                &data,
            )
            .await
        }
    });
    match outcome {
        Ok(()) => {
            let rows: usize = data.iter().map(|table| table.rows.len()).sum();
            let counts: Vec<String> = data
                .iter()
                .map(|table| format!("{} {}", table.rows.len(), table.name))
                .collect();
            eprintln!(
                "make-example-db: wrote {rows} rows to {target}: {}",
                counts.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("make-example-db: {target}: {err}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Writing

async fn write_sqlite(path: &Path, data: &[Table]) -> Result<(), AnyError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let aside = PathBuf::from(format!("{}.partial", path.display()));
    let _ = std::fs::remove_file(&aside);
    let mut connection = SqliteConnectOptions::new()
        .filename(&aside)
        .create_if_missing(true)
        .disable_statement_logging()
        .connect()
        .await?;
    let mut tx = connection.begin().await?;
    sqlx::raw_sql(SQLITE_SCHEMA).execute(&mut *tx).await?;
    for table in data {
        let sql = table.insert_sql(|n, _| format!("?{n}"));
        for row in &table.rows {
            let mut query = sqlx::query(&sql);
            for cell in row {
                query = match cell {
                    Cell::Text(v) => query.bind(v.clone()),
                    Cell::Int(v) => query.bind(*v),
                    Cell::Time(v) => query.bind(v.map(sqlite_time)),
                    Cell::Json(v) => query.bind(v.to_string()),
                };
            }
            query.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    connection.close().await?;
    std::fs::rename(&aside, path)?;
    Ok(())
}

async fn write_postgres(url: &str, data: &[Table]) -> Result<(), AnyError> {
    let mut connection: PgConnection = PgConnectOptions::from_str(url)?
        .disable_statement_logging()
        .connect()
        .await?;
    let mut tx = connection.begin().await?;
    sqlx::raw_sql(POSTGRES_SCHEMA).execute(&mut *tx).await?;
    for table in data {
        let sql = table.insert_sql(|n, kind| match kind {
            Kind::Json => format!("${n}::jsonb"),
            _ => format!("${n}"),
        });
        for row in &table.rows {
            let mut query = sqlx::query(&sql);
            for cell in row {
                query = match cell {
                    Cell::Text(v) => query.bind(v.clone()),
                    Cell::Int(v) => query.bind(*v),
                    Cell::Time(v) => query.bind(*v),
                    Cell::Json(v) => query.bind(v.to_string()),
                };
            }
            query.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    connection.close().await?;
    Ok(())
}

/// The text SQLite stores for a time: fixed-width UTC, as the sql plugin binds.
fn sqlite_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// ---------------------------------------------------------------------------
// The data

/// The kind of a column, for the placeholders PostgreSQL needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Json,
}

#[derive(Clone)]
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Time(Option<DateTime<Utc>>),
    Json(serde_json::Value),
}

struct Table {
    name: &'static str,
    columns: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(name: &'static str, columns: &[&'static str]) -> Table {
        Table {
            name,
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<Cell>) {
        assert_eq!(row.len(), self.columns.len(), "a row of {}", self.name);
        self.rows.push(row);
    }

    fn insert_sql(&self, placeholder: impl Fn(usize, Kind) -> String) -> String {
        let kinds: Vec<Kind> = match self.rows.first() {
            Some(row) => row
                .iter()
                .map(|cell| match cell {
                    Cell::Json(_) => Kind::Json,
                    _ => Kind::Plain,
                })
                .collect(),
            None => vec![Kind::Plain; self.columns.len()],
        };
        let values: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(n, kind)| placeholder(n + 1, *kind))
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name,
            self.columns.join(", "),
            values.join(", ")
        )
    }
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(Some(value.into()))
}

fn int(value: i64) -> Cell {
    Cell::Int(Some(value))
}

fn time(value: DateTime<Utc>) -> Cell {
    Cell::Time(Some(value))
}

/// SplitMix64: a tiny generator whose sequence for a seed never changes, so
/// the example data (and the tests' expected values) stay the same forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut out = String::new();
        while out.len() < digits {
            out.push_str(&format!("{:016x}", self.next()));
        }
        out.truncate(digits);
        out
    }
}

/// A model: name, provider, micro-dollars per input and output token.
struct Model {
    name: &'static str,
    provider: &'static str,
    input_micros: i64,
    output_micros: i64,
}

const MODELS: [Model; 3] = [
    Model {
        name: "claude-3-5-sonnet",
        provider: "anthropic",
        input_micros: 3,
        output_micros: 15,
    },
    Model {
        name: "gpt-4o",
        provider: "openai",
        input_micros: 3,
        output_micros: 10,
    },
    Model {
        name: "llama-3-70b",
        provider: "meta",
        input_micros: 1,
        output_micros: 1,
    },
];

const USERS: [(&str, &str, &str); 5] = [
    ("u_ada", "Ada Lovelace", "pro"),
    ("u_grace", "Grace Hopper", "team"),
    ("u_alan", "Alan Turing", "free"),
    ("u_edsger", "Edsger Dijkstra", "pro"),
    ("u_barbara", "Barbara Liskov", "free"),
];

const TITLES: [&str; 8] = [
    "Trip to Lisbon",
    "Refactoring the parser",
    "Quarterly report, draft 2",
    "Recipe: \"perfect\" pancakes",
    "SQL window functions",
    "Birthday ideas 🎂",
    "Résumé review",
    "Kubernetes vs. systemd",
];

const PROMPTS: [&str; 10] = [
    "What's the difference between \"let\" and \"const\"?",
    "Summarise this: first, second,\nand third points.",
    "Translate 'good morning' into 日本語 and Ελληνικά.",
    "x' OR '1'='1",
    "=SUM(A1:A10) — why does Excel run this?",
    "Give me three ideas, one per line.",
    "Explain p95 latency like I'm five.",
    "1; DROP TABLE users; --",
    "How many tokens is this sentence?",
    "Tab\tseparated\tvalues, please.",
];

const CLIENTS: [&str; 3] = ["web", "ios", "api"];

/// Every table's rows, in insertion order (parents before children).
fn generate() -> Vec<Table> {
    let mut rng = Rng(20_240_501);
    let start = Utc
        .with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .single()
        .expect("a valid start date");

    let mut users = Table::new("users", &["id", "name", "email", "plan", "created_at"]);
    let mut conversations = Table::new(
        "conversations",
        &[
            "id",
            "user_id",
            "title",
            "model",
            "created_at",
            "updated_at",
            "metadata",
        ],
    );
    let mut messages = Table::new(
        "messages",
        &[
            "id",
            "conversation_id",
            "role",
            "content",
            "model",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "cost_micros",
            "created_at",
        ],
    );
    let mut events = Table::new(
        "analytics_events",
        &[
            "id",
            "user_id",
            "conversation_id",
            "message_id",
            "event_type",
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "cost_micros",
            "properties",
            "created_at",
        ],
    );
    let mut spans = Table::new(
        "trace_spans",
        &[
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "kind",
            "start_time",
            "end_time",
            "status",
            "status_message",
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "cost_micros",
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
        ],
    );
    let mut span_events = Table::new(
        "trace_events",
        &["id", "span_id", "name", "time", "attributes"],
    );

    let mut conversation_number = 0;
    let mut message_number = 0;
    for (index, (id, name, plan)) in USERS.iter().enumerate() {
        let first = name.split(' ').next().unwrap_or(name).to_lowercase();
        users.push(vec![
            text(*id),
            text(*name),
            text(format!("{first}@example.com")),
            text(*plan),
            time(start - Duration::days(30 - index as i64 * 3)),
        ]);
        for _ in 0..rng.between(3, 6) {
            conversation_number += 1;
            let conversation_id = format!("c_{conversation_number:03}");
            let model = rng.pick(&MODELS);
            let client = *rng.pick(&CLIENTS);
            let opened = start
                + Duration::minutes(rng.between(0, 13 * 24 * 60))
                + Duration::milliseconds(rng.between(0, 59_999));
            let mut clock = opened;
            let session_id = format!("s_{}", rng.hex(12));
            let mut conversation_messages = Vec::new();
            if rng.chance(30) {
                message_number += 1;
                conversation_messages.push(vec![
                    text(format!("m_{message_number:04}")),
                    text(&conversation_id),
                    text("system"),
                    text("You are a helpful assistant."),
                    Cell::Text(None),
                    Cell::Int(None),
                    Cell::Int(None),
                    Cell::Int(None),
                    Cell::Int(None),
                    time(clock),
                ]);
            }
            for _ in 0..rng.between(1, 5) {
                clock += Duration::milliseconds(rng.between(2_000, 600_000));
                let prompt = *rng.pick(&PROMPTS);
                message_number += 1;
                let prompt_id = format!("m_{message_number:04}");
                conversation_messages.push(vec![
                    text(&prompt_id),
                    text(&conversation_id),
                    text("user"),
                    text(prompt),
                    Cell::Text(None),
                    Cell::Int(None),
                    Cell::Int(None),
                    Cell::Int(None),
                    Cell::Int(None),
                    time(clock),
                ]);

                // The trace of the reply: a server span, an optional
                // retrieval span, and the model call.
                let input_tokens = rng.between(20, 2_000);
                let output_tokens = rng.between(10, 800);
                let model_ms = 200 + output_tokens * 4 + rng.between(0, 1_500);
                let cost = input_tokens * model.input_micros + output_tokens * model.output_micros;
                let failed = rng.chance(8);
                let trace_id = rng.hex(32);
                let root_id = rng.hex(16);
                let root_start = clock + Duration::milliseconds(rng.between(1, 40));
                let mut span_clock = root_start + Duration::milliseconds(rng.between(1, 10));
                let environment = if rng.chance(85) {
                    "production"
                } else {
                    "staging"
                };
                let base_span = |name: &str, kind: &str, id: &str, parent: Option<&str>| {
                    (
                        name.to_owned(),
                        kind.to_owned(),
                        id.to_owned(),
                        parent.map(str::to_owned),
                    )
                };
                let mut trace = Vec::new();
                if rng.chance(40) {
                    let retrieval_ms = rng.between(15, 250);
                    let span_start = span_clock;
                    span_clock += Duration::milliseconds(retrieval_ms);
                    trace.push((
                        base_span("retrieval.search", "internal", &rng.hex(16), Some(&root_id)),
                        span_start,
                        span_clock,
                        None,
                    ));
                }
                let model_start = span_clock;
                span_clock += Duration::milliseconds(model_ms);
                let model_span_id = rng.hex(16);
                trace.push((
                    base_span("llm.generate", "client", &model_span_id, Some(&root_id)),
                    model_start,
                    span_clock,
                    Some(()),
                ));
                let root_end = span_clock + Duration::milliseconds(rng.between(1, 30));
                let reply = format!(
                    "Answer {message_number} about “{}”: {} tokens, line one.\nLine two, with a comma.",
                    prompt.lines().next().unwrap_or(prompt),
                    output_tokens
                );
                let tags = serde_json::json!(["chat", model.name, client]);
                let attempt = if failed { 2 } else { 1 };
                let metadata = serde_json::json!({"region": "eu-west-1", "attempt": attempt, "client": client});
                let owner: &str = id;
                let push_span =
                    |spans: &mut Table,
                     (name, kind, id, parent): (String, String, String, Option<String>),
                     from: DateTime<Utc>,
                     to: DateTime<Utc>,
                     llm: bool,
                     failed: bool| {
                        spans.push(vec![
                            text(&trace_id),
                            text(id),
                            Cell::Text(parent),
                            text(name),
                            text(kind),
                            time(from),
                            time(to),
                            text(if failed { "error" } else { "ok" }),
                            Cell::Text(failed.then(|| "upstream rate limit, retried".to_owned())),
                            Cell::Text(llm.then(|| model.name.to_owned())),
                            Cell::Text(llm.then(|| model.provider.to_owned())),
                            Cell::Int(llm.then_some(input_tokens)),
                            Cell::Int(llm.then_some(output_tokens)),
                            Cell::Int(llm.then_some(cost)),
                            Cell::Text(llm.then(|| prompt.to_owned())),
                            Cell::Text(llm.then(|| reply.clone())),
                            Cell::Text(failed.then(|| "429 Too Many Requests".to_owned())),
                            text(owner),
                            text(&session_id),
                            text(&conversation_id),
                            Cell::Json(tags.clone()),
                            Cell::Json(metadata.clone()),
                            text("chat-api"),
                            text(environment),
                            text("1.4.2"),
                            text(if failed { "ERROR" } else { "INFO" }),
                        ]);
                    };
                push_span(
                    &mut spans,
                    base_span("chat.completion", "server", &root_id, None),
                    root_start,
                    root_end,
                    false,
                    false,
                );
                for (span, from, to, llm) in trace {
                    let llm = llm.is_some();
                    push_span(&mut spans, span, from, to, llm, llm && failed);
                }
                // Span events: the first token of every model call, and the
                // retry of a failed one.
                let events_so_far = span_events.rows.len() as i64;
                span_events.push(vec![
                    int(events_so_far + 1),
                    text(&model_span_id),
                    text("first_token"),
                    time(model_start + Duration::milliseconds(rng.between(80, 400))),
                    Cell::Json(serde_json::json!({"tokens": 1})),
                ]);
                if failed {
                    span_events.push(vec![
                        int(events_so_far + 2),
                        text(&model_span_id),
                        text("retry"),
                        time(model_start + Duration::milliseconds(50)),
                        Cell::Json(serde_json::json!({"status": 429, "wait_ms": 50})),
                    ]);
                }

                clock = root_end;
                message_number += 1;
                let reply_id = format!("m_{message_number:04}");
                conversation_messages.push(vec![
                    text(&reply_id),
                    text(&conversation_id),
                    text("assistant"),
                    text(&reply),
                    text(model.name),
                    int(input_tokens),
                    int(output_tokens),
                    int(model_ms),
                    int(cost),
                    time(clock),
                ]);
                let finish = if output_tokens > 700 {
                    "length"
                } else {
                    "stop"
                };
                let event_id = events.rows.len() as i64 + 1;
                events.push(vec![
                    int(event_id),
                    text(*id),
                    text(&conversation_id),
                    text(&reply_id),
                    text("llm.completion"),
                    text(model.name),
                    text(model.provider),
                    int(input_tokens),
                    int(output_tokens),
                    int(model_ms),
                    int(cost),
                    Cell::Json(serde_json::json!({"finish_reason": finish})),
                    time(clock),
                ]);
                if rng.chance(25) {
                    let event_id = events.rows.len() as i64 + 1;
                    events.push(vec![
                        int(event_id),
                        text(*id),
                        text(&conversation_id),
                        text(&reply_id),
                        text("feedback"),
                        Cell::Text(None),
                        Cell::Text(None),
                        Cell::Int(None),
                        Cell::Int(None),
                        Cell::Int(None),
                        Cell::Int(None),
                        Cell::Json(serde_json::json!({"rating": rng.between(1, 5)})),
                        time(clock + Duration::seconds(rng.between(5, 120))),
                    ]);
                }
            }
            conversations.push(vec![
                text(&conversation_id),
                text(*id),
                text(*rng.pick(&TITLES)),
                text(model.name),
                time(opened),
                time(clock),
                Cell::Json(serde_json::json!({"client": client, "pinned": rng.chance(20)})),
            ]);
            let event_id = events.rows.len() as i64 + 1;
            events.push(vec![
                int(event_id),
                text(*id),
                text(&conversation_id),
                Cell::Text(None),
                text("conversation.created"),
                text(model.name),
                text(model.provider),
                Cell::Int(None),
                Cell::Int(None),
                Cell::Int(None),
                Cell::Int(None),
                Cell::Json(serde_json::json!({"client": client})),
                time(opened),
            ]);
            for message in conversation_messages {
                messages.push(message);
            }
        }
    }
    let extra = add_widgets_feedback_and_failures(&mut conversations, &messages, &mut events);
    vec![
        users,
        extra.widget_sessions,
        conversations,
        messages,
        events,
        extra.feedback,
        spans,
        span_events,
    ]
}

/// The tables added after the first ones.
struct Extra {
    widget_sessions: Table,
    feedback: Table,
}

const WIDGETS: [(&str, &str); 3] = [
    ("wgt_docs", "https://docs.example.com"),
    ("wgt_support", "https://help.example.com"),
    ("wgt_pricing", "https://example.com/pricing"),
];

const ERROR_TYPES: [&str; 4] = ["rate_limit", "timeout", "server_error", "context_length"];

const COMMENTS: [&str; 4] = [
    "Exactly what I needed.",
    "Wrong, and confidently so.",
    "Too long; shorter next time.",
    "Great, thanks!",
];

/// Widget sessions (some conversations came from the embedded widget),
/// thumbs up or down on assistant messages, and failed model calls
/// (`llm.error` events with an `error_type`). They draw on a generator of
/// their own, so the rows generated before them stay what they were.
fn add_widgets_feedback_and_failures(
    conversations: &mut Table,
    messages: &Table,
    events: &mut Table,
) -> Extra {
    let mut rng = Rng(20_240_518);
    let mut widget_sessions = Table::new(
        "widget_sessions",
        &[
            "id",
            "user_id",
            "widget_id",
            "origin",
            "started_at",
            "ended_at",
        ],
    );
    conversations.columns.push("widget_session_id");
    for row in &mut conversations.rows {
        let session = if rng.chance(40) {
            let id = format!("ws_{:03}", widget_sessions.rows.len() + 1);
            let (widget, origin) = *rng.pick(&WIDGETS);
            let opened = time_of(&row[4]);
            let closed = time_of(&row[5]);
            widget_sessions.push(vec![
                text(&id),
                row[1].clone(),
                text(widget),
                text(origin),
                time(opened - Duration::seconds(rng.between(1, 120))),
                time(closed + Duration::seconds(rng.between(10, 600))),
            ]);
            Some(id)
        } else {
            None
        };
        row.push(Cell::Text(session));
    }

    let owner: std::collections::HashMap<String, Cell> = conversations
        .rows
        .iter()
        .map(|row| (text_of(&row[0]).to_owned(), row[1].clone()))
        .collect();
    let mut feedback = Table::new(
        "message_feedback",
        &[
            "id",
            "message_id",
            "user_id",
            "rating",
            "comment",
            "created_at",
        ],
    );
    for message in messages
        .rows
        .iter()
        .filter(|m| text_of(&m[2]) == "assistant")
    {
        if !rng.chance(35) {
            continue;
        }
        let rating = if rng.chance(70) { 1 } else { -1 };
        let comment = rng.chance(30).then(|| (*rng.pick(&COMMENTS)).to_owned());
        feedback.push(vec![
            int(feedback.rows.len() as i64 + 1),
            message[0].clone(),
            owner[text_of(&message[1])].clone(),
            int(rating),
            Cell::Text(comment),
            time(time_of(&message[9]) + Duration::seconds(rng.between(5, 300))),
        ]);
    }

    events.columns.push("error_type");
    for row in &mut events.rows {
        row.push(Cell::Text(None));
    }
    let completions: Vec<usize> = (0..events.rows.len())
        .filter(|&n| text_of(&events.rows[n][4]) == "llm.completion")
        .collect();
    for n in completions {
        if !rng.chance(12) {
            continue;
        }
        let error_type = *rng.pick(&ERROR_TYPES);
        let latency = if error_type == "timeout" {
            30_000
        } else {
            rng.between(40, 2_500)
        };
        let at = time_of(&events.rows[n][12]) - Duration::seconds(rng.between(1, 90));
        let call = &events.rows[n];
        let failed = vec![
            int(events.rows.len() as i64 + 1),
            call[1].clone(),
            call[2].clone(),
            Cell::Text(None),
            text("llm.error"),
            call[5].clone(),
            call[6].clone(),
            call[7].clone(),
            int(0),
            int(latency),
            int(0),
            Cell::Json(serde_json::json!({"retried": true})),
            time(at),
            text(error_type),
        ];
        events.push(failed);
    }
    Extra {
        widget_sessions,
        feedback,
    }
}

fn text_of(cell: &Cell) -> &str {
    match cell {
        Cell::Text(Some(value)) => value,
        _ => "",
    }
}

fn time_of(cell: &Cell) -> DateTime<Utc> {
    match cell {
        Cell::Time(Some(value)) => *value,
        _ => DateTime::<Utc>::UNIX_EPOCH,
    }
}
