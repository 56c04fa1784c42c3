//! Precedence (flag, environment, file, default) and validation of every
//! setting into [`HostSettings`].

use super::file::check_keys;
use super::parse::*;
use super::*;

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

pub(super) fn invalid(setting: Setting, text: &str, origin: Origin) -> SettingError {
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

/// The default `STORAGE`: `file://$DATA_DIR/files` (escaped where the path
/// needs it, so that it reads back as the same path), or the plain path
/// `$DATA_DIR/files` when `DATA_DIR` is relative (a file URL cannot be).
fn default_storage(data_dir: &Path) -> String {
    let files = data_dir.join("files");
    match url::Url::from_file_path(&files) {
        Ok(url) => url.to_string(),
        Err(()) => files.display().to_string(),
    }
}

/// The default `DATABASE_URL`: `sqlite://$DATA_DIR/exports.db`.
fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("exports.db").display())
}

/// The number of CPUs, the default `WORKERS`.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Resolves the settings from flags (`args`), the environment (`env`, given
/// a variable name) and a parsed config file (`file`), in that order of
/// precedence, then defaults. `$STATE_DIRECTORY` is read through `env` too.
/// The file's path, for messages, is taken from `args.config` or
/// `EXPORT_HOST_CONFIG`.
///
/// The layering is this module's own rather than clap's `env` plus a
/// layering crate (figment) for three promises those would break: an empty
/// variable counts as unset (`EnvironmentFile=` lines such as
/// `EXPORT_HOST_SIGNING_KEY=` are common), every value keeps its exact
/// origin for the one-line error (`from EXPORT_HOST_MAX_ROWS`, `from
/// --max-rows`, `from max_rows in FILE`; clap's `env` folds the variable
/// into the flag's field), and the environment is a parameter, so the
/// precedence is tested without touching the process's own.
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
    let storage = get!(Setting::Storage, plain_text).unwrap_or_else(|| default_storage(&data_dir));
    let download_redirect = get!(Setting::DownloadRedirect, on_off);
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
    let webhook_allow = get!(Setting::WebhookAllow, plain_text).unwrap_or_default();
    let webhook_secret = get!(Setting::WebhookSecret, secret);
    let webhook_backoff =
        get!(Setting::WebhookBackoff, webhook_backoff).unwrap_or(Duration::from_secs(1));
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
        download_redirect,
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
        webhook_allow,
        webhook_secret,
        webhook_backoff,
        origins,
    })
}
