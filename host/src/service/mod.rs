//! The export service: the one place that turns requests into records and
//! records into files (docs/architecture.md, "The path of an export").
//!
//! [`ExportService`] ties the [`Records`] (the export lifecycle),
//! the [`Storage`] (where files live) and the plugin [`Registry`] together:
//!
//! - [`ExportService::create`] checks a request against the plugins'
//!   schemas ([`pipeline::prepare`]), returns an identical completed export
//!   of the same user made within `CACHE_TTL_MINUTES` when there is one,
//!   enforces `MAX_PER_USER`, and records the request as `pending`.
//! - [`ExportService::run_next`] (a worker) claims the oldest pending export
//!   with a lease and [runs](ExportService::run_claimed) it: loader -> formatter ->
//!   sink (counting rows and bytes against `MAX_ROWS` and
//!   `MAX_FILE_SIZE_MB`, compressing, hashing) -> an [`Upload`] that only
//!   becomes visible when committed. The pipeline runs on a blocking thread
//!   while the async side renews the lease; a lost lease (the export was
//!   cancelled, or requeued and taken over) stops the run and discards its
//!   output. Success commits the file, then records it; failure discards the
//!   upload and records the reason.
//! - [`ExportService::get`], [`list`](ExportService::list),
//!   [`cancel`](ExportService::cancel), [`delete`](ExportService::delete)
//!   (the record, then its file) and
//!   [`record_download`](ExportService::record_download) (an open stream,
//!   its name and MIME type).
//! - [`ExportService::cleanup_pass`] (see [`cleanup`]): expiry, purge,
//!   orphan files, stale uploads and lost leases.
//! - What the daemon asks besides exports: token checks
//!   ([`verify_token`](ExportService::verify_token)), readiness checks and
//!   write probes, the numbers behind `/metrics`, and read-only views of
//!   the plugins ([`PluginsOverview`], [`PluginAddresses`]). The daemon
//!   never reaches past the service to its records, storage or registry.
//!
//! Time comes from a [`Clock`], so tests decide what time it is.
//!
//! Storage keys are `u/<user hash>/<export id>.<ext>` for an export's first
//! attempt and `u/<user hash>/<export id>.r<attempt>.<ext>` for retries: two
//! attempts of one export (a lost lease taken over while the first worker is
//! still writing) never write the same key, so discarding one attempt's file
//! can never touch the file another attempt recorded.

pub mod cleanup;
mod health;
mod plugins;
mod run;
mod settings;
pub mod webhooks;

pub use cleanup::CleanupReport;
pub use health::ReadinessSummary;
pub use plugins::{PluginAddresses, PluginsOverview};
pub use run::quarantine_policy;
pub use settings::{check_settings, storage_location, ServiceSettings};

use crate::pipeline::{self, ExportRequest, RequestError};
use crate::plugins::{LiveRegistry, Registry, ResolveError};
use crate::records::{
    Admission, ExportId, ExportRecord, ListFilter, NewExport, Page, Principal, Quota, RecordError,
    Records, Scope, Status,
};
use crate::storage::{self, keys, DownloadHeaders, Storage, StorageError, StorageKey};
use chrono::{DateTime, TimeDelta, Utc};
use export_plugin_api::{Caller, Credential};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What time it is. [`system_clock`] in production; tests pass their own.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is wrong: unknown loader or format, a selector or options
    /// that fail their schema, an empty user. The requester's to fix.
    #[error("{0}")]
    Invalid(String),
    /// The user has `MAX_PER_USER` active exports already.
    #[error(
        "user {user:?} already has {active} active exports, the most allowed \
         (MAX_PER_USER = {limit}); wait for one to finish or cancel one, then try again"
    )]
    QuotaExceeded {
        /// The user.
        user: String,
        /// Their pending and processing exports.
        active: u64,
        /// `MAX_PER_USER`.
        limit: u32,
    },
    /// The user has this many records stored already (failed ones count).
    #[error(
        "user {user:?} already has {stored} stored export records, the most kept per user \
         ({limit}); delete finished ones (DELETE /v1/exports/{{id}}) or wait for them to be \
         purged, then try again"
    )]
    StoredLimit {
        /// The user.
        user: String,
        /// Their records.
        stored: u64,
        /// The limit.
        limit: u64,
    },
    /// A plugin the request needs is still loading (the daemon started
    /// moments ago): the same request succeeds once it has loaded.
    #[error("{0}")]
    PluginLoading(String),
    /// A records operation failed (not found, illegal transition, database).
    #[error(transparent)]
    Records(#[from] RecordError),
    /// A storage operation failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ServiceError {
    /// Whether the caller can fix it by changing the request (HTTP 4xx,
    /// exit code 2).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            ServiceError::Invalid(_)
                | ServiceError::Records(
                    RecordError::NotFound { .. }
                        | RecordError::InvalidCursor { .. }
                        | RecordError::InvalidInput { .. }
                )
        )
    }
}

/// A completed export opened for download.
pub struct ExportDownload {
    /// The record, with the download counted.
    pub record: ExportRecord,
    /// The name to offer (sanitised; for `Content-Disposition` only).
    pub file_name: String,
    /// The MIME type to send.
    pub mime_type: String,
    /// A ready `Content-Disposition` header value.
    pub content_disposition: String,
    /// The bytes.
    pub download: storage::Download,
}

impl fmt::Debug for ExportDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportDownload")
            .field("id", &self.record.id)
            .field("file_name", &self.file_name)
            .field("mime_type", &self.mime_type)
            .field("download", &self.download)
            .finish_non_exhaustive()
    }
}

/// The export service. Cheap to clone: every part is a shared handle.
#[derive(Clone)]
pub struct ExportService {
    records: Records,
    storage: Arc<dyn Storage>,
    plugins: Arc<LiveRegistry>,
    settings: ServiceSettings,
    clock: Clock,
}

impl fmt::Debug for ExportService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportService")
            .field("records", &self.records)
            .field("storage", &self.storage)
            .field("plugins", &self.plugins)
            .field("settings", &self.settings)
            .finish()
    }
}

impl ExportService {
    /// A service over these parts, on the wall clock.
    pub fn new(
        records: Records,
        storage: Arc<dyn Storage>,
        registry: Arc<Registry>,
        settings: ServiceSettings,
    ) -> ExportService {
        ExportService {
            records,
            storage,
            plugins: Arc::new(LiveRegistry::new(registry)),
            settings,
            clock: system_clock(),
        }
    }

    /// The same service on another clock.
    pub fn with_clock(mut self, clock: Clock) -> ExportService {
        self.clock = clock;
        self
    }

    /// The records.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The plugins as they are now: a snapshot that a reload never changes
    /// (see [`LiveRegistry::current`]).
    pub(crate) fn registry(&self) -> Arc<Registry> {
        self.plugins.current()
    }

    /// A service over a live registry made beforehand (the daemon starts
    /// its plugins' background loads before the database is open).
    pub fn with_live_registry(
        records: Records,
        storage: Arc<dyn Storage>,
        plugins: Arc<LiveRegistry>,
        settings: ServiceSettings,
    ) -> ExportService {
        ExportService {
            records,
            storage,
            plugins,
            settings,
            clock: system_clock(),
        }
    }

    /// [`ServiceError::PluginLoading`] when the loader or the format of
    /// `request` may be offered by a plugin still loading; nothing else is
    /// checked.
    pub fn check_loading(&self, request: &ExportRequest) -> Result<(), ServiceError> {
        let registry = self.registry();
        for found in [
            registry.loader(&request.loader).err(),
            registry.formatter(&request.format).err(),
        ] {
            if let Some(err @ ResolveError::Loading { .. }) = found {
                return Err(ServiceError::PluginLoading(err.to_string()));
            }
        }
        Ok(())
    }

    /// The registry to run the claimed export `id` with. While a plugin
    /// its `request` may need is still loading, waits for that load to end
    /// (bounded by the plugin's `load_timeout`), renewing `worker`'s lease
    /// meanwhile, so the export runs once the plugin is there rather than
    /// failing. Stops waiting when the lease is lost (the export was
    /// cancelled).
    pub(crate) async fn registry_when_loaded(
        &self,
        id: &ExportId,
        worker: &str,
        request: &ExportRequest,
    ) -> Arc<Registry> {
        let mut changed = self.plugins.subscribe();
        let period = self.settings.heartbeat.max(Duration::from_millis(100));
        let mut beat = tokio::time::Instant::now() + period;
        let mut logged = false;
        loop {
            let registry = self.registry();
            let waiting = [
                registry.loader(&request.loader).err(),
                registry.formatter(&request.format).err(),
            ]
            .into_iter()
            .flatten()
            .find(|err| matches!(err, ResolveError::Loading { .. }));
            let Some(waiting) = waiting else {
                return registry;
            };
            if !logged {
                tracing::info!(export_id = %id, worker, reason = %waiting, "export waits for its plugin to load");
                logged = true;
            }
            tokio::select! {
                seen = changed.changed() => {
                    if seen.is_err() {
                        // No more changes can come: let the run decide.
                        return registry;
                    }
                }
                () = tokio::time::sleep_until(beat) => {
                    beat += period;
                    let now = self.now();
                    let until = later(now, self.settings.lease);
                    match self.records.heartbeat(id, worker, until, now).await {
                        Ok(()) => {}
                        Err(RecordError::LeaseLost { .. } | RecordError::NotFound { .. }) => {
                            return registry;
                        }
                        Err(err) => {
                            tracing::warn!(export_id = %id, worker, error = %err, "renewing the lease failed; retrying");
                        }
                    }
                }
            }
        }
    }

    /// The live registry, for the daemon's reloads.
    pub fn plugins(&self) -> &Arc<LiveRegistry> {
        &self.plugins
    }

    /// The settings.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// What time the service's clock says it is.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Records a request of `user`: validated against the plugins' schemas;
    /// an identical completed export of the same user created within
    /// `CACHE_TTL_MINUTES` is returned instead when there is one (so reuse
    /// never counts against the quota); otherwise refused past
    /// `MAX_PER_USER` active exports, else recorded as `pending` with the
    /// loader and format resolved to `plugin/name`.
    pub async fn create(
        &self,
        user: &str,
        request: &ExportRequest,
    ) -> Result<ExportRecord, ServiceError> {
        self.create_for(&Caller::user(user), request).await
    }

    /// [`create`](Self::create) for a verified caller: the export belongs to
    /// `caller.user`, the loader's validate check runs for the caller before
    /// anything is recorded, and the record keeps who asked
    /// (`metadata.caller`), which the run hands to the loader.
    pub async fn create_for(
        &self,
        caller: &Caller,
        request: &ExportRequest,
    ) -> Result<ExportRecord, ServiceError> {
        let user = caller.user.as_str();
        pipeline::check_sizes(request, &self.settings.size_limits)
            .map_err(|err| ServiceError::Invalid(err.to_string()))?;
        if user.trim().is_empty() {
            return Err(ServiceError::Invalid(
                "the user id is empty: every export belongs to a user".to_owned(),
            ));
        }
        let prepared =
            pipeline::prepare(&self.registry(), request, Some(caller.clone())).map_err(|err| {
                match err {
                    RequestError::Resolve(err @ ResolveError::Loading { .. }) => {
                        ServiceError::PluginLoading(err.to_string())
                    }
                    other => ServiceError::Invalid(other.to_string()),
                }
            })?;
        // The check may call into a worker process: off the async runtime.
        let prepared = tokio::task::spawn_blocking(move || prepared.validate().map(|()| prepared))
            .await
            .map_err(|err| ServiceError::Invalid(format!("the loader's check stopped: {err}")))?
            .map_err(|err| ServiceError::Invalid(err.to_string()))?;
        let loader = prepared.loader_address();
        let format = prepared.formatter_address();
        let hash = caller_bound_hash(
            request_hash(&loader, &format, &request.selector, &request.options),
            caller,
        );
        let callback_url = self
            .check_callback(request.callback_url.as_deref())
            .map_err(|refusal| ServiceError::Invalid(refusal.to_string()))?;
        let now = self.now();
        // A request with a callback always runs: a reused export's end was
        // announced (or not) to whoever asked first.
        if let Some(ttl) = self.settings.cache_ttl.filter(|_| callback_url.is_none()) {
            let since = earlier(now, ttl);
            if let Some(existing) = self.records.find_reusable(user, &hash, since, now).await? {
                tracing::info!(export_id = %existing.id, user, "identical request within CACHE_TTL_MINUTES: reusing the export");
                return Ok(existing);
            }
        }
        let new = NewExport {
            user_id: user.to_owned(),
            loader,
            format,
            selector: request.selector.clone(),
            options: request.options.clone(),
            file_name: prepared.file_name.clone(),
            request_hash: Some(hash),
            expires_at: None,
            metadata: json!({ "caller": caller }),
            callback_url,
        };
        let quota = Quota {
            max_active: self.settings.max_per_user,
            max_stored: self.settings.max_stored_per_user,
        };
        let record = match self.records.insert_within(new, &quota, now).await? {
            Admission::Recorded(record) => *record,
            Admission::TooManyActive { active } => {
                return Err(ServiceError::QuotaExceeded {
                    user: user.to_owned(),
                    active,
                    limit: self.settings.max_per_user,
                })
            }
            Admission::TooManyStored { stored } => {
                return Err(ServiceError::StoredLimit {
                    user: user.to_owned(),
                    stored,
                    limit: self.settings.max_stored_per_user,
                })
            }
        };
        tracing::info!(export_id = %record.id, user, credential = %credential_label(caller), "export requested");
        Ok(record)
    }

    /// The record `id` as `scope` sees it.
    pub async fn get(&self, scope: &Scope, id: &ExportId) -> Result<ExportRecord, ServiceError> {
        Ok(self.records.get(scope, id).await?)
    }

    /// One page of records, newest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Page, ServiceError> {
        Ok(self.records.list(filter).await?)
    }

    /// Cancels a pending or processing export; a worker running it stops at
    /// its next heartbeat and discards its output.
    pub async fn cancel(&self, scope: &Scope, id: &ExportId) -> Result<ExportRecord, ServiceError> {
        Ok(self.records.cancel(scope, id, self.now()).await?)
    }

    /// Deletes a finished export: the record first, then its file (a file
    /// whose deletion fails has no record any more, and the orphan sweep
    /// removes it).
    pub async fn delete(&self, scope: &Scope, id: &ExportId) -> Result<(), ServiceError> {
        if let Some(key) = self.records.delete(scope, id).await? {
            self.delete_dead_file(&key).await;
        }
        Ok(())
    }

    /// Opens a completed, unexpired export for download and counts the
    /// download.
    pub async fn record_download(
        &self,
        scope: &Scope,
        id: &ExportId,
    ) -> Result<ExportDownload, ServiceError> {
        self.record_download_range(scope, id, None).await
    }

    /// [`record_download`](Self::record_download) of part of the file:
    /// `range` is `(offset, len)` in bytes (an HTTP `Range`); `None` is the
    /// whole file. The download's `size` is what the stream yields.
    pub async fn record_download_range(
        &self,
        scope: &Scope,
        id: &ExportId,
        range: Option<(u64, u64)>,
    ) -> Result<ExportDownload, ServiceError> {
        let record = self.records.get(scope, id).await?;
        let key = match (&record.status, &record.storage_key) {
            (Status::Completed, Some(key)) => StorageKey::parse(key).map_err(StorageError::from)?,
            // Not downloadable: the records layer says why.
            _ => {
                self.records.record_download(scope, id, self.now()).await?;
                return Err(RecordError::Conflict {
                    id: id.to_string(),
                    reason: format!(
                        "it is {}; only a completed export can be downloaded",
                        record.status
                    ),
                }
                .into());
            }
        };
        // Opened first: an open download is pinned even if cleanup deletes
        // the key right after.
        let download = match range {
            Some((offset, len)) => self.storage.open_range(&key, offset, len).await?,
            None => self.storage.open(&key).await?,
        };
        let record = self.records.record_download(scope, id, self.now()).await?;
        let file_name = download_file_name(&record);
        let mime_type = record
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        Ok(ExportDownload {
            content_disposition: keys::content_disposition(&file_name),
            file_name,
            mime_type,
            record,
            download,
        })
    }

    /// Whether downloads of completed exports are handed off to the
    /// storage's own URLs ([`presign_download`](Self::presign_download))
    /// rather than streamed through the daemon.
    pub fn redirects_downloads(&self) -> bool {
        self.storage.redirects_downloads()
    }

    /// A URL from which a client may fetch the stored file `key` directly
    /// for `ttl`, served with `headers`; `None` when the storage does not
    /// hand downloads off.
    pub async fn presign_download(
        &self,
        key: &StorageKey,
        ttl: Duration,
        headers: &DownloadHeaders,
    ) -> Result<Option<String>, ServiceError> {
        Ok(self.storage.download_url(key, ttl, headers).await?)
    }

    /// The principal an API token (`eht_...`) speaks for, as of the
    /// service's clock; `None` for a malformed, unknown or revoked token.
    /// Notes the use.
    pub async fn verify_token(&self, token: &str) -> Result<Option<Principal>, ServiceError> {
        Ok(self.records.verify_token(token, self.now()).await?)
    }

    /// Closes the database connections; call once, when nothing will use
    /// the service any more.
    pub async fn close(&self) {
        self.records.close().await;
    }

    /// Deletes the file under `key` unless a completed record points at it.
    /// Failures are logged: an unrecorded file is left to the orphan sweep.
    async fn delete_dead_file(&self, key: &str) -> Removal {
        let parsed = match StorageKey::parse(key) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::warn!(key, error = %err, "a record holds a storage key the host does not make; its file is left alone");
                return Removal::Failed;
            }
        };
        match self.records.is_key_live(key).await {
            Ok(false) => {}
            Ok(true) => {
                tracing::warn!(key, "not deleting a file a completed export points to");
                return Removal::Live;
            }
            Err(err) => {
                tracing::warn!(key, error = %err, "cannot check whether a file is still recorded; leaving it for the next cleanup");
                return Removal::Failed;
            }
        }
        match self.storage.delete(&parsed).await {
            Ok(()) => Removal::Deleted,
            Err(err) => {
                tracing::warn!(key, error = %err, "deleting a file failed; the next cleanup retries");
                Removal::Failed
            }
        }
    }
}

/// What became of a file the host meant to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Gone.
    Deleted,
    /// Kept: a completed record points at it.
    Live,
    /// Still there: deleting or checking it failed (logged).
    Failed,
}

/// The request hash: SHA-256 (hex) of the canonical JSON (object keys
/// sorted, no spaces) of `{loader, format, selector, options}`, with the
/// loader and format as resolved `plugin/name` addresses and the options as
/// given (compression and file name included).
pub fn request_hash(loader: &str, format: &str, selector: &Value, options: &Value) -> String {
    let mut document = Map::new();
    document.insert("format".to_owned(), Value::String(format.to_owned()));
    document.insert("loader".to_owned(), Value::String(loader.to_owned()));
    document.insert("options".to_owned(), options.clone());
    document.insert("selector".to_owned(), selector.clone());
    let mut text = String::new();
    canonical_json(&Value::Object(document), &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The request hash for `caller`: what an admin or a JWT with claims sees
/// may differ from what the same user id sees otherwise, so their exports
/// are reused only by an identical caller.
fn caller_bound_hash(hash: String, caller: &Caller) -> String {
    if !caller.admin && caller.claims().is_none() {
        return hash;
    }
    let mut text = hash;
    text.push('|');
    canonical_json(
        &json!({ "admin": caller.admin, "claims": caller.claims() }),
        &mut text,
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Who asked, for logs: `token tok_...`, `jwt <issuer> <subject>`, `operator`.
pub fn credential_label(caller: &Caller) -> String {
    match &caller.credential {
        Credential::Token { id } => format!("token {id}"),
        Credential::Jwt {
            issuer, subject, ..
        } => format!(
            "jwt {} {}",
            issuer.as_deref().unwrap_or("-"),
            subject.as_deref().unwrap_or("-")
        ),
        Credential::Operator => "operator".to_owned(),
    }
}

/// The caller an export was recorded for (`metadata.caller`). A record
/// without one (made before callers were recorded) runs as its owner with
/// no admin rights: never more than the owner could see.
pub fn recorded_caller(record: &ExportRecord) -> Caller {
    record
        .metadata
        .get("caller")
        .and_then(|value| serde_json::from_value::<Caller>(value.clone()).ok())
        .filter(|caller| caller.user == record.user_id)
        .unwrap_or_else(|| Caller::user(&record.user_id))
}

/// Writes `value` as JSON with every object's keys sorted, whatever order
/// the map keeps.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (n, (key, value)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The extension of a completed export's file (`csv`, `csv.gz`), from its
/// metadata, else from its storage key.
/// The name a download is saved under: the request's `file_name`,
/// sanitised, else the export id with its format's extension.
pub fn download_file_name(record: &ExportRecord) -> String {
    let fallback = format!("{}.{}", record.id, file_extension(record));
    keys::sanitize_file_name(record.file_name.as_deref().unwrap_or(""), &fallback)
}

fn file_extension(record: &ExportRecord) -> String {
    if let Some(ext) = record
        .metadata
        .get("file_extension")
        .and_then(Value::as_str)
    {
        return ext.to_owned();
    }
    let last = record
        .storage_key
        .as_deref()
        .and_then(|key| key.rsplit('/').next())
        .unwrap_or("");
    let rest = last
        .strip_prefix(record.id.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or("");
    // Drop a retry marker (`r2.`).
    let rest = match rest.split_once('.') {
        Some((head, tail))
            if head.len() > 1
                && head.starts_with('r')
                && head[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            tail
        }
        _ => rest,
    };
    if rest.is_empty() {
        "bin".to_owned()
    } else {
        rest.to_owned()
    }
}

/// `now + by`, saturating far in the future.
pub(crate) fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|by| now.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `now - by`, saturating far in the past.
pub(crate) fn earlier(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|by| now.checked_sub_signed(by))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_request_hash_ignores_key_order_but_not_values() {
        let a = request_hash(
            "csv/csv",
            "csv/csv",
            &json!({"path": "a.csv", "limit": 3}),
            &json!({"compression": "gzip", "delimiter": ";"}),
        );
        let b = request_hash(
            "csv/csv",
            "csv/csv",
            &serde_json::from_str(r#"{"limit": 3, "path": "a.csv"}"#).unwrap(),
            &serde_json::from_str(r#"{"delimiter": ";", "compression": "gzip"}"#).unwrap(),
        );
        assert_eq!(a, b);
        let c = request_hash(
            "csv/csv",
            "csv/csv",
            &json!({"path": "a.csv", "limit": 3}),
            &json!({"compression": "zstd", "delimiter": ";"}),
        );
        assert_ne!(a, c);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let mut out = String::new();
        canonical_json(&json!({"b": [{"z": 1, "a": "x\"y"}], "a": null}), &mut out);
        assert_eq!(out, r#"{"a":null,"b":[{"a":"x\"y","z":1}]}"#);
    }
}
