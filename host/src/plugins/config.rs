//! `plugins.toml`: which plugin libraries to load and how.

pub use crate::isolation::sandbox::SandboxLevel;
pub use crate::isolation::settings::{Isolation, SandboxGrants, WorkerSettings, DEFAULT_MAX_FRAME};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    dir: Option<PathBuf>,
    #[serde(default)]
    discover: bool,
    #[serde(default)]
    sandbox_minimum: SandboxLevel,
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
    load_timeout: Option<String>,
    memory_limit: Option<String>,
    max_workers: Option<usize>,
    idle_timeout: Option<String>,
    quarantine_after: Option<u32>,
    quarantine_window: Option<String>,
    quarantine_users: Option<u32>,
    max_frame: Option<String>,
    #[serde(default)]
    network: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    config: toml::Table,
}

fn enabled_by_default() -> bool {
    true
}

/// How long loading one plugin may take unless its table sets `load_timeout`.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The `[config]` keys the host treats as file paths: a relative value is
/// resolved against the folder of plugins.toml before the plugin sees it,
/// so a registry means the same wherever the daemon starts. `database`
/// counts only as `sqlite://PATH` (or `sqlite:PATH`).
pub const PATH_KEYS: [&str; 3] = ["root", "templates_dir", "fonts_dir"];

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
    /// `load_timeout`: how long loading it (in a probe process, or its
    /// first worker) may take before it is refused.
    pub load_timeout: Duration,
    /// How its worker processes run, when `isolation = "process"`.
    pub worker: WorkerSettings,
    /// The `[config]` table as JSON.
    pub config: serde_json::Value,
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
            quarantine_users: positive(
                "quarantine_users",
                raw.quarantine_users.map(u64::from),
                u64::from(defaults.quarantine_users),
            )? as u32,
            max_frame: match &raw.max_frame {
                None => defaults.max_frame,
                Some(text) => text
                    .parse::<bytesize::ByteSize>()
                    .ok()
                    .map(|size| size.as_u64())
                    .filter(|bytes| *bytes >= 1 << 20)
                    .ok_or_else(|| {
                        format!("[plugins.{name}] max_frame = {text:?} is not a size of at least 1 MiB; write e.g. \"256MiB\"")
                    })?,
            },
            sandbox: SandboxGrants {
                network: raw
                    .network
                    .iter()
                    .map(|address| check_network_grant(name, address))
                    .collect::<Result<_, _>>()?,
                env: raw
                    .env
                    .iter()
                    .map(|variable| check_env_grant(name, variable))
                    .collect::<Result<_, _>>()?,
                read: Vec::new(),
                minimum: SandboxLevel::None,
            },
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
            let mut worker = WorkerSettings::parse(&name, &entry).map_err(invalid)?;
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
            let load_timeout = match &entry.load_timeout {
                None => DEFAULT_LOAD_TIMEOUT,
                Some(text) => humantime::parse_duration(text)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        invalid(format!(
                            "[plugins.{name}] load_timeout = {text:?} is not a duration above zero; write e.g. \"30s\""
                        ))
                    })?,
            };
            let mut config = serde_json::to_value(&entry.config).map_err(|err| {
                invalid(format!(
                    "[plugins.{name}.config] cannot be represented as JSON: {err}"
                ))
            })?;
            resolve_config_paths(&base, &mut config);
            worker.sandbox.read = config_reads(&config);
            worker.sandbox.minimum = raw.sandbox_minimum;
            entries.push(PluginEntry {
                library: dir.join(&entry.library),
                name,
                enabled: entry.enabled,
                sha256,
                isolation: entry.isolation,
                timeout,
                load_timeout,
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

/// `network = ["host:port"]`: a host and a TCP port (1-65535).
fn check_network_grant(name: &str, address: &str) -> Result<String, String> {
    let port = address
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|port| *port > 0);
    match port {
        Some(_) => Ok(address.to_owned()),
        None => Err(format!(
            "[plugins.{name}] network entry {address:?} is not HOST:PORT; write e.g. \"db.internal:5432\" or \"127.0.0.1:5432\""
        )),
    }
}

/// `env = ["NAME"]`: a plain variable name.
fn check_env_grant(name: &str, variable: &str) -> Result<String, String> {
    let valid = !variable.is_empty()
        && !variable.starts_with(|c: char| c.is_ascii_digit())
        && variable
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(variable.to_owned())
    } else {
        Err(format!(
            "[plugins.{name}] env entry {variable:?} is not an environment variable name; write e.g. \"PGPASSWORD\""
        ))
    }
}

/// The files and folders a (resolved) `[config]` table names, which its
/// sandboxed workers may read: [`PATH_KEYS`] and a `sqlite://` database.
/// A root holding `{user}` grants the folder above the first part that does.
fn config_reads(config: &serde_json::Value) -> Vec<PathBuf> {
    let Some(table) = config.as_object() else {
        return Vec::new();
    };
    let mut reads = Vec::new();
    for key in PATH_KEYS {
        if let Some(serde_json::Value::String(path)) = table.get(key) {
            if path.is_empty() {
                continue;
            }
            let mut granted = PathBuf::new();
            for part in Path::new(path).components() {
                if part.as_os_str().to_string_lossy().contains("{user}") {
                    break;
                }
                granted.push(part);
            }
            if granted.as_os_str().is_empty() {
                granted = absolute(Path::new("."));
            }
            reads.push(absolute(&granted));
        }
    }
    if let Some(serde_json::Value::String(database)) = table.get("database") {
        let file = database
            .strip_prefix("sqlite://")
            .or_else(|| database.strip_prefix("sqlite:"))
            .map(|rest| rest.split('?').next().unwrap_or(rest))
            .filter(|file| !file.is_empty() && !file.contains(":memory:"));
        if let Some(file) = file {
            reads.push(absolute(Path::new(file)));
        }
    }
    reads
}

/// Makes the relative paths of a `[config]` table ([`PATH_KEYS`] and a
/// `sqlite://` `database`, at its top level) absolute from `base`, the
/// folder of plugins.toml. Other keys are the plugin's business.
fn resolve_config_paths(base: &Path, config: &mut serde_json::Value) {
    let Some(table) = config.as_object_mut() else {
        return;
    };
    for key in PATH_KEYS {
        if let Some(serde_json::Value::String(path)) = table.get_mut(key) {
            if !path.is_empty() && Path::new(path.as_str()).is_relative() {
                *path = base.join(path.as_str()).to_string_lossy().into_owned();
            }
        }
    }
    if let Some(serde_json::Value::String(database)) = table.get_mut("database") {
        if database.contains(":memory:") {
            return;
        }
        let rest = database
            .strip_prefix("sqlite://")
            .or_else(|| database.strip_prefix("sqlite:"));
        if let Some(rest) = rest {
            if !rest.is_empty() && Path::new(rest).is_relative() {
                *database = format!("sqlite://{}", base.join(rest).to_string_lossy());
            }
        }
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
        // Isolated unless the table says otherwise.
        assert_eq!(csv.isolation, Isolation::Process);
        assert_eq!(
            csv.worker.sandbox.read,
            [Path::new("/etc/export-host/examples/data")]
        );
        assert_eq!(csv.timeout, Some(Duration::from_secs(600)));
        assert!(csv.sha256.as_deref().unwrap().starts_with("9f2c"));
        assert_eq!(csv.config["root"], "/etc/export-host/examples/data");
        assert_eq!(csv.load_timeout, DEFAULT_LOAD_TIMEOUT);
    }

    #[test]
    fn resolves_documented_path_keys_against_the_registry_folder() {
        let config = PluginsConfig::parse(
            Path::new("/etc/export-host/plugins.toml"),
            r#"
            [plugins.a]
            library = "a.so"
            load_timeout = "5s"
            [plugins.a.config]
            root = "/srv/data"
            templates_dir = "templates"
            fonts_dir = "../fonts"
            database = "sqlite://db/example.db"
            other = "relative/kept"
            [plugins.b]
            library = "b.so"
            [plugins.b.config]
            database = "sqlite::memory:"
            [plugins.c]
            library = "c.so"
            [plugins.c.config]
            database = "postgres://u@h/db"
            [plugins.d]
            library = "d.so"
            [plugins.d.config]
            database = "sqlite:///var/db/x.db"
            "#,
        )
        .unwrap();
        let a = &config.entries[0].config;
        assert_eq!(config.entries[0].load_timeout, Duration::from_secs(5));
        assert_eq!(a["root"], "/srv/data");
        assert_eq!(a["templates_dir"], "/etc/export-host/templates");
        assert_eq!(a["fonts_dir"], "/etc/export-host/../fonts");
        assert_eq!(a["database"], "sqlite:///etc/export-host/db/example.db");
        assert_eq!(a["other"], "relative/kept");
        assert_eq!(config.entries[1].config["database"], "sqlite::memory:");
        assert_eq!(config.entries[2].config["database"], "postgres://u@h/db");
        assert_eq!(
            config.entries[3].config["database"],
            "sqlite:///var/db/x.db"
        );
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
            (
                "[plugins.x]\nlibrary = \"a.so\"\nload_timeout = \"never\"",
                "load_timeout",
            ),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nnetwork = [\"db.internal\"]",
                "network",
            ),
            ("[plugins.x]\nlibrary = \"a.so\"\nenv = [\"A=B\"]", "env"),
            (
                "[plugins.x]\nlibrary = \"a.so\"\nmax_frame = \"1KiB\"",
                "max_frame",
            ),
            ("sandbox_minimum = \"strong\"", "sandbox_minimum"),
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
                quarantine_users: 3,
                max_frame: DEFAULT_MAX_FRAME,
                sandbox: SandboxGrants::default(),
            }
        );
        let plain =
            PluginsConfig::parse(Path::new("p.toml"), "[plugins.x]\nlibrary = \"a.so\"").unwrap();
        assert_eq!(plain.entries[0].worker, WorkerSettings::default());
    }

    #[test]
    fn reads_the_sandbox_grants() {
        let config = PluginsConfig::parse(
            Path::new("/etc/export-host/plugins.toml"),
            r#"
            sandbox_minimum = "full"
            [plugins.sql]
            library = "a.so"
            network = ["db.internal:5432", "127.0.0.1:5432", "[::1]:5432"]
            env = ["PGPASSWORD"]
            max_frame = "64MiB"
            [plugins.sql.config]
            database = "sqlite://db/example.db?mode=ro"
            [plugins.csv]
            library = "b.so"
            isolation = "in-process"
            [plugins.csv.config]
            root = "/srv/exports/{user}/data"
            "#,
        )
        .unwrap();
        let sql = &config.entries[1];
        assert_eq!(sql.isolation, Isolation::Process);
        assert_eq!(sql.worker.max_frame, 64 << 20);
        assert_eq!(
            sql.worker.sandbox,
            SandboxGrants {
                network: vec![
                    "db.internal:5432".into(),
                    "127.0.0.1:5432".into(),
                    "[::1]:5432".into()
                ],
                env: vec!["PGPASSWORD".into()],
                read: vec![PathBuf::from("/etc/export-host/db/example.db")],
                minimum: SandboxLevel::Full,
            }
        );
        let csv = &config.entries[0];
        assert_eq!(csv.isolation, Isolation::InProcess);
        assert_eq!(csv.worker.sandbox.read, [Path::new("/srv/exports")]);
        assert_eq!(csv.worker.max_frame, DEFAULT_MAX_FRAME);
    }
}
