//! Size limits on what a request may store: every accepted request becomes
//! a record that lists return and the database keeps until
//! `RETENTION_DAYS`, so its parts are bounded before anything is recorded
//! (docs/operations.md lists the settings).

use super::request::{ExportRequest, RequestError};
use crate::records::json_size;
use serde_json::Value;

/// How large a request's parts may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Most bytes of the selector, as compact JSON.
    pub max_selector_bytes: usize,
    /// Most bytes of the options, as compact JSON.
    pub max_options_bytes: usize,
    /// Most bytes of `options.file_name` (a file name on every common
    /// filesystem is at most 255 bytes).
    pub max_file_name_bytes: usize,
}

impl SizeLimits {
    /// The default selector and options limit: 64 KiB each.
    pub const DEFAULT_DOCUMENT_BYTES: usize = 64 * 1024;
    /// The file name limit.
    pub const FILE_NAME_BYTES: usize = 255;

    /// Limits of `max_selector_bytes` and `max_options_bytes`
    /// (`MAX_SELECTOR_BYTES`, `MAX_OPTIONS_BYTES`) and the fixed file name
    /// limit.
    pub fn new(max_selector_bytes: usize, max_options_bytes: usize) -> SizeLimits {
        SizeLimits {
            max_selector_bytes,
            max_options_bytes,
            max_file_name_bytes: Self::FILE_NAME_BYTES,
        }
    }
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits {
            max_selector_bytes: Self::DEFAULT_DOCUMENT_BYTES,
            max_options_bytes: Self::DEFAULT_DOCUMENT_BYTES,
            max_file_name_bytes: Self::FILE_NAME_BYTES,
        }
    }
}

/// Refuses a request whose selector, options or `options.file_name` is
/// larger than `limits` allow, naming the part, its size and the limit.
pub fn check_sizes(request: &ExportRequest, limits: &SizeLimits) -> Result<(), RequestError> {
    if let Some(Value::String(name)) = request.options.get("file_name") {
        if name.len() > limits.max_file_name_bytes {
            return Err(RequestError::Invalid(format!(
                "options.file_name is {} bytes, more than the {} a file name may have; \
                 choose a shorter name",
                name.len(),
                limits.max_file_name_bytes
            )));
        }
    }
    for (part, value, limit, setting) in [
        (
            "selector",
            &request.selector,
            limits.max_selector_bytes,
            "MAX_SELECTOR_BYTES",
        ),
        (
            "options",
            &request.options,
            limits.max_options_bytes,
            "MAX_OPTIONS_BYTES",
        ),
    ] {
        let size = json_size(value).unwrap_or(usize::MAX);
        if size > limit {
            return Err(RequestError::Invalid(format!(
                "{part} is {size} bytes as JSON, more than the {limit} allowed ({setting}); \
                 send a smaller {part}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(selector: Value, options: Value) -> ExportRequest {
        ExportRequest {
            loader: "csv".to_owned(),
            format: "csv".to_owned(),
            selector,
            options,
            callback_url: None,
        }
    }

    #[test]
    fn a_long_file_name_is_refused_and_a_255_byte_one_accepted() {
        let limits = SizeLimits::default();
        let ok = request(json!({}), json!({"file_name": "a".repeat(255)}));
        assert!(check_sizes(&ok, &limits).is_ok());
        let long = request(json!({}), json!({"file_name": "a".repeat(256)}));
        let err = check_sizes(&long, &limits).unwrap_err().to_string();
        assert!(err.contains("file_name is 256 bytes"), "{err}");
    }

    #[test]
    fn large_selectors_and_options_are_refused_naming_the_part() {
        let limits = SizeLimits {
            max_selector_bytes: 100,
            max_options_bytes: 50,
            max_file_name_bytes: 255,
        };
        let big = "x".repeat(200);
        let err = check_sizes(&request(json!({ "path": big }), json!({})), &limits)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("selector is 211 bytes"), "{err}");
        let err = check_sizes(&request(json!({}), json!({ "title": big })), &limits)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("options is"), "{err}");
        assert!(check_sizes(&request(json!({"path": "a.csv"}), json!({})), &limits).is_ok());
    }
}
