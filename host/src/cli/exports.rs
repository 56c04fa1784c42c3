//! `export-host exports list|show|watch|download|cancel|delete`: recorded
//! exports, as an operator sees them (every user's, unless `--user`
//! narrows it).

mod download;
pub(super) mod watch;

use super::{open_service, runtime, InputError};
use clap::Subcommand;
use export_host::config::HostSettings;
use export_host::plugins::Registry;
use export_host::records::{ExportId, ExportRecord, ListFilter, Scope, Status};
use export_host::service::ExportService;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ExportsCommand {
    /// Recorded exports, newest first.
    List {
        /// Only this user's exports [default: every user's].
        #[arg(long)]
        user: Option<String>,
        /// Only exports in this status: pending, processing, completed,
        /// expired, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only exports of this loader (`plugin/name`).
        #[arg(long)]
        loader: Option<String>,
        /// Only exports in this format (`plugin/name`).
        #[arg(long)]
        format: Option<String>,
        /// Exports per page, 1 to 500.
        #[arg(long, default_value_t = ListFilter::DEFAULT_LIMIT)]
        limit: u32,
        /// The next page: the cursor the previous page printed.
        #[arg(long)]
        cursor: Option<String>,
        /// Print JSON (`{"items": [...], "next_cursor": ...}`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One export, every field.
    Show {
        /// The export id (`exp_...`).
        id: String,
        /// Look only among this user's exports.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON instead of `field: value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Follow an export until it ends: a progress bar on a terminal, a
    /// line per change elsewhere, then its status, rows and size. Exits 0
    /// when it completed, non-zero when it failed, was cancelled or expired.
    Watch {
        /// The export id.
        id: String,
        /// Look only among this user's exports.
        #[arg(long)]
        user: Option<String>,
    },
    /// Copy a completed export's file. An interrupted download is resumed
    /// from where it stopped (`FILE.part`); the file is named FILE only once
    /// its size and SHA-256 match the record.
    Download {
        /// The export id.
        id: String,
        /// Where to write it; `-` is standard output [default: the export's
        /// file name, in the current folder].
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Look only among this user's exports.
        #[arg(long)]
        user: Option<String>,
    },
    /// Cancel a pending or processing export.
    Cancel {
        /// The export id.
        id: String,
        /// Look only among this user's exports.
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a finished export's record and its file.
    Delete {
        /// The export id.
        id: String,
        /// Look only among this user's exports.
        #[arg(long)]
        user: Option<String>,
    },
}

pub fn exports_command(settings: &HostSettings, command: ExportsCommand) -> anyhow::Result<()> {
    let runtime = runtime()?;
    runtime.block_on(async {
        // Listing and deleting need no plugins.
        let service = open_service(settings, Registry::default()).await?;
        let outcome = dispatch(&service, command).await;
        service.records().close().await;
        outcome
    })
}

fn scope(user: Option<String>) -> Scope {
    user.map_or(Scope::Admin, Scope::User)
}

fn export_id(text: &str) -> anyhow::Result<ExportId> {
    Ok(text.parse::<ExportId>()?)
}

async fn dispatch(service: &ExportService, command: ExportsCommand) -> anyhow::Result<()> {
    match command {
        ExportsCommand::List {
            user,
            status,
            loader,
            format,
            limit,
            cursor,
            json,
        } => {
            let status = status
                .map(|text| {
                    text.parse::<Status>().map_err(|_| {
                        InputError(format!(
                            "--status {text:?} is not a status; use one of: {}",
                            Status::ALL.map(Status::as_str).join(", ")
                        ))
                    })
                })
                .transpose()?;
            if !(1..=ListFilter::MAX_LIMIT).contains(&limit) {
                return Err(InputError(format!(
                    "--limit {limit} is out of range; use 1 to {}",
                    ListFilter::MAX_LIMIT
                ))
                .into());
            }
            let filter = ListFilter {
                user,
                status,
                loader,
                format,
                limit,
                cursor,
            };
            let page = service.list(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                print_table(&page.items);
                if let Some(next) = &page.next_cursor {
                    eprintln!("more: --cursor {next}");
                }
            }
            Ok(())
        }
        ExportsCommand::Show { id, user, json } => {
            let record = service.get(&scope(user), &export_id(&id)?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                print_record(&record)?;
            }
            Ok(())
        }
        ExportsCommand::Watch { id, user } => {
            watch::watch(service, &scope(user), &export_id(&id)?).await
        }
        ExportsCommand::Download { id, output, user } => {
            download::download(service, &scope(user), &export_id(&id)?, output).await
        }
        ExportsCommand::Cancel { id, user } => {
            let record = service.cancel(&scope(user), &export_id(&id)?).await?;
            println!("cancelled {}", record.id);
            Ok(())
        }
        ExportsCommand::Delete { id, user } => {
            let id = export_id(&id)?;
            service.delete(&scope(user), &id).await?;
            println!("deleted {id}");
            Ok(())
        }
    }
}

fn dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn print_table(records: &[ExportRecord]) {
    if records.is_empty() {
        println!("(no exports)");
        return;
    }
    let header = [
        "ID", "USER", "STATUS", "LOADER", "FORMAT", "ROWS", "SIZE", "CREATED",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.user_id.clone(),
                r.status.to_string(),
                r.loader.clone(),
                r.format.clone(),
                dash(r.row_count),
                dash(r.size_bytes),
                r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    let mut widths = [0usize; 8];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn print_record(record: &ExportRecord) -> anyhow::Result<()> {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| dash(t.map(|t| t.to_rfc3339()));
    println!("id: {}", record.id);
    println!("user: {}", record.user_id);
    println!("status: {}", record.status);
    println!("loader: {}", record.loader);
    println!("format: {}", record.format);
    println!("selector: {}", record.selector);
    println!("options: {}", record.options);
    println!("file_name: {}", dash(record.file_name.as_ref()));
    println!("storage_key: {}", dash(record.storage_key.as_ref()));
    println!("mime_type: {}", dash(record.mime_type.as_ref()));
    println!("size: {}", dash(record.size_bytes));
    println!("rows: {}", dash(record.row_count));
    println!("sha256: {}", dash(record.sha256.as_ref()));
    println!("error: {}", dash(record.error.as_ref()));
    println!("attempts: {}", record.attempts);
    println!("lease_owner: {}", dash(record.lease_owner.as_ref()));
    println!("lease_expires_at: {}", time(record.lease_expires_at));
    println!("downloads: {}", record.download_count);
    println!("last_downloaded_at: {}", time(record.last_downloaded_at));
    println!("created_at: {}", record.created_at.to_rfc3339());
    println!("updated_at: {}", record.updated_at.to_rfc3339());
    println!("started_at: {}", time(record.started_at));
    println!("completed_at: {}", time(record.completed_at));
    println!("expires_at: {}", time(record.expires_at));
    println!("metadata: {}", serde_json::to_string(&record.metadata)?);
    Ok(())
}
