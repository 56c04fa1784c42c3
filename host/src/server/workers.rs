//! The worker pool: `WORKERS` tasks that claim pending exports (with a lease
//! on the export row) and run them through [`ExportService::run_claimed`], which
//! renews the lease while the pipeline runs on a blocking thread; plus the
//! periodic cleanup pass, and a lease sweep every heartbeat interval (so an
//! export whose daemon was killed goes back to the queue within about a
//! lease, not a whole `CLEANUP_INTERVAL`).
//!
//! Stopping ([`WorkerPool::shutdown`]): no new claims; running exports get
//! a grace period to finish; those still running then are released back to
//! `pending` ([`ExportService::release_claim`]) for
//! the next daemon to take.

use crate::records::ExportId;
use crate::server::metrics::Metrics;
use crate::service::ExportService;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// How long an idle worker sleeps before looking at the queue again (new
/// work created through this daemon wakes it at once).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long a worker waits after a database error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Signals shared by the workers and the API.
#[derive(Debug)]
pub struct Signals {
    /// Woken when an export is created: an idle worker claims it at once.
    pub new_work: Notify,
    /// Bumped when an export of this daemon reaches an end (or is
    /// cancelled): long-polling requests re-read their record.
    pub finished: watch::Sender<u64>,
}

impl Signals {
    /// Fresh signals.
    pub fn new() -> Signals {
        Signals {
            new_work: Notify::new(),
            finished: watch::channel(0).0,
        }
    }

    /// Tells long-polling requests that some export changed.
    pub fn export_changed(&self) {
        self.finished.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Default for Signals {
    fn default() -> Self {
        Signals::new()
    }
}

/// Which export each busy worker runs.
type Running = Arc<Mutex<HashMap<String, ExportId>>>;

/// The running pool.
#[derive(Debug)]
pub struct WorkerPool {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
    running: Running,
    service: ExportService,
}

impl WorkerPool {
    /// Starts `workers` workers named `<prefix>-<n>` and the cleanup task
    /// (every `cleanup_interval`).
    pub fn start(
        service: ExportService,
        signals: Arc<Signals>,
        metrics: Arc<Metrics>,
        workers: usize,
        prefix: &str,
        cleanup_interval: Duration,
    ) -> WorkerPool {
        let (stop, _) = watch::channel(false);
        let running: Running = Arc::default();
        let mut tasks = JoinSet::new();
        for n in 1..=workers.max(1) {
            let worker = format!("{prefix}-{n}");
            tasks.spawn(work(
                service.clone(),
                signals.clone(),
                metrics.clone(),
                worker,
                stop.subscribe(),
                running.clone(),
            ));
        }
        tasks.spawn(cleanup(service.clone(), cleanup_interval, stop.subscribe()));
        tracing::info!(workers, "workers started");
        WorkerPool {
            tasks,
            stop,
            running,
            service,
        }
    }

    /// Stops claiming, waits up to `grace` for running exports, then
    /// releases the unfinished ones back to `pending` and stops the tasks.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop.send_replace(true);
        let busy = lock(&self.running).len();
        tracing::info!(busy, grace_s = grace.as_secs(), "stopping workers");
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_ok() {
            tracing::info!("workers stopped; every running export finished");
            return;
        }
        let unfinished: Vec<(String, ExportId)> = lock(&self.running).drain().collect();
        for (worker, id) in unfinished {
            match self.service.release_claim(&id, &worker).await {
                Ok(_) => {
                    tracing::info!(export_id = %id, worker, "released an unfinished export back to the queue")
                }
                Err(err) => {
                    tracing::warn!(export_id = %id, worker, error = %err, "cannot release an export; its lease will expire and it will be retried")
                }
            }
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn lock(running: &Running) -> std::sync::MutexGuard<'_, HashMap<String, ExportId>> {
    running.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn work(
    service: ExportService,
    signals: Arc<Signals>,
    metrics: Arc<Metrics>,
    worker: String,
    mut stop: watch::Receiver<bool>,
    running: Running,
) {
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        match service.claim_next(&worker).await {
            Ok(Some(claimed)) => {
                let id = claimed.id.clone();
                lock(&running).insert(worker.clone(), id.clone());
                let outcome = service.run_claimed(claimed, &worker).await;
                lock(&running).remove(&worker);
                if let Ok(record) = &outcome {
                    metrics.export_finished(record);
                }
                signals.export_changed();
                match outcome {
                    Ok(record) => {
                        tracing::debug!(export_id = %id, worker, status = %record.status, "export run ended")
                    }
                    Err(err) => {
                        tracing::warn!(export_id = %id, worker, error = %err, "cannot record an export's outcome; its lease will expire and it will be retried")
                    }
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = stop.changed() => {}
                    () = signals.new_work.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Err(err) => {
                tracing::warn!(worker, error = %err, "claiming work failed; retrying");
                tokio::select! {
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(ERROR_BACKOFF) => {}
                }
            }
        }
    }
}

async fn cleanup(service: ExportService, every: Duration, mut stop: watch::Receiver<bool>) {
    let every = every.max(Duration::from_secs(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sweep_every = service.settings().heartbeat.max(Duration::from_secs(1));
    let mut sweeper =
        tokio::time::interval_at(tokio::time::Instant::now() + sweep_every, sweep_every);
    sweeper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticker.tick() => {
                if let Err(err) = service.cleanup_pass(service.now()).await {
                    tracing::warn!(error = %err, "cleanup pass failed; the next one retries");
                }
            }
            _ = sweeper.tick() => {
                if let Err(err) = service.requeue_expired_leases(service.now()).await {
                    tracing::warn!(error = %err, "lease sweep failed; the next one retries");
                }
            }
        }
        if *stop.borrow() {
            break;
        }
    }
}
