//! Host settings: the list in README.md's "Settings" section.
//!
//! Precedence, highest first: command-line flag (`--max-rows 5`) >
//! environment (`EXPORT_HOST_MAX_ROWS=5`) > config file (`--config FILE` or
//! `EXPORT_HOST_CONFIG`, TOML with lower-case keys: `max_rows = 5`) > default.
//!
//! [`SettingsArgs`] carries the flags as raw text; [`resolve`] applies the
//! precedence and validates, with the environment and the file passed in so
//! the rules are explicit and testable. [`HostSettings::load`] does it for
//! the real process. Any bad value stops startup with one line naming the
//! setting, the value, where it came from and what is accepted:
//!
//! ```text
//! invalid setting MAX_ROWS="ten" (from EXPORT_HOST_MAX_ROWS): expected a whole number of rows, at least 1, e.g. 10000000
//! ```
//!
//! An empty environment variable counts as unset (`EnvironmentFile=` lines
//! such as `EXPORT_HOST_SIGNING_KEY=` are common); an empty flag or file
//! value is an error.
//!
//! The values are plain (numbers, durations, paths, text): this module
//! imports nothing from the rest of the crate. Settings only another layer
//! understands are handed over as text, `STORAGE` and `WEBHOOK_ALLOW` among
//! them; the service parses those and words its refusals with
//! [`HostSettings::invalid`], and every command has them checked right after
//! loading (docs/architecture.md, "No import cycles").

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod args;
mod error;
mod file;
mod parse;
mod resolve;
mod setting;

pub use args::{env_help, SettingsArgs};
pub use error::{Origin, SettingError};
pub use file::{config_path, load_config_file, parse_config};
pub use resolve::resolve;
pub use setting::Setting;

use parse::redact_url;

/// Prefix of every settings environment variable.
pub const ENV_PREFIX: &str = "EXPORT_HOST_";
/// Environment variable naming the config file (like `--config`).
pub const CONFIG_ENV: &str = "EXPORT_HOST_CONFIG";
/// Set by systemd for `StateDirectory=`; the default `DATA_DIR` when present.
pub const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";

/// A signing key (of download links, JWTs or webhook deliveries). Never
/// printed: `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(String);

impl SigningKey {
    /// The key material.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// The host's settings, resolved and validated.
#[derive(Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// `DATA_DIR`: where the database, files and signing key live by default.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// `STORAGE`: where export files are kept, as given (`file:///PATH`, a
    /// directory or `s3://bucket/prefix`); the service parses it. The
    /// default is `file://$DATA_DIR/files`, or the plain path when
    /// `DATA_DIR` is relative.
    pub storage: String,
    /// `DOWNLOAD_REDIRECT`: `None` when unset (off).
    pub download_redirect: Option<bool>,
    /// `LISTEN`: the HTTP API's address.
    pub listen: SocketAddr,
    /// `PLUGINS`: the plugin registry.
    pub plugins: PathBuf,
    /// `EXPIRATION_HOURS`: how long a completed export stays downloadable.
    pub expiration_hours: u64,
    /// `MAX_ROWS`: most rows one export may have.
    pub max_rows: u64,
    /// `MAX_FILE_SIZE_MB`: largest stored file, in MB (after compression).
    pub max_file_size_mb: u64,
    /// `MAX_PER_USER`: most active (pending or processing) exports per user.
    pub max_per_user: u32,
    /// `WORKERS`: exports run at once.
    pub workers: usize,
    /// `CLEANUP_INTERVAL`: time between cleanup passes.
    pub cleanup_interval: Duration,
    /// `RETENTION_DAYS`: how long expired and failed records are kept.
    pub retention_days: u64,
    /// `CACHE_TTL_MINUTES`: dedupe window for identical requests; 0 is off.
    pub cache_ttl_minutes: u64,
    /// `SIGNING_KEY`: `None` means "generate one and keep it in `DATA_DIR`".
    pub signing_key: Option<SigningKey>,
    /// `BATCH_SIZE`: rows per batch asked of loaders.
    pub batch_size: usize,
    /// `PUBLIC_URL`: the base of the links the API hands out (no trailing
    /// slash); `None` means `http://` and `LISTEN`.
    pub public_url: Option<String>,
    /// `SIGNING_KEY_PREVIOUS`: a former key whose links still verify.
    pub signing_key_previous: Option<SigningKey>,
    /// `JWT_*`: JWT bearer tokens, off unless a key is set.
    pub jwt: JwtSettings,
    /// The limits that keep one client or user from starving the rest.
    pub guards: Guards,
    /// `WEBHOOK_ALLOW`: the comma-separated URL prefixes as given; empty
    /// when unset. The service parses them.
    pub webhook_allow: String,
    /// `WEBHOOK_SECRET`: the key that signs webhook deliveries.
    pub webhook_secret: Option<SigningKey>,
    /// `WEBHOOK_BACKOFF`: the wait after a first failed delivery.
    pub webhook_backoff: Duration,
    origins: BTreeMap<Setting, Origin>,
}

impl fmt::Debug for HostSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("HostSettings");
        for (setting, value, origin) in self.report() {
            out.field(&setting.key(), &format_args!("{value} ({origin})"));
        }
        out.finish()
    }
}

impl HostSettings {
    /// Resolves the settings of this process: `args`, the real environment,
    /// and the config file named by `--config` or `EXPORT_HOST_CONFIG`.
    pub fn load(args: &SettingsArgs) -> Result<Self, SettingError> {
        // A variable that is set but not UTF-8 is an error, not "unset".
        let mut names: Vec<String> = Setting::ALL.iter().map(|s| s.env_var()).collect();
        names.push(CONFIG_ENV.to_owned());
        names.push(STATE_DIRECTORY_ENV.to_owned());
        for name in names {
            if std::env::var_os(&name).is_some_and(|value| value.to_str().is_none()) {
                return Err(SettingError::NotUtf8 { var: name });
            }
        }
        let env = |name: &str| std::env::var(name).ok();
        let table = match config_path(args, &env) {
            Some((path, origin)) => Some(load_config_file(&path, origin)?),
            None => None,
        };
        resolve(args, &env, table.as_ref())
    }

    /// Where a setting's value came from.
    pub fn origin(&self, setting: Setting) -> &Origin {
        self.origins.get(&setting).unwrap_or(&Origin::Default)
    }

    /// Every setting with its value (secrets redacted) and origin, e.g. for
    /// a startup log line.
    pub fn report(&self) -> Vec<(Setting, String, &Origin)> {
        Setting::ALL
            .into_iter()
            .map(|setting| {
                let value = match setting {
                    Setting::DataDir => self.data_dir.display().to_string(),
                    Setting::DatabaseUrl => redact_url(&self.database_url),
                    Setting::Storage => self.storage.clone(),
                    Setting::Listen => self.listen.to_string(),
                    Setting::Plugins => self.plugins.display().to_string(),
                    Setting::ExpirationHours => self.expiration_hours.to_string(),
                    Setting::MaxRows => self.max_rows.to_string(),
                    Setting::MaxFileSizeMb => self.max_file_size_mb.to_string(),
                    Setting::MaxPerUser => self.max_per_user.to_string(),
                    Setting::Workers => self.workers.to_string(),
                    Setting::CleanupInterval => {
                        humantime::format_duration(self.cleanup_interval).to_string()
                    }
                    Setting::RetentionDays => self.retention_days.to_string(),
                    Setting::CacheTtlMinutes => self.cache_ttl_minutes.to_string(),
                    Setting::SigningKey => match self.signing_key {
                        Some(_) => "<redacted>".to_owned(),
                        None => "<generated in DATA_DIR>".to_owned(),
                    },
                    Setting::BatchSize => self.batch_size.to_string(),
                    Setting::DownloadRedirect => if self.download_redirect() {
                        "on"
                    } else {
                        "off"
                    }
                    .to_owned(),
                    Setting::PublicUrl => self.public_url(),
                    Setting::SigningKeyPrevious => redacted(self.signing_key_previous.is_some()),
                    Setting::JwtSecret => redacted(self.jwt.secret.is_some()),
                    Setting::JwtJwks => self
                        .jwt
                        .jwks
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), ToString::to_string),
                    Setting::JwtIssuer => self.jwt.issuer.clone().unwrap_or_else(|| "-".to_owned()),
                    Setting::JwtAudience => {
                        if self.jwt.audience.is_empty() {
                            "-".to_owned()
                        } else {
                            self.jwt.audience.join(",")
                        }
                    }
                    Setting::JwtUserClaim => self.jwt.user_claim.clone(),
                    Setting::JwtAdmin => self
                        .jwt
                        .admin
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |(c, v)| format!("{c}={v}")),
                    Setting::HeaderReadTimeout => seconds(self.guards.header_read_timeout),
                    Setting::IdleTimeout => seconds(self.guards.idle_timeout),
                    Setting::MaxConnections => self.guards.max_connections.map_or_else(
                        || "<from the open-file limit>".to_owned(),
                        |n| n.to_string(),
                    ),
                    Setting::MaxSelectorBytes => self.guards.max_selector_bytes.to_string(),
                    Setting::MaxOptionsBytes => self.guards.max_options_bytes.to_string(),
                    Setting::MaxStoredPerUser => self.guards.max_stored_per_user.to_string(),
                    Setting::LeaseSeconds => self.guards.lease.as_secs().to_string(),
                    Setting::ShutdownGrace => seconds(self.guards.shutdown_grace),
                    Setting::JwksRefreshSeconds => self.jwt.jwks_refresh.as_secs().to_string(),
                    Setting::WebhookAllow => {
                        if self.webhook_allow.is_empty() {
                            "-".to_owned()
                        } else {
                            self.webhook_allow.clone()
                        }
                    }
                    Setting::WebhookSecret => redacted(self.webhook_secret.is_some()),
                    Setting::WebhookBackoff => seconds(self.webhook_backoff),
                };
                (setting, value, self.origin(setting))
            })
            .collect()
    }

    /// `MAX_FILE_SIZE_MB` in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_size_mb.saturating_mul(1024 * 1024)
    }

    /// `EXPIRATION_HOURS` as a duration.
    pub fn expiration(&self) -> Duration {
        Duration::from_secs(self.expiration_hours.saturating_mul(3600))
    }

    /// `RETENTION_DAYS` as a duration.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_days.saturating_mul(86_400))
    }

    /// `CACHE_TTL_MINUTES` as a duration; `None` when off (0).
    pub fn cache_ttl(&self) -> Option<Duration> {
        (self.cache_ttl_minutes > 0).then(|| Duration::from_secs(self.cache_ttl_minutes * 60))
    }

    /// `DOWNLOAD_REDIRECT`: whether downloads answer with a redirect to a
    /// presigned storage URL (S3 only) instead of streaming through the daemon.
    pub fn download_redirect(&self) -> bool {
        self.download_redirect == Some(true)
    }

    /// The one-line error for `setting`, whose value `text` the layer that
    /// parses it refused. For the settings kept here as text (`STORAGE`,
    /// `DOWNLOAD_REDIRECT`, `WEBHOOK_ALLOW`, `WEBHOOK_SECRET`), so that
    /// their errors read like every other setting's.
    pub fn invalid(&self, setting: Setting, text: &str) -> SettingError {
        resolve::invalid(setting, text, self.origin(setting).clone())
    }

    /// Where a generated signing key is kept: `DATA_DIR/signing.key`.
    pub fn signing_key_file(&self) -> PathBuf {
        self.data_dir.join("signing.key")
    }

    /// The base of the URLs handed to clients: `PUBLIC_URL`, else
    /// `http://` and `LISTEN`. Never taken from a request's `Host` header,
    /// which the client controls.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

fn seconds(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn redacted(set: bool) -> String {
    if set { "<redacted>" } else { "-" }.to_owned()
}

/// Where a JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file, read at start.
    File(PathBuf),
    /// An https URL (http for localhost), fetched when a token names a key
    /// id it does not have.
    Url(String),
}

impl fmt::Display for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            JwksSource::Url(url) => f.write_str(url),
        }
    }
}

/// The `JWT_*` settings: which JWTs the API accepts as bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// `JWT_SECRET`: the HS256 shared secret.
    pub secret: Option<SigningKey>,
    /// `JWT_JWKS`: the public keys (RS256, ES256, EdDSA, ...).
    pub jwks: Option<JwksSource>,
    /// `JWT_ISSUER`: the required `iss`, when set.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: `aud` must name one of these, when any are set.
    pub audience: Vec<String>,
    /// `JWT_USER_CLAIM`: the claim holding the user id (default `sub`).
    pub user_claim: String,
    /// `JWT_ADMIN`: a claim and the value that makes the caller an admin.
    pub admin: Option<(String, String)>,
    /// `JWKS_REFRESH_SECONDS`: the shortest time between two fetches of a
    /// JWKS URL, so tokens with made-up key ids cannot make it hammer the
    /// auth server.
    pub jwks_refresh: Duration,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            secret: None,
            jwks: None,
            issuer: None,
            audience: Vec::new(),
            user_claim: "sub".to_owned(),
            admin: None,
            jwks_refresh: Duration::from_secs(60),
        }
    }
}

impl JwtSettings {
    /// Whether JWTs are accepted at all (a key is configured).
    pub fn enabled(&self) -> bool {
        self.secret.is_some() || self.jwks.is_some()
    }
}

/// Limits that keep one client, user or stuck export from starving the
/// rest: connection timeouts and cap, request sizes, records per user, the
/// lease and the shutdown grace. docs/operations.md says when to change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guards {
    /// `HEADER_READ_TIMEOUT`: time a client has to send a request head;
    /// also how long a kept-alive connection may wait for the next one.
    pub header_read_timeout: Duration,
    /// `IDLE_TIMEOUT`: time a connection may move no byte either way.
    pub idle_timeout: Duration,
    /// `MAX_CONNECTIONS`: connections served at once; `None` derives it
    /// from the open-file limit.
    pub max_connections: Option<usize>,
    /// `MAX_SELECTOR_BYTES`: largest request selector, as JSON.
    pub max_selector_bytes: usize,
    /// `MAX_OPTIONS_BYTES`: largest request options, as JSON.
    pub max_options_bytes: usize,
    /// `MAX_STORED_PER_USER`: most records (any status) kept per user.
    pub max_stored_per_user: u64,
    /// `LEASE_SECONDS`: how long a claimed export lasts without a heartbeat.
    pub lease: Duration,
    /// `SHUTDOWN_GRACE`: how long running exports may finish on SIGTERM.
    pub shutdown_grace: Duration,
}

impl Default for Guards {
    fn default() -> Self {
        Guards {
            header_read_timeout: Duration::from_secs(10),
            // Longer than the longest `?wait=` a status request may hold.
            idle_timeout: Duration::from_secs(330),
            max_connections: None,
            max_selector_bytes: 64 * 1024,
            max_options_bytes: 64 * 1024,
            max_stored_per_user: 10_000,
            lease: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests;
