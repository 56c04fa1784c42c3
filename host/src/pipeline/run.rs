//! Running one export: loader stream -> formatter -> sink.
//!
//! The loader is pulled on its own thread and the formatter runs on the
//! caller's, joined by a small bounded channel: parsing and formatting use
//! both cores, and at most a few batches are ever in memory.

use super::request::PreparedExport;
use super::sink::{size_limit, Sink, SinkSummary};
use crate::isolation::{Batch, CallError, Deadline, Fault};
use crate::plugins::LoadedPlugin;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::{ErrorKind, Limits, PluginError};
use std::io::Write;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
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
}

/// Runs `export` into `sink`, calling `progress(rows, bytes)` after each batch.
/// On error nothing is committed: the caller discards what the sink wrote.
pub fn run<W: Write>(
    export: &PreparedExport,
    limits: RunLimits,
    mut sink: Sink<W>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(W, RunSummary), RunError> {
    let started = Instant::now();
    let loader_address = export.loader_address();
    let formatter_address = export.formatter_address();
    let loader_error =
        |error| call_error(Stage::Loader, &loader_address, &export.loader_plugin, error);
    let formatter_error = |error| {
        call_error(
            Stage::Formatter,
            &formatter_address,
            &export.formatter_plugin,
            error,
        )
    };
    let deadline = deadline(export, started);

    let mut stream = export
        .loader_plugin
        .handle()
        .open_loader(
            &export.loader.name,
            &export.loader_plugin.config_json,
            &export.selector_json,
            &Limits {
                max_rows: limits.max_rows,
                batch_size: limits.batch_size,
            },
            plugin_deadline(&export.loader_plugin, started),
            // Both isolated: batches go from worker to worker as they came.
            export.formatter_plugin.handle().takes_ipc(),
        )
        .map_err(loader_error)?;
    let schema = stream.schema();
    let mut formatter = export
        .formatter_plugin
        .handle()
        .start_formatter(
            &export.formatter.name,
            &export.formatter_plugin.config_json,
            &export.options_json,
            &schema,
            plugin_deadline(&export.formatter_plugin, started),
        )
        .map_err(formatter_error)?;

    // The loader's worker, if isolated: ended when the run gives up on it.
    let loader_killer = stream.killer();
    let (sender, receiver) = sync_channel::<Result<Batch, CallError>>(CHANNEL_BATCHES);
    let loader_thread = std::thread::Builder::new()
        .name("export-loader".to_owned())
        .spawn(move || {
            while let Some(batch) = stream.next_batch() {
                let failed = batch.is_err();
                // A closed channel means the export stopped: drop the stream.
                if sender.send(batch).is_err() || failed {
                    break;
                }
            }
        })
        .map_err(RunError::Output)?;
    let give_up_on_loader = |err: RunError| -> RunError {
        if let Some(killer) = &loader_killer {
            match &err {
                RunError::Timeout { plugin, timeout } if *plugin == export.loader_plugin.name => {
                    killer.kill(Fault::Timeout { timeout: *timeout })
                }
                _ => killer.abandon(),
            }
        }
        err
    };

    let write_out = |sink: &mut Sink<W>, bytes: &[u8]| {
        sink.write_all(bytes).map_err(|err| match size_limit(&err) {
            Some(limit) => RunError::SizeLimit { limit },
            None => RunError::Output(err),
        })
    };

    let mut rows: u64 = 0;
    let mut pump = || -> Result<(), RunError> {
        loop {
            let next = match &deadline {
                Some((at, plugin, timeout)) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    match receiver.recv_timeout(wait) {
                        Ok(batch) => Some(batch),
                        Err(RecvTimeoutError::Disconnected) => None,
                        Err(RecvTimeoutError::Timeout) => {
                            // The loader thread may be stuck inside the plugin; it is
                            // left behind, and the export fails now.
                            return Err(RunError::Timeout {
                                plugin: plugin.clone(),
                                timeout: *timeout,
                            });
                        }
                    }
                }
                None => receiver.recv().ok(),
            };
            let Some(batch) = next else { break };
            let batch = batch.map_err(loader_error)?;
            rows += batch.num_rows() as u64;
            if rows > limits.max_rows {
                return Err(RunError::RowLimit {
                    limit: limits.max_rows,
                });
            }
            let bytes = formatter.write(&batch).map_err(formatter_error)?;
            write_out(&mut sink, &bytes)?;
            progress(rows, sink.formatted_bytes());
            if let Some((at, plugin, timeout)) = &deadline {
                if Instant::now() > *at {
                    return Err(RunError::Timeout {
                        plugin: plugin.clone(),
                        timeout: *timeout,
                    });
                }
            }
        }
        Ok(())
    };
    pump().map_err(give_up_on_loader)?;
    // The loader has finished (its side of the channel closed).
    let _ = loader_thread.join();
    let mut closing = Some(formatter.finish().map_err(formatter_error)?);
    while let Some(piece) = closing {
        write_out(&mut sink, &piece)?;
        progress(rows, sink.formatted_bytes());
        // Dropped before the next call, so one piece at a time is held.
        drop(piece);
        closing = formatter.finish_more().map_err(formatter_error)?;
    }
    let (inner, output) = sink.finish().map_err(|err| match size_limit(&err) {
        Some(limit) => RunError::SizeLimit { limit },
        None => RunError::Output(err),
    })?;
    Ok((
        inner,
        RunSummary {
            rows,
            schema,
            output,
            elapsed: started.elapsed(),
        },
    ))
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
