//! The conformance battery of `export-host plugins check`, run on the
//! library this crate builds (docs/plugins.md, "The conformance battery").

use export_host::conformance::{assert_conforms, Inputs};

#[test]
fn the_plugin_passes_the_conformance_battery() {
    assert_conforms("export_xlsx", &Inputs::default());
}
