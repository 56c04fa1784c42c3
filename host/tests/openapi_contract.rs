//! The OpenAPI document is a contract clients generate code from: every
//! operation has a unique, descriptive operationId, and an independent
//! validator (`openapi-spec-validator`, installed by `.ci/test`) accepts it,
//! and a TypeScript client type-checks against types generated from it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn document() -> serde_json::Value {
    serde_json::to_value(export_host::server::openapi()).expect("the document serializes")
}

#[test]
fn every_operation_has_a_unique_operation_id() {
    let doc = document();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            let op = format!("{} {path}", method.to_uppercase());
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{op} has no operationId"))
                .to_owned();
            // A verb and a noun, so generated clients read well.
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().any(|c| c.is_ascii_uppercase()),
                "{op}: operationId {id:?} should be lowerCamelCase, e.g. listExports"
            );
            if let Some(other) = seen.insert(id.clone(), op.clone()) {
                panic!("{op} and {other} share the operationId {id:?}");
            }
        }
    }
    assert!(seen.len() >= 11, "{seen:?}");
}

#[test]
fn an_independent_validator_accepts_the_document() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document().to_string()).expect("writing the document");
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("running python3 (openapi-spec-validator comes from PyPI; .ci/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document (install it with \
         `python3 -m pip install openapi-spec-validator` if it is missing):\n{text}"
    );
}

/// Runs one of the npm tools of `clients/typescript` (installed there by
/// `npm ci`, which `.ci/test` runs).
fn npm_tool(folder: &Path, tool: &str, args: &[&str]) {
    let binary = folder.join("node_modules/.bin").join(tool);
    assert!(
        binary.exists(),
        "{} is missing: run `npm ci` in {}",
        binary.display(),
        folder.display()
    );
    let output = Command::new(&binary)
        .args(args)
        .current_dir(folder)
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", binary.display()));
    assert!(
        output.status.success(),
        "{tool} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_typescript_client_type_checks_against_types_generated_from_the_document() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript");
    let generated = folder.join("generated");
    std::fs::create_dir_all(&generated).expect("creating clients/typescript/generated");
    std::fs::write(generated.join("openapi.json"), document().to_string())
        .expect("writing the document");
    npm_tool(
        &folder,
        "openapi-typescript",
        &["generated/openapi.json", "-o", "generated/api.d.ts"],
    );
    npm_tool(&folder, "tsc", &["-p", "."]);
}
