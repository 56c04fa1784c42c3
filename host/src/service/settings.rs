//! The service's settings, converted from the host's: config hands over
//! plain values, and the text settings only the service's parts understand
//! (`STORAGE`, `DOWNLOAD_REDIRECT`, `WEBHOOK_*`) are parsed here, with
//! errors worded like config's own.

use crate::config::{HostSettings, Setting, SettingError};
use crate::pipeline::{self, RunLimits};
use crate::storage::StorageUrl;
use crate::webhooks::{AllowList, WebhookSecret, WebhookSettings};
use std::time::Duration;

/// The limits and timings the service works with; [`ServiceSettings::from_host`]
/// takes them from the host settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// `MAX_ROWS`.
    pub max_rows: u64,
    /// `MAX_FILE_SIZE_MB`.
    pub max_file_size_mb: u64,
    /// `BATCH_SIZE`.
    pub batch_size: usize,
    /// `MAX_PER_USER`: most pending or processing exports per user.
    pub max_per_user: u32,
    /// `EXPIRATION_HOURS`: how long a completed export stays downloadable.
    pub expiration: Duration,
    /// `RETENTION_DAYS`: how long expired, failed and cancelled records stay.
    pub retention: Duration,
    /// `CACHE_TTL_MINUTES`; `None` is off.
    pub cache_ttl: Option<Duration>,
    /// How long a claim lasts without a heartbeat. Also the age below which
    /// the orphan sweep leaves an unrecorded file alone (a worker may be
    /// about to record it).
    pub lease: Duration,
    /// How often a running export renews its lease (well under `lease`).
    pub heartbeat: Duration,
    /// Claims an export gets before a lost lease fails it.
    pub max_attempts: u32,
    /// Uploads not written to for this long are debris of a killed host.
    pub stale_upload_age: Duration,
    /// How large a request's selector, options and file name may be.
    pub size_limits: pipeline::SizeLimits,
    /// Most records (of any status, failed ones included) kept per user;
    /// past it new requests are refused until some are deleted or purged.
    pub max_stored_per_user: u64,
    /// `WEBHOOK_*`: where callbacks may go, what signs them, the retry wait.
    pub webhooks: WebhookSettings,
}

impl ServiceSettings {
    /// The default lease.
    pub const LEASE: Duration = Duration::from_secs(60);
    /// The default heartbeat interval.
    pub const HEARTBEAT: Duration = Duration::from_secs(15);
    /// The default number of claims per export.
    pub const MAX_ATTEMPTS: u32 = 3;
    /// The default number of records kept per user.
    pub const MAX_STORED_PER_USER: u64 = 10_000;
    /// The default age of a stale upload.
    pub const STALE_UPLOAD_AGE: Duration = Duration::from_secs(6 * 3600);

    /// The service settings the host settings imply (attempts and
    /// stale-upload age at their defaults; the heartbeat a quarter of the
    /// lease), or the one-line error of a `WEBHOOK_*` value the webhooks
    /// refuse.
    pub fn from_host(settings: &HostSettings) -> Result<ServiceSettings, SettingError> {
        Ok(ServiceSettings {
            max_rows: settings.max_rows,
            max_file_size_mb: settings.max_file_size_mb,
            batch_size: settings.batch_size,
            max_per_user: settings.max_per_user,
            expiration: settings.expiration(),
            retention: settings.retention(),
            cache_ttl: settings.cache_ttl(),
            lease: settings.guards.lease,
            heartbeat: settings.guards.lease / 4,
            size_limits: pipeline::SizeLimits::new(
                settings.guards.max_selector_bytes,
                settings.guards.max_options_bytes,
            ),
            max_stored_per_user: settings.guards.max_stored_per_user,
            webhooks: webhook_settings(settings)?,
            ..ServiceSettings::default()
        })
    }

    /// The caps one export runs under.
    pub fn run_limits(&self) -> RunLimits {
        RunLimits {
            max_rows: self.max_rows,
            max_bytes: self.max_file_size_mb.saturating_mul(1024 * 1024),
            batch_size: self.batch_size,
        }
    }
}

impl Default for ServiceSettings {
    /// The documented defaults (README.md, "Settings").
    fn default() -> Self {
        ServiceSettings {
            max_rows: 10_000_000,
            max_file_size_mb: 1024,
            batch_size: 8192,
            max_per_user: 20,
            expiration: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(7 * 86_400),
            cache_ttl: None,
            lease: Self::LEASE,
            heartbeat: Self::HEARTBEAT,
            max_attempts: Self::MAX_ATTEMPTS,
            stale_upload_age: Self::STALE_UPLOAD_AGE,
            size_limits: pipeline::SizeLimits::default(),
            max_stored_per_user: Self::MAX_STORED_PER_USER,
            webhooks: WebhookSettings::default(),
        }
    }
}

/// `STORAGE` (with `DOWNLOAD_REDIRECT`) as a storage location.
pub fn storage_location(settings: &HostSettings) -> Result<StorageUrl, SettingError> {
    let mut location = StorageUrl::parse(&settings.storage)
        .map_err(|_| settings.invalid(Setting::Storage, &settings.storage))?;
    match (&mut location, settings.download_redirect) {
        (_, None) | (StorageUrl::Local(_), Some(false)) => {}
        (StorageUrl::S3 { options, .. }, Some(on)) => options.redirect_downloads = on,
        // On, without a bucket to redirect to.
        (StorageUrl::Local(_), Some(true)) => {
            return Err(settings.invalid(Setting::DownloadRedirect, "on"));
        }
    }
    Ok(location)
}

/// `WEBHOOK_ALLOW`, `WEBHOOK_SECRET` and `WEBHOOK_BACKOFF` as the
/// webhooks' settings.
fn webhook_settings(settings: &HostSettings) -> Result<WebhookSettings, SettingError> {
    let allow = if settings.webhook_allow.is_empty() {
        AllowList::default()
    } else {
        AllowList::parse(&settings.webhook_allow)
            .ok_or_else(|| settings.invalid(Setting::WebhookAllow, &settings.webhook_allow))?
    };
    let secret = match &settings.webhook_secret {
        None => None,
        Some(key) => Some(
            WebhookSecret::parse(key.expose())
                .ok_or_else(|| settings.invalid(Setting::WebhookSecret, key.expose()))?,
        ),
    };
    Ok(WebhookSettings {
        allow,
        secret,
        backoff_base: settings.webhook_backoff,
    })
}

/// Parses every setting the service converts, so that a command can stop
/// on a bad one before it starts anything, like on any other bad setting.
pub fn check_settings(settings: &HostSettings) -> Result<(), SettingError> {
    storage_location(settings)?;
    ServiceSettings::from_host(settings)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, SettingsArgs};
    use std::path::PathBuf;

    fn settings(pairs: &[(&str, &str)]) -> HostSettings {
        let env = |name: &str| {
            pairs
                .iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        };
        resolve(&SettingsArgs::default(), &env, None).unwrap()
    }

    #[test]
    fn storage_defaults_to_files_under_data_dir_and_reads_back_as_that_path() {
        let local = |path: &str| StorageUrl::Local(PathBuf::from(path));
        let cases = [
            (vec![], local("./data/files")),
            (
                vec![("EXPORT_HOST_DATA_DIR", "/srv/exports")],
                local("/srv/exports/files"),
            ),
            // Characters a file URL escapes come back as they were.
            (
                vec![("EXPORT_HOST_DATA_DIR", "/srv/ex ports%20#1")],
                local("/srv/ex ports%20#1/files"),
            ),
            (
                vec![("STATE_DIRECTORY", "/var/lib/export-host")],
                local("/var/lib/export-host/files"),
            ),
            (vec![("EXPORT_HOST_STORAGE", "file:///s")], local("/s")),
        ];
        for (env, want) in cases {
            assert_eq!(storage_location(&settings(&env)).unwrap(), want, "{env:?}");
        }
    }

    #[test]
    fn download_redirect_applies_to_s3_storage() {
        let on = settings(&[
            ("EXPORT_HOST_STORAGE", "s3://exports-bucket/daemon"),
            ("EXPORT_HOST_DOWNLOAD_REDIRECT", "on"),
        ]);
        match storage_location(&on).unwrap() {
            StorageUrl::S3 {
                bucket,
                prefix,
                options,
            } => {
                assert_eq!(
                    (bucket.as_str(), prefix.as_str()),
                    ("exports-bucket", "daemon")
                );
                assert!(options.redirect_downloads);
            }
            other => panic!("not S3: {other:?}"),
        }
        let off = settings(&[("EXPORT_HOST_STORAGE", "s3://exports-bucket")]);
        assert!(matches!(
            storage_location(&off).unwrap(),
            StorageUrl::S3 { options, .. } if !options.redirect_downloads
        ));
    }

    #[test]
    fn webhook_settings_are_parsed() {
        let s = settings(&[
            (
                "EXPORT_HOST_WEBHOOK_ALLOW",
                "https://hooks.example.com/in/, http://127.0.0.1:9000",
            ),
            ("EXPORT_HOST_WEBHOOK_SECRET", "whsec-0123456789abcdef"),
            ("EXPORT_HOST_WEBHOOK_BACKOFF", "200ms"),
        ]);
        let webhooks = ServiceSettings::from_host(&s).unwrap().webhooks;
        assert_eq!(
            webhooks.allow.display(),
            "https://hooks.example.com/in/,http://127.0.0.1:9000/"
        );
        assert!(webhooks.secret.is_some());
        assert_eq!(webhooks.backoff_base, Duration::from_millis(200));
        let unset = ServiceSettings::from_host(&settings(&[])).unwrap().webhooks;
        assert_eq!(unset, WebhookSettings::default());
    }

    /// The same one line as a bad value config refuses itself: the setting,
    /// the value (a secret's only by length), where it came from and what
    /// is accepted.
    #[test]
    fn bad_values_are_refused_in_one_line_like_every_setting() {
        let cases = [
            (Setting::Storage, "ftp://host/x"),
            (Setting::Storage, "file://host/x"),
            (Setting::Storage, "s3://"),
            (Setting::WebhookAllow, "ftp://files.example.com/"),
            (Setting::WebhookAllow, "https://user@hooks.example.com/"),
            (Setting::WebhookSecret, "short"),
            // On needs an S3 bucket to redirect to; the default STORAGE is local.
            (Setting::DownloadRedirect, "on"),
        ];
        for (setting, value) in cases {
            let var = setting.env_var();
            let err = check_settings(&settings(&[(var.as_str(), value)]))
                .unwrap_err()
                .to_string();
            assert!(!err.contains('\n'), "one line: {err}");
            assert!(
                err.starts_with(&format!("invalid setting {}=", setting.name())),
                "{setting} {value:?}: {err}"
            );
            assert!(err.contains(&format!("(from {var})")), "{err}");
            assert!(err.ends_with(setting.expected()), "{err}");
            if setting == Setting::WebhookSecret {
                assert!(!err.contains(value), "secret echoed: {err}");
                assert!(err.contains("<redacted"), "{err}");
            } else {
                assert!(err.contains(&format!("{value:?}")), "{err}");
            }
        }
    }
}
