//! Where a value came from, and the one-line errors of a bad setting.

use super::{Setting, STATE_DIRECTORY_ENV};
use std::fmt;
use std::path::PathBuf;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--max-rows`.
    Flag(String),
    /// An environment variable, e.g. `EXPORT_HOST_MAX_ROWS`.
    Env(String),
    /// A key of the config file.
    File {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The key, e.g. `max_rows`.
        key: String,
    },
    /// `$STATE_DIRECTORY` (systemd), the default `DATA_DIR`.
    StateDirectory,
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(var) => f.write_str(var),
            Origin::File {
                path: Some(path),
                key,
            } => write!(f, "{key} in {}", path.display()),
            Origin::File { path: None, key } => write!(f, "{key} in the config file"),
            Origin::StateDirectory => f.write_str(STATE_DIRECTORY_ENV),
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// Why the settings could not be resolved. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// A value that is not accepted.
    #[error("invalid setting {setting}={value} (from {origin}): {expected}")]
    Invalid {
        /// The setting.
        setting: Setting,
        /// The value, quoted (secrets and passwords redacted).
        value: String,
        /// Where it came from.
        origin: Origin,
        /// What is accepted.
        expected: String,
    },
    /// A key of the config file that is not a setting.
    #[error("unknown setting {key:?} in config file {file}{hint}; valid settings: {valid}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        file: String,
        /// ` (did you mean "max_rows"?)` or empty.
        hint: String,
        /// The valid keys, comma-separated.
        valid: String,
    },
    /// An environment variable that is set but not UTF-8.
    #[error("environment variable {var} is not valid UTF-8; set it to UTF-8 text or unset it")]
    NotUtf8 {
        /// The variable.
        var: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {} (from {origin}): {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {} is not valid TOML{at}: {message}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// ` at line N` or empty.
        at: String,
        /// The parser's message (one line).
        message: String,
    },
}
