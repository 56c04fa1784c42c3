//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format
//! (which Prometheus scrapes natively), built with `prometheus-client`.
//!
//! Gauges read at scrape time: exports by status and the queue depth (one
//! `GROUP BY status` query,
//! [`ExportService::export_counts_by_status`]), plugin load failures by
//! cause. Counters bumped as things happen: exports finished by this daemon
//! (by status, with rows, bytes and a duration histogram) and downloads
//! served.

use crate::plugins::FailureCause;
use crate::records::{ExportRecord, RecordError, Status};
use crate::service::ExportService;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Duration histogram buckets, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

type Labels = Vec<(&'static str, String)>;

/// The daemon's metrics and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    exports: Family<Labels, Gauge>,
    queue_depth: Gauge,
    plugin_load_failures: Family<Labels, Gauge>,
    plugin_refusals: Family<Labels, Counter>,
    finished: Family<Labels, Counter>,
    rows_written: Counter,
    bytes_written: Counter,
    duration: Histogram,
    downloads: Counter,
    write_failures: Counter,
    database_up: Gauge,
    connections_shed: Family<Labels, Counter>,
    connections_open: Gauge,
    runaway_threads: Gauge,
}

impl Metrics {
    /// Every metric, registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let exports = Family::<Labels, Gauge>::default();
        let queue_depth = Gauge::default();
        let plugin_load_failures = Family::<Labels, Gauge>::default();
        let plugin_refusals = Family::<Labels, Counter>::default();
        let finished = Family::<Labels, Counter>::default();
        let rows_written = Counter::default();
        let bytes_written = Counter::default();
        let duration = Histogram::new(DURATION_BUCKETS);
        let downloads = Counter::default();
        let write_failures = Counter::default();
        let database_up = Gauge::default();
        let connections_shed = Family::<Labels, Counter>::default();
        let connections_open = Gauge::default();
        let runaway_threads = Gauge::default();
        registry.register(
            "export_host_exports",
            "Export records by status",
            exports.clone(),
        );
        registry.register(
            "export_host_queue_depth",
            "Exports waiting for a worker",
            queue_depth.clone(),
        );
        registry.register(
            "export_host_plugin_load_failures",
            "Plugins that did not load, by cause (a failed reload that kept the serving instance counts)",
            plugin_load_failures.clone(),
        );
        registry.register(
            "export_host_plugin_refusals",
            "Plugin loads refused since start (broken or half-copied library, failed probe, checksum, config), by cause",
            plugin_refusals.clone(),
        );
        registry.register(
            "export_host_exports_finished",
            "Exports this daemon ran to an end, by status",
            finished.clone(),
        );
        registry.register(
            "export_host_rows_written",
            "Rows written by completed exports",
            rows_written.clone(),
        );
        registry.register(
            "export_host_bytes_written",
            "Bytes stored by completed exports",
            bytes_written.clone(),
        );
        registry.register(
            "export_host_export_duration_seconds",
            "Time from start to end of the exports this daemon ran",
            duration.clone(),
        );
        registry.register(
            "export_host_downloads",
            "Downloads served (whole files and ranges)",
            downloads.clone(),
        );
        registry.register(
            "export_host_database_write_failures",
            "Database writes that failed (full disk, lost or read-only file, no descriptors, missing tables, unreachable server)",
            write_failures.clone(),
        );
        registry.register(
            "export_host_database_up",
            "1 when the database answered this scrape's count, else 0",
            database_up.clone(),
        );
        registry.register(
            "export_host_connections_shed",
            "HTTP connections refused or cut, by reason: limit (over the connection cap), descriptors (out of file descriptors), header_timeout (no full request head in time)",
            connections_shed.clone(),
        );
        registry.register(
            "export_host_connections_open",
            "HTTP connections being served",
            connections_open.clone(),
        );
        registry.register(
            "export_host_runaway_threads",
            "Threads still inside an in-process plugin after their export ended (timed out, stuck): each may hold a core until restart",
            runaway_threads.clone(),
        );
        Metrics {
            registry,
            exports,
            queue_depth,
            plugin_load_failures,
            plugin_refusals,
            finished,
            rows_written,
            bytes_written,
            duration,
            downloads,
            write_failures,
            database_up,
            connections_shed,
            connections_open,
            runaway_threads,
        }
    }

    /// Counts a connection shed for `reason` (`limit`, `descriptors`,
    /// `header_timeout`).
    pub fn connection_shed(&self, reason: &'static str) {
        self.connections_shed
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// The gauge of connections being served (the listener moves it).
    pub fn connections_open(&self) -> &Gauge {
        &self.connections_open
    }

    /// Counts an export that a worker ran to an end.
    pub fn export_finished(&self, record: &ExportRecord) {
        self.finished
            .get_or_create(&vec![("status", record.status.to_string())])
            .inc();
        if record.status == Status::Completed {
            let rows = record.row_count.and_then(|n| u64::try_from(n).ok());
            let bytes = record.size_bytes.and_then(|n| u64::try_from(n).ok());
            self.rows_written.inc_by(rows.unwrap_or(0));
            self.bytes_written.inc_by(bytes.unwrap_or(0));
        }
        if let (Some(started), Some(ended)) = (record.started_at, record.completed_at) {
            if let Ok(elapsed) = (ended - started).to_std() {
                self.duration.observe(elapsed.as_secs_f64());
            }
        }
    }

    /// Counts a download served.
    pub fn download(&self) {
        self.downloads.inc();
    }

    /// Reads the gauges and encodes every metric.
    pub async fn scrape(&self, service: &ExportService) -> Result<String, RecordError> {
        // The failure count lives with the records (every write reports
        // there); the counter catches up to it at each scrape.
        let failures = service.database_write_health().failures();
        self.write_failures
            .inc_by(failures.saturating_sub(self.write_failures.get()));
        // A failing database must not hide the other metrics (the write
        // failures above most of all): its gauges keep their last values.
        let counts = match service.export_counts_by_status().await {
            Ok(counts) => {
                self.database_up.set(1);
                counts
            }
            Err(err) => {
                tracing::warn!(error = %err, "metrics: the database does not answer; export gauges keep their last values");
                self.database_up.set(0);
                Vec::new()
            }
        };
        for status in Status::ALL {
            if self.database_up.get() == 0 {
                break;
            }
            let count = counts
                .iter()
                .find(|(name, _)| name == status.as_str())
                .map_or(0, |(_, n)| *n);
            self.exports
                .get_or_create(&vec![("status", status.as_str().to_owned())])
                .set(count);
            if status == Status::Pending {
                self.queue_depth.set(count);
            }
        }
        let load_failures = service.plugin_load_failures();
        for cause in [
            FailureCause::Trust,
            FailureCause::Load,
            FailureCause::Config,
            FailureCause::Unsupported,
        ] {
            let n = load_failures
                .iter()
                .filter(|failure| failure.cause == cause)
                .count();
            let labels = vec![("cause", cause.as_str().to_owned())];
            self.plugin_load_failures
                .get_or_create(&labels)
                .set(i64::try_from(n).unwrap_or(i64::MAX));
            // The count lives with the loader; the counter catches up.
            let counter = self.plugin_refusals.get_or_create(&labels);
            counter.inc_by(cause.refusals().saturating_sub(counter.get()));
        }
        self.runaway_threads.set(
            i64::try_from(crate::pipeline::plugin_threads::runaway_threads()).unwrap_or(i64::MAX),
        );
        let mut text = String::new();
        if let Err(err) = encode(&mut text, &self.registry) {
            tracing::warn!(error = %err, "cannot encode the metrics");
        }
        Ok(text)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
