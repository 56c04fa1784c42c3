//! Webhooks: when an export ends, the daemon POSTs its final record to the
//! `callback_url` the request gave, signed with `WEBHOOK_SECRET`, and retries
//! until the receiver answers 2xx or the retry window runs out
//! (docs/operations.md, "Webhooks").
//!
//! - [`destination`]: which callback URLs are accepted (`WEBHOOK_ALLOW`,
//!   and never an internal address the operator did not name).
//! - [`signature`]: the `Export-Host-Signature` header.
//! - [`backoff`]: when a failed delivery is tried again.
//! - [`resolver`]: name resolution at delivery time that keeps to public
//!   addresses, so a name cannot be re-pointed at an internal one.
//!
//! The delivery loop each daemon runs is the service's
//! (`service::webhooks::delivery`); the state lives on the export row
//! (`records::webhooks`).

pub mod backoff;
pub mod destination;
pub mod resolver;
pub mod signature;

use std::fmt;
use std::time::Duration;

pub use destination::{AllowList, CallbackRefusal};

/// The secret that signs webhooks. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The shortest secret accepted.
    pub const MIN_CHARS: usize = 16;

    /// A secret from operator text: at least [`Self::MIN_CHARS`] characters,
    /// no spaces or control characters.
    pub fn parse(text: &str) -> Option<WebhookSecret> {
        let text = text.trim();
        (text.chars().count() >= Self::MIN_CHARS
            && !text.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| WebhookSecret(text.to_owned()))
    }

    /// The key material.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The webhook settings (`WEBHOOK_ALLOW`, `WEBHOOK_SECRET`, `WEBHOOK_BACKOFF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Where callbacks may go; empty refuses every `callback_url`.
    pub allow: AllowList,
    /// Signs every delivery; unset refuses every `callback_url`.
    pub secret: Option<WebhookSecret>,
    /// The wait after the first failed attempt; each further one doubles it.
    pub backoff_base: Duration,
}

impl WebhookSettings {
    /// The default wait after the first failed attempt.
    pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
    /// The longest wait between two attempts.
    pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);
    /// How long after the export ended the daemon keeps trying.
    pub const RETRY_WINDOW: Duration = Duration::from_secs(24 * 3600);
    /// How long one POST may take, connecting included.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow: AllowList::default(),
            secret: None,
            backoff_base: Self::BACKOFF_BASE,
        }
    }
}
