//! The stable ABI between the host and plugin libraries.
//!
//! Every use of `abi_stable` is confined to this module, so the control plane
//! could move to another stable-ABI crate without touching plugins' source.
//!
//! - **Control plane**: one root module per library ([`PluginModRef`]), a
//!   prefix type: later 1.x versions may only *append* functions (marked
//!   `#[sabi(missing_field(option))]`), so plugins built against 1.0 keep
//!   loading. Documents (manifest, config, selector, options, limits) cross as
//!   JSON text, so they can grow without an ABI change. Errors cross as values
//!   ([`AbiError`]), never as panics.
//! - **Data plane**: Arrow's C data and C stream interfaces. A loader fills an
//!   `FFI_ArrowArrayStream`; a formatter receives each batch as an
//!   `FFI_ArrowArray` whose schema it was given once at start. Buffers are
//!   shared, never copied, and released by their owner's callback.
//!
//! **The layouts are frozen for all of 1.x.** abi_stable refuses a library
//! whose prefix types have fewer fields than the host's, so a host that
//! appended a function would refuse every older plugin. What a later 1.y
//! adds travels in the JSON documents instead, and only to plugins whose
//! plugin-api version knows it: the host's hints ([`HostHints`]) ride in a
//! formatter's options under [`HOST_HINTS_KEY`], removed on the plugin side
//! before the formatter sees them.

// abi_stable 0.11's #[sabi_trait] emits impls inside a generated const block.
#![allow(non_local_definitions)]

mod fraction;
pub(crate) mod guest;
pub mod host;
mod validate;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, package_version_strings, sabi_trait, StableAbi};
use std::borrow::Cow;
use std::ffi::c_void;

use crate::error::{ErrorKind, PluginError};

/// An error crossing the boundary: [`ErrorKind::code`] and a message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AbiError {
    code: u32,
    message: RString,
}

impl From<PluginError> for AbiError {
    fn from(err: PluginError) -> Self {
        AbiError {
            code: err.kind.code(),
            message: err.message.into(),
        }
    }
}

impl From<AbiError> for PluginError {
    fn from(err: AbiError) -> Self {
        PluginError::new(ErrorKind::from_code(err.code), err.message.into_string())
    }
}

/// The root module every plugin library exports. Frozen: see the module docs.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
pub struct PluginMod {
    /// The manifest as JSON.
    pub manifest: extern "C" fn() -> RResult<RString, AbiError>,
    /// `(loader, config, selector, limits, out: *mut FFI_ArrowArrayStream)`:
    /// on success the plugin has written a live stream to `out`.
    pub open_loader:
        extern "C" fn(RStr<'_>, RStr<'_>, RStr<'_>, RStr<'_>, *mut c_void) -> RResult<(), AbiError>,
    /// `(formatter, config, options, schema: *const FFI_ArrowSchema)`: the
    /// plugin copies the schema; the host keeps ownership of it.
    #[sabi(last_prefix_field)]
    pub start_formatter: extern "C" fn(
        RStr<'_>,
        RStr<'_>,
        RStr<'_>,
        *const c_void,
    ) -> RResult<FormatWriterBox, AbiError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "export_host_plugin";
    const NAME: &'static str = "export-host plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// A running formatter on the far side of the boundary.
#[sabi_trait]
pub trait AbiFormatWriter: Send {
    /// `batch: *mut FFI_ArrowArray`, a struct array of the start schema; the
    /// plugin takes ownership of it (leaving it released). Returns output bytes.
    fn write(&mut self, batch: *mut c_void) -> RResult<RVec<u8>, AbiError>;
    /// Returns the closing bytes.
    #[sabi(last_prefix_field)]
    fn finish(&mut self) -> RResult<RVec<u8>, AbiError>;
}

/// The key of a formatter's options under which a host of 1.1 or later
/// passes its [`HostHints`] to a plugin of 1.1 or later.
pub(crate) const HOST_HINTS_KEY: &str = "$host";

/// What the host tells the plugin side of a formatter, beyond its options.
///
/// Keep it flat, fields of plain values: it is spliced into the options as
/// their first member, so removing it again is exact and the formatter gets
/// its options byte for byte (key order included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct HostHints {
    /// Since 1.1: the host calls `finish` again until it answers no bytes,
    /// so the closing output may come in pieces (`FormatWriter::finish_more`).
    /// Without it `finish` answers with all of it, as a 1.0 host expects.
    #[serde(default)]
    pub finish_in_pieces: bool,
}

impl HostHints {
    /// `options` (a JSON object) with the hints as its first member; `None`
    /// when the options are not an object.
    pub(crate) fn add_to(self, options: &str) -> Option<String> {
        let body = options.trim_start().strip_prefix('{')?;
        let hints = serde_json::to_string(&self).ok()?;
        let rest = if body.trim_start().starts_with('}') {
            "}".to_owned()
        } else {
            format!(",{body}")
        };
        Some(format!("{{\"{HOST_HINTS_KEY}\":{hints}{rest}"))
    }

    /// Takes the hints out of `options`: the options the formatter sees, and
    /// the hints (all off from a host that sent none).
    pub(crate) fn take_from(options: &str) -> (Cow<'_, str>, HostHints) {
        let none = || (Cow::Borrowed(options), HostHints::default());
        let Some(after) = options.strip_prefix(&format!("{{\"{HOST_HINTS_KEY}\":")) else {
            return none();
        };
        let Some(end) = after.find('}') else {
            return none();
        };
        let Ok(hints) = serde_json::from_str::<HostHints>(&after[..=end]) else {
            return none();
        };
        let tail = &after[end + 1..];
        if let Some(members) = tail.strip_prefix(',') {
            (Cow::Owned(format!("{{{members}")), hints)
        } else if tail.starts_with('}') {
            (Cow::Owned(format!("{{{tail}")), hints)
        } else {
            none()
        }
    }
}

/// What the host tells the plugin side of a loader, beyond its limits
/// (since 1.2). It rides in the limits document under [`HOST_HINTS_KEY`];
/// `Limits` ignores unknown members, so plugins of 1.0 and 1.1 never see it,
/// and the host sends it only to plugins of 1.2 or later.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LoaderHints {
    /// The caller the host verified; `None` when it has none to pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<crate::caller::Caller>,
    /// Run `Loader::validate` only, and answer an empty stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validate_only: bool,
    /// End the stream with the reader's [`crate::BatchReader::notes`], when
    /// it has any, as a last error marked [`NOTES_CODE`] instead of a plain
    /// end. A host that does not ask never gets one, so older hosts keep
    /// seeing plain ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notes: bool,
    /// Since 1.3: after each batch, tell how far the read is
    /// ([`crate::BatchReader::fraction`]) in the stream's error text (see
    /// [`fraction`]). A host that does not ask never gets one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fraction: bool,
}

/// The code in a stream's last-error text (between two wire marks, where an
/// error carries its kind) that says "the end, and here are the reader's
/// notes as a JSON object" rather than an error.
pub(crate) const NOTES_CODE: &str = "notes";

/// The limits document a loader receives: the limits and the host's hints.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct LimitsDocument {
    #[serde(flatten)]
    pub limits: crate::loader::Limits,
    #[serde(rename = "$host", default, skip_serializing_if = "Option::is_none")]
    pub hints: Option<LoaderHints>,
}

/// The owned, type-erased formatter object that crosses the boundary.
pub type FormatWriterBox = AbiFormatWriter_TO<'static, RBox<()>>;

/// Items `export_plugin!` expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use super::guest::root_module;
    pub use super::PluginModRef;
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

#[cfg(test)]
mod tests {
    use super::{HostHints, HOST_HINTS_KEY};

    #[test]
    fn hints_travel_in_the_options_and_leave_them_byte_for_byte() {
        let hints = HostHints {
            finish_in_pieces: true,
        };
        for options in [r#"{"z": 1, "a": {"b": "}"}}"#, "{}", " { } ", "{\n}"] {
            let sent = hints.add_to(options).unwrap();
            assert!(
                sent.starts_with(&format!(r#"{{"{HOST_HINTS_KEY}":"#)),
                "{sent}"
            );
            let parsed: serde_json::Value = serde_json::from_str(&sent).unwrap();
            assert_eq!(parsed[HOST_HINTS_KEY]["finish_in_pieces"], true);
            let (back, got) = HostHints::take_from(&sent);
            assert_eq!(got, hints);
            let original: serde_json::Value = serde_json::from_str(options).unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&back).unwrap(),
                original
            );
        }
        let options = r#"{"z": 1, "a": {"b": "}"}}"#;
        let sent = hints.add_to(options).unwrap();
        assert_eq!(
            HostHints::take_from(&sent).0,
            options,
            "byte for byte, key order kept"
        );
        // From a host that sends none, or options that are not an object.
        for plain in [r#"{"pretty":true}"#, "{}", "null"] {
            let (back, got) = HostHints::take_from(plain);
            assert_eq!((back.as_ref(), got), (plain, HostHints::default()));
        }
        assert_eq!(hints.add_to("null"), None);
    }

    #[test]
    fn the_caller_rides_in_the_limits_and_older_plugins_ignore_it() {
        use super::{LimitsDocument, LoaderHints};
        use crate::{Caller, Limits};
        let document = LimitsDocument {
            limits: Limits {
                max_rows: 7,
                batch_size: 3,
            },
            hints: Some(LoaderHints {
                caller: Some(Caller::user("u_ada")),
                validate_only: true,
                notes: true,
                fraction: true,
            }),
        };
        let text = serde_json::to_string(&document).unwrap();
        // What a 1.0 or 1.1 plugin parses: the limits alone.
        let limits: Limits = serde_json::from_str(&text).unwrap();
        assert_eq!((limits.max_rows, limits.batch_size), (7, 3));
        let back: LimitsDocument = serde_json::from_str(&text).unwrap();
        assert_eq!(back.hints, document.hints);
        // From a host that sends none.
        let plain: LimitsDocument = serde_json::from_str(r#"{"max_rows":1}"#).unwrap();
        assert_eq!(plain.hints, None);
    }

    #[test]
    fn exported_symbol_name_matches_abi_stable() {
        // export_plugin! spells the symbol out because #[export_name] needs a literal.
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
