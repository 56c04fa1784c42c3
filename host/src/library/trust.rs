//! Checks a plugin file must pass before it is ever `dlopen`ed: loading a
//! library runs its initialisers with the host's privileges.
//!
//! The file is read once, into a private copy, and the checks run on that
//! copy: it is what gets loaded, so the file cannot be swapped (or
//! overwritten in place) between the check and the load. A file that was
//! written to within the last [`SETTLE`] is not taken until it has been
//! quiet that long, so a copy still in progress is never read half-way, and
//! the copy's ELF structure is checked against its length: `dlopen` maps the
//! segments the program headers name, and touching a page past the end of a
//! truncated file kills the whole process with SIGBUS.
//!
//! Copies are named `<stem>-<pid>-<n>.so`, so copies a crashed process left
//! behind are recognised (their pid is gone) and removed when the next
//! process first needs the folder.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, SystemTime};

/// How long a library file must have gone unwritten before it is taken.
/// The same quiet period the hot-reload watcher debounces file events with.
pub const SETTLE: Duration = Duration::from_millis(300);

/// The longest [`verify`] waits for a file that keeps being written.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Why a plugin file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// No file at the path.
    #[error("the file does not exist; build the plugin (cargo build --release) or fix `library` in plugins.toml")]
    Missing,
    /// A directory, device or socket.
    #[error("it is not a regular file")]
    NotRegularFile,
    /// Writable by other users: anyone could swap in code that runs in the host.
    #[error("it is {who}-writable (mode {mode:o}), so other users could replace the code the host runs; run `chmod go-w {path}`")]
    Writable {
        /// "group" or "world".
        who: &'static str,
        /// The permission bits.
        mode: u32,
        /// The file.
        path: String,
    },
    /// Not ELF at all.
    #[error("it is not a shared library (no ELF header); plugins are the .so files a cdylib crate builds")]
    NotElf,
    /// ELF but not a shared object.
    #[error("it is an ELF {kind}, not a shared library; plugins are the .so files a cdylib crate builds")]
    NotSharedObject {
        /// What the ELF type was.
        kind: &'static str,
    },
    /// The pinned checksum differs.
    #[error("its SHA-256 is {actual} but plugins.toml pins {expected}; if the new file is trusted, update `sha256`")]
    ChecksumMismatch {
        /// From plugins.toml.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// The program headers or segments do not fit the file.
    #[error("its ELF structure does not fit the file: {0}; the file is truncated, damaged or was still being copied: copy it again (to a temporary name, then rename it into place)")]
    Malformed(String),
    /// Written to all the time it was watched.
    #[error("it was still being written after {} s (it changed within the last {} ms each time it was looked at); finish copying it (to a temporary name, then rename it into place)", SETTLE_LIMIT.as_secs(), SETTLE.as_millis())]
    Unsettled,
    /// Its size or times changed while it was read.
    #[error("it changed while it was being read (a copy in progress?); it is tried again on the next reload")]
    ChangedWhileRead,
    /// Reading or copying failed.
    #[error("cannot read it: {0}")]
    Io(std::io::Error),
}

// Not `#[from]`: that would also make the error its own `source`, and the
// message, which already shows it, would print it twice.
impl From<std::io::Error> for TrustError {
    fn from(error: std::io::Error) -> Self {
        TrustError::Io(error)
    }
}

/// A plugin file that passed the checks, copied to a private location.
#[derive(Debug)]
pub struct VerifiedLibrary {
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// The private copy to load; removed when this value is dropped (a loaded
    /// library stays mapped after its file is gone).
    pub copy: tempfile::TempPath,
}

/// Verifies `path` and returns a private copy of exactly the bytes verified.
///
/// The file is opened once and streamed into the copy: hash and copy see the
/// same bytes, and a 60 MB library costs a 256 KiB buffer, not 60 MB of heap.
/// The structure checks then run on the copy, which is what gets loaded.
pub fn verify(path: &Path, pinned_sha256: Option<&str>) -> Result<VerifiedLibrary, TrustError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(TrustError::Missing),
        Err(err) => return Err(err.into()),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(TrustError::NotRegularFile);
    }
    check_permissions(path, meta.mode())?;
    let before = wait_until_settled(&file)?;
    let mut head = Vec::with_capacity(ELF_HEADER_LEN);
    (&mut file)
        .take(ELF_HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    check_elf_shared_object(&head)?;

    let (copy, mut out) = private_copy(path)?;
    let mut hasher = Sha256::new();
    hasher.update(&head);
    out.write_all(&head)?;
    let mut length = head.len() as u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        };
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read])?;
        length += read as u64;
    }
    drop(out);
    if Stamp::of(&file.metadata()?) != before || before.size != length {
        return Err(TrustError::ChangedWhileRead);
    }
    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = pinned_sha256 {
        if !expected.eq_ignore_ascii_case(&sha256) {
            return Err(TrustError::ChecksumMismatch {
                expected: expected.to_owned(),
                actual: sha256,
            });
        }
    }
    let copied = std::fs::File::open(&copy)?;
    check_elf_structure(&copied, &head, copied.metadata()?.len())?;
    Ok(VerifiedLibrary { sha256, copy })
}

/// What tells a changed file from an unchanged one: size, modification and
/// status-change times (the kernel sets the latter on every write, and
/// nobody can set it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// How long ago the file was last written (zero for a time ahead of
    /// the clock).
    fn age(&self) -> Duration {
        let (secs, nanos) = self.ctime;
        let changed = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos.clamp(0, 999_999_999) as u32)
        } else {
            SystemTime::UNIX_EPOCH
        };
        SystemTime::now()
            .duration_since(changed)
            .unwrap_or(Duration::ZERO)
    }
}

/// Waits until `file` has gone [`SETTLE`] without a write (at once for a
/// file written earlier), for at most [`SETTLE_LIMIT`]: a copy in progress
/// is taken only once it is complete.
fn wait_until_settled(file: &std::fs::File) -> Result<Stamp, TrustError> {
    let started = std::time::Instant::now();
    loop {
        let stamp = Stamp::of(&file.metadata()?);
        let age = stamp.age();
        if age >= SETTLE {
            return Ok(stamp);
        }
        if started.elapsed() >= SETTLE_LIMIT {
            return Err(TrustError::Unsettled);
        }
        std::thread::sleep(SETTLE - age);
    }
}

/// Checks that what `dlopen` maps is inside the file: the program header
/// table, every loadable segment's bytes, the dynamic section (a shared
/// object without one cannot be linked), and the section header table
/// (which linkers put at the very end, so a file cut short loses it first).
fn check_elf_structure(file: &std::fs::File, head: &[u8], length: u64) -> Result<(), TrustError> {
    use goblin::container::Ctx;
    use goblin::elf::program_header::{self, ProgramHeader};
    let malformed = |what: String| TrustError::Malformed(what);
    let header = goblin::elf::Elf::parse_header(head).map_err(|_| TrustError::NotElf)?;
    let container = header
        .container()
        .map_err(|err| malformed(format!("its ELF class is unknown ({err})")))?;
    let le = header
        .endianness()
        .map_err(|err| malformed(format!("its byte order is unknown ({err})")))?;
    let ctx = Ctx { container, le };
    let entry_size = ProgramHeader::size(ctx);
    let count = usize::from(header.e_phnum);
    if count == 0 {
        return Err(malformed("it has no program headers".to_owned()));
    }
    if usize::from(header.e_phentsize) != entry_size {
        return Err(malformed(format!(
            "its program headers are {} bytes each where {entry_size} are expected",
            header.e_phentsize
        )));
    }
    let table_len = (count * entry_size) as u64;
    let table_end = header.e_phoff.checked_add(table_len);
    if table_end.is_none_or(|end| end > length) {
        return Err(malformed(format!(
            "its program headers end at byte {} but the file has {length} bytes",
            header.e_phoff.saturating_add(table_len)
        )));
    }
    let mut table = vec![0u8; count * entry_size];
    file.read_exact_at(&mut table, header.e_phoff)?;
    let headers = ProgramHeader::parse(&table, 0, count, ctx)
        .map_err(|err| malformed(format!("its program headers cannot be read ({err})")))?;
    let mut dynamic = false;
    for (index, segment) in headers.iter().enumerate() {
        let kind = match segment.p_type {
            program_header::PT_LOAD => "loadable segment",
            program_header::PT_DYNAMIC => {
                dynamic = true;
                "dynamic section"
            }
            _ => continue,
        };
        let end = segment.p_offset.checked_add(segment.p_filesz);
        if end.is_none_or(|end| end > length) {
            return Err(malformed(format!(
                "its {kind} (program header {index}) spans bytes {} to {} but the file has {length} bytes",
                segment.p_offset,
                segment.p_offset.saturating_add(segment.p_filesz)
            )));
        }
        if segment.p_type == program_header::PT_LOAD && segment.p_filesz > segment.p_memsz {
            return Err(malformed(format!(
                "its loadable segment (program header {index}) holds more bytes in the file ({}) than in memory ({})",
                segment.p_filesz, segment.p_memsz
            )));
        }
    }
    if !dynamic {
        return Err(malformed(
            "it has no dynamic section, so it cannot be linked as a shared library".to_owned(),
        ));
    }
    if header.e_shoff != 0 {
        let sections_len = u64::from(header.e_shnum) * u64::from(header.e_shentsize);
        let end = header.e_shoff.checked_add(sections_len);
        if end.is_none_or(|end| end > length) {
            return Err(malformed(format!(
                "its section headers end at byte {} but the file has {length} bytes",
                header.e_shoff.saturating_add(sections_len)
            )));
        }
    }
    Ok(())
}

/// The ELF64 header, enough for `goblin` to read the file type.
const ELF_HEADER_LEN: usize = 64;

fn check_permissions(path: &Path, mode: u32) -> Result<(), TrustError> {
    let who = if mode & 0o002 != 0 {
        "world"
    } else if mode & 0o020 != 0 {
        "group"
    } else {
        return Ok(());
    };
    Err(TrustError::Writable {
        who,
        mode: mode & 0o7777,
        path: path.display().to_string(),
    })
}

fn check_elf_shared_object(bytes: &[u8]) -> Result<(), TrustError> {
    use goblin::elf::header;
    if bytes.len() < header::SIZEOF_IDENT || &bytes[..header::SELFMAG] != header::ELFMAG {
        return Err(TrustError::NotElf);
    }
    let parsed = goblin::elf::Elf::parse_header(bytes).map_err(|_| TrustError::NotElf)?;
    match parsed.e_type {
        header::ET_DYN => Ok(()),
        header::ET_EXEC => Err(TrustError::NotSharedObject { kind: "executable" }),
        header::ET_REL => Err(TrustError::NotSharedObject {
            kind: "object file",
        }),
        header::ET_CORE => Err(TrustError::NotSharedObject { kind: "core dump" }),
        _ => Err(TrustError::NotSharedObject { kind: "file" }),
    }
}

/// Creates a fresh, uniquely named file only this user can touch, for the
/// verified bytes. A fresh name also means a replaced library is loaded anew
/// instead of `dlopen` handing back the already-loaded one. No fsync: the
/// copy is read back at once by this process, from the page cache, and is
/// worthless after a crash.
fn private_copy(original: &Path) -> std::io::Result<(tempfile::TempPath, std::fs::File)> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let dir = copies_dir()?;
    let stem = original
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned());
    let name = format!(
        "{stem}-{}-{}.so",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed),
    );
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o500)
        .open(&path)?;
    Ok((tempfile::TempPath::try_from_path(path)?, file))
}

/// The folder of private copies (created, and swept of copies whose
/// process is gone, on first use).
pub fn copies_dir() -> std::io::Result<PathBuf> {
    let dir = make_copies_dir()?;
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| remove_stale_copies(&dir));
    Ok(dir)
}

/// Removes the copies whose owning process (the pid in the name) no longer
/// runs: a process that crashed while loading left them. Copies of live
/// processes stay, whatever process that is (a running daemon maps them).
pub fn remove_stale_copies(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut removed = 0usize;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(copy_owner) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(file = %entry.path().display(), error = %err, "cannot remove a stale plugin copy")
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, folder = %dir.display(), "removed plugin copies left by processes that are gone");
    }
}

/// The pid in a copy's name, `<stem>-<pid>-<n>.so`.
fn copy_owner(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".so")?;
    let (rest, sequence) = stem.rsplit_once('-')?;
    let (_, pid) = rest.rsplit_once('-')?;
    sequence.parse::<u64>().ok()?;
    pid.parse::<u32>().ok().filter(|pid| *pid > 0)
}

/// Where the host keeps private files of a run (library copies, worker
/// folders): systemd's `RuntimeDirectory=` when the unit sets one (a
/// private folder under /run, removed when the service stops), else the
/// temporary folder.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("RUNTIME_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn make_copies_dir() -> std::io::Result<PathBuf> {
    let dir = runtime_dir().join(format!("export-host-plugins-{}", uid()));
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    // Refuse a folder someone else planted under a shared /tmp.
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a private folder of this user", dir.display()),
        ));
    }
    Ok(dir)
}

fn uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_shared_object() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.so");
        std::fs::write(&text, b"hello").unwrap();
        std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(verify(&text, None), Err(TrustError::NotElf)));
        assert!(matches!(
            verify(&dir.path().join("absent.so"), None),
            Err(TrustError::Missing)
        ));
        assert!(matches!(
            verify(dir.path(), None),
            Err(TrustError::NotRegularFile)
        ));
    }

    #[test]
    fn knows_the_owner_of_a_copy_by_its_name() {
        assert_eq!(copy_owner("libexport_csv-1234-0.so"), Some(1234));
        assert_eq!(copy_owner("libexport-test-x-99-17.so"), Some(99));
        assert_eq!(copy_owner("libexport_csv.so"), None);
        assert_eq!(copy_owner("notes-1-2.txt"), None);
    }

    #[test]
    fn refuses_a_truncated_library_before_it_is_mapped() {
        let built =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libexport_csv.so");
        let Ok(bytes) = std::fs::read(&built) else {
            return; // the workspace is not built; the integration tests cover it
        };
        let dir = tempfile::tempdir().unwrap();
        for cut in [200, 4096, bytes.len() / 2, bytes.len() - 1] {
            let file = dir.path().join(format!("cut{cut}.so"));
            std::fs::write(&file, &bytes[..cut]).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = verify(&file, None).unwrap_err();
            assert!(matches!(err, TrustError::Malformed(_)), "{cut}: {err}");
        }
    }

    #[test]
    fn refuses_group_and_world_writable_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lib.so");
        std::fs::write(&file, b"\x7fELF").unwrap();
        for (mode, who) in [(0o666, "world"), (0o664, "group")] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = verify(&file, None).unwrap_err();
            assert!(err.to_string().contains(who), "{err}");
            assert!(err.to_string().contains("chmod go-w"), "{err}");
        }
    }
}
