//! `export-host plugins list|check`.

use super::{load_registry, InputError};
use clap::Subcommand;
use export_host::config::HostSettings;
use export_host::plugins::registry::open_verified;
use export_host::plugins::schema::DocumentSchema;
use export_plugin_api::host::host_api_version;
use export_plugin_api::Manifest;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Loaded plugins, versions, components, isolation and status.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load a plugin library, validate it and report; exits non-zero on failure.
    Check {
        /// The .so file.
        file: PathBuf,
        /// A `[config]` table as JSON, to validate against the plugin's config schema.
        #[arg(long)]
        config: Option<String>,
    },
}

pub fn run(settings: &HostSettings, command: PluginsCommand) -> anyhow::Result<()> {
    match command {
        PluginsCommand::List { json } => list(settings, json),
        PluginsCommand::Check { file, config } => check(&file, config.as_deref()),
    }
}

struct Line {
    plugin: String,
    version: String,
    api: String,
    components: String,
    isolation: String,
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
            status: "loaded".to_owned(),
        });
    }
    for entry in registry.disabled() {
        lines.push(Line {
            plugin: entry.name.clone(),
            version: "-".into(),
            api: "-".into(),
            components: "-".into(),
            isolation: entry.isolation.as_str().to_owned(),
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
            status: format!("failed ({}): {}", failure.cause.as_str(), failure.reason),
        });
    }
    if json {
        let rows: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "plugin": l.plugin, "version": l.version, "api_version": l.api,
                    "components": l.components, "isolation": l.isolation, "status": l.status,
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
        status: "STATUS".into(),
    };
    let all: Vec<&Line> = std::iter::once(&header).chain(lines.iter()).collect();
    let width = |f: fn(&Line) -> &str| all.iter().map(|l| f(l).chars().count()).max().unwrap_or(0);
    let (w1, w2, w3, w4, w5) = (
        width(|l| &l.plugin),
        width(|l| &l.version),
        width(|l| &l.api),
        width(|l| &l.components),
        width(|l| &l.isolation),
    );
    for l in all {
        println!(
            "{:w1$}  {:w2$}  {:w3$}  {:w4$}  {:w5$}  {}",
            l.plugin, l.version, l.api, l.components, l.isolation, l.status
        );
    }
    if lines.is_empty() {
        println!("(no plugins in {})", settings.plugins.display());
    }
    Ok(())
}

/// The checks `plugins check` runs on a manifest, as (what, problem if any).
fn manifest_checks(manifest: &Manifest) -> Vec<(String, Option<String>)> {
    let mut checks = Vec::new();
    let problem = |bad: bool, text: String| bad.then_some(text);
    checks.push((
        format!("name {:?}", manifest.name),
        problem(
            !export_host::plugins::config::valid_name(&manifest.name),
            "use lowercase letters, digits, '-' and '_'".into(),
        ),
    ));
    let semver = manifest.version.split('.').count() == 3
        && manifest
            .version
            .split(['.', '-', '+'])
            .take(3)
            .all(|p| p.parse::<u64>().is_ok());
    checks.push((
        format!("version {:?}", manifest.version),
        problem(!semver, "not a semver version (MAJOR.MINOR.PATCH)".into()),
    ));
    checks.push((
        "components".into(),
        problem(
            manifest.loaders.is_empty() && manifest.formatters.is_empty(),
            "the plugin offers no loader and no formatter".into(),
        ),
    ));
    checks.push((
        "config schema".into(),
        DocumentSchema::compile(&manifest.config_schema).err(),
    ));
    let mut seen = std::collections::HashSet::new();
    for loader in &manifest.loaders {
        checks.push((
            format!("loader {:?}", loader.name),
            if !seen.insert(("loader", loader.name.clone())) {
                Some("declared twice".into())
            } else {
                DocumentSchema::compile(&loader.selector_schema)
                    .err()
                    .map(|e| format!("invalid selector schema: {e}"))
            },
        ));
    }
    for formatter in &manifest.formatters {
        let bad_fields = formatter.mime_type.is_empty() || formatter.extension.is_empty();
        checks.push((
            format!("formatter {:?}", formatter.name),
            if !seen.insert(("formatter", formatter.name.clone())) {
                Some("declared twice".into())
            } else if bad_fields {
                Some("MIME type and extension must not be empty".into())
            } else {
                DocumentSchema::compile(&formatter.options_schema)
                    .err()
                    .map(|e| format!("invalid options schema: {e}"))
            },
        ));
    }
    checks
}

fn check(file: &std::path::Path, config: Option<&str>) -> anyhow::Result<()> {
    let (library, sha256) = open_verified(file, None).map_err(|(_, reason)| {
        anyhow::anyhow!("{} cannot be used as a plugin: {reason}", file.display())
    })?;
    let manifest = library.manifest();
    println!(
        "{} {} (plugin-api {}, host speaks {}), sha256 {}",
        manifest.name,
        manifest.version,
        manifest.api_version,
        host_api_version(),
        sha256
    );
    let mut checks = manifest_checks(manifest);
    if let Some(text) = config {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|err| InputError(format!("--config is not valid JSON: {err}")))?;
        let problem = match DocumentSchema::compile(&manifest.config_schema) {
            Ok(schema) => schema.check("config", &value).err().map(|e| e.to_string()),
            Err(err) => Some(err),
        };
        checks.push(("config".into(), problem));
    }
    let mut failed = 0;
    for (what, problem) in &checks {
        match problem {
            None => println!("  ok    {what}"),
            Some(problem) => {
                failed += 1;
                println!("  FAIL  {what}: {problem}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{} of {} checks failed for {}",
            failed,
            checks.len(),
            file.display()
        );
    }
    println!("{} checks passed", checks.len());
    Ok(())
}
