//! `export-host exports watch ID`: follows an export until it ends, reading
//! its record through the service (so it follows an export whichever daemon
//! runs it). On a terminal a progress bar shows rows, rate and elapsed time
//! (a bar with a percentage when the loader tells how far it is, a spinner
//! otherwise); elsewhere one plain line per change, at most once a second.
//! [`Display`] is shared with `export --record`.

use export_host::records::{ExportId, ExportRecord, Scope, Status};
use export_host::service::ExportService;
use indicatif::{DecimalBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often the record is read again.
const POLL: Duration = Duration::from_millis(500);
/// The least time between two plain progress lines.
const LINE_EVERY: Duration = Duration::from_secs(1);
/// Bar positions for a known fraction (a length bar of this many steps).
const STEPS: u64 = 1000;

/// The export ended some other way than `completed`.
#[derive(Debug, thiserror::Error)]
#[error("export {id} {outcome}")]
pub struct WatchedExportDidNotComplete {
    id: ExportId,
    outcome: String,
}

pub async fn watch(service: &ExportService, scope: &Scope, id: &ExportId) -> anyhow::Result<()> {
    let mut display = Display::new(true);
    let record = loop {
        // A missing export is reported by the service, naming its id.
        let record = service
            .get(scope, id)
            .await
            .inspect_err(|_| display.finish())?;
        display.update(&record);
        if !record.status.is_active() {
            break record;
        }
        tokio::time::sleep(POLL).await;
    };
    display.finish();
    print_summary(&record);
    let outcome = match record.status {
        Status::Completed => return Ok(()),
        Status::Failed => format!(
            "failed: {}",
            record.error.as_deref().unwrap_or("no reason recorded")
        ),
        Status::Cancelled => {
            "was cancelled before it finished; run it again to get its file".to_owned()
        }
        Status::Expired => {
            "has expired: its file was deleted; run it again to get a new one".to_owned()
        }
        // Not reached: the loop above ends only on an ended status.
        status => format!("is {status}"),
    };
    Err(WatchedExportDidNotComplete {
        id: record.id.clone(),
        outcome,
    }
    .into())
}

/// What `watch` prints once the export has ended, on standard output.
fn print_summary(record: &ExportRecord) {
    println!("id: {}", record.id);
    println!("status: {}", record.status);
    let rows = record
        .row_count
        .or_else(|| {
            record
                .progress
                .as_ref()
                .and_then(|p| i64::try_from(p.rows).ok())
        })
        .map_or_else(|| "-".to_owned(), |n| n.to_string());
    println!("rows: {rows}");
    match record.size_bytes.and_then(|n| u64::try_from(n).ok()) {
        Some(size) => println!("size: {size} ({})", DecimalBytes(size)),
        None => println!("size: -"),
    }
    if let Some(error) = &record.error {
        println!("error: {error}");
    }
}

/// One line about where `record` is: `processing: 120000 rows, 4.10 MB,
/// 95000 rows/s, 1.3 s` (and the percentage when known).
pub fn describe(record: &ExportRecord) -> String {
    match &record.progress {
        Some(progress) if record.status.is_active() => {
            let mut line = format!(
                "{}: {} rows, {}, {:.0} rows/s, {:.1} s",
                record.status,
                progress.rows,
                DecimalBytes(progress.bytes),
                progress.rows_per_s,
                progress.elapsed_s
            );
            if let Some(fraction) = progress.fraction {
                line.push_str(&format!(", {:.0}%", fraction.clamp(0.0, 1.0) * 100.0));
            }
            line
        }
        _ => record.status.to_string(),
    }
}

/// Shows an export's progress: a bar on a terminal, plain lines on standard
/// error elsewhere (when asked for), nothing otherwise.
pub struct Display {
    bar: Option<ProgressBar>,
    /// Whether a bar with a length (a known fraction) is shown.
    has_length: bool,
    plain: bool,
    last_line: Option<(String, Instant)>,
    last_status: Option<Status>,
}

impl Display {
    /// A bar when standard error is a terminal; otherwise plain lines when
    /// `plain_lines`, else nothing (`export --record` keeps its output).
    pub fn new(plain_lines: bool) -> Display {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(spinner_style());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Display {
            bar,
            has_length: false,
            plain: plain_lines && !terminal,
            last_line: None,
            last_status: None,
        }
    }

    /// Whether anything is shown at all.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some() || self.plain
    }

    /// Shows `record`'s state.
    pub fn update(&mut self, record: &ExportRecord) {
        let line = describe(record);
        if let Some(bar) = &self.bar {
            let fraction = record.progress.as_ref().and_then(|p| p.fraction);
            match fraction {
                Some(fraction) if record.status.is_active() => {
                    if !self.has_length {
                        bar.set_length(STEPS);
                        bar.set_style(length_style());
                        self.has_length = true;
                    }
                    bar.set_position((fraction.clamp(0.0, 1.0) * STEPS as f64) as u64);
                }
                _ => {
                    if self.has_length {
                        bar.unset_length();
                        bar.set_style(spinner_style());
                        self.has_length = false;
                    }
                }
            }
            bar.set_message(line);
        } else if self.plain {
            let status_changed = self.last_status != Some(record.status);
            let due = match &self.last_line {
                None => true,
                Some((last, at)) => *last != line && (status_changed || at.elapsed() >= LINE_EVERY),
            };
            // The end is told by the summary that follows.
            if due && record.status.is_active() {
                eprintln!("{line}");
                self.last_line = Some((line, Instant::now()));
            }
        }
        self.last_status = Some(record.status);
    }

    /// Takes the bar off the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn length_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_host::records::Progress;

    fn record(status: Status, progress: Option<Progress>) -> ExportRecord {
        let now = chrono::Utc::now();
        ExportRecord {
            id: "exp_0123456789abcdef0123456789abcdef".parse().unwrap(),
            user_id: "ada".into(),
            loader: "gate".into(),
            format: "csv".into(),
            status,
            selector: serde_json::json!({}),
            options: serde_json::json!({}),
            metadata: serde_json::json!({}),
            file_name: None,
            storage_key: None,
            mime_type: None,
            size_bytes: None,
            row_count: None,
            sha256: None,
            error: None,
            attempts: 1,
            lease_owner: None,
            lease_expires_at: None,
            download_count: 0,
            last_downloaded_at: None,
            request_hash: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            completed_at: None,
            expires_at: None,
            progress,
            callback_url: None,
            webhook: None,
        }
    }

    #[test]
    fn a_line_names_rows_size_rate_and_time() {
        let mut progress = Progress::new(120_000, 4_100_000, 1.26);
        assert_eq!(describe(&record(Status::Pending, None)), "pending");
        let line = describe(&record(Status::Processing, Some(progress.clone())));
        assert!(line.starts_with("processing: 120000 rows, "), "{line}");
        assert!(line.ends_with(" rows/s, 1.3 s"), "{line}");
        progress.fraction = Some(0.5);
        let line = describe(&record(Status::Processing, Some(progress)));
        assert!(line.ends_with(", 50%"), "{line}");
    }
}
