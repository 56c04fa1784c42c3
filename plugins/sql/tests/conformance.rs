//! The conformance battery of `export-host plugins check`, run on the
//! library this crate builds (docs/plugins.md, "The conformance battery").

use export_host::conformance::{assert_conforms, Inputs};
use serde_json::json;

#[test]
fn the_plugin_passes_the_conformance_battery() {
    let inputs = Inputs {
        config: Some(json!({
            "database": "sqlite::memory:",
            "queries": {
                "numbers": { "sql": "SELECT 1 AS n, 'one' AS word UNION ALL SELECT 2, 'two'" }
            }
        })),
        selectors: [("sql".to_owned(), json!({ "query": "numbers" }))].into(),
        ..Inputs::default()
    };
    assert_conforms("export_sql", &inputs);
}
