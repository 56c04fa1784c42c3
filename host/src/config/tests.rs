use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn table(text: &str) -> toml::Table {
    parse_config(text, Path::new("test.toml")).unwrap()
}

fn error(
    args: &SettingsArgs,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&toml::Table>,
) -> String {
    let err = resolve(args, env, file).unwrap_err().to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    err
}

/// Sets the flag of `setting` to `v`, as clap would.
fn set_flag(args: &mut SettingsArgs, setting: Setting, v: Option<String>) {
    match setting {
        Setting::DataDir => args.data_dir = v,
        Setting::DatabaseUrl => args.database_url = v,
        Setting::Storage => args.storage = v,
        Setting::Listen => args.listen = v,
        Setting::Plugins => args.plugins = v,
        Setting::ExpirationHours => args.expiration_hours = v,
        Setting::MaxRows => args.max_rows = v,
        Setting::MaxFileSizeMb => args.max_file_size_mb = v,
        Setting::MaxPerUser => args.max_per_user = v,
        Setting::Workers => args.workers = v,
        Setting::CleanupInterval => args.cleanup_interval = v,
        Setting::RetentionDays => args.retention_days = v,
        Setting::CacheTtlMinutes => args.cache_ttl_minutes = v,
        Setting::SigningKey => args.signing_key = v,
        Setting::BatchSize => args.batch_size = v,
        Setting::DownloadRedirect => args.download_redirect = v,
        Setting::PublicUrl => args.public_url = v,
        Setting::SigningKeyPrevious => args.signing_key_previous = v,
        Setting::JwtSecret => args.jwt_secret = v,
        Setting::JwtJwks => args.jwt_jwks = v,
        Setting::JwtIssuer => args.jwt_issuer = v,
        Setting::JwtAudience => args.jwt_audience = v,
        Setting::JwtUserClaim => args.jwt_user_claim = v,
        Setting::JwtAdmin => args.jwt_admin = v,
        Setting::HeaderReadTimeout => args.header_read_timeout = v,
        Setting::IdleTimeout => args.idle_timeout = v,
        Setting::MaxConnections => args.max_connections = v,
        Setting::MaxSelectorBytes => args.max_selector_bytes = v,
        Setting::MaxOptionsBytes => args.max_options_bytes = v,
        Setting::MaxStoredPerUser => args.max_stored_per_user = v,
        Setting::LeaseSeconds => args.lease_seconds = v,
        Setting::ShutdownGrace => args.shutdown_grace = v,
        Setting::JwksRefreshSeconds => args.jwks_refresh_seconds = v,
        Setting::WebhookAllow => args.webhook_allow = v,
        Setting::WebhookSecret => args.webhook_secret = v,
        Setting::WebhookBackoff => args.webhook_backoff = v,
    }
}

#[test]
fn defaults_without_state_directory() {
    let s = resolve(&SettingsArgs::default(), &no_env, None).unwrap();
    assert_eq!(s.data_dir, PathBuf::from("./data"));
    assert_eq!(s.database_url, "sqlite://./data/exports.db");
    assert_eq!(s.storage, "./data/files");
    assert_eq!(s.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(s.plugins, PathBuf::from("./plugins.toml"));
    assert_eq!(s.expiration_hours, 24);
    assert_eq!(s.max_rows, 10_000_000);
    assert_eq!(s.max_file_size_mb, 1024);
    assert_eq!(s.max_per_user, 20);
    assert_eq!(
        s.workers,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    assert_eq!(s.cleanup_interval, Duration::from_secs(600));
    assert_eq!(s.retention_days, 7);
    assert_eq!(s.cache_ttl_minutes, 0);
    assert_eq!(s.cache_ttl(), None);
    assert_eq!(s.signing_key, None);
    assert_eq!(s.batch_size, 8192);
    assert_eq!(s.origin(Setting::DataDir), &Origin::Default);
    assert_eq!(s.origin(Setting::MaxRows), &Origin::Default);
    assert_eq!(s.max_rows, 10_000_000);
    assert_eq!(s.max_file_bytes(), 1024 * 1024 * 1024);
    assert_eq!(s.expiration(), Duration::from_secs(24 * 3600));
    assert_eq!(s.retention(), Duration::from_secs(7 * 86_400));
}

#[test]
fn defaults_under_systemd_state_directory() {
    let env = env_of(&[(STATE_DIRECTORY_ENV, "/var/lib/export-host:/var/lib/other")]);
    let s = resolve(&SettingsArgs::default(), &env, None).unwrap();
    assert_eq!(s.data_dir, PathBuf::from("/var/lib/export-host"));
    assert_eq!(s.origin(Setting::DataDir), &Origin::StateDirectory);
    assert_eq!(s.database_url, "sqlite:///var/lib/export-host/exports.db");
    assert_eq!(s.storage.to_string(), "file:///var/lib/export-host/files");
    // An explicit DATA_DIR wins over STATE_DIRECTORY, and moves the derived defaults.
    let env = env_of(&[
        (STATE_DIRECTORY_ENV, "/var/lib/export-host"),
        ("EXPORT_HOST_DATA_DIR", "/srv/exports"),
    ]);
    let s = resolve(&SettingsArgs::default(), &env, None).unwrap();
    assert_eq!(s.data_dir, PathBuf::from("/srv/exports"));
    assert_eq!(s.database_url, "sqlite:///srv/exports/exports.db");
    assert_eq!(s.storage, "file:///srv/exports/files");
    // Empty STATE_DIRECTORY is ignored.
    let s = resolve(
        &SettingsArgs::default(),
        &env_of(&[(STATE_DIRECTORY_ENV, "")]),
        None,
    )
    .unwrap();
    assert_eq!(s.data_dir, PathBuf::from("./data"));
}

#[test]
fn precedence_flag_over_env_over_file_over_default() {
    let file = table("max_rows = 3\nmax_per_user = 3\nretention_days = 3\n");
    let env = env_of(&[
        ("EXPORT_HOST_MAX_ROWS", "2"),
        ("EXPORT_HOST_MAX_PER_USER", "2"),
    ]);
    let args = SettingsArgs {
        max_rows: Some("1".into()),
        config: Some(PathBuf::from("/etc/export-host.toml")),
        ..SettingsArgs::default()
    };
    let s = resolve(&args, &env, Some(&file)).unwrap();
    // flag > env > file
    assert_eq!(s.max_rows, 1);
    assert_eq!(
        s.origin(Setting::MaxRows),
        &Origin::Flag("--max-rows".into())
    );
    // env > file
    assert_eq!(s.max_per_user, 2);
    assert_eq!(
        s.origin(Setting::MaxPerUser),
        &Origin::Env("EXPORT_HOST_MAX_PER_USER".into())
    );
    // file > default
    assert_eq!(s.retention_days, 3);
    assert_eq!(
        s.origin(Setting::RetentionDays),
        &Origin::File {
            path: Some(PathBuf::from("/etc/export-host.toml")),
            key: "retention_days".into()
        }
    );
    // default
    assert_eq!(s.expiration_hours, 24);
    assert_eq!(s.origin(Setting::ExpirationHours), &Origin::Default);
}

#[test]
fn every_setting_reads_from_each_level() {
    let values: &[(Setting, &str)] = &[
        (Setting::DataDir, "/d"),
        (Setting::DatabaseUrl, "postgres://u@db/exports"),
        (Setting::Storage, "file:///s"),
        (Setting::Listen, "[::1]:9000"),
        (Setting::Plugins, "/etc/p.toml"),
        (Setting::ExpirationHours, "5"),
        (Setting::MaxRows, "6"),
        (Setting::MaxFileSizeMb, "7"),
        (Setting::MaxPerUser, "8"),
        (Setting::Workers, "9"),
        (Setting::CleanupInterval, "30s"),
        (Setting::RetentionDays, "0"),
        (Setting::CacheTtlMinutes, "15"),
        (Setting::SigningKey, "0123456789abcdef0123456789abcdef"),
        (Setting::BatchSize, "100"),
        (Setting::DownloadRedirect, "off"),
        (Setting::PublicUrl, "https://exports.example.com/api/"),
        (
            Setting::SigningKeyPrevious,
            "fedcba9876543210fedcba9876543210",
        ),
        (
            Setting::JwtSecret,
            "super-secret-jwt-token-with-at-least-32-characters",
        ),
        (
            Setting::JwtJwks,
            "https://auth.example.com/.well-known/jwks.json",
        ),
        (Setting::JwtIssuer, "https://auth.example.com/"),
        (Setting::JwtAudience, "authenticated, api"),
        (Setting::JwtUserClaim, "user_id"),
        (Setting::JwtAdmin, "role=service_role"),
        (Setting::HeaderReadTimeout, "3"),
        (Setting::IdleTimeout, "2m"),
        (Setting::MaxConnections, "500"),
        (Setting::MaxSelectorBytes, "2048"),
        (Setting::MaxOptionsBytes, "4096"),
        (Setting::MaxStoredPerUser, "50"),
        (Setting::LeaseSeconds, "4"),
        (Setting::ShutdownGrace, "0"),
        (Setting::JwksRefreshSeconds, "5"),
        (
            Setting::WebhookAllow,
            "https://hooks.example.com/in/, http://127.0.0.1:9000",
        ),
        (Setting::WebhookSecret, "whsec-0123456789abcdef"),
        (Setting::WebhookBackoff, "200ms"),
    ];
    let check = |s: &HostSettings| {
        assert_eq!(s.data_dir, PathBuf::from("/d"));
        assert_eq!(s.database_url, "postgres://u@db/exports");
        assert_eq!(s.storage, "file:///s");
        assert_eq!(s.listen, "[::1]:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(s.plugins, PathBuf::from("/etc/p.toml"));
        assert_eq!(s.expiration_hours, 5);
        assert_eq!(s.max_rows, 6);
        assert_eq!(s.max_file_size_mb, 7);
        assert_eq!(s.max_per_user, 8);
        assert_eq!(s.workers, 9);
        assert_eq!(s.cleanup_interval, Duration::from_secs(30));
        assert_eq!(s.retention_days, 0);
        assert_eq!(s.cache_ttl(), Some(Duration::from_secs(15 * 60)));
        assert_eq!(
            s.signing_key.as_ref().map(SigningKey::expose),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(s.batch_size, 100);
        assert!(!s.download_redirect());
        assert_eq!(s.public_url(), "https://exports.example.com/api");
        assert_eq!(
            s.signing_key_previous.as_ref().map(SigningKey::expose),
            Some("fedcba9876543210fedcba9876543210")
        );
        assert_eq!(
            s.jwt.secret.as_ref().map(SigningKey::expose),
            Some("super-secret-jwt-token-with-at-least-32-characters")
        );
        assert_eq!(
            s.jwt.jwks,
            Some(JwksSource::Url(
                "https://auth.example.com/.well-known/jwks.json".to_owned()
            ))
        );
        assert_eq!(s.jwt.issuer.as_deref(), Some("https://auth.example.com/"));
        assert_eq!(s.jwt.audience, ["authenticated", "api"]);
        assert_eq!(s.jwt.user_claim, "user_id");
        assert_eq!(
            s.jwt.admin,
            Some(("role".to_owned(), "service_role".to_owned()))
        );
        assert_eq!(
            s.guards,
            Guards {
                header_read_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(120),
                max_connections: Some(500),
                max_selector_bytes: 2048,
                max_options_bytes: 4096,
                max_stored_per_user: 50,
                lease: Duration::from_secs(4),
                shutdown_grace: Duration::ZERO,
            }
        );
        assert_eq!(s.jwt.jwks_refresh, Duration::from_secs(5));
        assert_eq!(
            s.webhook_allow,
            "https://hooks.example.com/in/, http://127.0.0.1:9000"
        );
        assert_eq!(
            s.webhook_secret.as_ref().map(SigningKey::expose),
            Some("whsec-0123456789abcdef")
        );
        assert_eq!(s.webhook_backoff, Duration::from_millis(200));
    };
    // Flags.
    let mut args = SettingsArgs::default();
    for (setting, value) in values {
        let v = Some((*value).to_owned());
        set_flag(&mut args, *setting, v);
    }
    let s = resolve(&args, &no_env, None).unwrap();
    check(&s);
    assert!(Setting::ALL
        .iter()
        .all(|setting| matches!(s.origin(*setting), Origin::Flag(_))));
    // Environment.
    let pairs: Vec<(String, &str)> = values.iter().map(|(s, v)| (s.env_var(), *v)).collect();
    let env_pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let s = resolve(&SettingsArgs::default(), &env_of(&env_pairs), None).unwrap();
    check(&s);
    assert!(Setting::ALL
        .iter()
        .all(|setting| matches!(s.origin(*setting), Origin::Env(_))));
    // Config file, with TOML integers where natural.
    let mut text = String::new();
    for (setting, value) in values {
        if value.bytes().all(|b| b.is_ascii_digit()) && *setting != Setting::SigningKey {
            text.push_str(&format!("{} = {value}\n", setting.key()));
        } else {
            text.push_str(&format!("{} = {value:?}\n", setting.key()));
        }
    }
    let s = resolve(&SettingsArgs::default(), &no_env, Some(&table(&text))).unwrap();
    check(&s);
    assert!(Setting::ALL
        .iter()
        .all(|setting| matches!(s.origin(*setting), Origin::File { .. })));
}

#[test]
fn empty_environment_variables_count_as_unset() {
    let env = env_of(&[
        ("EXPORT_HOST_MAX_ROWS", ""),
        ("EXPORT_HOST_SIGNING_KEY", "  "),
    ]);
    let file = table("max_rows = 42");
    let s = resolve(&SettingsArgs::default(), &env, Some(&file)).unwrap();
    assert_eq!(s.max_rows, 42);
    assert_eq!(s.signing_key, None);
}

#[test]
fn bad_values_name_setting_value_origin_and_what_is_accepted() {
    let env = env_of(&[("EXPORT_HOST_MAX_ROWS", "ten")]);
    assert_eq!(
        error(&SettingsArgs::default(), &env, None),
        "invalid setting MAX_ROWS=\"ten\" (from EXPORT_HOST_MAX_ROWS): expected a whole number of rows, at least 1, e.g. 10000000"
    );
    let cases: &[(Setting, &str)] = &[
        (Setting::DataDir, ""),
        (Setting::DatabaseUrl, "mysql://db/x"),
        (Setting::DatabaseUrl, "exports.db"),
        (Setting::DatabaseUrl, "sqlite:"),
        // The service parses STORAGE, WEBHOOK_ALLOW and WEBHOOK_SECRET; it
        // refuses the rest of their bad values (service/settings.rs).
        (Setting::Storage, ""),
        (Setting::Listen, "localhost:8080"),
        (Setting::Listen, "8080"),
        (Setting::Listen, "127.0.0.1:99999"),
        (Setting::Plugins, " "),
        (Setting::ExpirationHours, "0"),
        (Setting::ExpirationHours, "24h"),
        (Setting::ExpirationHours, "87601"),
        (Setting::MaxRows, "0"),
        (Setting::MaxRows, "-1"),
        (Setting::MaxRows, "1e6"),
        (Setting::MaxRows, "18446744073709551616"),
        (Setting::MaxFileSizeMb, "0"),
        (Setting::MaxFileSizeMb, "16777217"),
        (Setting::MaxFileSizeMb, "1.5"),
        (Setting::MaxPerUser, "0"),
        (Setting::MaxPerUser, "many"),
        (Setting::Workers, "0"),
        (Setting::Workers, "1025"),
        (Setting::CleanupInterval, "10"),
        (Setting::CleanupInterval, "0s"),
        (Setting::CleanupInterval, "500ms"),
        (Setting::CleanupInterval, "8days"),
        (Setting::CleanupInterval, "soon"),
        (Setting::RetentionDays, "-1"),
        (Setting::RetentionDays, "36501"),
        (Setting::CacheTtlMinutes, "525601"),
        (Setting::CacheTtlMinutes, "off"),
        (Setting::SigningKey, "short"),
        (Setting::SigningKey, "0123456789abcdef 0123456789abcdef"),
        (Setting::BatchSize, "0"),
        (Setting::BatchSize, "1048577"),
        (Setting::MaxRows, "_1"),
        (Setting::DownloadRedirect, "maybe"),
        (Setting::HeaderReadTimeout, "0"),
        (Setting::HeaderReadTimeout, "2days"),
        (Setting::IdleTimeout, "soon"),
        (Setting::MaxConnections, "0"),
        (Setting::MaxSelectorBytes, "1023"),
        (Setting::MaxOptionsBytes, "16777217"),
        (Setting::MaxStoredPerUser, "0"),
        (Setting::LeaseSeconds, "1"),
        (Setting::ShutdownGrace, "-1"),
        (Setting::JwksRefreshSeconds, "0"),
        (Setting::WebhookBackoff, "1ms"),
        (Setting::PublicUrl, "exports.example.com"),
        (Setting::PublicUrl, "https://exports.example.com/?x=1"),
        (Setting::PublicUrl, "ftp://exports.example.com"),
        (Setting::SigningKeyPrevious, "short"),
        (Setting::JwtSecret, "too-short"),
        (Setting::JwtJwks, "http://auth.example.com/jwks.json"),
        (Setting::JwtJwks, "ftp://auth.example.com/jwks.json"),
        (Setting::JwtUserClaim, "user id"),
    ];
    for (setting, value) in cases {
        // As a flag (env-empty values would be "unset", so use flags).
        let mut args = SettingsArgs::default();
        let v = Some((*value).to_owned());
        set_flag(&mut args, *setting, v);
        let err = error(&args, &no_env, None);
        let prefix = format!("invalid setting {}=", setting.name());
        assert!(err.starts_with(&prefix), "{setting} {value:?}: {err}");
        assert!(err.contains(&format!("(from {})", setting.flag())), "{err}");
        assert!(err.ends_with(setting.expected()), "{err}");
        if setting.is_secret() {
            assert!(!err.contains(value), "secret echoed: {err}");
            assert!(err.contains("<redacted"), "{err}");
        } else {
            assert!(err.contains(&format!("{value:?}")), "{err}");
        }
    }
}

#[test]
fn bad_file_values_name_the_file_and_key() {
    let args = SettingsArgs {
        config: Some(PathBuf::from("/etc/eh.toml")),
        ..SettingsArgs::default()
    };
    assert_eq!(
        error(&args, &no_env, Some(&table("max_rows = -5"))),
        "invalid setting MAX_ROWS=\"-5\" (from max_rows in /etc/eh.toml): expected a whole number of rows, at least 1, e.g. 10000000"
    );
    let err = error(&args, &no_env, Some(&table("workers = true")));
    assert!(
        err.starts_with("invalid setting WORKERS=\"true\" (from workers in /etc/eh.toml)"),
        "{err}"
    );
    let err = error(&args, &no_env, Some(&table("listen = [1, 2]")));
    assert!(err.starts_with("invalid setting LISTEN="), "{err}");
    // The config path can come from EXPORT_HOST_CONFIG too.
    let env = env_of(&[(CONFIG_ENV, "/run/eh.toml")]);
    let err = error(
        &SettingsArgs::default(),
        &env,
        Some(&table("batch_size = 0")),
    );
    assert!(err.contains("(from batch_size in /run/eh.toml)"), "{err}");
}

#[test]
fn database_passwords_are_not_echoed() {
    let args = SettingsArgs {
        database_url: Some("mysql://app:hunter2@db:3306/x".into()),
        ..SettingsArgs::default()
    };
    let err = error(&args, &no_env, None);
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("mysql://app:***@db:3306/x"), "{err}");
    let s = resolve(
        &SettingsArgs {
            database_url: Some("postgres://app:hunter2@db/x".into()),
            ..SettingsArgs::default()
        },
        &no_env,
        None,
    )
    .unwrap();
    assert_eq!(s.database_url, "postgres://app:hunter2@db/x");
    let debug = format!("{s:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn signing_key_is_never_printed() {
    let key = "k".repeat(40);
    let env_pairs = [("EXPORT_HOST_SIGNING_KEY", key.as_str())];
    let s = resolve(&SettingsArgs::default(), &env_of(&env_pairs), None).unwrap();
    assert_eq!(
        s.signing_key.as_ref().map(SigningKey::expose),
        Some(key.as_str())
    );
    let debug = format!("{s:?}");
    assert!(!debug.contains(&key), "{debug}");
    assert!(s.report().iter().all(|(_, value, _)| !value.contains(&key)));
}

#[test]
fn unknown_file_keys_are_refused_with_the_valid_ones() {
    let args = SettingsArgs {
        config: Some(PathBuf::from("/etc/eh.toml")),
        ..SettingsArgs::default()
    };
    let err = error(&args, &no_env, Some(&table("max_row = 5")));
    assert!(
        err.starts_with("unknown setting \"max_row\" in config file /etc/eh.toml (did you mean \"max_rows\"?); valid settings: data_dir, database_url, storage,"),
        "{err}"
    );
    assert!(
        err.ends_with("jwks_refresh_seconds, webhook_allow, webhook_secret, webhook_backoff"),
        "{err}"
    );
    let err = error(&args, &no_env, Some(&table("MAX_ROWS = 5")));
    assert!(err.contains("(did you mean \"max_rows\"?)"), "{err}");
    let err = error(&args, &no_env, Some(&table("[server]\nlisten = \"x\"")));
    assert!(err.starts_with("unknown setting \"server\""), "{err}");
    assert!(!err.contains("did you mean"), "{err}");
    // Unknown keys fail even when a flag would override everything else.
    let args = SettingsArgs {
        max_rows: Some("1".into()),
        ..args
    };
    assert!(resolve(&args, &no_env, Some(&table("colour = 1"))).is_err());
}

#[test]
fn config_file_errors_are_one_line() {
    let err = parse_config("max_rows = 5\nworkers = = 3\n", Path::new("/etc/eh.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("config file /etc/eh.toml is not valid TOML at line 2: "),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = load_config_file(&missing, Origin::Flag("--config".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "cannot read config file {} (from --config): ",
            missing.display()
        )),
        "{err}"
    );
    let path = dir.path().join("eh.toml");
    std::fs::write(&path, "max_rows = 1_000\ncleanup_interval = \"1h 30m\"\n").unwrap();
    let file = load_config_file(&path, Origin::Flag("--config".into())).unwrap();
    let s = resolve(&SettingsArgs::default(), &no_env, Some(&file)).unwrap();
    assert_eq!(s.max_rows, 1000);
    assert_eq!(s.cleanup_interval, Duration::from_secs(5400));
}

#[test]
fn config_path_prefers_the_flag() {
    let env = env_of(&[(CONFIG_ENV, "/env.toml")]);
    let args = SettingsArgs {
        config: Some(PathBuf::from("/flag.toml")),
        ..SettingsArgs::default()
    };
    assert_eq!(
        config_path(&args, &env),
        Some((PathBuf::from("/flag.toml"), Origin::Flag("--config".into())))
    );
    assert_eq!(
        config_path(&SettingsArgs::default(), &env),
        Some((PathBuf::from("/env.toml"), Origin::Env(CONFIG_ENV.into())))
    );
    assert_eq!(
        config_path(&SettingsArgs::default(), &env_of(&[(CONFIG_ENV, "")])),
        None
    );
}

#[test]
fn numbers_allow_digit_separators_and_spaces() {
    let env = env_of(&[("EXPORT_HOST_MAX_ROWS", " 10_000 ")]);
    let s = resolve(&SettingsArgs::default(), &env, None).unwrap();
    assert_eq!(s.max_rows, 10_000);
}

#[test]
fn names_keys_flags_and_variables_line_up() {
    assert_eq!(Setting::MaxFileSizeMb.key(), "max_file_size_mb");
    assert_eq!(Setting::MaxFileSizeMb.flag(), "--max-file-size-mb");
    assert_eq!(
        Setting::MaxFileSizeMb.env_var(),
        "EXPORT_HOST_MAX_FILE_SIZE_MB"
    );
    assert_eq!(
        redact_url("postgres://u:p@h:5432/d?x=1"),
        "postgres://u:***@h:5432/d?x=1"
    );
    assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    assert_eq!(
        redact_url("sqlite://./data/exports.db"),
        "sqlite://./data/exports.db"
    );
}

#[test]
fn download_redirect_applies_to_s3_storage() {
    let env = env_of(&[
        ("EXPORT_HOST_STORAGE", "s3://exports-bucket/daemon"),
        ("EXPORT_HOST_DOWNLOAD_REDIRECT", "on"),
    ]);
    let s = resolve(&SettingsArgs::default(), &env, None).unwrap();
    assert!(s.download_redirect());
    assert_eq!(s.storage.to_string(), "s3://exports-bucket/daemon");
    let report = s.report();
    let (_, value, origin) = report
        .iter()
        .find(|(setting, _, _)| *setting == Setting::DownloadRedirect)
        .unwrap();
    assert_eq!(value, "on");
    assert_eq!(
        **origin,
        Origin::Env("EXPORT_HOST_DOWNLOAD_REDIRECT".to_owned())
    );

    // Off by default, on S3 too.
    let env = env_of(&[("EXPORT_HOST_STORAGE", "s3://exports-bucket")]);
    let s = resolve(&SettingsArgs::default(), &env, None).unwrap();
    assert!(!s.download_redirect());
}

#[test]
fn jwt_checks_need_a_jwt_key_and_admin_needs_claim_and_value() {
    for (var, value) in [
        ("EXPORT_HOST_JWT_ISSUER", "https://auth.example.com/"),
        ("EXPORT_HOST_JWT_AUDIENCE", "authenticated"),
        ("EXPORT_HOST_JWT_ADMIN", "role=service_role"),
    ] {
        let err = error(&SettingsArgs::default(), &env_of(&[(var, value)]), None);
        assert!(err.contains("set JWT_SECRET or JWT_JWKS"), "{err}");
        assert!(err.contains(&format!("(from {var})")), "{err}");
    }
    let secret = ("EXPORT_HOST_JWT_SECRET", "0123456789abcdef0123456789abcdef");
    for bad in ["role", "=x", "role=", "a b=c"] {
        let err = error(
            &SettingsArgs::default(),
            &env_of(&[secret, ("EXPORT_HOST_JWT_ADMIN", bad)]),
            None,
        );
        assert!(err.starts_with("invalid setting JWT_ADMIN="), "{err}");
    }
    let s = resolve(&SettingsArgs::default(), &env_of(&[secret]), None).unwrap();
    assert!(s.jwt.enabled());
    assert_eq!(s.jwt.user_claim, "sub");
    assert_eq!(s.public_url(), "http://127.0.0.1:8080");
    let s = resolve(
        &SettingsArgs::default(),
        &env_of(&[("EXPORT_HOST_JWT_JWKS", "http://127.0.0.1:9/jwks.json")]),
        None,
    )
    .unwrap();
    assert!(matches!(s.jwt.jwks, Some(JwksSource::Url(_))));
    let s = resolve(
        &SettingsArgs::default(),
        &env_of(&[("EXPORT_HOST_JWT_JWKS", "./keys/jwks.json")]),
        None,
    )
    .unwrap();
    assert_eq!(
        s.jwt.jwks,
        Some(JwksSource::File(PathBuf::from("./keys/jwks.json")))
    );
    let debug = format!("{s:?}");
    assert!(!debug.contains("0123456789abcdef0123456789abcdef"));
}

#[test]
fn every_flag_is_a_setting_and_its_help_names_the_variable_read() {
    use clap::{Args, Command};
    let command = SettingsArgs::augment_args(Command::new("t")).mut_args(env_help);
    for setting in Setting::ALL {
        let arg = command
            .get_arguments()
            .find(|a| a.get_id() == setting.key().as_str())
            .unwrap_or_else(|| panic!("no flag for {setting}"));
        assert_eq!(
            arg.get_long().map(|l| format!("--{l}")),
            Some(setting.flag())
        );
        let help = arg.get_help().expect("every flag has help").to_string();
        assert!(
            help.contains(&format!(" [env: {}]", setting.env_var())),
            "{setting}: {help}"
        );
    }
    let config = command
        .get_arguments()
        .find(|a| a.get_id() == "config")
        .expect("--config");
    assert!(config
        .get_help()
        .expect("help")
        .to_string()
        .contains(" [env: EXPORT_HOST_CONFIG]"));
    assert_eq!(
        command.get_arguments().count(),
        Setting::ALL.len() + 1,
        "a flag that is no setting"
    );
}
