//! API errors: `{"error": {"code", "message"}}` with an HTTP status code,
//! mapped from the typed service, records and storage errors.

use crate::records::RecordError;
use crate::service::ServiceError;
use crate::storage::StorageError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status code.
    pub status: StatusCode,
    /// A stable machine-readable code (`not_found`, `invalid_request`, ...).
    pub code: &'static str,
    /// What was wrong and what to do, for people.
    pub message: String,
    /// A `Retry-After` header, in seconds: the same request is worth
    /// sending again after that long.
    pub retry_after: Option<u32>,
}

/// How long a client is asked to wait before asking again for a plugin
/// still loading.
pub const PLUGIN_LOADING_RETRY_AFTER: u32 = 5;

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with a `Retry-After: seconds` header.
    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// 400: the request is wrong; the message names the field.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: no usable token.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the credential is valid but may not do this; the message says
    /// what it may do.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 415: a body that is not JSON where JSON is expected.
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 404 for an export id: missing and not yours look the same.
    pub fn export_not_found(id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("export {id} not found"),
        )
    }

    /// 503: the daemon is not ready or a dependency is down.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: a fault of the host; details are in its log.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"export-host\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<RecordError> for ApiError {
    fn from(err: RecordError) -> ApiError {
        match &err {
            RecordError::NotFound { id } => ApiError::export_not_found(id),
            RecordError::IllegalTransition { .. }
            | RecordError::Conflict { .. }
            | RecordError::LeaseLost { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            RecordError::InvalidCursor { .. } | RecordError::InvalidInput { .. } => {
                ApiError::bad_request(err.to_string())
            }
            RecordError::Database(_)
            | RecordError::DirectRead { .. }
            | RecordError::Io { .. }
            | RecordError::NotWritable { .. }
            | RecordError::FileGone { .. } => {
                tracing::warn!(error = %err, "database error while answering a request");
                ApiError::unavailable(format!(
                    "the database is unreachable or failing ({}); try again later",
                    crate::records::health::fault_hint(&err)
                ))
            }
            RecordError::UnsupportedUrl { .. }
            | RecordError::Migrate(_)
            | RecordError::Corrupt { .. } => {
                tracing::error!(error = %err, "records error while answering a request");
                ApiError::internal("the host failed reading its records; see its log")
            }
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> ApiError {
        if err.is_not_found() {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the export's file is gone (expired or deleted)",
            );
        }
        tracing::warn!(error = %err, "storage error while answering a request");
        ApiError::unavailable("the export storage is failing; try again later")
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        match err {
            ServiceError::Invalid(message) => ApiError::bad_request(message),
            err @ (ServiceError::QuotaExceeded { .. } | ServiceError::StoredLimit { .. }) => {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quota_exceeded",
                    err.to_string(),
                )
            }
            ServiceError::PluginLoading(message) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "plugin_loading", message)
                    .retry_after(PLUGIN_LOADING_RETRY_AFTER)
            }
            ServiceError::Records(err) => err.into(),
            ServiceError::Storage(err) => err.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_request",
        };
        let status = match status {
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => status,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(
            status,
            code,
            format!("the request body: {}", rejection.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(format!("the query string: {}", rejection.body_text()))
    }
}

/// The body of every error answer (for the OpenAPI document).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `invalid_request`, `unauthorized`, `not_found`,
    /// `conflict`, `too_large`, `quota_exceeded`, `unavailable`,
    /// `plugin_loading` (503 with `Retry-After`), ...
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
}
