//! The other half of the compatibility promise: a host built against
//! export-plugin-api 1.0 (this crate's dependency, the frozen copy, whose
//! `host` module is what a 1.0 host ran) loads a plugin built against the
//! current 1.y and gets whole documents from it. The xlsx formatter hands its
//! file over in pieces (1.1's `finish_more`), which a 1.0 host never asks
//! for: the plugin side must then answer `finish` with the whole file.
//!
//! Needs the workspace's plugins built: `cargo build --release --workspace`.

use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray};
use export_plugin_api::host::PluginLibrary;
use std::path::PathBuf;
use std::sync::Arc;

/// A library of this build, next to the test executable's `deps` folder.
fn built(file: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps")
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: build the plugins first: cargo build --release --workspace",
        path.display()
    );
    path
}

#[test]
fn a_1_0_host_gets_the_whole_xlsx_file_from_finish() {
    // SAFETY: a library of this workspace's own build.
    let library = unsafe { PluginLibrary::load(&built("libexport_xlsx.so")) }.unwrap();
    // Distinct text, so the zip stays several 1 MiB pieces long.
    let values: Vec<String> = (0..200_000u64)
        .map(|row| format!("row {row} {:x}", row.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    let batch =
        RecordBatch::try_from_iter([("v", Arc::new(StringArray::from(values)) as ArrayRef)])
            .unwrap();
    let mut session = library
        .start_formatter("xlsx", "{}", "{}", &batch.schema())
        .unwrap();
    let written = session.write(&batch).unwrap();
    assert!(written.is_empty(), "an xlsx file comes only at the end");
    let file = session.finish().unwrap();
    assert!(file.len() > 3 << 20, "only {} bytes", file.len());
    assert_eq!(&file[..4], b"PK\x03\x04", "a zip's first entry");
    // A zip ends with its end-of-central-directory record (no comment).
    assert_eq!(
        &file[file.len() - 22..][..4],
        b"PK\x05\x06",
        "a complete zip"
    );
}

#[test]
fn a_1_2_loader_in_a_1_0_host_gets_no_caller() {
    use export_plugin_api::arrow_array::cast::AsArray;
    use export_plugin_api::Limits;
    // SAFETY: a library of this workspace's own build.
    let library = unsafe { PluginLibrary::load(&built("libexport_test_whoami.so")) }.unwrap();
    let mut stream = library
        .open_loader("whoami", "{}", "{}", &Limits::default())
        .unwrap();
    let batch = stream.next().expect("one batch").unwrap();
    let credential = batch
        .column_by_name("credential")
        .expect("a credential column")
        .as_string::<i32>()
        .value(0);
    assert_eq!(credential, "none", "an older host passes no caller");
    assert!(batch.column_by_name("user").unwrap().is_null(0));
}
