//! Checks of the manifest alone: identity, versions, components, schemas.

use super::Check;
use crate::plugins::config::valid_name;
use crate::plugins::schema::DocumentSchema;
use export_plugin_api::host::host_api_version;
use export_plugin_api::Manifest;
use std::collections::HashSet;

/// One row per property of `manifest`.
pub fn checks(manifest: &Manifest) -> Vec<Check> {
    let mut checks = vec![
        Check::from_problem(
            format!("name {:?}", manifest.name),
            (!valid_name(&manifest.name)).then(|| {
                "use 1 to 64 lowercase letters, digits, '-' and '_' (it appears in addresses \
                 such as NAME/component and in file names)"
                    .to_owned()
            }),
        ),
        Check::from_problem(
            format!("version {:?}", manifest.version),
            semver_problem(&manifest.version),
        ),
        Check::from_problem(
            format!("plugin-api version {:?}", manifest.api_version),
            api_version_problem(&manifest.api_version),
        ),
        Check::from_problem(
            "components",
            (manifest.loaders.is_empty() && manifest.formatters.is_empty())
                .then(|| "the plugin offers no loader and no formatter".to_owned()),
        ),
        Check::from_problem(
            "config schema",
            DocumentSchema::compile(&manifest.config_schema)
                .err()
                .map(|e| format!("not a valid JSON Schema: {e}")),
        ),
    ];
    let mut seen = HashSet::new();
    for loader in &manifest.loaders {
        let problem = if !seen.insert(("loader", loader.name.as_str())) {
            Some("declared twice".to_owned())
        } else if !valid_name(&loader.name) {
            Some("use lowercase letters, digits, '-' and '_'".to_owned())
        } else {
            DocumentSchema::compile(&loader.selector_schema)
                .err()
                .map(|e| format!("the selector schema is not a valid JSON Schema: {e}"))
        };
        checks.push(Check::from_problem(
            format!("loader {:?}", loader.name),
            problem,
        ));
    }
    for formatter in &manifest.formatters {
        let problem = if !seen.insert(("formatter", formatter.name.as_str())) {
            Some("declared twice".to_owned())
        } else if !valid_name(&formatter.name) {
            Some("use lowercase letters, digits, '-' and '_'".to_owned())
        } else if !valid_mime_type(&formatter.mime_type) {
            Some(format!(
                "MIME type {:?} is not TYPE/SUBTYPE (e.g. \"text/csv; charset=utf-8\")",
                formatter.mime_type
            ))
        } else if formatter.extension.is_empty()
            || formatter.extension.starts_with('.')
            || !formatter
                .extension
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            Some(format!(
                "extension {:?} must be letters and digits without the leading dot (e.g. \"csv\")",
                formatter.extension
            ))
        } else {
            DocumentSchema::compile(&formatter.options_schema)
                .err()
                .map(|e| format!("the options schema is not a valid JSON Schema: {e}"))
        };
        checks.push(Check::from_problem(
            format!("formatter {:?}", formatter.name),
            problem,
        ));
    }
    checks
}

/// Why `version` is not a semver 2.0 version, if it is not.
pub fn semver_problem(version: &str) -> Option<String> {
    let bad = || {
        Some(format!(
            "{version:?} is not a semver version (MAJOR.MINOR.PATCH, e.g. \"0.1.0\" or \"1.2.3-rc.1\"); \
             pass env!(\"CARGO_PKG_VERSION\") to PluginBuilder::new"
        ))
    };
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
            && part.parse::<u64>().is_ok()
    };
    let identifiers_ok = |text: &str, no_leading_zero: bool| {
        text.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!no_leading_zero || !id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        })
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return bad();
    }
    if pre.is_some_and(|pre| !identifiers_ok(pre, true))
        || build.is_some_and(|build| !identifiers_ok(build, false))
    {
        return bad();
    }
    None
}

fn api_version_problem(version: &str) -> Option<String> {
    if let Some(problem) = semver_problem(version) {
        return Some(problem);
    }
    let host = host_api_version();
    let major = |v: &str| v.split('.').next().map(str::to_owned);
    if major(version) != major(&host) {
        return Some(format!(
            "built against export-plugin-api {version}, but this host speaks {host}"
        ));
    }
    None
}

fn valid_mime_type(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or("").trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(essence.split_once('/'), Some((kind, sub)) if token(kind) && token(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_versions() {
        for good in [
            "0.1.0",
            "1.0.0",
            "10.20.30",
            "1.2.3-rc.1",
            "1.2.3-alpha-x+build.007",
        ] {
            assert_eq!(semver_problem(good), None, "{good}");
        }
        for bad in [
            "", "1", "1.0", "1.0.0.0", "01.0.0", "1.0.x", "v1.0.0", "1.0.0-", "1.0.0-01", "1.0.0+",
        ] {
            assert!(semver_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn mime_types() {
        assert!(valid_mime_type("text/csv; charset=utf-8"));
        assert!(valid_mime_type(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ));
        for bad in ["", "text", "text/", "/csv", "text csv/x"] {
            assert!(!valid_mime_type(bad), "{bad}");
        }
    }

    #[test]
    fn another_major_api_version_is_named() {
        let problem = api_version_problem("2.0.0").unwrap();
        assert!(
            problem.contains("2.0.0") && problem.contains(&host_api_version()),
            "{problem}"
        );
        assert_eq!(api_version_problem(&host_api_version()), None);
    }
}
