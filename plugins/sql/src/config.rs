//! The plugin's `[plugins.<name>.config]` table: which database, and the
//! named queries a request may run.

use export_plugin_api::{JsonSchema, PluginError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Configuration of the `sql` plugin (its table in `plugins.toml`).
///
/// ```toml
/// [plugins.sql.config]
/// database = "sqlite://examples/data/example.db"
///
/// [plugins.sql.config.queries.messages]
/// description = "One user's messages"
/// sql = "SELECT id, content, created_at FROM messages WHERE user_id = :user_id"
/// params.user_id = { type = "text", required = true }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct SqlConfig {
    /// The database the queries run against: `sqlite://PATH` (the host
    /// resolves a relative path against the folder of plugins.toml; the file must exist and
    /// is opened read-only), `sqlite::memory:`, or `postgres://USER@HOST/DB`
    /// (every transaction is read-only).
    pub database: String,

    /// The queries a request may run, by name. A request names one and
    /// gives its parameters; nothing else ever reaches the database.
    pub queries: BTreeMap<String, QueryDef>,

    /// Runs every query as the caller, so the database's own row-level
    /// security decides which rows they see (PostgreSQL only; a SQLite
    /// database with this block is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionConfig>,
}

/// `[plugins.sql.config.session]`: how a PostgreSQL query runs as the caller.
///
/// Each query then runs in its own read-only transaction that first does
/// `SET LOCAL ROLE <role>` and `SELECT set_config(<claims_setting>,
/// <the caller's claims as JSON>, true)`, both undone when the transaction
/// ends. The claims are the caller's verified JWT claims, or for a token
/// or operator caller `{"sub": USER, "role": "admin" | "user"}`. For
/// Supabase-style policies that read `current_setting('request.jwt.claims')`:
///
/// ```toml
/// [plugins.sql.config.session]
/// role = "authenticated"
/// claims_setting = "request.jwt.claims"
/// ```
///
/// The connecting user must be a member of the roles (`GRANT authenticated
/// TO exporter`), and a policy sees exactly what the caller's credential
/// says: give the role no BYPASSRLS and force RLS on tables the connecting
/// user owns (`ALTER TABLE ... FORCE ROW LEVEL SECURITY`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct SessionConfig {
    /// The role every query runs as (`SET LOCAL ROLE`). Leave out to keep
    /// the connecting user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// The role an admin caller's queries run as instead of `role` (for
    /// example `service_role`); default: `role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_role: Option<String>,

    /// The setting that receives the caller's claims as JSON text, read by
    /// policies with `current_setting('<setting>', true)`. A custom setting
    /// needs a dot in its name (`request.jwt.claims`). Leave out to pass no
    /// claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_setting: Option<String>,
}

/// One named query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct QueryDef {
    /// What the query returns, for people listing the queries.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,

    /// The SQL, with parameters written `:name`. Either one text for every
    /// database, or a table with a text per database (`sql.sqlite = "..."`,
    /// `sql.postgres = "..."`) where the dialects differ.
    pub sql: QuerySql,

    /// The parameters the SQL uses, by name. Every `:name` in the SQL must be
    /// declared here and every declared parameter used. Values are always
    /// bound, never pasted into the SQL.
    #[serde(default)]
    pub params: BTreeMap<String, ParamDef>,

    /// Types for result columns, by column name, where the database cannot
    /// say (SQLite expressions such as `date(created_at)` or `count(*)`) or
    /// says something else than you want (`"json"` on a text column).
    /// Other columns take the type the database reports.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnKind>,

    /// The most rows the query may return. A request's `limit` (the
    /// selector's, or the query's own `limit` parameter) may ask for fewer,
    /// never more; past it the export fails or stops, as `on_max_rows`
    /// says. The host's own row cap still applies when it is lower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,

    /// What a result longer than `max_rows` does: `"fail"` (the default:
    /// the export fails with `limit_exceeded`, so nobody takes a cut-off
    /// result for the whole) or `"stop"` (the first `max_rows` rows).
    #[serde(default, skip_serializing_if = "OnMaxRows::is_fail")]
    pub on_max_rows: OnMaxRows,
}

/// What a query's result longer than its `max_rows` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum OnMaxRows {
    /// The export fails with `limit_exceeded`.
    #[default]
    Fail,
    /// The export ends after `max_rows` rows.
    Stop,
}

impl OnMaxRows {
    fn is_fail(&self) -> bool {
        *self == OnMaxRows::Fail
    }
}

/// The SQL of a query: one text, or one per database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum QuerySql {
    /// The same SQL for every database.
    Portable(String),
    /// SQL per database; the query is only available where one is given.
    PerBackend(PerBackendSql),
}

/// SQL per database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct PerBackendSql {
    /// The SQL used on SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlite: Option<String>,
    /// The SQL used on PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
}

/// One parameter of a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct ParamDef {
    /// The type a request's value must have.
    #[serde(rename = "type")]
    pub kind: ParamType,

    /// Whether a request must give it. An optional parameter a request
    /// leaves out (or gives as `null`) takes its `default`, or SQL `NULL`.
    #[serde(default)]
    pub required: bool,

    /// The value when a request leaves the parameter out; must have the
    /// parameter's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,

    /// What the parameter means, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,

    /// Where the value comes from: `"request"` (the default, the
    /// selector's `params`) or `"caller"` (the user id of whoever asked,
    /// as the host verified it). A caller-bound parameter must be `text`
    /// and have no default. A non-admin caller always gets their own id
    /// (a selector may repeat it, but any other value is refused); an
    /// admin may set it to act for one user, and leaving it out gives
    /// NULL (write `:p IS NULL OR ...` to mean everyone), or the admin's
    /// own id when the parameter is `required`.
    #[serde(default, skip_serializing_if = "ParamSource::is_request")]
    pub from: ParamSource,
}

/// The type of a parameter, as written in `type = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum ParamType {
    /// A JSON string.
    #[serde(rename = "text")]
    Text,
    /// A JSON integer that fits 64 bits.
    #[serde(rename = "integer")]
    Integer,
    /// Any JSON number.
    #[serde(rename = "number")]
    Number,
    /// `true` or `false`.
    #[serde(rename = "boolean")]
    Boolean,
    /// An RFC 3339 time (`2024-05-01T10:00:00Z`, `2024-05-01T12:00:00+02:00`)
    /// or a date (`2024-05-01`, midnight UTC). SQLite receives it as UTC text
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, PostgreSQL as a `timestamptz`.
    #[serde(rename = "timestamp")]
    Timestamp,
    /// A date, `YYYY-MM-DD`.
    #[serde(rename = "date")]
    Date,
    /// A list of strings. PostgreSQL receives a `text[]` (`= ANY(:p)`);
    /// SQLite receives JSON text (`IN (SELECT value FROM json_each(:p))`).
    #[serde(rename = "text[]")]
    TextArray,
    /// A list of integers (`bigint[]` on PostgreSQL, JSON text on SQLite).
    #[serde(rename = "integer[]")]
    IntegerArray,
    /// A list of numbers (`double precision[]` on PostgreSQL, JSON text on SQLite).
    #[serde(rename = "number[]")]
    NumberArray,
}

impl ParamType {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Text => "text",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Timestamp => "timestamp",
            ParamType::Date => "date",
            ParamType::TextArray => "text[]",
            ParamType::IntegerArray => "integer[]",
            ParamType::NumberArray => "number[]",
        }
    }

    /// What a value of this type looks like, for messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            ParamType::Text => "a JSON string",
            ParamType::Integer => "a whole JSON number such as 42",
            ParamType::Number => "a JSON number such as 1.5",
            ParamType::Boolean => "true or false",
            ParamType::Timestamp => {
                "an RFC 3339 time such as \"2024-05-01T10:00:00Z\" or a date such as \"2024-05-01\""
            }
            ParamType::Date => "a date such as \"2024-05-01\"",
            ParamType::TextArray => "a JSON array of strings",
            ParamType::IntegerArray => "a JSON array of whole numbers",
            ParamType::NumberArray => "a JSON array of numbers",
        }
    }
}

/// A column type a query may declare under `columns` in plugins.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum ColumnKind {
    /// Text (`Utf8`).
    Text,
    /// A 64-bit integer.
    Integer,
    /// A double.
    Number,
    /// A boolean (SQLite's 0 and 1 count).
    Boolean,
    /// A point in time, shown in UTC (`Timestamp(µs, "UTC")`); text in
    /// ISO 8601 / RFC 3339 form and Unix seconds are read.
    Timestamp,
    /// A calendar date (`Date32`); `YYYY-MM-DD` text is read.
    Date,
    /// Raw JSON text, tagged so JSON formatters embed it as JSON.
    Json,
}

/// Where a parameter's value comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum ParamSource {
    /// The request's selector.
    #[default]
    Request,
    /// The caller's verified user id.
    Caller,
}

impl ParamSource {
    fn is_request(&self) -> bool {
        *self == ParamSource::Request
    }
}

/// Which database a configuration points at, with the SQLite path resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (absolute), opened read-only.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (handy for generated data).
    SqliteMemory,
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl Database {
    /// Parses `database`, resolving a relative SQLite path against `cwd`.
    pub fn parse(database: &str, cwd: &Path) -> Result<Database> {
        if database == "sqlite::memory:" || database == "sqlite://:memory:" {
            return Ok(Database::SqliteMemory);
        }
        if let Some(rest) = database
            .strip_prefix("sqlite://")
            .or_else(|| database.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                return Err(bad_database(database, "the SQLite file path is missing"));
            }
            if rest.contains('?') {
                return Err(bad_database(
                    database,
                    "options after `?` are not supported; the file is always opened read-only",
                ));
            }
            let path = Path::new(rest);
            return Ok(Database::SqliteFile(if path.is_absolute() {
                path.to_owned()
            } else {
                cwd.join(path)
            }));
        }
        if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            return Ok(Database::Postgres(database.to_owned()));
        }
        Err(bad_database(
            database,
            "use sqlite://PATH, sqlite::memory: or postgres://USER@HOST:PORT/DATABASE",
        ))
    }

    /// The backend's name, as used in `sql.<backend>` and in messages.
    pub fn backend(&self) -> Backend {
        match self {
            Database::SqliteFile(_) | Database::SqliteMemory => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }
}

/// The two SQL dialects the plugin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl QueryDef {
    /// The SQL for `backend`, or why the query cannot run there.
    pub fn sql_for(&self, name: &str, backend: Backend) -> Result<&str> {
        let sql = match &self.sql {
            QuerySql::Portable(sql) => Some(sql),
            QuerySql::PerBackend(per) => match backend {
                Backend::Sqlite => per.sqlite.as_ref(),
                Backend::Postgres => per.postgres.as_ref(),
            },
        };
        sql.map(String::as_str).ok_or_else(|| {
            PluginError::unsupported(format!(
                "query {name:?} has no SQL for {backend}: add `sql.{backend} = \"...\"` to \
                 its table in plugins.toml",
                backend = backend.name()
            ))
        })
    }
}

fn bad_database(database: &str, why: &str) -> PluginError {
    PluginError::invalid_input(format!(
        "database {database:?} in the sql plugin's config is not usable: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::ErrorKind;
    use serde_json::json;

    #[test]
    fn database_urls() {
        let cwd = Path::new("/srv/app");
        assert_eq!(
            Database::parse("sqlite://examples/data/example.db", cwd).unwrap(),
            Database::SqliteFile(PathBuf::from("/srv/app/examples/data/example.db"))
        );
        assert_eq!(
            Database::parse("sqlite:///var/db/x.db", cwd).unwrap(),
            Database::SqliteFile(PathBuf::from("/var/db/x.db"))
        );
        assert_eq!(
            Database::parse("sqlite:rel.db", cwd).unwrap(),
            Database::SqliteFile(PathBuf::from("/srv/app/rel.db"))
        );
        assert_eq!(
            Database::parse("sqlite::memory:", cwd).unwrap(),
            Database::SqliteMemory
        );
        assert_eq!(
            Database::parse("postgres://postgres@127.0.0.1/test", cwd)
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        for bad in ["mysql://x", "sqlite://", "sqlite://x.db?mode=rwc", "x.db"] {
            let err = Database::parse(bad, cwd).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}");
            assert!(err.message.contains(bad), "{}", err.message);
        }
    }

    #[test]
    fn config_reads_portable_and_per_backend_sql() {
        let config: SqlConfig = serde_json::from_value(json!({
            "database": "sqlite::memory:",
            "queries": {
                "a": {"sql": "SELECT 1"},
                "b": {
                    "sql": {"sqlite": "SELECT 2"},
                    "params": {"x": {"type": "text[]", "required": true}},
                    "columns": {"day": "date"}
                }
            }
        }))
        .unwrap();
        let a = &config.queries["a"];
        assert_eq!(a.sql_for("a", Backend::Postgres).unwrap(), "SELECT 1");
        let b = &config.queries["b"];
        assert_eq!(b.sql_for("b", Backend::Sqlite).unwrap(), "SELECT 2");
        let err = b.sql_for("b", Backend::Postgres).unwrap_err();
        assert!(err.message.contains("sql.postgres"), "{}", err.message);
        assert_eq!(b.params["x"].kind, ParamType::TextArray);
        assert!(b.params["x"].required);
        assert_eq!(b.columns["day"], ColumnKind::Date);
    }

    #[test]
    fn unknown_keys_are_refused() {
        for bad in [
            json!({"database": "sqlite::memory:", "queries": {}, "extra": 1}),
            json!({"database": "sqlite::memory:", "queries": {"a": {"sql": "x", "sqll": 1}}}),
            json!({"database": "sqlite::memory:",
                   "queries": {"a": {"sql": "x", "params": {"p": {"type": "text", "requird": true}}}}}),
            json!({"database": "sqlite::memory:",
                   "queries": {"a": {"sql": "x", "params": {"p": {"type": "txt"}}}}}),
            json!({"database": "sqlite::memory:", "queries": {"a": {"sql": {"mysql": "x"}}}}),
        ] {
            assert!(
                serde_json::from_value::<SqlConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn schema_requires_database_and_queries() {
        let schema = export_plugin_api::schemars::schema_for!(SqlConfig).to_value();
        assert_eq!(schema["required"], json!(["database", "queries"]));
        assert_eq!(schema["additionalProperties"], json!(false));
    }
}
