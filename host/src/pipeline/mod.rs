//! The export pipeline: a request is checked against the plugins
//! ([`request`]), then streamed loader -> formatter -> [`sink`] ([`run`]),
//! which compresses on its own thread ([`compress`]) when asked.

pub mod compress;
pub mod request;
pub mod run;
pub mod sink;

pub use request::{prepare, Compression, ExportRequest, PreparedExport, RequestError};
pub use run::{run, RunError, RunLimits, RunSummary, Stage};
pub use sink::{Sink, SinkSummary};
