//! The settings table: every setting's name, flag, variable, file key,
//! what it accepts and whether it is a secret.

use super::{SettingsArgs, ENV_PREFIX};
use std::fmt;

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
    pub(super) fn is_secret(self) -> bool {
        matches!(
            self,
            Setting::SigningKey
                | Setting::SigningKeyPrevious
                | Setting::JwtSecret
                | Setting::WebhookSecret
        )
    }

    pub(super) fn arg(self, args: &SettingsArgs) -> Option<&String> {
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
