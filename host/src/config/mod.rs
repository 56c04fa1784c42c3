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

use crate::storage::StorageUrl;
use crate::webhooks::{AllowList, WebhookSecret, WebhookSettings};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of every settings environment variable.
pub const ENV_PREFIX: &str = "EXPORT_HOST_";
/// Environment variable naming the config file (like `--config`).
pub const CONFIG_ENV: &str = "EXPORT_HOST_CONFIG";
/// Set by systemd for `StateDirectory=`; the default `DATA_DIR` when present.
pub const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";

/// One host setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// `DATA_DIR`
    DataDir,
    /// `DATABASE_URL`
    DatabaseUrl,
    /// `STORAGE`
    Storage,
    /// `LISTEN`
    Listen,
    /// `PLUGINS`
    Plugins,
    /// `EXPIRATION_HOURS`
    ExpirationHours,
    /// `MAX_ROWS`
    MaxRows,
    /// `MAX_FILE_SIZE_MB`
    MaxFileSizeMb,
    /// `MAX_PER_USER`
    MaxPerUser,
    /// `WORKERS`
    Workers,
    /// `CLEANUP_INTERVAL`
    CleanupInterval,
    /// `RETENTION_DAYS`
    RetentionDays,
    /// `CACHE_TTL_MINUTES`
    CacheTtlMinutes,
    /// `SIGNING_KEY`
    SigningKey,
    /// `BATCH_SIZE`
    BatchSize,
    /// `DOWNLOAD_REDIRECT`
    DownloadRedirect,
    /// `PUBLIC_URL`
    PublicUrl,
    /// `SIGNING_KEY_PREVIOUS`
    SigningKeyPrevious,
    /// `JWT_SECRET`
    JwtSecret,
    /// `JWT_JWKS`
    JwtJwks,
    /// `JWT_ISSUER`
    JwtIssuer,
    /// `JWT_AUDIENCE`
    JwtAudience,
    /// `JWT_USER_CLAIM`
    JwtUserClaim,
    /// `JWT_ADMIN`
    JwtAdmin,
    /// `HEADER_READ_TIMEOUT`
    HeaderReadTimeout,
    /// `IDLE_TIMEOUT`
    IdleTimeout,
    /// `MAX_CONNECTIONS`
    MaxConnections,
    /// `MAX_SELECTOR_BYTES`
    MaxSelectorBytes,
    /// `MAX_OPTIONS_BYTES`
    MaxOptionsBytes,
    /// `MAX_STORED_PER_USER`
    MaxStoredPerUser,
    /// `LEASE_SECONDS`
    LeaseSeconds,
    /// `SHUTDOWN_GRACE`
    ShutdownGrace,
    /// `JWKS_REFRESH_SECONDS`
    JwksRefreshSeconds,
    /// `WEBHOOK_ALLOW`
    WebhookAllow,
    /// `WEBHOOK_SECRET`
    WebhookSecret,
    /// `WEBHOOK_BACKOFF`
    WebhookBackoff,
}

impl Setting {
    /// Every setting, in table order.
    pub const ALL: [Setting; 36] = [
        Setting::DataDir,
        Setting::DatabaseUrl,
        Setting::Storage,
        Setting::Listen,
        Setting::Plugins,
        Setting::ExpirationHours,
        Setting::MaxRows,
        Setting::MaxFileSizeMb,
        Setting::MaxPerUser,
        Setting::Workers,
        Setting::CleanupInterval,
        Setting::RetentionDays,
        Setting::CacheTtlMinutes,
        Setting::SigningKey,
        Setting::BatchSize,
        Setting::DownloadRedirect,
        Setting::PublicUrl,
        Setting::SigningKeyPrevious,
        Setting::JwtSecret,
        Setting::JwtJwks,
        Setting::JwtIssuer,
        Setting::JwtAudience,
        Setting::JwtUserClaim,
        Setting::JwtAdmin,
        Setting::HeaderReadTimeout,
        Setting::IdleTimeout,
        Setting::MaxConnections,
        Setting::MaxSelectorBytes,
        Setting::MaxOptionsBytes,
        Setting::MaxStoredPerUser,
        Setting::LeaseSeconds,
        Setting::ShutdownGrace,
        Setting::JwksRefreshSeconds,
        Setting::WebhookAllow,
        Setting::WebhookSecret,
        Setting::WebhookBackoff,
    ];

    /// The name, as README.md and `--help` spell it: `MAX_ROWS`.
    pub fn name(self) -> &'static str {
        match self {
            Setting::DataDir => "DATA_DIR",
            Setting::DatabaseUrl => "DATABASE_URL",
            Setting::Storage => "STORAGE",
            Setting::Listen => "LISTEN",
            Setting::Plugins => "PLUGINS",
            Setting::ExpirationHours => "EXPIRATION_HOURS",
            Setting::MaxRows => "MAX_ROWS",
            Setting::MaxFileSizeMb => "MAX_FILE_SIZE_MB",
            Setting::MaxPerUser => "MAX_PER_USER",
            Setting::Workers => "WORKERS",
            Setting::CleanupInterval => "CLEANUP_INTERVAL",
            Setting::RetentionDays => "RETENTION_DAYS",
            Setting::CacheTtlMinutes => "CACHE_TTL_MINUTES",
            Setting::SigningKey => "SIGNING_KEY",
            Setting::BatchSize => "BATCH_SIZE",
            Setting::DownloadRedirect => "DOWNLOAD_REDIRECT",
            Setting::PublicUrl => "PUBLIC_URL",
            Setting::SigningKeyPrevious => "SIGNING_KEY_PREVIOUS",
            Setting::JwtSecret => "JWT_SECRET",
            Setting::JwtJwks => "JWT_JWKS",
            Setting::JwtIssuer => "JWT_ISSUER",
            Setting::JwtAudience => "JWT_AUDIENCE",
            Setting::JwtUserClaim => "JWT_USER_CLAIM",
            Setting::JwtAdmin => "JWT_ADMIN",
            Setting::HeaderReadTimeout => "HEADER_READ_TIMEOUT",
            Setting::IdleTimeout => "IDLE_TIMEOUT",
            Setting::MaxConnections => "MAX_CONNECTIONS",
            Setting::MaxSelectorBytes => "MAX_SELECTOR_BYTES",
            Setting::MaxOptionsBytes => "MAX_OPTIONS_BYTES",
            Setting::MaxStoredPerUser => "MAX_STORED_PER_USER",
            Setting::LeaseSeconds => "LEASE_SECONDS",
            Setting::ShutdownGrace => "SHUTDOWN_GRACE",
            Setting::JwksRefreshSeconds => "JWKS_REFRESH_SECONDS",
            Setting::WebhookAllow => "WEBHOOK_ALLOW",
            Setting::WebhookSecret => "WEBHOOK_SECRET",
            Setting::WebhookBackoff => "WEBHOOK_BACKOFF",
        }
    }

    /// The config-file key: `max_rows`.
    pub fn key(self) -> String {
        self.name().to_ascii_lowercase()
    }

    /// The environment variable: `EXPORT_HOST_MAX_ROWS`.
    pub fn env_var(self) -> String {
        format!("{ENV_PREFIX}{}", self.name())
    }

    /// The command-line flag: `--max-rows`.
    pub fn flag(self) -> String {
        format!("--{}", self.name().to_ascii_lowercase().replace('_', "-"))
    }

    /// What is accepted, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Setting::DataDir => "expected a directory path, e.g. /var/lib/export-host",
            Setting::DatabaseUrl => {
                "expected sqlite://PATH or postgres://USER@HOST/DATABASE, e.g. sqlite://./data/exports.db"
            }
            Setting::Storage => {
                "expected file:///absolute/path, a directory path, or s3://bucket/prefix, e.g. file:///var/lib/export-host/files"
            }
            Setting::Listen => "expected an IP address and port, e.g. 127.0.0.1:8080 or [::]:8080",
            Setting::Plugins => "expected the path of the plugin registry, e.g. ./plugins.toml",
            Setting::ExpirationHours => "expected a whole number of hours from 1 to 87600, e.g. 24",
            Setting::MaxRows => "expected a whole number of rows, at least 1, e.g. 10000000",
            Setting::MaxFileSizeMb => {
                "expected a whole number of megabytes from 1 to 16777216, e.g. 1024"
            }
            Setting::MaxPerUser => {
                "expected a whole number of active exports per user from 1 to 1000000, e.g. 20"
            }
            Setting::Workers => "expected a whole number of workers from 1 to 1024, e.g. 4",
            Setting::CleanupInterval => {
                "expected a duration from 1s to 7days, e.g. 10m, 30s or 1h"
            }
            Setting::RetentionDays => "expected a whole number of days from 0 to 36500, e.g. 7",
            Setting::CacheTtlMinutes => {
                "expected a whole number of minutes from 0 (off) to 525600, e.g. 60"
            }
            Setting::SigningKey => {
                "expected at least 32 characters without spaces, e.g. the output of `openssl rand -hex 32`"
            }
            Setting::BatchSize => {
                "expected a whole number of rows per batch from 1 to 1048576, e.g. 8192"
            }
            Setting::DownloadRedirect => {
                "expected on or off (default off); on needs STORAGE=s3://bucket/prefix"
            }
            Setting::PublicUrl => {
                "expected the http:// or https:// URL clients reach the API at, without query or fragment, e.g. https://exports.example.com"
            }
            Setting::SigningKeyPrevious => {
                "expected the former SIGNING_KEY (at least 32 characters without spaces), kept while links signed with it may still be used"
            }
            Setting::JwtSecret => {
                "expected the HS256 shared secret of your auth server, at least 32 characters without spaces"
            }
            Setting::JwtJwks => {
                "expected a JWKS file path or an https:// URL (http:// only for localhost), e.g. https://auth.example.com/.well-known/jwks.json"
            }
            Setting::JwtIssuer => {
                "expected the `iss` value of your auth server's tokens, e.g. https://auth.example.com/; needs JWT_SECRET or JWT_JWKS"
            }
            Setting::JwtAudience => {
                "expected one or more `aud` values, comma-separated, e.g. authenticated; needs JWT_SECRET or JWT_JWKS"
            }
            Setting::JwtUserClaim => {
                "expected the name of the claim holding the user id (default sub), e.g. sub or user_id"
            }
            Setting::JwtAdmin => {
                "expected claim=value naming admins, e.g. role=service_role; needs JWT_SECRET or JWT_JWKS"
            }
            Setting::HeaderReadTimeout => "expected a duration from 1s to 1day (a bare number is seconds), e.g. 10s",
            Setting::IdleTimeout => "expected a duration from 1s to 1day (a bare number is seconds), longer than the longest ?wait=, e.g. 330s",
            Setting::MaxConnections => "expected a whole number of connections from 1 to 1000000, e.g. 4096 (default: from the open-file limit)",
            Setting::MaxSelectorBytes => "expected a whole number of bytes from 1024 to 16777216, e.g. 65536",
            Setting::MaxOptionsBytes => "expected a whole number of bytes from 1024 to 16777216, e.g. 65536",
            Setting::MaxStoredPerUser => "expected a whole number of records per user from 1 to 100000000, e.g. 10000",
            Setting::LeaseSeconds => "expected a whole number of seconds from 2 to 3600, e.g. 60",
            Setting::ShutdownGrace => "expected a duration from 0s to 1day (a bare number is seconds), e.g. 30s",
            Setting::JwksRefreshSeconds => "expected a whole number of seconds from 1 to 86400 between two fetches of JWT_JWKS, e.g. 60",
            Setting::WebhookAllow => "expected comma-separated http:// or https:// URL prefixes without user, query or fragment, e.g. https://hooks.example.com/exports/,http://127.0.0.1:9000/",
            Setting::WebhookSecret => "expected at least 16 characters without spaces, e.g. the output of `openssl rand -hex 32`",
            Setting::WebhookBackoff => "expected a duration from 10ms to 1h (a bare number is seconds), e.g. 1s; shorter than 1s is for tests",
        }
    }

    /// Whether values are secret (never echoed in messages).
    fn is_secret(self) -> bool {
        matches!(
            self,
            Setting::SigningKey
                | Setting::SigningKeyPrevious
                | Setting::JwtSecret
                | Setting::WebhookSecret
        )
    }

    fn arg(self, args: &SettingsArgs) -> Option<&String> {
        match self {
            Setting::DataDir => args.data_dir.as_ref(),
            Setting::DatabaseUrl => args.database_url.as_ref(),
            Setting::Storage => args.storage.as_ref(),
            Setting::Listen => args.listen.as_ref(),
            Setting::Plugins => args.plugins.as_ref(),
            Setting::ExpirationHours => args.expiration_hours.as_ref(),
            Setting::MaxRows => args.max_rows.as_ref(),
            Setting::MaxFileSizeMb => args.max_file_size_mb.as_ref(),
            Setting::MaxPerUser => args.max_per_user.as_ref(),
            Setting::Workers => args.workers.as_ref(),
            Setting::CleanupInterval => args.cleanup_interval.as_ref(),
            Setting::RetentionDays => args.retention_days.as_ref(),
            Setting::CacheTtlMinutes => args.cache_ttl_minutes.as_ref(),
            Setting::SigningKey => args.signing_key.as_ref(),
            Setting::BatchSize => args.batch_size.as_ref(),
            Setting::DownloadRedirect => args.download_redirect.as_ref(),
            Setting::PublicUrl => args.public_url.as_ref(),
            Setting::SigningKeyPrevious => args.signing_key_previous.as_ref(),
            Setting::JwtSecret => args.jwt_secret.as_ref(),
            Setting::JwtJwks => args.jwt_jwks.as_ref(),
            Setting::JwtIssuer => args.jwt_issuer.as_ref(),
            Setting::JwtAudience => args.jwt_audience.as_ref(),
            Setting::JwtUserClaim => args.jwt_user_claim.as_ref(),
            Setting::JwtAdmin => args.jwt_admin.as_ref(),
            Setting::HeaderReadTimeout => args.header_read_timeout.as_ref(),
            Setting::IdleTimeout => args.idle_timeout.as_ref(),
            Setting::MaxConnections => args.max_connections.as_ref(),
            Setting::MaxSelectorBytes => args.max_selector_bytes.as_ref(),
            Setting::MaxOptionsBytes => args.max_options_bytes.as_ref(),
            Setting::MaxStoredPerUser => args.max_stored_per_user.as_ref(),
            Setting::LeaseSeconds => args.lease_seconds.as_ref(),
            Setting::ShutdownGrace => args.shutdown_grace.as_ref(),
            Setting::JwksRefreshSeconds => args.jwks_refresh_seconds.as_ref(),
            Setting::WebhookAllow => args.webhook_allow.as_ref(),
            Setting::WebhookSecret => args.webhook_secret.as_ref(),
            Setting::WebhookBackoff => args.webhook_backoff.as_ref(),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--max-rows`.
    Flag(String),
    /// An environment variable, e.g. `EXPORT_HOST_MAX_ROWS`.
    Env(String),
    /// A key of the config file.
    File {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The key, e.g. `max_rows`.
        key: String,
    },
    /// `$STATE_DIRECTORY` (systemd), the default `DATA_DIR`.
    StateDirectory,
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(var) => f.write_str(var),
            Origin::File {
                path: Some(path),
                key,
            } => write!(f, "{key} in {}", path.display()),
            Origin::File { path: None, key } => write!(f, "{key} in the config file"),
            Origin::StateDirectory => f.write_str(STATE_DIRECTORY_ENV),
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// Why the settings could not be resolved. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// A value that is not accepted.
    #[error("invalid setting {setting}={value} (from {origin}): {expected}")]
    Invalid {
        /// The setting.
        setting: Setting,
        /// The value, quoted (secrets and passwords redacted).
        value: String,
        /// Where it came from.
        origin: Origin,
        /// What is accepted.
        expected: String,
    },
    /// A key of the config file that is not a setting.
    #[error("unknown setting {key:?} in config file {file}{hint}; valid settings: {valid}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        file: String,
        /// ` (did you mean "max_rows"?)` or empty.
        hint: String,
        /// The valid keys, comma-separated.
        valid: String,
    },
    /// An environment variable that is set but not UTF-8.
    #[error("environment variable {var} is not valid UTF-8; set it to UTF-8 text or unset it")]
    NotUtf8 {
        /// The variable.
        var: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {} (from {origin}): {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {} is not valid TOML{at}: {message}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// ` at line N` or empty.
        at: String,
        /// The parser's message (one line).
        message: String,
    },
}

/// A signing key. Never printed: `Debug` and `Display` show `<redacted>`.
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
    /// `STORAGE`: where export files are kept.
    pub storage: StorageUrl,
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
    /// `WEBHOOK_*`: where `callback_url`s may point, the signing secret and
    /// the retry wait.
    pub webhooks: WebhookSettings,
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
                    Setting::Storage => self.storage.to_string(),
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
                        if self.webhooks.allow.is_empty() {
                            "-".to_owned()
                        } else {
                            self.webhooks.allow.display()
                        }
                    }
                    Setting::WebhookSecret => redacted(self.webhooks.secret.is_some()),
                    Setting::WebhookBackoff => seconds(self.webhooks.backoff_base),
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
        matches!(&self.storage, StorageUrl::S3 { options, .. } if options.redirect_downloads)
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

/// The settings flags, as raw text: [`resolve`] parses and validates them so
/// that every bad value, whatever its source, fails the same way. Flatten
/// into the top-level parser with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsArgs {
    /// Read settings from this TOML file (lower-case keys, e.g. `max_rows = 5`); flags and EXPORT_HOST_* variables override it. [env: EXPORT_HOST_CONFIG]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the database, files and signing key. [env: EXPORT_HOST_DATA_DIR] [default: ./data, or $STATE_DIRECTORY]
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<String>,
    /// Database: sqlite://PATH or postgres://... [env: EXPORT_HOST_DATABASE_URL] [default: sqlite://$DATA_DIR/exports.db]
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// Where export files are kept: file:///PATH, a directory, or s3://bucket/prefix. [env: EXPORT_HOST_STORAGE] [default: file://$DATA_DIR/files]
    #[arg(long, value_name = "URL", global = true)]
    pub storage: Option<String>,
    /// Address of the HTTP API. [env: EXPORT_HOST_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub listen: Option<String>,
    /// The plugin registry. [env: EXPORT_HOST_PLUGINS] [default: ./plugins.toml]
    #[arg(long, value_name = "FILE", global = true)]
    pub plugins: Option<String>,
    /// Hours a completed export stays downloadable. [env: EXPORT_HOST_EXPIRATION_HOURS] [default: 24]
    #[arg(long, value_name = "HOURS", global = true)]
    pub expiration_hours: Option<String>,
    /// Most rows one export may have. [env: EXPORT_HOST_MAX_ROWS] [default: 10000000]
    #[arg(long, value_name = "ROWS", global = true)]
    pub max_rows: Option<String>,
    /// Largest file one export may produce, in MB after compression. [env: EXPORT_HOST_MAX_FILE_SIZE_MB] [default: 1024]
    #[arg(long, value_name = "MB", global = true)]
    pub max_file_size_mb: Option<String>,
    /// Most active exports per user. [env: EXPORT_HOST_MAX_PER_USER] [default: 20]
    #[arg(long, value_name = "N", global = true)]
    pub max_per_user: Option<String>,
    /// Exports run at once. [env: EXPORT_HOST_WORKERS] [default: number of CPUs]
    #[arg(long, value_name = "N", global = true)]
    pub workers: Option<String>,
    /// Time between cleanup passes, e.g. 10m. [env: EXPORT_HOST_CLEANUP_INTERVAL] [default: 10m]
    #[arg(long, value_name = "DURATION", global = true)]
    pub cleanup_interval: Option<String>,
    /// Days an expired or failed record is kept before it is purged. [env: EXPORT_HOST_RETENTION_DAYS] [default: 7]
    #[arg(long, value_name = "DAYS", global = true)]
    pub retention_days: Option<String>,
    /// Minutes within which an identical request by the same user returns the existing export; 0 is off. [env: EXPORT_HOST_CACHE_TTL_MINUTES] [default: 0]
    #[arg(long, value_name = "MINUTES", global = true)]
    pub cache_ttl_minutes: Option<String>,
    /// Key that signs download links; prefer the environment or the config file, since a flag is visible to other local users. [env: EXPORT_HOST_SIGNING_KEY] [default: generated in DATA_DIR]
    #[arg(long, value_name = "KEY", global = true)]
    pub signing_key: Option<String>,
    /// Rows per batch asked of loaders; larger batches use more memory. [env: EXPORT_HOST_BATCH_SIZE] [default: 8192]
    #[arg(long, value_name = "ROWS", global = true)]
    pub batch_size: Option<String>,
    /// Answer downloads with a redirect to a presigned S3 URL (on/off); the daemon then serves no file bytes. [env: EXPORT_HOST_DOWNLOAD_REDIRECT] [default: off]
    #[arg(long, value_name = "on|off", global = true)]
    pub download_redirect: Option<String>,
    /// The URL clients reach the API at, used in the download links it hands out (behind a proxy: its https address). [env: EXPORT_HOST_PUBLIC_URL] [default: http://LISTEN]
    #[arg(long, value_name = "URL", global = true)]
    pub public_url: Option<String>,
    /// The former SIGNING_KEY during a rotation: links signed with it still verify, new links use SIGNING_KEY. [env: EXPORT_HOST_SIGNING_KEY_PREVIOUS]
    #[arg(long, value_name = "KEY", global = true)]
    pub signing_key_previous: Option<String>,
    /// Accept HS256 JWTs signed with this shared secret as bearer tokens; prefer the environment or the config file. [env: EXPORT_HOST_JWT_SECRET]
    #[arg(long, value_name = "SECRET", global = true)]
    pub jwt_secret: Option<String>,
    /// Accept JWTs signed with the keys of this JWKS (a file, or an https URL re-fetched on an unknown key id). [env: EXPORT_HOST_JWT_JWKS]
    #[arg(long, value_name = "FILE|URL", global = true)]
    pub jwt_jwks: Option<String>,
    /// Accept only JWTs with this `iss`. [env: EXPORT_HOST_JWT_ISSUER]
    #[arg(long, value_name = "ISS", global = true)]
    pub jwt_issuer: Option<String>,
    /// Accept only JWTs whose `aud` names one of these (comma-separated). [env: EXPORT_HOST_JWT_AUDIENCE]
    #[arg(long, value_name = "AUD", global = true)]
    pub jwt_audience: Option<String>,
    /// The JWT claim holding the user id. [env: EXPORT_HOST_JWT_USER_CLAIM] [default: sub]
    #[arg(long, value_name = "CLAIM", global = true)]
    pub jwt_user_claim: Option<String>,
    /// A JWT whose claim has this value is an admin, e.g. role=service_role (an array claim may contain it). [env: EXPORT_HOST_JWT_ADMIN]
    #[arg(long, value_name = "CLAIM=VALUE", global = true)]
    pub jwt_admin: Option<String>,
    /// Time a client has to send a request head, and that a kept-alive connection may wait for the next. [env: EXPORT_HOST_HEADER_READ_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub header_read_timeout: Option<String>,
    /// Time a connection may move no byte either way before it is closed. [env: EXPORT_HOST_IDLE_TIMEOUT] [default: 330s]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub idle_timeout: Option<String>,
    /// Connections served at once; past it new ones wait or get 503. [env: EXPORT_HOST_MAX_CONNECTIONS] [default: from the open-file limit]
    #[arg(long, value_name = "N", global = true)]
    pub max_connections: Option<String>,
    /// Largest request selector, as JSON. [env: EXPORT_HOST_MAX_SELECTOR_BYTES] [default: 65536]
    #[arg(long, value_name = "BYTES", global = true)]
    pub max_selector_bytes: Option<String>,
    /// Largest request options, as JSON. [env: EXPORT_HOST_MAX_OPTIONS_BYTES] [default: 65536]
    #[arg(long, value_name = "BYTES", global = true)]
    pub max_options_bytes: Option<String>,
    /// Most export records (failed ones included) kept per user. [env: EXPORT_HOST_MAX_STORED_PER_USER] [default: 10000]
    #[arg(long, value_name = "N", global = true)]
    pub max_stored_per_user: Option<String>,
    /// How long a claimed export lasts without a heartbeat before another daemon may take it. [env: EXPORT_HOST_LEASE_SECONDS] [default: 60]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub lease_seconds: Option<String>,
    /// How long running exports may finish on SIGTERM before they go back to the queue. [env: EXPORT_HOST_SHUTDOWN_GRACE] [default: 30s]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub shutdown_grace: Option<String>,
    /// Shortest time between two fetches of a JWT_JWKS URL. [env: EXPORT_HOST_JWKS_REFRESH_SECONDS] [default: 60]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub jwks_refresh_seconds: Option<String>,
    /// URL prefixes a request's callback_url may start with (comma-separated); internal addresses only when a prefix names that host. [env: EXPORT_HOST_WEBHOOK_ALLOW] [default: none, callbacks refused]
    #[arg(long, value_name = "PREFIXES", global = true)]
    pub webhook_allow: Option<String>,
    /// Secret that signs webhook deliveries (Export-Host-Signature); prefer the environment or the config file. [env: EXPORT_HOST_WEBHOOK_SECRET] [default: none, callbacks refused]
    #[arg(long, value_name = "SECRET", global = true)]
    pub webhook_secret: Option<String>,
    /// Wait after a webhook's first failed attempt, doubling after each further one (at most 1h); below 1s only for tests. [env: EXPORT_HOST_WEBHOOK_BACKOFF] [default: 1s]
    #[arg(long, value_name = "DURATION", global = true)]
    pub webhook_backoff: Option<String>,
}

/// The config file to read, if any, and where its name came from:
/// `--config` over `EXPORT_HOST_CONFIG` (empty counts as unset).
pub fn config_path(
    args: &SettingsArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(PathBuf, Origin)> {
    if let Some(path) = &args.config {
        return Some((path.clone(), Origin::Flag("--config".to_owned())));
    }
    env(CONFIG_ENV)
        .filter(|v| !v.trim().is_empty())
        .map(|v| (PathBuf::from(v), Origin::Env(CONFIG_ENV.to_owned())))
}

/// Reads and parses a config file (keys are checked by [`resolve`]).
pub fn load_config_file(path: &Path, origin: Origin) -> Result<toml::Table, SettingError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingError::ReadFile {
        path: path.to_path_buf(),
        origin,
        source,
    })?;
    parse_config(&text, path)
}

/// Parses config-file text (`path` is for messages).
pub fn parse_config(text: &str, path: &Path) -> Result<toml::Table, SettingError> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let line = text
                    .get(..span.start)
                    .map_or(0, |head| head.matches('\n').count())
                    + 1;
                format!(" at line {line}")
            })
            .unwrap_or_default();
        SettingError::ParseFile {
            path: path.to_path_buf(),
            at,
            message: one_line(e.message()),
        }
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The raw value of one setting and its origin, by precedence.
struct Raw {
    text: String,
    origin: Origin,
}

struct Sources<'a> {
    args: &'a SettingsArgs,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<&'a toml::Table>,
    file_path: Option<PathBuf>,
}

impl Sources<'_> {
    fn raw(&self, setting: Setting) -> Option<Raw> {
        if let Some(text) = setting.arg(self.args) {
            return Some(Raw {
                text: text.clone(),
                origin: Origin::Flag(setting.flag()),
            });
        }
        let var = setting.env_var();
        if let Some(text) = (self.env)(&var).filter(|v| !v.trim().is_empty()) {
            return Some(Raw {
                text,
                origin: Origin::Env(var),
            });
        }
        let key = setting.key();
        self.file
            .and_then(|table| table.get(&key))
            .map(|value| Raw {
                text: match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                origin: Origin::File {
                    path: self.file_path.clone(),
                    key,
                },
            })
    }
}

fn invalid(setting: Setting, text: &str, origin: Origin) -> SettingError {
    let value = if setting.is_secret() {
        format!("<redacted, {} characters>", text.chars().count())
    } else if setting == Setting::DatabaseUrl {
        format!("{:?}", redact_url(text))
    } else {
        format!("{text:?}")
    };
    SettingError::Invalid {
        setting,
        value,
        origin,
        expected: setting.expected().to_owned(),
    }
}

/// Hides the password of `scheme://user:password@host/...`.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// A whole number, allowing `_` between digits (`10_000_000`).
fn whole_number(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty()
        || text.starts_with('_')
        || text.ends_with('_')
        || !text.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    text.replace('_', "").parse().ok()
}

fn in_range(text: &str, min: u64, max: u64) -> Option<u64> {
    whole_number(text).filter(|n| (min..=max).contains(n))
}

fn non_empty_path(text: &str) -> Option<PathBuf> {
    let text = text.trim();
    (!text.is_empty() && !text.contains('\0')).then(|| PathBuf::from(text))
}

fn database_url(text: &str) -> Option<String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let ok = (lower.starts_with("sqlite:") && text.len() > "sqlite:".len())
        || (lower.starts_with("postgres://") && text.len() > "postgres://".len())
        || (lower.starts_with("postgresql://") && text.len() > "postgresql://".len());
    (ok && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

fn on_off(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(7 * 86_400))
}

/// A duration from `min` to one day: humantime text (`10s`, `5m`) or a
/// bare number of seconds.
fn timeout(text: &str, min: Duration) -> Option<Duration> {
    let text = text.trim();
    whole_number(text)
        .map(Duration::from_secs)
        .or_else(|| humantime::parse_duration(text).ok())
        .filter(|d| *d >= min && *d <= Duration::from_secs(86_400))
}

/// `WEBHOOK_BACKOFF`: like [`timeout`] but from 10ms to an hour, so tests
/// can make retries quick.
fn webhook_backoff(text: &str) -> Option<Duration> {
    let text = text.trim();
    whole_number(text)
        .map(Duration::from_secs)
        .or_else(|| humantime::parse_duration(text).ok())
        .filter(|d| *d >= Duration::from_millis(10) && *d <= Duration::from_secs(3600))
}

/// `http(s)://host[:port][/prefix]`, kept without a trailing slash.
fn public_url(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/');
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    let ok = !host.is_empty()
        && !host.contains('@')
        && !rest.contains(['?', '#'])
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| text.to_owned())
}

/// Whether an http URL points at this machine (the only place a JWKS may be
/// fetched without TLS).
fn is_loopback_url(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn jwks_source(text: &str) -> Option<JwksSource> {
    let text = text.trim();
    if text.is_empty() || text.chars().any(char::is_control) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return (text.len() > "https://".len()).then(|| JwksSource::Url(text.to_owned()));
    }
    if lower.starts_with("http://") {
        let rest = &text["http://".len()..];
        return is_loopback_url(rest).then(|| JwksSource::Url(text.to_owned()));
    }
    if lower.contains("://") {
        return None;
    }
    Some(JwksSource::File(PathBuf::from(text)))
}

fn plain_text(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

fn claim_name(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '='))
    .then(|| text.to_owned())
}

fn audiences(text: &str) -> Option<Vec<String>> {
    let list: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    (!list.is_empty() && !list.iter().any(|a| a.chars().any(char::is_control))).then_some(list)
}

fn admin_claim(text: &str) -> Option<(String, String)> {
    let (claim, value) = text.split_once('=')?;
    let claim = claim_name(claim)?;
    let value = plain_text(value)?;
    Some((claim, value))
}

fn signing_key(text: &str) -> Option<SigningKey> {
    let text = text.trim();
    (text.chars().count() >= 32 && !text.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| SigningKey(text.to_owned()))
}

/// The default `DATA_DIR`: the first entry of `$STATE_DIRECTORY` (systemd
/// may list several, colon-separated), else `./data`.
fn default_data_dir(env: &dyn Fn(&str) -> Option<String>) -> (PathBuf, Origin) {
    match env(STATE_DIRECTORY_ENV)
        .and_then(|v| v.split(':').next().map(str::trim).map(str::to_owned))
        .filter(|v| !v.is_empty())
    {
        Some(dir) => (PathBuf::from(dir), Origin::StateDirectory),
        None => (PathBuf::from("./data"), Origin::Default),
    }
}

/// The default `STORAGE`: `file://$DATA_DIR/files`, or the plain path
/// `$DATA_DIR/files` when `DATA_DIR` is relative (a file URL cannot be).
fn default_storage(data_dir: &Path) -> StorageUrl {
    StorageUrl::Local(data_dir.join("files"))
}

/// The default `DATABASE_URL`: `sqlite://$DATA_DIR/exports.db`.
fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("exports.db").display())
}

/// The number of CPUs, the default `WORKERS`.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks that every key of the config file is a setting.
fn check_keys(table: &toml::Table, file: &str) -> Result<(), SettingError> {
    let valid: Vec<String> = Setting::ALL.iter().map(|s| s.key()).collect();
    for key in table.keys() {
        if valid.iter().any(|v| v == key) {
            continue;
        }
        let lower = key.to_ascii_lowercase().replace('-', "_");
        let lower = lower.strip_prefix("export_host_").unwrap_or(&lower);
        let guess = valid.iter().find(|v| v.as_str() == lower).or_else(|| {
            valid
                .iter()
                .map(|v| (strsim::levenshtein(v, lower), v))
                .filter(|(d, _)| *d <= 2)
                .min_by_key(|(d, _)| *d)
                .map(|(_, v)| v)
        });
        return Err(SettingError::UnknownKey {
            key: key.clone(),
            file: file.to_owned(),
            hint: guess
                .map(|g| format!(" (did you mean {g:?}?)"))
                .unwrap_or_default(),
            valid: valid.join(", "),
        });
    }
    Ok(())
}

/// Resolves the settings from flags (`args`), the environment (`env`, given
/// a variable name) and a parsed config file (`file`), in that order of
/// precedence, then defaults. `$STATE_DIRECTORY` is read through `env` too.
/// The file's path, for messages, is taken from `args.config` or
/// `EXPORT_HOST_CONFIG`.
pub fn resolve(
    args: &SettingsArgs,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&toml::Table>,
) -> Result<HostSettings, SettingError> {
    let file_path = config_path(args, env).map(|(path, _)| path);
    if let Some(table) = file {
        let label = file_path
            .as_ref()
            .map_or_else(|| "(unnamed)".to_owned(), |p| p.display().to_string());
        check_keys(table, &label)?;
    }
    let sources = Sources {
        args,
        env,
        file,
        file_path,
    };
    let mut origins = BTreeMap::new();

    // Looks a setting up, parses it, records where it came from; `None`
    // when unset (the caller applies the default).
    macro_rules! get {
        ($setting:expr, $parse:expr) => {{
            let setting: Setting = $setting;
            match sources.raw(setting) {
                Some(raw) => match ($parse)(raw.text.as_str()) {
                    Some(value) => {
                        origins.insert(setting, raw.origin);
                        Some(value)
                    }
                    None => return Err(invalid(setting, &raw.text, raw.origin)),
                },
                None => None,
            }
        }};
    }

    let data_dir = match get!(Setting::DataDir, non_empty_path) {
        Some(dir) => dir,
        None => {
            let (dir, origin) = default_data_dir(env);
            origins.insert(Setting::DataDir, origin);
            dir
        }
    };
    let database_url =
        get!(Setting::DatabaseUrl, database_url).unwrap_or_else(|| default_database_url(&data_dir));
    let mut storage = get!(Setting::Storage, |t: &str| StorageUrl::parse(t.trim()).ok())
        .unwrap_or_else(|| default_storage(&data_dir));
    if let Some(raw) = sources.raw(Setting::DownloadRedirect) {
        let on = on_off(&raw.text);
        match (&mut storage, on) {
            (StorageUrl::S3 { options, .. }, Some(on)) => options.redirect_downloads = on,
            (StorageUrl::Local(_), Some(false)) => {}
            // Unparsable, or on without a bucket to redirect to.
            _ => return Err(invalid(Setting::DownloadRedirect, &raw.text, raw.origin)),
        }
        origins.insert(Setting::DownloadRedirect, raw.origin);
    }
    let listen = get!(Setting::Listen, |t: &str| t
        .trim()
        .parse::<SocketAddr>()
        .ok())
    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let plugins =
        get!(Setting::Plugins, non_empty_path).unwrap_or_else(|| PathBuf::from("./plugins.toml"));
    let expiration_hours = get!(Setting::ExpirationHours, |t| in_range(t, 1, 87_600)).unwrap_or(24);
    let max_rows = get!(Setting::MaxRows, |t| in_range(t, 1, u64::MAX)).unwrap_or(10_000_000);
    let max_file_size_mb =
        get!(Setting::MaxFileSizeMb, |t| in_range(t, 1, 16_777_216)).unwrap_or(1024);
    let max_per_user = get!(Setting::MaxPerUser, |t| in_range(t, 1, 1_000_000)
        .and_then(|n| u32::try_from(n).ok()))
    .unwrap_or(20);
    let workers = get!(Setting::Workers, |t| in_range(t, 1, 1024)
        .and_then(|n| usize::try_from(n).ok()))
    .unwrap_or_else(default_workers);
    let cleanup_interval =
        get!(Setting::CleanupInterval, duration).unwrap_or(Duration::from_secs(600));
    let retention_days = get!(Setting::RetentionDays, |t| in_range(t, 0, 36_500)).unwrap_or(7);
    let cache_ttl_minutes =
        get!(Setting::CacheTtlMinutes, |t| in_range(t, 0, 525_600)).unwrap_or(0);
    let signing_key = get!(Setting::SigningKey, signing_key);
    let batch_size = get!(Setting::BatchSize, |t| in_range(t, 1, 1_048_576)
        .and_then(|n| usize::try_from(n).ok()))
    .unwrap_or(8192);
    let public_url = get!(Setting::PublicUrl, public_url);
    let signing_key_previous = get!(Setting::SigningKeyPrevious, self::signing_key);
    let jwt = JwtSettings {
        secret: get!(Setting::JwtSecret, self::signing_key),
        jwks: get!(Setting::JwtJwks, jwks_source),
        issuer: get!(Setting::JwtIssuer, plain_text),
        audience: get!(Setting::JwtAudience, audiences).unwrap_or_default(),
        user_claim: get!(Setting::JwtUserClaim, claim_name).unwrap_or_else(|| "sub".to_owned()),
        admin: get!(Setting::JwtAdmin, admin_claim),
        jwks_refresh: get!(Setting::JwksRefreshSeconds, |t| in_range(t, 1, 86_400))
            .map_or(Duration::from_secs(60), Duration::from_secs),
    };
    let defaults = Guards::default();
    let bytes = |t: &str| in_range(t, 1024, 16 * 1024 * 1024).and_then(|n| usize::try_from(n).ok());
    let guards = Guards {
        header_read_timeout: get!(Setting::HeaderReadTimeout, |t| timeout(
            t,
            Duration::from_secs(1)
        ))
        .unwrap_or(defaults.header_read_timeout),
        idle_timeout: get!(Setting::IdleTimeout, |t| timeout(t, Duration::from_secs(1)))
            .unwrap_or(defaults.idle_timeout),
        max_connections: get!(Setting::MaxConnections, |t| in_range(t, 1, 1_000_000)
            .and_then(|n| usize::try_from(n).ok())),
        max_selector_bytes: get!(Setting::MaxSelectorBytes, bytes)
            .unwrap_or(defaults.max_selector_bytes),
        max_options_bytes: get!(Setting::MaxOptionsBytes, bytes)
            .unwrap_or(defaults.max_options_bytes),
        max_stored_per_user: get!(Setting::MaxStoredPerUser, |t| in_range(t, 1, 100_000_000))
            .unwrap_or(defaults.max_stored_per_user),
        lease: get!(Setting::LeaseSeconds, |t| in_range(t, 2, 3600))
            .map_or(defaults.lease, Duration::from_secs),
        shutdown_grace: get!(Setting::ShutdownGrace, |t| timeout(t, Duration::ZERO))
            .unwrap_or(defaults.shutdown_grace),
    };
    let webhooks = WebhookSettings {
        allow: get!(Setting::WebhookAllow, AllowList::parse).unwrap_or_default(),
        secret: get!(Setting::WebhookSecret, WebhookSecret::parse),
        backoff_base: get!(Setting::WebhookBackoff, webhook_backoff)
            .unwrap_or(WebhookSettings::BACKOFF_BASE),
    };
    if !jwt.enabled() {
        // A check that would never run is a mistake, not a default.
        for setting in [Setting::JwtIssuer, Setting::JwtAudience, Setting::JwtAdmin] {
            if let Some(raw) = sources.raw(setting) {
                return Err(SettingError::Invalid {
                    setting,
                    value: format!("{:?}", raw.text),
                    origin: raw.origin,
                    expected:
                        "it checks JWTs, which are off: set JWT_SECRET or JWT_JWKS too, or unset it"
                            .to_owned(),
                });
            }
        }
    }

    Ok(HostSettings {
        data_dir,
        database_url,
        storage,
        listen,
        plugins,
        expiration_hours,
        max_rows,
        max_file_size_mb,
        max_per_user,
        workers,
        cleanup_interval,
        retention_days,
        cache_ttl_minutes,
        signing_key,
        batch_size,
        public_url,
        signing_key_previous,
        jwt,
        guards,
        webhooks,
        origins,
    })
}

#[cfg(test)]
mod tests;
