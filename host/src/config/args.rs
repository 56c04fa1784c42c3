//! The settings flags of the command line, as raw text.

use super::{Setting, CONFIG_ENV};
use std::path::PathBuf;

/// The settings flags, as raw text: [`resolve`](super::resolve) parses and validates them so
/// that every bad value, whatever its source, fails the same way. Flatten
/// into the top-level parser with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsArgs {
    /// Read settings from this TOML file (lower-case keys, e.g. `max_rows = 5`); flags and EXPORT_HOST_* variables override it.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the database, files and signing key. [default: ./data, or $STATE_DIRECTORY]
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<String>,
    /// Database: sqlite://PATH or postgres://... [default: sqlite://$DATA_DIR/exports.db]
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// Where export files are kept: file:///PATH, a directory, or s3://bucket/prefix. [default: file://$DATA_DIR/files]
    #[arg(long, value_name = "URL", global = true)]
    pub storage: Option<String>,
    /// Address of the HTTP API. [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub listen: Option<String>,
    /// The plugin registry. [default: ./plugins.toml]
    #[arg(long, value_name = "FILE", global = true)]
    pub plugins: Option<String>,
    /// Hours a completed export stays downloadable. [default: 24]
    #[arg(long, value_name = "HOURS", global = true)]
    pub expiration_hours: Option<String>,
    /// Most rows one export may have. [default: 10000000]
    #[arg(long, value_name = "ROWS", global = true)]
    pub max_rows: Option<String>,
    /// Largest file one export may produce, in MB after compression. [default: 1024]
    #[arg(long, value_name = "MB", global = true)]
    pub max_file_size_mb: Option<String>,
    /// Most active exports per user. [default: 20]
    #[arg(long, value_name = "N", global = true)]
    pub max_per_user: Option<String>,
    /// Exports run at once. [default: number of CPUs]
    #[arg(long, value_name = "N", global = true)]
    pub workers: Option<String>,
    /// Time between cleanup passes, e.g. 10m. [default: 10m]
    #[arg(long, value_name = "DURATION", global = true)]
    pub cleanup_interval: Option<String>,
    /// Days an expired or failed record is kept before it is purged. [default: 7]
    #[arg(long, value_name = "DAYS", global = true)]
    pub retention_days: Option<String>,
    /// Minutes within which an identical request by the same user returns the existing export; 0 is off. [default: 0]
    #[arg(long, value_name = "MINUTES", global = true)]
    pub cache_ttl_minutes: Option<String>,
    /// Key that signs download links; prefer the environment or the config file, since a flag is visible to other local users. [default: generated in DATA_DIR]
    #[arg(long, value_name = "KEY", global = true)]
    pub signing_key: Option<String>,
    /// Rows per batch asked of loaders; larger batches use more memory. [default: 8192]
    #[arg(long, value_name = "ROWS", global = true)]
    pub batch_size: Option<String>,
    /// Answer downloads with a redirect to a presigned S3 URL (on/off); the daemon then serves no file bytes. [default: off]
    #[arg(long, value_name = "on|off", global = true)]
    pub download_redirect: Option<String>,
    /// The URL clients reach the API at, used in the download links it hands out (behind a proxy: its https address). [default: http://LISTEN]
    #[arg(long, value_name = "URL", global = true)]
    pub public_url: Option<String>,
    /// The former SIGNING_KEY during a rotation: links signed with it still verify, new links use SIGNING_KEY.
    #[arg(long, value_name = "KEY", global = true)]
    pub signing_key_previous: Option<String>,
    /// Accept HS256 JWTs signed with this shared secret as bearer tokens; prefer the environment or the config file.
    #[arg(long, value_name = "SECRET", global = true)]
    pub jwt_secret: Option<String>,
    /// Accept JWTs signed with the keys of this JWKS (a file, or an https URL re-fetched on an unknown key id).
    #[arg(long, value_name = "FILE|URL", global = true)]
    pub jwt_jwks: Option<String>,
    /// Accept only JWTs with this `iss`.
    #[arg(long, value_name = "ISS", global = true)]
    pub jwt_issuer: Option<String>,
    /// Accept only JWTs whose `aud` names one of these (comma-separated).
    #[arg(long, value_name = "AUD", global = true)]
    pub jwt_audience: Option<String>,
    /// The JWT claim holding the user id. [default: sub]
    #[arg(long, value_name = "CLAIM", global = true)]
    pub jwt_user_claim: Option<String>,
    /// A JWT whose claim has this value is an admin, e.g. role=service_role (an array claim may contain it).
    #[arg(long, value_name = "CLAIM=VALUE", global = true)]
    pub jwt_admin: Option<String>,
    /// Time a client has to send a request head, and that a kept-alive connection may wait for the next. [default: 10s]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub header_read_timeout: Option<String>,
    /// Time a connection may move no byte either way before it is closed. [default: 330s]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub idle_timeout: Option<String>,
    /// Connections served at once; past it new ones wait or get 503. [default: from the open-file limit]
    #[arg(long, value_name = "N", global = true)]
    pub max_connections: Option<String>,
    /// Largest request selector, as JSON. [default: 65536]
    #[arg(long, value_name = "BYTES", global = true)]
    pub max_selector_bytes: Option<String>,
    /// Largest request options, as JSON. [default: 65536]
    #[arg(long, value_name = "BYTES", global = true)]
    pub max_options_bytes: Option<String>,
    /// Most export records (failed ones included) kept per user. [default: 10000]
    #[arg(long, value_name = "N", global = true)]
    pub max_stored_per_user: Option<String>,
    /// How long a claimed export lasts without a heartbeat before another daemon may take it. [default: 60]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub lease_seconds: Option<String>,
    /// How long running exports may finish on SIGTERM before they go back to the queue. [default: 30s]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub shutdown_grace: Option<String>,
    /// Shortest time between two fetches of a JWT_JWKS URL. [default: 60]
    #[arg(long, value_name = "SECONDS", global = true)]
    pub jwks_refresh_seconds: Option<String>,
    /// URL prefixes a request's callback_url may start with (comma-separated); internal addresses only when a prefix names that host. [default: none, callbacks refused]
    #[arg(long, value_name = "PREFIXES", global = true)]
    pub webhook_allow: Option<String>,
    /// Secret that signs webhook deliveries (Export-Host-Signature); prefer the environment or the config file. [default: none, callbacks refused]
    #[arg(long, value_name = "SECRET", global = true)]
    pub webhook_secret: Option<String>,
    /// Wait after a webhook's first failed attempt, doubling after each further one (at most 1h); below 1s only for tests. [default: 1s]
    #[arg(long, value_name = "DURATION", global = true)]
    pub webhook_backoff: Option<String>,
}

/// Adds `[env: EXPORT_HOST_...]` to the help of a settings flag, taken
/// from the settings table, so that the variable a flag's help names is
/// always the one [`resolve`](super::resolve) reads. For
/// `#[command(mut_args(env_help))]` on the parser that flattens
/// [`SettingsArgs`]; other arguments pass through unchanged.
pub fn env_help(arg: clap::Arg) -> clap::Arg {
    let id = arg.get_id().as_str();
    let var = if id == "config" {
        CONFIG_ENV.to_owned()
    } else {
        match Setting::ALL.into_iter().find(|s| s.key() == id) {
            Some(setting) => setting.env_var(),
            None => return arg,
        }
    };
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    // Before the `[default: ...]` a help text ends with, as clap orders them.
    let (text, default) = match help.find(" [default: ") {
        Some(at) => help.split_at(at),
        None => (help.as_str(), ""),
    };
    // clap drops the full stop that ends a one-line doc comment.
    let stop = if text.ends_with('.') { "" } else { "." };
    arg.help(format!("{text}{stop} [env: {var}]{default}"))
}
