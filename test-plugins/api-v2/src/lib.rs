//! Test fixture: an export-host root module that declares plugin-api 2.0.0
//! with a layout of its own. The host must refuse it, naming both versions.

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::{declare_root_module_statics, export_root_module, StableAbi};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = FutureModRef)))]
pub struct FutureMod {
    #[sabi(last_prefix_field)]
    pub describe: extern "C" fn() -> u32,
}

impl RootModule for FutureModRef {
    declare_root_module_statics! {FutureModRef}
    const BASE_NAME: &'static str = "export_host_plugin";
    const NAME: &'static str = "export-host plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("2.0.0");
}

extern "C" fn describe() -> u32 {
    2
}

#[export_root_module]
pub fn root_module() -> FutureModRef {
    FutureMod { describe }.leak_into_prefix()
}
