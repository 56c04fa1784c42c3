//! The config file: which one, reading and parsing it, and refusing keys
//! that are no setting.

use super::{Origin, Setting, SettingError, SettingsArgs, CONFIG_ENV};
use std::path::{Path, PathBuf};

/// The config file to read, if any, and where its name came from:
/// `--config` over `EXPORT_HOST_CONFIG` (empty counts as unset).
pub fn config_path(
    args: &SettingsArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(PathBuf, Origin)> {
    if let Some(path) = &args.config {
        return Some((path.clone(), Origin::Flag("--config".to_owned())));
    }
    env(CONFIG_ENV)
        .filter(|v| !v.trim().is_empty())
        .map(|v| (PathBuf::from(v), Origin::Env(CONFIG_ENV.to_owned())))
}

/// Reads and parses a config file (keys are checked by [`resolve`](super::resolve)).
pub fn load_config_file(path: &Path, origin: Origin) -> Result<toml::Table, SettingError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingError::ReadFile {
        path: path.to_path_buf(),
        origin,
        source,
    })?;
    parse_config(&text, path)
}

/// Parses config-file text (`path` is for messages).
pub fn parse_config(text: &str, path: &Path) -> Result<toml::Table, SettingError> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let line = text
                    .get(..span.start)
                    .map_or(0, |head| head.matches('\n').count())
                    + 1;
                format!(" at line {line}")
            })
            .unwrap_or_default();
        SettingError::ParseFile {
            path: path.to_path_buf(),
            at,
            message: one_line(e.message()),
        }
    })
}

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks that every key of the config file is a setting.
pub(super) fn check_keys(table: &toml::Table, file: &str) -> Result<(), SettingError> {
    let valid: Vec<String> = Setting::ALL.iter().map(|s| s.key()).collect();
    for key in table.keys() {
        if valid.iter().any(|v| v == key) {
            continue;
        }
        let lower = key.to_ascii_lowercase().replace('-', "_");
        let lower = lower.strip_prefix("export_host_").unwrap_or(&lower);
        let guess = valid.iter().find(|v| v.as_str() == lower).or_else(|| {
            valid
                .iter()
                .map(|v| (strsim::levenshtein(v, lower), v))
                .filter(|(d, _)| *d <= 2)
                .min_by_key(|(d, _)| *d)
                .map(|(_, v)| v)
        });
        return Err(SettingError::UnknownKey {
            key: key.clone(),
            file: file.to_owned(),
            hint: guess
                .map(|g| format!(" (did you mean {g:?}?)"))
                .unwrap_or_default(),
            valid: valid.join(", "),
        });
    }
    Ok(())
}
