//! The host side of the ABI: open a plugin library and call it through safe types.
//!
//! Plugin authors never need this module; hosts (export-host, a conformance
//! checker, a test harness) do.

use super::fraction;
use super::guest::WIRE_MARK;
use super::validate;
use super::{FormatWriterBox, HostHints, LimitsDocument, LoaderHints, PluginModRef, NOTES_CODE};
use crate::caller::Caller;
use crate::error::{ErrorKind, PluginError};
use crate::loader::Limits;
use crate::manifest::Manifest;
use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use abi_stable::sabi_types::VersionNumber;
use abi_stable::std_types::{RResult, RStr, RVec};
use arrow_array::ffi::{from_ffi_and_data_type, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, RecordBatchOptions, StructArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::{Map, Value};
use std::ffi::{c_void, CStr};
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

/// The most bytes of notes a host accepts from a loader: they are stored in
/// its export's record, so a reader that says more is refused.
pub const MAX_NOTES_BYTES: usize = 16 * 1024;

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

    /// Whether the library takes a caller and a validate call (1.2 or later).
    pub fn knows_callers(&self) -> bool {
        self.api_version.minor >= 2
    }

    /// Whether the library's loaders can tell how far their read is (1.3 or later).
    pub fn knows_fractions(&self) -> bool {
        self.api_version.minor >= 3
    }

    /// Opens loader `name` with no caller. `config` and `selector` are JSON
    /// documents the host has already validated against the plugin's schemas.
    pub fn open_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        limits: &Limits,
    ) -> Result<LoaderStream, PluginError> {
        self.open_loader_for(name, config, selector, limits, None)
    }

    /// Opens loader `name` for `caller`. A library older than 1.2 is never
    /// told the caller (it would not know what to do with it).
    pub fn open_loader_for(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        limits: &Limits,
        caller: Option<&Caller>,
    ) -> Result<LoaderStream, PluginError> {
        let asks_fraction = self.knows_fractions();
        let hints = LoaderHints {
            caller: caller.cloned(),
            validate_only: false,
            notes: true,
            fraction: asks_fraction,
        };
        self.call_open_loader(name, config, selector, limits, hints)
            .and_then(|stream| LoaderStream::new(stream, asks_fraction))
    }

    /// Asks loader `name` whether it would accept `selector` from `caller`
    /// (`Loader::validate`). A library older than 1.2 has no such check:
    /// the answer is yes, and `open` decides later.
    pub fn validate_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        caller: Option<&Caller>,
    ) -> Result<(), PluginError> {
        if !self.knows_callers() {
            return Ok(());
        }
        let hints = LoaderHints {
            caller: caller.cloned(),
            validate_only: true,
            notes: false,
            fraction: false,
        };
        // The answer is an empty stream; dropping it releases it.
        self.call_open_loader(name, config, selector, &Limits::default(), hints)
            .map(drop)
    }

    fn call_open_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        limits: &Limits,
        hints: LoaderHints,
    ) -> Result<FFI_ArrowArrayStream, PluginError> {
        let document = LimitsDocument {
            limits: limits.clone(),
            hints: self.knows_callers().then_some(hints),
        };
        let limits = serde_json::to_string(&document)
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
        Ok(stream)
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
///
/// Every batch is validated before the host sees it (column lengths,
/// buffers, offsets, UTF-8, nulls): a malformed one is an error naming the
/// column, never a panic or a read past the plugin's memory.
pub struct LoaderStream {
    stream: FFI_ArrowArrayStream,
    schema: SchemaRef,
    /// Set once the stream has ended: the plugin is not called again.
    ended: bool,
    notes: Option<Map<String, Value>>,
    /// The plugin was asked to tell how far its read is after each batch.
    asks_fraction: bool,
    /// What it told after the last batch.
    fraction: Option<f64>,
}

impl LoaderStream {
    fn new(mut stream: FFI_ArrowArrayStream, asks_fraction: bool) -> Result<Self, PluginError> {
        let (Some(get_schema), Some(_)) = (stream.get_schema(), stream.release()) else {
            return Err(PluginError::internal(
                "the loader's stream is released or has no schema callback",
            ));
        };
        let mut ffi_schema = FFI_ArrowSchema::empty();
        // SAFETY: the stream is live (it has a release callback) and was
        // produced by the plugin's SDK.
        let code = unsafe { get_schema(&mut stream, &mut ffi_schema) };
        if code != 0 {
            return Err(stream_error(&mut stream, "schema", code).into_failure());
        }
        let field = Field::try_from(&ffi_schema).map_err(|err| {
            PluginError::internal(format!("the loader's schema is unreadable: {err}"))
        })?;
        let DataType::Struct(fields) = field.data_type() else {
            return Err(PluginError::internal(format!(
                "the loader's schema is a {} where a struct of columns was expected",
                field.data_type()
            )));
        };
        let schema = Arc::new(Schema::new(fields.clone()).with_metadata(field.metadata().clone()));
        Ok(LoaderStream {
            stream,
            schema,
            ended: false,
            notes: None,
            asks_fraction,
            fraction: None,
        })
    }

    /// How far through its input the loader was after the last batch, from
    /// 0 to 1 ([`crate::BatchReader::fraction`]); `None` when it cannot
    /// tell, or was built against a plugin-api older than 1.3.
    pub fn fraction(&self) -> Option<f64> {
        self.fraction
    }

    /// Reads the fraction the plugin's stream tells after a batch.
    fn read_fraction(&mut self) -> Option<f64> {
        let get_last_error = self.stream.get_last_error()?;
        // SAFETY: the stream is live and its last call handed over a batch;
        // the text stays valid until the next call on the stream.
        let text = unsafe { get_last_error(&mut self.stream) };
        if text.is_null() {
            return None;
        }
        // SAFETY: a NUL-terminated string owned by the stream (above).
        let text = unsafe { CStr::from_ptr(text) }.to_str().ok()?;
        fraction::decode(text)
    }

    /// The schema every batch has.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// What the loader noted about the read
    /// ([`crate::BatchReader::notes`]); known once the stream has ended.
    pub fn notes(&self) -> Option<&Map<String, Value>> {
        self.notes.as_ref()
    }

    /// Imports one array the plugin handed over as a batch of the schema,
    /// validated before anything reads it.
    fn import(&self, array: FFI_ArrowArray) -> Result<RecordBatch, PluginError> {
        if array.num_children() != self.schema.fields().len() {
            return Err(PluginError::internal(format!(
                "the loader handed over a malformed batch: {} columns where its schema has {}; \
                 this is a bug in the plugin, report it to its author",
                array.num_children(),
                self.schema.fields().len()
            )));
        }
        let data_type = DataType::Struct(self.schema.fields().clone());
        // Arrow's importer asserts on some impossible shapes (nested child
        // counts): a lie must fail this batch, not the host's thread.
        let imported = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the array came from the stream's get_next; every
            // length and offset it claims is validated below before use.
            unsafe { from_ffi_and_data_type(array, data_type) }
        }))
        .map_err(|_| {
            PluginError::internal(
                "the loader handed over a malformed batch (its nested columns do not match \
                 its schema); this is a bug in the plugin, report it to its author",
            )
        })?
        .map_err(|err| {
            PluginError::internal(format!(
                "the loader handed over a batch that cannot be imported: {err}; \
                 this is a bug in the plugin, report it to its author"
            ))
        })?;
        validate::check_imported(&imported, &self.schema)?;
        let rows = imported.len();
        let columns = StructArray::from(imported).into_parts().1;
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|err| {
            PluginError::internal(format!(
                "the loader handed over a malformed batch: {err}; \
                 this is a bug in the plugin, report it to its author"
            ))
        })
    }
}

impl Iterator for LoaderStream {
    type Item = Result<RecordBatch, PluginError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let Some(get_next) = self.stream.get_next() else {
            return Some(Err(PluginError::internal(
                "the loader's stream has no get_next callback",
            )));
        };
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: the stream is live until dropped; the plugin's SDK fills
        // `array` or leaves it released at the end.
        let code = unsafe { get_next(&mut self.stream, &mut array) };
        if code != 0 {
            self.ended = true;
            return match stream_error(&mut self.stream, "batch", code) {
                StreamError::Failed(err) => Some(Err(err)),
                StreamError::EndWithNotes(notes) => match notes {
                    Ok(notes) => {
                        self.notes = Some(notes);
                        None
                    }
                    Err(err) => Some(Err(err)),
                },
            };
        }
        if array.is_released() {
            self.ended = true;
            return None;
        }
        if self.asks_fraction {
            self.fraction = self.read_fraction();
        }
        Some(self.import(array))
    }
}

/// What a failed stream call meant.
enum StreamError {
    /// The plugin's error.
    Failed(PluginError),
    /// Not a failure: the end, with the loader's notes (or why they were refused).
    EndWithNotes(Result<Map<String, Value>, PluginError>),
}

impl StreamError {
    /// Where no end can come (the schema call), notes are a fault too.
    fn into_failure(self) -> PluginError {
        match self {
            StreamError::Failed(err) | StreamError::EndWithNotes(Err(err)) => err,
            StreamError::EndWithNotes(Ok(_)) => PluginError::internal(
                "the loader's stream ended before it gave its schema; \
                 this is a bug in the plugin, report it to its author",
            ),
        }
    }
}

/// The plugin's error for a failed stream call: its kind and message travel
/// in the stream's last-error text (see the guest side).
fn stream_error(stream: &mut FFI_ArrowArrayStream, what: &str, code: i32) -> StreamError {
    let detail = stream.get_last_error().and_then(|get_last_error| {
        // SAFETY: the stream is live and its last call failed; the text it
        // points to stays valid until the next call on the stream.
        let text = unsafe { get_last_error(stream) };
        (!text.is_null()).then(|| {
            // SAFETY: a NUL-terminated string owned by the stream (above).
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        })
    });
    if let Some(json) = detail.as_deref().and_then(notes_json) {
        return StreamError::EndWithNotes(decode_notes(json));
    }
    let text = match detail {
        Some(detail) => format!("cannot get the next {what} (error code {code}): {detail}"),
        None => format!("cannot get the next {what} (error code {code})"),
    };
    StreamError::Failed(decode_stream_error(&text))
}

/// The JSON of a stream end that carries notes, if `text` is one.
fn notes_json(text: &str) -> Option<&str> {
    // Arrow's exporter puts its own words in front of the plugin's text.
    let start = text.find(WIRE_MARK)?;
    text[start..]
        .strip_prefix(WIRE_MARK)?
        .strip_prefix(NOTES_CODE)?
        .strip_prefix(WIRE_MARK)
}

/// The loader's notes: one JSON object of at most [`MAX_NOTES_BYTES`].
pub fn decode_notes(json: &str) -> Result<Map<String, Value>, PluginError> {
    if json.len() > MAX_NOTES_BYTES {
        return Err(PluginError::internal(format!(
            "the loader's notes are {} bytes, over the {MAX_NOTES_BYTES} a record keeps; \
             this is a bug in the plugin, report it to its author",
            json.len()
        )));
    }
    serde_json::from_str(json).map_err(|err| {
        PluginError::internal(format!(
            "the loader's notes are not a JSON object: {err}; \
             this is a bug in the plugin, report it to its author"
        ))
    })
}

/// Recovers the plugin's error kind and message from the stream's error text.
fn decode_stream_error(text: &str) -> PluginError {
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
