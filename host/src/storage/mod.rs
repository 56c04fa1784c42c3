//! Where export files live: a [`Storage`] trait with two implementations on
//! `object_store`: a local directory ([`LocalStorage`], `LocalFileSystem`)
//! and an S3-compatible bucket ([`S3Storage`], `AmazonS3`, for several
//! daemons sharing one bucket).
//!
//! - Keys are made by the host only ([`keys`]); a user's files sit under
//!   `u/<hash of user id>/`.
//! - Writes are atomic: [`Storage::begin`] returns an [`Upload`], a plain
//!   [`std::io::Write`] over a temporary file kept aside (in `.incoming/`
//!   under the storage root, on the same filesystem). [`Upload::commit`]
//!   syncs it and renames it into place; [`Upload::abort`], or dropping the
//!   upload, removes it. Nothing partial is ever visible under a key.
//!   (S3 keeps the temporary file locally and sends it on commit, as one
//!   `PUT` or a multipart upload; S3 shows an object only once complete.)
//! - Reads stream ([`Storage::open`]); [`Storage::list_keys`] serves orphan
//!   cleanup and never shows uploads in progress.
//!
//! ```no_run
//! # async fn demo() -> Result<(), export_host::storage::StorageError> {
//! use export_host::storage::{self, keys};
//! use std::io::Write;
//! let store = storage::from_url("file:///var/lib/export-host/files")?;
//! let key = keys::export_key("alice", "exp_0123456789abcdef0123456789abcdef", "csv")
//!     .map_err(storage::StorageError::from)?;
//! let mut upload = store.begin(&key)?;   // on the export's blocking thread
//! upload.write_all(b"a,b\n1,2\n").map_err(|e| storage::StorageError::io("writing", e))?;
//! upload.commit_async().await?;          // or upload.commit() when blocking
//! # Ok(()) }
//! ```

pub mod keys;
mod listing;
mod local;
mod s3;
mod writeback;

pub use keys::{KeyError, StorageKey};
pub use local::LocalStorage;
pub use s3::{S3Options, S3Storage, PART_SIZE, SINGLE_PUT_MAX};
pub use writeback::EarlyWriteback;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use percent_encoding::percent_decode_str;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::{SyntaxViolation, Url};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object under the key.
    #[error("no stored file under {key}: it expired, was deleted, or was never committed")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The `STORAGE` setting is not a location this host understands.
    #[error("invalid STORAGE {url:?}: {reason}; expected file:///absolute/path, a plain directory path, or s3://bucket/prefix")]
    InvalidUrl {
        /// The setting as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The storage root could not be made or opened.
    #[error("cannot use storage directory {}: {source}; create it, or point STORAGE at a directory the daemon's user may write", path.display())]
    Root {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A key was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Local file I/O failed.
    #[error("storage I/O failed while {what}: {source}; check free space and permissions of the storage directory")]
    Io {
        /// What the host was doing.
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The object store failed.
    #[error("storage failed while {what}: {source}")]
    Backend {
        /// What the host was doing.
        what: String,
        /// Why it failed.
        #[source]
        source: object_store::Error,
    },
    /// A blocking storage task did not finish (it panicked or the runtime is
    /// shutting down).
    #[error("storage task did not finish while {what}: {reason}")]
    Task {
        /// What the host was doing.
        what: String,
        /// Why.
        reason: String,
    },
}

impl StorageError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        StorageError::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether the error means "no such object".
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// A stored object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Its key.
    pub key: StorageKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written (for local storage: the file's mtime, i.e.
    /// when its upload last wrote, not when it was committed).
    pub last_modified: SystemTime,
}

/// An object opened for reading: its size and a stream of its bytes.
///
/// The object is pinned when opened: deleting or replacing the key
/// afterwards does not cut a download short.
pub struct Download {
    /// The key read.
    pub key: StorageKey,
    /// The size in bytes (the stream yields exactly this many).
    pub size: u64,
    /// When it was last written.
    pub last_modified: SystemTime,
    /// The bytes, in chunks of at most [`READ_CHUNK`] bytes.
    pub stream: BoxStream<'static, Result<Bytes, StorageError>>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("key", &self.key)
            .field("size", &self.size)
            .field("last_modified", &self.last_modified)
            .finish_non_exhaustive()
    }
}

/// Largest chunk a [`Download`] stream yields.
pub const READ_CHUNK: usize = 256 * 1024;

/// What a download answers with besides the bytes: a storage that hands
/// downloads off to its own URLs ([`Storage::download_url`]) has them sent
/// from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadHeaders {
    /// The `Content-Disposition` value (already sanitised and encoded).
    pub content_disposition: String,
    /// The `Content-Type` value.
    pub content_type: String,
}

/// Where export files are kept. Object safe: the host holds an
/// `Arc<dyn Storage>`.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Starts writing the object `key`. The returned [`Upload`] is a
    /// blocking [`std::io::Write`] for the export's blocking thread; nothing
    /// is visible under `key` until [`Upload::commit`]. Creates one temporary
    /// file (a short blocking call).
    fn begin(&self, key: &StorageKey) -> Result<Upload, StorageError>;

    /// Opens `key` for a streaming read. [`StorageError::NotFound`] when absent.
    fn open<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Download, StorageError>>;

    /// Opens `len` bytes of `key` from byte `offset` for a streaming read
    /// (an HTTP `Range`): the [`Download`]'s `size` is `len`. A range past
    /// the object's end is [`StorageError::Io`] with `InvalidInput`.
    ///
    /// The default opens the whole object and skips `offset` bytes of its
    /// stream (correct for any backend, but reads the skipped bytes);
    /// [`LocalStorage`] seeks instead.
    fn open_range<'a>(
        &'a self,
        key: &'a StorageKey,
        offset: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Download, StorageError>> {
        Box::pin(async move {
            let whole = self.open(key).await?;
            check_range(key, offset, len, whole.size)?;
            let stream = skip_and_take(whole.stream, offset, len);
            Ok(Download {
                key: whole.key,
                size: len,
                last_modified: whole.last_modified,
                stream,
            })
        })
    }

    /// Deletes `key`. A missing key is not an error.
    fn delete<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<(), StorageError>>;

    /// The size of `key` in bytes. [`StorageError::NotFound`] when absent.
    fn size<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<u64, StorageError>>;

    /// Every committed object under `prefix` (whole segments; `None`
    /// lists everything). Uploads in progress are never listed, nor are
    /// files under the root that are not valid host keys. Order is
    /// unspecified. For orphan cleanup list [`keys::USERS_PREFIX`].
    fn list_keys(
        &self,
        prefix: Option<&StorageKey>,
    ) -> BoxStream<'static, Result<StoredObject, StorageError>>;

    /// Removes temporary files of uploads that have not been written to for
    /// `older_than` (left by a host killed mid-export). Returns how many were
    /// removed. Use a bound well above the longest export's quiet period.
    fn purge_stale_uploads(&self, older_than: Duration)
        -> BoxFuture<'_, Result<u64, StorageError>>;

    /// A one-line description for logs, e.g. `file:///var/lib/export-host/files`.
    fn describe(&self) -> String;

    /// Whether downloads should be answered with a redirect to
    /// [`download_url`](Storage::download_url) rather than streamed through
    /// the daemon. `false` unless configured (S3 with `DOWNLOAD_REDIRECT=on`).
    fn redirects_downloads(&self) -> bool {
        false
    }

    /// A URL from which a client may fetch `key` directly for `ttl`, served
    /// with `headers`; `None` when this storage does not hand downloads off
    /// (the default). S3: a presigned `GET` URL.
    fn download_url<'a>(
        &'a self,
        key: &'a StorageKey,
        ttl: Duration,
        headers: &'a DownloadHeaders,
    ) -> BoxFuture<'a, Result<Option<String>, StorageError>> {
        let _ = (key, ttl, headers);
        Box::pin(async { Ok(None) })
    }

    /// A cheap reachability check for readiness probes. The default reads
    /// the first entry of a listing; [`LocalStorage`] checks that its
    /// directories exist and are writable.
    fn check(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(async move {
            use futures::stream::StreamExt;
            match self.list_keys(None).next().await {
                Some(Err(err)) => Err(err),
                _ => Ok(()),
            }
        })
    }
}

impl dyn Storage {
    /// Same as [`from_url`]: `<dyn Storage>::from_url(url)`.
    pub fn from_url(url: &str) -> Result<Arc<dyn Storage>, StorageError> {
        from_url(url)
    }
}

/// Refuses a range that does not lie within an object of `size` bytes.
pub(crate) fn check_range(
    key: &StorageKey,
    offset: u64,
    len: u64,
    size: u64,
) -> Result<(), StorageError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(StorageError::io(
            format!("reading {key}"),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bytes {offset}+{len} lie past the end of a {size}-byte object"),
            ),
        )),
    }
}

/// The `len` bytes of `stream` that follow its first `offset` bytes.
fn skip_and_take(
    stream: BoxStream<'static, Result<Bytes, StorageError>>,
    offset: u64,
    len: u64,
) -> BoxStream<'static, Result<Bytes, StorageError>> {
    use futures::stream::{StreamExt, TryStreamExt};
    let mut skip = offset;
    let mut left = len;
    stream
        .try_filter_map(move |mut chunk: Bytes| {
            let n = chunk.len() as u64;
            let out = if skip >= n {
                skip -= n;
                None
            } else {
                let start = usize::try_from(skip).unwrap_or(usize::MAX);
                skip = 0;
                let mut rest = chunk.split_off(start);
                if rest.len() as u64 > left {
                    rest.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                }
                left -= rest.len() as u64;
                (!rest.is_empty()).then_some(rest)
            };
            futures::future::ready(Ok(out))
        })
        .boxed()
}

/// A parsed `STORAGE` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory (absolute, or relative to the working directory).
    Local(PathBuf),
    /// An S3-compatible bucket, reached with the `AWS_*` variables.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix inside it (may be empty).
        prefix: String,
        /// How the bucket is used (`DOWNLOAD_REDIRECT`); not part of the
        /// URL, so [`StorageUrl::parse`] leaves the defaults.
        options: S3Options,
    },
}

impl StorageUrl {
    /// Parses `file:///abs/path`, `file://localhost/abs/path`, a plain path
    /// (`/abs` or `relative/dir`), or `s3://bucket[/prefix]`. As a
    /// convenience, `file://./rel` and `file://../rel` are read as relative
    /// paths. URLs are read by the URL standard (the `url` crate): `%XX`
    /// escapes are decoded, in a file path and in an S3 prefix alike (as
    /// `object_store` reads an `s3://` URL), and `.` and `..` segments of a
    /// file path are resolved. What the standard would repair without a word
    /// (a malformed `%` escape, a backslash) or drop (a query, a fragment) is
    /// refused instead, as are credentials and ports in an S3 URL (the
    /// `AWS_*` variables carry them) and `.` or `..` in an S3 prefix.
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if url.chars().any(char::is_control) {
            return Err(invalid("it contains control characters"));
        }
        if let Some(rest) = strip_prefix_ignore_case(url, "s3://") {
            return parse_s3(url, rest).map_err(|reason| invalid(&reason));
        }
        if let Some(rest) = strip_prefix_ignore_case(url, "file:") {
            return parse_file(url, rest).map_err(|reason| invalid(&reason));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                return Err(invalid(&format!("the scheme {scheme:?} is not supported")));
            }
        }
        Ok(StorageUrl::Local(PathBuf::from(url)))
    }
}

/// `url` read by the URL standard, refusing what it would otherwise repair
/// or drop without a word: a `%` not followed by two hex digits, a
/// backslash (a path separator to the standard, a file name character to
/// Linux), a query or a fragment.
fn parse_url(url: &str) -> Result<Url, String> {
    let violations = std::cell::RefCell::new(Vec::new());
    let note = |violation| violations.borrow_mut().push(violation);
    let parsed = Url::options()
        .syntax_violation_callback(Some(&note))
        .parse(url)
        .map_err(|err| format!("it is not a URL ({err})"))?;
    for violation in violations.into_inner() {
        match violation {
            SyntaxViolation::PercentDecode => {
                return Err("a %-escape is malformed (write '%' itself as %25)".to_owned())
            }
            SyntaxViolation::Backslash => {
                return Err("it contains a backslash (write it as %5C)".to_owned())
            }
            _ => {}
        }
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("it has a '?' query or a '#' fragment (write them as %3F and %23)".to_owned());
    }
    Ok(parsed)
}

/// `s3://bucket[/prefix]`; `rest` is what follows `s3://`.
fn parse_s3(url: &str, rest: &str) -> Result<StorageUrl, String> {
    let parsed = parse_url(url)?;
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.port().is_some() {
        return Err(
            "credentials and ports do not belong in it; set AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL"
                .to_owned(),
        );
    }
    let bucket = parsed.host_str().unwrap_or_default();
    if bucket.is_empty() {
        return Err("the bucket name is missing".to_owned());
    }
    if !valid_bucket_name(bucket) {
        return Err("the bucket name must be 3 to 63 of a-z, 0-9, '.' and '-', starting and ending with a letter or digit".to_owned());
    }
    // The standard resolves `.` and `..` away; in a prefix they are a
    // mistake, so they are looked for in the text as given too.
    let raw_prefix = rest.split_once('/').map_or("", |(_, prefix)| prefix);
    let resolved_away = raw_prefix
        .split('/')
        .any(|part| matches!(&*percent_decode_str(part).decode_utf8_lossy(), "." | ".."));
    // Slashes at either end are dropped; an empty segment inside is refused.
    let prefix = percent_decode_str(parsed.path().trim_matches('/'))
        .decode_utf8()
        .map_err(|_| "a %-escape in the prefix is not UTF-8".to_owned())?;
    if resolved_away
        || (!prefix.is_empty()
            && prefix
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == ".."))
    {
        return Err("the prefix has an empty, '.' or '..' segment".to_owned());
    }
    if prefix.chars().any(char::is_control) {
        return Err("the prefix has a control character".to_owned());
    }
    Ok(StorageUrl::S3 {
        bucket: bucket.to_owned(),
        prefix: prefix.into_owned(),
        options: S3Options::default(),
    })
}

/// `file:` URLs; `rest` is what follows `file:`.
fn parse_file(url: &str, rest: &str) -> Result<StorageUrl, String> {
    if let Some(relative) = rest
        .strip_prefix("//")
        .filter(|after| after.starts_with("./") || after.starts_with("../"))
    {
        // Not a URL the standard knows (a file URL's path is absolute), so
        // only its escapes are read: checked as in a path, then decoded.
        parse_url(&format!("file:///{relative}"))?;
        let path = percent_decode_str(relative)
            .decode_utf8()
            .map_err(|_| "a %-escape is not UTF-8".to_owned())?;
        return local_path(PathBuf::from(&*path));
    }
    if !rest.starts_with('/') {
        return Err("use file:///absolute/path (three slashes)".to_owned());
    }
    let parsed = parse_url(url)?;
    if parsed.host_str().is_some() {
        return Err(
            "a file URL names a host; use file:///absolute/path (three slashes)".to_owned(),
        );
    }
    let path = parsed
        .to_file_path()
        .map_err(|()| "it is not a local file path".to_owned())?;
    local_path(path)
}

fn local_path(path: PathBuf) -> Result<StorageUrl, String> {
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err("it contains a NUL byte".to_owned());
    }
    Ok(StorageUrl::Local(path))
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Local(path) if path.is_absolute() => write!(f, "file://{}", path.display()),
            StorageUrl::Local(path) => write!(f, "{}", path.display()),
            StorageUrl::S3 { bucket, prefix, .. } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            StorageUrl::S3 { bucket, prefix, .. } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// S3's bucket naming rules (the common subset every S3-compatible server
/// accepts).
fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Opens the storage a `STORAGE` setting names: a local directory (created
/// if missing) for `file://` URLs and plain paths; a bucket for `s3://`,
/// configured from the `AWS_*` variables (nothing is contacted yet:
/// [`Storage::check`] does that).
pub fn from_url(url: &str) -> Result<Arc<dyn Storage>, StorageError> {
    open_location(&StorageUrl::parse(url)?)
}

/// Opens the storage of an already parsed `STORAGE` setting.
pub fn open_location(location: &StorageUrl) -> Result<Arc<dyn Storage>, StorageError> {
    match location {
        StorageUrl::Local(path) => Ok(Arc::new(LocalStorage::open(path)?)),
        StorageUrl::S3 {
            bucket,
            prefix,
            options,
        } => Ok(Arc::new(S3Storage::from_env(
            bucket,
            prefix,
            options.clone(),
        )?)),
    }
}

/// What a committed upload reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The key now holding the object.
    pub key: StorageKey,
    /// Its size in bytes.
    pub size: u64,
}

/// How an upload is put in place on commit (one variant per backend).
#[derive(Debug)]
enum Finish {
    /// Rename the temporary file to this path (same filesystem).
    Rename {
        /// The object's final path.
        path: PathBuf,
    },
    /// Send the temporary file to S3.
    Put(s3::PendingPut),
}

/// One object being written. Implements [`std::io::Write`] (buffered) over a
/// temporary file kept aside; see the module docs. Send it to the blocking
/// thread that formats the export, then [`commit`](Upload::commit) or
/// [`abort`](Upload::abort) it; dropping it aborts.
pub struct Upload {
    key: StorageKey,
    file: Option<BufWriter<EarlyWriteback<tempfile::NamedTempFile>>>,
    written: u64,
    finish: Finish,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("key", &self.key)
            .field("temp", &self.temp_path())
            .field("written", &self.written)
            .field("finish", &self.finish)
            .finish()
    }
}

/// Write buffer of an [`Upload`].
const WRITE_BUFFER: usize = 128 * 1024;

impl Upload {
    fn new(key: StorageKey, temp: tempfile::NamedTempFile, finish: Finish) -> Self {
        // A local object is synced at commit: start its writeback early.
        let temp = match finish {
            Finish::Rename { .. } => EarlyWriteback::new(temp),
            Finish::Put(_) => EarlyWriteback::lazy(temp),
        };
        Upload {
            key,
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, temp)),
            written: 0,
            finish,
        }
    }

    /// The key this upload will commit to.
    pub fn key(&self) -> &StorageKey {
        &self.key
    }

    /// Bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Where the bytes are kept until commit (for diagnostics).
    pub fn temp_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.get_ref().get_ref().path())
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<EarlyWriteback<tempfile::NamedTempFile>>> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the upload is already finished"))
    }

    /// Makes the object visible under its key, atomically, replacing any
    /// object already there. Local: flushes and syncs the temporary file,
    /// renames it into place and syncs the directory. S3: sends it (one
    /// `PUT`, or a multipart upload above [`SINGLE_PUT_MAX`]). Blocking; use
    /// [`commit_async`](Upload::commit_async) from async code (an S3 commit
    /// must not run on a current-thread runtime's own thread). On error
    /// nothing is visible under the key and the temporary file is removed.
    pub fn commit(mut self) -> Result<Committed, StorageError> {
        let Some(mut writer) = self.file.take() else {
            return Err(StorageError::io(
                format!("committing {}", self.key),
                io::Error::other("the upload is already finished"),
            ));
        };
        if let Err(e) = writer.flush() {
            // Discard what is left in the buffer; dropping the file removes it.
            drop(writer.into_parts());
            return Err(StorageError::io(format!("writing {}", self.key), e));
        }
        let temp = writer.into_parts().0.into_inner();
        match &self.finish {
            Finish::Rename { path } => {
                temp.as_file()
                    .sync_all()
                    .map_err(|e| StorageError::io(format!("syncing {}", self.key), e))?;
                local::commit_rename(temp, path, &self.key)?
            }
            Finish::Put(pending) => s3::commit_put(temp, pending, &self.key, self.written)?,
        }
        Ok(Committed {
            key: self.key.clone(),
            size: self.written,
        })
    }

    /// [`commit`](Upload::commit) on tokio's blocking pool.
    pub async fn commit_async(self) -> Result<Committed, StorageError> {
        let key = self.key.to_string();
        tokio::task::spawn_blocking(move || self.commit())
            .await
            .map_err(|e| StorageError::Task {
                what: format!("committing {key}"),
                reason: e.to_string(),
            })?
    }

    /// Discards the upload and removes its temporary file, reporting a
    /// failure to remove it (dropping the upload does the same silently).
    pub fn abort(mut self) -> Result<(), StorageError> {
        match self.file.take() {
            Some(writer) => {
                // Discard the buffer without writing it.
                let temp = writer.into_parts().0.into_inner();
                temp.close().map_err(|e| {
                    StorageError::io(format!("removing the partial upload of {}", self.key), e)
                })
            }
            None => Ok(()),
        }
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.writer()?.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.file.take() {
            // Discard the buffer; dropping the temp file removes it.
            let temp = writer.into_parts().0.into_inner();
            drop(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<StorageUrl, String> {
        StorageUrl::parse(url).map_err(|err| err.to_string())
    }

    fn s3(bucket: &str, prefix: &str) -> StorageUrl {
        StorageUrl::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
            options: S3Options::default(),
        }
    }

    #[test]
    fn s3_prefixes_are_percent_decoded() {
        assert_eq!(
            parse("s3://bucket/my%20exports").unwrap(),
            s3("bucket", "my exports")
        );
        assert_eq!(
            parse("s3://bucket/my exports").unwrap(),
            s3("bucket", "my exports")
        );
        assert_eq!(
            parse("s3://bucket/caf%C3%A9/x").unwrap(),
            s3("bucket", "café/x")
        );
        assert_eq!(parse("s3://bucket/50%25").unwrap(), s3("bucket", "50%"));
        assert_eq!(parse("S3://bucket//a/").unwrap(), s3("bucket", "a"));
        assert_eq!(parse("s3://bucket/a%2Fb").unwrap(), s3("bucket", "a/b"));
        assert_eq!(parse("s3://bucket").unwrap(), s3("bucket", ""));
    }

    #[test]
    fn s3_urls_the_standard_would_repair_are_refused() {
        for (url, why) in [
            ("s3://bucket/a%zz", "malformed"),
            ("s3://bucket/50%", "malformed"),
            ("s3://bucket/a%FF", "not UTF-8"),
            ("s3://bucket/a/%2e%2e/b", "'..'"),
            ("s3://bucket/a/./b", "'.'"),
            ("s3://bucket/a%2F%2Fb", "empty"),
            ("s3://bucket/a%2F..%2Fb", "'..'"),
            ("s3://bucket/a%01", "control"),
            ("s3://bucket/x?versionId=1", "query"),
            ("s3://bucket/x#y", "fragment"),
            ("s3://key:secret@bucket/x", "credentials"),
            ("s3://bucket:9000/x", "ports"),
            ("s3:///x", "missing"),
            ("s3://b%41cket/x", "bucket name"),
        ] {
            let err = parse(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn file_urls_follow_the_url_standard() {
        let local = |path: &str| StorageUrl::Local(path.into());
        assert_eq!(
            parse("file:///var/a%20b/caf%C3%A9").unwrap(),
            local("/var/a b/café")
        );
        assert_eq!(parse("file:///var/a b").unwrap(), local("/var/a b"));
        assert_eq!(parse("file://LOCALHOST/var/x").unwrap(), local("/var/x"));
        assert_eq!(parse("file:///var/a/../b").unwrap(), local("/var/b"));
        assert_eq!(parse("file:///var/50%25").unwrap(), local("/var/50%"));
        assert_eq!(parse("file://./a%20b").unwrap(), local("./a b"));
        assert_eq!(parse("file://../up").unwrap(), local("../up"));
        for (url, why) in [
            ("file:///a%zz", "malformed"),
            ("file://./a%zz", "malformed"),
            ("file:///a%00b", "NUL"),
            ("file:///a\\b", "backslash"),
            ("file:///var/x?y", "query"),
            ("file:///var/x#y", "fragment"),
            ("file://server/share", "names a host"),
            ("file:var/x", "three slashes"),
        ] {
            let err = parse(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
