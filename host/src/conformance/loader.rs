//! Checks of one loader, driven through the real ABI.

use super::probes::{with_unknown_key, with_wrong_type};
use super::{describe, Answer, Check, ConfigDoc, Inputs};
use crate::plugins::schema::DocumentSchema;
use export_plugin_api::host::PluginLibrary;
use export_plugin_api::{Caller, Credential, ErrorKind, Limits, LoaderManifest, PluginError};
use serde_json::Value;

/// Every check of loader `component`, and how its first call answered.
pub(crate) fn checks(
    library: &PluginLibrary,
    component: &LoaderManifest,
    config: &ConfigDoc,
    inputs: &Inputs,
) -> (Vec<Check>, Answer) {
    let name = component.name.as_str();
    let label = |what: &str| format!("loader {name:?}: {what}");
    let selector = inputs.selectors.get(name);
    let limits = Limits::default();
    // The first call: a selector with an unknown key must come back as an
    // answer (an error), whatever the config.
    let unknown = with_unknown_key(selector);
    let answer = open_and_drain(library, name, config.text(), &unknown, &limits).map(drop);

    let refused = match config {
        ConfigDoc::Missing(why) => {
            Check::not_applicable(label("invalid selectors refused"), why.clone())
        }
        ConfigDoc::Valid(config) => invalid_selectors(
            library,
            component,
            config,
            selector,
            &limits,
            label("invalid selectors refused"),
        ),
    };
    let streams = match (config, selector) {
        (ConfigDoc::Missing(why), _) => {
            Check::not_applicable(label("streams a selector"), why.clone())
        }
        (_, None) => Check::not_applicable(
            label("streams a selector"),
            format!("no selector was given; pass --selector {name}=JSON to stream one"),
        ),
        (ConfigDoc::Valid(config), Some(selector)) => {
            // As a user would ask: a loader of 1.2 or later may need a caller.
            let user = sample_callers()[1]
                .1
                .clone()
                .filter(|_| library.knows_callers());
            match open_and_drain_for(library, name, config, selector, &limits, user.as_ref()) {
                Ok((rows, batches, columns)) => Check::pass(
                    label("streams a selector"),
                    format!("{rows} rows in {batches} batches of {columns} columns, every batch of the declared schema"),
                ),
                Err(err) => Check::fail(label("streams a selector"), describe(&err)),
            }
        }
    };
    let panics = match (config, inputs.panic_selectors.get(name)) {
        (_, None) => Check::not_applicable(
            label("panics contained"),
            format!(
                "no way to make it panic was given; pass --panic-selector {name}=JSON to check"
            ),
        ),
        (ConfigDoc::Missing(why), _) => {
            Check::not_applicable(label("panics contained"), why.clone())
        }
        (ConfigDoc::Valid(config), Some(panic_selector)) => {
            match open_and_drain(library, name, config, panic_selector, &limits) {
                Ok(_) => Check::fail(
                    label("panics contained"),
                    format!("selector {panic_selector} did not make it panic"),
                ),
                Err(err) if err.kind != ErrorKind::Panic => Check::fail(
                    label("panics contained"),
                    format!(
                        "selector {panic_selector} gave a {} error, not a panic: {}",
                        err.kind, err.message
                    ),
                ),
                Err(panic) => {
                    // The library must still answer after a panic.
                    match open_and_drain(library, name, config, &unknown, &limits) {
                        Err(err) if err.kind == ErrorKind::Panic => Check::fail(
                            label("panics contained"),
                            format!(
                                "after the panic, it panicked again on the next call: {}",
                                err.message
                            ),
                        ),
                        _ => Check::pass(
                            label("panics contained"),
                            format!("came back as an error: {}", panic.message),
                        ),
                    }
                }
            }
        }
    };
    let callers = match (config, selector) {
        _ if !library.knows_callers() => Check::not_applicable(
            label("callers"),
            "built against plugin-api older than 1.2: the host passes it no caller",
        ),
        (ConfigDoc::Missing(why), _) => Check::not_applicable(label("callers"), why.clone()),
        (_, None) => Check::not_applicable(
            label("callers"),
            format!("no selector was given; pass --selector {name}=JSON to check"),
        ),
        (ConfigDoc::Valid(config), Some(selector)) => {
            with_and_without_callers(library, name, config, selector, &limits, label("callers"))
        }
    };
    (vec![refused, streams, panics, callers], answer)
}

/// The callers the battery tries: none, a user, an admin.
fn sample_callers() -> [(&'static str, Option<Caller>); 3] {
    let user = Caller {
        user: "conformance-user".to_owned(),
        admin: false,
        credential: Credential::Token {
            id: "tok_conformance".to_owned(),
        },
    };
    let admin = Caller {
        admin: true,
        ..user.clone()
    };
    [
        ("no caller", None),
        ("a user", Some(user)),
        ("an admin", Some(admin)),
    ]
}

/// `validate` and `open_for` with no caller, a user and an admin: each
/// answers without a panic or an internal error, and `validate` never
/// refuses what `open_for` then accepts.
fn with_and_without_callers(
    library: &PluginLibrary,
    name: &str,
    config: &str,
    selector: &Value,
    limits: &Limits,
    label: String,
) -> Check {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    let text = selector.to_string();
    let broken = |err: &PluginError| matches!(err.kind, ErrorKind::Panic | ErrorKind::Internal);
    for (who, caller) in sample_callers() {
        let validated = library.validate_loader(name, config, &text, caller.as_ref());
        let opened = open_and_drain_for(library, name, config, selector, limits, caller.as_ref());
        match (&validated, &opened) {
            (Err(err), _) if broken(err) => problems.push(format!(
                "validate with {who} gave a {} error: {}",
                err.kind, err.message
            )),
            (_, Err(err)) if broken(err) => problems.push(format!(
                "open_for with {who} gave a {} error: {}",
                err.kind, err.message
            )),
            (Err(err), Ok(_)) => problems.push(format!(
                "validate refused {who} ({}) but open_for accepted",
                err.message
            )),
            (Ok(()), Ok((rows, _, _))) => seen.push(format!("{who}: {rows} rows")),
            (_, Err(err)) => seen.push(format!("{who}: refused ({})", err.kind)),
        }
    }
    if problems.is_empty() {
        Check::pass(label, seen.join("; "))
    } else {
        Check::fail(label, problems.join("; "))
    }
}

/// Opens loader `name` and pulls every batch; returns rows, batches, columns.
fn open_and_drain(
    library: &PluginLibrary,
    name: &str,
    config: &str,
    selector: &Value,
    limits: &Limits,
) -> Result<(usize, usize, usize), PluginError> {
    open_and_drain_for(library, name, config, selector, limits, None)
}

/// [`open_and_drain`] for `caller`.
fn open_and_drain_for(
    library: &PluginLibrary,
    name: &str,
    config: &str,
    selector: &Value,
    limits: &Limits,
    caller: Option<&Caller>,
) -> Result<(usize, usize, usize), PluginError> {
    let stream = library.open_loader_for(name, config, &selector.to_string(), limits, caller)?;
    let schema = stream.schema();
    let (mut rows, mut batches) = (0, 0);
    for batch in stream {
        let batch = batch?;
        if batch.schema_ref().fields() != schema.fields() {
            return Err(PluginError::internal(format!(
                "batch {} has schema {} but the stream declared {}",
                batches + 1,
                batch.schema(),
                schema
            )));
        }
        rows += batch.num_rows();
        batches += 1;
    }
    Ok((rows, batches, schema.fields().len()))
}

/// An unknown key and a wrongly typed field: the schema (the host's check)
/// and the plugin itself must both refuse them, with `invalid_input`.
fn invalid_selectors(
    library: &PluginLibrary,
    component: &LoaderManifest,
    config: &str,
    selector: Option<&Value>,
    limits: &Limits,
    label: String,
) -> Check {
    let Ok(schema) = DocumentSchema::compile(&component.selector_schema) else {
        return Check::not_applicable(label, "the selector schema does not compile");
    };
    let mut probes = vec![("an unknown key".to_owned(), with_unknown_key(selector))];
    if let Some((field, doc)) = with_wrong_type(&component.selector_schema, selector) {
        probes.push((format!("a wrong type for {field:?}"), doc));
    }
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (what, doc) in &probes {
        if schema.check("selector", doc).is_ok() {
            problems.push(format!(
                "the selector schema accepts {what} ({doc}); use #[serde(deny_unknown_fields)] and typed fields"
            ));
        }
        match open_and_drain(library, &component.name, config, doc, limits) {
            Ok(_) => problems.push(format!("open accepted {what} ({doc})")),
            Err(err) if err.kind == ErrorKind::InvalidInput => seen.push(what.clone()),
            Err(err) => problems.push(format!(
                "open refused {what} with a {} error instead of invalid_input: {}",
                err.kind, err.message
            )),
        }
    }
    if problems.is_empty() {
        Check::pass(label, format!("refused {}", seen.join(" and ")))
    } else {
        Check::fail(label, problems.join("; "))
    }
}
