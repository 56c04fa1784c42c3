//! The records' domain types: the export id, the caller's scope, the record
//! and what callers hand in or get back.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{Progress, RecordError, Status, WebhookState};
use crate::storage::keys::is_export_id;

/// An export's id: `exp_` and 32 lowercase hex digits (128 random bits from
/// a CSPRNG), so ids cannot be guessed or enumerated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExportId(String);

impl ExportId {
    const PREFIX: &'static str = "exp_";

    /// A new random id.
    pub fn generate() -> ExportId {
        ExportId(format!("{}{:032x}", Self::PREFIX, rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the database, which only ever stores valid ids
    /// (the schema checks their shape).
    pub(super) fn from_db(id: String) -> ExportId {
        ExportId(id)
    }
}

impl FromStr for ExportId {
    type Err = RecordError;

    /// A malformed id is reported as [`RecordError::NotFound`]: to a caller
    /// it is exactly an id that does not exist (the API answers both with
    /// 404), and it saves a query.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // One rule for ids, the one storage keys are built on.
        if is_export_id(text) {
            Ok(ExportId(text.to_owned()))
        } else {
            Err(RecordError::NotFound {
                id: text.chars().take(80).collect(),
            })
        }
    }
}

impl fmt::Display for ExportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ExportId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whose eyes a call runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One user: only that user's records exist. On PostgreSQL this is also
    /// enforced by row-level security under the `export_host_user` role.
    User(String),
    /// Every record: admin tokens, workers and cleanup. On PostgreSQL this
    /// is the explicit maintenance bypass of row-level security.
    Admin,
}

impl Scope {
    pub fn user(user_id: impl Into<String>) -> Scope {
        Scope::User(user_id.into())
    }

    /// The user filter to bind: `None` means no filter (admin).
    pub(super) fn user_id(&self) -> Option<&str> {
        match self {
            Scope::User(user) => Some(user),
            Scope::Admin => None,
        }
    }
}

/// One export record: every column of `exports`, as the API returns it
/// (times are RFC 3339 UTC).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExportRecord {
    #[schema(value_type = String, example = "exp_0123456789abcdef0123456789abcdef")]
    pub id: ExportId,
    pub user_id: String,
    pub loader: String,
    pub format: String,
    pub status: Status,
    #[schema(value_type = HashMap<String, Value>)]
    pub selector: Value,
    #[schema(value_type = HashMap<String, Value>)]
    pub options: Value,
    /// Plugin names and versions, schema, timings; `{}` until completion.
    #[schema(value_type = HashMap<String, Value>)]
    pub metadata: Value,
    /// The user's file name, for `Content-Disposition` only.
    pub file_name: Option<String>,
    pub storage_key: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub row_count: Option<i64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
    /// Claims so far (a release gives one back).
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub download_count: i64,
    pub last_downloaded_at: Option<DateTime<Utc>>,
    pub request_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the latest attempt was claimed.
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// How far the export has come (`rows`, `bytes`, `rows_per_s`,
    /// `elapsed_s`): published while it runs, the final figures once it
    /// has ended; `null` before the first figures.
    pub progress: Option<Progress>,
    /// Where the daemon POSTs the final record when the export ends (the
    /// request's `callback_url`); `null` when none was given.
    pub callback_url: Option<String>,
    /// How that delivery has gone; `null` without a `callback_url`.
    pub webhook: Option<WebhookState>,
}

/// A request to record: it starts `pending`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExport {
    pub user_id: String,
    pub loader: String,
    pub format: String,
    pub selector: Value,
    pub options: Value,
    pub file_name: Option<String>,
    /// Hash of the normalised request, for [`Records::find_reusable`].
    pub request_hash: Option<String>,
    /// Usually set at completion instead ([`Completion::expires_at`]).
    pub expires_at: Option<DateTime<Utc>>,
    /// What is known at submission (who asked); the completion adds to it.
    pub metadata: Value,
    /// Where to announce the export's end (checked by the caller).
    pub callback_url: Option<String>,
}

/// The limits [`Records::insert_within`] keeps a user under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `MAX_PER_USER`: pending and processing exports.
    pub max_active: u32,
    /// Records of any status (failed ones included) kept for the user.
    pub max_stored: u64,
}

/// What [`Records::insert_within`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Recorded as `pending`.
    Recorded(Box<ExportRecord>),
    /// Not recorded: the user has this many active exports already.
    TooManyActive { active: u64 },
    /// Not recorded: the user has this many records stored already.
    TooManyStored { stored: u64 },
}

/// One daemon's heartbeat row (the write probe of `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonBeat {
    /// `<hostname>-<pid>`, as in its worker names.
    pub id: String,
    pub hostname: String,
    pub pid: u32,
    /// The host's version.
    pub version: String,
    pub started_at: DateTime<Utc>,
}

/// A daemon's heartbeat row as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonSeen {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// What a worker records when its export is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub storage_key: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub row_count: i64,
    pub sha256: String,
    pub metadata: Value,
    /// `None` keeps the expiry given at insert, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// The final figures.
    pub progress: Progress,
}

/// Which records [`Records::list`] returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// `Some(user)`: that user's records (user scope); `None`: everyone's
    /// (admin scope).
    pub user: Option<String>,
    pub status: Option<Status>,
    pub loader: Option<String>,
    pub format: Option<String>,
    /// Page size, clamped to `1..=ListFilter::MAX_LIMIT`.
    pub limit: u32,
    /// `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl ListFilter {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    /// The first page of one user's records.
    pub fn for_user(user: impl Into<String>) -> ListFilter {
        ListFilter {
            user: Some(user.into()),
            ..ListFilter::default()
        }
    }

    /// The first page of everyone's records (admin).
    pub fn all() -> ListFilter {
        ListFilter::default()
    }
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter {
            user: None,
            status: None,
            loader: None,
            format: None,
            limit: Self::DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub items: Vec<ExportRecord>,
    /// Pass back in [`ListFilter::cursor`] for the next page; `None` on the
    /// last page.
    pub next_cursor: Option<String>,
}

/// What one lease sweep did ([`Records::requeue_expired_leases`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseSweep {
    /// Back to `pending`, to be claimed again.
    pub requeued: Vec<ExportId>,
    /// Out of attempts: now `failed`.
    pub failed: Vec<ExportId>,
}

/// Which database a [`Records`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}
