//! A plugin library file, below both the registry (`plugins`) and the
//! worker processes (`isolation`), which each open libraries through it:
//! the trust and structure checks on a private copy ([`trust`]), the
//! verified open, and why a load failed ([`FailureCause`]).
//! docs/architecture.md shows where it sits.

pub mod trust;

use export_plugin_api::host::{LoadError, PluginLibrary};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use trust::TrustError;

/// What went wrong loading a plugin, by cause (for reports and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The file is missing, not a shared object, writable by others, or its checksum differs.
    Trust,
    /// dlopen, the ABI check or the plugin's own start failed.
    Load,
    /// The plugin's `[config]` failed its schema, or it declares invalid schemas.
    Config,
    /// Something plugins.toml asks for that this host cannot do.
    Unsupported,
}

/// Plugin loads refused since the process started, by [`FailureCause`]
/// (a failed reload that kept the serving instance counts too).
static REFUSALS: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

impl FailureCause {
    /// Every cause, in a fixed order.
    pub const ALL: [FailureCause; 4] = [
        FailureCause::Trust,
        FailureCause::Load,
        FailureCause::Config,
        FailureCause::Unsupported,
    ];

    /// How many loads this process refused for this cause since it started
    /// (for `/metrics`).
    pub fn refusals(self) -> u64 {
        REFUSALS[self as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn count_refusal(self) {
        REFUSALS[self as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A short lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Trust => "trust",
            FailureCause::Load => "load",
            FailureCause::Config => "config",
            FailureCause::Unsupported => "unsupported",
        }
    }
}

/// Why a library was refused: the cause and what was wrong.
pub type Refusal = (FailureCause, String);

/// Verifies and loads one library file: the trust and structure checks on
/// a private copy, then `before_load` on that copy (the registry probes it
/// in a child process there), and only then dlopen of the copy here, the
/// version and ABI checks, and the manifest. Returns the library and the
/// file's SHA-256.
pub fn open_verified(
    path: &Path,
    sha256: Option<&str>,
    before_load: &dyn Fn(&Path) -> Result<(), Refusal>,
) -> Result<(PluginLibrary, String), Refusal> {
    let verified = trust::verify(path, sha256)
        .map_err(|err: TrustError| (FailureCause::Trust, err.to_string()))?;
    before_load(&verified.copy)?;
    // SAFETY: the bytes passed the trust checks (regular ELF shared object
    // whose segments fit the file, not writable by others, checksum when
    // pinned), passed `before_load` (a probe load in a child process, when
    // the caller asks for one), and are loaded from a private copy that
    // nobody else can change.
    let library = unsafe { PluginLibrary::load(&verified.copy) }
        .map_err(|err: LoadError| (FailureCause::Load, err.to_string()))?;
    Ok((library, verified.sha256))
}
