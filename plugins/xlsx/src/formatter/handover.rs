//! Hands the finished workbook over in pieces.
//!
//! An xlsx file is a zip that rust_xlsxwriter assembles only at the end, and
//! `Workbook::save_to_writer` pushes all of it in one call. Holding it whole
//! would cost as much memory as the file (tens of MB for a million rows), so the
//! save runs on a thread of its own and writes into a bounded channel that
//! [`Handover::next`] drains, one piece per `finish_more`: at most
//! `QUEUED + 2` pieces exist at any time.

use export_plugin_api::{PluginError, Result};
use rust_xlsxwriter::{Workbook, XlsxError};
use std::io::{self, Write};
use std::panic;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

/// Bytes per piece handed to the host.
const PIECE_BYTES: usize = 1 << 20;
/// Pieces the saving thread may run ahead of the host.
const QUEUED: usize = 2;

/// A workbook being saved, read back piece by piece.
pub(crate) struct Handover {
    /// `None` once drained, or while dropping (so the saver sees the end).
    pieces: Option<Receiver<Vec<u8>>>,
    saver: Option<JoinHandle<std::result::Result<(), XlsxError>>>,
}

impl Handover {
    /// Starts saving `workbook` on its own thread.
    pub(crate) fn start(mut workbook: Workbook) -> Result<Handover> {
        let (sender, pieces) = sync_channel(QUEUED);
        let saver = thread::Builder::new()
            .name("xlsx-save".into())
            .spawn(move || {
                let mut pieces = PieceWriter {
                    piece: Vec::with_capacity(PIECE_BYTES),
                    sender,
                };
                workbook.save_to_writer(&mut pieces)?;
                pieces.send_rest()?;
                Ok(())
            })
            .map_err(|err| {
                PluginError::io(format!(
                    "cannot start the thread that assembles the xlsx file: {err}"
                ))
            })?;
        Ok(Handover {
            pieces: Some(pieces),
            saver: Some(saver),
        })
    }

    /// Appends the next piece to `out`; `false` once the file is complete.
    pub(crate) fn next(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        if let Some(piece) = self.pieces.as_ref().and_then(|pieces| pieces.recv().ok()) {
            out.extend_from_slice(&piece);
            return Ok(true);
        }
        // The saver hung up: the file is complete, or the save failed.
        self.pieces = None;
        match self.saver.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(false),
            Some(Ok(Err(err))) => Err(PluginError::io(format!(
                "writing the xlsx file failed: {err}"
            ))),
            // The plugin API's guard turns the panic into this export's error.
            Some(Err(payload)) => panic::resume_unwind(payload),
        }
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        // Hanging up first makes a saver blocked on a full channel fail its
        // write and end, so the join below cannot wait forever.
        self.pieces = None;
        if let Some(saver) = self.saver.take() {
            let _ = saver.join();
        }
    }
}

/// The saver's end: gathers the zip's small writes into whole pieces.
struct PieceWriter {
    piece: Vec<u8>,
    sender: SyncSender<Vec<u8>>,
}

impl PieceWriter {
    fn send_piece(&mut self) -> io::Result<()> {
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE_BYTES));
        self.sender.send(piece).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the export stopped taking the xlsx file",
            )
        })
    }

    fn send_rest(&mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        self.send_piece()
    }
}

impl Write for PieceWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = PIECE_BYTES - self.piece.len();
        let taken = bytes.len().min(room);
        self.piece.extend_from_slice(&bytes[..taken]);
        if self.piece.len() == PIECE_BYTES {
            self.send_piece()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Pieces go out when full or at the end; a flush has nothing to add.
        Ok(())
    }
}
