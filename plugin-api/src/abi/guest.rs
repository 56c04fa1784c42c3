//! The plugin side of the ABI: the functions in every plugin's root module.
//!
//! Each entry point runs the plugin's code inside `catch_unwind`, because a
//! panic unwinding into an `extern "C"` frame aborts the whole host.

use super::fraction::FractionCell;
use super::{
    AbiError, AbiFormatWriter, AbiFormatWriter_TO, FormatWriterBox, HostHints, LimitsDocument,
    PluginMod, PluginModRef, NOTES_CODE,
};
use crate::error::PluginError;
use crate::formatter::FormatWriter;
use crate::loader::{BatchReader, IterReader};
use crate::plugin::Plugin;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use arrow_array::ffi::{from_ffi_and_data_type, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchReader, StructArray};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use std::any::Any;
use std::ffi::c_void;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

static BUILD: OnceLock<fn() -> Plugin> = OnceLock::new();

/// Builds the root module; called once per library by `export_plugin!`.
pub fn root_module(build: fn() -> Plugin) -> PluginModRef {
    let _ = BUILD.set(build);
    install_panic_hook();
    PluginMod {
        manifest,
        open_loader,
        start_formatter,
    }
    .leak_into_prefix()
}

/// The plugin, built on first use. A panic while building is kept and
/// reported by every entry point.
fn plugin() -> Result<&'static Plugin, PluginError> {
    static PLUGIN: OnceLock<Result<Plugin, PluginError>> = OnceLock::new();
    PLUGIN
        .get_or_init(|| match BUILD.get() {
            Some(build) => catch_unwind(build).map_err(|payload| panic_error(payload.as_ref())),
            None => Err(PluginError::internal(
                "plugin root module was not initialised",
            )),
        })
        .as_ref()
        .map_err(Clone::clone)
}

thread_local! {
    /// Where the last panic on this thread happened, for the error message.
    static PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A cdylib carries its own copy of std, so this hook only sees panics raised
/// in this plugin. Instead of printing to the host's stderr (a daemon's
/// journal), it keeps the location; the panic then travels to the host as an
/// error value and is logged there once, with context.
fn install_panic_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
        }));
    });
}

fn panic_error(payload: &(dyn Any + Send)) -> PluginError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".to_owned());
    let location = PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
    let message = match location {
        Some(location) => format!("plugin panicked: {message} (at {location})"),
        None => format!("plugin panicked: {message}"),
    };
    PluginError::new(crate::ErrorKind::Panic, message)
}

/// Runs plugin code, turning both errors and panics into values.
fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(panic_error(payload.as_ref())),
    }
}

fn to_abi<T>(result: Result<T, PluginError>) -> RResult<T, AbiError> {
    result.map_err(AbiError::from).into()
}

extern "C" fn manifest() -> RResult<RString, AbiError> {
    to_abi(guard(|| {
        let manifest = plugin()?.manifest();
        serde_json::to_string(manifest)
            .map(RString::from)
            .map_err(|err| PluginError::internal(format!("cannot serialise manifest: {err}")))
    }))
}

extern "C" fn open_loader(
    name: RStr<'_>,
    config: RStr<'_>,
    selector: RStr<'_>,
    limits: RStr<'_>,
    out: *mut c_void,
) -> RResult<(), AbiError> {
    to_abi(guard(|| {
        if out.is_null() {
            return Err(PluginError::internal("host passed a null stream pointer"));
        }
        let document: LimitsDocument = serde_json::from_str(limits.as_str())
            .map_err(|err| PluginError::internal(format!("host sent invalid limits: {err}")))?;
        let hints = document.hints.unwrap_or_default();
        let plugin = plugin()?;
        let (name, config, selector) = (name.as_str(), config.as_str(), selector.as_str());
        let reader: Box<dyn BatchReader> = if hints.validate_only {
            plugin.validate_loader(name, config, selector, hints.caller.as_ref())?;
            let empty = Arc::new(Schema::empty());
            Box::new(IterReader::new(empty, std::iter::empty()))
        } else {
            plugin.open_loader_for(
                name,
                config,
                selector,
                &document.limits,
                hints.caller.as_ref(),
            )?
        };
        let fraction = hints.fraction.then(FractionCell::default);
        let guarded = GuardedReader::new(reader, hints.notes, fraction.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(guarded));
        let stream = match fraction {
            Some(cell) => super::fraction::wrap(stream, cell),
            None => stream,
        };
        // SAFETY: the host passes a pointer to an empty (released) stream it owns;
        // overwriting it without dropping leaks nothing.
        unsafe { std::ptr::write(out.cast::<FFI_ArrowArrayStream>(), stream) };
        Ok(())
    }))
}

extern "C" fn start_formatter(
    name: RStr<'_>,
    config: RStr<'_>,
    options: RStr<'_>,
    schema: *const c_void,
) -> RResult<FormatWriterBox, AbiError> {
    to_abi(guard(|| {
        if schema.is_null() {
            return Err(PluginError::internal("host passed a null schema pointer"));
        }
        // SAFETY: the host passes a live schema it keeps owning for this call.
        let ffi_schema = unsafe { &*schema.cast::<FFI_ArrowSchema>() };
        let schema = Arc::new(Schema::try_from(ffi_schema)?);
        let (options, hints) = HostHints::take_from(options.as_str());
        let writer =
            plugin()?.start_formatter(name.as_str(), config.as_str(), &options, schema.clone())?;
        Ok(AbiFormatWriter_TO::from_value(
            GuestWriter {
                writer: Some(writer),
                schema,
                hints,
                finished: false,
            },
            TD_Opaque,
        ))
    }))
}

struct GuestWriter {
    /// `None` once it failed, panicked or handed over its last byte.
    writer: Option<Box<dyn FormatWriter>>,
    schema: SchemaRef,
    hints: HostHints,
    /// `finish` has run once: later calls ask for the next piece.
    finished: bool,
}

impl GuestWriter {
    fn writer(&mut self) -> Result<&mut Box<dyn FormatWriter>, PluginError> {
        self.writer
            .as_mut()
            .ok_or_else(|| PluginError::internal("formatter used after it failed or finished"))
    }

    /// Runs `f`; after a panic the writer's state is unknown, so it is retired.
    fn run(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<RVec<u8>, PluginError>,
    ) -> RResult<RVec<u8>, AbiError> {
        let result = guard(|| f(self));
        if matches!(&result, Err(err) if err.kind == crate::ErrorKind::Panic) {
            self.retire();
        }
        to_abi(result)
    }

    fn retire(&mut self) {
        if let Some(writer) = self.writer.take() {
            // A panicking Drop must not unwind into the host either.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(writer)));
        }
    }
}

impl AbiFormatWriter for GuestWriter {
    fn write(&mut self, batch: *mut c_void) -> RResult<RVec<u8>, AbiError> {
        self.run(|this| {
            if batch.is_null() {
                return Err(PluginError::internal("host passed a null batch pointer"));
            }
            // SAFETY: the host passes a live array it hands over to us; we leave
            // a released one in its place so it is freed exactly once.
            let array = unsafe { std::ptr::replace(batch.cast(), FFI_ArrowArray::empty()) };
            let fields = this.schema.fields().clone();
            // SAFETY: the array was exported by the host from a batch of the
            // schema it gave us at start.
            let data = unsafe { from_ffi_and_data_type(array, DataType::Struct(fields)) }?;
            let columns = StructArray::from(data).into_parts().1;
            let batch = RecordBatch::try_new(this.schema.clone(), columns)?;
            let mut out = Vec::new();
            this.writer()?.write(&batch, &mut out)?;
            Ok(RVec::from(out))
        })
    }

    /// A host that asked for pieces ([`HostHints::finish_in_pieces`]) gets
    /// what `FormatWriter::finish` wrote, then one `finish_more` piece per
    /// call, then no bytes. Any other host gets all of it at once.
    fn finish(&mut self) -> RResult<RVec<u8>, AbiError> {
        self.run(|this| {
            let mut out = Vec::new();
            let Some(writer) = this.writer.as_mut() else {
                if this.finished {
                    return Ok(RVec::new());
                }
                return Err(PluginError::internal(
                    "formatter used after it failed or finished",
                ));
            };
            if !this.finished {
                this.finished = true;
                writer.finish(&mut out)?;
                if this.hints.finish_in_pieces {
                    return Ok(RVec::from(out));
                }
                while writer.finish_more(&mut out)? {}
                this.retire();
                return Ok(RVec::from(out));
            }
            // No bytes means "done" to the host, so an empty piece is skipped.
            loop {
                if !writer.finish_more(&mut out)? {
                    this.retire();
                    break;
                }
                if !out.is_empty() {
                    break;
                }
            }
            Ok(RVec::from(out))
        })
    }
}

impl Drop for GuestWriter {
    fn drop(&mut self) {
        self.retire();
    }
}

/// A plugin error carried through Arrow's stream error channel.
///
/// The C stream interface only carries a message, so the kind is encoded in
/// front of it; [`super::host`] decodes it. NUL bytes are replaced because
/// arrow-rs aborts on an error message that contains one.
#[derive(Debug)]
struct WireError(String);

pub(crate) const WIRE_MARK: char = '\u{1}';

impl WireError {
    fn new(err: &PluginError) -> Self {
        let message = err.message.replace('\0', "\\0");
        WireError(format!(
            "{WIRE_MARK}{}{WIRE_MARK}{message}",
            err.kind.code()
        ))
    }

    /// Not an error: the end of a stream, carrying the reader's notes.
    fn notes(json: &str) -> Self {
        // serde_json escapes every control character, NUL included.
        WireError(format!("{WIRE_MARK}{NOTES_CODE}{WIRE_MARK}{json}"))
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

/// Adapts a plugin's [`BatchReader`] to Arrow's exporter: panics become
/// errors, and batches must match the declared schema.
struct GuardedReader {
    reader: Option<Box<dyn BatchReader>>,
    schema: SchemaRef,
    /// The host asked for the reader's notes at the end.
    send_notes: bool,
    /// Where the reader's fraction goes after each batch, when the host asked.
    fraction: Option<FractionCell>,
}

/// How a stream ends on the plugin's side.
enum Ended {
    Plainly,
    /// With the reader's notes, as JSON.
    WithNotes(String),
}

impl GuardedReader {
    fn new(reader: Box<dyn BatchReader>, send_notes: bool, fraction: Option<FractionCell>) -> Self {
        let schema = reader.schema();
        GuardedReader {
            reader: Some(reader),
            schema,
            send_notes,
            fraction,
        }
    }

    /// Drops the exhausted reader while the host is still listening (a panic
    /// in its `Drop` then fails the export instead of vanishing when the host
    /// releases the stream), after taking its notes if the host wants them.
    fn end(&mut self) -> Result<Ended, PluginError> {
        let reader = self.reader.take();
        let send_notes = self.send_notes;
        guard(move || {
            let notes = match &reader {
                Some(reader) if send_notes => reader.notes().filter(|notes| !notes.is_empty()),
                _ => None,
            };
            drop(reader);
            match notes {
                None => Ok(Ended::Plainly),
                Some(notes) => serde_json::to_string(&notes)
                    .map(Ended::WithNotes)
                    .map_err(|err| {
                        PluginError::internal(format!("cannot encode the loader's notes: {err}"))
                    }),
            }
        })
    }

    fn next_checked(&mut self) -> Result<Option<RecordBatch>, WireError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let schema = self.schema.clone();
        let fraction = self.fraction.as_ref();
        let result = guard(|| {
            let batch = reader.next_batch()?;
            if let (Some(cell), Some(_)) = (fraction, &batch) {
                cell.set(reader.fraction());
            }
            if let Some(batch) = &batch {
                if !Arc::ptr_eq(batch.schema_ref(), &schema) && batch.schema_ref() != &schema {
                    return Err(PluginError::internal(format!(
                        "loader yielded a batch whose schema differs from the one it declared: {} vs {}",
                        batch.schema(),
                        schema
                    )));
                }
                // Checked here, where the real buffer sizes are known: the
                // host can only see what the lengths and offsets claim.
                super::validate::check_exported(batch)?;
            }
            Ok(batch)
        });
        match result {
            Ok(None) => match self.end() {
                Ok(Ended::Plainly) => Ok(None),
                Ok(Ended::WithNotes(json)) => Err(WireError::notes(&json)),
                Err(err) => Err(WireError::new(&err)),
            },
            Ok(batch) => Ok(batch),
            Err(err) => {
                // Never call a reader again after it failed or panicked.
                self.retire();
                Err(WireError::new(&err))
            }
        }
    }

    fn retire(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(reader)));
        }
    }
}

impl Iterator for GuardedReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_checked()
            .map_err(|err| ArrowError::ExternalError(Box::new(err)))
            .transpose()
    }
}

impl RecordBatchReader for GuardedReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for GuardedReader {
    fn drop(&mut self) {
        self.retire();
    }
}
