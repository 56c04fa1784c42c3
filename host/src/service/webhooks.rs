//! The service's side of webhooks: checking a request's `callback_url`
//! against the operator's settings, and the record operations of the
//! delivery loop ([`delivery`]).

pub mod delivery;

pub use delivery::DeliveryLoop;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{later, ExportService, ServiceError};
use crate::records::{ExportId, WebhookAttempt, WebhookDelivery};
use crate::webhooks::CallbackRefusal;

impl ExportService {
    /// The `callback_url` to store for a request, normalised; `None` when
    /// the request gave none.
    pub fn check_callback(&self, url: Option<&str>) -> Result<Option<String>, CallbackRefusal> {
        url.map(|url| {
            self.settings
                .webhooks
                .check_callback(url)
                .map(|url| url.to_string())
        })
        .transpose()
    }

    /// Claims the most overdue webhook delivery for `claim` (unique to this
    /// attempt), for `hold`; `None` when nothing is due.
    pub async fn claim_webhook(
        &self,
        claim: &str,
        hold: Duration,
    ) -> Result<Option<WebhookDelivery>, ServiceError> {
        let now = self.now();
        Ok(self
            .records
            .claim_webhook(claim, later(now, hold), now)
            .await?)
    }

    /// Writes the outcome of an attempt; `false` when its claim had run out.
    pub async fn record_webhook_attempt(
        &self,
        id: &ExportId,
        claim: &str,
        attempt: &WebhookAttempt,
    ) -> Result<bool, ServiceError> {
        Ok(self
            .records
            .record_webhook_attempt(id, claim, attempt)
            .await?)
    }

    /// When the next owed delivery is due (`now` when one is due already).
    pub async fn next_webhook_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ServiceError> {
        Ok(self.records.next_webhook_due(now).await?)
    }
}
