//! `export-host serve` and `export-host token create|list|revoke`.

use super::{connect, InputError};
use clap::Subcommand;
use export_host::config::HostSettings;
use export_host::records::{RecordError, TokenScope};
use std::time::Duration;

/// Runs the daemon until SIGTERM or SIGINT.
pub fn serve(settings: &HostSettings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.workers.clamp(2, 16))
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(export_host::server::serve(settings));
    // Exports still running past the grace period were released to the
    // queue; their blocking threads are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome?;
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a user and print it (it is shown only this once).
    Create {
        /// The user the token acts for.
        #[arg(long)]
        user: String,
        /// An admin token: sees and manages every user's exports.
        #[arg(long)]
        admin: bool,
        /// Only list, show, download and link exports: no create, cancel or delete.
        #[arg(long)]
        read_only: bool,
        /// Only these loaders (comma-separated, `name` or `plugin/name`), e.g. csv,sql.
        #[arg(long, value_name = "LOADERS", value_delimiter = ',')]
        loaders: Option<Vec<String>>,
        /// Only these selector queries (comma-separated), e.g. conversations,analytics; a selector without a `query` is then refused.
        #[arg(long, value_name = "QUERIES", value_delimiter = ',')]
        queries: Option<Vec<String>>,
        /// Only these formats (comma-separated, `name` or `plugin/name`), e.g. csv,json.
        #[arg(long, value_name = "FORMATS", value_delimiter = ',')]
        formats: Option<Vec<String>>,
    },
    /// Every token: id, user, admin, scope, created, last used, revoked.
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id (`tok_...`): its requests answer 401 from now on.
    Revoke {
        /// The token id, as `token list` shows it.
        id: String,
    },
}

pub fn token(settings: &HostSettings, command: TokenCommand) -> anyhow::Result<()> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let records = connect(settings).await?;
        let now = chrono::Utc::now();
        let outcome = match command {
            TokenCommand::Create {
                user,
                admin,
                read_only,
                loaders,
                queries,
                formats,
            } => {
                let trimmed = |list: Option<Vec<String>>| {
                    list.map(|names| names.into_iter().map(|n| n.trim().to_owned()).collect())
                };
                let scope = TokenScope {
                    read_only,
                    loaders: trimmed(loaders),
                    queries: trimmed(queries),
                    formats: trimmed(formats),
                };
                records
                    .create_token(&user, admin, &scope, now)
                    .await
                    .map(|new| {
                        eprintln!(
                            "created token {} for user {}{} (scope: {}); it is shown only once:",
                            new.info.id,
                            new.info.user_id,
                            if new.info.admin { ", admin" } else { "" },
                            new.info.scope.describe()
                        );
                        println!("{}", new.token);
                    })
            }
            TokenCommand::List { user, json } => records
                .list_tokens(user.as_deref())
                .await
                .and_then(|tokens| {
                    if json {
                        let text = serde_json::to_string_pretty(&tokens).map_err(|e| {
                            RecordError::InvalidInput {
                                field: "tokens",
                                reason: e.to_string(),
                            }
                        })?;
                        println!("{text}");
                    } else {
                        println!("ID\tUSER\tADMIN\tSCOPE\tCREATED\tLAST USED\tREVOKED");
                        for t in tokens {
                            let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                                t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
                            };
                            println!(
                                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                                t.id,
                                t.user_id,
                                if t.admin { "yes" } else { "no" },
                                t.scope.describe(),
                                t.created_at.to_rfc3339(),
                                time(t.last_used_at),
                                time(t.revoked_at)
                            );
                        }
                    }
                    Ok(())
                }),
            TokenCommand::Revoke { id } => records.revoke_token(&id, now).await.map(|info| {
                println!("revoked token {} of user {}", info.id, info.user_id);
            }),
        };
        records.close().await;
        outcome.map_err(|err| match err {
            RecordError::InvalidInput { .. } => anyhow::Error::new(InputError(err.to_string())),
            other => anyhow::Error::new(other),
        })
    })
}
