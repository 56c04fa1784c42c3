//! The delivery loop each daemon runs beside its workers.
//!
//! It claims due deliveries (a conditional UPDATE, so of several daemons on
//! one database exactly one makes each attempt), POSTs each on its own task
//! with a timeout, and writes the outcome back: delivered on a 2xx answer,
//! otherwise another attempt after [`backoff::delay`] until the retry window
//! after the export's end runs out. It wakes when an export of this daemon
//! ends, when the next retry is due, and every [`IDLE_POLL`] for exports
//! other daemons ended; after a restart the owed deliveries are simply due.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::CONTENT_TYPE;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::records::{AttemptOutcome, WebhookAttempt, WebhookDelivery};
use crate::service::ExportService;
use crate::webhooks::resolver::PublicOnly;
use crate::webhooks::{backoff, signature, WebhookSettings};

/// Deliveries in flight at once per daemon.
const MAX_IN_FLIGHT: usize = 16;
/// The longest sleep between two looks at the database.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// The shortest one, so a due delivery another daemon holds is not polled
/// in a tight loop.
const MIN_POLL: Duration = Duration::from_millis(50);
/// The wait after a database error.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// How long a claim outlives the POST's timeout before another daemon may
/// make the attempt again (the claimer died mid-attempt).
const CLAIM_MARGIN: Duration = Duration::from_secs(30);
/// How long in-flight deliveries may finish when the daemon stops; the
/// claims of those cut short run out and the attempts are made again.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why the delivery loop cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the webhook HTTP client: {0}")]
pub struct StartError(#[source] reqwest::Error);

/// The running loop.
#[derive(Debug)]
pub struct DeliveryLoop {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl DeliveryLoop {
    /// Starts the loop over `service`'s records, woken at once whenever
    /// `ended` changes (an export of this daemon ended or was cancelled).
    pub fn start(
        service: ExportService,
        ended: watch::Receiver<u64>,
    ) -> Result<DeliveryLoop, StartError> {
        let settings = service.settings().webhooks.clone();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(WebhookSettings::TIMEOUT)
            .connect_timeout(WebhookSettings::TIMEOUT / 2)
            .dns_resolver(PublicOnly::new(settings.allow.named_hosts()))
            .user_agent(concat!("export-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StartError)?;
        let deliverer = Arc::new(Deliverer {
            service,
            client,
            settings,
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(deliver_until_stopped(deliverer, ended, stopped));
        Ok(DeliveryLoop { task, stop })
    }

    /// Stops claiming and gives deliveries in flight a moment to finish.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Claims and sends due deliveries until `stop` turns true.
async fn deliver_until_stopped(
    deliverer: Arc<Deliverer>,
    mut ended: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight = JoinSet::new();
    let mut ended_open = true;
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        let wait = if in_flight.len() >= MAX_IN_FLIGHT {
            IDLE_POLL
        } else {
            // A read first: an idle daemon takes no write lock.
            match deliverer.next_due_in().await {
                Ok(Some(Duration::ZERO)) => deliverer.claim_due(&mut in_flight).await,
                Ok(Some(wait)) => wait.clamp(MIN_POLL, IDLE_POLL),
                Ok(None) => IDLE_POLL,
                Err(err) => {
                    tracing::warn!(error = %err, "reading when the next webhook is due failed; retrying");
                    ERROR_BACKOFF
                }
            }
        };
        tokio::select! {
            _ = stop.changed() => break,
            changed = ended.changed(), if ended_open => ended_open = changed.is_ok(),
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            in_flight = in_flight.len(),
            "stopping with webhook deliveries in flight; they are made again after their claims run out"
        );
        in_flight.abort_all();
    }
}

/// What one POST came to.
enum Sent {
    /// The receiver answered with this status.
    Answered(u16),
    /// No answer (no connection, a timeout, a refused address).
    NoAnswer(String),
    /// Not sent, and never will be: the destination is no longer allowed
    /// or there is no secret to sign with.
    Refused(String),
}

struct Deliverer {
    service: ExportService,
    client: reqwest::Client,
    settings: WebhookSettings,
}

impl Deliverer {
    async fn claim(
        &self,
        claim: &str,
    ) -> Result<Option<WebhookDelivery>, crate::service::ServiceError> {
        self.service
            .claim_webhook(claim, WebhookSettings::TIMEOUT + CLAIM_MARGIN)
            .await
    }

    /// How long until the next owed delivery is due: zero when one is due
    /// now, `None` when none is owed.
    async fn next_due_in(&self) -> Result<Option<Duration>, crate::service::ServiceError> {
        let now = self.service.now();
        let due = self.service.next_webhook_due(now).await?;
        Ok(due.map(|due| (due - now).to_std().unwrap_or(Duration::ZERO)))
    }

    /// Claims due deliveries while there is room, each attempt on its own
    /// task; how long to wait before looking again.
    async fn claim_due(self: &Arc<Self>, in_flight: &mut JoinSet<()>) -> Duration {
        while in_flight.len() < MAX_IN_FLIGHT {
            let claim = format!("{:032x}", rand::random::<u128>());
            match self.claim(&claim).await {
                Ok(Some(delivery)) => {
                    let deliverer = self.clone();
                    in_flight.spawn(async move { deliverer.attempt(delivery, claim).await });
                }
                // What is left is claimed by other daemons or not yet due.
                Ok(None) => return MIN_POLL,
                Err(err) => {
                    tracing::warn!(error = %err, "claiming webhook deliveries failed; retrying");
                    return ERROR_BACKOFF;
                }
            }
        }
        IDLE_POLL
    }

    /// Makes one attempt and records its outcome.
    async fn attempt(&self, delivery: WebhookDelivery, claim: String) {
        let id = delivery.record.id.clone();
        let number = delivery.record.webhook.as_ref().map_or(0, |w| w.attempts) + 1;
        let sent = self.post(&delivery).await;
        let at = self.service.now();
        let (status, outcome) = match &sent {
            Sent::Answered(status) if (200..300).contains(status) => {
                (Some(*status), AttemptOutcome::Delivered)
            }
            Sent::Answered(status) => (Some(*status), self.retry(&delivery, number, at)),
            Sent::NoAnswer(_) => (None, self.retry(&delivery, number, at)),
            Sent::Refused(_) => (None, AttemptOutcome::GaveUp),
        };
        match (&sent, outcome) {
            (_, AttemptOutcome::Delivered) => {
                tracing::info!(export_id = %id, attempt = number, status, "webhook delivered")
            }
            (Sent::Refused(reason), _) => {
                tracing::warn!(export_id = %id, attempt = number, reason = %reason, "webhook not sent and given up")
            }
            (Sent::NoAnswer(reason), next) => {
                tracing::warn!(export_id = %id, attempt = number, reason = %reason, next = ?next, "webhook got no answer")
            }
            (Sent::Answered(_), next) => {
                tracing::warn!(export_id = %id, attempt = number, status, next = ?next, "webhook refused by its receiver")
            }
        }
        let attempt = WebhookAttempt {
            status,
            at,
            outcome,
        };
        match self
            .service
            .record_webhook_attempt(&id, &claim, &attempt)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(export_id = %id, attempt = number, "a webhook attempt outlived its claim; its outcome is dropped and the attempt is made again")
            }
            Err(err) => {
                tracing::warn!(export_id = %id, attempt = number, error = %err, "cannot record a webhook attempt; it is made again once its claim runs out")
            }
        }
    }

    /// The next attempt after failed attempt `number`, or giving up when the
    /// retry window after the export's end is over.
    fn retry(&self, delivery: &WebhookDelivery, number: i32, at: DateTime<Utc>) -> AttemptOutcome {
        let window = TimeDelta::from_std(WebhookSettings::RETRY_WINDOW).unwrap_or(TimeDelta::MAX);
        let deadline = delivery.ended_at + window;
        if at >= deadline {
            return AttemptOutcome::GaveUp;
        }
        let wait = backoff::delay(
            u32::try_from(number).unwrap_or(u32::MAX),
            self.settings.backoff_base,
            WebhookSettings::BACKOFF_CAP,
        );
        let next = TimeDelta::from_std(wait).map_or(deadline, |wait| at + wait);
        AttemptOutcome::RetryAt(next.min(deadline))
    }

    async fn post(&self, delivery: &WebhookDelivery) -> Sent {
        let url = match self.settings.check_destination(&delivery.callback_url) {
            Ok(url) => url,
            Err(refusal) => return Sent::Refused(refusal.to_string()),
        };
        let Some(secret) = &self.settings.secret else {
            return Sent::Refused(
                "EXPORT_HOST_WEBHOOK_SECRET is no longer set, so deliveries cannot be signed"
                    .to_owned(),
            );
        };
        let body = match serde_json::to_vec(&delivery.record) {
            Ok(body) => body,
            Err(err) => return Sent::Refused(format!("cannot encode the record: {err}")),
        };
        let header = signature::sign(secret, self.service.now().timestamp(), &body);
        let answer = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(signature::HEADER, header)
            .body(body)
            .send()
            .await;
        match answer {
            Ok(response) => Sent::Answered(response.status().as_u16()),
            Err(err) => Sent::NoAnswer(error_chain(&err)),
        }
    }
}

/// An error and its causes on one line (reqwest's own message alone only
/// says that sending failed).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
