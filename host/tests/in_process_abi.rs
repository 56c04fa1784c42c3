//! Plugin libraries loaded into this test process through the real ABI
//! (`export_plugin_api::host::PluginLibrary`), as the host loads them.

mod common;

use common::*;
use export_plugin_api::arrow_array::{Array, RecordBatch, StringArray};
use export_plugin_api::host::PluginLibrary;
use export_plugin_api::{ErrorKind, Limits, PluginError};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The library built as `file`, loaded once per test process (libraries are
/// never unloaded, so tests share them).
fn load(file: &str) -> PluginLibrary {
    static LOADED: Mutex<BTreeMap<String, PluginLibrary>> = Mutex::new(BTreeMap::new());
    let mut loaded = LOADED.lock().unwrap_or_else(|poison| poison.into_inner());
    loaded
        .entry(file.to_owned())
        .or_insert_with(|| {
            // SAFETY: a library this workspace built, loaded as the host would.
            unsafe { PluginLibrary::load(&library(file)) }
                .unwrap_or_else(|err| panic!("{file} does not load: {err}"))
        })
        .clone()
}

/// The text in every cell of the first column.
fn first_column(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| {
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("a Utf8 column");
            (0..column.len())
                .map(|i| column.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_panic(result: Result<impl Sized, PluginError>, message: &str) {
    match result {
        Ok(_) => panic!("expected the panic {message:?} as an error"),
        Err(err) => {
            assert_eq!(err.kind, ErrorKind::Panic, "{err}");
            assert!(err.message.contains(message), "{err}");
        }
    }
}

/// Opens panicky's `boom` loader with `{"at": at}`.
fn boom(at: &str) -> Result<export_plugin_api::host::LoaderStream, PluginError> {
    load(PANICKY_LIB).open_loader(
        "boom",
        "{}",
        &format!(r#"{{"at":"{at}"}}"#),
        &Limits::default(),
    )
}

/// Panicky's loader with nothing to misbehave: its words.
fn boom_words() -> Vec<String> {
    let batches: Result<Vec<RecordBatch>, _> = boom("none").expect("opens").collect();
    first_column(&batches.expect("reads"))
}

/// Loads two libraries into this process and proves they are two distinct
/// libraries (not one handed back twice by a cache): their manifests differ,
/// a call to one never reaches the other, and both files are mapped.
fn assert_side_by_side(files: [&str; 2]) -> [PluginLibrary; 2] {
    let libraries = files.map(load);
    let [a, b] = [libraries[0].manifest(), libraries[1].manifest()];
    assert_ne!(a.name, b.name);
    assert_ne!(a, b);
    for (one, other) in [
        (&libraries[0], &libraries[1]),
        (&libraries[1], &libraries[0]),
    ] {
        let name = &one.manifest().loaders[0].name;
        if other.manifest().loaders.iter().all(|l| &l.name != name) {
            let err = other
                .open_loader(name, "{}", "{}", &Limits::default())
                .err()
                .expect("an error");
            let owner = format!("plugin {:?} has no loader {name:?}", other.manifest().name);
            assert!(err.message.contains(&owner), "{err}");
        }
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for file in files {
        let path = library(file);
        assert!(
            maps.contains(path.to_str().unwrap()),
            "{} is not mapped",
            path.display()
        );
    }
    libraries
}

#[test]
fn csv_and_panicky_load_side_by_side() {
    assert_side_by_side([CSV_LIB, PANICKY_LIB]);
}

#[test]
fn csv_and_json_load_side_by_side_and_share_batches() {
    let [csv, json] = assert_side_by_side([CSV_LIB, JSON_LIB]);
    assert_eq!(csv.manifest().name, "csv");
    assert_eq!(json.manifest().name, "json");

    // A batch from the csv library's loader, formatted by the json library.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,text\n007,\"x\r\ny\"\n").unwrap();
    let config = serde_json::json!({ "root": dir.path() }).to_string();
    let stream = csv
        .open_loader("csv", &config, r#"{"path":"a.csv"}"#, &Limits::default())
        .unwrap();
    let schema = stream.schema();
    let batches: Vec<RecordBatch> = stream.collect::<Result<_, _>>().unwrap();
    let mut session = json.start_formatter("jsonl", "{}", "{}", &schema).unwrap();
    let mut bytes = Vec::new();
    for batch in &batches {
        bytes.extend_from_slice(&session.write(batch).unwrap());
    }
    bytes.extend_from_slice(&session.finish().unwrap());
    let rows = read_jsonl(&bytes);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].keys(), ["id", "text"]);
    assert_eq!(rows[0].0[0].1.get(), "\"007\"");
    assert_eq!(rows[0].0[1].1.get(), "\"x\\r\\ny\"");
}

#[test]
fn csv_library_round_trips_through_the_abi() {
    let csv = load(CSV_LIB);
    let dir = tempfile::tempdir().unwrap();
    let input = write_csv(&hard_table());
    std::fs::write(dir.path().join("hard.csv"), &input).unwrap();
    let config = serde_json::json!({ "root": dir.path() }).to_string();
    let limits = Limits {
        batch_size: 5,
        ..Limits::default()
    };
    let stream = csv
        .open_loader("csv", &config, r#"{"path":"hard.csv"}"#, &limits)
        .unwrap();
    let schema = stream.schema();
    let mut session = csv.start_formatter("csv", "{}", "{}", &schema).unwrap();
    let mut output = Vec::new();
    for batch in stream {
        output.extend_from_slice(&session.write(&batch.unwrap()).unwrap());
    }
    output.extend_from_slice(&session.finish().unwrap());
    assert_eq!(read_csv(&output), hard_table());
}

#[test]
fn loader_panics_become_errors_and_the_plugin_stays_usable() {
    assert_panic(boom("open"), "boom at open");
    assert_eq!(boom_words(), ["a\0b", "c"]);

    let mut stream = boom("next").expect("opening does not panic");
    assert_panic(stream.next().expect("an item"), "boom at next");
    assert!(stream.next().is_none(), "a failed stream ends");
    drop(stream);
    assert_eq!(boom_words(), ["a\0b", "c"]);

    // A panic while the plugin drops its reader must not abort this process;
    // if it is reported, it is reported as the panic.
    let mut items = boom("drop").expect("opens");
    assert!(items.next().expect("a batch").is_ok());
    for item in items {
        assert_panic(item, "boom at drop");
    }
    assert_eq!(boom_words(), ["a\0b", "c"]);

    let err = boom("error").err().expect("an error");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(boom_words(), ["a\0b", "c"]);
}

#[test]
fn formatter_panics_become_errors_and_the_plugin_stays_usable() {
    let panicky = load(PANICKY_LIB);
    let batches: Vec<RecordBatch> = boom("none").unwrap().collect::<Result<_, _>>().unwrap();
    let schema = batches[0].schema();
    let start =
        |at: &str| panicky.start_formatter("boom", "{}", &format!(r#"{{"at":"{at}"}}"#), &schema);

    assert_panic(start("start"), "boom at start");

    let mut session = start("write").expect("starts");
    assert_panic(session.write(&batches[0]), "boom at write");
    assert!(
        session.write(&batches[0]).is_err(),
        "a formatter that panicked is not called again"
    );

    let mut session = start("finish").expect("starts");
    assert_eq!(&*session.write(&batches[0]).unwrap(), b"2 rows\n");
    assert_panic(session.finish(), "boom at finish");

    let mut session = start("none").expect("starts");
    assert_eq!(&*session.write(&batches[0]).unwrap(), b"2 rows\n");
    assert_eq!(&*session.finish().unwrap(), b"end\n");
}

#[test]
fn panics_on_many_threads_at_once_are_contained() {
    let threads: Vec<_> = (0..8)
        .map(|n| {
            std::thread::spawn(move || {
                let at = if n % 2 == 0 { "open" } else { "next" };
                for _ in 0..20 {
                    match boom(at) {
                        Err(err) => assert!(err.message.contains("boom at open"), "{err}"),
                        Ok(mut stream) => assert_panic(stream.next().unwrap(), "boom at next"),
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no thread died");
    }
    assert_eq!(boom_words(), ["a\0b", "c"]);
}

#[test]
fn libraries_that_cannot_be_plugins_are_load_errors() {
    let cases = [
        (API_V2_LIB, &["2.0.0", "1.3.0"][..]),
        (PANIC_ON_LOAD_LIB, &["boom while building the plugin"][..]),
    ];
    for (file, needles) in cases {
        // SAFETY: test fixtures this workspace built.
        let err = unsafe { PluginLibrary::load(&library(file)) }.expect_err("a load error");
        for needle in needles {
            assert!(err.to_string().contains(needle), "{file}: {err}");
        }
    }
}
