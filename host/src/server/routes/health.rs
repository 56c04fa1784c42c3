//! `/healthz`, `/readyz`, `/metrics` and the JSON 404 for unknown routes.

use crate::server::error::ApiError;
use crate::server::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(crate::server::openapi())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Prometheus metrics (OpenMetrics text): exports by status, queue depth,
/// finished exports, rows, bytes, durations, downloads, plugin load failures.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 503, description = "The database does not answer", body = crate::server::error::ErrorBody),
    ))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = state
        .metrics
        .scrape(state.service.records(), &state.service.registry())
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "metrics: the database does not answer");
            ApiError::unavailable("the database does not answer")
        })?;
    Ok((
        [(header::CONTENT_TYPE, crate::server::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response())
}

/// Readiness: started, not stopping, the database answers and the storage is reachable.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Object),
        (status = 503, description = "Starting, stopping, or the database or storage is unreachable", body = crate::server::error::ErrorBody),
    ))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::SeqCst) {
        return Err(ApiError::unavailable(
            "not ready: starting up or shutting down",
        ));
    }
    let (database, storage) = tokio::join!(
        state.service.records().ping(),
        state.service.storage().check()
    );
    let mut down = Vec::new();
    if let Err(err) = database {
        tracing::warn!(error = %err, "readiness: the database does not answer");
        down.push("the database does not answer");
    }
    if let Err(err) = storage {
        tracing::warn!(error = %err, "readiness: the storage is unreachable");
        down.push("the storage is unreachable");
    }
    if !down.is_empty() {
        return Err(ApiError::unavailable(format!(
            "not ready: {}",
            down.join("; ")
        )));
    }
    Ok(Json(json!({
        "status": "ready",
        "plugins": state.service.registry().plugins().len(),
        "storage": state.service.storage().describe(),
    })))
}

/// Any other route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}; the API is under /v1", uri.path()),
    )
}

/// A known route asked with a method it does not have.
pub async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; GET /v1/openapi.json lists the routes",
            uri.path()
        ),
    )
}
