//! `GET /v1/exports/{id}/events`: an export's changes as Server-Sent Events.
//!
//! The stream re-reads the record (at once on a notice from this daemon's
//! workers, otherwise every [`POLL`]): the record is the ground truth, so
//! the stream follows an export run by any daemon on the same database.
//! It sends `status` when the status changed (and as the first event of a
//! connection), `progress` when only the progress figures changed, and a
//! last `end` once the export has ended, then closes. Every event's data is
//! the whole record, as `GET /v1/exports/{id}` answers it.
//!
//! Event ids are the record's `updated_at` in microseconds since the epoch
//! (for a completed or expired export, its `completed_at`, so that the end
//! keeps its id when a download or the expiry touches the record later).
//! Every write of a status or of progress sets `updated_at`, so a later
//! state has a larger id; should two states share a time, the later one is
//! sent with the previous id plus one, so ids strictly grow on a
//! connection. A reconnection with `Last-Event-ID` gets only states newer
//! than that id, and 204 once it names the end (or later): the SSE way to
//! tell a client to stop reconnecting.

use super::export_id;
use crate::records::{ExportId, ExportRecord, Progress, RecordError, Scope, Status};
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::AppState;
use crate::service::ServiceError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often the stream re-reads its record when no notice comes (an export
/// run by another daemon only shows in the database).
const POLL: Duration = Duration::from_millis(250);
/// A comment this often keeps proxies and the idle timeout from closing a
/// quiet stream (an export pending for long).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The event id of `record`'s state (see the module documentation).
pub fn state_id(record: &ExportRecord) -> i64 {
    match (record.status, record.completed_at) {
        (Status::Completed | Status::Expired, Some(at)) => at.timestamp_micros(),
        _ => record.updated_at.timestamp_micros(),
    }
}

/// `Last-Event-ID`, when it is one of ours. Anything else is ignored: the
/// client then starts over from the current state, which is always safe.
fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `GET /v1/exports/{id}/events`: the export's changes as Server-Sent Events.
#[utoipa::path(get, path = "/v1/exports/{id}/events", tag = "exports", operation_id = "streamExportEvents",
    params(
        ("id" = String, Path, description = "Export id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: only newer states are sent"),
    ),
    responses(
        (status = 200, description = "A `text/event-stream`: `status` (the status changed; also the first event), \
            `progress` (only the progress changed) and a last `end` once the export has ended, each with the whole \
            record as JSON in `data` and an `id` that grows with every state", content_type = "text/event-stream", body = String),
        (status = 204, description = "`Last-Event-ID` names the end of the export: nothing more will come"),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such export, or not the caller's", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = export_id(&id)?;
    let scope = caller.scope();
    let record = state.service.get(&scope, &id).await?;
    let last = last_event_id(&headers);
    if let Some(last) = last {
        if !record.status.is_active() && last >= state_id(&record) {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
    let watch = Watch {
        changed: state.signals.finished.subscribe(),
        stopping: state.stopping.subscribe(),
        state,
        scope,
        id,
        next: Some(record),
        last_id: last,
        seen: None,
        ended: false,
    };
    let events = futures::stream::unfold(watch, |mut watch| async move {
        let event = watch.next_event().await?;
        Some((Ok::<Event, Infallible>(event), watch))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// One connection's place in the export's life.
struct Watch {
    state: Arc<AppState>,
    scope: Scope,
    id: ExportId,
    changed: tokio::sync::watch::Receiver<u64>,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// A record read but not yet looked at (the one the request read).
    next: Option<ExportRecord>,
    /// The id of the last event sent, or the client's `Last-Event-ID`.
    last_id: Option<i64>,
    /// The status and progress of the last state sent or skipped.
    seen: Option<(Status, Option<Progress>)>,
    /// The end was sent: the stream is over.
    ended: bool,
}

impl Watch {
    /// The next event, or `None` once the stream is over (the end was sent,
    /// the record is gone, or the daemon is stopping).
    async fn next_event(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            let record = match self.next.take() {
                Some(record) => record,
                None => self.reread().await?,
            };
            let first = self.seen.is_none();
            let status_changed = self.seen.as_ref().is_none_or(|(s, _)| *s != record.status);
            let progress_changed = self
                .seen
                .as_ref()
                .is_none_or(|(_, p)| *p != record.progress);
            if !status_changed && !progress_changed {
                continue;
            }
            self.seen = Some((record.status, record.progress.clone()));
            let mut id = state_id(&record);
            if let Some(last) = self.last_id {
                if first && id <= last {
                    // A resumed client has this state already.
                    continue;
                }
                id = id.max(last.saturating_add(1));
            }
            self.last_id = Some(id);
            let name = if !record.status.is_active() {
                self.ended = true;
                "end"
            } else if status_changed {
                "status"
            } else {
                "progress"
            };
            match Event::default()
                .event(name)
                .id(id.to_string())
                .json_data(&record)
            {
                Ok(event) => return Some(event),
                Err(err) => {
                    tracing::warn!(export = %self.id, error = %err, "cannot encode an export event; closing the stream");
                    return None;
                }
            }
        }
    }

    /// Waits for a notice or the poll, then reads the record again. `None`
    /// when the daemon stops or the record is gone.
    async fn reread(&mut self) -> Option<ExportRecord> {
        loop {
            tokio::select! {
                _ = self.stopping.wait_for(|stop| *stop) => return None,
                _ = self.changed.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            match self.state.service.get(&self.scope, &self.id).await {
                Ok(record) => return Some(record),
                Err(ServiceError::Records(RecordError::NotFound { .. })) => return None,
                // A database hiccup: the next poll tries again.
                Err(err) => {
                    tracing::warn!(export = %self.id, error = %err, "re-reading an export for its event stream failed");
                }
            }
        }
    }
}
