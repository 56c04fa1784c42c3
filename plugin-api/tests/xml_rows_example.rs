//! The XML formatter of examples/xml_rows.rs, driven in-process: it writes
//! what the plugin guide says, and the guide shows this very file.

include!("../examples/xml_rows.rs");

use export_plugin_api::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use std::sync::Arc;

fn run(options: &str, batches: &[RecordBatch]) -> Result<String> {
    let plugin = __export_host_build_plugin();
    let schema = batches[0].schema();
    let mut writer = plugin.start_formatter("xml", "{}", options, schema)?;
    let mut out = Vec::new();
    for batch in batches {
        writer.write(batch, &mut out)?;
    }
    writer.finish(&mut out)?;
    Ok(String::from_utf8(out).expect("the formatter writes UTF-8"))
}

fn batch(ids: Vec<i64>, names: Vec<Option<&str>>) -> RecordBatch {
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("a&b", Arc::new(StringArray::from(names)) as ArrayRef),
    ])
    .expect("a valid batch")
}

#[test]
fn rows_become_elements_with_names_and_values_escaped() {
    let out = run(
        "{}",
        &[
            batch(vec![1], vec![Some("<ada> & \"grace\"")]),
            batch(vec![2], vec![None]),
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n\
         <row><cell name=\"id\">1</cell><cell name=\"a&amp;b\">&lt;ada&gt; &amp; &quot;grace&quot;</cell></row>\n\
         <row><cell name=\"id\">2</cell><cell name=\"a&amp;b\"></cell></row>\n\
         </rows>\n"
    );
    let empty = run("{}", &[batch(vec![], vec![])]).unwrap();
    assert!(empty.ends_with("<rows>\n</rows>\n"), "{empty}");
}

#[test]
fn options_are_refused_by_name() {
    let err = run(r#"{"pretty":true}"#, &[batch(vec![], vec![])]).unwrap_err();
    assert_eq!(err.kind, export_plugin_api::ErrorKind::InvalidInput);
    assert!(err.message.contains("\"pretty\""), "{}", err.message);
}

#[test]
fn the_plugin_guide_shows_this_example_verbatim() {
    let root = env!("CARGO_MANIFEST_DIR");
    // Outside the repository (a packaged crate) there is no guide to compare.
    let Ok(guide) = std::fs::read_to_string(format!("{root}/../docs/plugins.md")) else {
        return;
    };
    let example = std::fs::read_to_string(format!("{root}/examples/xml_rows.rs")).unwrap();
    assert!(
        guide.contains(&format!("```rust\n{example}```\n")),
        "docs/plugins.md must show plugin-api/examples/xml_rows.rs verbatim in a ```rust block"
    );
}
