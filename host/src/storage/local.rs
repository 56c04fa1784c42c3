//! Local-filesystem storage: `object_store`'s `LocalFileSystem` for reads,
//! listing, size and delete; uploads written under `<root>/.incoming/` and
//! committed by `rename(2)`, atomic on one filesystem.

use super::listing::stored_objects;
use super::{Download, Finish, StorageError, StorageKey, StoredObject, Upload, READ_CHUNK};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetResultPayload, ObjectStore};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Directory under the root that holds uploads in progress. Its name starts
/// with a dot, which no [`StorageKey`] segment may, so no key can reach it.
pub const INCOMING_DIR: &str = ".incoming";

/// Storage in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
    incoming: PathBuf,
    store: Arc<LocalFileSystem>,
}

impl LocalStorage {
    /// Opens (creating if missing) the storage directory `root` and its
    /// `.incoming/` directory for uploads in progress.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        let root_error = |source| StorageError::Root {
            path: root.to_path_buf(),
            source,
        };
        fs::create_dir_all(root).map_err(root_error)?;
        let root = fs::canonicalize(root).map_err(root_error)?;
        if !root.is_dir() {
            return Err(StorageError::Root {
                path: root,
                source: io::Error::other("it is not a directory"),
            });
        }
        let incoming = root.join(INCOMING_DIR);
        fs::create_dir_all(&incoming).map_err(|source| StorageError::Root {
            path: incoming.clone(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|source| StorageError::Backend {
                what: format!("opening {}", root.display()),
                source,
            })?
            // Remove a user's directory once their last file is deleted.
            .with_automatic_cleanup(true);
        Ok(LocalStorage {
            root,
            incoming,
            store: Arc::new(store),
        })
    }

    /// The storage directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where uploads in progress are kept.
    pub fn incoming_dir(&self) -> &Path {
        &self.incoming
    }

    /// The file that holds (or will hold) `key`.
    pub fn path_of(&self, key: &StorageKey) -> Result<PathBuf, StorageError> {
        let location = object_path(key)?;
        self.store
            .path_to_filesystem(&location)
            .map_err(|source| StorageError::Backend {
                what: format!("locating {key}"),
                source,
            })
    }

    async fn get(
        &self,
        key: &StorageKey,
        head: bool,
    ) -> Result<object_store::GetResult, StorageError> {
        let location = object_path(key)?;
        let options = GetOptions {
            head,
            ..GetOptions::default()
        };
        self.store
            .get_opts(&location, options)
            .await
            .map_err(|source| backend(key, "reading", source))
    }
}

fn object_path(key: &StorageKey) -> Result<ObjectPath, StorageError> {
    ObjectPath::parse(key.as_str()).map_err(|source| StorageError::Backend {
        what: format!("using key {key}"),
        source: source.into(),
    })
}

fn backend(key: &StorageKey, what: &str, source: object_store::Error) -> StorageError {
    match source {
        object_store::Error::NotFound { .. } => StorageError::NotFound {
            key: key.to_string(),
        },
        source => StorageError::Backend {
            what: format!("{what} {key}"),
            source,
        },
    }
}

/// Runs blocking file work on tokio's blocking pool, or inline outside a runtime.
async fn blocking<T, F>(what: String, work: F) -> Result<T, StorageError>
where
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(work)
            .await
            .map_err(|e| StorageError::Task {
                what,
                reason: e.to_string(),
            })?,
        Err(_) => work(),
    }
}

/// Streams exactly `size` bytes of `file` in chunks of at most [`READ_CHUNK`].
fn file_stream(
    file: File,
    size: u64,
    key: StorageKey,
) -> BoxStream<'static, Result<Bytes, StorageError>> {
    futures::stream::try_unfold((file, size, key), |(mut file, remaining, key)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let want = usize::try_from(remaining.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
        let what = format!("reading {key}");
        let (file, chunk) = blocking(what.clone(), move || {
            let mut chunk = vec![0; want];
            file.read_exact(&mut chunk)
                .map_err(|e| StorageError::io(what, e))?;
            Ok((file, chunk))
        })
        .await?;
        Ok(Some((
            Bytes::from(chunk),
            (file, remaining - want as u64, key),
        )))
    })
    .boxed()
}

/// Puts a synced temporary file in place at `path` by rename, then syncs
/// the directory. On error the temporary file is removed.
pub(super) fn commit_rename(
    mut temp: tempfile::NamedTempFile,
    path: &Path,
    key: &StorageKey,
) -> Result<(), StorageError> {
    let parent = path.parent().ok_or_else(|| {
        StorageError::io(
            format!("committing {key}"),
            io::Error::other("the key has no directory"),
        )
    })?;
    // Deleting a user's last file removes their directory; if that races
    // with this commit the rename sees ENOENT, so make the directory again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        fs::create_dir_all(parent)
            .map_err(|e| StorageError::io(format!("creating the directory of {key}"), e))?;
        match temp.persist(path) {
            Ok(_) => break,
            Err(e) if e.error.kind() == io::ErrorKind::NotFound && attempts < 5 => temp = e.file,
            Err(e) => {
                return Err(StorageError::io(
                    format!("moving {key} into place (the upload and the storage directory must be on one filesystem)"),
                    e.error,
                ))
            }
        }
    }
    sync_dir(parent).map_err(|e| StorageError::io(format!("syncing the directory of {key}"), e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// flock(2) on `file`'s open file description (`LOCK_SH`, `LOCK_EX`,
/// `LOCK_UN`, optionally `| LOCK_NB`), retried when a signal interrupts it.
fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the descriptor belongs to `file`, which outlives the call;
        // flock has no other effect on memory.
        let rc = unsafe { libc::flock(file.as_raw_fd(), operation) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Creates the temporary file of a new upload in `dir`, holding an
/// exclusive advisory lock on it for as long as the file stays open.
///
/// The lock is how a partial file tells who owns it: the kernel drops it
/// when its owner closes the file or dies, so a cleanup that can take the
/// lock knows nobody is writing the file and may remove it at once, however
/// young (see [`purge_idle_files`]). A shared lock on `dir` is held from
/// creating the file to locking it, so a cleanup (which locks `dir`
/// exclusively) never sees a new file before its lock is taken.
pub(super) fn locked_upload_file(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let guard = File::open(dir)?;
    flock(&guard, libc::LOCK_SH)?;
    let temp = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(".part")
        .tempfile_in(dir)?;
    flock(temp.as_file(), libc::LOCK_EX | libc::LOCK_NB)?;
    Ok(temp)
}

/// Removes the partial uploads directly in `dir` that no live process
/// holds (their writer died: any age), and those held but not written to
/// for `older_than` (a writer that hung). Returns how many went; a missing
/// directory has none.
pub(super) async fn purge_idle_files(
    dir: PathBuf,
    older_than: Duration,
) -> Result<u64, StorageError> {
    blocking("removing stale uploads".to_owned(), move || {
        let guard = match File::open(&dir) {
            Ok(guard) => guard,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StorageError::io("opening the uploads in progress", e)),
        };
        flock(&guard, libc::LOCK_EX)
            .map_err(|e| StorageError::io("locking the uploads in progress", e))?;
        let entries =
            fs::read_dir(&dir).map_err(|e| StorageError::io("listing uploads in progress", e))?;
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("listing uploads in progress", e))?;
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = entry.path();
            let orphaned = match File::open(&path) {
                Ok(file) => match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
                    Ok(()) => true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "cannot tell whether an upload is still being written; leaving it");
                        continue;
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot open an upload in progress to check it; leaving it");
                    continue;
                }
            };
            let idle = meta
                .modified()
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .unwrap_or(Duration::ZERO);
            if !orphaned && idle < older_than {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(
                        file = %path.display(),
                        bytes = meta.len(),
                        writer = if orphaned { "gone" } else { "hung" },
                        "removed a partial upload"
                    );
                    removed += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StorageError::io(
                        format!("removing the stale upload {}", path.display()),
                        e,
                    ))
                }
            }
        }
        Ok(removed)
    })
    .await
}

impl super::Storage for LocalStorage {
    fn begin(&self, key: &StorageKey) -> Result<Upload, StorageError> {
        let path = self.path_of(key)?;
        let temp = locked_upload_file(&self.incoming)
            .or_else(|_| {
                // The directory may have been removed by hand: make it again.
                fs::create_dir_all(&self.incoming)?;
                locked_upload_file(&self.incoming)
            })
            .map_err(|e| StorageError::io(format!("starting the upload of {key}"), e))?;
        Ok(Upload::new(key.clone(), temp, Finish::Rename { path }))
    }

    fn open<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Download, StorageError>> {
        Box::pin(async move {
            let result = self.get(key, false).await?;
            let size = result.meta.size;
            let last_modified = SystemTime::from(result.meta.last_modified);
            let stream = match result.payload {
                GetResultPayload::File(file, _) => file_stream(file, size, key.clone()),
                GetResultPayload::Stream(stream) => {
                    let key = key.clone();
                    stream
                        .map_err(move |source| backend(&key, "reading", source))
                        .boxed()
                }
            };
            Ok(Download {
                key: key.clone(),
                size,
                last_modified,
                stream,
            })
        })
    }

    fn open_range<'a>(
        &'a self,
        key: &'a StorageKey,
        offset: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Download, StorageError>> {
        Box::pin(async move {
            let result = self.get(key, false).await?;
            let size = result.meta.size;
            let last_modified = SystemTime::from(result.meta.last_modified);
            super::check_range(key, offset, len, size)?;
            let stream = match result.payload {
                GetResultPayload::File(file, _) => {
                    let what = format!("seeking in {key}");
                    let file = blocking(what.clone(), move || {
                        let mut file = file;
                        file.seek(SeekFrom::Start(offset))
                            .map_err(|e| StorageError::io(what, e))?;
                        Ok(file)
                    })
                    .await?;
                    file_stream(file, len, key.clone())
                }
                GetResultPayload::Stream(_) => {
                    // Not a local file after all: fall back to reading through.
                    let whole = self.open(key).await?;
                    super::skip_and_take(whole.stream, offset, len)
                }
            };
            Ok(Download {
                key: key.clone(),
                size: len,
                last_modified,
                stream,
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let location = object_path(key)?;
            let mut deleted = self
                .store
                .delete_stream(futures::stream::once(async move { Ok(location) }).boxed());
            while let Some(result) = deleted.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(source) => return Err(backend(key, "deleting", source)),
                }
            }
            Ok(())
        })
    }

    fn size<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<u64, StorageError>> {
        Box::pin(async move { Ok(self.get(key, true).await?.meta.size) })
    }

    fn list_keys(
        &self,
        prefix: Option<&StorageKey>,
    ) -> BoxStream<'static, Result<StoredObject, StorageError>> {
        let prefix_path = match prefix.map(object_path).transpose() {
            Ok(path) => path,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        let what = match prefix {
            Some(prefix) => format!("listing {prefix}"),
            None => "listing the storage".to_owned(),
        };
        // Only host keys: uploads in progress live under a dot-directory,
        // which no key may name.
        stored_objects(self.store.list(prefix_path.as_ref()), what, |location| {
            StorageKey::parse(location.as_ref()).ok()
        })
    }

    fn purge_stale_uploads(
        &self,
        older_than: Duration,
    ) -> BoxFuture<'_, Result<u64, StorageError>> {
        Box::pin(purge_idle_files(self.incoming.clone(), older_than))
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(async move {
            for dir in [&self.root, &self.incoming] {
                let meta = tokio::fs::metadata(dir).await.map_err(|source| {
                    StorageError::io(format!("checking {}", dir.display()), source)
                })?;
                if !meta.is_dir() || meta.permissions().readonly() {
                    return Err(StorageError::io(
                        format!("checking {}", dir.display()),
                        io::Error::other("not a writable directory"),
                    ));
                }
            }
            // Prove a file can be made and written: a full disk, a
            // read-only mount or no free descriptors all fail here.
            let incoming = self.incoming.clone();
            blocking("probing the storage".to_owned(), move || {
                let mut probe = locked_upload_file(&incoming).map_err(|e| {
                    StorageError::io(format!("creating a file in {}", incoming.display()), e)
                })?;
                io::Write::write_all(&mut probe, b"probe").map_err(|e| {
                    StorageError::io(format!("writing a file in {}", incoming.display()), e)
                })?;
                Ok(())
            })
            .await
        })
    }
}
