//! Checks a plugin file must pass before it is ever `dlopen`ed: loading a
//! library runs its initialisers with the host's privileges.
//!
//! The file is read once; the checks run on those bytes, and the same bytes
//! are what gets loaded (from a private copy), so the file cannot be swapped
//! between the check and the load.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
/// The file is opened once and streamed: checks, hash and copy all see the
/// same bytes, and a 60 MB library costs a 256 KiB buffer, not 60 MB of heap.
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
    let mut head = Vec::with_capacity(ELF_HEADER_LEN);
    (&mut file)
        .take(ELF_HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    check_elf_shared_object(&head)?;

    let (copy, mut out) = private_copy(path)?;
    let mut hasher = Sha256::new();
    hasher.update(&head);
    out.write_all(&head)?;
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
    Ok(VerifiedLibrary { sha256, copy })
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

fn copies_dir() -> std::io::Result<PathBuf> {
    let base = std::env::var_os("RUNTIME_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("export-host-plugins-{}", uid()));
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
