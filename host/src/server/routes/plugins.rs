//! `GET /v1/plugins`.

use crate::isolation::PluginState;
use crate::server::auth::Caller;
use crate::server::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Loaded plugins with their loaders and formatters (and schemas), plus
/// disabled plugins and load failures. A loaded plugin's `status` is
/// `loaded` or `quarantined` (its isolated workers kept crashing; see
/// `quarantined_until`), and `last_fault` is its most recent worker fault.
/// `reload_failed` (`{at, cause, reason}`, else null) says the latest reload
/// could not load its new file or table, so the instance listed (loaded
/// before) keeps serving.
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
            let status = plugin.status();
            let quarantined_until = match &status {
                PluginState::Quarantined { until, .. } => {
                    Some(humantime::format_rfc3339_seconds(*until).to_string())
                }
                PluginState::Loaded => None,
            };
            let reload_failed = registry.reload_failure(&plugin.name).map(|failure| {
                json!({
                    "at": humantime::format_rfc3339_seconds(failure.at).to_string(),
                    "cause": failure.cause.as_str(),
                    "reason": failure.reason,
                })
            });
            let last_fault = plugin.last_fault().map(|fault| {
                json!({
                    "at": humantime::format_rfc3339_seconds(fault.at).to_string(),
                    "kind": fault.kind,
                    "message": fault.message,
                })
            });
            json!({
                "name": plugin.name,
                "version": manifest.version,
                "api_version": manifest.api_version,
                "description": manifest.description,
                "isolation": plugin.isolation.as_str(),
                "sandbox": crate::isolation::sandbox::for_plugin(plugin.isolation).map(|s| s.to_json()),
                "sha256": plugin.sha256,
                "status": status.as_str(),
                "quarantined_until": quarantined_until,
                "last_fault": last_fault,
                "reload_failed": reload_failed,
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
