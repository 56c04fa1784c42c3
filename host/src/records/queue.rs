//! The queue: claiming pending exports, the lease and its heartbeat, and
//! the transitions a worker makes (complete, fail, release) or a caller
//! makes (cancel); the sweep that requeues exports whose lease ran out.

use super::lifecycle::{refusal, CurrentState};
use super::queries as q;
use super::row::{RawRecord, Ts};
use super::{
    finish, log_transition, postgres, sqlite, typed, Backend, Completion, ExportId, ExportRecord,
    LeaseSweep, Mode, RecordError, Records, Scope, Status,
};
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::types::Json;

impl Records {
    /// Claims the oldest pending export for `worker`: it becomes
    /// `processing` with a lease until `now + lease`, and one more attempt.
    /// `None` when the queue is empty (or every pending row is being claimed
    /// by someone else right now, on PostgreSQL).
    pub async fn claim_next(
        &self,
        worker: &str,
        lease: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ExportRecord>, RecordError> {
        let until = lease_deadline(now, lease)?;
        let claimed = match &self.backend {
            Backend::Sqlite(_) => self.claim_with(&sqlite::CLAIM, worker, until, now).await?,
            Backend::Postgres(_) => {
                self.claim_with(&postgres::CLAIM, worker, until, now)
                    .await?
            }
        };
        if let Some(record) = &claimed {
            tracing::info!(
                export_id = %record.id, status = %Status::Processing, worker, attempt = record.attempts,
                "export transition"
            );
        }
        Ok(claimed)
    }

    /// Claims the pending export `id` for `worker`, like
    /// [`Records::claim_next`] but for one named export (the CLI runs the
    /// export it just created). `None` when `id` is not pending (another
    /// worker claimed it first, it was cancelled, or it does not exist).
    pub async fn claim(
        &self,
        id: &ExportId,
        worker: &str,
        lease: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ExportRecord>, RecordError> {
        let until = lease_deadline(now, lease)?;
        let claimed = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(&q::CLAIM_ONE)
                .bind(worker)
                .bind(Ts::new(until))
                .bind(Ts::new(now))
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            raw.map(ExportRecord::try_from).transpose()
        })?;
        if let Some(record) = &claimed {
            tracing::info!(
                export_id = %record.id, status = %Status::Processing, worker, attempt = record.attempts,
                "export transition"
            );
        }
        Ok(claimed)
    }

    async fn claim_with(
        &self,
        sql: &str,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ExportRecord>, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw = sqlx::query_as::<_, RawRecord>(sql)
                .bind(worker)
                .bind(Ts::new(until))
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            raw.map(ExportRecord::try_from).transpose()
        })
    }

    /// Extends `worker`'s lease on `id` to `until`. [`RecordError::LeaseLost`]
    /// tells the worker to stop: its export was requeued, taken over,
    /// cancelled or failed.
    pub async fn heartbeat(
        &self,
        id: &ExportId,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let done = sqlx::query(q::HEARTBEAT)
                .bind(id.as_str())
                .bind(worker)
                .bind(Ts::new(until))
                .bind(Ts::new(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 1 {
                return Ok(());
            }
            let state = current_state!(tx, id, None::<&str>);
            Err(match state {
                None => RecordError::NotFound { id: id.to_string() },
                Some(state) => {
                    let status =
                        state
                            .status
                            .parse::<Status>()
                            .map_err(|err| RecordError::Corrupt {
                                id: id.to_string(),
                                reason: err.to_string(),
                            })?;
                    RecordError::LeaseLost {
                        id: id.to_string(),
                        worker: worker.to_owned(),
                        status,
                    }
                }
            })
        })
    }

    /// `processing -> completed` by the worker holding the lease.
    pub async fn complete(
        &self,
        id: &ExportId,
        worker: &str,
        completion: &Completion,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        transition!(
            self,
            &Scope::Admin,
            id,
            to: Status::Completed,
            worker: Some(worker),
            visible_to: None::<&str>,
            |tx| sqlx::query_as::<_, RawRecord>(&q::COMPLETE)
                .bind(id.as_str())
                .bind(worker)
                .bind(&completion.storage_key)
                .bind(&completion.mime_type)
                .bind(completion.size_bytes)
                .bind(completion.row_count)
                .bind(&completion.sha256)
                .bind(Json(&completion.metadata))
                .bind(completion.expires_at.map(Ts::new))
                .bind(Ts::new(now))
                .bind(Json(&completion.progress))
        )
    }

    /// `pending|processing -> failed` with `error`. With `worker`, only the
    /// processing export that worker holds; without, any active export (the
    /// service refusing a request, an admin).
    pub async fn fail(
        &self,
        id: &ExportId,
        worker: Option<&str>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        transition!(
            self,
            &Scope::Admin,
            id,
            to: Status::Failed,
            worker: worker,
            visible_to: None::<&str>,
            |tx| sqlx::query_as::<_, RawRecord>(&q::FAIL)
                .bind(id.as_str())
                .bind(worker)
                .bind(error)
                .bind(Ts::new(now))
        )
    }

    /// `pending|processing -> cancelled`. A worker running it finds out at
    /// its next heartbeat or at completion.
    pub async fn cancel(
        &self,
        scope: &Scope,
        id: &ExportId,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        transition!(
            self,
            scope,
            id,
            to: Status::Cancelled,
            worker: None,
            visible_to: scope.user_id(),
            |tx| sqlx::query_as::<_, RawRecord>(&q::CANCEL)
                .bind(id.as_str())
                .bind(scope.user_id())
                .bind(Ts::new(now))
        )
    }

    /// `processing -> pending` by the worker holding the lease, giving its
    /// attempt back: a daemon shutting down returns unfinished work to the
    /// queue rather than leaving it to a lease sweep.
    pub async fn release(
        &self,
        id: &ExportId,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<ExportRecord, RecordError> {
        transition!(
            self,
            &Scope::Admin,
            id,
            to: Status::Pending,
            worker: Some(worker),
            visible_to: None::<&str>,
            |tx| sqlx::query_as::<_, RawRecord>(&q::RELEASE)
                .bind(id.as_str())
                .bind(worker)
                .bind(Ts::new(now))
        )
    }

    /// The lease sweep: every `processing` export whose lease ended before
    /// `now` goes back to `pending` if it has had fewer than `max_attempts`
    /// claims, and otherwise fails, so no export stays in `processing`
    /// forever.
    pub async fn requeue_expired_leases(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<LeaseSweep, RecordError> {
        let max = i32::try_from(max_attempts).map_err(|_| RecordError::InvalidInput {
            field: "max_attempts",
            reason: format!("{max_attempts} is more than {}", i32::MAX),
        })?;
        let error = format!(
            "its worker stopped renewing the lease on each of {max} attempts (the daemon was \
             killed, crashed or hung while running it); it will not be retried, create it again \
             to retry"
        );
        // Deaths inside a plugin first: those fail naming the plugin.
        let died = self.fail_deaths_in_plugins(now, max).await?;
        let mut sweep = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let failed: Vec<String> = sqlx::query_scalar(q::FAIL_EXPIRED)
                .bind(Ts::new(now))
                .bind(max)
                .bind(&error)
                .fetch_all(&mut *tx)
                .await?;
            let requeued: Vec<String> = sqlx::query_scalar(&q::REQUEUE_EXPIRED)
                .bind(Ts::new(now))
                .bind(max)
                .fetch_all(&mut *tx)
                .await?;
            Ok(LeaseSweep {
                requeued: requeued.into_iter().map(ExportId::from_db).collect(),
                failed: failed.into_iter().map(ExportId::from_db).collect(),
            })
        })?;
        for id in &sweep.requeued {
            tracing::info!(export_id = %id, status = %Status::Pending, "export transition: lease expired, requeued");
        }
        for id in &sweep.failed {
            tracing::info!(export_id = %id, status = %Status::Failed, "export transition: lease expired, out of attempts");
        }
        sweep.failed.extend(died);
        Ok(sweep)
    }
}

/// `now + lease`, refusing leases too long to represent.
fn lease_deadline(
    now: DateTime<Utc>,
    lease: std::time::Duration,
) -> Result<DateTime<Utc>, RecordError> {
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .ok_or_else(|| RecordError::InvalidInput {
            field: "lease duration",
            reason: format!("{lease:?} is too long"),
        })
}
