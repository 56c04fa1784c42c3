//! `export-host plugins list|check|new`.

use super::{load_registry, InputError};
use clap::Subcommand;
use export_host::config::HostSettings;
use export_host::conformance::{self, Inputs};
use export_host::plugins::registry::{open_verified, Probe};
use export_host::plugins::Registry;
use export_host::records::QuarantineState;
use export_host::scaffold::{self, ApiSource, Kind, ScaffoldError};
use export_host::service::quarantine_policy;
use export_plugin_api::host::host_api_version;
use export_plugin_api::Manifest;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Loaded plugins, versions, components, isolation and status.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load a plugin library through the real ABI and run the conformance
    /// battery; prints a pass/fail table and exits 1 when a check fails.
    Check {
        /// The .so file.
        file: PathBuf,
        /// The plugin's `[config]` table as JSON: validated against its config
        /// schema, then used for every check (loaders need one).
        #[arg(long)]
        config: Option<String>,
        /// Valid options for a formatter, `NAME=JSON` (default `{}`); repeatable.
        #[arg(long = "options", value_name = "NAME=JSON")]
        options: Vec<String>,
        /// A valid selector for a loader, `NAME=JSON`, to stream; repeatable.
        #[arg(long = "selector", value_name = "NAME=JSON")]
        selectors: Vec<String>,
        /// Options that make a formatter panic, `NAME=JSON`, to check the
        /// panic is contained; repeatable.
        #[arg(long = "panic-options", value_name = "NAME=JSON")]
        panic_options: Vec<String>,
        /// A selector that makes a loader panic, `NAME=JSON`; repeatable.
        #[arg(long = "panic-selector", value_name = "NAME=JSON")]
        panic_selectors: Vec<String>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a ready plugin crate: Cargo.toml, an example component with unit
    /// tests, a README. It builds with `cargo build --release` and passes
    /// `plugins check`.
    New {
        /// Crate and plugin name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// Which component the example offers.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The folder to create (default: ./NAME); it must not hold anything.
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

pub fn plugins_command(settings: &HostSettings, command: PluginsCommand) -> anyhow::Result<()> {
    match command {
        PluginsCommand::List { json } => list(settings, json),
        PluginsCommand::Check {
            file,
            config,
            options,
            selectors,
            panic_options,
            panic_selectors,
            json,
        } => {
            let inputs = Inputs {
                config: config
                    .as_deref()
                    .map(|text| parse_json("--config", text))
                    .transpose()?,
                options: named_documents("--options", &options)?,
                selectors: named_documents("--selector", &selectors)?,
                panic_options: named_documents("--panic-options", &panic_options)?,
                panic_selectors: named_documents("--panic-selector", &panic_selectors)?,
                ..Inputs::default()
            };
            check(&file, &inputs, json)
        }
        PluginsCommand::New { name, kind, path } => new(name, kind, path),
    }
}

struct Line {
    plugin: String,
    version: String,
    api: String,
    components: String,
    isolation: String,
    /// The workers' sandbox (`-` in-process).
    sandbox: String,
    status: String,
    /// The quarantine as recorded in the database, for `--json`.
    quarantine: Option<serde_json::Value>,
}

fn components(manifest: &Manifest) -> String {
    let loaders: Vec<&str> = manifest.loaders.iter().map(|l| l.name.as_str()).collect();
    let formats: Vec<&str> = manifest
        .formatters
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let mut parts = Vec::new();
    if !loaders.is_empty() {
        parts.push(format!("loaders: {}", loaders.join(", ")));
    }
    if !formats.is_empty() {
        parts.push(format!("formats: {}", formats.join(", ")));
    }
    parts.join("; ")
}

/// `full: landlock full (ABI 7), namespaces yes` for an isolated plugin, `-` in-process.
fn sandbox_of(isolation: export_host::plugins::Isolation) -> String {
    export_host::isolation::sandbox::for_plugin(isolation)
        .map(|support| support.describe())
        .unwrap_or_else(|| "-".to_owned())
}

/// Each loaded plugin's quarantine, read from `DATABASE_URL`, the database
/// the daemons record faults in; `None` (with a warning) when it cannot be
/// read, so the listing still shows what loaded.
fn quarantines(
    settings: &HostSettings,
    registry: &Registry,
) -> Option<HashMap<String, QuarantineState>> {
    // No database yet means no fault was ever recorded; listing plugins
    // should not create one.
    if sqlite_file_missing(&settings.database_url) {
        return Some(HashMap::new());
    }
    let read = || -> anyhow::Result<HashMap<String, QuarantineState>> {
        super::runtime()?.block_on(async {
            let records = super::connect(settings).await?;
            let now = chrono::Utc::now();
            let mut states = HashMap::new();
            for plugin in registry.plugins() {
                let policy = quarantine_policy(plugin);
                let state = records
                    .plugin_quarantine(&plugin.name, Some(&plugin.sha256), &policy, now)
                    .await?;
                states.insert(plugin.name.clone(), state);
            }
            records.close().await;
            Ok(states)
        })
    };
    match read() {
        Ok(states) => Some(states),
        Err(err) => {
            eprintln!("warning: cannot read plugin quarantines from the database: {err:#}; the STATUS column leaves them out");
            None
        }
    }
}

/// Whether `url` names an SQLite file that does not exist.
fn sqlite_file_missing(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return false;
    };
    let path = rest.split('?').next().unwrap_or(rest);
    !path.is_empty() && !path.contains(":memory:") && !Path::new(path).exists()
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `quarantined for every user until T (3 users, 5 faults)`, or
/// `quarantined for 1 user: ada until T`; `None` when nobody is held.
fn quarantine_status(state: &QuarantineState) -> Option<String> {
    if let Some(global) = &state.global {
        return Some(format!(
            "quarantined for every user until {} ({} users, {} faults)",
            rfc3339(global.until),
            global.users,
            global.faults
        ));
    }
    if state.users_held.is_empty() {
        return None;
    }
    let shown: Vec<String> = state
        .users_held
        .iter()
        .take(3)
        .map(|hold| format!("{} until {}", hold.user_id, rfc3339(hold.until)))
        .collect();
    let more = state.users_held.len().saturating_sub(shown.len());
    let count = state.users_held.len();
    Some(format!(
        "quarantined for {count} user{}: {}{}",
        if count == 1 { "" } else { "s" },
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

fn quarantine_json(state: &QuarantineState) -> serde_json::Value {
    serde_json::json!({
        "global": state.global.as_ref().map(|hold| serde_json::json!({
            "until": rfc3339(hold.until), "users": hold.users, "faults": hold.faults,
        })),
        "users_held": state.users_held.len(),
        "users": state.users_held.iter().map(|hold| serde_json::json!({
            "user": hold.user_id, "faults": hold.faults, "until": rfc3339(hold.until),
        })).collect::<Vec<_>>(),
        "faults": state.faults,
        "last_fault": state.last.as_ref().map(|fault| serde_json::json!({
            "at": rfc3339(fault.at), "kind": fault.cause, "message": fault.message,
            "user": fault.user_id, "export_id": fault.export_id,
        })),
    })
}

/// The named queries a plugin's config defines (`queries.NAME`, as the sql
/// plugin's do): what a request may run, with which parameters, and at most
/// how many rows. The rest of the config (a database URL may hold a
/// password) stays out.
fn queries_of(config: &Value) -> Option<Value> {
    let queries = config.get("queries")?.as_object()?;
    let field =
        |query: &Value, key: &str, default: Value| query.get(key).cloned().unwrap_or(default);
    Some(Value::Array(
        queries
            .iter()
            .map(|(name, query)| {
                serde_json::json!({
                    "name": name,
                    "description": field(query, "description", Value::from("")),
                    "params": field(query, "params", serde_json::json!({})),
                    "max_rows": field(query, "max_rows", Value::Null),
                    "on_max_rows": field(query, "on_max_rows", Value::from("fail")),
                })
            })
            .collect(),
    ))
}

fn list(settings: &HostSettings, json: bool) -> anyhow::Result<()> {
    let registry = load_registry(settings)?;
    let quarantines = quarantines(settings, &registry);
    let mut lines = Vec::new();
    // Each loaded plugin's named queries (the sql loader's), for `--json`.
    let mut queries: HashMap<String, Value> = HashMap::new();
    for plugin in registry.plugins() {
        let manifest = plugin.manifest();
        if let Some(listed) = queries_of(&plugin.entry().config) {
            queries.insert(plugin.name.clone(), listed);
        }
        let quarantine = quarantines
            .as_ref()
            .and_then(|states| states.get(&plugin.name));
        let held = quarantine.and_then(quarantine_status);
        let base = match (&held, quarantine.and_then(|q| q.global.as_ref())) {
            (Some(held), Some(_)) => held.clone(),
            (Some(held), None) => format!("{}; {held}", plugin.status().as_str()),
            (None, _) => plugin.status().as_str().to_owned(),
        };
        lines.push(Line {
            quarantine: quarantine.map(quarantine_json),
            plugin: plugin.name.clone(),
            version: manifest.version.clone(),
            api: manifest.api_version.clone(),
            components: components(manifest),
            isolation: plugin.isolation.as_str().to_owned(),
            sandbox: sandbox_of(plugin.isolation),
            status: match registry.reload_failure(&plugin.name) {
                Some(failure) => format!(
                    "{base}, reload_failed ({}): {}",
                    failure.cause.as_str(),
                    failure.reason
                ),
                None => base,
            },
        });
    }
    for entry in registry.disabled() {
        lines.push(Line {
            plugin: entry.name.clone(),
            version: "-".into(),
            api: "-".into(),
            components: "-".into(),
            isolation: entry.isolation.as_str().to_owned(),
            sandbox: "-".into(),
            status: "disabled".to_owned(),
            quarantine: None,
        });
    }
    for failure in registry.failures() {
        lines.push(Line {
            plugin: failure.name.clone(),
            version: "-".into(),
            api: "-".into(),
            components: "-".into(),
            isolation: "-".into(),
            sandbox: "-".into(),
            status: format!("failed ({}): {}", failure.cause.as_str(), failure.reason),
            quarantine: None,
        });
    }
    if json {
        let rows: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                let mut row = serde_json::json!({
                    "plugin": l.plugin, "version": l.version, "api_version": l.api,
                    "components": l.components, "isolation": l.isolation, "sandbox": l.sandbox,
                    "status": l.status, "quarantine": l.quarantine,
                });
                if let Some(listed) = queries.get(&l.plugin) {
                    row["queries"] = listed.clone();
                }
                row
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let header = Line {
        plugin: "PLUGIN".into(),
        version: "VERSION".into(),
        api: "API".into(),
        components: "COMPONENTS".into(),
        isolation: "ISOLATION".into(),
        sandbox: "SANDBOX".into(),
        status: "STATUS".into(),
        quarantine: None,
    };
    let all: Vec<&Line> = std::iter::once(&header).chain(lines.iter()).collect();
    let width = |f: fn(&Line) -> &str| all.iter().map(|l| f(l).chars().count()).max().unwrap_or(0);
    let (w1, w2, w3, w4, w5, w6) = (
        width(|l| &l.plugin),
        width(|l| &l.version),
        width(|l| &l.api),
        width(|l| &l.components),
        width(|l| &l.isolation),
        width(|l| &l.sandbox),
    );
    for l in all {
        println!(
            "{:w1$}  {:w2$}  {:w3$}  {:w4$}  {:w5$}  {:w6$}  {}",
            l.plugin, l.version, l.api, l.components, l.isolation, l.sandbox, l.status
        );
    }
    if lines.is_empty() {
        println!("(no plugins in {})", settings.plugins.display());
    }
    Ok(())
}

fn parse_json(flag: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text)
        .map_err(|err| InputError(format!("{flag} is not valid JSON: {err}")).into())
}

/// `NAME=JSON` arguments, by name.
fn named_documents(flag: &str, args: &[String]) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut documents = BTreeMap::new();
    for arg in args {
        let Some((name, json)) = arg.split_once('=') else {
            return Err(InputError(format!(
                "{flag} {arg:?} must be NAME=JSON, e.g. {flag} 'csv={{}}'"
            ))
            .into());
        };
        documents.insert(
            name.to_owned(),
            parse_json(&format!("{flag} {name}"), json)?,
        );
    }
    Ok(documents)
}

fn check(file: &Path, inputs: &Inputs, json: bool) -> anyhow::Result<()> {
    // Probe-loaded in a child first: a truncated or crashing library fails
    // the check with a message instead of killing this process.
    let name = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (library, sha256) =
        open_verified(file, None, Some(Probe::defaults(&name))).map_err(|(_, reason)| {
            anyhow::anyhow!("{} cannot be used as a plugin: {reason}", file.display())
        })?;
    let manifest = library.manifest();
    let report = conformance::check_library(&library, inputs);
    if json {
        let document = serde_json::json!({
            "file": file,
            "plugin": manifest.name,
            "version": manifest.version,
            "api_version": manifest.api_version,
            "host_api_version": host_api_version(),
            "sha256": sha256,
            "passed": report.passed(),
            "checks": report.checks,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        println!(
            "{} {} (plugin-api {}, host speaks {}), sha256 {}",
            manifest.name,
            manifest.version,
            manifest.api_version,
            host_api_version(),
            sha256
        );
        print!("{report}");
    }
    let failed: Vec<&str> = report.failed().map(|c| c.check.as_str()).collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} checks failed for {}: {}",
            failed.len(),
            report.checks.len(),
            file.display(),
            failed.join("; ")
        );
    }
    Ok(())
}

fn new(name: String, kind: Kind, path: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = path.unwrap_or_else(|| PathBuf::from(&name));
    let request = scaffold::Request { name, kind, dir };
    let created = scaffold::create(&request, &ApiSource::detect()).map_err(|err| match err {
        err @ (ScaffoldError::InvalidName { .. } | ScaffoldError::NotEmpty(_)) => {
            anyhow::Error::new(InputError(err.to_string()))
        }
        err => anyhow::Error::new(err),
    })?;
    println!(
        "Created plugin crate {:?} ({}) in {}: {}",
        request.name,
        kind,
        created.dir.display(),
        created.files.join(", ")
    );
    match &created.api_source {
        ApiSource::Path(path) => println!("export-plugin-api comes from {}", path.display()),
        ApiSource::Version(version) => println!("export-plugin-api {version} comes from crates.io"),
    }
    println!("Next:");
    println!("  cd {}", created.dir.display());
    println!("  cargo test && cargo build --release");
    println!(
        "  export-host plugins check target/release/{}{}",
        created.library,
        created.check_args.replace(" \\\n    ", " ")
    );
    Ok(())
}
