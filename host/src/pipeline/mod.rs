//! The export pipeline: a request is checked against the plugins
//! ([`request`]), then streamed loader -> formatter -> [`sink`] ([`run`]),
//! which compresses on its own thread ([`compress`]) when asked; callers
//! put their output writer on a thread of its own too ([`write_behind`]).

pub mod compress;
pub mod request;
pub mod run;
pub mod sink;
#[cfg(test)]
mod test_writers;
pub mod write_behind;

pub use request::{prepare, Compression, ExportRequest, PreparedExport, RequestError};
pub use run::{run, RunError, RunLimits, RunSummary, Stage};
pub use sink::{Sink, SinkSummary};
pub use write_behind::WriteBehind;
