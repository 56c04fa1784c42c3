//! An export request, checked against the plugins before any work starts.

use crate::isolation::{CallError, Deadline};
use crate::plugins::{LoadedPlugin, Registry, ResolveError};
use export_plugin_api::{Caller, ErrorKind, FormatterManifest, LoaderManifest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a loader's validate check may take before the request is
/// recorded anyway (the run then decides).
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a user asks for: `{loader, format, selector, options}`. Any other
/// top-level field is refused (a misspelt field would otherwise be silently
/// ignored); new fields are added here by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Loader address: `name` or `plugin/name`.
    pub loader: String,
    /// Formatter address: `name` or `plugin/name`.
    pub format: String,
    /// The loader's selector.
    #[serde(default = "empty_object")]
    #[schema(value_type = HashMap<String, Value>)]
    pub selector: Value,
    /// Formatter options plus the host's `compression` and `file_name`.
    #[serde(default = "empty_object")]
    #[schema(value_type = HashMap<String, Value>)]
    pub options: Value,
    /// Where to POST the final record when the export ends (completed,
    /// failed or cancelled), signed in the `Export-Host-Signature` header.
    /// Must start with a prefix the operator allows (`WEBHOOK_ALLOW`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://hooks.example.com/exports")]
    pub callback_url: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Output compression the host applies, whatever the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// File extension added after the format's own.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "gz",
            Compression::Zstd => "zst",
        }
    }
}

/// A request whose components exist and whose documents passed their schemas.
pub struct PreparedExport {
    /// The loader's plugin.
    pub loader_plugin: Arc<LoadedPlugin>,
    /// The loader.
    pub loader: LoaderManifest,
    /// The formatter's plugin.
    pub formatter_plugin: Arc<LoadedPlugin>,
    /// The formatter.
    pub formatter: FormatterManifest,
    /// The selector as JSON text.
    pub selector_json: String,
    /// The formatter's own options as JSON text (host keys removed).
    pub options_json: String,
    /// Compression the host applies.
    pub compression: Option<Compression>,
    /// The requested download name, if any (sanitised where it is used).
    pub file_name: Option<String>,
    /// Who asked: handed to the loader, never taken from the selector.
    pub caller: Option<Caller>,
}

impl PreparedExport {
    /// `plugin/name` of the loader.
    pub fn loader_address(&self) -> String {
        format!("{}/{}", self.loader_plugin.name, self.loader.name)
    }
    /// `plugin/name` of the formatter.
    pub fn formatter_address(&self) -> String {
        format!("{}/{}", self.formatter_plugin.name, self.formatter.name)
    }

    /// Asks the loader whether it will accept the selector from the caller
    /// (`Loader::validate`, plugin-api 1.2), so a request it would certainly
    /// refuse is answered now instead of failing later. Only the loader's
    /// verdict on the input refuses; a loader that fails otherwise (a
    /// crash, a timeout) is logged and the run decides.
    pub fn validate(&self) -> Result<(), RequestError> {
        let deadline = Deadline::after(Instant::now(), VALIDATE_TIMEOUT);
        let outcome = self.loader_plugin.handle().validate_loader(
            &self.loader.name,
            &self.loader_plugin.config_json,
            &self.selector_json,
            self.caller.as_ref(),
            Some(deadline),
        );
        match outcome {
            Ok(()) => Ok(()),
            Err(CallError::Plugin(error))
                if matches!(
                    error.kind,
                    ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::PermissionDenied
                ) =>
            {
                Err(RequestError::Refused {
                    loader: self.loader_address(),
                    message: error.message,
                })
            }
            Err(other) => {
                tracing::warn!(loader = %self.loader_address(), error = %other, "the loader's validate check failed; the run decides");
                Ok(())
            }
        }
    }
}

/// Why a request was refused before it ran. Always the requester's to fix.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Unknown or ambiguous component.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A document failed its schema or has the wrong shape.
    #[error("{0}")]
    Invalid(String),
    /// The loader refused the selector for this caller.
    #[error("{loader}: {message}")]
    Refused {
        /// `plugin/name` of the loader.
        loader: String,
        /// What the loader said.
        message: String,
    },
}

/// Resolves the components and validates the selector and options against
/// their schemas; the loader will run for `caller`.
pub fn prepare(
    registry: &Registry,
    request: &ExportRequest,
    caller: Option<Caller>,
) -> Result<PreparedExport, RequestError> {
    let loader = registry.loader(&request.loader)?;
    let formatter = registry.formatter(&request.format)?;
    if !request.selector.is_object() {
        return Err(RequestError::Invalid(format!(
            "selector must be a JSON object, not {}",
            request.selector
        )));
    }
    let Value::Object(mut options) = request.options.clone() else {
        return Err(RequestError::Invalid(format!(
            "options must be a JSON object, not {}",
            request.options
        )));
    };
    let compression = match options.remove("compression") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            serde_json::from_value::<Compression>(value.clone()).map_err(|_| {
                RequestError::Invalid(format!(
                    "options.compression = {value} is not supported; use \"gzip\" or \"zstd\""
                ))
            })?,
        ),
    };
    let file_name = match options.remove("file_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(other) => {
            return Err(RequestError::Invalid(format!(
                "options.file_name must be a string, not {other}"
            )))
        }
    };
    let options = Value::Object(options);
    if let Some(schema) = loader.plugin.selector_schema(&loader.manifest.name) {
        schema
            .check("selector", &request.selector)
            .map_err(|err| RequestError::Invalid(err.to_string()))?;
    }
    if let Some(schema) = formatter.plugin.options_schema(&formatter.manifest.name) {
        schema
            .check("options", &options)
            .map_err(|err| RequestError::Invalid(err.to_string()))?;
    }
    Ok(PreparedExport {
        loader_plugin: loader.plugin.clone(),
        loader: loader.manifest.clone(),
        formatter_plugin: formatter.plugin.clone(),
        formatter: formatter.manifest.clone(),
        selector_json: request.selector.to_string(),
        options_json: options.to_string(),
        compression,
        file_name,
        caller,
    })
}
