//! `GET /v1/plugins`.

use crate::server::auth::Caller;
use crate::server::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Loaded plugins with their loaders and formatters (and schemas), plus
/// disabled plugins and load failures. A loaded plugin's `status` is
/// `quarantined` when the caller may not use it (held for everyone, or on
/// the caller's own faults; see `quarantined_until`), else `loaded`;
/// `quarantine` is `{global: {until, users, faults} | null, users_held,
/// faults, caller_held}` (plus `users` for admins), read from the database
/// every daemon shares, and `last_fault` is its most recent fault.
/// `reload_failed` (`{at, cause, reason}`, else null) says the latest reload
/// could not load its new file or table, so the instance listed (loaded
/// before) keeps serving. `loading` lists the plugins whose load (started
/// with the daemon) has not ended yet.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", operation_id = "listPlugins",
    responses(
        (status = 200, description = "`{plugins, loading, disabled, failed}`: each loaded plugin with its loaders and formatters and their schemas", body = Object),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> Json<Value> {
    let overview = state.service.plugins_overview();
    let mut loaded: Vec<Value> = Vec::new();
    for plugin in overview.loaded().iter() {
        let manifest = plugin.manifest();
        // Quarantine lives in the database: every daemon answers the same.
        let quarantine = match state.service.plugin_quarantine(plugin).await {
            Ok(quarantine) => Some(quarantine),
            Err(err) => {
                tracing::warn!(plugin = %plugin.name, error = %err, "cannot read the plugin's quarantine; listing it without");
                None
            }
        };
        let user = caller.0.user.as_str();
        let held_until = quarantine.as_ref().and_then(|q| q.held_until(user));
        let status = if held_until.is_some() {
            "quarantined"
        } else {
            plugin.status().as_str()
        };
        let reload_failed = overview.reload_failure(&plugin.name).map(|failure| {
            json!({
                "at": humantime::format_rfc3339_seconds(failure.at).to_string(),
                "cause": failure.cause.as_str(),
                "reason": failure.reason,
            })
        });
        let recorded_fault = quarantine
            .as_ref()
            .and_then(|q| q.last.as_ref())
            .map(|fault| {
                json!({
                    "at": rfc3339(fault.at),
                    "kind": fault.cause,
                    "message": fault.message,
                })
            });
        let last_fault = recorded_fault.or_else(|| {
            plugin.last_fault().map(|fault| {
                json!({
                    "at": humantime::format_rfc3339_seconds(fault.at).to_string(),
                    "kind": fault.kind,
                    "message": fault.message,
                })
            })
        });
        let quarantine = quarantine.map(|q| {
            let mut summary = json!({
                "global": q.global.as_ref().map(|hold| json!({
                    "until": rfc3339(hold.until),
                    "users": hold.users,
                    "faults": hold.faults,
                })),
                "users_held": q.users_held.len(),
                "faults": q.faults,
                "caller_held": q.holds(user),
            });
            // Who is held is for admins; a user learns only about themself.
            if caller.0.admin {
                summary["users"] = json!(q
                    .users_held
                    .iter()
                    .map(|hold| json!({"user": hold.user_id, "faults": hold.faults, "until": rfc3339(hold.until)}))
                    .collect::<Vec<_>>());
            }
            summary
        });
        loaded.push(json!({
            "name": plugin.name,
            "version": manifest.version,
            "api_version": manifest.api_version,
            "description": manifest.description,
            "isolation": plugin.isolation.as_str(),
            "sandbox": crate::isolation::sandbox::for_plugin(plugin.isolation).map(|s| s.to_json()),
            "sha256": plugin.sha256,
            "status": status,
            "quarantined_until": held_until.map(rfc3339),
            "quarantine": quarantine,
            "last_fault": last_fault,
            "reload_failed": reload_failed,
            "loaders": manifest.loaders,
            "formatters": manifest.formatters,
        }));
    }
    let disabled: Vec<Value> = overview
        .disabled()
        .iter()
        .map(|entry| json!({"name": entry.name, "status": "disabled"}))
        .collect();
    let failed: Vec<Value> = overview
        .failed()
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
    // Loads still running since start-up: `loaded` or `failed` within
    // their `load_timeout`.
    let loading: Vec<Value> = overview
        .loading()
        .iter()
        .map(|plugin| {
            json!({
                "name": plugin.name,
                "status": "loading",
                "isolation": plugin.isolation.as_str(),
                "since": humantime::format_rfc3339_seconds(plugin.since).to_string(),
                "load_timeout_s": plugin.load_timeout.as_secs_f64(),
            })
        })
        .collect();
    Json(json!({"plugins": loaded, "loading": loading, "disabled": disabled, "failed": failed}))
}

/// `2026-01-01T10:00:00Z`.
fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
