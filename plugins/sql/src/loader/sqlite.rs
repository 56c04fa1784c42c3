//! SQLite: connecting read-only, binding parameters, and reading cells.
//!
//! SQLite types values, not columns: a column's declared type (`INTEGER`,
//! `TIMESTAMP`, ...) names its type when the result column comes straight
//! from a table; an expression's type is inferred from the values of the
//! first batch, or declared under the query's `columns`.

use super::columns::{ColumnType, Value};
use super::params::ParamValue;
use super::stream::{self, db_error, Output, Shape};
use crate::config::Database;
use export_plugin_api::{PluginError, Result};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteRow};
use sqlx::{
    Column, ConnectOptions, Decode, Executor, Row, Sqlite, SqliteConnection, Statement, TypeInfo,
    ValueRef,
};
use std::borrow::Cow;
use std::str::FromStr;

/// Runs `sql` with `values` bound to `?1..?n` and streams the rows into `out`.
pub async fn run(
    database: &Database,
    sql: &str,
    values: &[ParamValue],
    shape: Shape,
    out: &mut Output,
) -> Result<()> {
    let mut connection = connect(database).await?;
    let mut rows = bind(sqlx::query(sql), values).fetch(&mut connection);
    let first = stream::next_rows(&mut rows, shape.first_batch_rows(), &shape.query).await?;
    if first.is_empty() {
        drop(rows);
        // No row to look at: the prepared statement still names the columns.
        let statement = connection
            .prepare(sql)
            .await
            .map_err(|err| db_error(&shape.query, err))?;
        let columns = statement
            .columns()
            .iter()
            .map(|column| {
                (
                    column.name().to_owned(),
                    Ok(column_type(column.type_info().name())),
                )
            })
            .collect();
        let described = shape.describe(columns, &[] as &[SqliteRow], value)?;
        out.start(described.schema.clone());
        return Ok(());
    }
    let columns = first[0]
        .columns()
        .iter()
        .map(|column| {
            (
                column.name().to_owned(),
                Ok(column_type(column.type_info().name())),
            )
        })
        .collect();
    let described = shape.describe(columns, &first, value)?;
    stream::forward(rows, first, &described, out, value).await
}

async fn connect(database: &Database) -> Result<SqliteConnection> {
    let options = match database {
        Database::SqliteFile(path) => {
            if !path.is_file() {
                return Err(PluginError::not_found(format!(
                    "the SQLite database {} does not exist; point `database` in the sql \
                     plugin's config at an existing file (the example is created with \
                     `cargo run --release -p export-sql --bin make-example-db -- \
                     examples/data/example.db`)",
                    path.display()
                )));
            }
            SqliteConnectOptions::new().filename(path).read_only(true)
        }
        Database::SqliteMemory => SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|err| PluginError::internal(format!("in-memory SQLite: {err}")))?
            .read_only(true),
        Database::Postgres(_) => {
            return Err(PluginError::internal(
                "a PostgreSQL URL reached the SQLite backend",
            ))
        }
    };
    options
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|err| PluginError::io(format!("cannot open the SQLite database: {err}")))
}

/// Binds the values in placeholder order. SQLite has no timestamp, date or
/// array type: those are bound as text (see [`ParamValue::sqlite_text`]).
fn bind<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    values: &[ParamValue],
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    for value in values {
        query = match value {
            ParamValue::Null(_) => query.bind(None::<String>),
            ParamValue::Text(text) => query.bind(text.clone()),
            ParamValue::Integer(v) => query.bind(*v),
            ParamValue::Number(v) => query.bind(*v),
            ParamValue::Boolean(v) => query.bind(*v),
            other => query.bind(other.sqlite_text()),
        };
    }
    query
}

/// The type a declared column type names, or `None` to infer it from values.
fn column_type(declared: &str) -> Option<ColumnType> {
    // sqlx reads the declared type; expressions and types it does not know
    // (`JSON`, `NUMERIC`, ...) come back as NULL.
    Some(match declared {
        "INTEGER" => ColumnType::Int64,
        "REAL" => ColumnType::Float64,
        "TEXT" => ColumnType::Text,
        "BLOB" => ColumnType::Binary,
        "BOOLEAN" => ColumnType::Boolean,
        "DATE" => ColumnType::Date,
        "TIME" => ColumnType::Time,
        "DATETIME" => ColumnType::Timestamp,
        _ => return None,
    })
}

/// The cell at `index`, by the storage class of the value itself.
fn value(row: &SqliteRow, index: usize) -> std::result::Result<Value<'_>, String> {
    let raw = row.try_get_raw(index).map_err(|err| err.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let class = raw.type_info().name().to_owned();
    let decoded = match class.as_str() {
        "INTEGER" => <i64 as Decode<Sqlite>>::decode(raw).map(Value::Integer),
        "REAL" => <f64 as Decode<Sqlite>>::decode(raw).map(Value::Real),
        "TEXT" => {
            <&str as Decode<Sqlite>>::decode(raw).map(|text| Value::Text(Cow::Borrowed(text)))
        }
        "BLOB" => <&[u8] as Decode<Sqlite>>::decode(raw).map(Value::Bytes),
        other => return Err(format!("SQLite returned a value of unknown class {other}")),
    };
    decoded.map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_and_the_rest_is_inferred() {
        assert_eq!(column_type("INTEGER"), Some(ColumnType::Int64));
        assert_eq!(column_type("DATETIME"), Some(ColumnType::Timestamp));
        assert_eq!(column_type("BOOLEAN"), Some(ColumnType::Boolean));
        assert_eq!(column_type("NULL"), None);
        assert_eq!(column_type("NUMERIC"), None);
    }
}
