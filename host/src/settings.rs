//! Host settings. Precedence: command-line flag > `EXPORT_HOST_*` environment
//! variable > default.

use clap::Args;
use std::path::PathBuf;

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// The plugin registry (plugins.toml).
    #[arg(long, env = "EXPORT_HOST_PLUGINS", default_value = "plugins.toml", global = true)]
    pub plugins: PathBuf,

    /// The most rows one export may have.
    #[arg(long, env = "EXPORT_HOST_MAX_ROWS", default_value_t = 10_000_000,
          value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub max_rows: u64,

    /// The largest file one export may produce, in MB (after compression).
    #[arg(long, env = "EXPORT_HOST_MAX_FILE_SIZE_MB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=16_777_216), global = true)]
    pub max_file_size_mb: u64,

    /// Rows per batch asked of loaders; larger batches use more memory.
    #[arg(long, env = "EXPORT_HOST_BATCH_SIZE", default_value_t = 8192,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576), global = true)]
    pub batch_size: u64,
}

impl Settings {
    /// The run limits these settings imply.
    pub fn run_limits(&self) -> crate::pipeline::RunLimits {
        crate::pipeline::RunLimits {
            max_rows: self.max_rows,
            max_bytes: self.max_file_size_mb.saturating_mul(1024 * 1024),
            batch_size: usize::try_from(self.batch_size).unwrap_or(8192),
        }
    }
}
