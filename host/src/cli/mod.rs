//! Command-line interface: parsing, dispatch and exit codes.

mod export;
mod plugins;

use clap::{Parser, Subcommand};
use export_host::pipeline::{RequestError, RunError};
use export_host::plugins::{PluginsConfig, Registry};
use export_host::settings::Settings;

/// Turns data from plugin loaders into files in plugin formats.
#[derive(Debug, Parser)]
#[command(name = "export-host", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one export now, without the daemon; progress on stderr.
    Export(export::ExportArgs),
    /// Inspect and check plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Export(args) => export::run(&cli.settings, args),
        Command::Plugins(command) => plugins::run(&cli.settings, command),
    }
}

/// Bad input the user can fix by changing the command line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// 2 for bad usage or input, 1 for anything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let input = err.chain().any(|cause| {
        cause.is::<InputError>()
            || cause.is::<RequestError>()
            || cause
                .downcast_ref::<RunError>()
                .is_some_and(RunError::is_input_error)
    });
    if input {
        2
    } else {
        1
    }
}

/// Reads plugins.toml and loads every plugin in it.
fn load_registry(settings: &Settings) -> anyhow::Result<Registry> {
    let config = PluginsConfig::load(&settings.plugins)?;
    Ok(Registry::load(&config))
}
