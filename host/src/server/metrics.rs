//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format
//! (which Prometheus scrapes natively), built with `prometheus-client`.
//!
//! Gauges read at scrape time: exports by status and the queue depth (one
//! `GROUP BY status` query, [`Records::count_by_status`]), plugin load
//! failures by cause. Counters bumped as things happen: exports finished by
//! this daemon (by status, with rows, bytes and a duration histogram) and
//! downloads served.

use crate::plugins::{FailureCause, Registry as Plugins};
use crate::records::{ExportRecord, RecordError, Records, Status};
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
    finished: Family<Labels, Counter>,
    rows_written: Counter,
    bytes_written: Counter,
    duration: Histogram,
    downloads: Counter,
}

impl Metrics {
    /// Every metric, registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let exports = Family::<Labels, Gauge>::default();
        let queue_depth = Gauge::default();
        let plugin_load_failures = Family::<Labels, Gauge>::default();
        let finished = Family::<Labels, Counter>::default();
        let rows_written = Counter::default();
        let bytes_written = Counter::default();
        let duration = Histogram::new(DURATION_BUCKETS);
        let downloads = Counter::default();
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
            "Plugins that did not load, by cause",
            plugin_load_failures.clone(),
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
        Metrics {
            registry,
            exports,
            queue_depth,
            plugin_load_failures,
            finished,
            rows_written,
            bytes_written,
            duration,
            downloads,
        }
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
    pub async fn scrape(
        &self,
        records: &Records,
        plugins: &Plugins,
    ) -> Result<String, RecordError> {
        let counts = records.count_by_status().await?;
        for status in Status::ALL {
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
        for cause in [
            FailureCause::Trust,
            FailureCause::Load,
            FailureCause::Config,
            FailureCause::Unsupported,
        ] {
            let n = plugins
                .failures()
                .iter()
                .filter(|failure| failure.cause == cause)
                .count();
            self.plugin_load_failures
                .get_or_create(&vec![("cause", cause.as_str().to_owned())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
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
