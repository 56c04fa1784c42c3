//! Output writes on a thread of their own.
//!
//! Copying the formatted bytes into the page cache (or a socket) is a large
//! share of the formatter thread's time on a plain JSONL export (perf: the
//! kernel's `copy_folio_from_iter_atomic`; bench/README.md), time the formatter could spend
//! formatting. [`WriteBehind`] gathers the bytes into blocks and a writer
//! thread writes them, so formatting and writing overlap on two cores.
//!
//! At most [`QUEUED_BLOCKS`] blocks wait for the writer, and written blocks
//! come back to be filled again. A write error ends the writer thread; the
//! next write or [`WriteBehind::finish`] returns it. Dropping an unfinished
//! `WriteBehind` discards what is queued and waits for the writer to drop
//! the inner writer, so an abandoned output is cleaned up (a temporary file
//! removed, an upload aborted) before the drop returns.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes are handed to the writer thread in blocks of this size.
const BLOCK: usize = 1 << 20;

/// Blocks the formatter may run ahead of the writer.
const QUEUED_BLOCKS: usize = 4;

/// A writer whose writes happen on another thread.
pub struct WriteBehind<W: Write + Send + 'static> {
    block: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    abandoned: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> WriteBehind<W> {
    /// Starts the writer thread for `inner`.
    pub fn new(inner: W) -> io::Result<Self> {
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(QUEUED_BLOCKS);
        let (empty_tx, empty_rx) = channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let stop = abandoned.clone();
        let thread = std::thread::Builder::new()
            .name("export-write".to_owned())
            .spawn(move || {
                let mut inner = inner;
                for mut block in full_rx {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    inner.write_all(&block)?;
                    block.clear();
                    let _ = empty_tx.send(block);
                }
                if !stop.load(Ordering::Relaxed) {
                    inner.flush()?;
                }
                Ok(inner)
            })?;
        Ok(WriteBehind {
            block: Vec::with_capacity(BLOCK),
            full: Some(full_tx),
            empty: empty_rx,
            abandoned,
            thread: Some(thread),
        })
    }

    /// Writes what is left, waits for the writer and returns the inner
    /// writer, or the first error it met.
    pub fn finish(mut self) -> io::Result<W> {
        self.hand_over()?;
        self.full = None;
        self.join()
    }

    fn hand_over(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
        let block = std::mem::replace(&mut self.block, next);
        let sent = match &self.full {
            Some(full) => full.send(block).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer thread ended early: it met an error.
        self.full = None;
        match self.join() {
            Err(err) => Err(err),
            Ok(_) => Err(io::Error::other("the output writer stopped early")),
        }
    }

    fn join(&mut self) -> io::Result<W> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the output writer thread panicked"))),
            None => Err(io::Error::other("the output writer already ended")),
        }
    }
}

impl<W: Write + Send + 'static> Write for WriteBehind<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = super::fill_block(&mut self.block, buf, BLOCK);
        if self.block.len() >= BLOCK {
            self.hand_over()?;
        }
        Ok(taken)
    }

    /// Hands the pending bytes to the writer; they reach the inner writer
    /// soon after, and for certain by [`WriteBehind::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}

impl<W: Write + Send + 'static> Drop for WriteBehind<W> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.abandoned.store(true, Ordering::Relaxed);
            self.full = None;
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_writers::Failing;
    use std::sync::Mutex;

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect()
    }

    #[test]
    fn writes_every_byte_in_order_for_any_write_size() {
        let data = sample();
        for piece in [1, 999, BLOCK - 1, BLOCK, BLOCK * 2 + 3, data.len()] {
            let mut writer = WriteBehind::new(Vec::new()).unwrap();
            for chunk in data.chunks(piece) {
                writer.write_all(chunk).unwrap();
            }
            assert_eq!(writer.finish().unwrap(), data, "pieces of {piece}");
        }
        assert_eq!(WriteBehind::new(Vec::new()).unwrap().finish().unwrap(), b"");
    }

    #[test]
    fn a_write_error_reaches_the_caller() {
        let data = sample();
        let mut writer = WriteBehind::new(Failing { left: 10 }).unwrap();
        let failed = data.chunks(4096).find_map(|c| writer.write_all(c).err());
        let err = match failed {
            Some(err) => err,
            None => writer.finish().err().expect("the finish fails"),
        };
        assert_eq!(err.to_string(), "disk full");
    }

    /// Notes when it is dropped.
    struct Noted(Arc<Mutex<bool>>);

    impl Write for Noted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Noted {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = true;
        }
    }

    #[test]
    fn dropping_an_unfinished_writer_drops_the_inner_one_before_returning() {
        let dropped = Arc::new(Mutex::new(false));
        let mut writer = WriteBehind::new(Noted(dropped.clone())).unwrap();
        writer.write_all(&sample()).unwrap();
        drop(writer);
        assert!(*dropped.lock().unwrap());
    }
}
