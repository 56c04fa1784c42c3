//! Output compression on a thread of its own.
//!
//! Compressing costs as much CPU as formatting, so doing it on the thread that
//! formats would add the two times together. Here the formatter's bytes go
//! to a compressor thread in blocks and the compressed blocks come back to
//! the caller, which writes them: the output writer never leaves the
//! caller's thread (it need not be `Send`), the size cap and the checksum
//! apply on the caller's side, and the two stages overlap on two cores.
//! gzip runs on ISA-L's igzip where the system has it ([`super::igzip`]),
//! which keeps up with any formatter; otherwise zlib-rs deflates its blocks
//! on several threads at once ([`ParallelGzip`]), since alone, its level 1
//! takes longer than the whole plain export.
//!
//! Memory stays bounded: at most [`QUEUED_BLOCKS`] raw blocks
//! ([`ZSTD_QUEUED_BLOCKS`] for zstd) wait for the compressor, which holds a
//! few more in its workers (gzp queues two blocks per thread; zstd's jobs
//! are [`ZSTD_JOB_BYTES`]), and the caller drains what came back before
//! every hand-over.

use super::igzip;
use super::request::Compression;
use gzp::deflate::Gzip;
use gzp::par::compress::{ParCompress, ParCompressBuilder};
use gzp::ZWriter;
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// Raw bytes are handed over in blocks of this size.
const BLOCK: usize = 1024 * 1024;

/// Raw blocks the formatter may run ahead of the compressor. Loader,
/// formatter and compressor share the CPU of a gzip export about equally,
/// and each runs in bursts; a short queue left a core idle whenever one of
/// them was descheduled, and a longer one than this gained nothing (the
/// measurements are in bench/README.md, "Results, 2026-12-02 14:00 UTC").
const QUEUED_BLOCKS: usize = 12;

/// The same for zstd, whose workers already hold several
/// [`ZSTD_JOB_BYTES`] jobs of their own; with as many blocks as gzip queues,
/// parquet + zstd came close to the peak-memory target (bench/README.md,
/// "Results, 2026-12-02 15:05 UTC").
const ZSTD_QUEUED_BLOCKS: usize = 4;

/// gzip's level on zlib-rs. Without igzip, deflate is the slowest stage of
/// a gzip export by far, and its cost climbs steeply with the level, to
/// well above the whole uncompressed export at zlib's default 6. Level 1, on
/// [`compression_threads`] threads, keeps a gzip export within the target
/// of bench/README.md; its files are larger than level 6's (igzip's level 1
/// is both smaller and faster), and zstd is the choice for small files fast.
pub const GZIP_LEVEL: u32 = 1;

/// The deflate a gzip stream runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GzipEngine {
    /// ISA-L's igzip, opened from the system at run time.
    Igzip,
    /// zlib-rs, built in, on several threads through gzp.
    Zlib,
}

impl GzipEngine {
    /// igzip where it can be opened, zlib-rs otherwise.
    pub fn preferred() -> Self {
        if igzip::available() {
            GzipEngine::Igzip
        } else {
            GzipEngine::Zlib
        }
    }
}

/// Threads that compress one stream's blocks side by side (gzip's through
/// gzp, zstd's own workers): every core, up to four (more would only queue
/// behind the formatter).
fn compression_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Input bytes per zstd worker job.
const ZSTD_JOB_BYTES: u32 = 2 << 20;

/// A zstd encoder whose frame is compressed by [`compression_threads`]
/// workers (still one standard frame).
fn zstd_encoder() -> io::Result<zstd::stream::write::Encoder<'static, Vec<u8>>> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
    let workers = u32::try_from(compression_threads()).unwrap_or(1);
    encoder.multithread(workers)?;
    // zstd's own job size at level 3 is several MiB per worker, which put a
    // JSONL export's peak RSS near the memory target (bench/README.md);
    // 2 MiB jobs keep it near the plain export's.
    encoder.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_BYTES))?;
    Ok(encoder)
}

/// Zstandard's level (its own default).
pub const ZSTD_LEVEL: i32 = 3;

enum Message {
    Data(Vec<u8>),
    Finish,
}

/// An encoder whose compressed bytes accumulate in a `Vec` that can be
/// emptied between writes.
trait Codec: Write {
    fn output(&mut self) -> &mut Vec<u8>;
    fn finish(self) -> io::Result<Vec<u8>>;
}

/// gzip in pigz's way, through gzp: blocks deflate on several threads and
/// join into one gzip member with a combined CRC, as any gzip reader
/// expects. gzp's own writer thread sends the compressed bytes back, so the
/// pump has none to forward.
struct ParallelGzip {
    encoder: ParCompress<'static, Gzip, Packed>,
    nothing: Vec<u8>,
}

impl ParallelGzip {
    fn new(packed: Sender<Vec<u8>>) -> io::Result<Self> {
        let encoder = ParCompressBuilder::<Gzip>::new()
            .num_threads(compression_threads())
            .map_err(io::Error::other)?
            .compression_level(flate2::Compression::new(GZIP_LEVEL))
            .from_writer(Packed(packed));
        Ok(ParallelGzip {
            encoder,
            nothing: Vec::new(),
        })
    }
}

impl Write for ParallelGzip {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder.write(buf)
    }
    /// Nothing: a flush would end gzp's block early and cost ratio.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Codec for ParallelGzip {
    fn output(&mut self) -> &mut Vec<u8> {
        &mut self.nothing
    }
    fn finish(mut self) -> io::Result<Vec<u8>> {
        self.encoder.finish().map_err(io::Error::other)?;
        Ok(Vec::new())
    }
}

/// gzp's output end: hands each compressed piece back to the caller.
struct Packed(Sender<Vec<u8>>);

impl Write for Packed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A caller that hung up abandoned the export: the bytes have nowhere
        // to go, and failing here would make gzp panic while dropping.
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Codec for igzip::Encoder {
    fn output(&mut self) -> &mut Vec<u8> {
        igzip::Encoder::output(self)
    }
    fn finish(self) -> io::Result<Vec<u8>> {
        igzip::Encoder::finish(self)
    }
}

impl Codec for zstd::stream::write::Encoder<'static, Vec<u8>> {
    fn output(&mut self) -> &mut Vec<u8> {
        self.get_mut()
    }
    fn finish(self) -> io::Result<Vec<u8>> {
        zstd::stream::write::Encoder::finish(self)
    }
}

/// Compresses what it is given and writes the result to `out`.
pub struct Compressor<W: Write> {
    out: W,
    block: Vec<u8>,
    raw: Option<SyncSender<Message>>,
    packed: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl<W: Write> Compressor<W> {
    /// Starts the compressor thread for `compression` in front of `out`.
    pub fn new(out: W, compression: Compression) -> io::Result<Self> {
        Self::with_gzip_engine(out, compression, GzipEngine::preferred())
    }

    /// As [`Compressor::new`], with gzip on `engine` (zlib-rs if igzip is
    /// asked for but missing).
    pub fn with_gzip_engine(
        out: W,
        compression: Compression,
        engine: GzipEngine,
    ) -> io::Result<Self> {
        let queued = match compression {
            Compression::Gzip => QUEUED_BLOCKS,
            Compression::Zstd => ZSTD_QUEUED_BLOCKS,
        };
        let (raw_tx, raw_rx) = sync_channel(queued);
        // Unbounded, yet short: compressed bytes never outrun the raw blocks
        // in flight, and they are drained before each raw block is handed over.
        let (packed_tx, packed_rx) = channel();
        let thread = std::thread::Builder::new()
            .name("export-compress".to_owned())
            .spawn(move || match compression {
                Compression::Gzip => {
                    let igzip = match engine {
                        GzipEngine::Igzip => igzip::Encoder::new(),
                        GzipEngine::Zlib => None,
                    };
                    match igzip {
                        Some(encoder) => pump(encoder, raw_rx, packed_tx),
                        None => pump(ParallelGzip::new(packed_tx.clone())?, raw_rx, packed_tx),
                    }
                }
                Compression::Zstd => pump(zstd_encoder()?, raw_rx, packed_tx),
            })?;
        Ok(Compressor {
            out,
            block: Vec::with_capacity(BLOCK),
            raw: Some(raw_tx),
            packed: packed_rx,
            thread: Some(thread),
        })
    }

    /// Ends the stream, writes the last compressed bytes and returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        self.hand_over()?;
        if let Some(raw) = self.raw.take() {
            if raw.send(Message::Finish).is_err() {
                return Err(self.thread_failure());
            }
        }
        while let Ok(chunk) = self.packed.recv() {
            self.out.write_all(&chunk)?;
        }
        self.join()?;
        Ok(self.out)
    }

    /// Writes out every compressed block that is ready.
    fn drain(&mut self) -> io::Result<()> {
        while let Ok(chunk) = self.packed.try_recv() {
            self.out.write_all(&chunk)?;
        }
        Ok(())
    }

    /// Hands the pending raw bytes to the compressor.
    fn hand_over(&mut self) -> io::Result<()> {
        self.drain()?;
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let sent = match &self.raw {
            Some(raw) => raw.send(Message::Data(block)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.thread_failure());
        }
        self.drain()
    }

    /// The compressor thread is gone: why.
    fn thread_failure(&mut self) -> io::Error {
        match self.join() {
            Err(err) => err,
            Ok(()) => io::Error::other("the compressor stopped before the end of the output"),
        }
    }

    fn join(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the compressor thread panicked"))),
            None => Ok(()),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = super::fill_block(&mut self.block, buf, BLOCK);
        if self.block.len() >= BLOCK {
            self.hand_over()?;
        }
        Ok(taken)
    }

    /// Hands over what is pending and writes what is ready; bytes still
    /// inside the compressor stay there until [`Compressor::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()?;
        self.out.flush()
    }
}

/// The compressor thread: compresses each block and sends back what the
/// encoder produced. A closed channel without [`Message::Finish`] means the
/// export was abandoned, so nothing more is produced.
fn pump<C: Codec>(mut codec: C, raw: Receiver<Message>, packed: Sender<Vec<u8>>) -> io::Result<()> {
    while let Ok(message) = raw.recv() {
        match message {
            Message::Data(block) => {
                codec.write_all(&block)?;
                let out = std::mem::take(codec.output());
                if !out.is_empty() && packed.send(out).is_err() {
                    return Ok(());
                }
            }
            Message::Finish => {
                let _ = packed.send(codec.finish()?);
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_writers::{gunzip_one_member, sample_lines, Failing};

    /// Every codec: gzip on each engine, then zstd.
    const CODECS: [(Compression, GzipEngine); 3] = [
        (Compression::Gzip, GzipEngine::Igzip),
        (Compression::Gzip, GzipEngine::Zlib),
        (Compression::Zstd, GzipEngine::Zlib),
    ];

    fn roundtrip(codec: (Compression, GzipEngine), data: &[u8], piece: usize) -> Vec<u8> {
        let (compression, engine) = codec;
        let mut compressor = Compressor::with_gzip_engine(Vec::new(), compression, engine).unwrap();
        for chunk in data.chunks(piece) {
            compressor.write_all(chunk).unwrap();
        }
        let packed = compressor.finish().unwrap();
        match compression {
            Compression::Gzip => gunzip_one_member(&packed),
            Compression::Zstd => zstd::decode_all(&packed[..]).unwrap(),
        }
    }

    #[test]
    fn decompresses_to_the_input_for_any_write_size() {
        assert!(
            igzip::available(),
            "ISA-L (libisal.so.2) must be installed for the tests: apt install libisal2"
        );
        let data = sample_lines(200_000);
        for codec in CODECS {
            for piece in [1, 1000, BLOCK - 1, BLOCK * 3 + 7, data.len()] {
                assert_eq!(roundtrip(codec, &data, piece), data, "{codec:?} {piece}");
            }
            assert_eq!(roundtrip(codec, b"", 1), b"");
        }
    }

    #[test]
    fn a_failing_writer_fails_the_write_or_the_finish() {
        let data = sample_lines(200_000);
        for (compression, engine) in CODECS {
            let out = Failing { left: 1000 };
            let mut compressor = Compressor::with_gzip_engine(out, compression, engine).unwrap();
            let failed = data
                .chunks(4096)
                .any(|chunk| compressor.write_all(chunk).is_err());
            let err = if failed {
                None
            } else {
                compressor.finish().err()
            };
            assert!(failed || err.is_some_and(|e| e.to_string() == "disk full"));
        }
    }

    #[test]
    fn a_large_write_is_taken_a_block_at_a_time() {
        let mut compressor = Compressor::new(Vec::new(), Compression::Gzip).unwrap();
        assert_eq!(compressor.write(&vec![b'x'; BLOCK * 3]).unwrap(), BLOCK);
        assert_eq!(compressor.write(&[b'y'; 10]).unwrap(), 10);
        assert_eq!(compressor.block.len(), 10);
    }

    #[test]
    fn dropping_an_unfinished_compressor_stops_its_thread() {
        for (compression, engine) in CODECS {
            let mut compressor =
                Compressor::with_gzip_engine(Vec::new(), compression, engine).unwrap();
            compressor.write_all(&sample_lines(200_000)).unwrap();
            let thread = compressor.thread.take().unwrap();
            drop(compressor);
            assert!(thread.join().unwrap().is_ok(), "{compression:?} {engine:?}");
        }
    }
}
