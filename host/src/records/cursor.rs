//! Opaque keyset-pagination cursors over `(created_at, id)` descending.
//!
//! A cursor names the last record of a page; the next page is every record
//! strictly after it in `ORDER BY created_at DESC, id DESC`. `id` breaks ties
//! between records created in the same microsecond, so a page boundary never
//! skips or repeats a record, and new records arriving meanwhile only ever
//! appear before the first page. Keyset (not OFFSET) keeps every page an
//! index range scan however deep the client pages.
//!
//! The cursor is hex so that clients treat it as a token, not a format; it
//! carries no authority (the list is still filtered by the caller's scope).

use chrono::{DateTime, Utc};

use super::{ExportId, RecordError};

const VERSION: &str = "v1";

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: ExportId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let micros = self.created_at.timestamp_micros();
        hex::encode(format!("{VERSION}:{micros}:{}", self.id))
    }

    pub fn decode(text: &str) -> Result<Cursor, RecordError> {
        let invalid = || RecordError::InvalidCursor {
            cursor: text.chars().take(80).collect(),
        };
        let bytes = hex::decode(text).map_err(|_| invalid())?;
        let plain = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = plain.splitn(3, ':');
        let (Some(VERSION), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        let created_at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
        let id = id.parse::<ExportId>().map_err(|_| invalid())?;
        Ok(Cursor { created_at, id })
    }
}
