//! `POST /v1/exports`, `GET /v1/exports`, `GET /v1/exports/{id}`,
//! `DELETE /v1/exports/{id}`.

use super::export_id;
use crate::pipeline::ExportRequest;
use crate::records::{ExportRecord, ListFilter, Page, RecordError, Scope, Status};
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::server::{AppState, MAX_WAIT};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// How often a long poll re-reads its record when no notice comes (an
/// export run by another daemon, or cancelled elsewhere).
const POLL: Duration = Duration::from_millis(200);

/// `POST /v1/exports` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// Seconds to hold the answer until the export ends.
    wait: Option<f64>,
}

/// 202 while the export is active, 200 once it has ended.
fn record_response(record: ExportRecord) -> Response {
    let status = if record.status.is_active() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (status, Json(record)).into_response()
}

/// Records an export request for the caller.
///
/// **Webhook.** With `callback_url`, when the export ends (completed,
/// failed or cancelled) the daemon POSTs the final record (the body `GET
/// /v1/exports/{id}` returns; its `webhook` shows the attempts before this
/// one) to that URL with `Content-Type: application/json` and
/// `Export-Host-Signature: t=<unix seconds>,v1=<hex>`, where the hex is the
/// lowercase HMAC-SHA256 of `<t>.<body>` (the time, a dot, the raw body)
/// under the operator's webhook secret. A receiver recomputes it, compares
/// in constant time and refuses old `t` values. Any 2xx answer counts as
/// delivered; anything else, or no answer within 10 s, is retried with
/// doubling waits (1 s, 2 s, 4 s, ... at most 1 h) for up to 24 h after the
/// export ended. Redirects are not followed. The record's `webhook` shows
/// `attempts`, `last_status`, `delivered_at`, `next_attempt_at` and
/// `gave_up_at`. A `callback_url` must start with a prefix the operator
/// allows and may not point at an internal address the operator did not
/// name; otherwise the request is refused with 400
/// `callback_url_refused`, and nothing is recorded.
#[utoipa::path(post, path = "/v1/exports", tag = "exports", operation_id = "createExport", params(CreateQuery),
    request_body = ExportRequest,
    responses(
        (status = 202, description = "Recorded; still pending or processing", body = ExportRecord),
        (status = 200, description = "Ended within `wait` (or reused from the cache)", body = ExportRecord),
        (status = 400, description = "Bad request: unknown loader or format, schema failure; `callback_url_refused`: a callback_url the operator does not allow", body = crate::server::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
        (status = 403, description = "Outside the token's scope (read-only, or another loader, query or format)", body = crate::server::error::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = crate::server::error::ErrorBody),
        (status = 429, description = "MAX_PER_USER active exports already", body = crate::server::error::ErrorBody),
        (status = 503, description = "A plugin the request needs is still loading (`plugin_loading`); try again after `Retry-After` seconds", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: Result<Query<CreateQuery>, QueryRejection>,
    body: Result<Json<ExportRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let Json(request) = body?;
    // A plugin still loading answers 503 (Retry-After), even to a scoped
    // token, whose scope cannot be told until the plugin is there.
    state.service.check_loading(&request)?;
    // A scoped token answers 403 before anything is checked or recorded.
    caller.may_create(&state.service.plugin_addresses(), &request)?;
    state
        .service
        .check_callback(request.callback_url.as_deref())
        .map_err(|refusal| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "callback_url_refused",
                refusal.to_string(),
            )
        })?;
    let wait = match query.wait {
        None => None,
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            // Clamped first: a huge value must not overflow a Duration.
            Some(Duration::from_secs_f64(seconds.min(MAX_WAIT.as_secs_f64())))
        }
        Some(seconds) => {
            return Err(ApiError::bad_request(format!(
                "wait={seconds}: expected a number of seconds, 0 to {}",
                MAX_WAIT.as_secs()
            )))
        }
    };
    let record = state
        .service
        .create_for(&caller.0.caller(), &request)
        .await?;
    state.signals.new_work.notify_one();
    let record = match wait {
        Some(wait) if record.status.is_active() => {
            wait_for_end(&state, &caller.scope(), record, wait).await?
        }
        _ => record,
    };
    Ok(record_response(record))
}

/// Re-reads `record` until it is no longer active, `wait` has passed or the
/// daemon is stopping.
async fn wait_for_end(
    state: &AppState,
    scope: &Scope,
    mut record: ExportRecord,
    wait: Duration,
) -> Result<ExportRecord, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut changed = state.signals.finished.subscribe();
    let mut stopping = state.stopping.subscribe();
    while record.status.is_active() {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            _ = stopping.wait_for(|stop| *stop) => break,
            _ = changed.changed() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        record = state.service.get(scope, &record.id).await?;
    }
    Ok(record)
}

/// `GET /v1/exports/{id}`.
#[utoipa::path(get, path = "/v1/exports/{id}", tag = "exports", operation_id = "getExport",
    params(("id" = String, Path, description = "Export id")),
    responses(
        (status = 200, description = "The record", body = ExportRecord),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such export, or not the caller's", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ExportRecord>, ApiError> {
    let id = export_id(&id)?;
    Ok(Json(state.service.get(&caller.scope(), &id).await?))
}

/// `GET /v1/exports` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only exports in this status.
    status: Option<String>,
    /// Only exports of this loader (`plugin/name`).
    loader: Option<String>,
    /// Only exports in this format (`plugin/name`).
    format: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /v1/exports`: the caller's exports (everyone's for an admin), newest first.
#[utoipa::path(get, path = "/v1/exports", tag = "exports", operation_id = "listExports", params(ListQuery),
    responses(
        (status = 200, description = "One page, newest first", body = Page),
        (status = 400, description = "Bad filter or cursor", body = crate::server::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(query) = query?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<Status>()
                .map_err(|err| ApiError::bad_request(format!("status: {err}")))?,
        ),
    };
    let filter = ListFilter {
        user: (!caller.0.admin).then(|| caller.0.user.clone()),
        status,
        loader: query.loader.filter(|s| !s.is_empty()),
        format: query.format.filter(|s| !s.is_empty()),
        limit: query.limit.unwrap_or(ListFilter::DEFAULT_LIMIT),
        cursor: query.cursor.filter(|s| !s.is_empty()),
    };
    Ok(Json(state.service.list(&filter).await?))
}

/// `DELETE /v1/exports/{id}`: cancels an active export (200 with the
/// record) or deletes a finished one and its file (204).
#[utoipa::path(delete, path = "/v1/exports/{id}", tag = "exports", operation_id = "deleteExport",
    params(("id" = String, Path, description = "Export id")),
    responses(
        (status = 200, description = "Cancelled", body = ExportRecord),
        (status = 204, description = "Deleted with its file"),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
        (status = 403, description = "A read-only token", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such export, or not the caller's", body = crate::server::error::ErrorBody),
        (status = 409, description = "It changed state meanwhile", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may_delete()?;
    let id = export_id(&id)?;
    let scope = caller.scope();
    let record = state.service.get(&scope, &id).await?;
    if record.status.is_active() {
        match state.service.cancel(&scope, &id).await {
            Ok(record) => {
                state.signals.export_changed();
                return Ok((StatusCode::OK, Json(record)).into_response());
            }
            // It ended meanwhile: delete it like any finished export.
            Err(crate::service::ServiceError::Records(RecordError::IllegalTransition {
                ..
            })) => {}
            Err(err) => return Err(err.into()),
        }
    }
    state.service.delete(&scope, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
