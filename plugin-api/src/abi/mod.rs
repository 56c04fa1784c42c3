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

// abi_stable 0.11's #[sabi_trait] emits impls inside a generated const block.
#![allow(non_local_definitions)]

pub(crate) mod guest;
pub mod host;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, package_version_strings, sabi_trait, StableAbi};
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

/// The root module every plugin library exports.
///
/// Append new functions after `start_formatter` only, each with
/// `#[sabi(missing_field(option))]`, and never reorder or change existing ones.
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
    /// Returns all the closing bytes (what a 1.0 host calls).
    #[sabi(last_prefix_field)]
    fn finish(&mut self) -> RResult<RVec<u8>, AbiError>;
    /// Since 1.1: returns the first piece of the closing bytes; the host then
    /// calls `finish_more` until it returns no bytes. A 1.0 plugin lacks this
    /// method, and the fallback below answers with all of `finish`.
    fn finish_first(&mut self) -> RResult<RVec<u8>, AbiError> {
        self.finish()
    }
    /// Since 1.1: the next piece of the closing bytes, empty once there are
    /// no more (a 1.0 plugin has none after `finish`).
    fn finish_more(&mut self) -> RResult<RVec<u8>, AbiError> {
        RResult::ROk(RVec::new())
    }
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
    #[test]
    fn exported_symbol_name_matches_abi_stable() {
        // export_plugin! spells the symbol out because #[export_name] needs a literal.
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
