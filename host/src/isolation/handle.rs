//! One way to call a plugin, whichever way it runs: the pipeline opens
//! loaders and starts formatters through a [`PluginHandle`] and never
//! cares whether the code is in this process or in a worker.

use super::fault::Fault;
use super::pool::{LastFault, PluginState, WorkerPool};
use super::process::{Deadline, Killer, WorkerProcess};
use super::protocol::{self, Reply, Request};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::host::{
    decode_notes, FormatterSession, LoaderStream, PluginBytes, PluginLibrary,
};
use export_plugin_api::{Caller, Limits, Manifest, PluginError};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a worker gets to close a conversation the export left early.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why a call into a plugin failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error (or panicked, and the SDK caught it).
    #[error("{0}")]
    Plugin(PluginError),
    /// Its worker process failed.
    #[error("{0}")]
    Fault(Fault),
}

impl From<PluginError> for CallError {
    fn from(error: PluginError) -> Self {
        CallError::Plugin(error)
    }
}

/// One batch from a loader: decoded, or as the Arrow IPC bytes a worker
/// sent, passed on untouched to a formatter that is isolated too.
pub enum Batch {
    /// A record batch.
    Decoded(RecordBatch),
    /// Arrow IPC stream bytes holding one batch of `rows` rows.
    Encoded {
        /// The bytes.
        ipc: Vec<u8>,
        /// Its row count, as the loader's worker reported it.
        rows: usize,
    },
}

impl Batch {
    /// Its row count.
    pub fn num_rows(&self) -> usize {
        match self {
            Batch::Decoded(batch) => batch.num_rows(),
            Batch::Encoded { rows, .. } => *rows,
        }
    }

    /// As a record batch.
    pub fn record_batch(&self) -> Result<Cow<'_, RecordBatch>, CallError> {
        match self {
            Batch::Decoded(batch) => Ok(Cow::Borrowed(batch)),
            Batch::Encoded { ipc, .. } => protocol::decode_batch(ipc)
                .map(Cow::Owned)
                .map_err(|err| CallError::Fault(Fault::Protocol(format!("batch: {err}")))),
        }
    }

    /// As Arrow IPC bytes.
    pub fn ipc(&self) -> Result<Cow<'_, [u8]>, CallError> {
        match self {
            Batch::Encoded { ipc, .. } => Ok(Cow::Borrowed(ipc)),
            Batch::Decoded(batch) => protocol::encode_batch(batch)
                .map(Cow::Owned)
                .map_err(|err| {
                    CallError::Plugin(PluginError::unsupported(format!(
                        "cannot pass a batch to the formatter's worker: {err}"
                    )))
                }),
        }
    }
}

/// A loader's batches.
pub trait BatchSource: Send {
    /// The schema every batch has.
    fn schema(&self) -> SchemaRef;
    /// The next batch; `None` at the end.
    fn next_batch(&mut self) -> Option<Result<Batch, CallError>>;
    /// Ends the loader's worker from another thread, if it has one.
    fn killer(&self) -> Option<Killer> {
        None
    }
    /// What the loader noted about the read, once `next_batch` has returned
    /// `None` ([`export_plugin_api::BatchReader::notes`]).
    fn notes(&mut self) -> Option<Map<String, Value>> {
        None
    }
    /// How far through its input the loader was after the last batch, from
    /// 0 to 1 ([`export_plugin_api::BatchReader::fraction`]); `None` when
    /// it cannot tell.
    fn fraction(&self) -> Option<f64> {
        None
    }
}

/// A running formatter.
pub trait FormatSession {
    /// Formats one batch.
    fn write(&mut self, batch: &Batch) -> Result<Formatted, CallError>;
    /// Ends the document: the first piece of the closing bytes.
    fn finish(&mut self) -> Result<Formatted, CallError>;
    /// The next piece of the closing bytes; `None` once there are no more.
    fn finish_more(&mut self) -> Result<Option<Formatted>, CallError>;
}

/// Bytes a formatter produced: the plugin's own buffer in-process, or what
/// came over the wire.
pub enum Formatted {
    /// Freed by the plugin's allocator.
    Plugin(PluginBytes),
    /// Read from a worker.
    Owned(Vec<u8>),
}

impl Deref for Formatted {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Formatted::Plugin(bytes) => bytes,
            Formatted::Owned(bytes) => bytes,
        }
    }
}

/// How the host calls one plugin.
pub enum PluginHandle {
    /// Loaded into the host.
    InProcess(PluginLibrary),
    /// In worker processes.
    Process(Arc<WorkerPool>),
}

impl PluginHandle {
    /// What the plugin declares.
    pub fn manifest(&self) -> &Manifest {
        match self {
            PluginHandle::InProcess(library) => library.manifest(),
            PluginHandle::Process(pool) => pool.manifest(),
        }
    }

    /// Always `Loaded`: a handle serves whoever calls it. Quarantine is
    /// decided per user from the faults in the database
    /// (`Records::quarantine_for`) before an export calls in.
    pub fn state(&self) -> PluginState {
        PluginState::Loaded
    }

    /// The most recent worker fault.
    pub fn last_fault(&self) -> Option<LastFault> {
        match self {
            PluginHandle::InProcess(_) => None,
            PluginHandle::Process(pool) => pool.last_fault(),
        }
    }

    /// Process ids of the plugin's live workers (none in-process).
    pub fn worker_pids(&self) -> Vec<u32> {
        match self {
            PluginHandle::InProcess(_) => Vec::new(),
            PluginHandle::Process(pool) => pool.worker_pids(),
        }
    }

    /// Whether its code runs in this process (a call into it cannot be
    /// stopped from outside).
    pub fn is_in_process(&self) -> bool {
        matches!(self, PluginHandle::InProcess(_))
    }

    /// Whether its formatters take batches as Arrow IPC bytes (so a
    /// worker's batches are best passed on undecoded).
    pub fn takes_ipc(&self) -> bool {
        matches!(self, PluginHandle::Process(_))
    }

    /// Asks loader `name` whether it accepts `selector` from `caller`
    /// (plugins older than plugin-api 1.2 always do); a worker must answer
    /// by `deadline`.
    pub fn validate_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        caller: Option<&Caller>,
        deadline: Option<Deadline>,
    ) -> Result<(), CallError> {
        match self {
            PluginHandle::InProcess(library) => {
                Ok(library.validate_loader(name, config, selector, caller)?)
            }
            PluginHandle::Process(pool) => {
                let request = Request::ValidateLoader {
                    name: name.to_owned(),
                    config: config.to_owned(),
                    selector: selector.to_owned(),
                    caller: caller.cloned(),
                };
                let mut conversation = Conversation::start(pool, deadline)?;
                match conversation.call(&request, &[])? {
                    (Reply::Validated, _) => Ok(()),
                    (other, _) => Err(conversation.unexpected(other)),
                }
            }
        }
    }

    /// Opens loader `name` for `caller`; calls into a worker must answer by
    /// `deadline`. With `keep_encoded`, a worker's batches stay Arrow IPC bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn open_loader(
        &self,
        name: &str,
        config: &str,
        selector: &str,
        limits: &Limits,
        caller: Option<&Caller>,
        deadline: Option<Deadline>,
        keep_encoded: bool,
    ) -> Result<Box<dyn BatchSource>, CallError> {
        match self {
            PluginHandle::InProcess(library) => {
                let stream = library.open_loader_for(name, config, selector, limits, caller)?;
                Ok(Box::new(LocalLoader(stream)))
            }
            PluginHandle::Process(pool) => {
                let request = Request::OpenLoader {
                    name: name.to_owned(),
                    config: config.to_owned(),
                    selector: selector.to_owned(),
                    limits: limits.clone(),
                    caller: caller.cloned(),
                };
                let mut conversation = Conversation::start(pool, deadline)?;
                let schema = match conversation.call(&request, &[])? {
                    (Reply::LoaderOpened, payload) => protocol::decode_schema(&payload)
                        .map_err(|err| conversation.garbled(format!("schema: {err}")))?,
                    (other, _) => return Err(conversation.unexpected(other)),
                };
                Ok(Box::new(RemoteLoader {
                    conversation,
                    schema,
                    keep_encoded,
                    notes: None,
                    fraction: None,
                }))
            }
        }
    }

    /// Starts formatter `name` for batches of `schema`.
    pub fn start_formatter(
        &self,
        name: &str,
        config: &str,
        options: &str,
        schema: &SchemaRef,
        deadline: Option<Deadline>,
    ) -> Result<Box<dyn FormatSession>, CallError> {
        match self {
            PluginHandle::InProcess(library) => {
                let session = library.start_formatter(name, config, options, schema)?;
                Ok(Box::new(LocalFormatter(session)))
            }
            PluginHandle::Process(pool) => {
                let request = Request::StartFormatter {
                    name: name.to_owned(),
                    config: config.to_owned(),
                    options: options.to_owned(),
                };
                let encoded = protocol::encode_schema(schema).map_err(|err| {
                    PluginError::unsupported(format!(
                        "cannot pass the schema to the formatter's worker: {err}"
                    ))
                })?;
                let mut conversation = Conversation::start(pool, deadline)?;
                match conversation.call(&request, &encoded)? {
                    (Reply::FormatterStarted, _) => Ok(Box::new(RemoteFormatter { conversation })),
                    (other, _) => Err(conversation.unexpected(other)),
                }
            }
        }
    }
}

struct LocalLoader(LoaderStream);

impl BatchSource for LocalLoader {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }
    fn next_batch(&mut self) -> Option<Result<Batch, CallError>> {
        self.0
            .next()
            .map(|batch| batch.map(Batch::Decoded).map_err(CallError::Plugin))
    }
    fn notes(&mut self) -> Option<Map<String, Value>> {
        self.0.notes().cloned()
    }
    fn fraction(&self) -> Option<f64> {
        self.0.fraction()
    }
}

struct LocalFormatter(FormatterSession);

impl FormatSession for LocalFormatter {
    fn write(&mut self, batch: &Batch) -> Result<Formatted, CallError> {
        let batch = batch.record_batch()?;
        Ok(Formatted::Plugin(self.0.write(&batch)?))
    }
    fn finish(&mut self) -> Result<Formatted, CallError> {
        Ok(Formatted::Plugin(self.0.finish()?))
    }
    fn finish_more(&mut self) -> Result<Option<Formatted>, CallError> {
        Ok(self.0.finish_more()?.map(Formatted::Plugin))
    }
}

/// One loader or formatter session on a checked-out worker. The worker goes
/// back to the pool when the session ends cleanly, and is ended otherwise.
struct Conversation {
    pool: Arc<WorkerPool>,
    /// `None` once the session ended (the worker was returned or ended).
    worker: Option<WorkerProcess>,
    deadline: Option<Deadline>,
}

impl Conversation {
    fn start(
        pool: &Arc<WorkerPool>,
        deadline: Option<Deadline>,
    ) -> Result<Conversation, CallError> {
        let worker = pool.checkout(deadline.as_ref()).map_err(CallError::Fault)?;
        Ok(Conversation {
            pool: pool.clone(),
            worker: Some(worker),
            deadline,
        })
    }

    /// One request and its reply. A plugin error ends the session (the
    /// worker closed it) and returns the worker; a fault ends the worker.
    fn call(&mut self, request: &Request, payload: &[u8]) -> Result<(Reply, Vec<u8>), CallError> {
        let Some(worker) = self.worker.as_mut() else {
            return Err(CallError::Plugin(PluginError::internal(
                "the plugin's session already ended",
            )));
        };
        match worker.call(request, payload, self.deadline.as_ref()) {
            Ok((Reply::Failed { kind, message }, _)) => {
                self.release();
                Err(CallError::Plugin(PluginError::new(kind, message)))
            }
            Ok(reply) => Ok(reply),
            Err(fault) => {
                self.fail(&fault);
                Err(CallError::Fault(fault))
            }
        }
    }

    /// The session ended cleanly: the worker goes back to the pool.
    fn release(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.pool.checkin(worker);
        }
    }

    /// The worker failed: it is ended and the fault counted.
    fn fail(&mut self, fault: &Fault) {
        if let Some(worker) = self.worker.take() {
            self.pool.discard(worker, Some(fault));
        }
    }

    /// A reply that does not fit the request: the worker is not trusted again.
    fn unexpected(&mut self, reply: Reply) -> CallError {
        self.garbled(format!("unexpected reply {reply:?}"))
    }

    fn garbled(&mut self, message: String) -> CallError {
        let fault = Fault::Protocol(message);
        self.fail(&fault);
        CallError::Fault(fault)
    }

    fn killer(&self) -> Option<Killer> {
        self.worker.as_ref().map(WorkerProcess::killer)
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        // Left early (the export failed elsewhere): ask the worker to drop
        // the plugin's stream or writer, so it can serve the next export.
        let Some(worker) = self.worker.as_mut() else {
            return;
        };
        let grace = Deadline::after(Instant::now(), CLOSE_GRACE);
        match worker.call(&Request::Close, &[], Some(&grace)) {
            Ok((Reply::Closed, _)) => self.release(),
            Ok((Reply::Failed { .. }, _)) => self.release(),
            Ok(_) => {
                if let Some(worker) = self.worker.take() {
                    self.pool.discard(worker, None);
                }
            }
            Err(fault) => self.fail(&fault),
        }
    }
}

struct RemoteLoader {
    conversation: Conversation,
    schema: SchemaRef,
    keep_encoded: bool,
    notes: Option<Map<String, Value>>,
    /// What the worker said about the last batch.
    fraction: Option<f64>,
}

impl BatchSource for RemoteLoader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Option<Result<Batch, CallError>> {
        self.conversation.worker.as_ref()?;
        let reply = self.conversation.call(&Request::NextBatch, &[]);
        if let Ok((Reply::Batch { fraction, .. }, _)) = &reply {
            // The worker is this same binary, but its answer is still checked.
            self.fraction = fraction
                .filter(|f| f.is_finite())
                .map(|f| f.clamp(0.0, 1.0));
        }
        match reply {
            Ok((Reply::Batch { rows, .. }, payload)) if self.keep_encoded => {
                Some(Ok(Batch::Encoded {
                    ipc: payload,
                    rows: rows as usize,
                }))
            }
            Ok((Reply::Batch { .. }, payload)) => Some(
                protocol::decode_batch(&payload)
                    .map(Batch::Decoded)
                    .map_err(|err| self.conversation.garbled(format!("batch: {err}"))),
            ),
            Ok((Reply::End { notes }, _)) => {
                self.conversation.release();
                match notes.as_deref().map(decode_notes).transpose() {
                    Ok(notes) => {
                        self.notes = notes;
                        None
                    }
                    Err(err) => Some(Err(CallError::Plugin(err))),
                }
            }
            Ok((other, _)) => Some(Err(self.conversation.unexpected(other))),
            Err(err) => Some(Err(err)),
        }
    }

    fn killer(&self) -> Option<Killer> {
        self.conversation.killer()
    }

    fn notes(&mut self) -> Option<Map<String, Value>> {
        self.notes.take()
    }

    fn fraction(&self) -> Option<f64> {
        self.fraction
    }
}

struct RemoteFormatter {
    conversation: Conversation,
}

impl RemoteFormatter {
    fn bytes(&mut self, request: &Request, payload: &[u8]) -> Result<Formatted, CallError> {
        match self.conversation.call(request, payload)? {
            (Reply::Bytes, bytes) => Ok(Formatted::Owned(bytes)),
            (other, _) => Err(self.conversation.unexpected(other)),
        }
    }
}

impl FormatSession for RemoteFormatter {
    fn write(&mut self, batch: &Batch) -> Result<Formatted, CallError> {
        let encoded = batch.ipc()?;
        self.bytes(&Request::Write, &encoded)
    }

    fn finish(&mut self) -> Result<Formatted, CallError> {
        self.bytes(&Request::Finish, &[])
    }

    fn finish_more(&mut self) -> Result<Option<Formatted>, CallError> {
        let piece = self.bytes(&Request::FinishMore, &[])?;
        if piece.is_empty() {
            self.conversation.release();
            return Ok(None);
        }
        Ok(Some(piece))
    }
}
