//! # export-sql
//!
//! The first-party `sql` plugin for export-host: loader `sql` ([`SqlLoader`])
//! runs one of the **named, parameterised queries** defined in the plugin's
//! config ([`SqlConfig`]) against SQLite or PostgreSQL and streams the rows as
//! Arrow record batches. A request only names a query and gives its
//! parameters ([`SqlSelector`]); it never carries SQL. Every parameter is
//! checked against its declared type (an unknown, missing or mistyped one is
//! refused, naming it) and always bound to the prepared statement, never
//! pasted into the SQL.
//!
//! ```toml
//! [plugins.sql]
//! library = "libexport_sql.so"
//!
//! [plugins.sql.config]
//! database = "sqlite://examples/data/example.db"   # or postgres://user@host/db
//!
//! [plugins.sql.config.queries.messages]
//! description = "The caller's messages since a time"
//! sql = """
//! SELECT m.id, m.content, m.created_at
//! FROM messages m JOIN conversations c ON c.id = m.conversation_id
//! WHERE c.user_id = :user_id AND (:since IS NULL OR m.created_at >= :since)
//! ORDER BY m.created_at
//! """
//! params.user_id = { type = "text", required = true, from = "caller" }
//! params.since = { type = "timestamp" }
//! ```
//!
//! ```sh
//! export-host export --loader sql --format csv --user u_ada \
//!     --selector '{"query":"messages","params":{"since":"2024-05-03"}}'
//! ```
//!
//! ## The caller
//!
//! The host passes the loader who asked ([`export_plugin_api::Caller`]),
//! never anything a selector says. A parameter declared `from = "caller"`
//! (type `text`, no default) takes the caller's user id:
//!
//! | caller | leaves it out (or `null`) | sets it |
//! | --- | --- | --- |
//! | a user | their own id | their own id: allowed; anything else: refused, naming the parameter |
//! | an admin | NULL, or their own id if `required` | acts for that user |
//! | none (a host older than plugin-api 1.2) | refused | refused |
//!
//! So `(:user_id IS NULL OR user_id = :user_id)` lets an admin export
//! everyone's rows and each user only their own, and `user_id = :user_id`
//! with `required = true` is always one user's rows. The one-shot CLI is an
//! admin unless `export --user U` is given.
//!
//! On PostgreSQL, `[plugins.sql.config.session]` ([`SessionConfig`]) runs
//! every query as the caller instead, so the database's row-level security
//! decides which rows they see:
//!
//! ```toml
//! [plugins.sql.config.session]
//! role = "authenticated"                  # SET LOCAL ROLE "authenticated"
//! claims_setting = "request.jwt.claims"   # set_config(..., <caller's claims>, true)
//! ```
//!
//! Each query then runs in a read-only transaction that first sets the
//! role and the claims (the caller's verified JWT claims, or
//! `{"sub": USER, "role": "user" | "admin"}` for other credentials).
//! SQLite has no row-level security: a session block there is refused.
//!
//! ## Types
//!
//! | database | Arrow |
//! | --- | --- |
//! | `smallint`, `integer`, `bigint`; SQLite `INTEGER` | `Int16`, `Int32`, `Int64` |
//! | `real`, `double precision`; SQLite `REAL` | `Float32`, `Float64` |
//! | `numeric` | `Utf8`, exact decimal text (`1.50` stays `1.50`) |
//! | `text`, `varchar`, `char`, `uuid`, enums; SQLite `TEXT` | `Utf8` |
//! | `boolean`; SQLite `BOOLEAN` | `Boolean` |
//! | `timestamptz`; SQLite `TIMESTAMP`/`DATETIME` (ISO text) | `Timestamp(µs, "UTC")` |
//! | `timestamp` | `Timestamp(µs)` |
//! | `date`, `time` | `Date32`, `Time64(µs)` |
//! | `json`, `jsonb`, arrays | `Utf8` tagged `arrow.json` ([`export_plugin_api::json::json_field`]) |
//! | `bytea`; SQLite `BLOB` | `Binary` |
//!
//! SQLite types values rather than columns: an expression's type (`count(*)`,
//! `date(created_at)`) is inferred from the first batch, and a query may
//! declare any column's type under `columns` (`columns.day = "date"`,
//! `columns.tags = "json"`). A PostgreSQL type not in the table is refused
//! before the first row with the cast that fixes it.
//!
//! ## Why sqlx
//!
//! The host already compiles sqlx 0.8 for its records, with the SQLite and
//! PostgreSQL drivers and chrono: using the same version and features costs
//! the workspace no second database stack, and one API covers both
//! backends. sqlx is async, so each open query runs as a task on a private
//! current-thread tokio runtime that only turns while the host waits in
//! `open` or `next_batch`: the plugin stays synchronous at the boundary, and
//! between calls nothing is read. Rows are fetched as a stream (SQLite's
//! worker hands them over through a bounded channel, PostgreSQL's come off
//! the socket as they arrive), never collected, so memory holds about two
//! batches for any result size. Reading stops after `max_rows + 1` rows.
//! (rusqlite and postgres would add a second SQLite build and a second
//! PostgreSQL client to the workspace for no gain here.)
//!
//! Connections are read-only: a SQLite file is opened read-only and must
//! exist; a PostgreSQL query runs in a `BEGIN READ ONLY` transaction on a
//! session with `default_transaction_read_only`.

mod config;
mod loader;

pub use config::{
    ColumnKind, OnMaxRows, ParamDef, ParamSource, ParamType, PerBackendSql, QueryDef, QuerySql,
    SessionConfig, SqlConfig,
};
pub use loader::{SqlLoader, SqlSelector};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: loader `sql`, configured by [`SqlConfig`].
pub fn plugin() -> Plugin {
    PluginBuilder::new("sql", env!("CARGO_PKG_VERSION"))
        .description("Runs named, parameterised SQL queries against SQLite or PostgreSQL")
        .config::<SqlConfig>()
        .loader(SqlLoader)
        .build()
}

export_plugin_api::export_plugin!(plugin());
