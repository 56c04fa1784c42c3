//! PostgreSQL: connecting with read-only transactions, binding typed
//! parameters, and reading cells by their column's type.
//!
//! Every result column has a type the server names, so the schema comes from
//! the statement. `numeric` is read from its wire form into exact decimal
//! text (no float, so no digit is lost); `json`/`jsonb` and arrays become
//! JSON text; a type the plugin cannot read is refused before the first row,
//! with the cast that fixes it.

use super::columns::{ColumnType, Value};
use super::params::ParamValue;
use super::stream::{self, db_error, Output, Shape};
use crate::config::ParamType;
use crate::config::{Backend, Database, SessionConfig};
use chrono::{DateTime, NaiveDate, Utc};
use export_plugin_api::{Caller, PluginError, Result};
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgRow, PgTypeInfo, PgTypeKind, PgValueFormat, PgValueRef,
};
use sqlx::{
    Column, ConnectOptions, Connection, Decode, Executor, PgConnection, Postgres, Row, Statement,
    Type, TypeInfo, ValueRef,
};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

/// How long connecting may take before the export fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to PostgreSQL's.
const PG_EPOCH_DAYS: i32 = 10_957;

/// How one query runs as its caller: `[plugins.sql.config.session]` with
/// the caller's role and claims filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The role to `SET LOCAL ROLE` to, if any.
    role: Option<String>,
    /// The setting that receives the claims, and the claims as JSON text.
    claims: Option<(String, String)>,
}

impl Session {
    /// The session of `caller` for `query`, or why the settings cannot work.
    pub fn new(
        settings: &SessionConfig,
        backend: Backend,
        query: &str,
        caller: Option<&Caller>,
    ) -> Result<Session> {
        if backend != Backend::Postgres {
            return Err(PluginError::invalid_input(
                "the sql plugin's config has a [session] block, which runs each query under \
                 the database's row-level security as the caller, but SQLite has no \
                 row-level security: remove the block, or point `database` at PostgreSQL \
                 and filter with a caller-bound parameter on SQLite \
                 (params.user_id = { type = \"text\", from = \"caller\" })",
            ));
        }
        if settings.role.is_none() && settings.claims_setting.is_none() {
            return Err(PluginError::invalid_input(
                "the [session] block of the sql plugin's config sets neither `role` nor \
                 `claims_setting`: set at least one (for example role = \"authenticated\" \
                 and claims_setting = \"request.jwt.claims\"), or remove the block",
            ));
        }
        for (key, value) in [
            ("role", &settings.role),
            ("admin_role", &settings.admin_role),
            ("claims_setting", &settings.claims_setting),
        ] {
            if let Some(value) = value {
                if value.is_empty() || value.contains('\0') {
                    return Err(PluginError::invalid_input(format!(
                        "`{key}` in the [session] block of the sql plugin's config is {value:?}: \
                         give a PostgreSQL name"
                    )));
                }
            }
        }
        let Some(caller) = caller else {
            return Err(PluginError::permission_denied(format!(
                "query {query:?} runs as the caller ([session] in the sql plugin's config), \
                 but the host passed no caller (a host older than plugin-api 1.2); upgrade \
                 export-host"
            )));
        };
        let role = match (&settings.admin_role, caller.admin) {
            (Some(admin_role), true) => Some(admin_role.clone()),
            _ => settings.role.clone(),
        };
        let claims = settings
            .claims_setting
            .as_ref()
            .map(|setting| (setting.clone(), caller.claims_json().to_string()));
        Ok(Session { role, claims })
    }

    /// Sets the role and the claims for the rest of the open transaction.
    async fn apply(&self, connection: &mut PgConnection, query: &str) -> Result<()> {
        if let Some(role) = &self.role {
            // SET takes no bound parameter: the role is quoted as an identifier.
            connection
                .execute(format!("SET LOCAL ROLE {}", quote_identifier(role)).as_str())
                .await
                .map_err(|err| {
                    PluginError::permission_denied(format!(
                        "query {query:?} cannot run as role {role:?} ([session] in the sql \
                         plugin's config): {}; create the role and grant it to the user in \
                         `database` (GRANT {} TO <user>)",
                        database_message(&err),
                        quote_identifier(role)
                    ))
                })?;
        }
        if let Some((setting, claims)) = &self.claims {
            sqlx::query("SELECT set_config($1, $2, true)")
                .bind(setting)
                .bind(claims)
                .execute(&mut *connection)
                .await
                .map_err(|err| {
                    PluginError::invalid_input(format!(
                        "query {query:?} cannot pass the caller's claims in setting \
                         {setting:?} ([session] in the sql plugin's config): {}; a custom \
                         setting needs a dot in its name, such as \"request.jwt.claims\"",
                        database_message(&err)
                    ))
                })?;
        }
        Ok(())
    }
}

/// `name` as a PostgreSQL identifier: in double quotes, inner quotes doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The database's own words for an error.
fn database_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// Runs `sql` with `values` bound to `$1..$n` and streams the rows into `out`,
/// in a read-only transaction that first applies `session`.
pub async fn run(
    database: &Database,
    sql: &str,
    values: &[ParamValue],
    session: Option<&Session>,
    shape: Shape,
    out: &mut Output,
) -> Result<()> {
    let Database::Postgres(url) = database else {
        return Err(PluginError::internal(
            "a SQLite database reached the PostgreSQL backend",
        ));
    };
    let mut connection = connect(url).await?;
    // One transaction for the session settings and the query: SET LOCAL
    // and set_config(..., true) last until it ends. It is never committed:
    // dropping it with the connection rolls it back, also when the reader
    // stops early at the row cap.
    let mut transaction = connection
        .begin_with("BEGIN READ ONLY")
        .await
        .map_err(|err| db_error(&shape.query, err))?;
    let connection: &mut PgConnection = &mut transaction;
    if let Some(session) = session {
        session.apply(&mut *connection, &shape.query).await?;
    }
    // The statement names the result's columns and their types before any
    // row arrives, for an empty result too.
    let types: Vec<PgTypeInfo> = values.iter().map(param_type).collect();
    let statement = connection
        .prepare_with(sql, &types)
        .await
        .map_err(|err| db_error(&shape.query, err))?;
    let columns: Vec<(String, std::result::Result<Option<ColumnType>, String>)> = statement
        .columns()
        .iter()
        .map(|column| {
            (
                column.name().to_owned(),
                column_type(column.type_info()).map(Some),
            )
        })
        .collect();
    let mut rows = bind(sqlx::query(sql), values).fetch(&mut *connection);
    let first = stream::next_rows(&mut rows, shape.first_batch_rows(), &shape.query).await?;
    let described = shape.describe(columns, &first, value)?;
    stream::forward(rows, first, &described, out, value).await
}

async fn connect(url: &str) -> Result<PgConnection> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|err| {
            PluginError::invalid_input(format!(
                "database {} in the sql plugin's config is not a PostgreSQL URL: {err}",
                redacted(url)
            ))
        })?
        .application_name("export-sql")
        // Defence in depth: the configured queries only ever read.
        .options([("default_transaction_read_only", "on")])
        .disable_statement_logging();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(err)) => Err(PluginError::io(format!(
            "cannot connect to PostgreSQL at {}: {err}",
            redacted(url)
        ))),
        Err(_) => Err(PluginError::io(format!(
            "cannot connect to PostgreSQL at {}: no answer within {} s",
            redacted(url),
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// `url` with any password replaced, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The PostgreSQL type a parameter is declared with when the statement is prepared.
fn param_type(value: &ParamValue) -> PgTypeInfo {
    let kind = match value {
        ParamValue::Null(kind) => *kind,
        ParamValue::Text(_) => ParamType::Text,
        ParamValue::Integer(_) => ParamType::Integer,
        ParamValue::Number(_) => ParamType::Number,
        ParamValue::Boolean(_) => ParamType::Boolean,
        ParamValue::Timestamp(_) => ParamType::Timestamp,
        ParamValue::Date(_) => ParamType::Date,
        ParamValue::TextArray(_) => ParamType::TextArray,
        ParamValue::IntegerArray(_) => ParamType::IntegerArray,
        ParamValue::NumberArray(_) => ParamType::NumberArray,
    };
    match kind {
        ParamType::Text => <String as Type<Postgres>>::type_info(),
        ParamType::Integer => <i64 as Type<Postgres>>::type_info(),
        ParamType::Number => <f64 as Type<Postgres>>::type_info(),
        ParamType::Boolean => <bool as Type<Postgres>>::type_info(),
        ParamType::Timestamp => <DateTime<Utc> as Type<Postgres>>::type_info(),
        ParamType::Date => <NaiveDate as Type<Postgres>>::type_info(),
        ParamType::TextArray => <Vec<String> as Type<Postgres>>::type_info(),
        ParamType::IntegerArray => <Vec<i64> as Type<Postgres>>::type_info(),
        ParamType::NumberArray => <Vec<f64> as Type<Postgres>>::type_info(),
    }
}

/// Binds the values in placeholder order, NULLs with their declared type.
fn bind<'q>(
    mut query: sqlx::query::Query<'q, Postgres, PgArguments>,
    values: &[ParamValue],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    for value in values {
        query = match value {
            ParamValue::Null(kind) => match kind {
                ParamType::Text => query.bind(None::<String>),
                ParamType::Integer => query.bind(None::<i64>),
                ParamType::Number => query.bind(None::<f64>),
                ParamType::Boolean => query.bind(None::<bool>),
                ParamType::Timestamp => query.bind(None::<DateTime<Utc>>),
                ParamType::Date => query.bind(None::<NaiveDate>),
                ParamType::TextArray => query.bind(None::<Vec<String>>),
                ParamType::IntegerArray => query.bind(None::<Vec<i64>>),
                ParamType::NumberArray => query.bind(None::<Vec<f64>>),
            },
            ParamValue::Text(v) => query.bind(v.clone()),
            ParamValue::Integer(v) => query.bind(*v),
            ParamValue::Number(v) => query.bind(*v),
            ParamValue::Boolean(v) => query.bind(*v),
            ParamValue::Timestamp(v) => query.bind(*v),
            ParamValue::Date(v) => query.bind(*v),
            ParamValue::TextArray(v) => query.bind(v.clone()),
            ParamValue::IntegerArray(v) => query.bind(v.clone()),
            ParamValue::NumberArray(v) => query.bind(v.clone()),
        };
    }
    query
}

/// The column type of a PostgreSQL type, or why it cannot be exported.
fn column_type(type_info: &PgTypeInfo) -> std::result::Result<ColumnType, String> {
    if matches!(type_info.kind(), PgTypeKind::Enum(_)) {
        return Ok(ColumnType::Text);
    }
    if let PgTypeKind::Domain(base) = type_info.kind() {
        return column_type(base);
    }
    let name = type_info.name().to_ascii_uppercase();
    Ok(match name.as_str() {
        "BOOL" => ColumnType::Boolean,
        "INT2" => ColumnType::Int16,
        "INT4" => ColumnType::Int32,
        "INT8" | "OID" => ColumnType::Int64,
        "FLOAT4" => ColumnType::Float32,
        "FLOAT8" => ColumnType::Float64,
        "NUMERIC" | "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "\"CHAR\"" | "UUID" | "CITEXT" => {
            ColumnType::Text
        }
        "JSON" | "JSONB" => ColumnType::Json,
        name if array_element(name).is_some() => ColumnType::Json,
        "TIMESTAMPTZ" => ColumnType::Timestamp,
        "TIMESTAMP" => ColumnType::LocalTimestamp,
        "DATE" => ColumnType::Date,
        "TIME" => ColumnType::Time,
        "BYTEA" => ColumnType::Binary,
        other => {
            return Err(format!(
                "has PostgreSQL type {other}, which the sql plugin cannot export; cast it in \
                 the query, e.g. `column::text`"
            ))
        }
    })
}

/// Arrays exported as JSON, by element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    Text,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
}

fn array_element(name: &str) -> Option<Element> {
    Some(match name {
        "TEXT[]" | "VARCHAR[]" | "CHAR[]" | "NAME[]" => Element::Text,
        "INT2[]" => Element::Int2,
        "INT4[]" => Element::Int4,
        "INT8[]" => Element::Int8,
        "FLOAT4[]" => Element::Float4,
        "FLOAT8[]" => Element::Float8,
        "BOOL[]" => Element::Bool,
        _ => return None,
    })
}

/// The cell at `index`, read by its column's type.
fn value(row: &PgRow, index: usize) -> std::result::Result<Value<'_>, String> {
    let raw = row.try_get_raw(index).map_err(|err| err.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info().into_owned();
    if raw.format() == PgValueFormat::Text {
        return Ok(Value::Text(Cow::Borrowed(
            raw.as_str().map_err(|e| e.to_string())?,
        )));
    }
    let base = match type_info.kind() {
        PgTypeKind::Domain(base) => base.clone(),
        _ => type_info.clone(),
    };
    if matches!(base.kind(), PgTypeKind::Enum(_)) {
        return text(raw);
    }
    let bytes = || raw.as_bytes().map_err(|err| err.to_string());
    Ok(match base.name() {
        "BOOL" => Value::Boolean(decode::<bool>(raw)?),
        "INT2" => Value::Integer(decode::<i16>(raw)?.into()),
        "INT4" => Value::Integer(decode::<i32>(raw)?.into()),
        "INT8" => Value::Integer(decode::<i64>(raw)?),
        "OID" => Value::Integer(be_u32(bytes()?)?.into()),
        "FLOAT4" => Value::Real(decode::<f32>(raw)?.into()),
        "FLOAT8" => Value::Real(decode::<f64>(raw)?),
        "NUMERIC" => Value::Text(Cow::Owned(numeric_text(bytes()?)?)),
        "UUID" => Value::Text(Cow::Owned(uuid_text(bytes()?)?)),
        "JSON" => Value::Json(Cow::Borrowed(utf8(bytes()?)?)),
        // jsonb's binary form is a version byte (1) and the JSON text.
        "JSONB" => match bytes()?.split_first() {
            Some((1, json)) => Value::Json(Cow::Borrowed(utf8(json)?)),
            _ => return Err("jsonb value in an unknown wire version".to_owned()),
        },
        "TIMESTAMPTZ" => Value::Timestamp(micros_since_unix(be_i64(bytes()?)?)?),
        "TIMESTAMP" => Value::LocalTimestamp(micros_since_unix(be_i64(bytes()?)?)?),
        "DATE" => {
            let days = be_i32(bytes()?)?;
            Value::Date(days.checked_add(PG_EPOCH_DAYS).ok_or("date out of range")?)
        }
        "TIME" => Value::Time(be_i64(bytes()?)?),
        "BYTEA" => Value::Bytes(bytes()?),
        name => match array_element(name) {
            Some(element) => Value::Json(Cow::Owned(array_json(raw, element)?)),
            None => return text(raw),
        },
    })
}

fn decode<'r, T: Decode<'r, Postgres>>(raw: PgValueRef<'r>) -> std::result::Result<T, String> {
    T::decode(raw).map_err(|err| err.to_string())
}

fn text(raw: PgValueRef<'_>) -> std::result::Result<Value<'_>, String> {
    Ok(Value::Text(Cow::Borrowed(
        raw.as_str().map_err(|e| e.to_string())?,
    )))
}

fn utf8(bytes: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|err| format!("not UTF-8: {err}"))
}

fn be_i64(bytes: &[u8]) -> std::result::Result<i64, String> {
    Ok(i64::from_be_bytes(
        bytes.try_into().map_err(|_| "expected 8 bytes")?,
    ))
}

fn be_i32(bytes: &[u8]) -> std::result::Result<i32, String> {
    Ok(i32::from_be_bytes(
        bytes.try_into().map_err(|_| "expected 4 bytes")?,
    ))
}

fn be_u32(bytes: &[u8]) -> std::result::Result<u32, String> {
    Ok(u32::from_be_bytes(
        bytes.try_into().map_err(|_| "expected 4 bytes")?,
    ))
}

fn micros_since_unix(pg_micros: i64) -> std::result::Result<i64, String> {
    if pg_micros == i64::MAX || pg_micros == i64::MIN {
        return Err(
            "an infinite timestamp has no Arrow value; filter or cast it in the query".into(),
        );
    }
    pg_micros
        .checked_add(PG_EPOCH_MICROS)
        .ok_or_else(|| "timestamp out of range".to_owned())
}

/// A JSON array of a one-dimensional PostgreSQL array.
fn array_json(raw: PgValueRef<'_>, element: Element) -> std::result::Result<String, String> {
    fn json<T: serde::Serialize>(items: Vec<Option<T>>) -> std::result::Result<String, String> {
        serde_json::to_string(&items).map_err(|err| err.to_string())
    }
    match element {
        Element::Text => json(decode::<Vec<Option<String>>>(raw)?),
        Element::Int2 => json(decode::<Vec<Option<i16>>>(raw)?),
        Element::Int4 => json(decode::<Vec<Option<i32>>>(raw)?),
        Element::Int8 => json(decode::<Vec<Option<i64>>>(raw)?),
        // serde_json writes a non-finite float as null.
        Element::Float4 => json(decode::<Vec<Option<f32>>>(raw)?),
        Element::Float8 => json(decode::<Vec<Option<f64>>>(raw)?),
        Element::Bool => json(decode::<Vec<Option<bool>>>(raw)?),
    }
}

/// The exact decimal text of a `numeric` in its binary wire form, as
/// PostgreSQL itself prints it (`numeric_out`): every digit, and as many
/// fraction digits as the value's scale (`1.50` stays `1.50`).
fn numeric_text(bytes: &[u8]) -> std::result::Result<String, String> {
    let short = || "numeric value is truncated".to_owned();
    let word = |at: usize| -> std::result::Result<u16, String> {
        let pair = bytes.get(at..at + 2).ok_or_else(short)?;
        Ok(u16::from_be_bytes([pair[0], pair[1]]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    let digits: Vec<u16> = (0..ndigits)
        .map(|n| word(8 + 2 * n))
        .collect::<std::result::Result<_, _>>()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".to_owned()),
        0xD000 => return Ok("Infinity".to_owned()),
        0xF000 => return Ok("-Infinity".to_owned()),
        other => return Err(format!("numeric value with unknown sign {other:#x}")),
    }
    // Digit `n` (base 10000) has weight `weight - n`.
    let digit = |weight_of: i32| -> u16 {
        usize::try_from(weight - weight_of)
            .ok()
            .and_then(|n| digits.get(n).copied())
            .unwrap_or(0)
    };
    let mut text = String::with_capacity(ndigits * 4 + dscale + 3);
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for w in (0..=weight).rev() {
            if w == weight {
                let _ = write!(text, "{}", digit(w));
            } else {
                let _ = write!(text, "{:04}", digit(w));
            }
        }
    }
    if dscale > 0 {
        text.push('.');
        let start = text.len();
        let mut w = -1;
        while text.len() - start < dscale {
            let _ = write!(text, "{:04}", digit(w));
            w -= 1;
        }
        text.truncate(start + dscale);
    }
    Ok(text)
}

/// The canonical hyphenated form of a 16-byte UUID.
fn uuid_text(bytes: &[u8]) -> std::result::Result<String, String> {
    if bytes.len() != 16 {
        return Err("uuid value is not 16 bytes".to_owned());
    }
    let mut text = String::with_capacity(36);
    for (n, byte) in bytes.iter().enumerate() {
        if matches!(n, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        let _ = write!(text, "{byte:02x}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire form of a numeric from its fields.
    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend((digits.len() as u16).to_be_bytes());
        bytes.extend(weight.to_be_bytes());
        bytes.extend(sign.to_be_bytes());
        bytes.extend(dscale.to_be_bytes());
        for d in digits {
            bytes.extend(d.to_be_bytes());
        }
        bytes
    }

    #[test]
    fn numeric_keeps_every_digit_and_the_scale() {
        for (wire, want) in [
            (numeric(0, 0, 0, &[]), "0"),
            (numeric(0, 0, 2, &[]), "0.00"),
            (numeric(0, 0, 2, &[1, 5000]), "1.50"),
            (numeric(0, 0x4000, 3, &[42, 1230]), "-42.123"),
            (numeric(-1, 0, 6, &[12]), "0.001200"),
            (numeric(-2, 0, 8, &[12]), "0.00000012"),
            (numeric(1, 0, 0, &[1]), "10000"),
            (numeric(2, 0, 0, &[12, 3456, 7890]), "1234567890"),
            (
                numeric(4, 0, 6, &[1234, 5678, 9012, 3456, 7890, 1234, 5000]),
                "12345678901234567890.123450",
            ),
            (numeric(0, 0xC000, 0, &[]), "NaN"),
            (numeric(0, 0xD000, 0, &[]), "Infinity"),
            (numeric(0, 0xF000, 0, &[]), "-Infinity"),
        ] {
            assert_eq!(numeric_text(&wire).unwrap(), want);
        }
        assert!(numeric_text(&[0, 1]).is_err());
        assert!(numeric_text(&numeric(0, 0x1234, 0, &[1])).is_err());
    }

    #[test]
    fn uuids_are_hyphenated_lowercase() {
        let bytes: Vec<u8> = (0u8..16).map(|n| n * 17).collect();
        assert_eq!(
            uuid_text(&bytes).unwrap(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert!(uuid_text(&[1, 2]).is_err());
    }

    #[test]
    fn types_map_to_arrow_and_unknown_ones_say_how_to_cast() {
        fn map<T: Type<Postgres>>() -> std::result::Result<ColumnType, String> {
            column_type(&T::type_info())
        }
        assert_eq!(map::<bool>().unwrap(), ColumnType::Boolean);
        assert_eq!(map::<i16>().unwrap(), ColumnType::Int16);
        assert_eq!(map::<i32>().unwrap(), ColumnType::Int32);
        assert_eq!(map::<i64>().unwrap(), ColumnType::Int64);
        assert_eq!(map::<f32>().unwrap(), ColumnType::Float32);
        assert_eq!(map::<f64>().unwrap(), ColumnType::Float64);
        assert_eq!(map::<String>().unwrap(), ColumnType::Text);
        assert_eq!(map::<DateTime<Utc>>().unwrap(), ColumnType::Timestamp);
        assert_eq!(
            map::<chrono::NaiveDateTime>().unwrap(),
            ColumnType::LocalTimestamp
        );
        assert_eq!(map::<NaiveDate>().unwrap(), ColumnType::Date);
        assert_eq!(map::<sqlx::types::JsonValue>().unwrap(), ColumnType::Json);
        assert_eq!(map::<Vec<String>>().unwrap(), ColumnType::Json);
        assert_eq!(map::<Vec<i64>>().unwrap(), ColumnType::Json);
        assert_eq!(map::<Vec<u8>>().unwrap(), ColumnType::Binary);
        let err = map::<sqlx::postgres::types::PgInterval>().unwrap_err();
        assert!(err.contains("INTERVAL") && err.contains("::text"), "{err}");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("postgres://ada:s3cret@db:5432/app"),
            "postgres://ada:***@db:5432/app"
        );
        assert_eq!(redacted("postgres://ada@db/app"), "postgres://ada@db/app");
        assert_eq!(redacted("postgres://db/app"), "postgres://db/app");
    }
}

/// The session block on the real PostgreSQL of the test suite
/// (`EXPORT_HOST_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432),
/// in a fresh database dropped afterwards.
#[cfg(test)]
mod session_tests {
    use super::quote_identifier;
    use crate::plugin;
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::arrow_array::Array;
    use export_plugin_api::{Caller, Credential, ErrorKind, Limits, PluginError};
    use serde_json::{json, Value};
    use sqlx::{Connection, Executor, PgConnection};

    fn server() -> String {
        std::env::var("EXPORT_HOST_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    async fn connect(database: &str) -> PgConnection {
        let url = format!("{}/{database}", server());
        PgConnection::connect(&url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL is not reachable at {url}: {err}; start it (.ci/run does) or \
                 point EXPORT_HOST_TEST_POSTGRES at a server"
            )
        })
    }

    /// A fresh database with a table under forced row-level security keyed
    /// on the `sub` claim; dropped with the value.
    struct RlsDatabase {
        name: String,
    }

    impl RlsDatabase {
        fn new() -> RlsDatabase {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let name = format!("eh_sql_rls_{}_{nanos}", std::process::id());
            block_on(async {
                let mut admin = connect("postgres").await;
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create the test database");
                let mut db = connect(&name).await;
                // Roles belong to the whole server: create them once, and
                // tolerate another test run creating them at the same time.
                for role in ["authenticated", "service_role"] {
                    db.execute(
                        format!(
                            "DO $$ BEGIN CREATE ROLE {role} NOLOGIN; \
                             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; \
                             END $$"
                        )
                        .as_str(),
                    )
                    .await
                    .expect("create the role");
                }
                db.execute(
                    "CREATE TABLE notes (id integer PRIMARY KEY, owner text NOT NULL, body text);
                     INSERT INTO notes VALUES (1, 'u_ada', 'ada one'), (2, 'u_bob', 'bob one'),
                                              (3, 'u_ada', 'ada two'), (4, 'u_grace', 'grace');
                     ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
                     ALTER TABLE notes FORCE ROW LEVEL SECURITY;
                     CREATE POLICY own_notes ON notes FOR SELECT
                         USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');
                     GRANT USAGE ON SCHEMA public TO authenticated, service_role;
                     GRANT SELECT ON notes TO authenticated, service_role;",
                )
                .await
                .expect("set up the table");
            });
            RlsDatabase { name }
        }

        fn url(&self) -> String {
            format!("{}/{}", server(), self.name)
        }

        fn config(&self, session: Value) -> String {
            let mut config = json!({
                "database": self.url(),
                "queries": {
                    "notes": {"sql": "SELECT owner, body FROM notes ORDER BY id"},
                    "whoami": {"sql": "SELECT current_user::text AS who, \
                               current_setting('request.jwt.claims', true) AS claims"},
                    "writes": {"sql": "DELETE FROM notes"}
                }
            });
            if !session.is_null() {
                config["session"] = session;
            }
            config.to_string()
        }
    }

    impl Drop for RlsDatabase {
        fn drop(&mut self) {
            let name = self.name.clone();
            block_on(async move {
                let mut admin = connect("postgres").await;
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            });
        }
    }

    /// Every row of `query` as (first column, second column).
    fn rows(
        config: &str,
        query: &str,
        caller: Option<&Caller>,
    ) -> Result<Vec<(String, Option<String>)>, PluginError> {
        let selector = json!({"query": query}).to_string();
        plugin().validate_loader("sql", config, &selector, caller)?;
        let mut reader =
            plugin().open_loader_for("sql", config, &selector, &Limits::default(), caller)?;
        let mut out = Vec::new();
        while let Some(batch) = reader.next_batch()? {
            let first = batch.column(0).as_string::<i32>();
            let second = batch.column(1).as_string::<i32>();
            for row in 0..batch.num_rows() {
                let second = (!second.is_null(row)).then(|| second.value(row).to_owned());
                out.push((first.value(row).to_owned(), second));
            }
        }
        Ok(out)
    }

    fn owners(config: &str, caller: &Caller) -> Vec<String> {
        rows(config, "notes", Some(caller))
            .unwrap()
            .into_iter()
            .map(|(owner, _)| owner)
            .collect()
    }

    fn jwt(sub: &str) -> Caller {
        let claims = json!({"sub": sub, "role": "authenticated", "aud": "app", "email": "x@y"});
        Caller {
            user: sub.to_owned(),
            admin: false,
            credential: Credential::Jwt {
                issuer: Some("https://auth.example".into()),
                subject: Some(sub.to_owned()),
                claims: claims.as_object().cloned().unwrap_or_default(),
            },
        }
    }

    #[test]
    fn each_caller_sees_only_the_rows_the_database_policy_gives_them() {
        let db = RlsDatabase::new();
        let session = db.config(json!({
            "role": "authenticated",
            "admin_role": "service_role",
            "claims_setting": "request.jwt.claims"
        }));
        // The query has no WHERE clause: the policy alone filters.
        assert_eq!(owners(&session, &Caller::user("u_ada")), ["u_ada", "u_ada"]);
        assert_eq!(owners(&session, &Caller::user("u_bob")), ["u_bob"]);
        assert_eq!(owners(&session, &jwt("u_grace")), ["u_grace"]);
        assert!(owners(&session, &Caller::user("u_nobody")).is_empty());

        // The role and the claims the query ran with.
        let who = rows(&session, "whoami", Some(&Caller::user("u_ada"))).unwrap();
        assert_eq!(who[0].0, "authenticated");
        let claims: Value = serde_json::from_str(who[0].1.as_deref().unwrap()).unwrap();
        assert_eq!(claims, json!({"sub": "u_ada", "role": "user"}));
        let who = rows(&session, "whoami", Some(&jwt("u_bob"))).unwrap();
        let claims: Value = serde_json::from_str(who[0].1.as_deref().unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({"sub": "u_bob", "role": "authenticated", "aud": "app", "email": "x@y"})
        );
        let who = rows(&session, "whoami", Some(&Caller::operator())).unwrap();
        assert_eq!(who[0].0, "service_role");

        // Still read-only.
        let err = rows(&session, "writes", Some(&Caller::user("u_ada"))).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied, "{}", err.message);
        assert_eq!(
            owners(&db.config(Value::Null), &Caller::operator()).len(),
            4,
            "the connecting superuser bypasses the policy: without the session block the \
             table is whole"
        );

        // No caller: refused, never run as nobody-in-particular.
        let err = rows(&session, "notes", None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        assert!(err.message.contains("passed no caller"), "{}", err.message);
    }

    #[test]
    fn session_mistakes_say_what_to_fix() {
        let db = RlsDatabase::new();
        let ada = Caller::user("u_ada");
        let err = rows(
            &db.config(json!({"role": "no \"such\" role"})),
            "notes",
            Some(&ada),
        )
        .unwrap_err();
        assert!(
            err.message.contains("no \"such\" role") && err.message.contains("GRANT"),
            "{}",
            err.message
        );
        let err = rows(
            &db.config(json!({"claims_setting": "nodot"})),
            "notes",
            Some(&ada),
        )
        .unwrap_err();
        assert!(err.message.contains("\"nodot\""), "{}", err.message);
        let err = rows(&db.config(json!({})), "notes", Some(&ada)).unwrap_err();
        assert!(
            err.message.contains("neither `role` nor `claims_setting`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("authenticated"), "\"authenticated\"");
        assert_eq!(
            quote_identifier("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
    }
}
