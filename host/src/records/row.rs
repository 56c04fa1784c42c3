//! How a record travels to and from either database.
//!
//! [`Ts`] is a timestamp with one encoding per backend: `TIMESTAMPTZ` on
//! PostgreSQL, and on SQLite TEXT in one fixed shape (RFC 3339, UTC, six
//! fractional digits) so that text order is time order. sqlx's own
//! `DateTime` encoding for SQLite varies the number of fractional digits
//! (`...:00Z` sorts after `...:00.5Z`), which would break every range query.
//! Both backends therefore keep microseconds, and [`Ts::new`] truncates to
//! them so a value reads back exactly as it was written on either backend.
//!
//! [`RawRecord`] derives `FromRow` generically, so one row type (and one
//! query text) serves both backends.

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::types::Json;
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

use super::webhooks::WebhookState;
use super::{ExportId, ExportRecord, RecordError, Status};

/// A UTC timestamp with microsecond precision, stored so it sorts correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl Ts {
    /// Truncates to microseconds: the precision both databases keep.
    pub fn new(at: DateTime<Utc>) -> Ts {
        Ts(truncate(at))
    }

    /// The SQLite spelling: `2024-05-01T10:00:00.000000Z`.
    fn to_sqlite_text(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// Drops sub-microsecond digits (the databases cannot keep them).
pub(crate) fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    // duration_trunc only fails for timestamps beyond ~584 years from the
    // epoch in nanoseconds; such a value keeps its digits and the database
    // truncates it the same way on write.
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.to_sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Ts::from_sqlite_text(text)?)
    }
}

impl Ts {
    fn from_sqlite_text(text: &str) -> Result<Ts, String> {
        let at = DateTime::parse_from_rfc3339(text)
            .map_err(|err| format!("timestamp `{text}` is not RFC 3339: {err}"))?;
        Ok(Ts(at.with_timezone(&Utc)))
    }
}

/// The same decoding for the direct reads of [`super::sqlite_reads`].
impl rusqlite::types::FromSql for Ts {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Ts::from_sqlite_text(value.as_str()?)
            .map_err(|err| rusqlite::types::FromSqlError::Other(err.into()))
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<DateTime<Utc> as Decode<Postgres>>::decode(value)?))
    }
}

/// Every column of `exports`, in table order: the projection of each query
/// that returns whole records.
pub(crate) const COLUMNS: &str = "id, user_id, loader, format, status, selector, options, \
     metadata, file_name, storage_key, mime_type, size_bytes, row_count, sha256, error, \
     attempts, lease_owner, lease_expires_at, download_count, last_downloaded_at, \
     request_hash, created_at, updated_at, started_at, completed_at, expires_at, progress, \
     callback_url, webhook_attempts, webhook_last_status, webhook_delivered_at, \
     webhook_next_attempt_at, webhook_gave_up_at";

/// One `exports` row as the database returns it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawRecord {
    id: String,
    user_id: String,
    loader: String,
    format: String,
    status: String,
    selector: Json<Value>,
    options: Json<Value>,
    metadata: Json<Value>,
    file_name: Option<String>,
    storage_key: Option<String>,
    mime_type: Option<String>,
    size_bytes: Option<i64>,
    row_count: Option<i64>,
    sha256: Option<String>,
    error: Option<String>,
    attempts: i32,
    lease_owner: Option<String>,
    lease_expires_at: Option<Ts>,
    download_count: i64,
    last_downloaded_at: Option<Ts>,
    request_hash: Option<String>,
    created_at: Ts,
    updated_at: Ts,
    started_at: Option<Ts>,
    completed_at: Option<Ts>,
    expires_at: Option<Ts>,
    progress: Option<Json<Value>>,
    callback_url: Option<String>,
    webhook_attempts: i32,
    webhook_last_status: Option<i32>,
    webhook_delivered_at: Option<Ts>,
    webhook_next_attempt_at: Option<Ts>,
    webhook_gave_up_at: Option<Ts>,
}

impl RawRecord {
    /// A row of a `SELECT {COLUMNS}` read directly from SQLite (see
    /// [`super::sqlite_reads`]); the same fields `FromRow` reads.
    pub(crate) fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
        let json = |name: &str| -> rusqlite::Result<Json<Value>> {
            let text: String = row.get(name)?;
            serde_json::from_str(&text).map(Json).map_err(|err| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    err.into(),
                )
            })
        };
        Ok(RawRecord {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            loader: row.get("loader")?,
            format: row.get("format")?,
            status: row.get("status")?,
            selector: json("selector")?,
            options: json("options")?,
            metadata: json("metadata")?,
            file_name: row.get("file_name")?,
            storage_key: row.get("storage_key")?,
            mime_type: row.get("mime_type")?,
            size_bytes: row.get("size_bytes")?,
            row_count: row.get("row_count")?,
            sha256: row.get("sha256")?,
            error: row.get("error")?,
            attempts: row.get("attempts")?,
            lease_owner: row.get("lease_owner")?,
            lease_expires_at: row.get("lease_expires_at")?,
            download_count: row.get("download_count")?,
            last_downloaded_at: row.get("last_downloaded_at")?,
            request_hash: row.get("request_hash")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            started_at: row.get("started_at")?,
            completed_at: row.get("completed_at")?,
            expires_at: row.get("expires_at")?,
            progress: match row.get::<_, Option<String>>("progress")? {
                Some(_) => Some(json("progress")?),
                None => None,
            },
            callback_url: row.get("callback_url")?,
            webhook_attempts: row.get("webhook_attempts")?,
            webhook_last_status: row.get("webhook_last_status")?,
            webhook_delivered_at: row.get("webhook_delivered_at")?,
            webhook_next_attempt_at: row.get("webhook_next_attempt_at")?,
            webhook_gave_up_at: row.get("webhook_gave_up_at")?,
        })
    }
}

impl TryFrom<RawRecord> for ExportRecord {
    type Error = RecordError;

    fn try_from(raw: RawRecord) -> Result<Self, Self::Error> {
        let status = raw
            .status
            .parse::<Status>()
            .map_err(|err| RecordError::Corrupt {
                id: raw.id.clone(),
                reason: err.to_string(),
            })?;
        let id = raw.id;
        // The delivery state means something only when a callback was asked for.
        let webhook = raw.callback_url.as_ref().map(|_| WebhookState {
            attempts: raw.webhook_attempts,
            last_status: raw.webhook_last_status,
            delivered_at: raw.webhook_delivered_at.map(|ts| ts.0),
            next_attempt_at: raw.webhook_next_attempt_at.map(|ts| ts.0),
            gave_up_at: raw.webhook_gave_up_at.map(|ts| ts.0),
        });
        Ok(ExportRecord {
            id: ExportId::from_db(id.clone()),
            user_id: raw.user_id,
            loader: raw.loader,
            format: raw.format,
            status,
            selector: raw.selector.0,
            options: raw.options.0,
            metadata: raw.metadata.0,
            file_name: raw.file_name,
            storage_key: raw.storage_key,
            mime_type: raw.mime_type,
            size_bytes: raw.size_bytes,
            row_count: raw.row_count,
            sha256: raw.sha256,
            error: raw.error,
            attempts: raw.attempts,
            lease_owner: raw.lease_owner,
            lease_expires_at: raw.lease_expires_at.map(|ts| ts.0),
            download_count: raw.download_count,
            last_downloaded_at: raw.last_downloaded_at.map(|ts| ts.0),
            request_hash: raw.request_hash,
            created_at: raw.created_at.0,
            updated_at: raw.updated_at.0,
            started_at: raw.started_at.map(|ts| ts.0),
            completed_at: raw.completed_at.map(|ts| ts.0),
            expires_at: raw.expires_at.map(|ts| ts.0),
            progress: raw
                .progress
                .map(|json| serde_json::from_value(json.0))
                .transpose()
                .map_err(|err| RecordError::Corrupt {
                    id: id.clone(),
                    reason: format!("progress: {err}"),
                })?,
            callback_url: raw.callback_url,
            webhook,
        })
    }
}

/// Converts a batch of rows, failing on the first corrupt one.
pub(crate) fn records(rows: Vec<RawRecord>) -> Result<Vec<ExportRecord>, RecordError> {
    rows.into_iter().map(ExportRecord::try_from).collect()
}
