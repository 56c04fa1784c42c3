//! Host settings through a real command line, environment and config file.

use clap::{CommandFactory, Parser, Subcommand};
use export_host::config::{env_help, resolve, HostSettings, Origin, Setting, SettingsArgs};
use std::path::PathBuf;
use std::time::Duration;

/// As the binary's parser: the settings flattened, `[env: ...]` added to
/// their help from the settings table.
#[derive(Debug, Parser)]
#[command(mut_args(env_help))]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve,
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn the_flags_are_well_formed() {
    Cli::command().debug_assert();
    let help = Cli::command().render_long_help().to_string();
    for setting in Setting::ALL {
        assert!(
            help.contains(&setting.flag()),
            "{} missing from help",
            setting.flag()
        );
        assert!(
            help.contains(&setting.env_var()),
            "{} missing from help",
            setting.env_var()
        );
    }
    assert!(help.contains("--config"));
}

#[test]
fn every_flag_parses_and_flags_work_after_the_subcommand() {
    let cli = Cli::try_parse_from([
        "export-host",
        "--data-dir",
        "/d",
        "serve",
        "--database-url=postgres://u@h/db",
        "--storage",
        "file:///s",
        "--listen",
        "0.0.0.0:9",
        "--plugins",
        "/p.toml",
        "--expiration-hours",
        "2",
        "--max-rows",
        "3",
        "--max-file-size-mb",
        "4",
        "--max-per-user",
        "5",
        "--workers",
        "6",
        "--cleanup-interval",
        "7m",
        "--retention-days",
        "8",
        "--cache-ttl-minutes",
        "9",
        "--signing-key",
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "--batch-size",
        "10",
        "--download-redirect",
        "off",
        "--public-url",
        "https://exports.example.com",
        "--signing-key-previous",
        "0123456789abcdefghijklmnopqrstuvwxyz",
        "--jwt-secret",
        "abcdefghijklmnopqrstuvwxyz0123456789-jwt",
        "--jwt-jwks",
        "/etc/export-host/jwks.json",
        "--jwt-issuer",
        "https://auth.example.com/",
        "--jwt-audience",
        "authenticated",
        "--jwt-user-claim",
        "sub",
        "--jwt-admin",
        "role=service_role",
        "--header-read-timeout",
        "11",
        "--idle-timeout",
        "12s",
        "--max-connections",
        "13",
        "--max-selector-bytes",
        "14000",
        "--max-options-bytes",
        "15000",
        "--max-stored-per-user",
        "16",
        "--lease-seconds",
        "17",
        "--shutdown-grace",
        "18",
        "--jwks-refresh-seconds",
        "19",
        "--webhook-allow",
        "https://hooks.example.com/",
        "--webhook-secret",
        "whsec-0123456789abcdef",
        "--webhook-backoff",
        "2s",
        "--config",
        "/c.toml",
    ])
    .unwrap();
    assert_eq!(cli.settings.config, Some(PathBuf::from("/c.toml")));
    let s = resolve(&cli.settings, &no_env, None).unwrap();
    assert_eq!(s.data_dir, PathBuf::from("/d"));
    assert_eq!(s.database_url, "postgres://u@h/db");
    assert_eq!(s.storage.to_string(), "file:///s");
    assert_eq!(s.listen.to_string(), "0.0.0.0:9");
    assert_eq!(s.plugins, PathBuf::from("/p.toml"));
    assert_eq!(
        (
            s.expiration_hours,
            s.max_rows,
            s.max_file_size_mb,
            s.max_per_user
        ),
        (2, 3, 4, 5)
    );
    assert_eq!(s.workers, 6);
    assert_eq!(s.cleanup_interval, Duration::from_secs(420));
    assert_eq!(
        (s.retention_days, s.cache_ttl_minutes, s.batch_size),
        (8, 9, 10)
    );
    assert!(s.signing_key.is_some());
    let g = &s.guards;
    assert_eq!(
        (g.header_read_timeout, g.idle_timeout, g.max_connections),
        (Duration::from_secs(11), Duration::from_secs(12), Some(13))
    );
    assert_eq!(
        (
            g.max_selector_bytes,
            g.max_options_bytes,
            g.max_stored_per_user
        ),
        (14_000, 15_000, 16)
    );
    assert_eq!(
        (g.lease, g.shutdown_grace, s.jwt.jwks_refresh),
        (
            Duration::from_secs(17),
            Duration::from_secs(18),
            Duration::from_secs(19)
        )
    );
    for setting in Setting::ALL {
        assert_eq!(s.origin(setting), &Origin::Flag(setting.flag()));
    }
}

/// The only test here that touches the process environment.
#[test]
fn load_reads_the_environment_and_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export-host.toml");
    std::fs::write(
        &file,
        "max_rows = 100\nmax_per_user = 3\nlisten = \"127.0.0.1:9999\"\ncleanup_interval = \"1m\"\n",
    )
    .unwrap();
    std::env::set_var("EXPORT_HOST_CONFIG", &file);
    std::env::set_var("EXPORT_HOST_MAX_PER_USER", "4");
    std::env::set_var("STATE_DIRECTORY", dir.path());

    let cli = Cli::try_parse_from(["export-host", "serve", "--listen", "[::]:8081"]).unwrap();
    let s = HostSettings::load(&cli.settings).unwrap();
    assert_eq!(s.max_rows, 100, "from the file");
    assert_eq!(
        s.origin(Setting::MaxRows),
        &Origin::File {
            path: Some(file.clone()),
            key: "max_rows".into()
        }
    );
    assert_eq!(s.max_per_user, 4, "the environment beats the file");
    assert_eq!(s.listen.to_string(), "[::]:8081", "the flag beats the file");
    assert_eq!(s.cleanup_interval, Duration::from_secs(60));
    assert_eq!(s.data_dir, dir.path());
    assert_eq!(
        s.storage.to_string(),
        format!("file://{}/files", dir.path().display())
    );

    // A bad value in the environment stops loading with one line.
    std::env::set_var("EXPORT_HOST_MAX_ROWS", "ten");
    let err = HostSettings::load(&cli.settings).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid setting MAX_ROWS=\"ten\" (from EXPORT_HOST_MAX_ROWS): expected a whole number of rows, at least 1, e.g. 10000000"
    );
    std::env::remove_var("EXPORT_HOST_MAX_ROWS");

    // An unknown key in the file too.
    std::fs::write(&file, "max_rowz = 1\n").unwrap();
    let err = HostSettings::load(&cli.settings).unwrap_err().to_string();
    assert!(err.starts_with(&format!(
        "unknown setting \"max_rowz\" in config file {} (did you mean \"max_rows\"?); valid settings: data_dir,",
        file.display()
    )), "{err}");

    // A missing config file is an error, not silently skipped.
    std::env::set_var("EXPORT_HOST_CONFIG", dir.path().join("missing.toml"));
    let err = HostSettings::load(&cli.settings).unwrap_err().to_string();
    assert!(err.starts_with("cannot read config file"), "{err}");
    assert!(err.contains("(from EXPORT_HOST_CONFIG)"), "{err}");

    for var in [
        "EXPORT_HOST_CONFIG",
        "EXPORT_HOST_MAX_PER_USER",
        "STATE_DIRECTORY",
    ] {
        std::env::remove_var(var);
    }
}
