//! Command-line interface: parsing, dispatch and exit codes.
//!
//! The host settings ([`SettingsArgs`]: flags, `EXPORT_HOST_*`, `--config`)
//! are resolved once, before any command runs; a bad one stops the process
//! with one line and exit code 2. Commands that touch the database connect
//! (which applies pending migrations) when they start.

mod export;
mod exports;
mod maintenance;
mod plugins;
mod serve;

use clap::{Parser, Subcommand};
use export_host::config::{HostSettings, SettingError, SettingsArgs};
use export_host::pipeline::{RequestError, RunError};
use export_host::plugins::{PluginsConfig, Registry};
use export_host::records::{RecordError, Records};
use export_host::service::{self, ExportService, ServiceError, ServiceSettings};
use export_host::storage;
use std::sync::Arc;

/// Turns data from plugin loaders into files in plugin formats.
#[derive(Debug, Parser)]
#[command(name = "export-host", version, about, max_term_width = 100)]
// `--config FILE` goes before the command: `plugins check` has a `--config`
// of its own (the plugin's config as JSON).
#[command(mut_arg("config", |arg| arg.global(false)))]
#[command(mut_args(export_host::config::env_help))]
pub struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one export now, without the daemon; progress on stderr. With
    /// --record, run it through the export service and keep a record.
    Export(export::ExportArgs),
    /// Inspect and check plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// List, show, cancel and delete recorded exports.
    #[command(subcommand)]
    Exports(exports::ExportsCommand),
    /// One cleanup pass: lost leases, expiry, purge, orphan files, stale uploads.
    Cleanup(maintenance::CleanupArgs),
    /// Apply database migrations and report the schema version.
    Migrate,
    /// The daemon: HTTP API, workers and cleanup, until SIGTERM or SIGINT.
    Serve,
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(serve::TokenCommand),
    /// Internal: one isolated plugin's worker process, started by the host.
    #[command(name = "__plugin-worker", hide = true)]
    PluginWorker(export_host::isolation::WorkerArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = HostSettings::load(&cli.settings).map_err(BadSetting)?;
    service::check_settings(&settings).map_err(BadSetting)?;
    tracing::debug!(?settings, "settings");
    match cli.command {
        Command::Export(args) => export::export_now(&settings, args),
        Command::Plugins(command) => plugins::plugins_command(&settings, command),
        Command::Exports(command) => exports::exports_command(&settings, command),
        Command::Cleanup(args) => maintenance::cleanup(&settings, args),
        Command::Migrate => maintenance::migrate(&settings),
        Command::Serve => serve::serve(&settings),
        Command::Token(command) => serve::token(&settings, command),
        Command::PluginWorker(args) => export_host::isolation::worker::run(args),
    }
}

/// Bad input the user can fix by changing the command line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// A setting that does not resolve; printed as its one line (no cause
/// chain: the line already says everything).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSetting(SettingError);

/// 2 for bad usage or input, 1 for anything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let input = err.chain().any(|cause| {
        cause.is::<InputError>()
            || cause.is::<BadSetting>()
            || cause.is::<RequestError>()
            || cause
                .downcast_ref::<RunError>()
                .is_some_and(RunError::is_input_error)
            || cause
                .downcast_ref::<ServiceError>()
                .is_some_and(ServiceError::is_input_error)
            || cause.downcast_ref::<RecordError>().is_some_and(|err| {
                matches!(
                    err,
                    RecordError::NotFound { .. } | RecordError::InvalidCursor { .. }
                )
            })
    });
    if input {
        2
    } else {
        1
    }
}

/// Reads plugins.toml and loads every plugin in it.
fn load_registry(settings: &HostSettings) -> anyhow::Result<Registry> {
    let config = PluginsConfig::load(&settings.plugins)?;
    Ok(Registry::load(&config))
}

/// Reads plugins.toml and loads what an export of `addresses` needs: when
/// every address names its plugin (`csv/csv`, `json/jsonl`), those plugins
/// only; otherwise (a bare name could be any plugin's) every plugin.
/// Reading, hashing and copying every library is a noticeable share of a
/// short one-shot export, so libraries no address needs are left alone.
fn load_registry_for(settings: &HostSettings, addresses: &[&str]) -> anyhow::Result<Registry> {
    let mut config = PluginsConfig::load(&settings.plugins)?;
    let named: Option<Vec<&str>> = addresses
        .iter()
        .map(|address| address.split_once('/').map(|(plugin, _)| plugin))
        .collect();
    if let Some(named) = named {
        // A name plugins.toml does not list may be a discovered file, and an
        // unknown one is best reported with everything that is available.
        let all_listed = named
            .iter()
            .all(|plugin| config.entries.iter().any(|entry| entry.name == *plugin));
        if all_listed {
            config
                .entries
                .retain(|entry| named.contains(&entry.name.as_str()));
            config.discover = false;
        }
    }
    Ok(Registry::load(&config))
}

/// A runtime for the commands that talk to the database.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Connects to `DATABASE_URL` (applying pending migrations).
async fn connect(settings: &HostSettings) -> anyhow::Result<Records> {
    Ok(Records::connect(&settings.database_url).await?)
}

/// The export service over `DATABASE_URL`, `STORAGE` and `registry`.
async fn open_service(
    settings: &HostSettings,
    registry: Registry,
) -> anyhow::Result<ExportService> {
    let records = connect(settings).await?;
    let storage =
        storage::open_location(&service::storage_location(settings).map_err(BadSetting)?)?;
    Ok(ExportService::new(
        records,
        storage,
        Arc::new(registry),
        ServiceSettings::from_host(settings).map_err(BadSetting)?,
    ))
}
