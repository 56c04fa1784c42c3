//! Starts writing a file to disk while the export that fills it still runs.
//!
//! An export's file is synced before it is renamed into place, so a crash
//! never leaves a torn file under its final name. Left to the end, that sync
//! writes the whole file while the export waits, which for a large export
//! is a good part of its run (bench/README.md). Asking the kernel to start writeback of
//! every [`CHUNK`] as soon as it is written overlaps the two, and the final
//! sync waits only for the tail. Nothing here waits for the disk: the kernel
//! writes in the background and the caller goes on.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};

/// Bytes after which writeback of what was written is started.
const CHUNK: u64 = 8 << 20;

/// A file writer that starts writeback of each [`CHUNK`] it has written.
pub struct EarlyWriteback<F: AsFd + Write> {
    file: F,
    /// [`CHUNK`], or `u64::MAX` when writeback is left to the kernel.
    chunk: u64,
    /// Bytes written so far.
    written: u64,
    /// Where the range not yet handed to writeback starts.
    pending_from: u64,
}

impl<F: AsFd + Write> EarlyWriteback<F> {
    /// Wraps `file`, written from its start.
    pub fn new(file: F) -> Self {
        EarlyWriteback {
            file,
            chunk: CHUNK,
            written: 0,
            pending_from: 0,
        }
    }

    /// Wraps a file that is read back and deleted, never synced (an S3
    /// upload's staging copy): the page cache may well serve all of it, so
    /// writeback is left to the kernel.
    pub fn lazy(file: F) -> Self {
        EarlyWriteback {
            chunk: u64::MAX,
            ..EarlyWriteback::new(file)
        }
    }

    /// The file, to sync and rename.
    pub fn into_inner(self) -> F {
        self.file
    }

    /// The file, to read its path.
    pub fn get_ref(&self) -> &F {
        &self.file
    }

    fn start_writeback(&mut self) {
        let (Ok(offset), Ok(len)) = (
            i64::try_from(self.pending_from),
            i64::try_from(self.written - self.pending_from),
        ) else {
            return;
        };
        // SAFETY: sync_file_range only reads its arguments; the descriptor is
        // open for as long as `self.file` lives.
        let started = unsafe {
            libc::sync_file_range(
                self.file.as_fd().as_raw_fd(),
                offset,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        // Advice only: where it is refused (a file system without it), the
        // final sync writes everything, as it would have anyway.
        if started == 0 {
            self.pending_from = self.written;
        }
    }
}

impl<F: AsFd + Write> Write for EarlyWriteback<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.pending_from >= self.chunk {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_file_holds_every_byte_in_order() {
        let data: Vec<u8> = (0..3 * CHUNK as usize + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut writer = EarlyWriteback::new(tempfile::tempfile().unwrap());
        for piece in data.chunks(1 << 20) {
            writer.write_all(piece).unwrap();
        }
        assert_eq!(writer.written, data.len() as u64);
        assert_eq!(
            writer.pending_from,
            3 * CHUNK,
            "writeback started per chunk"
        );
        let mut file = writer.into_inner();
        file.sync_all().unwrap();
        let mut back = Vec::new();
        std::io::Seek::rewind(&mut file).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn a_lazy_writer_leaves_writeback_to_the_kernel() {
        let mut writer = EarlyWriteback::lazy(tempfile::tempfile().unwrap());
        writer.write_all(&vec![7; 2 * CHUNK as usize]).unwrap();
        assert_eq!(writer.pending_from, 0);
    }
}
