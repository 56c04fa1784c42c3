//! The conformance battery behind `export-host plugins check`.
//!
//! It drives a loaded [`PluginLibrary`] through the real ABI, exactly as an
//! export does, and records one [`Check`] per property a plugin must have:
//!
//! - the manifest is well formed (names, semver versions, a plugin-api major
//!   this host speaks) and every schema is a valid JSON Schema ([`manifest`]);
//! - every entry point answers;
//! - every formatter handles an empty stream, one row, nulls in every
//!   promised column type, every promised type, Unicode text and a
//!   1,000,000-row stream in flat memory, and refuses invalid options
//!   ([`formatter`]);
//! - every loader refuses invalid selectors, and streams a selector the
//!   author passes ([`loader`]);
//! - a panic the author knows how to trigger comes back as an error value and
//!   leaves the component usable.
//!
//! A check that cannot run without input only the author has (a config, a
//! selector, a panic trigger) is reported as not applicable, never as passed.
//!
//! A plugin crate runs the same checks from its own `cargo test` with
//! [`assert_conforms`] ([`built`]).

pub mod built;
pub mod formatter;
pub mod loader;
pub mod manifest;
pub mod memory;
pub mod probes;
pub mod samples;

use crate::plugins::schema::DocumentSchema;
use export_plugin_api::host::PluginLibrary;
use export_plugin_api::{ErrorKind, PluginError};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

pub use built::{assert_conforms, built_library, check_built, BuiltError};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The plugin has the property.
    #[serde(rename = "pass")]
    Pass,
    /// It has not; the detail says what happened and what to do.
    #[serde(rename = "fail")]
    Fail,
    /// The check could not run; the detail says what input it needs.
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Outcome {
    /// The word in the text table.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "ok",
            Outcome::Fail => "FAIL",
            Outcome::NotApplicable => "n/a",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked, e.g. `formatter "csv": empty stream`.
    pub check: String,
    /// The outcome.
    pub status: Outcome,
    /// What was seen (figures for a pass, the problem for a failure).
    pub detail: String,
}

impl Check {
    /// A passed check.
    pub fn pass(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            status: Outcome::Pass,
            detail: detail.into(),
        }
    }
    /// A failed check.
    pub fn fail(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            status: Outcome::Fail,
            detail: detail.into(),
        }
    }
    /// A check that could not run.
    pub fn not_applicable(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            status: Outcome::NotApplicable,
            detail: detail.into(),
        }
    }
    /// A pass when `problem` is `None`.
    pub fn from_problem(check: impl Into<String>, problem: Option<String>) -> Check {
        match problem {
            None => Check::pass(check, ""),
            Some(problem) => Check::fail(check, problem),
        }
    }
}

/// What the author passes to `plugins check` beyond the library.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The plugin's `[config]` table (`--config`).
    pub config: Option<Value>,
    /// Valid options per formatter (`--options NAME=JSON`); `{}` otherwise.
    pub options: BTreeMap<String, Value>,
    /// A valid selector per loader (`--selector NAME=JSON`).
    pub selectors: BTreeMap<String, Value>,
    /// Options that make a formatter panic (`--panic-options NAME=JSON`).
    pub panic_options: BTreeMap<String, Value>,
    /// A selector that makes a loader panic (`--panic-selector NAME=JSON`).
    pub panic_selectors: BTreeMap<String, Value>,
    /// Rows in the flat-memory stream.
    pub stream_rows: usize,
    /// The most the host's resident memory may grow while that stream runs.
    pub memory_bound_bytes: u64,
}

/// Rows in the flat-memory stream by default.
pub const STREAM_ROWS: usize = 1_000_000;

/// How much the host process's resident set may grow while a formatter
/// writes [`STREAM_ROWS`] rows, measured after a warm-up of a few batches.
/// A formatter that keeps a few batches or a bounded buffer stays far below
/// it; one that keeps every row (about 90 MB of text here) does not.
pub const MEMORY_BOUND_BYTES: u64 = 64 * 1024 * 1024;

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            config: None,
            options: BTreeMap::new(),
            selectors: BTreeMap::new(),
            panic_options: BTreeMap::new(),
            panic_selectors: BTreeMap::new(),
            stream_rows: STREAM_ROWS,
            memory_bound_bytes: MEMORY_BOUND_BYTES,
        }
    }
}

/// The battery's findings, in the order the checks ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every check.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.failed().next().is_none()
    }

    /// The failed checks.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Outcome::Fail)
    }

    /// How many checks came out `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.status == outcome).count()
    }
}

/// The text table of `plugins check`: `  ok    CHECK  detail` with the check
/// names aligned, then a summary line.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .checks
            .iter()
            .map(|c| c.check.chars().count())
            .max()
            .unwrap_or(0);
        for check in &self.checks {
            let line = format!(
                "  {:<6}{:<width$}  {}",
                check.status.label(),
                check.check,
                check.detail
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        let passed = self.count(Outcome::Pass);
        let not_applicable = self.count(Outcome::NotApplicable);
        let failed = self.count(Outcome::Fail);
        let checks = |n: usize| if n == 1 { "check" } else { "checks" };
        if failed == 0 {
            write!(f, "{passed} {} passed", checks(passed))?;
        } else {
            write!(f, "{failed} {} failed, {passed} passed", checks(failed))?;
        }
        if not_applicable > 0 {
            write!(f, ", {not_applicable} not applicable")?;
        }
        writeln!(f)
    }
}

/// The plugin config the component checks run with, and why there is none.
pub(crate) enum ConfigDoc {
    /// Valid against the plugin's config schema.
    Valid(String),
    /// None is valid; loaders cannot be checked without one.
    Missing(String),
}

impl ConfigDoc {
    /// The document to pass anyway (`{}` when none is valid), for calls that
    /// only check that the plugin answers.
    pub(crate) fn text(&self) -> &str {
        match self {
            ConfigDoc::Valid(text) => text,
            ConfigDoc::Missing(_) => "{}",
        }
    }
}

/// Runs every check on `library`.
pub fn check_library(library: &PluginLibrary, inputs: &Inputs) -> Report {
    let manifest = library.manifest();
    let mut checks = manifest::checks(manifest);
    let config_schema = DocumentSchema::compile(&manifest.config_schema).ok();
    let config = match &inputs.config {
        Some(value) => {
            let problem = match &config_schema {
                Some(schema) => schema.check("config", value).err().map(|e| e.to_string()),
                None => Some("the plugin's config schema does not compile".to_owned()),
            };
            let doc = match &problem {
                None => ConfigDoc::Valid(value.to_string()),
                Some(problem) => ConfigDoc::Missing(format!("the --config given fails: {problem}")),
            };
            checks.push(Check::from_problem("config", problem));
            doc
        }
        None => match &config_schema {
            Some(schema)
                if schema
                    .check("config", &Value::Object(Default::default()))
                    .is_ok() =>
            {
                ConfigDoc::Valid("{}".to_owned())
            }
            _ => ConfigDoc::Missing(
                "the plugin's config schema refuses {}: pass a valid config with --config JSON"
                    .to_owned(),
            ),
        },
    };
    let mut answers = Vec::new();
    let mut components = Vec::new();
    for component in &manifest.formatters {
        let (rows, answer) = formatter::checks(library, component, &config, inputs);
        components.extend(rows);
        answers.push((format!("formatter {:?}", component.name), answer));
    }
    for component in &manifest.loaders {
        let (rows, answer) = loader::checks(library, component, &config, inputs);
        components.extend(rows);
        answers.push((format!("loader {:?}", component.name), answer));
    }
    checks.push(entry_points_answer(&answers));
    checks.extend(components);
    Report { checks }
}

/// How a component's first call ended: `Ok`, or the error it answered with.
pub(crate) type Answer = Result<(), PluginError>;

fn entry_points_answer(answers: &[(String, Answer)]) -> Check {
    const NAME: &str = "entry points answer";
    let panicked: Vec<String> = answers
        .iter()
        .filter_map(|(what, answer)| match answer {
            Err(err) if err.kind == ErrorKind::Panic => Some(format!("{what}: {}", err.message)),
            _ => None,
        })
        .collect();
    if !panicked.is_empty() {
        return Check::fail(NAME, format!("panicked: {}", panicked.join("; ")));
    }
    let mut detail = vec!["manifest".to_owned()];
    detail.extend(answers.iter().map(|(what, answer)| match answer {
        Ok(()) => what.clone(),
        Err(err) => format!("{what} (answered {})", err.kind),
    }));
    Check::pass(NAME, detail.join(", "))
}

/// `err` as the detail of a failed check, saying when it was a panic.
pub(crate) fn describe(err: &PluginError) -> String {
    if err.kind == ErrorKind::Panic {
        format!("panicked (contained): {}", err.message)
    } else {
        format!("{} error: {}", err.kind, err.message)
    }
}
