//! The host side of the ABI: open a plugin library and call it through safe types.
//!
//! Plugin authors never need this module; hosts (export-host, a conformance
//! checker, a test harness) do.

use super::guest::WIRE_MARK;
use super::{FormatWriterBox, HostHints, PluginModRef};
use crate::error::{ErrorKind, PluginError};
use crate::loader::Limits;
use crate::manifest::Manifest;
use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use abi_stable::sabi_types::VersionNumber;
use abi_stable::std_types::{RResult, RStr, RVec};
use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{Array, RecordBatch, RecordBatchReader, StructArray};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use std::ffi::c_void;
use std::ops::Deref;
use std::path::Path;

/// The plugin-api version this host speaks.
pub fn host_api_version() -> String {
    <PluginModRef as RootModule>::VERSION_STRINGS
        .version
        .as_str()
        .to_owned()
}

/// Why a library could not be loaded as a plugin. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// `dlopen` refused the file.
    #[error("cannot load it as a shared library ({0}); check that it is a plugin .so built for this machine")]
    Open(String),
    /// The library has no export-host entry point.
    #[error("it is a shared library but not an export-host plugin (it exports no plugin entry point); plugins are built with export_plugin! from export-plugin-api")]
    NotAPlugin,
    /// An abi_stable library of some other program.
    #[error("it is an abi_stable library of another kind ({0:?}), not an export-host plugin")]
    OtherRootModule(String),
    /// Built against another major version of plugin-api.
    #[error("it was built against export-plugin-api {plugin}, but this host speaks export-plugin-api {host}; rebuild the plugin against export-plugin-api {host_major}.x")]
    IncompatibleApi {
        /// What the plugin was built against.
        plugin: String,
        /// What the host speaks.
        host: String,
        /// The host's major version.
        host_major: u32,
    },
    /// Same major version, but the type layouts differ.
    #[error("its ABI layout does not match this host's export-plugin-api {host}; rebuild it against the same export-plugin-api version: {detail}")]
    Layout {
        /// What the host speaks.
        host: String,
        /// abi_stable's first lines of explanation.
        detail: String,
    },
    /// The plugin panicked or failed while building its root module or manifest.
    #[error("it failed to start: {0}")]
    Init(String),
    /// The manifest did not parse.
    #[error("its manifest is not valid: {0}")]
    Manifest(String),
}

impl LoadError {
    fn from_library(err: LibraryError) -> Self {
        match err {
            LibraryError::OpenError { err, .. } => LoadError::Open(err.to_string()),
            LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin,
            LibraryError::IncompatibleVersionNumber { actual_version, .. } => {
                incompatible(actual_version.to_string())
            }
            LibraryError::RootModule { err, .. } => LoadError::Init(err.to_string()),
            LibraryError::AbiInstability(err) => LoadError::Layout {
                host: host_api_version(),
                detail: first_lines(&err.to_string(), 6),
            },
            other => LoadError::Layout {
                host: host_api_version(),
                detail: first_lines(&other.to_string(), 6),
            },
        }
    }
}

fn incompatible(plugin: String) -> LoadError {
    LoadError::IncompatibleApi {
        plugin,
        host: host_api_version(),
        host_major: VersionNumber::new(<PluginModRef as RootModule>::VERSION_STRINGS)
            .map(|v| v.major)
            .unwrap_or(0),
    }
}

fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = lines
        .iter()
        .take(n)
        .copied()
        .collect::<Vec<_>>()
        .join(" / ");
    if lines.len() > n {
        out.push_str(" / ...");
    }
    out
}

/// A loaded plugin library. Libraries are never unloaded (dlclose is unsafe
/// with Rust thread-locals), so this is cheap to copy around.
#[derive(Clone)]
pub struct PluginLibrary {
    module: PluginModRef,
    manifest: Manifest,
    /// The plugin-api version the library was built against.
    api_version: VersionNumber,
}

impl std::fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl PluginLibrary {
    /// Loads the library at `path` on its own (never through abi_stable's
    /// per-type cache, which would hand back the first library loaded),
    /// checks the plugin-api version and the ABI layout, and reads the manifest.
    ///
    /// # Safety
    /// Loading a library runs its initialisers with the host's privileges:
    /// verify the file (type, permissions, checksum) before calling this.
    pub unsafe fn load(path: &Path) -> Result<Self, LoadError> {
        let header = lib_header_from_path(path).map_err(LoadError::from_library)?;
        let consts = header.root_mod_consts();
        if consts.name().as_str() != <PluginModRef as RootModule>::NAME {
            return Err(LoadError::OtherRootModule(
                consts.name().as_str().to_owned(),
            ));
        }
        // Compare versions ourselves first: abi_stable's layout error would bury
        // the one fact a plugin author needs, the two version numbers.
        let strings = consts.version_strings();
        let plugin_version = VersionNumber::new(strings)
            .map_err(|err| LoadError::Manifest(format!("unreadable plugin-api version: {err}")))?;
        let host_version = VersionNumber::new(<PluginModRef as RootModule>::VERSION_STRINGS)
            .map_err(|err| LoadError::Manifest(err.to_string()))?;
        if plugin_version.major != host_version.major
            || (host_version.major == 0 && plugin_version.minor != host_version.minor)
        {
            return Err(incompatible(plugin_version.to_string()));
        }
        let module = header
            .init_root_module::<PluginModRef>()
            .map_err(LoadError::from_library)?;
        let manifest = match (module.manifest())() {
            RResult::ROk(json) => serde_json::from_str::<Manifest>(json.as_str())
                .map_err(|err| LoadError::Manifest(err.to_string()))?,
            RResult::RErr(err) => return Err(LoadError::Init(PluginError::from(err).message)),
        };
        Ok(PluginLibrary {
            module,
            manifest,
            api_version: plugin_version,
        })
    }

    /// What the plugin declares.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Opens loader `name`. `config` and `selector` are JSON documents the
    /// host has already validated against the plugin's schemas.
    pub fn open_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        limits: &Limits,
    ) -> Result<LoaderStream, PluginError> {
        let limits = serde_json::to_string(limits)
            .map_err(|err| PluginError::internal(format!("cannot encode limits: {err}")))?;
        let mut stream = FFI_ArrowArrayStream::empty();
        let result = (self.module.open_loader())(
            RStr::from(name),
            RStr::from(config),
            RStr::from(selector),
            RStr::from(limits.as_str()),
            (&mut stream as *mut FFI_ArrowArrayStream).cast::<c_void>(),
        );
        if let RResult::RErr(err) = result {
            return Err(err.into());
        }
        let reader = RecordBatchStreamReader::try_new(stream).map_err(decode_stream_error)?;
        Ok(LoaderStream { reader })
    }

    /// Starts formatter `name` for batches of `schema`.
    pub fn start_formatter(
        &self,
        name: &str,
        config: &str,
        options: &str,
        schema: &Schema,
    ) -> Result<FormatterSession, PluginError> {
        let ffi_schema = FFI_ArrowSchema::try_from(schema).map_err(|err| {
            PluginError::unsupported(format!("cannot pass schema to the formatter: {err}"))
        })?;
        // Only a plugin of 1.1 or later takes the hints out of its options.
        let hinted = (self.api_version.minor >= 1)
            .then(|| {
                HostHints {
                    finish_in_pieces: true,
                }
                .add_to(options)
            })
            .flatten();
        let in_pieces = hinted.is_some();
        let result = (self.module.start_formatter())(
            RStr::from(name),
            RStr::from(config),
            RStr::from(hinted.as_deref().unwrap_or(options)),
            (&ffi_schema as *const FFI_ArrowSchema).cast::<c_void>(),
        );
        match result {
            RResult::ROk(writer) => Ok(FormatterSession {
                writer,
                in_pieces,
                done: false,
            }),
            RResult::RErr(err) => Err(err.into()),
        }
    }
}

/// Record batches from a plugin's loader. Batches borrow the plugin's buffers
/// (no copy); they stay valid after the stream is dropped.
pub struct LoaderStream {
    reader: RecordBatchStreamReader,
}

impl LoaderStream {
    /// The schema every batch has.
    pub fn schema(&self) -> SchemaRef {
        self.reader.schema()
    }
}

impl Iterator for LoaderStream {
    type Item = Result<RecordBatch, PluginError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.reader
            .next()
            .map(|result| result.map_err(decode_stream_error))
    }
}

/// Recovers the plugin's error kind and message from Arrow's stream error text.
fn decode_stream_error(err: ArrowError) -> PluginError {
    let text = err.to_string();
    if let Some(start) = text.find(WIRE_MARK) {
        let rest = &text[start + WIRE_MARK.len_utf8()..];
        if let Some((code, message)) = rest.split_once(WIRE_MARK) {
            if let Ok(code) = code.parse() {
                return PluginError::new(ErrorKind::from_code(code), message);
            }
        }
    }
    PluginError::internal(format!("loader stream failed: {text}"))
}

/// A running formatter inside a plugin.
pub struct FormatterSession {
    writer: FormatWriterBox,
    /// The plugin was asked to hand its closing bytes over in pieces.
    in_pieces: bool,
    /// The last piece was taken.
    done: bool,
}

impl FormatterSession {
    /// Formats one batch (of the schema given at start); returns its bytes.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<PluginBytes, PluginError> {
        let data = StructArray::from(batch.clone()).into_data();
        let mut array = FFI_ArrowArray::new(&data);
        // The plugin takes the array and leaves a released one behind, which
        // drops as a no-op; if it fails first, dropping ours frees it instead.
        let result = self
            .writer
            .write((&mut array as *mut FFI_ArrowArray).cast::<c_void>());
        match result {
            RResult::ROk(bytes) => Ok(PluginBytes(bytes)),
            RResult::RErr(err) => Err(err.into()),
        }
    }

    /// Ends the document; returns the first piece of the closing bytes. Call
    /// [`FormatterSession::finish_more`] until it answers `None` for the rest.
    pub fn finish(&mut self) -> Result<PluginBytes, PluginError> {
        self.done = !self.in_pieces;
        self.call_finish()
    }

    /// The next piece of the closing bytes, or `None` once there are none
    /// (at once for a plugin built against 1.0, whose `finish` gave them all).
    pub fn finish_more(&mut self) -> Result<Option<PluginBytes>, PluginError> {
        if self.done {
            return Ok(None);
        }
        let piece = self.call_finish()?;
        if piece.is_empty() {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(piece))
    }

    fn call_finish(&mut self) -> Result<PluginBytes, PluginError> {
        match self.writer.finish() {
            RResult::ROk(bytes) => Ok(PluginBytes(bytes)),
            RResult::RErr(err) => Err(err.into()),
        }
    }
}

/// Bytes a plugin produced, freed by the plugin's allocator when dropped.
pub struct PluginBytes(RVec<u8>);

impl Deref for PluginBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_slice()
    }
}
