//! The export lifecycle as one small state machine.
//!
//! ```text
//! pending -> processing -> completed -> expired
//! pending | processing -> failed
//! pending | processing -> cancelled
//! processing -> pending            (lease lost or released, attempts left)
//! ```
//!
//! [`Status::can_become`] is the only definition of that graph. The SQL of
//! every transition takes its `status IN (...)` guard from it
//! ([`guard_sql`]), and a refused transition is explained from it
//! ([`refusal`]), so the database and the error messages cannot disagree
//! with the diagram.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{ExportId, RecordError};

/// Where an export is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting in the queue for a worker.
    Pending,
    /// Claimed by a worker that holds a lease on it.
    Processing,
    /// Finished; its file is stored and downloadable until `expires_at`.
    Completed,
    /// Past `expires_at`; its file is (being) deleted.
    Expired,
    /// Ended with an error (recorded in `error`).
    Failed,
    /// Cancelled by its user or an admin before it finished.
    Cancelled,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Processing,
        Status::Completed,
        Status::Expired,
        Status::Failed,
        Status::Cancelled,
    ];

    /// The spelling stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Expired => "expired",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether the lifecycle has an edge from `self` to `next`. This is the
    /// whole state machine; nothing else decides what may happen.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Pending, Processing)
                | (Processing, Completed)
                | (Completed, Expired)
                | (Pending | Processing, Failed)
                | (Pending | Processing, Cancelled)
                | (Processing, Pending)
        )
    }

    /// The statuses that may become `next`, in lifecycle order.
    pub fn sources(next: Status) -> Vec<Status> {
        Status::ALL
            .into_iter()
            .filter(|from| from.can_become(next))
            .collect()
    }

    /// Pending or processing: counts against `MAX_PER_USER` and can be cancelled.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Pending | Status::Processing)
    }

    /// No edge leaves this status.
    pub fn is_final(self) -> bool {
        Status::ALL.into_iter().all(|next| !self.can_become(next))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status spelling that is not one of [`Status::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export status `{0}`; expected one of pending, processing, completed, expired, failed, cancelled")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// `'a', 'b'`: a SQL list of status literals. The values are our own
/// constants, never user text, so inlining them is safe, and it lets partial
/// indexes (`WHERE status = 'pending'`) match at plan time.
pub(crate) fn status_list(statuses: &[Status]) -> String {
    statuses
        .iter()
        .map(|status| format!("'{}'", status.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `status IN (...)`: the guard of the conditional UPDATE that moves a row
/// to `next`, taken from the state machine.
pub(crate) fn guard_sql(next: Status) -> String {
    format!("status IN ({})", status_list(&Status::sources(next)))
}

/// What the row looked like when a conditional UPDATE matched nothing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CurrentState {
    pub status: String,
    pub lease_owner: Option<String>,
}

/// Explains why the conditional UPDATE moving `id` to `to` matched no row,
/// given the row as read right after it in the same transaction (`None`:
/// no such row in the caller's scope). `worker` is the lease the caller
/// claimed to hold, if the transition needs one.
pub(crate) fn refusal(
    id: &ExportId,
    current: Option<CurrentState>,
    to: Status,
    worker: Option<&str>,
) -> RecordError {
    let Some(current) = current else {
        return RecordError::NotFound { id: id.to_string() };
    };
    let from = match current.status.parse::<Status>() {
        Ok(from) => from,
        Err(err) => {
            return RecordError::Corrupt {
                id: id.to_string(),
                reason: err.to_string(),
            }
        }
    };
    if !from.can_become(to) {
        return RecordError::IllegalTransition {
            id: id.to_string(),
            from,
            to,
        };
    }
    if let Some(worker) = worker {
        if current.lease_owner.as_deref() != Some(worker) {
            return RecordError::LeaseLost {
                id: id.to_string(),
                worker: worker.to_owned(),
                status: from,
            };
        }
    }
    // The guard matched the status we just read, so the row changed between
    // the UPDATE and this read. Within one transaction that cannot happen on
    // SQLite (BEGIN IMMEDIATE) and is a lost race on PostgreSQL.
    RecordError::Conflict {
        id: id.to_string(),
        reason: format!("it changed while becoming {to}; read it again and retry"),
    }
}

/// What to do about a refused transition: part of the error message.
pub(crate) fn transition_hint(from: Status, to: Status) -> String {
    if from == to {
        return format!("it is already {to}; nothing to do");
    }
    match (from, to) {
        (Status::Completed, Status::Cancelled) => {
            "it has already completed; delete it instead of cancelling it".to_owned()
        }
        (Status::Cancelled, _) => {
            "it was cancelled; stop working on it and discard any output".to_owned()
        }
        (from, _) if from.is_final() => {
            format!("it has already finished as {from}; create a new export instead")
        }
        _ => {
            let sources: Vec<&str> = Status::sources(to).iter().map(|s| s.as_str()).collect();
            format!("only a {} export can become {to}", sources.join(" or "))
        }
    }
}
