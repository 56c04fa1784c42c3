//! gzip through ISA-L's igzip, when the system has it.
//!
//! igzip deflates the benchmark's 165 MB CSV in 0.29 s of CPU at its level 1
//! (59 MB out), where zlib-rs needs 0.79 s at level 1 (80 MB): with it a
//! gzip export costs little more than the plain one. ISA-L is a C library
//! built with nasm, so instead of linking it (which would make every build
//! need it) the host opens `libisal.so.2` at run time, the way it opens
//! plugins, and falls back to zlib-rs where it is missing (`apt install
//! libisal2`). Either way the output is one standard gzip member.
//!
//! Only the stable front of `struct isal_zstream` (`igzip_lib.h`, the same
//! since ISA-L 2.0 under the `libisal.so.2` soname) is spelled out here; the
//! library's internal state lives in an opaque tail sized with room to spare,
//! which `isal_deflate_init` fills in.

use std::ffi::c_int;
use std::io::{self, Write};
use std::sync::OnceLock;

/// The soname of ISA-L 2.x.
const LIBRARY: &str = "libisal.so.2";

/// Bytes reserved for `struct isal_zstream`: 82,384 in ISA-L 2.30, so a
/// later version may grow its internal state by half before this is short.
const STREAM_BYTES: usize = 128 * 1024;

/// `ISAL_DEF_LVL1_DEFAULT`: the working memory level 1 asks for.
const LEVEL_BUF_BYTES: usize = 282_624;

const IGZIP_GZIP: u16 = 1;
const NO_FLUSH: u16 = 0;
const COMP_OK: c_int = 0;
/// `ZSTATE_END` of `enum isal_zstate_state`: the trailer is written.
const ZSTATE_END: u32 = 11;

/// Output room offered to each `isal_deflate` call.
const OUT_STEP: usize = 128 * 1024;

/// igzip's level: its fastest that still looks for matches (0 only
/// Huffman-codes literals and runs at about the same speed, 27% larger).
const LEVEL: u32 = 1;

/// `struct isal_zstream`, its public fields as the header declares them,
/// then `internal_state`, of which only `state` is read.
#[repr(C, align(64))]
struct Stream {
    next_in: *const u8,
    avail_in: u32,
    total_in: u32,
    next_out: *mut u8,
    avail_out: u32,
    total_out: u32,
    hufftables: *mut u8,
    level: u32,
    level_buf_size: u32,
    level_buf: *mut u8,
    end_of_stream: u16,
    flush: u16,
    gzip_flag: u16,
    hist_bits: u16,
    /// `total_in_start`, `block_next`, `block_end`, `dist_mask`, `hash_mask`.
    state_front: [u32; 5],
    state: u32,
    rest: [u8; STREAM_BYTES - 88],
}

const _: () = {
    assert!(std::mem::offset_of!(Stream, level_buf) == 48);
    assert!(std::mem::offset_of!(Stream, hist_bits) == 62);
    assert!(std::mem::offset_of!(Stream, state_front) == 64);
    assert!(std::mem::offset_of!(Stream, state) == 84);
    assert!(std::mem::size_of::<Stream>() == STREAM_BYTES);
};

type DeflateInit = unsafe extern "C" fn(*mut Stream);
type Deflate = unsafe extern "C" fn(*mut Stream) -> c_int;

/// The two entry points, resolved once; the library stays loaded for the
/// life of the process.
struct Isal {
    deflate_init: DeflateInit,
    deflate: Deflate,
    _library: libloading::Library,
}

fn isal() -> Option<&'static Isal> {
    static ISAL: OnceLock<Option<Isal>> = OnceLock::new();
    ISAL.get_or_init(|| match open() {
        Ok(isal) => {
            tracing::debug!(library = LIBRARY, "gzip through ISA-L igzip");
            Some(isal)
        }
        Err(err) => {
            tracing::info!(
                "gzip through zlib-rs: {LIBRARY} could not be opened ({err}); \
                 installing ISA-L (apt install libisal2) makes gzip exports about 2.5x cheaper"
            );
            None
        }
    })
    .as_ref()
}

fn open() -> Result<Isal, libloading::Error> {
    // SAFETY: ISA-L's initialisers only set up its CPU dispatch tables; the
    // symbols' types are those of igzip_lib.h.
    unsafe {
        let library = libloading::Library::new(LIBRARY)?;
        let deflate_init = *library.get::<DeflateInit>(b"isal_deflate_init\0")?;
        let deflate = *library.get::<Deflate>(b"isal_deflate\0")?;
        Ok(Isal {
            deflate_init,
            deflate,
            _library: library,
        })
    }
}

/// Whether gzip streams go through igzip in this process.
pub fn available() -> bool {
    isal().is_some()
}

/// A gzip stream deflated by igzip; compressed bytes gather in
/// [`Encoder::output`] until taken.
pub struct Encoder {
    isal: &'static Isal,
    stream: Box<Stream>,
    /// Level 1's working memory; `stream.level_buf` points into it.
    _level_buf: Box<[u8]>,
    out: Vec<u8>,
}

// SAFETY: the raw pointers in `stream` point into `_level_buf` (owned, moved
// with the encoder) or are set for the span of one `isal_deflate` call.
unsafe impl Send for Encoder {}

impl Encoder {
    /// A new stream, or `None` where ISA-L is not installed.
    pub fn new() -> Option<Self> {
        let isal = isal()?;
        let mut stream = zeroed_stream();
        let mut level_buf = vec![0u8; LEVEL_BUF_BYTES].into_boxed_slice();
        // SAFETY: `stream` is as large and as aligned as the library's
        // struct, and zeroed as its examples leave it before init.
        unsafe { (isal.deflate_init)(&mut *stream) };
        stream.level = LEVEL;
        stream.level_buf = level_buf.as_mut_ptr();
        stream.level_buf_size = LEVEL_BUF_BYTES as u32;
        stream.gzip_flag = IGZIP_GZIP;
        stream.flush = NO_FLUSH;
        Some(Encoder {
            isal,
            stream,
            _level_buf: level_buf,
            out: Vec::new(),
        })
    }

    /// The compressed bytes produced so far and not yet taken.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Ends the stream (the gzip trailer) and returns what was not taken.
    pub fn finish(mut self) -> io::Result<Vec<u8>> {
        self.stream.end_of_stream = 1;
        self.stream.next_in = std::ptr::null();
        self.stream.avail_in = 0;
        let mut stalled = Stall::default();
        while self.stream.state != ZSTATE_END {
            let written = self.deflate()?;
            stalled.check(written, 0)?;
        }
        Ok(std::mem::take(&mut self.out))
    }

    /// One `isal_deflate` call with [`OUT_STEP`] bytes of room; returns the
    /// bytes it wrote.
    fn deflate(&mut self) -> io::Result<usize> {
        self.out.reserve(OUT_STEP);
        let room = self.out.capacity() - self.out.len();
        let room = room.min(u32::MAX as usize);
        // SAFETY: next_out points at `room` spare bytes of `out`, next_in at
        // `avail_in` bytes the caller keeps alive for this call.
        let written = unsafe {
            self.stream.next_out = self.out.as_mut_ptr().add(self.out.len());
            self.stream.avail_out = room as u32;
            let status = (self.isal.deflate)(&mut *self.stream);
            if status != COMP_OK {
                return Err(io::Error::other(format!(
                    "ISA-L failed to deflate (isal_deflate returned {status})"
                )));
            }
            let written = room - self.stream.avail_out as usize;
            self.out.set_len(self.out.len() + written);
            written
        };
        self.stream.next_out = std::ptr::null_mut();
        self.stream.avail_out = 0;
        Ok(written)
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len().min(u32::MAX as usize);
        self.stream.next_in = buf.as_ptr();
        self.stream.avail_in = taken as u32;
        // igzip consumes all of its input unless the output fills up first.
        let mut stalled = Stall::default();
        let result = loop {
            match self.deflate() {
                Ok(_) if self.stream.avail_in == 0 => break Ok(taken),
                Ok(written) => {
                    if let Err(err) = stalled.check(written, self.stream.avail_in) {
                        break Err(err);
                    }
                }
                Err(err) => break Err(err),
            }
        };
        self.stream.next_in = std::ptr::null();
        self.stream.avail_in = 0;
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Calls in a row that neither took input nor wrote output: a library
/// that is not the one this module was written against. Each call gets
/// room to write, so igzip always makes progress; a few calls of grace
/// cover internal state changes that write nothing.
#[derive(Default)]
struct Stall {
    idle_calls: u32,
    input_left: Option<u32>,
}

impl Stall {
    fn check(&mut self, written: usize, input_left: u32) -> io::Result<()> {
        let took_input = self.input_left.is_some_and(|before| input_left < before);
        self.input_left = Some(input_left);
        if written > 0 || took_input {
            self.idle_calls = 0;
            return Ok(());
        }
        self.idle_calls += 1;
        if self.idle_calls > 16 {
            return Err(io::Error::other(format!(
                "ISA-L ({LIBRARY}) stopped making progress on the gzip stream; \
                 remove it or report the version installed"
            )));
        }
        Ok(())
    }
}

/// A zeroed `Stream` on the heap (128 KiB would be a large stack frame).
fn zeroed_stream() -> Box<Stream> {
    let layout = std::alloc::Layout::new::<Stream>();
    // SAFETY: the layout is `Stream`'s (not zero-sized); all-zero bytes are a
    // valid `Stream` (integers and raw pointers), and the global allocator's
    // block is what `Box` frees.
    unsafe {
        let raw = std::alloc::alloc_zeroed(layout).cast::<Stream>();
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_writers::{gunzip_one_member as gunzip, sample_lines};

    fn gzip(data: &[u8], piece: usize) -> Vec<u8> {
        let mut encoder = Encoder::new()
            .expect("ISA-L (libisal.so.2) must be installed for the tests: apt install libisal2");
        let mut packed = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            encoder.write_all(chunk).unwrap();
            packed.append(encoder.output());
        }
        packed.extend(encoder.finish().unwrap());
        packed
    }

    #[test]
    fn one_gzip_member_that_inflates_to_the_input_for_any_write_size() {
        let data = sample_lines(300_000);
        for piece in [1, 999, 64 * 1024, 1 << 20, data.len()] {
            let packed = gzip(&data, piece);
            assert_eq!(&packed[..2], &[0x1f, 0x8b], "gzip magic");
            assert!(packed.len() < data.len() / 2, "{piece}: {}", packed.len());
            assert_eq!(gunzip(&packed), data, "{piece}");
        }
        assert_eq!(gunzip(&gzip(b"", 1)), b"");
    }

    #[test]
    fn incompressible_input_larger_than_the_output_step_round_trips() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..3 * OUT_STEP + 5)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert_eq!(gunzip(&gzip(&noise, noise.len())), noise);
    }

    #[test]
    fn streams_on_several_threads_at_once_are_independent() {
        let data = sample_lines(300_000);
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let mine = data[i * 1000..].to_vec();
                std::thread::spawn(move || gunzip(&gzip(&mine, 4096)) == mine)
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
    }
}
