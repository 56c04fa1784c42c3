//! `/healthz`, `/readyz`, `/metrics` and the JSON 404 for unknown routes.

use crate::records::health::fault_cause;
use crate::records::DaemonBeat;
use crate::server::error::ApiError;
use crate::server::AppState;
use crate::service::ExportService;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "health", operation_id = "getOpenApi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(crate::server::openapi())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "getLiveness",
    responses((status = 200, description = "Alive", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Prometheus metrics (OpenMetrics text): exports by status, queue depth,
/// finished exports, rows, bytes, durations, downloads, plugin load failures.
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "getMetrics",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 503, description = "The database does not answer", body = crate::server::error::ErrorBody),
    ))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = state.metrics.scrape(&state.service).await.map_err(|err| {
        tracing::warn!(error = %err, "metrics: the database does not answer");
        ApiError::unavailable("the database does not answer")
    })?;
    Ok((
        [(header::CONTENT_TYPE, crate::server::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response())
}

/// Readiness: started, not stopping, the database takes writes and the
/// storage takes files; a 503 names each cause (docs/operations.md).
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready", body = Object),
        (status = 503, description = "Starting, stopping, or the database or storage cannot be written (the message names why)", body = crate::server::error::ErrorBody),
    ))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::SeqCst) {
        return Err(ApiError::unavailable(
            "not ready: starting up or shutting down",
        ));
    }
    if let Err(causes) = state.readiness.check(&state.service).await {
        return Err(ApiError::unavailable(format!(
            "not ready: {}",
            causes.join("; ")
        )));
    }
    // Still serving, but in-process plugin threads that cannot be stopped
    // hold cores: say so, so an operator restarts the daemon.
    let runaway = crate::pipeline::plugin_threads::runaway_threads();
    let degraded = runaway >= crate::pipeline::plugin_threads::runaway_degraded_at();
    let summary = state.service.readiness_summary();
    Ok(Json(json!({
        "status": if degraded { "degraded" } else { "ready" },
        "runaway_threads": runaway,
        "plugins": summary.plugins,
        "plugins_loading": summary.plugins_loading,
        "storage": summary.storage,
        "daemon": state.readiness.daemon().id,
    })))
}

/// How long a write probe's outcome is reused: readiness is polled often
/// (load balancers, systemd), and a write per poll would be wasteful.
pub const PROBE_CACHE: Duration = Duration::from_secs(1);

/// How long a write probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Ready, or one line per cause.
type Verdict = Result<(), Vec<String>>;

/// The daemon's readiness checks, shared by `/readyz` and the watchdog.
///
/// Cheap checks run every time: the storage directories exist and are
/// writable, and (SQLite) the database path still names the file the
/// daemon opened. The write probes run at most once per [`PROBE_CACHE`]
/// and callers in between share the outcome: one heartbeat row upserted in
/// the database (`daemons`) and one small file written to the storage and
/// removed.
#[derive(Debug)]
pub struct Readiness {
    daemon: DaemonBeat,
    last: tokio::sync::Mutex<Option<(Instant, Verdict)>>,
}

impl Readiness {
    /// Readiness of the daemon `daemon`.
    pub fn new(daemon: DaemonBeat) -> Readiness {
        Readiness {
            daemon,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Readiness of this process: `<hostname>-<pid>`, started now.
    pub fn for_this_process() -> Readiness {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "host".to_owned());
        let pid = std::process::id();
        Readiness::new(DaemonBeat {
            id: format!("{hostname}-{pid}"),
            hostname,
            pid,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: chrono::Utc::now(),
        })
    }

    /// This daemon's heartbeat identity.
    pub fn daemon(&self) -> &DaemonBeat {
        &self.daemon
    }

    /// `Ok` when ready, else one line per cause.
    pub async fn check(&self, service: &ExportService) -> Result<(), Vec<String>> {
        let mut causes = Vec::new();
        if let Err(err) = service.check_storage().await {
            causes.push(format!("storage: {err}"));
        }
        if let Err(err) = service.check_records_file() {
            causes.push(format!("database: {}", fault_cause(&err)));
        }
        if !causes.is_empty() {
            tracing::warn!(causes = %causes.join("; "), "not ready");
            return Err(causes);
        }
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = last.as_ref() {
            if at.elapsed() < PROBE_CACHE {
                return outcome.clone();
            }
        }
        let outcome = self.probe(service).await;
        if let Err(causes) = &outcome {
            tracing::warn!(causes = %causes.join("; "), "not ready");
        }
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }

    async fn probe(&self, service: &ExportService) -> Result<(), Vec<String>> {
        let database = async {
            match tokio::time::timeout(
                PROBE_TIMEOUT,
                service.probe_write(&self.daemon),
            )
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(format!("database: {}", fault_cause(&err))),
                Err(_) => Err(format!(
                    "database: a one-row write did not finish within {PROBE_TIMEOUT:?} (the database is locked, overloaded or unreachable)"
                )),
            }
        };
        let storage = async {
            match tokio::time::timeout(PROBE_TIMEOUT, service.probe_storage()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(format!("storage: {err}")),
                Err(_) => Err(format!(
                    "storage: writing a small file did not finish within {PROBE_TIMEOUT:?}"
                )),
            }
        };
        let (database, storage) = tokio::join!(database, storage);
        let causes: Vec<String> = [database, storage]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if causes.is_empty() {
            Ok(())
        } else {
            Err(causes)
        }
    }
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
