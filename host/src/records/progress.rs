//! How far a running export has come, as its record shows it.
//!
//! The daemon running an export publishes these figures at most once a
//! second (one small conditional `UPDATE`, never one per batch), so every
//! daemon and the API see them; the completion replaces them with the final
//! figures (docs/operations.md, "Progress").

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queries as q;
use super::row::Ts;
use super::{
    finish, postgres, sqlite, typed, Backend, ExportId, Mode, RecordError, Records, Scope,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;

/// Rows and bytes written so far, with the rate and elapsed time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Rows the loader has handed over and the formatter has written.
    pub rows: u64,
    /// Bytes of output so far (after compression, what is stored).
    pub bytes: u64,
    /// Rows per second since the run started.
    pub rows_per_s: f64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// The share of the input read, from 0 to 1, when the loader can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
}

impl Progress {
    /// The figures for `rows` and `bytes` after `elapsed` seconds, rounded
    /// to what a person reads (a rate to the row, times to the millisecond).
    pub fn new(rows: u64, bytes: u64, elapsed_s: f64) -> Progress {
        let rows_per_s = if elapsed_s > 0.0 {
            (rows as f64 / elapsed_s).round()
        } else {
            0.0
        };
        Progress {
            rows,
            bytes,
            rows_per_s,
            elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
            fraction: None,
        }
    }

    /// The same figures with the loader's share of its input read, clamped
    /// to 0..1 and rounded to a hundredth of a percent; a share that is not
    /// a number counts as unknown.
    pub fn with_fraction(mut self, fraction: Option<f64>) -> Progress {
        self.fraction = fraction
            .filter(|f| f.is_finite())
            .map(|f| (f.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0);
        self
    }
}

impl Records {
    /// Publishes `progress` on the processing export `id` that `worker`
    /// holds. Returns whether it did: `false` when the lease has moved on
    /// (the heartbeat notices and stops the run).
    pub async fn publish_progress(
        &self,
        id: &ExportId,
        worker: &str,
        progress: &Progress,
        now: DateTime<Utc>,
    ) -> Result<bool, RecordError> {
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let done = sqlx::query(q::PUBLISH_PROGRESS)
                .bind(id.as_str())
                .bind(worker)
                .bind(Json(progress))
                .bind(Ts::new(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(done == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn the_fraction_is_clamped_rounded_or_unknown() {
        let progress = |f| Progress::new(10, 20, 1.0).with_fraction(f).fraction;
        assert_eq!(progress(None), None);
        assert_eq!(progress(Some(0.123456)), Some(0.1235));
        assert_eq!(progress(Some(1.7)), Some(1.0));
        assert_eq!(progress(Some(-0.2)), Some(0.0));
        assert_eq!(progress(Some(f64::NAN)), None);
    }
}
