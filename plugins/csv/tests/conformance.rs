//! The conformance battery of `export-host plugins check`, run on the
//! library this crate builds (docs/plugins.md, "The conformance battery").

use export_host::conformance::{assert_conforms, Inputs};
use serde_json::json;

#[test]
fn the_plugin_passes_the_conformance_battery() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("small.csv"), "id,name\n1,ada\n2,grace\n").unwrap();
    let inputs = Inputs {
        config: Some(json!({ "root": root.path() })),
        selectors: [("csv".to_owned(), json!({ "path": "small.csv" }))].into(),
        ..Inputs::default()
    };
    assert_conforms("export_csv", &inputs);
}
