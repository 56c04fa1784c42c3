//! Output writers for the pipeline's unit tests.

use std::io::{self, Write};

/// A writer that fails every write past `left` bytes, like a full disk.
pub(crate) struct Failing {
    pub(crate) left: usize,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.left {
            return Err(io::Error::other("disk full"));
        }
        self.left -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
