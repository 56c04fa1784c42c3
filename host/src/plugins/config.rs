//! `plugins.toml`: which plugin libraries to load and how.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Loaded into the host process: fastest; a crash takes the host down.
    #[default]
    InProcess,
    /// In a child worker process.
    Process,
}

impl Isolation {
    /// The spelling used in plugins.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::InProcess => "in-process",
            Isolation::Process => "process",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    dir: Option<PathBuf>,
    #[serde(default)]
    discover: bool,
    #[serde(default)]
    plugins: BTreeMap<String, RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    library: PathBuf,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    sha256: Option<String>,
    #[serde(default)]
    isolation: Isolation,
    timeout: Option<String>,
    memory_limit: Option<String>,
    max_workers: Option<usize>,
    idle_timeout: Option<String>,
    quarantine_after: Option<u32>,
    quarantine_window: Option<String>,
    #[serde(default)]
    config: toml::Table,
}

fn enabled_by_default() -> bool {
    true
}

/// One `[plugins.NAME]` table, with paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEntry {
    /// The table's name: how requests address the plugin (`NAME/component`).
    pub name: String,
    /// Absolute path of the library.
    pub library: PathBuf,
    /// Whether to load it.
    pub enabled: bool,
    /// Lowercase hex SHA-256 the file must have, when pinned.
    pub sha256: Option<String>,
    /// How it runs.
    pub isolation: Isolation,
    /// Wall-clock cap on one export's work in this plugin.
    pub timeout: Option<Duration>,
    /// How its worker processes run, when `isolation = "process"`.
    pub worker: WorkerSettings,
    /// The `[config]` table as JSON.
    pub config: serde_json::Value,
}

/// The keys of a `[plugins.NAME]` table that shape its worker processes
/// (they apply with `isolation = "process"` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// `memory_limit`: the address-space cap (RLIMIT_AS) of each worker, in bytes.
    pub memory_limit: u64,
    /// `max_workers`: the most workers of the plugin alive at once.
    pub max_workers: usize,
    /// `idle_timeout`: a worker unused this long is ended.
    pub idle_timeout: Duration,
    /// `quarantine_after`: this many worker crashes within `quarantine_window`
    /// quarantine the plugin.
    pub quarantine_after: u32,
    /// `quarantine_window`: how far back crashes count, and so how long a
    /// quarantine lasts after the last of them.
    pub quarantine_window: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            memory_limit: 2 << 30,
            max_workers: 4,
            idle_timeout: Duration::from_secs(60),
            quarantine_after: 3,
            quarantine_window: Duration::from_secs(600),
        }
    }
}

impl WorkerSettings {
    /// Reads the worker keys of `[plugins.NAME]`; the error names the key.
    fn parse(name: &str, raw: &RawEntry) -> Result<WorkerSettings, String> {
        let defaults = WorkerSettings::default();
        let duration = |key: &str, text: &Option<String>, default: Duration| {
            match text {
            None => Ok(default),
            Some(text) => humantime::parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("[plugins.{name}] {key} = {text:?} is not a duration above zero; write e.g. \"30s\" or \"10m\"")
                }),
        }
        };
        let memory_limit = match &raw.memory_limit {
            None => defaults.memory_limit,
            Some(text) => text
                .parse::<bytesize::ByteSize>()
                .ok()
                .map(|size| size.as_u64())
                .filter(|bytes| *bytes >= 16 << 20)
                .ok_or_else(|| {
                    format!("[plugins.{name}] memory_limit = {text:?} is not a size of at least 16 MiB; write e.g. \"512MiB\" or \"2GiB\"")
                })?,
        };
        let positive = |key: &str, value: Option<u64>, default: u64| match value {
            None => Ok(default),
            Some(0) => Err(format!(
                "[plugins.{name}] {key} = 0 is not allowed; give 1 or more"
            )),
            Some(n) => Ok(n),
        };
        Ok(WorkerSettings {
            memory_limit,
            max_workers: positive(
                "max_workers",
                raw.max_workers.map(|n| n as u64),
                defaults.max_workers as u64,
            )? as usize,
            idle_timeout: duration("idle_timeout", &raw.idle_timeout, defaults.idle_timeout)?,
            quarantine_after: positive(
                "quarantine_after",
                raw.quarantine_after.map(u64::from),
                u64::from(defaults.quarantine_after),
            )? as u32,
            quarantine_window: duration(
                "quarantine_window",
                &raw.quarantine_window,
                defaults.quarantine_window,
            )?,
        })
    }
}

/// A parsed `plugins.toml`.
#[derive(Debug, Clone)]
pub struct PluginsConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Absolute folder of plugin libraries.
    pub dir: PathBuf,
    /// Also load every library in `dir` no entry names.
    pub discover: bool,
    /// The entries, by name.
    pub entries: Vec<PluginEntry>,
}

/// Why plugins.toml could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read plugin registry {path}: {error}; set EXPORT_HOST_PLUGINS or --plugins to a plugins.toml")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (shown in the message, so not a `source`).
        error: std::io::Error,
    },
    /// The file is not valid.
    #[error("plugin registry {path} is invalid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line when known.
        message: String,
    },
}

impl PluginsConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as if read from `path` (relative paths resolve against its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|err| invalid(one_line(&err)))?;
        let base = absolute(path.parent().unwrap_or(Path::new(".")));
        let dir = match raw.dir {
            Some(dir) => base.join(dir),
            None => base.clone(),
        };
        let mut entries = Vec::with_capacity(raw.plugins.len());
        for (name, entry) in raw.plugins {
            if !valid_name(&name) {
                return Err(invalid(format!(
                    "plugin name {name:?} is not allowed; use lowercase letters, digits, '-' and '_'"
                )));
            }
            let worker = WorkerSettings::parse(&name, &entry).map_err(invalid)?;
            let sha256 = match entry.sha256 {
                Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Some(hash.to_ascii_lowercase())
                }
                Some(hash) => {
                    return Err(invalid(format!(
                        "[plugins.{name}] sha256 = {hash:?} is not a SHA-256 digest; give 64 hex digits (sha256sum FILE)"
                    )))
                }
                None => None,
            };
            let timeout = match &entry.timeout {
                Some(text) => Some(humantime::parse_duration(text).map_err(|err| {
                    invalid(format!(
                        "[plugins.{name}] timeout = {text:?} is not a duration ({err}); write e.g. \"30s\" or \"10m\""
                    ))
                })?),
                None => None,
            };
            let config = serde_json::to_value(&entry.config).map_err(|err| {
                invalid(format!(
                    "[plugins.{name}.config] cannot be represented as JSON: {err}"
                ))
            })?;
            entries.push(PluginEntry {
                library: dir.join(&entry.library),
                name,
                enabled: entry.enabled,
                sha256,
                isolation: entry.isolation,
                timeout,
                worker,
                config,
            });
        }
        Ok(PluginsConfig {
            path: path.to_owned(),
            dir,
            discover: raw.discover,
            entries,
        })
    }
}

fn one_line(err: &toml::de::Error) -> String {
    err.to_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn absolute(path: &Path) -> PathBuf {
    // `Path::new("plugins.toml").parent()` is "", which `absolute` refuses.
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Plugin names appear in addresses (`name/component`) and file names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let config = PluginsConfig::parse(
            Path::new("/etc/export-host/plugins.toml"),
            r#"
            dir = "lib"
            [plugins.csv]
            library = "libexport_csv.so"
            sha256 = "9F2C000000000000000000000000000000000000000000000000000000000000"
            timeout = "10m"
            [plugins.csv.config]
            root = "examples/data"
            "#,
        )
        .unwrap();
        assert_eq!(config.dir, Path::new("/etc/export-host/lib"));
        let csv = &config.entries[0];
        assert_eq!(
            csv.library,
            Path::new("/etc/export-host/lib/libexport_csv.so")
        );
        assert!(csv.enabled);
        assert_eq!(csv.isolation, Isolation::InProcess);
        assert_eq!(csv.timeout, Some(Duration::from_secs(600)));
        assert!(csv.sha256.as_deref().unwrap().starts_with("9f2c"));
        assert_eq!(csv.config["root"], "examples/data");
    }

    #[test]
    fn refuses_bad_values_with_the_field_named() {
        let bad = [
            (
                "[plugins.x]\nlibrary = \"a.so\"\ntimeout = \"soon\"",
                "timeout",
            ),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nsha256 = \"abc\"",
                "sha256",
            ),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nisolation = \"vm\"",
                "isolation",
            ),
            ("[plugins.x]\nlibrary = \"a.so\"\nlibary = \"b\"", "libary"),
            ("[plugins.Bad]\nlibrary = \"a.so\"", "Bad"),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nmemory_limit = \"lots\"",
                "memory_limit",
            ),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nmemory_limit = \"1KiB\"",
                "memory_limit",
            ),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nmax_workers = 0",
                "max_workers",
            ),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nquarantine_window = \"0s\"",
                "quarantine_window",
            ),
        ];
        for (text, needle) in bad {
            let err = PluginsConfig::parse(Path::new("p.toml"), text).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn reads_the_worker_keys() {
        let config = PluginsConfig::parse(
            Path::new("p.toml"),
            "[plugins.x]\nlibrary = \"a.so\"\nisolation = \"process\"\nmemory_limit = \"512MiB\"\nmax_workers = 2\nidle_timeout = \"5s\"\nquarantine_after = 5\nquarantine_window = \"1h\"",
        )
        .unwrap();
        let entry = &config.entries[0];
        assert_eq!(entry.isolation, Isolation::Process);
        assert_eq!(
            entry.worker,
            WorkerSettings {
                memory_limit: 512 << 20,
                max_workers: 2,
                idle_timeout: Duration::from_secs(5),
                quarantine_after: 5,
                quarantine_window: Duration::from_secs(3600),
            }
        );
        let plain =
            PluginsConfig::parse(Path::new("p.toml"), "[plugins.x]\nlibrary = \"a.so\"").unwrap();
        assert_eq!(plain.entries[0].worker, WorkerSettings::default());
    }
}
