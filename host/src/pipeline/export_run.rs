//! [`ExportRun`]: the one place an export is put together, from a prepared
//! request and a writer: loader -> formatter ([`stream_export`]) -> the
//! [`Sink`] (size cap, compression, SHA-256) -> a [`WriteBehind`] thread ->
//! the writer. The daemon hands it a storage upload, the one-shot CLI a file
//! or standard output (docs/architecture.md, "The path of an export").

use std::io::{self, Write};

use super::{stream_export, PreparedExport, RunError, RunLimits, RunProgress, RunSummary};
use super::{Sink, WriteBehind};

/// One export, ready to run into a writer.
#[derive(Clone, Copy)]
pub struct ExportRun<'p> {
    prepared: &'p PreparedExport,
    limits: RunLimits,
    hash: bool,
}

/// Why an [`ExportRun`] failed, by where: the output could not be set up,
/// the run failed (a plugin, a limit, a write), or the last bytes could not
/// be written out.
#[derive(Debug, thiserror::Error)]
pub enum ExportRunError {
    #[error("cannot start the output: {0}")]
    Start(#[source] io::Error),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{0}")]
    Finish(#[source] io::Error),
}

impl<'p> ExportRun<'p> {
    /// `prepared` under `limits`, its output not hashed.
    pub fn new(prepared: &'p PreparedExport, limits: RunLimits) -> ExportRun<'p> {
        ExportRun {
            prepared,
            limits,
            hash: false,
        }
    }

    /// Also computes the SHA-256 of the bytes written (what a record keeps).
    pub fn hashed(self) -> ExportRun<'p> {
        ExportRun { hash: true, ..self }
    }

    /// Runs the export into `writer`, calling `progress` after each batch,
    /// and hands the writer back once every byte has reached it. On error
    /// the writer is dropped inside: whatever it is (an upload, a temporary
    /// file), dropping it must discard what it got.
    pub fn into_writer<W: Write + Send + 'static>(
        self,
        writer: W,
        progress: &mut dyn FnMut(RunProgress),
    ) -> Result<(W, RunSummary), ExportRunError> {
        let behind = WriteBehind::new(writer).map_err(ExportRunError::Start)?;
        let sink = Sink::new(
            behind,
            self.limits.max_bytes,
            self.prepared.compression,
            self.hash,
        )
        .map_err(ExportRunError::Start)?;
        let (behind, summary) = stream_export(self.prepared, self.limits, sink, progress)?;
        let writer = behind.finish().map_err(ExportRunError::Finish)?;
        Ok((writer, summary))
    }
}
