//! Errors cross the plugin boundary as values: a [`ErrorKind`] and a message.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What went wrong, coarse enough to be stable across plugin-api versions.
///
/// The host maps kinds onto user-facing outcomes (e.g. `InvalidInput` becomes
/// an HTTP 400), so pick the kind that tells the user whose fault it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request (selector, options, config) is wrong: the user can fix it.
    InvalidInput,
    /// Something the request names does not exist.
    NotFound,
    /// The request names something it may not reach (e.g. a path outside the root).
    PermissionDenied,
    /// Reading or writing failed.
    Io,
    /// A configured limit was passed.
    LimitExceeded,
    /// The plugin does not support what was asked (e.g. a column type).
    Unsupported,
    /// The plugin panicked; the SDK caught it.
    Panic,
    /// A bug or an unexpected state inside the plugin.
    Internal,
}

impl ErrorKind {
    /// The stable numeric code used on the wire.
    pub fn code(self) -> u32 {
        match self {
            ErrorKind::InvalidInput => 1,
            ErrorKind::NotFound => 2,
            ErrorKind::PermissionDenied => 3,
            ErrorKind::Io => 4,
            ErrorKind::LimitExceeded => 5,
            ErrorKind::Unsupported => 6,
            ErrorKind::Panic => 7,
            ErrorKind::Internal => 8,
        }
    }

    /// The kind for a wire code; unknown codes (from a newer plugin) read as `Internal`.
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => ErrorKind::InvalidInput,
            2 => ErrorKind::NotFound,
            3 => ErrorKind::PermissionDenied,
            4 => ErrorKind::Io,
            5 => ErrorKind::LimitExceeded,
            6 => ErrorKind::Unsupported,
            7 => ErrorKind::Panic,
            _ => ErrorKind::Internal,
        }
    }

    /// A short lowercase name, as used in logs and API errors.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Io => "io",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Panic => "panic",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error every plugin entry point returns.
///
/// The message is shown to the person who asked for the export: say what was
/// wrong and what to do, e.g. `"column \"price\" not found; the file has: id, name"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// A message for a person.
    pub message: String,
}

impl PluginError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
        }
    }
    /// The request is wrong; the message says which field and why.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// Something named by the request does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// The request reaches outside what it may.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
    /// Reading or writing failed.
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }
    /// A limit was passed.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceeded, message)
    }
    /// Not supported by this plugin.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    /// A bug or unexpected state.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Prefixes the message with context, keeping the kind.
    pub fn context(self, context: impl fmt::Display) -> Self {
        PluginError {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl From<std::io::Error> for PluginError {
    fn from(err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Io,
        };
        PluginError::new(kind, err.to_string())
    }
}

impl From<arrow_schema::ArrowError> for PluginError {
    fn from(err: arrow_schema::ArrowError) -> Self {
        PluginError::internal(err.to_string())
    }
}

/// Shorthand for results in plugin code.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;
