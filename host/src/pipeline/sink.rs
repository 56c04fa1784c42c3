//! Where formatted bytes go: counted, capped, optionally compressed and
//! hashed. The formatter never touches storage.

use super::compress::Compressor;
use super::request::Compression;
use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// The output passed the size cap.
#[derive(Debug, thiserror::Error)]
#[error("output passed {limit} bytes")]
pub struct SizeLimitExceeded {
    /// The cap in bytes.
    pub limit: u64,
}

/// Counts, caps and hashes the final (stored) bytes.
struct Meter<W: Write> {
    inner: W,
    written: u64,
    limit: u64,
    hasher: Option<Sha256>,
}

impl<W: Write> Write for Meter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::other(SizeLimitExceeded { limit: self.limit }));
        }
        let n = self.inner.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder<W: Write> {
    Plain(Meter<W>),
    Compressed(Compressor<Meter<W>>),
}

/// What a finished sink reports.
#[derive(Debug, Clone)]
pub struct SinkSummary {
    /// Bytes the formatter produced.
    pub formatted_bytes: u64,
    /// Bytes written out (after compression).
    pub stored_bytes: u64,
    /// Lowercase hex SHA-256 of the written bytes, when hashing was on.
    pub sha256: Option<String>,
}

/// The host's output stage for one export.
pub struct Sink<W: Write> {
    encoder: Encoder<W>,
    formatted: u64,
}

impl<W: Write> Sink<W> {
    /// A sink over `inner` that fails once more than `limit` bytes would be
    /// stored, compressing first when asked and hashing when `hash` is set.
    pub fn new(
        inner: W,
        limit: u64,
        compression: Option<Compression>,
        hash: bool,
    ) -> io::Result<Self> {
        let meter = Meter {
            inner,
            written: 0,
            limit,
            hasher: hash.then(Sha256::new),
        };
        let encoder = match compression {
            None => Encoder::Plain(meter),
            Some(compression) => Encoder::Compressed(Compressor::new(meter, compression)?),
        };
        Ok(Sink {
            encoder,
            formatted: 0,
        })
    }

    /// Bytes the formatter produced so far.
    pub fn formatted_bytes(&self) -> u64 {
        self.formatted
    }

    /// Completes compression and returns the inner writer with the figures.
    pub fn finish(self) -> io::Result<(W, SinkSummary)> {
        let mut meter = match self.encoder {
            Encoder::Plain(meter) => meter,
            Encoder::Compressed(compressor) => compressor.finish()?,
        };
        meter.flush()?;
        let summary = SinkSummary {
            formatted_bytes: self.formatted,
            stored_bytes: meter.written,
            sha256: meter.hasher.map(|h| hex::encode(h.finalize())),
        };
        Ok((meter.inner, summary))
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.encoder {
            Encoder::Plain(w) => w.write(buf)?,
            Encoder::Compressed(w) => w.write(buf)?,
        };
        self.formatted += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Plain(w) => w.flush(),
            Encoder::Compressed(w) => w.flush(),
        }
    }
}

/// Whether `err` is the sink's size cap.
pub fn size_limit(err: &io::Error) -> Option<u64> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<SizeLimitExceeded>())
        .map(|e| e.limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn caps_the_stored_size() {
        let mut sink = Sink::new(Vec::new(), 10, None, false).unwrap();
        sink.write_all(b"12345").unwrap();
        let err = sink.write_all(b"678901").unwrap_err();
        assert_eq!(size_limit(&err), Some(10));
    }

    #[test]
    fn compressed_output_decompresses_to_the_input() {
        let data = b"a,b\n1,2\n".repeat(1000);
        for compression in [Compression::Gzip, Compression::Zstd] {
            let mut sink = Sink::new(Vec::new(), u64::MAX, Some(compression), true).unwrap();
            sink.write_all(&data).unwrap();
            let (bytes, summary) = sink.finish().unwrap();
            assert_eq!(summary.formatted_bytes, data.len() as u64);
            assert_eq!(summary.stored_bytes, bytes.len() as u64);
            assert_eq!(summary.sha256.unwrap(), hex::encode(Sha256::digest(&bytes)));
            let mut back = Vec::new();
            match compression {
                Compression::Gzip => {
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Compression::Zstd => back = zstd::decode_all(&bytes[..]).unwrap(),
            }
            assert_eq!(back, data);
        }
    }
}
