//! S3-compatible storage (`STORAGE=s3://bucket/prefix`) on `object_store`'s
//! `AmazonS3`, configured by the standard `AWS_*` variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` or `AWS_ENDPOINT` for another S3-compatible server,
//! `AWS_ALLOW_HTTP=true` for plain HTTP to a local one, ...).
//!
//! - Uploads are written to a local temporary file (the formatter writes
//!   through a plain blocking [`std::io::Write`]), then sent on commit: one
//!   `PUT` up to [`SINGLE_PUT_MAX`], a multipart upload in [`PART_SIZE`]
//!   parts above it. S3 makes an object visible only once its `PUT` or
//!   `CompleteMultipartUpload` succeeds, so nothing partial is ever listed
//!   or served; a failed multipart upload is aborted.
//! - Reads stream the `GET` body through the daemon (`Range` as a ranged
//!   `GET`). With [`S3Options::redirect_downloads`] the HTTP API may instead
//!   answer with a presigned URL ([`Storage::download_url`]).
//! - Keys live under the URL's prefix: `s3://b/exports` stores `u/1f.../x.csv`
//!   as `exports/u/1f.../x.csv`.

use super::listing::stored_objects;
use super::{
    Download, DownloadHeaders, Finish, StorageError, StorageKey, StoredObject, Upload, READ_CHUNK,
};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::runtime::{Handle, RuntimeFlavor};

/// Largest upload sent as one `PUT`; larger ones go multipart.
pub const SINGLE_PUT_MAX: u64 = 16 * 1024 * 1024;
/// Size of each part of a multipart upload (S3 wants at least 5 MiB, at
/// most 10,000 parts: 8 MiB parts reach 78 GiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once (memory: about this many parts).
const PARTS_IN_FLIGHT: usize = 2;
/// Name of the directory, under the system temporary directory, that holds
/// uploads before they are sent.
const STAGING_DIR: &str = "export-host-s3-uploads";

/// How S3 storage is used, beyond where it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Answer downloads with a redirect to a presigned URL instead of
    /// streaming through the daemon (`DOWNLOAD_REDIRECT=on`).
    pub redirect_downloads: bool,
}

/// Storage in an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Storage {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: Option<ObjectPath>,
    endpoint: Option<String>,
    staging: PathBuf,
    options: S3Options,
}

impl S3Storage {
    /// Storage in `bucket` under `prefix` (may be empty), configured from
    /// the `AWS_*` environment variables.
    pub fn from_env(bucket: &str, prefix: &str, options: S3Options) -> Result<Self, StorageError> {
        Self::from_builder(AmazonS3Builder::from_env(), bucket, prefix, options)
    }

    /// Storage in `bucket` under `prefix` with an explicit client
    /// configuration (the bucket set here wins over the builder's).
    pub fn from_builder(
        builder: AmazonS3Builder,
        bucket: &str,
        prefix: &str,
        options: S3Options,
    ) -> Result<Self, StorageError> {
        let url = format!("s3://{bucket}/{prefix}");
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        let store =
            builder
                .with_bucket_name(bucket)
                .build()
                .map_err(|source| StorageError::Backend {
                    what: format!(
                        "configuring {url} (check AWS_REGION, AWS_ENDPOINT_URL and AWS_ALLOW_HTTP)"
                    ),
                    source,
                })?;
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(
                ObjectPath::parse(prefix).map_err(|e| StorageError::InvalidUrl {
                    url: url.clone(),
                    reason: format!("the prefix is not a valid object path: {e}"),
                })?,
            )
        };
        Ok(S3Storage {
            store: Arc::new(store),
            bucket: bucket.to_owned(),
            prefix,
            endpoint,
            staging: std::env::temp_dir().join(STAGING_DIR),
            options,
        })
    }

    /// Keeps uploads in `dir` until they are sent (default: a directory
    /// under the system temporary directory).
    pub fn with_staging_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.staging = dir.into();
        self
    }

    /// Where uploads are kept until they are sent.
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object path of `key`: the prefix, then the key.
    fn location(&self, key: &StorageKey) -> Result<ObjectPath, StorageError> {
        let path = ObjectPath::parse(key.as_str()).map_err(|source| StorageError::Backend {
            what: format!("using key {key}"),
            source: source.into(),
        })?;
        Ok(match &self.prefix {
            Some(prefix) => prefix.parts().chain(path.parts()).collect(),
            None => path,
        })
    }

    /// The key an object path holds, if it is under the prefix and a host key.
    fn key_of(&self, location: &ObjectPath) -> Option<StorageKey> {
        let relative = match &self.prefix {
            Some(prefix) => location.prefix_match(prefix)?.collect::<ObjectPath>(),
            None => location.clone(),
        };
        StorageKey::parse(relative.as_ref()).ok()
    }

    async fn head(&self, key: &StorageKey) -> Result<object_store::ObjectMeta, StorageError> {
        let location = self.location(key)?;
        self.store
            .head(&location)
            .await
            .map_err(|source| backend(key, "reading", source))
    }
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

/// Splits chunks larger than [`READ_CHUNK`], as the [`Download`] contract says.
fn rechunk(
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    key: StorageKey,
) -> BoxStream<'static, Result<Bytes, StorageError>> {
    stream
        .flat_map(move |item| {
            let pieces: Vec<Result<Bytes, StorageError>> = match item {
                Ok(mut chunk) => {
                    let mut out = Vec::with_capacity(chunk.len() / READ_CHUNK + 1);
                    while chunk.len() > READ_CHUNK {
                        out.push(Ok(chunk.split_to(READ_CHUNK)));
                    }
                    if !chunk.is_empty() {
                        out.push(Ok(chunk));
                    }
                    out
                }
                Err(source) => vec![Err(backend(&key, "reading", source))],
            };
            futures::stream::iter(pieces)
        })
        .boxed()
}

/// Everything a committed S3 upload needs, kept in its [`Upload`].
pub(super) struct PendingPut {
    store: Arc<AmazonS3>,
    location: ObjectPath,
    handle: Handle,
}

impl std::fmt::Debug for PendingPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPut")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Runs `work` on the runtime of `handle` and waits for it from this
/// (blocking) thread. The upload's client lives on that runtime, so its
/// connections are reused. Call it from a blocking thread
/// ([`tokio::task::spawn_blocking`]) or from outside the runtime; on a
/// multi-threaded runtime's worker it steps out with `block_in_place`.
fn wait_on<T, F>(handle: &Handle, what: &str, work: F) -> Result<T, StorageError>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (done, result) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = done.send(work.await);
    });
    let wait = move || result.recv();
    let received = match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    };
    received.map_err(|_| StorageError::Task {
        what: what.to_owned(),
        reason: "the runtime stopped before the upload finished".to_owned(),
    })
}

/// Reads up to `limit` bytes (fewer only at the end of the file).
fn read_part(file: &mut File, limit: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(limit);
    file.by_ref()
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Sends the finished temporary file of `key` (`size` bytes) to S3. Blocking.
pub(super) fn commit_put(
    temp: tempfile::NamedTempFile,
    pending: &PendingPut,
    key: &StorageKey,
    size: u64,
) -> Result<(), StorageError> {
    let what = format!("uploading {key}");
    let mut file = temp
        .reopen()
        .map_err(|e| StorageError::io(format!("reading back the upload of {key}"), e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| StorageError::io(format!("reading back the upload of {key}"), e))?;
    let store = pending.store.clone();
    let location = pending.location.clone();
    let reading = |e| StorageError::io(format!("reading back the upload of {key}"), e);

    if size <= SINGLE_PUT_MAX {
        let body =
            read_part(&mut file, usize::try_from(size).unwrap_or(usize::MAX)).map_err(reading)?;
        let payload = PutPayload::from(body);
        wait_on(&pending.handle, &what, async move {
            store.put(&location, payload).await
        })?
        .map_err(|source| backend(key, "uploading", source))?;
        return Ok(());
    }

    let upload = {
        let store = store.clone();
        let location = location.clone();
        wait_on(&pending.handle, &what, async move {
            store.put_multipart(&location).await
        })?
        .map_err(|source| backend(key, "starting the multipart upload of", source))?
    };
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    loop {
        let part = match read_part(&mut file, PART_SIZE) {
            Ok(part) => part,
            Err(e) => {
                abort(&pending.handle, writer, key);
                return Err(reading(e));
            }
        };
        if part.is_empty() {
            break;
        }
        // Wait for room, then hand the part over; the writer comes back
        // either way so a failure can abort the upload.
        let (back, room) = wait_on(&pending.handle, &what, async move {
            let room = writer.wait_for_capacity(PARTS_IN_FLIGHT).await;
            if room.is_ok() {
                writer.put(Bytes::from(part));
            }
            (writer, room)
        })?;
        writer = back;
        if let Err(source) = room {
            abort(&pending.handle, writer, key);
            return Err(backend(key, "uploading a part of", source));
        }
    }
    // `finish` aborts the upload itself when a part or the completion fails.
    wait_on(&pending.handle, &what, writer.finish())?
        .map_err(|source| backend(key, "completing the multipart upload of", source))?;
    Ok(())
}

/// Aborts a multipart upload, logging (not returning) a failure: the
/// bucket's lifecycle rule for incomplete uploads is the backstop.
fn abort(handle: &Handle, writer: WriteMultipart, key: &StorageKey) {
    match wait_on(handle, "aborting an upload", writer.abort()) {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(key = %key, error = %err, "aborting a multipart upload failed; a bucket lifecycle rule for incomplete uploads removes its parts")
        }
        Err(err) => tracing::warn!(key = %key, error = %err, "aborting a multipart upload failed"),
    }
}

impl super::Storage for S3Storage {
    fn begin(&self, key: &StorageKey) -> Result<Upload, StorageError> {
        let location = self.location(key)?;
        let handle = Handle::try_current().map_err(|_| StorageError::Task {
            what: format!("starting the upload of {key}"),
            reason: "S3 uploads need a tokio runtime".to_owned(),
        })?;
        // Locked while open, like a local upload: the stale-upload purge
        // removes only files no live process holds.
        let temp = super::local::locked_upload_file(&self.staging)
            .or_else(|_| {
                fs::create_dir_all(&self.staging)?;
                super::local::locked_upload_file(&self.staging)
            })
            .map_err(|e| {
                StorageError::io(
                    format!(
                        "starting the upload of {key} in {} (set TMPDIR to a writable directory)",
                        self.staging.display()
                    ),
                    e,
                )
            })?;
        let pending = PendingPut {
            store: self.store.clone(),
            location,
            handle,
        };
        Ok(Upload::new(key.clone(), temp, Finish::Put(pending)))
    }

    fn open<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Download, StorageError>> {
        Box::pin(async move {
            let location = self.location(key)?;
            let result = self
                .store
                .get_opts(&location, GetOptions::default())
                .await
                .map_err(|source| backend(key, "reading", source))?;
            let size = result.meta.size;
            let last_modified = SystemTime::from(result.meta.last_modified);
            Ok(Download {
                key: key.clone(),
                size,
                last_modified,
                stream: rechunk(result.into_stream(), key.clone()),
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
            if len == 0 {
                // S3 has no empty range: check the object and the offset.
                let meta = self.head(key).await?;
                super::check_range(key, offset, len, meta.size)?;
                return Ok(Download {
                    key: key.clone(),
                    size: 0,
                    last_modified: SystemTime::from(meta.last_modified),
                    stream: futures::stream::empty().boxed(),
                });
            }
            let end = offset.checked_add(len).ok_or_else(|| {
                StorageError::io(
                    format!("reading {key}"),
                    io::Error::new(io::ErrorKind::InvalidInput, "the range overflows"),
                )
            })?;
            let location = self.location(key)?;
            let options = GetOptions {
                range: Some(GetRange::Bounded(offset..end)),
                ..GetOptions::default()
            };
            let result = match self.store.get_opts(&location, options).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(StorageError::NotFound {
                        key: key.to_string(),
                    })
                }
                Err(source) => {
                    // A range past the end fails the GET; say so plainly.
                    let meta = self.head(key).await?;
                    super::check_range(key, offset, len, meta.size)?;
                    return Err(backend(key, "reading", source));
                }
            };
            let size = result.meta.size;
            super::check_range(key, offset, len, size)?;
            let last_modified = SystemTime::from(result.meta.last_modified);
            Ok(Download {
                key: key.clone(),
                size: len,
                last_modified,
                stream: rechunk(result.into_stream(), key.clone()),
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let location = self.location(key)?;
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(source) => Err(backend(key, "deleting", source)),
            }
        })
    }

    fn size<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<u64, StorageError>> {
        Box::pin(async move { Ok(self.head(key).await?.size) })
    }

    fn list_keys(
        &self,
        prefix: Option<&StorageKey>,
    ) -> BoxStream<'static, Result<StoredObject, StorageError>> {
        let listed = match prefix {
            Some(prefix) => match self.location(prefix) {
                Ok(path) => Some(path),
                Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
            },
            None => self.prefix.clone(),
        };
        let what = match prefix {
            Some(prefix) => format!("listing {prefix}"),
            None => format!("listing {}", self.describe()),
        };
        // Only host keys under the prefix.
        let this = self.clone();
        stored_objects(self.store.list(listed.as_ref()), what, move |location| {
            this.key_of(location)
        })
    }

    fn purge_stale_uploads(
        &self,
        older_than: Duration,
    ) -> BoxFuture<'_, Result<u64, StorageError>> {
        // Uploads in progress are local files until commit; a killed host
        // leaves them in the staging directory. Incomplete multipart uploads
        // in the bucket are left to its lifecycle rule.
        let staging = self.staging.clone();
        Box::pin(super::local::purge_idle_files(staging, older_than))
    }

    fn describe(&self) -> String {
        let location = match &self.prefix {
            Some(prefix) => format!("s3://{}/{prefix}", self.bucket),
            None => format!("s3://{}", self.bucket),
        };
        match &self.endpoint {
            Some(endpoint) => format!("{location} at {endpoint}"),
            None => location,
        }
    }

    fn redirects_downloads(&self) -> bool {
        self.options.redirect_downloads
    }

    fn download_url<'a>(
        &'a self,
        key: &'a StorageKey,
        ttl: Duration,
        headers: &'a DownloadHeaders,
    ) -> BoxFuture<'a, Result<Option<String>, StorageError>> {
        Box::pin(async move {
            if !self.options.redirect_downloads {
                return Ok(None);
            }
            let location = self.location(key)?;
            // S3 answers the presigned GET with these headers in place of
            // the object's own, so the file keeps its name and type.
            let options = SignedUrlOptions::default().with_query([
                (
                    "response-content-disposition",
                    headers.content_disposition.as_str(),
                ),
                ("response-content-type", headers.content_type.as_str()),
                ("response-cache-control", "private, no-cache"),
            ]);
            let url = self
                .store
                .signed_url_opts(Method::GET, &location, ttl, &options)
                .await
                .map_err(|source| backend(key, "presigning a download of", source))?;
            Ok(Some(url.to_string()))
        })
    }
}
