//! From database rows to Arrow batches, shared by both backends: the schema
//! of a result, batching, the row cap, and the channel to the reader.

use super::columns::{infer, ColumnBuilder, ColumnType, Value};
use crate::config::ColumnKind;
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::{Schema, SchemaRef};
use export_plugin_api::{ErrorKind, PluginError, Result};
use futures::{Stream, TryStreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Reads one cell of a row.
pub type Decoder<R> = for<'r> fn(&'r R, usize) -> std::result::Result<Value<'r>, String>;

/// What the rows must become: the query's declared column types, batch
/// size and row cap.
pub struct Shape {
    /// The query's name, for messages.
    pub query: String,
    /// Declared types of result columns.
    pub declared: BTreeMap<String, ColumnKind>,
    /// Rows per batch.
    pub batch_size: usize,
    /// Rows still to read: `max_rows + 1`, enough for the host to see an overflow.
    pub remaining: u64,
    /// The query's own row cap, if it has one and it is not above the host's.
    pub cap: Option<RowCap>,
}

/// A row cap the plugin enforces itself: the query's `max_rows` or the
/// request's `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCap {
    /// The most rows the export gets.
    pub rows: u64,
    /// Past the cap: `Some(message)` fails the export with `limit_exceeded`;
    /// `None` ends it after `rows` rows.
    pub fail: Option<String>,
}

/// A result's schema, ready to build batches.
pub struct Described {
    /// The Arrow schema.
    pub schema: SchemaRef,
    /// The type of every column.
    types: Vec<ColumnType>,
    query: String,
    batch_size: usize,
    remaining: u64,
    cap: Option<RowCap>,
}

impl Shape {
    /// How many rows the first batch reads.
    pub fn first_batch_rows(&self) -> usize {
        rows_to_read(self.batch_size, self.remaining)
    }

    /// The schema of a result whose columns are `columns` (name, and the type
    /// the database names, `None` when it names none, or why the type cannot
    /// be exported), with `first` the rows of the first batch.
    pub fn describe<R>(
        self,
        columns: Vec<(String, std::result::Result<Option<ColumnType>, String>)>,
        first: &[R],
        decode: Decoder<R>,
    ) -> Result<Described> {
        if let Some(unknown) = self
            .declared
            .keys()
            .find(|name| !columns.iter().any(|(column, _)| column == *name))
        {
            let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
            return Err(PluginError::invalid_input(format!(
                "query {:?} declares a type for column {unknown:?} in plugins.toml, but its \
                 result has no such column; it has: {}",
                self.query,
                names.join(", ")
            )));
        }
        let mut types = Vec::with_capacity(columns.len());
        for (index, (name, reported)) in columns.iter().enumerate() {
            let column_type = match (self.declared.get(name), reported) {
                (_, Err(why)) => {
                    return Err(PluginError::unsupported(format!(
                        "column {name:?} of query {:?} {why}",
                        self.query
                    )))
                }
                (Some(&kind), Ok(_)) => kind.into(),
                (None, Ok(Some(reported))) => *reported,
                (None, Ok(None)) => {
                    let values: Vec<Value<'_>> = first
                        .iter()
                        .map(|row| decode(row, index).unwrap_or(Value::Null))
                        .collect();
                    infer(values.iter())
                }
            };
            types.push(column_type);
        }
        let fields: Vec<_> = columns
            .iter()
            .zip(&types)
            .map(|((name, _), column_type)| column_type.field(name))
            .collect();
        Ok(Described {
            schema: Arc::new(Schema::new(fields)),
            types,
            query: self.query,
            batch_size: self.batch_size,
            remaining: self.remaining,
            cap: self.cap,
        })
    }
}

fn rows_to_read(batch_size: usize, remaining: u64) -> usize {
    usize::try_from(remaining)
        .unwrap_or(usize::MAX)
        .min(batch_size.max(1))
}

impl Described {
    /// One batch of `rows`, the first of which is row `offset` (from 0) of the result.
    fn batch<R>(&self, rows: &[R], offset: u64, decode: Decoder<R>) -> Result<RecordBatch> {
        let mut builders: Vec<ColumnBuilder> = self
            .types
            .iter()
            .map(|&column_type| ColumnBuilder::new(column_type, rows.len()))
            .collect();
        for (n, row) in rows.iter().enumerate() {
            for (index, builder) in builders.iter_mut().enumerate() {
                let appended = decode(row, index).and_then(|value| builder.append(&value));
                if let Err(why) = appended {
                    let name = self.schema.field(index).name();
                    return Err(PluginError::invalid_input(format!(
                        "query {:?}, row {}, column {name:?}: {why}; declare the column's type \
                         in plugins.toml (columns.{name} = \"text\" keeps any value) or cast \
                         it in the SQL",
                        self.query,
                        offset + n as u64 + 1
                    )));
                }
            }
        }
        let columns = builders.iter_mut().map(ColumnBuilder::finish).collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// Reads up to `limit` rows.
pub async fn next_rows<R, S>(rows: &mut S, limit: usize, query: &str) -> Result<Vec<R>>
where
    S: Stream<Item = std::result::Result<R, sqlx::Error>> + Unpin,
{
    let mut batch = Vec::with_capacity(limit);
    while batch.len() < limit {
        match rows.try_next().await.map_err(|err| db_error(query, err))? {
            Some(row) => batch.push(row),
            None => break,
        }
    }
    Ok(batch)
}

/// Sends the schema, the first batch, then every further batch of `rows`
/// until the result or the row cap ends, or the reader goes away.
pub async fn forward<R, S>(
    mut rows: S,
    first: Vec<R>,
    described: &Described,
    out: &mut Output,
    decode: Decoder<R>,
) -> Result<()>
where
    S: Stream<Item = std::result::Result<R, sqlx::Error>> + Unpin,
{
    out.start(described.schema.clone());
    let mut remaining = described.remaining;
    let mut offset = 0u64;
    let mut rows_now = first;
    while !rows_now.is_empty() {
        // Reading goes one row past the cap, so a longer result shows here.
        let mut past_cap = None;
        if let Some(cap) = &described.cap {
            let room = usize::try_from(cap.rows.saturating_sub(offset)).unwrap_or(usize::MAX);
            if rows_now.len() > room {
                rows_now.truncate(room);
                past_cap = Some(cap);
            }
        }
        if let Some(RowCap {
            fail: Some(message),
            ..
        }) = past_cap
        {
            return Err(PluginError::limit_exceeded(message.clone()));
        }
        if rows_now.is_empty() {
            break;
        }
        let count = rows_now.len() as u64;
        let batch = described.batch(&rows_now, offset, decode)?;
        drop(rows_now);
        if !out.send(batch).await {
            return Ok(());
        }
        offset += count;
        remaining = remaining.saturating_sub(count);
        let wanted = rows_to_read(described.batch_size, remaining);
        if remaining == 0 || past_cap.is_some() {
            break;
        }
        rows_now = next_rows(&mut rows, wanted, &described.query).await?;
    }
    Ok(())
}

/// Where the producer task sends the schema and the batches.
pub struct Output {
    schema: Option<oneshot::Sender<Result<SchemaRef>>>,
    batches: mpsc::Sender<Result<RecordBatch>>,
}

impl Output {
    /// An output and the two ends the reader holds.
    pub fn new() -> (
        Output,
        oneshot::Receiver<Result<SchemaRef>>,
        mpsc::Receiver<Result<RecordBatch>>,
    ) {
        let (schema_tx, schema_rx) = oneshot::channel();
        // One batch waits in the channel while the next is built: memory
        // holds about two batches whatever the result's size.
        let (batch_tx, batch_rx) = mpsc::channel(1);
        (
            Output {
                schema: Some(schema_tx),
                batches: batch_tx,
            },
            schema_rx,
            batch_rx,
        )
    }

    /// Reports the schema; `open` returns once it is known.
    pub fn start(&mut self, schema: SchemaRef) {
        if let Some(sender) = self.schema.take() {
            let _ = sender.send(Ok(schema));
        }
    }

    /// Sends a batch; false when the reader is gone.
    async fn send(&mut self, batch: RecordBatch) -> bool {
        self.batches.send(Ok(batch)).await.is_ok()
    }

    /// Reports a failure: to `open` before the schema is known, else as the
    /// next batch.
    pub async fn fail(&mut self, error: PluginError) {
        match self.schema.take() {
            Some(sender) => {
                let _ = sender.send(Err(error));
            }
            None => {
                let _ = self.batches.send(Err(error)).await;
            }
        }
    }
}

/// A database error as a message naming the query, with a kind that says
/// whose fault it is.
pub fn db_error(query: &str, err: sqlx::Error) -> PluginError {
    match &err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|code| code.into_owned()).unwrap_or_default();
            let message = db.message();
            // PostgreSQL's read_only_sql_transaction and SQLITE_READONLY:
            // the query tried to write. Anything else the database refuses
            // is the query's SQL or a parameter value it does not accept.
            let (kind, advice) = match code.as_str() {
                "25006" | "8" => (
                    ErrorKind::PermissionDenied,
                    "the sql plugin only reads; the query tried to write",
                ),
                _ => (
                    ErrorKind::InvalidInput,
                    "check the query's SQL in plugins.toml and the parameters given",
                ),
            };
            PluginError::new(
                kind,
                format!("query {query:?} failed in the database: {message} ({advice})"),
            )
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => PluginError::io(
            format!("query {query:?} lost the database connection: {err}"),
        ),
        _ => PluginError::internal(format!("query {query:?} failed: {err}")),
    }
}
