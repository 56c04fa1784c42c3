//! `export-host plugins list|check|new`.

use super::{load_registry, InputError};
use clap::Subcommand;
use export_host::config::HostSettings;
use export_host::conformance::{self, Inputs, Outcome, Report};
use export_host::plugins::registry::{open_verified, Probe};
use export_host::scaffold::{self, ApiSource, Kind, ScaffoldError};
use export_plugin_api::host::host_api_version;
use export_plugin_api::Manifest;
use serde_json::Value;
use std::collections::BTreeMap;
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

pub fn run(settings: &HostSettings, command: PluginsCommand) -> anyhow::Result<()> {
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

fn list(settings: &HostSettings, json: bool) -> anyhow::Result<()> {
    let registry = load_registry(settings)?;
    let mut lines = Vec::new();
    for plugin in registry.plugins() {
        let manifest = plugin.manifest();
        lines.push(Line {
            plugin: plugin.name.clone(),
            version: manifest.version.clone(),
            api: manifest.api_version.clone(),
            components: components(manifest),
            isolation: plugin.isolation.as_str().to_owned(),
            sandbox: sandbox_of(plugin.isolation),
            status: match registry.reload_failure(&plugin.name) {
                Some(failure) => format!(
                    "{}, reload_failed ({}): {}",
                    plugin.status().as_str(),
                    failure.cause.as_str(),
                    failure.reason
                ),
                None => plugin.status().as_str().to_owned(),
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
        });
    }
    if json {
        let rows: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "plugin": l.plugin, "version": l.version, "api_version": l.api,
                    "components": l.components, "isolation": l.isolation, "sandbox": l.sandbox,
                    "status": l.status,
                })
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
    let report = conformance::run(&library, inputs);
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
        print_table(&report);
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

/// `  ok    CHECK  detail`, the check names aligned.
fn print_table(report: &Report) {
    let width = report
        .checks
        .iter()
        .map(|c| c.check.chars().count())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        let line = format!(
            "  {:<6}{:<width$}  {}",
            check.status.label(),
            check.check,
            check.detail
        );
        println!("{}", line.trim_end());
    }
    let passed = report.count(Outcome::Pass);
    let not_applicable = report.count(Outcome::NotApplicable);
    let failed = report.count(Outcome::Fail);
    let checks = |n: usize| if n == 1 { "check" } else { "checks" };
    let mut summary = if failed == 0 {
        format!("{passed} {} passed", checks(passed))
    } else {
        format!("{failed} {} failed, {passed} passed", checks(failed))
    };
    if not_applicable > 0 {
        summary.push_str(&format!(", {not_applicable} not applicable"));
    }
    println!("{summary}");
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
