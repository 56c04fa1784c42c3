//! The `export-host` binary: argument parsing and output; the work is in the library.

mod cli;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(cli::exit_code(&err))
        }
    }
}

/// Logs go to the journal when stderr is systemd's journal stream (so
/// fields such as `export_id` stay searchable with `journalctl`), and to
/// stderr as plain text otherwise.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("EXPORT_HOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let registry = tracing_subscriber::registry().with(filter);
    if stderr_is_journal() {
        if let Ok(journal) = tracing_journald::layer() {
            registry.with(journal).init();
            return;
        }
    }
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
}

/// Whether stderr is the stream systemd connected to the journal:
/// `JOURNAL_STREAM` names its device and inode (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((device, inode)) = std::env::var("JOURNAL_STREAM")
        .ok()
        .and_then(|v| v.split_once(':').map(|(d, i)| (d.to_owned(), i.to_owned())))
    else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    device.parse() == Ok(meta.dev()) && inode.parse() == Ok(meta.ino())
}
