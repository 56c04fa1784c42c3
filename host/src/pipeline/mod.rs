//! The export pipeline: a request is checked against the plugins
//! ([`request`]), then streamed loader -> formatter -> [`sink`] ([`stream_export`]),
//! which compresses on its own thread ([`compress`]) when asked, and the
//! output writer gets a thread of its own ([`write_behind`]).
//! [`ExportRun`] puts these together, for the daemon and the CLI alike.
//! Where these steps sit in an export: docs/architecture.md.

pub mod compress;
pub mod export_run;
pub mod igzip;
pub mod plugin_threads;
pub mod request;
pub mod run;
pub mod sink;
pub mod sizes;
#[cfg(test)]
mod test_writers;
pub mod write_behind;

pub use export_run::{ExportRun, ExportRunError};
pub use request::{prepare, Compression, ExportRequest, PreparedExport, RequestError};
pub use run::{stream_export, RunError, RunLimits, RunProgress, RunSummary, Stage};
pub use sink::{Sink, SinkSummary};
pub use sizes::{check_sizes, SizeLimits};
pub use write_behind::WriteBehind;

/// Appends as much of `buf` to `block` as fits in `size` bytes (at least one
/// byte, so a write always progresses) and says how much it took. The
/// threaded writers gather their blocks this way, so a formatter handing
/// over its whole file at the end (xlsx) is never copied whole.
fn fill_block(block: &mut Vec<u8>, buf: &[u8], size: usize) -> usize {
    let room = size.saturating_sub(block.len()).max(1);
    let taken = buf.len().min(room);
    block.extend_from_slice(&buf[..taken]);
    taken
}
