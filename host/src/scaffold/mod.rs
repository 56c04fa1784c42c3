//! `export-host plugins new`: writes a ready plugin crate.
//!
//! The crate builds on its own (`cargo build --release`), has unit tests
//! that use plugin-api's test helpers, and passes `plugins check` as
//! written. Its dependency on export-plugin-api points at this checkout's
//! `plugin-api` folder while there is one (the crate is not published yet),
//! and is a version requirement otherwise.

use export_plugin_api::host::host_api_version;
use std::fmt;
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const LOADER_LIB: &str = include_str!("templates/loader.rs.tmpl");
const FORMATTER_LIB: &str = include_str!("templates/formatter.rs.tmpl");
const README: &str = include_str!("templates/README.md.tmpl");
const GITIGNORE: &str = include_str!("templates/gitignore.tmpl");

/// Which component the new plugin offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A data source: reads a text file, one row per line.
    Loader,
    /// An output format: writes a Markdown table.
    Formatter,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Loader => "loader",
            Kind::Formatter => "formatter",
        })
    }
}

/// Why no crate was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a crate and plugin name.
    #[error("{name:?} cannot be a plugin name: {why}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The target folder exists and holds something.
    #[error("{} already exists and is not an empty folder; pick another --path or remove it", .0.display())]
    NotEmpty(PathBuf),
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// What was being written.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl ScaffoldError {
    /// Whether the user can fix it by changing the command line.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, ScaffoldError::Io { .. })
    }
}

/// What `plugins new` was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Crate, plugin and component name.
    pub name: String,
    /// Loader or formatter.
    pub kind: Kind,
    /// Where the crate goes.
    pub dir: PathBuf,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Created {
    /// The crate's folder.
    pub dir: PathBuf,
    /// The files, relative to `dir`.
    pub files: Vec<&'static str>,
    /// The library `cargo build --release` writes, e.g. `libacme.so`.
    pub library: String,
    /// Arguments `plugins check` needs after the library's path.
    pub check_args: String,
    /// How the crate depends on export-plugin-api.
    pub api_source: ApiSource,
}

/// Where the new crate gets export-plugin-api from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiSource {
    /// This checkout's plugin-api folder (absolute).
    Path(PathBuf),
    /// A version requirement, resolved from crates.io.
    Version(String),
}

impl ApiSource {
    /// This checkout's plugin-api when the folder exists, else a requirement
    /// on this host's major.minor version.
    pub fn detect() -> ApiSource {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
        match checkout.canonicalize() {
            Ok(path) if path.join("Cargo.toml").is_file() => ApiSource::Path(path),
            _ => ApiSource::Version(version_requirement(&host_api_version())),
        }
    }

    /// The dependency as a TOML inline table, with `features` when given.
    fn dependency(&self, features: &[&str]) -> String {
        let mut fields = Vec::new();
        let requirement = match self {
            ApiSource::Path(path) => {
                fields.push(format!("path = {}", toml_string(&path.to_string_lossy())));
                version_requirement(&host_api_version())
            }
            ApiSource::Version(requirement) => requirement.clone(),
        };
        fields.push(format!("version = {}", toml_string(&requirement)));
        if !features.is_empty() {
            let list: Vec<String> = features.iter().map(|f| toml_string(f)).collect();
            fields.push(format!("features = [{}]", list.join(", ")));
        }
        format!("{{ {} }}", fields.join(", "))
    }

    fn comment(&self) -> &'static str {
        match self {
            ApiSource::Path(_) => {
                "It comes from the export-host checkout that wrote this crate until it is \
                 published; then delete `path = ...` and keep `version`."
            }
            ApiSource::Version(_) => "It comes from crates.io.",
        }
    }
}

/// `1.2.3` -> `1.2`: any later 1.y also works (see the compatibility promise).
fn version_requirement(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => version.to_owned(),
    }
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Refuses a name that cannot be both a Cargo package and a plugin name.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |why: &str| {
        Err(ScaffoldError::InvalidName {
            name: name.to_owned(),
            why: why.to_owned(),
        })
    };
    if name.is_empty() || name.len() > 64 {
        return invalid("use 1 to 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("start with a lowercase letter");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return invalid("use only lowercase letters, digits, '-' and '_'");
    }
    if name.ends_with(['-', '_']) {
        return invalid("end with a letter or a digit");
    }
    let ident = name.replace('-', "_");
    if RUST_KEYWORDS.contains(&ident.as_str()) {
        return invalid("it is a Rust keyword, so the crate could not be named in code");
    }
    if CARGO_RESERVED.contains(&ident.as_str()) {
        return invalid("Cargo reserves it");
    }
    if ["export_plugin_api", "serde", "serde_json"].contains(&ident.as_str()) {
        return invalid("the new crate depends on a crate of that name");
    }
    Ok(())
}

const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

const CARGO_RESERVED: &[&str] = &[
    "alloc",
    "build",
    "core",
    "deps",
    "examples",
    "incremental",
    "proc_macro",
    "std",
    "test",
];

/// Writes the crate; refuses a bad name and a folder that holds anything.
pub fn create(request: &Request, api: &ApiSource) -> Result<Created, ScaffoldError> {
    check_name(&request.name)?;
    let dir = &request.dir;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ScaffoldError::Io { path, source }
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ScaffoldError::NotEmpty(dir.clone()));
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(ScaffoldError::NotEmpty(dir.clone()))
        }
        Err(err) => return Err(io(dir)(err)),
    }
    let crate_name = request.name.replace('-', "_");
    let library = format!("lib{crate_name}.so");
    let check_args = match request.kind {
        Kind::Formatter => String::new(),
        Kind::Loader => format!(
            " \\\n    --config '{{\"root\": \".\"}}' --selector '{}={{\"path\": \"README.md\"}}'",
            request.name
        ),
    };
    let config_example = match request.kind {
        Kind::Formatter => String::new(),
        Kind::Loader => format!(
            "\n[plugins.{}.config]\nroot = \"/srv/exports/data\"\n",
            request.name
        ),
    };
    let values = [
        ("name", request.name.clone()),
        ("kind", request.kind.to_string()),
        ("library", library.clone()),
        ("api_version", host_api_version()),
        ("api_source", api.comment().to_owned()),
        ("api_dependency", api.dependency(&[])),
        ("api_dependency_testing", api.dependency(&["testing"])),
        ("check_args", check_args.clone()),
        ("config_example", config_example),
    ];
    let lib = match request.kind {
        Kind::Loader => LOADER_LIB,
        Kind::Formatter => FORMATTER_LIB,
    };
    let files: [(&'static str, &str); 4] = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", lib),
        ("README.md", README),
        (".gitignore", GITIGNORE),
    ];
    std::fs::create_dir_all(dir.join("src")).map_err(io(dir))?;
    for (file, template) in files {
        let path = dir.join(file);
        std::fs::write(&path, render(template, &values)).map_err(io(&path))?;
    }
    Ok(Created {
        dir: dir.clone(),
        files: files.iter().map(|(file, _)| *file).collect(),
        library,
        check_args,
        api_source: api.clone(),
    })
}

/// Replaces every `{{key}}` in `template`.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["acme", "acme-orders", "acme_orders2", "x1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Acme",
            "1acme",
            "acme!",
            "acme-",
            "ac me",
            "fn",
            "self",
            "test",
            "std",
            "serde",
            "export-plugin-api",
            "é",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn templates_leave_no_placeholder() {
        let dir = std::env::temp_dir().join(format!("scaffold-unit-{}", std::process::id()));
        for kind in [Kind::Loader, Kind::Formatter] {
            let _ = std::fs::remove_dir_all(&dir);
            let request = Request {
                name: "acme".into(),
                kind,
                dir: dir.clone(),
            };
            let created = create(&request, &ApiSource::detect()).unwrap();
            for file in &created.files {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                assert!(!text.contains("{{"), "{file} keeps a placeholder:\n{text}");
            }
            let manifest: toml::Table =
                toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
            assert_eq!(manifest["lib"]["crate-type"][0].as_str(), Some("cdylib"));
            assert!(manifest.contains_key("workspace"));
            let api = &manifest["dependencies"]["export-plugin-api"];
            assert!(Path::new(api["path"].as_str().unwrap())
                .join("Cargo.toml")
                .is_file());
            assert_eq!(
                manifest["dev-dependencies"]["export-plugin-api"]["features"][0].as_str(),
                Some("testing")
            );
            // A second run refuses the folder it filled.
            assert!(matches!(
                create(&request, &ApiSource::detect()),
                Err(ScaffoldError::NotEmpty(_))
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_the_checkout_it_asks_for_a_version() {
        let api = ApiSource::Version("1.0".into());
        assert_eq!(api.dependency(&[]), r#"{ version = "1.0" }"#);
        assert_eq!(version_requirement("1.4.2"), "1.4");
    }

    #[test]
    fn an_empty_folder_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let request = Request {
            name: "acme".into(),
            kind: Kind::Formatter,
            dir: dir.path().to_owned(),
        };
        create(&request, &ApiSource::Version("1.0".into())).unwrap();
        assert!(dir.path().join("src/lib.rs").is_file());
    }
}
