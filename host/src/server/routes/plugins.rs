//! `GET /v1/plugins`.

use crate::server::auth::Caller;
use crate::server::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Loaded plugins with their loaders and formatters (and schemas), plus
/// disabled plugins and load failures.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses(
        (status = 200, description = "`{plugins, disabled, failed}`: each loaded plugin with its loaders and formatters and their schemas", body = Object),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<AppState>>, _caller: Caller) -> Json<Value> {
    let registry = state.service.registry();
    let loaded: Vec<Value> = registry
        .plugins()
        .iter()
        .map(|plugin| {
            let manifest = plugin.manifest();
            json!({
                "name": plugin.name,
                "version": manifest.version,
                "api_version": manifest.api_version,
                "description": manifest.description,
                "isolation": plugin.isolation.as_str(),
                "sha256": plugin.sha256,
                "status": "loaded",
                "loaders": manifest.loaders,
                "formatters": manifest.formatters,
            })
        })
        .collect();
    let disabled: Vec<Value> = registry
        .disabled()
        .iter()
        .map(|entry| json!({"name": entry.name, "status": "disabled"}))
        .collect();
    let failed: Vec<Value> = registry
        .failures()
        .iter()
        .map(|failure| {
            json!({
                "name": failure.name,
                "status": "failed",
                "cause": failure.cause.as_str(),
                "reason": failure.reason,
            })
        })
        .collect();
    Json(json!({"plugins": loaded, "disabled": disabled, "failed": failed}))
}
