//! The battery from a plugin crate's own `cargo test` (docs/plugins.md,
//! "The conformance battery"): the library cargo built for the test run,
//! opened with the same file checks as `plugins check` and driven through
//! the same checks.
//!
//! A plugin crate declares `crate-type = ["cdylib", "rlib"]`, so building it
//! for its integration tests also writes `libNAME.so` into the directory the
//! test binaries run from. No probe process is started: a test process is
//! as disposable as the probe, so a library whose initialisers crash fails
//! the test without harming anything else.

use super::{check_library, Inputs, Outcome, Report};
use crate::library::{self, Refusal};
use std::path::{Path, PathBuf};

/// Why the battery could not run on the built library.
#[derive(Debug, thiserror::Error)]
pub enum BuiltError {
    /// The test binary's own path could not be read.
    #[error("cannot tell where this test runs from ({0}); run it with cargo test")]
    NoTestBinary(std::io::Error),
    /// No `libNAME.so` beside the test binary.
    #[error(
        "no {file} in {} or {}: the crate's [lib] must have crate-type = [\"cdylib\", \"rlib\"] \
         and name {name:?} (dashes in the package name become underscores)",
        .looked[0].display(), .looked[1].display()
    )]
    NotBuilt {
        /// The library's name as passed.
        name: String,
        /// The file looked for.
        file: String,
        /// The directories looked in.
        looked: [PathBuf; 2],
    },
    /// The file checks or the load refused the library.
    #[error("{} cannot be used as a plugin ({}): {}", .path.display(), .refusal.0.as_str(), .refusal.1)]
    Refused {
        /// The library file.
        path: PathBuf,
        /// The cause and what was wrong.
        refusal: Refusal,
    },
}

/// The `libNAME.so` cargo built alongside the running test binary: in
/// `target/PROFILE/` (where cargo copies it), else in `target/PROFILE/deps/`
/// (where the test binary itself lives). `name` is the crate's library name,
/// e.g. `export_csv` for the package `export-csv`.
pub fn built_library(name: &str) -> Result<PathBuf, BuiltError> {
    let exe = std::env::current_exe().map_err(BuiltError::NoTestBinary)?;
    let deps = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    let profile = deps.parent().unwrap_or(&deps).to_path_buf();
    let file = format!("lib{name}.so");
    let found = [&profile, &deps]
        .into_iter()
        .map(|dir| dir.join(&file))
        .find(|path| path.is_file());
    found.ok_or(BuiltError::NotBuilt {
        name: name.to_owned(),
        file,
        looked: [profile, deps],
    })
}

/// Runs every check of `plugins check` on the library `name` that cargo
/// built for this test run ([`built_library`]). A test asserts
/// [`Report::passed`] and prints the report, which reads like the
/// command's table, when it did not.
pub fn check_built(name: &str, inputs: &Inputs) -> Result<Report, BuiltError> {
    let path = built_library(name)?;
    let (library, _sha256) =
        library::open_verified(&path, None, &|_copy: &Path| Ok(())).map_err(|refusal| {
            BuiltError::Refused {
                path: path.clone(),
                refusal,
            }
        })?;
    Ok(check_library(&library, inputs))
}

/// For a plugin crate's test: runs [`check_built`] and panics, printing
/// the report, unless every check passed. Only the `panics contained` rows
/// may be not applicable (they need a trigger only the author knows, given
/// in [`Inputs::panic_options`] and [`Inputs::panic_selectors`]); any other
/// check that could not run for want of a config or a selector fails the
/// test, so a missing input never passes as a pass.
pub fn assert_conforms(name: &str, inputs: &Inputs) {
    let report = check_built(name, inputs).unwrap_or_else(|err| panic!("{err}"));
    let skipped: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == Outcome::NotApplicable && !c.check.ends_with("panics contained"))
        .map(|c| c.check.as_str())
        .collect();
    assert!(
        report.passed() && skipped.is_empty(),
        "{name} does not pass the conformance battery{}:\n{report}",
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" (not run for want of input: {})", skipped.join("; "))
        }
    );
}
