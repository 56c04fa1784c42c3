//! `/healthz`, `/readyz` and the JSON 404 for unknown routes.

use crate::server::error::ApiError;
use crate::server::AppState;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Liveness: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: started, not stopping, and the database answers.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::SeqCst) {
        return Err(ApiError::unavailable(
            "not ready: starting up or shutting down",
        ));
    }
    if let Err(err) = state.service.records().ping().await {
        tracing::warn!(error = %err, "readiness: the database does not answer");
        return Err(ApiError::unavailable("the database does not answer"));
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
