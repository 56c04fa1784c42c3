//! abi_stable records the package name and version of every type in a
//! plugin's layout (`make_item_info!` reads `CARGO_PKG_NAME`), and the host's
//! load-time check refuses types from another package. A plugin built against
//! the published 1.0.0 carries `export-plugin-api;1.0.0`; so must this copy,
//! or the test would prove nothing about real 1.0 plugins.
fn main() {
    println!("cargo::rustc-env=CARGO_PKG_NAME=export-plugin-api");
    println!("cargo::rerun-if-changed=build.rs");
}
