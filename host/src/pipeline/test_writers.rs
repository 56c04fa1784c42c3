//! Output writers, data and decoders for the pipeline's unit tests.

use std::io::{self, Read, Write};

/// `rows` lines of CSV-like text that compresses as real exports do.
pub(crate) fn sample_lines(rows: u32) -> Vec<u8> {
    (0..rows)
        .flat_map(|i| format!("{i},user-{},{}\n", i % 97, i * 7).into_bytes())
        .collect()
}

/// Inflates one gzip member and checks nothing follows it: a single-member
/// decoder (as many readers are) would leave a second member unread.
pub(crate) fn gunzip_one_member(packed: &[u8]) -> Vec<u8> {
    let mut decoder = flate2::read::GzDecoder::new(packed);
    let mut back = Vec::new();
    decoder
        .read_to_end(&mut back)
        .unwrap_or_else(|err| panic!("not gzip: {err}"));
    assert!(
        decoder.into_inner().is_empty(),
        "bytes after the gzip member"
    );
    back
}

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
