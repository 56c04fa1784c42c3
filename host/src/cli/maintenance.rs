//! `export-host cleanup` and `export-host migrate`.

use super::{connect, open_service, runtime};
use clap::Args;
use export_host::config::{HostSettings, Setting};
use export_host::plugins::Registry;
use export_host::records::BackendKind;

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// One cleanup pass, now.
pub fn cleanup(settings: &HostSettings, args: CleanupArgs) -> anyhow::Result<()> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let service = open_service(settings, Registry::default()).await?;
        let outcome = service.cleanup_pass(service.now()).await;
        service.records().close().await;
        let report = outcome?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{report}");
        }
        Ok(())
    })
}

/// Connects (which migrates) and reports the backend and schema version.
pub fn migrate(settings: &HostSettings) -> anyhow::Result<()> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let records = connect(settings).await?;
        let version = records.migration_version().await;
        let backend = match records.kind() {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        };
        records.close().await;
        // The URL as the settings report shows it (password redacted).
        let url = settings
            .report()
            .into_iter()
            .find(|(setting, _, _)| *setting == Setting::DatabaseUrl)
            .map(|(_, value, _)| value)
            .unwrap_or_default();
        match version? {
            Some((version, description)) => {
                println!("{backend} database {url} is at migration {version} ({description})")
            }
            None => println!("{backend} database {url} has no migrations applied"),
        }
        Ok(())
    })
}
