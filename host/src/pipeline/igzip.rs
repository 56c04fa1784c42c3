//! gzip through ISA-L's igzip, when the system has it.
//!
//! igzip deflates at its level 1 both faster and smaller than zlib-rs at
//! level 1 (bench/README.md has the figures): with it a gzip export costs
//! little more than the plain one. ISA-L is a C library
//! built with nasm, so instead of linking it (which would make every build
//! need it) the host opens `libisal.so.2` at run time, the way it opens
//! plugins, and falls back to zlib-rs where it is missing (`apt install
//! libisal2`). Either way the output is one standard gzip member.
//!
//! `struct isal_zstream` is declared here by hand: its public front field by
//! field, the library's internal state (which `isal_deflate_init` fills in)
//! as an opaque tail. The soname does not pin that layout (2.23 and 2.24
//! differ under the same `libisal.so.2`), and ISA-L exports no version
//! function, so the library is used only when the name of the file it was
//! loaded from (`libisal.so.2.0.30`, the version libtool puts there; CMake
//! builds write `libisal.so.2.32.1`) says it is a release the layout was
//! checked against ([`CHECKED_MINORS`]). Any other version is refused with
//! a log line and gzip runs on zlib-rs.
//!
//! A binding crate does not fit: `isal-sys` builds ISA-L from its bundled
//! source (nasm, autotools) or links the system's at build time, where this
//! module must build without the library and open whichever one the
//! machine has; the layout a binding was generated for would still need
//! this check against the library found at run time.

use std::ffi::{c_int, c_void, CStr, OsStr};
use std::io::{self, Write};
use std::ops::RangeInclusive;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The soname of ISA-L 2.x.
const LIBRARY: &str = "libisal.so.2";

/// The ISA-L 2.x releases whose `igzip_lib.h` this module's layout and
/// constants were checked against: 2.24.0 (which added `hist_bits`) through
/// 2.32.1 all give the same `struct isal_zstream`, [`STREAM_BYTES`] long
/// with the offsets asserted below.
const CHECKED_MINORS: RangeInclusive<u32> = 24..=32;

/// `sizeof(struct isal_zstream)` in every release of [`CHECKED_MINORS`].
const STREAM_BYTES: usize = 82_384;

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
/// Huffman-codes literals: no faster, and its files are clearly larger).
const LEVEL: u32 = 1;

/// `struct isal_zstream`, its public fields as the header declares them,
/// then `internal_state`, of which only `state` is read. (The C struct is
/// 8-aligned; 64 only rounds the allocation up to a cache line.)
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
    assert!(std::mem::size_of::<Stream>() >= STREAM_BYTES);
    assert!(std::mem::size_of::<Stream>() < STREAM_BYTES + 64);
};

type DeflateInit = unsafe extern "C" fn(*mut Stream);
type Deflate = unsafe extern "C" fn(*mut Stream) -> c_int;

/// The two entry points, resolved once; the library stays loaded for the
/// life of the process.
struct Isal {
    deflate_init: DeflateInit,
    deflate: Deflate,
    /// The file the library was loaded from, symlinks resolved.
    path: PathBuf,
    /// Its minor version (2.x).
    minor: u32,
    _library: libloading::Library,
}

/// Why igzip is not used.
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error(
        "{LIBRARY} could not be opened ({0}); installing ISA-L \
         (apt install libisal2) makes gzip exports about 2.5x cheaper"
    )]
    Missing(#[from] libloading::Error),
    #[error(
        "{} is ISA-L {major}.{minor}, whose `struct isal_zstream` this build \
         was not checked against (2.{}.0 to 2.{}.x are); report the version to \
         have it checked",
        path.display(),
        CHECKED_MINORS.start(),
        CHECKED_MINORS.end()
    )]
    Unchecked {
        path: PathBuf,
        major: u32,
        minor: u32,
    },
    #[error(
        "the ISA-L version of {} cannot be told from its file name \
         (libisal.so.2.0.N or libisal.so.2.N.P expected)",
        path.display()
    )]
    UnknownVersion { path: PathBuf },
}

fn isal() -> Option<&'static Isal> {
    static ISAL: OnceLock<Option<Isal>> = OnceLock::new();
    ISAL.get_or_init(|| usable(open(Path::new(LIBRARY))))
        .as_ref()
}

/// The opened library, or `None` with a log line saying why gzip runs on
/// zlib-rs instead.
fn usable(opened: Result<Isal, Unusable>) -> Option<Isal> {
    match opened {
        Ok(isal) => {
            tracing::debug!(
                library = %isal.path.display(),
                version = format_args!("2.{}", isal.minor),
                "gzip through ISA-L igzip"
            );
            Some(isal)
        }
        Err(err @ Unusable::Missing(_)) => {
            tracing::info!("gzip through zlib-rs: {err}");
            None
        }
        Err(err) => {
            tracing::warn!("gzip through zlib-rs: {err}");
            None
        }
    }
}

/// Opens `name` (a soname, or a path) and checks its version before
/// anything is called in it.
fn open(name: &Path) -> Result<Isal, Unusable> {
    // SAFETY: ISA-L's initialisers only set up its CPU dispatch tables; the
    // symbols' types are those of igzip_lib.h, and neither is called before
    // the version check below.
    let (library, deflate_init, deflate) = unsafe {
        let library = libloading::Library::new(name.as_os_str())?;
        let deflate_init = *library.get::<DeflateInit>(b"isal_deflate_init\0")?;
        let deflate = *library.get::<Deflate>(b"isal_deflate\0")?;
        (library, deflate_init, deflate)
    };
    let path = loaded_from(deflate as *const c_void).ok_or_else(|| Unusable::UnknownVersion {
        path: name.to_path_buf(),
    })?;
    let (major, minor) = path
        .file_name()
        .and_then(OsStr::to_str)
        .and_then(version_of_file)
        .ok_or_else(|| Unusable::UnknownVersion { path: path.clone() })?;
    if major != 2 || !CHECKED_MINORS.contains(&minor) {
        return Err(Unusable::Unchecked { path, major, minor });
    }
    Ok(Isal {
        deflate_init,
        deflate,
        path,
        minor,
        _library: library,
    })
}

/// The file the shared object holding `address` was loaded from, with
/// symlinks resolved (`libisal.so.2` is one to the versioned file).
fn loaded_from(address: *const c_void) -> Option<PathBuf> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr reads nothing at `address` (it looks it up in the
    // loader's tables) and fills `info`; dli_fname, when set, is the loaded
    // object's name, valid while it stays loaded (it is, for this call).
    let name = unsafe {
        if libc::dladdr(address, info.as_mut_ptr()) == 0 {
            return None;
        }
        let info = info.assume_init();
        if info.dli_fname.is_null() {
            return None;
        }
        CStr::from_ptr(info.dli_fname)
    };
    std::fs::canonicalize(OsStr::from_bytes(name.to_bytes())).ok()
}

/// `(major, minor)` from the name of an ISA-L library file: libtool names
/// it `libisal.so.2.0.<minor>` (its revision is the release's minor
/// version), CMake and Makefile.unx `libisal.so.2.<minor>.<patch>`.
fn version_of_file(name: &str) -> Option<(u32, u32)> {
    let numbers: Vec<u32> = name
        .strip_prefix("libisal.so.")?
        .split('.')
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    match numbers[..] {
        [major, 0, minor] => Some((major, minor)),
        [major, minor, _patch] => Some((major, minor)),
        _ => None,
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
    /// A new stream, or `None` where ISA-L is not installed or is a version
    /// this module was not checked against.
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

/// A zeroed `Stream` on the heap (80 KiB would be a large stack frame).
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
    fn versions_are_read_from_the_library_file_name() {
        assert_eq!(version_of_file("libisal.so.2.0.30"), Some((2, 30)));
        assert_eq!(version_of_file("libisal.so.2.32.1"), Some((2, 32)));
        assert_eq!(version_of_file("libisal.so.3.0.1"), Some((3, 1)));
        for name in [
            "libisal.so.2",
            "libisal.so.2.0",
            "libisal.so.2.0.x",
            "libisal.so.2.0.30.1",
            "libz.so.1.3.1",
        ] {
            assert_eq!(version_of_file(name), None, "{name}");
        }
    }

    #[test]
    fn the_installed_library_is_a_checked_version() {
        let isal = open(Path::new(LIBRARY)).map_err(|err| err.to_string());
        let isal = isal.expect("ISA-L 2.24 to 2.32 (apt install libisal2) for the tests");
        assert!(CHECKED_MINORS.contains(&isal.minor), "{}", isal.minor);
        assert!(isal.path.is_absolute(), "{}", isal.path.display());
    }

    /// The real library under the file names other releases have: only the
    /// checked versions are used, the others are refused before anything in
    /// them is called, and gzip falls back to zlib-rs.
    #[test]
    fn a_library_of_an_unchecked_version_is_refused() {
        let installed = match open(Path::new(LIBRARY)) {
            Ok(isal) => isal.path.clone(),
            Err(err) => panic!("{err}"),
        };
        let dir = tempfile::tempdir().unwrap();
        for (name, minor) in [
            ("libisal.so.2.0.23", 23),
            ("libisal.so.2.0.33", 33),
            ("libisal.so.2.40.0", 40),
            ("libisal.so.3.0.30", 30),
        ] {
            // A copy, not a link: the loader treats another inode as another
            // library and names it by this path.
            let copy = dir.path().join(name);
            std::fs::copy(&installed, &copy).unwrap();
            let err = match open(&copy) {
                Ok(_) => panic!("{name} was used"),
                Err(err) => err,
            };
            assert!(
                matches!(&err, Unusable::Unchecked { path, minor: m, .. } if *m == minor && path.ends_with(name)),
                "{name}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains(&format!(".{minor}, ")), "{message}");
            assert!(message.contains("2.24.0 to 2.32.x"), "{message}");
            assert!(usable(Err(err)).is_none(), "{name}");
        }
        let unnamed = dir.path().join("libisal.so.2");
        std::fs::copy(&installed, &unnamed).unwrap();
        assert!(matches!(
            open(&unnamed),
            Err(Unusable::UnknownVersion { .. })
        ));
        let checked = dir.path().join("libisal.so.2.0.30");
        std::fs::copy(&installed, &checked).unwrap();
        let isal = usable(open(&checked)).expect("a checked version is used");
        assert!(isal.path.ends_with("libisal.so.2.0.30"));
        assert!(usable(open(&dir.path().join("libisal.so.9"))).is_none());
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
