//! The template environment: the built-in templates, user templates from the
//! configured folder, HTML autoescaping for every template.

use export_plugin_api::{PluginError, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{escape_formatter, AutoEscape, Environment, UndefinedBehavior};
use std::path::{Path, PathBuf};

/// The templates that ship inside the plugin, by name.
pub(crate) const BUILT_IN: [(&str, &str); 2] = [
    ("report", include_str!("../../templates/report.html")),
    ("table", include_str!("../../templates/table.html")),
];

/// The JSON Schema pattern of a template name: dot-separated parts of
/// letters, digits, `_` and `-`. No `/`, no `..`, nothing hidden.
pub(crate) const NAME_PATTERN: &str = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$";

/// Whether `name` matches [`NAME_PATTERN`]: such a name always stays inside
/// the templates folder.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

fn built_in_names() -> String {
    BUILT_IN.map(|(name, _)| name).join(", ")
}

/// A folder of user templates, resolved once. Messages call it
/// `templates_dir` and never show where it is: they reach the clients
/// of a server, who have no business knowing its folders.
#[derive(Debug, Clone)]
pub(crate) struct TemplatesDir {
    /// The folder with every link resolved, to check where names lead.
    real: PathBuf,
}

impl TemplatesDir {
    /// Resolves the configured `templates_dir`.
    pub(crate) fn open(dir: &Path) -> Result<TemplatesDir> {
        let real = dir.canonicalize().map_err(|err| {
            PluginError::invalid_input(format!(
                "the html plugin's templates_dir cannot be used ({}); the operator must set it \
                 in the plugin's [config] to an existing folder (a relative folder is resolved \
                 against the folder of plugins.toml)",
                err.kind()
            ))
        })?;
        if !real.is_dir() {
            return Err(PluginError::invalid_input(
                "the html plugin's templates_dir is not a folder; the operator must set it in \
                 the plugin's [config] to a folder of templates",
            ));
        }
        Ok(TemplatesDir { real })
    }

    /// The file a template name refers to: `Ok(None)` when there is none.
    /// Refuses names that are not plain file names and links that lead out.
    fn find(&self, name: &str) -> Result<Option<PathBuf>> {
        if !is_valid_name(name) {
            return Err(refused_name(name));
        }
        let real = match self.real.join(name).canonicalize() {
            Ok(real) => real,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(PluginError::io(format!(
                    "template {name:?} in templates_dir cannot be read ({})",
                    err.kind()
                )))
            }
        };
        if !real.starts_with(&self.real) {
            return Err(PluginError::permission_denied(format!(
                "template {name:?} leads outside templates_dir; templates must be files \
                 inside that folder"
            )));
        }
        Ok(real.is_file().then_some(real))
    }

    /// The template names in the folder, sorted, for messages.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.real)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| is_valid_name(name))
            .collect();
        names.sort();
        names
    }

    /// The source of template `name`, for the template loader.
    fn load(&self, name: &str) -> Result<Option<String>, minijinja::Error> {
        let loader_error = |err: PluginError| {
            minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, err.message)
        };
        let Some(path) = self.find(name).map_err(loader_error)? else {
            return Ok(None);
        };
        std::fs::read_to_string(&path).map(Some).map_err(|err| {
            loader_error(PluginError::io(format!(
                "template {name:?} in templates_dir cannot be read ({})",
                err.kind()
            )))
        })
    }
}

fn refused_name(name: &str) -> PluginError {
    PluginError::invalid_input(format!(
        "template {name:?} is not allowed: use a built-in template ({}) or the file name of a \
         template directly in templates_dir, such as \"invoice.html\" (letters, digits, '_', \
         '-' and single dots; no '/' and no '..')",
        built_in_names()
    ))
}

/// Every template an export can use: the built-in ones (which take
/// precedence) and those in `dir`. Output is HTML-escaped everywhere,
/// undefined variables are errors, and block tags swallow their line break.
pub(crate) fn environment(dir: Option<&TemplatesDir>) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|err| PluginError::internal(format!("template syntax: {err}")))?;
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_formatter(keep_carriage_returns);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in BUILT_IN {
        env.add_template(name, source).map_err(|err| {
            PluginError::internal(format!("built-in template {name:?} is broken: {err}"))
        })?;
    }
    if let Some(dir) = dir {
        let dir = dir.clone();
        env.set_loader(move |name| dir.load(name));
    }
    Ok(env)
}

/// Writes a value like minijinja's HTML escaping, and writes a carriage
/// return as `&#13;`: HTML parsers turn a raw CR or CRLF into LF, so
/// without this a value's `\r\n` would come back as `\n`.
fn keep_carriage_returns(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let html = *state.auto_escape() == AutoEscape::Html;
    match value.as_str() {
        Some(text) if html && !value.is_safe() && text.contains('\r') => {
            for (index, piece) in text.split('\r').enumerate() {
                if index > 0 {
                    out.write_str("&#13;").map_err(|_| {
                        minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "writing failed")
                    })?;
                }
                escape_formatter(out, state, &Value::from(piece))?;
            }
            Ok(())
        }
        _ => escape_formatter(out, state, value),
    }
}

/// Checks that `name` can be rendered (it exists and compiles) before any
/// output exists; says what is available when it does not.
pub(crate) fn check_template(
    env: &Environment<'static>,
    dir: Option<&TemplatesDir>,
    name: &str,
) -> Result<()> {
    if !is_valid_name(name) {
        return Err(refused_name(name));
    }
    let built_in = BUILT_IN.iter().any(|(built_in, _)| *built_in == name);
    if !built_in {
        let Some(dir) = dir else {
            return Err(PluginError::not_found(format!(
                "there is no template {name:?}: the built-in templates are {}; to use your own, \
                 set templates_dir in the html plugin's [config] and put {name:?} there",
                built_in_names()
            )));
        };
        if dir.find(name)?.is_none() {
            let names = dir.names();
            return Err(PluginError::not_found(format!(
                "there is no template {name:?}: the built-in templates are {}; templates_dir holds {}",
                built_in_names(),
                if names.is_empty() {
                    "no templates".to_owned()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    env.get_template(name)
        .map(|_| ())
        .map_err(|err| template_error(name, &err))
}

/// A template that failed to load or render, as a plugin error.
pub(crate) fn template_error(name: &str, err: &minijinja::Error) -> PluginError {
    let mut message = format!("template {name:?} failed: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if BUILT_IN.iter().any(|(built_in, _)| *built_in == name) {
        PluginError::internal(message)
    } else {
        PluginError::invalid_input(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::ErrorKind;

    #[test]
    fn names() {
        for good in ["report", "invoice.html", "my-report_2.html.j2", "a"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            "../x.html",
            "a/b.html",
            "/etc/passwd",
            ".hidden",
            "x..html",
            "x.",
            "a\\b",
            "é.html",
            "a b",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn built_in_templates_compile() {
        let env = environment(None).unwrap();
        for (name, _) in BUILT_IN {
            check_template(&env, None, name).unwrap();
        }
    }

    #[test]
    fn unknown_template_without_folder_says_what_to_do() {
        let env = environment(None).unwrap();
        let err = check_template(&env, None, "mine.html").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(err.message.contains("report, table"), "{}", err.message);
        assert!(err.message.contains("templates_dir"), "{}", err.message);
    }

    #[test]
    fn links_out_of_the_folder_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.html"), "secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.html"),
            dir.path().join("link.html"),
        )
        .unwrap();
        let templates = TemplatesDir::open(dir.path()).unwrap();
        let env = environment(Some(&templates)).unwrap();
        let err = check_template(&env, Some(&templates), "link.html").unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied, "{}", err.message);
        // An include from inside a template is held to the same rule.
        std::fs::write(
            dir.path().join("sneaky.html"),
            r#"{% include "../secret.html" %}"#,
        )
        .unwrap();
        check_template(&env, Some(&templates), "sneaky.html").unwrap();
        let err = env
            .get_template("sneaky.html")
            .unwrap()
            .render(())
            .unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn missing_folder_is_refused() {
        let err = TemplatesDir::open(Path::new("/no/such/templates")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        // The message reaches a server's clients: it names the setting,
        // never the folder.
        assert!(err.message.contains("templates_dir"), "{}", err.message);
        assert!(!err.message.contains("/no/such"), "{}", err.message);
    }

    #[test]
    fn an_unknown_template_does_not_show_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.html"), "x").unwrap();
        let templates = TemplatesDir::open(dir.path()).unwrap();
        let env = environment(Some(&templates)).unwrap();
        let err = check_template(&env, Some(&templates), "other.html").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(err.message.contains("mine.html"), "{}", err.message);
        let shown = dir.path().to_string_lossy().into_owned();
        assert!(!err.message.contains(&shown), "{}", err.message);
    }

    #[test]
    fn a_broken_user_template_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.html"), "ok\n{% if %}\n").unwrap();
        let templates = TemplatesDir::open(dir.path()).unwrap();
        let env = environment(Some(&templates)).unwrap();
        let err = check_template(&env, Some(&templates), "broken.html").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("broken.html:2"), "{}", err.message);
    }
}
