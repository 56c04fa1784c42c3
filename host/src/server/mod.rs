//! `export-host serve`: the HTTP API on axum, the worker pool
//! ([`workers`]) and a graceful stop (docs/architecture.md, "Layers of the
//! host" and "The path of an export").
//!
//! Routes (every `/v1` route needs `Authorization: Bearer <token>`, an API
//! token or, with `JWT_*` set, a JWT ([`auth`], [`jwt`]), except a download
//! through a signed link):
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/exports` | 202 and the record (200 once it has ended); `?wait=SECONDS` (at most [`MAX_WAIT`]) holds the answer until the export ends |
//! | `GET /v1/exports/{id}` | the record |
//! | `GET /v1/exports` | `{items, next_cursor}`; `status`, `loader`, `format`, `limit`, `cursor` |
//! | `DELETE /v1/exports/{id}` | cancels an active export (200 and the record), deletes a finished one and its file (204) |
//! | `GET /v1/exports/{id}/events` | Server-Sent Events: `status`, `progress`, a last `end`, each with the record; `Last-Event-ID` resumes ([`routes::events`]) |
//! | `GET /v1/exports/{id}/download` | the file, streamed; `Range`, `ETag`/`If-None-Match`; counts the download |
//! | `POST /v1/exports/{id}/link` | `{ttl}` -> `{url, expires_at}` |
//! | `GET /v1/plugins` | loaded plugins, their components and schemas |
//! | `GET /v1/openapi.json` | the OpenAPI 3.1 document, generated from the handlers' annotations |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (503 until started, or while the database or storage is unreachable) |
//! | `GET /metrics` | Prometheus metrics, no token ([`metrics`]) |
//! | `GET /`, `GET /console/{file}` | the web console's page and files, no token, under a strict CSP ([`console`]) |
//!
//! Errors are `{"error": {"code", "message"}}` ([`error::ApiError`]).
//! Another user's export answers 404 exactly like a missing one: every
//! query runs in the caller's [`Scope`](crate::records::Scope).
//!
//! Stopping (SIGTERM or SIGINT): the listener closes, workers stop claiming,
//! running exports get `SHUTDOWN_GRACE` to finish, the rest go back to
//! `pending`; the process exits 0.
//!
//! Under systemd ([`systemd`]): `READY=1` once serving, `STOPPING=1` when a
//! stop begins, `WATCHDOG=1` heartbeats while the database answers.
//!
//! Start-up never waits on a plugin: plugins load in the background, each
//! within its `load_timeout`, and are `loading` until then. A request that
//! needs one answers 503 with `Retry-After`; a queued export that needs one
//! waits for it in its worker.
//!
//! Hot reload ([`plugin_watch`]): an edited plugins.toml or an added,
//! replaced or removed library is applied within seconds; SIGHUP reloads
//! at once. Running exports keep the plugin instance they started with.

pub mod auth;
pub mod console;
pub mod error;
pub mod jwt;
pub mod listener;
pub mod metrics;
pub mod plugin_watch;
pub mod routes;
pub mod systemd;
pub mod workers;

use crate::config::HostSettings;
use crate::plugins::{LiveRegistry, PluginsConfig, Registry};
use crate::records::Records;
use crate::service::{self, ExportService, ServiceSettings};
use crate::storage;
use auth::Signer;
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use workers::{Signals, WorkerPool};

/// The longest `?wait=` honoured.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// Largest request body accepted (413 past it).
pub const MAX_BODY: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The export service.
    pub service: ExportService,
    /// Signs and checks download links.
    pub signer: Signer,
    /// Worker wake-ups and end-of-export notices.
    pub signals: Arc<Signals>,
    /// Set once the daemon serves and its workers run.
    pub ready: AtomicBool,
    /// Set when a stop was asked for: long polls answer at once.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// What `GET /metrics` answers.
    pub metrics: Arc<metrics::Metrics>,
    /// The readiness checks of `/readyz` and the watchdog.
    pub readiness: routes::health::Readiness,
    /// Verifies JWT bearer tokens; `None` when `JWT_*` is unset.
    pub jwt: Option<jwt::JwtVerifier>,
    /// The base of the links handed out (`PUBLIC_URL`), no trailing slash.
    pub public_url: String,
}

impl AppState {
    /// State over a service, a link signer, a JWT verifier and the public
    /// base URL, not ready yet.
    pub fn new(
        service: ExportService,
        signer: Signer,
        jwt: Option<jwt::JwtVerifier>,
        public_url: String,
    ) -> AppState {
        AppState {
            service,
            signer,
            jwt,
            public_url,
            signals: Arc::new(Signals::new()),
            ready: AtomicBool::new(false),
            stopping: tokio::sync::watch::channel(false).0,
            metrics: Arc::new(metrics::Metrics::new()),
            readiness: routes::health::Readiness::for_this_process(),
        }
    }
}

/// The OpenAPI document's frame: info, the bearer scheme, shared schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "export-host",
        description = "Exports from plugin loaders to files in plugin formats."
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody, error::ErrorDetail))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("eht_ token")
                    .description(Some(
                        "An API token (`eht_` and 64 hex digits) from `export-host token create`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT from your auth server, accepted when JWT_SECRET or JWT_JWKS is set; \
                         the user is its JWT_USER_CLAIM claim (default `sub`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every operation that accepts an API token accepts a JWT as well: the
/// `jwt` scheme is added beside each `bearer` requirement, so no route can
/// name one and forget the other.
fn add_jwt_alternative(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::SecurityRequirement;
    let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
    let jwt = SecurityRequirement::new("jwt", Vec::<String>::new());
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            if let Some(security) = operation.security.as_mut() {
                if security.contains(&bearer) && !security.contains(&jwt) {
                    let at = security
                        .iter()
                        .position(|r| *r == bearer)
                        .map_or(0, |i| i + 1);
                    security.insert(at, jwt.clone());
                }
            }
        }
    }
}

/// The routes and the OpenAPI document generated from their annotations:
/// a route cannot be added without appearing in the document.
fn api() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::exports::create, routes::exports::list))
        .routes(routes!(routes::exports::show, routes::exports::remove))
        .routes(routes!(routes::events::stream))
        .routes(routes!(routes::downloads::download))
        .routes(routes!(routes::downloads::link))
        .routes(routes!(routes::plugins::list))
        .routes(routes!(routes::health::openapi_json))
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
        .split_for_parts();
    add_jwt_alternative(&mut doc);
    (router, doc)
}

/// The OpenAPI document of the API (served at `GET /v1/openapi.json`).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| api().1)
}

/// The API's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let (routes, _) = api();
    routes
        .merge(console::router())
        .fallback(routes::health::not_found)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot read the plugins: {0}")]
    Plugins(#[source] anyhow::Error),
    #[error(transparent)]
    Records(#[from] crate::records::RecordError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    SigningKey(#[from] auth::SigningKeyError),
    #[error(transparent)]
    Jwt(#[from] jwt::JwtSetupError),
    #[error(
        "cannot listen on {addr} (LISTEN): {source}; pick a free address or stop what holds it"
    )]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install the signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    #[error(transparent)]
    Webhooks(#[from] crate::service::webhooks::delivery::StartError),
    /// A setting the service parses (`STORAGE`, `WEBHOOK_*`); the CLI
    /// checks them before serving, so only a library caller meets this.
    #[error(transparent)]
    Setting(#[from] crate::config::SettingError),
}

/// Runs the daemon until SIGTERM or SIGINT, then stops gracefully.
pub async fn serve(settings: &HostSettings) -> Result<(), ServeError> {
    let config = PluginsConfig::load(&settings.plugins)
        .map_err(|err| ServeError::Plugins(anyhow::Error::new(err)))?;
    // The plugins load in the background, each bounded by its
    // `load_timeout`: the daemon serves (and tells systemd it is ready)
    // without waiting, and a request for a plugin still loading is
    // answered 503 with Retry-After.
    let (registry, loads) = Registry::start_loading(&config);
    if !loads.is_empty() {
        tracing::info!(plugins = loads.len(), "loading plugins in the background");
    }
    let plugins = Arc::new(LiveRegistry::new(Arc::new(registry)));
    plugins.load_in_background(loads);
    let listener_settings = listener::ListenerSettings::from_guards(&settings.guards);
    listener::raise_descriptor_limit();
    let records = Records::connect(&settings.database_url).await?;
    let storage = storage::open_location(&service::storage_location(settings)?)?;
    let signer = Signer::from_settings(settings)?;
    let jwt = jwt::JwtVerifier::from_settings(&settings.jwt).await?;
    let service_settings = ServiceSettings::from_host(settings)?;
    // The daemon keeps its own handle on the live registry for reloads.
    let service =
        ExportService::with_live_registry(records, storage, plugins.clone(), service_settings);

    // Leases of a daemon that died go back to the queue before any claim.
    match service.requeue_expired_leases(service.now()).await {
        Ok((requeued, failed)) if requeued + failed > 0 => {
            tracing::info!(requeued, failed, "swept stale leases")
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "sweeping stale leases failed"),
    }
    // Partial uploads of a daemon that died: nobody holds their lock, so
    // they go now rather than after the stale-upload age.
    match service.purge_stale_uploads().await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "removed partial uploads of a stopped daemon"),
        Err(err) => tracing::warn!(error = %err, "removing partial uploads failed"),
    }

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: settings.listen,
            source,
        })?;
    if settings.public_url.is_none() && settings.listen.ip().is_unspecified() {
        tracing::warn!(listen = %settings.listen, "download links name the listen address, which clients cannot reach; set PUBLIC_URL");
    }
    let state = Arc::new(AppState::new(
        service.clone(),
        signer,
        jwt,
        settings.public_url(),
    ));
    let worker_prefix = format!("{}-{}", hostname(), std::process::id());
    let pool = WorkerPool::start(
        service.clone(),
        state.signals.clone(),
        state.metrics.clone(),
        settings.workers,
        &worker_prefix,
        settings.cleanup_interval,
    );
    let webhooks = crate::service::webhooks::DeliveryLoop::start(
        service.clone(),
        state.signals.finished.subscribe(),
    )?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Signals)?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(ServeError::Signals)?;
    // Without a handler SIGHUP would kill the daemon (`systemctl reload`).
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(ServeError::Signals)?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let app = router(state.clone());
    let mut server = tokio::spawn(listener::serve(
        listener,
        app,
        listener_settings,
        state.metrics.clone(),
        shutdown_rx,
    ));
    state.ready.store(true, Ordering::SeqCst);
    let local = settings.listen;
    // Opens ISA-L now, so the log says at start which deflate gzip runs on.
    let gzip = crate::pipeline::compress::GzipEngine::preferred();
    tracing::info!(listen = %local, gzip = ?gzip, "serving");
    eprintln!("export-host: serving on http://{local}");
    systemd::ready();
    let watchdog = systemd::spawn_watchdog(state.clone());
    let reloader = plugin_watch::Reloader::start(plugins, &settings.plugins);

    let early = loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); break None }
            _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); break None }
            _ = hangup.recv() => reloader.reload_now(),
            joined = &mut server => break Some(joined),
        }
    };
    systemd::stopping();
    reloader.stop();
    state.ready.store(false, Ordering::SeqCst);
    state.stopping.send_replace(true);
    let _ = shutdown_tx.send(true);
    let grace = settings.guards.shutdown_grace;
    pool.shutdown(grace).await;
    webhooks.shutdown().await;
    let result = match early {
        Some(joined) => joined,
        None => match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
            Ok(joined) => joined,
            Err(_) => {
                tracing::info!("requests still open after the stop; closing them");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    service.close().await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(ServeError::Http(err)),
        Err(join) => Err(ServeError::Http(std::io::Error::other(join.to_string()))),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}
