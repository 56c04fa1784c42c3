//! Running a claimed export: pipeline on a blocking thread, lease renewed
//! from the async side, the file committed and then recorded.
//!
//! Faults are attributed: before calling into its plugins the run asks the
//! records whether the export's user may use them (quarantine is decided
//! from the faults in the database, shared by every daemon), marks on the
//! export's row that it is inside them (so a daemon that dies there is
//! known to have died there), and records a worker fault against the
//! plugin and the user before failing the export.

use super::{credential_label, later, recorded_caller, ExportService, ServiceError};
use crate::pipeline::{
    self, Compression, ExportRequest, ExportRun, ExportRunError, PreparedExport, RunError,
    RunProgress, RunSummary,
};
use crate::plugins::LoadedPlugin;
use crate::records::{
    Completion, ExportId, ExportRecord, NewPluginFault, Progress, QuarantinePolicy,
    QuarantineState, RecordError, Scope,
};
use crate::storage::{keys, Committed, StorageError, StorageKey, Upload};
use serde_json::{json, Value};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a running export's progress is written to its record.
const PROGRESS_PERIOD: Duration = Duration::from_secs(1);

/// How long a called-off run (cancelled, or its lease lost) gets to notice
/// at its next write before its worker moves on without it. A loader that
/// blocks for long (a slow query, a file that never grows) would otherwise
/// keep the worker, and the exports queued behind it, waiting.
const CALLED_OFF_GRACE: Duration = Duration::from_secs(2);

/// The run's latest figures, written by the pipeline's thread after each
/// batch and read by the publishing tick.
struct ProgressCounters {
    rows: AtomicU64,
    bytes: AtomicU64,
    /// The loader's share of its input read, as `f64` bits;
    /// [`ProgressCounters::NO_FRACTION`] while it has told none.
    fraction: AtomicU64,
}

impl Default for ProgressCounters {
    fn default() -> Self {
        ProgressCounters {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            fraction: AtomicU64::new(Self::NO_FRACTION),
        }
    }
}

impl ProgressCounters {
    const NO_FRACTION: u64 = u64::MAX;

    fn store(&self, progress: RunProgress) {
        self.rows.store(progress.rows, Ordering::Relaxed);
        self.bytes.store(progress.bytes, Ordering::Relaxed);
        let fraction = progress.fraction.map_or(Self::NO_FRACTION, f64::to_bits);
        self.fraction.store(fraction, Ordering::Relaxed);
    }

    fn fraction(&self) -> Option<f64> {
        match self.fraction.load(Ordering::Relaxed) {
            Self::NO_FRACTION => None,
            bits => Some(f64::from_bits(bits)),
        }
    }
}

/// An [`Upload`] that refuses further writes once its export is called off
/// (cancelled, or the lease lost): the pipeline stops at its next write.
struct Cancellable {
    inner: Upload,
    stop: Arc<AtomicBool>,
}

impl Cancellable {
    fn check(&self) -> io::Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(io::Error::other(
                "the export was called off (cancelled, or its lease was lost)",
            ))
        } else {
            Ok(())
        }
    }
}

impl Write for Cancellable {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

/// Why the blocking part of a run failed.
#[derive(Debug, thiserror::Error)]
enum TaskFailure {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot start the output: {0}")]
    Sink(io::Error),
    #[error("{0}")]
    Commit(StorageError),
}

/// What the run's metadata says about the plugins and the file.
struct Described {
    metadata: Value,
    mime_type: String,
    extension: String,
}

fn describe(prepared: &PreparedExport) -> Described {
    let loader = &prepared.loader_plugin;
    let formatter = &prepared.formatter_plugin;
    let (mime_type, extension) = match prepared.compression {
        None => (
            prepared.formatter.mime_type.clone(),
            prepared.formatter.extension.clone(),
        ),
        Some(compression) => (
            compression_mime(compression).to_owned(),
            format!(
                "{}.{}",
                prepared.formatter.extension,
                compression.extension()
            ),
        ),
    };
    let metadata = json!({
        "loader": {
            "plugin": loader.name,
            "name": prepared.loader.name,
            "version": loader.manifest().version,
        },
        "format": {
            "plugin": formatter.name,
            "name": prepared.formatter.name,
            "version": formatter.manifest().version,
            "mime_type": prepared.formatter.mime_type,
            "extension": prepared.formatter.extension,
        },
        "compression": prepared.compression,
        "file_extension": extension,
    });
    Described {
        metadata,
        mime_type,
        extension,
    }
}

/// The plugins an export calls into: its loader's and its formatter's.
struct Plugins {
    loader: Arc<LoadedPlugin>,
    formatter: Arc<LoadedPlugin>,
}

impl Plugins {
    fn of(prepared: &PreparedExport) -> Plugins {
        Plugins {
            loader: prepared.loader_plugin.clone(),
            formatter: prepared.formatter_plugin.clone(),
        }
    }

    /// Each plugin once.
    fn distinct(&self) -> Vec<&Arc<LoadedPlugin>> {
        if self.loader.name == self.formatter.name {
            vec![&self.loader]
        } else {
            vec![&self.loader, &self.formatter]
        }
    }

    fn names(&self) -> Vec<&str> {
        self.distinct()
            .into_iter()
            .map(|plugin| plugin.name.as_str())
            .collect()
    }

    fn find(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.distinct()
            .into_iter()
            .find(|plugin| plugin.name == name)
    }
}

/// The quarantine policy `plugin`'s table sets (`quarantine_after`,
/// `quarantine_window`, `quarantine_users`).
pub fn quarantine_policy(plugin: &LoadedPlugin) -> QuarantinePolicy {
    let worker = &plugin.entry().worker;
    QuarantinePolicy {
        after: worker.quarantine_after,
        window: worker.quarantine_window,
        users: worker.quarantine_users,
    }
}

/// The MIME type of a compressed file.
pub fn compression_mime(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => "application/gzip",
        Compression::Zstd => "application/zstd",
    }
}

/// The data's schema as JSON: `{"fields": [{"name", "data_type", "nullable"}]}`.
fn schema_json(summary: &RunSummary) -> Value {
    let fields: Vec<Value> = summary
        .schema
        .fields()
        .iter()
        .map(|field| {
            json!({
                "name": field.name(),
                "data_type": field.data_type().to_string(),
                "nullable": field.is_nullable(),
            })
        })
        .collect();
    json!({ "fields": fields })
}

fn millis(delta: chrono::TimeDelta) -> i64 {
    delta.num_milliseconds().max(0)
}

impl ExportService {
    /// Claims the oldest pending export for `worker` and runs it. `None`
    /// when the queue is empty. The record returned is the export's final
    /// state (`completed` or `failed`; `cancelled` when it was cancelled
    /// while running).
    pub async fn run_next(&self, worker: &str) -> Result<Option<ExportRecord>, ServiceError> {
        let claimed = self
            .records
            .claim_next(worker, self.settings.lease, self.now())
            .await?;
        match claimed {
            Some(claimed) => self.run_claimed(claimed, worker).await.map(Some),
            None => Ok(None),
        }
    }

    /// Claims the oldest pending export for `worker` with a lease of
    /// [`ServiceSettings::lease`](super::ServiceSettings::lease) without
    /// running it (the caller runs it with [`run_claimed`](Self::run_claimed)); `None` when
    /// the queue is empty.
    pub async fn claim_next(&self, worker: &str) -> Result<Option<ExportRecord>, ServiceError> {
        Ok(self
            .records
            .claim_next(worker, self.settings.lease, self.now())
            .await?)
    }

    /// Gives the export `id` that `worker` claimed but will not finish back
    /// to the queue (`pending`) for another worker to take.
    pub async fn release_claim(
        &self,
        id: &ExportId,
        worker: &str,
    ) -> Result<ExportRecord, ServiceError> {
        Ok(self.records.release(id, worker, self.now()).await?)
    }

    /// Claims the pending export `id` for `worker` and runs it; `None` when
    /// it is not pending (another worker took it, or it was cancelled).
    pub async fn run_export(
        &self,
        id: &ExportId,
        worker: &str,
    ) -> Result<Option<ExportRecord>, ServiceError> {
        let claimed = self
            .records
            .claim(id, worker, self.settings.lease, self.now())
            .await?;
        match claimed {
            Some(claimed) => self.run_claimed(claimed, worker).await.map(Some),
            None => Ok(None),
        }
    }

    /// Runs an export `worker` has claimed (`processing`, leased to it).
    ///
    /// Export failures (bad input, plugin errors, `MAX_ROWS`,
    /// `MAX_FILE_SIZE_MB`, timeouts, storage errors) end the export `failed`
    /// with the reason and leave no file; they are not errors of this call,
    /// which returns the failed record. An `Err` means the outcome could not
    /// be recorded (the database failed); the lease then runs out and the
    /// export is retried.
    pub async fn run_claimed(
        &self,
        claimed: ExportRecord,
        worker: &str,
    ) -> Result<ExportRecord, ServiceError> {
        let id = claimed.id.clone();
        let started_at = claimed.started_at.unwrap_or_else(|| self.now());
        let request = ExportRequest {
            loader: claimed.loader.clone(),
            format: claimed.format.clone(),
            selector: claimed.selector.clone(),
            options: claimed.options.clone(),
            callback_url: None,
        };
        let caller = recorded_caller(&claimed);
        tracing::info!(export_id = %id, worker, user = %claimed.user_id, credential = %credential_label(&caller), "export claimed");
        // A plugin still loading (the daemon just started) is waited for.
        let registry = self.registry_when_loaded(&id, worker, &request).await;
        let prepared = match pipeline::prepare(&registry, &request, Some(caller.clone())) {
            Ok(prepared) => prepared,
            Err(err) => return self.fail(&id, worker, &err.to_string()).await,
        };
        if let Some(refusal) = self.quarantine_refusal(&prepared, &claimed.user_id).await? {
            return self.fail(&id, worker, &refusal).await;
        }
        let described = describe(&prepared);
        let key_extension = if claimed.attempts > 1 {
            format!("r{}.{}", claimed.attempts, described.extension)
        } else {
            described.extension.clone()
        };
        let key = match keys::export_key(&claimed.user_id, id.as_str(), &key_extension) {
            Ok(key) => key,
            Err(err) => {
                let message = format!("cannot name the export's file: {err}");
                return self.fail(&id, worker, &message).await;
            }
        };
        let upload = match self.storage.begin(&key) {
            Ok(upload) => upload,
            Err(err) => return self.fail(&id, worker, &err.to_string()).await,
        };

        let stop = Arc::new(AtomicBool::new(false));
        let writer = Cancellable {
            inner: upload,
            stop: stop.clone(),
        };
        let limits = self.settings.run_limits();
        let plugins = Plugins::of(&prepared);
        // Written before the first call: a daemon that dies inside the
        // plugins is then known to have died there.
        self.mark_in_plugins(&id, worker, Some(plugins.names().as_slice()))
            .await;
        let (left, mut left_plugins) = tokio::sync::oneshot::channel::<()>();
        let counters = Arc::new(ProgressCounters::default());
        let counted = counters.clone();
        let run_started = std::time::Instant::now();
        let mut task =
            tokio::task::spawn_blocking(move || -> Result<(Committed, RunSummary), TaskFailure> {
                // On error the upload is dropped inside the run: the
                // temporary file goes, nothing is visible.
                let ran = ExportRun::new(&prepared, limits)
                    .hashed()
                    .into_writer(writer, &mut |progress| counted.store(progress));
                let _ = left.send(());
                let (writer, summary) = ran.map_err(|err| match err {
                    ExportRunError::Start(err) => TaskFailure::Sink(err),
                    ExportRunError::Run(err) => TaskFailure::Run(err),
                    ExportRunError::Finish(err) => TaskFailure::Run(RunError::Output(err)),
                })?;
                let committed = writer.inner.commit().map_err(TaskFailure::Commit)?;
                Ok((committed, summary))
            });

        // Renew the lease while the pipeline runs.
        let period = self.settings.heartbeat;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Progress goes to the record at most once a second, and only when
        // it moved: one small UPDATE, whatever the batch rate.
        let mut publish = tokio::time::interval_at(
            tokio::time::Instant::now() + PROGRESS_PERIOD,
            PROGRESS_PERIOD,
        );
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut published = None;
        let mut lost: Option<RecordError> = None;
        let mut abandon_at: Option<tokio::time::Instant> = None;
        let mut inside = true;
        let joined = loop {
            tokio::select! {
                joined = &mut task => break Some(joined),
                _ = tokio::time::sleep_until(abandon_at.unwrap_or_else(tokio::time::Instant::now)), if abandon_at.is_some() => break None,
                _ = publish.tick(), if lost.is_none() => {
                    let rows = counters.rows.load(Ordering::Relaxed);
                    let fraction = counters.fraction();
                    if published != Some((rows, fraction)) {
                        let progress = Progress::new(
                            rows,
                            counters.bytes.load(Ordering::Relaxed),
                            run_started.elapsed().as_secs_f64(),
                        )
                        .with_fraction(fraction);
                        match self.records.publish_progress(&id, worker, &progress, self.now()).await {
                            Ok(_) => published = Some((rows, fraction)),
                            // Not worth failing an export over: the next
                            // tick tries again, and the heartbeat watches the lease.
                            Err(err) => tracing::debug!(export_id = %id, worker, error = %err, "publishing progress failed"),
                        }
                    }
                }
                left = &mut left_plugins, if inside => {
                    inside = false;
                    if left.is_ok() && lost.is_none() {
                        self.mark_in_plugins(&id, worker, None).await;
                    }
                }
                _ = ticker.tick(), if lost.is_none() => {
                    let now = self.now();
                    let until = later(now, self.settings.lease);
                    match self.records.heartbeat(&id, worker, until, now).await {
                        Ok(()) => {}
                        Err(err @ (RecordError::LeaseLost { .. } | RecordError::NotFound { .. })) => {
                            tracing::info!(export_id = %id, worker, reason = %err, "stopping the export");
                            stop.store(true, Ordering::Relaxed);
                            lost = Some(err);
                            abandon_at = Some(tokio::time::Instant::now() + CALLED_OFF_GRACE);
                        }
                        Err(err) => {
                            tracing::warn!(export_id = %id, worker, error = %err, "renewing the lease failed; retrying");
                        }
                    }
                }
            }
        };
        let Some(joined) = joined else {
            // The blocking task keeps running until its next write fails
            // (its upload is then dropped, and nothing is stored); the
            // record already says how the export ended.
            tracing::warn!(
                export_id = %id,
                worker,
                "the export was called off, but its plugins are still busy; leaving them to stop at their next write"
            );
            return self.current(&id).await;
        };
        let finished_at = self.now();

        let (committed, summary) = match joined {
            Ok(Ok(done)) => done,
            Ok(Err(failure)) => {
                if lost.is_some() {
                    return self.current(&id).await;
                }
                if let TaskFailure::Run(run_error) = &failure {
                    self.record_fault(&claimed, &plugins, run_error, &failure.to_string())
                        .await;
                }
                return self.fail(&id, worker, &failure.to_string()).await;
            }
            Err(join_error) => {
                if lost.is_some() {
                    return self.current(&id).await;
                }
                let message = format!("the export stopped unexpectedly in the host: {join_error}");
                return self.fail(&id, worker, &message).await;
            }
        };

        let mut metadata = described.metadata;
        if let Value::Object(map) = &mut metadata {
            map.insert("schema".to_owned(), schema_json(&summary));
            map.insert(
                "timings".to_owned(),
                json!({
                    "queued_ms": millis(started_at - claimed.created_at),
                    "run_ms": i64::try_from(summary.elapsed.as_millis()).unwrap_or(i64::MAX),
                }),
            );
            map.insert(
                "formatted_bytes".to_owned(),
                json!(summary.output.formatted_bytes),
            );
            map.insert("attempt".to_owned(), json!(claimed.attempts));
            if let (Some(notes), Some(Value::Object(loader))) =
                (&summary.loader_notes, map.get_mut("loader"))
            {
                loader.insert("notes".to_owned(), Value::Object(notes.clone()));
            }
            map.insert("caller".to_owned(), json!(caller));
        }
        let completion = Completion {
            storage_key: committed.key.to_string(),
            mime_type: described.mime_type,
            size_bytes: i64::try_from(summary.output.stored_bytes).unwrap_or(i64::MAX),
            row_count: i64::try_from(summary.rows).unwrap_or(i64::MAX),
            sha256: summary.output.sha256.clone().unwrap_or_default(),
            metadata,
            expires_at: Some(later(finished_at, self.settings.expiration)),
            // All of the input was read: a loader that told how far it
            // was ends at 1; one that never told stays unknown.
            progress: Progress::new(
                summary.rows,
                summary.output.formatted_bytes,
                summary.elapsed.as_secs_f64(),
            )
            .with_fraction(summary.loader_told_fraction.then_some(1.0)),
        };
        match self
            .records
            .complete(&id, worker, &completion, finished_at)
            .await
        {
            Ok(record) => Ok(record),
            Err(err) => {
                // The file is this attempt's alone; with no record pointing
                // at it, it must go.
                self.discard_unrecorded(&committed.key).await;
                match err {
                    RecordError::LeaseLost { .. } | RecordError::IllegalTransition { .. } => {
                        tracing::info!(export_id = %id, worker, reason = %err, "export finished after it was called off; output discarded");
                        self.current(&id).await
                    }
                    other => Err(other.into()),
                }
            }
        }
    }

    /// Records the failure of `id` (held by `worker`) and returns the record.
    async fn fail(
        &self,
        id: &ExportId,
        worker: &str,
        message: &str,
    ) -> Result<ExportRecord, ServiceError> {
        tracing::warn!(export_id = %id, worker, error = message, "export failed");
        match self
            .records
            .fail(id, Some(worker), message, self.now())
            .await
        {
            Ok(record) => Ok(record),
            // Called off meanwhile: its current state stands.
            Err(RecordError::LeaseLost { .. } | RecordError::IllegalTransition { .. }) => {
                self.current(id).await
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Why `user` may not run `prepared` now: the first of its plugins
    /// quarantined for them (for everyone, or on their own faults).
    async fn quarantine_refusal(
        &self,
        prepared: &PreparedExport,
        user: &str,
    ) -> Result<Option<String>, ServiceError> {
        let now = self.now();
        for plugin in Plugins::of(prepared).distinct() {
            let policy = quarantine_policy(plugin);
            let state = self
                .records
                .quarantine_for(&plugin.name, Some(&plugin.sha256), user, &policy, now)
                .await?;
            if let Some(refusal) = state.refusal(&plugin.name, user, &policy) {
                tracing::warn!(plugin = %plugin.name, user, "export refused: {refusal}");
                return Ok(Some(refusal));
            }
        }
        Ok(None)
    }

    /// The quarantine of `plugin` under its table's policy, for listings.
    pub async fn plugin_quarantine(
        &self,
        plugin: &LoadedPlugin,
    ) -> Result<QuarantineState, ServiceError> {
        let policy = quarantine_policy(plugin);
        Ok(self
            .records
            .plugin_quarantine(&plugin.name, Some(&plugin.sha256), &policy, self.now())
            .await?)
    }

    /// Writes which plugins the export is inside (`None`: none). A failure
    /// only loses the attribution of a death there, so it is logged.
    async fn mark_in_plugins(&self, id: &ExportId, worker: &str, plugins: Option<&[&str]>) {
        if let Err(err) = self
            .records
            .mark_in_plugins(id, worker, plugins, self.now())
            .await
        {
            tracing::warn!(export_id = %id, worker, error = %err, "cannot note which plugin the export is calling; a daemon dying inside it would not be attributed");
        }
    }

    /// Records the fault behind `run_error` (a worker that crashed, hung,
    /// broke the protocol or exited; a plugin that ran past its timeout)
    /// against its plugin and the export's user, before the export is
    /// failed, so the next claim already sees it.
    async fn record_fault(
        &self,
        claimed: &ExportRecord,
        plugins: &Plugins,
        run_error: &RunError,
        message: &str,
    ) {
        let (plugin, cause) = match run_error {
            RunError::Fault { plugin, fault, .. } if fault.counts_towards_quarantine() => {
                (plugin, fault.label())
            }
            RunError::Timeout { plugin, .. } => (plugin, "timeout"),
            _ => return,
        };
        let Some(found) = plugins.find(plugin) else {
            return;
        };
        let fault = NewPluginFault {
            plugin,
            sha256: Some(&found.sha256),
            user_id: &claimed.user_id,
            cause,
            message,
            export_id: Some(&claimed.id),
        };
        let keep = found.entry().worker.quarantine_window;
        if let Err(err) = self
            .records
            .record_plugin_fault(&fault, keep, self.now())
            .await
        {
            tracing::warn!(export_id = %claimed.id, plugin = %plugin, error = %err, "cannot record a plugin fault; it does not count towards quarantine");
        }
    }

    async fn current(&self, id: &ExportId) -> Result<ExportRecord, ServiceError> {
        Ok(self.records.get(&Scope::Admin, id).await?)
    }

    /// Deletes a committed file that could not be recorded, unless a
    /// completed record points at it after all (a commit whose answer was
    /// lost); if that cannot be told, the file stays for the orphan sweep.
    async fn discard_unrecorded(&self, key: &StorageKey) {
        self.delete_dead_file(key.as_str()).await;
    }
}
