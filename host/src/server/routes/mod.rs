//! The route handlers.

pub mod downloads;
pub mod events;
pub mod exports;
pub mod health;
pub mod plugins;

use super::error::ApiError;
use crate::records::ExportId;

/// Parses an export id from the path; a malformed one is a 404, like a
/// missing one.
pub(crate) fn export_id(text: &str) -> Result<ExportId, ApiError> {
    text.parse::<ExportId>().map_err(ApiError::from)
}
