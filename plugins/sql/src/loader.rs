//! The `sql` loader: runs one of the configured named queries with the
//! request's parameters and streams the result as Arrow batches.

mod columns;
mod params;
mod placeholders;
mod postgres;
mod sqlite;
mod stream;

use crate::config::{Backend, Database, OnMaxRows, QueryDef, SqlConfig};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::{
    BatchReader, Caller, ErrorKind, JsonSchema, Limits, Loader, PluginError, Result,
};
use params::ParamValue;
use postgres::Session;
use serde::{Deserialize, Serialize};
use stream::{Output, RowCap, Shape};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a request passes to the `sql` loader.
///
/// ```json
/// {"query": "conversations", "params": {"user_id": "u_ada", "from": "2024-05-01"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct SqlSelector {
    /// The name of a query in the plugin's config (`queries.<name>`).
    pub query: String,

    /// The query's parameters, by name. Each value must have the type the
    /// query declares; a parameter left out takes its default or NULL.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,

    /// At most this many rows: the export ends after them. It may not be
    /// above the query's `max_rows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// The `sql` loader.
pub struct SqlLoader;

impl Loader for SqlLoader {
    type Config = SqlConfig;
    type Selector = SqlSelector;
    const NAME: &'static str = "sql";
    const DESCRIPTION: &'static str =
        "Runs a named, parameterised query from the plugin's config against SQLite or PostgreSQL";

    fn open(
        &self,
        config: SqlConfig,
        selector: SqlSelector,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>> {
        self.open_for(config, selector, limits, None)
    }

    fn open_for(
        &self,
        config: SqlConfig,
        selector: SqlSelector,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>> {
        let plan = plan(&config, selector, caller)?;
        let most = match &plan.cap {
            Some(cap) => cap.rows.min(limits.max_rows),
            None => limits.max_rows,
        };
        let shape = Shape {
            query: plan.query,
            declared: plan.columns,
            batch_size: limits.batch_size.max(1),
            remaining: most.saturating_add(1),
            cap: plan.cap,
        };
        SqlBatchReader::start(plan.database, plan.sql, plan.values, plan.session, shape)
    }

    fn validate(
        &self,
        config: SqlConfig,
        selector: SqlSelector,
        caller: Option<&Caller>,
    ) -> Result<()> {
        plan(&config, selector, caller).map(drop)
    }
}

/// A query ready to run: everything checked that can be without the database.
struct Plan {
    query: String,
    database: Database,
    /// The SQL with positional placeholders.
    sql: String,
    /// The values in placeholder order.
    values: Vec<ParamValue>,
    columns: std::collections::BTreeMap<String, crate::config::ColumnKind>,
    session: Option<Session>,
    cap: Option<RowCap>,
}

/// Checks a request the way `open` does before it touches the database:
/// the query exists, its declarations and SQL agree, every parameter has a
/// value the caller may give, and the session settings suit the database.
fn plan(config: &SqlConfig, selector: SqlSelector, caller: Option<&Caller>) -> Result<Plan> {
    let name = selector.query;
    let query = config.queries.get(&name).ok_or_else(|| {
        let known: Vec<&str> = config.queries.keys().map(String::as_str).collect();
        PluginError::not_found(if known.is_empty() {
            format!("no query {name:?}: the sql plugin's config defines no queries")
        } else {
            format!(
                "no query {name:?} in the sql plugin's config; the queries are: {}",
                known.join(", ")
            )
        })
    })?;
    params::check_declarations(&name, &query.params)?;
    let values = params::resolve(&name, &query.params, &selector.params, caller)?;
    let limit_param = selector
        .params
        .get("limit")
        .filter(|given| !given.is_null())
        .and(values.get("limit"));
    let cap = row_cap(&name, query, selector.limit, limit_param)?;

    let cwd = std::env::current_dir().map_err(|err| {
        PluginError::from(err).context("cannot resolve the SQLite path: no working directory")
    })?;
    let database = Database::parse(&config.database, &cwd)?;
    let backend = database.backend();
    let session = match &config.session {
        Some(settings) => Some(Session::new(settings, backend, &name, caller)?),
        None => None,
    };
    let sql = query.sql_for(&name, backend)?;
    let positional = placeholders::rewrite(sql, backend).map_err(|err| {
        PluginError::invalid_input(format!(
            "the {} SQL of query {name:?} in plugins.toml {err}",
            backend.name()
        ))
    })?;
    let values = bind_order(&name, backend, &positional.names, values)?;
    Ok(Plan {
        query: name,
        database,
        sql: positional.sql,
        values,
        columns: query.columns.clone(),
        session,
        cap,
    })
}

/// The cap the plugin enforces on a query's rows: the request's `limit`
/// (it ends the export there), else the query's `max_rows` (past it the
/// export fails or stops, as `on_max_rows` says). A request may lower the
/// cap, never raise it: a selector `limit`, or a value a request gives the
/// query's own integer parameter `limit` (`limit_param`), above `max_rows`
/// is refused. (A default above it is harmless: the cap still holds.)
fn row_cap(
    name: &str,
    query: &QueryDef,
    limit: Option<u64>,
    limit_param: Option<&ParamValue>,
) -> Result<Option<RowCap>> {
    let Some(max_rows) = query.max_rows else {
        return Ok(limit.map(|rows| RowCap { rows, fail: None }));
    };
    if let Some(ParamValue::Integer(asked)) = limit_param {
        if u64::try_from(*asked).is_ok_and(|asked| asked > max_rows) {
            return Err(PluginError::limit_exceeded(format!(
                "parameter \"limit\" of query {name:?} asks for {asked} rows, above the \
                 query's max_rows of {max_rows}; ask for at most {max_rows}"
            )));
        }
    }
    match limit {
        Some(asked) if asked > max_rows => Err(PluginError::limit_exceeded(format!(
            "the request's limit of {asked} rows is above query {name:?}'s max_rows of \
             {max_rows}; ask for at most {max_rows} rows"
        ))),
        Some(rows) => Ok(Some(RowCap { rows, fail: None })),
        None => Ok(Some(RowCap {
            rows: max_rows,
            fail: (query.on_max_rows == OnMaxRows::Fail).then(|| {
                format!(
                    "query {name:?} returns more than its max_rows of {max_rows} rows \
                     (plugins.toml); narrow the request (a shorter time range, fewer ids) \
                     or export it in parts"
                )
            }),
        })),
    }
}

/// The values in placeholder order; every declared parameter must be used
/// and every used one declared.
fn bind_order(
    query: &str,
    backend: Backend,
    used: &[String],
    mut values: std::collections::BTreeMap<String, ParamValue>,
) -> Result<Vec<ParamValue>> {
    let ordered = used
        .iter()
        .map(|name| {
            values.get(name).cloned().ok_or_else(|| {
                PluginError::invalid_input(format!(
                    "the {} SQL of query {query:?} uses :{name}, which its params in \
                     plugins.toml do not declare; add params.{name} = {{ type = \"...\" }}",
                    backend.name()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    values.retain(|name, _| !used.contains(name));
    if let Some(unused) = values.keys().next() {
        return Err(PluginError::invalid_input(format!(
            "query {query:?} declares parameter {unused:?} in plugins.toml, but its {} SQL \
             never uses :{unused}",
            backend.name()
        )));
    }
    Ok(ordered)
}

/// Pulls batches from a query running on the reader's own runtime.
///
/// The query runs as a task on a current-thread runtime that only turns
/// while the host waits in `open` or `next_batch`, so between calls nothing
/// is read and at most one finished batch waits in the channel.
struct SqlBatchReader {
    schema: SchemaRef,
    batches: mpsc::Receiver<Result<RecordBatch>>,
    producer: Option<JoinHandle<()>>,
    // Dropped last: dropping it ends the query and closes the connection.
    runtime: Runtime,
}

impl SqlBatchReader {
    fn start(
        database: Database,
        sql: String,
        values: Vec<ParamValue>,
        session: Option<Session>,
        shape: Shape,
    ) -> Result<Box<dyn BatchReader>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| PluginError::from(err).context("cannot start the query runtime"))?;
        let (mut output, schema, batches) = Output::new();
        let producer = runtime.spawn(async move {
            let outcome = match database.backend() {
                Backend::Sqlite => sqlite::run(&database, &sql, &values, shape, &mut output).await,
                Backend::Postgres => {
                    postgres::run(
                        &database,
                        &sql,
                        &values,
                        session.as_ref(),
                        shape,
                        &mut output,
                    )
                    .await
                }
            };
            if let Err(err) = outcome {
                output.fail(err).await;
            }
        });
        let mut reader = SqlBatchReader {
            schema: std::sync::Arc::new(export_plugin_api::arrow_schema::Schema::empty()),
            batches,
            producer: Some(producer),
            runtime,
        };
        match reader.runtime.block_on(schema) {
            Ok(Ok(schema)) => reader.schema = schema,
            Ok(Err(err)) => return Err(err),
            // The task ended without a word: it panicked.
            Err(_) => {
                return Err(reader.join_producer().err().unwrap_or_else(|| {
                    PluginError::internal("the query task ended without a result")
                }))
            }
        }
        Ok(Box::new(reader))
    }

    /// Waits for the producer task; an error if it panicked.
    fn join_producer(&mut self) -> Result<()> {
        let Some(producer) = self.producer.take() else {
            return Ok(());
        };
        match self.runtime.block_on(producer) {
            Ok(()) => Ok(()),
            Err(err) if err.is_panic() => {
                let panic = err.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                Err(PluginError::new(
                    ErrorKind::Panic,
                    format!("the query task panicked: {message}"),
                ))
            }
            Err(err) => Err(PluginError::internal(format!(
                "the query task failed: {err}"
            ))),
        }
    }
}

impl BatchReader for SqlBatchReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match self.runtime.block_on(self.batches.recv()) {
            Some(batch) => batch.map(Some),
            // The channel closes when the task ends; a panic must not look
            // like the end of the data.
            None => self.join_producer().map(|()| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plugin;
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::arrow_array::types::{Date32Type, Int64Type, TimestampMicrosecondType};
    use export_plugin_api::arrow_array::{Array, RecordBatch};
    use export_plugin_api::arrow_schema::{DataType, TimeUnit};
    use export_plugin_api::json::is_json_field;
    use export_plugin_api::{Caller, ErrorKind, Limits, PluginError};
    use serde_json::{json, Value};

    /// A config on an in-memory SQLite database with `queries`.
    fn config(queries: Value) -> String {
        json!({"database": "sqlite::memory:", "queries": queries}).to_string()
    }

    fn generated() -> Value {
        json!({"generated": {
            "sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) \
                    SELECT i, 'row ' || i AS label FROM n",
            "params": {"count": {"type": "integer", "required": true}}
        }})
    }

    fn open(
        queries: Value,
        selector: Value,
        limits: &Limits,
    ) -> Result<Box<dyn export_plugin_api::BatchReader>, PluginError> {
        plugin().open_loader("sql", &config(queries), &selector.to_string(), limits)
    }

    fn batches(queries: Value, selector: Value, limits: &Limits) -> Vec<RecordBatch> {
        let mut reader = open(queries, selector, limits).unwrap();
        let mut out = Vec::new();
        while let Some(batch) = reader.next_batch().unwrap() {
            assert_eq!(batch.schema(), reader.schema());
            out.push(batch);
        }
        out
    }

    #[test]
    fn batches_hold_batch_size_rows_and_reading_stops_after_max_rows_plus_one() {
        let limits = Limits {
            max_rows: 1_000_000,
            batch_size: 3_000,
        };
        let selector = json!({"query": "generated", "params": {"count": 20_000}});
        let got = batches(generated(), selector.clone(), &limits);
        let sizes: Vec<usize> = got.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [3_000, 3_000, 3_000, 3_000, 3_000, 3_000, 2_000]);
        let last = got[6].column(0).as_primitive::<Int64Type>();
        assert_eq!(last.value(1_999), 20_000);
        assert_eq!(
            got[6].column(1).as_string::<i32>().value(1_999),
            "row 20000"
        );

        let capped = Limits {
            max_rows: 10_000,
            batch_size: 3_000,
        };
        let rows: usize = batches(generated(), selector, &capped)
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 10_001);
    }

    /// `generated` with a `max_rows` of 10 (and `on_max_rows` if given) and
    /// a `limit` parameter.
    fn capped(on_max_rows: Option<&str>) -> Value {
        let mut queries = json!({"capped": {
            "sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) \
                    SELECT i FROM n LIMIT :limit",
            "params": {"limit": {"type": "integer", "default": 1000}},
            "max_rows": 10
        }});
        if let Some(mode) = on_max_rows {
            queries["capped"]["on_max_rows"] = json!(mode);
        }
        queries
    }

    fn row_count(queries: Value, selector: Value, limits: &Limits) -> Result<usize, PluginError> {
        let mut reader = open(queries, selector, limits)?;
        let mut rows = 0;
        while let Some(batch) = reader.next_batch()? {
            rows += batch.num_rows();
        }
        Ok(rows)
    }

    #[test]
    fn max_rows_fails_or_stops_and_a_request_may_only_lower_it() {
        let limits = Limits {
            max_rows: 1_000_000,
            batch_size: 3,
        };
        let err = row_count(capped(None), json!({"query": "capped"}), &limits).unwrap_err();
        assert_eq!(err.kind, ErrorKind::LimitExceeded);
        assert!(err.message.contains("max_rows of 10"), "{}", err.message);
        let stop = Some("stop");
        assert_eq!(
            row_count(capped(stop), json!({"query": "capped"}), &limits).unwrap(),
            10
        );
        for (selector, rows) in [
            (json!({"query": "capped", "limit": 4}), 4),
            (json!({"query": "capped", "limit": 10}), 10),
            (json!({"query": "capped", "params": {"limit": 7}}), 7),
            (json!({"query": "capped", "params": {"limit": 10}}), 10),
        ] {
            assert_eq!(
                row_count(capped(None), selector.clone(), &limits).unwrap(),
                rows,
                "{selector}"
            );
        }
        for (selector, needle) in [
            (
                json!({"query": "capped", "limit": 11}),
                "the request's limit of 11",
            ),
            (
                json!({"query": "capped", "params": {"limit": 11}}),
                "parameter \"limit\"",
            ),
        ] {
            for mode in [None, stop] {
                let err = row_count(capped(mode), selector.clone(), &limits).unwrap_err();
                assert_eq!(err.kind, ErrorKind::LimitExceeded, "{selector}");
                assert!(err.message.contains(needle), "{}", err.message);
            }
        }
        // Without max_rows a selector's limit still ends the export there.
        assert_eq!(
            row_count(
                generated(),
                json!({"query": "generated", "params": {"count": 9}, "limit": 5}),
                &limits
            )
            .unwrap(),
            5
        );
        // A lower host cap still wins: the host sees its overflow row.
        let tight = Limits {
            max_rows: 6,
            batch_size: 3,
        };
        assert_eq!(
            row_count(capped(stop), json!({"query": "capped"}), &tight).unwrap(),
            7
        );
    }

    #[test]
    fn unknown_queries_list_the_known_ones() {
        let mut queries = generated();
        queries["other"] = json!({"sql": "SELECT 1"});
        let err = open(queries, json!({"query": "generate"}), &Limits::default())
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(
            err.message,
            "no query \"generate\" in the sql plugin's config; the queries are: generated, other"
        );
    }

    #[test]
    fn parameters_are_checked_before_the_database_is_touched() {
        // The database does not exist: every refusal below comes first.
        let config = json!({"database": "sqlite:///nonexistent/x.db", "queries": generated()});
        let open = |selector: Value| {
            plugin()
                .open_loader(
                    "sql",
                    &config.to_string(),
                    &selector.to_string(),
                    &Limits::default(),
                )
                .err()
                .unwrap()
        };
        let err = open(json!({"query": "generated"}));
        assert!(
            err.message.contains("\"count\"") && err.message.contains("required"),
            "{}",
            err.message
        );
        let err = open(json!({"query": "generated", "params": {"count": "9"}}));
        assert!(err.message.contains("\"count\""), "{}", err.message);
        let err = open(json!({"query": "generated", "params": {"count": 9, "x": 1}}));
        assert!(
            err.message.contains("no parameter \"x\""),
            "{}",
            err.message
        );
        let err = open(json!({"query": "generated", "params": {"count": 9}}));
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(
            err.message.contains("/nonexistent/x.db does not exist"),
            "{}",
            err.message
        );
    }

    #[test]
    fn placeholders_and_declarations_must_match() {
        let err = open(
            json!({"q": {"sql": "SELECT :a, :b", "params": {"a": {"type": "text"}}}}),
            json!({"query": "q"}),
            &Limits::default(),
        )
        .err()
        .unwrap();
        assert!(err.message.contains("uses :b"), "{}", err.message);
        let err = open(
            json!({"q": {"sql": "SELECT 1", "params": {"a": {"type": "text"}}}}),
            json!({"query": "q"}),
            &Limits::default(),
        )
        .err()
        .unwrap();
        assert!(err.message.contains("never uses :a"), "{}", err.message);
        let err = open(
            json!({"q": {"sql": "SELECT ?"}}),
            json!({"query": "q"}),
            &Limits::default(),
        )
        .err()
        .unwrap();
        assert!(
            err.message.contains("positional placeholder \"?\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn sqlite_types_are_inferred_or_declared() {
        let queries = json!({"q": {
            "sql": "SELECT 1 AS i, 1.5 AS r, 'x' AS t, x'00ff' AS b, NULL AS n, \
                    '2024-05-01' AS d, '2024-05-01T10:00:00.250Z' AS ts, '{\"a\": [1]}' AS j, \
                    1 AS flag, 12345678901234567890.5 AS big, :p AS p",
            "params": {"p": {"type": "timestamp", "default": "2024-05-01T12:00:00+02:00"}},
            "columns": {"d": "date", "ts": "timestamp", "j": "json", "flag": "boolean",
                        "big": "text"}
        }});
        let got = batches(queries, json!({"query": "q"}), &Limits::default());
        let batch = &got[0];
        let schema = batch.schema();
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [
                &DataType::Int64,
                &DataType::Float64,
                &DataType::Utf8,
                &DataType::Binary,
                &DataType::Utf8,
                &DataType::Date32,
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                &DataType::Utf8,
                &DataType::Boolean,
                &DataType::Utf8,
                &DataType::Utf8,
            ]
        );
        assert!(is_json_field(schema.field(7)));
        assert!(batch.column(4).is_null(0));
        assert_eq!(
            batch.column(5).as_primitive::<Date32Type>().value(0),
            19_844
        );
        assert_eq!(
            batch
                .column(6)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_714_557_600_250_000
        );
        assert_eq!(batch.column(7).as_string::<i32>().value(0), "{\"a\": [1]}");
        assert!(batch.column(8).as_boolean().value(0));
        // SQLite itself stores that literal as a double; text shows the double
        // it holds, in its shortest round-trip spelling.
        assert_eq!(
            batch.column(9).as_string::<i32>().value(0),
            "1.2345678901234567e19"
        );
        // A timestamp parameter reaches SQLite as fixed-width UTC text.
        assert_eq!(
            batch.column(10).as_string::<i32>().value(0),
            "2024-05-01T10:00:00.000Z"
        );
    }

    #[test]
    fn an_empty_result_still_has_its_columns() {
        let queries = json!({"q": {"sql": "SELECT 1 AS a, 'x' AS b WHERE 0"}});
        let mut reader = open(queries, json!({"query": "q"}), &Limits::default()).unwrap();
        let schema = reader.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(reader.next_batch().unwrap().is_none());
    }

    #[test]
    fn a_value_that_does_not_fit_its_column_names_row_and_column() {
        let queries = json!({"q": {
            "sql": "SELECT CASE WHEN i = 5 THEN 'five' ELSE i END AS v FROM \
                    (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9) \
                    SELECT i FROM n)"
        }});
        let limits = Limits {
            max_rows: 100,
            batch_size: 2,
        };
        let mut reader = open(queries, json!({"query": "q"}), &limits).unwrap();
        assert_eq!(reader.schema().field(0).data_type(), &DataType::Int64);
        reader.next_batch().unwrap();
        reader.next_batch().unwrap();
        let err = reader.next_batch().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message
                .contains("row 5, column \"v\": \"five\" cannot be read as an integer"),
            "{}",
            err.message
        );
    }

    #[test]
    fn declared_columns_must_exist() {
        let queries = json!({"q": {"sql": "SELECT 1 AS a", "columns": {"b": "date"}}});
        let err = open(queries, json!({"query": "q"}), &Limits::default())
            .err()
            .unwrap();
        assert!(
            err.message.contains("column \"b\"") && err.message.contains("it has: a"),
            "{}",
            err.message
        );
    }

    #[test]
    fn queries_cannot_write() {
        let queries = json!({"q": {"sql": "CREATE TABLE t (x)"}});
        let err = open(queries, json!({"query": "q"}), &Limits::default())
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::PermissionDenied, "{}", err.message);
        assert!(err.message.contains("only reads"), "{}", err.message);
    }

    #[test]
    fn the_selector_refuses_unknown_keys() {
        let err = open(
            generated(),
            json!({"query": "generated", "sql": "SELECT 1"}),
            &Limits::default(),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    /// Rows of three users, filtered by a caller-bound `user_id`: `everyone`
    /// lets an admin leave it out, `mine` requires it.
    fn owned() -> Value {
        let rows = "WITH t(user_id, n) AS (VALUES ('u_ada', 1), ('u_bob', 2), ('u_ada', 3), \
                    ('U_ADA', 4)) SELECT user_id, n FROM t";
        json!({
            "everyone": {
                "sql": format!("{rows} WHERE (:user_id IS NULL OR user_id = :user_id) ORDER BY n"),
                "params": {"user_id": {"type": "text", "from": "caller"}}
            },
            "mine": {
                "sql": format!("{rows} WHERE user_id = :user_id ORDER BY n LIMIT coalesce(:limit, 100)"),
                "params": {
                    "user_id": {"type": "text", "from": "caller", "required": true},
                    "limit": {"type": "integer"}
                }
            }
        })
    }

    /// The `user_id` of every row `caller` gets, or the refusal; `validate`
    /// must agree with `open_for` on every request.
    fn owners(
        query: &str,
        params: Value,
        caller: Option<&Caller>,
    ) -> Result<Vec<String>, PluginError> {
        let config = config(owned());
        let selector = json!({"query": query, "params": params}).to_string();
        let validated = plugin().validate_loader("sql", &config, &selector, caller);
        let opened =
            plugin().open_loader_for("sql", &config, &selector, &Limits::default(), caller);
        let mut reader = match (validated, opened) {
            (Ok(()), Ok(reader)) => reader,
            (Err(checked), Err(err)) => {
                assert_eq!(checked, err, "validate and open refuse alike");
                return Err(err);
            }
            (Ok(()), Err(err)) => panic!("validate passed what open refused: {err}"),
            (Err(err), Ok(_)) => panic!("validate refused what open accepts: {err}"),
        };
        let mut users = Vec::new();
        while let Some(batch) = reader.next_batch()? {
            let column = batch.column(0).as_string::<i32>();
            users.extend((0..batch.num_rows()).map(|row| column.value(row).to_owned()));
        }
        Ok(users)
    }

    #[test]
    fn a_user_gets_their_own_rows_whatever_the_selector_says() {
        let ada = Caller::user("u_ada");
        for query in ["everyone", "mine"] {
            for params in [
                json!({}),
                json!({"user_id": null}),
                json!({"user_id": "u_ada"}),
            ] {
                assert_eq!(
                    owners(query, params.clone(), Some(&ada)).unwrap(),
                    ["u_ada", "u_ada"],
                    "{query} {params}"
                );
            }
            for other in [
                json!("u_bob"),
                json!("U_ADA"),
                json!("u_ada "),
                json!(""),
                json!(["u_ada", "u_bob"]),
                json!(["u_ada"]),
                json!({"$ne": "u_ada"}),
                json!(42),
                json!(true),
            ] {
                let err = owners(query, json!({"user_id": other}), Some(&ada)).unwrap_err();
                assert_eq!(err.kind, ErrorKind::PermissionDenied, "{other}");
                assert!(
                    err.message.contains("parameter \"user_id\"")
                        && err.message.contains("bound to the caller")
                        && err.message.contains("leave it out"),
                    "{other}: {}",
                    err.message
                );
            }
        }
        // A parameter the query does not declare is refused as for anyone.
        let err = owners("mine", json!({"user": "u_bob"}), Some(&ada)).unwrap_err();
        assert!(
            err.message
                .contains("user_id (text, required, from the caller)"),
            "{}",
            err.message
        );
        // Other parameters still come from the request.
        let err = owners("mine", json!({"limit": "x"}), Some(&ada)).unwrap_err();
        assert!(err.message.contains("\"limit\""), "{}", err.message);
    }

    #[test]
    fn an_admin_acts_for_one_user_or_for_everyone() {
        let admin = Caller::operator();
        assert_eq!(
            owners("everyone", json!({}), Some(&admin)).unwrap(),
            ["u_ada", "u_bob", "u_ada", "U_ADA"]
        );
        assert_eq!(
            owners("everyone", json!({"user_id": "u_bob"}), Some(&admin)).unwrap(),
            ["u_bob"]
        );
        assert_eq!(
            owners("mine", json!({"user_id": "u_ada"}), Some(&admin)).unwrap(),
            ["u_ada", "u_ada"]
        );
        // Leaving out a required caller-bound parameter means the admin's own id.
        assert!(owners("mine", json!({}), Some(&admin)).unwrap().is_empty());
        let ada_admin = Caller {
            admin: true,
            ..Caller::user("u_ada")
        };
        assert_eq!(
            owners("mine", json!({}), Some(&ada_admin)).unwrap(),
            ["u_ada", "u_ada"]
        );
        // An admin's value is still checked against the parameter's type.
        let err = owners("everyone", json!({"user_id": 7}), Some(&admin)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.contains("\"user_id\"") && err.message.contains("got 7"),
            "{}",
            err.message
        );
    }

    #[test]
    fn without_a_caller_caller_bound_parameters_are_refused() {
        for params in [json!({}), json!({"user_id": "u_ada"})] {
            for query in ["everyone", "mine"] {
                let err = owners(query, params.clone(), None).unwrap_err();
                assert_eq!(err.kind, ErrorKind::PermissionDenied);
                assert!(
                    err.message.contains("\"user_id\"") && err.message.contains("passed no caller"),
                    "{}",
                    err.message
                );
            }
        }
        // The 1.0 entry point passes no caller either.
        let err = open(owned(), json!({"query": "everyone"}), &Limits::default())
            .err()
            .unwrap();
        assert!(err.message.contains("passed no caller"), "{}", err.message);
    }

    #[test]
    fn validate_refuses_what_open_would_without_touching_the_database() {
        // The database does not exist: validate never opens it.
        let config = json!({
            "database": "sqlite:///nonexistent/x.db",
            "queries": owned()
        })
        .to_string();
        let ada = Caller::user("u_ada");
        let validate = |selector: Value| {
            plugin().validate_loader("sql", &config, &selector.to_string(), Some(&ada))
        };
        validate(json!({"query": "mine"})).unwrap();
        for (selector, kind, needle) in [
            (
                json!({"query": "nope"}),
                ErrorKind::NotFound,
                "no query \"nope\"",
            ),
            (
                json!({"query": "mine", "params": {"user_id": "u_bob"}}),
                ErrorKind::PermissionDenied,
                "\"user_id\"",
            ),
            (
                json!({"query": "mine", "params": {"limit": 1.5}}),
                ErrorKind::InvalidInput,
                "\"limit\"",
            ),
            (
                json!({"query": "mine", "params": {"x": 1}}),
                ErrorKind::InvalidInput,
                "no parameter \"x\"",
            ),
            (
                json!({"query": "mine", "sql": "SELECT 1"}),
                ErrorKind::InvalidInput,
                "sql",
            ),
        ] {
            let err = validate(selector.clone()).unwrap_err();
            assert_eq!(err.kind, kind, "{selector}: {}", err.message);
            assert!(err.message.contains(needle), "{selector}: {}", err.message);
        }
        // The query's own faults are found too.
        let broken = json!({"database": "sqlite::memory:", "queries": {
            "q": {"sql": "SELECT :a, :b", "params": {"a": {"type": "text"}}}
        }});
        let err = plugin()
            .validate_loader("sql", &broken.to_string(), r#"{"query":"q"}"#, Some(&ada))
            .unwrap_err();
        assert!(err.message.contains("uses :b"), "{}", err.message);
    }

    #[test]
    fn caller_bound_declarations_are_checked() {
        for (param, needle) in [
            (
                json!({"type": "integer", "from": "caller"}),
                "type = \"text\"",
            ),
            (
                json!({"type": "text", "from": "caller", "default": "u_ada"}),
                "drop the default",
            ),
        ] {
            let queries = json!({"q": {"sql": "SELECT :p", "params": {"p": param}}});
            let err = open(queries, json!({"query": "q"}), &Limits::default())
                .err()
                .unwrap();
            assert!(err.message.contains(needle), "{}", err.message);
        }
        let queries = json!({"q": {"sql": "SELECT :p",
                                   "params": {"p": {"type": "text", "from": "token"}}}});
        assert!(open(queries, json!({"query": "q"}), &Limits::default()).is_err());
    }

    #[test]
    fn a_session_block_is_refused_on_sqlite() {
        let config = json!({
            "database": "sqlite::memory:",
            "queries": {"q": {"sql": "SELECT 1 AS one"}},
            "session": {"role": "authenticated", "claims_setting": "request.jwt.claims"}
        })
        .to_string();
        let ada = Caller::user("u_ada");
        let err = plugin()
            .validate_loader("sql", &config, r#"{"query":"q"}"#, Some(&ada))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.contains("[session]")
                && err.message.contains("SQLite has no row-level security"),
            "{}",
            err.message
        );
        let opened = plugin().open_loader_for(
            "sql",
            &config,
            r#"{"query":"q"}"#,
            &Limits::default(),
            Some(&ada),
        );
        assert_eq!(opened.err().unwrap(), err);
    }
}
