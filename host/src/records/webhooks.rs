//! The webhook delivery state kept on each export row (`callback_url` and
//! the `webhook_*` columns), and the queries of the delivery loop.
//!
//! A delivery is owed once its export has ended. A daemon takes one attempt
//! with a conditional UPDATE ([`Records::claim_webhook`]) that writes its own
//! claim token and a claim deadline only if the row is still owed, due and
//! unclaimed, so of several daemons on one database exactly one makes each
//! attempt. The outcome is written back under that same token
//! ([`Records::record_webhook_attempt`]); a daemon killed mid-attempt leaves
//! a claim that runs out, after which the attempt is made again.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::lifecycle::status_list;
use super::row::{RawRecord, Ts, COLUMNS};
use super::{
    finish, postgres, sqlite, typed, Backend, ExportRecord, Mode, RecordError, Records, Scope,
    Status,
};

/// How the announcement of an export's end has gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookState {
    /// POSTs made so far.
    pub attempts: i32,
    /// The HTTP status of the latest POST; `null` before the first, or when
    /// the latest one got no answer (no connection, a timeout).
    pub last_status: Option<i32>,
    /// When a POST was answered with a 2xx status; `null` until then.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the next POST is due after a failed one; `null` before the
    /// first (made as soon as the export ends) and once delivered or given up.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the daemon stopped trying (the retry window ran out, or the
    /// destination is no longer allowed); `null` otherwise.
    pub gave_up_at: Option<DateTime<Utc>>,
}

/// One delivery attempt a daemon has claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    /// The record as it stands now: the body of the POST.
    pub record: ExportRecord,
    /// Where to POST it.
    pub callback_url: String,
    /// When the export ended; retries stop a fixed time after it.
    pub ended_at: DateTime<Utc>,
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookAttempt {
    /// The HTTP status, or `None` when there was no answer.
    pub status: Option<u16>,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// What comes next.
    pub outcome: AttemptOutcome,
}

/// The state an attempt leaves the delivery in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Answered with a 2xx status: done.
    Delivered,
    /// Not delivered; try again at this time.
    RetryAt(DateTime<Utc>),
    /// Not delivered and no more attempts will be made.
    GaveUp,
}

/// The statuses a record has once its export has ended.
fn ended() -> String {
    status_list(&[
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
        Status::Expired,
    ])
}

/// The rows whose delivery is owed, due at `$n` and not claimed.
fn owed_and_due(n: u8) -> String {
    format!(
        "callback_url IS NOT NULL AND webhook_delivered_at IS NULL \
         AND webhook_gave_up_at IS NULL AND status IN ({}) \
         AND (webhook_next_attempt_at IS NULL OR webhook_next_attempt_at <= ${n}) \
         AND (webhook_claim_until IS NULL OR webhook_claim_until <= ${n})",
        ended()
    )
}

/// $1 claim token, $2 claim deadline, $3 now. The due test is repeated in
/// the outer WHERE: on PostgreSQL a racing claim re-checks it against the
/// row another daemon just claimed, and matches nothing.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE exports SET webhook_claim = $1, webhook_claim_until = $2, \
             webhook_ended_at = COALESCE(webhook_ended_at, completed_at, updated_at) \
         WHERE id = (SELECT id FROM exports WHERE {due} \
                     ORDER BY COALESCE(webhook_next_attempt_at, $3), id LIMIT 1) \
           AND {due} \
         RETURNING {COLUMNS}, webhook_ended_at",
        due = owed_and_due(3)
    )
});

/// $1 id, $2 claim token, $3 last_status, $4 delivered_at,
/// $5 next_attempt_at, $6 gave_up_at.
const RECORD_ATTEMPT: &str = "UPDATE exports SET webhook_attempts = webhook_attempts + 1, \
         webhook_last_status = $3, webhook_delivered_at = $4, webhook_next_attempt_at = $5, \
         webhook_gave_up_at = $6, webhook_claim = NULL, webhook_claim_until = NULL \
     WHERE id = $1 AND webhook_claim = $2";

/// The earliest time a delivery still owed becomes due ($1 now stands for
/// "at once"); NULL when none is owed.
static NEXT_DUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT MIN(COALESCE(webhook_claim_until, webhook_next_attempt_at, $1)) FROM exports \
         WHERE callback_url IS NOT NULL AND webhook_delivered_at IS NULL \
           AND webhook_gave_up_at IS NULL AND status IN ({})",
        ended()
    )
});

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    record: RawRecord,
    webhook_ended_at: Ts,
}

impl Records {
    /// Claims the most overdue delivery for `claim` (a token unique to this
    /// attempt) until `claim_until`; `None` when nothing is due at `now`.
    pub async fn claim_webhook(
        &self,
        claim: &str,
        claim_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookDelivery>, RecordError> {
        let row = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let row = sqlx::query_as::<_, ClaimedRow>(&CLAIM)
                .bind(claim)
                .bind(Ts::new(claim_until))
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            Ok(row)
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = ExportRecord::try_from(row.record)?;
        let Some(callback_url) = record.callback_url.clone() else {
            return Err(RecordError::Corrupt {
                id: record.id.to_string(),
                reason: "a claimed webhook delivery has no callback_url".to_owned(),
            });
        };
        Ok(Some(WebhookDelivery {
            record,
            callback_url,
            ended_at: row.webhook_ended_at.0,
        }))
    }

    /// Writes the outcome of the attempt `claim` made on export `id`.
    /// `false` when the claim is no longer held (it ran out and another
    /// attempt was claimed): the outcome is then dropped.
    pub async fn record_webhook_attempt(
        &self,
        id: &super::ExportId,
        claim: &str,
        attempt: &WebhookAttempt,
    ) -> Result<bool, RecordError> {
        let (delivered_at, next_attempt_at, gave_up_at) = match attempt.outcome {
            AttemptOutcome::Delivered => (Some(attempt.at), None, None),
            AttemptOutcome::RetryAt(next) => (None, Some(next), None),
            AttemptOutcome::GaveUp => (None, None, Some(attempt.at)),
        };
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let written = sqlx::query(RECORD_ATTEMPT)
                .bind(id.as_str())
                .bind(claim)
                .bind(attempt.status.map(i32::from))
                .bind(delivered_at.map(Ts::new))
                .bind(next_attempt_at.map(Ts::new))
                .bind(gave_up_at.map(Ts::new))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(written == 1)
        })
    }

    /// When the next owed delivery becomes due: `now` if one is due already,
    /// `None` when none is owed.
    pub async fn next_webhook_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RecordError> {
        let due = in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
            let due: Option<Ts> = sqlx::query_scalar(&NEXT_DUE)
                .bind(Ts::new(now))
                .fetch_one(&mut *tx)
                .await?;
            Ok(due)
        })?;
        Ok(due.map(|ts| ts.0))
    }
}
