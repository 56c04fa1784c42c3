//! The conformance battery of `export-host plugins check`, run on the
//! library this crate builds (docs/plugins.md, "The conformance battery").

use export_host::conformance::{assert_conforms, Inputs};
use serde_json::json;

#[test]
fn the_plugin_passes_the_conformance_battery() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("small.jsonl"),
        "{\"a\":1}\n{\"a\":\"x\"}\n",
    )
    .unwrap();
    let inputs = Inputs {
        config: Some(json!({ "root": root.path() })),
        selectors: [("jsonl".to_owned(), json!({ "path": "small.jsonl" }))].into(),
        ..Inputs::default()
    };
    assert_conforms("export_json", &inputs);
}
