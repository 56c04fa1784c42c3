//! Running one export: loader stream -> formatter -> sink.
//!
//! The loader is pulled on its own thread and the formatter runs on the
//! caller's, joined by a small bounded channel: parsing and formatting use
//! both cores, and at most a few batches are ever in memory.

use super::plugin_threads::PluginThread;
use super::request::PreparedExport;
use super::sink::{size_limit, Sink, SinkSummary};
use crate::isolation::{Batch, CallError, Deadline, Fault, Formatted, Killer};
use crate::plugins::LoadedPlugin;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::{ErrorKind, Limits, PluginError};
use serde_json::{Map, Value};
use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// Batches in flight between the loader thread and the formatter.
const CHANNEL_BATCHES: usize = 4;

/// The caps one export runs under.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Most rows.
    pub max_rows: u64,
    /// Most stored bytes.
    pub max_bytes: u64,
    /// Rows per batch asked of the loader.
    pub batch_size: usize,
}

/// Which side of the pipeline a plugin error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The loader.
    Loader,
    /// The formatter.
    Formatter,
}

/// Why an export failed while running.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A plugin returned an error or panicked.
    #[error("{} {component} failed: {error}", match stage { Stage::Loader => "loader", Stage::Formatter => "formatter" })]
    Plugin {
        /// Which side.
        stage: Stage,
        /// `plugin/name`.
        component: String,
        /// What the plugin said (shown in the message, so not a `source`).
        error: PluginError,
    },
    /// An isolated plugin's worker failed (crashed, ran out of memory, hung),
    /// or the plugin is quarantined.
    #[error("{} {component} failed: plugin {plugin:?} {fault}", match stage { Stage::Loader => "loader", Stage::Formatter => "formatter" })]
    Fault {
        /// Which side.
        stage: Stage,
        /// `plugin/name`.
        component: String,
        /// The plugin.
        plugin: String,
        /// What happened to its worker.
        fault: Fault,
    },
    /// More rows than MAX_ROWS.
    #[error(
        "the export has more than {limit} rows (MAX_ROWS); narrow the selector or raise MAX_ROWS"
    )]
    RowLimit {
        /// The cap.
        limit: u64,
    },
    /// Bigger than MAX_FILE_SIZE_MB.
    #[error("the export is larger than {limit} bytes (MAX_FILE_SIZE_MB); narrow the selector, compress it, or raise MAX_FILE_SIZE_MB")]
    SizeLimit {
        /// The cap in bytes.
        limit: u64,
    },
    /// A plugin ran past its `timeout`.
    #[error("plugin {plugin:?} ran past its timeout of {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The plugin.
        plugin: String,
        /// Its timeout.
        timeout: Duration,
    },
    /// Writing the output failed.
    #[error("writing the output failed: {0}")]
    Output(std::io::Error),
}

impl RunError {
    /// Whether the requester can fix it by changing the request.
    pub fn is_input_error(&self) -> bool {
        matches!(self, RunError::Plugin { error, .. }
            if matches!(error.kind, ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::PermissionDenied))
    }
}

/// How far a run has come, told after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunProgress {
    /// Rows the formatter has been given.
    pub rows: u64,
    /// Bytes the formatter has written (before compression).
    pub bytes: u64,
    /// How far through its input the loader is, from 0 to 1: the latest
    /// share it told; `None` while it has told none (or cannot tell).
    pub fraction: Option<f64>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Rows exported.
    pub rows: u64,
    /// The data's schema.
    pub schema: SchemaRef,
    /// Byte counts and checksum.
    pub output: SinkSummary,
    /// Wall time from opening the loader to the last byte.
    pub elapsed: Duration,
    /// What the loader noted about the read (checked to be a small JSON
    /// object), for the export's record.
    pub loader_notes: Option<Map<String, Value>>,
    /// Whether the loader told how far through its input it was, after
    /// at least one batch.
    pub loader_told_fraction: bool,
}

/// What the loader thread hands over.
enum FromLoader {
    /// The loader is open: its schema, and how to end its worker.
    Opened(SchemaRef, Option<Killer>),
    /// One batch, and how far through its input the loader was after it.
    Batch(Batch, Option<f64>),
    /// The loader failed; nothing follows.
    Failed(CallError),
    /// The stream ended cleanly, with the loader's notes.
    End(Option<Map<String, Value>>),
}

/// What the run asks of the formatter thread.
enum ToFormatter {
    Write(Batch),
    Finish,
    FinishMore,
}

/// How long a plugin thread gets to end after its export: in-process ones
/// cannot be stopped, so they get little; an isolated one ends as soon as
/// its worker answers or is ended, within the close grace of a conversation.
fn thread_grace(in_process: bool, succeeded: bool) -> Duration {
    match (in_process, succeeded) {
        (true, true) => Duration::from_secs(2),
        (true, false) => Duration::from_millis(50),
        (false, _) => Duration::from_secs(10),
    }
}

/// Streams `export` loader -> formatter -> `sink`, calling `progress`
/// after each batch.
/// On error nothing is committed: the caller discards what the sink wrote.
///
/// The loader runs on one thread and the formatter on another; this thread
/// waits on both with the earliest plugin timeout, so an in-process plugin
/// that never returns fails its export on time (its thread is left behind).
/// A loader thread that ends without a clean end of stream fails the export.
pub fn stream_export<W: Write>(
    export: &PreparedExport,
    limits: RunLimits,
    sink: Sink<W>,
    progress: &mut dyn FnMut(RunProgress),
) -> Result<(W, RunSummary), RunError> {
    let started = Instant::now();
    let deadline = deadline(export, started);
    let loader_in_process = export.loader_plugin.handle().is_in_process();
    let formatter_in_process = export.formatter_plugin.handle().is_in_process();

    let (sender, receiver) = sync_channel::<FromLoader>(CHANNEL_BATCHES);
    let loader_thread = {
        let plugin = export.loader_plugin.clone();
        let name = export.loader.name.clone();
        let selector = export.selector_json.clone();
        let caller = export.caller.clone();
        let loader_limits = Limits {
            max_rows: limits.max_rows,
            batch_size: limits.batch_size,
        };
        // Both isolated: batches go from worker to worker as they came.
        let keep_encoded = export.formatter_plugin.handle().takes_ipc();
        PluginThread::spawn(
            "export-loader",
            &export.loader_plugin.name,
            loader_in_process,
            move |watch| {
                let opened = watch.call(|| {
                    plugin.handle().open_loader(
                        &name,
                        &plugin.config_json,
                        &selector,
                        &loader_limits,
                        caller.as_ref(),
                        plugin_deadline(&plugin, started),
                        keep_encoded,
                    )
                });
                let mut stream = match opened {
                    Ok(stream) => stream,
                    Err(err) => {
                        let _ = sender.send(FromLoader::Failed(err));
                        return;
                    }
                };
                if sender
                    .send(FromLoader::Opened(stream.schema(), stream.killer()))
                    .is_err()
                {
                    return;
                }
                loop {
                    let message = match watch.call(|| stream.next_batch()) {
                        Some(Ok(batch)) => FromLoader::Batch(batch, stream.fraction()),
                        Some(Err(err)) => FromLoader::Failed(err),
                        None => FromLoader::End(stream.notes()),
                    };
                    let last = !matches!(message, FromLoader::Batch(..));
                    // A closed channel means the export stopped: drop the stream.
                    if sender.send(message).is_err() || last {
                        break;
                    }
                }
            },
        )
        .map_err(RunError::Output)?
    };
    let mut run = Run {
        export,
        limits,
        deadline,
        receiver: Some(receiver),
        loader_killer: None,
        formatter: None,
        rows: 0,
        fraction: None,
        loader_notes: None,
    };
    let outcome = run.pump(sink, progress);
    // Let go of both threads before waiting on them: a loader blocked on a
    // full channel, or a formatter waiting for work, then ends.
    run.receiver = None;
    let formatter = run.formatter.take();
    if let Err(err) = &outcome {
        if let Some(killer) = &run.loader_killer {
            match err {
                RunError::Timeout { plugin, timeout } if *plugin == export.loader_plugin.name => {
                    killer.kill(Fault::Timeout { timeout: *timeout })
                }
                _ => killer.abandon(),
            }
        }
    }
    let succeeded = outcome.is_ok();
    if let Some(formatter) = formatter {
        drop(formatter.requests);
        formatter
            .thread
            .finish(thread_grace(formatter_in_process, succeeded));
    }
    loader_thread.finish(thread_grace(loader_in_process, succeeded));
    let (inner, output) = outcome?;
    Ok((
        inner,
        RunSummary {
            rows: run.rows,
            schema: output.1,
            output: output.0,
            elapsed: started.elapsed(),
            loader_notes: run.loader_notes.take(),
            loader_told_fraction: run.fraction.is_some(),
        },
    ))
}

/// The formatter's thread, and the way to it.
struct FormatterThread {
    requests: SyncSender<ToFormatter>,
    replies: Receiver<Result<Option<Formatted>, CallError>>,
    thread: PluginThread<()>,
}

/// One run in progress, on the caller's thread.
struct Run<'a> {
    export: &'a PreparedExport,
    limits: RunLimits,
    deadline: Option<(Instant, String, Duration)>,
    receiver: Option<Receiver<FromLoader>>,
    loader_killer: Option<Killer>,
    formatter: Option<FormatterThread>,
    rows: u64,
    /// The loader's latest share of its input read; a batch without one
    /// leaves the last one standing.
    fraction: Option<f64>,
    loader_notes: Option<Map<String, Value>>,
}

impl Run<'_> {
    fn progress(&self, bytes: u64) -> RunProgress {
        RunProgress {
            rows: self.rows,
            bytes,
            fraction: self.fraction,
        }
    }

    fn loader_error(&self, error: CallError) -> RunError {
        call_error(
            Stage::Loader,
            &self.export.loader_address(),
            &self.export.loader_plugin,
            error,
        )
    }

    fn formatter_error(&self, error: CallError) -> RunError {
        call_error(
            Stage::Formatter,
            &self.export.formatter_address(),
            &self.export.formatter_plugin,
            error,
        )
    }

    fn timed_out(&self) -> Option<RunError> {
        let (at, plugin, timeout) = self.deadline.as_ref()?;
        (Instant::now() >= *at).then(|| RunError::Timeout {
            plugin: plugin.clone(),
            timeout: *timeout,
        })
    }

    /// Waits for `receiver` until the run's deadline: `Ok(None)` when its
    /// sender is gone.
    fn wait<T>(&self, receiver: &Receiver<T>) -> Result<Option<T>, RunError> {
        match &self.deadline {
            Some((at, plugin, timeout)) => {
                let wait = at.saturating_duration_since(Instant::now());
                match receiver.recv_timeout(wait) {
                    Ok(message) => Ok(Some(message)),
                    Err(RecvTimeoutError::Disconnected) => Ok(None),
                    // The plugin may be stuck in a call; its thread is left
                    // behind, and the export fails now.
                    Err(RecvTimeoutError::Timeout) => Err(RunError::Timeout {
                        plugin: plugin.clone(),
                        timeout: *timeout,
                    }),
                }
            }
            None => Ok(receiver.recv().ok()),
        }
    }

    /// The next message from the loader thread. Its end without a clean end
    /// of stream (a panic on that thread) fails the export.
    fn next_from_loader(&self) -> Result<FromLoader, RunError> {
        let Some(receiver) = &self.receiver else {
            return Err(self.loader_stopped());
        };
        match self.wait(receiver)? {
            Some(message) => Ok(message),
            None => Err(self.loader_stopped()),
        }
    }

    fn loader_stopped(&self) -> RunError {
        self.loader_error(CallError::Plugin(PluginError::new(
            ErrorKind::Internal,
            "the host thread reading the loader stopped before the end of the data \
             (see the log for its panic); the export is incomplete and was not kept",
        )))
    }

    fn start_formatter(&mut self, schema: &SchemaRef) -> Result<(), RunError> {
        let (requests, work) = sync_channel::<ToFormatter>(1);
        let (reply, replies) = sync_channel::<Result<Option<Formatted>, CallError>>(1);
        let plugin = self.export.formatter_plugin.clone();
        let name = self.export.formatter.name.clone();
        let options = self.export.options_json.clone();
        let schema = schema.clone();
        let started_at = Instant::now();
        let thread = PluginThread::spawn(
            "export-format",
            &self.export.formatter_plugin.name,
            self.export.formatter_plugin.handle().is_in_process(),
            move |watch| {
                let session = watch.call(|| {
                    plugin.handle().start_formatter(
                        &name,
                        &plugin.config_json,
                        &options,
                        &schema,
                        plugin_deadline(&plugin, started_at),
                    )
                });
                let mut session = match session {
                    Ok(session) => session,
                    Err(err) => {
                        let _ = reply.send(Err(err));
                        return;
                    }
                };
                if reply.send(Ok(None)).is_err() {
                    return;
                }
                while let Ok(request) = work.recv() {
                    let result = watch.call(|| match request {
                        ToFormatter::Write(batch) => session.write(&batch).map(Some),
                        ToFormatter::Finish => session.finish().map(Some),
                        ToFormatter::FinishMore => session.finish_more(),
                    });
                    if reply.send(result).is_err() {
                        break;
                    }
                }
                // An unfinished session is closed here (in its worker, or by
                // the plugin's own drop), off the run's thread.
                watch.call(move || drop(session));
            },
        )
        .map_err(RunError::Output)?;
        self.formatter = Some(FormatterThread {
            requests,
            replies,
            thread,
        });
        match self.formatter_reply()? {
            None => Ok(()),
            Some(_) => Err(
                self.formatter_error(CallError::Plugin(PluginError::internal(
                    "the formatter answered its start with bytes",
                ))),
            ),
        }
    }

    /// The formatter's answer to its last request.
    fn formatter_reply(&self) -> Result<Option<Formatted>, RunError> {
        let stopped = || {
            self.formatter_error(CallError::Plugin(PluginError::new(
                ErrorKind::Internal,
                "the host thread running the formatter stopped before answering \
                 (see the log for its panic); the export is incomplete and was not kept",
            )))
        };
        let Some(formatter) = &self.formatter else {
            return Err(stopped());
        };
        match self.wait(&formatter.replies)? {
            Some(reply) => reply.map_err(|err| self.formatter_error(err)),
            None => Err(stopped()),
        }
    }

    fn ask_formatter(&self, request: ToFormatter) -> Result<Option<Formatted>, RunError> {
        if let Some(formatter) = &self.formatter {
            // If the thread is gone, its reply channel says so.
            let _ = formatter.requests.send(request);
        }
        self.formatter_reply()
    }

    #[allow(clippy::type_complexity)]
    fn pump<W: Write>(
        &mut self,
        mut sink: Sink<W>,
        progress: &mut dyn FnMut(RunProgress),
    ) -> Result<(W, (SinkSummary, SchemaRef)), RunError> {
        let schema = match self.next_from_loader()? {
            FromLoader::Opened(schema, killer) => {
                self.loader_killer = killer;
                schema
            }
            FromLoader::Failed(err) => return Err(self.loader_error(err)),
            FromLoader::Batch(..) | FromLoader::End(_) => {
                return Err(self.loader_error(CallError::Plugin(PluginError::internal(
                    "the loader sent data before its schema",
                ))))
            }
        };
        self.start_formatter(&schema)?;

        let write_out = |sink: &mut Sink<W>, bytes: &[u8]| {
            sink.write_all(bytes).map_err(|err| match size_limit(&err) {
                Some(limit) => RunError::SizeLimit { limit },
                None => RunError::Output(err),
            })
        };
        loop {
            let batch = match self.next_from_loader()? {
                FromLoader::Batch(batch, fraction) => {
                    if let Some(fraction) = fraction.filter(|f| f.is_finite()) {
                        self.fraction = Some(fraction.clamp(0.0, 1.0));
                    }
                    batch
                }
                FromLoader::End(notes) => {
                    self.loader_notes = notes;
                    break;
                }
                FromLoader::Failed(err) => return Err(self.loader_error(err)),
                FromLoader::Opened(..) => {
                    return Err(self.loader_error(CallError::Plugin(PluginError::internal(
                        "the loader opened twice",
                    ))))
                }
            };
            self.rows += batch.num_rows() as u64;
            if self.rows > self.limits.max_rows {
                return Err(RunError::RowLimit {
                    limit: self.limits.max_rows,
                });
            }
            if let Some(bytes) = self.ask_formatter(ToFormatter::Write(batch))? {
                write_out(&mut sink, &bytes)?;
            }
            progress(self.progress(sink.formatted_bytes()));
            if let Some(err) = self.timed_out() {
                return Err(err);
            }
        }
        let mut closing = self.ask_formatter(ToFormatter::Finish)?;
        while let Some(piece) = closing {
            write_out(&mut sink, &piece)?;
            progress(self.progress(sink.formatted_bytes()));
            // Dropped before the next call, so one piece at a time is held.
            drop(piece);
            closing = self.ask_formatter(ToFormatter::FinishMore)?;
        }
        let (inner, output) = sink.finish().map_err(|err| match size_limit(&err) {
            Some(limit) => RunError::SizeLimit { limit },
            None => RunError::Output(err),
        })?;
        Ok((inner, (output, schema)))
    }
}

/// The run error for a failed call into `plugin`.
fn call_error(stage: Stage, component: &str, plugin: &LoadedPlugin, error: CallError) -> RunError {
    match error {
        CallError::Plugin(error) => RunError::Plugin {
            stage,
            component: component.to_owned(),
            error,
        },
        CallError::Fault(Fault::Timeout { timeout }) => RunError::Timeout {
            plugin: plugin.name.clone(),
            timeout,
        },
        CallError::Fault(fault) => RunError::Fault {
            stage,
            component: component.to_owned(),
            plugin: plugin.name.clone(),
            fault,
        },
    }
}

/// When calls into `plugin`'s worker must answer by.
fn plugin_deadline(plugin: &LoadedPlugin, started: Instant) -> Option<Deadline> {
    plugin
        .timeout
        .map(|timeout| Deadline::after(started, timeout))
}

/// The earliest plugin timeout, as (instant, plugin, timeout).
fn deadline(export: &PreparedExport, started: Instant) -> Option<(Instant, String, Duration)> {
    [&export.loader_plugin, &export.formatter_plugin]
        .into_iter()
        .filter_map(|p| p.timeout.map(|t| (started + t, p.name.clone(), t)))
        .min_by_key(|(at, _, _)| *at)
}
